/* sbuf: a growable byte buffer for building output (JSON, packets, frames).
 * The server keeps one for scratch work and reuses it, so building a message
 * costs no allocation once the buffer has grown to the usual size. */
#ifndef SPACE_SBUF_H
#define SPACE_SBUF_H

#include <stddef.h>
#include <string.h>

struct sbuf {
    char *p;       /* bytes; NULL until first growth */
    size_t len;    /* bytes used */
    size_t cap;    /* bytes allocated */
    int borrowed;  /* p is the caller's storage (sbuf_on_stack): copied out on growth, never freed */
};

/* An sbuf that starts in the caller's storage (usually on the stack) and
 * moves to the heap only when it outgrows it; sbuf_free it all the same. */
static inline struct sbuf sbuf_on_stack(char *storage, size_t cap) {
    return (struct sbuf){storage, 0, cap, 1};
}

/* Makes room for n more bytes; returns 0, or -1 on OOM (sbuf unchanged). */
int sbuf_reserve(struct sbuf *b, size_t n);
int sbuf_append(struct sbuf *b, const void *p, size_t n);
int sbuf_putc(struct sbuf *b, char c);
int sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void sbuf_reset(struct sbuf *b) { b->len = 0; }

/* The same, inlined for the hot paths (JSON encoding): a copy while the
 * buffer has room, the call only when it must grow. */
static inline int sbuf_putc_fast(struct sbuf *b, char c) {
    if (b->len < b->cap) {
        b->p[b->len++] = c;
        return 0;
    }
    return sbuf_putc(b, c);
}
static inline int sbuf_append_fast(struct sbuf *b, const void *p, size_t n) {
    if (b->cap - b->len >= n) {
        if (n) memcpy(b->p + b->len, p, n);
        b->len += n;
        return 0;
    }
    return sbuf_append(b, p, n);
}
void sbuf_free(struct sbuf *b);

#endif
