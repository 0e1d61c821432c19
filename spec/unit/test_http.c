/* Unit tests for core/http.h: the strict HTTP/1.1 request head parser and
 * its helpers (headers, tokens, query strings, percent-decoding, response
 * heads). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "http.h"

static struct http_request req;

static long parse(const char *s) { return http_parse_request(s, strlen(s), &req); }
static long parse_n(const char *s, size_t n) { return http_parse_request(s, n, &req); }

/* ---- request line ---- */

TEST(parses_minimal_get_request) {
    const char *s = "GET / HTTP/1.1\r\n\r\n";
    CHECK_INT((long)strlen(s), parse(s));
    CHECK_SLICE("GET", req.method);
    CHECK_SLICE("/", req.target);
    CHECK_SLICE("/", req.path);
    CHECK_SLICE("", req.query);
    CHECK_INT(1, req.minor_version);
    CHECK_UINT(0, req.n_headers);
}

TEST(slices_point_into_the_input) {
    const char *s = "GET /x?y HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_INT((long)strlen(s), parse(s));
    CHECK_PTR(s, req.method.p);
    CHECK_PTR(s + 4, req.target.p);
    CHECK_PTR(s + 4, req.path.p);
    CHECK_PTR(s + 7, req.query.p);
    CHECK_PTR(s + 19, req.headers[0].name.p);
}

TEST(returns_head_length_without_the_body) {
    const char *s = "POST /upload HTTP/1.1\r\nContent-Length: 7\r\n\r\n\r\n\r\nabc";
    long head = (long)(strstr(s, "\r\n\r\n") - s) + 4;
    CHECK_INT(head, parse(s));
    CHECK_SLICE("POST", req.method);
    CHECK_UINT(1, req.n_headers);
}

TEST(parses_pipelined_requests_one_at_a_time) {
    const char *s = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: y\r\n\r\n";
    long first = parse(s);
    CHECK_INT(28, first);
    CHECK_SLICE("/a", req.path);
    long second = parse_n(s + first, strlen(s) - (size_t)first);
    CHECK_INT(28, second);
    CHECK_SLICE("/b", req.path);
    CHECK_SLICE("y", req.headers[0].value);
}

TEST(splits_target_into_path_and_query) {
    CHECK(parse("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n\r\n") > 0);
    CHECK_SLICE("/socket.io/?EIO=4&transport=websocket", req.target);
    CHECK_SLICE("/socket.io/", req.path);
    CHECK_SLICE("EIO=4&transport=websocket", req.query);
}

TEST(query_is_empty_after_a_bare_question_mark) {
    CHECK(parse("GET /p? HTTP/1.1\r\n\r\n") > 0);
    CHECK_SLICE("/p", req.path);
    CHECK_SLICE("", req.query);
}

TEST(query_keeps_later_question_marks) {
    CHECK(parse("GET /p?a=?b HTTP/1.1\r\n\r\n") > 0);
    CHECK_SLICE("/p", req.path);
    CHECK_SLICE("a=?b", req.query);
}

TEST(accepts_http_1_0) {
    CHECK(parse("GET / HTTP/1.0\r\n\r\n") > 0);
    CHECK_INT(0, req.minor_version);
}

TEST(accepts_any_token_method) {
    CHECK(parse("OPTIONS / HTTP/1.1\r\n\r\n") > 0);
    CHECK_SLICE("OPTIONS", req.method);
    CHECK(parse("X-CUSTOM.m~ / HTTP/1.1\r\n\r\n") > 0);
    CHECK_SLICE("X-CUSTOM.m~", req.method);
}

TEST(rejects_other_http_versions) {
    CHECK_INT(HTTP_MALFORMED, parse("GET / HTTP/1.2\r\n\r\n"));
    CHECK_INT(HTTP_MALFORMED, parse("GET / HTTP/2.0\r\n\r\n"));
    CHECK_INT(HTTP_MALFORMED, parse("GET / HTTP/1.10\r\n\r\n"));
    CHECK_INT(HTTP_MALFORMED, parse("GET / HTTP/1\r\n\r\n"));
    CHECK_INT(HTTP_MALFORMED, parse("GET / http/1.1\r\n\r\n"));
    CHECK_INT(HTTP_MALFORMED, parse("GET / HTTP/1.1 \r\n\r\n"));
    CHECK_INT(HTTP_MALFORMED, parse("GET /\r\n\r\n"));
    CHECK_INT(HTTP_MALFORMED, parse("GET / \r\n\r\n"));
}

TEST(rejects_malformed_request_lines) {
    CHECK_INT(HTTP_MALFORMED, parse(" / HTTP/1.1\r\n\r\n"));          /* no method */
    CHECK_INT(HTTP_MALFORMED, parse("GET  / HTTP/1.1\r\n\r\n"));      /* two spaces */
    CHECK_INT(HTTP_MALFORMED, parse("GET\t/ HTTP/1.1\r\n\r\n"));     /* tab separator */
    CHECK_INT(HTTP_MALFORMED, parse("G(T / HTTP/1.1\r\n\r\n"));       /* '(' is no tchar */
    CHECK_INT(HTTP_MALFORMED, parse("GET * HTTP/1.1\r\n\r\n"));       /* asterisk-form */
    CHECK_INT(HTTP_MALFORMED, parse("GET http://h/ HTTP/1.1\r\n\r\n")); /* absolute-form */
    CHECK_INT(HTTP_MALFORMED, parse("GET  HTTP/1.1\r\n\r\n"));        /* empty target */
    CHECK_INT(HTTP_MALFORMED, parse("GET /a b HTTP/1.1\r\n\r\n"));    /* space in target */
    CHECK_INT(HTTP_MALFORMED, parse("GET /\x7f HTTP/1.1\r\n\r\n"));   /* DEL in target */
    CHECK_INT(HTTP_MALFORMED, parse("GET /\x80 HTTP/1.1\r\n\r\n"));   /* non-ASCII in target */
    CHECK_INT(HTTP_MALFORMED, parse("GET /\t HTTP/1.1\r\n\r\n"));     /* control in target */
    CHECK_INT(HTTP_MALFORMED, parse("GET\r\n\r\n"));
}

TEST(rejects_a_head_without_request_line) {
    CHECK_INT(HTTP_MALFORMED, parse("\r\n\r\n"));
    CHECK_INT(HTTP_MALFORMED, parse("\r\nGET / HTTP/1.1\r\n\r\n"));
}

TEST(rejects_nul_in_request_line) {
    const char s[] = "GET /a\0b HTTP/1.1\r\n\r\n";
    CHECK_INT(HTTP_MALFORMED, parse_n(s, sizeof s - 1));
}

/* ---- line endings ---- */

TEST(rejects_bare_lf_line_endings) {
    CHECK_INT(HTTP_MALFORMED, parse("GET / HTTP/1.1\nHost: x\r\n\r\n"));
    CHECK_INT(HTTP_MALFORMED, parse("GET / HTTP/1.1\r\nHost: x\nA: b\r\n\r\n"));
    CHECK_INT(HTTP_MALFORMED, parse("GET / HTTP/1.1\r\n\nA: b\r\n\r\n"));
}

TEST(rejects_stray_cr) {
    CHECK_INT(HTTP_MALFORMED, parse("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"));
    CHECK_INT(HTTP_MALFORMED, parse("GET / HTTP/1.1\r\r\nHost: a\r\n\r\n"));
    CHECK_INT(HTTP_MALFORMED, parse("GET /\r HTTP/1.1\r\n\r\n"));
}

TEST(every_strict_prefix_of_a_valid_head_is_incomplete) {
    const char *s = "GET /socket.io/?EIO=4 HTTP/1.1\r\nHost: example\r\nUpgrade: websocket\r\n\r\n";
    size_t n = strlen(s);
    int all_incomplete = 1;
    for (size_t i = 0; i < n; i++) {
        long rc = parse_n(s, i);
        if (rc != HTTP_INCOMPLETE) {
            CHECK_INT(HTTP_INCOMPLETE, rc);
            fprintf(stderr, "    (prefix of %zu bytes)\n", i);
            all_incomplete = 0;
        }
    }
    CHECK(all_incomplete);
    CHECK_INT((long)n, parse_n(s, n));
}

TEST(rejects_a_non_token_first_byte_before_the_head_is_complete) {
    CHECK_INT(HTTP_MALFORMED, parse("\x16\x03\x01\x02\x00")); /* a TLS ClientHello */
    CHECK_INT(HTTP_MALFORMED, parse("\r\n"));
    CHECK_INT(HTTP_MALFORMED, parse(" GET"));
    CHECK_INT(HTTP_INCOMPLETE, parse("G"));
    CHECK_INT(HTTP_INCOMPLETE, parse_n("", 0));
}

/* ---- headers ---- */

TEST(parses_headers_in_order) {
    CHECK(parse("GET / HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\n\r\n") > 0);
    CHECK_UINT(3, req.n_headers);
    CHECK_SLICE("Host", req.headers[0].name);
    CHECK_SLICE("example.com", req.headers[0].value);
    CHECK_SLICE("Upgrade", req.headers[1].name);
    CHECK_SLICE("websocket", req.headers[1].value);
    CHECK_SLICE("Connection", req.headers[2].name);
    CHECK_SLICE("Upgrade", req.headers[2].value);
}

TEST(trims_whitespace_around_header_values) {
    CHECK(parse("GET / HTTP/1.1\r\nA:x\r\nB: \t y z \t \r\nC:\r\nD:   \r\n\r\n") > 0);
    CHECK_UINT(4, req.n_headers);
    CHECK_SLICE("x", req.headers[0].value);
    CHECK_SLICE("y z", req.headers[1].value);
    CHECK_SLICE("", req.headers[2].value);
    CHECK_SLICE("", req.headers[3].value);
}

TEST(accepts_obs_text_and_tabs_inside_values) {
    CHECK(parse("GET / HTTP/1.1\r\nX-Name: caf\xc3\xa9\tok\r\n\r\n") > 0);
    CHECK_SLICE("caf\xc3\xa9\tok", req.headers[0].value);
}

TEST(rejects_control_characters_in_values) {
    CHECK_INT(HTTP_MALFORMED, parse("GET / HTTP/1.1\r\nA: b\x01" "c\r\n\r\n"));
    CHECK_INT(HTTP_MALFORMED, parse("GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n"));
    const char nul[] = "GET / HTTP/1.1\r\nA: b\0c\r\n\r\n";
    CHECK_INT(HTTP_MALFORMED, parse_n(nul, sizeof nul - 1));
}

TEST(rejects_bad_header_names) {
    CHECK_INT(HTTP_MALFORMED, parse("GET / HTTP/1.1\r\nHost : x\r\n\r\n")); /* space before colon */
    CHECK_INT(HTTP_MALFORMED, parse("GET / HTTP/1.1\r\n: x\r\n\r\n"));      /* empty name */
    CHECK_INT(HTTP_MALFORMED, parse("GET / HTTP/1.1\r\nNoColon\r\n\r\n"));
    CHECK_INT(HTTP_MALFORMED, parse("GET / HTTP/1.1\r\nA(b: x\r\n\r\n"));
    CHECK_INT(HTTP_MALFORMED, parse("GET / HTTP/1.1\r\nA\xc3\xa9: x\r\n\r\n"));
}

TEST(rejects_obs_fold_continuation_lines) {
    CHECK_INT(HTTP_MALFORMED, parse("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n"));
    CHECK_INT(HTTP_MALFORMED, parse("GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n"));
}

TEST(header_get_is_case_insensitive_and_first_wins) {
    CHECK(parse("GET / HTTP/1.1\r\nsec-websocket-key: one\r\nSEC-WEBSOCKET-KEY: two\r\n\r\n") > 0);
    const struct slice *v = http_header_get(&req, "Sec-WebSocket-Key");
    CHECK(v != NULL);
    if (v) CHECK_SLICE("one", *v);
    CHECK(http_header_get(&req, "Sec-WebSocket-Ke") == NULL);
    CHECK(http_header_get(&req, "Sec-WebSocket-Keys") == NULL);
    CHECK(http_header_get(&req, "Host") == NULL);
}

static char *many_headers(int n) {
    char *s = malloc(64 + (size_t)n * 16);
    size_t len = (size_t)sprintf(s, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < n; i++) len += (size_t)sprintf(s + len, "H%d: v\r\n", i);
    sprintf(s + len, "\r\n");
    return s;
}

TEST(accepts_64_headers_and_refuses_65) {
    char *s = many_headers(HTTP_MAX_HEADERS);
    CHECK_INT((long)strlen(s), parse(s));
    CHECK_UINT(HTTP_MAX_HEADERS, req.n_headers);
    CHECK_SLICE("H63", req.headers[63].name);
    free(s);
    s = many_headers(HTTP_MAX_HEADERS + 1);
    CHECK_INT(HTTP_HEAD_TOO_LARGE, parse(s));
    free(s);
}

/* A complete head of exactly total bytes: the request line, one header
 * padded to size, the blank line. */
static char *head_of_size(size_t total) {
    char *s = malloc(total + 1);
    const char *start = "GET / HTTP/1.1\r\nX: ";
    size_t sl = strlen(start);
    memcpy(s, start, sl);
    memset(s + sl, 'a', total - sl - 4);
    memcpy(s + total - 4, "\r\n\r\n", 5);
    return s;
}

TEST(accepts_a_head_of_exactly_8_KiB) {
    char *s = head_of_size(HTTP_MAX_HEAD_BYTES);
    CHECK_INT(HTTP_MAX_HEAD_BYTES, parse(s));
    free(s);
}

TEST(refuses_a_complete_head_one_byte_over_8_KiB) {
    char *s = head_of_size(HTTP_MAX_HEAD_BYTES + 1);
    CHECK_INT(HTTP_HEAD_TOO_LARGE, parse(s));
    free(s);
}

TEST(refuses_an_unterminated_head_at_8_KiB) {
    char *s = head_of_size(HTTP_MAX_HEAD_BYTES + 100);
    CHECK_INT(HTTP_INCOMPLETE, parse_n(s, HTTP_MAX_HEAD_BYTES - 1));
    CHECK_INT(HTTP_HEAD_TOO_LARGE, parse_n(s, HTTP_MAX_HEAD_BYTES));
    CHECK_INT(HTTP_HEAD_TOO_LARGE, parse_n(s, HTTP_MAX_HEAD_BYTES + 50));
    free(s);
}

/* ---- tokens ---- */

static int has_token(const char *value, const char *token) {
    return http_value_has_token((struct slice){value, strlen(value)}, token);
}

TEST(value_has_token_finds_listed_tokens_ignoring_case) {
    CHECK_INT(1, has_token("Upgrade", "upgrade"));
    CHECK_INT(1, has_token("keep-alive, Upgrade", "upgrade"));
    CHECK_INT(1, has_token("keep-alive,upgrade", "Upgrade"));
    CHECK_INT(1, has_token("\tkeep-alive \t,\t UPGRADE \t", "upgrade"));
    CHECK_INT(1, has_token(",, ,upgrade,,", "upgrade"));
}

TEST(value_has_token_matches_whole_tokens_only) {
    CHECK_INT(0, has_token("Upgrade2", "upgrade"));
    CHECK_INT(0, has_token("Upgrad", "upgrade"));
    CHECK_INT(0, has_token("keep-alive upgrade", "upgrade"));
    CHECK_INT(0, has_token("", "upgrade"));
    CHECK_INT(0, has_token("close", "upgrade"));
}

TEST(slice_compare_helpers) {
    struct slice s = {"WebSocket", 9};
    CHECK_INT(1, slice_eq_nocase(s, "websocket"));
    CHECK_INT(0, slice_eq(s, "websocket"));
    CHECK_INT(1, slice_eq(s, "WebSocket"));
    CHECK_INT(0, slice_eq_nocase(s, "websockets"));
    CHECK_INT(0, slice_eq_nocase((struct slice){"websock", 7}, "websocket"));
}

/* ---- query strings ---- */

static int query(const char *q, const char *key, struct slice *v) {
    return http_query_get((struct slice){q, strlen(q)}, key, v);
}

TEST(query_get_finds_values) {
    struct slice v;
    CHECK_INT(1, query("EIO=4&transport=polling&t=abc", "EIO", &v));
    CHECK_SLICE("4", v);
    CHECK_INT(1, query("EIO=4&transport=polling&t=abc", "transport", &v));
    CHECK_SLICE("polling", v);
    CHECK_INT(1, query("EIO=4&transport=polling&t=abc", "t", &v));
    CHECK_SLICE("abc", v);
}

TEST(query_get_returns_the_first_of_repeated_keys) {
    struct slice v;
    CHECK_INT(1, query("a=1&a=2", "a", &v));
    CHECK_SLICE("1", v);
}

TEST(query_get_matches_whole_keys_only) {
    struct slice v;
    CHECK_INT(0, query("EIOX=4&XEIO=3", "EIO", &v));
    CHECK_INT(0, query("sid", "si", &v));
    CHECK_INT(0, query("", "a", &v));
    CHECK_INT(0, query("a=1", "", &v));
}

TEST(query_get_handles_missing_and_empty_values) {
    struct slice v = {"junk", 4};
    CHECK_INT(1, query("a&b=2", "a", &v));
    CHECK_SLICE("", v);
    CHECK_INT(1, query("a=&b=2", "a", &v));
    CHECK_SLICE("", v);
    CHECK_INT(1, query("a=1&&b=2", "b", &v));
    CHECK_SLICE("2", v);
    CHECK_INT(1, query("x=a=b", "x", &v));
    CHECK_SLICE("a=b", v);
}

TEST(query_get_returns_the_raw_encoded_value) {
    struct slice v;
    CHECK_INT(1, query("name=J%C3%BCrgen%20K", "name", &v));
    CHECK_SLICE("J%C3%BCrgen%20K", v);
}

/* ---- percent-decoding ---- */

static long pdec(const char *s, char *out, size_t cap) {
    return http_percent_decode((struct slice){s, strlen(s)}, out, cap);
}

TEST(percent_decode_decodes_escapes) {
    char out[64];
    CHECK_INT(2, pdec("%41%42", out, sizeof out));
    CHECK_MEMN("AB", 2, out, 2);
    CHECK_INT(3, pdec("%4a%4B%7e", out, sizeof out));
    CHECK_MEMN("JK~", 3, out, 3);
    CHECK_INT(9, pdec("J%C3%BCrgen%20K", out, sizeof out));
    CHECK_MEMN("J\xc3\xbcrgen K", 9, out, 9);
}

TEST(percent_decode_keeps_plus_and_plain_bytes) {
    char out[64];
    CHECK_INT(5, pdec("a+b c", out, sizeof out));
    CHECK_MEMN("a+b c", 5, out, 5);
    CHECK_INT(0, pdec("", out, sizeof out));
}

TEST(percent_decode_decodes_nul) {
    char out[8];
    CHECK_INT(3, pdec("a%00b", out, sizeof out));
    CHECK_MEMN("a\0b", 3, out, 3);
}

TEST(percent_decode_rejects_bad_escapes) {
    char out[64];
    CHECK_INT(-1, pdec("%", out, sizeof out));
    CHECK_INT(-1, pdec("%4", out, sizeof out));
    CHECK_INT(-1, pdec("ab%4", out, sizeof out));
    CHECK_INT(-1, pdec("%G1", out, sizeof out));
    CHECK_INT(-1, pdec("%1G", out, sizeof out));
    CHECK_INT(-1, pdec("%%41", out, sizeof out));
    CHECK_INT(-1, pdec("% 41", out, sizeof out));
}

TEST(percent_decode_respects_capacity) {
    char out[4] = {0};
    CHECK_INT(3, pdec("a%41c", out, 3));
    CHECK_INT(-1, pdec("a%41cd", out, 3));
    CHECK_INT(-1, pdec("x", out, 0));
    CHECK_INT(0, pdec("", out, 0));
    char guard[8] = "zzzzzzz";
    CHECK_INT(-1, pdec("%41%41%41%41", guard, 3));
    CHECK_INT('z', guard[3]); /* nothing written past cap */
}

TEST(percent_decode_does_not_read_past_the_slice) {
    /* "%4" followed by a valid hex digit that is not part of the slice. */
    char out[8];
    CHECK_INT(-1, http_percent_decode((struct slice){"%41", 2}, out, sizeof out));
    CHECK_INT(-1, http_percent_decode((struct slice){"%41", 1}, out, sizeof out));
}

/* ---- response heads ---- */

TEST(format_head_writes_exact_bytes) {
    char out[256];
    size_t n = http_format_head(out, sizeof out, 200, "text/plain; charset=UTF-8", 2, NULL, 1);
    CHECK_MEM("HTTP/1.1 200 OK\r\n"
              "Content-Type: text/plain; charset=UTF-8\r\n"
              "Content-Length: 2\r\n"
              "Connection: keep-alive\r\n"
              "\r\n",
              out, n);
}

TEST(format_head_without_content_type_with_extra_headers) {
    char out[256];
    size_t n = http_format_head(out, sizeof out, 400, NULL, 0, "X-A: 1\r\nX-B: 2\r\n", 0);
    CHECK_MEM("HTTP/1.1 400 Bad Request\r\n"
              "Content-Length: 0\r\n"
              "Connection: close\r\n"
              "X-A: 1\r\nX-B: 2\r\n"
              "\r\n",
              out, n);
}

TEST(format_head_returns_zero_when_it_does_not_fit) {
    char out[256];
    size_t full = http_format_head(out, sizeof out, 404, NULL, 9, NULL, 0);
    CHECK(full > 0);
    CHECK_UINT(0, http_format_head(out, full, 404, NULL, 9, NULL, 0)); /* no room for the NUL */
    CHECK_UINT(full, http_format_head(out, full + 1, 404, NULL, 9, NULL, 0));
    CHECK_UINT(0, http_format_head(out, 10, 404, NULL, 9, NULL, 0));
}

/* ---- body framing (RFC 9112 §6.3): what could smuggle a request ---- */

/* The body length of a request with these header lines. */
static long long blen(const char *headers, long long max) {
    static char buf[1024];
    snprintf(buf, sizeof buf, "POST /x HTTP/1.1\r\nHost: h\r\n%s\r\n", headers);
    CHECK(parse(buf) > 0);
    return http_body_length(&req, max);
}

TEST(body_length_from_one_content_length) {
    CHECK_INT(0, blen("", 100));
    CHECK_INT(0, blen("Content-Length: 0\r\n", 100));
    CHECK_INT(7, blen("Content-Length: 7\r\n", 100));
    CHECK_INT(7, blen("content-length:007\r\n", 100)); /* leading zeros are still 1*DIGIT */
    CHECK_INT(100, blen("Content-Length: 100\r\n", 100));
}

TEST(body_length_over_max_is_too_large) {
    CHECK_INT(HTTP_BODY_TOO_LARGE, blen("Content-Length: 101\r\n", 100));
    CHECK_INT(HTTP_BODY_TOO_LARGE, blen("Content-Length: 99999999999999999999999999999999\r\n", 100));
}

TEST(body_length_refuses_two_different_content_lengths) {
    CHECK_INT(HTTP_BODY_BAD, blen("Content-Length: 0\r\nContent-Length: 40\r\n", 100));
    CHECK_INT(HTTP_BODY_BAD, blen("Content-Length: 40\r\ncontent-length: 0\r\n", 100));
    CHECK_INT(HTTP_BODY_BAD, blen("Content-Length: 5, 6\r\n", 100));
    CHECK_INT(HTTP_BODY_BAD, blen("Content-Length: 5\r\nX: y\r\nContent-Length: 5, 7\r\n", 100));
    /* Differing is refused even when one of them is too large. */
    CHECK_INT(HTTP_BODY_BAD, blen("Content-Length: 5\r\nContent-Length: 500\r\n", 100));
}

TEST(body_length_collapses_identical_content_lengths) {
    CHECK_INT(5, blen("Content-Length: 5\r\nContent-Length: 5\r\n", 100));
    CHECK_INT(5, blen("Content-Length: 5, 5\r\n", 100));
    CHECK_INT(5, blen("Content-Length: 5,5\r\nContent-Length: 05\r\n", 100));
}

TEST(body_length_refuses_content_length_that_is_not_digits) {
    CHECK_INT(HTTP_BODY_BAD, blen("Content-Length: +5\r\n", 100));
    CHECK_INT(HTTP_BODY_BAD, blen("Content-Length: -5\r\n", 100));
    CHECK_INT(HTTP_BODY_BAD, blen("Content-Length: 1 2\r\n", 100));
    CHECK_INT(HTTP_BODY_BAD, blen("Content-Length: 1\t2\r\n", 100));
    CHECK_INT(HTTP_BODY_BAD, blen("Content-Length: 5x\r\n", 100));
    CHECK_INT(HTTP_BODY_BAD, blen("Content-Length: 0x10\r\n", 100));
    CHECK_INT(HTTP_BODY_BAD, blen("Content-Length: 1e2\r\n", 100));
    CHECK_INT(HTTP_BODY_BAD, blen("Content-Length: \r\n", 100));
    CHECK_INT(HTTP_BODY_BAD, blen("Content-Length: 5,\r\n", 100));
    CHECK_INT(HTTP_BODY_BAD, blen("Content-Length: ,5\r\n", 100));
    CHECK_INT(HTTP_BODY_BAD, blen("Content-Length: 5\r\nContent-Length: x\r\n", 100));
    /* Not digits wins over too large: the framing is unknown. */
    CHECK_INT(HTTP_BODY_BAD, blen("Content-Length: 500\r\nContent-Length: 500x\r\n", 100));
}

TEST(body_length_refuses_transfer_encoding_with_content_length) {
    CHECK_INT(HTTP_BODY_BAD, blen("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", 100));
    CHECK_INT(HTTP_BODY_BAD, blen("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 100));
    CHECK_INT(HTTP_BODY_BAD, blen("Transfer-Encoding: chunked\r\nContent-Length: x\r\n", 100));
}

TEST(body_length_chunked_alone_is_unsupported) {
    CHECK_INT(HTTP_BODY_UNSUPPORTED, blen("Transfer-Encoding: chunked\r\n", 100));
    CHECK_INT(HTTP_BODY_UNSUPPORTED, blen("Transfer-Encoding: gzip, Chunked\r\n", 100));
    CHECK_INT(HTTP_BODY_UNSUPPORTED, blen("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", 100));
}

TEST(body_length_refuses_transfer_encoding_not_ending_in_chunked) {
    CHECK_INT(HTTP_BODY_BAD, blen("Transfer-Encoding: gzip\r\n", 100));
    CHECK_INT(HTTP_BODY_BAD, blen("Transfer-Encoding: chunked, gzip\r\n", 100));
    CHECK_INT(HTTP_BODY_BAD, blen("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", 100));
    CHECK_INT(HTTP_BODY_BAD, blen("Transfer-Encoding: xchunked\r\n", 100));
    CHECK_INT(HTTP_BODY_BAD, blen("Transfer-Encoding:\r\n", 100));
}

TEST(body_length_refuses_transfer_encoding_in_http_1_0) {
    const char *s = "POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
    CHECK(parse(s) > 0);
    CHECK_INT(HTTP_BODY_BAD, http_body_length(&req, 100));
}

TEST(status_text_covers_the_codes_used) {
    CHECK_STR("Switching Protocols", http_status_text(101));
    CHECK_STR("Request Header Fields Too Large", http_status_text(431));
    CHECK_STR("Service Unavailable", http_status_text(503));
    CHECK_STR("Unknown", http_status_text(299));
}

int main(void) {
    RUN(parses_minimal_get_request);
    RUN(slices_point_into_the_input);
    RUN(returns_head_length_without_the_body);
    RUN(parses_pipelined_requests_one_at_a_time);
    RUN(splits_target_into_path_and_query);
    RUN(query_is_empty_after_a_bare_question_mark);
    RUN(query_keeps_later_question_marks);
    RUN(accepts_http_1_0);
    RUN(accepts_any_token_method);
    RUN(rejects_other_http_versions);
    RUN(rejects_malformed_request_lines);
    RUN(rejects_a_head_without_request_line);
    RUN(rejects_nul_in_request_line);
    RUN(rejects_bare_lf_line_endings);
    RUN(rejects_stray_cr);
    RUN(every_strict_prefix_of_a_valid_head_is_incomplete);
    RUN(rejects_a_non_token_first_byte_before_the_head_is_complete);
    RUN(parses_headers_in_order);
    RUN(trims_whitespace_around_header_values);
    RUN(accepts_obs_text_and_tabs_inside_values);
    RUN(rejects_control_characters_in_values);
    RUN(rejects_bad_header_names);
    RUN(rejects_obs_fold_continuation_lines);
    RUN(header_get_is_case_insensitive_and_first_wins);
    RUN(accepts_64_headers_and_refuses_65);
    RUN(accepts_a_head_of_exactly_8_KiB);
    RUN(refuses_a_complete_head_one_byte_over_8_KiB);
    RUN(refuses_an_unterminated_head_at_8_KiB);
    RUN(value_has_token_finds_listed_tokens_ignoring_case);
    RUN(value_has_token_matches_whole_tokens_only);
    RUN(slice_compare_helpers);
    RUN(query_get_finds_values);
    RUN(query_get_returns_the_first_of_repeated_keys);
    RUN(query_get_matches_whole_keys_only);
    RUN(query_get_handles_missing_and_empty_values);
    RUN(query_get_returns_the_raw_encoded_value);
    RUN(percent_decode_decodes_escapes);
    RUN(percent_decode_keeps_plus_and_plain_bytes);
    RUN(percent_decode_decodes_nul);
    RUN(percent_decode_rejects_bad_escapes);
    RUN(percent_decode_respects_capacity);
    RUN(percent_decode_does_not_read_past_the_slice);
    RUN(format_head_writes_exact_bytes);
    RUN(format_head_without_content_type_with_extra_headers);
    RUN(format_head_returns_zero_when_it_does_not_fit);
    RUN(body_length_from_one_content_length);
    RUN(body_length_over_max_is_too_large);
    RUN(body_length_refuses_two_different_content_lengths);
    RUN(body_length_collapses_identical_content_lengths);
    RUN(body_length_refuses_content_length_that_is_not_digits);
    RUN(body_length_refuses_transfer_encoding_with_content_length);
    RUN(body_length_chunked_alone_is_unsupported);
    RUN(body_length_refuses_transfer_encoding_not_ending_in_chunked);
    RUN(body_length_refuses_transfer_encoding_in_http_1_0);
    RUN(status_text_covers_the_codes_used);
    return check_finish("test_http");
}
