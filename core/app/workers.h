/* workers: --workers N. The parent process forks N workers that each run
 * the whole server on the same port (SO_REUSEPORT: the kernel spreads the
 * connections), forwards SIGHUP, SIGTERM and SIGINT to them, restarts one
 * that dies (and gives up after repeated quick deaths), and exits with
 * their status. The workers share rooms through Redis (--redis).
 *
 * A long-polling session lives in one worker, but its next request may
 * reach another: each sid names the worker that made it (ids.h), and a
 * worker that gets a request for another's sid hands the connection over,
 * socket and the bytes it read, on an IPC pipe (one socketpair per pair of
 * workers, made before the fork; the parent holds both ends, so a restarted
 * worker takes its pipes over). The owner serves it as if it had accepted it.
 *
 * Owns: struct workers (one per worker process). May call: net, engineio, base. */
#ifndef SPACE_WORKERS_H
#define SPACE_WORKERS_H

#include <uv.h>

#include "config.h"
#include "ids.h"

struct server;
struct worker_pipe;

struct workers {
    int index, count;
    int fds[IDS_MAX_WORKERS];         /* this worker's end of the pipe to worker j; -1 for itself */
    struct worker_pipe *pipes[IDS_MAX_WORKERS]; /* the same, opened on the loop; owned */
    struct server *srv;
    uv_signal_t sighup;               /* logs which worker a SIGHUP reached */
};

/* The process's run: one server, or with cfg->workers > 1 the parent of
 * the workers. Returns the exit code (cfg's port may be set to the one
 * chosen for --port 0). */
int workers_main(struct config *cfg);

/* In a worker, before the server listens: sids name this worker, the
 * listener shares the port, and requests for other workers' sessions go
 * to them through the pipes. */
void workers_attach(struct workers *w, struct server *srv);

#endif
