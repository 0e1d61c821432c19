/* utf8: strict UTF-8 validation (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF). Pure. */
#ifndef SPACE_UTF8_H
#define SPACE_UTF8_H

#include <stddef.h>

/* 1 when the len bytes at s are valid UTF-8. */
int utf8_valid(const void *s, size_t len);

#endif
