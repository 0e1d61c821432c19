#include "sio.h"
#include "sio_internal.h"

#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "auth.h"
#include "ban.h"
#include "clock.h"
#include "eio.h"
#include "json_scan.h"
#include "json_str.h"
#include "log.h"
#include "metrics.h"
#include "net.h"
#include "user.h"
#include "utf8.h"
#include "wire.h"
#include "ws.h"
#include "wsjson.h"

static void *client_open(void *hub, struct eio_session *eio, const struct http_request *req) {
    struct sio_client *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->handshake_token = auth_token_from_request(req);
    c->eio = eio;
    c->hub = hub;
    return c;
}

static void pending_clear(struct pending_binary *p) {
    free(p->text);
    for (unsigned i = 0; i < p->got; i++) free(p->att[i]);
    memset(p, 0, sizeof *p);
}

static void client_free(void *client) {
    struct sio_client *c = client;
    pending_clear(&c->pending);
    if (c->plain_ids)
        for (int i = 0; i < PLAIN_IDS_MAX; i++) free(c->plain_ids->text[i]);
    free(c->plain_ids);
    free(c->handshake_token);
    free(c);
}

static void protocol_error(struct sio_client *c, const char *what) { eio_protocol_error(c->eio, what); }

/* Why the JSON of a packet the Lua decoder refused is valid JSON that the
 * server still will not take (nested too deep, a number beyond a double):
 * the sender is answered and stays. NULL when it is not JSON at all: a
 * malformed packet, a protocol violation. */
static const char *refused_json(struct slice json) {
    switch (json_check(json.p, json.len, JSON_SCAN_MAX_DEPTH, NULL)) {
    case JSON_CHECK_TOO_DEEP: return "JSON nested deeper than 64 levels";
    case JSON_CHECK_NUMBER_RANGE: return "a number out of range (beyond a double)";
    default: return NULL;
    }
}

/* The first element of a JSON array text when it is a string: the token,
 * quotes included (an event's name); empty otherwise. */
static struct slice first_string(struct slice json) {
    size_t i = 0;
    while (i < json.len && (json.p[i] == ' ' || json.p[i] == '\t' || json.p[i] == '\n' || json.p[i] == '\r')) i++;
    if (i >= json.len || json.p[i] != '[') return (struct slice){NULL, 0};
    i++;
    while (i < json.len && (json.p[i] == ' ' || json.p[i] == '\t' || json.p[i] == '\n' || json.p[i] == '\r')) i++;
    long end = i < json.len && json.p[i] == '"' ? json_scan_value(json.p, json.len, i) : -1;
    if (end < 0) return (struct slice){NULL, 0};
    size_t e = (size_t)end;
    while (e > i && json.p[e - 1] != '"') e--; /* the whitespace json_scan_value skipped */
    return (struct slice){json.p + i, e - i};
}

static struct sio_socket *find_socket(struct sio_client *c, struct slice nsp) {
    for (struct sio_socket *s = c->sockets; s; s = s->next)
        if (s->nsp->name_len == nsp.len && memcmp(s->nsp->name, nsp.p, nsp.len) == 0) return s;
    return NULL;
}

struct nsp *sio_find_nsp(struct sio_hub *hub, const char *name, size_t len) {
    return hmap_get(&hub->namespaces, name, len);
}

static struct nsp *get_nsp(struct sio_hub *hub, struct slice name) {
    struct nsp *n = hmap_get(&hub->namespaces, name.p, name.len);
    if (n) return n;
    n = calloc(1, sizeof *n + name.len + 1);
    if (!n) return NULL;
    memcpy(n->name, name.p, name.len);
    n->name_len = name.len;
    n->hub = hub;
    n->adapter = hub->new_adapter(n, hub->adapter_ud);
    if (!n->adapter || hmap_put(&hub->namespaces, n->name, name.len, n) != 0) {
        if (n->adapter) n->adapter->ops->free(n->adapter);
        free(n);
        return NULL;
    }
    return n;
}

/* {==================================================================
 * Output
 * =================================================================== */

static struct wire_packet to_wire(const struct nsp *nsp, const struct sio_out *o) {
    return (struct wire_packet){o->type, {nsp->name, nsp->name_len}, o->ack_id, o->json, o->len,
                                o->n_bin, o->bin, o->bin_len, {NULL, 0}};
}

/* Sends p to one session in its form. A packet with no plain form (CONNECT
 * or binary, to a /ws client) is skipped. */
int sio__send_packet(struct eio_session *e, const struct wire_packet *p) {
    enum wire_form f = eio_form_of(e);
    unsigned n_packets;
    buf *b = wire_encode(f, p, &n_packets);
    if (!b) return f == WIRE_PLAIN ? 0 : -1;
    int rc = eio_send_encoded(e, b, n_packets);
    buf_unref(b);
    return rc;
}

int sio_send(struct sio_socket *s, const struct sio_out *o) {
    if (s->closed) return -1;
    struct sio_hub *hub = s->nsp->hub;
    struct sio_out logged;
    struct sbuf with_offset = {0};
    if (sio__loggable(hub, o) && (s->detached || sio__takes_offsets(s->client->eio)) &&
        sio__log_event(s->nsp, o, s->sid, NULL, &with_offset) == 0) {
        logged = *o;
        logged.json = with_offset.p;
        logged.len = with_offset.len;
        o = &logged;
    }
    if (s->detached) {
        /* The log keeps it for the socket's recovery; nothing goes out. */
        sbuf_free(&with_offset);
        return o == &logged ? 0 : -1;
    }
    struct wire_packet p = to_wire(s->nsp, o);
    char *id_text = NULL;
    if (o->ack_id >= PLAIN_ID_KEY_BASE && s->client->eio->kind == EIO_KIND_PLAIN) {
        /* A /ws answer: the request's id goes back as the client wrote it, once. */
        size_t n = 0;
        id_text = sio__plain_id_take(s->client, o->ack_id, &n);
        p.ack_id = -1;
        p.plain_id = (struct slice){id_text, id_text ? n : 0};
    }
    int rc = sio__send_packet(s->client->eio, &p);
    free(id_text);
    if (rc == 0 && (o->type == SIO_EVENT || o->type == SIO_BINARY_EVENT) && s->client->hub->metrics)
        metrics_event_out(s->client->hub->metrics, o->json, o->len, 1, 0);
    sbuf_free(&with_offset);
    return rc;
}

/* Answers a message the server refuses before any handler sees it:
 * `error` {code: invalid_payload, message: why, event} (event: the JSON
 * string token as the client wrote it, when it could be read), and the
 * ack with the same object when one was asked, as handlers' errors go. */
void sio__answer_invalid_payload(struct sio_socket *s, struct slice event, int64_t ack_id, const char *why) {
    char obj_storage[256], msg_storage[320];
    struct sbuf obj = sbuf_on_stack(obj_storage, sizeof obj_storage);
    struct sbuf msg = sbuf_on_stack(msg_storage, sizeof msg_storage);
    int bad = sbuf_printf(&obj, "{\"code\":\"invalid_payload\",\"message\":") || json_append_string(&obj, why, strlen(why));
    if (event.len) bad = bad || sbuf_append(&obj, ",\"event\":", 9) || sbuf_append(&obj, event.p, event.len);
    bad = bad || sbuf_putc(&obj, '}');
    bad = bad || sbuf_append(&msg, "[\"error\",", 9) || sbuf_append(&msg, obj.p, obj.len) || sbuf_putc(&msg, ']');
    if (!bad) {
        int plain = s->client->eio->kind == EIO_KIND_PLAIN;
        /* /ws: the error frame itself carries the request id. */
        struct sio_out e = {SIO_EVENT, plain ? ack_id : -1, msg.p, msg.len, 0, NULL, NULL};
        sio_send(s, &e);
        if (!plain && ack_id >= 0 && !s->closed) {
            sbuf_reset(&msg);
            if (!sbuf_putc(&msg, '[') && !sbuf_append(&msg, obj.p, obj.len) && !sbuf_putc(&msg, ']')) {
                struct sio_out a = {SIO_ACK, ack_id, msg.p, msg.len, 0, NULL, NULL};
                sio_send(s, &a);
            }
        }
    }
    sbuf_free(&obj);
    sbuf_free(&msg);
}

void sio_fanout_begin(struct sio_fanout *f, struct nsp *nsp, const struct sio_out *o,
                      const struct adapter_target *to) {
    memset(f, 0, sizeof *f);
    f->nsp = nsp;
    f->o = o;
    /* One offset per broadcast, the same for every member (even one
     * remote peers sent: it reaches this node's detached members through
     * this log). */
    if (to && sio__loggable(nsp->hub, o) && sio__log_event(nsp, o, NULL, to, &f->with_offset) != 0) sbuf_free(&f->with_offset);
}

static inline void fanout_to(struct sio_fanout *f, struct sio_socket *s) {
    if (s->closed || s->detached) return; /* a detached member gets it from the log */
    struct eio_session *e = s->client->eio;
    enum wire_form form = eio_form_of(e);
    int off = f->with_offset.p && form != WIRE_PLAIN && sio__takes_offsets(e);
    if (!f->tried[off][form]) {
        f->tried[off][form] = 1;
        struct wire_packet p = to_wire(f->nsp, f->o);
        if (off) {
            p.json = f->with_offset.p;
            p.len = f->with_offset.len;
        }
        f->wire[off][form] = wire_encode(form, &p, &f->n_packets[off][form]);
    }
    /* A slow member is closed later, never inside the fan-out. */
    if (f->wire[off][form] && eio_send_encoded(e, f->wire[off][form], f->n_packets[off][form]) == 0) f->sent++;
}

void sio_fanout_send(struct sio_fanout *f, struct sio_socket *s) { fanout_to(f, s); }

/* The loop of a broadcast to one room, here rather than a call per member:
 * it is the hot path of a fan-out. */
void sio_fanout_room(struct sio_fanout *f, const struct room *r, const struct sio_socket *except) {
    for (uint32_t i = 0; i < r->n_members; i++) {
        struct sio_socket *s = r->members[i].m->owner;
        if (s != except) fanout_to(f, s);
    }
}

size_t sio_fanout_end(struct sio_fanout *f) {
    for (int i = 0; i < WIRE_FORMS; i++) {
        buf_unref(f->wire[0][i]);
        buf_unref(f->wire[1][i]);
    }
    sbuf_free(&f->with_offset);
    const struct sio_out *o = f->o;
    struct metrics *m = f->nsp->hub->metrics;
    if (m && (o->type == SIO_EVENT || o->type == SIO_BINARY_EVENT)) metrics_event_out(m, o->json, o->len, f->sent, 1);
    return f->sent;
}

size_t sio_broadcast(struct nsp *nsp, const char *room, size_t len, struct sio_socket *except,
                     const struct sio_out *o) {
    const char *rooms[1] = {room};
    size_t lens[1] = {len};
    struct adapter_target to = {.rooms = rooms, .room_lens = lens, .n_rooms = 1, .except = except};
    return adapter_broadcast(nsp, &to, o);
}

const char *sio_socket_handshake_token(const struct sio_socket *s) {
    return s->client ? s->client->handshake_token : NULL;
}

void sio_socket_link_user(struct sio_socket *s) {
    struct user *u = s->rooms.user;
    if (!u) return;
    s->user_prev = NULL;
    s->user_next = u->sockets;
    if (u->sockets) u->sockets->user_prev = s;
    u->sockets = s;
}

/* Token expiry: tells sockets whose token expired, closes those whose grace
 * passed. Called when the session's timer fires (eio.c), at the deadline
 * client_next_deadline gave. */
static void client_sweep(void *client, uint64_t now) {
    struct sio_client *c = client;
    struct sio_hub *hub = c->hub;
    for (struct sio_socket *s = c->sockets, *next; s; s = next) {
        next = s->next;
        if (!s->token_exp_ms || now < s->token_exp_ms) continue;
        if (!s->token_expired_ms) {
            s->token_expired_ms = now;
            hub->app->send_error(hub->app_ud, s, "refresh_token", "token_expired",
                                 "the token expired: send refresh_token with a fresh one");
        } else if (now >= s->token_expired_ms + (uint64_t)hub->cfg->token_grace_ms) {
            log_info("auth", "closing socket=%s reason=\"token expired\"", s->sid);
            if (c->eio->kind == EIO_KIND_PLAIN) eio_close(c->eio, WS_CLOSE_UNAUTHORIZED, "token expired");
            else sio_socket_close(s, "token expired", 1);
            return; /* the list changed */
        }
    }
}

/* When client_sweep next has something to do (wall clock ms; 0 = never). */
static uint64_t client_next_deadline(void *client) {
    const struct sio_client *c = client;
    uint64_t due = 0;
    for (const struct sio_socket *s = c->sockets; s; s = s->next) {
        if (!s->token_exp_ms) continue;
        uint64_t at = s->token_expired_ms ? s->token_expired_ms + (uint64_t)c->hub->cfg->token_grace_ms
                                          : s->token_exp_ms;
        if (!due || at < due) due = at;
    }
    return due;
}

void sio_socket_set_token_exp(struct sio_socket *s, uint64_t exp_wall_ms) {
    s->token_exp_ms = exp_wall_ms;
    s->token_expired_ms = 0;
    if (exp_wall_ms && s->client && s->client->eio) eio_wake_by(s->client->eio, net_loop_time_of(s->client->hub->eio->net, exp_wall_ms));
}

const char *sio_socket_peer(const struct sio_socket *s) { return s->peer; }

int sio_socket_is_plain(const struct sio_socket *s) { return s->client && s->client->eio->kind == EIO_KIND_PLAIN; }

/* {==================================================================
 * Sockets
 * =================================================================== */

static void send_connect_error(struct sio_client *c, struct slice nsp, const char *json, size_t len) {
    struct wire_packet p = {SIO_CONNECT_ERROR, nsp, -1, json, len, 0, NULL, NULL, {NULL, 0}};
    sio__send_packet(c->eio, &p);
}

/* Auth refusals name the peer (an operator blocks it at the firewall) and the code. */
static void log_refusal(struct sio_client *c, const struct sio_socket *s, const struct sbuf *refusal) {
    struct json_member data, code;
    char text[64] = "-";
    if (refusal->p && json_object_get(refusal->p, refusal->len, "data", &data) && data.type == 'o' &&
        json_object_get(data.value.p, data.value.len, "code", &code) && code.type == 's')
        json_string_value(code.value, text, sizeof text);
    char q[LOG_QUOTED_MAX];
    log_info("auth", "refused socket=%s peer=%s user=\"%s\" code=%s", s->sid, c->eio->peer,
             log_quoted(q, sizeof q, s->rooms.user ? s->rooms.user->id : "-"), text);
}

/* Opens a socket in namespace nsp for the client and runs the namespace's
 * authenticate with the auth JSON. Returns the socket (linked into the
 * client) on SIO_OK; NULL otherwise, with *result saying why and the
 * refusal JSON in refusal. */
struct sio_socket *sio__socket_open(struct sio_client *c, struct slice nsp_name, const char *auth,
                                      size_t auth_len, enum sio_verdict *result, struct sbuf *refusal) {
    struct sio_hub *hub = c->hub;
    struct nsp *nsp = get_nsp(hub, nsp_name);
    struct sio_socket *s = nsp ? calloc(1, sizeof *s) : NULL;
    if (!s) {
        *result = SIO_REFUSE;
        return NULL;
    }
    s->client = c;
    s->nsp = nsp;
    s->rooms.owner = s;
    s->connected_ms = clock_wall_ms();
    ids_new_sid(hub->ids, s->sid);
    if (sio__recovery_on(hub) && c->eio->kind == EIO_KIND_SOCKETIO) ids_new_sid(hub->ids, s->pid);
    snprintf(s->peer, sizeof s->peer, "%s", c->eio->peer);
    s->expiry.is_socket = 1;
    s->rooms.key = s->sid;
    s->rooms.key_len = IDS_SID_LEN;
    *result = hub->app->authenticate(hub->app_ud, s, auth, auth_len, refusal);
    const struct ban *ban = *result == SIO_OK && s->rooms.user
                                ? ban_find(&hub->bans, s->rooms.user->id, strlen(s->rooms.user->id), clock_wall_ms())
                                : NULL;
    if (ban) {
        /* Refused as a bad token is: the message says unauthorized, the code why. */
        sbuf_reset(refusal);
        sbuf_printf(refusal, "{\"message\":\"unauthorized\",\"data\":{\"code\":\"banned\",\"message\":");
        json_append_string(refusal, ban->reason[0] ? ban->reason : "banned", strlen(ban->reason[0] ? ban->reason : "banned"));
        sbuf_printf(refusal, ",\"until\":%llu}}", (unsigned long long)ban->until_ms);
        *result = SIO_REFUSE;
    }
    if (*result == SIO_REFUSE) log_refusal(c, s, refusal);
    if (*result != SIO_OK) {
        hub->app->release_socket(hub->app_ud, s);
        user_release(&hub->users, s->rooms.user);
        free(s);
        return NULL;
    }
    if (s->pid[0] && hmap_put(&hub->pids, s->pid, IDS_SID_LEN, s) != 0) s->pid[0] = '\0'; /* no recovery for it */
    s->next = c->sockets;
    c->sockets = s;
    nsp->n_sockets++;
    sio_socket_link_user(s);
    c->eio->connect_deadline_ms = 0;
    return s;
}

/* The CONNECT reply: the socket's sid, and its pid when recovery is on. */
void sio__send_connect_reply(struct sio_socket *s) {
    char reply[96];
    int n = s->pid[0] ? snprintf(reply, sizeof reply, "{\"sid\":\"%s\",\"pid\":\"%s\"}", s->sid, s->pid)
                      : snprintf(reply, sizeof reply, "{\"sid\":\"%s\"}", s->sid);
    struct sio_out o = {SIO_CONNECT, -1, reply, (size_t)n, 0, NULL, NULL};
    sio_send(s, &o);
}

static void on_connect(struct sio_client *c, const struct sio_packet *pkt) {
    struct sio_hub *hub = c->hub;
    if (find_socket(c, pkt->nsp)) {
        protocol_error(c, "second CONNECT for a joined namespace");
        return;
    }
    if (!hub->app->has_namespace(hub->app_ud, pkt->nsp.p, pkt->nsp.len)) {
        static const char invalid[] = "{\"message\":\"Invalid namespace\"}";
        send_connect_error(c, pkt->nsp, invalid, sizeof invalid - 1);
        return;
    }
    if (sio__try_recover(c, pkt)) return;
    struct sbuf refusal = {0}; /* not the scratch buffer: the script may emit meanwhile */
    enum sio_verdict r;
    struct sio_socket *s = sio__socket_open(c, pkt->nsp, pkt->json.p, pkt->json.len, &r, &refusal);
    if (!s) {
        if (r == SIO_REFUSE) send_connect_error(c, pkt->nsp, refusal.p, refusal.len);
        sbuf_free(&refusal);
        const char *why = r == SIO_PROTOCOL_ERROR ? refused_json(pkt->json) : NULL;
        if (why) {
            /* Valid JSON over a limit: refused like a login, the session stays. */
            struct sbuf e = {0};
            sbuf_printf(&e, "{\"message\":\"invalid payload\",\"data\":{\"code\":\"invalid_payload\",\"message\":");
            json_append_string(&e, why, strlen(why));
            sbuf_append(&e, "}}", 2);
            if (e.p) send_connect_error(c, pkt->nsp, e.p, e.len);
            sbuf_free(&e);
        } else if (r == SIO_PROTOCOL_ERROR) {
            protocol_error(c, "CONNECT data is not a JSON object");
        }
        return;
    }
    sbuf_free(&refusal);
    sio__send_connect_reply(s);
    eio_flush_now(c->eio);
    log_debug("sio", "connected sid=%s socket=%s nsp=%s user=%s", c->eio->sid, s->sid, s->nsp->name,
              s->rooms.user ? s->rooms.user->id : "-");
    hub->app->on_connected(hub->app_ud, s);
}

void sio_socket_close(struct sio_socket *s, const char *reason, int notify_client) {
    if (s->closed) return;
    struct sio_client *c = s->client;
    struct sio_hub *hub = s->nsp->hub;
    /* Out of the recovery table first: nothing may recover it from here on. */
    if (s->pid[0]) hmap_del(&hub->pids, s->pid, IDS_SID_LEN);
    if (s->detached) wheel_cancel(&hub->timers, &s->expiry.e);
    /* The disconnect handler runs first, while the rooms can still be read. */
    hub->app->on_disconnect(hub->app_ud, s, reason);
    s->closed = 1;
    s->detached = 0;
    if (notify_client && c && !c->eio->closed) {
        struct sio_out o = {SIO_DISCONNECT, -1, NULL, 0, 0, NULL, NULL};
        s->closed = 0;
        sio_send(s, &o);
        s->closed = 1;
    }
    s->nsp->adapter->ops->leave_all(s->nsp->adapter, s);
    s->nsp->n_sockets--;
    hub->app->release_socket(hub->app_ud, s);
    for (struct sio_socket **p = c ? &c->sockets : NULL; p && *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    struct user *u = s->rooms.user;
    if (u) {
        if (s->user_prev) s->user_prev->user_next = s->user_next;
        else if (u->sockets == s) u->sockets = s->user_next;
        if (s->user_next) s->user_next->user_prev = s->user_prev;
    }
    user_release(&hub->users, u);
    s->rooms.user = NULL;
    s->next_dead = hub->dead_sockets;
    hub->dead_sockets = s;
}

void sio_socket_close_session(struct sio_socket *s, uint16_t ws_code, const char *reason) {
    if (s->closed) return;
    struct sio_client *c = s->client;
    if (!c) {
        sio_socket_close(s, reason, 0); /* detached: no session to close */
        return;
    }
    /* DISCONNECT for every namespace first, as Node's disconnect(true):
     * the client then knows the server meant it and does not reconnect. */
    if (c->eio->kind == EIO_KIND_SOCKETIO)
        while (c->sockets) sio_socket_close(c->sockets, reason, 1);
    eio_close_after_drain(c->eio, ws_code, reason);
}

/* Frees the sockets closed during this turn (after the flush). */
static void free_dead(void *ud) {
    struct sio_hub *hub = ud;
    while (hub->dead_sockets) {
        struct sio_socket *s = hub->dead_sockets;
        hub->dead_sockets = s->next_dead;
        free(s);
    }
}

/* The session closed: every socket disconnects with reason, or waits
 * for its client's return when the reason allows recovery. */
static void client_on_close(void *client, const char *reason) {
    struct sio_client *c = client;
    const char *keep = sio__recoverable(c, reason);
    while (c->sockets) {
        if (keep && c->sockets->pid[0]) sio__detach(c->sockets, keep);
        else sio_socket_close(c->sockets, reason, 0);
    }
}

/* {==================================================================
 * Input
 * =================================================================== */

static void dispatch(struct sio_client *c, const struct sio_packet *pkt, unsigned n_att,
                     void *const *att, const size_t *att_len) {
    struct sio_socket *s = find_socket(c, pkt->nsp);
    if (!s) {
        protocol_error(c, "packet for a namespace that is not joined");
        return;
    }
    int rc;
    if (pkt->type == SIO_EVENT || pkt->type == SIO_BINARY_EVENT)
        rc = c->hub->app->on_event(c->hub->app_ud, s, pkt->ack_id, pkt->json.p, pkt->json.len, n_att,
                             (const void *const *)att, att_len);
    else
        rc = c->hub->app->on_ack(c->hub->app_ud, s, pkt->ack_id, pkt->json.p, pkt->json.len, n_att,
                           (const void *const *)att, att_len);
    if (rc != SIO_PROTOCOL_ERROR || s->closed) return;
    const char *why = refused_json(pkt->json);
    if (!why) {
        protocol_error(c, "malformed event or ack data");
        return;
    }
    /* A well-formed packet whose data is over a JSON limit: the sender is
     * told (with its ack, for an event that asked for one) and stays. */
    int is_event = pkt->type == SIO_EVENT || pkt->type == SIO_BINARY_EVENT;
    struct slice name = is_event ? first_string(pkt->json) : (struct slice){NULL, 0};
    char q[LOG_QUOTED_MAX];
    log_debug("sio", "refused an event sid=%s socket=%s: %s", c->eio->sid, s->sid, log_quoted(q, sizeof q, why));
    sio__answer_invalid_payload(s, name, is_event ? pkt->ack_id : -1, why);
}

static void client_on_text(void *client, const char *p, size_t n) {
    struct sio_client *c = client;
    if (c->pending.expected) {
        protocol_error(c, "text packet while attachments were expected");
        return;
    }
    struct sio_packet pkt;
    if (sio_packet_decode(p, n, &pkt) != 0) {
        protocol_error(c, "malformed Socket.IO packet");
        return;
    }
    switch (pkt.type) {
    case SIO_CONNECT:
        on_connect(c, &pkt);
        return;
    case SIO_DISCONNECT: {
        struct sio_socket *s = find_socket(c, pkt.nsp);
        if (!s) protocol_error(c, "DISCONNECT for a namespace that is not joined");
        else sio_socket_close(s, "client namespace disconnect", 0);
        return;
    }
    case SIO_CONNECT_ERROR:
        protocol_error(c, "CONNECT_ERROR from a client");
        return;
    case SIO_BINARY_EVENT:
    case SIO_BINARY_ACK:
        if (pkt.attachments > 0) {
            if (!find_socket(c, pkt.nsp)) {
                protocol_error(c, "packet for a namespace that is not joined");
                return;
            }
            c->pending.text = malloc(n);
            if (!c->pending.text) {
                eio_close(c->eio, WS_CLOSE_INTERNAL, "out of memory");
                return;
            }
            memcpy(c->pending.text, p, n);
            c->pending.len = n;
            c->pending.expected = pkt.attachments;
            return;
        }
        __attribute__((fallthrough)); /* no attachments: delivered at once */
    case SIO_EVENT:
    case SIO_ACK:
        dispatch(c, &pkt, 0, NULL, NULL);
        return;
    }
}

static void client_on_binary(void *client, const uint8_t *p, size_t n) {
    struct sio_client *c = client;
    struct pending_binary *pb = &c->pending;
    if (!pb->expected) {
        protocol_error(c, "binary message while no attachment was expected");
        return;
    }
    void *copy = malloc(n ? n : 1);
    if (!copy) {
        eio_close(c->eio, WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    if (n) memcpy(copy, p, n);
    pb->att[pb->got] = copy;
    pb->att_len[pb->got++] = n;
    if (pb->got < pb->expected) return;

    /* Complete: take it out of the client first, since dispatch may close it. */
    struct pending_binary done = *pb;
    memset(pb, 0, sizeof *pb);
    struct sio_packet pkt;
    sio_packet_decode(done.text, done.len, &pkt);
    dispatch(c, &pkt, done.got, done.att, done.att_len);
    pending_clear(&done);
}

/* {==================================================================
 * The hub
 * =================================================================== */

static const struct eio_upper_ops client_ops = {
    .open = client_open,
    .on_text = client_on_text,
    .on_binary = client_on_binary,
    .start_plain = sio__plain_start,
    .on_plain = sio__plain_on_message,
    .on_close = client_on_close,
    .free = client_free,
    .next_deadline = client_next_deadline,
    .sweep = client_sweep,
};

void sio_hub_init(struct sio_hub *hub, struct eio_hub *eio, struct metrics *metrics, const struct sio_app_ops *app,
                  void *app_ud, sio_adapter_factory new_adapter, void *adapter_ud) {
    hub->eio = eio;
    hub->cfg = eio->cfg;
    hub->ids = eio->ids;
    hub->metrics = metrics;
    hub->app = app;
    hub->app_ud = app_ud;
    hub->new_adapter = new_adapter ? new_adapter : adapter_memory_new;
    hub->adapter_ud = adapter_ud;
    net_add_wheel(eio->net, &hub->timers, sio__recovery_timer);
    eio->up = &client_ops;
    eio->up_ud = hub;
    net_add_turn_hook(eio->net, NET_AFTER_FLUSH, free_dead, hub);
}

void sio_hub_free(struct sio_hub *hub) {
    free_dead(hub);
    struct hmap_entry *e;
    /* Detached sockets left (none after a shutdown): freed without the app, which is gone. */
    for (size_t i = 0; hmap_next(&hub->pids, &i, &e);) {
        struct sio_socket *s = e->value;
        if (!s->detached) continue;
        s->nsp->adapter->ops->leave_all(s->nsp->adapter, s);
        user_release(&hub->users, s->rooms.user);
        free(s);
    }
    hmap_free(&hub->pids);
    for (size_t i = 0; hmap_next(&hub->namespaces, &i, &e);) {
        struct nsp *n = e->value;
        rlog_free(&n->log);
        n->adapter->ops->free(n->adapter);
        free(n);
    }
    hmap_free(&hub->namespaces);
    hmap_free(&hub->users);
    ban_free_all(&hub->bans);
}
