/* sio: Socket.IO v5 over an Engine.IO session. A client (one per session)
 * joins namespaces; each joined namespace is a socket, the thing scripts
 * call a connection: it has a user, rooms and acks. Packets are decoded
 * here (header) and by the app (JSON); every violation closes the session
 * and nothing else. The app (authentication, event handlers) is reached
 * only through struct sio_app_ops; rooms only through the namespace's
 * adapter (adapter.h).
 *
 * Owns: struct sio_hub (namespaces, users, bans), clients, sockets.
 * May call: engineio, net, proto, base. */
#ifndef SPACE_SIO_H
#define SPACE_SIO_H

#include <stddef.h>
#include <stdint.h>

#include "eio.h"
#include "hmap.h"
#include "http.h"
#include "ids.h"
#include "recovery.h"
#include "room.h"
#include "sbuf.h"
#include "sio_packet.h"
#include "wheel.h"

struct adapter;
struct adapter_target;
struct eio_session;
struct metrics;
struct nsp;
struct sio_client;
struct sio_socket;

/* What the app says of a client's packet. */
enum sio_verdict {
    SIO_OK = 0,
    SIO_REFUSE = 1,          /* refused (connect): the refusal JSON was written */
    SIO_PROTOCOL_ERROR = -1, /* the client's data broke the protocol (or a JSON limit) */
};

/* The app above the sockets (the script host), filled in by the composition root. */
struct sio_app_ops {
    int (*has_namespace)(void *ud, const char *nsp, size_t len);
    /* On SIO_OK the socket has its user (s->rooms.user); on SIO_REFUSE,
     * refusal holds the CONNECT_ERROR data. */
    enum sio_verdict (*authenticate)(void *ud, struct sio_socket *s, const char *json, size_t len,
                                     struct sbuf *refusal);
    void (*on_connected)(void *ud, struct sio_socket *s);
    enum sio_verdict (*on_event)(void *ud, struct sio_socket *s, int64_t ack_id, const char *json, size_t len,
                                 unsigned n_att, const void *const *att, const size_t *att_len);
    enum sio_verdict (*on_ack)(void *ud, struct sio_socket *s, int64_t ack_id, const char *json, size_t len,
                               unsigned n_att, const void *const *att, const size_t *att_len);
    /* Runs while the socket's rooms can still be read. */
    void (*on_disconnect)(void *ud, struct sio_socket *s, const char *reason);
    /* The socket is going away: the app drops what it holds of it. */
    void (*release_socket)(void *ud, struct sio_socket *s);
    /* Sends `error` {code, message, event} from the server itself. */
    void (*send_error)(void *ud, struct sio_socket *s, const char *event, const char *code, const char *message);
};

/* Makes a namespace's adapter (adapter.h); NULL on OOM. */
typedef struct adapter *(*sio_adapter_factory)(struct nsp *nsp, void *ud);

struct sio_hub {
    struct eio_hub *eio;
    const struct config *cfg;
    struct ids *ids;
    struct metrics *metrics;          /* counted into; NULL: not counted */
    const struct sio_app_ops *app;
    void *app_ud;
    sio_adapter_factory new_adapter;
    void *adapter_ud;
    struct hmap namespaces;           /* name -> struct nsp */
    struct hmap users;                /* user id -> struct user (user.h) */
    struct hmap bans;                 /* user id -> struct ban (ban.h), set by the admin API */
    struct sio_socket *dead_sockets;  /* closed this turn; freed after the flush */
    /* connection state recovery (--recovery-window; off when 0) */
    struct hmap pids;                 /* pid -> struct sio_socket (attached, or detached: its transport dropped) */
    struct wheel timers;              /* detached sockets' ends, namespaces' log pruning */
    /* Set by the composition root, or NULL: a CONNECT named a pid this
     * process does not hold (another node or worker may keep its socket). */
    void (*pid_elsewhere)(void *ud, const char *pid);
    void *pid_elsewhere_ud;
};

/* An entry of sio_hub.timers: what fires says what it is. */
struct sio_timer {
    struct wheel_entry e;
    int is_socket;                    /* a detached socket's end; else a namespace's pruning */
};

/* A namespace: its name and its rooms' adapter. Created on first connect, kept. */
struct nsp {
    struct sio_hub *hub;
    struct adapter *adapter;
    uint32_t n_sockets;
    struct rlog log;                  /* events sent with an offset, within the recovery window */
    struct sio_timer prune;           /* when the log's oldest entry leaves the window */
    size_t name_len;
    char name[];
};

/* Sets the hub up over an Engine.IO hub (it becomes eio's upper layer).
 * new_adapter: NULL for the in-memory adapter. */
void sio_hub_init(struct sio_hub *hub, struct eio_hub *eio, struct metrics *metrics, const struct sio_app_ops *app,
                  void *app_ud, sio_adapter_factory new_adapter, void *adapter_ud);
void sio_hub_free(struct sio_hub *hub);
/* The namespace called name, or NULL when none was ever connected to. */
struct nsp *sio_find_nsp(struct sio_hub *hub, const char *name, size_t len);

struct sio_socket {
    struct room_membership rooms;  /* rooms.user is the socket's user */
    struct sio_client *client;
    struct sio_socket *next;       /* the client's sockets */
    struct sio_socket *next_dead;  /* hub.dead_sockets: freed after this turn */
    struct nsp *nsp;
    char sid[IDS_SID_LEN + 1];
    char pid[IDS_SID_LEN + 1];     /* private session id for recovery ("" when it is off) */
    char peer[64];                 /* "ip:port" of the handshake (kept while detached) */
    int closed;
    /* Its transport dropped for a reason that allows recovery: client is
     * NULL, it keeps its rooms and user, and what is sent to it only goes
     * into the log, until it is recovered or its window ends. */
    int detached;
    int recovered;                 /* this connection recovered an earlier one */
    const char *detach_reason;     /* why its transport dropped (a literal) */
    struct sio_timer expiry;       /* while detached: the end of its window */
    int script_ref;                /* the script host's handle for it (0 = none) */
    int64_t next_ack_id;           /* ids of acks the server asks for */
    uint64_t connected_ms;         /* wall clock */
    struct sio_socket *user_prev, *user_next; /* the user's sockets (user->sockets) */
    /* authentication (JWT mode) */
    uint64_t token_exp_ms;         /* wall clock when the token expires; 0 = never */
    uint64_t token_expired_ms;     /* when the client was told; the grace runs from there */
    char token_sub[257];           /* the token's sub: a refresh must keep it */
};

/* Holds the socket's output: what is sent from now on waits until the last
 * hold is released, except what is sent while ahead is on (eio_output_hold:
 * a replay of missed messages goes out before anything live). */
void sio_socket_output_hold(struct sio_socket *s);
void sio_socket_output_release(struct sio_socket *s);
void sio_socket_output_ahead(struct sio_socket *s, int on);

/* 1 when the socket speaks the plain /ws protocol. */
int sio_socket_is_plain(const struct sio_socket *s);
/* "ip:port" of the socket's handshake. */
const char *sio_socket_peer(const struct sio_socket *s);

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
/* Sends a packet to every socket in the room of nsp except `except`,
 * through the namespace's adapter. Returns the number of local recipients. */
size_t sio_broadcast(struct nsp *nsp, const char *room, size_t len, struct sio_socket *except,
                     const struct sio_out *o);

/* One packet to many sockets, encoded once per wire form (adapters use it). */
struct sio_fanout {
    struct nsp *nsp;
    const struct sio_out *o;
    struct sbuf with_offset;  /* the event array with its offset (when logged) */
    buf *wire[2][WIRE_FORMS]; /* [with offset]: encoded by the first recipient that needs the form */
    unsigned n_packets[2][WIRE_FORMS];
    int tried[2][WIRE_FORMS];
    size_t sent;
};
/* to: the broadcast's target, for the recovery log (NULL: not logged). */
void sio_fanout_begin(struct sio_fanout *f, struct nsp *nsp, const struct sio_out *o, const struct adapter_target *to);
/* Queues the packet to s (a slow member is closed later, never inside a fan-out). */
void sio_fanout_send(struct sio_fanout *f, struct sio_socket *s);
/* Queues the packet to every member of r (in-memory rooms, room.h) but except. */
void sio_fanout_room(struct sio_fanout *f, const struct room *r, const struct sio_socket *except);
/* Releases the encodings and counts the deliveries; returns them. */
size_t sio_fanout_end(struct sio_fanout *f);
/* Disconnects one socket (sends DISCONNECT when notify_client). */
void sio_socket_close(struct sio_socket *s, const char *reason, int notify_client);
/* Closes the whole session the socket belongs to. */
void sio_socket_close_session(struct sio_socket *s, uint16_t ws_code, const char *reason);
/* The token the client's handshake carried (Bearer header or query), or NULL. */
const char *sio_socket_handshake_token(const struct sio_socket *s);
/* A socket's token (re)verified: it expires at exp_wall_ms (0 = never); the
 * session's timer is told. */
void sio_socket_set_token_exp(struct sio_socket *s, uint64_t exp_wall_ms);
/* Ends the socket with this pid, if this process has it (its client came
 * back to another process, so the transport here is dead or soon will be). */
void sio_hub_end_pid(struct sio_hub *hub, const char *pid, size_t len, const char *reason);
/* Ends the detached sockets (shutdown: their disconnect handlers run now). */
void sio_hub_end_detached(struct sio_hub *hub);
/* Links s into its user's list of sockets (after authentication). */
void sio_socket_link_user(struct sio_socket *s);

#endif
