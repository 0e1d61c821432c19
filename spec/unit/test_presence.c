/* Unit tests for core/cluster/presence.h: the replica of the other nodes'
 * room memberships and its messages. Nodes are struct presence values
 * talking through encoded messages handed to each other's apply (no Redis):
 * every message kind, transitions reported exactly once, lost and repeated
 * messages, snapshots replacing a node, expiry, goodbye, our own messages,
 * refused input. A randomized test checks the replica and the reported
 * transitions against a plain model after every message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "presence.h"

/* {==== helpers ====} */

/* Transitions as reported: "+room/user" or "-room/user", in order. */
struct log {
    char text[4096];
    unsigned n;
    /* what a query from inside the callback saw */
    const struct presence *p;
    int queries_agree;
};

static void on_change(void *ud, const struct presence_user *u, int joined) {
    struct log *l = ud;
    size_t len = strlen(l->text);
    snprintf(l->text + len, sizeof l->text - len, "%s%c%.*s/%s", len ? " " : "", joined ? '+' : '-',
             (int)u->room_len, u->room, u->id);
    l->n++;
    if (l->p) {
        int has = presence_room_has_user(l->p, u->room, u->room_len, u->id, u->id_len);
        if (has != joined || (joined ? u->conns == 0 : u->conns != 0)) l->queries_agree = 0;
    }
}

static struct log log_for(const struct presence *p) { return (struct log){.p = p, .queries_agree = 1}; }
static void log_reset(struct log *l) { l->text[0] = 0, l->n = 0; }

/* Applies a C-string message. */
static int apply(struct presence *p, const char *msg, uint64_t now, struct log *l) {
    return presence_apply(p, msg, strlen(msg), now, l ? on_change : NULL, l);
}

/* Encodes a delta on `from` and applies it on `to`. */
static int send_delta(struct presence *from, struct presence *to, const char *room, const char *user,
                      uint64_t conns, uint64_t now, struct log *l) {
    struct sbuf b = {0};
    int rc = presence_encode_delta(from, &b, room, strlen(room), user, strlen(user), user, strlen(user), conns);
    if (rc == 0) rc = presence_apply(to, b.p, b.len, now, on_change, l);
    sbuf_free(&b);
    return rc;
}

static uint64_t user_conns(const struct presence *p, const char *room, const char *user) {
    return presence_user_conns(p, room, strlen(room), user, strlen(user));
}

static uint64_t room_conns(const struct presence *p, const char *room) {
    return presence_room_conns(p, room, strlen(room));
}

static size_t room_users(const struct presence *p, const char *room) {
    return presence_room_users(p, room, strlen(room), NULL, NULL);
}

/* A digest of the whole replica, to show that something changed nothing. */
static int digest_room(void *ud, const struct presence_room *r) {
    struct sbuf *b = ud;
    sbuf_printf(b, "[%.*s:%zu:%llu]", (int)r->name_len, r->name, r->users, (unsigned long long)r->conns);
    return 0;
}

static char *digest(const struct presence *p) {
    struct sbuf b = {0};
    sbuf_printf(&b, "nodes=%zu rooms=%zu ", presence_node_count(p), presence_room_count(p));
    presence_rooms(p, digest_room, &b);
    sbuf_putc(&b, 0);
    return b.p;
}

/* {==== encoding ====} */

TEST(encodes_every_kind_in_the_documented_form) {
    struct presence *p = presence_new("node-a");
    struct sbuf b = {0};
    CHECK_INT(0, presence_encode_heartbeat(p, &b));
    CHECK_MEM("{\"t\":\"h\",\"n\":\"node-a\",\"q\":0}", b.p, b.len);
    sbuf_reset(&b);
    CHECK_INT(0, presence_encode_delta(p, &b, "lobby", 5, "u1", 2, "Ann \"A\"", 7, 2));
    CHECK_MEM("{\"t\":\"d\",\"n\":\"node-a\",\"q\":1,\"r\":\"lobby\",\"u\":\"u1\",\"m\":\"Ann \\\"A\\\"\",\"c\":2}", b.p,
              b.len);
    sbuf_reset(&b);
    CHECK_INT(0, presence_encode_heartbeat(p, &b));
    CHECK_MEM("{\"t\":\"h\",\"n\":\"node-a\",\"q\":1}", b.p, b.len);
    sbuf_reset(&b);
    CHECK_INT(0, presence_encode_hello(p, &b, NULL, 0));
    CHECK_MEM("{\"t\":\"i\",\"n\":\"node-a\",\"q\":1}", b.p, b.len);
    sbuf_reset(&b);
    CHECK_INT(0, presence_encode_hello(p, &b, "node-b", 6));
    CHECK_MEM("{\"t\":\"i\",\"n\":\"node-a\",\"q\":1,\"w\":\"node-b\"}", b.p, b.len);
    sbuf_reset(&b);
    CHECK_INT(0, presence_encode_goodbye(p, &b));
    CHECK_MEM("{\"t\":\"g\",\"n\":\"node-a\",\"q\":1}", b.p, b.len);
    sbuf_reset(&b);
    struct presence_snapshot s;
    CHECK_INT(0, presence_snapshot_begin(&s, p, &b));
    CHECK_INT(0, presence_snapshot_room(&s, "lobby", 5));
    CHECK_INT(0, presence_snapshot_user(&s, "u1", 2, "Ann", 3, 2));
    CHECK_INT(0, presence_snapshot_user(&s, "u2", 2, "Bob", 3, 1));
    CHECK_INT(0, presence_snapshot_room(&s, "a\0b", 3));
    CHECK_INT(0, presence_snapshot_user(&s, "u1", 2, "Ann", 3, 1));
    CHECK_INT(0, presence_snapshot_end(&s));
    CHECK_MEM("{\"t\":\"s\",\"n\":\"node-a\",\"q\":1,\"e\":[[\"lobby\",[\"u1\",\"Ann\",2],[\"u2\",\"Bob\",1]],"
              "[\"a\\u0000b\",[\"u1\",\"Ann\",1]]]}",
              b.p, b.len);
    sbuf_reset(&b);
    CHECK_INT(0, presence_snapshot_begin(&s, p, &b));
    CHECK_INT(0, presence_snapshot_end(&s));
    CHECK_MEM("{\"t\":\"s\",\"n\":\"node-a\",\"q\":1,\"e\":[]}", b.p, b.len);
    sbuf_free(&b);
    presence_free(p);
}

TEST(encoders_refuse_what_receivers_would_refuse) {
    struct presence *p = presence_new("node-a");
    struct sbuf b = {0};
    char big[PRESENCE_MAX_FIELD_BYTES + 1];
    memset(big, 'x', sizeof big);
    CHECK_INT(0, sbuf_append(&b, "keep", 4));
    CHECK_INT(PRESENCE_EBAD, presence_encode_delta(p, &b, big, sizeof big, "u", 1, "n", 1, 1));
    CHECK_INT(PRESENCE_EBAD, presence_encode_delta(p, &b, "r", 1, big, sizeof big, "n", 1, 1));
    CHECK_INT(PRESENCE_EBAD, presence_encode_delta(p, &b, "r", 1, "u", 1, big, sizeof big, 1));
    CHECK_INT(PRESENCE_EBAD, presence_encode_delta(p, &b, "r", 1, "", 0, "n", 1, 1));
    CHECK_INT(PRESENCE_EBAD, presence_encode_delta(p, &b, "r", 1, "u\0v", 3, "n", 1, 1));
    CHECK_INT(PRESENCE_EBAD, presence_encode_delta(p, &b, "r", 1, "u", 1, "n\0", 2, 1));
    CHECK_INT(PRESENCE_EBAD, presence_encode_delta(p, &b, "\xff", 1, "u", 1, "n", 1, 1));
    CHECK_INT(PRESENCE_EBAD, presence_encode_delta(p, &b, "r", 1, "u", 1, "n", 1, (uint64_t)UINT32_MAX + 1));
    CHECK_INT(PRESENCE_EBAD, presence_encode_hello(p, &b, "", 0));
    CHECK_MEM("keep", b.p, b.len); /* out as it was */
    /* A refused delta takes no sequence number: the next one is q=1. */
    CHECK_INT(0, presence_encode_delta(p, &b, big, PRESENCE_MAX_FIELD_BYTES, "u", 1, "n", 1, 1));
    CHECK(strstr(b.p, "\"q\":1,") != NULL);
    /* A snapshot leaves out a refused room with its users, and a refused user, and goes on. */
    sbuf_reset(&b);
    struct presence_snapshot s;
    CHECK_INT(0, presence_snapshot_begin(&s, p, &b));
    CHECK_INT(PRESENCE_EBAD, presence_snapshot_user(&s, "u0", 2, "N", 1, 1)); /* no room yet */
    CHECK_INT(0, presence_snapshot_room(&s, "ok", 2));
    CHECK_INT(0, presence_snapshot_user(&s, "u1", 2, "N", 1, 1));
    CHECK_INT(PRESENCE_EBAD, presence_snapshot_user(&s, big, sizeof big, "N", 1, 1));
    CHECK_INT(PRESENCE_EBAD, presence_snapshot_room(&s, "bad\xc3", 4));
    CHECK_INT(PRESENCE_EBAD, presence_snapshot_user(&s, "u2", 2, "N", 1, 1));
    CHECK_INT(0, presence_snapshot_room(&s, "ok2", 3));
    CHECK_INT(0, presence_snapshot_user(&s, "u3", 2, "N", 1, 3));
    CHECK_INT(0, presence_snapshot_end(&s));
    CHECK_MEM("{\"t\":\"s\",\"n\":\"node-a\",\"q\":1,\"e\":[[\"ok\",[\"u1\",\"N\",1]],[\"ok2\",[\"u3\",\"N\",3]]]}", b.p,
              b.len);
    sbuf_free(&b);
    presence_free(p);
}

TEST(new_refuses_bad_uids) {
    char big[PRESENCE_MAX_UID_BYTES + 2];
    memset(big, 'n', sizeof big - 1);
    big[sizeof big - 1] = 0;
    CHECK(presence_new("") == NULL);
    CHECK(presence_new(big) == NULL);
    CHECK(presence_new("\xff\xfe") == NULL);
    big[PRESENCE_MAX_UID_BYTES] = 0;
    struct presence *p = presence_new(big);
    CHECK(p != NULL);
    presence_free(p);
}

/* {==== deltas and transitions ====} */

TEST(delta_joins_and_leaves_a_user_once) {
    struct presence *a = presence_new("A"), *o = presence_new("O");
    struct log l = log_for(o);
    CHECK_INT(0, send_delta(a, o, "lobby", "ann", 1, 0, &l));
    CHECK_STR("+lobby/ann", l.text);
    CHECK_UINT(1, user_conns(o, "lobby", "ann"));
    CHECK_INT(1, presence_room_has_user(o, "lobby", 5, "ann", 3));
    CHECK_UINT(1, room_users(o, "lobby"));
    CHECK_UINT(1, room_conns(o, "lobby"));
    CHECK_UINT(1, presence_node_count(o));
    CHECK_STR("A", presence_sender(o));
    /* A second tab: more connections, no transition. */
    log_reset(&l);
    CHECK_INT(0, send_delta(a, o, "lobby", "ann", 2, 0, &l));
    CHECK_UINT(0, l.n);
    CHECK_UINT(2, user_conns(o, "lobby", "ann"));
    CHECK_UINT(2, room_conns(o, "lobby"));
    CHECK_INT(0, send_delta(a, o, "lobby", "ann", 1, 0, &l));
    CHECK_UINT(0, l.n);
    CHECK_INT(0, send_delta(a, o, "lobby", "ann", 0, 0, &l));
    CHECK_STR("-lobby/ann", l.text);
    CHECK_UINT(0, user_conns(o, "lobby", "ann"));
    CHECK_INT(0, presence_room_has_user(o, "lobby", 5, "ann", 3));
    CHECK_UINT(0, presence_room_count(o)); /* the empty room is gone */
    /* Leaving what was never joined: nothing. */
    log_reset(&l);
    CHECK_INT(0, send_delta(a, o, "lobby", "ann", 0, 0, &l));
    CHECK_INT(0, send_delta(a, o, "nowhere", "bob", 0, 0, &l));
    CHECK_UINT(0, l.n);
    CHECK_UINT(0, presence_room_count(o));
    CHECK(l.queries_agree);
    presence_free(a);
    presence_free(o);
}

TEST(two_users_on_three_nodes_are_counted_once_each) {
    struct presence *n1 = presence_new("N1"), *n2 = presence_new("N2"), *n3 = presence_new("N3");
    struct presence *o = presence_new("O");
    struct log l = log_for(o);
    /* ann is on N1 and N2, bob on N3 and N2. */
    CHECK_INT(0, send_delta(n1, o, "r", "ann", 1, 0, &l));
    CHECK_INT(0, send_delta(n2, o, "r", "ann", 2, 0, &l));
    CHECK_INT(0, send_delta(n3, o, "r", "bob", 1, 0, &l));
    CHECK_INT(0, send_delta(n2, o, "r", "bob", 1, 0, &l));
    CHECK_STR("+r/ann +r/bob", l.text);
    CHECK_UINT(3, presence_node_count(o));
    CHECK_UINT(2, room_users(o, "r"));
    CHECK_UINT(5, room_conns(o, "r"));
    CHECK_UINT(3, user_conns(o, "r", "ann"));
    CHECK_UINT(2, user_conns(o, "r", "bob"));
    /* ann leaves N2 (both tabs): still on N1, nothing reported; then N1: she left. */
    log_reset(&l);
    CHECK_INT(0, send_delta(n2, o, "r", "ann", 0, 0, &l));
    CHECK_UINT(0, l.n);
    CHECK_UINT(1, user_conns(o, "r", "ann"));
    CHECK_INT(0, send_delta(n1, o, "r", "ann", 0, 0, &l));
    CHECK_STR("-r/ann", l.text);
    CHECK_UINT(1, room_users(o, "r"));
    CHECK_UINT(2, room_conns(o, "r"));
    /* The listing: each distinct user once. */
    CHECK_INT(0, send_delta(n1, o, "r", "ann", 1, 0, &l));
    CHECK_UINT(2, presence_room_users(o, "r", 1, NULL, NULL));
    CHECK(l.queries_agree);
    presence_free(n1);
    presence_free(n2);
    presence_free(n3);
    presence_free(o);
}

static void collect_user(void *ud, const struct presence_user *u) {
    struct sbuf *b = ud;
    sbuf_printf(b, "%s%.*s:%s=%s:%llu", b->len ? " " : "", (int)u->room_len, u->room, u->id, u->name,
                (unsigned long long)u->conns);
}

static int stop_after_first(void *ud, const struct presence_room *r) {
    (*(unsigned *)ud)++;
    return 1;
}

TEST(listings_show_names_rooms_and_a_users_rooms) {
    struct presence *a = presence_new("A"), *o = presence_new("O");
    struct sbuf b = {0};
    CHECK_INT(0, presence_encode_delta(a, &b, "r1", 2, "u1", 2, "Ann", 3, 2));
    CHECK_INT(0, presence_apply(o, b.p, b.len, 0, NULL, NULL));
    sbuf_reset(&b);
    CHECK_INT(0, presence_encode_delta(a, &b, "r2", 2, "u1", 2, "Annie", 5, 1)); /* renamed */
    CHECK_INT(0, presence_apply(o, b.p, b.len, 0, NULL, NULL));
    struct sbuf got = {0};
    presence_user_rooms(o, "u1", 2, collect_user, &got);
    sbuf_putc(&got, 0);
    /* Names are per (room, user): the last one announced for each. */
    CHECK(strcmp(got.p, "r1:u1=Ann:2 r2:u1=Annie:1") == 0 || strcmp(got.p, "r2:u1=Annie:1 r1:u1=Ann:2") == 0);
    sbuf_reset(&got);
    CHECK_UINT(1, presence_room_users(o, "r2", 2, collect_user, &got));
    CHECK_MEM("r2:u1=Annie:1", got.p, got.len);
    unsigned calls = 0;
    presence_rooms(o, stop_after_first, &calls);
    CHECK_UINT(1, calls);
    CHECK_UINT(2, presence_room_count(o));
    CHECK_UINT(0, presence_room_users(o, "none", 4, collect_user, &got));
    sbuf_free(&got);
    sbuf_free(&b);
    presence_free(a);
    presence_free(o);
}

TEST(own_messages_are_ignored) {
    struct presence *a = presence_new("A");
    struct log l = log_for(a);
    struct sbuf b = {0};
    CHECK_INT(0, presence_encode_delta(a, &b, "r", 1, "u", 1, "n", 1, 1));
    CHECK_INT(0, presence_apply(a, b.p, b.len, 0, on_change, &l));
    sbuf_reset(&b);
    CHECK_INT(0, presence_encode_hello(a, &b, NULL, 0));
    CHECK_INT(0, presence_apply(a, b.p, b.len, 0, on_change, &l)); /* not asked to answer itself */
    CHECK_INT(0, apply(a, "{\"t\":\"h\",\"n\":\"A\",\"q\":99}", 0, &l));
    CHECK_UINT(0, l.n);
    CHECK_UINT(0, presence_node_count(a));
    CHECK_UINT(0, presence_room_count(a));
    /* ...but still checked: malformed stays malformed. */
    CHECK_INT(PRESENCE_EBAD, apply(a, "{\"t\":\"d\",\"n\":\"A\",\"q\":1}", 0, &l));
    sbuf_free(&b);
    presence_free(a);
}

/* {==== lost and repeated messages ====} */

TEST(a_lost_delta_is_healed_by_the_next_and_asks_for_a_snapshot) {
    struct presence *a = presence_new("A"), *o = presence_new("O");
    struct log l = log_for(o);
    struct sbuf lost = {0};
    CHECK_INT(0, send_delta(a, o, "r", "ann", 1, 0, &l));
    /* q=2 is lost (ann's second tab): */
    CHECK_INT(0, presence_encode_delta(a, &lost, "r", 1, "ann", 3, "ann", 3, 2));
    CHECK_UINT(1, user_conns(o, "r", "ann"));
    /* q=3 says ann has 3 (absolute): the count heals, and the gap asks for a snapshot of A. */
    CHECK_INT(PRESENCE_WANT_SNAPSHOT, send_delta(a, o, "r", "ann", 3, 1000, &l));
    CHECK_UINT(3, user_conns(o, "r", "ann"));
    CHECK_STR("A", presence_sender(o));
    /* Not asked again before PRESENCE_RESYNC_MS... */
    CHECK_INT(0, send_delta(a, o, "r", "bob", 1, 1000 + PRESENCE_RESYNC_MS - 1, &l));
    struct sbuf b = {0};
    CHECK_INT(0, presence_encode_heartbeat(a, &b));
    CHECK_INT(0, presence_apply(o, b.p, b.len, 1000 + PRESENCE_RESYNC_MS - 1, on_change, &l));
    /* ...then again, while no snapshot came. */
    CHECK_INT(PRESENCE_WANT_SNAPSHOT, presence_apply(o, b.p, b.len, 1000 + PRESENCE_RESYNC_MS, on_change, &l));
    /* The snapshot A sends when asked clears it. */
    sbuf_reset(&b);
    struct presence_snapshot s;
    CHECK_INT(0, presence_snapshot_begin(&s, a, &b));
    presence_snapshot_room(&s, "r", 1);
    presence_snapshot_user(&s, "ann", 3, "ann", 3, 3);
    presence_snapshot_user(&s, "bob", 3, "bob", 3, 1);
    CHECK_INT(0, presence_snapshot_end(&s));
    CHECK_INT(0, presence_apply(o, b.p, b.len, 20000, on_change, &l));
    sbuf_reset(&b);
    CHECK_INT(0, presence_encode_heartbeat(a, &b));
    CHECK_INT(0, presence_apply(o, b.p, b.len, 30000, on_change, &l));
    CHECK_INT(0, send_delta(a, o, "r", "bob", 0, 30000, &l));
    CHECK_STR("+r/ann +r/bob -r/bob", l.text);
    sbuf_free(&lost);
    sbuf_free(&b);
    presence_free(a);
    presence_free(o);
}

TEST(a_heartbeat_or_hello_with_another_q_asks_for_a_snapshot) {
    struct presence *o = presence_new("O");
    struct log l = log_for(o);
    /* Heard first mid-life: q=5 means five changes we never saw. */
    CHECK_INT(PRESENCE_WANT_SNAPSHOT, apply(o, "{\"t\":\"h\",\"n\":\"B\",\"q\":5}", 0, &l));
    CHECK_STR("B", presence_sender(o));
    /* A node heard first at q=0 has nothing to tell. */
    CHECK_INT(0, apply(o, "{\"t\":\"h\",\"n\":\"C\",\"q\":0}", 0, &l));
    CHECK_INT(PRESENCE_SEND_SNAPSHOT, apply(o, "{\"t\":\"i\",\"n\":\"D\",\"q\":0}", 0, &l));
    /* A hello after a gap: answer, and ask. */
    CHECK_INT(PRESENCE_SEND_SNAPSHOT | PRESENCE_WANT_SNAPSHOT, apply(o, "{\"t\":\"i\",\"n\":\"E\",\"q\":2}", 0, &l));
    CHECK_UINT(4, presence_node_count(o));
    CHECK_UINT(0, l.n);
    /* B goes on from q=5: its next delta applies (no second request within PRESENCE_RESYNC_MS)... */
    CHECK_INT(0, apply(o, "{\"t\":\"d\",\"n\":\"B\",\"q\":6,\"r\":\"r\",\"u\":\"u\",\"m\":\"U\",\"c\":1}", 1, &l));
    CHECK_STR("+r/u", l.text);
    /* ...until its snapshot (q=6) arrives; after it, B's heartbeats ask nothing, however late. */
    CHECK_INT(0, apply(o, "{\"t\":\"s\",\"n\":\"B\",\"q\":6,\"e\":[[\"r\",[\"u\",\"U\",1]]]}", 2, &l));
    CHECK_INT(0, apply(o, "{\"t\":\"h\",\"n\":\"B\",\"q\":6}", 3 + PRESENCE_RESYNC_MS, &l));
    CHECK_UINT(1, l.n);
    /* A refused message leaves the sender as it was. */
    CHECK_INT(PRESENCE_EBAD, apply(o, "{\"t\":\"h\",\"n\":\"Q\"}", 4, &l));
    CHECK_STR("B", presence_sender(o));
    presence_free(o);
}

TEST(a_repeated_or_older_delta_changes_nothing) {
    struct presence *a = presence_new("A"), *o = presence_new("O");
    struct log l = log_for(o);
    struct sbuf d1 = {0}, d2 = {0};
    CHECK_INT(0, presence_encode_delta(a, &d1, "r", 1, "ann", 3, "ann", 3, 2));
    CHECK_INT(0, presence_encode_delta(a, &d2, "r", 1, "ann", 3, "ann", 3, 1));
    CHECK_INT(0, presence_apply(o, d1.p, d1.len, 0, on_change, &l));
    CHECK_INT(0, presence_apply(o, d1.p, d1.len, 0, on_change, &l));
    CHECK_UINT(2, user_conns(o, "r", "ann"));
    CHECK_INT(0, presence_apply(o, d2.p, d2.len, 0, on_change, &l));
    CHECK_INT(0, presence_apply(o, d2.p, d2.len, 0, on_change, &l));
    CHECK_UINT(1, user_conns(o, "r", "ann"));
    /* d1 again (q=1, older): ann keeps 1, not 2. */
    CHECK_INT(0, presence_apply(o, d1.p, d1.len, 0, on_change, &l));
    CHECK_UINT(1, user_conns(o, "r", "ann"));
    CHECK_STR("+r/ann", l.text);
    sbuf_free(&d1);
    sbuf_free(&d2);
    presence_free(a);
    presence_free(o);
}

/* {==== snapshots ====} */

TEST(a_snapshot_replaces_what_was_known_of_its_node) {
    struct presence *a = presence_new("A"), *b = presence_new("B"), *o = presence_new("O");
    struct log l = log_for(o);
    CHECK_INT(0, send_delta(a, o, "r1", "ann", 1, 0, &l));
    CHECK_INT(0, send_delta(a, o, "r2", "bob", 2, 0, &l));
    CHECK_INT(0, send_delta(a, o, "r2", "cid", 1, 0, &l));
    CHECK_INT(0, send_delta(b, o, "r2", "cid", 1, 0, &l)); /* cid is on B too */
    log_reset(&l);
    /* A now has: ann in r1 (3 tabs), dee in r3; bob and cid gone from r2. */
    struct sbuf m = {0};
    struct presence_snapshot s;
    CHECK_INT(0, presence_snapshot_begin(&s, a, &m));
    presence_snapshot_room(&s, "r1", 2);
    presence_snapshot_user(&s, "ann", 3, "Ann", 3, 3);
    presence_snapshot_room(&s, "r3", 2);
    presence_snapshot_user(&s, "dee", 3, "Dee", 3, 1);
    CHECK_INT(0, presence_snapshot_end(&s));
    CHECK_INT(0, presence_apply(o, m.p, m.len, 0, on_change, &l));
    /* ann stays (never touched 0), bob left, cid stays through B, dee joined: once each. */
    CHECK_UINT(2, l.n);
    CHECK(strstr(l.text, "-r2/bob") != NULL);
    CHECK(strstr(l.text, "+r3/dee") != NULL);
    CHECK_UINT(3, user_conns(o, "r1", "ann"));
    CHECK_UINT(0, user_conns(o, "r2", "bob"));
    CHECK_UINT(1, user_conns(o, "r2", "cid"));
    CHECK_UINT(1, room_conns(o, "r2"));
    CHECK_UINT(1, user_conns(o, "r3", "dee"));
    /* The same snapshot again: nothing to report. */
    log_reset(&l);
    CHECK_INT(0, presence_apply(o, m.p, m.len, 0, on_change, &l));
    CHECK_UINT(0, l.n);
    /* An empty snapshot: everything of A leaves; cid (on B) stays. */
    sbuf_reset(&m);
    CHECK_INT(0, presence_snapshot_begin(&s, a, &m));
    CHECK_INT(0, presence_snapshot_end(&s));
    CHECK_INT(0, presence_apply(o, m.p, m.len, 0, on_change, &l));
    CHECK_UINT(2, l.n);
    CHECK(strstr(l.text, "-r1/ann") != NULL);
    CHECK(strstr(l.text, "-r3/dee") != NULL);
    CHECK_UINT(1, presence_room_count(o));
    CHECK_UINT(1, user_conns(o, "r2", "cid"));
    CHECK(l.queries_agree);
    sbuf_free(&m);
    presence_free(a);
    presence_free(b);
    presence_free(o);
}

TEST(snapshot_edge_cases_duplicates_zero_counts_older_q) {
    struct presence *o = presence_new("O");
    struct log l = log_for(o);
    /* A (room, user) twice: the later count; zero counts and empty rooms are nothing. */
    CHECK_INT(0, apply(o,
                       " { \"e\" : [ [ \"r\" , [\"u\",\"U\",1] , [\"u\",\"U\",4] , [\"z\",\"Z\",0] ], [\"empty\"] ] ,"
                       " \"q\" : 3 , \"n\" : \"A\" , \"t\" : \"s\" , \"extra\" : {\"ignored\": [1]} } ",
                       0, &l));
    CHECK_STR("+r/u", l.text);
    CHECK_UINT(4, user_conns(o, "r", "u"));
    CHECK_UINT(1, room_users(o, "r"));
    CHECK_UINT(1, presence_room_count(o));
    /* Deltas continue from q=3. */
    CHECK_INT(0, apply(o, "{\"t\":\"d\",\"n\":\"A\",\"q\":4,\"r\":\"r\",\"u\":\"u\",\"m\":\"U\",\"c\":1}", 0, &l));
    CHECK_UINT(1, user_conns(o, "r", "u"));
    /* A snapshot older than the deltas applied (q=3 < 4) is ignored. */
    CHECK_INT(0, apply(o, "{\"t\":\"s\",\"n\":\"A\",\"q\":3,\"e\":[]}", 0, &l));
    CHECK_UINT(1, user_conns(o, "r", "u"));
    /* Escapes in names decode; a room may hold NUL. */
    CHECK_INT(0, apply(o, "{\"t\":\"s\",\"n\":\"A\",\"q\":4,\"e\":[[\"caf\\u00e9\\u0000x\",[\"\\u0075\",\"\\\"U\\\"\",1]]]}",
                       0, &l));
    CHECK_UINT(1, presence_user_conns(o, "caf\xc3\xa9\0x", 7, "u", 1));
    CHECK_UINT(0, user_conns(o, "r", "u"));
    CHECK_UINT(3, l.n);
    CHECK(strstr(l.text, "+r/u -r/u ") == l.text || strstr(l.text, "+r/u +caf") == l.text);
    CHECK(strstr(l.text, "-r/u") != NULL);
    presence_free(o);
}

/* {==== leaving: goodbye and expiry ====} */

TEST(goodbye_drops_a_node_at_once) {
    struct presence *a = presence_new("A"), *b = presence_new("B"), *o = presence_new("O");
    struct log l = log_for(o);
    CHECK_INT(0, send_delta(a, o, "r", "ann", 2, 0, &l));
    CHECK_INT(0, send_delta(a, o, "s", "bob", 1, 0, &l));
    CHECK_INT(0, send_delta(b, o, "r", "bob", 1, 0, &l));
    CHECK_INT(0, send_delta(b, o, "s", "bob", 1, 0, &l)); /* bob in s through A and B */
    log_reset(&l);
    struct sbuf m = {0};
    CHECK_INT(0, presence_encode_goodbye(a, &m));
    CHECK_INT(0, presence_apply(o, m.p, m.len, 0, on_change, &l));
    CHECK_STR("-r/ann", l.text);
    CHECK_UINT(1, presence_node_count(o));
    CHECK_UINT(1, user_conns(o, "s", "bob"));
    CHECK_UINT(1, room_conns(o, "r"));
    /* A second goodbye, or one from a node never heard of: nothing. */
    log_reset(&l);
    CHECK_INT(0, presence_apply(o, m.p, m.len, 0, on_change, &l));
    CHECK_INT(0, apply(o, "{\"t\":\"g\",\"n\":\"Z\",\"q\":0}", 0, &l));
    CHECK_UINT(0, l.n);
    CHECK_UINT(1, presence_node_count(o));
    CHECK(l.queries_agree);
    sbuf_free(&m);
    presence_free(a);
    presence_free(b);
    presence_free(o);
}

TEST(a_silent_node_expires_and_its_users_leave) {
    struct presence *a = presence_new("A"), *b = presence_new("B"), *o = presence_new("O");
    struct log l = log_for(o);
    CHECK_INT(0, send_delta(a, o, "r", "ann", 1, 1000, &l));
    CHECK_INT(0, send_delta(b, o, "r", "bob", 1, 1000, &l));
    log_reset(&l);
    /* B keeps beating; A goes silent. */
    struct sbuf hb = {0};
    CHECK_INT(0, presence_encode_heartbeat(b, &hb));
    CHECK_INT(0, presence_apply(o, hb.p, hb.len, 11000, on_change, &l));
    CHECK_INT(0, presence_apply(o, hb.p, hb.len, 21000, on_change, &l));
    CHECK_UINT(0, presence_expire(o, 1000 + PRESENCE_TIMEOUT_MS, PRESENCE_TIMEOUT_MS, on_change, &l)); /* not longer yet */
    CHECK_UINT(0, l.n);
    CHECK_INT(0, presence_apply(o, hb.p, hb.len, 31000, on_change, &l));
    CHECK_UINT(1, presence_expire(o, 1001 + PRESENCE_TIMEOUT_MS, PRESENCE_TIMEOUT_MS, on_change, &l));
    CHECK_STR("-r/ann", l.text);
    CHECK_UINT(1, presence_node_count(o));
    CHECK_UINT(1, room_users(o, "r"));
    /* A clock going back drops nothing. */
    CHECK_UINT(0, presence_expire(o, 0, PRESENCE_TIMEOUT_MS, on_change, &l));
    /* Both silent: B goes too, and the room with it. */
    log_reset(&l);
    CHECK_UINT(1, presence_expire(o, 31001 + PRESENCE_TIMEOUT_MS, PRESENCE_TIMEOUT_MS, on_change, &l));
    CHECK_STR("-r/bob", l.text);
    CHECK_UINT(0, presence_node_count(o));
    CHECK_UINT(0, presence_room_count(o));
    /* A late message from the dropped B makes it known again, stale (its q=1 is not 0). */
    CHECK_INT(PRESENCE_WANT_SNAPSHOT, presence_apply(o, hb.p, hb.len, 70000, on_change, &l));
    CHECK_UINT(1, presence_node_count(o));
    CHECK_UINT(0, presence_room_count(o));
    CHECK(l.queries_agree);
    sbuf_free(&hb);
    presence_free(a);
    presence_free(b);
    presence_free(o);
}

/* {==== hello ====} */

TEST(hello_asks_all_nodes_or_one_for_a_snapshot) {
    struct presence *a = presence_new("A"), *o = presence_new("O");
    struct log l = log_for(o);
    struct sbuf m = {0};
    CHECK_INT(0, presence_encode_hello(a, &m, NULL, 0));
    CHECK_INT(PRESENCE_SEND_SNAPSHOT, presence_apply(o, m.p, m.len, 0, on_change, &l));
    sbuf_reset(&m);
    CHECK_INT(0, presence_encode_hello(a, &m, "O", 1));
    CHECK_INT(PRESENCE_SEND_SNAPSHOT, presence_apply(o, m.p, m.len, 0, on_change, &l));
    sbuf_reset(&m);
    CHECK_INT(0, presence_encode_hello(a, &m, "P", 1));
    CHECK_INT(0, presence_apply(o, m.p, m.len, 0, on_change, &l));
    CHECK_UINT(1, presence_node_count(o));
    CHECK_UINT(0, l.n);
    sbuf_free(&m);
    presence_free(a);
    presence_free(o);
}

/* {==== refused input ====} */

static void refuses(struct presence *o, const char *msg, size_t len, int line) {
    char *before = digest(o);
    struct log l = log_for(o);
    int rc = presence_apply(o, msg, len, 0, on_change, &l);
    char *after = digest(o);
    if (rc != PRESENCE_EBAD || l.n != 0 || strcmp(before, after) != 0) {
        fprintf(stderr, "line %d: expected refusal without change, got rc=%d, %u transitions, %s -> %s for ", line, rc,
                l.n, before, after);
        check_print_bytes(msg, len);
        fputc('\n', stderr);
        CHECK(0);
    } else {
        CHECK(1);
    }
    free(before);
    free(after);
}
#define REFUSES(o, s) refuses((o), (s), strlen(s), __LINE__)

TEST(malformed_messages_are_refused_without_change) {
    struct presence *o = presence_new("O");
    CHECK_INT(0, apply(o, "{\"t\":\"d\",\"n\":\"A\",\"q\":1,\"r\":\"r\",\"u\":\"u\",\"m\":\"U\",\"c\":1}", 0, NULL));
    REFUSES(o, "");
    REFUSES(o, "null");
    REFUSES(o, "[]");
    REFUSES(o, "{}");
    REFUSES(o, "{\"t\":\"h\",\"n\":\"B\"");
    REFUSES(o, "{\"t\":\"h\",\"n\":\"B\",\"q\":0} x");
    REFUSES(o, "{\"t\":\"h\",\"n\":\"B\"}");                        /* no q */
    REFUSES(o, "{\"t\":\"h\",\"q\":0}");                            /* no n */
    REFUSES(o, "{\"n\":\"B\",\"q\":0}");                            /* no t */
    REFUSES(o, "{\"t\":\"x\",\"n\":\"B\",\"q\":0}");                /* unknown kind */
    REFUSES(o, "{\"t\":\"hh\",\"n\":\"B\",\"q\":0}");
    REFUSES(o, "{\"t\":\"\",\"n\":\"B\",\"q\":0}");
    REFUSES(o, "{\"t\":1,\"n\":\"B\",\"q\":0}");
    REFUSES(o, "{\"t\":\"h\",\"n\":\"\",\"q\":0}");                 /* empty uid */
    REFUSES(o, "{\"t\":\"h\",\"n\":7,\"q\":0}");
    REFUSES(o, "{\"t\":\"h\",\"n\":\"B\\u0000\",\"q\":0}");
    REFUSES(o, "{\"t\":\"h\",\"n\":\"B\",\"q\":-1}");
    REFUSES(o, "{\"t\":\"h\",\"n\":\"B\",\"q\":-0}");
    REFUSES(o, "{\"t\":\"h\",\"n\":\"B\",\"q\":1.5}");
    REFUSES(o, "{\"t\":\"h\",\"n\":\"B\",\"q\":1e3}");
    REFUSES(o, "{\"t\":\"h\",\"n\":\"B\",\"q\":\"1\"}");
    REFUSES(o, "{\"t\":\"h\",\"n\":\"B\",\"q\":99999999999999999999}");
    REFUSES(o, "{\"t\":\"h\",\"t\":\"h\",\"n\":\"B\",\"q\":0}");    /* a key twice */
    REFUSES(o, "{\"t\":\"h\",\"n\":\"B\",\"n\":\"C\",\"q\":0}");
    /* deltas */
    REFUSES(o, "{\"t\":\"d\",\"n\":\"A\",\"q\":2,\"r\":\"r\",\"u\":\"u\",\"m\":\"U\"}");          /* no c */
    REFUSES(o, "{\"t\":\"d\",\"n\":\"A\",\"q\":2,\"r\":\"r\",\"u\":\"u\",\"c\":0}");              /* no m */
    REFUSES(o, "{\"t\":\"d\",\"n\":\"A\",\"q\":2,\"r\":\"r\",\"m\":\"U\",\"c\":0}");              /* no u */
    REFUSES(o, "{\"t\":\"d\",\"n\":\"A\",\"q\":2,\"u\":\"u\",\"m\":\"U\",\"c\":0}");              /* no r */
    REFUSES(o, "{\"t\":\"d\",\"n\":\"A\",\"q\":0,\"r\":\"r\",\"u\":\"u\",\"m\":\"U\",\"c\":0}");  /* q 0 */
    REFUSES(o, "{\"t\":\"d\",\"n\":\"A\",\"q\":2,\"r\":\"r\",\"u\":\"\",\"m\":\"U\",\"c\":0}");   /* empty id */
    REFUSES(o, "{\"t\":\"d\",\"n\":\"A\",\"q\":2,\"r\":\"r\",\"u\":\"u\\u0000\",\"m\":\"U\",\"c\":0}");
    REFUSES(o, "{\"t\":\"d\",\"n\":\"A\",\"q\":2,\"r\":\"r\",\"u\":\"u\",\"m\":\"U\\u0000\",\"c\":0}");
    REFUSES(o, "{\"t\":\"d\",\"n\":\"A\",\"q\":2,\"r\":1,\"u\":\"u\",\"m\":\"U\",\"c\":0}");
    REFUSES(o, "{\"t\":\"d\",\"n\":\"A\",\"q\":2,\"r\":\"r\",\"u\":\"u\",\"m\":\"U\",\"c\":-1}");
    REFUSES(o, "{\"t\":\"d\",\"n\":\"A\",\"q\":2,\"r\":\"r\",\"u\":\"u\",\"m\":\"U\",\"c\":4294967296}");
    REFUSES(o, "{\"t\":\"d\",\"n\":\"A\",\"q\":2,\"r\":\"r\",\"u\":\"u\",\"m\":\"U\",\"c\":true}");
    REFUSES(o, "{\"t\":\"d\",\"n\":\"A\",\"q\":2,\"r\":\"\xff\",\"u\":\"u\",\"m\":\"U\",\"c\":1}"); /* not UTF-8 */
    /* snapshots: all or nothing */
    REFUSES(o, "{\"t\":\"s\",\"n\":\"A\",\"q\":5}");
    REFUSES(o, "{\"t\":\"s\",\"n\":\"A\",\"q\":5,\"e\":{}}");
    REFUSES(o, "{\"t\":\"s\",\"n\":\"A\",\"q\":5,\"e\":[[]]}");
    REFUSES(o, "{\"t\":\"s\",\"n\":\"A\",\"q\":5,\"e\":[\"r\"]}");
    REFUSES(o, "{\"t\":\"s\",\"n\":\"A\",\"q\":5,\"e\":[[1]]}");
    REFUSES(o, "{\"t\":\"s\",\"n\":\"A\",\"q\":5,\"e\":[[\"r\",[\"u\",\"U\"]]]}");
    REFUSES(o, "{\"t\":\"s\",\"n\":\"A\",\"q\":5,\"e\":[[\"r\",[\"u\",\"U\",1,2]]]}");
    REFUSES(o, "{\"t\":\"s\",\"n\":\"A\",\"q\":5,\"e\":[[\"r\",[\"u\",\"U\",1]],[\"s\",[\"\",\"U\",1]]]}");
    REFUSES(o, "{\"t\":\"s\",\"n\":\"A\",\"q\":5,\"e\":[[\"r\",[\"u\",\"U\",1]],[\"s\",\"u\"]]}");
    REFUSES(o, "{\"t\":\"s\",\"n\":\"A\",\"q\":5,\"e\":[[\"r\",[\"u\",\"U\",1.0]]]}");
    /* hello */
    REFUSES(o, "{\"t\":\"i\",\"n\":\"A\",\"q\":1,\"w\":\"\"}");
    REFUSES(o, "{\"t\":\"i\",\"n\":\"A\",\"q\":1,\"w\":3}");
    /* bytes that are not UTF-8 or not JSON at all, a NUL inside */
    REFUSES(o, "{\"t\":\"h\",\"n\":\"\xc3\",\"q\":0}");
    static const char with_nul[] = "{\"t\":\"h\",\"n\":\"B\",\"q\":0}\0";
    refuses(o, with_nul, sizeof with_nul - 1, __LINE__);
    /* Deep nesting in an ignored member: refused by the scanner's depth limit, no crash. */
    char deep[400];
    size_t k = (size_t)snprintf(deep, sizeof deep, "{\"t\":\"h\",\"n\":\"B\",\"q\":0,\"x\":");
    for (int d = 0; d < 100; d++) deep[k++] = '[';
    for (int d = 0; d < 100; d++) deep[k++] = ']';
    deep[k++] = '}';
    deep[k] = 0;
    REFUSES(o, deep);
    /* The one valid message left A as it was. */
    CHECK_UINT(1, user_conns(o, "r", "u"));
    CHECK_UINT(1, presence_node_count(o));
    presence_free(o);
}

TEST(fields_over_their_limits_are_refused) {
    struct presence *o = presence_new("O");
    struct sbuf m = {0};
    char big[PRESENCE_MAX_FIELD_BYTES + 1];
    memset(big, 'x', sizeof big);
    const char *fmt[] = {
        "{\"t\":\"d\",\"n\":\"A\",\"q\":1,\"r\":\"%.*s\",\"u\":\"u\",\"m\":\"U\",\"c\":1}",
        "{\"t\":\"d\",\"n\":\"A\",\"q\":1,\"r\":\"r\",\"u\":\"%.*s\",\"m\":\"U\",\"c\":1}",
        "{\"t\":\"d\",\"n\":\"A\",\"q\":1,\"r\":\"r\",\"u\":\"u\",\"m\":\"%.*s\",\"c\":1}",
        "{\"t\":\"s\",\"n\":\"A\",\"q\":1,\"e\":[[\"%.*s\",[\"u\",\"U\",1]]]}",
        "{\"t\":\"s\",\"n\":\"A\",\"q\":1,\"e\":[[\"r\",[\"%.*s\",\"U\",1]]]}",
        "{\"t\":\"s\",\"n\":\"A\",\"q\":1,\"e\":[[\"r\",[\"u\",\"%.*s\",1]]]}",
    };
    for (size_t i = 0; i < sizeof fmt / sizeof *fmt; i++) {
        sbuf_reset(&m);
        sbuf_printf(&m, fmt[i], PRESENCE_MAX_FIELD_BYTES + 1, big);
        refuses(o, m.p, m.len, __LINE__);
        /* An escape that decodes to one byte still counts one byte: 1023 x and \u0078 fit. */
        sbuf_reset(&m);
        sbuf_printf(&m, fmt[i], PRESENCE_MAX_FIELD_BYTES - 1, big);
        char *at = strstr(m.p, "xxx\"");
        CHECK(at != NULL);
        char tail[256];
        snprintf(tail, sizeof tail, "%s", at + 3);
        m.len = (size_t)(at + 3 - m.p);
        sbuf_printf(&m, "\\u0078%s", tail);
        struct presence *fresh = presence_new("O");
        CHECK_INT(0, presence_apply(fresh, m.p, m.len, 0, NULL, NULL));
        CHECK_UINT(1, presence_room_count(fresh));
        presence_free(fresh);
    }
    /* The uid: PRESENCE_MAX_UID_BYTES fits, one more does not. */
    char uid[PRESENCE_MAX_UID_BYTES + 1];
    memset(uid, 'n', sizeof uid);
    sbuf_reset(&m);
    sbuf_printf(&m, "{\"t\":\"h\",\"n\":\"%.*s\",\"q\":0}", PRESENCE_MAX_UID_BYTES + 1, uid);
    refuses(o, m.p, m.len, __LINE__);
    sbuf_reset(&m);
    sbuf_printf(&m, "{\"t\":\"i\",\"n\":\"A\",\"q\":0,\"w\":\"%.*s\"}", PRESENCE_MAX_UID_BYTES + 1, uid);
    refuses(o, m.p, m.len, __LINE__);
    sbuf_reset(&m);
    sbuf_printf(&m, "{\"t\":\"h\",\"n\":\"%.*s\",\"q\":0}", PRESENCE_MAX_UID_BYTES, uid);
    CHECK_INT(0, presence_apply(o, m.p, m.len, 0, NULL, NULL));
    CHECK_UINT(1, presence_node_count(o));
    sbuf_free(&m);
    presence_free(o);
}

TEST(nodes_past_the_limit_are_refused) {
    struct presence *o = presence_new("O");
    char msg[64];
    for (int i = 0; i < PRESENCE_MAX_NODES; i++) {
        snprintf(msg, sizeof msg, "{\"t\":\"h\",\"n\":\"n%d\",\"q\":0}", i);
        if (apply(o, msg, 0, NULL) != 0) break;
    }
    CHECK_UINT(PRESENCE_MAX_NODES, presence_node_count(o));
    CHECK_INT(PRESENCE_EBAD, apply(o, "{\"t\":\"h\",\"n\":\"one-more\",\"q\":0}", 0, NULL));
    CHECK_INT(0, apply(o, "{\"t\":\"h\",\"n\":\"n7\",\"q\":0}", 0, NULL)); /* known ones go on */
    CHECK_UINT(PRESENCE_MAX_NODES, presence_expire(o, 1 + PRESENCE_TIMEOUT_MS, PRESENCE_TIMEOUT_MS, NULL, NULL));
    CHECK_UINT(0, presence_node_count(o));
    CHECK_INT(0, apply(o, "{\"t\":\"h\",\"n\":\"one-more\",\"q\":0}", 0, NULL));
    presence_free(o);
}

/* {==== randomized: the replica against a model ====} */

#define R_NODES 4
#define R_ROOMS 3
#define R_USERS 4

struct model {
    uint32_t conns[R_NODES][R_ROOMS][R_USERS]; /* what each node last announced and o applied */
    int present[R_ROOMS][R_USERS];             /* as reported by the transitions */
    int bad;                                   /* a transition reported twice or wrongly */
};

static void model_change(void *ud, const struct presence_user *u, int joined) {
    struct model *m = ud;
    int r = u->room[1] - '0', k = u->id[1] - '0';
    if (m->present[r][k] == joined) m->bad++;
    m->present[r][k] = joined;
}

TEST(randomized_replica_matches_a_model) {
    struct presence *nodes[R_NODES], *o = presence_new("O");
    char uid[8];
    for (int i = 0; i < R_NODES; i++) {
        snprintf(uid, sizeof uid, "N%d", i);
        nodes[i] = presence_new(uid);
    }
    struct model m = {0};
    uint32_t truth[R_NODES][R_ROOMS][R_USERS] = {{{0}}};
    struct sbuf b = {0};
    srand(1313);
    unsigned mismatches = 0, resyncs = 0;
    for (int step = 0; step < 20000; step++) {
        int i = rand() % R_NODES, r = rand() % R_ROOMS, k = rand() % R_USERS;
        char room[3] = {'r', (char)('0' + r), 0}, user[3] = {'u', (char)('0' + k), 0};
        int what = rand() % 100;
        sbuf_reset(&b);
        if (what < 85) {
            /* A join or leave on node i; 1 in 10 deltas is lost on the way. */
            uint32_t c = truth[i][r][k];
            c = (rand() % 2 && c > 0) ? c - 1 : c + 1;
            if (c > 3) c = 0;
            truth[i][r][k] = c;
            CHECK_INT(0, presence_encode_delta(nodes[i], &b, room, 2, user, 2, user, 2, c));
            if (rand() % 10 == 0) continue;
            int rc = presence_apply(o, b.p, b.len, (uint64_t)step, model_change, &m);
            if (rc < 0) mismatches++;
            m.conns[i][r][k] = c;
            if (rc & PRESENCE_WANT_SNAPSHOT) resyncs++;
        } else if (what < 95) {
            /* A snapshot of node i (as if asked). */
            struct presence_snapshot s;
            presence_snapshot_begin(&s, nodes[i], &b);
            for (int rr = 0; rr < R_ROOMS; rr++) {
                char rn[3] = {'r', (char)('0' + rr), 0};
                presence_snapshot_room(&s, rn, 2);
                for (int kk = 0; kk < R_USERS; kk++) {
                    char un[3] = {'u', (char)('0' + kk), 0};
                    if (truth[i][rr][kk]) presence_snapshot_user(&s, un, 2, un, 2, truth[i][rr][kk]);
                }
            }
            CHECK_INT(0, presence_snapshot_end(&s));
            if (presence_apply(o, b.p, b.len, (uint64_t)step, model_change, &m) < 0) mismatches++;
            memcpy(m.conns[i], truth[i], sizeof truth[i]);
        } else if (what < 98) {
            /* Node i says goodbye and comes back empty (a new uid is not needed: q goes on). */
            presence_encode_goodbye(nodes[i], &b);
            if (presence_apply(o, b.p, b.len, (uint64_t)step, model_change, &m) < 0) mismatches++;
            memset(m.conns[i], 0, sizeof m.conns[i]);
            presence_free(nodes[i]);
            snprintf(uid, sizeof uid, "N%d", i);
            memset(truth[i], 0, sizeof truth[i]);
            /* The same uid restarting would break "fresh uid"; the model keeps it, q restarts with it. */
            nodes[i] = presence_new(uid);
        } else {
            /* A heartbeat. */
            presence_encode_heartbeat(nodes[i], &b);
            if (presence_apply(o, b.p, b.len, (uint64_t)step, model_change, &m) < 0) mismatches++;
        }
        /* o holds exactly what was applied, and the reported transitions match it. */
        for (int rr = 0; rr < R_ROOMS; rr++) {
            uint64_t room_total = 0;
            size_t users = 0;
            char rn[3] = {'r', (char)('0' + rr), 0};
            for (int kk = 0; kk < R_USERS; kk++) {
                char un[3] = {'u', (char)('0' + kk), 0};
                uint64_t sum = 0;
                for (int ii = 0; ii < R_NODES; ii++) sum += m.conns[ii][rr][kk];
                room_total += sum;
                users += sum > 0;
                if (user_conns(o, rn, un) != sum || m.present[rr][kk] != (sum > 0)) mismatches++;
            }
            if (room_conns(o, rn) != room_total || room_users(o, rn) != users) mismatches++;
        }
    }
    CHECK_UINT(0, mismatches);
    CHECK_UINT(0, m.bad);
    CHECK(resyncs > 0);
    sbuf_free(&b);
    for (int i = 0; i < R_NODES; i++) presence_free(nodes[i]);
    presence_free(o);
}

int main(void) {
    RUN(encodes_every_kind_in_the_documented_form);
    RUN(encoders_refuse_what_receivers_would_refuse);
    RUN(new_refuses_bad_uids);
    RUN(delta_joins_and_leaves_a_user_once);
    RUN(two_users_on_three_nodes_are_counted_once_each);
    RUN(listings_show_names_rooms_and_a_users_rooms);
    RUN(own_messages_are_ignored);
    RUN(a_lost_delta_is_healed_by_the_next_and_asks_for_a_snapshot);
    RUN(a_heartbeat_or_hello_with_another_q_asks_for_a_snapshot);
    RUN(a_repeated_or_older_delta_changes_nothing);
    RUN(a_snapshot_replaces_what_was_known_of_its_node);
    RUN(snapshot_edge_cases_duplicates_zero_counts_older_q);
    RUN(goodbye_drops_a_node_at_once);
    RUN(a_silent_node_expires_and_its_users_leave);
    RUN(hello_asks_all_nodes_or_one_for_a_snapshot);
    RUN(malformed_messages_are_refused_without_change);
    RUN(fields_over_their_limits_are_refused);
    RUN(nodes_past_the_limit_are_refused);
    RUN(randomized_replica_matches_a_model);
    return check_finish("test_presence");
}
