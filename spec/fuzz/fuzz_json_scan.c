/* libFuzzer target: core/json_scan.c against a slow, independent reference.
 *   - json_valid and json_scan_value (from offset 0 and from a few other offsets) agree with a
 *     reference recursive-descent validator (RFC 8259; strings strict UTF-8 and without raw
 *     control characters; escapes \" \\ \/ \b \f \n \r \t \uXXXX; nesting at most
 *     JSON_SCAN_MAX_DEPTH);
 *   - json_object_next walks only valid objects (-1 otherwise, before any member), yields as many
 *     members as the reference counts, each with a key between quotes and a value slice that is
 *     itself valid JSON of the announced type, inside the input, and ends with pos == len;
 *   - json_object_get finds the first member of each key the walk saw;
 *   - json_string_value on each string member never writes past cap (exact-size heap buffers,
 *     several caps), returns a length < cap, NUL-terminates, and agrees with the reference decoder;
 *   - json_int_value on each number member does not crash, and agrees with strtoll for plain
 *     integers of up to 18 digits.
 * The input is copied to an exact-size heap block so that any read past its end is caught. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "fuzz_json_scan: " __VA_ARGS__);                                           \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

/* ---- the reference ---- */

struct ref {
    const unsigned char *p;
    size_t n, i;
};

static void ws(struct ref *r) {
    while (r->i < r->n && (r->p[r->i] == ' ' || r->p[r->i] == '\t' || r->p[r->i] == '\n' || r->p[r->i] == '\r')) r->i++;
}

/* One UTF-8 sequence starting at i (a byte >= 0x80); its length or 0 when invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n, size_t i) {
    unsigned c = p[i];
    size_t len;
    uint32_t cp;
    if (c >= 0xC0 && c < 0xE0) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c < 0xF0) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c < 0xF8) len = 4, cp = c & 0x07;
    else return 0;
    if (n - i < len) return 0;
    for (size_t k = 1; k < len; k++) {
        if ((p[i + k] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (p[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return 0;
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
    return len;
}

static int hexd(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int ref_string(struct ref *r) { /* at the opening quote */
    r->i++;
    while (r->i < r->n) {
        unsigned char c = r->p[r->i];
        if (c == '"') {
            r->i++;
            return 1;
        }
        if (c < 0x20) return 0;
        if (c == '\\') {
            if (r->i + 1 >= r->n) return 0;
            unsigned char e = r->p[r->i + 1];
            if (e == 'u') {
                if (r->i + 6 > r->n) return 0;
                for (int k = 2; k < 6; k++)
                    if (!hexd(r->p[r->i + k])) return 0;
                r->i += 6;
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
                r->i += 2;
            } else {
                return 0;
            }
            continue;
        }
        if (c >= 0x80) {
            size_t l = utf8_seq(r->p, r->n, r->i);
            if (!l) return 0;
            r->i += l;
            continue;
        }
        r->i++;
    }
    return 0;
}

static int digit(struct ref *r) { return r->i < r->n && r->p[r->i] >= '0' && r->p[r->i] <= '9'; }

static int ref_number(struct ref *r) {
    if (r->i < r->n && r->p[r->i] == '-') r->i++;
    if (!digit(r)) return 0;
    if (r->p[r->i] == '0') r->i++;
    else while (digit(r)) r->i++;
    if (r->i < r->n && r->p[r->i] == '.') {
        r->i++;
        if (!digit(r)) return 0;
        while (digit(r)) r->i++;
    }
    if (r->i < r->n && (r->p[r->i] == 'e' || r->p[r->i] == 'E')) {
        r->i++;
        if (r->i < r->n && (r->p[r->i] == '+' || r->p[r->i] == '-')) r->i++;
        if (!digit(r)) return 0;
        while (digit(r)) r->i++;
    }
    return 1;
}

static int lit(struct ref *r, const char *w) {
    size_t l = strlen(w);
    if (r->n - r->i < l || memcmp(r->p + r->i, w, l) != 0) return 0;
    r->i += l;
    return 1;
}

/* A value at r->i (whitespace before it skipped); depth = containers already open. */
static int ref_value(struct ref *r, int depth) {
    ws(r);
    if (r->i >= r->n) return 0;
    unsigned char c = r->p[r->i];
    if (c == '"') return ref_string(r);
    if (c == '{' || c == '[') {
        if (depth + 1 > JSON_SCAN_MAX_DEPTH) return 0;
        unsigned char close = c == '{' ? '}' : ']';
        r->i++;
        ws(r);
        if (r->i < r->n && r->p[r->i] == close) {
            r->i++;
            return 1;
        }
        for (;;) {
            if (c == '{') {
                ws(r);
                if (r->i >= r->n || r->p[r->i] != '"' || !ref_string(r)) return 0;
                ws(r);
                if (r->i >= r->n || r->p[r->i] != ':') return 0;
                r->i++;
            }
            if (!ref_value(r, depth + 1)) return 0;
            ws(r);
            if (r->i >= r->n) return 0;
            if (r->p[r->i] == ',') {
                r->i++;
                continue;
            }
            if (r->p[r->i] == close) {
                r->i++;
                return 1;
            }
            return 0;
        }
    }
    if (c == 't') return lit(r, "true");
    if (c == 'f') return lit(r, "false");
    if (c == 'n') return lit(r, "null");
    return ref_number(r);
}

/* End of the value starting at pos with the whitespace after it, or -1. */
static long ref_scan(const unsigned char *p, size_t n, size_t pos) {
    struct ref r = {p, n, pos};
    if (!ref_value(&r, 0)) return -1;
    ws(&r);
    return (long)r.i;
}

/* Members of the object that is all of p, or -1. */
static long ref_members(const unsigned char *p, size_t n) {
    if (ref_scan(p, n, 0) != (long)n) return -1;
    struct ref r = {p, n, 0};
    ws(&r);
    if (p[r.i] != '{') return -1;
    r.i++;
    ws(&r);
    if (p[r.i] == '}') return 0;
    long count = 0;
    for (;;) {
        ws(&r);
        ref_string(&r);
        ws(&r);
        r.i++; /* ':' */
        ref_value(&r, 1);
        count++;
        ws(&r);
        if (p[r.i] == '}') return count;
        r.i++; /* ',' */
    }
}

/* Decodes a valid string value the way json_string_value documents (a high surrogate escape
 * followed by a low one is their 4-byte character, any other surrogate escape U+FFFD; an escaped
 * NUL makes the whole string refused: -1). */
static long ref_decode(const unsigned char *v, size_t len, unsigned char *out) {
    size_t n = 0;
    for (size_t i = 1; i + 1 < len; i++) {
        unsigned char c = v[i];
        if (c != '\\') {
            out[n++] = c;
            continue;
        }
        unsigned char e = v[++i];
        if (e == 'u') {
            unsigned cp = (unsigned)strtoul((char[]){(char)v[i + 1], (char)v[i + 2], (char)v[i + 3], (char)v[i + 4], 0}, NULL, 16);
            i += 4;
            if (cp == 0) return -1;
            if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 < len && v[i + 1] == '\\' && v[i + 2] == 'u') {
                unsigned lo = (unsigned)strtoul((char[]){(char)v[i + 3], (char)v[i + 4], (char)v[i + 5], (char)v[i + 6], 0}, NULL, 16);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    out[n++] = (unsigned char)(0xF0 | cp >> 18), out[n++] = (unsigned char)(0x80 | ((cp >> 12) & 63));
                    out[n++] = (unsigned char)(0x80 | ((cp >> 6) & 63)), out[n++] = (unsigned char)(0x80 | (cp & 63));
                    i += 6;
                    continue;
                }
            }
            if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
            if (cp < 0x80) out[n++] = (unsigned char)cp;
            else if (cp < 0x800) out[n++] = (unsigned char)(0xC0 | cp >> 6), out[n++] = (unsigned char)(0x80 | (cp & 63));
            else out[n++] = (unsigned char)(0xE0 | cp >> 12), out[n++] = (unsigned char)(0x80 | ((cp >> 6) & 63)),
                 out[n++] = (unsigned char)(0x80 | (cp & 63));
        } else {
            out[n++] = e == 'b' ? '\b' : e == 'f' ? '\f' : e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e;
        }
    }
    return (long)n;
}

static char type_of(unsigned char c) {
    return c == '"' ? 's' : c == '{' ? 'o' : c == '[' ? 'a' : c == 't' ? 't' : c == 'f' ? 'f' : c == 'n' ? 'z' : 'n';
}

/* ---- the target ---- */

static void check_string(struct slice v) {
    unsigned char *want = malloc(v.len + 1);
    long wl = ref_decode((const unsigned char *)v.p, v.len, want);
    if (wl < 0) { /* refused whatever the room */
        char out[16];
        if (json_string_value(v, out, sizeof out) != -1 && v.len < sizeof out)
            FAIL("json_string_value accepted a string holding \\u0000: %.*s", (int)v.len, v.p);
        free(want);
        return;
    }
    size_t caps[] = {0, 1, 2, 3, (size_t)wl, (size_t)wl + 1, (size_t)wl + 2, v.len + 1};
    for (size_t k = 0; k < sizeof caps / sizeof *caps; k++) {
        size_t cap = caps[k];
        char *out = malloc(cap ? cap : 1);
        long got = json_string_value(v, out, cap);
        if ((size_t)wl + 1 <= cap) {
            if (got != wl || memcmp(out, want, (size_t)wl) != 0 || out[wl] != 0)
                FAIL("json_string_value(%.*s, cap %zu) = %ld, reference %ld", (int)(v.len > 60 ? 60 : v.len), v.p, cap, got, wl);
        } else if (got != -1) {
            FAIL("json_string_value: %ld bytes do not fit in cap %zu, got %ld", wl, cap, got);
        }
        free(out);
    }
    free(want);
}

static void check_number(struct slice v) {
    int64_t a = 0, b = 0;
    int ra = json_int_value(v, &a, 0);
    json_int_value(v, &b, 1);
    size_t digits = 0;
    int plain = 1;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] >= '0' && v.p[i] <= '9') digits++;
        else if (!(i == 0 && v.p[i] == '-')) plain = 0;
    }
    if (plain && digits <= 18) {
        char tmp[32];
        memcpy(tmp, v.p, v.len);
        tmp[v.len] = 0;
        if (ra != 0 || a != strtoll(tmp, NULL, 10)) FAIL("json_int_value(%s) = %d, %lld", tmp, ra, (long long)a);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0; /* the reference recurses; keep it quick */
    char *p = malloc(size ? size : 1);
    if (size) memcpy(p, data, size);
    const unsigned char *u = (const unsigned char *)p;

    long want = ref_scan(u, size, 0);
    long got = json_scan_value(p, size, 0);
    if (got != want) FAIL("json_scan_value(0) = %ld, reference %ld (size %zu)", got, want, size);
    int v = json_valid(p, size);
    if (v != (want == (long)size)) FAIL("json_valid = %d, reference says %d", v, want == (long)size);
    for (size_t pos = 1; pos < size && pos < 24; pos += 3) {
        long g = json_scan_value(p, size, pos), w = ref_scan(u, size, pos);
        if (g != w) FAIL("json_scan_value(%zu) = %ld, reference %ld", pos, g, w);
        if (g > (long)size) FAIL("json_scan_value past the end");
    }

    long members = ref_members(u, size);
    size_t pos = 0;
    struct json_member m;
    long count = 0;
    int rc;
    while ((rc = json_object_next(p, size, &pos, &m)) == 1) {
        if (members < 0) FAIL("json_object_next gave a member of something that is not a valid object");
        if (++count > members) FAIL("more members than the reference counts (%ld)", members);
        if (m.key.p < p + 1 || m.key.p + m.key.len >= p + size || m.key.p[-1] != '"' || m.key.p[m.key.len] != '"')
            FAIL("a key slice not between quotes inside the input");
        if (m.value.p < p || m.value.p + m.value.len > p + size || m.value.len == 0) FAIL("a value slice outside the input");
        if (!json_valid(m.value.p, m.value.len) || ref_scan((const unsigned char *)m.value.p, m.value.len, 0) != (long)m.value.len)
            FAIL("a member value that is not exactly one JSON value");
        if (m.type != type_of((unsigned char)m.value.p[0])) FAIL("type '%c' for a value starting '%c'", m.type, m.value.p[0]);
        if (pos > size) FAIL("pos past the end");
        /* the first member of this key */
        struct json_member first;
        char key[64];
        if (m.key.len < sizeof key && !memchr(m.key.p, 0, m.key.len)) {
            memcpy(key, m.key.p, m.key.len);
            key[m.key.len] = 0;
            if (!json_object_get(p, size, key, &first)) FAIL("json_object_get misses key %s", key);
            if (first.value.p > m.value.p) FAIL("json_object_get did not find the first %s", key);
        }
        if (m.type == 's') check_string(m.value);
        if (m.type == 'n') check_number(m.value);
    }
    if (rc < 0 && members >= 0) FAIL("json_object_next refused a valid object (%ld members)", members);
    if (rc < 0 && count) FAIL("json_object_next failed after %ld members", count);
    if (rc == 0) {
        if (members < 0) FAIL("json_object_next walked something that is not a valid object");
        if (count != members) FAIL("%ld members walked, reference %ld", count, members);
        if (pos != size) FAIL("the walk ended at %zu of %zu", pos, size);
    }
    free(p);
    return 0;
}
