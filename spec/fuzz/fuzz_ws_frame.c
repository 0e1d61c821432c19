/* libFuzzer target: ws_frame_head_parse and ws_unmask, the client frame
 * headers the WebSocket transport reads itself. Checked against a
 * reference written straight from RFC 6455 §5.2 (bit by bit, lengths in
 * their shortest form), at every prefix of the input; unmask against the
 * byte-wise definition, in place and not. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws_codec.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "fuzz_ws_frame: " __VA_ARGS__);                                            \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

/* The reference: header length, 0 for "more bytes", -1 for a protocol error. */
static long ref_parse(const uint8_t *p, size_t n, int *fin, int *rsv, int *op, int *masked, uint64_t *len,
                      uint8_t mask[4]) {
    if (n < 2) return 0;
    *fin = (p[0] & 0x80) != 0;
    *rsv = (p[0] & 0x70) >> 4;
    *op = p[0] & 0x0f;
    *masked = (p[1] & 0x80) != 0;
    unsigned small = p[1] & 0x7f;
    size_t ext = small == 126 ? 2 : small == 127 ? 8 : 0;
    if (n < 2 + ext) return 0;
    uint64_t v = small;
    if (ext) {
        v = 0;
        for (size_t i = 0; i < ext; i++) v = v * 256 + p[2 + i];
        if (ext == 2 && v < 126) return -1;
        if (ext == 8 && (v <= 65535 || v > INT64_MAX)) return -1;
    }
    size_t hl = 2 + ext + (*masked ? 4 : 0);
    if (n < hl) return 0;
    for (int i = 0; i < 4; i++) mask[i] = *masked ? p[2 + ext + (size_t)i] : 0;
    *len = v;
    return (long)hl;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (size_t n = 0; n <= size && n <= 16; n++) {
        struct ws_frame_head h;
        int fin = 0, rsv = 0, op = 0, masked = 0;
        uint64_t len = 0;
        uint8_t mask[4] = {0};
        long got = ws_frame_head_parse(data, n, &h);
        long want = ref_parse(data, n, &fin, &rsv, &op, &masked, &len, mask);
        if (got != want) FAIL("prefix %zu: header length %ld, the reference says %ld", n, got, want);
        if (got <= 0) continue;
        if (h.fin != fin || h.rsv != rsv || h.opcode != op || h.masked != masked || h.payload_len != len ||
            memcmp(h.mask, mask, 4) != 0)
            FAIL("prefix %zu: fields differ from the reference", n);
    }
    if (size >= 4) {
        const uint8_t *mask = data;
        size_t n = size - 4;
        uint8_t *out = malloc(n + 1), *ref = malloc(n + 1);
        for (size_t i = 0; i < n; i++) ref[i] = data[4 + i] ^ mask[i % 4];
        ws_unmask(out, data + 4, n, mask);
        if (memcmp(out, ref, n) != 0) FAIL("unmask of %zu bytes differs", n);
        memcpy(out, data + 4, n);
        ws_unmask(out, out, n, mask);
        if (memcmp(out, ref, n) != 0) FAIL("in-place unmask of %zu bytes differs", n);
        free(out);
        free(ref);
    }
    return 0;
}
