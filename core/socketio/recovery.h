/* recovery: the packet log of Socket.IO connection state recovery. Each
 * namespace keeps, in memory, the events it sent with an offset (the
 * server's increasing ids, so the log is sorted by offset): who they went
 * to (a socket, or rooms less except rooms and an excepted socket) and the
 * event array with its offset, as it went out. A client that reconnects
 * within the window names the last offset it got; what came after it and
 * targets its socket is sent again. Entries older than the window are
 * pruned. Pure bookkeeping: sio.c decides what is logged and when.
 *
 * Owns: struct rlog and its entries. May call: adapter (membership), base. */
#ifndef SPACE_RECOVERY_H
#define SPACE_RECOVERY_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "ids.h"
#include "sbuf.h"

struct adapter_target;
struct sio_socket;

struct rlog_entry {
    uint64_t at_ms;                   /* loop time it was sent */
    char offset[IDS_ID_LEN + 1];
    char direct_sid[IDS_SID_LEN + 1]; /* sent to this socket only; "" for a broadcast */
    char except_sid[IDS_SID_LEN + 1]; /* a broadcast's excepted socket; "" */
    const char *json;                 /* the event array, its offset last (bytes in this allocation) */
    size_t len;
    size_t n_rooms, n_except;         /* n_rooms 0: the whole namespace */
    struct slice rooms[];             /* target rooms, then except rooms (bytes in this allocation) */
};

/* At most this many entries per namespace, whatever the window: the oldest
 * goes first (a client whose offset went gets a fresh connection), so a
 * burst cannot make the log take the memory of the process. */
#define RLOG_MAX_ENTRIES (1u << 18)

/* A ring of entries, oldest first. */
struct rlog {
    struct rlog_entry **ring;
    size_t head, n, cap;
};

void rlog_free(struct rlog *l);
/* Appends an event array (its offset already last). direct_sid: a send to
 * one socket, else to: the broadcast's target. Returns 0, or -1 (out of memory). */
int rlog_append(struct rlog *l, uint64_t now_ms, const char *offset, const char *json, size_t len,
                const char *direct_sid, const struct adapter_target *to);
/* Drops the entries sent before before_ms. */
void rlog_prune(struct rlog *l, uint64_t before_ms);
/* The i-th entry, oldest first (i < l->n). */
static inline const struct rlog_entry *rlog_at(const struct rlog *l, size_t i) {
    return l->ring[(l->head + i) % l->cap];
}
/* The index just after the entry with that offset; -1 when it is not in the log. */
long rlog_after(const struct rlog *l, const char *offset, size_t len);
/* Whether the entry went to s (its rooms as they are now). */
int rlog_targets(const struct rlog_entry *e, const struct sio_socket *s);
/* Writes the event array json with ,"offset" as its last element into out. 0, or -1. */
int rlog_with_offset(struct sbuf *out, const char *json, size_t len, const char *offset);

#endif
