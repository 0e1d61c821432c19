/* libFuzzer target: sio_packet_decode. On a valid packet it checks the
 * header's promises (type 0-6; attachments <= 10 and only on binary types;
 * nsp "/"-prefixed, <= 256 bytes, no comma; ack ids 0..10^15-1 where
 * allowed, present where required; DISCONNECT without payload; the JSON is
 * the rest of the input), then re-encodes the head with
 * sio_packet_encode_head, appends the JSON, decodes again and requires the
 * same packet.
 *
 * One input is ambiguous by construction and skipped for the round trip: an
 * explicit default namespace ("2/,..."), followed by JSON text that starts
 * with '/'. The encoder omits "/" so the JSON would be read as a namespace;
 * real JSON never starts with '/', and the JSON shape check refuses it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sio_packet.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "fuzz_sio_packet: " __VA_ARGS__);                                          \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

static int slice_same(struct slice a, struct slice b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static void check_packet(const char *d, size_t size, const struct sio_packet *p) {
    if ((int)p->type < 0 || p->type > SIO_BINARY_ACK) FAIL("type %d", (int)p->type);
    if (p->type != (enum sio_type)(d[0] - '0')) FAIL("type is not the first digit");
    int binary = p->type == SIO_BINARY_EVENT || p->type == SIO_BINARY_ACK;
    if (p->attachments > SIO_MAX_ATTACHMENTS) FAIL("attachments %u", p->attachments);
    if (!binary && p->attachments) FAIL("attachments on a text packet");
    if (p->nsp.len == 0 || p->nsp.p[0] != '/') FAIL("nsp does not start with '/'");
    if (p->nsp.len > SIO_MAX_NSP_BYTES) FAIL("nsp of %zu bytes", p->nsp.len);
    if (memchr(p->nsp.p, ',', p->nsp.len)) FAIL("comma in nsp");
    int inside = p->nsp.p >= d && p->nsp.p + p->nsp.len <= d + size;
    if (!inside && p->nsp.len != 1) FAIL("nsp outside the input"); /* only the default "/" may be */
    if (p->ack_id < -1 || p->ack_id > INT64_C(999999999999999)) FAIL("ack id %lld", (long long)p->ack_id);
    switch (p->type) {
    case SIO_CONNECT:
    case SIO_DISCONNECT:
    case SIO_CONNECT_ERROR:
        if (p->ack_id != -1) FAIL("ack id on type %d", (int)p->type);
        break;
    case SIO_ACK:
    case SIO_BINARY_ACK:
        if (p->ack_id < 0) FAIL("ack without id");
        break;
    default:
        break;
    }
    if (p->type == SIO_DISCONNECT && p->json.len) FAIL("disconnect with payload");
    if (p->json.p + p->json.len != d + size || p->json.p < d) FAIL("json is not the rest of the input");
    if (p->json.len && p->json.p[0] >= '0' && p->json.p[0] <= '9') FAIL("json starts with a digit");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *d = (const char *)data;
    struct sio_packet a;
    memset(&a, 0xA5, sizeof a);
    if (sio_packet_decode(d, size, &a) != 0) return 0;
    if (size == 0) FAIL("empty input accepted");
    check_packet(d, size, &a);

    int default_nsp = a.nsp.len == 1 && a.nsp.p[0] == '/';
    if (default_nsp && a.json.len && a.json.p[0] == '/') return 0; /* see the top */

    struct sbuf b = {0};
    if (sio_packet_encode_head(&b, a.type, a.attachments, a.nsp, a.ack_id) != 0) FAIL("encode failed");
    size_t head = b.len;
    if (sbuf_append(&b, a.json.p, a.json.len) != 0) FAIL("append failed");
    struct sio_packet c;
    memset(&c, 0x5A, sizeof c);
    if (sio_packet_decode(b.p, b.len, &c) != 0)
        FAIL("re-encoded packet does not decode: %.*s", (int)(b.len < 300 ? b.len : 300), b.p);
    if (c.type != a.type || c.attachments != a.attachments || !slice_same(c.nsp, a.nsp) ||
        c.ack_id != a.ack_id || !slice_same(c.json, a.json))
        FAIL("round trip differs: %.*s", (int)(b.len < 300 ? b.len : 300), b.p);
    if (c.json.p != b.p + head) FAIL("json does not follow the encoded head");
    check_packet(b.p, b.len, &c);

    /* Encoding the decoded packet again gives the same bytes (canonical). */
    struct sbuf b2 = {0};
    sio_packet_encode_head(&b2, c.type, c.attachments, c.nsp, c.ack_id);
    sbuf_append(&b2, c.json.p, c.json.len);
    if (b2.len != b.len || memcmp(b2.p, b.p, b.len) != 0) FAIL("encoding is not canonical");
    sbuf_free(&b2);
    sbuf_free(&b);

    (void)sio_is_reserved_event(d, size);
    return 0;
}
