/* hist: a log-linear latency histogram (HDR-like). Values are nanoseconds;
 * every power of two is split into 128 buckets, so a recorded value is known
 * to within 0.8%. Fixed size, no allocation while recording; two histograms
 * of the same layout merge by adding buckets. */
#ifndef LG_HIST_H
#define LG_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)          /* buckets per power of two */
#define HIST_MAX_SHIFT 40                        /* values up to ~2^47 ns (39 hours) */
#define HIST_BUCKETS (HIST_SUB * (HIST_MAX_SHIFT + 2))

struct hist {
    uint64_t count;
    uint64_t max;
    uint64_t min;
    double sum;
    uint64_t b[HIST_BUCKETS];
};

void hist_reset(struct hist *h);
void hist_record(struct hist *h, uint64_t v);
void hist_merge(struct hist *into, const struct hist *from);
/* The value at quantile q (0..1): the upper edge of its bucket, capped at the max. 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);
double hist_mean(const struct hist *h);

#endif
