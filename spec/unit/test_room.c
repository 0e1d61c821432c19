/* Unit tests for core/room.h: rooms indexed both ways (room -> members,
 * member -> rooms) with O(1) swap-removal, per-user connection counts, and
 * empty rooms deleted at once. The randomized test checks after every
 * operation that both indexes agree with each other and with a reference
 * model. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "room.h"
#include "user.h"

static struct user make_user(char *id) { return (struct user){.id = id, .name = id, .refs = 1}; }

/* Each member gets a unique key (a socket id in the server). */
static struct room_membership make_member(struct user *u, void *owner) {
    static char keys[8192][16];
    static unsigned n;
    char *key = keys[n++ % 8192];
    int len = snprintf(key, sizeof keys[0], "m%u", n);
    return (struct room_membership){.user = u, .owner = owner, .key = key, .key_len = (size_t)len};
}

static int join(struct hmap *rooms, struct room_membership *m, const char *name, struct room **r,
                int *user_is_new) {
    return room_join(rooms, m, name, strlen(name), r, user_is_new);
}

static struct room *find(struct hmap *rooms, const char *name) {
    return room_find(rooms, name, strlen(name));
}

static unsigned room_users_count(struct room *r) { return (unsigned)r->users.count; }

static void free_rooms(struct hmap *rooms, struct room_membership *ms, int n) {
    for (int i = 0; i < n; i++) room_leave_all(rooms, &ms[i]);
    hmap_free(rooms);
}

TEST(join_creates_the_room) {
    struct hmap rooms = {0};
    struct user u = make_user("u1");
    struct room_membership m = make_member(&u, &u);
    struct room *r = NULL;
    int is_new = -1;
    CHECK_INT(1, join(&rooms, &m, "lobby", &r, &is_new));
    CHECK_INT(1, is_new);
    CHECK(r != NULL);
    CHECK_PTR(r, find(&rooms, "lobby"));
    CHECK_STR("lobby", r->name);
    CHECK_UINT(5, r->name_len);
    CHECK_UINT(1, r->n_members);
    CHECK_PTR(&m, r->members[0].m);
    CHECK_PTR(&u, r->members[0].m->owner);
    CHECK_UINT(1, m.n);
    CHECK_PTR(r, m.slots[0].room);
    CHECK_INT(1, room_has(&m, r));
    CHECK_UINT(1, room_users_count(r));
    free_rooms(&rooms, &m, 1);
}

TEST(join_twice_is_a_no_op) {
    struct hmap rooms = {0};
    struct user u = make_user("u1");
    struct room_membership m = make_member(&u, NULL);
    struct room *r1 = NULL, *r2 = NULL;
    int is_new;
    CHECK_INT(1, join(&rooms, &m, "a", &r1, &is_new));
    CHECK_INT(0, join(&rooms, &m, "a", &r2, &is_new));
    CHECK_INT(0, is_new);
    CHECK_PTR(r1, r2);
    CHECK_UINT(1, r1->n_members);
    CHECK_UINT(1, m.n);
    free_rooms(&rooms, &m, 1);
}

TEST(second_connection_of_a_user_is_not_a_new_user) {
    struct hmap rooms = {0};
    struct user u = make_user("alice");
    struct room_membership tabs[2] = {make_member(&u, NULL), make_member(&u, NULL)};
    struct room *r;
    int is_new;
    CHECK_INT(1, join(&rooms, &tabs[0], "r", &r, &is_new));
    CHECK_INT(1, is_new);
    CHECK_INT(1, join(&rooms, &tabs[1], "r", &r, &is_new));
    CHECK_INT(0, is_new);
    CHECK_UINT(2, r->n_members);
    CHECK_UINT(1, room_users_count(r));
    int left = -1;
    CHECK_INT(1, room_leave(&rooms, &tabs[0], r, &left));
    CHECK_INT(0, left); /* the other tab is still there */
    CHECK_PTR(r, find(&rooms, "r"));
    CHECK_INT(1, room_leave(&rooms, &tabs[1], r, &left));
    CHECK_INT(1, left);
    CHECK(find(&rooms, "r") == NULL); /* empty: deleted */
    CHECK_UINT(0, rooms.count);
    free_rooms(&rooms, tabs, 2);
}

TEST(distinct_users_are_counted_once) {
    struct hmap rooms = {0};
    struct user a = make_user("a"), b = make_user("b");
    struct room_membership ms[5] = {make_member(&a, NULL), make_member(&a, NULL), make_member(&b, NULL),
                                    make_member(&b, NULL), make_member(&b, NULL)};
    struct room *r = NULL;
    int is_new;
    for (int i = 0; i < 5; i++) join(&rooms, &ms[i], "x", &r, &is_new);
    CHECK_UINT(5, r->n_members);
    CHECK_UINT(2, room_users_count(r));
    struct room_user *ra = hmap_get(&r->users, "a", 1), *rb = hmap_get(&r->users, "b", 1);
    CHECK(ra && ra->conns == 2 && ra->user == &a);
    CHECK(rb && rb->conns == 3 && rb->user == &b);
    free_rooms(&rooms, ms, 5);
}

TEST(leave_of_a_non_member_returns_zero) {
    struct hmap rooms = {0};
    struct user u = make_user("u"), v = make_user("v");
    struct room_membership m = make_member(&u, NULL), other = make_member(&v, NULL);
    struct room *r;
    int is_new, left = -1;
    join(&rooms, &m, "r", &r, &is_new);
    CHECK_INT(0, room_leave(&rooms, &other, r, &left));
    CHECK_INT(0, left);
    CHECK_UINT(1, r->n_members);
    CHECK_INT(0, room_has(&other, r));
    free_rooms(&rooms, &m, 1);
}

TEST(leave_swaps_the_last_member_into_the_hole) {
    struct hmap rooms = {0};
    struct user u[4] = {make_user("0"), make_user("1"), make_user("2"), make_user("3")};
    struct room_membership ms[4];
    struct room *r;
    int is_new, left;
    for (int i = 0; i < 4; i++) {
        ms[i] = make_member(&u[i], NULL);
        join(&rooms, &ms[i], "r", &r, &is_new);
    }
    CHECK_INT(1, room_leave(&rooms, &ms[1], r, &left));
    CHECK_UINT(3, r->n_members);
    CHECK_PTR(&ms[3], r->members[1].m);
    CHECK_UINT(1, ms[3].slots[0].member_idx);
    CHECK_UINT(0, ms[1].n);
    free_rooms(&rooms, ms, 4);
}

TEST(leave_all_leaves_every_room_and_deletes_empty_ones) {
    struct hmap rooms = {0};
    struct user u = make_user("u"), v = make_user("v");
    struct room_membership m = make_member(&u, NULL), stay = make_member(&v, NULL);
    struct room *r;
    int is_new;
    char name[16];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "room%d", i);
        join(&rooms, &m, name, &r, &is_new);
    }
    join(&rooms, &stay, "room7", &r, &is_new);
    CHECK_UINT(20, m.n);
    CHECK_UINT(20, rooms.count);
    room_leave_all(&rooms, &m);
    CHECK_UINT(0, m.n);
    CHECK(m.slots == NULL);
    CHECK_UINT(1, rooms.count);
    r = find(&rooms, "room7");
    CHECK(r != NULL);
    if (r) {
        CHECK_UINT(1, r->n_members);
        CHECK_PTR(&stay, r->members[0].m);
        CHECK_UINT(0, r->members[0].slot_idx);
        CHECK_UINT(0, stay.slots[0].member_idx);
    }
    free_rooms(&rooms, &stay, 1);
    CHECK_UINT(0, rooms.count);
}

TEST(room_names_may_hold_any_bytes) {
    struct hmap rooms = {0};
    struct user u = make_user("u");
    struct room_membership m = make_member(&u, NULL);
    struct room *r1, *r2;
    int is_new;
    CHECK_INT(1, room_join(&rooms, &m, "a\0b", 3, &r1, &is_new));
    CHECK_INT(1, room_join(&rooms, &m, "a", 1, &r2, &is_new));
    CHECK(r1 != r2);
    CHECK_UINT(3, r1->name_len);
    CHECK_PTR(r1, room_find(&rooms, "a\0b", 3));
    CHECK_INT(1, room_join(&rooms, &m, "", 0, &r2, &is_new)); /* the empty name */
    CHECK_PTR(r2, room_find(&rooms, "", 0));
    free_rooms(&rooms, &m, 1);
}

/* ---- randomized: both indexes against a reference model ---- */

enum { RU = 7, RM = 24, RR = 13 };

struct model {
    struct user users[RU];
    char ids[RU][8];
    struct room_membership ms[RM];
    char names[RR][8];
    unsigned char in[RM][RR]; /* membership matrix */
};

/* Returns the number of disagreements. */
static unsigned verify(struct hmap *rooms, struct model *md) {
    unsigned bad = 0, nonempty = 0;
    for (int ri = 0; ri < RR; ri++) {
        unsigned members = 0, conns[RU] = {0}, distinct = 0;
        for (int mi = 0; mi < RM; mi++)
            if (md->in[mi][ri]) members++, conns[md->ms[mi].user - md->users]++;
        for (int u = 0; u < RU; u++) distinct += conns[u] > 0;
        struct room *r = room_find(rooms, md->names[ri], strlen(md->names[ri]));
        if (!members) {
            if (r) bad++; /* empty rooms must be gone */
            continue;
        }
        nonempty++;
        if (!r) {
            bad++;
            continue;
        }
        if (r->n_members != members || r->n_members > r->cap_members) bad++;
        if (r->users.count != distinct) bad++;
        for (int u = 0; u < RU; u++) {
            struct room_user *ru = hmap_get(&r->users, md->ids[u], strlen(md->ids[u]));
            if (conns[u] ? !ru || ru->conns != conns[u] || ru->user != &md->users[u] : ru != NULL) bad++;
        }
        /* room -> member -> slot points back */
        for (uint32_t i = 0; i < r->n_members; i++) {
            struct room_member mem = r->members[i];
            int mi = (int)(mem.m - md->ms);
            if (mi < 0 || mi >= RM || !md->in[mi][ri]) {
                bad++;
                continue;
            }
            if (mem.slot_idx >= mem.m->n || mem.m->slots[mem.slot_idx].room != r ||
                mem.m->slots[mem.slot_idx].member_idx != i)
                bad++;
        }
    }
    if (rooms->count != nonempty) bad++;
    /* member -> room -> member points back */
    for (int mi = 0; mi < RM; mi++) {
        struct room_membership *m = &md->ms[mi];
        unsigned rooms_in = 0;
        for (int ri = 0; ri < RR; ri++) rooms_in += md->in[mi][ri];
        if (m->n != rooms_in || m->n > m->cap) bad++;
        for (uint32_t k = 0; k < m->n; k++) {
            struct room *r = m->slots[k].room;
            if (room_find(rooms, r->name, r->name_len) != r) {
                bad++;
                continue;
            }
            uint32_t idx = m->slots[k].member_idx;
            if (idx >= r->n_members || r->members[idx].m != m || r->members[idx].slot_idx != k) bad++;
        }
    }
    return bad;
}

static void random_room_ops(uint64_t seed, int ops, const char *file, int line) {
    struct model *md = calloc(1, sizeof *md);
    struct hmap rooms = {0};
    for (int u = 0; u < RU; u++) {
        snprintf(md->ids[u], sizeof md->ids[u], "user%d", u);
        md->users[u] = make_user(md->ids[u]);
    }
    for (int mi = 0; mi < RM; mi++) md->ms[mi] = make_member(&md->users[mi % RU], &md->ms[mi]);
    for (int ri = 0; ri < RR; ri++) snprintf(md->names[ri], sizeof md->names[ri], "room%d", ri);
    uint64_t x = seed;
    unsigned bad = 0;
    int op;
    for (op = 0; op < ops && !bad; op++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int mi = (int)((x >> 8) % RM), ri = (int)((x >> 24) % RR), kind = (int)(x % 16);
        struct room_membership *m = &md->ms[mi];
        int user_in_before = 0;
        for (int k = 0; k < RM; k++) user_in_before += md->in[k][ri] && md->ms[k].user == m->user;
        if (kind < 9) { /* join */
            struct room *r = NULL;
            int is_new = -1;
            int rc = room_join(&rooms, m, md->names[ri], strlen(md->names[ri]), &r, &is_new);
            int expect_rc = md->in[mi][ri] ? 0 : 1;
            if (rc != expect_rc || r == NULL || strcmp(r->name, md->names[ri]) != 0) bad++;
            if (is_new != (expect_rc == 1 && user_in_before == 0)) bad++;
            md->in[mi][ri] = 1;
        } else if (kind < 15) { /* leave */
            struct room *r = room_find(&rooms, md->names[ri], strlen(md->names[ri]));
            if (r) {
                int left = -1;
                int rc = room_leave(&rooms, m, r, &left);
                if (rc != md->in[mi][ri]) bad++;
                if (left != (md->in[mi][ri] && user_in_before == 1)) bad++;
                md->in[mi][ri] = 0;
            } else if (md->in[mi][ri]) {
                bad++;
            }
        } else { /* leave all */
            room_leave_all(&rooms, m);
            memset(md->in[mi], 0, sizeof md->in[mi]);
        }
        bad += verify(&rooms, md);
    }
    if (bad) fprintf(stderr, "    first disagreement at op %d (seed %llx)\n", op - 1, (unsigned long long)seed);
    check_uint(0, bad, "room indexes agree with the model", file, line);
    for (int mi = 0; mi < RM; mi++) room_leave_all(&rooms, &md->ms[mi]);
    check_uint(0, rooms.count, "no rooms left after everyone left", file, line);
    hmap_free(&rooms);
    free(md);
}

TEST(random_joins_and_leaves_keep_both_indexes_consistent) {
    random_room_ops(0x853C49E6748FEA9Bull, 60000, __FILE__, __LINE__);
    random_room_ops(0xDA3E39CB94B95BDBull, 60000, __FILE__, __LINE__);
    random_room_ops(0x1ull, 20000, __FILE__, __LINE__);
}

TEST(many_members_in_one_room) {
    enum { N = 5000 };
    struct hmap rooms = {0};
    static struct user users[N];
    static char ids[N][8];
    static struct room_membership ms[N];
    struct room *r = NULL;
    int is_new;
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], 8, "%d", i % 1000); /* 1000 users, 5 tabs each */
        users[i] = make_user(ids[i]);
        ms[i] = make_member(&users[i % 1000], NULL);
        join(&rooms, &ms[i], "big", &r, &is_new);
    }
    CHECK_UINT(N, r->n_members);
    CHECK_UINT(1000, room_users_count(r));
    /* leave from the front: every leave moves the last member */
    int left;
    for (int i = 0; i < N - 1; i++) room_leave(&rooms, &ms[i], r, &left);
    CHECK_UINT(1, r->n_members);
    CHECK_PTR(&ms[N - 1], r->members[0].m);
    CHECK_UINT(0, ms[N - 1].slots[0].member_idx);
    CHECK_UINT(1, room_users_count(r));
    free_rooms(&rooms, ms, N);
}

int main(void) {
    RUN(join_creates_the_room);
    RUN(join_twice_is_a_no_op);
    RUN(second_connection_of_a_user_is_not_a_new_user);
    RUN(distinct_users_are_counted_once);
    RUN(leave_of_a_non_member_returns_zero);
    RUN(leave_swaps_the_last_member_into_the_hole);
    RUN(leave_all_leaves_every_room_and_deletes_empty_ones);
    RUN(room_names_may_hold_any_bytes);
    RUN(random_joins_and_leaves_keep_both_indexes_consistent);
    RUN(many_members_in_one_room);
    return check_finish("test_room");
}
