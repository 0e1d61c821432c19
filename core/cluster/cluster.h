/* cluster: this node's part of a cluster over Redis, in the format of
 * @socket.io/redis-adapter 8.x (classic pub/sub; docs/operations.md): a
 * room adapter per namespace (cluster_adapter_new, the Socket.IO hub's
 * factory) that delivers to this node's sockets and publishes to the
 * others, and what the other nodes publish and ask (fetchSockets,
 * allRooms, socketsJoin/Leave, disconnectSockets, serverSideEmit), answered
 * once each. Without Redis, local delivery goes on; the link reconnects. */
#ifndef SPACE_CLUSTER_H
#define SPACE_CLUSTER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "sio.h"

#define CLUSTER_UID_LEN 6 /* as uid2(6) in the Node adapter */

struct cluster;
struct redis_url;

struct cluster_stats {
    int link_up;
    uint64_t published, publish_failed, received, requests_answered, refused_messages;
};

/* Connects to Redis (in the background: the link comes up when it can). NULL
 * on OOM. The cluster must outlive every namespace's adapter. */
/* node_timeout_ms: a node not heard from for this long is dropped (heartbeats go out at a third of it). */
struct cluster *cluster_new(uv_loop_t *loop, const struct redis_url *url, struct sio_hub *hub, uint64_t node_timeout_ms);
/* The Socket.IO hub's adapter factory (ud: the cluster). */
struct adapter *cluster_adapter_new(struct nsp *nsp, void *cluster);
void cluster_stats(const struct cluster *c, struct cluster_stats *out);

/* A user other nodes have in a room of nsp and this node does not have at all
 * (the admin API's listings): id, name, the rooms it is in there and its
 * connections in them. */
struct cluster_user {
    const char *id, *name;
    size_t n_rooms;
    const char *const *rooms;
    const size_t *room_lens;
    uint64_t conns;
};
typedef void (*cluster_user_fn)(void *ud, const struct cluster_user *u);
/* Each such user once; returns their number. */
size_t cluster_remote_users(struct cluster *c, struct nsp *nsp, cluster_user_fn each, void *ud);

/* What the admin API did to a user, done on every other node too (their
 * connections closed with 4000 and reason; a ban kept there as well). */
enum cluster_user_action { CLUSTER_KICK, CLUSTER_BAN, CLUSTER_UNBAN };
void cluster_user_action(struct cluster *c, enum cluster_user_action what, const char *user_id, size_t len,
                         uint64_t until_ms, const char *reason);
/* A client came to this node with a recovery pid it does not hold (the hub's
 * pid_elsewhere): the node that keeps its socket ends it now rather than when
 * its recovery window ends. */
void cluster_pid_elsewhere(void *cluster, const char *pid);
/* Closes the link (its libuv handles), before the loop's last run. */
void cluster_close(struct cluster *c);
/* Frees the rest, after every adapter was freed. */
void cluster_free(struct cluster *c);

#endif
