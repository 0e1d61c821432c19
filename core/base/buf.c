#include "buf.h"

#include <stdlib.h>
#include <string.h>

buf *buf_new(size_t len) {
    if (len > UINT32_MAX) return NULL;
    buf *b = malloc(sizeof(buf) + len);
    if (!b) return NULL;
    b->refcount = 1;
    b->len = (uint32_t)len;
    return b;
}

buf *buf_from(const void *p, size_t len) {
    buf *b = buf_new(len);
    if (b && len) memcpy(b->data, p, len);
    return b;
}

void buf_unref(buf *b) {
    if (b && --b->refcount == 0) free(b);
}
