/* server: the composition root. struct server holds one of each layer's
 * state (the loop's connections, the Engine.IO and Socket.IO hubs, the file
 * store, the script host...), wires them together through their tables of
 * functions and routes, handles signals and shutdown. Nothing below the app
 * layer calls it; the app's own modules (admin, metrics, files, static,
 * reload) take the server they serve.
 *
 * Owns: struct server. May call: every layer. */
#ifndef SPACE_SERVER_H
#define SPACE_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "auth.h"
#include "config.h"
#include "eio.h"
#include "files.h"
#include "httpd.h"
#include "ids.h"
#include "loop_lag.h"
#include "metrics.h"
#include "net.h"
#include "sio.h"

struct cluster;
struct script_host;
struct reloader;
struct workers;

struct server {
    /* configuration (read-only after start) */
    const struct config *cfg;
    struct auth auth;                 /* JWT key and admin token, read at start */

    uv_loop_t *loop;
    uv_signal_t sigint, sigterm;
    int exit_code;
    uint64_t started_ms;              /* wall clock at start, for uptime */

    /* the layers, bottom up */
    struct ids ids;                   /* sids and ids (base) */
    struct net net;                   /* connections and the loop's turn (net) */
    struct eio_hub eio;               /* Engine.IO sessions (engineio) */
    struct sio_hub sio;               /* namespaces, sockets, users, rooms (socketio) */
    struct file_store files;          /* sent files (files) */
    struct history_store *history;    /* the rooms' message history (history); owned */
    struct cluster *cluster;          /* with --redis: the rooms' adapter reaches the other nodes (cluster); owned */
    struct script_host *script;       /* the Lua host (lua); owned */
    struct reloader *reloader;        /* watches the scripts; owned (reload.c) */

    /* what /metrics reports */
    struct metrics metrics;
    struct loop_lag loop_lag;         /* fills metrics.loop_busy */

    /* the app's HTTP routes (httpd.h): they outlive the run */
    struct http_route admin_route, files_route, health_route, metrics_route, static_route;
};

/* Runs the server until SIGINT/SIGTERM; returns the process exit code.
 * w: this process is one of --workers (workers.h), or NULL. */
int server_run(const struct config *cfg, struct workers *w);

/* The server a conn belongs to (struct server embeds the conns' net). */
static inline struct server *server_of(const struct conn *c) {
    return (struct server *)(void *)((char *)c->net - offsetof(struct server, net));
}

#endif
