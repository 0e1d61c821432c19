/* admit: the connection limit.
 *
 * Every connection costs a file descriptor, and so do files being sent or
 * stored, a reload reading the scripts, and the health check. So
 * connections stop at a limit (--max-connections, by default the open-file
 * limit less what the process held at start and a reserve), and past it a
 * new connection is refused at once: accepted and closed. A few service
 * slots on top of the limit take one request each for /healthz, /metrics or
 * the admin API and answer anything else 503. Should accept itself run out
 * of descriptors anyway (files used up the reserve), a spare descriptor is
 * closed to accept and close what waits, so the backlog neither hangs nor
 * spins. Every refusal is counted (/metrics) and a burst is logged once. */
#ifndef SPACE_ADMIT_H
#define SPACE_ADMIT_H

#include <stdint.h>
#include <uv.h>

#define ADMIT_SERVICE_SLOTS 4      /* connections past the limit that may ask /healthz... */
#define ADMIT_SLOT_TIMEOUT_MS 1000 /* time such a connection has to send its request */

struct conn;
struct net;

struct admit {
    uint64_t max_conns;     /* the limit on connections outside the service slots */
    uint64_t fd_limit;      /* RLIMIT_NOFILE, for the log */
    uint64_t in_slots;      /* open connections in service slots */
    uint64_t refused_total; /* every refusal since start (/metrics) */
    uint64_t burst;         /* refusals since the last connection admitted; 0 = not refusing */
    int spare_fd;           /* kept open to be closed when accept hits EMFILE; -1 = none */
};

/* Works out the limit (requested: --max-connections, 0 = derived from the
 * open-file limit) and takes the spare descriptor. Call once listening, when
 * the process holds the descriptors it keeps for good. */
void admit_init(struct net *net, int64_t requested);
void admit_free(struct net *net);

/* The listener's connection callback. */
void admit_on_connection(uv_stream_t *listener, int status);

/* Counts one refusal; the first of a burst is logged, with why. */
void admit_refused(struct net *net, const char *why);
/* A connection in a service slot closed. */
void admit_slot_closed(struct net *net);

#endif
