#include "utf8.h"

#include <stdint.h>
#include <string.h>

int utf8_valid(const void *s, size_t len) {
    const uint8_t *p = s, *end = p + len;
    while (p < end) {
        /* ASCII eight bytes at a time: a text message is mostly ASCII (an
         * upload's base64 all of it), checked as it arrives on the loop. */
        while (end - p >= 8) {
            uint64_t v;
            memcpy(&v, p, 8);
            if (v & 0x8080808080808080ull) break;
            p += 8;
        }
        if (p == end) break;
        uint8_t c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t n;
        uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) n = 1;
        else if (c == 0xE0) n = 2, lo = 0xA0;
        else if (c >= 0xE1 && c <= 0xEC) n = 2;
        else if (c == 0xED) n = 2, hi = 0x9F; /* no UTF-16 surrogates */
        else if (c >= 0xEE && c <= 0xEF) n = 2;
        else if (c == 0xF0) n = 3, lo = 0x90;
        else if (c >= 0xF1 && c <= 0xF3) n = 3;
        else if (c == 0xF4) n = 3, hi = 0x8F;
        else return 0;
        if ((size_t)(end - p) <= n) return 0;
        if (p[1] < lo || p[1] > hi) return 0;
        for (size_t i = 2; i <= n; i++)
            if ((p[i] & 0xC0) != 0x80) return 0;
        p += n + 1;
    }
    return 1;
}
