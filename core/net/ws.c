#include "ws.h"

#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

#include "httpd.h"
#include "log.h"
#include "net.h"
#include "utf8.h"

/* An idle WebSocket holds no wslay context: its two 4 KiB buffers would be
 * most of an idle connection's memory. A context is attached when bytes
 * arrive and freed again once wslay stands between frames with nothing
 * queued (a fresh context starts in exactly that state). To know where
 * the frames end we count the bytes fed to wslay against the bytes the
 * frames it started declared. */
/* wslay's user_data is fixed when a context is made, and contexts move
 * from conn to conn through the server's pool: they reach their conn
 * through this. */
struct ws_ctx {
    wslay_event_context_ptr wslay;
    struct conn *conn;    /* the conn it serves; NULL while pooled */
    struct ws_ctx *next;  /* in net.ws.ctx_pool */
};

struct big_frame;

struct ws_state {
    struct ws_ctx *ctx;      /* NULL while idle */
    struct big_frame *big;   /* a frame received without wslay over several reads (see feed_big_frame) */
    uint64_t fed;            /* bytes handed to this ctx */
    uint64_t framed;         /* header + payload bytes of the frames it started */
    int fragmented;          /* a data message's final frame is still to come */
    const struct ws_owner_ops *ops;
    void *owner;             /* NULL once detached or told of the close */
    const uint8_t *in;       /* bytes of the current read, for wslay's recv callback */
    size_t in_len;
    int in_recv;             /* inside wslay_event_recv: wslay_event_send waits until it returns */
    int bad_close;           /* the peer's close frame was malformed: answer 1002 */
    uint16_t peer_close_code; /* the status of the peer's close frame; 0 before one came */
    int over_partial_cap;    /* the server holds too much partly received data: answer 1013 */
    uint64_t partial;        /* bytes of the message being received, counted in net.ws.partial_bytes */
    int close_head_held;     /* send_cb holds wslay's bare close header (see send_cb) */
};

static void release_partial(struct conn *c, struct ws_state *ws) {
    c->net->ws.partial_bytes -= ws->partial;
    ws->partial = 0;
}

static struct ws_state *state_of(struct conn *c) { return c->tr == &ws_transport ? c->tr_state : NULL; }

int ws_check_upgrade(const struct http_request *req, const char **reason) {
    const struct slice *upgrade = http_header_get(req, "Upgrade");
    const struct slice *connection = http_header_get(req, "Connection");
    const struct slice *version = http_header_get(req, "Sec-WebSocket-Version");
    const struct slice *key = http_header_get(req, "Sec-WebSocket-Key");
    if (!slice_eq(req->method, "GET") || req->minor_version < 1) {
        *reason = "WebSocket upgrade needs GET and HTTP/1.1";
        return 400;
    }
    if (!upgrade || !http_value_has_token(*upgrade, "websocket") || !connection ||
        !http_value_has_token(*connection, "upgrade")) {
        *reason = "Expected a WebSocket upgrade";
        return 400;
    }
    if (!version || !slice_eq(*version, "13")) {
        *reason = "Unsupported WebSocket version (13 only)";
        return 426;
    }
    char accept[WS_ACCEPT_LEN + 1];
    if (!key || ws_accept_key(*key, accept) != 0) {
        *reason = "Bad Sec-WebSocket-Key";
        return 400;
    }
    return 0;
}

/* {==================================================================
 * wslay callbacks
 * =================================================================== */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *out, size_t len, int flags, void *ud) {
    (void)flags;
    struct conn *c = ((struct ws_ctx *)ud)->conn;
    struct ws_state *ws = c->tr_state;
    if (ws->in_len == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < ws->in_len ? len : ws->in_len;
    memcpy(out, ws->in, n);
    ws->in += n;
    ws->in_len -= n;
    ws->fed += n;
    return (ssize_t)n;
}

/* The reason text of a close the server starts for this code (at most
 * 123 bytes, the room a close frame has). */
static const char *close_reason_for(uint16_t code) {
    switch (code) {
    case WS_CLOSE_PROTOCOL_ERROR: return "malformed WebSocket frame";
    case WS_CLOSE_INVALID_DATA: return "invalid UTF-8 in a text message";
    case WS_CLOSE_TOO_BIG: return "message over --max-payload";
    case WS_CLOSE_INTERNAL: return "out of memory";
    case WS_CLOSE_TRY_AGAIN_LATER: return "server busy: too many partly received messages";
    default: return "closed";
    }
}

/* A close frame: code, then reason cut to what a frame holds (at a UTF-8
 * boundary). Returns its length; out needs 127 bytes. */
static size_t close_frame(uint8_t *out, uint16_t code, const char *reason) {
    size_t rlen = reason ? strlen(reason) : 0;
    if (rlen > 123) {
        rlen = 123;
        while (rlen > 0 && ((uint8_t)reason[rlen] & 0xC0) == 0x80) rlen--;
    }
    out[0] = 0x80 | WS_OP_CLOSE;
    out[1] = (uint8_t)(2 + rlen);
    out[2] = (uint8_t)(code >> 8);
    out[3] = (uint8_t)code;
    if (rlen) memcpy(out + 4, reason, rlen);
    return 4 + rlen;
}

/* wslay only sends control frames (pong, close); always accept them whole
 * so that our prebuilt frames never interleave with half a wslay frame.
 * A close wslay starts itself (a frame it refused: 1002, 1007, 1009) has a
 * code and no reason, and wslay sends the header apart from the payload:
 * the header is held here and the frame sent again with a reason. An
 * echo of the peer's close goes out as it is. */
static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *ud) {
    (void)flags;
    struct conn *c = ((struct ws_ctx *)ud)->conn;
    struct ws_state *ws = c->tr_state;
    if (!wslay_event_get_close_received(ctx)) {
        if (len == 2 && data[0] == (0x80 | WS_OP_CLOSE) && data[1] == 2 && !ws->close_head_held) {
            ws->close_head_held = 1;
            return (ssize_t)len;
        }
        if (ws->close_head_held && len == 2) {
            ws->close_head_held = 0;
            uint8_t frame[127];
            uint16_t code = (uint16_t)(data[0] << 8 | data[1]);
            if (conn_send_copy(c, frame, close_frame(frame, code, close_reason_for(code))) != 0) {
                wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
                return -1;
            }
            return (ssize_t)len;
        }
    }
    if (conn_send_copy(c, data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

/* wslay allocates a message as its frames start: count what all clients
 * hold half-received, so that many uploads at once cannot exhaust memory. */
static void on_frame_start_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_frame_recv_start_arg *arg,
                              void *ud) {
    (void)ctx;
    struct conn *c = ((struct ws_ctx *)ud)->conn;
    struct ws_state *ws = c->tr_state;
    /* A client frame is always masked (wslay refuses others) and uses the
     * shortest length encoding (wslay refuses others). */
    uint64_t len = arg->payload_length;
    ws->framed += 2 + (len < 126 ? 0 : len < 65536 ? 2 : 8) + 4 + len;
    if (arg->opcode >= 8) return; /* control frames: 125 bytes at most, never fragment a message */
    ws->fragmented = !arg->fin;
    ws->partial += arg->payload_length;
    c->net->ws.partial_bytes += arg->payload_length;
    if (c->net->ws.partial_bytes > (uint64_t)c->net->cfg->max_partial_bytes) ws->over_partial_cap = 1;
}

static void on_msg_recv_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                           void *ud) {
    (void)ctx;
    struct conn *c = ((struct ws_ctx *)ud)->conn;
    struct ws_state *ws = c->tr_state;
    if (arg->opcode < 8) release_partial(c, ws);
    if (arg->opcode == WSLAY_CONNECTION_CLOSE && arg->msg_length == 1) ws->bad_close = 1;
    if (arg->opcode == WSLAY_CONNECTION_CLOSE) ws->peer_close_code = arg->status_code ? arg->status_code : 1005;
    if (!ws->owner || conn_is_closing(c)) return;
    if (arg->opcode == WSLAY_PONG && ws->ops->on_pong) ws->ops->on_pong(ws->owner);
    else if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME)
        ws->ops->on_message(ws->owner, arg->opcode == WSLAY_BINARY_FRAME, arg->msg, arg->msg_length);
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .on_msg_recv_callback = on_msg_recv_cb,
    .on_frame_recv_start_callback = on_frame_start_cb,
};

/* }================================================================== */

static void notify_close(struct ws_state *ws) {
    void *owner = ws->owner;
    ws->owner = NULL;
    if (owner) ws->ops->on_close(owner, ws->peer_close_code);
}

/* After wslay ran: close the conn once wslay wants neither to read nor to
 * write (a close handshake finished, or an error queued a close frame). */
static void after_wslay(struct conn *c, struct ws_state *ws) {
    if (wslay_event_send(ws->ctx->wslay) != 0) {
        conn_close(c);
        return;
    }
    if (conn_is_closing(c)) return;
    if (!wslay_event_want_read(ws->ctx->wslay) && !wslay_event_want_write(ws->ctx->wslay)) {
        notify_close(ws);
        conn_close_after_flush(c);
    }
}

/* Closes with a close frame of our own, bypassing wslay: for errors where
 * wslay would send a close without a status code. */
static void close_raw(struct conn *c, struct ws_state *ws, uint16_t code) {
    notify_close(ws);
    if (ws->ctx) wslay_event_shutdown_write(ws->ctx->wslay);
    uint8_t frame[127];
    conn_send_copy(c, frame, close_frame(frame, code, close_reason_for(code)));
    conn_close_after_flush(c);
}

static int attach_ctx(struct conn *c, struct ws_state *ws) {
    if (ws->ctx) return 0;
    struct net *net = c->net;
    struct ws_ctx *x = net->ws.ctx_pool;
    if (x) {
        net->ws.ctx_pool = x->next;
        net->ws.ctx_pool_n--;
    } else {
        x = malloc(sizeof *x);
        if (!x) return -1;
        if (wslay_event_context_server_init(&x->wslay, &callbacks, x) != 0) {
            free(x);
            return -1;
        }
        /* wslay allocates a frame's declared length up front: keep it bounded. */
        wslay_event_config_set_max_recv_msg_length(x->wslay, (uint64_t)net->cfg->max_payload);
    }
    x->conn = c;
    x->next = NULL;
    ws->ctx = x;
    ws->fed = ws->framed = 0;
    ws->fragmented = 0;
    return 0;
}

static void free_ctx(struct ws_ctx *x) {
    wslay_event_context_free(x->wslay);
    free(x);
}

/* Pools a context that stands between frames with nothing queued: it is
 * then in the state of a new one (busy conns skip two 4 KiB callocs a read). */
static void release_ctx(struct net *net, struct ws_ctx *x) {
    if (net->ws.ctx_pool_n >= WS_CTX_POOL_MAX) {
        free_ctx(x);
        return;
    }
    x->conn = NULL;
    x->next = net->ws.ctx_pool;
    net->ws.ctx_pool = x;
    net->ws.ctx_pool_n++;
}

void ws_pool_free(struct net *net) {
    while (net->ws.ctx_pool) {
        struct ws_ctx *x = net->ws.ctx_pool;
        net->ws.ctx_pool = x->next;
        free_ctx(x);
    }
    net->ws.ctx_pool_n = 0;
}

/* Frees the context when nothing would be lost: no partial frame or
 * message received, nothing queued to send, no close under way. */
static void detach_ctx_if_idle(struct conn *c, struct ws_state *ws) {
    if (!ws->ctx || conn_is_closing(c) || ws->fed != ws->framed || ws->fragmented) return;
    wslay_event_context_ptr w = ws->ctx->wslay;
    if (wslay_event_want_write(w) || wslay_event_get_queued_msg_count(w) || wslay_event_get_close_received(w) ||
        wslay_event_get_close_sent(w) || !wslay_event_want_read(w))
        return;
    release_ctx(c->net, ws->ctx);
    ws->ctx = NULL;
}

/* A final, masked text or binary frame that does not arrive in one read
 * (an upload), begun while no wslay context is attached: its payload is
 * unmasked straight into one block of its size as the reads come (the one
 * copy of its bytes after the socket's) and delivered from there when
 * complete. Through wslay the same bytes were copied into its frame buffer
 * and again into a message, unmasked and UTF-8-checked a byte at a time:
 * most of the loop's time while uploads arrived, hundreds of milliseconds
 * per turn with a few dozen at once. Counted in partial_bytes as wslay's. */
struct big_frame {
    size_t len, got;
    uint8_t mask[4];
    int binary;
    uint8_t data[];
};

/* Starts a big frame of h (header hl bytes, parsed); 0, or -1 when the
 * conn was closed (over --max-partial-bytes, or out of memory). */
static int start_big_frame(struct conn *c, struct ws_state *ws, const struct ws_frame_head *h) {
    struct net *net = c->net;
    size_t len = (size_t)h->payload_len;
    ws->partial += len;
    net->ws.partial_bytes += len;
    if (net->ws.partial_bytes > (uint64_t)net->cfg->max_partial_bytes) {
        log_warn("ws", "closing conn=%llu: partly received messages exceed --max-partial-bytes",
                 (unsigned long long)c->id);
        release_partial(c, ws);
        close_raw(c, ws, WS_CLOSE_TRY_AGAIN_LATER);
        return -1;
    }
    struct big_frame *b = malloc(sizeof *b + len);
    if (!b) {
        release_partial(c, ws);
        close_raw(c, ws, WS_CLOSE_INTERNAL);
        return -1;
    }
    b->len = len;
    b->got = 0;
    memcpy(b->mask, h->mask, 4);
    b->binary = h->opcode == WS_OP_BINARY;
    ws->big = b;
    return 0;
}

/* Feeds the big frame from the n bytes at p; delivers it once complete.
 * Returns the bytes consumed; the conn may be closing afterwards. */
static size_t feed_big_frame(struct conn *c, struct ws_state *ws, const uint8_t *p, size_t n) {
    struct big_frame *b = ws->big;
    size_t take = b->len - b->got < n ? b->len - b->got : n;
    uint8_t mask[4]; /* the mask from this byte's place in the payload on */
    for (int i = 0; i < 4; i++) mask[i] = b->mask[(b->got + (size_t)i) & 3];
    ws_unmask(b->data + b->got, p, take, mask);
    b->got += take;
    if (b->got < b->len) return take;
    ws->big = NULL;
    release_partial(c, ws);
    if (!b->binary && !utf8_valid(b->data, b->len)) {
        free(b);
        c->net->protocol_errors++;
        close_raw(c, ws, WS_CLOSE_INVALID_DATA);
        return n;
    }
    if (ws->owner) ws->ops->on_message(ws->owner, b->binary, b->data, b->len);
    free(b);
    return take;
}

/* The common case without wslay: whole, final, masked text or binary frames
 * that fit the payload buffer, arriving while no context is attached (so
 * wslay stands between frames and misses nothing). They are unmasked into
 * one shared buffer and delivered at once; wslay's per-message costs (its
 * own copy of the bytes, a malloc per frame and per message, a byte-wise
 * UTF-8 automaton) were the largest part of the WebSocket's share of an
 * inbound event. Anything else goes to wslay from the first such frame on.
 * Returns the bytes consumed; the conn may be closing afterwards. */
static size_t deliver_simple_frames(struct conn *c, struct ws_state *ws, const uint8_t *p, size_t n) {
    struct net *net = c->net;
    size_t used = 0;
    while (used < n && !conn_is_closing(c) && !ws->ctx) {
        if (ws->big) {
            used += feed_big_frame(c, ws, p + used, n - used);
            if (c->flags & CONN_CLOSING) return n; /* ws is gone */
            continue;
        }
        if (!ws->owner) break;
        struct ws_frame_head h;
        long hl = ws_frame_head_parse(p + used, n - used, &h);
        if (hl <= 0 || !h.fin || h.rsv || !h.masked || (h.opcode != WS_OP_TEXT && h.opcode != WS_OP_BINARY) ||
            h.payload_len > (uint64_t)net->cfg->max_payload)
            break;
        if (h.payload_len > sizeof net->ws.payload_buf || h.payload_len > n - used - (size_t)hl) {
            used += (size_t)hl;
            if (start_big_frame(c, ws, &h) != 0) return n;
            continue;
        }
        size_t len = (size_t)h.payload_len;
        ws_unmask(net->ws.payload_buf, p + used + hl, len, h.mask);
        used += (size_t)hl + len;
        if (h.opcode == WS_OP_TEXT && !utf8_valid(net->ws.payload_buf, len)) {
            net->protocol_errors++;
            close_raw(c, ws, WS_CLOSE_INVALID_DATA);
            return n;
        }
        ws->ops->on_message(ws->owner, h.opcode == WS_OP_BINARY, net->ws.payload_buf, len);
        if (c->flags & CONN_CLOSING) return n; /* ws is gone */
    }
    return used;
}

static void on_data(struct conn *c, const char *p, size_t n) {
    struct ws_state *ws = c->tr_state;
    if (!ws->ctx) {
        size_t used = deliver_simple_frames(c, ws, (const uint8_t *)p, n);
        if (used == n || conn_is_closing(c)) return;
        p += used;
        n -= used;
    }
    if (attach_ctx(c, ws) != 0) {
        log_warn("ws", "closing conn=%llu: out of memory", (unsigned long long)c->id);
        conn_close(c);
        return;
    }
    ws->in = (const uint8_t *)p;
    ws->in_len = n;
    ws->in_recv = 1;
    int rc = wslay_event_recv(ws->ctx->wslay);
    ws->in_recv = 0;
    ws->in_len = 0;
    if (c->flags & CONN_CLOSING) return;
    /* Our recv callback never fails, so an error here is the peer's: a
     * malformed frame (wslay would queue a close without a code). */
    if ((rc != 0 || ws->bad_close) && !conn_is_closing(c)) {
        c->net->protocol_errors++;
        close_raw(c, ws, rc == WSLAY_ERR_NOMEM ? WS_CLOSE_INTERNAL : WS_CLOSE_PROTOCOL_ERROR);
        return;
    }
    if (ws->over_partial_cap && !conn_is_closing(c)) {
        log_warn("ws", "closing conn=%llu: partly received messages exceed --max-partial-bytes",
                 (unsigned long long)c->id);
        release_partial(c, ws);
        close_raw(c, ws, WS_CLOSE_TRY_AGAIN_LATER);
        return;
    }
    after_wslay(c, ws);
    if (!(c->flags & CONN_CLOSING)) detach_ctx_if_idle(c, ws);
}

static void on_timeout(struct conn *c) { conn_close(c); }

static void on_close(struct conn *c) {
    struct ws_state *ws = c->tr_state;
    if (!ws) return;
    release_partial(c, ws);
    free(ws->big);
    notify_close(ws);
    if (ws->ctx) free_ctx(ws->ctx); /* mid-frame or closing: not reusable */
    free(ws);
}

const struct transport ws_transport = {
    .name = "websocket",
    .on_data = on_data,
    .on_timeout = on_timeout,
    .on_close = on_close,
};

int ws_accept(struct conn *c, const struct http_request *req, const struct ws_owner_ops *ops,
              void *owner) {
    char accept[WS_ACCEPT_LEN + 1];
    ws_accept_key(*http_header_get(req, "Sec-WebSocket-Key"), accept);
    struct ws_state *ws = calloc(1, sizeof *ws);
    if (!ws) {
        conn_close(c);
        return -1;
    }
    ws->ops = ops;
    ws->owner = owner;

    char resp[256];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    c->tr = &ws_transport;
    c->tr_state = ws;
    conn_set_deadline(c, 0);
    return conn_send_copy(c, resp, (size_t)n);
}

buf *ws_frame_new(enum ws_opcode op, const void *head, size_t hlen, const void *body, size_t blen) {
    size_t plen = hlen + blen, h = ws_frame_header_len(plen);
    buf *b = buf_new(h + plen);
    if (!b) return NULL;
    ws_frame_header_write(b->data, op, plen);
    if (hlen) memcpy(b->data + h, head, hlen);
    if (blen) memcpy(b->data + h + hlen, body, blen);
    return b;
}

int ws_send(struct conn *c, buf *frames) {
    if (!state_of(c)) return -1;
    return conn_send(c, frames);
}

void ws_close(struct conn *c, uint16_t code, const char *reason) {
    struct ws_state *ws = state_of(c);
    if (!ws || conn_is_closing(c)) return;
    notify_close(ws);
    if (attach_ctx(c, ws) != 0) {
        conn_close(c);
        return;
    }
    /* Every close the server starts says why, briefly (what fits a frame). */
    uint8_t frame[127];
    size_t n = close_frame(frame, code, reason && *reason ? reason : close_reason_for(code));
    wslay_event_queue_close(ws->ctx->wslay, code, frame + 4, n - 4);
    if (!ws->in_recv && wslay_event_send(ws->ctx->wslay) != 0) {
        conn_close(c);
        return;
    }
    conn_close_after_flush(c);
}

void ws_set_owner(struct conn *c, const struct ws_owner_ops *ops, void *owner) {
    struct ws_state *ws = state_of(c);
    if (!ws) return;
    ws->ops = ops;
    ws->owner = owner;
}

void ws_detach(struct conn *c) {
    struct ws_state *ws = state_of(c);
    if (ws) ws->owner = NULL;
}
