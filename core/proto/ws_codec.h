/* ws_codec: the pure parts of RFC 6455 the server needs besides wslay:
 * the handshake's accept key and prebuilt unmasked server frames. */
#ifndef SPACE_WS_CODEC_H
#define SPACE_WS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

#define WS_ACCEPT_LEN 28 /* base64 of a SHA-1 digest */
#define WS_FRAME_HEADER_MAX 10

enum ws_opcode { WS_OP_CONT = 0, WS_OP_TEXT = 1, WS_OP_BINARY = 2, WS_OP_CLOSE = 8 };

/* Checks a Sec-WebSocket-Key (base64 of 16 bytes) and writes the
 * Sec-WebSocket-Accept value, NUL-terminated, into out[WS_ACCEPT_LEN + 1].
 * Returns 0, or -1 when the key is malformed. */
int ws_accept_key(struct slice key, char out[WS_ACCEPT_LEN + 1]);

/* A frame's header (RFC 6455 §5.2), as a client sends it. */
struct ws_frame_head {
    int fin, rsv, opcode, masked;
    uint64_t payload_len;
    uint8_t mask[4];
};

/* Parses the frame header at p (n bytes there). Returns its length (2 to
 * 14), 0 when more bytes are needed, or -1 when the length is not in its
 * shortest form or has the top bit set (both are protocol errors). */
long ws_frame_head_parse(const uint8_t *p, size_t n, struct ws_frame_head *h);
/* Unmasks n payload bytes from src into dst (the mask's phase starts at 0). */
void ws_unmask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t mask[4]);

/* Length of the header of an unmasked final frame of payload_len bytes. */
size_t ws_frame_header_len(uint64_t payload_len);
/* Writes that header (FIN set, no mask) at out; returns its length. */
size_t ws_frame_header_write(uint8_t *out, enum ws_opcode op, uint64_t payload_len);

#endif
