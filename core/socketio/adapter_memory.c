/* The in-memory adapter: a namespace's rooms in this process (room.c), a
 * socket's side of them embedded in the socket (sio_socket.rooms). */
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "room.h"
#include "user.h"

struct memory_adapter {
    struct adapter base;
    struct hmap rooms; /* name -> struct room */
};

static struct hmap *rooms_of(struct adapter *a) { return &((struct memory_adapter *)a)->rooms; }

static int join(struct adapter *a, struct sio_socket *s, const char *room, size_t len, int *user_is_new) {
    struct room *r;
    return room_join(rooms_of(a), &s->rooms, room, len, &r, user_is_new);
}

static int leave(struct adapter *a, struct sio_socket *s, const char *room, size_t len, int *user_left) {
    struct room *r = room_find(rooms_of(a), room, len);
    *user_left = 0;
    return r ? room_leave(rooms_of(a), &s->rooms, r, user_left) : 0;
}

static void leave_all(struct adapter *a, struct sio_socket *s) { room_leave_all(rooms_of(a), &s->rooms); }

static int has(struct adapter *a, const struct sio_socket *s, const char *room, size_t len) {
    struct room *r = room_find(rooms_of(a), room, len);
    return r && room_has(&s->rooms, r);
}

/* A socket in several of the target's rooms gets the packet once: from the first of them. */
static int in_earlier_room(struct room *const *found, size_t k, const struct sio_socket *s) {
    for (size_t j = 0; j < k; j++)
        if (found[j] && room_has(&s->rooms, found[j])) return 1;
    return 0;
}

#define MAX_TARGET_ROOMS 64

/* Whether s is in any of the target's except rooms. */
/* The target's except rooms that exist here, looked up once per broadcast
 * (a peer's broadcast names its sender's sid, a room no node has). */
struct except_rooms {
    struct room *r[MAX_TARGET_ROOMS];
    size_t n;
};

static void find_except(struct adapter *a, const struct adapter_target *to, struct except_rooms *ex) {
    ex->n = 0;
    for (size_t j = 0; j < to->n_except_rooms && ex->n < MAX_TARGET_ROOMS; j++) {
        struct room *r = room_find(rooms_of(a), to->except_rooms[j], to->except_room_lens[j]);
        if (r) ex->r[ex->n++] = r;
    }
}

static int excepted(const struct except_rooms *ex, const struct sio_socket *s) {
    for (size_t j = 0; j < ex->n; j++)
        if (room_has(&s->rooms, ex->r[j])) return 1;
    return 0;
}

static size_t broadcast(struct adapter *a, const struct adapter_target *to, const struct sio_out *o) {
    struct sio_fanout f;
    struct except_rooms ex;
    find_except(a, to, &ex);
    sio_fanout_begin(&f, a->nsp, o, to);
    if (to->n_rooms == 0) {
        /* Every socket of the namespace: found through the users, who list their sockets. */
        struct hmap_entry *e;
        for (size_t i = 0; hmap_next(&a->nsp->hub->users, &i, &e);)
            for (struct sio_socket *s = ((struct user *)e->value)->sockets; s; s = s->user_next)
                if (s->nsp == a->nsp && s != to->except && !excepted(&ex, s)) sio_fanout_send(&f, s);
        return sio_fanout_end(&f);
    }
    struct room *found[MAX_TARGET_ROOMS];
    size_t n = to->n_rooms < MAX_TARGET_ROOMS ? to->n_rooms : MAX_TARGET_ROOMS;
    for (size_t k = 0; k < n; k++) {
        struct room *r = found[k] = room_find(rooms_of(a), to->rooms[k], to->room_lens[k]);
        if (!r) continue;
        if (k == 0 && ex.n == 0) {
            sio_fanout_room(&f, r, to->except);
            continue;
        }
        for (uint32_t i = 0; i < r->n_members; i++) {
            struct sio_socket *s = r->members[i].m->owner;
            if (s != to->except && !in_earlier_room(found, k, s) && !excepted(&ex, s)) sio_fanout_send(&f, s);
        }
    }
    return sio_fanout_end(&f);
}

static void select_sockets(struct adapter *a, const struct adapter_target *to, adapter_socket_fn each, void *ud) {
    struct except_rooms ex;
    find_except(a, to, &ex);
    if (to->n_rooms == 0) {
        struct hmap_entry *e;
        for (size_t i = 0; hmap_next(&a->nsp->hub->users, &i, &e);)
            for (struct sio_socket *s = ((struct user *)e->value)->sockets; s; s = s->user_next)
                if (s->nsp == a->nsp && !s->closed && s != to->except && !excepted(&ex, s)) each(ud, s);
        return;
    }
    struct room *found[MAX_TARGET_ROOMS];
    size_t n = to->n_rooms < MAX_TARGET_ROOMS ? to->n_rooms : MAX_TARGET_ROOMS;
    for (size_t k = 0; k < n; k++) {
        struct room *r = found[k] = room_find(rooms_of(a), to->rooms[k], to->room_lens[k]);
        if (!r) continue;
        for (uint32_t i = 0; i < r->n_members; i++) {
            struct sio_socket *s = r->members[i].m->owner;
            if (!s->closed && s != to->except && !in_earlier_room(found, k, s) && !excepted(&ex, s)) each(ud, s);
        }
    }
}

static void room_size(struct adapter *a, const char *room, size_t len, size_t *users, size_t *conns) {
    struct room *r = room_find(rooms_of(a), room, len);
    *users = r ? r->users.count : 0;
    *conns = r ? r->n_members : 0;
}

static int room_has_user(struct adapter *a, const char *room, size_t len, const char *id, size_t id_len) {
    struct room *r = room_find(rooms_of(a), room, len);
    return r && hmap_get(&r->users, id, id_len) != NULL;
}

static uint32_t user_conns(struct adapter *a, const char *room, size_t len, const char *id, size_t id_len) {
    struct room *r = room_find(rooms_of(a), room, len);
    const struct room_user *ru = r ? hmap_get(&r->users, id, id_len) : NULL;
    return ru ? ru->conns : 0;
}

static void room_users(struct adapter *a, const char *room, size_t len, adapter_user_fn each, void *ud) {
    struct room *r = room_find(rooms_of(a), room, len);
    if (!r) return;
    struct hmap_entry *e;
    for (size_t i = 0; hmap_next(&r->users, &i, &e);) each(ud, ((const struct room_user *)e->value)->user);
}

static void room_sockets(struct adapter *a, const char *room, size_t len, adapter_socket_fn each, void *ud) {
    struct room *r = room_find(rooms_of(a), room, len);
    if (!r) return;
    for (uint32_t i = 0; i < r->n_members; i++) each(ud, r->members[i].m->owner);
}

static struct adapter_room listed(const struct room *r) {
    return (struct adapter_room){r->name, r->name_len, r->users.count, r->n_members};
}

static void rooms(struct adapter *a, adapter_room_fn each, void *ud) {
    struct hmap_entry *e;
    for (size_t i = 0; hmap_next(rooms_of(a), &i, &e);) {
        struct adapter_room r = listed(e->value);
        if (each(ud, &r)) return;
    }
}

static size_t room_count(struct adapter *a) { return rooms_of(a)->count; }

static void socket_rooms(struct adapter *a, const struct sio_socket *s, adapter_room_fn each, void *ud) {
    (void)a;
    for (uint32_t i = 0; i < s->rooms.n; i++) {
        struct adapter_room r = listed(s->rooms.slots[i].room);
        if (each(ud, &r)) return;
    }
}

static void adapter_free(struct adapter *a) {
    hmap_free(rooms_of(a)); /* empty: every socket left before */
    free(a);
}

static const struct adapter_ops memory_ops = {
    .join = join, .leave = leave, .leave_all = leave_all, .has = has, .broadcast = broadcast, .select = select_sockets,
    .room_size = room_size, .room_has_user = room_has_user, .user_conns = user_conns, .room_users = room_users,
    .room_sockets = room_sockets, .rooms = rooms, .room_count = room_count, .socket_rooms = socket_rooms,
    .free = adapter_free,
};

struct adapter *adapter_memory_new(struct nsp *nsp, void *ud) {
    (void)ud;
    struct memory_adapter *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->base.ops = &memory_ops;
    m->base.nsp = nsp;
    return &m->base;
}

size_t adapter_total_rooms(struct sio_hub *hub) {
    size_t n = 0;
    struct hmap_entry *e;
    for (size_t i = 0; hmap_next(&hub->namespaces, &i, &e);) n += adapter_room_count(e->value);
    return n;
}
