#include "json_lua.h"

#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"
#include "json_str.h"

/* A client's message refused by the decoder is told apart by json_check,
 * which must keep the same limit. */
_Static_assert(JSON_MAX_DEPTH == JSON_SCAN_MAX_DEPTH, "json_lua and json_scan disagree on the depth limit");

/* Registry keys (addresses) of the two metatables, beside their names:
 * a light userdata key is found without hashing a C string, and the
 * array metatable is set or compared on every array decoded or encoded. */
static const char ARRAY_MT_KEY = 0;

void json_lua_set_array(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ARRAY_MT_KEY);
    lua_setmetatable(L, idx);
}

int json_lua_is_array(lua_State *L, int idx) {
    if (!lua_getmetatable(L, idx)) return 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ARRAY_MT_KEY);
    int is_array = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return is_array;
}

/* {==================================================================
 * Decoding
 * =================================================================== */

struct decoder {
    lua_State *L;
    const char *start, *p, *end;
    const struct json_attachments *att;
    const char *err; /* first error, static text */
    int depth;
    size_t large; /* strings this long become file handles; 0: never */
};

static void push_file(lua_State *L, const char *p, size_t end, int escapes);

static void skip_ws(struct decoder *d) {
    while (d->p < d->end && (*d->p == ' ' || *d->p == '\t' || *d->p == '\n' || *d->p == '\r')) d->p++;
}

static int fail(struct decoder *d, const char *msg) {
    if (!d->err) d->err = msg;
    return -1;
}

static int decode_value(struct decoder *d);

/* Pushes the string starting after the opening quote (json_str reads it). */
static int decode_string(struct decoder *d) {
    int escapes;
    enum json_str_error err;
    size_t at;
    long end = json_str_scan(d->p, (size_t)(d->end - d->p), &escapes, &err, &at);
    if (end < 0) {
        d->p += at;
        return fail(d, json_str_error_text(err));
    }
    if (d->large && (size_t)end >= d->large) {
        push_file(d->L, d->p, (size_t)end, escapes);
    } else if (!escapes) {
        lua_pushlstring(d->L, d->p, (size_t)end);
    } else {
        luaL_Buffer b;
        char *o = luaL_buffinitsize(d->L, &b, (size_t)end);
        luaL_pushresultsize(&b, json_str_unescape(d->p, (size_t)end, o));
    }
    d->p += end + 1;
    return 0;
}

static int decode_number(struct decoder *d) {
    const char *s = d->p;
    int is_int = 1;
    if (d->p < d->end && *d->p == '-') d->p++;
    if (d->p >= d->end) return fail(d, "bad number");
    if (*d->p == '0') {
        d->p++;
    } else if (*d->p >= '1' && *d->p <= '9') {
        while (d->p < d->end && *d->p >= '0' && *d->p <= '9') d->p++;
    } else {
        return fail(d, "bad number");
    }
    if (d->p < d->end && *d->p == '.') {
        is_int = 0;
        d->p++;
        const char *f = d->p;
        while (d->p < d->end && *d->p >= '0' && *d->p <= '9') d->p++;
        if (d->p == f) return fail(d, "bad number");
    }
    if (d->p < d->end && (*d->p == 'e' || *d->p == 'E')) {
        is_int = 0;
        d->p++;
        if (d->p < d->end && (*d->p == '+' || *d->p == '-')) d->p++;
        const char *f = d->p;
        while (d->p < d->end && *d->p >= '0' && *d->p <= '9') d->p++;
        if (d->p == f) return fail(d, "bad number");
    }
    size_t n = (size_t)(d->p - s);
    if (is_int && n <= 18) {
        /* At most 18 characters: the value fits, no overflow check needed. */
        const char *q = s + (*s == '-');
        lua_Integer v = 0;
        for (; q < d->p; q++) v = v * 10 + (*q - '0');
        lua_pushinteger(d->L, *s == '-' ? -v : v);
        return 0;
    }
    char tmp[64];
    if (n >= sizeof tmp) {
        /* Long numbers: only the float form can hold them. */
        char *big = malloc(n + 1);
        if (!big) return fail(d, "out of memory");
        memcpy(big, s, n);
        big[n] = 0;
        double v = strtod(big, NULL);
        free(big);
        if (!isfinite(v)) return fail(d, "number out of range");
        lua_pushnumber(d->L, v);
        return 0;
    }
    memcpy(tmp, s, n);
    tmp[n] = 0;
    double v = strtod(tmp, NULL);
    if (!isfinite(v)) return fail(d, "number out of range");
    lua_pushnumber(d->L, v);
    return 0;
}

static int expect_word(struct decoder *d, const char *w, size_t n) {
    if ((size_t)(d->end - d->p) < n || memcmp(d->p, w, n) != 0) return fail(d, "unexpected token");
    d->p += n;
    return 0;
}

/* After an object with exactly the keys _placeholder=true and num=N was
 * decoded (on top), replaces it with attachment N. */
static int maybe_placeholder(struct decoder *d, int n_keys) {
    lua_State *L = d->L;
    if (!d->att || n_keys != 2) return 0;
    if (lua_getfield(L, -1, "_placeholder") != LUA_TBOOLEAN || !lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    lua_pop(L, 1);
    int isnum;
    lua_getfield(L, -1, "num");
    lua_Integer num = lua_tointegerx(L, -1, &isnum);
    lua_pop(L, 1);
    if (!isnum || num < 0 || (size_t)num >= d->att->count) return fail(d, "bad attachment placeholder");
    lua_pop(L, 1);
    json_lua_push_binary(L, d->att->data[num], d->att->len[num]);
    ((struct json_attachments *)d->att)->used = 1;
    return 0;
}

/* Members wait on the stack, up to this many, and then go into a table
 * made at their size: growing a table key by key rehashes it at 1, 2, 4... */
#define DECODE_BATCH 16

/* Moves the n key-value pairs above the table at t into it, in order (a
 * repeated key: the last one wins), creating the table at their size when
 * t is still nil. */
static void flush_members(lua_State *L, int t, int n) {
    if (lua_isnil(L, t)) {
        lua_createtable(L, 0, n);
        lua_replace(L, t);
    }
    for (int i = 0; i < n; i++) {
        lua_pushvalue(L, t + 1 + 2 * i);
        lua_pushvalue(L, t + 2 + 2 * i);
        lua_rawset(L, t);
    }
    lua_settop(L, t);
}

/* Moves the n values above the table at t into it at *len + 1 on, creating
 * the table (room for n) when t is still nil. */
static void flush_elements(lua_State *L, int t, int n, lua_Integer *len) {
    if (lua_isnil(L, t)) {
        lua_createtable(L, n, 0);
        lua_replace(L, t);
    }
    for (int i = 0; i < n; i++) {
        lua_pushvalue(L, t + 1 + i);
        lua_rawseti(L, t, ++*len);
    }
    lua_settop(L, t);
}

static int decode_object(struct decoder *d) {
    lua_State *L = d->L;
    lua_pushnil(L); /* the table, made at the first flush */
    int t = lua_gettop(L), n_keys = 0, waiting = 0;
    skip_ws(d);
    if (d->p < d->end && *d->p == '}') {
        d->p++;
        lua_newtable(L);
        lua_replace(L, t);
        return 0;
    }
    for (;;) {
        skip_ws(d);
        if (d->p >= d->end || *d->p != '"') return fail(d, "expected object key");
        d->p++;
        if (decode_string(d)) return -1;
        skip_ws(d);
        if (d->p >= d->end || *d->p != ':') return fail(d, "expected ':'");
        d->p++;
        if (decode_value(d)) return -1;
        n_keys++;
        if (++waiting == DECODE_BATCH) flush_members(L, t, waiting), waiting = 0;
        skip_ws(d);
        if (d->p < d->end && *d->p == ',') { d->p++; continue; }
        if (d->p < d->end && *d->p == '}') { d->p++; break; }
        return fail(d, "expected ',' or '}'");
    }
    flush_members(L, t, waiting);
    return maybe_placeholder(d, n_keys);
}

static int decode_array(struct decoder *d) {
    lua_State *L = d->L;
    lua_pushnil(L); /* the table, made at the first flush */
    int t = lua_gettop(L), waiting = 0;
    lua_Integer n = 0;
    skip_ws(d);
    if (d->p < d->end && *d->p == ']') {
        d->p++;
    } else {
        for (;;) {
            if (decode_value(d)) return -1;
            if (++waiting == DECODE_BATCH) flush_elements(L, t, waiting, &n), waiting = 0;
            skip_ws(d);
            if (d->p < d->end && *d->p == ',') { d->p++; continue; }
            if (d->p < d->end && *d->p == ']') { d->p++; break; }
            return fail(d, "expected ',' or ']'");
        }
    }
    flush_elements(L, t, waiting, &n);
    json_lua_set_array(L, t);
    return 0;
}

static int decode_value(struct decoder *d) {
    skip_ws(d);
    if (d->p >= d->end) return fail(d, "unexpected end");
    /* Room for a batch of members waiting (2 slots each) and the next one. */
    if (!lua_checkstack(d->L, 2 * DECODE_BATCH + 8)) return fail(d, "too deep");
    switch (*d->p) {
    case '{':
    case '[': {
        if (++d->depth > JSON_MAX_DEPTH) return fail(d, "nested too deep");
        int rc = *d->p++ == '{' ? decode_object(d) : decode_array(d);
        d->depth--;
        return rc;
    }
    case '"': d->p++; return decode_string(d);
    case 't': if (expect_word(d, "true", 4)) return -1; lua_pushboolean(d->L, 1); return 0;
    case 'f': if (expect_word(d, "false", 5)) return -1; lua_pushboolean(d->L, 0); return 0;
    case 'n': if (expect_word(d, "null", 4)) return -1; lua_pushlightuserdata(d->L, JSON_NULL); return 0;
    default: return decode_number(d);
    }
}

/* decode(decoder) -> value: the decoding, in a protected call. */
static int decode_protected(lua_State *L) {
    struct decoder *d = lua_touserdata(L, 1);
    lua_settop(L, 0);
    d->L = L;
    if (decode_value(d) == 0) {
        skip_ws(d);
        if (d->p == d->end) return 1;
        fail(d, "trailing characters");
    }
    lua_settop(L, 0);
    lua_pushfstring(L, "invalid JSON at byte %d: %s", (int)(d->p - d->start), d->err);
    return lua_error(L);
}

static int decode(lua_State *L, const char *p, size_t len, const struct json_attachments *att, size_t large) {
    struct decoder d = {L, p, p, p + len, att, NULL, 0, large};
    /* Protected: the text comes from clients, and the strings and tables
     * it makes can run into the Lua state's memory cap, whose error would
     * otherwise end the process (callers decode outside any Lua call). */
    lua_pushcfunction(L, decode_protected);
    lua_pushlightuserdata(L, &d);
    return lua_pcall(L, 1, 1, 0) == LUA_OK ? 0 : -1;
}

int json_lua_decode(lua_State *L, const char *p, size_t len, const struct json_attachments *att) {
    return decode(L, p, len, att, 0);
}

int json_lua_decode_event(lua_State *L, const char *p, size_t len, const struct json_attachments *att) {
    return decode(L, p, len, att, JSON_LARGE_STRING);
}

/* }================================================================== */

/* {==================================================================
 * Encoding
 * =================================================================== */

/* sbuf_putc and sbuf_append, inline while the room is there. */
static int encode_integer(struct sbuf *out, lua_Integer v) {
    char tmp[24], *end = tmp + sizeof tmp, *p = end;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do *--p = (char)('0' + u % 10); while ((u /= 10) != 0);
    if (v < 0) *--p = '-';
    return sbuf_append_fast(out, p, (size_t)(end - p));
}

/* Appends s as a JSON string: 0, -1 when memory runs out, -2 when s is
 * not UTF-8. */
static int encode_string(struct sbuf *out, const char *s, size_t len) {
    _Static_assert(JSON_STR_NOT_UTF8_RC == -2, "encode_string's callers test -2");
    return json_str_escape(out, s, len);
}

static int encode_number(lua_State *L, int idx, struct sbuf *out) {
    if (lua_isinteger(L, idx)) return encode_integer(out, lua_tointeger(L, idx));
    double v = lua_tonumber(L, idx);
    if (!isfinite(v)) return luaL_error(L, "cannot encode %f as JSON", v), -1;
    /* Integral floats print as integers ("%.0f"); -0.0 keeps its sign. */
    if (v == floor(v) && fabs(v) < 1e15)
        return v == 0 && signbit(v) ? sbuf_append_fast(out, "-0", 2) : encode_integer(out, (lua_Integer)v);
    char tmp[32];
    /* The shortest form that reads back as the same double, as JavaScript prints. */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v) break;
    }
    return sbuf_append(out, tmp, strlen(tmp));
}

/* Array when it has the array metatable, or when its keys are exactly 1..n
 * with n > 0. Returns n, or -1 for an object. */
static lua_Integer array_length(lua_State *L, int idx) {
    if (json_lua_is_array(L, idx)) return (lua_Integer)lua_rawlen(L, idx);
    lua_Integer count = 0, max = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
            lua_pop(L, 1);
            return -1;
        }
        lua_Integer k = lua_tointeger(L, -1);
        if (k > max) max = k;
        count++;
    }
    return count > 0 && max == count ? count : -1;
}

static int encode_value(lua_State *L, int idx, struct sbuf *out, struct json_binary_list *bins,
                        int depth);

static int encode_table(lua_State *L, int idx, struct sbuf *out, struct json_binary_list *bins,
                        int depth) {
    lua_Integer n = array_length(L, idx);
    if (n >= 0) {
        if (sbuf_putc_fast(out, '[')) return -1;
        for (lua_Integer i = 1; i <= n; i++) {
            if (i > 1 && sbuf_putc_fast(out, ',')) return -1;
            lua_rawgeti(L, idx, i);
            int rc = encode_value(L, lua_gettop(L), out, bins, depth + 1);
            lua_pop(L, 1);
            if (rc) return -1;
        }
        return sbuf_putc_fast(out, ']');
    }
    if (sbuf_putc_fast(out, '{')) return -1;
    int first = 1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (!first && sbuf_putc_fast(out, ',')) return -1;
        first = 0;
        int kt = lua_type(L, -2);
        if (kt == LUA_TSTRING) {
            size_t kl;
            const char *k = lua_tolstring(L, -2, &kl);
            int rc = encode_string(out, k, kl);
            if (rc == -2) return luaL_error(L, "cannot encode a key that is not UTF-8"), -1;
            if (rc) return -1;
        } else if (kt == LUA_TNUMBER && lua_isinteger(L, -2)) {
            if (sbuf_putc_fast(out, '"') || encode_integer(out, lua_tointeger(L, -2)) || sbuf_putc_fast(out, '"')) return -1;
        } else {
            return luaL_error(L, "cannot encode a table key of type %s", luaL_typename(L, -2)), -1;
        }
        if (sbuf_putc_fast(out, ':') || encode_value(L, lua_gettop(L), out, bins, depth + 1)) return -1;
        lua_pop(L, 1);
    }
    return sbuf_putc_fast(out, '}');
}

static int encode_value(lua_State *L, int idx, struct sbuf *out, struct json_binary_list *bins,
                        int depth) {
    if (depth > JSON_MAX_DEPTH) return luaL_error(L, "cannot encode: nested too deep (or a cycle)"), -1;
    if (!lua_checkstack(L, 4)) return luaL_error(L, "cannot encode: stack overflow"), -1;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return sbuf_append_fast(out, "null", 4);
    case LUA_TBOOLEAN: return lua_toboolean(L, idx) ? sbuf_append_fast(out, "true", 4) : sbuf_append_fast(out, "false", 5);
    case LUA_TNUMBER: return encode_number(L, idx, out);
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        int rc = encode_string(out, s, len);
        if (rc == -2) return luaL_error(L, "cannot encode a string that is not UTF-8 (use space.binary)"), -1;
        return rc;
    }
    case LUA_TTABLE:
        /* The decoder's limit: what is encoded decodes again (depth counts from 0). */
        if (depth >= JSON_MAX_DEPTH) return luaL_error(L, "cannot encode: nested too deep (or a cycle)"), -1;
        return encode_table(L, idx, out, bins, depth);
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == JSON_NULL) return sbuf_append_fast(out, "null", 4);
        break;
    case LUA_TUSERDATA: {
        size_t len;
        const char *text = json_lua_to_file(L, idx, &len);
        if (text) return encode_string(out, text, len); /* valid UTF-8: the decoder checked it */
        const void *p = json_lua_to_binary(L, idx, &len);
        if (p) {
            if (!bins || !bins->max) return luaL_error(L, "binary values cannot be sent here"), -1;
            if (bins->count == bins->max)
                return luaL_error(L, "too many binary values in one message (%d at most)", (int)bins->max), -1;
            bins->data[bins->count] = p;
            bins->len[bins->count] = len;
            return sbuf_printf(out, "{\"_placeholder\":true,\"num\":%zu}", bins->count++);
        }
        break;
    }
    default: break;
    }
    return luaL_error(L, "cannot encode a %s as JSON", luaL_typename(L, idx)), -1;
}

int json_lua_encode(lua_State *L, int idx, struct sbuf *out, struct json_binary_list *bins) {
    idx = lua_absindex(L, idx);
    if (encode_value(L, idx, out, bins, 0) != 0) {
        lua_pushliteral(L, "out of memory while encoding JSON");
        return -1;
    }
    return 0;
}

/* }================================================================== */

/* {==================================================================
 * Binary values
 * =================================================================== */

struct binary {
    size_t len;
    unsigned char data[];
};

void json_lua_push_binary(lua_State *L, const void *p, size_t len) {
    struct binary *b = lua_newuserdatauv(L, sizeof(struct binary) + len, 0);
    b->len = len;
    if (len) memcpy(b->data, p, len);
    luaL_setmetatable(L, JSON_BINARY_MT);
}

const void *json_lua_to_binary(lua_State *L, int idx, size_t *len) {
    struct binary *b = luaL_testudata(L, idx, JSON_BINARY_MT);
    if (!b) return NULL;
    if (len) *len = b->len;
    return b->data;
}

static int binary_len(lua_State *L) {
    size_t len = 0;
    json_lua_to_binary(L, 1, &len);
    lua_pushinteger(L, (lua_Integer)len);
    return 1;
}

static int binary_tostring(lua_State *L) {
    size_t len = 0;
    const void *p = json_lua_to_binary(L, 1, &len);
    lua_pushlstring(L, p, len);
    return 1;
}

static int binary_eq(lua_State *L) {
    size_t la, lb;
    const void *a = json_lua_to_binary(L, 1, &la), *b = json_lua_to_binary(L, 2, &lb);
    lua_pushboolean(L, a && b && la == lb && memcmp(a, b, la) == 0);
    return 1;
}

/* }================================================================== */

/* {==================================================================
 * File handles
 * =================================================================== */

struct file_handle {
    size_t len;
    char text[];
};

/* Pushes a handle holding the string of end raw bytes at p (unescaped):
 * the one copy of an upload's text out of the message. */
static void push_file(lua_State *L, const char *p, size_t end, int escapes) {
    struct file_handle *f = lua_newuserdatauv(L, sizeof(struct file_handle) + end, 0);
    if (escapes) f->len = json_str_unescape(p, end, f->text);
    else memcpy(f->text, p, f->len = end);
    luaL_setmetatable(L, JSON_FILE_MT);
}

const char *json_lua_to_file(lua_State *L, int idx, size_t *len) {
    struct file_handle *f = luaL_testudata(L, idx, JSON_FILE_MT);
    if (!f) return NULL;
    if (len) *len = f->len;
    return f->text;
}

static int file_len(lua_State *L) {
    size_t len = 0;
    json_lua_to_file(L, 1, &len);
    lua_pushinteger(L, (lua_Integer)len);
    return 1;
}

static int file_tostring(lua_State *L) {
    size_t len = 0;
    const char *p = json_lua_to_file(L, 1, &len);
    lua_pushlstring(L, p, len);
    return 1;
}

/* h.size, h.length, h.is_base64; nil for anything else. */
static int file_index(lua_State *L) {
    size_t len = 0;
    const char *p = json_lua_to_file(L, 1, &len);
    const char *k = lua_tostring(L, 2);
    if (!p || !k) return 0;
    if (strcmp(k, "size") == 0) {
        /* What valid base64 of this length decodes to: the store checks
         * the real size again after decoding. */
        size_t pad = len >= 1 && p[len - 1] == '=' ? (len >= 2 && p[len - 2] == '=' ? 2 : 1) : 0;
        lua_pushinteger(L, (lua_Integer)(len / 4 * 3 - (pad <= len / 4 * 3 ? pad : 0)));
    } else if (strcmp(k, "length") == 0) {
        lua_pushinteger(L, (lua_Integer)len);
    } else if (strcmp(k, "is_base64") == 0) {
        lua_pushboolean(L, 1);
    } else {
        return 0;
    }
    return 1;
}

void json_lua_open(lua_State *L) {
    /* Every array and binary value of every generation shares these two:
     * __metatable keeps them out of scripts' reach (getmetatable gives the
     * name, setmetatable raises), so no script changes how all of them behave. */
    luaL_newmetatable(L, JSON_ARRAY_MT);
    lua_pushliteral(L, JSON_ARRAY_MT);
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ARRAY_MT_KEY);
    static const luaL_Reg binary_meta[] = {
        {"__len", binary_len}, {"__tostring", binary_tostring}, {"__eq", binary_eq}, {NULL, NULL}};
    luaL_newmetatable(L, JSON_BINARY_MT);
    luaL_setfuncs(L, binary_meta, 0);
    lua_pushliteral(L, JSON_BINARY_MT);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
    static const luaL_Reg file_meta[] = {
        {"__len", file_len}, {"__tostring", file_tostring}, {"__index", file_index}, {NULL, NULL}};
    luaL_newmetatable(L, JSON_FILE_MT);
    luaL_setfuncs(L, file_meta, 0);
    lua_pushliteral(L, JSON_FILE_MT);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
}

/* }================================================================== */
