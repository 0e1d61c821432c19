/* libFuzzer target: base64_decode (the "b<base64>" binary packets of
 * Engine.IO polling, client-supplied) and base64_encode.
 *   - decode agrees with a slow reference (standard alphabet, padding
 *     required, '=' only as the last one or two characters; the unused low
 *     bits of the last character are not checked), and never writes more
 *     than len / 4 * 3 bytes (the buffer size callers allocate);
 *   - encoding the decoded bytes and decoding again gives the same bytes;
 *   - encoding the raw input gives 4 * ceil(n / 3) characters that decode
 *     back to the input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "fuzz_base64: " __VA_ARGS__);                                         \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

static int val(unsigned char c) {
    const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c ? strchr(tab, c) : NULL;
    return p ? (int)(p - tab) : -1;
}

static long ref_decode(uint8_t *out, const uint8_t *in, size_t len) {
    if (len % 4) return -1;
    size_t pad = 0;
    if (len >= 4 && in[len - 1] == '=') pad = in[len - 2] == '=' ? 2 : 1;
    size_t n = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < len - pad; i++) {
        int v = val(in[i]);
        if (v < 0) return -1;
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            out[n++] = (uint8_t)(acc >> 16), out[n++] = (uint8_t)(acc >> 8), out[n++] = (uint8_t)acc;
            acc = 0;
        }
    }
    if (pad == 1) acc <<= 6, out[n++] = (uint8_t)(acc >> 16), out[n++] = (uint8_t)(acc >> 8);
    if (pad == 2) acc <<= 12, out[n++] = (uint8_t)(acc >> 16);
    return (long)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *d = (const char *)data;
    size_t cap = size / 4 * 3;
    /* Exact-size buffers so ASan sees any write past what callers allocate. */
    uint8_t *got = malloc(cap ? cap : 1), *want = malloc(cap + 3);
    long gl = base64_decode(got, d, size);
    long wl = ref_decode(want, data, size);
    if (gl != wl) FAIL("decode returned %ld, reference %ld (len %zu)", gl, wl, size);
    if (gl > 0 && memcmp(got, want, (size_t)gl) != 0) FAIL("decoded bytes differ");
    if (gl >= 0) {
        size_t elen = 4 * (((size_t)gl + 2) / 3);
        char *enc = malloc(elen + 1);
        if (base64_encode(enc, got, (size_t)gl) != elen) FAIL("encode length");
        uint8_t *again = malloc(elen / 4 * 3 + 1);
        long al = base64_decode(again, enc, elen);
        if (al != gl || (gl && memcmp(again, got, (size_t)gl) != 0)) FAIL("re-encode round trip");
        free(again);
        free(enc);
    }
    /* The raw input encoded and decoded back. */
    size_t elen = 4 * ((size + 2) / 3);
    char *enc = malloc(elen ? elen : 1);
    if (base64_encode(enc, data, size) != elen) FAIL("encode length of raw input");
    uint8_t *back = malloc(elen / 4 * 3 + 1);
    long bl = base64_decode(back, enc, elen);
    if (bl != (long)size || (size && memcmp(back, data, size) != 0)) FAIL("raw round trip");
    free(back);
    free(enc);
    free(got);
    free(want);
    return 0;
}
