/* presence: one namespace's replica of the OTHER nodes' room memberships
 * (who is in which room, with how many connections, on which node), kept
 * from the small JSON messages each of our nodes publishes when its local
 * membership changes, so that presence questions (room users, sizes,
 * "is this user's first connection here?") are answered from memory with
 * no round trip. Pure: no libuv, no Redis, no Lua; the caller carries the
 * messages and adds its own node's local figures to every answer here.
 *
 * Per node it keeps (room, user) -> connections; per room, over all remote
 * nodes, user -> connections and the room's connection total. Counts are
 * kept as messages apply, never recomputed by a scan; a user whose remote
 * total falls to 0 and a room left without users are deleted at once, so
 * memory is bounded by what the nodes currently announce (fields bounded
 * below, at most PRESENCE_MAX_NODES nodes).
 *
 * ---- Messages (one JSON object each, UTF-8; the keys may come in any
 * order, unknown keys are ignored, a known key twice is refused) ----
 *
 *   every message   "t": kind (one letter), "n": the sender's uid, "q": the sender's sequence number
 *   delta     d     {"t":"d","n":"<uid>","q":7,"r":"<room>","u":"<user id>","m":"<user name>","c":2}
 *                   node n now has c connections (absolute, not +1/-1) of user u in room r.
 *   heartbeat h     {"t":"h","n":"<uid>","q":7}                    every PRESENCE_HEARTBEAT_MS
 *   snapshot  s     {"t":"s","n":"<uid>","q":7,"e":[["<room>",["<user id>","<name>",2],...],...]}
 *                   everything node n has (rooms with their users); replaces what was known of n.
 *   hello     i     {"t":"i","n":"<uid>","q":0}  a node (re)joined: every node answers with a snapshot;
 *                   {"t":"i","n":"<uid>","q":3,"w":"<uid2>"}: only node uid2 is asked.
 *   goodbye   g     {"t":"g","n":"<uid>","q":9}  clean shutdown: n is forgotten at once.
 *
 * q counts the sender's membership changes: each delta carries the next
 * number, every other message the current one. A receiver that sees a gap
 * (a delta past q+1, a heartbeat or hello with another q) knows that its
 * replica of the sender is stale (a message was lost) and asks that node
 * for a snapshot (PRESENCE_WANT_SNAPSHOT); a delta at or below the known q
 * is a repeat and is ignored, and since deltas carry absolute counts,
 * applying the one after a gap already fixes that (room, user). A node's
 * uid must be fresh at each start (q restarts at 0).
 *
 * Limits: uid 1..PRESENCE_MAX_UID_BYTES bytes, room 0..PRESENCE_MAX_FIELD_BYTES
 * (may hold NUL), user id 1..PRESENCE_MAX_FIELD_BYTES and name
 * 0..PRESENCE_MAX_FIELD_BYTES without NUL, c at most UINT32_MAX, q at most
 * INT64_MAX. JSON strings cannot carry bytes that are not UTF-8, so the
 * encoders refuse such a room (it stays out of cluster presence).
 *
 * Transport (the caller's choice, not checked here): every message of one
 * node goes out on one Redis connection, so receivers see them in order. */
#ifndef SPACE_PRESENCE_H
#define SPACE_PRESENCE_H

#include <stddef.h>
#include <stdint.h>

#include "sbuf.h"

#define PRESENCE_MAX_UID_BYTES 128     /* a node's uid */
#define PRESENCE_MAX_FIELD_BYTES 1024  /* a room, a user id, a user name */
#define PRESENCE_MAX_NODES 1024        /* nodes known at once; messages from more are refused */
#define PRESENCE_HEARTBEAT_MS 10000    /* how often each node says it is alive */
#define PRESENCE_TIMEOUT_MS 30000      /* silence after which a node is dropped (presence_expire) */
#define PRESENCE_RESYNC_MS 5000        /* least time between two snapshot requests to one node */

/* presence_apply's result: negative, or a mask of these. */
enum {
    PRESENCE_EBAD = -1,                /* refused: not a message of this format, or over a limit */
    PRESENCE_ENOMEM = -2,              /* out of memory: the replica of the sender is marked stale */
    PRESENCE_SEND_SNAPSHOT = 1 << 0,   /* a hello asks for this node's snapshot: publish one */
    PRESENCE_WANT_SNAPSHOT = 1 << 1,   /* the replica of the sender is stale: publish
                                          presence_encode_hello(..., presence_sender(p)) */
};

struct presence;

/* One remote user in one room (the callbacks' view; valid during the call). */
struct presence_user {
    const char *room;  /* may hold NUL; NUL-terminated */
    size_t room_len;
    const char *id;    /* NUL-terminated */
    size_t id_len;
    const char *name;  /* NUL-terminated; the last name a node announced */
    size_t name_len;
    uint64_t conns;    /* remote connections of the user in the room (0 once it left) */
};

/* A remote room: distinct remote users and remote connections. */
struct presence_room {
    const char *name;
    size_t name_len;
    size_t users;
    uint64_t conns;
};

/* A user's remote total in a room crossed 0: joined = 1 (0 -> more), 0 (-> 0).
 * Called once per crossing, after the whole message applied: queries see
 * the new state. The callback must not apply, expire or free. */
typedef void (*presence_change_fn)(void *ud, const struct presence_user *u, int joined);
typedef void (*presence_user_fn)(void *ud, const struct presence_user *u);
/* Returns 0 to go on, non-zero to stop. */
typedef int (*presence_room_fn)(void *ud, const struct presence_room *r);

/* self_uid: this node's uid (1..PRESENCE_MAX_UID_BYTES bytes, UTF-8, fresh at
 * each start); its messages are ignored. NULL on OOM or a bad uid. */
struct presence *presence_new(const char *self_uid);
void presence_free(struct presence *p);

/* {==== Receiving ====} */

/* Applies one message from another node at time now_ms (any monotonic
 * milliseconds, the same clock as presence_expire), calling on_change (may
 * be NULL) for each transition. Returns a mask of PRESENCE_SEND_SNAPSHOT /
 * PRESENCE_WANT_SNAPSHOT (0: nothing to do; also for our own messages and
 * repeats), or PRESENCE_EBAD (nothing changed) or PRESENCE_ENOMEM. */
int presence_apply(struct presence *p, const char *msg, size_t len, uint64_t now_ms, presence_change_fn on_change,
                   void *ud);
/* The uid of the sender of the last message presence_apply accepted ("" before any). */
const char *presence_sender(const struct presence *p);
/* Drops every node silent for longer than timeout_ms (nothing from it since
 * now_ms - timeout_ms), reporting its users' transitions. Returns the nodes dropped. */
size_t presence_expire(struct presence *p, uint64_t now_ms, uint64_t timeout_ms, presence_change_fn on_change,
                       void *ud);

/* {==== Sending: each appends one message to out; 0, PRESENCE_EBAD (a field
 * over its limit, a NUL in an id or name, not UTF-8) or PRESENCE_ENOMEM, out
 * unchanged on error ====} */

/* This node now has conns connections of user id in room (after a join or a
 * leave: the local count, absolute). Takes the next sequence number. */
int presence_encode_delta(struct presence *p, struct sbuf *out, const char *room, size_t room_len, const char *id,
                          size_t id_len, const char *name, size_t name_len, uint64_t conns);
int presence_encode_heartbeat(const struct presence *p, struct sbuf *out);
/* to: the one node asked for its snapshot (to_len bytes), or NULL for all of them. */
int presence_encode_hello(const struct presence *p, struct sbuf *out, const char *to, size_t to_len);
int presence_encode_goodbye(const struct presence *p, struct sbuf *out);

/* A snapshot of this node's local memberships, built in steps:
 *   struct presence_snapshot s;
 *   presence_snapshot_begin(&s, p, out);
 *   for each room: presence_snapshot_room(&s, room, len);
 *                  for each user there: presence_snapshot_user(&s, id, id_len, name, name_len, conns);
 *   rc = presence_snapshot_end(&s);
 * A room or user refused (EBAD) is left out and the snapshot goes on
 * (users after a refused room are left out with it); on ENOMEM every later
 * step fails and end restores out. No delta may be encoded in between. */
struct presence_snapshot {
    struct sbuf *out;
    size_t start;     /* out->len at begin */
    int err;          /* PRESENCE_ENOMEM once any step ran out of memory */
    int groups;       /* rooms written */
    int room_open;    /* a room's array is open */
    int room_refused; /* the current room was refused: skip its users */
};
int presence_snapshot_begin(struct presence_snapshot *s, const struct presence *p, struct sbuf *out);
int presence_snapshot_room(struct presence_snapshot *s, const char *room, size_t len);
int presence_snapshot_user(struct presence_snapshot *s, const char *id, size_t id_len, const char *name,
                           size_t name_len, uint64_t conns);
int presence_snapshot_end(struct presence_snapshot *s);

/* {==== Queries over the remote nodes (the caller adds its own node's) ====} */

/* Calls each (may be NULL) for every distinct remote user of the room; returns their number. */
size_t presence_room_users(const struct presence *p, const char *room, size_t len, presence_user_fn each, void *ud);
/* Remote connections in the room. */
uint64_t presence_room_conns(const struct presence *p, const char *room, size_t len);
int presence_room_has_user(const struct presence *p, const char *room, size_t len, const char *id, size_t id_len);
/* Remote connections of user id in the room (0: none; for user_is_new / user_left). */
uint64_t presence_user_conns(const struct presence *p, const char *room, size_t len, const char *id, size_t id_len);
/* Every remote room, until each returns non-zero. */
void presence_rooms(const struct presence *p, presence_room_fn each, void *ud);
/* Every remote room user id is in (a scan of the rooms: for admin listings). */
void presence_user_rooms(const struct presence *p, const char *id, size_t id_len, presence_user_fn each, void *ud);
size_t presence_room_count(const struct presence *p);
/* Nodes known (heard from and not dropped). */
size_t presence_node_count(const struct presence *p);

#endif
