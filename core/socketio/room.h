/* room: rooms of one namespace, indexed both ways. A room keeps its
 * members (an array; leaving swaps the last member into the hole) and a
 * count of connections per user, so that distinct users are known without
 * a scan; a member keeps its rooms (struct room_membership, embedded in the
 * socket), so that join, leave and leave-all cost O(1) per room. An empty
 * room is deleted at once, so nobody can fill memory with rooms.
 * Knows nothing of Socket.IO or Lua: members are opaque owners. */
#ifndef SPACE_ROOM_H
#define SPACE_ROOM_H

#include <stddef.h>
#include <stdint.h>

#include "hmap.h"

struct user;
struct room;

struct room_slot {
    struct room *room;
    uint32_t member_idx; /* this member's index in room->members */
};

/* A member's side: embedded in whatever joins rooms. */
struct room_membership {
    struct room_slot *slots;
    uint32_t n, cap;
    struct user *user; /* for distinct-user counts; set before the first join */
    void *owner;       /* what room->members[i].owner gives back */
    const char *key;   /* unique among members, stable while in rooms (the socket id) */
    size_t key_len;
};

struct room_member {
    struct room_membership *m;
    uint32_t slot_idx; /* index in m->slots */
};

struct room_user {
    struct user *user;
    uint32_t conns; /* members of this room that are this user */
};

struct room {
    struct room_member *members;
    uint32_t n_members, cap_members;
    struct hmap users;  /* user id -> struct room_user */
    struct hmap index;  /* member key -> position in members, plus one */
    size_t name_len;
    char name[];        /* NUL-terminated; the rooms map's key */
};

/* Joins m to the room name in rooms (created when absent). Returns 1 when
 * joined, 0 when already a member, -1 on OOM. *user_is_new says whether
 * m's user had no member in the room before. */
int room_join(struct hmap *rooms, struct room_membership *m, const char *name, size_t len,
              struct room **out, int *user_is_new);
/* Leaves the room; returns 1 when m was a member, else 0. *user_left says
 * whether that was the user's last member in the room. The room may be
 * freed (when it became empty): don't use r afterwards. */
int room_leave(struct hmap *rooms, struct room_membership *m, struct room *r, int *user_left);
/* Leaves every room, silently. */
void room_leave_all(struct hmap *rooms, struct room_membership *m);
static inline struct room *room_find(struct hmap *rooms, const char *name, size_t len) {
    return hmap_get(rooms, name, len);
}
/* 1 when m is a member of r. */
int room_has(const struct room_membership *m, const struct room *r);

#endif
