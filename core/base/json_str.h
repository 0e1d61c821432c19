/* json_str: the server's one JSON string codec, both directions; every
 * JSON string the server reads or writes (json_scan, json_lua, the C
 * side's replies) goes through it. Pure.
 *
 * Writing: quotes, backslashes and control characters are escaped as
 * JavaScript's JSON.stringify escapes them (\" \\ \b \f \n \r \t, the
 * others \u00xx with lower-case hex), so U+001E (the polling payload
 * separator) never appears raw; everything else is written as it is.
 *
 * Reading (RFC 8259): no raw control character, only the eight short
 * escapes and \uXXXX, valid UTF-8 (utf8.h). A \uD800-\uDBFF escape followed
 * by a \uDC00-\uDFFF escape decodes to the one character they pair into,
 * as python-socketio sends non-ASCII (json.dumps escapes all of it); any
 * other surrogate escape (lone, or a low one first) decodes to U+FFFD,
 * since no UTF-8 can hold it (JSON.stringify sends a lone surrogate of a
 * JavaScript string so). \u0000 decodes to a NUL byte. */
#ifndef SPACE_JSON_STR_H
#define SPACE_JSON_STR_H

#include <stddef.h>

#include "sbuf.h"

/* What json_str_scan found wrong with a string. */
enum json_str_error {
    JSON_STR_OK = 0,
    JSON_STR_UNTERMINATED, /* no closing quote */
    JSON_STR_CONTROL,      /* a raw byte below 0x20 */
    JSON_STR_BAD_ESCAPE,   /* a backslash before anything but "\/bfnrtu */
    JSON_STR_BAD_U_ESCAPE, /* \u not followed by four hex digits */
    JSON_STR_NOT_UTF8,     /* the bytes are not UTF-8 */
};

/* The error's text, static (as the Lua decoder's messages give it). */
const char *json_str_error_text(enum json_str_error err);

/* Checks the string whose body starts at p (just after its opening
 * quote), within len bytes. Returns the offset of its closing quote, or -1
 * with *err set and *at (may be NULL) the offset of the problem.
 * *escapes (may be NULL) is set to 1 when the body holds an escape, else
 * 0 (then the body is the value as it is). */
long json_str_scan(const char *p, size_t len, int *escapes, enum json_str_error *err, size_t *at);

/* Decodes the body p (len bytes, no quotes) of a string json_str_scan
 * accepted into out and returns the decoded length, which is never more
 * than len (out needs no more room than json_str_unescaped_len). Never
 * reads past p + len, whatever the bytes. */
size_t json_str_unescape(const char *p, size_t len, char *out);
/* The length json_str_unescape gives for the same body. */
size_t json_str_unescaped_len(const char *p, size_t len);

/* Appends s (len bytes) as a quoted JSON string. Returns 0, -1 when memory
 * runs out, or JSON_STR_NOT_UTF8_RC when s is not UTF-8 (then out may hold
 * a partial string: the caller discards it). */
#define JSON_STR_NOT_UTF8_RC (-2)
int json_str_escape(struct sbuf *out, const char *s, size_t len);

/* Appends s as a quoted JSON string, for text the C side writes (error
 * messages, ids, room names): like json_str_escape, but a byte that is not
 * part of valid UTF-8 is written as \ufffd, so the output is always
 * valid JSON. 0, or -1 when memory runs out. */
int json_append_string(struct sbuf *out, const char *s, size_t len);

#endif
