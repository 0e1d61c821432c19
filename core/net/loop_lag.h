/* loop_lag: the event loop's busy time per turn, the wait a new event may
 * meet: wall time between two prepare callbacks less the time the loop
 * slept in poll (uv_metrics_idle_time), observed into a histogram. */
#ifndef SPACE_LOOP_LAG_H
#define SPACE_LOOP_LAG_H

#include <stdint.h>
#include <uv.h>

#include "metrics.h"

struct loop_lag {
    uv_prepare_t turn_hook; /* unreferenced: it keeps no loop alive; closed with the loop's handles */
    uint64_t last_turn_ns, last_idle_ns;
    struct histogram *into; /* not owned */
};

/* Configures loop to measure idle time and starts observing each turn into
 * `into`; call before the loop runs. */
void loop_lag_start(struct loop_lag *lag, uv_loop_t *loop, struct histogram *into);

#endif
