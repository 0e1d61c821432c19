#include "server.h"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "ban.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "buf.h"
#include "conn.h"
#include "eio.h"
#include "httpd.h"
#include "log.h"
#include "reload.h"
#include "script.h"
#include "sio.h"
#include "version.h"
#include "ws.h"

#define SHUTDOWN_GRACE_MS 800

uint64_t server_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void server_new_sid(struct server *srv, char out[21]) {
    unsigned char raw[15];
    if (RAND_bytes(raw, 12) != 1) {
        /* Unpredictability matters (a sid authorizes polling requests). */
        log_error("server", "RAND_bytes failed");
        abort();
    }
    uint32_t seq = srv->sid_seq++;
    raw[12] = (unsigned char)(seq >> 16);
    raw[13] = (unsigned char)(seq >> 8);
    raw[14] = (unsigned char)seq;
    char b64[21];
    EVP_EncodeBlock((unsigned char *)b64, raw, 15);
    for (int i = 0; i < 20; i++) out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    out[20] = 0;
}

void server_new_id(struct server *srv, char out[17]) {
    uint64_t id = server_wall_ms() << 12; /* 4096 ids per millisecond before borrowing ahead */
    if (id <= srv->last_id) id = srv->last_id + 1;
    srv->last_id = id;
    /* Once per message: a hex loop, not snprintf (4 % of an event's instructions). */
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--, id >>= 4) out[i] = hex[id & 15];
    out[16] = 0;
}

void server_mark_flush(struct server *srv, struct conn *c) {
    if (c->flags & (CONN_PENDING_FLUSH | CONN_CLOSING)) return;
    c->flags |= CONN_PENDING_FLUSH;
    c->next_flush = srv->pending_flush;
    srv->pending_flush = c;
}

/* The one deadline timer fires at the earliest deadline of either wheel. */
static void on_deadline_timer(uv_timer_t *t) {
    struct server *srv = t->loop->data;
    uint64_t now = server_now(srv);
    srv->deadline_timer_due = WHEEL_NEVER; /* one-shot: spent */
    wheel_advance(&srv->conn_timers, now, conn_on_timer, NULL);
    wheel_advance(&srv->session_timers, now, eio_on_timer, NULL);
}

/* Arms the deadline timer for the wheels' next due time, to the
 * millisecond: deadlines fire when due (as Node's setTimeout would), not at
 * the next tick of a periodic sweep, and an idle server does not wake. */
static void arm_deadline_timer(struct server *srv) {
    uint64_t a = wheel_next_due(&srv->conn_timers), b = wheel_next_due(&srv->session_timers);
    uint64_t due = a < b ? a : b;
    if (due == srv->deadline_timer_due) return;
    srv->deadline_timer_due = due;
    if (due == WHEEL_NEVER) {
        uv_timer_stop(&srv->deadline_timer);
        return;
    }
    /* The loop time is cached from the start of the turn; refreshed, the
     * wait the loop computes next counts from now, not from then. */
    uv_update_time(srv->loop);
    uint64_t now = server_now(srv);
    uv_timer_start(&srv->deadline_timer, on_deadline_timer, due > now ? due - now : 0, 0);
}

/* Once per loop turn, before the loop blocks: write what this turn queued
 * (one writev per conn), free what was closed during the turn, and arm the
 * deadline timer for what this turn scheduled. */
static void on_hold_timer(uv_timer_t *t) { (void)t; /* the flush hook runs next */ }

static void on_flush_hook(uv_prepare_t *h) {
    struct server *srv = h->loop->data;
    uint64_t now = server_now(srv);
    struct conn *held = NULL;
    eio_flush_polls(srv);
    while (srv->pending_flush) {
        struct conn *c = srv->pending_flush;
        srv->pending_flush = c->next_flush;
        if (c->hold_until_ms > now && !(c->flags & CONN_CLOSE_ASAP)) {
            c->next_flush = held; /* stays marked, flushed on a later turn */
            held = c;
            continue;
        }
        c->flags &= ~(uint32_t)CONN_PENDING_FLUSH;
        conn_flush(c);
    }
    if (held) {
        srv->pending_flush = held;
        uv_timer_start(&srv->hold_timer, on_hold_timer, 1, 0);
    }
    sio_free_dead(srv);
    eio_free_dead(srv);
    if (srv->shutting_down && !srv->conns) uv_stop(srv->loop);
    else arm_deadline_timer(srv);
}

static void begin_shutdown(struct server *srv, const char *why) {
    if (srv->shutting_down) return;
    srv->shutting_down = 1;
    log_info("server", "shutting down signal=%s connections=%llu", why, (unsigned long long)srv->n_conns);
    uv_close((uv_handle_t *)&srv->listener, NULL);
    reload_stop(srv);
    /* Tell every client we are going away (1001), then close what is left. */
    struct eio_session *next;
    for (struct eio_session *s = srv->session_list; s; s = next) {
        next = s->next;
        eio_close(s, WS_CLOSE_GOING_AWAY, "server shutting down");
    }
    uint64_t deadline = server_now(srv) + SHUTDOWN_GRACE_MS;
    struct conn *next_conn;
    for (struct conn *c = srv->conns; c; c = next_conn) {
        next_conn = c->next; /* conn_close unlinks c */
        if (c->tr == &httpd_transport && !conn_is_closing(c)) {
            /* An answer may be queued (a parked GET just got "1"): let it go out. */
            if (c->q_head < c->q_len || c->writes_in_flight) conn_close_after_flush(c);
            else conn_close(c);
        }
        if (!(c->flags & CONN_CLOSING) && (!c->deadline_ms || c->deadline_ms > deadline)) conn_set_deadline(c, deadline);
    }
}

static void on_signal(uv_signal_t *h, int signum) {
    begin_shutdown(h->loop->data, signum == SIGINT ? "SIGINT" : "SIGTERM");
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

static int listen_on(struct server *srv, char *addr_out, size_t cap) {
    const struct config *cfg = srv->cfg;
    struct sockaddr_storage ss;
    int rc = strchr(cfg->host, ':') ? uv_ip6_addr(cfg->host, (int)cfg->port, (struct sockaddr_in6 *)&ss)
                                     : uv_ip4_addr(cfg->host, (int)cfg->port, (struct sockaddr_in *)&ss);
    if (rc != 0) {
        fprintf(stderr, "space-server: cannot start: --host '%s' is not an IP address\n", cfg->host);
        return -1;
    }
    uv_tcp_init(srv->loop, &srv->listener);
    if ((rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&srv->listener, 1024, admit_on_connection)) != 0) {
        fprintf(stderr, "space-server: cannot start: listen on %s port %lld: %s\n", cfg->host,
                (long long)cfg->port, uv_strerror(rc));
        return -1;
    }
    struct sockaddr_storage bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &len);
    char ip[64] = "?";
    int port = 0;
    if (bound.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&bound, ip, sizeof ip);
        port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
        snprintf(addr_out, cap, "[%s]:%d", ip, port);
    } else {
        uv_ip4_name((struct sockaddr_in *)&bound, ip, sizeof ip);
        port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        snprintf(addr_out, cap, "%s:%d", ip, port);
    }
    return 0;
}

static void close_walk(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* The directories given as relative paths (the defaults are) depend on the
 * working directory the server was started in: say where they resolved. */
static void log_relative_paths(const struct config *cfg) {
    const char *names[3] = {"scripts", "plugins", "files"};
    const char *dirs[3] = {cfg->scripts_dir, cfg->plugins_dir, cfg->files_dir};
    char line[3 * (PATH_MAX + 16)] = "";
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        if (!dirs[i] || dirs[i][0] == '/') continue;
        char abs[PATH_MAX], cwd[PATH_MAX / 2], q[LOG_QUOTED_MAX];
        if (!realpath(dirs[i], abs)) snprintf(abs, sizeof abs, "%s/%s", getcwd(cwd, sizeof cwd) ? cwd : ".", dirs[i]);
        int w = snprintf(line + n, sizeof line - n, " %s=\"%s\"", names[i], log_quoted(q, sizeof q, abs));
        if (w > 0 && (size_t)w < sizeof line - n) n += (size_t)w;
    }
    if (n) log_info("server", "relative paths resolved against the working directory%s", line);
}

int server_run(const struct config *cfg) {
    struct server *srv = calloc(1, sizeof *srv);
    if (!srv) return 1;
    srv->cfg = cfg;
    srv->loop = uv_default_loop();
    srv->loop->data = srv;
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    srv->admit.spare_fd = -1;
    file_store_init(&srv->files, srv->loop, cfg->files_dir);

    char err[1024];
    if (auth_init(&srv->auth, cfg, err, sizeof err) != 0) {
        fprintf(stderr, "space-server: cannot start: %s\n", err);
        free(srv);
        return 1;
    }
    if (!script_host_new(srv, cfg->scripts_dir, cfg->plugins_dir, err, sizeof err)) {
        fprintf(stderr, "space-server: cannot start: scripts did not load: %s\n", err);
        auth_free(&srv->auth);
        free(srv);
        return 1;
    }
    char addr[96];
    if (listen_on(srv, addr, sizeof addr) != 0) {
        script_host_free(srv->script);
        uv_close((uv_handle_t *)&srv->listener, NULL);
        uv_run(srv->loop, UV_RUN_NOWAIT);
        free(srv);
        return 1;
    }
    srv->record_separator = buf_from("\x1e", 1);
    metrics_init(&srv->metrics);
    loop_lag_start(&srv->loop_lag, srv->loop, &srv->metrics.loop_busy);
    uv_prepare_init(srv->loop, &srv->flush_hook);
    uv_prepare_start(&srv->flush_hook, on_flush_hook);
    uv_timer_init(srv->loop, &srv->hold_timer);
    uv_timer_init(srv->loop, &srv->deadline_timer);
    srv->deadline_timer_due = WHEEL_NEVER;
    wheel_init(&srv->conn_timers, WHEEL_TICK_MS, server_now(srv));
    wheel_init(&srv->session_timers, WHEEL_TICK_MS, server_now(srv));
    uv_signal_init(srv->loop, &srv->sigint);
    uv_signal_start(&srv->sigint, on_signal, SIGINT);
    uv_signal_init(srv->loop, &srv->sigterm);
    uv_signal_start(&srv->sigterm, on_signal, SIGTERM);

    reload_start(srv);
    admit_init(srv, cfg->max_connections); /* after everything the process holds for good */
    srv->started_ms = server_wall_ms();
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
             addr, cfg->scripts_dir, script_files_loaded(srv->script), (unsigned long long)srv->admit.max_conns,
             (unsigned long long)srv->admit.fd_limit, SPACE_VERSION);

    uv_run(srv->loop, UV_RUN_DEFAULT);

    /* Stopped after shutdown: free what is left, in order. */
    while (srv->conns) conn_close(srv->conns);
    on_flush_hook(&srv->flush_hook);
    uv_walk(srv->loop, close_walk, NULL);
    uv_run(srv->loop, UV_RUN_DEFAULT);
    sio_free_dead(srv);
    eio_free_dead(srv);
    reload_free(srv);
    admit_free(srv);
    ws_pool_free(srv);
    script_host_free(srv->script);
    auth_free(&srv->auth);
    struct hmap_entry *e;
    for (size_t i = 0; hmap_next(&srv->namespaces, &i, &e);) {
        struct nsp *n = e->value;
        hmap_free(&n->rooms);
        free(n);
    }
    hmap_free(&srv->namespaces);
    hmap_free(&srv->sessions);
    hmap_free(&srv->users);
    ban_free_all(&srv->bans);
    sbuf_free(&srv->scratch);
    for (int i = 0; i < 3; i++) buf_unref(srv->ping_wire[i]);
    buf_unref(srv->record_separator);
    uv_loop_close(srv->loop);
    int code = srv->exit_code;
    free(srv);
    log_info("server", "stopped");
    return code;
}
