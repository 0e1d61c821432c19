#include "cluster.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "ban.h"
#include "clock.h"
#include "hmap.h"
#include "json_scan.h"
#include "json_str.h"
#include "log.h"
#include "presence.h"
#include "redis_link.h"
#include "redis_url.h"
#include "redis_wire.h"
#include "sbuf.h"
#include "user.h"
#include "ws.h"

#define CLUSTER_PREFIX "socket.io"
#define CLUSTER_ADMIN_CHANNEL "space-admin#" /* the admin API's user actions, for every node */
#define CLUSTER_MAX_ROOMS 64 /* rooms (and except rooms) of one broadcast that cross nodes */
#define CLUSTER_TICK_MS 250 /* presence: expiry checked, and a heartbeat every third of the node timeout */

struct cluster {
    uv_loop_t *loop;
    struct sio_hub *hub;
    struct redis_link *link;
    char uid[CLUSTER_UID_LEN + 1];
    struct hmap by_pattern;  /* "socket.io#<nsp>#*" -> struct redis_adapter */
    struct hmap by_request;  /* "socket.io-request#<nsp>#" -> struct redis_adapter */
    struct hmap by_presence; /* "space-presence#<nsp>#" -> struct redis_adapter */
    struct sbuf out;         /* encoded messages: reused, never held */
    uv_timer_t tick;         /* presence heartbeats and expiry */
    uint64_t last_heartbeat_ms;
    uint64_t node_timeout_ms; /* --cluster-timeout */
    struct presence *scan_presence; /* the replica cluster_remote_users walks */
    uint64_t published, received, requests_answered, refused_messages;
};

/* A namespace's adapter: its sockets in memory (the in-memory adapter does
 * the local work), and the channels it shares with the other nodes. */
struct redis_adapter {
    struct adapter base;
    struct adapter *local;
    struct cluster *cl;
    char *all_channel;       /* socket.io#<nsp>#: broadcasts to 0 or >= 2 rooms */
    char *pattern;           /* socket.io#<nsp>#*: every broadcast of the namespace */
    char *request_channel;   /* socket.io-request#<nsp># */
    char *response_channel;  /* socket.io-response#<nsp>#: answers */
    /* Presence across our nodes (presence.h): who is in which room on the
     * other nodes, kept from their messages on our own channel. */
    char *presence_channel;  /* space-presence#<nsp># */
    struct presence *presence;
};

static const struct adapter_ops redis_ops;

static struct adapter *local_of(struct adapter *a) { return ((struct redis_adapter *)a)->local; }

static char *channel_name(const char *before, const struct nsp *nsp, const char *after) {
    size_t a = strlen(before), b = strlen(after);
    char *p = malloc(a + nsp->name_len + b + 1);
    if (!p) return NULL;
    memcpy(p, before, a);
    memcpy(p + a, nsp->name, nsp->name_len);
    memcpy(p + a + nsp->name_len, after, b + 1);
    return p;
}

/* {==================================================================
 * Local work: the in-memory adapter's
 * =================================================================== */

static void publish_presence(struct redis_adapter *ra);

/* This node's count of the socket's user in the room, told to the others. */
static void announce(struct redis_adapter *ra, const struct sio_socket *s, const char *room, size_t len) {
    const struct user *u = s->rooms.user;
    if (!u || !ra->cl->link) return;
    size_t id_len = strlen(u->id);
    uint32_t conns = ra->local->ops->user_conns(ra->local, room, len, u->id, id_len);
    sbuf_reset(&ra->cl->out);
    if (presence_encode_delta(ra->presence, &ra->cl->out, room, len, u->id, id_len, u->name, strlen(u->name), conns) == 0)
        publish_presence(ra);
}

static uint64_t remote_conns(struct redis_adapter *ra, const struct sio_socket *s, const char *room, size_t len) {
    const struct user *u = s->rooms.user;
    return u ? presence_user_conns(ra->presence, room, len, u->id, strlen(u->id)) : 0;
}

/* A user is new in a room (user_joined_room) when no node had a connection of it there. */
static int ra_join(struct adapter *a, struct sio_socket *s, const char *room, size_t len, int *user_is_new) {
    struct redis_adapter *ra = (struct redis_adapter *)a;
    int rc = ra->local->ops->join(ra->local, s, room, len, user_is_new);
    if (rc == 1) {
        announce(ra, s, room, len);
        if (*user_is_new && remote_conns(ra, s, room, len)) *user_is_new = 0;
    }
    return rc;
}

static int ra_leave(struct adapter *a, struct sio_socket *s, const char *room, size_t len, int *user_left) {
    struct redis_adapter *ra = (struct redis_adapter *)a;
    int rc = ra->local->ops->leave(ra->local, s, room, len, user_left);
    if (rc == 1) {
        announce(ra, s, room, len);
        if (*user_left && remote_conns(ra, s, room, len)) *user_left = 0;
    }
    return rc;
}

static int add_room_name(void *ud, const struct adapter_room *r);
struct room_names {
    struct slice *names;
    size_t n, cap;
};

static void ra_leave_all(struct adapter *a, struct sio_socket *s) {
    struct redis_adapter *ra = (struct redis_adapter *)a;
    struct room_names rn = {0};
    ra->local->ops->socket_rooms(ra->local, s, add_room_name, &rn);
    /* The names live in the rooms, which may go: keep copies to announce after. */
    char **copies = calloc(rn.n ? rn.n : 1, sizeof *copies);
    for (size_t i = 0; copies && i < rn.n; i++) {
        copies[i] = malloc(rn.names[i].len + 1);
        if (copies[i]) memcpy(copies[i], rn.names[i].p, rn.names[i].len);
    }
    ra->local->ops->leave_all(ra->local, s);
    for (size_t i = 0; copies && i < rn.n; i++) {
        if (copies[i]) announce(ra, s, copies[i], rn.names[i].len);
        free(copies[i]);
    }
    free(copies);
    free(rn.names);
}
static int ra_has(struct adapter *a, const struct sio_socket *s, const char *room, size_t len) {
    return local_of(a)->ops->has(local_of(a), s, room, len);
}
static void ra_select(struct adapter *a, const struct adapter_target *to, adapter_socket_fn each, void *ud) {
    local_of(a)->ops->select(local_of(a), to, each, ud);
}
/* Remote users of a room this node does not have locally (the union's other half). */
struct remote_only {
    struct redis_adapter *ra;
    const char *room;
    size_t len;
    size_t n;
    adapter_user_fn each;
    void *ud;
};

static void count_remote_only(void *ud, const struct presence_user *u) {
    struct remote_only *ro = ud;
    if (ro->ra->local->ops->room_has_user(ro->ra->local, ro->room, ro->len, u->id, u->id_len)) return;
    ro->n++;
    if (ro->each) {
        struct user tmp = {.id = (char *)u->id, .name = (char *)u->name};
        ro->each(ro->ud, &tmp);
    }
}

static void ra_room_size(struct adapter *a, const char *room, size_t len, size_t *users, size_t *conns) {
    struct redis_adapter *ra = (struct redis_adapter *)a;
    ra->local->ops->room_size(ra->local, room, len, users, conns);
    struct remote_only ro = {ra, room, len, 0, NULL, NULL};
    presence_room_users(ra->presence, room, len, count_remote_only, &ro);
    *users += ro.n;
    *conns += presence_room_conns(ra->presence, room, len);
}
static int ra_room_has_user(struct adapter *a, const char *room, size_t len, const char *id, size_t id_len) {
    struct redis_adapter *ra = (struct redis_adapter *)a;
    return ra->local->ops->room_has_user(ra->local, room, len, id, id_len) ||
           presence_room_has_user(ra->presence, room, len, id, id_len);
}
static uint32_t ra_user_conns(struct adapter *a, const char *room, size_t len, const char *id, size_t id_len) {
    return local_of(a)->ops->user_conns(local_of(a), room, len, id, id_len);
}
static void ra_room_users(struct adapter *a, const char *room, size_t len, adapter_user_fn each, void *ud) {
    struct redis_adapter *ra = (struct redis_adapter *)a;
    ra->local->ops->room_users(ra->local, room, len, each, ud);
    struct remote_only ro = {ra, room, len, 0, each, ud};
    presence_room_users(ra->presence, room, len, count_remote_only, &ro);
}
static void ra_room_sockets(struct adapter *a, const char *room, size_t len, adapter_socket_fn each, void *ud) {
    local_of(a)->ops->room_sockets(local_of(a), room, len, each, ud);
}
struct listing {
    struct redis_adapter *ra;
    adapter_room_fn each;
    void *ud;
    int stopped;
    size_t n;
};

/* A local room, with the other nodes' users and connections added. */
static int list_local(void *ud, const struct adapter_room *r) {
    struct listing *l = ud;
    struct adapter_room all = *r;
    ra_room_size(&l->ra->base, r->name, r->name_len, &all.users, &all.conns);
    l->n++;
    return l->each ? (l->stopped = l->each(l->ud, &all)) : 0;
}

static int list_remote(void *ud, const struct presence_room *r) {
    struct listing *l = ud;
    size_t users, conns;
    l->ra->local->ops->room_size(l->ra->local, r->name, r->name_len, &users, &conns);
    if (conns) return 0; /* listed with the local rooms */
    struct adapter_room all = {r->name, r->name_len, r->users, r->conns};
    l->n++;
    return l->each ? (l->stopped = l->each(l->ud, &all)) : 0;
}

static void ra_rooms(struct adapter *a, adapter_room_fn each, void *ud) {
    struct redis_adapter *ra = (struct redis_adapter *)a;
    struct listing l = {ra, each, ud, 0, 0};
    ra->local->ops->rooms(ra->local, list_local, &l);
    if (!l.stopped) presence_rooms(ra->presence, list_remote, &l);
}
static size_t ra_room_count(struct adapter *a) {
    struct redis_adapter *ra = (struct redis_adapter *)a;
    struct listing l = {ra, NULL, NULL, 0, 0};
    size_t local = ra->local->ops->room_count(ra->local);
    presence_rooms(ra->presence, list_remote, &l);
    return local + l.n;
}
static void ra_socket_rooms(struct adapter *a, const struct sio_socket *s, adapter_room_fn each, void *ud) {
    local_of(a)->ops->socket_rooms(local_of(a), s, each, ud);
}

/* {==================================================================
 * Broadcasts: delivered here, published for the others
 * =================================================================== */

static void publish(struct cluster *cl, const char *channel, size_t clen) {
    if (!cl->out.p || !cl->link) return;
    if (redis_link_publish(cl->link, channel, clen, cl->out.p, cl->out.len) == 0) cl->published++;
}

static void publish_broadcast(struct redis_adapter *ra, const struct adapter_target *to, const struct sio_out *o) {
    if (o->type != SIO_EVENT && o->type != SIO_BINARY_EVENT) return; /* events cross nodes, acks do not */
    struct cluster *cl = ra->cl;
    struct nsp *nsp = ra->base.nsp;
    struct slice rooms[CLUSTER_MAX_ROOMS], except[CLUSTER_MAX_ROOMS + 1];
    size_t n_rooms = 0, n_except = 0;
    for (size_t i = 0; i < to->n_rooms && n_rooms < CLUSTER_MAX_ROOMS; i++)
        rooms[n_rooms++] = (struct slice){to->rooms[i], to->room_lens[i]};
    /* The sender, as socket.to(room) says it in Socket.IO: its own room. */
    if (to->except) except[n_except++] = (struct slice){to->except->sid, IDS_SID_LEN};
    for (size_t i = 0; i < to->n_except_rooms && n_except <= CLUSTER_MAX_ROOMS; i++)
        except[n_except++] = (struct slice){to->except_rooms[i], to->except_room_lens[i]};
    struct rw_broadcast b = {
        .uid = {cl->uid, CLUSTER_UID_LEN}, .nsp = {nsp->name, nsp->name_len}, .type = SIO_EVENT, .ack_id = -1,
        .json = o->json, .json_len = o->len, .n_bin = o->n_bin, .bin = o->bin, .bin_len = o->bin_len,
        .n_rooms = n_rooms, .rooms = rooms, .n_except = n_except, .except = except,
    };
    sbuf_reset(&cl->out);
    if (rw_encode_broadcast(&cl->out, &b) != 0) {
        cl->refused_messages++;
        return;
    }
    /* One target room: the room's own channel (receivers without it skip it unread). */
    if (n_rooms == 1) {
        struct sbuf ch = {0};
        if (rw_channel(&ch, CLUSTER_PREFIX, RW_CH_BROADCAST, b.nsp, rooms[0]) == 0) publish(cl, ch.p, ch.len);
        sbuf_free(&ch);
    } else {
        publish(cl, ra->all_channel, strlen(ra->all_channel));
    }
}

static size_t ra_broadcast(struct adapter *a, const struct adapter_target *to, const struct sio_out *o) {
    struct redis_adapter *ra = (struct redis_adapter *)a;
    size_t n = ra->local->ops->broadcast(ra->local, to, o);
    if (!(to->flags & ADAPTER_LOCAL)) publish_broadcast(ra, to, o);
    return n;
}

/* A target from a peer's rooms and except rooms (slices into its message). */
struct peer_target {
    struct adapter_target to;
    const char *rooms[CLUSTER_MAX_ROOMS], *except[CLUSTER_MAX_ROOMS];
    size_t room_lens[CLUSTER_MAX_ROOMS], except_lens[CLUSTER_MAX_ROOMS];
};

static void peer_target(struct peer_target *t, const struct slice *rooms, size_t n_rooms, const struct slice *except,
                        size_t n_except) {
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < n_rooms && i < CLUSTER_MAX_ROOMS; i++) {
        t->rooms[i] = rooms[i].p;
        t->room_lens[i] = rooms[i].len;
    }
    for (size_t i = 0; i < n_except && i < CLUSTER_MAX_ROOMS; i++) {
        t->except[i] = except[i].p;
        t->except_lens[i] = except[i].len;
    }
    t->to = (struct adapter_target){
        .rooms = t->rooms, .room_lens = t->room_lens, .n_rooms = n_rooms < CLUSTER_MAX_ROOMS ? n_rooms : CLUSTER_MAX_ROOMS,
        .flags = ADAPTER_LOCAL, .except_rooms = t->except, .except_room_lens = t->except_lens,
        .n_except_rooms = n_except < CLUSTER_MAX_ROOMS ? n_except : CLUSTER_MAX_ROOMS,
    };
}

static void deliver(struct redis_adapter *ra, const struct rw_broadcast *b) {
    struct peer_target t;
    peer_target(&t, b->rooms, b->n_rooms, b->except, b->n_except);
    struct sio_out o = {b->n_bin ? SIO_BINARY_EVENT : SIO_EVENT, -1, b->json, b->json_len, b->n_bin, b->bin, b->bin_len};
    ra->local->ops->broadcast(ra->local, &t.to, &o);
}

static void on_broadcast(struct redis_adapter *ra, const char *channel, size_t clen, const char *data, size_t len) {
    struct cluster *cl = ra->cl;
    size_t all = strlen(ra->all_channel);
    if (clen > all + 1) { /* a room's channel: nothing to do without the room here */
        size_t users = 0, conns = 0;
        ra->local->ops->room_size(ra->local, channel + all, clen - all - 1, &users, &conns);
        if (!conns) return;
    }
    struct rw_broadcast b;
    struct rw_decoded d;
    if (rw_decode_broadcast(data, len, &b, &d) != 0) {
        if (cl->refused_messages++ == 0) log_warn("cluster", "a broadcast that does not decode channel=%.*s", (int)clen, channel);
        return;
    }
    const struct nsp *nsp = ra->base.nsp;
    int mine = b.uid.len == CLUSTER_UID_LEN && memcmp(b.uid.p, cl->uid, CLUSTER_UID_LEN) == 0;
    int same_nsp = b.nsp.len == nsp->name_len && memcmp(b.nsp.p, nsp->name, nsp->name_len) == 0;
    if (!mine && same_nsp && b.type == SIO_EVENT) deliver(ra, &b);
    rw_decoded_free(&d);
}

/* {==================================================================
 * Requests from the other nodes, each answered once
 * =================================================================== */

struct picked {
    struct sio_socket **s;
    size_t n, cap;
};

static void pick(void *ud, struct sio_socket *s) {
    struct picked *p = ud;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        struct sio_socket **more = realloc(p->s, cap * sizeof *more);
        if (!more) return;
        p->s = more;
        p->cap = cap;
    }
    p->s[p->n++] = s;
}

/* The local sockets a request's opts select (or its legacy single sid). */
static void pick_sockets(struct redis_adapter *ra, const struct rw_request *r, struct picked *p) {
    struct peer_target t;
    peer_target(&t, r->opts_rooms, r->n_opts_rooms, r->opts_except, r->n_opts_except);
    if (r->has_sid) { /* the legacy per-socket form */
        struct picked all = {0};
        struct adapter_target everyone = {.n_rooms = 0};
        ra->local->ops->select(ra->local, &everyone, pick, &all);
        for (size_t i = 0; i < all.n; i++)
            if (r->sid.len == IDS_SID_LEN && memcmp(all.s[i]->sid, r->sid.p, IDS_SID_LEN) == 0) pick(p, all.s[i]);
        free(all.s);
        return;
    }
    ra->local->ops->select(ra->local, &t.to, pick, p);
}

static void answer(struct redis_adapter *ra) {
    publish(ra->cl, ra->response_channel, strlen(ra->response_channel));
    ra->cl->requests_answered++;
}

static int add_room_name(void *ud, const struct adapter_room *r) {
    struct room_names *rn = ud;
    if (rn->n == rn->cap) {
        size_t cap = rn->cap ? rn->cap * 2 : 32;
        struct slice *more = realloc(rn->names, cap * sizeof *more);
        if (!more) return 1;
        rn->names = more;
        rn->cap = cap;
    }
    rn->names[rn->n++] = (struct slice){r->name, r->name_len};
    return 0;
}

static void answer_all_rooms(struct redis_adapter *ra, const struct rw_request *r) {
    struct room_names rn = {0};
    ra->local->ops->rooms(ra->local, add_room_name, &rn);
    sbuf_reset(&ra->cl->out);
    if (rw_encode_all_rooms_response(&ra->cl->out, r->request_id, rn.names, rn.n) == 0) answer(ra);
    free(rn.names);
}

static void answer_sockets(struct redis_adapter *ra, const struct rw_request *r, const struct picked *p) {
    struct slice *ids = calloc(p->n ? p->n : 1, sizeof *ids);
    if (!ids) return;
    for (size_t i = 0; i < p->n; i++) ids[i] = (struct slice){p->s[i]->sid, IDS_SID_LEN};
    sbuf_reset(&ra->cl->out);
    if (rw_encode_sockets_response(&ra->cl->out, r->request_id, ids, p->n) == 0) answer(ra);
    free(ids);
}

static void answer_fetch(struct redis_adapter *ra, const struct rw_request *r, const struct picked *p) {
    struct rw_socket_info *info = calloc(p->n ? p->n : 1, sizeof *info);
    struct room_names *rooms = calloc(p->n ? p->n : 1, sizeof *rooms);
    char (*address)[64] = calloc(p->n ? p->n : 1, sizeof *address);
    if (!info || !rooms || !address) goto done;
    for (size_t i = 0; i < p->n; i++) {
        struct sio_socket *s = p->s[i];
        /* A socket is in its own room first, as Node lists it. */
        add_room_name(&rooms[i], &(struct adapter_room){s->sid, IDS_SID_LEN, 0, 0});
        ra->local->ops->socket_rooms(ra->local, s, add_room_name, &rooms[i]);
        snprintf(address[i], sizeof address[i], "%s", sio_socket_peer(s));
        char *colon = strrchr(address[i], ':'); /* "ip:port" -> "ip" */
        if (colon) *colon = 0;
        info[i] = (struct rw_socket_info){
            .id = {s->sid, IDS_SID_LEN}, .address = {address[i], strlen(address[i])},
            .issued = (int64_t)s->connected_ms, .rooms = rooms[i].names, .n_rooms = rooms[i].n,
        };
    }
    sbuf_reset(&ra->cl->out);
    if (rw_encode_fetch_sockets_response(&ra->cl->out, r->request_id, info, p->n) == 0) answer(ra);
done:
    for (size_t i = 0; rooms && i < p->n; i++) free(rooms[i].names);
    free(info);
    free(rooms);
    free(address);
}

static void on_request(struct redis_adapter *ra, const char *data, size_t len) {
    struct cluster *cl = ra->cl;
    struct rw_request r;
    struct rw_decoded d;
    if (rw_decode_request(data, len, &r, &d) != 0) {
        if (cl->refused_messages++ == 0) log_warn("cluster", "a request that does not decode");
        return;
    }
    if (r.has_uid && r.uid.len == CLUSTER_UID_LEN && memcmp(r.uid.p, cl->uid, CLUSTER_UID_LEN) == 0) goto done; /* our own */
    struct picked p = {0};
    switch (r.type) {
    case RW_REQ_SOCKETS:
        pick_sockets(ra, &r, &p);
        answer_sockets(ra, &r, &p);
        break;
    case RW_REQ_ALL_ROOMS:
        answer_all_rooms(ra, &r);
        break;
    case RW_REQ_REMOTE_JOIN:
    case RW_REQ_REMOTE_LEAVE: {
        pick_sockets(ra, &r, &p);
        for (size_t i = 0; i < p.n; i++) {
            for (size_t k = 0; k < r.n_rooms; k++) {
                int changed;
                if (r.type == RW_REQ_REMOTE_JOIN) ra->local->ops->join(ra->local, p.s[i], r.rooms[k].p, r.rooms[k].len, &changed);
                else ra->local->ops->leave(ra->local, p.s[i], r.rooms[k].p, r.rooms[k].len, &changed);
            }
        }
        if (r.has_request_id) { /* the legacy form waits for an answer */
            sbuf_reset(&cl->out);
            if (rw_encode_simple_response(&cl->out, r.request_id) == 0) answer(ra);
        }
        break;
    }
    case RW_REQ_REMOTE_DISCONNECT:
        pick_sockets(ra, &r, &p);
        for (size_t i = 0; i < p.n; i++) {
            if (r.close) sio_socket_close_session(p.s[i], WS_CLOSE_NORMAL, "disconnected by the cluster");
            else sio_socket_close(p.s[i], "server namespace disconnect", 1);
        }
        if (r.has_request_id) {
            sbuf_reset(&cl->out);
            if (rw_encode_simple_response(&cl->out, r.request_id) == 0) answer(ra);
        }
        break;
    case RW_REQ_REMOTE_FETCH:
        pick_sockets(ra, &r, &p);
        answer_fetch(ra, &r, &p);
        break;
    case RW_REQ_SERVER_SIDE_EMIT:
        /* The app has no server-side listeners: an ack, when asked, is null. */
        if (r.has_request_id) {
            sbuf_reset(&cl->out);
            if (rw_encode_server_side_emit_response(&cl->out, r.request_id, "null", 4) == 0) answer(ra);
        }
        break;
    case RW_REQ_BROADCAST: {
        /* A broadcast that waits for acks: delivered here without asking the clients for one, and
         * counted as no client, so that the requester's wait ends at once. */
        if (r.packet.type == SIO_EVENT) deliver(ra, &r.packet);
        sbuf_reset(&cl->out);
        if (rw_encode_client_count_response(&cl->out, r.request_id, 0) == 0) answer(ra);
        break;
    }
    default: /* responses to others' requests, and types this node does not know */
        break;
    }
    free(p.s);
done:
    rw_decoded_free(&d);
}

/* {==================================================================
 * Presence across our nodes
 * =================================================================== */

static void publish_presence(struct redis_adapter *ra) {
    publish(ra->cl, ra->presence_channel, strlen(ra->presence_channel));
}

struct snapshot_walk {
    struct redis_adapter *ra;
    struct presence_snapshot snap;
};

/* The users of one local room, with their counts, into the snapshot. */
struct snapshot_room_walk {
    struct snapshot_walk *w;
    const char *room;
    size_t len;
};

static void snapshot_room_user(void *ud, const struct user *u) {
    struct snapshot_room_walk *rw = ud;
    struct redis_adapter *ra = rw->w->ra;
    size_t id_len = strlen(u->id);
    uint32_t conns = ra->local->ops->user_conns(ra->local, rw->room, rw->len, u->id, id_len);
    presence_snapshot_user(&rw->w->snap, u->id, id_len, u->name, strlen(u->name), conns);
}

static int snapshot_room(void *ud, const struct adapter_room *r) {
    struct snapshot_walk *w = ud;
    presence_snapshot_room(&w->snap, r->name, r->name_len);
    struct snapshot_room_walk rw = {w, r->name, r->name_len};
    w->ra->local->ops->room_users(w->ra->local, r->name, r->name_len, snapshot_room_user, &rw);
    return 0;
}

static void publish_snapshot(struct redis_adapter *ra) {
    struct snapshot_walk w = {.ra = ra};
    sbuf_reset(&ra->cl->out);
    presence_snapshot_begin(&w.snap, ra->presence, &ra->cl->out);
    ra->local->ops->rooms(ra->local, snapshot_room, &w);
    if (presence_snapshot_end(&w.snap) == 0) publish_presence(ra);
}

/* A node that vanished (silent for --cluster-timeout): its users
 * leave their rooms, and this node tells its own members (each node tells
 * its own, so every member hears it once). A user still connected here is
 * not gone. Joins need nothing: the joining node's handler told everyone. */
static void on_node_lost(void *ud, const struct presence_user *u, int joined) {
    struct redis_adapter *ra = ud;
    if (joined || ra->local->ops->room_has_user(ra->local, u->room, u->room_len, u->id, u->id_len)) return;
    struct sbuf ev = {0};
#define LIT(s) s, sizeof s - 1
    int bad = sbuf_append(&ev, LIT("[\"user_left_room\",{\"room\":")) || json_append_string(&ev, u->room, u->room_len) ||
              sbuf_append(&ev, LIT(",\"user\":{\"id\":")) || json_append_string(&ev, u->id, u->id_len) ||
              sbuf_append(&ev, LIT(",\"name\":")) || json_append_string(&ev, u->name, u->name_len) ||
              sbuf_append(&ev, LIT("}}]"));
#undef LIT
    if (!bad) {
        const char *rooms[1] = {u->room};
        size_t lens[1] = {u->room_len};
        struct adapter_target to = {.rooms = rooms, .room_lens = lens, .n_rooms = 1, .flags = ADAPTER_LOCAL};
        struct sio_out o = {SIO_EVENT, -1, ev.p, ev.len, 0, NULL, NULL};
        ra->local->ops->broadcast(ra->local, &to, &o);
    }
    sbuf_free(&ev);
}

static void on_presence(struct redis_adapter *ra, const char *data, size_t len) {
    int rc = presence_apply(ra->presence, data, len, uv_now(ra->cl->loop), NULL, NULL);
    if (rc < 0) {
        if (rc == PRESENCE_EBAD && ra->cl->refused_messages++ == 0) log_warn("cluster", "a presence message that does not decode");
        return;
    }
    if (rc & PRESENCE_SEND_SNAPSHOT) publish_snapshot(ra);
    if (rc & PRESENCE_WANT_SNAPSHOT) {
        const char *from = presence_sender(ra->presence);
        sbuf_reset(&ra->cl->out);
        if (presence_encode_hello(ra->presence, &ra->cl->out, from, strlen(from)) == 0) publish_presence(ra);
    }
}

/* Every tick: nodes gone silent are dropped; every third of the node timeout, each namespace's heartbeat. */
static void on_tick(uv_timer_t *t) {
    struct cluster *cl = t->data;
    uint64_t now = uv_now(cl->loop);
    int beat = now - cl->last_heartbeat_ms >= cl->node_timeout_ms / 3;
    if (beat) cl->last_heartbeat_ms = now;
    struct hmap_entry *e;
    for (size_t i = 0; hmap_next(&cl->by_presence, &i, &e);) {
        struct redis_adapter *ra = e->value;
        /* Without the link this node hears nobody: it drops nobody either. */
        struct redis_link_stats ls;
        redis_link_stats(cl->link, &ls);
        if (ls.up) presence_expire(ra->presence, now, cl->node_timeout_ms, on_node_lost, ra);
        if (beat) {
            sbuf_reset(&cl->out);
            if (presence_encode_heartbeat(ra->presence, &cl->out) == 0) publish_presence(ra);
        }
    }
}

/* {==================================================================
 * Remote users, for the admin API
 * =================================================================== */

struct remote_user {
    char *id, *name;
    const char *rooms[CLUSTER_MAX_ROOMS];
    size_t room_lens[CLUSTER_MAX_ROOMS], n_rooms;
    uint64_t conns;
};

struct user_scan {
    struct cluster *cl;
    struct hmap seen; /* id -> struct remote_user */
    struct remote_user **list;
    size_t n, cap;
};

static void scan_room_user(void *ud, const struct presence_user *u) {
    struct user_scan *us = ud;
    if (hmap_get(&us->cl->hub->users, u->id, u->id_len)) return; /* on this node: listed as a local user */
    struct remote_user *ru = hmap_get(&us->seen, u->id, u->id_len);
    if (!ru) {
        if (us->n == us->cap) {
            size_t cap = us->cap ? us->cap * 2 : 16;
            struct remote_user **more = realloc(us->list, cap * sizeof *more);
            if (!more) return;
            us->list = more;
            us->cap = cap;
        }
        ru = calloc(1, sizeof *ru);
        if (!ru || !(ru->id = strdup(u->id)) || !(ru->name = strdup(u->name)) ||
            hmap_put(&us->seen, ru->id, u->id_len, ru) != 0) {
            if (ru) free(ru->id), free(ru->name);
            free(ru);
            return;
        }
        us->list[us->n++] = ru;
    }
    if (ru->n_rooms < CLUSTER_MAX_ROOMS) {
        ru->rooms[ru->n_rooms] = u->room; /* lives in the replica, unchanged during the scan */
        ru->room_lens[ru->n_rooms++] = u->room_len;
    }
    ru->conns += u->conns;
}

static int scan_room(void *ud, const struct presence_room *r) {
    struct user_scan *us = ud;
    presence_room_users(us->cl->scan_presence, r->name, r->name_len, scan_room_user, us);
    return 0;
}

size_t cluster_remote_users(struct cluster *c, struct nsp *nsp, cluster_user_fn each, void *ud) {
    if (!c || !nsp || nsp->adapter->ops != &redis_ops) return 0;
    struct redis_adapter *ra = (struct redis_adapter *)nsp->adapter;
    struct user_scan us = {.cl = c};
    c->scan_presence = ra->presence;
    presence_rooms(ra->presence, scan_room, &us);
    c->scan_presence = NULL;
    for (size_t i = 0; i < us.n; i++) {
        struct remote_user *ru = us.list[i];
        struct cluster_user cu = {ru->id, ru->name, ru->n_rooms, ru->rooms, ru->room_lens, ru->conns};
        if (each) each(ud, &cu);
        free(ru->id);
        free(ru->name);
        free(ru);
    }
    free(us.list);
    hmap_free(&us.seen);
    return us.n;
}

/* {==================================================================
 * The admin API's user actions, on every node
 * =================================================================== */

static const char *const action_names[] = {"kick", "ban", "unban"};

void cluster_user_action(struct cluster *c, enum cluster_user_action what, const char *user_id, size_t len,
                         uint64_t until_ms, const char *reason) {
    if (!c || !c->link) return;
    struct sbuf *out = &c->out;
    sbuf_reset(out);
    sbuf_printf(out, "{\"n\":\"%s\",\"t\":\"%s\",\"u\":", c->uid, action_names[what]);
    json_append_string(out, user_id, len);
    sbuf_printf(out, ",\"until\":%llu,\"reason\":", (unsigned long long)until_ms);
    json_append_string(out, reason ? reason : "", reason ? strlen(reason) : 0);
    sbuf_putc(out, '}');
    publish(c, CLUSTER_ADMIN_CHANNEL, strlen(CLUSTER_ADMIN_CHANNEL));
}

void cluster_pid_elsewhere(void *cluster, const char *pid) {
    struct cluster *c = cluster;
    if (!c || !c->link) return;
    struct sbuf *out = &c->out;
    sbuf_reset(out);
    sbuf_printf(out, "{\"n\":\"%s\",\"t\":\"pid\",\"u\":", c->uid);
    json_append_string(out, pid, strlen(pid));
    sbuf_putc(out, '}');
    publish(c, CLUSTER_ADMIN_CHANNEL, strlen(CLUSTER_ADMIN_CHANNEL));
}

static void close_user(struct cluster *cl, const char *id, size_t len, const char *reason) {
    struct user *u = hmap_get(&cl->hub->users, id, len);
    if (!u) return;
    /* Closing the last socket frees the user: collect first. */
    struct picked p = {0};
    for (struct sio_socket *s = u->sockets; s; s = s->user_next) pick(&p, s);
    for (size_t i = 0; i < p.n; i++) sio_socket_close_session(p.s[i], WS_CLOSE_KICKED, reason);
    free(p.s);
}

static void on_admin(struct cluster *cl, const char *data, size_t len) {
    struct json_member n, t, u, until, reason;
    char uid[CLUSTER_UID_LEN + 2], what[8], id[1024], why[BAN_REASON_MAX];
    int64_t until_ms = 0;
    if (!json_valid(data, len) || !json_object_get(data, len, "n", &n) || n.type != 's' ||
        json_string_value(n.value, uid, sizeof uid) < 0 || !json_object_get(data, len, "t", &t) || t.type != 's' ||
        json_string_value(t.value, what, sizeof what) < 0 || !json_object_get(data, len, "u", &u) || u.type != 's' ||
        json_string_value(u.value, id, sizeof id) < 0) {
        if (cl->refused_messages++ == 0) log_warn("cluster", "an admin message that does not decode");
        return;
    }
    if (strcmp(uid, cl->uid) == 0) return; /* ours: done here already */
    if (json_object_get(data, len, "until", &until) && until.type == 'n') json_int_value(until.value, &until_ms, 0);
    why[0] = 0;
    if (json_object_get(data, len, "reason", &reason) && reason.type == 's')
        json_string_value(reason.value, why, sizeof why);
    size_t id_len = strlen(id);
    if (strcmp(what, "kick") == 0) {
        close_user(cl, id, id_len, "disconnected by the admin API");
    } else if (strcmp(what, "ban") == 0) {
        ban_set(&cl->hub->bans, id, id_len, clock_wall_ms(), (uint64_t)until_ms, why);
        close_user(cl, id, id_len, "banned by the admin API");
    } else if (strcmp(what, "unban") == 0) {
        ban_lift(&cl->hub->bans, id, id_len, clock_wall_ms());
    } else if (strcmp(what, "pid") == 0) {
        sio_hub_end_pid(cl->hub, id, id_len, "client reconnected elsewhere");
    }
}

/* {==================================================================
 * The link
 * =================================================================== */

static void on_presence(struct redis_adapter *ra, const char *data, size_t len);

static void on_message(void *ud, const char *channel, size_t clen, const char *pattern, const char *data, size_t len) {
    struct cluster *cl = ud;
    cl->received++;
    if (pattern) {
        struct redis_adapter *ra = hmap_get(&cl->by_pattern, pattern, strlen(pattern));
        if (ra) on_broadcast(ra, channel, clen, data, len);
        return;
    }
    struct redis_adapter *ra = hmap_get(&cl->by_request, channel, clen);
    if (ra) {
        on_request(ra, data, len);
        return;
    }
    if ((ra = hmap_get(&cl->by_presence, channel, clen))) {
        on_presence(ra, data, len);
        return;
    }
    if (clen == strlen(CLUSTER_ADMIN_CHANNEL) && memcmp(channel, CLUSTER_ADMIN_CHANNEL, clen) == 0) on_admin(cl, data, len);
}

/* (Re)connected: every namespace says hello, and the other nodes answer with their snapshots. */
static void on_up(void *ud) {
    struct cluster *cl = ud;
    struct hmap_entry *e;
    for (size_t i = 0; hmap_next(&cl->by_presence, &i, &e);) {
        struct redis_adapter *ra = e->value;
        sbuf_reset(&cl->out);
        if (presence_encode_hello(ra->presence, &cl->out, NULL, 0) == 0) publish_presence(ra);
    }
}

static void on_down(void *ud) {
    (void)ud;
}

static const struct redis_link_ops link_ops = {on_message, on_up, on_down};

/* {==================================================================
 * Adapters and the cluster
 * =================================================================== */

static void ra_free(struct adapter *a) {
    struct redis_adapter *ra = (struct redis_adapter *)a;
    if (ra->pattern) hmap_del(&ra->cl->by_pattern, ra->pattern, strlen(ra->pattern));
    if (ra->request_channel) hmap_del(&ra->cl->by_request, ra->request_channel, strlen(ra->request_channel));
    if (ra->presence_channel) hmap_del(&ra->cl->by_presence, ra->presence_channel, strlen(ra->presence_channel));
    presence_free(ra->presence);
    free(ra->presence_channel);
    if (ra->local) ra->local->ops->free(ra->local);
    free(ra->all_channel);
    free(ra->pattern);
    free(ra->request_channel);
    free(ra->response_channel);
    free(ra);
}

static const struct adapter_ops redis_ops = {
    .join = ra_join, .leave = ra_leave, .leave_all = ra_leave_all, .has = ra_has, .broadcast = ra_broadcast,
    .select = ra_select, .room_size = ra_room_size, .room_has_user = ra_room_has_user, .user_conns = ra_user_conns, .room_users = ra_room_users,
    .room_sockets = ra_room_sockets, .rooms = ra_rooms, .room_count = ra_room_count, .socket_rooms = ra_socket_rooms,
    .free = ra_free,
};

struct adapter *cluster_adapter_new(struct nsp *nsp, void *cluster) {
    struct cluster *cl = cluster;
    struct redis_adapter *ra = calloc(1, sizeof *ra);
    if (!ra) return NULL;
    ra->base.ops = &redis_ops;
    ra->base.nsp = nsp;
    ra->base.has_peers = 1;
    ra->cl = cl;
    ra->local = adapter_memory_new(nsp, NULL);
    ra->all_channel = channel_name(CLUSTER_PREFIX "#", nsp, "#");
    ra->pattern = channel_name(CLUSTER_PREFIX "#", nsp, "#*");
    ra->request_channel = channel_name(CLUSTER_PREFIX "-request#", nsp, "#");
    ra->response_channel = channel_name(CLUSTER_PREFIX "-response#", nsp, "#");
    ra->presence_channel = channel_name("space-presence#", nsp, "#");
    ra->presence = presence_new(cl->uid);
    if (!ra->local || !ra->all_channel || !ra->pattern || !ra->request_channel || !ra->response_channel ||
        !ra->presence_channel || !ra->presence ||
        hmap_put(&cl->by_pattern, ra->pattern, strlen(ra->pattern), ra) != 0 ||
        hmap_put(&cl->by_request, ra->request_channel, strlen(ra->request_channel), ra) != 0 ||
        hmap_put(&cl->by_presence, ra->presence_channel, strlen(ra->presence_channel), ra) != 0) {
        ra_free(&ra->base);
        return NULL;
    }
    /* Subscribed for good: the link subscribes again after every reconnect. */
    if (cl->link) {
        redis_link_psubscribe(cl->link, ra->pattern, strlen(ra->pattern));
        redis_link_subscribe(cl->link, ra->request_channel, strlen(ra->request_channel));
        redis_link_subscribe(cl->link, ra->presence_channel, strlen(ra->presence_channel));
        /* A namespace made while the link is up says hello at once (on_up covers the others). */
        struct redis_link_stats ls;
        redis_link_stats(cl->link, &ls);
        if (ls.up) {
            sbuf_reset(&cl->out);
            if (presence_encode_hello(ra->presence, &cl->out, NULL, 0) == 0) publish_presence(ra);
        }
    }
    return &ra->base;
}

struct cluster *cluster_new(uv_loop_t *loop, const struct redis_url *url, struct sio_hub *hub, uint64_t node_timeout_ms) {
    struct cluster *cl = calloc(1, sizeof *cl);
    if (!cl) return NULL;
    cl->loop = loop;
    cl->node_timeout_ms = node_timeout_ms;
    cl->hub = hub;
    /* The node's uid, as the Node adapter's uid2(6): other nodes drop what it sent. */
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[CLUSTER_UID_LEN];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        free(cl);
        return NULL;
    }
    for (int i = 0; i < CLUSTER_UID_LEN; i++) cl->uid[i] = alphabet[raw[i] & 63];
    cl->link = redis_link_new(loop, url, &link_ops, cl);
    if (!cl->link) {
        free(cl);
        return NULL;
    }
    redis_link_subscribe(cl->link, CLUSTER_ADMIN_CHANNEL, strlen(CLUSTER_ADMIN_CHANNEL));
    uv_timer_init(loop, &cl->tick);
    cl->tick.data = cl;
    uv_timer_start(&cl->tick, on_tick, CLUSTER_TICK_MS, CLUSTER_TICK_MS);
    cl->last_heartbeat_ms = uv_now(loop);
    return cl;
}

void cluster_stats(const struct cluster *c, struct cluster_stats *out) {
    struct redis_link_stats ls = {0};
    if (c->link) redis_link_stats(c->link, &ls);
    *out = (struct cluster_stats){ls.up, c->published, ls.publish_failed, c->received, c->requests_answered,
                                  c->refused_messages};
}

void cluster_close(struct cluster *c) {
    if (!c || !c->link) return;
    /* Goodbye: the other nodes drop this one at once rather than in 30 s (best effort: the
     * sockets' leaves went out already, so nobody is told twice). */
    struct hmap_entry *e;
    for (size_t i = 0; hmap_next(&c->by_presence, &i, &e);) {
        struct redis_adapter *ra = e->value;
        sbuf_reset(&c->out);
        if (presence_encode_goodbye(ra->presence, &c->out) == 0) publish_presence(ra);
    }
    uv_close((uv_handle_t *)&c->tick, NULL);
    redis_link_free(c->link);
    c->link = NULL;
}

void cluster_free(struct cluster *c) {
    if (!c) return;
    cluster_close(c);
    hmap_free(&c->by_pattern);
    hmap_free(&c->by_request);
    hmap_free(&c->by_presence);
    sbuf_free(&c->out);
    free(c);
}
