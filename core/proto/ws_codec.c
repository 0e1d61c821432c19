#include "ws_codec.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <string.h>

static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int ws_accept_key(struct slice key, char out[WS_ACCEPT_LEN + 1]) {
    /* 16 bytes in base64: 22 characters and "==". */
    if (key.len != 24 || key.p[22] != '=' || key.p[23] != '=') return -1;
    for (int i = 0; i < 22; i++) {
        char c = key.p[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/'))
            return -1; /* EVP_DecodeBlock would take '=' and whitespace inside */
    }
    unsigned char raw[18];
    if (EVP_DecodeBlock(raw, (const unsigned char *)key.p, 24) != 18) return -1;
    char input[24 + sizeof WS_GUID];
    memcpy(input, key.p, 24);
    memcpy(input + 24, WS_GUID, sizeof WS_GUID - 1);
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)input, 24 + sizeof WS_GUID - 1, md);
    return EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH) == WS_ACCEPT_LEN ? 0 : -1;
}

long ws_frame_head_parse(const uint8_t *p, size_t n, struct ws_frame_head *h) {
    if (n < 2) return 0;
    h->fin = p[0] >> 7;
    h->rsv = (p[0] >> 4) & 7;
    h->opcode = p[0] & 15;
    h->masked = p[1] >> 7;
    uint64_t len = p[1] & 127;
    size_t hl = 2;
    if (len == 126) {
        if (n < 4) return 0;
        len = (uint64_t)p[2] << 8 | p[3];
        if (len < 126) return -1;
        hl = 4;
    } else if (len == 127) {
        if (n < 10) return 0;
        len = 0;
        for (int i = 0; i < 8; i++) len = len << 8 | p[2 + i];
        if (len >> 63 || len <= 0xFFFF) return -1;
        hl = 10;
    }
    if (h->masked) {
        if (n < hl + 4) return 0;
        memcpy(h->mask, p + hl, 4);
        hl += 4;
    } else {
        memset(h->mask, 0, 4);
    }
    h->payload_len = len;
    return (long)hl;
}

void ws_unmask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t mask[4]) {
    size_t i = 0;
    /* Eight bytes at a time: the mask repeats every four. */
    uint64_t m8;
    uint8_t m[8] = {mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3]};
    memcpy(&m8, m, 8);
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, src + i, 8);
        v ^= m8;
        memcpy(dst + i, &v, 8);
    }
    for (; i < n; i++) dst[i] = src[i] ^ mask[i & 3];
}

size_t ws_frame_header_len(uint64_t payload_len) {
    return payload_len < 126 ? 2 : payload_len <= 0xFFFF ? 4 : 10;
}

size_t ws_frame_header_write(uint8_t *out, enum ws_opcode op, uint64_t payload_len) {
    out[0] = (uint8_t)(0x80 | op);
    if (payload_len < 126) {
        out[1] = (uint8_t)payload_len;
        return 2;
    }
    if (payload_len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(payload_len >> 8);
        out[3] = (uint8_t)payload_len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
    return 10;
}
