#include "hmap.h"

#include <stdlib.h>
#include <string.h>

static uint32_t hash_bytes(const char *p, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 16777619u;
    return h;
}

static struct hmap_entry *find(const struct hmap *m, const char *key, size_t keylen, uint32_t h) {
    if (!m->cap) return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        struct hmap_entry *e = &m->slots[i];
        if (!e->key) return e;
        if (e->hash == h && e->keylen == keylen && memcmp(e->key, key, keylen) == 0) return e;
    }
}

static int grow(struct hmap *m) {
    size_t cap = m->cap ? m->cap * 2 : 8;
    struct hmap_entry *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    struct hmap old = *m;
    m->slots = slots;
    m->cap = cap;
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i].key) *find(m, old.slots[i].key, old.slots[i].keylen, old.slots[i].hash) = old.slots[i];
    free(old.slots);
    return 0;
}

void *hmap_get(const struct hmap *m, const char *key, size_t keylen) {
    struct hmap_entry *e = find(m, key, keylen, hash_bytes(key, keylen));
    return e && e->key ? e->value : NULL;
}

int hmap_put(struct hmap *m, const char *key, size_t keylen, void *value) {
    if ((m->count + 1) * 4 > m->cap * 3 && grow(m) != 0) return -1;
    uint32_t h = hash_bytes(key, keylen);
    struct hmap_entry *e = find(m, key, keylen, h);
    if (!e->key) m->count++;
    *e = (struct hmap_entry){key, (uint32_t)keylen, h, value};
    return 0;
}

void *hmap_del(struct hmap *m, const char *key, size_t keylen) {
    struct hmap_entry *e = find(m, key, keylen, hash_bytes(key, keylen));
    if (!e || !e->key) return NULL;
    void *value = e->value;
    size_t mask = m->cap - 1, i = (size_t)(e - m->slots);
    /* Backward-shift the rest of the probe run so lookups need no tombstones. */
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        int between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].key = NULL;
    m->count--;
    return value;
}

void hmap_free(struct hmap *m) {
    free(m->slots);
    *m = (struct hmap){0};
}

int hmap_next(const struct hmap *m, size_t *i, struct hmap_entry **e) {
    for (; *i < m->cap; (*i)++) {
        if (m->slots[*i].key) {
            *e = &m->slots[(*i)++];
            return 1;
        }
    }
    return 0;
}
