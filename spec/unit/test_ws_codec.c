/* Unit tests for core/ws_codec.h: the Sec-WebSocket-Accept key and the
 * headers of unmasked server frames (RFC 6455). */
#include <string.h>

#include "check.h"
#include "ws_codec.h"

static int accept_key(const char *key, char out[WS_ACCEPT_LEN + 1]) {
    memset(out, '#', WS_ACCEPT_LEN + 1);
    return ws_accept_key((struct slice){key, strlen(key)}, out);
}

/* ---- accept key ---- */

TEST(accept_key_matches_the_rfc_6455_sample) {
    char out[WS_ACCEPT_LEN + 1];
    CHECK_INT(0, accept_key("dGhlIHNhbXBsZSBub25jZQ==", out));
    CHECK_STR("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", out);
    CHECK_INT(0, out[WS_ACCEPT_LEN]); /* NUL-terminated */
}

TEST(accept_key_matches_known_vectors) {
    /* Computed independently: base64(sha1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")). */
    char out[WS_ACCEPT_LEN + 1];
    CHECK_INT(0, accept_key("AAAAAAAAAAAAAAAAAAAAAA==", out));
    CHECK_STR("ICX+Yqv66kxgM0FcWaLWlFLwTAI=", out);
    CHECK_INT(0, accept_key("x3JJHMbDL1EzLkh9GBhXDw==", out));
    CHECK_STR("HSmrc0sMlYUkAGmm5OPpG2HaGWk=", out);
    CHECK_INT(0, accept_key("+/+/+/+/+/+/+/+/+/+/+w==", out));
    CHECK_STR("M0DUs3om0SqzerhOhYSMM7WQuBQ=", out);
}

TEST(accept_key_rejects_wrong_lengths) {
    char out[WS_ACCEPT_LEN + 1];
    CHECK_INT(-1, accept_key("", out));
    CHECK_INT(-1, accept_key("dGhlIHNhbXBsZSBub25jZQ=", out));
    CHECK_INT(-1, accept_key("dGhlIHNhbXBsZSBub25jZQ===", out));
    CHECK_INT(-1, accept_key("dGhlIHNhbXBsZSBub25jZQ==dGhl", out));
    CHECK_INT(-1, accept_key("dGhlIHNhbXBsZSBub25jZQ", out));          /* unpadded */
    CHECK_INT(-1, accept_key("dGhlIHNhbXBsZSBub25jZQ==\r\n", out));
}

TEST(accept_key_rejects_missing_padding) {
    char out[WS_ACCEPT_LEN + 1];
    CHECK_INT(-1, accept_key("dGhlIHNhbXBsZSBub25jZQAA", out)); /* 18 bytes, no "==" */
    CHECK_INT(-1, accept_key("dGhlIHNhbXBsZSBub25jZQA=", out)); /* 17 bytes */
}

TEST(accept_key_rejects_non_base64_characters) {
    char out[WS_ACCEPT_LEN + 1];
    CHECK_INT(-1, accept_key("dGhlIHNhbXBsZSBub25jZ-==", out)); /* base64url */
    CHECK_INT(-1, accept_key("dGhlIHNhbXBsZSBub25jZ_==", out));
    CHECK_INT(-1, accept_key("dGhlIHNhbXBsZSBub2 5jZ==", out)); /* inner space */
    CHECK_INT(-1, accept_key("dGhlIHNhbXBsZSBub25j\x80Q==", out));
    CHECK_INT(-1, accept_key("dGhlIHNhbXBsZSBub25jZ\n==", out));
    CHECK_INT(-1, accept_key("dGhlIHNhbXBsZSBub25jZ!==", out));
}

TEST(accept_key_rejects_leading_whitespace) {
    /* OpenSSL's EVP_DecodeBlock trims leading blanks; the key must not pass. */
    char out[WS_ACCEPT_LEN + 1];
    CHECK_INT(-1, accept_key("    dGhlIHNhbXBsZSBub2==", out));
    CHECK_INT(-1, accept_key("  dGhlIHNhbXBsZSBub25j==", out));
    CHECK_INT(-1, accept_key("\tdGhlIHNhbXBsZSBub25jZ==", out));
}

TEST(accept_key_rejects_padding_inside_the_key) {
    /* '=' may only be the last two characters: "dGhl=H..." is not base64 of
     * 16 bytes (Node's ws checks /^[+/0-9A-Za-z]{22}==$/). */
    char out[WS_ACCEPT_LEN + 1];
    CHECK_INT(-1, accept_key("dGhl=HNhbXBsZSBub25jZQ==", out));
    CHECK_INT(-1, accept_key("========================", out));
    CHECK_INT(-1, accept_key("dGhlIHNhbXBsZSBub25jZ===", out));
}

TEST(accept_key_reads_only_the_slice) {
    char out[WS_ACCEPT_LEN + 1];
    const char *s = "dGhlIHNhbXBsZSBub25jZQ==garbage";
    CHECK_INT(0, ws_accept_key((struct slice){s, 24}, out));
    CHECK_STR("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", out);
}

/* ---- frame headers ---- */

static void check_header(uint64_t len, enum ws_opcode op, const uint8_t *expect, size_t n,
                         const char *file, int line) {
    uint8_t out[WS_FRAME_HEADER_MAX + 4];
    memset(out, 0xAA, sizeof out);
    size_t got_len = ws_frame_header_len(len);
    size_t wrote = ws_frame_header_write(out, op, len);
    check_uint(n, got_len, "ws_frame_header_len", file, line);
    check_uint(n, wrote, "ws_frame_header_write return", file, line);
    check_mem(expect, n, out, wrote, "ws_frame_header_write bytes", file, line);
    check_uint(0xAA, out[n], "byte after the header untouched", file, line);
}
#define CHECK_HEADER(len, op, ...)                                                                 \
    do {                                                                                           \
        static const uint8_t e_[] = {__VA_ARGS__};                                                 \
        check_header((len), (op), e_, sizeof e_, __FILE__, __LINE__);                              \
    } while (0)

TEST(frame_header_for_empty_payload) { CHECK_HEADER(0, WS_OP_TEXT, 0x81, 0x00); }
TEST(frame_header_for_125_bytes_uses_7_bit_length) { CHECK_HEADER(125, WS_OP_TEXT, 0x81, 125); }
TEST(frame_header_for_126_bytes_uses_16_bit_length) {
    CHECK_HEADER(126, WS_OP_TEXT, 0x81, 126, 0x00, 0x7E);
}
TEST(frame_header_for_65535_bytes_uses_16_bit_length) {
    CHECK_HEADER(65535, WS_OP_BINARY, 0x82, 126, 0xFF, 0xFF);
}
TEST(frame_header_for_65536_bytes_uses_64_bit_length) {
    CHECK_HEADER(65536, WS_OP_BINARY, 0x82, 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00);
}
TEST(frame_header_for_big_payloads_is_big_endian) {
    CHECK_HEADER(0x0102030405060708ull, WS_OP_TEXT, 0x81, 127, 1, 2, 3, 4, 5, 6, 7, 8);
    CHECK_HEADER(0x7FFFFFFFFFFFFFFFull, WS_OP_TEXT, 0x81, 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                 0xFF, 0xFF);
    CHECK_HEADER(1000000, WS_OP_TEXT, 0x81, 127, 0, 0, 0, 0, 0x00, 0x0F, 0x42, 0x40);
}
TEST(frame_header_sets_fin_and_opcode_and_no_mask) {
    CHECK_HEADER(5, WS_OP_CLOSE, 0x88, 0x05);
    CHECK_HEADER(0, WS_OP_CONT, 0x80, 0x00);
    CHECK_HEADER(2, WS_OP_BINARY, 0x82, 0x02);
}

/* ---- client frame headers ---- */

TEST(frame_head_parses_the_rfc_6455_masked_hello) {
    /* RFC 6455 §5.7: a single-frame masked text message "Hello". */
    static const uint8_t f[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    struct ws_frame_head h;
    CHECK_INT(6, ws_frame_head_parse(f, sizeof f, &h));
    CHECK_INT(1, h.fin);
    CHECK_INT(0, h.rsv);
    CHECK_INT(1, h.opcode);
    CHECK_INT(1, h.masked);
    CHECK_UINT(5, h.payload_len);
    uint8_t out[5];
    ws_unmask(out, f + 6, 5, h.mask);
    CHECK_MEMN("Hello", 5, out, 5);
    /* every prefix of the header asks for more */
    for (size_t n = 0; n < 6; n++) CHECK_INT(0, ws_frame_head_parse(f, n, &h));
}

TEST(frame_head_lengths_and_their_shortest_forms) {
    struct ws_frame_head h;
    uint8_t f16[8] = {0x82, 0x80 | 126, 0x01, 0x00, 1, 2, 3, 4}; /* 256 */
    CHECK_INT(8, ws_frame_head_parse(f16, sizeof f16, &h));
    CHECK_UINT(256, h.payload_len);
    CHECK_INT(2, h.opcode);
    CHECK_INT(0, ws_frame_head_parse(f16, 7, &h));
    uint8_t short16[8] = {0x82, 0x80 | 126, 0x00, 125, 1, 2, 3, 4}; /* 125 in the 16-bit form */
    CHECK_INT(-1, ws_frame_head_parse(short16, sizeof short16, &h));
    uint8_t f64[14] = {0x01, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0, 9, 9, 9, 9}; /* 65536, not final */
    CHECK_INT(14, ws_frame_head_parse(f64, sizeof f64, &h));
    CHECK_UINT(65536, h.payload_len);
    CHECK_INT(0, h.fin);
    uint8_t short64[14] = {0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 9, 9, 9, 9};
    CHECK_INT(-1, ws_frame_head_parse(short64, sizeof short64, &h));
    uint8_t top[14] = {0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9};
    CHECK_INT(-1, ws_frame_head_parse(top, sizeof top, &h));
    uint8_t unmasked[2] = {0x89, 0x00}; /* a ping, unmasked, RSV bits clear */
    CHECK_INT(2, ws_frame_head_parse(unmasked, 2, &h));
    CHECK_INT(0, h.masked);
    CHECK_INT(9, h.opcode);
    uint8_t rsv[6] = {0xf1, 0x80, 1, 2, 3, 4};
    CHECK_INT(6, ws_frame_head_parse(rsv, 6, &h));
    CHECK_INT(7, h.rsv);
}

TEST(unmask_matches_bytewise_at_every_length_and_in_place) {
    const uint8_t mask[4] = {0xa1, 0x07, 0x5c, 0xe3};
    uint8_t src[40], out[40], ref[40];
    for (size_t i = 0; i < sizeof src; i++) src[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof src; n++) {
        for (size_t i = 0; i < n; i++) ref[i] = src[i] ^ mask[i % 4];
        ws_unmask(out, src, n, mask);
        CHECK_MEMN(ref, n, out, n);
        memcpy(out, src, n);
        ws_unmask(out, out, n, mask);
        CHECK_MEMN(ref, n, out, n);
    }
}

int main(void) {
    RUN(accept_key_matches_the_rfc_6455_sample);
    RUN(accept_key_matches_known_vectors);
    RUN(accept_key_rejects_wrong_lengths);
    RUN(accept_key_rejects_missing_padding);
    RUN(accept_key_rejects_non_base64_characters);
    RUN(accept_key_rejects_leading_whitespace);
    RUN(accept_key_rejects_padding_inside_the_key);
    RUN(accept_key_reads_only_the_slice);
    RUN(frame_header_for_empty_payload);
    RUN(frame_header_for_125_bytes_uses_7_bit_length);
    RUN(frame_header_for_126_bytes_uses_16_bit_length);
    RUN(frame_header_for_65535_bytes_uses_16_bit_length);
    RUN(frame_header_for_65536_bytes_uses_64_bit_length);
    RUN(frame_header_for_big_payloads_is_big_endian);
    RUN(frame_header_sets_fin_and_opcode_and_no_mask);
    RUN(frame_head_parses_the_rfc_6455_masked_hello);
    RUN(frame_head_lengths_and_their_shortest_forms);
    RUN(unmask_matches_bytewise_at_every_length_and_in_place);
    return check_finish("test_ws_codec");
}
