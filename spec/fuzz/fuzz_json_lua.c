/* libFuzzer target: core/lua/json_lua.c, which turns every client payload into Lua values.
 * Oracles:
 *   - acceptance: json_lua_decode accepts only what json_scan's validator (itself fuzzed against a
 *     reference in fuzz_json_scan.c) accepts, and accepts all of it when the document stays well
 *     inside the limits (nesting at most 32, every number finite as a double). Documents past a
 *     limit are only required not to be accepted by one and refused by the validator; which limit
 *     values apply is the decoder's business, not this oracle's;
 *   - round trip: a decoded value encodes (no Lua error), the text is valid JSON, and decoding it
 *     again gives the same value (strings byte for byte, numbers equal and an integer stays an
 *     integer, arrays stay arrays, null stays null, objects with the same keys);
 *   - values: a top-level integer of up to 18 characters decodes to that Lua integer (strtoll),
 *     any other number to strtod's double; a top-level string, and each member of a top-level
 *     object (keys without escapes, not repeated), decode as json_scan reads them (strings as
 *     json_string_value decodes them, but for \u0000, which that one refuses; integers as
 *     json_int_value; the value's type);
 *   - attachments: with two attachments offered, placeholders {"_placeholder":true,"num":N} become
 *     binary values; encoding them collects them again and the round trip gives the same value.
 * The input is copied to an exact-size heap block so that any read past its end is caught. */
#define _GNU_SOURCE /* memmem */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_lua.h"
#include "json_scan.h"
#include "sbuf.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "fuzz_json_lua: " __VA_ARGS__);                                            \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

/* Nesting the oracle holds the decoder to; every limit the project has had is far above it. */
#define SAFE_DEPTH 32

struct input {
    const char *p;
    size_t n;
};

/* Over a document json_scan accepted: its deepest nesting, and whether a number is outside the
 * double range. */
static void measure(const char *p, size_t n, int *depth, int *out_of_range) {
    int d = 0;
    *depth = 0;
    *out_of_range = 0;
    for (size_t i = 0; i < n;) {
        char c = p[i];
        if (c == '"') {
            for (i++; i < n && p[i] != '"'; i += p[i] == '\\' ? 2 : 1) {}
            i++;
        } else if (c == '{' || c == '[') {
            if (++d > *depth) *depth = d;
            i++;
        } else if (c == '}' || c == ']') {
            d--;
            i++;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t j = i;
            while (j < n && strchr("+-.eE0123456789", p[j]) && p[j]) j++;
            char *tok = malloc(j - i + 1);
            memcpy(tok, p + i, j - i);
            tok[j - i] = 0;
            if (!isfinite(strtod(tok, NULL))) *out_of_range = 1;
            free(tok);
            i = j;
        } else {
            i++;
        }
    }
}

/* The two values at a and b are the same JSON value (see the header comment). */
static void same(lua_State *L, int a, int b, int depth) {
    a = lua_absindex(L, a);
    b = lua_absindex(L, b);
    if (depth > 200) FAIL("values nest deeper than any decode allows");
    if (!lua_checkstack(L, 8)) FAIL("out of Lua stack comparing values");
    int ta = lua_type(L, a), tb = lua_type(L, b);
    if (ta != tb) FAIL("round trip changed a %s into a %s", lua_typename(L, ta), lua_typename(L, tb));
    switch (ta) {
    case LUA_TNUMBER:
        if (!lua_rawequal(L, a, b)) FAIL("round trip changed the number %.17g into %.17g", lua_tonumber(L, a), lua_tonumber(L, b));
        if (lua_isinteger(L, a) && !lua_isinteger(L, b)) FAIL("round trip changed the integer %lld into a float", (long long)lua_tointeger(L, a));
        return;
    case LUA_TSTRING: {
        size_t la, lb;
        const char *sa = lua_tolstring(L, a, &la), *sb = lua_tolstring(L, b, &lb);
        if (la != lb || memcmp(sa, sb, la) != 0) FAIL("round trip changed a string of %zu bytes into one of %zu", la, lb);
        return;
    }
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, a) != lua_toboolean(L, b)) FAIL("round trip changed a boolean");
        return;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, a) != JSON_NULL || lua_touserdata(L, b) != JSON_NULL) FAIL("a light userdata that is not null");
        return;
    case LUA_TUSERDATA: {
        size_t la, lb;
        const void *pa = json_lua_to_binary(L, a, &la), *pb = json_lua_to_binary(L, b, &lb);
        if (!pa || !pb) FAIL("a full userdata that is not a binary value");
        if (la != lb || (la && memcmp(pa, pb, la) != 0)) FAIL("round trip changed a binary value");
        return;
    }
    case LUA_TTABLE: {
        if (json_lua_is_array(L, a) != json_lua_is_array(L, b)) FAIL("round trip changed an array into an object or back");
        long na = 0, nb = 0;
        lua_pushnil(L);
        while (lua_next(L, a)) { /* key at -2, value at -1 */
            na++;
            lua_pushvalue(L, -2);
            lua_rawget(L, b);
            if (lua_isnil(L, -1)) FAIL("round trip lost a member");
            same(L, -2, -1, depth + 1);
            lua_pop(L, 2);
        }
        lua_pushnil(L);
        while (lua_next(L, b)) {
            nb++;
            lua_pop(L, 1);
        }
        if (na != nb) FAIL("round trip changed %ld members into %ld", na, nb);
        return;
    }
    default: FAIL("decode made a %s", lua_typename(L, ta));
    }
}

/* How many binary values the value at idx holds. */
static size_t count_binaries(lua_State *L, int idx, int depth) {
    idx = lua_absindex(L, idx);
    if (json_lua_to_binary(L, idx, NULL)) return 1;
    if (!lua_istable(L, idx) || depth > 200) return 0;
    size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        count += count_binaries(L, -1, depth + 1);
        lua_pop(L, 1);
    }
    return count;
}

/* The bytes of attachments offered to the decoder. */
static const char *const ATT_DATA[] = {"\x00\x01\xff", ""};
static const size_t ATT_LEN[] = {3, 0};

/* Encodes the value on top, checks the text, decodes it again (with the collected binary values
 * as attachments when with_binaries) and compares; with_binaries 2: only the encoding is checked.
 * Leaves the stack as it found it. */
static void round_trip(lua_State *L, int with_binaries) {
    int v = lua_gettop(L);
    const void *bin_data[8];
    size_t bin_len[8];
    struct json_binary_list bins = {0, with_binaries ? 8 : 0, bin_data, bin_len};
    struct sbuf out = {0};
    if (json_lua_encode(L, v, &out, &bins) != 0) FAIL("encode ran out of memory");
    if (!json_valid(out.p, out.len)) FAIL("encode wrote invalid JSON: %.*s", (int)(out.len > 200 ? 200 : out.len), out.p);
    struct json_attachments att = {bins.count, bin_data, bin_len, 0};
    if (with_binaries == 2) {
        sbuf_free(&out);
        return;
    }
    if (json_lua_decode(L, out.p, out.len, with_binaries ? &att : NULL) != 0)
        FAIL("decode refused what encode wrote (%s): %.*s", lua_tostring(L, -1), (int)(out.len > 200 ? 200 : out.len), out.p);
    same(L, v, -1, 0);
    lua_settop(L, v);
    sbuf_free(&out);
}

/* The string value v (with quotes) against json_string_value (both read strings with json_str):
 * the same bytes, unless it holds \u0000, which that one refuses (C strings). */
static void check_string(lua_State *L, int idx, struct slice v) {
    for (size_t i = 0; i + 5 < v.len; i++) {
        if (v.p[i] != '\\') continue;
        if (v.p[i + 1] == 'u' && memcmp(v.p + i + 2, "0000", 4) == 0) return;
        i++; /* the escaped character */
    }
    size_t cap = v.len + 1;
    char *want = malloc(cap);
    long wl = json_string_value(v, want, cap);
    size_t l;
    const char *got = lua_tolstring(L, idx, &l);
    if (wl >= 0 && (!got || l != (size_t)wl || memcmp(got, want, l) != 0))
        FAIL("a string decoded otherwise than json_string_value: %.*s", (int)(v.len > 200 ? 200 : v.len), v.p);
    free(want);
}

/* The members of a top-level object against json_scan's walk: each key without escapes that is
 * not repeated later holds the value the walk saw (strings decoded alike, integers alike). */
static void check_members(lua_State *L, const char *p, size_t n) {
    size_t pos = 0;
    struct json_member m;
    while (json_object_next(p, n, &pos, &m) == 1) {
        if (memchr(m.key.p, '\\', m.key.len)) continue;
        size_t later = pos;
        struct json_member m2;
        int repeated = 0;
        while (!repeated && json_object_next(p, n, &later, &m2) == 1)
            repeated = m2.key.len == m.key.len && memcmp(m2.key.p, m.key.p, m.key.len) == 0;
        if (repeated) continue;
        lua_pushlstring(L, m.key.p, m.key.len);
        lua_rawget(L, 1);
        if (lua_isnil(L, -1)) FAIL("member %.*s missing", (int)m.key.len, m.key.p);
        if (m.type == 's') check_string(L, -1, m.value);
        int64_t iv;
        if (m.type == 'n' && m.value.len <= 18 && json_int_value(m.value, &iv, 0) == 0 &&
            (!lua_isinteger(L, -1) || lua_tointeger(L, -1) != iv))
            FAIL("member %.*s: the integer %.*s decoded wrong", (int)m.key.len, m.key.p, (int)m.value.len, m.value.p);
        char t = m.type;
        int lt = lua_type(L, -1);
        if ((t == 's' && lt != LUA_TSTRING) || (t == 'n' && lt != LUA_TNUMBER) || ((t == 'o' || t == 'a') && lt != LUA_TTABLE) ||
            ((t == 't' || t == 'f') && lt != LUA_TBOOLEAN) || (t == 'z' && lt != LUA_TLIGHTUSERDATA) ||
            (t == 'a') != (lt == LUA_TTABLE && json_lua_is_array(L, -1)) || (t == 't' && !lua_toboolean(L, -1)) ||
            (t == 'f' && lua_toboolean(L, -1)))
            FAIL("member %.*s: a '%c' value decoded as a %s", (int)m.key.len, m.key.p, t, lua_typename(L, lt));
        lua_pop(L, 1);
    }
}

static int one(lua_State *L) {
    const struct input *in = lua_touserdata(L, 1);
    const char *p = in->p;
    size_t n = in->n;
    lua_settop(L, 0);

    int valid = json_valid(p, n);
    int depth = 0, out_of_range = 0;
    if (valid) measure(p, n, &depth, &out_of_range);
    int rc = json_lua_decode(L, p, n, NULL);
    if (rc == 0 && !valid) FAIL("json_lua accepted a document json_scan refuses (size %zu)", n);
    if (rc != 0 && valid && depth <= SAFE_DEPTH && !out_of_range)
        FAIL("json_lua refused a valid document inside the limits (depth %d): %s", depth, lua_tostring(L, -1));
    if (rc != 0) {
        if (lua_gettop(L) != 1 || !lua_isstring(L, -1)) FAIL("a refusal without exactly one message pushed");
        return 0;
    }
    if (lua_gettop(L) != 1) FAIL("decode pushed %d values", lua_gettop(L));

    /* The top-level scalars against the C library. */
    size_t s = 0;
    while (s < n && (p[s] == ' ' || p[s] == '\t' || p[s] == '\n' || p[s] == '\r')) s++;
    size_t e = n;
    while (e > s && (p[e - 1] == ' ' || p[e - 1] == '\t' || p[e - 1] == '\n' || p[e - 1] == '\r')) e--;
    if (s < e && (p[s] == '-' || (p[s] >= '0' && p[s] <= '9'))) {
        char *tok = malloc(e - s + 1);
        memcpy(tok, p + s, e - s);
        tok[e - s] = 0;
        int plain = !strpbrk(tok, ".eE");
        if (plain && e - s <= 18) {
            if (!lua_isinteger(L, 1) || lua_tointeger(L, 1) != strtoll(tok, NULL, 10)) FAIL("the integer %s decoded wrong", tok);
        } else if (lua_type(L, 1) != LUA_TNUMBER || lua_tonumber(L, 1) != strtod(tok, NULL)) {
            FAIL("the number %s decoded wrong", tok);
        }
        free(tok);
    }
    if (s < e && p[s] == '"') check_string(L, 1, (struct slice){p + s, e - s});
    if (s < e && p[s] == '{') check_members(L, p, n);

    round_trip(L, 0);
    lua_settop(L, 0);

    /* Again with attachments: placeholders may now become binary values (or be refused when their
     * number names no attachment). */
    struct json_attachments att = {2, (const void *const *)ATT_DATA, ATT_LEN, 0};
    if (json_lua_decode(L, p, n, &att) == 0) {
        /* A table shaped like a placeholder but not taken for one (a repeated key, a third
         * member) may encode as a real placeholder: then the second decode may differ, and only
         * the encoding is checked. */
        size_t mentions = 0;
        for (const char *q = p; (q = memmem(q, n - (size_t)(q - p), "_placeholder", 12)) != NULL; q += 12) mentions++;
        round_trip(L, mentions == count_binaries(L, 1, 0) ? 1 : 2);
    } else if (!memmem(p, n, "_placeholder", 12)) FAIL("attachments offered made a document without placeholders refused");
    lua_settop(L, 0);
    return 0;
}

static lua_State *state(void) {
    static lua_State *L; /* one state for the whole run: making one per input would dominate */
    if (!L) {
        L = luaL_newstate();
        if (!L) FAIL("no Lua state");
        json_lua_open(L);
    }
    return L;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 65536) return 0;
    char *p = malloc(size ? size : 1);
    if (size) memcpy(p, data, size);
    struct input in = {p, size};
    lua_State *L = state();
    lua_settop(L, 0);
    lua_pushcfunction(L, one);
    lua_pushlightuserdata(L, &in);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) FAIL("Lua error: %s", lua_tostring(L, -1));
    lua_settop(L, 0);
    free(p);
    return 0;
}
