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
