#include "server.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "admin.h"
#include "clock.h"
#include "cluster.h"
#include "conn.h"
#include "files_http.h"
#include "history.h"
#include "log.h"
#include "metrics_http.h"
#include "redis_url.h"
#include "reload.h"
#include "script.h"
#include "static.h"
#include "version.h"
#include "workers.h"
#include "ws.h"

#define SHUTDOWN_GRACE_MS 800

/* {==================================================================
 * The Socket.IO layer's app: the script host
 * =================================================================== */

static int app_has_namespace(void *h, const char *nsp, size_t len) { return script_has_namespace(h, nsp, len); }
static enum sio_verdict app_authenticate(void *h, struct sio_socket *s, const char *json, size_t len,
                                         struct sbuf *refusal) {
    return (enum sio_verdict)script_authenticate(h, s, json, len, refusal);
}
static void app_on_connected(void *h, struct sio_socket *s) { script_on_connected(h, s); }
static enum sio_verdict app_on_event(void *h, struct sio_socket *s, int64_t ack_id, const char *json, size_t len,
                                     unsigned n_att, const void *const *att, const size_t *att_len) {
    return (enum sio_verdict)script_on_event(h, s, ack_id, json, len, n_att, att, att_len);
}
static enum sio_verdict app_on_ack(void *h, struct sio_socket *s, int64_t ack_id, const char *json, size_t len,
                                   unsigned n_att, const void *const *att, const size_t *att_len) {
    return (enum sio_verdict)script_on_ack(h, s, ack_id, json, len, n_att, att, att_len);
}
static void app_on_disconnect(void *h, struct sio_socket *s, const char *reason) { script_on_disconnect(h, s, reason); }
static void app_release_socket(void *h, struct sio_socket *s) { script_release_socket(h, s); }
static void app_send_error(void *h, struct sio_socket *s, const char *event, const char *code, const char *message) {
    script_send_error(h, s, event, code, message);
}

static const struct sio_app_ops script_app_ops = {
    .has_namespace = app_has_namespace,
    .authenticate = app_authenticate,
    .on_connected = app_on_connected,
    .on_event = app_on_event,
    .on_ack = app_on_ack,
    .on_disconnect = app_on_disconnect,
    .release_socket = app_release_socket,
    .send_error = app_send_error,
};

/* {==================================================================
 * The app's HTTP routes
 * =================================================================== */

static void route_admin(void *ud, struct conn *c, const struct http_request *req, const char *body, size_t len,
                        int keep_alive) {
    (void)ud;
    admin_handle_request(c, req, body, len, keep_alive);
}

static void route_files(void *ud, struct conn *c, const struct http_request *req, const char *body, size_t len,
                        int keep_alive) {
    (void)ud, (void)body, (void)len;
    files_handle_request(c, req, keep_alive);
}

static void route_health(void *ud, struct conn *c, const struct http_request *req, const char *body, size_t len,
                         int keep_alive) {
    (void)ud, (void)req, (void)body, (void)len;
    httpd_respond(c, 200, "text/plain; charset=utf-8", "ok\n", 3, "Cache-Control: no-store\r\n", !keep_alive);
}

static void route_metrics(void *ud, struct conn *c, const struct http_request *req, const char *body, size_t len,
                          int keep_alive) {
    (void)ud, (void)req, (void)body, (void)len;
    metrics_handle_request(c, keep_alive);
}

static void route_static(void *ud, struct conn *c, const struct http_request *req, const char *body, size_t len,
                         int keep_alive) {
    (void)ud, (void)body, (void)len;
    static_handle_request(c, req, keep_alive);
}

static void add_routes(struct server *srv) {
    srv->admin_route = (struct http_route){.path = "/api/", .flags = HTTP_ROUTE_PREFIX | HTTP_ROUTE_SERVICE,
                                           .max_body = ADMIN_MAX_BODY_BYTES, .handle = route_admin, .ud = srv};
    srv->files_route = (struct http_route){.path = "/files/", .flags = HTTP_ROUTE_PREFIX, .handle = route_files,
                                           .ud = srv};
    srv->health_route = (struct http_route){.path = "/healthz", .flags = HTTP_ROUTE_SERVICE | HTTP_ROUTE_GET_HEAD,
                                            .handle = route_health, .ud = srv};
    srv->metrics_route = (struct http_route){.path = "/metrics", .flags = HTTP_ROUTE_SERVICE | HTTP_ROUTE_GET_HEAD,
                                             .handle = route_metrics, .ud = srv};
    httpd_add_route(&srv->net, &srv->admin_route);
    httpd_add_route(&srv->net, &srv->files_route);
    httpd_add_route(&srv->net, &srv->health_route);
    httpd_add_route(&srv->net, &srv->metrics_route);
    if (srv->cfg->static_dir[0]) { /* last: every route wins over a file */
        srv->static_route = (struct http_route){.path = "/", .flags = HTTP_ROUTE_PREFIX, .handle = route_static,
                                                .ud = srv};
        httpd_set_fallback(&srv->net, &srv->static_route);
    }
}

/* {==================================================================
 * Start, signals, shutdown
 * =================================================================== */

static void begin_shutdown(struct server *srv, const char *why) {
    if (srv->net.shutting_down) return;
    log_info("server", "shutting down signal=%s connections=%llu", why, (unsigned long long)srv->net.n_conns);
    reload_stop(srv);
    /* Tell every client we are going away (1001), then close what is left. */
    eio_hub_close_all(&srv->eio, WS_CLOSE_GOING_AWAY, "server shutting down");
    sio_hub_end_detached(&srv->sio); /* sockets kept for recovery end too */
    net_shutdown(&srv->net, SHUTDOWN_GRACE_MS);
}

static void on_signal(uv_signal_t *h, int signum) {
    begin_shutdown(h->data, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* Raises the open-file soft limit to the hard one (admit.c reads it). */
static void raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void close_walk(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* The directories given as relative paths (the defaults are) depend on the
 * working directory the server was started in: say where they resolved. */
static void log_relative_paths(const struct config *cfg) {
    const char *names[4] = {"scripts", "plugins", "files", "data"};
    const char *dirs[4] = {cfg->scripts_dir, cfg->plugins_dir, cfg->files_dir, cfg->data_dir};
    char line[4 * (PATH_MAX + 16)] = "";
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        if (!dirs[i] || dirs[i][0] == '/') continue;
        char abs[PATH_MAX], cwd[PATH_MAX / 2], q[LOG_QUOTED_MAX];
        if (!realpath(dirs[i], abs)) snprintf(abs, sizeof abs, "%s/%s", getcwd(cwd, sizeof cwd) ? cwd : ".", dirs[i]);
        int w = snprintf(line + n, sizeof line - n, " %s=\"%s\"", names[i], log_quoted(q, sizeof q, abs));
        if (w > 0 && (size_t)w < sizeof line - n) n += (size_t)w;
    }
    if (n) log_info("server", "relative paths resolved against the working directory%s", line);
}

/* Opens the history database in --data-dir (created if missing) and raises
 * the id sequence above its largest offset, so that offsets keep increasing
 * across a restart even when the clock went back. */
static int open_history(struct server *srv, char *err, size_t errlen) {
    char path[4200];
    snprintf(path, sizeof path, "%s/history.sqlite3", srv->cfg->data_dir);
    uint64_t max_offset = 0;
    srv->history = history_sqlite_open(srv->loop, path, &max_offset, err, errlen);
    if (!srv->history) return -1;
    if (max_offset > srv->ids.last_id) srv->ids.last_id = max_offset;
    return 0;
}

int server_run(const struct config *cfg, struct workers *w) {
    struct server *srv = calloc(1, sizeof *srv);
    if (!srv) return 1;
    srv->cfg = cfg;
    srv->loop = uv_default_loop();
    ids_init(&srv->ids);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a file over RLIMIT_FSIZE fails its write (EFBIG), counted, not fatal */
    raise_fd_limit();
    file_store_init(&srv->files, srv->loop, cfg->files_dir);
    metrics_init(&srv->metrics);
    loop_lag_start(&srv->loop_lag, srv->loop, &srv->metrics.loop_busy);
    /* Bottom up: each layer registers its routes, wheels and hooks with net. */
    net_init(&srv->net, srv->loop, cfg);
    eio_hub_init(&srv->eio, &srv->net, &srv->ids, NULL, NULL);
    if (w) workers_attach(w, srv);
    add_routes(srv);

    char err[1024];
    int ok = auth_init(&srv->auth, cfg, err, sizeof err) == 0;
    if (!ok) fprintf(stderr, "space-server: cannot start: %s\n", err);
    if (ok && open_history(srv, err, sizeof err) != 0) {
        fprintf(stderr, "space-server: cannot start: --data-dir: %s\n", err);
        ok = 0;
    }
    struct script_env env = {cfg, &srv->auth, &srv->ids, &srv->sio, &srv->files, &srv->metrics, srv->history,
                             &srv->net};
    if (ok && !(srv->script = script_host_new(&env, cfg->scripts_dir, cfg->plugins_dir, err, sizeof err))) {
        fprintf(stderr, "space-server: cannot start: scripts did not load: %s\n", err);
        ok = 0;
    }
    struct redis_url url;
    if (ok && cfg->redis_url[0]) {
        const char *why = redis_url_parse(&url, cfg->redis_url);
        if (why) { /* the URL is not printed: it may hold a password */
            fprintf(stderr, "space-server: cannot start: --redis: %s\n", why);
            ok = 0;
        } else if (!(srv->cluster = cluster_new(srv->loop, &url, &srv->sio, (uint64_t)cfg->cluster_timeout_ms))) {
            fprintf(stderr, "space-server: cannot start: --redis: out of memory\n");
            ok = 0;
        }
    }
    char addr[96];
    if (ok && net_listen(&srv->net, addr, sizeof addr) != 0) ok = 0;
    if (!ok) {
        if (srv->history) srv->history->ops->close(srv->history);
        net_close_all(&srv->net);
        cluster_close(srv->cluster);
        uv_run(srv->loop, UV_RUN_NOWAIT); /* the link releases itself on the next turn */
        uv_walk(srv->loop, close_walk, NULL);
        uv_run(srv->loop, UV_RUN_DEFAULT);
        if (srv->script) script_host_free(srv->script);
        sio_hub_free(&srv->sio);
        cluster_free(srv->cluster);
        eio_hub_free(&srv->eio);
        net_free(&srv->net);
        auth_free(&srv->auth);
        uv_loop_close(srv->loop);
        free(srv);
        return 1;
    }
    /* The Socket.IO layer's app is the script host: events go to the handlers. */
    sio_hub_init(&srv->sio, &srv->eio, &srv->metrics, &script_app_ops, srv->script,
                 srv->cluster ? cluster_adapter_new : NULL, srv->cluster);
    srv->eio.upper_deadlines = srv->auth.key != NULL; /* tokens expire only with a key */
    if (srv->cluster) { /* a client back on another node or worker: the one keeping its socket ends it */
        srv->sio.pid_elsewhere = cluster_pid_elsewhere;
        srv->sio.pid_elsewhere_ud = srv->cluster;
    }
    uv_signal_init(srv->loop, &srv->sigint);
    srv->sigint.data = srv;
    uv_signal_start(&srv->sigint, on_signal, SIGINT);
    uv_signal_init(srv->loop, &srv->sigterm);
    srv->sigterm.data = srv;
    uv_signal_start(&srv->sigterm, on_signal, SIGTERM);

    reload_start(srv);
    net_admit_init(&srv->net); /* after everything the process holds for good */
    srv->started_ms = clock_wall_ms();
    if (srv->auth.key)
        log_info("auth", "JWT authentication on algorithms=%s issuer=%s audience=%s", jwt_key_algs(srv->auth.key),
                 cfg->jwt_issuer[0] ? cfg->jwt_issuer : "-", cfg->jwt_audience[0] ? cfg->jwt_audience : "-");
    else
        log_warn("auth", "DEVELOPMENT MODE: no JWT key configured, clients name themselves; "
                         "set --jwt-secret-file or --jwt-public-key in production");
    if (!srv->auth.admin_token)
        log_info("admin", "no admin token configured: the admin API answers loopback clients only");
    log_relative_paths(cfg);
    log_info("server", "listening address=%s scripts=%s files=%u max_connections=%llu fd_limit=%llu version=%s",
             addr, cfg->scripts_dir, script_files_loaded(srv->script), (unsigned long long)srv->net.admit.max_conns,
             (unsigned long long)srv->net.admit.fd_limit, SPACE_VERSION);

    uv_run(srv->loop, UV_RUN_DEFAULT);

    /* Stopped after shutdown: free what is left, top down. The history
     * writes what is queued first (its queries still answer below). */
    srv->history->ops->close(srv->history);
    net_close_all(&srv->net);
    cluster_close(srv->cluster);
    uv_run(srv->loop, UV_RUN_NOWAIT); /* the link releases itself on the next turn */
    uv_walk(srv->loop, close_walk, NULL);
    uv_run(srv->loop, UV_RUN_DEFAULT);
    reload_free(srv);
    script_host_free(srv->script);
    sio_hub_free(&srv->sio);
    cluster_free(srv->cluster); /* after the namespaces' adapters, which use it */
    eio_hub_free(&srv->eio);
    net_free(&srv->net);
    auth_free(&srv->auth);
    uv_loop_close(srv->loop);
    int code = srv->exit_code;
    free(srv);
    log_info("server", "stopped");
    return code;
}
