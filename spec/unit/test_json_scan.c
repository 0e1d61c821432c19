/* Unit tests for core/proto/json_scan.h and json_str.h (the one JSON string codec): strict JSON validation (RFC 8259, UTF-8 strings, depth limit)
 * and the walk over one object's members, string decoding and integer reading that the JWT
 * verifier and the admin API rely on. Inputs are copied to exact-size heap blocks so that a read
 * past the end shows up under ASan. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json_scan.h"
#include "json_str.h"

static char *heap_copy(const char *p, size_t n) {
    char *c = malloc(n ? n : 1);
    if (n) memcpy(c, p, n);
    return c;
}

static int valid_n(const char *p, size_t n) {
    char *c = heap_copy(p, n);
    int r = json_valid(c, n);
    free(c);
    return r;
}
static int valid(const char *s) { return valid_n(s, strlen(s)); }

#define VALID(s) do { if (!CHECK_INT(1, valid(s))) fprintf(stderr, "    input: %s\n", s); } while (0)
#define INVALID(s) do { if (!CHECK_INT(0, valid(s))) fprintf(stderr, "    input: %s\n", s); } while (0)

TEST(literals_and_numbers) {
    VALID("true");
    VALID("false");
    VALID("null");
    VALID("0");
    VALID("-0");
    VALID("1");
    VALID("-12.5e+3");
    VALID("1E5");
    VALID("1e-5");
    VALID("0.0");
    VALID("123456789012345678901234567890");
    VALID(" \t\r\n 1 \t\r\n ");
    INVALID("");
    INVALID("   ");
    INVALID("tru");
    INVALID("truee");
    INVALID("True");
    INVALID("nul");
    INVALID("01");
    INVALID("-01");
    INVALID("1.");
    INVALID(".5");
    INVALID("+1");
    INVALID("-");
    INVALID("1e");
    INVALID("1e+");
    INVALID("0x10");
    INVALID("NaN");
    INVALID("Infinity");
    INVALID("1 2");
    INVALID("\f1");
    INVALID("1\v");
    CHECK_INT(0, valid_n("1\0", 2)); /* a NUL after the value */
    CHECK_INT(0, valid_n("\0", 1));
}

TEST(strings) {
    VALID("\"\"");
    VALID("\"abc\"");
    VALID("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"");
    VALID("\"\\u0041\\u00e9\\uD83D\\uDE00\"");
    VALID("\"\\ud800\""); /* a lone surrogate escape: syntactically fine (RFC 8259 §8.2) */
    VALID("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""); /* é € 😀 as UTF-8 */
    INVALID("\"");
    INVALID("\"abc");
    INVALID("'abc'");
    INVALID("\"\\x41\"");
    INVALID("\"\\u004\"");
    INVALID("\"\\u00G1\"");
    INVALID("\"\\\"");
    INVALID("\"\\");
    INVALID("\"a\tb\""); /* raw control characters */
    INVALID("\"a\nb\"");
    INVALID("\"\x1f\"");
    INVALID("\"\xff\"");                 /* not UTF-8 */
    INVALID("\"\xc0\xaf\"");             /* overlong */
    INVALID("\"\xed\xa0\x80\"");         /* a UTF-8-encoded surrogate */
    INVALID("\"\xf4\x90\x80\x80\"");     /* above U+10FFFF */
    INVALID("\"\xe2\x82\"");             /* truncated sequence */
    CHECK_INT(0, valid_n("\"a\0b\"", 5)); /* a raw NUL */
    VALID("\"\x7f\"");                   /* DEL is not a control character for JSON */
}

TEST(arrays_and_objects) {
    VALID("[]");
    VALID("{}");
    VALID("[ ]");
    VALID("{ }");
    VALID("[1,\"a\",true,null,{},[]]");
    VALID("{\"a\":1,\"b\":{\"c\":[1,2,{\"d\":null}]}}");
    VALID(" { \"a\" : [ 1 , 2 ] , \"b\" : { } } ");
    VALID("{\"a\":1,\"a\":2}"); /* duplicate names are syntactically fine */
    VALID("{\"\":0}");
    INVALID("[");
    INVALID("]");
    INVALID("[1,]");
    INVALID("[,1]");
    INVALID("[1 2]");
    INVALID("{\"a\"}");
    INVALID("{\"a\":}");
    INVALID("{\"a\" 1}");
    INVALID("{a:1}");
    INVALID("{1:1}");
    INVALID("{\"a\":1,}");
    INVALID("{,}");
    INVALID("{\"a\":1\"b\":2}");
    INVALID("[1]]");
    INVALID("{}}");
    INVALID("[}");
    INVALID("{]");
    INVALID("{\"a\":1");
}

TEST(depth_limit) {
    char buf[2 * (JSON_SCAN_MAX_DEPTH + 2) + 1];
    for (int depth = JSON_SCAN_MAX_DEPTH - 1; depth <= JSON_SCAN_MAX_DEPTH + 1; depth++) {
        size_t n = 0;
        for (int i = 0; i < depth; i++) buf[n++] = '[';
        for (int i = 0; i < depth; i++) buf[n++] = ']';
        if (!CHECK_INT(depth <= JSON_SCAN_MAX_DEPTH, valid_n(buf, n))) fprintf(stderr, "    depth %d\n", depth);
    }
    /* objects count the same */
    char obj[64 * 8 + 16];
    size_t n = 0;
    for (int i = 0; i < JSON_SCAN_MAX_DEPTH; i++) n += (size_t)sprintf(obj + n, "{\"a\":");
    obj[n++] = '1';
    for (int i = 0; i < JSON_SCAN_MAX_DEPTH; i++) obj[n++] = '}';
    CHECK_INT(1, valid_n(obj, n));
    /* a very deep input is refused without exhausting the stack */
    size_t big = 1 << 20;
    char *deep = malloc(big);
    memset(deep, '[', big);
    CHECK_INT(0, json_valid(deep, big));
    free(deep);
}

TEST(scan_value_offsets) {
    const char *s = "  {\"a\":[1,2]}  ,  \"x\" ";
    char *c = heap_copy(s, strlen(s));
    CHECK_INT(15, json_scan_value(c, strlen(s), 0)); /* after the trailing whitespace */
    CHECK_INT(-1, json_scan_value(c, strlen(s), 15)); /* ',' is no value */
    CHECK_INT((long)strlen(s), json_scan_value(c, strlen(s), 16));
    CHECK_INT(-1, json_scan_value(c, strlen(s), strlen(s)));
    free(c);
    CHECK_INT(-1, json_scan_value("", 0, 0));
    /* a value that is cut by len */
    CHECK_INT(-1, json_scan_value("[1,2]", 4, 0));
    CHECK_INT(4, json_scan_value("true", 4, 0));
    CHECK_INT(-1, json_scan_value("true", 3, 0));
}

/* ---- the object walk ---- */

struct walked {
    int n;
    char keys[16][32];
    char values[16][64];
    char types[16];
};

static int walk(const char *s, struct walked *w) {
    size_t len = strlen(s);
    char *c = heap_copy(s, len);
    memset(w, 0, sizeof *w);
    size_t pos = 0;
    struct json_member m;
    int rc;
    while ((rc = json_object_next(c, len, &pos, &m)) == 1 && w->n < 16) {
        CHECK(m.key.p >= c && m.key.p + m.key.len <= c + len);
        CHECK(m.value.p >= c && m.value.p + m.value.len <= c + len);
        CHECK(m.key.p[-1] == '"' && m.key.p[m.key.len] == '"');
        CHECK_INT(1, json_valid(m.value.p, m.value.len));
        snprintf(w->keys[w->n], sizeof w->keys[0], "%.*s", (int)m.key.len, m.key.p);
        snprintf(w->values[w->n], sizeof w->values[0], "%.*s", (int)m.value.len, m.value.p);
        w->types[w->n] = m.type;
        w->n++;
    }
    if (rc == 0) CHECK_UINT(len, pos);
    free(c);
    return rc;
}

TEST(object_walk_members_and_types) {
    struct walked w;
    CHECK_INT(0, walk("{\"s\":\"x\",\"n\":-1.5e3,\"o\":{\"a\":[1]},\"a\":[ 1 , 2 ],\"t\":true,\"f\":false,\"z\":null}", &w));
    CHECK_INT(7, w.n);
    const char *keys[] = {"s", "n", "o", "a", "t", "f", "z"};
    const char *values[] = {"\"x\"", "-1.5e3", "{\"a\":[1]}", "[ 1 , 2 ]", "true", "false", "null"};
    const char types[] = "snoatfz";
    for (int i = 0; i < 7 && i < w.n; i++) {
        CHECK_STR(keys[i], w.keys[i]);
        CHECK_STR(values[i], w.values[i]);
        CHECK_INT(types[i], w.types[i]);
    }
    /* whitespace everywhere */
    CHECK_INT(0, walk(" \n{ \"a\" :\t1 ,\r\n \"b\" : \"c\" } \n", &w));
    CHECK_INT(2, w.n);
    CHECK_STR("a", w.keys[0]);
    CHECK_STR("1", w.values[0]);
    CHECK_STR("b", w.keys[1]);
    CHECK_STR("\"c\"", w.values[1]);
    /* keys are raw: escapes stay */
    CHECK_INT(0, walk("{\"a\\\"b\":1,\"\\u0061\":2}", &w));
    CHECK_STR("a\\\"b", w.keys[0]);
    CHECK_STR("\\u0061", w.keys[1]);
    /* empty object */
    CHECK_INT(0, walk("{}", &w));
    CHECK_INT(0, w.n);
    CHECK_INT(0, walk(" { } ", &w));
    CHECK_INT(0, w.n);
}

TEST(object_walk_refuses_non_objects) {
    struct walked w;
    const char *bad[] = {"[]", "[{\"a\":1}]", "\"{}\"", "1", "null", "", " ", "{", "{\"a\":1", "{\"a\":1,}",
                         "{\"a\":1} {\"b\":2}", "{\"a\":1}x", "{\"a\":\"\xff\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (!CHECK_INT(-1, walk(bad[i], &w))) fprintf(stderr, "    input: %s\n", bad[i]);
        CHECK_INT(0, w.n);
    }
}

TEST(object_get_finds_the_first_member) {
    const char *s = "{\"event\":\"a\",\"data\":{\"event\":\"inner\"},\"event\":\"b\"}";
    struct json_member m;
    CHECK_INT(1, json_object_get(s, strlen(s), "event", &m));
    CHECK_SLICE("\"a\"", m.value);
    CHECK_INT(1, json_object_get(s, strlen(s), "data", &m));
    CHECK_INT('o', m.type);
    CHECK_INT(0, json_object_get(s, strlen(s), "inner", &m));
    CHECK_INT(0, json_object_get(s, strlen(s), "even", &m));
    CHECK_INT(0, json_object_get("[1]", 3, "event", &m));
    CHECK_INT(0, json_object_get("{", 1, "event", &m));
}

/* ---- string values ---- */

static long str_value(const char *v, size_t cap, char *out) {
    char *c = heap_copy(v, strlen(v));
    char *o = malloc(cap ? cap : 1);
    long r = json_string_value((struct slice){c, strlen(v)}, o, cap);
    if (r >= 0) memcpy(out, o, (size_t)r + 1);
    free(o);
    free(c);
    return r;
}

TEST(string_values_decode) {
    char out[64];
    CHECK_INT(3, str_value("\"abc\"", 16, out));
    CHECK_STR("abc", out);
    CHECK_INT(0, str_value("\"\"", 1, out));
    CHECK_STR("", out);
    CHECK_INT(8, str_value("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", 16, out));
    CHECK_MEM("\"\\/\b\f\n\r\t", out, 8);
    CHECK_INT(2, str_value("\"\\u00e9\"", 16, out));
    CHECK_STR("\xc3\xa9", out);
    CHECK_INT(3, str_value("\"\\u20AC\"", 16, out));
    CHECK_STR("\xe2\x82\xac", out);
    CHECK_INT(1, str_value("\"\\u0041\"", 16, out));
    CHECK_STR("A", out);
    /* a surrogate pair is the character it pairs into (as json_lua reads it; it once read as two
     * U+FFFD here); a lone or reversed surrogate is U+FFFD */
    CHECK_INT(4, str_value("\"\\ud83d\\ude00\"", 16, out));
    CHECK_STR("\xf0\x9f\x98\x80", out);
    CHECK_INT(3, str_value("\"\\ud800\"", 16, out));
    CHECK_STR("\xef\xbf\xbd", out);
    CHECK_INT(6, str_value("\"\\ude00\\ud83d\"", 16, out));
    CHECK_STR("\xef\xbf\xbd\xef\xbf\xbd", out);
    /* raw UTF-8 passes through */
    CHECK_INT(4, str_value("\"\xf0\x9f\x98\x80\"", 16, out));
    /* \u0000 is refused: a C string would be cut at the NUL ("HS256\0x" read as "HS256") */
    CHECK_INT(-1, str_value("\"a\\u0000b\"", 16, out));
}

TEST(string_values_respect_the_buffer) {
    char out[64];
    /* cap counts the terminating NUL */
    CHECK_INT(3, str_value("\"abc\"", 4, out));
    CHECK_INT(-1, str_value("\"abc\"", 3, out));
    CHECK_INT(-1, str_value("\"abc\"", 0, out));
    CHECK_INT(-1, str_value("\"\"", 0, out)); /* even the empty string needs a byte for its NUL */
    CHECK_INT(2, str_value("\"\\u00e9\"", 3, out));
    CHECK_INT(-1, str_value("\"\\u00e9\"", 2, out)); /* a multi-byte character does not fit half */
    CHECK_INT(-1, str_value("\"\\u20ac\"", 3, out));
    /* not strings */
    CHECK_INT(-1, str_value("abc", 16, out));
    CHECK_INT(-1, str_value("1", 16, out));
    CHECK_INT(-1, str_value("\"", 16, out));
    CHECK_INT(-1, str_value("", 16, out));
}

/* ---- integer values ---- */

static int int_value(const char *v, int allow_fraction, int64_t *out) {
    char *c = heap_copy(v, strlen(v));
    int r = json_int_value((struct slice){c, strlen(v)}, out, allow_fraction);
    free(c);
    return r;
}

TEST(int_values) {
    int64_t v = 0;
    CHECK_INT(0, int_value("0", 0, &v));
    CHECK_INT(0, v);
    CHECK_INT(0, int_value("1700000000", 0, &v));
    CHECK_INT(1700000000, v);
    CHECK_INT(0, int_value("-42", 0, &v));
    CHECK_INT(-42, v);
    CHECK_INT(0, int_value("9007199254740993", 0, &v)); /* beyond double precision: exact */
    CHECK_INT(9007199254740993LL, v);
    CHECK_INT(-1, int_value("1.5", 0, &v));
    CHECK_INT(-1, int_value("1e3", 0, &v));
    CHECK_INT(0, int_value("1.9", 1, &v));
    CHECK_INT(1, v);
    CHECK_INT(0, int_value("-1.9", 1, &v));
    CHECK_INT(-1, v); /* truncated toward zero */
    CHECK_INT(0, int_value("1e3", 1, &v));
    CHECK_INT(1000, v);
    CHECK_INT(-1, int_value("1e30", 1, &v));
    CHECK_INT(-1, int_value("9223372036854775807", 0, &v)); /* beyond the documented range (|d| <= 9.2e18) */
    CHECK_INT(0, int_value("9200000000000000000", 0, &v));
    CHECK_INT(9200000000000000000LL, v);
    CHECK_INT(-1, int_value("", 0, &v));
    CHECK_INT(-1, int_value(" 1", 0, &v));
    CHECK_INT(-1, int_value("1 ", 0, &v));
    CHECK_INT(-1, int_value("01", 0, &v));
    CHECK_INT(-1, int_value("0x10", 0, &v));
    CHECK_INT(-1, int_value("\"1\"", 0, &v));
    CHECK_INT(-1, int_value("1234567890123456789012345678901234", 1, &v)); /* over the 31-character buffer */
}

/* {==================================================================
 * json_check: the cause, at any depth (issue 11, item 10)
 * =================================================================== */

static enum json_check_error check_n(const char *p, size_t n, size_t *at) {
    char *c = heap_copy(p, n);
    enum json_check_error r = json_check(c, n, 64, at);
    free(c);
    return r;
}
static enum json_check_error check_s(const char *s) { return check_n(s, strlen(s), NULL); }

#define CHECK_JSON(expected, s) \
    do { if (!CHECK_INT(expected, check_s(s))) fprintf(stderr, "    input: %.200s\n", s); } while (0)

/* n arrays around inner, then the closers when closed. */
static char *nested(size_t n, const char *inner, int closed) {
    size_t il = strlen(inner);
    char *s = malloc(2 * n + il + 1), *o = s;
    memset(o, '[', n), o += n;
    memcpy(o, inner, il), o += il;
    if (closed) memset(o, ']', n), o += n;
    *o = 0;
    return s;
}

TEST(check_accepts_what_json_valid_accepts) {
    CHECK_JSON(JSON_CHECK_OK, "{}");
    CHECK_JSON(JSON_CHECK_OK, " {\"event\":\"x\",\"data\":{\"a\":[1,2.5,-3e2,true,false,null,\"s\",[],{}]},\"id\":\"r\"} ");
    CHECK_JSON(JSON_CHECK_OK, "[[],[[]],{\"a\":{\"b\":[{}]}}]");
    CHECK_JSON(JSON_CHECK_OK, "\"\\u00e9\\ud83d\\ude00\"");
    CHECK_JSON(JSON_CHECK_OK, "0");
    CHECK_JSON(JSON_CHECK_OK, "1e-400"); /* underflows to 0: in range */
    CHECK_JSON(JSON_CHECK_OK, "1.7976931348623157e308");
    CHECK_JSON(JSON_CHECK_OK, "-1.7976931348623157e308");
}

TEST(check_syntax_errors) {
    CHECK_JSON(JSON_CHECK_SYNTAX, "");
    CHECK_JSON(JSON_CHECK_SYNTAX, "   ");
    CHECK_JSON(JSON_CHECK_SYNTAX, "\xef\xbb\xbf{}"); /* a byte order mark */
    CHECK_JSON(JSON_CHECK_SYNTAX, "{");
    CHECK_JSON(JSON_CHECK_SYNTAX, "{\"a\"}");
    CHECK_JSON(JSON_CHECK_SYNTAX, "{\"a\":}");
    CHECK_JSON(JSON_CHECK_SYNTAX, "{\"a\":1,}");
    CHECK_JSON(JSON_CHECK_SYNTAX, "{a:1}");
    CHECK_JSON(JSON_CHECK_SYNTAX, "[1,]");
    CHECK_JSON(JSON_CHECK_SYNTAX, "[1}");
    CHECK_JSON(JSON_CHECK_SYNTAX, "{\"a\":1]");
    CHECK_JSON(JSON_CHECK_SYNTAX, "[01]");
    CHECK_JSON(JSON_CHECK_SYNTAX, "[1.]");
    CHECK_JSON(JSON_CHECK_SYNTAX, "[NaN]");
    CHECK_JSON(JSON_CHECK_SYNTAX, "[tru]");
    CHECK_JSON(JSON_CHECK_SYNTAX, "\"\x01\"");
    CHECK_JSON(JSON_CHECK_SYNTAX, "\"\\x\"");
    CHECK_JSON(JSON_CHECK_SYNTAX, "\"\xff\"");
    CHECK_JSON(JSON_CHECK_TRAILING, "{} {}");
    CHECK_JSON(JSON_CHECK_TRAILING, "{\"event\":\"x\"}x");
    CHECK_JSON(JSON_CHECK_TRAILING, "1 2");
    size_t at = 0;
    CHECK_INT(JSON_CHECK_SYNTAX, check_n("[1,x]", 5, &at));
    CHECK_INT(3, (long long)at);
}

TEST(check_depth_counts_the_outer_container) {
    char *ok = nested(64, "", 1), *deep = nested(65, "", 1), *obj = nested(63, "{}", 1);
    CHECK_JSON(JSON_CHECK_OK, ok);
    CHECK_JSON(JSON_CHECK_TOO_DEEP, deep);
    CHECK_JSON(JSON_CHECK_OK, obj);
    size_t at = 0;
    CHECK_INT(JSON_CHECK_TOO_DEEP, check_n(deep, strlen(deep), &at));
    CHECK_INT(64, (long long)at); /* the 65th '[' */
    free(ok);
    free(deep);
    free(obj);
}

TEST(check_syntax_wins_over_depth_at_any_depth) {
    /* 100,000 levels: far past the inline stack; no recursion either. */
    size_t n = 100000;
    char *closed = nested(n, "1", 1), *open = nested(n, "1", 0), *bad = nested(n, "1,", 1);
    char *mismatch = nested(n, "", 1);
    mismatch[n + n / 2] = '}';
    CHECK_JSON(JSON_CHECK_TOO_DEEP, closed);
    CHECK_JSON(JSON_CHECK_SYNTAX, open);
    CHECK_JSON(JSON_CHECK_SYNTAX, bad);
    CHECK_JSON(JSON_CHECK_SYNTAX, mismatch);
    free(closed);
    free(open);
    free(bad);
    free(mismatch);
}

TEST(check_number_range) {
    CHECK_JSON(JSON_CHECK_NUMBER_RANGE, "1e400");
    CHECK_JSON(JSON_CHECK_NUMBER_RANGE, "[-1E+309]");
    CHECK_JSON(JSON_CHECK_NUMBER_RANGE, "{\"a\":{\"b\":[0,1.8e308]}}");
    char digits[1100];
    memset(digits, '9', 1000);
    digits[1000] = 0;
    CHECK_JSON(JSON_CHECK_NUMBER_RANGE, digits); /* 1000 digits */
    memcpy(digits, "0.", 2);
    CHECK_JSON(JSON_CHECK_OK, digits); /* 0.999...: 1000 characters, in range */
    memset(digits, '1', 309);
    digits[309] = 0;
    CHECK_JSON(JSON_CHECK_OK, digits); /* 1.1e308 */
    memset(digits, '2', 309);
    CHECK_JSON(JSON_CHECK_NUMBER_RANGE, digits); /* 2.2e308 */
    /* syntax first, then depth, then range */
    CHECK_JSON(JSON_CHECK_SYNTAX, "[1e400,]");
    char *deep = nested(70, "1e400", 1);
    CHECK_JSON(JSON_CHECK_TOO_DEEP, deep);
    free(deep);
    size_t at = 0;
    CHECK_INT(JSON_CHECK_NUMBER_RANGE, check_n("[1, 2e999]", 10, &at));
    CHECK_INT(4, (long long)at);
}

TEST(string_decoded_lengths) {
    struct { const char *token; size_t len; } cases[] = {
        {"\"\"", 0}, {"\"abc\"", 3}, {"\"\\n\\\"\"", 2}, {"\"\\u0041\"", 1}, {"\"\\u00e9\"", 2},
        {"\"\\u20ac\"", 3}, {"\"\\ud83d\\ude00\"", 4}, {"\"\\ud83d\"", 3}, {"\"\\ude00x\"", 4}, {"\"\xc3\xa9\"", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_INT((long long)cases[i].len,
                  (long long)json_string_decoded_len((struct slice){cases[i].token, strlen(cases[i].token)}));
}

/* }================================================================== */

/* {==================================================================
 * json_str: the one string codec (json_scan and json_lua both read through it)
 * =================================================================== */

/* Scans the body of the token body+closing quote; returns the end or -1 with *err. */
static long str_scan(const char *body, size_t n, int *escapes, enum json_str_error *err) {
    char *c = heap_copy(body, n);
    size_t at = 999;
    long r = json_str_scan(c, n, escapes, err, &at);
    if (r < 0) CHECK(at <= n);
    free(c);
    return r;
}

/* Unescapes body (scanned first: it must be accepted) into out; returns the length. */
static long str_unescape(const char *body, char *out) {
    size_t n = strlen(body);
    char *c = heap_copy(body, n);
    size_t want = json_str_unescaped_len(c, n);
    char *o = malloc(want ? want : 1);
    size_t got = json_str_unescape(c, n, o);
    CHECK_UINT(want, got);
    CHECK(got <= n);
    memcpy(out, o, got);
    free(o);
    free(c);
    return (long)got;
}

#define SCAN_OK(body, end_, esc_)                                                                  \
    do {                                                                                           \
        int e_ = -1;                                                                               \
        enum json_str_error r_ = JSON_STR_OK;                                                      \
        if (!CHECK_INT(end_, str_scan(body, sizeof(body) - 1, &e_, &r_)) || !CHECK_INT(esc_, e_))  \
            fprintf(stderr, "    body: %s (error %d)\n", body, (int)r_);                           \
    } while (0)
#define SCAN_BAD(body, why)                                                                        \
    do {                                                                                           \
        enum json_str_error r_ = JSON_STR_OK;                                                      \
        CHECK_INT(-1, str_scan(body, sizeof(body) - 1, NULL, &r_));                                \
        if (!CHECK_INT(why, r_)) fprintf(stderr, "    body: %s\n", body);                          \
    } while (0)

TEST(str_scan_accepts_and_finds_the_end) {
    SCAN_OK("\"", 0, 0);
    SCAN_OK("abc\"x", 3, 0);
    SCAN_OK("abcdefghijklmnop\"", 16, 0); /* the eight-at-a-time prefix */
    SCAN_OK("\\\"\"", 2, 1);
    SCAN_OK("\\\\\"", 2, 1);
    SCAN_OK("\\/\\b\\f\\n\\r\\t\"", 12, 1);
    SCAN_OK("\\u00e9\\uD83D\\uDE00\"", 18, 1);
    SCAN_OK("\\ud800\"", 6, 1);                       /* a lone surrogate is valid JSON */
    SCAN_OK("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", 9, 0);
    SCAN_OK("\x7f\"", 1, 0);                          /* DEL is not a control character for JSON */
}

TEST(str_scan_refusals) {
    SCAN_BAD("abc", JSON_STR_UNTERMINATED);
    SCAN_BAD("abc\\", JSON_STR_UNTERMINATED);
    SCAN_BAD("abc\\\"", JSON_STR_UNTERMINATED);
    SCAN_BAD("a\nb\"", JSON_STR_CONTROL);
    SCAN_BAD("a\x1e\"", JSON_STR_CONTROL);
    SCAN_BAD("a\x01\"", JSON_STR_CONTROL);
    SCAN_BAD("\\a\"", JSON_STR_BAD_ESCAPE);
    SCAN_BAD("\\x41\"", JSON_STR_BAD_ESCAPE);
    SCAN_BAD("\\'\"", JSON_STR_BAD_ESCAPE);
    SCAN_BAD("\\U0041\"", JSON_STR_BAD_ESCAPE);
    SCAN_BAD("\\u\"", JSON_STR_BAD_U_ESCAPE);
    SCAN_BAD("\\u12\"", JSON_STR_BAD_U_ESCAPE);
    SCAN_BAD("\\u12g4\"", JSON_STR_BAD_U_ESCAPE);
    SCAN_BAD("\\u123", JSON_STR_BAD_U_ESCAPE);
    SCAN_BAD("\\u-123\"", JSON_STR_BAD_U_ESCAPE);
    SCAN_BAD("\xff\"", JSON_STR_NOT_UTF8);
    SCAN_BAD("\xc3\"", JSON_STR_NOT_UTF8);
    SCAN_BAD("\xc0\xaf\"", JSON_STR_NOT_UTF8);         /* overlong '/' */
    SCAN_BAD("\xed\xa0\x80\"", JSON_STR_NOT_UTF8);     /* a raw surrogate */
    SCAN_BAD("\xf4\x90\x80\x80\"", JSON_STR_NOT_UTF8); /* above U+10FFFF */
    SCAN_BAD("\xc3\\u00a9\"", JSON_STR_NOT_UTF8);      /* a lead byte, then an escape */
    SCAN_BAD("abcdefgh\xff\"", JSON_STR_NOT_UTF8);
    CHECK_STR("bad \\u escape", json_str_error_text(JSON_STR_BAD_U_ESCAPE));
}

TEST(str_unescape_surrogates_and_escapes) {
    char out[64];
    CHECK_INT(8, str_unescape("\\\"\\\\\\/\\b\\f\\n\\r\\t", out));
    CHECK_MEM("\"\\/\b\f\n\r\t", out, 8);
    CHECK_INT(3, str_unescape("a\\u0000b", out)); /* a NUL byte: Lua strings hold it */
    CHECK_MEMN("a\0b", 3, out, 3);
    CHECK_INT(2, str_unescape("\\u00E9", out));
    CHECK_MEM("\xc3\xa9", out, 2);
    CHECK_INT(3, str_unescape("\\uffff", out));
    CHECK_MEM("\xef\xbf\xbf", out, 3);
    /* a pair, upper or lower case hex, is one 4-byte character */
    CHECK_INT(4, str_unescape("\\ud83d\\ude00", out));
    CHECK_MEM("\xf0\x9f\x98\x80", out, 4);
    CHECK_INT(4, str_unescape("\\uDBFF\\uDFFF", out));
    CHECK_MEM("\xf4\x8f\xbf\xbf", out, 4);
    CHECK_INT(4, str_unescape("\\uD800\\uDC00", out));
    CHECK_MEM("\xf0\x90\x80\x80", out, 4);
    /* lone, reversed, or followed by something else: each surrogate is U+FFFD */
    CHECK_INT(3, str_unescape("\\ud800", out));
    CHECK_MEM("\xef\xbf\xbd", out, 3);
    CHECK_INT(3, str_unescape("\\udc00", out));
    CHECK_MEM("\xef\xbf\xbd", out, 3);
    CHECK_INT(6, str_unescape("\\ude00\\ud83d", out));
    CHECK_MEM("\xef\xbf\xbd\xef\xbf\xbd", out, 6);
    CHECK_INT(4, str_unescape("\\ud800\\u0041", out));
    CHECK_MEM("\xef\xbf\xbd" "A", out, 4);
    CHECK_INT(7, str_unescape("\\ud800\\ud800\\udc00", out)); /* the second high one pairs */
    CHECK_MEM("\xef\xbf\xbd\xf0\x90\x80\x80", out, 7);
    CHECK_INT(4, str_unescape("\\ud800x", out));
    CHECK_MEM("\xef\xbf\xbdx", out, 4);
    CHECK_INT(4, str_unescape("\\ud800\\n", out));
    CHECK_MEM("\xef\xbf\xbd\n", out, 4);
    /* raw UTF-8 passes through */
    CHECK_INT(6, str_unescape("\xc3\xa9\xe2\x82\xac" "x", out));
    CHECK_MEM("\xc3\xa9\xe2\x82\xacx", out, 6);
}

TEST(str_unescape_stays_inside_unscanned_bytes) {
    /* Not what json_str_scan accepts, but read within the bytes all the same (ASan watches). */
    const char *bodies[] = {"\\", "\\u", "\\u12", "\\ud800\\u", "\\ud800\\udc", "\\uzzzz", "a\\"};
    char out[64];
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        size_t n = strlen(bodies[i]);
        char *c = heap_copy(bodies[i], n);
        size_t want = json_str_unescaped_len(c, n);
        CHECK(want <= sizeof out);
        CHECK_UINT(want, json_str_unescape(c, n, out));
        free(c);
    }
}

static struct sbuf escaped(const char *s, size_t n, int *rc) {
    struct sbuf b = {0};
    *rc = json_str_escape(&b, s, n);
    return b;
}

#define ESCAPES(in, want)                                                                          \
    do {                                                                                           \
        int rc_;                                                                                   \
        struct sbuf b_ = escaped(in, sizeof(in) - 1, &rc_);                                        \
        CHECK_INT(0, rc_);                                                                         \
        CHECK_MEM(want, b_.p, b_.len);                                                             \
        sbuf_free(&b_);                                                                            \
    } while (0)

TEST(str_escape_as_json_stringify) {
    ESCAPES("", "\"\"");
    ESCAPES("abc", "\"abc\"");
    ESCAPES("q\"b\\s/", "\"q\\\"b\\\\s/\""); /* '/' stays as it is */
    ESCAPES("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"");
    ESCAPES("\x01\x1e\x1f\x7f", "\"\\u0001\\u001e\\u001f\x7f\""); /* U+001E never raw */
    ESCAPES("a\0b", "\"a\\u0000b\"");
    ESCAPES("\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80", "\"\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80\""); /* UTF-8 raw, U+2028 too */
    ESCAPES("0123456789abcdef\n0123456789abcdef", "\"0123456789abcdef\\n0123456789abcdef\"");
    int rc;
    struct sbuf b = escaped("ok \xff", 4, &rc);
    CHECK_INT(JSON_STR_NOT_UTF8_RC, rc);
    sbuf_free(&b);
    b = escaped("\xed\xa0\x80", 3, &rc); /* a raw surrogate is not UTF-8 */
    CHECK_INT(JSON_STR_NOT_UTF8_RC, rc);
    sbuf_free(&b);
}

TEST(append_string_replaces_stray_bytes) {
    struct sbuf b = {0};
    CHECK_INT(0, json_append_string(&b, "a\"\n\xc3\xa9", 5));
    CHECK_MEM("\"a\\\"\\n\xc3\xa9\"", b.p, b.len);
    sbuf_reset(&b);
    CHECK_INT(0, json_append_string(&b, "x\xff\xc3\xa9\xc3\n\xed\xa0\x80y", 10));
    CHECK_MEM("\"x\\ufffd\xc3\xa9\\ufffd\\n\\ufffd\\ufffd\\ufffdy\"", b.p, b.len);
    CHECK(json_valid(b.p, b.len));
    sbuf_free(&b);
}

TEST(escape_then_scan_and_unescape_gives_the_bytes_back) {
    /* Every byte value alone, and in UTF-8 sequences, through the two directions. */
    for (int c = 0; c < 0x80; c++) {
        char s[3] = {'x', (char)c, 'y'};
        struct sbuf b = {0};
        CHECK_INT(0, json_str_escape(&b, s, 3));
        int esc;
        enum json_str_error err;
        long end = json_str_scan(b.p + 1, b.len - 1, &esc, &err, NULL);
        CHECK_INT((long)b.len - 2, end);
        char out[8];
        CHECK_UINT(3, json_str_unescape(b.p + 1, (size_t)end, out));
        CHECK_MEMN(s, 3, out, 3);
        sbuf_free(&b);
    }
}

/* }================================================================== */

int main(void) {
    RUN(literals_and_numbers);
    RUN(strings);
    RUN(arrays_and_objects);
    RUN(depth_limit);
    RUN(scan_value_offsets);
    RUN(object_walk_members_and_types);
    RUN(object_walk_refuses_non_objects);
    RUN(object_get_finds_the_first_member);
    RUN(string_values_decode);
    RUN(string_values_respect_the_buffer);
    RUN(int_values);
    RUN(check_accepts_what_json_valid_accepts);
    RUN(check_syntax_errors);
    RUN(check_depth_counts_the_outer_container);
    RUN(check_syntax_wins_over_depth_at_any_depth);
    RUN(check_number_range);
    RUN(string_decoded_lengths);
    RUN(str_scan_accepts_and_finds_the_end);
    RUN(str_scan_refusals);
    RUN(str_unescape_surrogates_and_escapes);
    RUN(str_unescape_stays_inside_unscanned_bytes);
    RUN(str_escape_as_json_stringify);
    RUN(append_string_replaces_stray_bytes);
    RUN(escape_then_scan_and_unescape_gives_the_bytes_back);
    return check_finish("test_json_scan");
}
