/* buf: refcounted, immutable byte buffers.
 *
 * An encoded frame that many output queues share: one allocation holds the
 * header and the bytes, like sds.
 *
 *   +----------+--------+-----------------------+
 *   | refcount | length | bytes ... (length)    |
 *   +----------+--------+-----------------------+
 *                       ^ buf->data
 *
 * Whoever creates a buf holds one reference; every queue entry that points at
 * it holds one more and drops it when the bytes have left the socket. */
#ifndef SPACE_BUF_H
#define SPACE_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct buf {
    uint32_t refcount; /* owners still holding it; freed at 0 */
    uint32_t len;      /* bytes in data */
    uint8_t data[];    /* the bytes (not NUL-terminated) */
} buf;

/* A buf of len bytes, content uninitialised, refcount 1. NULL on OOM. */
buf *buf_new(size_t len);
/* A buf holding a copy of len bytes at p, refcount 1. NULL on OOM. */
buf *buf_from(const void *p, size_t len);
static inline buf *buf_ref(buf *b) { b->refcount++; return b; }
void buf_unref(buf *b);

#endif
