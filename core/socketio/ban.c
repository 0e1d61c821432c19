#include "ban.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ban_set(struct hmap *bans, const char *id, size_t len, uint64_t now_ms, uint64_t until_ms, const char *reason) {
    struct ban *b = calloc(1, sizeof *b + len + 1);
    if (!b) return -1;
    b->until_ms = until_ms;
    b->since_ms = now_ms;
    snprintf(b->reason, sizeof b->reason, "%s", reason ? reason : "");
    b->id_len = len;
    memcpy(b->id, id, len);
    free(hmap_del(bans, id, len)); /* the old entry's key is its own: remove before it goes */
    if (hmap_put(bans, b->id, len, b) != 0) {
        free(b);
        return -1;
    }
    return 0;
}

const struct ban *ban_find(struct hmap *bans, const char *id, size_t len, uint64_t now_ms) {
    struct ban *b = hmap_get(bans, id, len);
    if (b && b->until_ms <= now_ms) {
        free(hmap_del(bans, id, len));
        b = NULL;
    }
    return b;
}

int ban_lift(struct hmap *bans, const char *id, size_t len, uint64_t now_ms) {
    struct ban *b = hmap_del(bans, id, len);
    int active = b && b->until_ms > now_ms;
    free(b);
    return active;
}

void ban_prune(struct hmap *bans, uint64_t now_ms) {
    /* No deleting while iterating: collect the expired first (few). */
    for (;;) {
        struct hmap_entry *e;
        struct ban *expired = NULL;
        for (size_t i = 0; hmap_next(bans, &i, &e);)
            if (((struct ban *)e->value)->until_ms <= now_ms) {
                expired = e->value;
                break;
            }
        if (!expired) return;
        free(hmap_del(bans, expired->id, expired->id_len));
    }
}

void ban_free_all(struct hmap *bans) {
    struct hmap_entry *e;
    for (size_t i = 0; hmap_next(bans, &i, &e);) free(e->value);
    hmap_free(bans);
}
