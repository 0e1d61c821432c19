/* sio: Socket.IO v5 over an Engine.IO session. A client (one per session)
 * joins namespaces; each joined namespace is a socket, the thing scripts
 * call a connection: it has a user, rooms and acks. Packets are decoded
 * here (header) and in the script host (JSON); every violation closes the
 * session and nothing else. */
#ifndef SPACE_SIO_H
#define SPACE_SIO_H

#include <stddef.h>
#include <stdint.h>

#include "hmap.h"
#include "http.h"
#include "room.h"
#include "sio_packet.h"

struct eio_session;
struct server;
struct sio_client;

/* A namespace: its name and its rooms. Created on first connect, kept. */
struct nsp {
    struct hmap rooms;    /* name -> struct room */
    uint32_t n_sockets;
    size_t name_len;
    char name[];
};

struct sio_socket {
    struct room_membership rooms;  /* rooms.user is the socket's user */
    struct sio_client *client;
    struct sio_socket *next;       /* the client's sockets */
    struct sio_socket *next_dead;  /* server's list of sockets freed after this turn */
    struct nsp *nsp;
    char sid[21];
    int closed;
    int script_ref;                /* the script host's handle for it (0 = none) */
    int64_t next_ack_id;           /* ids of acks the server asks for */
    uint64_t connected_ms;         /* wall clock */
    struct sio_socket *user_prev, *user_next; /* the user's sockets (user->sockets) */
    /* authentication (JWT mode) */
    uint64_t token_exp_ms;         /* wall clock when the token expires; 0 = never */
    uint64_t token_expired_ms;     /* when the client was told; the grace runs from there */
    char token_sub[257];           /* the token's sub: a refresh must keep it */
};

struct sio_client *sio_client_new(struct eio_session *eio, const struct http_request *req);
void sio_client_on_text(struct sio_client *c, const char *p, size_t n);
void sio_client_on_binary(struct sio_client *c, const uint8_t *p, size_t n);
/* The plain /ws protocol: authenticate from the query (name, token) and
 * open the one socket; then each text frame is one JSON message. */
void sio_client_start_plain(struct sio_client *c, const struct http_request *req);
void sio_client_on_plain(struct sio_client *c, const char *p, size_t n);
/* 1 when the socket speaks the plain /ws protocol. */
int sio_socket_is_plain(const struct sio_socket *s);
/* The session closed: every socket disconnects with reason. */
void sio_client_on_close(struct sio_client *c, const char *reason);
void sio_client_free(struct sio_client *c);

/* One outbound packet: type, ack id (-1: none), JSON text, binary attachments. */
struct sio_out {
    enum sio_type type;
    int64_t ack_id;
    const char *json;
    size_t len;
    size_t n_bin;
    const void *const *bin;
    const size_t *bin_len;
};

/* Sends a packet to one socket. Returns 0, or -1 when it is gone. */
int sio_send(struct sio_socket *s, const struct sio_out *o);
/* Sends a packet to every socket in room r of nsp except `except`; encoded
 * once per wire form. Returns the number of recipients. */
size_t sio_broadcast(struct server *srv, struct nsp *nsp, struct room *r, struct sio_socket *except,
                     const struct sio_out *o);
/* Disconnects one socket (sends DISCONNECT when notify_client). */
void sio_socket_close(struct sio_socket *s, const char *reason, int notify_client);
/* Closes the whole session the socket belongs to. */
void sio_socket_close_session(struct sio_socket *s, uint16_t ws_code, const char *reason);
/* The token the client's handshake carried (Bearer header or query), or NULL. */
const char *sio_socket_handshake_token(const struct sio_socket *s);
/* Token expiry: tells sockets whose token expired, closes those whose grace
 * passed. Called when the session's timer fires (eio.c), at the deadline
 * sio_client_next_deadline gave. */
void sio_client_sweep(struct sio_client *c, uint64_t now_wall_ms);
/* When sio_client_sweep next has something to do (wall clock ms; 0 = never). */
uint64_t sio_client_next_deadline(const struct sio_client *c);
/* A socket's token (re)verified: it expires at exp_wall_ms (0 = never); the
 * session's timer is told. */
void sio_socket_set_token_exp(struct sio_socket *s, uint64_t exp_wall_ms);
/* Links s into its user's list of sockets (after authentication). */
void sio_socket_link_user(struct sio_socket *s);
/* Frees the sockets closed during this turn. */
void sio_free_dead(struct server *srv);

#endif
