/* client: the WebSocket / Engine.IO / Socket.IO client side of the load
 * generator. Frames are parsed straight out of the loop-wide receive buffer;
 * only an unparsed tail is copied. Output is corked: appended to the
 * client's out buffer and written once per loop turn (flush_hook). */
#include "loadgen.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define RECV_BUF_BYTES (256 * 1024)
#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" /* RFC 6455's example key and its accept value */
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

uint64_t lg_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void set_error(struct lg *lg, const struct client *c, const char *what) {
    if (lg->last_error[0]) return; /* the first error is the interesting one */
    snprintf(lg->last_error, sizeof lg->last_error, "client %u: %s", c->idx, what ? what : "closed");
}

static int grow(char **p, uint32_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 512;
    while (n < need) n *= 2;
    char *q = realloc(*p, n);
    if (!q) return -1;
    *p = q;
    *cap = (uint32_t)n;
    return 0;
}

/* {==================================================================
 * Output
 * =================================================================== */

struct write_req {
    uv_write_t req;
    struct client *c;
    char data[];
};

static void mark_flush(struct lg *lg, struct client *c) {
    if (c->pending_flush) return;
    c->pending_flush = 1;
    c->next_flush = lg->flush_list;
    lg->flush_list = c;
}

static void flush(struct client *c);

static void on_write(uv_write_t *req, int status) {
    struct write_req *w = (struct write_req *)req;
    struct client *c = w->c;
    free(w);
    c->writing--;
    if (status < 0) return; /* the read side sees the error too */
    if (c->out_len) flush(c);
}

static void flush(struct client *c) {
    if (c->writing || !c->out_len || c->state == ST_CLOSED) return;
    uv_buf_t b = uv_buf_init(c->out, c->out_len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == UV_EAGAIN) n = 0;
    if (n < 0) {
        c->out_len = 0;
        return;
    }
    if ((uint32_t)n == c->out_len) {
        c->out_len = 0;
        return;
    }
    uint32_t left = c->out_len - (uint32_t)n;
    struct write_req *w = malloc(sizeof *w + left);
    if (!w) abort();
    memcpy(w->data, c->out + n, left);
    w->c = c;
    c->out_len = 0;
    c->writing++;
    uv_buf_t rest = uv_buf_init(w->data, left);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &rest, 1, on_write) != 0) {
        free(w);
        c->writing--;
    }
}

/* A write of bytes the caller keeps alive (an upload frame shared by every
 * uploader): queued behind whatever c has buffered, never copied. */
struct shared_write {
    uv_write_t req;
    struct client *c;
};

static void on_shared_write(uv_write_t *req, int status) {
    struct shared_write *w = (struct shared_write *)req;
    struct client *c = w->c;
    free(w);
    c->writing--;
    if (status < 0) return;
    if (!c->writing && c->out_len) flush(c);
}

void lg_write_shared(struct client *c, const char *p, size_t n) {
    if (c->state == ST_CLOSED) return;
    if (c->out_len) { /* what was queued before goes first: uv_write keeps the order */
        struct write_req *w = malloc(sizeof *w + c->out_len);
        if (!w) abort();
        memcpy(w->data, c->out, c->out_len);
        w->c = c;
        uv_buf_t b = uv_buf_init(w->data, c->out_len);
        c->out_len = 0;
        c->writing++;
        if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
            free(w);
            c->writing--;
        }
    }
    struct shared_write *w = malloc(sizeof *w);
    if (!w) abort();
    w->c = c;
    c->writing++;
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_shared_write) != 0) {
        free(w);
        c->writing--;
    }
}

static void on_flush_hook(uv_prepare_t *h) {
    struct lg *lg = h->data;
    while (lg->flush_list) {
        struct client *c = lg->flush_list;
        lg->flush_list = c->next_flush;
        c->pending_flush = 0;
        flush(c);
    }
}

static uint32_t xorshift(uint32_t *s) {
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

size_t lg_frame(uint8_t *o, int opcode, const char *p, size_t n, uint32_t mask) {
    size_t h = 0;
    o[h++] = (uint8_t)(0x80 | opcode);
    if (n < 126) {
        o[h++] = (uint8_t)(0x80 | n);
    } else if (n < 65536) {
        o[h++] = 0x80 | 126;
        o[h++] = (uint8_t)(n >> 8);
        o[h++] = (uint8_t)n;
    } else {
        o[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) o[h++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    uint8_t mk[4];
    memcpy(mk, &mask, 4);
    memcpy(o + h, mk, 4);
    h += 4;
    uint8_t *d = o + h;
    size_t i = 0;
    uint64_t m8;
    memcpy(&m8, mk, 4);
    memcpy((uint8_t *)&m8 + 4, mk, 4);
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        v ^= m8;
        memcpy(d + i, &v, 8);
    }
    for (; i < n; i++) d[i] = (uint8_t)p[i] ^ mk[i & 3];
    return h + n;
}

/* Appends one masked frame (FIN set) carrying p[0..n). */
static void send_frame(struct client *c, int opcode, const char *p, size_t n) {
    if (c->state == ST_CLOSED) return;
    if (grow(&c->out, &c->out_cap, c->out_len + n + 14) != 0) abort();
    c->out_len += (uint32_t)lg_frame((uint8_t *)c->out + c->out_len, opcode, p, n, xorshift(&c->rng));
    mark_flush(c->lg, c);
}

static void send_text(struct client *c, const char *p, size_t n) { send_frame(c, 1, p, n); }

/* {==================================================================
 * Closing
 * =================================================================== */

static void on_closed(uv_handle_t *h) {
    struct client *c = (struct client *)h;
    free(c->in);
    free(c->frag);
    free(c->out);
    c->in = c->frag = c->out = NULL;
    c->in_len = c->in_cap = c->frag_len = c->frag_cap = c->out_len = c->out_cap = 0;
}

/* Ends c; `failed` counts it as a set-up failure when it was not ready yet. */
static void client_end(struct client *c, const char *why) {
    struct lg *lg = c->lg;
    if (c->state == ST_CLOSED) return;
    int was = c->state;
    c->state = ST_CLOSED;
    if (was != ST_IDLE && was != ST_READY) {
        lg->n_failed++;
        lg->in_handshake--;
        set_error(lg, c, why);
    } else if (was == ST_READY) {
        lg->n_ready--;
        if (why) {
            lg->c.closed++;
            set_error(lg, c, why);
        }
    }
    if (was != ST_IDLE && !uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        uv_close((uv_handle_t *)&c->tcp, on_closed);
    }
    if (was != ST_IDLE && was != ST_READY) lg_start_more(lg);
}

void lg_close_all(struct lg *lg) {
    static const char bye[2] = {0x03, (char)0xe8}; /* 1000 */
    for (uint32_t i = 0; i < lg->n_clients; i++) {
        struct client *c = &lg->clients[i];
        if (c->state == ST_CLOSED || c->state == ST_IDLE) {
            c->state = ST_CLOSED;
            continue;
        }
        if (c->state >= ST_EIO_OPEN) {
            send_frame(c, 8, bye, 2);
            c->pending_flush = 0;
            if (!c->writing) {
                uv_buf_t b = uv_buf_init(c->out, c->out_len);
                uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
            }
        }
        client_end(c, NULL);
    }
    lg->flush_list = NULL;
}

/* {==================================================================
 * Messages
 * =================================================================== */

static void became_ready(struct client *c) {
    struct lg *lg = c->lg;
    c->state = ST_READY;
    lg->n_ready++;
    lg->in_handshake--;
    lg_start_more(lg);
}

static void send_join(struct client *c) {
    char msg[128];
    int n;
    if (c->lg->proto == PROTO_SIO)
        n = snprintf(msg, sizeof msg, "42[\"join_room\",{\"room\":\"r%u\"}]", c->room);
    else
        n = snprintf(msg, sizeof msg, "{\"event\":\"join_room\",\"data\":{\"room\":\"r%u\"},\"id\":0}", c->room);
    send_text(c, msg, (size_t)n);
    c->state = ST_JOINING;
}

void lg_send_message(struct lg *lg, struct client *c) {
    char text[4096 + 64];
    size_t size = lg->msg_size < 4096 ? lg->msg_size : 4096;
    int n = snprintf(text, sizeof text, "%llu %d %llu ", (unsigned long long)lg_now_ns(), c->sender,
                     (unsigned long long)c->sent);
    if ((size_t)n < size) {
        memset(text + n, 'x', size - (size_t)n);
        n = (int)size;
    }
    text[n] = 0;
    char msg[4096 + 256];
    int m;
    if (lg->proto == PROTO_SIO)
        m = snprintf(msg, sizeof msg, "42[\"send_message\",{\"room\":\"r%u\",\"text\":\"%s\",\"client_msg_id\":%llu}]",
                     c->room, text, (unsigned long long)c->sent);
    else
        m = snprintf(msg, sizeof msg,
                     "{\"event\":\"send_message\",\"data\":{\"room\":\"r%u\",\"text\":\"%s\",\"client_msg_id\":%llu},\"id\":%llu}",
                     c->room, text, (unsigned long long)c->sent, (unsigned long long)c->sent + 1);
    send_text(c, msg, (size_t)m);
    c->sent++;
    lg->c.sent++;
}

static void on_new_message(struct lg *lg, struct client *c, const char *p, size_t n) {
    static const char key[] = "\"text\":\"";
    const char *t = memmem(p, n, key, sizeof key - 1);
    lg->c.delivered++;
    if (!t) {
        lg->c.order_bad++;
        return;
    }
    t += sizeof key - 1;
    char *end;
    unsigned long long sent_ns = strtoull(t, &end, 10);
    long sender = strtol(end, &end, 10);
    unsigned long long seq = strtoull(end, &end, 10);
    if (lg->measuring && sent_ns <= lg->now_ns) {
        uint64_t lat = lg->now_ns - sent_ns;
        hist_record(&lg->lat, lat);
        hist_record(&lg->lat_sec, lat);
    }
    /* Sent while an upload was in flight: from the first upload's start
     * until the last one's answer (later uploads keep the span open). */
    if (lg->up_first_ns && sent_ns >= lg->up_first_ns && sent_ns <= lg->now_ns &&
        (lg->uploads_in_flight || sent_ns <= lg->up_last_done_ns))
        hist_record(&lg->lat_up, lg->now_ns - sent_ns);
    if (c->next_seq && sender >= 0 && (uint32_t)sender < lg->senders_per_room) {
        if (c->next_seq[sender] != seq) lg->c.order_bad++;
        c->next_seq[sender] = (uint32_t)seq + 1;
    } else {
        lg->c.order_bad++;
    }
}

/* One complete event: its name and the whole message text. */
static void on_event(struct client *c, const char *name, size_t name_len, const char *p, size_t n) {
    struct lg *lg = c->lg;
#define IS(lit) (name_len == sizeof(lit) - 1 && memcmp(name, lit, sizeof(lit) - 1) == 0)
    if (IS("new_message")) {
        on_new_message(lg, c, p, n);
    } else if (IS("message_sent")) {
        c->acked++;
        lg->c.acked++;
        if (lg->on_ack) lg->on_ack(lg, c);
    } else if (IS("file_sent")) {
        if (c->upload_in_flight) lg_upload_done(lg, c);
    } else if (IS("joined_room")) {
        if (c->state == ST_JOINING) became_ready(c);
    } else if (IS("connected")) {
        if (lg->proto == PROTO_PLAIN && c->state == ST_SIO_CONNECT) send_join(c);
    } else if (IS("error")) {
        lg->c.errors++;
        char what[200];
        snprintf(what, sizeof what, "error event: %.*s", (int)(n > 150 ? 150 : n), p);
        set_error(lg, c, what);
        if (c->state == ST_JOINING || c->state == ST_SIO_CONNECT) client_end(c, "refused");
        else if (c->upload_in_flight) lg_upload_done(lg, c); /* answered, if refused: the run fails on errors */
        else if (lg->on_ack && c->sender >= 0) {
            c->acked++; /* an answered message frees its window slot */
            lg->c.acked++;
            lg->on_ack(lg, c);
        }
    }
#undef IS
}

static void on_text(struct client *c, const char *p, size_t n) {
    struct lg *lg = c->lg;
    if (lg->proto == PROTO_PLAIN) {
        static const char key[] = "\"event\":\"";
        const char *e = n > 64 ? memmem(p, 64, key, sizeof key - 1) : memmem(p, n, key, sizeof key - 1);
        if (!e) return;
        e += sizeof key - 1;
        const char *q = memchr(e, '"', (size_t)(p + n - e));
        if (q) on_event(c, e, (size_t)(q - e), p, n);
        return;
    }
    if (n == 0) return;
    switch (p[0]) {
    case '0': /* open */
        if (c->state == ST_EIO_OPEN) {
            char msg[64];
            int m = snprintf(msg, sizeof msg, "40{\"name\":\"u%u\"}", c->idx);
            send_text(c, msg, (size_t)m);
            c->state = ST_SIO_CONNECT;
        }
        return;
    case '2': /* ping */
        send_text(c, "3", 1);
        lg->c.pings++;
        return;
    case '4':
        if (n >= 2 && p[1] == '0') {
            if (c->state == ST_SIO_CONNECT && memmem(p, n, "\"sid\"", 5)) send_join(c);
            return;
        }
        if (n >= 2 && p[1] == '4') {
            client_end(c, "CONNECT refused");
            return;
        }
        if (n >= 5 && p[1] == '2' && p[2] == '[' && p[3] == '"') {
            const char *q = memchr(p + 4, '"', n - 4);
            if (q) on_event(c, p + 4, (size_t)(q - (p + 4)), p, n);
        }
        return;
    default:
        return;
    }
}

/* {==================================================================
 * Input: HTTP response, then WebSocket frames
 * =================================================================== */

/* Parses what it can of p[0..n); returns bytes consumed, or -1 when c ended. */
static long parse(struct client *c, const char *p, size_t n) {
    size_t pos = 0;
    if (c->state == ST_HTTP) {
        const char *end = memmem(p, n, "\r\n\r\n", 4);
        if (!end) return n > 16384 ? (client_end(c, "HTTP response head too long"), -1) : 0;
        size_t head = (size_t)(end - p) + 4;
        if (n < 12 || memcmp(p + 9, "101", 3) != 0 || !memmem(p, head, WS_ACCEPT, sizeof WS_ACCEPT - 1)) {
            char what[160];
            snprintf(what, sizeof what, "upgrade refused: %.*s", (int)(head > 100 ? 100 : head), p);
            client_end(c, what);
            return -1;
        }
        c->state = c->lg->proto == PROTO_SIO ? ST_EIO_OPEN : ST_SIO_CONNECT;
        pos = head;
    }
    while (pos + 2 <= n) {
        const uint8_t *f = (const uint8_t *)p + pos;
        size_t avail = n - pos, h = 2;
        uint64_t len = f[1] & 0x7f;
        if (f[1] & 0x80) {
            client_end(c, "masked frame from the server");
            return -1;
        }
        if (len == 126) {
            if (avail < 4) break;
            len = ((uint64_t)f[2] << 8) | f[3];
            h = 4;
        } else if (len == 127) {
            if (avail < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = (len << 8) | f[2 + i];
            h = 10;
        }
        if (len > (64u << 20)) {
            client_end(c, "frame over 64 MiB");
            return -1;
        }
        if (avail < h + len) break;
        const char *payload = (const char *)f + h;
        int fin = f[0] & 0x80, op = f[0] & 0x0f;
        pos += h + (size_t)len;
        switch (op) {
        case 0: /* continuation */
        case 1:
        case 2:
            if (op != 0 && fin && !c->frag_len) {
                if (op == 1) on_text(c, payload, (size_t)len);
            } else {
                if (op != 0) c->frag_op = (uint8_t)op;
                if (grow(&c->frag, &c->frag_cap, c->frag_len + len) != 0) abort();
                memcpy(c->frag + c->frag_len, payload, (size_t)len);
                c->frag_len += (uint32_t)len;
                if (fin) {
                    uint32_t fl = c->frag_len;
                    c->frag_len = 0;
                    if (c->frag_op == 1) on_text(c, c->frag, fl);
                }
            }
            break;
        case 8: { /* close */
            char what[64];
            unsigned code = len >= 2 ? ((unsigned)(uint8_t)payload[0] << 8) | (uint8_t)payload[1] : 1005;
            snprintf(what, sizeof what, "closed by the server (code %u)", code);
            client_end(c, what);
            return -1;
        }
        case 9: /* ping */
            send_frame(c, 10, payload, (size_t)len);
            break;
        default:
            break;
        }
        if (c->state == ST_CLOSED) return -1;
    }
    return (long)pos;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
    (void)suggested;
    struct client *c = (struct client *)h;
    b->base = c->lg->recv_buf;
    b->len = RECV_BUF_BYTES;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
    struct client *c = (struct client *)s;
    struct lg *lg = c->lg;
    if (nread < 0) {
        client_end(c, nread == UV_EOF ? "connection closed by the server" : uv_strerror((int)nread));
        return;
    }
    if (nread == 0) return;
    lg->now_ns = lg_now_ns();
    if (c->in_len == 0) {
        long used = parse(c, b->base, (size_t)nread);
        if (used < 0) return;
        if ((size_t)used < (size_t)nread) {
            if (grow(&c->in, &c->in_cap, (size_t)nread - (size_t)used) != 0) abort();
            memcpy(c->in, b->base + used, (size_t)nread - (size_t)used);
            c->in_len = (uint32_t)((size_t)nread - (size_t)used);
        }
        return;
    }
    if (grow(&c->in, &c->in_cap, c->in_len + (size_t)nread) != 0) abort();
    memcpy(c->in + c->in_len, b->base, (size_t)nread);
    c->in_len += (uint32_t)nread;
    long used = parse(c, c->in, c->in_len);
    if (used < 0) return;
    memmove(c->in, c->in + used, c->in_len - (size_t)used);
    c->in_len -= (uint32_t)used;
    if (c->in_len == 0 && c->in_cap > 65536) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
}

/* {==================================================================
 * Connecting
 * =================================================================== */

static void on_connect(uv_connect_t *req, int status) {
    struct client *c = req->data;
    if (c->state == ST_CLOSED) return;
    if (status < 0) {
        char what[96];
        snprintf(what, sizeof what, "connect: %s", uv_strerror(status));
        client_end(c, what);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    char req_text[512];
    int n;
    if (c->lg->proto == PROTO_SIO)
        n = snprintf(req_text, sizeof req_text,
                     "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: %s\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " WS_KEY "\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     c->lg->host_header[c->idx % c->lg->n_servers]);
    else
        n = snprintf(req_text, sizeof req_text,
                     "GET /ws?name=u%u HTTP/1.1\r\nHost: %s\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " WS_KEY "\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     c->idx, c->lg->host_header[c->idx % c->lg->n_servers]);
    if (grow(&c->out, &c->out_cap, c->out_len + (size_t)n) != 0) abort();
    memcpy(c->out + c->out_len, req_text, (size_t)n);
    c->out_len += (uint32_t)n;
    mark_flush(c->lg, c);
    c->state = ST_HTTP;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* Returns 0, or an error; c->state says whether the handle exists (ST_CONNECTING). */
static int start_client(struct lg *lg, struct client *c) {
    int rc = uv_tcp_init_ex(lg->loop, &c->tcp, AF_INET);
    if (rc != 0) return rc;
    c->state = ST_CONNECTING;
    c->rng = 2463534242u ^ (c->idx * 2654435761u);
    if (!c->rng) c->rng = 1;
    if (lg->n_src_addrs > 1) {
        uv_os_fd_t fd;
        uv_fileno((uv_handle_t *)&c->tcp, &fd);
        int one = 1;
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in src = {0};
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl(0x7f000001u + c->idx % lg->n_src_addrs);
        if ((rc = uv_tcp_bind(&c->tcp, (struct sockaddr *)&src, 0)) != 0) return rc;
    }
    c->creq.data = c;
    return uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&lg->server[c->idx % lg->n_servers], on_connect);
}

void lg_start_more(struct lg *lg) {
    if (lg->starting) return; /* a failure inside the loop below calls back here */
    lg->starting = 1;
    while (lg->next_to_start < lg->n_clients && lg->in_handshake < lg->max_in_handshake) {
        struct client *c = &lg->clients[lg->next_to_start++];
        lg->in_handshake++;
        int rc = start_client(lg, c);
        if (rc != 0) {
            char what[96];
            snprintf(what, sizeof what, "socket: %s", uv_strerror(rc));
            if (c->state == ST_IDLE) { /* no handle was made */
                c->state = ST_CLOSED;
                lg->n_failed++;
                lg->in_handshake--;
                set_error(lg, c, what);
                continue;
            }
            client_end(c, what);
        }
    }
    lg->starting = 0;
    if (lg->next_to_start == lg->n_clients && lg->in_handshake == 0 && !lg->setup_done_ns)
        lg->setup_done_ns = lg_now_ns();
}

void lg_init(struct lg *lg, uv_loop_t *loop) {
    lg->loop = loop;
    lg->recv_buf = malloc(RECV_BUF_BYTES);
    if (!lg->recv_buf) abort();
    uv_prepare_init(loop, &lg->flush_hook);
    lg->flush_hook.data = lg;
    uv_prepare_start(&lg->flush_hook, on_flush_hook);
    hist_reset(&lg->lat);
    hist_reset(&lg->lat_sec);
    hist_reset(&lg->lat_up);
}
