/* ws: the WebSocket transport of a conn. The upgrade handshake, wslay for
 * receiving (masking, fragmentation, ping/pong, close, UTF-8, size limit)
 * except whole small data frames, which ws_codec parses without it, and
 * prebuilt unmasked frames for sending: data frames never go through
 * wslay's queue (it copies every message), only control frames do. Knows
 * nothing of Engine.IO: it delivers whole messages to its owner. */
#ifndef SPACE_WS_H
#define SPACE_WS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "conn.h"
#include "http.h"
#include "ws_codec.h"

/* Close codes (RFC 6455 §7.4.1). */
enum {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL_ERROR = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_INVALID_DATA = 1007,
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL = 1011,
    WS_CLOSE_TRY_AGAIN_LATER = 1013,
    WS_CLOSE_KICKED = 4000,       /* the admin API disconnected or banned the user */
    WS_CLOSE_UNAUTHORIZED = 4401, /* the plain /ws protocol: login refused */
};

#define WS_CTX_POOL_MAX 64              /* idle wslay contexts kept for reuse: 8.6 KB each */
#define WS_PAYLOAD_BUF_BYTES (64 * 1024) /* the largest frame unmasked without wslay */

struct ws_ctx;

/* What every WebSocket of a loop shares (struct net holds it). */
struct ws_shared {
    uint64_t partial_bytes;       /* messages partly received, all conns (--max-partial-bytes) */
    struct ws_ctx *ctx_pool;      /* wslay contexts between frames, for reuse */
    unsigned ctx_pool_n;
    uint8_t payload_buf[WS_PAYLOAD_BUF_BYTES]; /* a whole small frame's unmasked payload */
};

/* What a WebSocket's owner (an Engine.IO session, a /ws session) hears. */
struct ws_owner_ops {
    /* A whole message arrived (text is valid UTF-8). */
    void (*on_message)(void *owner, int binary, const uint8_t *p, size_t n);
    /* The WebSocket is gone (closed by either side); the conn must not be
     * used after this returns. peer_code is the status of the peer's close
     * frame (1005 for none in it), or 0 when the peer sent none (a dropped
     * connection, or the server closed first). */
    void (*on_close)(void *owner, uint16_t peer_code);
    /* A pong frame arrived (may be NULL). */
    void (*on_pong)(void *owner);
};

/* Checks the upgrade request. Returns 0, or the HTTP status to answer
 * (400, 426) with *reason set. */
int ws_check_upgrade(const struct http_request *req, const char **reason);

/* Answers 101 and switches c to the WebSocket transport. Returns 0, or -1
 * (the conn was closed). */
int ws_accept(struct conn *c, const struct http_request *req, const struct ws_owner_ops *ops,
              void *owner);

/* Builds one unmasked text or binary frame of len bytes. The payload is
 * head (hlen bytes) followed by body (blen bytes); either may be empty. */
buf *ws_frame_new(enum ws_opcode op, const void *head, size_t hlen, const void *body, size_t blen);

/* Queues a prebuilt frame (or several concatenated). Returns 0 or -1. */
int ws_send(struct conn *c, buf *frames);
/* Sends a close frame with code and reason, then closes the conn. The
 * owner's on_close runs. */
void ws_close(struct conn *c, uint16_t code, const char *reason);
/* Detaches the owner: on_close will not be called. */
void ws_detach(struct conn *c);
/* Hands the WebSocket to another owner (an upgrade probe becoming the session's transport). */
void ws_set_owner(struct conn *c, const struct ws_owner_ops *ops, void *owner);

/* Frees the server's pool of idle wslay contexts (at exit). */
void ws_pool_free(struct net *net);

extern const struct transport ws_transport;

#endif
