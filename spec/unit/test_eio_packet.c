/* Unit tests for core/eio_packet.h: Engine.IO v4 text packets and the OPEN
 * packet. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "eio_packet.h"

static int decode(const char *s, struct eio_packet *pkt) {
    return eio_packet_decode(s, strlen(s), pkt);
}

TEST(decodes_every_type_digit) {
    static const char *const in[] = {"0", "1", "2", "3", "4", "5", "6"};
    for (int t = 0; t <= 6; t++) {
        struct eio_packet pkt = {.type = 99};
        CHECK_INT(0, decode(in[t], &pkt));
        CHECK_INT(t, pkt.type);
        CHECK_UINT(0, pkt.data.len);
    }
}

TEST(data_is_the_rest_after_the_type) {
    struct eio_packet pkt;
    const char *s = "42[\"hey\",\"Jude\"]";
    CHECK_INT(0, decode(s, &pkt));
    CHECK_INT(EIO_MESSAGE, pkt.type);
    CHECK_SLICE("2[\"hey\",\"Jude\"]", pkt.data);
    CHECK_PTR(s + 1, pkt.data.p);
    CHECK_INT(0, decode("2probe", &pkt));
    CHECK_INT(EIO_PING, pkt.type);
    CHECK_SLICE("probe", pkt.data);
    CHECK_INT(0, decode("3probe", &pkt));
    CHECK_INT(EIO_PONG, pkt.type);
    CHECK_INT(0, decode("5", &pkt));
    CHECK_INT(EIO_UPGRADE, pkt.type);
}

TEST(decodes_base64_binary_message) {
    struct eio_packet pkt;
    CHECK_INT(0, decode("bAQIDBA==", &pkt));
    CHECK_INT(EIO_BASE64, pkt.type);
    CHECK_SLICE("AQIDBA==", pkt.data);
    CHECK_INT(0, decode("b", &pkt));
    CHECK_INT(EIO_BASE64, pkt.type);
    CHECK_UINT(0, pkt.data.len);
}

TEST(rejects_empty_packets) {
    struct eio_packet pkt;
    CHECK_INT(-1, eio_packet_decode("", 0, &pkt));
    CHECK_INT(-1, eio_packet_decode("4", 0, &pkt)); /* length wins over the bytes */
}

TEST(rejects_unknown_type_characters) {
    struct eio_packet pkt;
    const char *bad[] = {"7", "8", "9", "/", ":", "B", "a", "c", " 4", "x", "\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) CHECK_INT(-1, decode(bad[i], &pkt));
    CHECK_INT(-1, eio_packet_decode("\0" "4", 2, &pkt));
}

TEST(decodes_only_len_bytes) {
    struct eio_packet pkt;
    CHECK_INT(0, eio_packet_decode("4hello", 3, &pkt));
    CHECK_SLICE("he", pkt.data);
}

TEST(open_packet_for_websocket_has_exact_bytes) {
    struct sbuf b = {0};
    CHECK_INT(0, eio_open_encode(&b, "WrR-CXVhN662HS4gAAAA", 0, 25000, 20000, 1000000));
    CHECK_MEM("0{\"sid\":\"WrR-CXVhN662HS4gAAAA\",\"upgrades\":[],\"pingInterval\":25000,"
              "\"pingTimeout\":20000,\"maxPayload\":1000000}",
              b.p, b.len);
    sbuf_free(&b);
}

TEST(open_packet_for_polling_offers_websocket) {
    struct sbuf b = {0};
    CHECK_INT(0, eio_open_encode(&b, "g_eqsx1ztVCN86lMAAAB", 1, 25000, 20000, 1000000));
    CHECK_MEM("0{\"sid\":\"g_eqsx1ztVCN86lMAAAB\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
              "\"pingTimeout\":20000,\"maxPayload\":1000000}",
              b.p, b.len);
    sbuf_free(&b);
}

TEST(open_packet_appends_and_prints_64_bit_numbers) {
    struct sbuf b = {0};
    CHECK_INT(0, sbuf_append(&b, "X", 1));
    CHECK_INT(0, eio_open_encode(&b, "s", 0, 1, 0, INT64_C(9007199254740993)));
    CHECK_MEM("X0{\"sid\":\"s\",\"upgrades\":[],\"pingInterval\":1,\"pingTimeout\":0,"
              "\"maxPayload\":9007199254740993}",
              b.p, b.len);
    sbuf_free(&b);
}

TEST(open_packet_decodes_back_as_open) {
    struct sbuf b = {0};
    struct eio_packet pkt;
    CHECK_INT(0, eio_open_encode(&b, "abc", 0, 25000, 20000, 1000000));
    CHECK_INT(0, eio_packet_decode(b.p, b.len, &pkt));
    CHECK_INT(EIO_OPEN, pkt.type);
    CHECK(pkt.data.len > 0 && pkt.data.p[0] == '{' && pkt.data.p[pkt.data.len - 1] == '}');
    sbuf_free(&b);
}

/* ---- polling payloads (packets joined by 0x1E) ---- */

/* Splits payload; writes the packets joined by '|' into out. Returns the count. */
static int split(const char *payload, size_t len, char *out) {
    size_t pos = 0, o = 0;
    struct slice s;
    int n = 0;
    while (eio_payload_next(payload, len, &pos, &s)) {
        if (n++) out[o++] = '|';
        memcpy(out + o, s.p, s.len);
        o += s.len;
        if (n > 100) break;
    }
    out[o] = 0;
    return n;
}

TEST(payload_splits_on_record_separators) {
    char out[256];
    const char *p = "4hello\x1e" "2\x1e" "bAQIDBA==";
    CHECK_INT(3, split(p, strlen(p), out));
    CHECK_STR("4hello|2|bAQIDBA==", out);
}

TEST(payload_of_one_packet_is_that_packet) {
    char out[256];
    CHECK_INT(1, split("42[\"a\"]", 7, out));
    CHECK_STR("42[\"a\"]", out);
}

TEST(empty_payload_has_one_empty_packet) {
    char out[16];
    CHECK_INT(1, split("", 0, out));
    CHECK_STR("", out);
    struct eio_packet pkt;
    CHECK_INT(-1, eio_packet_decode(out, 0, &pkt)); /* which decode refuses */
}

TEST(payload_keeps_empty_packets_between_separators) {
    char out[64];
    CHECK_INT(3, split("\x1e\x1e", 2, out));
    CHECK_STR("||", out);
    CHECK_INT(2, split("6\x1e", 2, out));
    CHECK_STR("6|", out);
    CHECK_INT(2, split("\x1e" "6", 2, out));
    CHECK_STR("|6", out);
}

TEST(payload_iteration_stays_at_the_end) {
    size_t pos = 0;
    struct slice s;
    CHECK_INT(1, eio_payload_next("1\x1e" "2", 3, &pos, &s));
    CHECK_SLICE("1", s);
    CHECK_INT(1, eio_payload_next("1\x1e" "2", 3, &pos, &s));
    CHECK_SLICE("2", s);
    CHECK_INT(0, eio_payload_next("1\x1e" "2", 3, &pos, &s));
    CHECK_INT(0, eio_payload_next("1\x1e" "2", 3, &pos, &s));
}

TEST(payload_reads_only_len_bytes) {
    char out[64];
    CHECK_INT(1, split("ab\x1e" "cd", 2, out));
    CHECK_STR("ab", out);
}

int main(void) {
    RUN(decodes_every_type_digit);
    RUN(data_is_the_rest_after_the_type);
    RUN(decodes_base64_binary_message);
    RUN(rejects_empty_packets);
    RUN(rejects_unknown_type_characters);
    RUN(decodes_only_len_bytes);
    RUN(open_packet_for_websocket_has_exact_bytes);
    RUN(open_packet_for_polling_offers_websocket);
    RUN(open_packet_appends_and_prints_64_bit_numbers);
    RUN(open_packet_decodes_back_as_open);
    RUN(payload_splits_on_record_separators);
    RUN(payload_of_one_packet_is_that_packet);
    RUN(empty_payload_has_one_empty_packet);
    RUN(payload_keeps_empty_packets_between_separators);
    RUN(payload_iteration_stays_at_the_end);
    RUN(payload_reads_only_len_bytes);
    return check_finish("test_eio_packet");
}
