#include "http.h"

#include <stdio.h>
#include <string.h>

/* RFC 9110 token characters, for methods and header names. */
static int is_tchar(unsigned char c) {
    if (c >= '0' && c <= '9') return 1;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Visible characters of a request target (no spaces, no controls). */
static int is_target_char(unsigned char c) { return c > 0x20 && c < 0x7f; }

/* Field values: visible ASCII, obs-text, space and tab; never CR, LF, NUL. */
static int is_value_char(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

/* Finds the end of the head ("\r\n\r\n") within the limit. Returns the head's
 * length including the blank line, 0 when incomplete, -2 when over the limit. */
static long find_head_end(const char *data, size_t len) {
    size_t limit = len < HTTP_MAX_HEAD_BYTES ? len : HTTP_MAX_HEAD_BYTES;
    for (size_t i = 3; i < limit; i++)
        if (data[i] == '\n' && data[i - 1] == '\r' && data[i - 2] == '\n' && data[i - 3] == '\r')
            return (long)(i + 1);
    return len >= HTTP_MAX_HEAD_BYTES ? HTTP_HEAD_TOO_LARGE : HTTP_INCOMPLETE;
}

static long parse_request_line(const char *p, const char *end, struct http_request *req) {
    const char *s = p;
    while (p < end && is_tchar((unsigned char)*p)) p++;
    if (p == s || p >= end || *p != ' ') return HTTP_MALFORMED;
    req->method = (struct slice){s, (size_t)(p - s)};
    s = ++p;
    while (p < end && is_target_char((unsigned char)*p)) p++;
    if (p == s || p >= end || *p != ' ' || *s != '/') return HTTP_MALFORMED;
    req->target = (struct slice){s, (size_t)(p - s)};
    const char *q = memchr(s, '?', (size_t)(p - s));
    req->path = (struct slice){s, (size_t)((q ? q : p) - s)};
    req->query = q ? (struct slice){q + 1, (size_t)(p - q - 1)} : (struct slice){p, 0};
    p++;
    if (end - p != 10 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
        p[8] != '\r' || p[9] != '\n')
        return HTTP_MALFORMED;
    req->minor_version = p[7] - '0';
    return 0;
}

static long parse_header_line(const char *p, const char *end, struct http_request *req) {
    const char *s = p;
    while (p < end && is_tchar((unsigned char)*p)) p++;
    if (p == s || p >= end || *p != ':') return HTTP_MALFORMED; /* also refuses obs-fold */
    if (req->n_headers == HTTP_MAX_HEADERS) return HTTP_HEAD_TOO_LARGE;
    struct http_header *h = &req->headers[req->n_headers++];
    h->name = (struct slice){s, (size_t)(p - s)};
    p++;
    end -= 2; /* the line's CRLF */
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    const char *vend = end;
    while (vend > p && (vend[-1] == ' ' || vend[-1] == '\t')) vend--;
    for (const char *c = p; c < vend; c++)
        if (!is_value_char((unsigned char)*c)) return HTTP_MALFORMED;
    h->value = (struct slice){p, (size_t)(vend - p)};
    return 0;
}

long http_parse_request(const char *data, size_t len, struct http_request *req) {
    long head = find_head_end(data, len);
    if (head <= 0) {
        /* An early non-token byte means garbage; say so before the limit. */
        if (head == 0 && len > 0 && !is_tchar((unsigned char)data[0])) return HTTP_MALFORMED;
        return head;
    }
    req->n_headers = 0;
    const char *p = data, *end = data + head - 2; /* stop before the blank line */
    int first = 1;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl || nl == p || nl[-1] != '\r') return HTTP_MALFORMED; /* bare LF */
        const char *line_end = nl + 1;
        if (memchr(p, '\r', (size_t)(nl - 1 - p))) return HTTP_MALFORMED; /* stray CR */
        long rc = first ? parse_request_line(p, line_end, req) : parse_header_line(p, line_end, req);
        if (rc != 0) return rc;
        first = 0;
        p = line_end;
    }
    if (first) return HTTP_MALFORMED;
    return head;
}

static int eq_nocase(const char *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z') x |= 0x20;
        if (y >= 'A' && y <= 'Z') y |= 0x20;
        if (x != y) return 0;
    }
    return 1;
}

int slice_eq_nocase(struct slice s, const char *t) {
    size_t n = strlen(t);
    return s.len == n && eq_nocase(s.p, t, n);
}

int slice_eq(struct slice s, const char *t) {
    size_t n = strlen(t);
    return s.len == n && memcmp(s.p, t, n) == 0;
}

const struct slice *http_header_get(const struct http_request *req, const char *name) {
    for (size_t i = 0; i < req->n_headers; i++)
        if (slice_eq_nocase(req->headers[i].name, name)) return &req->headers[i].value;
    return NULL;
}

/* One Content-Length field value: a list of 1*DIGIT elements, all equal.
 * Stores the value (saturated: only "over max" matters) in *v unless it is
 * the first one seen; returns -1 when invalid or differing. */
static int content_length_value(struct slice value, long long *v, int *seen) {
    const char *p = value.p, *end = value.p + value.len;
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        const char *s = p;
        long long n = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            n = n > (1LL << 50) ? n : n * 10 + (*p - '0'); /* saturates, never overflows */
            p++;
        }
        if (p == s) return -1; /* empty, a sign or another non-digit */
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        if (*seen && n != *v) return -1;
        *v = n;
        *seen = 1;
        if (p == end) return 0;
        if (*p != ',') return -1; /* "1 2", "1x" */
        p++;
    }
}

long long http_body_length(const struct http_request *req, long long max) {
    long long v = 0;
    int seen_cl = 0, bad_cl = 0;
    const struct slice *te = NULL;
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct http_header *h = &req->headers[i];
        if (slice_eq_nocase(h->name, "Content-Length")) {
            if (content_length_value(h->value, &v, &seen_cl) != 0) bad_cl = 1;
        } else if (slice_eq_nocase(h->name, "Transfer-Encoding")) {
            te = &h->value; /* the last field holds the final coding */
        }
    }
    if (te) {
        if (seen_cl || bad_cl || req->minor_version == 0) return HTTP_BODY_BAD;
        /* The final coding is the last list element. */
        const char *e = te->p + te->len, *s = e;
        while (s > te->p && s[-1] != ',') s--;
        while (s < e && (*s == ' ' || *s == '\t')) s++;
        return slice_eq_nocase((struct slice){s, (size_t)(e - s)}, "chunked") ? HTTP_BODY_UNSUPPORTED
                                                                              : HTTP_BODY_BAD;
    }
    if (bad_cl) return HTTP_BODY_BAD;
    return v > max ? HTTP_BODY_TOO_LARGE : v;
}

int http_value_has_token(struct slice value, const char *token) {
    const char *p = value.p, *end = value.p + value.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) p++;
        const char *s = p;
        while (p < end && *p != ',') p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
        if (slice_eq_nocase((struct slice){s, (size_t)(e - s)}, token)) return 1;
    }
    return 0;
}

int http_query_get(struct slice query, const char *key, struct slice *value) {
    size_t klen = strlen(key);
    const char *p = query.p, *end = query.p + query.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ke = eq ? eq : pe;
        if ((size_t)(ke - p) == klen && memcmp(p, key, klen) == 0) {
            *value = eq ? (struct slice){eq + 1, (size_t)(pe - eq - 1)} : (struct slice){pe, 0};
            return 1;
        }
        p = amp ? amp + 1 : end;
    }
    return 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
    return -1;
}

long http_percent_decode(struct slice src, char *out, size_t cap) {
    size_t n = 0;
    for (size_t i = 0; i < src.len; i++) {
        char c = src.p[i];
        if (c == '%') {
            if (i + 2 >= src.len) return -1;
            int hi = hexval(src.p[i + 1]), lo = hexval(src.p[i + 2]);
            if (hi < 0 || lo < 0) return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (n == cap) return -1;
        out[n++] = c;
    }
    return (long)n;
}

const char *http_status_text(int status) {
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 416: return "Range Not Satisfiable";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

size_t http_format_head(char *out, size_t cap, int status, const char *content_type,
                        size_t content_length, const char *extra_headers, int keep_alive) {
    char length[48] = "";
    /* A 304 describes the stored representation: no Content-Length of its own. */
    if (status != 304) snprintf(length, sizeof length, "Content-Length: %zu\r\n", content_length);
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\n"
                     "%s%s%s"
                     "%s"
                     "Connection: %s\r\n"
                     "%s\r\n",
                     status, http_status_text(status), content_type ? "Content-Type: " : "",
                     content_type ? content_type : "", content_type ? "\r\n" : "", length,
                     keep_alive ? "keep-alive" : "close", extra_headers ? extra_headers : "");
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
