/* Unit tests for core/socketio/recovery.h: the recovery log of a namespace
 * (offsets appended to event arrays, the ring, the search by offset,
 * pruning, and who an entry went to), over the in-memory adapter and
 * sockets made here: no server, no hub. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "check.h"
#include "recovery.h"
#include "sio.h"
#include "user.h"

static struct sbuf with_offset(const char *json) {
    struct sbuf b = {0};
    CHECK_INT(0, rlog_with_offset(&b, json, strlen(json), "00000000000000ff"));
    return b;
}

TEST(the_offset_goes_last_in_the_event_array) {
    struct sbuf b = with_offset("[\"new_message\",{\"a\":[1,2]}]");
    CHECK_MEM("[\"new_message\",{\"a\":[1,2]},\"00000000000000ff\"]", b.p, b.len);
    sbuf_free(&b);
    b = with_offset("[\"ping_all\"]");
    CHECK_MEM("[\"ping_all\",\"00000000000000ff\"]", b.p, b.len);
    sbuf_free(&b);
    b = with_offset("[\"x\", 1 ]\n");
    CHECK_MEM("[\"x\", 1 ,\"00000000000000ff\"]", b.p, b.len);
    sbuf_free(&b);
    b = with_offset("[ ]");
    CHECK_MEM("[ \"00000000000000ff\"]", b.p, b.len);
    sbuf_free(&b);
    struct sbuf bad = {0};
    CHECK_INT(-1, rlog_with_offset(&bad, "{}", 2, "00000000000000ff"));
    CHECK_INT(-1, rlog_with_offset(&bad, "]", 1, "00000000000000ff"));
    sbuf_free(&bad);
}

static void offset_of(unsigned i, char out[IDS_ID_LEN + 1]) { snprintf(out, IDS_ID_LEN + 1, "%016x", i); }

static void append(struct rlog *l, unsigned i, uint64_t at) {
    char off[IDS_ID_LEN + 1], json[32];
    offset_of(i, off);
    int n = snprintf(json, sizeof json, "[\"e\",%u,\"%s\"]", i, off);
    CHECK_INT(0, rlog_append(l, at, off, json, (size_t)n, "AAAAAAAAAAAAAAAAAAAA", NULL));
}

TEST(offsets_are_found_across_ring_growth_and_pruning) {
    struct rlog l = {0};
    char off[IDS_ID_LEN + 1];
    for (unsigned i = 1; i <= 100; i++) append(&l, i * 2, i); /* even offsets, time i */
    CHECK_UINT(100, l.n);
    offset_of(2, off);
    CHECK_INT(1, rlog_after(&l, off, IDS_ID_LEN));
    offset_of(200, off);
    CHECK_INT(100, rlog_after(&l, off, IDS_ID_LEN));
    offset_of(101, off); /* between two entries: not one the server gave */
    CHECK_INT(-1, rlog_after(&l, off, IDS_ID_LEN));
    CHECK_INT(-1, rlog_after(&l, off, 15));
    /* Prune the first 70 (sent before time 71), then wrap the ring by appending. */
    rlog_prune(&l, 71);
    CHECK_UINT(30, l.n);
    offset_of(140, off);
    CHECK_INT(-1, rlog_after(&l, off, IDS_ID_LEN));
    for (unsigned i = 101; i <= 150; i++) append(&l, i * 2, i);
    CHECK_UINT(80, l.n);
    offset_of(142, off);
    CHECK_INT(1, rlog_after(&l, off, IDS_ID_LEN));
    offset_of(250, off);
    long at = rlog_after(&l, off, IDS_ID_LEN);
    CHECK_INT(55, at);
    CHECK_MEM("[\"e\",252,\"00000000000000fc\"]", rlog_at(&l, (size_t)at)->json, rlog_at(&l, (size_t)at)->len);
    for (size_t i = 1; i < l.n; i++) CHECK(memcmp(rlog_at(&l, i - 1)->offset, rlog_at(&l, i)->offset, IDS_ID_LEN) < 0);
    rlog_prune(&l, 1000); /* everything: the ring itself is released */
    CHECK_UINT(0, l.n);
    CHECK_PTR(NULL, l.ring);
    rlog_free(&l);
}

TEST(the_log_keeps_at_most_its_cap_of_entries) {
    struct rlog l = {0};
    char off[IDS_ID_LEN + 1];
    for (unsigned i = 1; i <= RLOG_MAX_ENTRIES + 10; i++) append(&l, i, 1);
    CHECK_UINT(RLOG_MAX_ENTRIES, l.n);
    offset_of(10, off);
    CHECK_INT(-1, rlog_after(&l, off, IDS_ID_LEN)); /* the oldest went */
    offset_of(11, off);
    CHECK_INT(1, rlog_after(&l, off, IDS_ID_LEN));
    rlog_free(&l);
}

/* Sockets in a namespace with the in-memory adapter. */
struct fixture {
    struct nsp *nsp;
    struct user u;
    struct sio_socket s[3];
};

static void fixture_init(struct fixture *f) {
    memset(f, 0, sizeof *f);
    f->nsp = calloc(1, sizeof *f->nsp + 2);
    memcpy(f->nsp->name, "/", 2);
    f->nsp->name_len = 1;
    f->nsp->adapter = adapter_memory_new(f->nsp, NULL);
    f->u = (struct user){.id = "u", .name = "u", .refs = 3};
    for (int i = 0; i < 3; i++) {
        struct sio_socket *s = &f->s[i];
        snprintf(s->sid, sizeof s->sid, "SOCKET%014d", i);
        s->nsp = f->nsp;
        s->rooms = (struct room_membership){.user = &f->u, .owner = s, .key = s->sid, .key_len = IDS_SID_LEN};
    }
}

static void fixture_free(struct fixture *f) {
    for (int i = 0; i < 3; i++) f->nsp->adapter->ops->leave_all(f->nsp->adapter, &f->s[i]);
    f->nsp->adapter->ops->free(f->nsp->adapter);
    free(f->nsp);
}

static void join(struct sio_socket *s, const char *room) {
    int is_new;
    CHECK_INT(1, adapter_join(s, room, strlen(room), &is_new));
}

TEST(an_entry_targets_its_socket_or_its_rooms_less_the_excepted) {
    struct fixture f;
    fixture_init(&f);
    join(&f.s[0], "a");
    join(&f.s[1], "a");
    join(&f.s[1], "muted");
    join(&f.s[2], "b");
    struct rlog l = {0};
    const char *a[] = {"a"}, *ab[] = {"a", "b"}, *muted[] = {"muted"};
    size_t one[] = {1, 1}, five[] = {5};
    struct adapter_target to_a = {.rooms = a, .room_lens = one, .n_rooms = 1, .except = &f.s[0]};
    struct adapter_target to_ab = {.rooms = ab, .room_lens = one, .n_rooms = 2, .except_rooms = muted,
                                   .except_room_lens = five, .n_except_rooms = 1};
    struct adapter_target everyone = {0};
    CHECK_INT(0, rlog_append(&l, 1, "0000000000000001", "[\"x\"]", 5, NULL, &to_a));
    CHECK_INT(0, rlog_append(&l, 1, "0000000000000002", "[\"x\"]", 5, NULL, &to_ab));
    CHECK_INT(0, rlog_append(&l, 1, "0000000000000003", "[\"x\"]", 5, NULL, &everyone));
    CHECK_INT(0, rlog_append(&l, 1, "0000000000000004", "[\"x\"]", 5, f.s[2].sid, NULL));
    int want[4][3] = {
        {0, 1, 0}, /* room a, except its sender s0 */
        {1, 0, 1}, /* rooms a and b, except the members of muted (s1) */
        {1, 1, 1}, /* the whole namespace */
        {0, 0, 1}, /* to s2 alone */
    };
    for (size_t e = 0; e < 4; e++)
        for (int i = 0; i < 3; i++) CHECK_INT(want[e][i], rlog_targets(rlog_at(&l, e), &f.s[i]));
    /* The room names were copied: the entry does not hold the caller's. */
    CHECK_MEM("muted", rlog_at(&l, 1)->rooms[2].p, rlog_at(&l, 1)->rooms[2].len);
    rlog_free(&l);
    fixture_free(&f);
}

int main(void) {
    RUN(the_offset_goes_last_in_the_event_array);
    RUN(offsets_are_found_across_ring_growth_and_pruning);
    RUN(the_log_keeps_at_most_its_cap_of_entries);
    RUN(an_entry_targets_its_socket_or_its_rooms_less_the_excepted);
    return check_finish("test_recovery");
}
