#include "sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sbuf_reserve(struct sbuf *b, size_t n) {
    if (b->cap - b->len >= n) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
        if (cap > ((size_t)-1) / 2) return -1;
        cap *= 2;
    }
    char *p = b->borrowed ? malloc(cap) : realloc(b->p, cap);
    if (!p) return -1;
    if (b->borrowed && b->len) memcpy(p, b->p, b->len);
    b->borrowed = 0;
    b->p = p;
    b->cap = cap;
    return 0;
}

int sbuf_append(struct sbuf *b, const void *p, size_t n) {
    if (sbuf_reserve(b, n) != 0) return -1;
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

int sbuf_putc(struct sbuf *b, char c) { return sbuf_append(b, &c, 1); }

int sbuf_printf(struct sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || sbuf_reserve(b, (size_t)n + 1) != 0) return -1;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void sbuf_free(struct sbuf *b) {
    if (!b->borrowed) free(b->p);
    b->borrowed = 0;
    b->p = NULL;
    b->len = b->cap = 0;
}
