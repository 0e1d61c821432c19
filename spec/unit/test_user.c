/* Unit tests for core/user.h: the registry of connected users, refcounted
 * by sockets, over a map of its own: no server, no hub. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clock.h"
#include "hmap.h"
#include "user.h"

struct registry {
    struct hmap users;
};

static struct registry *new_server(void) { return calloc(1, sizeof(struct registry)); }

static void free_server(struct registry *srv) {
    hmap_free(&srv->users);
    free(srv);
}

static struct user *acquire(struct registry *srv, const char *id, const char *name) {
    return user_acquire(&srv->users, id, strlen(id), name, name ? strlen(name) : 0);
}

TEST(acquire_creates_a_user_with_one_reference) {
    struct registry *srv = new_server();
    uint64_t before = clock_wall_ms();
    struct user *u = acquire(srv, "sub-1", "Alice");
    uint64_t after = clock_wall_ms();
    CHECK(u != NULL);
    if (!u) return;
    CHECK_STR("sub-1", u->id);
    CHECK_STR("Alice", u->name);
    CHECK_UINT(1, u->refs);
    CHECK(u->since_ms >= before && u->since_ms <= after);
    CHECK(before > UINT64_C(1600000000000)); /* wall clock, in ms */
    CHECK_PTR(u, hmap_get(&srv->users, "sub-1", 5));
    CHECK_UINT(1, srv->users.count);
    user_release(&srv->users, u);
    free_server(srv);
}

TEST(acquire_copies_id_and_name_bytes) {
    struct registry *srv = new_server();
    char id[] = "abcdef", name[] = "Bobby";
    struct user *u = user_acquire(&srv->users, id, 3, name, 3); /* not NUL-terminated at len */
    CHECK_STR("abc", u->id);
    CHECK_STR("Bob", u->name);
    id[0] = 'X';
    name[0] = 'X';
    CHECK_STR("abc", u->id);
    CHECK_STR("Bob", u->name);
    CHECK_PTR(u, hmap_get(&srv->users, "abc", 3));
    user_release(&srv->users, u);
    free_server(srv);
}

TEST(name_defaults_to_the_id) {
    struct registry *srv = new_server();
    struct user *u = acquire(srv, "guest-42", NULL);
    CHECK_STR("guest-42", u->name);
    user_release(&srv->users, u);
    free_server(srv);
}

TEST(acquire_of_a_known_id_shares_the_user) {
    struct registry *srv = new_server();
    struct user *a = acquire(srv, "u", "Ann");
    uint64_t since = a->since_ms;
    struct user *b = acquire(srv, "u", "Ann");
    CHECK_PTR(a, b);
    CHECK_UINT(2, a->refs);
    CHECK_UINT(1, srv->users.count);
    CHECK_UINT(since, b->since_ms);
    user_release(&srv->users, a);
    CHECK_UINT(1, b->refs);
    CHECK_PTR(b, hmap_get(&srv->users, "u", 1));
    user_release(&srv->users, b);
    CHECK(hmap_get(&srv->users, "u", 1) == NULL);
    CHECK_UINT(0, srv->users.count);
    free_server(srv);
}

TEST(acquire_with_a_new_name_renames_and_null_keeps_it) {
    struct registry *srv = new_server();
    struct user *u = acquire(srv, "u", "Old");
    acquire(srv, "u", "New name");
    CHECK_STR("New name", u->name);
    acquire(srv, "u", NULL);
    CHECK_STR("New name", u->name);
    acquire(srv, "u", "New");                 /* a prefix is a different name */
    CHECK_STR("New", u->name);
    CHECK_UINT(4, u->refs);
    for (int i = 0; i < 4; i++) user_release(&srv->users, u);
    CHECK_UINT(0, srv->users.count);
    free_server(srv);
}

TEST(release_of_null_is_a_no_op) {
    struct registry *srv = new_server();
    user_release(&srv->users, NULL);
    CHECK_UINT(0, srv->users.count);
    free_server(srv);
}

TEST(many_users_come_and_go) {
    enum { N = 500 };
    struct registry *srv = new_server();
    static struct user *held[N][3];
    static int nheld[N];
    char id[16];
    uint64_t x = 0x1234567887654321ull;
    unsigned bad = 0;
    for (int op = 0; op < 100000; op++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int k = (int)((x >> 16) % N);
        snprintf(id, sizeof id, "id%d", k);
        if ((x & 1) && nheld[k] < 3) {
            struct user *u = acquire(srv, id, NULL);
            if (!u || (nheld[k] && u != held[k][0])) bad++;
            held[k][nheld[k]++] = u;
            if (u && u->refs != (uint32_t)nheld[k]) bad++;
        } else if (nheld[k] > 0) {
            user_release(&srv->users, held[k][--nheld[k]]);
        }
        if (op % 1000 == 0) {
            size_t live = 0;
            for (int i = 0; i < N; i++) {
                snprintf(id, sizeof id, "id%d", i);
                struct user *u = hmap_get(&srv->users, id, strlen(id));
                live += nheld[i] > 0;
                if (nheld[i] ? u != held[i][0] || u->refs != (uint32_t)nheld[i] : u != NULL) bad++;
            }
            if (live != srv->users.count) bad++;
        }
    }
    CHECK_UINT(0, bad);
    for (int i = 0; i < N; i++)
        while (nheld[i] > 0) user_release(&srv->users, held[i][--nheld[i]]);
    CHECK_UINT(0, srv->users.count);
    free_server(srv);
}

int main(void) {
    RUN(acquire_creates_a_user_with_one_reference);
    RUN(acquire_copies_id_and_name_bytes);
    RUN(name_defaults_to_the_id);
    RUN(acquire_of_a_known_id_shares_the_user);
    RUN(acquire_with_a_new_name_renames_and_null_keeps_it);
    RUN(release_of_null_is_a_no_op);
    RUN(many_users_come_and_go);
    return check_finish("test_user");
}
