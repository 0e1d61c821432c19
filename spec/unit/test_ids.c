/* Unit tests for core/base/ids.h: ids are 16 lowercase hex digits, strictly
 * increasing as strings, carry the process's worker index and node tag (so
 * two workers sharing one history database never make the same id, even in
 * the same millisecond), and stay increasing when the clock stands still or
 * when last_id was raised above the clock (a restart seeded from storage). */
#include <stdlib.h>

#include "check.h"
#include "ids.h"

#define MANY 20000

TEST(ids_are_fixed_width_hex_and_increase_as_strings) {
    struct ids ids = {0};
    ids_init(&ids);
    char prev[IDS_ID_LEN + 1] = "", id[IDS_ID_LEN + 1];
    int ordered = 1, hex = 1;
    for (int i = 0; i < MANY; i++) { /* more than 4096: several borrow ahead */
        ids_new_id(&ids, id);
        CHECK_UINT(IDS_ID_LEN, strlen(id));
        for (int k = 0; k < IDS_ID_LEN; k++)
            if (!strchr("0123456789abcdef", id[k])) hex = 0;
        if (strcmp(prev, id) >= 0) ordered = 0;
        memcpy(prev, id, sizeof id);
    }
    CHECK(hex);
    CHECK(ordered);
}

TEST(two_workers_never_make_the_same_id) {
    struct ids a = {0}, b = {0};
    a.worker = 0;
    b.worker = 1; /* same node tag: the worker bits alone must tell them apart */
    static char seen_a[MANY][IDS_ID_LEN + 1];
    int same = 0;
    for (int i = 0; i < MANY; i++) ids_new_id(&a, seen_a[i]);
    for (int i = 0; i < MANY; i++) {
        char id[IDS_ID_LEN + 1];
        ids_new_id(&b, id);
        /* ids of one process increase, so a match can only be at or near the same position */
        for (int k = i > 8 ? i - 8 : 0; k < MANY && k < i + 8; k++)
            if (!strcmp(seen_a[k], id)) same = 1;
    }
    CHECK(!same);
    CHECK((a.last_id & 1023u) == 0);
    CHECK((b.last_id & 1023u) == 1);
}

TEST(a_seeded_last_id_keeps_ids_above_it) {
    struct ids ids = {0};
    ids.worker = 5;
    uint64_t future = (uint64_t)0x7f << 56; /* far above today's clock: a clock that went back */
    ids.last_id = future;
    char id[IDS_ID_LEN + 1];
    ids_new_id(&ids, id);
    CHECK(ids.last_id > future);
    CHECK_UINT(5, ids.last_id & 63u);
    CHECK_STR("7f00000000000405", id);
}

int main(void) {
    RUN(ids_are_fixed_width_hex_and_increase_as_strings);
    RUN(two_workers_never_make_the_same_id);
    RUN(a_seeded_last_id_keeps_ids_above_it);
    return check_finish("test_ids");
}
