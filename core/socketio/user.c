#include "user.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "hmap.h"

static char *dup_n(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

struct user *user_acquire(struct hmap *users, const char *id, size_t id_len, const char *name,
                          size_t name_len) {
    struct user *u = hmap_get(users, id, id_len);
    if (u) {
        if (name && (strlen(u->name) != name_len || memcmp(u->name, name, name_len) != 0)) {
            char *n = dup_n(name, name_len);
            if (!n) return NULL;
            free(u->name);
            u->name = n;
        }
        u->refs++;
        return u;
    }
    u = calloc(1, sizeof *u);
    if (!u) return NULL;
    u->id = dup_n(id, id_len);
    u->name = dup_n(name ? name : id, name ? name_len : id_len);
    if (!u->id || !u->name || hmap_put(users, u->id, id_len, u) != 0) {
        free(u->id);
        free(u->name);
        free(u);
        return NULL;
    }
    u->refs = 1;
    u->since_ms = clock_wall_ms();
    return u;
}

void user_release(struct hmap *users, struct user *u) {
    if (!u || --u->refs > 0) return;
    hmap_del(users, u->id, strlen(u->id));
    free(u->id);
    free(u->name);
    free(u);
}
