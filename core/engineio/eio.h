/* eio: the Engine.IO v4 session, and the hub that holds every session. A
 * session has an id (sid), a heartbeat (server pings, the client pongs) and
 * a transport that carries its packets:
 * HTTP long-polling (poll.c) or a WebSocket, and it can upgrade from the
 * first to the second while it runs; so the session is kept apart from any
 * socket. Above it sits an upper layer (the Socket.IO client, sio.c), reached
 * only through struct eio_upper_ops, which the composition root fills in.
 * A plain /ws session (docs/protocol.md §6) is a session of kind EIO_KIND_PLAIN:
 * a WebSocket without Engine.IO framing, heartbeat by WebSocket pings (plain.c).
 *
 * Owns: struct eio_hub, sessions, polling (poll.c), /ws (plain.c).
 * May call: net, proto, base. */
#ifndef SPACE_EIO_H
#define SPACE_EIO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "conn.h"
#include "hmap.h"
#include "http.h"
#include "httpd.h"
#include "ids.h"
#include "sbuf.h"
#include "wheel.h"
#include "wire.h"

struct eio_session;
struct ids;
struct net;

/* What the layer above a session hears. `client` is what open returned. */
struct eio_upper_ops {
    /* A session opened (the handshake request): its client, or NULL (out of memory). */
    void *(*open)(void *ud, struct eio_session *s, const struct http_request *req);
    void (*on_text)(void *client, const char *p, size_t n);    /* an Engine.IO message */
    void (*on_binary)(void *client, const uint8_t *p, size_t n);
    void (*start_plain)(void *client, const struct http_request *req); /* a /ws session began */
    void (*on_plain)(void *client, const char *p, size_t n);   /* a /ws text frame */
    void (*on_close)(void *client, const char *reason);        /* the session closed */
    void (*free)(void *client);                                /* after the turn it closed in */
    /* When the client next has something due (wall clock ms, 0: never), and
     * running it; asked only when the hub's upper_deadlines is set. */
    uint64_t (*next_deadline)(void *client);
    void (*sweep)(void *client, uint64_t now_wall_ms);
};

struct eio_hub {
    struct net *net;
    const struct config *cfg;
    struct ids *ids;
    const struct eio_upper_ops *up;
    void *up_ud;
    int upper_deadlines;              /* the upper layer has deadlines (token expiry) */
    /* Set by the app, or NULL: a request names a sid (IDS_SID_LEN
     * characters) this hub does not hold. Returns 1 when the app took the
     * conn (the session lives elsewhere and the request went there). */
    int (*foreign)(void *ud, struct conn *c, const char *sid);
    void *foreign_ud;
    struct hmap sessions;             /* sid -> struct eio_session */
    struct eio_session *session_list; /* the same sessions, for shutdown */
    struct eio_session *dead_sessions; /* closed this turn; freed after the flush */
    struct eio_session *poll_flush;   /* sessions whose parked GET may be answered this turn */
    struct wheel timers;              /* session deadlines (eio_session.timer) */
    buf *ping_wire[WIRE_FORMS];       /* "2" in each wire form: built once, shared */
    buf *record_separator;            /* 0x1E between polling payload entries */
    struct sbuf scratch;              /* reused for open packets, never held */
    struct http_route route, plain_route; /* /socket.io/ and /ws */
};

#define EIO_UPGRADE_TIMEOUT_MS 10000
#define POLL_MAX_PACKETS 16 /* per GET response: python clients refuse more */

enum eio_kind { EIO_KIND_SOCKETIO, EIO_KIND_PLAIN };
enum eio_transport { EIO_POLLING, EIO_WEBSOCKET };

/* One queued polling payload element (or several joined by 0x1E). */
struct poll_entry {
    buf *b;
    unsigned n_packets;
};

struct eio_session {
    char sid[IDS_SID_LEN + 1];
    char peer[64];                    /* "ip:port" of the handshake (for logs) */
    struct eio_hub *hub;
    struct eio_session *prev, *next;  /* hub.session_list */
    struct wheel_entry timer;         /* in hub.timers: its next deadline */
    struct eio_session *next_dead;    /* hub.dead_sessions: freed after this turn */
    struct eio_session *next_poll;    /* hub.poll_flush: a parked GET may be answered */
    enum eio_kind kind;
    enum eio_transport transport;
    int no_offsets;                   /* a python-socketio client: events without recovery offsets */
    void *upper;                      /* the upper layer's client (eio_upper_ops.open); owned */
    /* websocket */
    struct conn *ws;                  /* the WebSocket carrying the session */
    struct conn *probe;               /* a WebSocket probing an upgrade, or NULL */
    int probe_answered;               /* 3probe sent: release parked GETs with a noop */
    uint64_t upgrade_deadline_ms;
    /* long-polling */
    struct conn *poll_get;            /* the parked GET, or NULL */
    char *poll_headers;               /* extra headers its answer carries (CORS); owned */
    int poll_keep_alive;              /* its connection may serve another request */
    struct poll_entry *pq;            /* output queue [pq_head, pq_len) */
    uint32_t pq_head, pq_len, pq_cap;
    size_t pq_bytes;
    int in_poll_flush;                /* linked into hub.poll_flush */
    uint64_t post_conn_id;            /* conn on which a POST's body is arriving, 0 = none */
    uint64_t close_after_drain_ms;    /* closing: waits for a GET to take what is queued, until then */
    int close_slow;                   /* the queue passed --max-output: closed by the timer, next turn */
    /* held output (eio_output_hold): a replay goes out ahead of what is live */
    struct poll_entry *held;          /* what waits, in order [0, n_held) */
    uint32_t n_held, held_cap;
    size_t held_bytes;
    unsigned hold_count;              /* holds not yet released */
    int hold_ahead;                   /* sends go out now, ahead of what is held */
    /* heartbeat and timeouts */
    uint64_t ping_at_ms;              /* loop time of the next ping, or of the pong deadline */
    uint64_t connect_deadline_ms;     /* close if no namespace was joined by then; 0 = joined */
    int awaiting_pong;
    int closed;
};

/* Sets the hub up on net: its routes (/socket.io/, /ws), wheel and turn hooks. */
void eio_hub_init(struct eio_hub *hub, struct net *net, struct ids *ids, const struct eio_upper_ops *up,
                  void *up_ud);
/* Closes every session (shutdown). */
void eio_hub_close_all(struct eio_hub *hub, uint16_t ws_code, const char *reason);
/* Frees what is left, once the loop stopped. */
void eio_hub_free(struct eio_hub *hub);

/* The wire form this session's output takes now. */
enum wire_form eio_form_of(const struct eio_session *s);
/* Queues wire bytes of the session's form (n_packets: Engine.IO packets in
 * them, for polling). Returns 0, or -1 when the session is gone. */
int eio_send_encoded(struct eio_session *s, buf *wire, unsigned n_packets);

/* Holds the session's output: what is sent from now on waits (in order,
 * within --max-output) until the last hold is released, except what is sent
 * while `ahead` is on, which goes out at once, ahead of it. A /ws client
 * resuming a room (join_room with since) gets the missed messages before
 * anything live this way. */
void eio_output_hold(struct eio_session *s);
void eio_output_release(struct eio_session *s);
void eio_output_ahead(struct eio_session *s, int on);

/* Writes what is queued now, and holds what follows for a moment: the
 * CONNECT reply and what the connection handler sends leave in separate
 * writes a little apart, as from the reference server, whose clients may
 * read one message per tick (the official test suite's do). */
#define EIO_AFTER_CONNECT_HOLD_MS 2
void eio_flush_now(struct eio_session *s);

/* Closes the session: the transport is closed with ws_code (a WebSocket
 * close code), the Socket.IO client is told (reason), and the memory is
 * freed after this loop turn. Calling it twice is harmless. */
void eio_close(struct eio_session *s, uint16_t ws_code, const char *reason);
/* Closes once what is queued went out: at once on a WebSocket or with a
 * parked GET; else when the next GET took the queue (or 30 s passed), so
 * that a polling client learns of a DISCONNECT and does not reconnect. */
#define EIO_POLL_CLOSE_WAIT_MS 30000
void eio_close_after_drain(struct eio_session *s, uint16_t ws_code, const char *reason);
/* Called after a GET was answered: closes a session that was draining. */
void eio_drained(struct eio_session *s);
/* A protocol violation: counted, logged, and the session closed (1002). */
void eio_protocol_error(struct eio_session *s, const char *what);

/* Makes the session's timer fire by due_ms (loop time) at the latest: for
 * a deadline that came nearer (a session's timer otherwise only looks at
 * deadlines when it fires, and then schedules itself at the next one). */
void eio_wake_by(struct eio_session *s, uint64_t due_ms);
/* Runs a session's due heartbeats and timeouts (the hub's wheel fires this, through net). */
void eio_on_timer(struct wheel_entry *e, void *ud);
/* Answers parked GETs that have output; once per loop turn. */
void eio_flush_polls(struct eio_hub *hub);
/* Frees the sessions closed during this turn. */
void eio_free_dead(struct eio_hub *hub);

/* poll.c: the long-polling transport of a session. */
void poll_handle_get(struct eio_session *s, struct conn *c, const struct http_request *req, int keep_alive);
void poll_handle_post(struct eio_session *s, struct conn *c, const struct http_request *req,
                      const char *body, size_t len, int keep_alive);
int poll_queue(struct eio_session *s, buf *b, unsigned n_packets);
/* Answers the parked GET with what is queued (or with `packet` when the
 * queue is empty and packet is not NULL, e.g. "6" or "1"). */
void poll_answer(struct eio_session *s, const char *packet);
void poll_release(struct eio_session *s); /* drops the queue and the parked GET */
/* Writes the CORS headers a response to this request gets into out. */
void poll_cors_headers(struct eio_hub *hub, const struct http_request *req, char *out, size_t cap);

/* plain.c: the /ws kind of session. */
void plain_init(struct eio_hub *hub);
void plain_on_message(struct eio_session *s, int binary, const uint8_t *p, size_t n);

#endif
