/* metrics: the counters and histograms an operator scrapes (rendered for
 * GET /metrics by core/app/metrics_http.c). Counting is a plain increment
 * on the hot path: event names map to a slot in a small table (the stock app's events, plus every event the app has a
 * handler for, up to METRICS_MAX_NAMES; anything else counts as "other"),
 * so label cardinality stays bounded whatever clients send. */
#ifndef SPACE_METRICS_H
#define SPACE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX_NAMES 64     /* event names with a label of their own; slot 0 = "other" */
#define METRICS_NAME_MAX 48      /* longer names count as "other" */
#define METRICS_MAX_ERROR_KEYS 64 /* (handler, kind) pairs with a label; the rest: handler="other" */
#define METRICS_HANDLER_MAX 96
#define METRICS_BUCKETS 14

struct histogram {
    uint64_t n[METRICS_BUCKETS + 1]; /* per bucket (not cumulative), the last = +Inf */
    uint64_t count;
    double sum;
    double max; /* the largest observation */
};

struct metrics {
    unsigned n_names;
    uint8_t name_len[METRICS_MAX_NAMES];
    char names[METRICS_MAX_NAMES][METRICS_NAME_MAX];
    uint8_t has_handler[METRICS_MAX_NAMES]; /* seen with a handler: its duration is reported */
    uint64_t events_in[METRICS_MAX_NAMES], events_out[METRICS_MAX_NAMES];
    struct histogram handler_seconds[METRICS_MAX_NAMES]; /* by event handler */
    uint64_t fanout_deliveries;
    unsigned n_errors;
    struct {
        char handler[METRICS_HANDLER_MAX];
        const char *kind;
        uint64_t n;
    } errors[METRICS_MAX_ERROR_KEYS + 1];
    struct histogram loop_busy; /* the loop's busy time per turn (filled by loop_lag.c) */
};

/* The upper bounds of the histogram buckets (seconds), METRICS_BUCKETS of them. */
extern const double metrics_buckets[METRICS_BUCKETS];

/* Counts one observation of v (seconds) into h. */
void histogram_observe(struct histogram *h, double v);

/* Registers the fixed names. */
void metrics_init(struct metrics *m);
/* The slot of an event name: > 0 when it has a label, 0 for "other". */
unsigned metrics_event_slot(const struct metrics *m, const char *name, size_t len);
/* Gives the name a slot of its own (the app has a handler for it). */
unsigned metrics_event_learn(struct metrics *m, const char *name, size_t len);
/* One event received (and, when handled, dispatched to its handler in ns nanoseconds). */
void metrics_event_in(struct metrics *m, unsigned slot, int handled, uint64_t ns);
/* A packet sent to n sockets (json: Socket.IO's [name, ...] array); fanout
 * when it went to a room. Non-event packets (acks) are not counted. */
void metrics_event_out(struct metrics *m, const char *json, size_t len, size_t n, int fanout);
/* Why a call into Lua failed: the limit that ended it, or its own error. */
enum metrics_failure { METRICS_FAIL_ERROR, METRICS_FAIL_BUDGET, METRICS_FAIL_CPU, METRICS_FAIL_TIME, METRICS_FAIL_MEMORY };

void metrics_handler_failed(struct metrics *m, const char *handler, enum metrics_failure why);

#endif
