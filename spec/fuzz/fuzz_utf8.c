/* libFuzzer target: utf8_valid against a slow reference that decodes code
 * points one by one and applies RFC 3629 (no overlongs, no surrogates,
 * nothing above U+10FFFF), on the whole input and on every suffix that
 * starts within the first 16 bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "utf8.h"

static int ref_valid(const uint8_t *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint32_t c = p[i], cp;
        size_t len;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC0 && c < 0xE0) len = 2, cp = c & 0x1F;
        else if (c >= 0xE0 && c < 0xF0) len = 3, cp = c & 0x0F;
        else if (c >= 0xF0 && c < 0xF8) len = 4, cp = c & 0x07;
        else return 0; /* a continuation byte, or 0xF8..0xFF */
        if (n - i < len) return 0;
        for (size_t k = 1; k < len; k++) {
            if (p[i + k] < 0x80 || p[i + k] > 0xBF) return 0;
            cp = (cp << 6) | (p[i + k] & 0x3Fu);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
            return 0;
        if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
        if (cp > 0x10FFFF) return 0;
        i += len;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (size_t start = 0; start <= size && start < 16; start++) {
        int got = utf8_valid(data + start, size - start), want = ref_valid(data + start, size - start);
        if (got != want) {
            fprintf(stderr, "fuzz_utf8: utf8_valid=%d, reference=%d at offset %zu:", got, want, start);
            for (size_t i = start; i < size && i < start + 32; i++) fprintf(stderr, " %02X", data[i]);
            fputc('\n', stderr);
            abort();
        }
    }
    return 0;
}
