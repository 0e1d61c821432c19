/* What sio.c and sio_plain.c share and nobody else calls. */
#ifndef SPACE_SIO_INTERNAL_H
#define SPACE_SIO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "http.h"
#include "sbuf.h"
#include "sio.h"
#include "sio_packet.h"
#include "wire.h"

/* A binary packet waits for its attachments here. */
struct pending_binary {
    char *text;            /* the packet's text (header and JSON), copied */
    size_t len;
    unsigned expected;     /* attachments announced */
    unsigned got;
    void *att[SIO_MAX_ATTACHMENTS];
    size_t att_len[SIO_MAX_ATTACHMENTS];
};

/* /ws request ids that no number can stand for (strings, negative,
 * fractional or long numbers): each waits here for its answer under a key
 * that goes through the handlers as the ack id. At most PLAIN_IDS_MAX
 * wait per connection (answers come later only after asynchronous work);
 * a newer id takes the oldest one's slot, whose answer then goes without
 * an id. */
#define PLAIN_ID_KEY_BASE ((int64_t)1 << 60) /* above any id a number stands for, or the server's own ack ids */
#define PLAIN_IDS_MAX 64
struct plain_ids {
    int64_t next_seq;           /* key = PLAIN_ID_KEY_BASE + seq; slot = seq % PLAIN_IDS_MAX */
    int64_t key[PLAIN_IDS_MAX]; /* 0: the slot is free */
    char *text[PLAIN_IDS_MAX];  /* the id's JSON text, owned */
    size_t len[PLAIN_IDS_MAX];
};

struct sio_client {
    char *handshake_token;         /* Bearer header or token query of the handshake; owned */
    struct plain_ids *plain_ids;   /* /ws only, made at the first such id */
    struct eio_session *eio;
    struct sio_hub *hub;
    struct sio_socket *sockets;    /* joined namespaces */
    struct pending_binary pending; /* pending.expected == 0 when none */
};

/* Opens a socket in namespace nsp_name for the client and runs the app's
 * authenticate with the auth JSON: the socket (linked into the client) on
 * SIO_OK; NULL otherwise, with *result saying why and the refusal JSON in refusal. */
struct sio_socket *sio__socket_open(struct sio_client *c, struct slice nsp_name, const char *auth, size_t auth_len,
                                    enum sio_verdict *result, struct sbuf *refusal);
/* Answers a message refused before any handler saw it (invalid_payload). */
void sio__answer_invalid_payload(struct sio_socket *s, struct slice event, int64_t ack_id, const char *why);
/* /ws request ids kept for their answer (sio_plain.c). */
int64_t sio__plain_id_keep(struct sio_client *c, struct slice id);
char *sio__plain_id_take(struct sio_client *c, int64_t key, size_t *len);
void sio__plain_start(void *client, const struct http_request *req);
/* Sends p to one session in its form (a packet with no plain form to a /ws client is skipped). */
int sio__send_packet(struct eio_session *e, const struct wire_packet *p);
/* The CONNECT reply: the socket's sid, and its pid when recovery is on. */
void sio__send_connect_reply(struct sio_socket *s);

/* Connection state recovery (sio_recovery.c). */
static inline int sio__recovery_on(const struct sio_hub *hub) { return hub->cfg->recovery_window_ms > 0; }
/* Whether the packet goes into the log with an offset: events that ask for
 * no ack (as Node; binary events are not logged here). */
static inline int sio__loggable(const struct sio_hub *hub, const struct sio_out *o) {
    return sio__recovery_on(hub) && o->type == SIO_EVENT && o->ack_id < 0 && o->n_bin == 0;
}
/* Whether this session's events carry offsets: Socket.IO clients that can use them. */
static inline int sio__takes_offsets(const struct eio_session *e) {
    return e->kind == EIO_KIND_SOCKETIO && !e->no_offsets;
}
/* A fresh offset: the event array with it goes into out and into the
 * namespace's log (direct_sid: sent to that socket alone; else to: the
 * broadcast's target). 0, or -1 (out of memory: sent without an offset, unlogged). */
int sio__log_event(struct nsp *nsp, const struct sio_out *o, const char *direct_sid,
                   const struct adapter_target *to, struct sbuf *out);
/* A CONNECT whose auth names {pid, offset}: 1 when a kept socket was recovered onto c. */
int sio__try_recover(struct sio_client *c, const struct sio_packet *pkt);
/* The literal to keep when c's session closed for a reason its client can
 * recover from (and recovery applies to it); NULL otherwise. */
const char *sio__recoverable(const struct sio_client *c, const char *reason);
/* Keeps s, whose transport dropped, for its window (s leaves its client). */
void sio__detach(struct sio_socket *s, const char *reason);
/* The hub's wheel: a detached socket's window ended, or a log has entries to prune. */
void sio__recovery_timer(struct wheel_entry *e, void *ud);
void sio__plain_on_message(void *client, const char *p, size_t n);

#endif
