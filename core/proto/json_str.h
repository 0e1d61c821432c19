/* json_str: writing JSON strings from C (escapes quotes, backslashes and
 * every control character, so 0x1E never appears raw). Pure. */
#ifndef SPACE_JSON_STR_H
#define SPACE_JSON_STR_H

#include <stddef.h>

#include "sbuf.h"

/* Appends s (len bytes, UTF-8) as a quoted JSON string; 0 or -1 on OOM. */
int json_append_string(struct sbuf *out, const char *s, size_t len);

#endif
