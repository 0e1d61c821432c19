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
/* The member named key (raw compare) of the object p, or 0 when absent. */
int json_object_get(const char *p, size_t len, const char *key, struct json_member *m);

/* Decodes a string value (with its quotes) into out, NUL-terminated;
 * returns its length, or -1 when it does not fit, is not a string, or
 * holds a NUL (\u0000), which C strings cannot. */
long json_string_value(struct slice v, char *out, size_t cap);
/* An integer number value (no fraction or exponent, fits int64); 0 or -1.
 * Numbers with a fraction are truncated when allow_fraction. */
int json_int_value(struct slice v, int64_t *out, int allow_fraction);

#endif
