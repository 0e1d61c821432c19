#include "recovery.h"

#include <stdlib.h>
#include <string.h>

#include "adapter.h"

void rlog_free(struct rlog *l) {
    for (size_t i = 0; i < l->n; i++) free(l->ring[(l->head + i) % l->cap]);
    free(l->ring);
    memset(l, 0, sizeof *l);
}

/* Room names of a target, copied behind the entry: rooms then except rooms. */
static size_t target_bytes(const struct adapter_target *to) {
    size_t n = 0;
    if (!to) return 0;
    for (size_t i = 0; i < to->n_rooms; i++) n += to->room_lens[i];
    for (size_t i = 0; i < to->n_except_rooms; i++) n += to->except_room_lens[i];
    return n;
}

static int ring_grow(struct rlog *l) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    struct rlog_entry **r = malloc(cap * sizeof *r);
    if (!r) return -1;
    for (size_t i = 0; i < l->n; i++) r[i] = l->ring[(l->head + i) % l->cap];
    free(l->ring);
    l->ring = r;
    l->head = 0;
    l->cap = cap;
    return 0;
}

static void drop_oldest(struct rlog *l) {
    free(l->ring[l->head]);
    l->head = (l->head + 1) % l->cap;
    l->n--;
}

int rlog_append(struct rlog *l, uint64_t now_ms, const char *offset, const char *json, size_t len,
                const char *direct_sid, const struct adapter_target *to) {
    if (l->n >= RLOG_MAX_ENTRIES) drop_oldest(l);
    if (l->n == l->cap && ring_grow(l) != 0) return -1;
    size_t n_rooms = to && !direct_sid ? to->n_rooms : 0, n_except = to && !direct_sid ? to->n_except_rooms : 0;
    size_t head = sizeof(struct rlog_entry) + (n_rooms + n_except) * sizeof(struct slice);
    struct rlog_entry *e = malloc(head + len + (direct_sid ? 0 : target_bytes(to)));
    if (!e) return -1;
    memset(e, 0, sizeof *e);
    e->at_ms = now_ms;
    memcpy(e->offset, offset, IDS_ID_LEN);
    char *p = (char *)e + head;
    memcpy(p, json, len);
    e->json = p;
    e->len = len;
    p += len;
    if (direct_sid) {
        memcpy(e->direct_sid, direct_sid, IDS_SID_LEN);
    } else if (to) {
        if (to->except) memcpy(e->except_sid, to->except->sid, IDS_SID_LEN);
        for (size_t i = 0; i < n_rooms + n_except; i++) {
            const char *name = i < n_rooms ? to->rooms[i] : to->except_rooms[i - n_rooms];
            size_t nl = i < n_rooms ? to->room_lens[i] : to->except_room_lens[i - n_rooms];
            memcpy(p, name, nl);
            e->rooms[i] = (struct slice){p, nl};
            p += nl;
        }
        e->n_rooms = n_rooms;
        e->n_except = n_except;
    }
    l->ring[(l->head + l->n) % l->cap] = e;
    l->n++;
    return 0;
}

void rlog_prune(struct rlog *l, uint64_t before_ms) {
    while (l->n && l->ring[l->head]->at_ms < before_ms) drop_oldest(l);
    if (!l->n) rlog_free(l); /* an idle namespace holds nothing */
}

/* Offsets are fixed-width hex and increase: the log is sorted, so a binary search. */
long rlog_after(const struct rlog *l, const char *offset, size_t len) {
    if (len != IDS_ID_LEN) return -1;
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(rlog_at(l, mid)->offset, offset, IDS_ID_LEN);
        if (c == 0) return (long)mid + 1;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

int rlog_targets(const struct rlog_entry *e, const struct sio_socket *s) {
    if (e->direct_sid[0]) return memcmp(e->direct_sid, s->sid, IDS_SID_LEN) == 0;
    if (e->except_sid[0] && memcmp(e->except_sid, s->sid, IDS_SID_LEN) == 0) return 0;
    for (size_t i = e->n_rooms; i < e->n_rooms + e->n_except; i++)
        if (adapter_has(s, e->rooms[i].p, e->rooms[i].len)) return 0;
    if (e->n_rooms == 0) return 1;
    for (size_t i = 0; i < e->n_rooms; i++)
        if (adapter_has(s, e->rooms[i].p, e->rooms[i].len)) return 1;
    return 0;
}

int rlog_with_offset(struct sbuf *out, const char *json, size_t len, const char *offset) {
    size_t end = len;
    while (end > 0 && json[end - 1] != ']') end--; /* trailing whitespace */
    if (end < 2) return -1;                         /* not an array */
    size_t body = end - 1;
    size_t k = body;
    while (k > 0 && (json[k - 1] == ' ' || json[k - 1] == '\t' || json[k - 1] == '\n' || json[k - 1] == '\r')) k--;
    int empty = k > 0 && json[k - 1] == '[';
    sbuf_reset(out);
    if (sbuf_append(out, json, body) || (!empty && sbuf_putc(out, ',')) || sbuf_putc(out, '"') ||
        sbuf_append(out, offset, strlen(offset)) || sbuf_append(out, "\"]", 2))
        return -1;
    return 0;
}
