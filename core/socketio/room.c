#include "room.h"

#include <stdlib.h>
#include <string.h>

#include "user.h"

static int grow(void **arr, uint32_t *cap, size_t elem) {
    uint32_t n = *cap ? *cap * 2 : 4;
    void *p = realloc(*arr, n * elem);
    if (!p) return -1;
    *arr = p;
    *cap = n;
    return 0;
}

/* The member's position in r, or -1. */
static long position(const struct room *r, const struct room_membership *m) {
    uintptr_t v = (uintptr_t)hmap_get(&r->index, m->key, m->key_len);
    return v ? (long)v - 1 : -1;
}

static int set_position(struct room *r, const struct room_membership *m, uint32_t i) {
    return hmap_put(&r->index, m->key, m->key_len, (void *)(uintptr_t)(i + 1));
}

int room_has(const struct room_membership *m, const struct room *r) { return position(r, m) >= 0; }

static void room_free(struct hmap *rooms, struct room *r) {
    hmap_del(rooms, r->name, r->name_len);
    hmap_free(&r->users);
    hmap_free(&r->index);
    free(r->members);
    free(r);
}

int room_join(struct hmap *rooms, struct room_membership *m, const char *name, size_t len,
              struct room **out, int *user_is_new) {
    struct room *r = room_find(rooms, name, len);
    *user_is_new = 0;
    if (!r) {
        r = calloc(1, sizeof *r + len + 1);
        if (!r) return -1;
        memcpy(r->name, name, len);
        r->name_len = len;
        if (hmap_put(rooms, r->name, len, r) != 0) {
            free(r);
            return -1;
        }
    } else if (room_has(m, r)) {
        *out = r;
        return 0;
    }
    *out = r;
    if ((r->n_members == r->cap_members &&
         grow((void **)&r->members, &r->cap_members, sizeof *r->members) != 0) ||
        (m->n == m->cap && grow((void **)&m->slots, &m->cap, sizeof *m->slots) != 0) ||
        set_position(r, m, r->n_members) != 0)
        goto oom;
    struct room_user *ru = hmap_get(&r->users, m->user->id, strlen(m->user->id));
    if (!ru) {
        ru = malloc(sizeof *ru);
        if (!ru || hmap_put(&r->users, m->user->id, strlen(m->user->id), ru) != 0) {
            free(ru);
            hmap_del(&r->index, m->key, m->key_len);
            goto oom;
        }
        ru->user = m->user;
        ru->conns = 0;
        *user_is_new = 1;
    }
    ru->conns++;
    r->members[r->n_members] = (struct room_member){m, m->n};
    m->slots[m->n++] = (struct room_slot){r, r->n_members++};
    return 1;
oom:
    if (r->n_members == 0) room_free(rooms, r);
    return -1;
}

static void remove_slot(struct hmap *rooms, struct room_membership *m, uint32_t k, int *user_left) {
    struct room *r = m->slots[k].room;
    uint32_t mi = m->slots[k].member_idx;
    /* The room: move its last member into the hole. */
    struct room_member last = r->members[--r->n_members];
    hmap_del(&r->index, m->key, m->key_len);
    if (mi != r->n_members) {
        r->members[mi] = last;
        last.m->slots[last.slot_idx].member_idx = mi;
        set_position(r, last.m, mi); /* replaces an existing entry: cannot fail */
    }
    /* The member: move its last slot into the hole. */
    struct room_slot lslot = m->slots[--m->n];
    if (k != m->n) {
        m->slots[k] = lslot;
        lslot.room->members[lslot.member_idx].slot_idx = k;
    }
    struct room_user *ru = hmap_get(&r->users, m->user->id, strlen(m->user->id));
    if (ru && --ru->conns == 0) {
        hmap_del(&r->users, m->user->id, strlen(m->user->id));
        free(ru);
        if (user_left) *user_left = 1;
    }
    if (r->n_members == 0) room_free(rooms, r);
}

int room_leave(struct hmap *rooms, struct room_membership *m, struct room *r, int *user_left) {
    *user_left = 0;
    long i = position(r, m);
    if (i < 0) return 0;
    remove_slot(rooms, m, r->members[i].slot_idx, user_left);
    return 1;
}

void room_leave_all(struct hmap *rooms, struct room_membership *m) {
    while (m->n) remove_slot(rooms, m, m->n - 1, NULL);
    free(m->slots);
    m->slots = NULL;
    m->cap = 0;
}
