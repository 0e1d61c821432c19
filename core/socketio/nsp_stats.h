/* nsp_stats: counts over every Socket.IO namespace, for /metrics and the
 * admin status (one loop, so both report the same thing). */
#ifndef SPACE_NSP_STATS_H
#define SPACE_NSP_STATS_H

#include <stddef.h>

struct server;

/* Rooms with at least one member, over all namespaces. */
size_t nsp_stats_rooms(const struct server *srv);

#endif
