/* Connection state recovery, the socket side: a socket whose transport
 * dropped is detached (kept with its rooms and user, by its pid) until its
 * window ends or its client comes back with {pid, offset}; then it is
 * reattached to the new session after the log's missed events went out.
 * The log itself is recovery.c; the offsets are added where events go out
 * (sio.c). */
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"
#include "log.h"
#include "net.h"
#include "sio.h"
#include "sio_internal.h"
#include "ws.h"

/* Drops what left the window by now (loop time). */
static void prune_log(struct nsp *nsp, uint64_t now) {
    uint64_t window = (uint64_t)nsp->hub->cfg->recovery_window_ms;
    rlog_prune(&nsp->log, now > window ? now - window : 0);
}

static void schedule_prune(struct nsp *nsp) {
    struct sio_hub *hub = nsp->hub;
    if (!nsp->log.n || wheel_is_scheduled(&nsp->prune.e)) return;
    wheel_schedule(&hub->timers, &nsp->prune.e, rlog_at(&nsp->log, 0)->at_ms + (uint64_t)hub->cfg->recovery_window_ms + 1);
}

/* A fresh offset; the event array with it goes into out and into the log.
 * Returns 0, or -1 (out of memory: the event goes without an offset, unlogged). */
int sio__log_event(struct nsp *nsp, const struct sio_out *o, const char *direct_sid,
                   const struct adapter_target *to, struct sbuf *out) {
    struct sio_hub *hub = nsp->hub;
    char offset[IDS_ID_LEN + 1];
    ids_new_id(hub->ids, offset);
    uint64_t now = net_now(hub->eio->net);
    if (rlog_with_offset(out, o->json, o->len, offset) != 0) return -1;
    prune_log(nsp, now);
    if (rlog_append(&nsp->log, now, offset, out->p, out->len, direct_sid, to) != 0) return -1;
    schedule_prune(nsp);
    return 0;
}

/* A detached socket takes a new transport: the same socket (sid, pid,
 * rooms, user, the app's data) joins client c; what the log holds for it
 * after offset goes out first, then the CONNECT reply. No authentication
 * (the pid is the proof, as Node's skipMiddlewares). */
static void reattach(struct sio_client *c, struct sio_socket *s, size_t from) {
    struct sio_hub *hub = c->hub;
    wheel_cancel(&hub->timers, &s->expiry.e);
    s->detached = 0;
    s->detach_reason = NULL;
    s->recovered = 1;
    s->client = c;
    s->next = c->sockets;
    c->sockets = s;
    snprintf(s->peer, sizeof s->peer, "%s", c->eio->peer);
    c->eio->connect_deadline_ms = 0;
    const struct rlog *l = &s->nsp->log;
    size_t replayed = 0;
    for (size_t i = from; i < l->n; i++) {
        const struct rlog_entry *e = rlog_at(l, i);
        if (!rlog_targets(e, s)) continue;
        struct wire_packet p = {SIO_EVENT, {s->nsp->name, s->nsp->name_len}, -1, e->json, e->len, 0, NULL, NULL, {NULL, 0}};
        if (sio__send_packet(c->eio, &p) != 0) break;
        replayed++;
    }
    sio__send_connect_reply(s);
    eio_flush_now(c->eio);
    if (s->token_exp_ms) sio_socket_set_token_exp(s, s->token_exp_ms);
    log_debug("sio", "recovered sid=%s socket=%s nsp=%s replayed=%zu", c->eio->sid, s->sid, s->nsp->name, replayed);
    hub->app->on_connected(hub->app_ud, s);
}

/* Recovery from the CONNECT auth {pid, offset, ...}: 1 when the socket was
 * recovered. An unknown pid, or an offset the log no longer holds, is a
 * fresh connection; a detached socket it named then ends. A pid whose
 * socket still has a transport: that transport is dead, since its client
 * is here on another (the server had not noticed yet), so it drops first. */
int sio__try_recover(struct sio_client *c, const struct sio_packet *pkt) {
    struct sio_hub *hub = c->hub;
    struct json_member pid, offset;
    /* A client that takes no offsets could not read the replay (nor does it send a pid). */
    if (!sio__recovery_on(hub) || !sio__takes_offsets(c->eio) || !pkt->json.len ||
        !json_object_get(pkt->json.p, pkt->json.len, "pid", &pid) ||
        pid.type != 's')
        return 0;
    char pid_text[IDS_SID_LEN + 2], offset_text[IDS_ID_LEN + 2];
    if (json_string_value(pid.value, pid_text, sizeof pid_text) != IDS_SID_LEN) return 0;
    struct sio_socket *s = hmap_get(&hub->pids, pid_text, IDS_SID_LEN);
    if (!s && hub->pid_elsewhere) hub->pid_elsewhere(hub->pid_elsewhere_ud, pid_text);
    if (!s || s->nsp->name_len != pkt->nsp.len || memcmp(s->nsp->name, pkt->nsp.p, pkt->nsp.len) != 0) return 0;
    if (!s->detached && s->client != c) eio_close(s->client->eio, WS_CLOSE_NORMAL, "transport close");
    if (!s->detached || s->closed) return 0;
    long from = -1;
    if (json_object_get(pkt->json.p, pkt->json.len, "offset", &offset) && offset.type == 's') {
        long n = json_string_value(offset.value, offset_text, sizeof offset_text);
        if (n > 0) from = rlog_after(&s->nsp->log, offset_text, (size_t)n);
    }
    if (from < 0) {
        log_debug("sio", "not recovered socket=%s: offset not in the log", s->sid);
        sio_socket_close(s, s->detach_reason ? s->detach_reason : "transport close", 0);
        return 0;
    }
    reattach(c, s, (size_t)from);
    return 1;
}

/* The reasons a session closes for that a client can recover from (its
 * network dropped: transport close or error, ping timeout, the client
 * closing its engine), as the literal to keep; NULL for the others: the
 * client left (DISCONNECT comes first then), broke the protocol, or the
 * server ended it. */
static const char *recoverable_reason(const char *reason) {
    static const char *const reasons[] = {"transport close", "ping timeout", "client close",
                                          "poll connection closed prematurely"};
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (strcmp(reason, reasons[i]) == 0) return reasons[i];
    return NULL;
}

/* Keeps s, whose transport dropped, for recovery by its pid (hub.pids has it). */
void sio__detach(struct sio_socket *s, const char *reason) {
    struct sio_hub *hub = s->nsp->hub;
    struct sio_client *c = s->client;
    for (struct sio_socket **p = &c->sockets; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    s->next = NULL;
    s->client = NULL;
    s->detached = 1;
    s->recovered = 0;
    s->detach_reason = reason;
    wheel_schedule(&hub->timers, &s->expiry.e, net_now(hub->eio->net) + (uint64_t)hub->cfg->recovery_window_ms);
    log_debug("sio", "detached socket=%s reason=\"%s\"", s->sid, reason);
}

const char *sio__recoverable(const struct sio_client *c, const char *reason) {
    const struct sio_hub *hub = c->hub;
    if (!sio__recovery_on(hub) || !sio__takes_offsets(c->eio) || hub->eio->net->shutting_down) return NULL;
    return recoverable_reason(reason);
}

/* A detached socket's window ended, or a namespace's log has entries to prune. */
void sio__recovery_timer(struct wheel_entry *e, void *ud) {
    (void)ud;
    struct sio_timer *t = WHEEL_OWNER(e, struct sio_timer, e);
    if (t->is_socket) {
        struct sio_socket *s = WHEEL_OWNER(t, struct sio_socket, expiry);
        log_debug("sio", "recovery window ended socket=%s", s->sid);
        sio_socket_close(s, s->detach_reason ? s->detach_reason : "transport close", 0);
        return;
    }
    struct nsp *nsp = WHEEL_OWNER(t, struct nsp, prune);
    prune_log(nsp, net_now(nsp->hub->eio->net));
    schedule_prune(nsp);
}

void sio_hub_end_pid(struct sio_hub *hub, const char *pid, size_t len, const char *reason) {
    struct sio_socket *s = hmap_get(&hub->pids, pid, len);
    if (!s) return;
    log_debug("sio", "ending socket=%s: %s", s->sid, reason);
    /* Still attached: this process has not seen its transport drop yet, but its client is elsewhere. */
    if (s->detached) sio_socket_close(s, reason, 0);
    else sio_socket_close_session(s, WS_CLOSE_NORMAL, reason);
}

void sio_hub_end_detached(struct sio_hub *hub) {
    /* Listed first: closing takes them out of the table. */
    size_t n = 0;
    struct sio_socket **list = hub->pids.count ? malloc(hub->pids.count * sizeof *list) : NULL;
    struct hmap_entry *e;
    for (size_t i = 0; list && hmap_next(&hub->pids, &i, &e);)
        if (((struct sio_socket *)e->value)->detached) list[n++] = e->value;
    for (size_t i = 0; i < n; i++) sio_socket_close(list[i], "server shutting down", 0);
    free(list);
}
