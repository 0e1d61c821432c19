/* metrics: GET /metrics in the Prometheus text format. */
#ifndef SPACE_METRICS_H
#define SPACE_METRICS_H

#include "conn.h"

void metrics_handle_request(struct conn *c, int keep_alive);

#endif
