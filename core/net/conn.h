/* conn: one TCP connection. The uv_tcp_t comes first so that handle and
 * conn convert with a cast; a conn and its state are one allocation.
 *
 * Input: bytes arrive in the server's shared receive buffer and go straight
 * to the transport; only an unparsed tail is copied into conn->in.
 * Output: a queue of references to refcounted bufs. Queueing only marks the
 * conn; the server flushes every marked conn once per loop turn with one
 * writev (corking). Queued bytes are capped: a client that falls further
 * behind is closed.
 * Closing: conn_close() may be called anywhere, twice is harmless; the
 * memory is freed from libuv's close callback, after the current turn. */
#ifndef SPACE_CONN_H
#define SPACE_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "wheel.h"

struct conn;
struct net;
struct http_route;

/* A transport is a shared table of functions, not per-conn callbacks; an
 * upgrade (HTTP -> WebSocket) swaps conn->tr and keeps the conn. */
struct transport {
    const char *name;
    /* n bytes arrived (p is only valid during the call). */
    void (*on_data)(struct conn *c, const char *p, size_t n);
    /* conn->deadline_ms passed. */
    void (*on_timeout)(struct conn *c);
    /* The conn is closing: release transport state (conn->tr_state). Runs
     * once, before the handle is closed; the conn can still be read. */
    void (*on_close)(struct conn *c);
    /* The output queue drained below CONN_DRAIN_BYTES (may be NULL): a
     * transport that produces output as it goes (a file) produces more. */
    void (*on_drain)(struct conn *c);
};

#define CONN_DRAIN_BYTES (128 * 1024)

struct out_entry {
    buf *b;       /* one reference held */
    uint32_t off; /* bytes of b already written */
};

enum conn_flags {
    CONN_CLOSING = 1 << 0,        /* conn_close ran; waiting for libuv's close callback */
    CONN_PENDING_FLUSH = 1 << 1,  /* linked into net.pending_flush */
    CONN_CLOSE_AFTER_FLUSH = 1 << 2, /* close (FIN, then drain) once the queue is written */
    CONN_SHUTDOWN = 1 << 3,       /* FIN sent; reading only to drain until EOF */
    /* Close at the next flush, not now: set where closing at once could run
     * handlers under a caller that is iterating (a broadcast over a room). */
    CONN_CLOSE_ASAP = 1 << 4,
    /* A POST's body is arriving on this conn; its route was told (httpd.c). */
    CONN_PARTIAL_POST = 1 << 5,
    CONN_HEAD_REQUEST = 1 << 6, /* the request being answered is a HEAD: no body goes out */
    CONN_SERVICE_SLOT = 1 << 7, /* past the connection limit: one request, /healthz and the like (admit.c) */
    CONN_READ_PAUSED = 1 << 8,  /* read its share of this turn (NET_TURN_READ_BYTES): resumed at the turn's end */
};

struct conn {
    uv_tcp_t tcp;                 /* first: (struct conn *)handle */
    struct net *net;
    const struct transport *tr;   /* current transport */
    void *tr_state;               /* the transport's state, owned by it */
    struct conn *prev, *next;     /* net.conns: every live conn, for shutdown */
    struct conn *next_flush;      /* net.pending_flush list */
    uint64_t deadline_ms;         /* loop time when tr->on_timeout runs; 0 = none (conn_set_deadline) */
    struct wheel_entry timer;     /* in net.conn_timers, due at or before deadline_ms */
    uint64_t hold_until_ms;       /* output waits until this loop time (conn_hold) */
    uint32_t flags;               /* enum conn_flags */
    uint32_t writes_in_flight;    /* uv_write requests not yet called back */
    uint32_t read_turn, read_bytes; /* bytes read in net.turn number read_turn */
    /* input: an unparsed tail only (HTTP heads and bodies) */
    char *in;
    size_t in_len, in_cap;
    /* output */
    struct out_entry *q;          /* queue, entries [q_head, q_len) pending */
    uint32_t q_head, q_len, q_cap;
    size_t out_bytes;             /* queued + in flight, for the cap */
    uint64_t id;                  /* for logs */
    /* with CONN_PARTIAL_POST: the route whose POST body is arriving, and a
     * key its body_pending kept to find its state again (a session id) */
    const struct http_route *partial_route;
    char partial_key[21];
    /* While a route handles a request: the request's bytes and those that
     * followed it in this read (what a handoff to another process passes
     * on with the socket); NULL otherwise. */
    const char *req_raw;
    size_t req_raw_len;
};

/* At the end of a loop turn (net.c): a new turn, and every conn whose
 * reading paused on its share of the last one reads again. */
void conn__resume_reads(struct net *net);

/* Accepts a pending connection on the listener, or a connection another
 * process handed over on an IPC pipe (uv_pipe_pending_count > 0); NULL when
 * it failed. */
struct conn *conn_accept(struct net *net, uv_stream_t *listener, const struct transport *tr);

/* Queues a reference to b (the caller keeps its own). Returns 0, or -1 when
 * the conn is closing, or passed its output cap (or memory ran out): it is
 * then closed at the next flush, never from inside this call. */
int conn_send(struct conn *c, buf *b);
/* Queues a copy of n bytes. Same returns. */
int conn_send_copy(struct conn *c, const void *p, size_t n);
/* Keeps what is queued from now on in the queue for ms milliseconds. */
void conn_hold(struct conn *c, uint64_t ms);
/* Writes the queue now (one writev); called once per loop turn by the server. */
void conn_flush(struct conn *c);

/* Sets deadline_ms (loop time; 0 = none). The wheel entry only ever moves
 * earlier here: a later deadline is found when the earlier entry fires. */
void conn_set_deadline(struct conn *c, uint64_t ms);
/* Runs a conn's deadline if it passed (net's conn wheel fires this). */
void conn_on_timer(struct wheel_entry *e, void *ud);

/* Closes at once: the transport's on_close runs, queued output is dropped. */
void conn_close(struct conn *c);
/* Closes once the queued output is written: FIN, then drain until EOF. */
void conn_close_after_flush(struct conn *c);
static inline int conn_is_closing(const struct conn *c) {
    return (c->flags & (CONN_CLOSING | CONN_CLOSE_AFTER_FLUSH | CONN_CLOSE_ASAP)) != 0;
}

/* Appends n bytes to conn->in; -1 on OOM. */
int conn_in_append(struct conn *c, const char *p, size_t n);
/* Drops the first n bytes of conn->in. */
void conn_in_consume(struct conn *c, size_t n);

/* "ip:port" of the peer into out (for logs). */
void conn_peer_name(const struct conn *c, char *out, size_t cap);

#endif
