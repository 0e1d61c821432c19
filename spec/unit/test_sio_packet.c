/* Unit tests for core/sio_packet.h: the Socket.IO v5 packet header codec.
 * The decoder gets the text after the Engine.IO '4' (so the wire packet
 * "42[...]" is decoded here as "2[...]"). Cases from socketio-wire.md §2.1
 * and §2.6. The codec only splits the header: JSON shape is checked
 * elsewhere. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sio_packet.h"

static struct sio_packet pkt;

static int decode(const char *s) {
    memset(&pkt, 0x5A, sizeof pkt);
    return sio_packet_decode(s, strlen(s), &pkt);
}

/* Checks one valid packet's fields. */
static void check_valid(const char *in, int type, unsigned att, const char *nsp, long long ack,
                        const char *json, const char *file, int line) {
    int rc = decode(in);
    if (!check_int(0, rc, in, file, line)) return;
    check_int(type, pkt.type, "type", file, line);
    check_uint(att, pkt.attachments, "attachments", file, line);
    check_mem(nsp, strlen(nsp), pkt.nsp.p, pkt.nsp.len, "nsp", file, line);
    check_int(ack, pkt.ack_id, "ack_id", file, line);
    check_mem(json, strlen(json), pkt.json.p, pkt.json.len, "json", file, line);
}
#define CHECK_VALID(in, type, att, nsp, ack, json) \
    check_valid(in, type, att, nsp, ack, json, __FILE__, __LINE__)
#define CHECK_INVALID(in) check_int(-1, decode(in), "decode(" #in ")", __FILE__, __LINE__)

/* ---- §2.1 valid packets ---- */

TEST(decodes_connect_to_the_default_namespace) {
    CHECK_VALID("0", SIO_CONNECT, 0, "/", -1, "");
    CHECK_VALID("0{}", SIO_CONNECT, 0, "/", -1, "{}");
}

TEST(decodes_connect_with_auth) {
    CHECK_VALID("0{\"token\":\"abc\"}", SIO_CONNECT, 0, "/", -1, "{\"token\":\"abc\"}");
}

TEST(decodes_connect_to_a_namespace) {
    CHECK_VALID("0/admin,", SIO_CONNECT, 0, "/admin", -1, "");
    CHECK_VALID("0/admin,{\"token\":\"abc\"}", SIO_CONNECT, 0, "/admin", -1, "{\"token\":\"abc\"}");
}

TEST(decodes_a_namespace_without_trailing_comma) {
    CHECK_VALID("0/custom", SIO_CONNECT, 0, "/custom", -1, "");
    CHECK_VALID("1/custom", SIO_DISCONNECT, 0, "/custom", -1, "");
}

TEST(decodes_disconnect) {
    CHECK_VALID("1", SIO_DISCONNECT, 0, "/", -1, "");
    CHECK_VALID("1/admin,", SIO_DISCONNECT, 0, "/admin", -1, "");
}

TEST(decodes_events) {
    CHECK_VALID("2[\"hey\",\"Jude\"]", SIO_EVENT, 0, "/", -1, "[\"hey\",\"Jude\"]");
    CHECK_VALID("2/admin,[\"bar\"]", SIO_EVENT, 0, "/admin", -1, "[\"bar\"]");
    CHECK_VALID("2", SIO_EVENT, 0, "/", -1, ""); /* no payload: the shape check decides */
}

TEST(decodes_events_with_ack_ids) {
    CHECK_VALID("212[\"foo\"]", SIO_EVENT, 0, "/", 12, "[\"foo\"]");
    CHECK_VALID("2/admin,13[\"foo\"]", SIO_EVENT, 0, "/admin", 13, "[\"foo\"]");
    CHECK_VALID("20[\"q\",1]", SIO_EVENT, 0, "/", 0, "[\"q\",1]");
}

TEST(decodes_acks) {
    CHECK_VALID("312[\"bar\"]", SIO_ACK, 0, "/", 12, "[\"bar\"]");
    CHECK_VALID("3/admin,13[]", SIO_ACK, 0, "/admin", 13, "[]");
    CHECK_VALID("30", SIO_ACK, 0, "/", 0, ""); /* ack with no payload is accepted by Node */
}

TEST(decodes_connect_error) {
    CHECK_VALID("4/custom,{\"message\":\"not authorized\",\"data\":{\"why\":\"x\"}}", SIO_CONNECT_ERROR,
                0, "/custom", -1, "{\"message\":\"not authorized\",\"data\":{\"why\":\"x\"}}");
}

TEST(decodes_binary_event) {
    CHECK_VALID("51-[\"baz\",{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_EVENT, 1, "/", -1,
                "[\"baz\",{\"_placeholder\":true,\"num\":0}]");
}

TEST(decodes_binary_event_with_namespace_and_ack) {
    CHECK_VALID("52-/admin,789[\"up\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,"
                "\"num\":1}]",
                SIO_BINARY_EVENT, 2, "/admin", 789,
                "[\"up\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]");
}

TEST(decodes_binary_ack) {
    CHECK_VALID("61-15[\"bar\",{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_ACK, 1, "/", 15,
                "[\"bar\",{\"_placeholder\":true,\"num\":0}]");
}

TEST(accepts_zero_to_ten_attachments) {
    CHECK_VALID("50-[\"a\"]", SIO_BINARY_EVENT, 0, "/", -1, "[\"a\"]");
    CHECK_VALID("510-[\"a\"]", SIO_BINARY_EVENT, 10, "/", -1, "[\"a\"]");
    CHECK_VALID("6010-3[]", SIO_BINARY_ACK, 10, "/", 3, "[]");
}

TEST(accepts_ack_ids_up_to_15_digits) {
    CHECK_VALID("2123456789012345[]", SIO_EVENT, 0, "/", 123456789012345LL, "[]");
    CHECK_VALID("3999999999999999[]", SIO_ACK, 0, "/", 999999999999999LL, "[]");
    CHECK_VALID("2007[]", SIO_EVENT, 0, "/", 7, "[]"); /* leading zeros: the value counts */
}

TEST(accepts_a_namespace_of_256_bytes) {
    char s[300] = "2/";
    memset(s + 2, 'n', 255);
    strcpy(s + 257, ",[]");
    CHECK_INT(0, decode(s));
    CHECK_UINT(256, pkt.nsp.len);
    CHECK_SLICE("[]", pkt.json);
}

TEST(namespace_runs_to_the_first_comma) {
    /* Like socket.io-parser: the namespace ends at the first ',' anywhere. */
    CHECK_VALID("2/a,b,[1]", SIO_EVENT, 0, "/a", -1, "b,[1]");
}

TEST(nsp_slice_points_into_the_input) {
    const char *s = "2/admin,[1]";
    CHECK_INT(0, decode(s));
    CHECK_PTR(s + 1, pkt.nsp.p);
    CHECK_PTR(s + 8, pkt.json.p);
}

TEST(decodes_only_len_bytes) {
    CHECK_INT(0, sio_packet_decode("212[\"foo\"]", 3, &pkt));
    CHECK_INT(12, pkt.ack_id);
    CHECK_UINT(0, pkt.json.len);
    CHECK_INT(0, sio_packet_decode("1[\"x\"]", 1, &pkt)); /* just "1" */
    CHECK_INT(SIO_DISCONNECT, pkt.type);
}

/* ---- §2.6 invalid packets ---- */

TEST(rejects_empty_input) { CHECK_INT(-1, sio_packet_decode("", 0, &pkt)); }

TEST(rejects_unknown_types) {
    CHECK_INVALID("7");
    CHECK_INVALID("8[]");
    CHECK_INVALID("abc"); /* the wire packet "4abc" */
    CHECK_INVALID("/admin,0");
    CHECK_INVALID("[\"x\"]");
    CHECK_INVALID(" 2[]");
    CHECK_INVALID("-1");
}

TEST(rejects_binary_packets_without_attachment_count) {
    CHECK_INVALID("5");
    CHECK_INVALID("5[\"a\"]");
    CHECK_INVALID("5-[\"a\"]");
    CHECK_INVALID("51[\"a\"]");  /* count without '-' */
    CHECK_INVALID("51");
    CHECK_INVALID("6");
    CHECK_INVALID("6-1[]");
    CHECK_INVALID("5/admin,1-[]");
}

TEST(rejects_more_than_10_attachments) {
    CHECK_INVALID("511-[\"a\"]");
    CHECK_INVALID("599-[\"a\"]");
    CHECK_INVALID("5100-[\"a\"]");
    CHECK_INVALID("51000-[\"a\"]");
    CHECK_INVALID("54294967297-[\"a\"]"); /* would wrap to 1 in 32 bits */
    CHECK_INVALID("611-1[]");
}

TEST(rejects_ack_without_id) {
    CHECK_INVALID("3[\"bar\"]");
    CHECK_INVALID("3/admin,[]");
    CHECK_INVALID("3");
    CHECK_INVALID("61-[\"bar\"]");
    CHECK_INVALID("61-/admin,[]");
}

TEST(rejects_disconnect_with_payload) {
    CHECK_INVALID("1{}");
    CHECK_INVALID("1[]");
    CHECK_INVALID("1/admin,{}");
    CHECK_INVALID("1/admin,x");
}

TEST(rejects_ack_ids_on_connect_disconnect_and_connect_error) {
    CHECK_INVALID("012{}");
    CHECK_INVALID("0/admin,1");
    CHECK_INVALID("00");
    CHECK_INVALID("112");
    CHECK_INVALID("1/admin,5");
    CHECK_INVALID("45{\"message\":\"x\"}");
}

TEST(rejects_ack_ids_over_15_digits) {
    CHECK_INVALID("21234567890123456[]");
    CHECK_INVALID("39999999999999999999999999[]");
    CHECK_INVALID("61-1234567890123456[]");
    CHECK_INVALID("2/admin,0000000000000001[]");
}

TEST(rejects_namespaces_over_256_bytes) {
    char s[400] = "2/";
    memset(s + 2, 'n', 256);
    strcpy(s + 258, ",[]");
    CHECK_INT(-1, decode(s));
    s[258] = 0; /* no comma either */
    CHECK_INT(-1, decode(s));
    char big[4096] = "0/";
    memset(big + 2, 'x', sizeof big - 3);
    big[sizeof big - 1] = 0;
    CHECK_INT(-1, decode(big));
}

/* ---- encoding ---- */

static void check_encode(const char *expect, enum sio_type type, unsigned att, const char *nsp,
                         int64_t ack, const char *file, int line) {
    struct sbuf b = {0};
    int rc = sio_packet_encode_head(&b, type, att, (struct slice){nsp, strlen(nsp)}, ack);
    check_int(0, rc, "sio_packet_encode_head", file, line);
    check_mem(expect, strlen(expect), b.p, b.len, "encoded head", file, line);
    sbuf_free(&b);
}
#define CHECK_ENCODE(expect, type, att, nsp, ack) \
    check_encode(expect, type, att, nsp, ack, __FILE__, __LINE__)

TEST(encodes_heads_like_socket_io) {
    CHECK_ENCODE("0", SIO_CONNECT, 0, "/", -1);
    CHECK_ENCODE("0/admin,", SIO_CONNECT, 0, "/admin", -1);
    CHECK_ENCODE("1/admin,", SIO_DISCONNECT, 0, "/admin", -1);
    CHECK_ENCODE("2", SIO_EVENT, 0, "/", -1);
    CHECK_ENCODE("212", SIO_EVENT, 0, "/", 12);
    CHECK_ENCODE("2/admin,13", SIO_EVENT, 0, "/admin", 13);
    CHECK_ENCODE("30", SIO_ACK, 0, "/", 0);
    CHECK_ENCODE("4/custom,", SIO_CONNECT_ERROR, 0, "/custom", -1);
    CHECK_ENCODE("51-", SIO_BINARY_EVENT, 1, "/", -1);
    CHECK_ENCODE("52-/admin,789", SIO_BINARY_EVENT, 2, "/admin", 789);
    CHECK_ENCODE("61-15", SIO_BINARY_ACK, 1, "/", 15);
    CHECK_ENCODE("50-", SIO_BINARY_EVENT, 0, "/", -1);
    CHECK_ENCODE("2999999999999999", SIO_EVENT, 0, "/", 999999999999999LL);
}

TEST(encode_ignores_attachments_for_text_types) {
    CHECK_ENCODE("2", SIO_EVENT, 3, "/", -1);
    CHECK_ENCODE("37", SIO_ACK, 1, "/", 7);
}

TEST(encode_appends_to_the_buffer) {
    struct sbuf b = {0};
    CHECK_INT(0, sbuf_append(&b, "4", 1));
    CHECK_INT(0, sio_packet_encode_head(&b, SIO_EVENT, 0, (struct slice){"/chat", 5}, 4));
    CHECK_MEM("42/chat,4", b.p, b.len);
    sbuf_free(&b);
}

/* Decode, re-encode the head, append the JSON: the canonical form. */
static void check_roundtrip(const char *in, const char *canonical, const char *file, int line) {
    struct sio_packet a, c;
    if (!check_int(0, sio_packet_decode(in, strlen(in), &a), in, file, line)) return;
    struct sbuf b = {0};
    check_int(0, sio_packet_encode_head(&b, a.type, a.attachments, a.nsp, a.ack_id), "encode", file,
              line);
    check_int(0, sbuf_append(&b, a.json.p, a.json.len), "append", file, line);
    check_mem(canonical, strlen(canonical), b.p, b.len, in, file, line);
    if (check_int(0, sio_packet_decode(b.p, b.len, &c), "decode again", file, line)) {
        check_int(a.type, c.type, "type", file, line);
        check_uint(a.attachments, c.attachments, "attachments", file, line);
        check_mem(a.nsp.p, a.nsp.len, c.nsp.p, c.nsp.len, "nsp", file, line);
        check_int(a.ack_id, c.ack_id, "ack_id", file, line);
        check_mem(a.json.p, a.json.len, c.json.p, c.json.len, "json", file, line);
    }
    sbuf_free(&b);
}
#define CHECK_ROUNDTRIP(in, canonical) check_roundtrip(in, canonical, __FILE__, __LINE__)

TEST(decode_then_encode_gives_the_canonical_packet) {
    CHECK_ROUNDTRIP("0", "0");
    CHECK_ROUNDTRIP("0{\"token\":\"abc\"}", "0{\"token\":\"abc\"}");
    CHECK_ROUNDTRIP("0/admin,", "0/admin,");
    CHECK_ROUNDTRIP("0/custom", "0/custom,");
    CHECK_ROUNDTRIP("1/admin,", "1/admin,");
    CHECK_ROUNDTRIP("2[\"hey\",\"Jude\"]", "2[\"hey\",\"Jude\"]");
    CHECK_ROUNDTRIP("212[\"foo\"]", "212[\"foo\"]");
    CHECK_ROUNDTRIP("2/admin,13[\"foo\"]", "2/admin,13[\"foo\"]");
    CHECK_ROUNDTRIP("312[\"bar\"]", "312[\"bar\"]");
    CHECK_ROUNDTRIP("51-[\"baz\",{\"_placeholder\":true,\"num\":0}]",
                    "51-[\"baz\",{\"_placeholder\":true,\"num\":0}]");
    CHECK_ROUNDTRIP("52-/admin,789[1]", "52-/admin,789[1]");
    CHECK_ROUNDTRIP("61-15[\"bar\"]", "61-15[\"bar\"]");
    CHECK_ROUNDTRIP("2/,[\"x\"]", "2[\"x\"]");
    CHECK_ROUNDTRIP("2007[]", "27[]");
    CHECK_ROUNDTRIP("501-[]", "51-[]");
}

/* ---- reserved event names ---- */

static int reserved(const char *s) { return sio_is_reserved_event(s, strlen(s)); }

TEST(reserved_event_names_are_the_six_of_socket_io) {
    CHECK_INT(1, reserved("connect"));
    CHECK_INT(1, reserved("connect_error"));
    CHECK_INT(1, reserved("disconnect"));
    CHECK_INT(1, reserved("disconnecting"));
    CHECK_INT(1, reserved("newListener"));
    CHECK_INT(1, reserved("removeListener"));
}

TEST(other_event_names_are_not_reserved) {
    CHECK_INT(0, reserved(""));
    CHECK_INT(0, reserved("message"));
    CHECK_INT(0, reserved("Connect"));
    CHECK_INT(0, reserved("connec"));
    CHECK_INT(0, reserved("connect "));
    CHECK_INT(0, reserved("connect_errors"));
    CHECK_INT(0, reserved("newlistener"));
    CHECK_INT(0, sio_is_reserved_event("connect\0", 8));
}

TEST(reserved_check_uses_the_length_not_nul) {
    CHECK_INT(1, sio_is_reserved_event("connectXYZ", 7));
    CHECK_INT(0, sio_is_reserved_event("connect", 6));
}

int main(void) {
    RUN(decodes_connect_to_the_default_namespace);
    RUN(decodes_connect_with_auth);
    RUN(decodes_connect_to_a_namespace);
    RUN(decodes_a_namespace_without_trailing_comma);
    RUN(decodes_disconnect);
    RUN(decodes_events);
    RUN(decodes_events_with_ack_ids);
    RUN(decodes_acks);
    RUN(decodes_connect_error);
    RUN(decodes_binary_event);
    RUN(decodes_binary_event_with_namespace_and_ack);
    RUN(decodes_binary_ack);
    RUN(accepts_zero_to_ten_attachments);
    RUN(accepts_ack_ids_up_to_15_digits);
    RUN(accepts_a_namespace_of_256_bytes);
    RUN(namespace_runs_to_the_first_comma);
    RUN(nsp_slice_points_into_the_input);
    RUN(decodes_only_len_bytes);
    RUN(rejects_empty_input);
    RUN(rejects_unknown_types);
    RUN(rejects_binary_packets_without_attachment_count);
    RUN(rejects_more_than_10_attachments);
    RUN(rejects_ack_without_id);
    RUN(rejects_disconnect_with_payload);
    RUN(rejects_ack_ids_on_connect_disconnect_and_connect_error);
    RUN(rejects_ack_ids_over_15_digits);
    RUN(rejects_namespaces_over_256_bytes);
    RUN(encodes_heads_like_socket_io);
    RUN(encode_ignores_attachments_for_text_types);
    RUN(encode_appends_to_the_buffer);
    RUN(decode_then_encode_gives_the_canonical_packet);
    RUN(reserved_event_names_are_the_six_of_socket_io);
    RUN(other_event_names_are_not_reserved);
    RUN(reserved_check_uses_the_length_not_nul);
    return check_finish("test_sio_packet");
}
