/* chunk: the body of a history chunk (history_sqlite.c), a room's messages
 * of one batch in one value, oldest first, each
 *
 *   OFFSET (16 hex digits) ' ' EVENT ' ' LENGTH (decimal) ':' DATA (LENGTH bytes)
 *
 * A pure codec: no SQLite, no libuv. The length prefix lets DATA hold any
 * byte; a body is only ever read back by this codec. */
#ifndef SPACE_CHUNK_H
#define SPACE_CHUNK_H

#include <stddef.h>

#include "history.h"
#include "sbuf.h"

#define CHUNK_EVENT_MAX 64 /* bytes of an event name */

/* Appends one message to b: 0, or -1 (out of memory, or an event name
 * longer than CHUNK_EVENT_MAX). */
int chunk_append(struct sbuf *b, const char offset[HISTORY_OFFSET_LEN + 1], const char *event, const char *data,
                 size_t data_len);

/* One message read from a body (pointing into it). */
struct chunk_msg {
    char offset[HISTORY_OFFSET_LEN + 1];
    const char *event;
    size_t event_len;
    const char *data;
    size_t data_len;
};

/* Reads the message at *p (before end) into m and advances *p past it: 0,
 * or -1 at the end or on a malformed body (nothing read). */
int chunk_next(const char **p, const char *end, struct chunk_msg *m);

#endif
