/* eio: the Engine.IO v4 session. A session has an id (sid), a heartbeat
 * (server pings, the client pongs) and a transport that carries its packets;
 * it is kept apart from the transport so that it can outlive the socket it
 * started on (long-polling and the upgrade to WebSocket). Above it sits the
 * Socket.IO client (sio.c), which it hands whole messages. */
#ifndef SPACE_EIO_H
#define SPACE_EIO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "conn.h"
#include "http.h"

struct sio_client;
struct server;

/* The wire form a session's output takes; a broadcast is encoded once per form. */
enum eio_form {
    EIO_FORM_WS = 0, /* WebSocket frames: "4<text>" text frame + one binary frame per attachment */
    EIO_FORM_COUNT
};

struct eio_session {
    char sid[21];
    struct server *srv;
    struct eio_session *prev, *next; /* server.session_list */
    struct eio_session *next_dead;   /* server's list of sessions freed after this turn */
    struct conn *ws;                 /* the WebSocket carrying the session, or NULL */
    struct sio_client *sio;          /* the Socket.IO client above; owned */
    uint64_t ping_at_ms;             /* loop time of the next ping, or of the pong deadline */
    uint64_t connect_deadline_ms;    /* close if no namespace was joined by then; 0 = joined */
    int awaiting_pong;               /* a ping is out: ping_at_ms is the pong deadline */
    int closed;
};

/* One outbound Engine.IO message: text plus binary attachments. */
struct eio_msg {
    const char *head;          /* the Socket.IO packet: head (type, nsp, id)... */
    size_t head_len;
    const char *text;          /* ...followed by its JSON */
    size_t len;
    size_t n_bin;
    const void *const *bin;    /* attachment bytes */
    const size_t *bin_len;
};

/* Handles a request under /socket.io/. */
void eio_handle_request(struct conn *c, const struct http_request *req, const char *body,
                        size_t body_len, int keep_alive);

/* The wire bytes of m in form; NULL on OOM. */
buf *eio_encode(enum eio_form form, const struct eio_msg *m);
static inline enum eio_form eio_form_of(const struct eio_session *s) { (void)s; return EIO_FORM_WS; }
/* Queues wire bytes built by eio_encode for this session's form. */
int eio_send_encoded(struct eio_session *s, buf *wire);
/* Encodes and queues one message. */
int eio_send(struct eio_session *s, const struct eio_msg *m);

/* Closes the session: the transport is closed with ws_code (a WebSocket
 * close code), the Socket.IO client is told (reason), and the memory is
 * freed after this loop turn. Calling it twice is harmless. */
void eio_close(struct eio_session *s, uint16_t ws_code, const char *reason);

/* Runs due heartbeats and timeouts; called by the server's sweep. */
void eio_sweep(struct server *srv, uint64_t now);
/* Frees the sessions closed during this turn. */
void eio_free_dead(struct server *srv);

#endif
