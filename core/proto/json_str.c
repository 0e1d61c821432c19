#include "json_str.h"

int json_append_string(struct sbuf *out, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    if (sbuf_putc(out, '"')) return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int rc;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            rc = sbuf_append(out, esc, 2);
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            rc = sbuf_append(out, esc, 6);
        } else {
            rc = sbuf_putc(out, (char)c);
        }
        if (rc) return -1;
    }
    return sbuf_putc(out, '"');
}
