#include "filecheck.h"

#include <string.h>

#include "utf8.h"

static int starts(const unsigned char *p, size_t len, const void *magic, size_t n) {
    return len >= n && memcmp(p, magic, n) == 0;
}

const char *filecheck_sniff(const void *data, size_t len) {
    const unsigned char *p = data;
    if (starts(p, len, "\x89PNG\r\n\x1a\n", 8)) return "image/png";
    if (starts(p, len, "\xff\xd8\xff", 3)) return "image/jpeg";
    if (starts(p, len, "GIF87a", 6) || starts(p, len, "GIF89a", 6)) return "image/gif";
    if (len >= 12 && starts(p, len, "RIFF", 4) && memcmp(p + 8, "WEBP", 4) == 0) return "image/webp";
    if (starts(p, len, "%PDF-", 5)) return "application/pdf";
    if (!memchr(p, 0, len) && utf8_valid(p, len)) return "text/plain";
    return NULL;
}

const char *filecheck_name(const char *name, size_t len, size_t max_bytes) {
    if (len == 0) return "the name is empty";
    if (len > max_bytes) return "the name is too long";
    if (!utf8_valid(name, len)) return "the name is not valid UTF-8";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f) return "the name has a control character";
        if (c == '/' || c == '\\') return "the name must be a base name, without '/' or '\\'";
        /* C1 controls (U+0080..U+009F) are two bytes in UTF-8: C2 80..9F. */
        if (c == 0xc2 && i + 1 < len && (unsigned char)name[i + 1] <= 0x9f) return "the name has a control character";
    }
    for (size_t i = 0; i + 1 < len; i++)
        if (name[i] == '.' && name[i + 1] == '.') return "the name must not contain '..'";
    if (len == 1 && name[0] == '.') return "the name must not be '.'";
    return NULL;
}
