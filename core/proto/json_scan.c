#include "json_scan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json_str.h"

static size_t skip_ws(const char *p, size_t len, size_t i) {
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) i++;
    return i;
}

/* After the opening quote at i; returns the offset after the closing quote. */
static long scan_string(const char *p, size_t len, size_t i) {
    enum json_str_error err;
    long end = json_str_scan(p + i, len - i, NULL, &err, NULL);
    return end < 0 ? -1 : (long)i + end + 1;
}

static long scan_number(const char *p, size_t len, size_t i) {
    if (i < len && p[i] == '-') i++;
    if (i >= len) return -1;
    if (p[i] == '0') i++;
    else if (p[i] >= '1' && p[i] <= '9') while (i < len && p[i] >= '0' && p[i] <= '9') i++;
    else return -1;
    if (i < len && p[i] == '.') {
        size_t f = ++i;
        while (i < len && p[i] >= '0' && p[i] <= '9') i++;
        if (i == f) return -1;
    }
    if (i < len && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < len && (p[i] == '+' || p[i] == '-')) i++;
        size_t f = i;
        while (i < len && p[i] >= '0' && p[i] <= '9') i++;
        if (i == f) return -1;
    }
    return (long)i;
}

static long scan(const char *p, size_t len, size_t i, int depth) {
    i = skip_ws(p, len, i);
    if (i >= len) return -1;
    char c = p[i];
    if (c == '"') return scan_string(p, len, i + 1);
    if (c == '{' || c == '[') {
        if (depth >= JSON_SCAN_MAX_DEPTH) return -1;
        char close = c == '{' ? '}' : ']';
        i = skip_ws(p, len, i + 1);
        if (i < len && p[i] == close) return (long)i + 1;
        for (;;) {
            if (c == '{') {
                i = skip_ws(p, len, i);
                if (i >= len || p[i] != '"') return -1;
                long k = scan_string(p, len, i + 1);
                if (k < 0) return -1;
                i = skip_ws(p, len, (size_t)k);
                if (i >= len || p[i] != ':') return -1;
                i++;
            }
            long v = scan(p, len, i, depth + 1);
            if (v < 0) return -1;
            i = skip_ws(p, len, (size_t)v);
            if (i < len && p[i] == ',') {
                i++;
                continue;
            }
            if (i < len && p[i] == close) return (long)i + 1;
            return -1;
        }
    }
    if (len - i >= 4 && memcmp(p + i, "true", 4) == 0) return (long)i + 4;
    if (len - i >= 5 && memcmp(p + i, "false", 5) == 0) return (long)i + 5;
    if (len - i >= 4 && memcmp(p + i, "null", 4) == 0) return (long)i + 4;
    return scan_number(p, len, i);
}

long json_scan_value(const char *p, size_t len, size_t pos) {
    long end = scan(p, len, pos, 0);
    return end < 0 ? -1 : (long)skip_ws(p, len, (size_t)end);
}

int json_valid(const char *p, size_t len) { return json_scan_value(p, len, 0) == (long)len; }

/* {==================================================================
 * json_check: a client's message, at any depth
 * =================================================================== */

/* Whether the number token s (valid JSON) is within the double range, as
 * strtod reads it (json_lua decodes with strtod): without an exponent,
 * up to 308 integer digits always are; the rest is left to strtod. */
static int number_in_range(const char *s, size_t n) {
    size_t digits = 0, k = *s == '-';
    while (k < n && s[k] >= '0' && s[k] <= '9') k++, digits++;
    if (!memchr(s, 'e', n) && !memchr(s, 'E', n) && digits <= 308) return 1;
    char tmp[64], *buf = n < sizeof tmp ? tmp : malloc(n + 1);
    if (!buf) return 0;
    memcpy(buf, s, n);
    buf[n] = 0;
    int finite = isfinite(strtod(buf, NULL));
    if (buf != tmp) free(buf);
    return finite;
}

/* Open containers, one bit each (1: object): inline for the usual depths,
 * on the heap past them, so that syntax is checked to the end however
 * deep the text goes (depth is bounded by len). */
struct container_stack {
    unsigned char inline_bits[32];
    unsigned char *bits;
    size_t cap; /* in bits */
};

static int stack_set(struct container_stack *st, size_t level, int is_object) {
    if (level >= st->cap) {
        size_t cap = st->cap * 2;
        unsigned char *b = st->bits == st->inline_bits ? malloc(cap / 8) : realloc(st->bits, cap / 8);
        if (!b) return -1;
        if (st->bits == st->inline_bits) memcpy(b, st->inline_bits, sizeof st->inline_bits);
        st->bits = b;
        st->cap = cap;
    }
    if (is_object) st->bits[level / 8] |= (unsigned char)(1u << (level % 8));
    else st->bits[level / 8] &= (unsigned char)~(1u << (level % 8));
    return 0;
}

static int stack_is_object(const struct container_stack *st, size_t level) {
    return st->bits[level / 8] >> (level % 8) & 1;
}

enum json_check_error json_check(const char *p, size_t len, unsigned max_depth, size_t *at) {
    struct container_stack st;
    st.bits = st.inline_bits;
    st.cap = sizeof st.inline_bits * 8;
    enum json_check_error err = JSON_CHECK_SYNTAX, limit = JSON_CHECK_OK;
    size_t depth = 0, limit_at = 0, i = 0;
    for (;;) {
        /* A value at i. */
        i = skip_ws(p, len, i);
        if (i >= len) goto done;
        char c = p[i];
        if (c == '{' || c == '[') {
            if (stack_set(&st, depth, c == '{')) {
                limit = JSON_CHECK_TOO_DEEP; /* out of memory: refuse, as too deep */
                limit_at = i;
                err = JSON_CHECK_OK;
                goto done;
            }
            if (++depth > max_depth && limit != JSON_CHECK_TOO_DEEP) limit = JSON_CHECK_TOO_DEEP, limit_at = i;
            i = skip_ws(p, len, i + 1);
            if (i < len && p[i] == (c == '{' ? '}' : ']')) {
                depth--;
                i++;
            } else if (c == '[') {
                continue;
            } else {
                goto key;
            }
        } else if (c == '"') {
            long e = scan_string(p, len, i + 1);
            if (e < 0) goto done;
            i = (size_t)e;
        } else if (len - i >= 4 && (memcmp(p + i, "true", 4) == 0 || memcmp(p + i, "null", 4) == 0)) {
            i += 4;
        } else if (len - i >= 5 && memcmp(p + i, "false", 5) == 0) {
            i += 5;
        } else {
            long e = scan_number(p, len, i);
            if (e < 0) goto done;
            if (!limit && !number_in_range(p + i, (size_t)e - i)) limit = JSON_CHECK_NUMBER_RANGE, limit_at = i;
            i = (size_t)e;
        }
        /* After a value: close containers, or a ',' and the next member. */
        for (;;) {
            i = skip_ws(p, len, i);
            if (depth == 0) {
                err = i == len ? JSON_CHECK_OK : JSON_CHECK_TRAILING;
                goto done;
            }
            int in_object = stack_is_object(&st, depth - 1);
            if (i < len && p[i] == (in_object ? '}' : ']')) {
                depth--;
                i++;
                continue;
            }
            if (i >= len || p[i] != ',') goto done;
            i++;
            break;
        }
        if (!stack_is_object(&st, depth - 1)) continue;
    key:
        i = skip_ws(p, len, i);
        if (i >= len || p[i] != '"') goto done;
        long e = scan_string(p, len, i + 1);
        if (e < 0) goto done;
        i = skip_ws(p, len, (size_t)e);
        if (i >= len || p[i] != ':') goto done;
        i++;
    }
done:
    if (st.bits != st.inline_bits) free(st.bits);
    if (err == JSON_CHECK_OK && limit) err = limit, i = limit_at;
    if (at) *at = i;
    return err;
}

size_t json_string_decoded_len(struct slice v) {
    return v.len < 2 ? 0 : json_str_unescaped_len(v.p + 1, v.len - 2);
}

/* }================================================================== */

static char type_of(char c) {
    switch (c) {
    case '"': return 's';
    case '{': return 'o';
    case '[': return 'a';
    case 't': return 't';
    case 'f': return 'f';
    case 'n': return 'z';
    default: return 'n';
    }
}

/* The end of the value at i in text known to be valid JSON: brackets
 * counted, strings skipped; no recursion, so any depth will do. */
size_t json_skip_valid_value(const char *p, size_t len, size_t i) {
    size_t depth = 0;
    do {
        char c = p[i];
        if (c == '"') {
            for (i++; p[i] != '"'; i++)
                if (p[i] == '\\') i++;
            i++;
        } else if (c == '{' || c == '[') {
            depth++;
            i++;
        } else if (c == '}' || c == ']') {
            depth--;
            i++;
        } else if (c == ',' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            i++;
        } else {
            while (i < len && !strchr(",:]} \t\n\r", p[i])) i++; /* a number or a literal */
        }
    } while (depth > 0 && i < len);
    return i;
}

static int object_next(const char *p, size_t len, size_t *pos, struct json_member *m, int checked) {
    size_t i = *pos;
    if (i == 0) {
        if (!checked && !json_valid(p, len)) return -1;
        i = skip_ws(p, len, 0);
        if (i >= len || p[i] != '{') return -1;
        i = skip_ws(p, len, i + 1);
    } else {
        i = skip_ws(p, len, i);
        if (i < len && p[i] == ',') i = skip_ws(p, len, i + 1);
    }
    if (i >= len || p[i] == '}') {
        *pos = len;
        return 0;
    }
    /* Valid JSON was checked once: the scanners below cannot fail. */
    long k = scan_string(p, len, i + 1);
    m->key = (struct slice){p + i + 1, (size_t)(k - 1 - (long)i - 1)};
    i = skip_ws(p, len, (size_t)k) + 1; /* past ':' */
    i = skip_ws(p, len, i);
    size_t v = checked ? json_skip_valid_value(p, len, i) : (size_t)scan(p, len, i, 1);
    m->value = (struct slice){p + i, v - i};
    m->type = type_of(p[i]);
    *pos = v;
    return 1;
}

int json_object_next(const char *p, size_t len, size_t *pos, struct json_member *m) {
    return object_next(p, len, pos, m, 0);
}

int json_object_next_valid(const char *p, size_t len, size_t *pos, struct json_member *m) {
    return object_next(p, len, pos, m, 1);
}

int json_object_get(const char *p, size_t len, const char *key, struct json_member *m) {
    size_t pos = 0;
    int rc;
    while ((rc = json_object_next(p, len, &pos, m)) == 1)
        if (slice_eq(m->key, key)) return 1;
    return 0;
}

long json_string_value(struct slice v, char *out, size_t cap) {
    if (cap == 0 || v.len < 2 || v.p[0] != '"' || v.p[v.len - 1] != '"') return -1;
    size_t n = json_str_unescaped_len(v.p + 1, v.len - 2);
    if (n >= cap) return -1;
    json_str_unescape(v.p + 1, v.len - 2, out);
    /* C strings: a NUL would cut "HS256\u0000x" to "HS256". */
    if (memchr(out, 0, n)) return -1;
    out[n] = 0;
    return (long)n;
}

int json_int_value(struct slice v, int64_t *out, int allow_fraction) {
    char tmp[32];
    if (v.len == 0 || v.len >= sizeof tmp) return -1;
    memcpy(tmp, v.p, v.len);
    tmp[v.len] = 0;
    if (scan_number(tmp, v.len, 0) != (long)v.len) return -1;
    if (!allow_fraction && strpbrk(tmp, ".eE")) return -1;
    double d = strtod(tmp, NULL);
    if (d < -9.2e18 || d > 9.2e18) return -1;
    *out = strpbrk(tmp, ".eE") ? (int64_t)d : strtoll(tmp, NULL, 10);
    return 0;
}
