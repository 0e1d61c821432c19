/* http: a strict, pure HTTP/1.1 request codec and a response formatter.
 *
 * http_parse_request reads one request head (request line and headers) from
 * bytes and returns slices into those bytes; it never copies, allocates,
 * blocks or calls libuv, so it can be unit-tested and fuzzed alone. */
#ifndef SPACE_HTTP_H
#define SPACE_HTTP_H

#include <stddef.h>

#define HTTP_MAX_HEADERS 64
#define HTTP_MAX_HEAD_BYTES 8192 /* request line + headers; more answers 431 */

struct slice {
    const char *p;
    size_t len;
};

struct http_header {
    struct slice name, value; /* value has surrounding whitespace removed */
};

struct http_request {
    struct slice method;
    struct slice target; /* as sent: path and query */
    struct slice path;   /* target up to '?' */
    struct slice query;  /* after '?', without it; empty when absent */
    int minor_version;   /* HTTP/1.<minor> */
    size_t n_headers;
    struct http_header headers[HTTP_MAX_HEADERS];
};

enum {
    HTTP_INCOMPLETE = 0,       /* need more bytes */
    HTTP_MALFORMED = -1,       /* answer 400 */
    HTTP_HEAD_TOO_LARGE = -2,  /* answer 431 */
};

/* Parses one request head at the start of data. Returns the head's length in
 * bytes (> 0) when it is complete and valid, or one of the codes above. */
long http_parse_request(const char *data, size_t len, struct http_request *req);

/* The body's framing (RFC 9112 §6.3), in the order a server must check it. */
enum {
    HTTP_BODY_BAD = -1,         /* answer 400 and close: the framing is ambiguous or invalid */
    HTTP_BODY_TOO_LARGE = -2,   /* answer 413 and close: Content-Length over max */
    HTTP_BODY_UNSUPPORTED = -3, /* answer 501 and close: a chunked body (not implemented) */
};

/* The request body's length in bytes (>= 0; 0 without Content-Length), or
 * one of the codes above. Refused, because a peer that reads the framing
 * another way could smuggle a second request in the body: Content-Length
 * values that differ (several fields or a list; identical values collapse,
 * RFC 9110 §8.6), one that is not 1*DIGIT (a sign, inner spaces, empty),
 * Transfer-Encoding with Content-Length or in HTTP/1.0, and
 * Transfer-Encoding whose last coding is not chunked. Transfer-Encoding
 * ending in chunked is well framed, but this server reads no chunked bodies. */
long long http_body_length(const struct http_request *req, long long max);

/* The header's value (case-insensitive name), or NULL. The first one wins. */
const struct slice *http_header_get(const struct http_request *req, const char *name);
/* 1 when a comma-separated header value lists token (case-insensitive). */
int http_value_has_token(struct slice value, const char *token);
/* 1 when s equals the NUL-terminated t, ignoring ASCII case. */
int slice_eq_nocase(struct slice s, const char *t);
int slice_eq(struct slice s, const char *t);

/* Finds key in a query string ("a=1&b=2"). On success returns 1 and stores
 * the raw (still percent-encoded) value; 0 when absent. */
int http_query_get(struct slice query, const char *key, struct slice *value);
/* Percent-decodes src ('+' stays '+': clients encode spaces as %20) into out
 * (capacity cap). Returns the decoded length, or -1 for a bad escape or when
 * it does not fit. */
long http_percent_decode(struct slice src, char *out, size_t cap);

/* Formats a response head into out. extra_headers is NULL or lines each
 * ending in "\r\n". Returns the length, or 0 when it does not fit. */
size_t http_format_head(char *out, size_t cap, int status, const char *content_type,
                        size_t content_length, const char *extra_headers, int keep_alive);
const char *http_status_text(int status);

#endif
