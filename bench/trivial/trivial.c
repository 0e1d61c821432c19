/* trivial-server: the least a server can do for the load generator's
 * Socket.IO fan-out and inbound scenarios, to measure the load generator's
 * own ceiling. No Lua, no JSON parser, no validation, no pings: it answers
 * the WebSocket upgrade, the Engine.IO open, 40 (CONNECT), join_room and
 * send_message, broadcasting one shared refcounted frame to the other
 * members of the room, with output corked and flushed once per loop turn
 * (one writev per connection), as space-server does.
 *
 *   trivial-server [--port P]     (127.0.0.1; prints "listening port=P")
 *
 * Not a server for anything else: it trusts its client. */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define RECV_BUF_BYTES (256 * 1024)
#define ROOM_BUCKETS 4096
#define MAX_IOV 64

typedef struct buf {
    uint32_t refs, len;
    char data[];
} buf;

static buf *buf_new(size_t len) {
    buf *b = malloc(sizeof *b + len);
    if (!b) abort();
    b->refs = 1;
    b->len = (uint32_t)len;
    return b;
}
static void buf_unref(buf *b) {
    if (--b->refs == 0) free(b);
}

struct room;
struct conn {
    uv_tcp_t tcp;
    int ws;                 /* upgraded */
    char *in;
    size_t in_len, in_cap;
    buf **q;
    uint32_t *q_off;        /* bytes of q[0] written */
    uint32_t q_len, q_cap;
    int writing, pending, closing;
    struct conn *next_flush;
    struct room *room;
    uint32_t member_idx;
    char name[32];
};

struct room {
    struct room *next;
    struct conn **m;
    uint32_t n, cap;
    char name[64];
};

static uv_loop_t *loop;
static char recv_buf[RECV_BUF_BYTES];
static struct conn *flush_list;
static struct room *rooms[ROOM_BUCKETS];
static uint64_t next_id;

/* {================================================================== output */

static void mark(struct conn *c) {
    if (c->pending) return;
    c->pending = 1;
    c->next_flush = flush_list;
    flush_list = c;
}

static void queue(struct conn *c, buf *b) {
    if (c->closing) return;
    if (c->q_len == c->q_cap) {
        c->q_cap = c->q_cap ? c->q_cap * 2 : 8;
        c->q = realloc(c->q, c->q_cap * sizeof *c->q);
        if (!c->q) abort();
    }
    b->refs++;
    c->q[c->q_len++] = b;
    mark(c);
}

static buf *frame(const char *p, size_t n) {
    size_t h = n < 126 ? 2 : n < 65536 ? 4 : 10;
    buf *b = buf_new(h + n);
    uint8_t *o = (uint8_t *)b->data;
    o[0] = 0x81;
    if (n < 126) {
        o[1] = (uint8_t)n;
    } else if (n < 65536) {
        o[1] = 126;
        o[2] = (uint8_t)(n >> 8);
        o[3] = (uint8_t)n;
    } else {
        o[1] = 127;
        for (int i = 0; i < 8; i++) o[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    }
    memcpy(b->data + h, p, n);
    return b;
}

static void send_text(struct conn *c, const char *p, size_t n) {
    buf *b = frame(p, n);
    queue(c, b);
    buf_unref(b);
}

struct wreq {
    uv_write_t req;
    struct conn *c;
    char data[];
};

static void flush(struct conn *c);
static void on_write(uv_write_t *r, int status) {
    struct wreq *w = (struct wreq *)r;
    struct conn *c = w->c;
    free(w);
    c->writing = 0;
    if (status == 0 && c->q_len) flush(c);
}

static void flush(struct conn *c) {
    uint32_t head = 0, off = 0;
    if (c->writing || c->closing) return;
    while (head < c->q_len) {
        uv_buf_t iov[MAX_IOV];
        uint32_t n = 0;
        size_t total = 0;
        for (uint32_t i = head; i < c->q_len && n < MAX_IOV; i++, n++) {
            iov[n] = uv_buf_init(c->q[i]->data + (i == head ? off : 0), c->q[i]->len - (i == head ? off : 0));
            total += iov[n].len;
        }
        int w = uv_try_write((uv_stream_t *)&c->tcp, iov, n);
        if (w == UV_EAGAIN) w = 0;
        if (w < 0) break;
        size_t left = (size_t)w;
        while (head < c->q_len && left >= c->q[head]->len - off) {
            left -= c->q[head]->len - off;
            buf_unref(c->q[head++]);
            off = 0;
        }
        off += (uint32_t)left;
        if ((size_t)w < total) break; /* the socket is full */
    }
    if (head < c->q_len) {
        /* The socket is full: copy the rest into one uv_write. */
        size_t total = 0;
        for (uint32_t i = head; i < c->q_len; i++) total += c->q[i]->len - (i == head ? off : 0);
        struct wreq *w = malloc(sizeof *w + total);
        if (!w) abort();
        size_t pos = 0;
        for (uint32_t i = head; i < c->q_len; i++) {
            size_t k = c->q[i]->len - (i == head ? off : 0);
            memcpy(w->data + pos, c->q[i]->data + (i == head ? off : 0), k);
            pos += k;
            buf_unref(c->q[i]);
        }
        w->c = c;
        c->writing = 1;
        uv_buf_t b = uv_buf_init(w->data, (unsigned)total);
        if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
            free(w);
            c->writing = 0;
        }
    }
    c->q_len = 0;
}

static void on_flush(uv_prepare_t *h) {
    (void)h;
    while (flush_list) {
        struct conn *c = flush_list;
        flush_list = c->next_flush;
        c->pending = 0;
        flush(c);
    }
}

/* {================================================================== rooms */

static unsigned hash(const char *s, size_t n) {
    unsigned h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h % ROOM_BUCKETS;
}

static struct room *room_get(const char *name, size_t n, int create) {
    if (n >= sizeof(((struct room *)0)->name)) return NULL;
    unsigned h = hash(name, n);
    for (struct room *r = rooms[h]; r; r = r->next)
        if (strlen(r->name) == n && memcmp(r->name, name, n) == 0) return r;
    if (!create) return NULL;
    struct room *r = calloc(1, sizeof *r);
    if (!r) abort();
    memcpy(r->name, name, n);
    r->next = rooms[h];
    rooms[h] = r;
    return r;
}

static void room_leave(struct conn *c) {
    struct room *r = c->room;
    if (!r) return;
    struct conn *last = r->m[--r->n];
    r->m[c->member_idx] = last;
    last->member_idx = c->member_idx;
    c->room = NULL;
}

/* The string value of "key":"..." in p[0..n), without unescaping. */
static int field(const char *p, size_t n, const char *key, const char **v, size_t *vn) {
    char pat[32];
    int k = snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *s = memmem(p, n, pat, (size_t)k);
    if (!s) return 0;
    s += k;
    const char *end = p + n;
    if (s < end && *s == '"') {
        s++;
        const char *e = s;
        while (e < end && *e != '"') e += *e == '\\' ? 2 : 1;
        if (e > end) return 0;
        *v = s;
        *vn = (size_t)(e - s);
        return 1;
    }
    const char *e = s;
    while (e < end && *e != ',' && *e != '}') e++;
    *v = s;
    *vn = (size_t)(e - s);
    return 1;
}

/* {================================================================== protocol */

static void on_message(struct conn *c, const char *p, size_t n) {
    char out[8192];
    if (n >= 2 && p[0] == '4' && p[1] == '0') {
        send_text(c, "40{\"sid\":\"trivialtrivialtrivia\"}", 32);
        send_text(c, "42[\"connected\",{}]", 18);
        const char *v;
        size_t vn;
        if (field(p, n, "name", &v, &vn) && vn < sizeof c->name) memcpy(c->name, v, vn), c->name[vn] = 0;
        return;
    }
    if (n < 4 || p[0] != '4' || p[1] != '2') return;
    const char *room, *text, *cmid;
    size_t rn, tn, cn;
    if (n > 14 && memcmp(p + 2, "[\"join_room\"", 12) == 0) {
        if (!field(p, n, "room", &room, &rn)) return;
        struct room *r = room_get(room, rn, 1);
        if (!r) return;
        if (c->room != r) {
            room_leave(c);
            if (r->n == r->cap) {
                r->cap = r->cap ? r->cap * 2 : 8;
                r->m = realloc(r->m, r->cap * sizeof *r->m);
                if (!r->m) abort();
            }
            c->room = r;
            c->member_idx = r->n;
            r->m[r->n++] = c;
        }
        int k = snprintf(out, sizeof out, "42[\"joined_room\",{\"room\":\"%.*s\",\"users\":[],\"count\":%u}]", (int)rn,
                         room, r->n);
        send_text(c, out, (size_t)k);
        return;
    }
    if (n > 17 && memcmp(p + 2, "[\"send_message\"", 15) == 0) {
        if (!field(p, n, "room", &room, &rn) || !field(p, n, "text", &text, &tn)) return;
        if (!field(p, n, "client_msg_id", &cmid, &cn)) cmid = "null", cn = 4;
        struct room *r = room_get(room, rn, 0);
        if (!r || tn > 6000) return;
        unsigned long long id = ++next_id;
        int k = snprintf(out, sizeof out,
                         "42[\"new_message\",{\"id\":\"%llu\",\"room\":\"%.*s\",\"user\":{\"id\":\"dev:%s\",\"name\":\"%s\"},"
                         "\"text\":\"%.*s\",\"timestamp\":0}]",
                         id, (int)rn, room, c->name, c->name, (int)tn, text);
        buf *b = frame(out, (size_t)k);
        for (uint32_t i = 0; i < r->n; i++)
            if (r->m[i] != c) queue(r->m[i], b);
        buf_unref(b);
        k = snprintf(out, sizeof out,
                     "42[\"message_sent\",{\"id\":\"%llu\",\"room\":\"%.*s\",\"timestamp\":0,\"client_msg_id\":%.*s}]", id,
                     (int)rn, room, (int)cn, cmid);
        send_text(c, out, (size_t)k);
    }
}

/* {================================================================== connections */

static void on_closed(uv_handle_t *h) {
    struct conn *c = (struct conn *)h;
    for (uint32_t i = 0; i < c->q_len; i++) buf_unref(c->q[i]);
    free(c->q);
    free(c->in);
    free(c);
}

static void conn_close(struct conn *c) {
    if (c->closing) return;
    room_leave(c);
    c->closing = 1;
    if (c->pending) {
        for (struct conn **p = &flush_list; *p; p = &(*p)->next_flush)
            if (*p == c) {
                *p = c->next_flush;
                break;
            }
    }
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static size_t handshake(struct conn *c, char *p, size_t n) {
    char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end) return 0;
    char *key = memmem(p, (size_t)(end - p), "Sec-WebSocket-Key: ", 19);
    if (!key) {
        conn_close(c);
        return 0;
    }
    key += 19;
    char *ke = memchr(key, '\r', (size_t)(end + 2 - key));
    char src[128];
    int kn = snprintf(src, sizeof src, "%.*s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", (int)(ke - key), key);
    unsigned char sha[SHA_DIGEST_LENGTH];
    SHA1((unsigned char *)src, (size_t)kn, sha);
    char acc[64];
    EVP_EncodeBlock((unsigned char *)acc, sha, SHA_DIGEST_LENGTH);
    char resp[256];
    int rn = snprintf(resp, sizeof resp,
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: %s\r\n\r\n",
                      acc);
    buf *b = buf_new((size_t)rn);
    memcpy(b->data, resp, (size_t)rn);
    queue(c, b);
    buf_unref(b);
    static const char open[] =
        "0{\"sid\":\"trivialtrivialtrivia\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}";
    send_text(c, open, sizeof open - 1);
    c->ws = 1;
    return (size_t)(end + 4 - p);
}

/* Parses masked client frames in p[0..n) (unmasking in place); returns bytes used. */
static size_t parse(struct conn *c, char *p, size_t n) {
    size_t pos = 0;
    if (!c->ws) {
        pos = handshake(c, p, n);
        if (!c->ws) return 0;
    }
    while (pos + 6 <= n && !c->closing) {
        uint8_t *f = (uint8_t *)p + pos;
        uint64_t len = f[1] & 0x7f;
        size_t h = 2;
        if (len == 126) {
            if (n - pos < 8) break;
            len = ((uint64_t)f[2] << 8) | f[3];
            h = 4;
        } else if (len == 127) {
            if (n - pos < 14) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = (len << 8) | f[2 + i];
            h = 10;
        }
        if (n - pos < h + 4 + len) break;
        uint8_t *mk = f + h;
        char *d = (char *)f + h + 4;
        for (uint64_t i = 0; i < len; i++) d[i] ^= (char)mk[i & 3];
        int op = f[0] & 0x0f;
        if (op == 8) {
            conn_close(c);
            return n;
        }
        if (op == 1) on_message(c, d, (size_t)len);
        pos += h + 4 + (size_t)len;
    }
    return pos;
}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
    (void)h;
    (void)s;
    b->base = recv_buf;
    b->len = RECV_BUF_BYTES;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
    struct conn *c = (struct conn *)s;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0) return;
    char *p = b->base;
    size_t n = (size_t)nread;
    if (c->in_len) {
        if (c->in_len + n > c->in_cap) {
            c->in_cap = (c->in_len + n) * 2;
            c->in = realloc(c->in, c->in_cap);
            if (!c->in) abort();
        }
        memcpy(c->in + c->in_len, p, n);
        c->in_len += n;
        p = c->in;
        n = c->in_len;
    }
    size_t used = parse(c, p, n);
    if (c->closing) return;
    size_t left = n - used;
    if (left && p != c->in) {
        if (left > c->in_cap) {
            c->in_cap = left * 2;
            c->in = realloc(c->in, c->in_cap);
            if (!c->in) abort();
        }
        memcpy(c->in, p + used, left);
    } else if (left) {
        memmove(c->in, c->in + used, left);
    }
    c->in_len = left;
}

static void on_connection(uv_stream_t *l, int status) {
    if (status < 0) return;
    struct conn *c = calloc(1, sizeof *c);
    if (!c) abort();
    uv_tcp_init(loop, &c->tcp);
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    strcpy(c->name, "anon");
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_signal(uv_signal_t *h, int sig) {
    (void)sig;
    (void)h;
    exit(0);
}

int main(int argc, char **argv) {
    int port = 0;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--port")) port = atoi(argv[++i]);
    signal(SIGPIPE, SIG_IGN);
    loop = uv_default_loop();
    uv_tcp_t listener;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", port, &addr);
    uv_tcp_init(loop, &listener);
    int rc = uv_tcp_bind(&listener, (struct sockaddr *)&addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&listener, 1024, on_connection);
    if (rc != 0) {
        fprintf(stderr, "trivial-server: listen: %s\n", uv_strerror(rc));
        return 1;
    }
    int len = sizeof addr;
    uv_tcp_getsockname(&listener, (struct sockaddr *)&addr, &len);
    fprintf(stderr, "trivial-server: listening port=%d\n", ntohs(addr.sin_port));
    uv_prepare_t prep;
    uv_prepare_init(loop, &prep);
    uv_prepare_start(&prep, on_flush);
    uv_signal_t s1, s2;
    uv_signal_init(loop, &s1);
    uv_signal_start(&s1, on_signal, SIGTERM);
    uv_signal_init(loop, &s2);
    uv_signal_start(&s2, on_signal, SIGINT);
    return uv_run(loop, UV_RUN_DEFAULT);
}
