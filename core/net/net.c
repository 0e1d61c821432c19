#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "httpd.h"
#include "log.h"
#include "ws.h"

uint64_t net_loop_time_of(const struct net *n, uint64_t wall_ms) {
    uint64_t wall_now = clock_wall_ms();
    return net_now(n) + (wall_ms > wall_now ? wall_ms - wall_now : 0);
}

void net_mark_flush(struct net *n, struct conn *c) {
    if (c->flags & (CONN_PENDING_FLUSH | CONN_CLOSING)) return;
    c->flags |= CONN_PENDING_FLUSH;
    c->next_flush = n->pending_flush;
    n->pending_flush = c;
}

void net_add_wheel(struct net *n, struct wheel *w, net_wheel_fire_fn fire) {
    if (n->n_wheels == NET_MAX_WHEELS) abort(); /* a composition error, found at start */
    wheel_init(w, NET_WHEEL_TICK_MS, net_now(n));
    n->wheels[n->n_wheels].wheel = w;
    n->wheels[n->n_wheels].fire = fire;
    n->n_wheels++;
}

void net_remove_wheel(struct net *n, struct wheel *w) {
    for (unsigned i = 0; i < n->n_wheels; i++) {
        if (n->wheels[i].wheel != w) continue;
        n->n_wheels--;
        for (unsigned k = i; k < n->n_wheels; k++) n->wheels[k] = n->wheels[k + 1];
        return;
    }
}

void net_add_turn_hook(struct net *n, enum net_turn_phase phase, net_turn_fn fn, void *ud) {
    if (n->n_hooks[phase] == NET_MAX_TURN_HOOKS) abort(); /* a composition error, found at start */
    n->hooks[phase][n->n_hooks[phase]].fn = fn;
    n->hooks[phase][n->n_hooks[phase]].ud = ud;
    n->n_hooks[phase]++;
}

/* Before the flush, hooks run in the order they were added; after it, in
 * reverse, so that an upper layer frees what it closed before the layer it
 * sits on (a Socket.IO socket before its Engine.IO session). */
static void run_hooks(struct net *n, enum net_turn_phase phase) {
    unsigned count = n->n_hooks[phase];
    for (unsigned k = 0; k < count; k++) {
        unsigned i = phase == NET_BEFORE_FLUSH ? k : count - 1 - k;
        n->hooks[phase][i].fn(n->hooks[phase][i].ud);
    }
}

/* The one deadline timer fires at the earliest deadline of every wheel. */
static void on_deadline_timer(uv_timer_t *t) {
    struct net *n = t->data;
    uint64_t now = net_now(n);
    n->deadline_timer_due = WHEEL_NEVER; /* one-shot: spent */
    for (unsigned i = 0; i < n->n_wheels; i++) wheel_advance(n->wheels[i].wheel, now, n->wheels[i].fire, NULL);
}

/* Arms the deadline timer for the wheels' next due time, to the
 * millisecond: deadlines fire when due (as Node's setTimeout would), not at
 * the next tick of a periodic sweep, and an idle server does not wake. */
static void arm_deadline_timer(struct net *n) {
    uint64_t due = WHEEL_NEVER;
    for (unsigned i = 0; i < n->n_wheels; i++) {
        uint64_t d = wheel_next_due(n->wheels[i].wheel);
        if (d < due) due = d;
    }
    if (due == n->deadline_timer_due) return;
    n->deadline_timer_due = due;
    if (due == WHEEL_NEVER) {
        uv_timer_stop(&n->deadline_timer);
        return;
    }
    /* The loop time is cached from the start of the turn; refreshed, the
     * wait the loop computes next counts from now, not from then. */
    uv_update_time(n->loop);
    uint64_t now = net_now(n);
    uv_timer_start(&n->deadline_timer, on_deadline_timer, due > now ? due - now : 0, 0);
}

static void on_hold_timer(uv_timer_t *t) { (void)t; /* the flush hook runs next */ }

/* Once per loop turn, before the loop blocks: let the layers above queue
 * what this turn produced, write it (one writev per conn), let them free
 * what was closed during the turn, and arm the deadline timer for what this
 * turn scheduled. */
static void flush_turn(struct net *n) {
    uint64_t now = net_now(n);
    struct conn *held = NULL;
    run_hooks(n, NET_BEFORE_FLUSH);
    while (n->pending_flush) {
        struct conn *c = n->pending_flush;
        n->pending_flush = c->next_flush;
        if (c->hold_until_ms > now && !(c->flags & CONN_CLOSE_ASAP)) {
            c->next_flush = held; /* stays marked, flushed on a later turn */
            held = c;
            continue;
        }
        c->flags &= ~(uint32_t)CONN_PENDING_FLUSH;
        conn_flush(c);
    }
    if (held) {
        n->pending_flush = held;
        uv_timer_start(&n->hold_timer, on_hold_timer, 1, 0);
    }
    run_hooks(n, NET_AFTER_FLUSH);
    conn__resume_reads(n);
}

static void on_flush_hook(uv_prepare_t *h) {
    struct net *n = h->data;
    flush_turn(n);
    if (n->shutting_down && !n->conns) uv_stop(n->loop);
    else arm_deadline_timer(n);
}

void net_init(struct net *n, uv_loop_t *loop, const struct config *cfg) {
    n->loop = loop;
    n->cfg = cfg;
    n->admit.spare_fd = -1;
    uv_prepare_init(loop, &n->flush_hook);
    n->flush_hook.data = n;
    uv_prepare_start(&n->flush_hook, on_flush_hook);
    uv_timer_init(loop, &n->hold_timer);
    uv_timer_init(loop, &n->deadline_timer);
    n->deadline_timer.data = n;
    n->deadline_timer_due = WHEEL_NEVER;
    net_add_wheel(n, &n->conn_timers, conn_on_timer);
}

/* Several worker processes listen on one port, and the kernel spreads the
 * connections over them: libuv has no flag for SO_REUSEPORT, so the socket
 * is made here and handed to it. */
static int bind_reuse_port(uv_tcp_t *listener, const struct sockaddr *sa) {
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return uv_translate_sys_error(errno);
    int on = 1;
    socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0 || bind(fd, sa, len) != 0) {
        int rc = uv_translate_sys_error(errno);
        close(fd);
        return rc;
    }
    int rc = uv_tcp_open(listener, fd);
    if (rc != 0) close(fd);
    return rc;
}

int net_listen(struct net *n, char *addr_out, size_t cap) {
    const struct config *cfg = n->cfg;
    struct sockaddr_storage ss;
    int rc = strchr(cfg->host, ':') ? uv_ip6_addr(cfg->host, (int)cfg->port, (struct sockaddr_in6 *)&ss)
                                     : uv_ip4_addr(cfg->host, (int)cfg->port, (struct sockaddr_in *)&ss);
    if (rc != 0) {
        fprintf(stderr, "space-server: cannot start: --host '%s' is not an IP address\n", cfg->host);
        return -1;
    }
    uv_tcp_init(n->loop, &n->listener);
    n->listener.data = n;
    n->listening = 1;
    if (n->reuse_port) rc = bind_reuse_port(&n->listener, (struct sockaddr *)&ss);
    else rc = uv_tcp_bind(&n->listener, (struct sockaddr *)&ss, 0);
    if (rc != 0 ||
        (rc = uv_listen((uv_stream_t *)&n->listener, 1024, admit_on_connection)) != 0) {
        fprintf(stderr, "space-server: cannot start: listen on %s port %lld: %s\n", cfg->host,
                (long long)cfg->port, uv_strerror(rc));
        return -1;
    }
    struct sockaddr_storage bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&n->listener, (struct sockaddr *)&bound, &len);
    char ip[64] = "?";
    int port = 0;
    if (bound.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&bound, ip, sizeof ip);
        port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
        snprintf(addr_out, cap, "[%s]:%d", ip, port);
    } else {
        uv_ip4_name((struct sockaddr_in *)&bound, ip, sizeof ip);
        port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        snprintf(addr_out, cap, "%s:%d", ip, port);
    }
    return 0;
}

void net_admit_init(struct net *n) { admit_init(n, n->cfg->max_connections); }

void net_shutdown(struct net *n, uint64_t grace_ms) {
    if (n->shutting_down) return;
    n->shutting_down = 1;
    if (n->listening) uv_close((uv_handle_t *)&n->listener, NULL);
    n->listening = 0;
    uint64_t deadline = net_now(n) + grace_ms;
    struct conn *next_conn;
    for (struct conn *c = n->conns; c; c = next_conn) {
        next_conn = c->next; /* conn_close unlinks c */
        if (c->tr == &httpd_transport && !conn_is_closing(c)) {
            /* An answer may be queued (a parked GET just got "1"): let it go out. */
            if (c->q_head < c->q_len || c->writes_in_flight) conn_close_after_flush(c);
            else conn_close(c);
        }
        if (!(c->flags & CONN_CLOSING) && (!c->deadline_ms || c->deadline_ms > deadline)) conn_set_deadline(c, deadline);
    }
}

void net_close_all(struct net *n) {
    while (n->conns) conn_close(n->conns);
    flush_turn(n);
    /* No more turns of ours: what the loop still runs (handles closing) must not stop it. */
    uv_prepare_stop(&n->flush_hook);
    uv_timer_stop(&n->deadline_timer);
    uv_timer_stop(&n->hold_timer);
}

void net_free(struct net *n) {
    admit_free(n);
    ws_pool_free(n);
}
