/* libFuzzer target: redis_wire, the Redis adapter's messages. The first
 * byte picks what the rest is:
 *   even  a message from a peer: rw_decode_broadcast and rw_decode_request.
 *         A broadcast (or a BROADCAST request's packet) that decodes must
 *         encode again, and decode -> encode is then a fixed point: the
 *         second encoding equals the first byte for byte and decodes to the
 *         same JSON text and attachments. The JSON the decoder gives is
 *         always valid JSON.
 *   odd   JSON text of an event's data, with (first byte >> 1) % 4 of the
 *         attachments below: when rw_encode_broadcast takes it, it must
 *         decode, and re-encode to the same bytes; the responses built from
 *         it are valid JSON or refused.
 * Every decoder result points into its rw_decoded, never into the input
 * (which is freed before the results are read). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"
#include "redis_wire.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "fuzz_redis_wire: " __VA_ARGS__);                                          \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

static int same(const void *a, size_t an, const void *b, size_t bn) {
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

static void same_broadcast(const struct rw_broadcast *a, const struct rw_broadcast *b) {
    if (!same(a->json, a->json_len, b->json, b->json_len)) FAIL("json changed");
    if (a->n_bin != b->n_bin) FAIL("attachments changed");
    for (size_t i = 0; i < a->n_bin; i++)
        if (!same(a->bin[i], a->bin_len[i], b->bin[i], b->bin_len[i])) FAIL("attachment %zu changed", i);
    if (!same(a->uid.p, a->uid.len, b->uid.p, b->uid.len) || !same(a->nsp.p, a->nsp.len, b->nsp.p, b->nsp.len))
        FAIL("uid or nsp changed");
    if (a->type != b->type || a->ack_id != b->ack_id || a->flags != b->flags || a->timeout_ms != b->timeout_ms)
        FAIL("packet fields changed");
    if (a->n_rooms != b->n_rooms || a->n_except != b->n_except) FAIL("rooms changed");
    for (size_t i = 0; i < a->n_rooms; i++)
        if (!same(a->rooms[i].p, a->rooms[i].len, b->rooms[i].p, b->rooms[i].len)) FAIL("room %zu changed", i);
}

/* b decoded from a peer: encode, decode, encode again. */
static void round_trip(const struct rw_broadcast *b) {
    if (!json_valid(b->json, b->json_len)) FAIL("decoded data is not JSON");
    for (size_t i = 0; i < b->n_rooms; i++)
        if (!b->rooms[i].p && b->rooms[i].len) FAIL("room without bytes");
    struct sbuf e1 = {0}, e2 = {0};
    if (rw_encode_broadcast(&e1, b)) FAIL("a decoded broadcast does not encode");
    struct rw_broadcast b2, b3;
    struct rw_decoded d2, d3;
    if (rw_decode_broadcast(e1.p, e1.len, &b2, &d2)) FAIL("our encoding does not decode");
    if (rw_encode_broadcast(&e2, &b2)) FAIL("second encoding refused");
    if (!same(e1.p, e1.len, e2.p, e2.len)) FAIL("encode(decode(encode(x))) != encode(x)");
    if (rw_decode_broadcast(e2.p, e2.len, &b3, &d3)) FAIL("second encoding does not decode");
    same_broadcast(&b2, &b3);
    rw_decoded_free(&d2);
    rw_decoded_free(&d3);
    sbuf_free(&e1);
    sbuf_free(&e2);
}

static void peer_message(const uint8_t *data, size_t size) {
    /* A copy of exactly the input, freed before the results are read. */
    uint8_t *p = malloc(size ? size : 1);
    memcpy(p, data, size);
    struct rw_broadcast b;
    struct rw_decoded d;
    struct rw_request r;
    struct rw_decoded rd;
    int brc = rw_decode_broadcast(p, size, &b, &d);
    int rrc = rw_decode_request(p, size, &r, &rd);
    memset(p, 0xee, size);
    free(p);
    if (brc == 0) {
        round_trip(&b);
        rw_decoded_free(&d);
    } else if (d.chunks || d.bin) {
        FAIL("a refused broadcast kept memory");
    }
    if (rrc == 0) {
        if (r.type == RW_REQ_BROADCAST) round_trip(&r.packet);
        if (r.data_json && !json_valid(r.data_json, r.data_len)) FAIL("request data is not JSON");
        struct sbuf out = {0};
        if (rw_encode_all_rooms_response(&out, r.request_id, r.opts_rooms, r.n_opts_rooms) ||
            !json_valid(out.p, out.len))
            FAIL("rooms response");
        rw_decoded_free(&rd);
        sbuf_free(&out);
    }
}

static void json_data(const uint8_t *data, size_t size) {
    static const uint8_t a0[] = {1, 2, 3}, a1[300] = {9};
    const void *bins[] = {a0, a1, "", "x"};
    size_t lens[] = {sizeof a0, sizeof a1, 0, 1};
    size_t n_bin = (data[0] >> 1) % 4;
    const char *json = (const char *)data + 1;
    size_t len = size - 1;
    struct slice rooms[] = {{"r", 1}, {json, len < 8 ? len : 8}};
    struct rw_broadcast b = {.uid = {"u", 1}, .nsp = {"/", 1}, .type = 2, .ack_id = data[0] & 0x40 ? 7 : -1,
                             .json = json, .json_len = len, .n_bin = n_bin, .bin = bins, .bin_len = lens,
                             .n_rooms = 2, .rooms = rooms, .flags = data[0] >> 4, .timeout_ms = data[0]};
    struct sbuf e1 = {0};
    int rc = rw_encode_broadcast(&e1, &b);
    if (rc == 0) {
        if (!json_valid(json, len)) FAIL("encoded JSON that is not valid");
        struct rw_broadcast b2;
        struct rw_decoded d2;
        if (rw_decode_broadcast(e1.p, e1.len, &b2, &d2)) FAIL("our encoding does not decode");
        if (b2.n_bin > n_bin * len) FAIL("more attachments than placeholders");
        round_trip(&b2);
        rw_decoded_free(&d2);
    } else if (e1.len) {
        FAIL("a refused encoding left bytes");
    }
    sbuf_free(&e1);

    struct sbuf out = {0};
    struct slice rid = {json, len < 6 ? len : 6};
    if (rw_encode_server_side_emit_response(&out, rid, json, len) == 0 && !json_valid(out.p, out.len))
        FAIL("server side emit response is not JSON");
    sbuf_reset(&out);
    if (rw_encode_broadcast_ack_bin(&out, rid, json, len, n_bin, bins, lens) == 0) {
        struct rw_request r;
        struct rw_decoded d;
        if (rw_decode_request(out.p, out.len, &r, &d)) FAIL("broadcast ack does not decode");
        if (r.type != RW_REQ_BROADCAST_ACK || !json_valid(r.data_json, r.data_len)) FAIL("broadcast ack decoded wrong");
        rw_decoded_free(&d);
    }
    sbuf_reset(&out);
    struct rw_socket_info s = {.id = rid, .time = rid, .address = rid, .url = rid, .data_json = json, .data_len = len,
                               .n_rooms = 2, .rooms = rooms};
    if (rw_encode_fetch_sockets_response(&out, rid, &s, 1) == 0 && !json_valid(out.p, out.len))
        FAIL("fetch sockets response is not JSON");
    sbuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (data[0] & 1) json_data(data, size);
    else peer_message(data + 1, size - 1);
    return 0;
}
