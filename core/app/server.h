/* server: the one struct server that holds all mutable state, the listener
 * and accept, the flush hook that runs once per loop turn, the one
 * deadline timer, signals and shutdown. Callbacks reach it through loop->data. */
#ifndef SPACE_SERVER_H
#define SPACE_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "admit.h"
#include "auth.h"
#include "config.h"
#include "files.h"
#include "hmap.h"
#include "loop_lag.h"
#include "metrics.h"
#include "sbuf.h"
#include "wheel.h"

#define RECV_BUF_BYTES (64 * 1024)
#define WS_CTX_POOL_MAX 64 /* idle wslay contexts kept for reuse: 8.6 KB each */
#define WHEEL_TICK_MS 25 /* a coarse tick of the timer wheels (deadlines themselves are exact to the ms) */

struct conn;
struct ws_ctx;
struct eio_session;
struct sio_socket;
struct script_host;
struct reloader;

struct server {
    /* configuration (read-only after start) */
    const struct config *cfg;
    struct auth auth;                 /* JWT key and admin token, read at start */

    /* event loop and its handles */
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_prepare_t flush_hook;      /* flushes pending_flush before the loop blocks */
    uv_timer_t deadline_timer;    /* the one timer: armed at the wheels' earliest deadline */
    uint64_t deadline_timer_due;  /* when it is armed for (loop time); WHEEL_NEVER: stopped */
    struct wheel conn_timers;     /* conn deadlines (conn.timer) */
    struct wheel session_timers;  /* Engine.IO session deadlines (eio_session.timer) */
    uv_timer_t hold_timer;        /* wakes the loop for conns whose output is held (conn_hold) */
    uv_signal_t sigint, sigterm;
    int shutting_down;            /* stop accepting; closing everyone */
    int exit_code;

    /* connections */
    struct conn *conns;           /* every live conn (doubly linked) */
    struct conn *pending_flush;   /* conns with queued output this turn */
    uint64_t next_conn_id;
    uint64_t n_conns;
    struct admit admit;           /* the connection limit and its refusals (admit.c) */
    uint64_t partial_bytes;       /* WebSocket messages partly received, all conns (ws.c) */
    struct ws_ctx *ws_ctx_pool;   /* wslay contexts between frames, for reuse (ws.c) */
    unsigned ws_ctx_pool_n;
    char recv_buf[RECV_BUF_BYTES]; /* shared by every read: conns hold no buffer while idle */
    uint8_t ws_payload_buf[RECV_BUF_BYTES]; /* a whole small frame's unmasked payload (ws.c) */

    /* Engine.IO sessions, by sid */
    struct hmap sessions;
    struct eio_session *session_list; /* the same sessions, for shutdown */
    struct eio_session *dead_sessions; /* closed this turn; freed before the loop blocks */
    struct sio_socket *dead_sockets;   /* likewise for Socket.IO sockets */
    uint32_t sid_seq;                  /* sequence part of new ids */

    /* Socket.IO namespaces (by name) and users (by id) */
    struct hmap namespaces;
    struct hmap users;
    struct hmap bans;                 /* user id -> struct ban (ban.c), set by the admin API */

    /* scripts */
    struct script_host *script;
    struct reloader *reloader;        /* watches the scripts; owned (reload.c) */
    uint64_t started_ms;              /* wall clock at start, for uptime */
    struct file_store files;          /* sent files (core/files) */

    /* bytes many sessions are sent alike: built once, shared */
    struct buf *ping_wire[3];         /* "2" in each wire form (enum wire_form) */
    struct buf *record_separator;     /* 0x1E between polling payload entries */
    struct eio_session *poll_flush;   /* sessions whose parked GET may be answered this turn */

    /* scratch space for building outbound messages; reused, never held */
    struct sbuf scratch;

    /* ids handed to scripts: unique and increasing */
    uint64_t last_id;

    /* counters */
    uint64_t protocol_errors;
    uint64_t slow_closes;
    struct metrics metrics;           /* what /metrics reports (metrics.c) */
    struct loop_lag loop_lag;         /* fills metrics.loop_busy (loop_lag.c) */
};

/* Runs the server until SIGINT/SIGTERM; returns the process exit code. */
int server_run(const struct config *cfg);

/* Milliseconds of loop time (monotonic, cached per turn). */
static inline uint64_t server_now(const struct server *srv) { return uv_now(srv->loop); }
/* Milliseconds since the epoch (wall clock). */
uint64_t server_wall_ms(void);
/* The loop time at which the wall clock reads wall_ms (now, when that passed). */
static inline uint64_t server_loop_time_of(const struct server *srv, uint64_t wall_ms) {
    uint64_t wall_now = server_wall_ms();
    return server_now(srv) + (wall_ms > wall_now ? wall_ms - wall_now : 0);
}
/* A fresh 20-character URL-safe id (15 bytes: 12 random + a sequence). */
void server_new_sid(struct server *srv, char out[21]);
/* A server-made id: unique and increasing, 16 hex digits. */
void server_new_id(struct server *srv, char out[17]);
/* Links c into the list flushed before the loop blocks. */
void server_mark_flush(struct server *srv, struct conn *c);

#endif
