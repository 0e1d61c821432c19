#include "hist.h"

#include <string.h>

void hist_reset(struct hist *h) {
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

static unsigned bucket_of(uint64_t v) {
    if (v < 2 * HIST_SUB) return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - HIST_SUB_BITS;
    if (shift > HIST_MAX_SHIFT) return HIST_BUCKETS - 1;
    /* v >> shift is in [HIST_SUB, 2 * HIST_SUB) */
    return HIST_SUB * shift + (unsigned)(v >> shift);
}

/* The largest value that falls into bucket i. */
static uint64_t bucket_top(unsigned i) {
    if (i < 2 * HIST_SUB) return i;
    unsigned shift = i / HIST_SUB - 1;
    uint64_t base = (uint64_t)(i - HIST_SUB * shift);
    return ((base + 1) << shift) - 1;
}

void hist_record(struct hist *h, uint64_t v) {
    h->b[bucket_of(v)]++;
    h->count++;
    h->sum += (double)v;
    if (v > h->max) h->max = v;
    if (v < h->min) h->min = v;
}

void hist_merge(struct hist *into, const struct hist *from) {
    for (unsigned i = 0; i < HIST_BUCKETS; i++) into->b[i] += from->b[i];
    into->count += from->count;
    into->sum += from->sum;
    if (from->max > into->max) into->max = from->max;
    if (from->min < into->min) into->min = from->min;
}

uint64_t hist_quantile(const struct hist *h, double q) {
    if (!h->count) return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count);
    if (rank >= h->count) rank = h->count - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen > rank) {
            uint64_t top = bucket_top(i);
            return top > h->max ? h->max : top;
        }
    }
    return h->max;
}

double hist_mean(const struct hist *h) { return h->count ? h->sum / (double)h->count : 0.0; }
