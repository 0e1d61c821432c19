/* ban: users the admin API banned for a time (POST /api/users/{id}/ban).
 * A banned user's connects are refused until the ban expires; the table
 * lives in the Socket.IO hub and expired entries are dropped as they are met. */
#ifndef SPACE_BAN_H
#define SPACE_BAN_H

#include <stddef.h>
#include <stdint.h>

#include "hmap.h"

#define BAN_REASON_MAX 256

struct ban {
    uint64_t until_ms;          /* wall clock */
    uint64_t since_ms;
    char reason[BAN_REASON_MAX];
    size_t id_len;
    char id[];                  /* the user id (the map's key) */
};

/* Bans id until until_ms (replacing an earlier ban); 0, or -1 on OOM. */
int ban_set(struct hmap *bans, const char *id, size_t len, uint64_t now_ms, uint64_t until_ms, const char *reason);
/* The ban of id in force at now_ms, or NULL (an expired one is dropped). */
const struct ban *ban_find(struct hmap *bans, const char *id, size_t len, uint64_t now_ms);
/* Lifts a ban; 1 when one was in force. */
int ban_lift(struct hmap *bans, const char *id, size_t len, uint64_t now_ms);
/* Drops the expired bans (before listing). */
void ban_prune(struct hmap *bans, uint64_t now_ms);
void ban_free_all(struct hmap *bans);

#endif
