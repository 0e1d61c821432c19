/* libFuzzer target: core/cluster/presence.c, the replica of the other
 * nodes' rooms, fed messages that Redis subscribers could receive.
 * The input is a sequence of messages separated by 0xFF (a byte that is
 * never in UTF-8 JSON), each copied to an exact-size heap block so that any
 * read past its end is caught, applied in order to one replica while the
 * clock moves on (every fourth message also expires silent nodes). After
 * each step:
 *   - apply returned PRESENCE_EBAD, or a mask of the two flags (ENOMEM aside);
 *   - every room listed has users and connections, its users' connections
 *     add up to the room's, each user has connections, has_user and
 *     user_conns agree with the listing, and the room count matches;
 *   - the transitions reported so far (joined minus left) equal the
 *     (room, user) pairs present: each crossing reported exactly once;
 *   - a message the replica refused changed nothing (the digest is equal).
 * Then what the replica holds is re-encoded as snapshots of one node and
 * applied to a second replica, which must hold the same rooms and counts
 * (the encoders and the decoder agree). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "presence.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "fuzz_presence: " __VA_ARGS__);                                            \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

struct tally {
    long long present; /* joined - left, as reported */
};

static void on_change(void *ud, const struct presence_user *u, int joined) {
    struct tally *t = ud;
    if (joined != 0 && joined != 1) FAIL("joined is %d", joined);
    if (joined != (u->conns > 0)) FAIL("joined=%d with %llu connections", joined, (unsigned long long)u->conns);
    if (!u->id || u->id_len == 0 || strlen(u->id) != u->id_len) FAIL("bad user id in a transition");
    t->present += joined ? 1 : -1;
}

struct check {
    const struct presence *p;
    size_t rooms, pairs;
    uint64_t sum;
    const struct presence_room *room;
    struct sbuf *digest;
};

static void check_user(void *ud, const struct presence_user *u) {
    struct check *c = ud;
    if (u->conns == 0) FAIL("a listed user without connections");
    if (u->room_len != c->room->name_len || memcmp(u->room, c->room->name, u->room_len) != 0)
        FAIL("a user listed under another room");
    if (presence_user_conns(c->p, u->room, u->room_len, u->id, u->id_len) != u->conns) FAIL("user_conns disagrees");
    if (!presence_room_has_user(c->p, u->room, u->room_len, u->id, u->id_len)) FAIL("has_user disagrees");
    if (strlen(u->name) != u->name_len || strlen(u->id) != u->id_len) FAIL("names not NUL-terminated at their length");
    c->sum += u->conns;
    c->pairs++;
    sbuf_printf(c->digest, "(%s:%s:%llu)", u->id, u->name, (unsigned long long)u->conns);
}

static int check_room(void *ud, const struct presence_room *r) {
    struct check *c = ud;
    if (r->users == 0 || r->conns == 0) FAIL("an empty room is listed");
    c->rooms++;
    c->sum = 0;
    c->room = r;
    sbuf_printf(c->digest, "[%zu:", r->name_len);
    sbuf_append(c->digest, r->name, r->name_len);
    size_t n = presence_room_users(c->p, r->name, r->name_len, check_user, c);
    if (n != r->users) FAIL("room_users counted %zu, the room says %zu", n, r->users);
    if (c->sum != r->conns) FAIL("users' connections add up to %llu, the room says %llu", (unsigned long long)c->sum,
                                 (unsigned long long)r->conns);
    if (presence_room_conns(c->p, r->name, r->name_len) != r->conns) FAIL("room_conns disagrees");
    sbuf_putc(c->digest, ']');
    return 0;
}

/* Checks the invariants; digest gets the whole state (order of the maps). */
static size_t check_all(const struct presence *p, struct sbuf *digest) {
    struct check c = {.p = p, .digest = digest};
    sbuf_reset(digest);
    sbuf_printf(digest, "%zu;", presence_node_count(p));
    presence_rooms(p, check_room, &c);
    if (c.rooms != presence_room_count(p)) FAIL("room_count disagrees");
    return c.pairs;
}

/* Re-encodes p's rooms as one node's snapshot. */
struct resnap {
    const struct presence *p;
    struct presence_snapshot *s;
};

static void resnap_user(void *ud, const struct presence_user *u) {
    struct resnap *r = ud;
    int rc = presence_snapshot_user(r->s, u->id, u->id_len, u->name, u->name_len, u->conns);
    if (rc != 0 && u->conns <= UINT32_MAX) FAIL("a user the decoder took was refused by the encoder (%d)", rc);
}

static int resnap_room(void *ud, const struct presence_room *room) {
    struct resnap *r = ud;
    if (presence_snapshot_room(r->s, room->name, room->name_len) != 0) FAIL("a room the decoder took was refused");
    presence_room_users(r->p, room->name, room->name_len, resnap_user, r);
    return 0;
}

/* The sum over nodes may pass UINT32_MAX in one (room, user): then the copy is skipped. */
static int big_user;
static void find_big(void *ud, const struct presence_user *u) {
    if (u->conns > UINT32_MAX) big_user = 1;
}
static int find_big_room(void *ud, const struct presence_room *r) {
    presence_room_users(ud, r->name, r->name_len, find_big, NULL);
    return 0;
}

/* Each room and user of a is in b with the same counts. */
struct same {
    const struct presence *a, *b;
};

static void same_user(void *ud, const struct presence_user *u) {
    struct same *sm = ud;
    if (presence_user_conns(sm->b, u->room, u->room_len, u->id, u->id_len) != u->conns)
        FAIL("a user's connections differ in the copy");
}

static int same_room(void *ud, const struct presence_room *r) {
    struct same *sm = ud;
    if (presence_room_conns(sm->b, r->name, r->name_len) != r->conns ||
        presence_room_users(sm->b, r->name, r->name_len, NULL, NULL) != r->users)
        FAIL("a room differs in the copy");
    presence_room_users(sm->a, r->name, r->name_len, same_user, sm);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct presence *p = presence_new("self");
    if (!p) return 0;
    struct tally t = {0};
    struct sbuf before = {0}, after = {0};
    uint64_t now = 0;
    size_t start = 0, step = 0;
    check_all(p, &before);
    while (start <= size) {
        const uint8_t *end = memchr(data + start, 0xFF, size - start);
        size_t len = end ? (size_t)(end - (data + start)) : size - start;
        char *msg = malloc(len ? len : 1);
        if (!msg) break;
        if (len) memcpy(msg, data + start, len);
        now += 1000 + (len % 7) * 3000;
        int rc = presence_apply(p, msg, len, now, on_change, &t);
        free(msg);
        if (rc != PRESENCE_EBAD && rc != PRESENCE_ENOMEM &&
            (rc < 0 || (rc & ~(PRESENCE_SEND_SNAPSHOT | PRESENCE_WANT_SNAPSHOT)) != 0))
            FAIL("apply returned %d", rc);
        if (++step % 4 == 0) presence_expire(p, now, PRESENCE_TIMEOUT_MS, on_change, &t);
        size_t pairs = check_all(p, &after);
        if (rc == PRESENCE_EBAD && step % 4 != 0 &&
            (after.len != before.len || memcmp(after.p, before.p, after.len) != 0))
            FAIL("a refused message changed the replica");
        if ((long long)pairs != t.present) FAIL("%zu (room, user) pairs present, transitions say %lld", pairs, t.present);
        struct sbuf tmp = before;
        before = after;
        after = tmp;
        if (!end) break;
        start += len + 1;
    }

    /* Encoders and decoder agree: p's rooms as one node's snapshot give a copy with the same rooms. */
    big_user = 0;
    presence_rooms(p, find_big_room, p);
    if (!big_user) {
        struct presence *copy = presence_new("copy");
        struct sbuf out = {0};
        struct presence_snapshot s;
        if (copy && presence_snapshot_begin(&s, p, &out) == 0) {
            struct resnap r = {p, &s};
            presence_rooms(p, resnap_room, &r);
            if (presence_snapshot_end(&s) == 0) {
                struct tally t2 = {0};
                int rc = presence_apply(copy, out.p, out.len, 1, on_change, &t2);
                if (rc < 0) FAIL("our own snapshot was refused (%d): %.*s", rc, (int)(out.len > 300 ? 300 : out.len), out.p);
                /* Same rooms, users and counts; one node instead of several. */
                struct same sm = {p, copy};
                presence_rooms(p, same_room, &sm);
                if (presence_room_count(copy) != presence_room_count(p) || t2.present != t.present)
                    FAIL("the copy through a snapshot differs");
            }
        }
        sbuf_free(&out);
        presence_free(copy);
    }
    sbuf_free(&before);
    sbuf_free(&after);
    presence_free(p);
    return 0;
}
