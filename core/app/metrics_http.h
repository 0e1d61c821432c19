/* metrics_http: GET /metrics, the counters (core/base/metrics.h) and the
 * server's gauges in the Prometheus text format (base units, _total
 * counters, HELP/TYPE). */
#ifndef SPACE_METRICS_HTTP_H
#define SPACE_METRICS_HTTP_H

#include "conn.h"

void metrics_handle_request(struct conn *c, int keep_alive);

#endif
