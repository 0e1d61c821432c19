#include "eio.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cors.h"
#include "eio_packet.h"
#include "httpd.h"
#include "log.h"
#include "server.h"
#include "sio.h"
#include "ws.h"

/* {==================================================================
 * HTTP entry: errors as Node engine.io sends them
 * =================================================================== */

enum eio_error {
    EIO_ERR_TRANSPORT_UNKNOWN = 0,
    EIO_ERR_SESSION_UNKNOWN = 1,
    EIO_ERR_BAD_HANDSHAKE_METHOD = 2,
    EIO_ERR_BAD_REQUEST = 3,
    EIO_ERR_FORBIDDEN = 4,
    EIO_ERR_UNSUPPORTED_PROTOCOL = 5,
};

static const char *const eio_error_messages[] = {
    "Transport unknown", "Session ID unknown", "Bad handshake method",
    "Bad request", "Forbidden", "Unsupported protocol version",
};

static void respond_eio_error(struct conn *c, enum eio_error code, int keep_alive) {
    char body[96];
    int n = snprintf(body, sizeof body, "{\"code\":%d,\"message\":\"%s\"}", code, eio_error_messages[code]);
    httpd_respond(c, code == EIO_ERR_FORBIDDEN ? 403 : 400, "application/json", body, (size_t)n, NULL,
                  !keep_alive);
}

/* {==================================================================
 * Sessions
 * =================================================================== */

static void on_ws_message(void *owner, int binary, const uint8_t *p, size_t n);
static void on_ws_close(void *owner);
static const struct ws_owner_ops ws_ops = {on_ws_message, on_ws_close};

static struct eio_session *session_new(struct server *srv) {
    struct eio_session *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->srv = srv;
    server_new_sid(srv, s->sid);
    if (hmap_put(&srv->sessions, s->sid, 20, s) != 0) {
        free(s);
        return NULL;
    }
    s->next = srv->session_list;
    if (srv->session_list) srv->session_list->prev = s;
    srv->session_list = s;
    uint64_t now = server_now(srv);
    s->ping_at_ms = now + (uint64_t)srv->cfg->ping_interval_ms;
    s->connect_deadline_ms = now + (uint64_t)srv->cfg->connect_timeout_ms;
    return s;
}

void eio_close(struct eio_session *s, uint16_t ws_code, const char *reason) {
    if (s->closed) return;
    s->closed = 1;
    struct server *srv = s->srv;
    hmap_del(&srv->sessions, s->sid, 20);
    if (s->prev) s->prev->next = s->next;
    else srv->session_list = s->next;
    if (s->next) s->next->prev = s->prev;
    if (s->ws) {
        struct conn *c = s->ws;
        s->ws = NULL;
        ws_detach(c);
        ws_close(c, ws_code, NULL);
    }
    log_debug("eio", "session closed sid=%s reason=\"%s\"", s->sid, reason);
    if (s->sio) sio_client_on_close(s->sio, reason);
    s->next_dead = srv->dead_sessions;
    srv->dead_sessions = s;
}

void eio_free_dead(struct server *srv) {
    while (srv->dead_sessions) {
        struct eio_session *s = srv->dead_sessions;
        srv->dead_sessions = s->next_dead;
        if (s->sio) sio_client_free(s->sio);
        free(s);
    }
}

/* A protocol violation closes this session and nothing else. */
static void protocol_error(struct eio_session *s, const char *what) {
    s->srv->protocol_errors++;
    char peer[64] = "?";
    if (s->ws) conn_peer_name(s->ws, peer, sizeof peer);
    log_info("eio", "protocol error sid=%s peer=%s error=\"%s\"", s->sid, peer, what);
    eio_close(s, WS_CLOSE_PROTOCOL_ERROR, what);
}

static void on_packet(struct eio_session *s, int binary, const uint8_t *p, size_t n) {
    if (binary) {
        sio_client_on_binary(s->sio, p, n);
        return;
    }
    struct eio_packet pkt;
    if (eio_packet_decode((const char *)p, n, &pkt) != 0) {
        protocol_error(s, "malformed Engine.IO packet");
        return;
    }
    switch (pkt.type) {
    case EIO_MESSAGE:
        sio_client_on_text(s->sio, pkt.data.p, pkt.data.len);
        break;
    case EIO_BASE64: {
        /* A binary message sent as text (clients that cannot send binary). */
        size_t cap = pkt.data.len / 4 * 3 + 3;
        unsigned char *raw = malloc(cap + 1);
        int len = raw && pkt.data.len % 4 == 0
                      ? EVP_DecodeBlock(raw, (const unsigned char *)pkt.data.p, (int)pkt.data.len)
                      : -1;
        if (len >= 0) {
            if (pkt.data.len >= 1 && pkt.data.p[pkt.data.len - 1] == '=') len--;
            if (pkt.data.len >= 2 && pkt.data.p[pkt.data.len - 2] == '=') len--;
            sio_client_on_binary(s->sio, raw, (size_t)len);
        } else {
            protocol_error(s, "bad base64 in binary packet");
        }
        free(raw);
        break;
    }
    case EIO_PONG:
        if (s->awaiting_pong) {
            s->awaiting_pong = 0;
            s->ping_at_ms = server_now(s->srv) + (uint64_t)s->srv->cfg->ping_interval_ms;
        }
        break;
    case EIO_CLOSE:
        eio_close(s, WS_CLOSE_NORMAL, "client close");
        break;
    case EIO_PING:
        protocol_error(s, "invalid heartbeat direction");
        break;
    case EIO_UPGRADE:
    case EIO_NOOP:
        break; /* ignored outside an upgrade */
    case EIO_OPEN:
    default:
        protocol_error(s, "unexpected Engine.IO packet");
        break;
    }
}

static void on_ws_message(void *owner, int binary, const uint8_t *p, size_t n) {
    struct eio_session *s = owner;
    if (!s->closed) on_packet(s, binary, p, n);
}

static void on_ws_close(void *owner) {
    struct eio_session *s = owner;
    s->ws = NULL;
    eio_close(s, WS_CLOSE_NORMAL, "transport close");
}

void eio_sweep(struct server *srv, uint64_t now) {
    struct eio_session *next;
    for (struct eio_session *s = srv->session_list; s; s = next) {
        next = s->next;
        if (s->connect_deadline_ms && now >= s->connect_deadline_ms) {
            eio_close(s, WS_CLOSE_NORMAL, "connect timeout");
            continue;
        }
        if (now < s->ping_at_ms) continue;
        if (s->awaiting_pong) {
            eio_close(s, WS_CLOSE_NORMAL, "ping timeout");
            continue;
        }
        if (!srv->ping_frame) srv->ping_frame = ws_frame_new(WS_OP_TEXT, "2", 1, NULL, 0);
        if (srv->ping_frame) eio_send_encoded(s, srv->ping_frame);
        s->awaiting_pong = 1;
        s->ping_at_ms = now + (uint64_t)srv->cfg->ping_timeout_ms;
    }
}

/* {==================================================================
 * Output
 * =================================================================== */

buf *eio_encode(enum eio_form form, const struct eio_msg *m) {
    (void)form;
    size_t tlen = 1 + m->head_len + m->len;
    size_t total = ws_frame_header_len(tlen) + tlen;
    for (size_t i = 0; i < m->n_bin; i++) total += ws_frame_header_len(m->bin_len[i]) + m->bin_len[i];
    buf *b = buf_new(total);
    if (!b) return NULL;
    uint8_t *p = b->data;
    p += ws_frame_header_write(p, WS_OP_TEXT, tlen);
    *p++ = '4';
    if (m->head_len) memcpy(p, m->head, m->head_len);
    p += m->head_len;
    if (m->len) memcpy(p, m->text, m->len);
    p += m->len;
    for (size_t i = 0; i < m->n_bin; i++) {
        p += ws_frame_header_write(p, WS_OP_BINARY, m->bin_len[i]);
        if (m->bin_len[i]) memcpy(p, m->bin[i], m->bin_len[i]);
        p += m->bin_len[i];
    }
    return b;
}

int eio_send_encoded(struct eio_session *s, buf *wire) {
    if (s->closed || !s->ws) return -1;
    return ws_send(s->ws, wire);
}

int eio_send(struct eio_session *s, const struct eio_msg *m) {
    if (s->closed) return -1;
    buf *b = eio_encode(eio_form_of(s), m);
    if (!b) return -1;
    int rc = eio_send_encoded(s, b);
    buf_unref(b);
    return rc;
}

/* {==================================================================
 * Handshake
 * =================================================================== */

void eio_handle_request(struct conn *c, const struct http_request *req, const char *body,
                        size_t body_len, int keep_alive) {
    (void)body;
    (void)body_len;
    struct server *srv = c->srv;
    struct slice transport = {0}, eio = {0}, sid = {0};
    int has_transport = http_query_get(req->query, "transport", &transport);
    int has_sid = http_query_get(req->query, "sid", &sid);
    /* Only the WebSocket transport is served for now. */
    if (!has_transport || !slice_eq(transport, "websocket")) {
        respond_eio_error(c, EIO_ERR_TRANSPORT_UNKNOWN, keep_alive);
        return;
    }
    if (has_sid) {
        respond_eio_error(c, EIO_ERR_SESSION_UNKNOWN, keep_alive);
        return;
    }
    if (!slice_eq(req->method, "GET")) {
        respond_eio_error(c, EIO_ERR_BAD_HANDSHAKE_METHOD, keep_alive);
        return;
    }
    const struct slice *upgrade = http_header_get(req, "Upgrade");
    if (!upgrade || !http_value_has_token(*upgrade, "websocket")) {
        respond_eio_error(c, EIO_ERR_BAD_REQUEST, keep_alive);
        return;
    }
    if (!http_query_get(req->query, "EIO", &eio) || !slice_eq(eio, "4")) {
        respond_eio_error(c, EIO_ERR_UNSUPPORTED_PROTOCOL, 0);
        return;
    }
    const char *reason;
    int status = ws_check_upgrade(req, &reason);
    if (status) {
        httpd_respond(c, status, "text/plain; charset=utf-8", reason, strlen(reason),
                      status == 426 ? "Sec-WebSocket-Version: 13\r\n" : NULL, 1);
        return;
    }
    /* A browser page of another site may not open a session (cross-site
     * WebSocket hijacking): refused unless --cors-origin allows it. */
    if (!cors_origin_allowed(http_header_get(req, "Origin"), http_header_get(req, "Host"),
                             srv->cfg->cors_origins, srv->cfg->n_cors_origins)) {
        respond_eio_error(c, EIO_ERR_FORBIDDEN, 0);
        return;
    }
    if (srv->shutting_down) {
        httpd_respond(c, 503, "text/plain; charset=utf-8", "Shutting down", 13, NULL, 1);
        return;
    }
    struct eio_session *s = session_new(srv);
    if (!s || !(s->sio = sio_client_new(s, req))) {
        if (s) eio_close(s, WS_CLOSE_INTERNAL, "out of memory");
        httpd_respond(c, 503, "text/plain; charset=utf-8", "Out of memory", 13, NULL, 1);
        return;
    }
    if (ws_accept(c, req, &ws_ops, s) != 0) {
        eio_close(s, WS_CLOSE_INTERNAL, "accept failed");
        return;
    }
    s->ws = c;
    struct sbuf *open = &srv->scratch;
    sbuf_reset(open);
    if (eio_open_encode(open, s->sid, 0, srv->cfg->ping_interval_ms, srv->cfg->ping_timeout_ms,
                        srv->cfg->max_payload) != 0) {
        eio_close(s, WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    buf *b = ws_frame_new(WS_OP_TEXT, open->p, open->len, NULL, 0);
    if (b) {
        ws_send(c, b);
        buf_unref(b);
    }
    log_debug("eio", "session opened sid=%s conn=%llu transport=websocket", s->sid,
              (unsigned long long)c->id);
}
