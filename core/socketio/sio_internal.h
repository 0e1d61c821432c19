/* What sio.c and sio_plain.c share and nobody else calls. */
#ifndef SPACE_SIO_INTERNAL_H
#define SPACE_SIO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "sbuf.h"
#include "sio.h"

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
void sio__plain_on_message(void *client, const char *p, size_t n);

#endif
