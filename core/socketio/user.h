/* user: the registry of connected users. A user is shared by all its
 * sockets (one per browser tab) and lives while one of them references it. */
#ifndef SPACE_USER_H
#define SPACE_USER_H

#include <stddef.h>
#include <stdint.h>

struct hmap;
struct sio_socket;

struct user {
    char *id;            /* stable id (from the token's sub, or derived in dev mode) */
    char *name;          /* display name */
    uint32_t refs;       /* sockets of this user */
    uint64_t since_ms;   /* wall clock of the first connection */
    struct sio_socket *sockets; /* this user's sockets (sio.c links them) */
};

/* The user with this id in users (id -> struct user), created when absent (name updated when given);
 * takes a reference. NULL on OOM. */
struct user *user_acquire(struct hmap *users, const char *id, size_t id_len, const char *name,
                          size_t name_len);
/* Drops a reference; the last one removes the user. */
void user_release(struct hmap *users, struct user *u);

#endif
