/* json_scan: strict JSON validation and a walk over one object's members,
 * without building values, for the C side's own small reads (JWT header
 * and claims, admin API bodies). Pure; slices point into the input. */
#ifndef SPACE_JSON_SCAN_H
#define SPACE_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

#define JSON_SCAN_MAX_DEPTH 64

/* The end offset of the one JSON value starting at pos (whitespace around
 * it skipped), or -1 when it is not valid JSON (RFC 8259, strings valid
 * UTF-8, depth at most JSON_SCAN_MAX_DEPTH). */
long json_scan_value(const char *p, size_t len, size_t pos);
/* 1 when the whole of p is one valid JSON value. */
int json_valid(const char *p, size_t len);
/* The end of the value at i in text known to be valid JSON (json_valid):
 * brackets counted, strings skipped, no recursion. */
size_t json_skip_valid_value(const char *p, size_t len, size_t i);

/* What json_check found wrong with a client's message, the worst first:
 * bad JSON is a protocol matter, the two limits refuse valid JSON. */
enum json_check_error {
    JSON_CHECK_OK = 0,
    JSON_CHECK_SYNTAX,       /* not JSON (RFC 8259; a byte order mark is not JSON) */
    JSON_CHECK_TRAILING,     /* one JSON value, then more than whitespace */
    JSON_CHECK_TOO_DEEP,     /* valid, but arrays and objects nest deeper than max_depth */
    JSON_CHECK_NUMBER_RANGE, /* valid, but a number is beyond the double range (1e400) */
};
/* Checks that the whole of p is one JSON value within the limits the Lua
 * decoder keeps (json_lua), at any depth and without recursion, so that
 * a client's message can be answered with the right cause. *at (may be
 * NULL) gets the byte offset of the problem. */
enum json_check_error json_check(const char *p, size_t len, unsigned max_depth, size_t *at);
/* The length a JSON string token (quotes included, known valid) has once
 * decoded (json_str_unescaped_len: as json_lua decodes it). */
size_t json_string_decoded_len(struct slice v);

/* One member of an object. type: 's' string, 'n' number, 'o' object,
 * 'a' array, 't' true, 'f' false, 'z' null. */
struct json_member {
    struct slice key;   /* raw, between the quotes (escapes not decoded) */
    struct slice value; /* the value's text (with quotes for strings) */
    char type;
};

/* Walks the members of the object that is the whole of p: start with
 * *pos = 0. Returns 1 with the next member, 0 at the end, -1 when p is not
 * a valid JSON object. */
int json_object_next(const char *p, size_t len, size_t *pos, struct json_member *m);
/* json_object_next for a p that json_check found valid, or over a limit
 * only (it is not checked again; values may nest at any depth). */
int json_object_next_valid(const char *p, size_t len, size_t *pos, struct json_member *m);
/* The member named key (raw compare) of the object p, or 0 when absent. */
int json_object_get(const char *p, size_t len, const char *key, struct json_member *m);

/* Decodes a string value (with its quotes) into out, NUL-terminated, as
 * json_lua decodes strings (json_str_unescape: surrogate pairs joined, a
 * lone surrogate as U+FFFD); returns its length, or -1 when it does not
 * fit, is not a string, or holds a NUL (\u0000), which C strings cannot. */
long json_string_value(struct slice v, char *out, size_t cap);
/* An integer number value (no fraction or exponent, fits int64); 0 or -1.
 * Numbers with a fraction are truncated when allow_fraction. */
int json_int_value(struct slice v, int64_t *out, int allow_fraction);

#endif
