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

int room_has(const struct room_membership *m, const struct room *r) {
    for (uint32_t i = 0; i < m->n; i++)
        if (m->slots[i].room == r) return 1;
    return 0;
}

static void room_free(struct hmap *rooms, struct room *r) {
    hmap_del(rooms, r->name, r->name_len);
    hmap_free(&r->users);
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
        (m->n == m->cap && grow((void **)&m->slots, &m->cap, sizeof *m->slots) != 0))
        goto oom;
    struct room_user *ru = hmap_get(&r->users, m->user->id, strlen(m->user->id));
    if (!ru) {
        ru = malloc(sizeof *ru);
        if (!ru || hmap_put(&r->users, m->user->id, strlen(m->user->id), ru) != 0) {
            free(ru);
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
    if (mi != r->n_members) {
        r->members[mi] = last;
        last.m->slots[last.slot_idx].member_idx = mi;
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
    for (uint32_t k = 0; k < m->n; k++) {
        if (m->slots[k].room == r) {
            remove_slot(rooms, m, k, user_left);
            return 1;
        }
    }
    return 0;
}

void room_leave_all(struct hmap *rooms, struct room_membership *m) {
    while (m->n) remove_slot(rooms, m, m->n - 1, NULL);
    free(m->slots);
    m->slots = NULL;
    m->cap = 0;
}
