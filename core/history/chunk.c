#include "chunk.h"

#include <string.h>

int chunk_append(struct sbuf *b, const char offset[HISTORY_OFFSET_LEN + 1], const char *event, const char *data,
                 size_t data_len) {
    /* The head without printf: this runs once per message kept. */
    char head[HISTORY_OFFSET_LEN + CHUNK_EVENT_MAX + 32], digits[24];
    size_t ev = strlen(event), h = 0, d = 0;
    if (ev > CHUNK_EVENT_MAX) return -1;
    memcpy(head, offset, HISTORY_OFFSET_LEN);
    h = HISTORY_OFFSET_LEN;
    head[h++] = ' ';
    memcpy(head + h, event, ev);
    h += ev;
    head[h++] = ' ';
    size_t len = data_len;
    do digits[d++] = (char)('0' + len % 10);
    while ((len /= 10) && d < sizeof digits);
    while (d) head[h++] = digits[--d];
    head[h++] = ':';
    return sbuf_append(b, head, h) || sbuf_append(b, data, data_len);
}

int chunk_next(const char **p, const char *end, struct chunk_msg *m) {
    const char *q = *p;
    if (end - q < HISTORY_OFFSET_LEN + 4 || q[HISTORY_OFFSET_LEN] != ' ') return -1;
    memcpy(m->offset, q, HISTORY_OFFSET_LEN);
    m->offset[HISTORY_OFFSET_LEN] = 0;
    q += HISTORY_OFFSET_LEN + 1;
    const char *sp = memchr(q, ' ', (size_t)(end - q));
    if (!sp || sp - q > CHUNK_EVENT_MAX) return -1;
    m->event = q;
    m->event_len = (size_t)(sp - q);
    q = sp + 1;
    size_t len = 0, digits = 0;
    while (q < end && *q >= '0' && *q <= '9' && digits++ < 15) len = len * 10 + (size_t)(*q++ - '0');
    if (!digits || q >= end || *q != ':' || (size_t)(end - q - 1) < len) return -1;
    m->data = q + 1;
    m->data_len = len;
    *p = q + 1 + len;
    return 0;
}
