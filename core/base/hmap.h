/* hmap: a string-keyed hash map with open addressing (linear probing) and
 * tombstone-free deletion (backward shift). Keys are borrowed: they must stay
 * valid and unchanged while their entry is in the map (callers use a string
 * inside the value itself). Grows at 3/4 load; never shrinks below 8 slots.
 * Iterating while inserting or deleting is not allowed. */
#ifndef SPACE_HMAP_H
#define SPACE_HMAP_H

#include <stddef.h>
#include <stdint.h>

struct hmap_entry {
    const char *key; /* NULL = empty slot */
    uint32_t keylen;
    uint32_t hash;
    void *value;
};

struct hmap {
    struct hmap_entry *slots;
    size_t cap;   /* power of two, or 0 */
    size_t count;
};

void *hmap_get(const struct hmap *m, const char *key, size_t keylen);
/* Inserts or replaces; returns 0, or -1 on OOM. */
int hmap_put(struct hmap *m, const char *key, size_t keylen, void *value);
/* Removes and returns the value, or NULL when absent. */
void *hmap_del(struct hmap *m, const char *key, size_t keylen);
void hmap_free(struct hmap *m);

/* Iteration: for (size_t i = 0; hmap_next(m, &i, &e);) ... */
int hmap_next(const struct hmap *m, size_t *i, struct hmap_entry **e);

#endif
