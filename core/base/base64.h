/* base64: the standard alphabet, padded (RFC 4648 §4): Engine.IO's
 * "b<base64>" packets, uploads sent as text, JWT segments (after mapping
 * the URL-safe alphabet). */
#ifndef SPACE_BASE64_H
#define SPACE_BASE64_H

#include <stddef.h>

/* Base64 (standard alphabet, padded). out needs 4 * ((len + 2) / 3) bytes. */
size_t base64_encode(char *out, const void *in, size_t len);
/* The value (0-63) of a standard base64 character; -1 for any other byte. */
int base64_value(char c);
/* Decodes standard base64 (padding required); -1 when invalid. out needs
 * len / 4 * 3 bytes. */
long base64_decode(void *out, const char *in, size_t len);

#endif
