/* libFuzzer target: http_parse_request, then the helpers on what it returns
 * (header lookup, tokens, query strings, percent-decoding). Besides memory
 * errors (ASan/UBSan), it checks what the header promises:
 *   - a head (> 0) ends with CRLFCRLF, fits 8 KiB, and every slice lies
 *     inside it; path/query/target agree; header values are trimmed and
 *     hold no CR, LF or NUL; names are tokens;
 *   - every strict prefix of a valid head is incomplete (0), and the head
 *     alone parses to the same length;
 *   - http_header_get returns the first header of that name;
 *   - http_body_length gives a length only without Transfer-Encoding and
 *     when every Content-Length is digits and agrees;
 *   - http_query_get returns the first value of each key found by a naive
 *     split, and http_percent_decode matches a slow reference decoder.
 * The raw input is also used directly as a query string. */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "fuzz_http: " __VA_ARGS__);                                                \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

static int in_range(struct slice s, const char *lo, const char *hi) {
    return s.len == 0 ? (s.p >= lo && s.p <= hi) : (s.p >= lo && s.p + s.len <= hi);
}

static int is_tchar(unsigned char c) {
    if (c >= '0' && c <= '9') return 1;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int slices_eq_nocase(struct slice a, struct slice b) {
    if (a.len != b.len) return 0;
    for (size_t i = 0; i < a.len; i++)
        if (lower((unsigned char)a.p[i]) != lower((unsigned char)b.p[i])) return 0;
    return 1;
}

static int hexv(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reference percent-decoder: -1 for a bad escape; else the decoded length
 * (which may exceed cap: then the real one must fail). */
static long ref_percent_decode(struct slice s, char *out) {
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] != '%') {
            out[n++] = s.p[i];
            continue;
        }
        if (s.len - i < 3) return -1;
        int hi = hexv(s.p[i + 1]), lo = hexv(s.p[i + 2]);
        if (hi < 0 || lo < 0) return -1;
        out[n++] = (char)(hi * 16 + lo);
        i += 2;
    }
    return (long)n;
}

static void check_percent_decode(struct slice v) {
    char *want = malloc(v.len + 1), *got = malloc(v.len + 1);
    long rl = ref_percent_decode(v, want);
    long gl = http_percent_decode(v, got, v.len); /* decoding never grows */
    if (gl != rl) FAIL("percent_decode: got %ld, want %ld", gl, rl);
    if (rl > 0 && memcmp(got, want, (size_t)rl) != 0) FAIL("percent_decode: wrong bytes");
    if (rl > 0) { /* one byte too small must fail, exact must succeed */
        char *tight = malloc((size_t)rl);
        if (http_percent_decode(v, tight, (size_t)rl) != rl) FAIL("percent_decode: exact cap fails");
        if (http_percent_decode(v, tight, (size_t)rl - 1) != -1) FAIL("percent_decode: overflow");
        free(tight);
    }
    free(want);
    free(got);
}

/* Splits the query naively; for every key (without NUL), http_query_get must
 * find the first occurrence's value. */
static void check_query(struct slice q) {
    const char *p = q.p, *end = q.p + q.len;
    int pairs = 0;
    while (p < end && pairs++ < 64) { /* like the parser: no segment after a trailing '&' */
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ke = eq ? eq : pe;
        size_t klen = (size_t)(ke - p);
        if (!memchr(p, 0, klen) && klen < 256) {
            char key[256];
            memcpy(key, p, klen);
            key[klen] = 0;
            /* the first pair with this key */
            struct slice first = {0};
            int found = 0;
            for (const char *r = q.p; r < end && !found;) {
                const char *a2 = memchr(r, '&', (size_t)(end - r));
                const char *pe2 = a2 ? a2 : end;
                const char *e2 = memchr(r, '=', (size_t)(pe2 - r));
                const char *k2 = e2 ? e2 : pe2;
                if ((size_t)(k2 - r) == klen && memcmp(r, key, klen) == 0) {
                    found = 1;
                    first = e2 ? (struct slice){e2 + 1, (size_t)(pe2 - e2 - 1)} : (struct slice){pe2, 0};
                }
                if (!a2) break;
                r = a2 + 1;
            }
            struct slice v = {0};
            int rc = http_query_get(q, key, &v);
            if (rc != found) FAIL("query_get(%s): got %d, want %d", key, rc, found);
            if (rc && (v.len != first.len || (v.len && v.p != first.p)))
                FAIL("query_get(%s): wrong value", key);
            if (rc && !in_range(v, q.p, end)) FAIL("query_get: value outside the query");
            if (rc) check_percent_decode(v);
        }
        if (!amp) break;
        p = amp + 1;
    }
}

/* A plain 1*DIGIT value (no list), as a number capped at 10^12; -1 otherwise. */
static long long plain_digits(struct slice v) {
    long long n = 0;
    if (v.len == 0) return -1;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9') return -1;
        if (n < 1000000000000LL) n = n * 10 + (v.p[i] - '0');
    }
    return n;
}

static void check_body_length(const struct http_request *req) {
    long long bl = http_body_length(req, 1000);
    if (bl < HTTP_BODY_UNSUPPORTED || bl > 1000) FAIL("body_length out of range: %lld", bl);
    long long first = -2;
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct http_header *h = &req->headers[i];
        if (slices_eq_nocase(h->name, (struct slice){"transfer-encoding", 17})) {
            if (bl >= 0 || bl == HTTP_BODY_TOO_LARGE) FAIL("body_length ignored Transfer-Encoding");
        } else if (slices_eq_nocase(h->name, (struct slice){"content-length", 14})) {
            for (size_t k = 0; k < h->value.len; k++) {
                char c = h->value.p[k];
                if (bl >= 0 && !(c >= '0' && c <= '9') && c != ',' && c != ' ' && c != '\t')
                    FAIL("body_length accepted a Content-Length that is not digits");
            }
            long long n = plain_digits(h->value);
            if (n >= 0 && first >= 0 && n != first && bl != HTTP_BODY_BAD)
                FAIL("body_length accepted two different Content-Length values");
            if (n >= 0 && first == -2) first = n;
        }
    }
}

static void check_head(const char *d, size_t size, long rc, const struct http_request *req) {
    const char *end = d + rc;
    if ((size_t)rc > size || rc > HTTP_MAX_HEAD_BYTES || rc < 4) FAIL("bad head length %ld", rc);
    if (memcmp(end - 4, "\r\n\r\n", 4) != 0) FAIL("head does not end with CRLFCRLF");
    if (memmem(d, (size_t)rc, "\r\n\r\n", 4) != end - 4) FAIL("head is not the first CRLFCRLF");
    if (!in_range(req->method, d, end) || !in_range(req->target, d, end) ||
        !in_range(req->path, d, end) || !in_range(req->query, d, end))
        FAIL("request-line slice outside the head");
    if (req->method.len == 0 || req->target.len == 0 || req->target.p[0] != '/')
        FAIL("empty method or target");
    for (size_t i = 0; i < req->method.len; i++)
        if (!is_tchar((unsigned char)req->method.p[i])) FAIL("method is not a token");
    for (size_t i = 0; i < req->target.len; i++)
        if ((unsigned char)req->target.p[i] <= 0x20 || (unsigned char)req->target.p[i] >= 0x7f)
            FAIL("bad target byte");
    if (req->path.p != req->target.p) FAIL("path does not start the target");
    const char *qm = memchr(req->target.p, '?', req->target.len);
    if (qm) {
        if (req->path.len != (size_t)(qm - req->target.p) || req->query.p != qm + 1 ||
            req->query.len != req->target.len - req->path.len - 1)
            FAIL("path/query split wrong");
    } else if (req->path.len != req->target.len || req->query.len != 0) {
        FAIL("path/query without '?' wrong");
    }
    if (req->minor_version != 0 && req->minor_version != 1) FAIL("minor version");
    if (req->n_headers > HTTP_MAX_HEADERS) FAIL("too many headers");
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct http_header *h = &req->headers[i];
        if (!in_range(h->name, d, end) || !in_range(h->value, d, end)) FAIL("header outside the head");
        if (h->name.len == 0) FAIL("empty header name");
        for (size_t k = 0; k < h->name.len; k++)
            if (!is_tchar((unsigned char)h->name.p[k])) FAIL("header name is not a token");
        for (size_t k = 0; k < h->value.len; k++) {
            unsigned char c = (unsigned char)h->value.p[k];
            if (c == '\r' || c == '\n' || c == 0 || c == 0x7f || (c < 0x20 && c != '\t'))
                FAIL("bad header value byte %02x", c);
        }
        if (h->value.len && (h->value.p[0] == ' ' || h->value.p[0] == '\t' ||
                             h->value.p[h->value.len - 1] == ' ' || h->value.p[h->value.len - 1] == '\t'))
            FAIL("header value not trimmed");
        /* http_header_get: the first header with this name */
        char name[128];
        if (h->name.len < sizeof name) {
            memcpy(name, h->name.p, h->name.len);
            name[h->name.len] = 0;
            const struct slice *v = http_header_get(req, name);
            size_t first = 0;
            while (!slices_eq_nocase(req->headers[first].name, h->name)) first++;
            if (v != &req->headers[first].value) FAIL("header_get(%s) is not the first", name);
        }
        (void)http_value_has_token(h->value, "upgrade");
        (void)http_value_has_token(h->value, "websocket");
        (void)http_value_has_token(h->value, "");
    }
    check_body_length(req);
    check_query(req->query);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *d = (const char *)data;
    static struct http_request req;
    long rc = http_parse_request(d, size, &req);
    if (rc > 0) {
        check_head(d, size, rc, &req);
        /* the head alone parses the same; every strict prefix is incomplete */
        long again = http_parse_request(d, (size_t)rc, &req);
        if (again != rc) FAIL("head alone: %ld, with the rest: %ld", again, rc);
        size_t cuts[] = {0, 1, (size_t)rc / 2, (size_t)rc - 2, (size_t)rc - 1};
        for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
            static struct http_request tmp;
            long r = http_parse_request(d, cuts[i], &tmp);
            if (r != HTTP_INCOMPLETE) FAIL("prefix of %zu bytes gives %ld", cuts[i], r);
        }
    } else if (rc == HTTP_INCOMPLETE) {
        size_t lim = size < HTTP_MAX_HEAD_BYTES ? size : HTTP_MAX_HEAD_BYTES;
        if (memmem(d, lim, "\r\n\r\n", 4)) FAIL("incomplete but the head is there");
        if (size >= HTTP_MAX_HEAD_BYTES) FAIL("incomplete at the size limit");
    } else if (rc == HTTP_HEAD_TOO_LARGE) {
        /* Either no end within 8 KiB, or more than 64 headers. */
    } else if (rc != HTTP_MALFORMED) {
        FAIL("unexpected return %ld", rc);
    }

    /* The raw input as a query string. */
    struct slice q = {d, size < 4096 ? size : 4096};
    check_query(q);
    check_percent_decode(q);
    return 0;
}
