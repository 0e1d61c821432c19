/* net: the connections of one event loop and the loop's turn. It owns the
 * listener, every conn, the one receive buffer, the flush that writes each
 * marked conn once per turn (corking), and the one deadline timer, armed at
 * the earliest deadline of the timer wheels registered with it (the conns'
 * own, and those of the layers above). Upper layers never get called by
 * name: they register wheels, end-of-turn hooks and HTTP routes (httpd.h).
 *
 * Owns: struct net. May call: base, proto, libuv, wslay. */
#ifndef SPACE_NET_H
#define SPACE_NET_H

#include <stdint.h>
#include <uv.h>

#include "admit.h"
#include "config.h"
#include "wheel.h"
#include "ws.h"

#define NET_RECV_BUF_BYTES (64 * 1024)
/* What one conn may read in one loop turn before its reading pauses until
 * the next: libuv reads up to 32 buffers from a readable socket at once, so
 * a few dozen clients uploading could fill one turn with a hundred MiB to
 * unmask, copy and parse while everyone else waits. Far above what a chat
 * client sends in a turn. */
#define NET_TURN_READ_BYTES (256 * 1024)
#define NET_WHEEL_TICK_MS 25   /* a coarse tick of the timer wheels (deadlines themselves are exact to the ms) */
#define NET_MAX_WHEELS 8
#define NET_MAX_TURN_HOOKS 8
#define NET_MAX_ROUTES 16

struct conn;
struct http_route;

typedef void (*net_wheel_fire_fn)(struct wheel_entry *e, void *ud);
typedef void (*net_turn_fn)(void *ud);

/* When in a loop turn a hook runs: before the conns are flushed (to queue
 * what the turn produced), or after (to free what the turn closed). */
enum net_turn_phase { NET_BEFORE_FLUSH, NET_AFTER_FLUSH };

struct net {
    uv_loop_t *loop;
    const struct config *cfg;

    /* the listener and the connection limit */
    uv_tcp_t listener;
    struct admit admit;
    int listening;
    int shutting_down;            /* stop accepting; closing everyone */
    int reuse_port;               /* set by the app: other processes listen on the port too (SO_REUSEPORT) */

    /* connections */
    struct conn *conns;           /* every live conn (doubly linked) */
    struct conn *pending_flush;   /* conns with queued output this turn */
    uint32_t turn;                /* loop turns so far (conn read budgets count per turn) */
    uint32_t n_read_paused;       /* conns with CONN_READ_PAUSED */
    uint64_t next_conn_id;
    uint64_t n_conns;

    /* the turn: flush hook, held output, deadlines */
    uv_prepare_t flush_hook;      /* flushes pending_flush before the loop blocks */
    uv_timer_t hold_timer;        /* wakes the loop for conns whose output is held (conn_hold) */
    uv_timer_t deadline_timer;    /* the one timer: armed at the wheels' earliest deadline */
    uint64_t deadline_timer_due;  /* when it is armed for (loop time); WHEEL_NEVER: stopped */
    struct wheel conn_timers;     /* conn deadlines (conn.timer) */
    struct { struct wheel *wheel; net_wheel_fire_fn fire; } wheels[NET_MAX_WHEELS];
    unsigned n_wheels;
    struct { net_turn_fn fn; void *ud; } hooks[2][NET_MAX_TURN_HOOKS];
    unsigned n_hooks[2];

    /* HTTP routes (httpd.c), in registration order; the fallback is tried last */
    const struct http_route *routes[NET_MAX_ROUTES];
    unsigned n_routes;
    const struct http_route *fallback;

    struct ws_shared ws;          /* what the WebSockets share (ws.c) */

    /* counters (/metrics) */
    uint64_t bytes_in, bytes_out;
    uint64_t slow_closes;
    uint64_t protocol_errors;     /* every layer's: framing, packets, payloads */

    char recv_buf[NET_RECV_BUF_BYTES]; /* shared by every read: conns hold no buffer while idle */
};

/* Sets up the turn (flush hook, timers); loop->data must not be relied on. */
void net_init(struct net *n, uv_loop_t *loop, const struct config *cfg);
/* Binds and listens on cfg's host and port; the bound address goes to
 * addr_out. 0, or -1 with the reason printed. */
int net_listen(struct net *n, char *addr_out, size_t cap);
/* Works out the connection limit (admit.c); once the process holds the
 * descriptors it keeps for good. */
void net_admit_init(struct net *n);
/* Stops accepting and closes every conn within grace_ms (HTTP ones at once,
 * once what is queued went out). The loop stops when none is left. */
void net_shutdown(struct net *n, uint64_t grace_ms);
/* After the loop stopped: closes every conn and runs a last turn's hooks. */
void net_close_all(struct net *n);
/* Frees the net's state, once the loop closed every handle. */
void net_free(struct net *n);

static inline uint64_t net_now(const struct net *n) { return uv_now(n->loop); }
/* The loop time at which the wall clock reads wall_ms (now, when that passed). */
uint64_t net_loop_time_of(const struct net *n, uint64_t wall_ms);

/* Registers a timer wheel: its deadlines fire through the one deadline timer. */
void net_add_wheel(struct net *n, struct wheel *w, net_wheel_fire_fn fire);
/* Unregisters w (a layer freed before net: its wheel must not be read again). */
void net_remove_wheel(struct net *n, struct wheel *w);
/* Registers fn to run once per loop turn, in phase (before the flush in the
 * order added, after it in reverse: upper layers free first). */
void net_add_turn_hook(struct net *n, enum net_turn_phase phase, net_turn_fn fn, void *ud);
/* Links c into the list flushed before the loop blocks. */
void net_mark_flush(struct net *n, struct conn *c);

#endif
