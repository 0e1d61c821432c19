/* Unit tests for core/lua/json_lua.h: the decoder every client payload goes through (JSON text ->
 * Lua values) and the encoder every message out goes through (Lua values -> JSON text), in a real
 * Lua state. Inputs are copied to exact-size heap blocks so that a read past the end shows up under
 * ASan. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json_lua.h"
#include "json_scan.h"
#include "sbuf.h"

static lua_State *L;

/* Decodes s (n bytes); returns 0 with the value on top, or -1 with the message on top. */
static int decode_n(const char *s, size_t n) {
    char *c = malloc(n ? n : 1);
    if (n) memcpy(c, s, n);
    int rc = json_lua_decode(L, c, n, NULL);
    free(c);
    return rc;
}
static int decode(const char *s) { return decode_n(s, strlen(s)); }

/* encode(value, sbuf): json_lua_encode in a protected call (it raises for what JSON cannot hold). */
static int encode_protected(lua_State *L1) {
    struct sbuf *out = lua_touserdata(L1, 2);
    if (json_lua_encode(L1, 1, out, NULL) != 0) return lua_error(L1);
    return 0;
}

/* Encodes the value on top and pops it; returns the text (malloc'd, NUL-terminated), or NULL with
 * the error message copied to err. */
static char *encode_top(char *err, size_t errcap) {
    struct sbuf out = {0};
    lua_pushcfunction(L, encode_protected);
    lua_insert(L, -2);
    lua_pushlightuserdata(L, &out);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        snprintf(err, errcap, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
        sbuf_free(&out);
        return NULL;
    }
    char *s = malloc(out.len + 1);
    if (out.len) memcpy(s, out.p, out.len);
    s[out.len] = 0;
    sbuf_free(&out);
    return s;
}

/* Runs a Lua chunk that returns one value, pushed. */
static void lua_value(const char *chunk) {
    if (luaL_dostring(L, chunk) != LUA_OK) {
        fprintf(stderr, "chunk failed: %s\n", lua_tostring(L, -1));
        abort();
    }
}

/* decode(text), then encode: the text it gives (malloc'd), or NULL when either refused. */
static char *reencode(const char *text) {
    char err[256];
    if (decode(text) != 0) {
        fprintf(stderr, "    decode(%s): %s\n", text, lua_tostring(L, -1));
        lua_pop(L, 1);
        return NULL;
    }
    char *s = encode_top(err, sizeof err);
    if (!s) fprintf(stderr, "    encode: %s\n", err);
    return s;
}

#define ROUND_TRIP(text)                                                                           \
    do {                                                                                           \
        char *s_ = reencode(text);                                                                 \
        CHECK_STR(text, s_ ? s_ : "(refused)");                                                    \
        free(s_);                                                                                  \
    } while (0)

#define REFUSED(text, why)                                                                         \
    do {                                                                                           \
        int top_ = lua_gettop(L);                                                                  \
        if (CHECK_INT(-1, decode(text))) {                                                         \
            const char *m_ = lua_tostring(L, -1);                                                  \
            if (!CHECK(m_ && strstr(m_, why))) fprintf(stderr, "    message: %s\n", m_ ? m_ : "?"); \
        }                                                                                          \
        lua_settop(L, top_);                                                                       \
    } while (0)

/* A text of depth nested arrays around inner. */
static char *nest(int depth, const char *open, const char *inner, const char *close) {
    size_t n = strlen(inner) + (size_t)depth * (strlen(open) + strlen(close)) + 1;
    char *s = malloc(n), *p = s;
    for (int i = 0; i < depth; i++) p += sprintf(p, "%s", open);
    p += sprintf(p, "%s", inner);
    for (int i = 0; i < depth; i++) p += sprintf(p, "%s", close);
    return s;
}

TEST(nesting_limit_is_64_containers) {
    char *s = nest(64, "[", "1", "]");
    CHECK_INT(0, decode(s));
    lua_pop(L, 1);
    free(s);
    s = nest(65, "[", "1", "]");
    REFUSED(s, "nested too deep");
    free(s);
    s = nest(64, "{\"a\":", "{}", "}");
    REFUSED(s, "nested too deep"); /* 64 objects around one more */
    free(s);
    s = nest(63, "{\"a\":", "[]", "}");
    CHECK_INT(0, decode(s));
    lua_pop(L, 1);
    free(s);
    /* Far past the limit: refused without recursing down it. */
    s = nest(100000, "[", "", "]");
    REFUSED(s, "nested too deep");
    free(s);
}

TEST(encoder_keeps_the_same_limit) {
    /* What the encoder writes, the decoder reads: 64 levels encode, 65 do not (it once wrote 65
     * levels of empty tables, which the decoder refuses). */
    char err[256];
    lua_value("local t = {} for i = 1, 63 do t = {t} end return t");
    char *s = encode_top(err, sizeof err);
    CHECK(s != NULL);
    if (s) {
        CHECK_INT(0, decode(s));
        lua_pop(L, 1);
    }
    free(s);
    lua_value("local t = {} for i = 1, 64 do t = {t} end return t");
    s = encode_top(err, sizeof err);
    CHECK(s == NULL);
    if (!s) CHECK(strstr(err, "nested too deep") != NULL);
    free(s);
    lua_value("local t = {} t[1] = t return t"); /* a cycle */
    s = encode_top(err, sizeof err);
    CHECK(s == NULL);
    free(s);
}

TEST(numbers_outside_a_double_are_refused) {
    REFUSED("1e400", "number out of range");
    REFUSED("-1e309", "number out of range");
    REFUSED("[1,2e308]", "number out of range");
    char big[400];
    memset(big, '9', 399);
    big[399] = 0;
    REFUSED(big, "number out of range"); /* 399 digits, no exponent */
    big[300] = 0;
    CHECK_INT(0, decode(big)); /* 300 digits: a float */
    CHECK(!lua_isinteger(L, -1) && lua_tonumber(L, -1) > 9e299);
    lua_pop(L, 1);
    CHECK_INT(0, decode("1e-400")); /* underflow is a finite 0 */
    CHECK(!lua_isinteger(L, -1) && lua_tonumber(L, -1) == 0);
    lua_pop(L, 1);
    CHECK_INT(0, decode("1.7976931348623157e308"));
    CHECK(lua_tonumber(L, -1) == 1.7976931348623157e308);
    lua_pop(L, 1);
    REFUSED("NaN", "bad number");
    REFUSED("Infinity", "bad number");
    REFUSED("0x10", "trailing characters");
    REFUSED("01", "trailing characters");
    REFUSED("1.", "bad number");
    REFUSED(".5", "bad number");
    REFUSED("+1", "bad number");
    REFUSED("1e", "bad number");
}

TEST(integers_and_floats) {
    static const struct {
        const char *text;
        int is_int;
        double value;
    } cases[] = {
        {"0", 1, 0}, {"-0", 1, 0}, {"42", 1, 42}, {"-7", 1, -7},
        {"123456789012345678", 1, 123456789012345678.0}, {"-12345678901234567", 1, -12345678901234567.0},
        {"1234567890123456789", 0, 1234567890123456789.0}, /* 19 characters: read as a float */
        {"1.0", 0, 1}, {"1e2", 0, 100}, {"1E+2", 0, 100}, {"-2.5e-3", 0, -0.0025}, {"0.1", 0, 0.1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (!CHECK_INT(0, decode(cases[i].text))) {
            lua_pop(L, 1);
            continue;
        }
        if (!CHECK_INT(cases[i].is_int, lua_isinteger(L, -1)) || !CHECK(lua_tonumber(L, -1) == cases[i].value))
            fprintf(stderr, "    text: %s\n", cases[i].text);
        lua_pop(L, 1);
    }
    CHECK_INT(0, decode("123456789012345678"));
    CHECK_INT(123456789012345678LL, lua_tointeger(L, -1));
    lua_pop(L, 1);
    /* Encoding: integers as integers, floats in the shortest form that reads back the same. */
    static const struct {
        const char *chunk, *text;
    } out[] = {
        {"return math.maxinteger", "9223372036854775807"}, {"return math.mininteger", "-9223372036854775808"},
        {"return 3.0", "3"}, {"return -0.0", "-0"}, {"return 0.1", "0.1"}, {"return 1/3", "0.3333333333333333"},
        {"return 1e15", "1e+15"}, {"return 2^53", "9007199254740992"}, {"return 5e-324", "4.94065645841247e-324"},
    };
    for (size_t i = 0; i < sizeof out / sizeof out[0]; i++) {
        char err[256];
        lua_value(out[i].chunk);
        char *s = encode_top(err, sizeof err);
        if (!CHECK_STR(out[i].text, s ? s : err)) fprintf(stderr, "    chunk: %s\n", out[i].chunk);
        free(s);
    }
    const char *bad[] = {"return 0/0", "return 1/0", "return -1/0"};
    for (size_t i = 0; i < 3; i++) {
        char err[256];
        lua_value(bad[i]);
        char *s = encode_top(err, sizeof err);
        CHECK(s == NULL);
        free(s);
    }
}

TEST(empty_array_and_empty_object_stay_apart) {
    CHECK_INT(0, decode("[]"));
    CHECK(lua_istable(L, -1) && json_lua_is_array(L, -1));
    CHECK_INT(0, (long long)lua_rawlen(L, -1));
    lua_pop(L, 1);
    CHECK_INT(0, decode("{}"));
    CHECK(lua_istable(L, -1) && !json_lua_is_array(L, -1));
    lua_pop(L, 1);
    ROUND_TRIP("[]");
    ROUND_TRIP("{}");
    ROUND_TRIP("{\"a\":[]}");
    ROUND_TRIP("{\"b\":{}}");
    ROUND_TRIP("[[],{},[[]]]");
    /* A Lua table without the mark: 1..n keys make an array, an empty one an object. */
    char err[256];
    lua_value("return {}");
    char *s = encode_top(err, sizeof err);
    CHECK_STR("{}", s);
    free(s);
    lua_value("return {1, 2, 3}");
    s = encode_top(err, sizeof err);
    CHECK_STR("[1,2,3]", s);
    free(s);
    lua_value("return {[1] = 1, [3] = 3}");
    s = encode_top(err, sizeof err);
    CHECK_STR("{\"1\":1,\"3\":3}", s ? s : err);
    free(s);
}

TEST(null_is_one_sentinel) {
    CHECK_INT(0, decode("null"));
    CHECK(lua_islightuserdata(L, -1) && lua_touserdata(L, -1) == JSON_NULL);
    lua_pop(L, 1);
    CHECK_INT(0, decode("[1,null,3]"));
    CHECK_INT(3, (long long)lua_rawlen(L, -1));
    lua_rawgeti(L, -1, 2);
    CHECK(lua_islightuserdata(L, -1) && lua_touserdata(L, -1) == JSON_NULL);
    lua_pop(L, 2);
    ROUND_TRIP("[null,null]");
    ROUND_TRIP("{\"a\":null}");
    char err[256];
    lua_pushnil(L); /* nil encodes as null too */
    char *s = encode_top(err, sizeof err);
    CHECK_STR("null", s);
    free(s);
    lua_pushlightuserdata(L, &err); /* another light userdata is not null */
    s = encode_top(err, sizeof err);
    CHECK(s == NULL);
    free(s);
}

TEST(string_escapes) {
    CHECK_INT(0, decode("\"a\\u0000b\\n\\ud83d\\ude00\\ud800\\/\""));
    size_t n;
    const char *v = lua_tolstring(L, -1, &n);
    CHECK_MEMN("a\0b\n\xf0\x9f\x98\x80\xef\xbf\xbd/", 12, v, n);
    lua_pop(L, 1);
    ROUND_TRIP("\"q\\\"b\\\\ \\b\\f\\n\\r\\t \\u0000\\u001e\\u001f \x7f \xc3\xa9 \xf0\x9f\x98\x80\"");
    char *s = reencode("\"\\u00e9\\u001E\\/\"");
    CHECK_STR("\"\xc3\xa9\\u001e/\"", s); /* escapes decoded, written back as JSON.stringify would */
    free(s);
    REFUSED("\"a\nb\"", "control character in string");
    REFUSED("\"\\x41\"", "bad escape in string");
    REFUSED("\"\\u12\"", "bad \\u escape");
    REFUSED("\"abc", "unterminated string");
    REFUSED("{\"a\\q\":1}", "bad escape in string");
}

TEST(invalid_utf8_is_refused_both_ways) {
    REFUSED("\"\xff\"", "invalid UTF-8");
    REFUSED("\"\xed\xa0\x80\"", "invalid UTF-8");        /* a raw surrogate */
    REFUSED("\"\xc0\xaf\"", "invalid UTF-8");            /* overlong */
    REFUSED("{\"k\xfe\":1}", "invalid UTF-8");           /* in a key */
    REFUSED("[\"ok\",\"abcdefgh\xc3\"]", "invalid UTF-8");
    char err[256];
    lua_pushliteral(L, "abc\xff");
    char *s = encode_top(err, sizeof err);
    CHECK(s == NULL && strstr(err, "not UTF-8"));
    free(s);
    lua_value("return {[\"k\\xff\"] = 1}");
    s = encode_top(err, sizeof err);
    CHECK(s == NULL && strstr(err, "not UTF-8"));
    free(s);
}

TEST(huge_strings) {
    /* 8 MiB of text, most of it escapes: decoded to the right bytes. */
    size_t n = 4u << 20;
    char *text = malloc(2 * n + 2), *p = text;
    *p++ = '"';
    for (size_t i = 0; i < n / 4; i++) memcpy(p, i % 2 ? "\\n" : "ab", 2), p += 2;
    for (size_t i = 0; i < n / 4; i++) memcpy(p, "\\u00e9", 6), p += 6;
    *p++ = '"';
    CHECK_INT(0, decode_n(text, (size_t)(p - text)));
    size_t len;
    const char *v = lua_tolstring(L, -1, &len);
    CHECK_UINT(n / 8 * 3 + n / 4 * 2, len);
    CHECK(v && memcmp(v, "ab\nab\n", 6) == 0 && memcmp(v + len - 4, "\xc3\xa9\xc3\xa9", 4) == 0);
    /* and back: the same text */
    char err[256];
    char *s = encode_top(err, sizeof err);
    CHECK(s && strlen(s) == n / 8 * 4 + n / 4 * 2 + 2);
    free(s);
    free(text);
}

/* A capped allocator, as the server's Lua state has: decoding past it fails cleanly. */
struct cap {
    size_t used, max;
};
static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    struct cap *c = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        c->used -= old;
        return NULL;
    }
    if (nsize > old && c->used + (nsize - old) > c->max) return NULL;
    void *q = realloc(ptr, nsize);
    if (q) c->used += nsize - old;
    return q;
}

TEST(memory_cap_refuses_cleanly) {
    struct cap c = {0, 1u << 20};
    lua_State *saved = L;
    L = lua_newstate(capped_alloc, &c);
    json_lua_open(L);
    size_t n = 2u << 20;
    char *text = malloc(n + 2);
    text[0] = '"';
    memset(text + 1, 'x', n);
    text[n + 1] = '"';
    CHECK_INT(-1, decode_n(text, n + 2)); /* 2 MiB string in a 1 MiB state */
    CHECK_INT(1, lua_gettop(L));
    lua_pop(L, 1);
    memcpy(text + 1, "\\n", 2); /* the escaped path */
    CHECK_INT(-1, decode_n(text, n + 2));
    lua_pop(L, 1);
    CHECK_INT(0, decode("[1,2,3]")); /* and the state still works */
    lua_close(L);
    free(text);
    L = saved;
}

TEST(duplicate_keys_last_wins) {
    CHECK_INT(0, decode("{\"a\":1,\"b\":2,\"a\":3}"));
    lua_getfield(L, -1, "a");
    CHECK_INT(3, lua_tointeger(L, -1));
    lua_pop(L, 1);
    lua_pushnil(L);
    int keys = 0;
    while (lua_next(L, -2)) keys++, lua_pop(L, 1);
    CHECK_INT(2, keys);
    lua_pop(L, 1);
    /* An escaped spelling is the same key. */
    CHECK_INT(0, decode("{\"a\":1,\"\\u0061\":2}"));
    lua_getfield(L, -1, "a");
    CHECK_INT(2, lua_tointeger(L, -1));
    lua_pop(L, 2);
    /* Past the decoder's batch of 16 members too. */
    CHECK_INT(0, decode("{\"k\":0,\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,\"h\":1,\"i\":1,"
                        "\"j\":1,\"l\":1,\"m\":1,\"n\":1,\"o\":1,\"p\":1,\"q\":1,\"r\":1,\"k\":9}"));
    lua_getfield(L, -1, "k");
    CHECK_INT(9, lua_tointeger(L, -1));
    lua_pop(L, 2);
}

TEST(round_trips) {
    static const char *texts[] = {
        "true", "false", "0", "-1", "0.5", "\"\"", "\"x\"", "[1,2,3]", "[1,\"a\",true,null,[],{}]",
        "{\"a\":{\"b\":{\"c\":[1,[2,[3]]]}}}", "[1.5,-2.25,1e+300,-1e-300]", "\"\\u0001\\u001e\"",
        "[\"\xe4\xb8\xad\xe6\x96\x87\",\"\xf0\x9f\x9a\x80\"]",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) ROUND_TRIP(texts[i]);
    /* Whitespace goes; the value stays. */
    char *s = reencode(" \t\n\r[ 1 , { \"a\" : [ ] } ] \n");
    CHECK_STR("[1,{\"a\":[]}]", s);
    free(s);
    /* Objects: member order is the table's, so compare by decoding again. */
    s = reencode("{\"x\":1,\"y\":[true],\"z\":{\"w\":null}}");
    CHECK(s && json_valid(s, strlen(s)) && strlen(s) == strlen("{\"x\":1,\"y\":[true],\"z\":{\"w\":null}}"));
    free(s);
}

TEST(trailing_and_truncated_input) {
    REFUSED("", "unexpected end");
    REFUSED("   ", "unexpected end");
    REFUSED("[1,2", "expected ',' or ']'");
    REFUSED("[1,]", "bad number");
    REFUSED("{\"a\":1,}", "expected object key");
    REFUSED("{\"a\" 1}", "expected ':'");
    REFUSED("[1] x", "trailing characters");
    REFUSED("tru", "unexpected token");
    REFUSED("\xef\xbb\xbf[]", "bad number"); /* a byte order mark is not JSON */
    CHECK_INT(0, lua_gettop(L));
}

/* An event's strings of JSON_LARGE_STRING bytes or more are file handles holding the string's
 * bytes (escapes undone); shorter ones, and any string of json_lua_decode, stay strings; a handle
 * encodes back as the same string. */
TEST(large_strings_of_an_event_are_file_handles) {
    size_t n = JSON_LARGE_STRING + 6;
    char *text = malloc(n + 64);
    size_t p = 0;
    p += (size_t)sprintf(text, "[\"ev\",{\"big\":\"");
    size_t body = p;
    memset(text + p, 'A', n - 2);
    p += n - 2;
    memcpy(text + p, "\\n", 2); /* an escape at the end: the handle holds a newline */
    p += 2;
    p += (size_t)sprintf(text + p, "\",\"small\":\"aGk=\"}]");
    CHECK_INT(0, json_lua_decode_event(L, text, p, NULL));
    lua_rawgeti(L, -1, 2);
    lua_getfield(L, -1, "big");
    size_t len = 0;
    const char *h = json_lua_to_file(L, -1, &len);
    CHECK(h != NULL);
    CHECK_UINT(n - 1, len);
    CHECK(h && h[0] == 'A' && h[len - 2] == 'A' && h[len - 1] == '\n');
    CHECK(lua_type(L, -1) == LUA_TUSERDATA);
    /* Its length and fields, as scripts see them. */
    CHECK_UINT(n - 1, (size_t)luaL_len(L, -1));
    lua_getfield(L, -1, "is_base64");
    CHECK(lua_toboolean(L, -1));
    lua_pop(L, 1);
    lua_getfield(L, -1, "size");
    CHECK_INT((long long)((n - 1) / 4 * 3), (long long)lua_tointeger(L, -1));
    lua_pop(L, 1);
    /* Encoded back: the same JSON string as the text held. */
    lua_pushvalue(L, -1);
    char err[200];
    char *out = encode_top(err, sizeof err);
    CHECK(out && strlen(out) == n + 2 && memcmp(out + 1, text + body, n) == 0);
    free(out);
    lua_pop(L, 1);
    lua_getfield(L, -1, "small");
    CHECK(lua_type(L, -1) == LUA_TSTRING);
    lua_pop(L, 3);
    /* Outside an event, the same text gives a string. */
    CHECK_INT(0, json_lua_decode(L, text, p, NULL));
    lua_rawgeti(L, -1, 2);
    lua_getfield(L, -1, "big");
    CHECK(lua_type(L, -1) == LUA_TSTRING);
    lua_pop(L, 3);
    free(text);
}

int main(void) {
    L = luaL_newstate();
    luaL_openlibs(L);
    json_lua_open(L);
    RUN(nesting_limit_is_64_containers);
    RUN(encoder_keeps_the_same_limit);
    RUN(numbers_outside_a_double_are_refused);
    RUN(integers_and_floats);
    RUN(empty_array_and_empty_object_stay_apart);
    RUN(null_is_one_sentinel);
    RUN(string_escapes);
    RUN(invalid_utf8_is_refused_both_ways);
    RUN(huge_strings);
    RUN(memory_cap_refuses_cleanly);
    RUN(duplicate_keys_last_wins);
    RUN(round_trips);
    RUN(trailing_and_truncated_input);
    RUN(large_strings_of_an_event_are_file_handles);
    CHECK_INT(0, lua_gettop(L));
    lua_close(L);
    return check_finish("test_json_lua");
}
