#include "admit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "httpd.h"
#include "log.h"
#include "net.h"

/* Descriptors open now (Linux: /proc/self/fd); a generous guess elsewhere. */
static uint64_t fds_in_use(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return 32;
    uint64_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n > 0 ? n - 1 : 0; /* not the directory's own */
}

static int open_spare(void) { return open("/dev/null", O_RDONLY | O_CLOEXEC); }

void admit_init(struct net *net, int64_t requested) {
    struct admit *a = &net->admit;
    a->spare_fd = open_spare();
    struct rlimit rl;
    uint64_t nofile = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? rl.rlim_cur : 1048576;
    a->fd_limit = nofile;
    /* The reserve: files being sent, stored or downloaded, a reload (each
     * needs one or two descriptors at a time). Capped so that a 20000 limit
     * still serves 19000 connections (bench/compare's default). */
    uint64_t reserve = nofile / 64;
    reserve = reserve < 16 ? 16 : reserve > 256 ? 256 : reserve;
    uint64_t held = fds_in_use() + reserve + ADMIT_SERVICE_SLOTS;
    uint64_t derived = nofile > held ? nofile - held : 1;
    a->max_conns = derived;
    if (requested > 0 && (uint64_t)requested <= derived) a->max_conns = (uint64_t)requested;
    else if (requested > 0)
        log_warn("server", "--max-connections %lld is more than the open-file limit allows: using %llu "
                 "fd_limit=%llu (raise ulimit -n)", (long long)requested, (unsigned long long)derived,
                 (unsigned long long)nofile);
}

void admit_free(struct net *net) {
    if (net->admit.spare_fd >= 0) close(net->admit.spare_fd);
    net->admit.spare_fd = -1;
}

void admit_refused(struct net *net, const char *why) {
    struct admit *a = &net->admit;
    a->refused_total++;
    if (a->burst++ == 0)
        log_warn("server", "refusing connections reason=\"%s\" max_connections=%llu open=%llu", why,
                 (unsigned long long)a->max_conns, (unsigned long long)net->n_conns);
}

void admit_slot_closed(struct net *net) { net->admit.in_slots--; }

/* Accepts the waiting connection and closes it at once. */
static void refuse_now(struct net *net, uv_stream_t *listener) {
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t) return; /* it waits in the backlog; the next callback tries again */
    uv_tcp_init(net->loop, t);
    if (uv_accept(listener, (uv_stream_t *)t) == 0) admit_refused(net, "connection limit");
    uv_close((uv_handle_t *)t, (uv_close_cb)free);
}

/* accept failed for want of descriptors and libuv's own spare was gone:
 * free ours, accept and close everything waiting, take it back. */
static void drain_backlog(struct net *net, uv_stream_t *listener) {
    struct admit *a = &net->admit;
    uv_os_fd_t lfd;
    if (a->spare_fd < 0 || uv_fileno((uv_handle_t *)listener, &lfd) != 0) {
        admit_refused(net, "out of file descriptors, no spare");
        return;
    }
    close(a->spare_fd);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            break; /* EAGAIN: drained */
        }
        close(fd);
        admit_refused(net, "out of file descriptors");
    }
    a->spare_fd = open_spare();
}

void admit_on_connection(uv_stream_t *listener, int status) {
    struct net *net = listener->data;
    struct admit *a = &net->admit;
    if (status == UV_EMFILE || status == UV_ENFILE) {
        drain_backlog(net, listener);
        return;
    }
    if (status < 0) {
        log_warn("server", "accept failed error=%s", uv_err_name(status));
        return;
    }
    int slot = 0;
    if (net->n_conns - a->in_slots >= a->max_conns) {
        if (a->in_slots >= ADMIT_SERVICE_SLOTS) {
            refuse_now(net, listener);
            return;
        }
        slot = 1;
    }
    struct conn *c = conn_accept(net, listener, &httpd_transport);
    if (!c) return;
    httpd_start(c);
    if (slot) {
        c->flags |= CONN_SERVICE_SLOT;
        a->in_slots++;
        conn_set_deadline(c, net_now(net) + ADMIT_SLOT_TIMEOUT_MS);
    } else if (a->burst) {
        log_info("server", "accepting connections again refused=%llu", (unsigned long long)a->burst);
        a->burst = 0;
    }
}
