#include "conn.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "log.h"
#include "net.h"

#define FLUSH_MAX_IOV 64
/* After our FIN, the peer's EOF is awaited this long (unread bytes would
 * turn the close into a reset that can destroy a close frame). */
#define CONN_DRAIN_AFTER_FIN_MS 1000
/* A conn closing after its queue is written: a reader that never drains is closed anyway. */
#define CONN_CLOSE_AFTER_FLUSH_MS 2000

/* A uv_write in flight owns the entries it carries, until its callback. */
struct write_req {
    uv_write_t req;
    struct conn *c;
    uint32_t n;
    struct out_entry e[];
};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
    (void)suggested;
    struct conn *c = (struct conn *)h;
    b->base = c->net->recv_buf;
    b->len = NET_RECV_BUF_BYTES;
}

static void on_closed(uv_handle_t *h) {
    struct conn *c = (struct conn *)h;
    for (uint32_t i = c->q_head; i < c->q_len; i++) buf_unref(c->q[i].b);
    free(c->q);
    free(c->in);
    free(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

/* Counts n bytes read against the conn's share of this turn, and pauses
 * its reading once the share is spent (net.c resumes it at the turn's end). */
static void spend_read_budget(struct conn *c, size_t n) {
    struct net *net = c->net;
    if (c->read_turn != net->turn) {
        c->read_turn = net->turn;
        c->read_bytes = 0;
    }
    c->read_bytes += (uint32_t)n;
    if (c->read_bytes < NET_TURN_READ_BYTES || (c->flags & (CONN_READ_PAUSED | CONN_CLOSING | CONN_CLOSE_ASAP))) return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->flags |= CONN_READ_PAUSED;
    net->n_read_paused++;
}

void conn__resume_reads(struct net *net) {
    net->turn++;
    if (!net->n_read_paused) return;
    for (struct conn *c = net->conns; c && net->n_read_paused; c = c->next) {
        if (!(c->flags & CONN_READ_PAUSED)) continue;
        c->flags &= ~(uint32_t)CONN_READ_PAUSED;
        net->n_read_paused--;
        /* One handed to another process reads no more; one closing after
         * its flush reads on, to drain until the peer's EOF (on_shutdown). */
        if (!(c->flags & (CONN_CLOSING | CONN_CLOSE_ASAP))) uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
    struct conn *c = (struct conn *)s;
    if (nread > 0) {
        c->net->bytes_in += (uint64_t)nread;
        if (c->flags & CONN_SHUTDOWN) return; /* draining after our FIN */
        c->tr->on_data(c, b->base, (size_t)nread);
        spend_read_budget(c, (size_t)nread);
        return;
    }
    if (nread < 0) {
        if (nread != UV_EOF && !(c->flags & CONN_SHUTDOWN)) {
            char peer[64];
            conn_peer_name(c, peer, sizeof peer);
            log_debug("conn", "read error conn=%llu peer=%s error=%s", (unsigned long long)c->id,
                      peer, uv_err_name((int)nread));
        }
        conn_close(c);
    }
}

struct conn *conn_accept(struct net *net, uv_stream_t *listener, const struct transport *tr) {
    struct conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    uv_tcp_init(net->loop, &c->tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return NULL;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->net = net;
    c->tr = tr;
    c->id = ++net->next_conn_id;
    c->next = net->conns;
    if (net->conns) net->conns->prev = c;
    net->conns = c;
    net->n_conns++;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    return c;
}

static void unlink_conn(struct conn *c) {
    struct net *net = c->net;
    if (c->prev) c->prev->next = c->next;
    else net->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    net->n_conns--;
    if (c->flags & CONN_PENDING_FLUSH) {
        for (struct conn **p = &net->pending_flush; *p; p = &(*p)->next_flush) {
            if (*p == c) {
                *p = c->next_flush;
                break;
            }
        }
        c->flags &= ~(uint32_t)CONN_PENDING_FLUSH;
    }
}

void conn_set_deadline(struct conn *c, uint64_t ms) {
    c->deadline_ms = ms;
    if (ms) wheel_schedule_by(&c->net->conn_timers, &c->timer, ms);
}

void conn_on_timer(struct wheel_entry *e, void *ud) {
    struct conn *c = WHEEL_OWNER(e, struct conn, timer);
    (void)ud;
    if ((c->flags & CONN_CLOSING) || !c->deadline_ms) return;
    if (net_now(c->net) < c->deadline_ms) { /* moved later since it was scheduled */
        wheel_schedule(&c->net->conn_timers, &c->timer, c->deadline_ms);
        return;
    }
    c->deadline_ms = 0;
    if (c->flags & (CONN_SHUTDOWN | CONN_CLOSE_AFTER_FLUSH)) conn_close(c);
    else c->tr->on_timeout(c);
}

void conn_close(struct conn *c) {
    if (c->flags & CONN_CLOSING) return;
    c->flags |= CONN_CLOSING;
    wheel_cancel(&c->net->conn_timers, &c->timer);
    if (c->tr && c->tr->on_close) c->tr->on_close(c);
    c->tr_state = NULL;
    if (c->flags & CONN_READ_PAUSED) {
        c->flags &= ~(uint32_t)CONN_READ_PAUSED;
        c->net->n_read_paused--;
    }
    unlink_conn(c);
    uv_read_stop((uv_stream_t *)&c->tcp);
    /* Pending uv_writes are cancelled and called back before on_closed. */
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
    struct conn *c = req->data;
    free(req);
    if (status < 0 || (c->flags & CONN_CLOSING)) {
        if (!(c->flags & CONN_CLOSING)) conn_close(c);
        return;
    }
    /* Keep reading until the peer's EOF so that unread bytes don't turn our
     * close into a reset that could destroy the close frame; bounded. */
    conn_set_deadline(c, net_now(c->net) + CONN_DRAIN_AFTER_FIN_MS);
}

static void start_shutdown(struct conn *c) {
    if (c->flags & (CONN_SHUTDOWN | CONN_CLOSING)) return;
    c->flags |= CONN_SHUTDOWN;
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req || uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(req);
        conn_close(c);
        return;
    }
    req->data = c;
}

void conn_close_after_flush(struct conn *c) {
    if (c->flags & CONN_CLOSING) return;
    c->flags |= CONN_CLOSE_AFTER_FLUSH;
    conn_set_deadline(c, net_now(c->net) + CONN_CLOSE_AFTER_FLUSH_MS);
    net_mark_flush(c->net, c);
}

static void close_asap(struct conn *c) {
    c->flags |= CONN_CLOSE_ASAP;
    net_mark_flush(c->net, c);
}

static int queue_entry(struct conn *c, buf *b) {
    if (c->flags & (CONN_CLOSING | CONN_SHUTDOWN | CONN_CLOSE_ASAP)) return -1;
    if (c->out_bytes + b->len > (size_t)c->net->cfg->max_output) {
        char peer[64];
        conn_peer_name(c, peer, sizeof peer);
        log_warn("conn", "closing slow consumer conn=%llu peer=%s queued=%zu",
                 (unsigned long long)c->id, peer, c->out_bytes);
        c->net->slow_closes++;
        close_asap(c);
        return -1;
    }
    if (c->q_head == c->q_len) c->q_head = c->q_len = 0;
    if (c->q_len == c->q_cap) {
        if (c->q_head > 0) {
            memmove(c->q, c->q + c->q_head, (c->q_len - c->q_head) * sizeof *c->q);
            c->q_len -= c->q_head;
            c->q_head = 0;
        } else {
            uint32_t cap = c->q_cap ? c->q_cap * 2 : 4;
            struct out_entry *q = realloc(c->q, cap * sizeof *q);
            if (!q) {
                close_asap(c);
                return -1;
            }
            c->q = q;
            c->q_cap = cap;
        }
    }
    c->q[c->q_len++] = (struct out_entry){buf_ref(b), 0};
    c->out_bytes += b->len;
    net_mark_flush(c->net, c);
    return 0;
}

int conn_send(struct conn *c, buf *b) { return queue_entry(c, b); }

int conn_send_copy(struct conn *c, const void *p, size_t n) {
    buf *b = buf_from(p, n);
    if (!b) {
        close_asap(c);
        return -1;
    }
    int rc = queue_entry(c, b);
    buf_unref(b);
    return rc;
}

static void on_write(uv_write_t *req, int status) {
    struct write_req *w = (struct write_req *)req;
    struct conn *c = w->c;
    for (uint32_t i = 0; i < w->n; i++) {
        if (status == 0) c->net->bytes_out += w->e[i].b->len - w->e[i].off;
        c->out_bytes -= w->e[i].b->len;
        buf_unref(w->e[i].b);
    }
    c->writes_in_flight--;
    free(w);
    if (status < 0) {
        conn_close(c);
        return;
    }
    if ((c->flags & CONN_CLOSE_AFTER_FLUSH) && c->writes_in_flight == 0 && c->q_head == c->q_len)
        start_shutdown(c);
    else if (c->tr->on_drain && c->out_bytes < CONN_DRAIN_BYTES)
        c->tr->on_drain(c);
}

/* Hands the whole remaining queue to one uv_write. */
static void write_rest(struct conn *c) {
    uint32_t n = c->q_len - c->q_head;
    struct write_req *w = malloc(sizeof *w + n * sizeof(struct out_entry));
    uv_buf_t *bufs = malloc(n * sizeof *bufs);
    if (!w || !bufs) {
        free(w);
        free(bufs);
        conn_close(c);
        return;
    }
    w->c = c;
    w->n = n;
    memcpy(w->e, c->q + c->q_head, n * sizeof(struct out_entry));
    for (uint32_t i = 0; i < n; i++)
        bufs[i] = uv_buf_init((char *)w->e[i].b->data + w->e[i].off, w->e[i].b->len - w->e[i].off);
    c->q_head = c->q_len = 0;
    c->writes_in_flight++;
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, n, on_write);
    free(bufs); /* libuv copied the array */
    if (rc != 0) {
        /* Not started: the entries are ours again to release. */
        c->writes_in_flight--;
        for (uint32_t i = 0; i < n; i++) {
            c->out_bytes -= w->e[i].b->len;
            buf_unref(w->e[i].b);
        }
        free(w);
        conn_close(c);
    }
}

void conn_hold(struct conn *c, uint64_t ms) { c->hold_until_ms = net_now(c->net) + ms; }

void conn_flush(struct conn *c) {
    if (c->flags & CONN_CLOSING) return;
    if (c->flags & CONN_CLOSE_ASAP) {
        conn_close(c);
        return;
    }
    /* Order: while a uv_write is pending, later bytes must queue behind it. */
    while (c->q_head < c->q_len && c->writes_in_flight == 0) {
        uv_buf_t iov[FLUSH_MAX_IOV];
        uint32_t n = 0;
        for (uint32_t i = c->q_head; i < c->q_len && n < FLUSH_MAX_IOV; i++, n++)
            iov[n] = uv_buf_init((char *)c->q[i].b->data + c->q[i].off, c->q[i].b->len - c->q[i].off);
        int written = uv_try_write((uv_stream_t *)&c->tcp, iov, n);
        if (written == UV_EAGAIN) break;
        if (written < 0) {
            conn_close(c);
            return;
        }
        size_t left = (size_t)written;
        c->net->bytes_out += left;
        while (c->q_head < c->q_len) {
            struct out_entry *e = &c->q[c->q_head];
            size_t avail = e->b->len - e->off;
            if (left < avail) {
                e->off += (uint32_t)left;
                break;
            }
            left -= avail;
            c->out_bytes -= e->b->len;
            buf_unref(e->b);
            c->q_head++;
        }
        if (c->q_head < c->q_len && c->q[c->q_head].off > 0) break; /* the socket is full */
    }
    if (c->q_head < c->q_len) write_rest(c);
    if (c->flags & CONN_CLOSING) return;
    if (c->q_head == c->q_len) c->q_head = c->q_len = 0;
    if ((c->flags & CONN_CLOSE_AFTER_FLUSH) && c->writes_in_flight == 0 && c->q_len == 0)
        start_shutdown(c);
    else if (c->tr->on_drain && c->out_bytes < CONN_DRAIN_BYTES && !conn_is_closing(c))
        c->tr->on_drain(c);
}

int conn_in_append(struct conn *c, const char *p, size_t n) {
    if (c->in_cap - c->in_len < n) {
        size_t cap = c->in_cap ? c->in_cap : 1024;
        while (cap - c->in_len < n) cap *= 2;
        char *in = realloc(c->in, cap);
        if (!in) return -1;
        c->in = in;
        c->in_cap = cap;
    }
    memcpy(c->in + c->in_len, p, n);
    c->in_len += n;
    return 0;
}

void conn_in_consume(struct conn *c, size_t n) {
    if (n >= c->in_len) {
        /* Idle conns hold no input buffer. */
        free(c->in);
        c->in = NULL;
        c->in_len = c->in_cap = 0;
        return;
    }
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

void conn_peer_name(const struct conn *c, char *out, size_t cap) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[64] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    snprintf(out, cap, "%s:%d", ip, port);
}
