#define _GNU_SOURCE /* memmem */
#include "workers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "eio.h"
#include "httpd.h"
#include "log.h"
#include "net.h"
#include "server.h"

/* A handoff on the pipe: magic, length, then the request's bytes; the
 * socket travels with the first of them (SCM_RIGHTS). */
#define HANDOFF_MAGIC 0x31485053u /* "SPH1" */
#define HANDOFF_HEAD 8
#define PIPE_READ_CHUNK (64 * 1024)
/* Bytes waiting to go to one worker (it is restarting, or stuck) past which
 * requests for its sessions are answered here ("session unknown") instead:
 * each waiting handoff holds a socket and its bytes. */
#define HANDOFF_QUEUE_MAX (32 * 1024 * 1024)

/* A worker that dies this soon after its start died quickly; after
 * WORKER_MAX_QUICK_DEATHS of those in a row the parent gives up. */
#define WORKER_QUICK_MS 10000
#define WORKER_MAX_QUICK_DEATHS 5
#define WORKER_RESTART_BACKOFF_MS 200
#define PARENT_TICK_MS 100

struct worker_pipe {
    uv_pipe_t pipe; /* first: (struct worker_pipe *)handle */
    struct workers *w;
    int peer;
    char *in; /* bytes of handoffs not complete yet */
    size_t len, cap;
    int lost; /* out of step: what arrives is dropped, sockets closed */
};

/* One connection on its way to another worker: a duplicate of its socket
 * (the conn closes its own at once), sent with the bytes it had read. */
struct handoff {
    uv_write_t req;
    uv_tcp_t tcp;
    uv_buf_t b;
    char data[];
};

/* {==================================================================
 * Handing a connection to the worker that owns its session
 * =================================================================== */

static void on_handoff_closed(uv_handle_t *h) { free((char *)h - offsetof(struct handoff, tcp)); }

static void on_handoff_sent(uv_write_t *req, int status) {
    struct handoff *h = (struct handoff *)req;
    if (status < 0) log_warn("workers", "handoff failed error=%s", uv_err_name(status));
    if (!uv_is_closing((uv_handle_t *)&h->tcp)) uv_close((uv_handle_t *)&h->tcp, on_handoff_closed);
}

/* eio_hub.foreign: the request names a sid this worker does not hold. When
 * another worker made it, the connection goes there with the request. */
static int on_foreign(void *ud, struct conn *c, const char *sid) {
    struct workers *w = ud;
    int owner = ids_worker_of(sid);
    if (owner < 0 || owner >= w->count || owner == w->index || !w->pipes[owner] || !c->req_raw) return 0;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&w->pipes[owner]->pipe) > HANDOFF_QUEUE_MAX) return 0;
    /* Answers to earlier requests on this connection go out first; a
     * socket that cannot take them now is not handed over (the request
     * gets "session unknown" and the client starts over). */
    conn_flush(c);
    if (conn_is_closing(c) || c->q_head < c->q_len || c->writes_in_flight) return 0;
    int fd, dup_fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0 || (dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) return 0;
    size_t n = c->req_raw_len;
    struct handoff *h = malloc(sizeof *h + HANDOFF_HEAD + n);
    if (!h) {
        close(dup_fd);
        return 0;
    }
    uv_tcp_init(w->srv->loop, &h->tcp);
    if (uv_tcp_open(&h->tcp, dup_fd) != 0) {
        close(dup_fd);
        uv_close((uv_handle_t *)&h->tcp, on_handoff_closed);
        return 0;
    }
    uint32_t head[2] = {HANDOFF_MAGIC, (uint32_t)n};
    memcpy(h->data, head, HANDOFF_HEAD);
    memcpy(h->data + HANDOFF_HEAD, c->req_raw, n);
    h->b = uv_buf_init(h->data, (unsigned)(HANDOFF_HEAD + n));
    int rc = uv_write2(&h->req, (uv_stream_t *)&w->pipes[owner]->pipe, &h->b, 1, (uv_stream_t *)&h->tcp,
                       on_handoff_sent);
    if (rc != 0) {
        log_warn("workers", "handoff failed worker=%d error=%s", owner, uv_err_name(rc));
        uv_close((uv_handle_t *)&h->tcp, on_handoff_closed);
        return 0;
    }
    log_debug("workers", "handed over conn=%llu sid=%.*s worker=%d websocket=%d", (unsigned long long)c->id,
              IDS_SID_LEN, sid, owner, memmem(c->req_raw, n < 512 ? n : 512, "transport=websocket", 19) != NULL);
    /* Not a byte more is read here, and the conn closes at the flush, not
     * now: httpd is still inside its read. Our descriptor closes, the
     * socket lives on in the owner. */
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->flags |= CONN_CLOSE_ASAP;
    net_mark_flush(c->net, c);
    return 1;
}

/* A handoff arrived complete: the owner serves it as if it had accepted it. */
static void adopt(struct worker_pipe *p, const char *bytes, size_t n) {
    if (uv_pipe_pending_count(&p->pipe) < 1 || uv_pipe_pending_type(&p->pipe) != UV_TCP) {
        log_warn("workers", "handoff without a socket worker=%d", p->peer);
        return;
    }
    struct conn *c = conn_accept(&p->w->srv->net, (uv_stream_t *)&p->pipe, &httpd_transport);
    if (!c) return;
    httpd_start(c);
    c->tr->on_data(c, bytes, n);
}

static void on_pipe_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
    (void)suggested;
    struct worker_pipe *p = (struct worker_pipe *)h;
    if (p->cap - p->len < PIPE_READ_CHUNK) {
        size_t cap = p->cap ? p->cap * 2 : PIPE_READ_CHUNK;
        while (cap - p->len < PIPE_READ_CHUNK) cap *= 2;
        char *in = realloc(p->in, cap);
        if (!in) {
            *b = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
            return;
        }
        p->in = in;
        p->cap = cap;
    }
    *b = uv_buf_init(p->in + p->len, (unsigned)(p->cap - p->len));
}

/* An out-of-step pipe still takes the sockets it carries, and closes them:
 * their clients start over, and the sender's queue does not grow. */
static void drop_pending(struct worker_pipe *p) {
    while (uv_pipe_pending_count(&p->pipe) > 0) {
        uv_tcp_t *t = malloc(sizeof *t);
        if (!t) return;
        uv_tcp_init(p->pipe.loop, t);
        uv_accept((uv_stream_t *)&p->pipe, (uv_stream_t *)t);
        uv_close((uv_handle_t *)t, (uv_close_cb)free);
    }
}

static void on_pipe_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
    (void)b;
    struct worker_pipe *p = (struct worker_pipe *)s;
    if (nread < 0) {
        log_error("workers", "pipe to worker %d failed error=%s: no more handoffs from it", p->peer,
                  uv_err_name((int)nread));
        uv_read_stop(s);
        return;
    }
    if (p->lost) {
        drop_pending(p);
        return;
    }
    p->len += (size_t)nread;
    size_t off = 0;
    while (p->len - off >= HANDOFF_HEAD) {
        uint32_t head[2];
        memcpy(head, p->in + off, HANDOFF_HEAD);
        if (head[0] != HANDOFF_MAGIC) {
            /* Only a worker killed in the middle of a large handoff leaves
             * this: the stream cannot be framed again. */
            log_error("workers", "pipe to worker %d out of step: its handoffs are dropped from now on", p->peer);
            p->lost = 1;
            p->len = 0;
            drop_pending(p);
            return;
        }
        if (p->len - off - HANDOFF_HEAD < head[1]) break;
        adopt(p, p->in + off + HANDOFF_HEAD, head[1]);
        off += HANDOFF_HEAD + head[1];
    }
    memmove(p->in, p->in + off, p->len - off);
    p->len -= off;
    if (!p->len && p->cap > 16 * PIPE_READ_CHUNK) { /* a large body went through: give it back */
        free(p->in);
        p->in = NULL;
        p->cap = 0;
    }
}

static void on_sighup(uv_signal_t *h, int signum) {
    (void)signum;
    struct workers *w = h->data;
    log_info("workers", "reload signal=SIGHUP worker=%d pid=%d", w->index, (int)getpid());
}

void workers_attach(struct workers *w, struct server *srv) {
    w->srv = srv;
    srv->ids.worker = (unsigned)w->index;
    srv->net.reuse_port = 1;
    srv->eio.foreign = on_foreign;
    srv->eio.foreign_ud = w;
    for (int j = 0; j < w->count; j++) {
        if (w->fds[j] < 0) continue;
        struct worker_pipe *p = calloc(1, sizeof *p);
        if (!p) continue; /* that worker's sessions answer "unknown" here */
        p->w = w;
        p->peer = j;
        uv_pipe_init(srv->loop, &p->pipe, 1);
        if (uv_pipe_open(&p->pipe, w->fds[j]) != 0 ||
            uv_read_start((uv_stream_t *)&p->pipe, on_pipe_alloc, on_pipe_read) != 0) {
            log_error("workers", "cannot open the pipe to worker %d", j);
            uv_close((uv_handle_t *)&p->pipe, (uv_close_cb)free);
            continue;
        }
        w->fds[j] = -1; /* the pipe owns it */
        w->pipes[j] = p;
    }
    uv_signal_init(srv->loop, &w->sighup);
    w->sighup.data = w;
    uv_signal_start(&w->sighup, on_sighup, SIGHUP);
    log_info("workers", "worker running worker=%d pid=%d workers=%d", w->index, (int)getpid(), w->count);
}

/* {==================================================================
 * The parent
 * =================================================================== */

struct worker_slot {
    pid_t pid;             /* 0: not running */
    uint64_t started_ms;
    uint64_t restart_at_ms; /* 0: no restart due */
    int quick_deaths;      /* quick deaths in a row */
    int starts;
};

struct parent {
    struct config *cfg;
    int count;
    int port_fd;           /* holds the port (bound, not listening) while workers come and go */
    int mesh[IDS_MAX_WORKERS][IDS_MAX_WORKERS]; /* mesh[i][j]: i's end of the pipe to j */
    struct worker_slot slots[IDS_MAX_WORKERS];
    sigset_t old_mask;
    pid_t pid;
};

/* Binds the port with SO_REUSEPORT and keeps it: --port 0 becomes a port
 * every worker can bind to, and the port stays ours while workers restart.
 * A socket that does not listen gets none of the connections. */
static int reserve_port(struct config *cfg) {
    struct sockaddr_storage ss;
    int v6 = strchr(cfg->host, ':') != NULL;
    int rc = v6 ? uv_ip6_addr(cfg->host, (int)cfg->port, (struct sockaddr_in6 *)&ss)
                : uv_ip4_addr(cfg->host, (int)cfg->port, (struct sockaddr_in *)&ss);
    if (rc != 0) {
        fprintf(stderr, "space-server: cannot start: --host '%s' is not an IP address\n", cfg->host);
        return -1;
    }
    socklen_t len = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0 || bind(fd, (struct sockaddr *)&ss, len) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        fprintf(stderr, "space-server: cannot start: listen on %s port %lld: %s\n", cfg->host, (long long)cfg->port,
                strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    cfg->port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static uint64_t mono_ms(void) { return uv_hrtime() / 1000000u; }

static void close_mesh(struct parent *p) {
    for (int i = 0; i < p->count; i++)
        for (int j = 0; j < p->count; j++)
            if (p->mesh[i][j] >= 0) close(p->mesh[i][j]);
}

/* In the child: keeps its own ends of the pipes, runs the server, exits. */
static void run_worker(struct parent *p, int index) {
    sigprocmask(SIG_SETMASK, &p->old_mask, NULL);
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* the parent was killed: stop too */
    if (getppid() != p->pid) _exit(1);
    close(p->port_fd);
    struct workers w = {.index = index, .count = p->count};
    for (int j = 0; j < p->count; j++) {
        w.fds[j] = p->mesh[index][j];
        p->mesh[index][j] = -1;
    }
    close_mesh(p); /* the other workers' ends */
    int code = server_run(p->cfg, &w);
    for (int j = 0; j < p->count; j++) {
        if (w.pipes[j]) free(w.pipes[j]->in);
        free(w.pipes[j]);
        if (w.fds[j] >= 0) close(w.fds[j]);
    }
    free(p);
    exit(code);
}

static int spawn(struct parent *p, int index) {
    struct worker_slot *s = &p->slots[index];
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        log_error("workers", "cannot start worker=%d error=%s", index, strerror(errno));
        return -1;
    }
    if (pid == 0) run_worker(p, index);
    s->pid = pid;
    s->started_ms = mono_ms();
    s->restart_at_ms = 0;
    s->starts++;
    log_info("workers", "worker started worker=%d pid=%d", index, (int)pid);
    return 0;
}

static void signal_all(struct parent *p, int sig) {
    for (int i = 0; i < p->count; i++)
        if (p->slots[i].pid > 0) kill(p->slots[i].pid, sig);
}

static int exit_code_of(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 1;
}

/* What the parent takes synchronously: its workers' deaths and the signals it forwards. */
static void parent_signals(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGCHLD);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
}

static const char *signal_name(int sig) {
    return sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : sig == SIGHUP ? "SIGHUP" : "?";
}

static int parent_run(struct parent *p) {
    sigset_t set;
    parent_signals(&set);
    int live = 0, stopping = 0, code = 0;
    for (int i = 0; i < p->count; i++) {
        if (spawn(p, i) != 0) {
            stopping = code = 1;
            signal_all(p, SIGTERM);
            break;
        }
        live++;
    }
    for (;;) {
        int pending = 0;
        for (int i = 0; i < p->count; i++) pending |= p->slots[i].restart_at_ms != 0;
        if (!live && (stopping || !pending)) break;
        struct timespec tick = {0, PARENT_TICK_MS * 1000000L};
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            if (!stopping) log_info("workers", "stopping signal=%s workers=%d", signal_name(sig), live);
            stopping = 1;
            signal_all(p, sig);
        } else if (sig == SIGHUP) {
            signal_all(p, SIGHUP);
        }
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            int i = 0;
            while (i < p->count && p->slots[i].pid != pid) i++;
            if (i == p->count) continue;
            struct worker_slot *s = &p->slots[i];
            s->pid = 0;
            live--;
            int c = exit_code_of(status);
            if (stopping) {
                if (c && !code) code = c;
                log_info("workers", "worker stopped worker=%d pid=%d code=%d", i, (int)pid, c);
                continue;
            }
            uint64_t now = mono_ms();
            int quick = now - s->started_ms < WORKER_QUICK_MS;
            s->quick_deaths = quick ? s->quick_deaths + 1 : 0;
            char how[32];
            if (WIFSIGNALED(status)) snprintf(how, sizeof how, "signal=%d", WTERMSIG(status));
            else snprintf(how, sizeof how, "code=%d", c);
            /* A first start that exits on its own cannot start (scripts,
             * port): trying again would only repeat it. */
            int cannot_start = s->starts == 1 && quick && WIFEXITED(status) && c != 0;
            if (cannot_start || s->quick_deaths >= WORKER_MAX_QUICK_DEATHS) {
                log_error("workers", "worker died worker=%d pid=%d %s quick_deaths=%d: giving up", i, (int)pid, how,
                          s->quick_deaths);
                stopping = 1;
                code = c ? c : 1;
                signal_all(p, SIGTERM);
                continue;
            }
            log_warn("workers", "worker died worker=%d pid=%d %s: restarting", i, (int)pid, how);
            s->restart_at_ms = now + (uint64_t)s->quick_deaths * WORKER_RESTART_BACKOFF_MS;
            if (!s->restart_at_ms) s->restart_at_ms = 1;
        }
        if (stopping) continue;
        uint64_t now = mono_ms();
        for (int i = 0; i < p->count; i++) {
            struct worker_slot *s = &p->slots[i];
            if (!s->restart_at_ms || now < s->restart_at_ms) continue;
            if (spawn(p, i) == 0) live++;
            else s->restart_at_ms = now + WORKER_RESTART_BACKOFF_MS;
        }
    }
    log_info("workers", "stopped code=%d", code);
    return code;
}

int workers_main(struct config *cfg) {
    if (cfg->workers <= 1) return server_run(cfg, NULL);
    struct parent *p = calloc(1, sizeof *p);
    if (!p) return 1;
    p->cfg = cfg;
    p->count = (int)cfg->workers;
    p->pid = getpid();
    memset(p->mesh, -1, sizeof p->mesh);
    if ((p->port_fd = reserve_port(cfg)) < 0) {
        free(p);
        return 1;
    }
    for (int i = 0; i < p->count; i++) {
        for (int j = i + 1; j < p->count; j++) {
            int sv[2];
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
                fprintf(stderr, "space-server: cannot start: socketpair: %s\n", strerror(errno));
                close_mesh(p);
                close(p->port_fd);
                free(p);
                return 1;
            }
            p->mesh[i][j] = sv[0];
            p->mesh[j][i] = sv[1];
        }
    }
    /* Signals are taken synchronously (sigtimedwait) in the parent; each
     * worker gets the mask back and handles its own through libuv. */
    sigset_t set;
    parent_signals(&set);
    sigprocmask(SIG_BLOCK, &set, &p->old_mask);
    log_info("workers", "starting workers=%d port=%lld pid=%d", p->count, (long long)cfg->port, (int)p->pid);
    int code = parent_run(p);
    close_mesh(p);
    close(p->port_fd);
    free(p);
    return code;
}
