/* Unit tests for core/hmap.h: open addressing with linear probing and
 * backward-shift deletion. The randomized tests compare the map against a
 * plain reference array and check, after every delete, that every remaining
 * key is still found (a broken backward shift strands keys behind a hole). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hmap.h"

/* The map's hash (FNV-1a), to build keys that collide on purpose. */
static uint32_t fnv1a(const char *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 16777619u;
    return h;
}

/* Every entry must be reachable from its home slot without crossing an
 * empty slot, and count must match. Returns the number of problems. */
static unsigned check_invariants(const struct hmap *m) {
    unsigned problems = 0;
    size_t used = 0;
    if (m->cap == 0) return m->count != 0;
    if (m->cap & (m->cap - 1)) problems++;
    size_t mask = m->cap - 1;
    for (size_t i = 0; i < m->cap; i++) {
        const struct hmap_entry *e = &m->slots[i];
        if (!e->key) continue;
        used++;
        if (e->hash != fnv1a(e->key, e->keylen)) problems++;
        for (size_t j = e->hash & mask; j != i; j = (j + 1) & mask)
            if (!m->slots[j].key) {
                problems++;
                break;
            }
    }
    if (used != m->count) problems++;
    if (m->count * 4 > m->cap * 3) problems++;
    return problems;
}

static void *val(uintptr_t v) { return (void *)v; }

TEST(empty_map_finds_nothing) {
    struct hmap m = {0};
    CHECK(hmap_get(&m, "a", 1) == NULL);
    CHECK(hmap_del(&m, "a", 1) == NULL);
    size_t i = 0;
    struct hmap_entry *e;
    CHECK_INT(0, hmap_next(&m, &i, &e));
    hmap_free(&m);
    CHECK_UINT(0, m.cap);
}

TEST(put_then_get_and_replace) {
    struct hmap m = {0};
    CHECK_INT(0, hmap_put(&m, "alpha", 5, val(1)));
    CHECK_INT(0, hmap_put(&m, "beta", 4, val(2)));
    CHECK_PTR(val(1), hmap_get(&m, "alpha", 5));
    CHECK_PTR(val(2), hmap_get(&m, "beta", 4));
    CHECK(hmap_get(&m, "alph", 4) == NULL);
    CHECK(hmap_get(&m, "alphab", 6) == NULL);
    CHECK_INT(0, hmap_put(&m, "alpha", 5, val(3)));
    CHECK_UINT(2, m.count);
    CHECK_PTR(val(3), hmap_get(&m, "alpha", 5));
    hmap_free(&m);
}

TEST(keys_compare_by_length_and_bytes) {
    struct hmap m = {0};
    static const char k[] = "ab\0cd";
    CHECK_INT(0, hmap_put(&m, k, 5, val(1)));
    CHECK_INT(0, hmap_put(&m, k, 2, val(2)));
    CHECK_INT(0, hmap_put(&m, k, 0, val(3))); /* the empty key */
    CHECK_UINT(3, m.count);
    CHECK_PTR(val(1), hmap_get(&m, "ab\0cd", 5));
    CHECK_PTR(val(2), hmap_get(&m, "ab", 2));
    CHECK_PTR(val(3), hmap_get(&m, "", 0));
    CHECK(hmap_get(&m, "ab\0c", 4) == NULL);
    CHECK_PTR(val(3), hmap_del(&m, "", 0));
    CHECK(hmap_get(&m, "", 0) == NULL);
    CHECK_UINT(2, m.count);
    hmap_free(&m);
}

TEST(del_returns_the_value_once) {
    struct hmap m = {0};
    CHECK_INT(0, hmap_put(&m, "k", 1, val(7)));
    CHECK_PTR(val(7), hmap_del(&m, "k", 1));
    CHECK(hmap_del(&m, "k", 1) == NULL);
    CHECK(hmap_get(&m, "k", 1) == NULL);
    CHECK_UINT(0, m.count);
    hmap_free(&m);
}

TEST(grows_at_three_quarters_load) {
    struct hmap m = {0};
    static char keys[64][8];
    for (int i = 0; i < 6; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        CHECK_INT(0, hmap_put(&m, keys[i], strlen(keys[i]), val((uintptr_t)i + 1)));
    }
    CHECK_UINT(8, m.cap);
    snprintf(keys[6], sizeof keys[6], "k6");
    CHECK_INT(0, hmap_put(&m, keys[6], 2, val(7)));
    CHECK_UINT(16, m.cap);
    for (int i = 0; i < 7; i++) CHECK_PTR(val((uintptr_t)i + 1), hmap_get(&m, keys[i], strlen(keys[i])));
    CHECK_UINT(0, check_invariants(&m));
    hmap_free(&m);
}

TEST(holds_many_keys) {
    enum { N = 50000 };
    struct hmap m = {0};
    char(*keys)[16] = malloc(N * sizeof *keys);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], 16, "user:%d", i);
        if (hmap_put(&m, keys[i], strlen(keys[i]), val((uintptr_t)i + 1)) != 0) CHECK(0);
    }
    CHECK_UINT(N, m.count);
    CHECK_UINT(0, check_invariants(&m));
    unsigned missing = 0;
    for (int i = 0; i < N; i++)
        if (hmap_get(&m, keys[i], strlen(keys[i])) != val((uintptr_t)i + 1)) missing++;
    CHECK_UINT(0, missing);
    for (int i = 0; i < N; i += 2)
        if (hmap_del(&m, keys[i], strlen(keys[i])) != val((uintptr_t)i + 1)) missing++;
    CHECK_UINT(0, missing);
    CHECK_UINT(N / 2, m.count);
    for (int i = 0; i < N; i++)
        if (hmap_get(&m, keys[i], strlen(keys[i])) != (i % 2 ? val((uintptr_t)i + 1) : NULL)) missing++;
    CHECK_UINT(0, missing);
    CHECK_UINT(0, check_invariants(&m));
    hmap_free(&m);
    free(keys);
}

TEST(next_visits_every_entry_once) {
    enum { N = 1000 };
    struct hmap m = {0};
    static char keys[N][8];
    static unsigned seen[N];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], 8, "%d", i);
        hmap_put(&m, keys[i], strlen(keys[i]), val((uintptr_t)i + 1));
    }
    size_t it = 0, visits = 0;
    struct hmap_entry *e;
    unsigned wrong = 0;
    while (hmap_next(&m, &it, &e)) {
        uintptr_t v = (uintptr_t)e->value;
        visits++;
        if (v < 1 || v > N || e->key != keys[v - 1]) wrong++;
        else seen[v - 1]++;
    }
    CHECK_UINT(N, visits);
    CHECK_UINT(0, wrong);
    unsigned not_once = 0;
    for (int i = 0; i < N; i++) not_once += seen[i] != 1;
    CHECK_UINT(0, not_once);
    hmap_free(&m);
}

/* Keys whose hash lands in home slot `home` of a table of `cap` slots.
 * Writes n NUL-terminated keys of up to 15 chars into out. */
static void colliding_keys(size_t cap, size_t home, char (*out)[16], size_t n, unsigned salt) {
    size_t found = 0;
    for (unsigned i = 0; found < n; i++) {
        char k[16];
        int len = snprintf(k, sizeof k, "c%u_%u", salt, i);
        if ((fnv1a(k, (size_t)len) & (cap - 1)) == home) memcpy(out[found++], k, (size_t)len + 1);
    }
}

TEST(delete_in_a_probe_chain_keeps_the_rest_reachable) {
    /* 40 keys with the same home in a 64-slot table: one long chain. Delete
     * them in every position (head, middle, tail) and look the rest up. */
    enum { N = 40 };
    static char keys[N][16];
    colliding_keys(64, 5, keys, N, 1);
    for (int victim = 0; victim < N; victim++) {
        struct hmap m = {0};
        for (int i = 0; i < N; i++) hmap_put(&m, keys[i], strlen(keys[i]), val((uintptr_t)i + 1));
        if (!CHECK_UINT(64, m.cap)) {
            hmap_free(&m);
            return;
        }
        CHECK_PTR(val((uintptr_t)victim + 1), hmap_del(&m, keys[victim], strlen(keys[victim])));
        unsigned lost = 0;
        for (int i = 0; i < N; i++)
            if (i != victim && hmap_get(&m, keys[i], strlen(keys[i])) != val((uintptr_t)i + 1)) lost++;
        CHECK_UINT(0, lost);
        CHECK_UINT(0, check_invariants(&m));
        hmap_free(&m);
    }
}

TEST(delete_in_a_chain_that_wraps_around_the_table_end) {
    /* Chains starting at slots 62 and 63 of 64 wrap to the start, mixed with
     * keys whose home is 0 and 1: the backward shift must not move those
     * before their home. */
    enum { PER = 8, N = 4 * PER };
    static char keys[N][16];
    colliding_keys(64, 62, keys, PER, 2);
    colliding_keys(64, 63, keys + PER, PER, 3);
    colliding_keys(64, 0, keys + 2 * PER, PER, 4);
    colliding_keys(64, 1, keys + 3 * PER, PER, 5);
    uint64_t x = 88172645463325252ull;
    for (int round = 0; round < 200; round++) {
        struct hmap m = {0};
        int order[N], present[N];
        for (int i = 0; i < N; i++) order[i] = i, present[i] = 1;
        for (int i = N - 1; i > 0; i--) { /* shuffle insertion order */
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            int j = (int)(x % (uint64_t)(i + 1)), t = order[i];
            order[i] = order[j], order[j] = t;
        }
        for (int i = 0; i < N; i++)
            hmap_put(&m, keys[order[i]], strlen(keys[order[i]]), val((uintptr_t)order[i] + 1));
        if (m.cap != 64) {
            CHECK_UINT(64, m.cap);
            hmap_free(&m);
            return;
        }
        unsigned lost = 0;
        for (int d = 0; d < N; d++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            int v = (int)(x % N);
            void *got = hmap_del(&m, keys[v], strlen(keys[v]));
            if (got != (present[v] ? val((uintptr_t)v + 1) : NULL)) lost++;
            present[v] = 0;
            for (int i = 0; i < N; i++)
                if (hmap_get(&m, keys[i], strlen(keys[i])) != (present[i] ? val((uintptr_t)i + 1) : NULL))
                    lost++;
            lost += check_invariants(&m);
        }
        if (!CHECK_UINT(0, lost)) {
            hmap_free(&m);
            return;
        }
        hmap_free(&m);
    }
}

/* Random puts, deletes and gets against a reference array; after every
 * delete every key is looked up. */
static void random_ops(char (*keys)[16], int n_keys, int ops, uint64_t seed, const char *file, int line) {
    struct hmap m = {0};
    uintptr_t *ref = calloc((size_t)n_keys, sizeof *ref); /* 0 = absent */
    uint64_t x = seed;
    unsigned bad = 0, count = 0;
    for (int op = 0; op < ops && bad == 0; op++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int k = (int)((x >> 8) % (uint64_t)n_keys);
        size_t kl = strlen(keys[k]);
        switch (x % 5) {
        case 0:
        case 1: { /* put (insert or replace) */
            uintptr_t v = (uintptr_t)op + 1;
            if (hmap_put(&m, keys[k], kl, val(v)) != 0) bad++;
            if (!ref[k]) count++;
            ref[k] = v;
            break;
        }
        case 2:
        case 3: { /* delete, then look everything up */
            void *got = hmap_del(&m, keys[k], kl);
            if (got != (ref[k] ? val(ref[k]) : NULL)) bad++;
            if (ref[k]) count--;
            ref[k] = 0;
            for (int i = 0; i < n_keys; i++)
                if (hmap_get(&m, keys[i], strlen(keys[i])) != (ref[i] ? val(ref[i]) : NULL)) {
                    if (bad < 3)
                        fprintf(stderr, "    op %d: after deleting %s, key %s is wrong\n", op, keys[k], keys[i]);
                    bad++;
                }
            break;
        }
        default: /* get */
            if (hmap_get(&m, keys[k], kl) != (ref[k] ? val(ref[k]) : NULL)) bad++;
        }
        if (m.count != count) bad++;
        if ((op & 255) == 0) bad += check_invariants(&m);
    }
    bad += check_invariants(&m);
    check_uint(0, bad, "random ops against the reference", file, line);
    hmap_free(&m);
    free(ref);
}

TEST(random_ops_match_a_reference_array) {
    enum { N = 300 };
    static char keys[N][16];
    for (int i = 0; i < N; i++) snprintf(keys[i], 16, "key-%d", i);
    random_ops(keys, N, 200000, 0x2545F4914F6CDD1Dull, __FILE__, __LINE__);
    random_ops(keys, 12, 100000, 0x9E3779B97F4A7C15ull, __FILE__, __LINE__); /* small, dense */
}

TEST(random_ops_on_heavily_colliding_keys_match_a_reference_array) {
    /* 48 keys sharing 3 home slots of a 64-slot table (and slot 63, which
     * wraps): long chains, many shifts. */
    enum { N = 48 };
    static char keys[N][16];
    colliding_keys(64, 7, keys, 16, 10);
    colliding_keys(64, 9, keys + 16, 16, 11);
    colliding_keys(64, 63, keys + 32, 16, 12);
    random_ops(keys, N, 200000, 0xD1B54A32D192ED03ull, __FILE__, __LINE__);
}

int main(void) {
    RUN(empty_map_finds_nothing);
    RUN(put_then_get_and_replace);
    RUN(keys_compare_by_length_and_bytes);
    RUN(del_returns_the_value_once);
    RUN(grows_at_three_quarters_load);
    RUN(holds_many_keys);
    RUN(next_visits_every_entry_once);
    RUN(delete_in_a_probe_chain_keeps_the_rest_reachable);
    RUN(delete_in_a_chain_that_wraps_around_the_table_end);
    RUN(random_ops_match_a_reference_array);
    RUN(random_ops_on_heavily_colliding_keys_match_a_reference_array);
    return check_finish("test_hmap");
}
