/* filecheck: what a sent file is, from its bytes and its name. Pure. */
#ifndef SPACE_FILECHECK_H
#define SPACE_FILECHECK_H

#include <stddef.h>

/* The MIME type the content's magic bytes say: image/png, image/jpeg,
 * image/gif, image/webp, application/pdf, or text/plain (valid UTF-8
 * without NUL); NULL when none of these. */
const char *filecheck_sniff(const void *data, size_t len);

/* NULL when name is a valid base name of at most max_bytes bytes (valid
 * UTF-8, no '/', '\', control characters, not "." or "..", no ".." in it);
 * else the reason. */
const char *filecheck_name(const char *name, size_t len, size_t max_bytes);

#endif
