/* libFuzzer target: eio_packet_decode, and the polling payload splitter
 * eio_payload_next feeding it. Checks: decode succeeds exactly for a
 * non-empty packet whose first byte is 0-6 or 'b', with the type and the
 * rest of the bytes as data; the payload splitter yields count(0x1E) + 1
 * packets, none holding 0x1E, that joined with 0x1E give the input back. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eio_packet.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "fuzz_eio_packet: " __VA_ARGS__);                                          \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

static void check_decode(const char *p, size_t len) {
    struct eio_packet pkt;
    memset(&pkt, 0x5A, sizeof pkt);
    int rc = eio_packet_decode(p, len, &pkt);
    int want = len > 0 && ((p[0] >= '0' && p[0] <= '6') || p[0] == 'b');
    if (rc != (want ? 0 : -1)) FAIL("decode returned %d for first byte %02x (len %zu)", rc, len ? (unsigned char)p[0] : 0, len);
    if (!want) return;
    int type = p[0] == 'b' ? EIO_BASE64 : p[0] - '0';
    if ((int)pkt.type != type) FAIL("type %d, want %d", (int)pkt.type, type);
    if (pkt.data.p != p + 1 || pkt.data.len != len - 1) FAIL("data is not the rest");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *d = (const char *)data;
    check_decode(d, size);

    /* As a polling payload. */
    size_t seps = 0;
    for (size_t i = 0; i < size; i++) seps += data[i] == 0x1e;
    size_t pos = 0, n = 0, rebuilt = 0;
    struct slice s;
    char *copy = malloc(size + 1);
    while (eio_payload_next(d, size, &pos, &s)) {
        if (++n > seps + 1) FAIL("more packets than separators + 1");
        if (s.p < d || s.p + s.len > d + size) FAIL("packet outside the payload");
        if (memchr(s.p, 0x1e, s.len)) FAIL("packet holds a separator");
        if (n > 1) copy[rebuilt++] = 0x1e;
        memcpy(copy + rebuilt, s.p, s.len);
        rebuilt += s.len;
        check_decode(s.p, s.len);
    }
    if (n != seps + 1) FAIL("%zu packets for %zu separators", n, seps);
    if (rebuilt != size || (size && memcmp(copy, d, size) != 0)) FAIL("packets do not rebuild the payload");
    free(copy);
    return 0;
}
