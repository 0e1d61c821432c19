#include "eio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cors.h"
#include "base64.h"
#include "eio_packet.h"
#include "httpd.h"
#include "log.h"
#include "clock.h"
#include "ids.h"
#include "net.h"
#include "session_internal.h"
#include "ws.h"

/* {==================================================================
 * Errors as Node's engine.io answers them
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

static void respond_eio_error(struct eio_hub *hub, struct conn *c, const struct http_request *req,
                              enum eio_error code, int keep_alive) {
    char body[96], headers[512];
    int n = snprintf(body, sizeof body, "{\"code\":%d,\"message\":\"%s\"}", code, eio_error_messages[code]);
    poll_cors_headers(hub, req, headers, sizeof headers);
    httpd_respond(c, code == EIO_ERR_FORBIDDEN ? 403 : 400, "application/json", body, (size_t)n, headers,
                  !keep_alive);
}

static const struct eio_upper_ops *hub_up(const struct eio_session *s) { return s->hub->up; }

/* {==================================================================
 * Sessions
 * =================================================================== */

static void on_ws_message(void *owner, int binary, const uint8_t *p, size_t n);
static void on_ws_close(void *owner, uint16_t peer_code);
static void on_ws_pong(void *owner);
const struct ws_owner_ops eio_ws_ops = {on_ws_message, on_ws_close, on_ws_pong};
static void on_probe_message(void *owner, int binary, const uint8_t *p, size_t n);
static void on_probe_close(void *owner, uint16_t peer_code);
static const struct ws_owner_ops probe_ops = {on_probe_message, on_probe_close, NULL};
static void on_pong(struct eio_session *s);

struct eio_session *eio_session_new(struct eio_hub *hub, enum eio_kind kind, enum eio_transport tr) {
    struct eio_session *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->hub = hub;
    s->kind = kind;
    s->transport = tr;
    ids_new_sid(hub->ids, s->sid);
    if (hmap_put(&hub->sessions, s->sid, IDS_SID_LEN, s) != 0) {
        free(s);
        return NULL;
    }
    s->next = hub->session_list;
    if (hub->session_list) hub->session_list->prev = s;
    hub->session_list = s;
    uint64_t now = net_now(hub->net);
    s->ping_at_ms = now + (uint64_t)hub->cfg->ping_interval_ms;
    s->connect_deadline_ms = kind == EIO_KIND_PLAIN ? 0 : now + (uint64_t)hub->cfg->connect_timeout_ms;
    eio_wake_by(s, s->ping_at_ms);
    if (s->connect_deadline_ms) eio_wake_by(s, s->connect_deadline_ms);
    return s;
}

enum wire_form eio_form_of(const struct eio_session *s) {
    if (s->kind == EIO_KIND_PLAIN) return WIRE_PLAIN;
    return s->transport == EIO_WEBSOCKET ? WIRE_WS : WIRE_POLL;
}

static void close_probe(struct eio_session *s) {
    struct conn *probe = s->probe;
    if (!probe) return;
    s->probe = NULL;
    s->probe_answered = 0;
    ws_detach(probe);
    ws_close(probe, WS_CLOSE_NORMAL, "upgrade cancelled");
}

/* Drops the held output (the session closed). */
static void held_drop(struct eio_session *s) {
    for (uint32_t i = 0; i < s->n_held; i++) buf_unref(s->held[i].b);
    free(s->held);
    s->held = NULL;
    s->n_held = s->held_cap = 0;
    s->held_bytes = 0;
}

void eio_close(struct eio_session *s, uint16_t ws_code, const char *reason) {
    if (s->closed) return;
    s->closed = 1;
    struct eio_hub *hub = s->hub;
    wheel_cancel(&hub->timers, &s->timer);
    hmap_del(&hub->sessions, s->sid, IDS_SID_LEN);
    if (s->prev) s->prev->next = s->next;
    else hub->session_list = s->next;
    if (s->next) s->next->prev = s->prev;
    close_probe(s);
    if (s->ws) {
        struct conn *c = s->ws;
        s->ws = NULL;
        ws_detach(c);
        ws_close(c, ws_code, reason);
    }
    /* A parked GET learns of the close; the queue is dropped either way. */
    if (s->poll_get) poll_answer(s, "1");
    poll_release(s);
    held_drop(s);
    char q[LOG_QUOTED_MAX];
    log_debug("eio", "session closed sid=%s reason=\"%s\"", s->sid, log_quoted(q, sizeof q, reason));
    if (s->upper) hub_up(s)->on_close(s->upper, reason);
    s->next_dead = hub->dead_sessions;
    hub->dead_sessions = s;
}

void eio_close_after_drain(struct eio_session *s, uint16_t ws_code, const char *reason) {
    if (s->closed) return;
    if (s->transport == EIO_WEBSOCKET || s->poll_get || s->pq_head == s->pq_len) {
        eio_close(s, ws_code, reason);
        return;
    }
    s->close_after_drain_ms = net_now(s->hub->net) + EIO_POLL_CLOSE_WAIT_MS;
    eio_wake_by(s, s->close_after_drain_ms);
}

void eio_drained(struct eio_session *s) {
    if (!s->closed && s->close_after_drain_ms && s->pq_head == s->pq_len) eio_close(s, WS_CLOSE_NORMAL, "closed");
}

void eio_free_dead(struct eio_hub *hub) {
    while (hub->dead_sessions) {
        struct eio_session *s = hub->dead_sessions;
        hub->dead_sessions = s->next_dead;
        if (s->upper) hub->up->free(s->upper);
        free(s);
    }
}

void eio_protocol_error(struct eio_session *s, const char *what) {
    if (s->closed) return;
    s->hub->net->protocol_errors++;
    char peer[64] = "-";
    if (s->ws) conn_peer_name(s->ws, peer, sizeof peer);
    char q[LOG_QUOTED_MAX];
    log_info("eio", "protocol error sid=%s peer=%s error=\"%s\"", s->sid, peer, log_quoted(q, sizeof q, what));
    eio_close(s, WS_CLOSE_PROTOCOL_ERROR, what);
}

/* Keeps wire for when the holds are released (within --max-output, as the
 * transports' queues). */
static int hold_queue(struct eio_session *s, buf *wire, unsigned n_packets) {
    if (s->close_slow) return -1;
    if (s->held_bytes + wire->len > (size_t)s->hub->cfg->max_output) {
        log_warn("eio", "closing slow consumer sid=%s held=%zu", s->sid, s->held_bytes);
        s->hub->net->slow_closes++;
        s->close_slow = 1; /* closed by the session's timer, due now: we may be inside a broadcast */
        eio_wake_by(s, net_now(s->hub->net));
        return -1;
    }
    if (eio_entries_push(&s->held, &s->n_held, &s->held_cap, 8, (struct poll_entry){wire, n_packets}) != 0)
        return -1;
    buf_ref(wire);
    s->held_bytes += wire->len;
    return 0;
}


void eio_output_hold(struct eio_session *s) { s->hold_count++; }

void eio_output_ahead(struct eio_session *s, int on) { s->hold_ahead = on; }

void eio_output_release(struct eio_session *s) {
    if (!s->hold_count || --s->hold_count) return;
    struct poll_entry *held = s->held;
    uint32_t n = s->n_held;
    s->held = NULL;
    s->n_held = s->held_cap = 0;
    s->held_bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        eio_send_encoded(s, held[i].b, held[i].n_packets);
        buf_unref(held[i].b);
    }
    free(held);
}

int eio_send_encoded(struct eio_session *s, buf *wire, unsigned n_packets) {
    if (s->closed) return -1;
    if (s->hold_count && !s->hold_ahead) return hold_queue(s, wire, n_packets);
    if (s->transport == EIO_WEBSOCKET) return s->ws ? ws_send(s->ws, wire) : -1;
    return poll_queue(s, wire, n_packets);
}

void eio_flush_now(struct eio_session *s) {
    if (s->closed || s->transport != EIO_WEBSOCKET || !s->ws) return;
    conn_flush(s->ws);
    conn_hold(s->ws, EIO_AFTER_CONNECT_HOLD_MS);
}

/* Sends a bare Engine.IO packet ("2", "6", ...) in the session's form. */
static void send_eio_packet(struct eio_session *s, const char *packet) {
    enum wire_form f = eio_form_of(s);
    buf **shared = NULL;
    if (strcmp(packet, "2") == 0) shared = &s->hub->ping_wire[f]; /* built once, sent to everyone */
    buf *b = shared && *shared ? buf_ref(*shared) : wire_encode_eio(f, packet);
    if (!b) return;
    if (shared && !*shared) *shared = buf_ref(b);
    eio_send_encoded(s, b, 1);
    buf_unref(b);
}

/* {==================================================================
 * Input: one Engine.IO packet
 * =================================================================== */

void eio_on_packet(struct eio_session *s, int binary, const uint8_t *p, size_t n);

void eio_on_packet(struct eio_session *s, int binary, const uint8_t *p, size_t n) {
    if (s->closed) return;
    if (binary) {
        hub_up(s)->on_binary(s->upper, p, n);
        return;
    }
    struct eio_packet pkt;
    if (eio_packet_decode((const char *)p, n, &pkt) != 0) {
        eio_protocol_error(s, "malformed Engine.IO packet");
        return;
    }
    switch (pkt.type) {
    case EIO_MESSAGE:
        hub_up(s)->on_text(s->upper, pkt.data.p, pkt.data.len);
        break;
    case EIO_BASE64: {
        /* A binary message sent as text (polling, or clients that cannot send binary). */
        unsigned char *raw = malloc(pkt.data.len / 4 * 3 + 1);
        long len = raw ? base64_decode(raw, pkt.data.p, pkt.data.len) : -1;
        if (len >= 0) hub_up(s)->on_binary(s->upper, raw, (size_t)len);
        else eio_protocol_error(s, "bad base64 in a binary packet");
        free(raw);
        break;
    }
    case EIO_PONG:
        if (s->awaiting_pong) on_pong(s);
        break;
    case EIO_CLOSE:
        if (s->poll_get) poll_answer(s, "6"); /* as the reference: the parked GET gets a noop */
        eio_close(s, WS_CLOSE_NORMAL, "client close");
        break;
    case EIO_PING:
        eio_protocol_error(s, "invalid heartbeat direction");
        break;
    case EIO_UPGRADE:
    case EIO_NOOP:
        break; /* ignored outside an upgrade */
    default:
        eio_protocol_error(s, "unexpected Engine.IO packet");
        break;
    }
}

static void on_ws_message(void *owner, int binary, const uint8_t *p, size_t n) {
    struct eio_session *s = owner;
    if (s->closed) return;
    if (s->kind == EIO_KIND_PLAIN) {
        plain_on_message(s, binary, p, n);
        return;
    }
    eio_on_packet(s, binary, p, n);
}

static void on_ws_close(void *owner, uint16_t peer_code) {
    struct eio_session *s = owner;
    s->ws = NULL;
    /* 1001 is a browser leaving the page (closed, navigated away): the
     * client is not coming back, so this is no dropped connection to keep
     * for recovery (a network loss sends no close frame). */
    eio_close(s, WS_CLOSE_NORMAL, peer_code == 1001 ? "client going away" : "transport close");
}

static void on_ws_pong(void *owner) {
    struct eio_session *s = owner;
    if (s->kind == EIO_KIND_PLAIN && s->awaiting_pong) on_pong(s);
}

/* {==================================================================
 * Upgrade: polling -> WebSocket
 * =================================================================== */

/* Moves what polling queued onto the WebSocket, packet by packet. */
static void requeue_on_websocket(struct eio_session *s) {
    for (uint32_t i = s->pq_head; i < s->pq_len; i++) {
        buf *b = s->pq[i].b;
        size_t pos = 0;
        struct slice pkt;
        while (eio_payload_next((const char *)b->data, b->len, &pos, &pkt)) {
            buf *frame = NULL;
            if (pkt.len && pkt.p[0] == 'b') {
                unsigned char *raw = malloc(pkt.len / 4 * 3 + 1);
                long n = raw ? base64_decode(raw, pkt.p + 1, pkt.len - 1) : -1;
                if (n >= 0) frame = ws_frame_new(WS_OP_BINARY, raw, (size_t)n, NULL, 0);
                free(raw);
            } else {
                frame = ws_frame_new(WS_OP_TEXT, pkt.p, pkt.len, NULL, 0);
            }
            if (frame) {
                ws_send(s->ws, frame);
                buf_unref(frame);
            }
        }
    }
}

static void on_probe_message(void *owner, int binary, const uint8_t *p, size_t n) {
    struct eio_session *s = owner;
    if (s->closed || !s->probe) return;
    if (!binary && n == 6 && memcmp(p, "2probe", 6) == 0 && !s->probe_answered) {
        buf *b = wire_encode_eio(WIRE_WS, "3probe");
        if (b) {
            ws_send(s->probe, b);
            buf_unref(b);
        }
        s->probe_answered = 1;
        /* Release a parked GET so the client can pause polling and send "5". */
        if (s->poll_get) poll_answer(s, "6");
        return;
    }
    if (!binary && n == 1 && p[0] == '5' && s->probe_answered) {
        if (s->poll_get) poll_answer(s, "6");
        s->transport = EIO_WEBSOCKET;
        s->ws = s->probe;
        s->probe = NULL;
        s->upgrade_deadline_ms = 0;
        ws_set_owner(s->ws, &eio_ws_ops, s);
        requeue_on_websocket(s);
        poll_release(s);
        log_debug("eio", "upgraded sid=%s", s->sid);
        return;
    }
    /* Anything else on the probe: drop it, the session stays on polling. */
    close_probe(s);
}

static void on_probe_close(void *owner, uint16_t peer_code) {
    (void)peer_code;
    struct eio_session *s = owner;
    s->probe = NULL;
    s->probe_answered = 0;
}

/* {==================================================================
 * Heartbeat and timeouts
 * =================================================================== */

void eio_wake_by(struct eio_session *s, uint64_t due_ms) {
    if (!s->closed) wheel_schedule_by(&s->hub->timers, &s->timer, due_ms);
}

static uint64_t earliest(uint64_t a, uint64_t b) { return !a ? b : !b ? a : a < b ? a : b; }

/* The next time anything of this session is due (loop time). */
static uint64_t next_deadline(const struct eio_session *s) {
    struct eio_hub *hub = s->hub;
    if (s->close_slow) return net_now(hub->net); /* poll_queue asked for the close at once */
    uint64_t due = earliest(s->upgrade_deadline_ms, s->close_after_drain_ms);
    due = earliest(due, s->connect_deadline_ms);
    due = earliest(due, s->ping_at_ms);
    if (s->upper && hub->upper_deadlines) {
        uint64_t wall_due = hub->up->next_deadline(s->upper);
        if (wall_due) due = earliest(due, net_loop_time_of(hub->net, wall_due));
    }
    return due;
}

/* Runs what is due; returns 0, or -1 when the session closed. */
static int run_deadlines(struct eio_session *s, uint64_t now) {
    struct eio_hub *hub = s->hub;
    if (s->upgrade_deadline_ms && now >= s->upgrade_deadline_ms) {
        s->upgrade_deadline_ms = 0;
        close_probe(s);
    }
    if (s->close_after_drain_ms && now >= s->close_after_drain_ms) {
        eio_close(s, WS_CLOSE_NORMAL, "closed");
        return -1;
    }
    if (s->close_slow) {
        eio_close(s, WS_CLOSE_POLICY, "slow consumer");
        return -1;
    }
    if (s->upper && hub->upper_deadlines) hub->up->sweep(s->upper, clock_wall_ms());
    if (s->closed) return -1;
    if (s->connect_deadline_ms && now >= s->connect_deadline_ms) {
        eio_close(s, WS_CLOSE_NORMAL, "connect timeout");
        return -1;
    }
    if (now < s->ping_at_ms) return 0;
    if (s->awaiting_pong) {
        eio_close(s, WS_CLOSE_NORMAL, "ping timeout");
        return -1;
    }
    if (s->kind == EIO_KIND_PLAIN) {
        static const uint8_t ping_frame[2] = {0x89, 0x00}; /* a WebSocket ping, no payload */
        if (s->ws) conn_send_copy(s->ws, ping_frame, sizeof ping_frame);
    } else {
        send_eio_packet(s, "2");
    }
    s->awaiting_pong = 1;
    /* From when the ping was due, not from when the timer came round. */
    s->ping_at_ms += (uint64_t)hub->cfg->ping_timeout_ms;
    return 0;
}

/* The pong came: the next ping is pingInterval from now (as Node's
 * refresh of its ping timer), and the timer moves there from the pong
 * deadline, which would otherwise wake the server for nothing. */
static void on_pong(struct eio_session *s) {
    s->awaiting_pong = 0;
    s->ping_at_ms = net_now(s->hub->net) + (uint64_t)s->hub->cfg->ping_interval_ms;
    if (!s->closed) wheel_schedule(&s->hub->timers, &s->timer, next_deadline(s));
}

void eio_on_timer(struct wheel_entry *e, void *ud) {
    struct eio_session *s = WHEEL_OWNER(e, struct eio_session, timer);
    (void)ud;
    if (s->closed || run_deadlines(s, net_now(s->hub->net)) != 0 || s->closed) return;
    uint64_t due = next_deadline(s);
    if (due) wheel_schedule_by(&s->hub->timers, &s->timer, due);
}

/* {==================================================================
 * Requests
 * =================================================================== */

static void send_open_packet(struct eio_session *s, struct conn *c, const struct http_request *req,
                             int keep_alive) {
    struct eio_hub *hub = s->hub;
    struct sbuf *open = &hub->scratch;
    sbuf_reset(open);
    if (eio_open_encode(open, s->sid, s->transport == EIO_POLLING, hub->cfg->ping_interval_ms,
                        hub->cfg->ping_timeout_ms, hub->cfg->max_payload) != 0) {
        eio_close(s, WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    if (s->transport == EIO_WEBSOCKET) {
        buf *b = ws_frame_new(WS_OP_TEXT, open->p, open->len, NULL, 0);
        if (b) {
            ws_send(c, b);
            buf_unref(b);
        }
        return;
    }
    char headers[512];
    poll_cors_headers(hub, req, headers, sizeof headers);
    strncat(headers, "Cache-Control: no-store\r\n", sizeof headers - strlen(headers) - 1);
    httpd_respond(c, 200, "text/plain; charset=UTF-8", open->p, open->len, headers, !keep_alive);
}

/* Whether the handshake query names transport before EIO: python-engineio
 * writes "transport=X&EIO=4", engine.io-client (Node and browsers)
 * "EIO=4&transport=X". The python client passes every argument of an event
 * to handlers of fixed arity, so it must not get recovery offsets (it cannot
 * recover anyway). */
static int query_transport_first(struct slice q) {
    size_t i = 0;
    while (i < q.len) {
        size_t end = i;
        while (end < q.len && q.p[end] != '&') end++;
        size_t n = end - i;
        if (n >= 10 && memcmp(q.p + i, "transport=", 10) == 0) return 1;
        if (n >= 4 && memcmp(q.p + i, "EIO=", 4) == 0) return 0;
        i = end + 1;
    }
    return 0;
}

static void open_session(struct eio_hub *hub, struct conn *c, const struct http_request *req, int websocket,
                         int keep_alive) {
    struct eio_session *s = eio_session_new(hub, EIO_KIND_SOCKETIO, websocket ? EIO_WEBSOCKET : EIO_POLLING);
    if (s) conn_peer_name(c, s->peer, sizeof s->peer);
    if (s) s->no_offsets = query_transport_first(req->query);
    if (!s || !(s->upper = hub->up->open(hub->up_ud, s, req))) {
        if (s) eio_close(s, WS_CLOSE_INTERNAL, "out of memory");
        httpd_respond(c, 503, "text/plain; charset=utf-8", "Out of memory", 13, NULL, 1);
        return;
    }
    if (websocket) {
        if (ws_accept(c, req, &eio_ws_ops, s) != 0) {
            eio_close(s, WS_CLOSE_INTERNAL, "accept failed");
            return;
        }
        s->ws = c;
    }
    send_open_packet(s, c, req, keep_alive);
    log_debug("eio", "session opened sid=%s conn=%llu transport=%s", s->sid, (unsigned long long)c->id,
              websocket ? "websocket" : "polling");
}

/* A WebSocket for an existing polling session: the upgrade probe. */
static const struct ws_owner_ops no_owner_ops = {NULL, NULL, NULL};

static void start_probe(struct eio_session *s, struct conn *c, const struct http_request *req) {
    if (s->kind != EIO_KIND_SOCKETIO || s->transport != EIO_POLLING || s->probe) {
        /* Already upgraded or upgrading: opened, then closed at once (as the reference does). */
        if (ws_accept(c, req, &no_owner_ops, NULL) == 0) ws_close(c, WS_CLOSE_POLICY, "already upgraded or upgrading");
        return;
    }
    if (ws_accept(c, req, &probe_ops, s) != 0) return;
    s->probe = c;
    s->probe_answered = 0;
    s->upgrade_deadline_ms = net_now(s->hub->net) + EIO_UPGRADE_TIMEOUT_MS;
    eio_wake_by(s, s->upgrade_deadline_ms);
}

static int is_upgrade(const struct http_request *req) {
    const struct slice *upgrade = http_header_get(req, "Upgrade");
    return upgrade && http_value_has_token(*upgrade, "websocket");
}

/* Refuses what cannot open a WebSocket session here: a bad upgrade
 * (400/426) or a server shutting down (503). Returns 1 when it answered. */
int eio_refuse_upgrade(struct conn *c, const struct http_request *req) {
    const char *reason;
    int status = ws_check_upgrade(req, &reason);
    if (status) {
        httpd_respond(c, status, "text/plain; charset=utf-8", reason, strlen(reason),
                      status == 426 ? "Sec-WebSocket-Version: 13\r\n" : NULL, 1);
        return 1;
    }
    if (c->net->shutting_down) {
        httpd_respond(c, 503, "text/plain; charset=utf-8", "Shutting down", 13, NULL, 1);
        return 1;
    }
    return 0;
}

static void handle_request(void *ud, struct conn *c, const struct http_request *req, const char *body,
                           size_t body_len, int keep_alive) {
    struct eio_hub *hub = ud;
    const struct config *cfg = hub->cfg;
    if (slice_eq(req->method, "OPTIONS") && cfg->n_cors_origins) {
        char headers[1024];
        poll_cors_headers(hub, req, headers, sizeof headers);
        const struct slice *rh = http_header_get(req, "Access-Control-Request-Headers");
        size_t n = strlen(headers);
        snprintf(headers + n, sizeof headers - n,
                 "Access-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,DELETE\r\n"
                 "Vary: Access-Control-Request-Headers\r\n%s%.*s%s",
                 rh ? "Access-Control-Allow-Headers: " : "", rh ? (int)(rh->len > 400 ? 400 : rh->len) : 0,
                 rh ? rh->p : "", rh ? "\r\n" : "");
        httpd_respond(c, 204, NULL, NULL, 0, headers, !keep_alive);
        return;
    }
    /* A browser page of another site may not use the server (cross-site
     * WebSocket hijacking, reading polling responses): refused unless
     * --cors-origin allows it. */
    if (!cors_origin_allowed(http_header_get(req, "Origin"), http_header_get(req, "Host"),
                             cfg->cors_origins, cfg->n_cors_origins)) {
        respond_eio_error(hub, c, req, EIO_ERR_FORBIDDEN, 0);
        return;
    }
    struct slice transport = {0}, eio = {0}, sid = {0};
    int has_transport = http_query_get(req->query, "transport", &transport);
    int websocket = has_transport && slice_eq(transport, "websocket");
    if (!has_transport || (!websocket && !slice_eq(transport, "polling"))) {
        respond_eio_error(hub, c, req, EIO_ERR_TRANSPORT_UNKNOWN, keep_alive);
        return;
    }
    if (http_query_get(req->query, "sid", &sid)) {
        struct eio_session *s = sid.len == IDS_SID_LEN ? hmap_get(&hub->sessions, sid.p, sid.len) : NULL;
        if (!s && sid.len == IDS_SID_LEN && hub->foreign && hub->foreign(hub->foreign_ud, c, sid.p)) return;
        /* A session whose pong is overdue is gone, even if its timer has not run yet this turn. */
        if (s && s->awaiting_pong && net_now(hub->net) >= s->ping_at_ms) {
            eio_close(s, WS_CLOSE_NORMAL, "ping timeout");
            s = NULL;
        }
        if (!s || s->kind != EIO_KIND_SOCKETIO) {
            respond_eio_error(hub, c, req, EIO_ERR_SESSION_UNKNOWN, keep_alive);
            return;
        }
        if (websocket) {
            const char *reason;
            int status = is_upgrade(req) ? ws_check_upgrade(req, &reason) : 400;
            if (status) respond_eio_error(hub, c, req, EIO_ERR_BAD_REQUEST, 0);
            else start_probe(s, c, req);
            return;
        }
        if (s->transport != EIO_POLLING) {
            respond_eio_error(hub, c, req, EIO_ERR_BAD_REQUEST, keep_alive);
            return;
        }
        if (slice_eq(req->method, "GET")) poll_handle_get(s, c, req, keep_alive);
        else if (slice_eq(req->method, "POST") && s->post_conn_id && s->post_conn_id != c->id) {
            /* A second POST while another's body still arrives: 400, and the session ends. */
            httpd_respond(c, 400, NULL, NULL, 0, NULL, !keep_alive);
            eio_close(s, WS_CLOSE_NORMAL, "overlapping POST");
        } else if (slice_eq(req->method, "POST")) poll_handle_post(s, c, req, body, body_len, keep_alive);
        else httpd_respond(c, 500, NULL, NULL, 0, NULL, !keep_alive);
        return;
    }
    if (!slice_eq(req->method, "GET")) {
        respond_eio_error(hub, c, req, EIO_ERR_BAD_HANDSHAKE_METHOD, keep_alive);
        return;
    }
    if (websocket && !is_upgrade(req)) {
        respond_eio_error(hub, c, req, EIO_ERR_BAD_REQUEST, keep_alive);
        return;
    }
    if (!http_query_get(req->query, "EIO", &eio) || !slice_eq(eio, "4")) {
        respond_eio_error(hub, c, req, EIO_ERR_UNSUPPORTED_PROTOCOL, keep_alive && !websocket);
        return;
    }
    if (websocket && eio_refuse_upgrade(c, req)) return;
    if (!websocket && hub->net->shutting_down) {
        httpd_respond(c, 503, "text/plain; charset=utf-8", "Shutting down", 13, NULL, 1);
        return;
    }
    open_session(hub, c, req, websocket, keep_alive);
}

static struct eio_session *polling_session_of(struct eio_hub *hub, const struct http_request *req) {
    struct slice sid, transport;
    if (req->path.len < 11 || memcmp(req->path.p, "/socket.io/", 11) != 0) return NULL;
    if (!http_query_get(req->query, "transport", &transport) || !slice_eq(transport, "polling")) return NULL;
    if (!http_query_get(req->query, "sid", &sid) || sid.len != IDS_SID_LEN) return NULL;
    return hmap_get(&hub->sessions, sid.p, sid.len);
}

/* A polling POST's head arrived and its body is still coming: a second
 * POST meanwhile is refused, as the reference does. */
static int note_partial_post(void *ud, struct conn *c, const struct http_request *req) {
    struct eio_session *s = polling_session_of(ud, req);
    if (!s || s->post_conn_id) return 0;
    s->post_conn_id = c->id;
    memcpy(c->partial_key, s->sid, IDS_SID_LEN + 1);
    return 1;
}

static void end_partial_post(void *ud, struct conn *c) {
    struct eio_hub *hub = ud;
    struct eio_session *s = hmap_get(&hub->sessions, c->partial_key, IDS_SID_LEN);
    if (s && s->post_conn_id == c->id) s->post_conn_id = 0;
}

/* {==================================================================
 * The hub
 * =================================================================== */

static void flush_polls_hook(void *hub) { eio_flush_polls(hub); }
static void free_dead_hook(void *hub) { eio_free_dead(hub); }

void eio_hub_init(struct eio_hub *hub, struct net *net, struct ids *ids, const struct eio_upper_ops *up,
                  void *up_ud) {
    hub->net = net;
    hub->cfg = net->cfg;
    hub->ids = ids;
    hub->up = up;
    hub->up_ud = up_ud;
    hub->record_separator = buf_from("\x1e", 1);
    net_add_wheel(net, &hub->timers, eio_on_timer);
    net_add_turn_hook(net, NET_BEFORE_FLUSH, flush_polls_hook, hub);
    net_add_turn_hook(net, NET_AFTER_FLUSH, free_dead_hook, hub);
    hub->route = (struct http_route){.path = "/socket.io/", .flags = HTTP_ROUTE_PREFIX, .handle = handle_request,
                                     .body_pending = note_partial_post, .body_ended = end_partial_post, .ud = hub};
    httpd_add_route(net, &hub->route);
    plain_init(hub);
}

void eio_hub_close_all(struct eio_hub *hub, uint16_t ws_code, const char *reason) {
    struct eio_session *next;
    for (struct eio_session *s = hub->session_list; s; s = next) {
        next = s->next;
        eio_close(s, ws_code, reason);
    }
}

void eio_hub_free(struct eio_hub *hub) {
    eio_free_dead(hub);
    hmap_free(&hub->sessions);
    sbuf_free(&hub->scratch);
    for (int i = 0; i < WIRE_FORMS; i++) buf_unref(hub->ping_wire[i]);
    buf_unref(hub->record_separator);
}
