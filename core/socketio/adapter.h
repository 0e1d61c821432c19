/* adapter: where a namespace's rooms live, behind one interface, as
 * Socket.IO's Adapter: join, leave, broadcast (rooms, except, flags),
 * members, the room list and user presence. Sockets, namespaces, the Lua
 * API and the admin API call only these; the one implementation today keeps
 * rooms in memory (adapter_memory.c). A cluster adapter (Redis) publishes
 * and asks its peers behind the same calls, without touching the callers.
 * One adapter per namespace, made by the hub's factory. */
#ifndef SPACE_ADAPTER_H
#define SPACE_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

#include "sio.h"

struct user;

/* Broadcast flags. */
enum adapter_flags {
    ADAPTER_LOCAL = 1 << 0, /* this node's sockets only (a cluster adapter does not publish) */
};

/* Who a broadcast goes to: the members of any of the rooms (every socket
 * of the namespace when n_rooms is 0), less `except` and less the members
 * of any of the except rooms (Socket.IO's except()). */
struct adapter_target {
    const char *const *rooms;
    const size_t *room_lens;
    size_t n_rooms;
    const struct sio_socket *except;
    unsigned flags;               /* enum adapter_flags */
    const char *const *except_rooms;
    const size_t *except_room_lens;
    size_t n_except_rooms;
};

/* A room as listed: its name, distinct users and connections. */
struct adapter_room {
    const char *name;
    size_t name_len;
    size_t users, conns;
};

typedef void (*adapter_user_fn)(void *ud, const struct user *u);
typedef void (*adapter_socket_fn)(void *ud, struct sio_socket *s);
/* Returns 0 to go on, non-zero to stop. */
typedef int (*adapter_room_fn)(void *ud, const struct adapter_room *r);

struct adapter_ops {
    /* 1 joined, 0 already a member, -1 out of memory. *user_is_new: the
     * socket's user had no socket in the room before. */
    int (*join)(struct adapter *a, struct sio_socket *s, const char *room, size_t len, int *user_is_new);
    /* 1 left, 0 was not a member. *user_left: that was the user's last socket there. */
    int (*leave)(struct adapter *a, struct sio_socket *s, const char *room, size_t len, int *user_left);
    /* Leaves every room, silently (the socket is closing). */
    void (*leave_all)(struct adapter *a, struct sio_socket *s);
    int (*has)(struct adapter *a, const struct sio_socket *s, const char *room, size_t len);
    /* Returns the number of local recipients. */
    size_t (*broadcast)(struct adapter *a, const struct adapter_target *to, const struct sio_out *o);
    /* Each local socket the target selects (rooms, except rooms; flags unused), once. The callback
     * must not change rooms: collect, then act (Socket.IO's socketsJoin, disconnectSockets...). */
    void (*select)(struct adapter *a, const struct adapter_target *to, adapter_socket_fn each, void *ud);
    /* Distinct users and connections in the room (0, 0 when there is none). */
    void (*room_size)(struct adapter *a, const char *room, size_t len, size_t *users, size_t *conns);
    int (*room_has_user)(struct adapter *a, const char *room, size_t len, const char *user_id, size_t id_len);
    /* This node's connections of the user in the room. */
    uint32_t (*user_conns)(struct adapter *a, const char *room, size_t len, const char *user_id, size_t id_len);
    /* Each distinct user of the room, once. */
    void (*room_users)(struct adapter *a, const char *room, size_t len, adapter_user_fn each, void *ud);
    /* Each local socket in the room. */
    void (*room_sockets)(struct adapter *a, const char *room, size_t len, adapter_socket_fn each, void *ud);
    /* Each room, until each returns non-zero. */
    void (*rooms)(struct adapter *a, adapter_room_fn each, void *ud);
    size_t (*room_count)(struct adapter *a);
    /* Each room the socket is in, in the order it joined. */
    void (*socket_rooms)(struct adapter *a, const struct sio_socket *s, adapter_room_fn each, void *ud);
    void (*free)(struct adapter *a);
};

struct adapter {
    const struct adapter_ops *ops;
    struct nsp *nsp;
    int has_peers; /* broadcasts also go to other nodes: no local member is no reason to skip one */
};

/* The in-memory adapter (the default factory). */
struct adapter *adapter_memory_new(struct nsp *nsp, void *ud);

/* The calls, on the socket's namespace or a given one. */
static inline int adapter_join(struct sio_socket *s, const char *room, size_t len, int *user_is_new) {
    return s->nsp->adapter->ops->join(s->nsp->adapter, s, room, len, user_is_new);
}
static inline int adapter_leave(struct sio_socket *s, const char *room, size_t len, int *user_left) {
    return s->nsp->adapter->ops->leave(s->nsp->adapter, s, room, len, user_left);
}
static inline int adapter_has(const struct sio_socket *s, const char *room, size_t len) {
    return s->nsp->adapter->ops->has(s->nsp->adapter, s, room, len);
}
static inline void adapter_socket_rooms(const struct sio_socket *s, adapter_room_fn each, void *ud) {
    s->nsp->adapter->ops->socket_rooms(s->nsp->adapter, s, each, ud);
}
static inline void adapter_room_size(struct nsp *nsp, const char *room, size_t len, size_t *users, size_t *conns) {
    nsp->adapter->ops->room_size(nsp->adapter, room, len, users, conns);
}
static inline int adapter_room_has_user(struct nsp *nsp, const char *room, size_t len, const char *id, size_t id_len) {
    return nsp->adapter->ops->room_has_user(nsp->adapter, room, len, id, id_len);
}
static inline void adapter_room_users(struct nsp *nsp, const char *room, size_t len, adapter_user_fn each, void *ud) {
    nsp->adapter->ops->room_users(nsp->adapter, room, len, each, ud);
}
static inline void adapter_room_sockets(struct nsp *nsp, const char *room, size_t len, adapter_socket_fn each,
                                        void *ud) {
    nsp->adapter->ops->room_sockets(nsp->adapter, room, len, each, ud);
}
static inline void adapter_rooms(struct nsp *nsp, adapter_room_fn each, void *ud) {
    nsp->adapter->ops->rooms(nsp->adapter, each, ud);
}
static inline void adapter_select(struct nsp *nsp, const struct adapter_target *to, adapter_socket_fn each,
                                  void *ud) {
    nsp->adapter->ops->select(nsp->adapter, to, each, ud);
}
static inline size_t adapter_room_count(struct nsp *nsp) { return nsp->adapter->ops->room_count(nsp->adapter); }
static inline size_t adapter_broadcast(struct nsp *nsp, const struct adapter_target *to, const struct sio_out *o) {
    return nsp->adapter->ops->broadcast(nsp->adapter, to, o);
}

/* Rooms across the hub's namespaces (admin, /metrics). */
size_t adapter_total_rooms(struct sio_hub *hub);

#endif
