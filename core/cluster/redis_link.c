/* redis_link: the two connections go up and down together, so the link has
 * one state: DOWN (waiting for the retry timer) -> RESOLVING (a host name
 * through uv_getaddrinfo) -> CONNECTING (both contexts open, AUTH/SELECT/
 * PING and the subscriptions sent, their replies counted in `awaiting`) ->
 * UP. Any failure tears both contexts down and goes back to DOWN.
 *
 * hiredis frees a context itself after its connect callback reports an
 * error and after its disconnect callback, so those two callbacks forget the
 * pointer first. We free a context ourselves only from the loop or from one
 * of its reply callbacks (hiredis defers that free until the callback
 * returns), never from a connect callback. */
#include "redis_link.h"

#include <arpa/inet.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "redis_uv.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_TIMEOUT_MS 5000
/* hiredis 0.14 has no reply timeouts: a Redis that stops answering (frozen,
 * or a half-open connection) is found by a PING on the command connection
 * that is still unanswered one interval later. */
#define HEARTBEAT_MS 3000

enum link_state { LINK_DOWN, LINK_RESOLVING, LINK_CONNECTING, LINK_UP };

struct subscription {
    char *name;
    size_t len;
    int pattern;
};

struct redis_link {
    uv_loop_t *loop;
    struct redis_url url;
    struct redis_link_ops ops;
    void *ud;

    enum link_state state;
    int closing;                 /* redis_link_free was called: no more callbacks */
    int open_handles;            /* timers not closed yet (the struct goes with the last) */
    redisAsyncContext *sub, *cmd;
    uv_timer_t timer;            /* DOWN: the retry; RESOLVING/CONNECTING: the deadline */
    uv_timer_t beat;             /* UP: the heartbeat */
    int ping_outstanding;
    uv_getaddrinfo_t *resolving; /* in flight (may outlive its attempt), or NULL */
    unsigned awaiting;           /* replies still due before the link is up */
    uint64_t backoff_ms;
    uint64_t rng;
    int down_logged; /* "link down" was logged since the last "link up" */
    char addr[INET6_ADDRSTRLEN];
    char err[128]; /* why the last context could not be opened */

    struct subscription *subs;
    size_t n_subs, cap_subs;
    struct redis_link_stats stats;
};

/* A command's callback and its caller's data, until hiredis answers. */
struct pending_cmd {
    struct redis_link *l;
    redis_link_reply_fn cb;
    void *ud;
};

static void start_attempt(struct redis_link *l);
static void on_timer(uv_timer_t *t);

static uint64_t next_random(struct redis_link *l) {
    /* xorshift64: jitter only, nothing secret */
    uint64_t x = l->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return l->rng = x;
}

/* Both contexts, forgotten first so their disconnect callbacks see nothing to do. */
static void drop_contexts(struct redis_link *l) {
    redisAsyncContext *sub = l->sub, *cmd = l->cmd;
    l->sub = l->cmd = NULL;
    if (sub) redisAsyncFree(sub);
    if (cmd) redisAsyncFree(cmd);
}

static void fail(struct redis_link *l, const char *why) {
    if (l->closing || l->state == LINK_DOWN) return;
    int was_up = l->state == LINK_UP;
    l->state = LINK_DOWN;
    l->stats.up = 0;
    uv_timer_stop(&l->timer);
    uv_timer_stop(&l->beat);
    /* why may point into a context about to be freed: quote it first */
    char reason[LOG_QUOTED_MAX];
    log_quoted(reason, sizeof reason, why ? why : "unknown");
    drop_contexts(l); /* calls pending commands' callbacks (NULL): one may free the link */
    if (l->closing) return;

    uint64_t half = l->backoff_ms / 2;
    uint64_t delay = half + next_random(l) % (l->backoff_ms - half + 1);
    l->backoff_ms = l->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : l->backoff_ms * 2;
    if (was_up) l->stats.disconnects++;
    if (!l->down_logged) {
        log_warn("redis", "link down address=%s:%d reason=\"%s\" retrying_in_ms=%llu", l->url.host,
                 l->url.port, reason, (unsigned long long)delay);
        l->down_logged = 1;
    } else {
        log_debug("redis", "connect failed address=%s:%d reason=\"%s\" retrying_in_ms=%llu",
                  l->url.host, l->url.port, reason, (unsigned long long)delay);
    }
    uv_timer_start(&l->timer, on_timer, delay, 0);
    if (was_up && l->ops.on_down) l->ops.on_down(l->ud);
}

static void on_ping(redisAsyncContext *ac, void *r, void *privdata) {
    struct redis_link *l = privdata;
    if (r && !l->closing) l->ping_outstanding = 0; /* even an error reply: Redis answers */
}

static void on_beat(uv_timer_t *t) {
    struct redis_link *l = t->data;
    if (l->state != LINK_UP || !l->cmd) return;
    if (l->ping_outstanding) {
        fail(l, "no answer to PING within 3 s");
        return;
    }
    const char *argv[1] = {"PING"};
    size_t len[1] = {4};
    if (redisAsyncCommandArgv(l->cmd, on_ping, l, 1, argv, len) == REDIS_OK) l->ping_outstanding = 1;
}

static void maybe_up(struct redis_link *l) {
    if (l->closing || l->state != LINK_CONNECTING || l->awaiting) return;
    l->state = LINK_UP;
    l->stats.up = 1;
    l->stats.connects++;
    l->backoff_ms = BACKOFF_MIN_MS;
    l->down_logged = 0;
    uv_timer_stop(&l->timer);
    l->ping_outstanding = 0;
    uv_timer_start(&l->beat, on_beat, HEARTBEAT_MS, HEARTBEAT_MS);
    log_info("redis", "link up address=%s:%d db=%d subscriptions=%zu", l->url.host, l->url.port,
             l->url.db, l->n_subs);
    if (l->ops.on_up) l->ops.on_up(l->ud);
}

/* AUTH, SELECT and PING while connecting: each one answered brings the link nearer to up. */
static void on_setup_reply(redisAsyncContext *ac, void *r, void *privdata) {
    struct redis_link *l = privdata;
    redisReply *reply = r;
    if (l->closing || l->state != LINK_CONNECTING) return;
    if (!reply) {
        fail(l, "connection lost while connecting");
    } else if (reply->type == REDIS_REPLY_ERROR) {
        fail(l, reply->str);
    } else {
        l->awaiting--;
        maybe_up(l);
    }
}

static void on_sub_reply(redisAsyncContext *ac, void *r, void *privdata) {
    struct redis_link *l = privdata;
    redisReply *reply = r;
    /* NULL: the context is being freed */
    if (!reply || l->closing || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
    redisReply **e = reply->element;
    for (size_t i = 0; i < reply->elements; i++)
        if (e[i]->type != REDIS_REPLY_STRING && e[i]->type != REDIS_REPLY_INTEGER) return;
    const char *kind = e[0]->str;
    if (e[0]->type != REDIS_REPLY_STRING) return;
    if (!strcmp(kind, "subscribe") || !strcmp(kind, "psubscribe")) {
        if (l->state == LINK_CONNECTING && l->awaiting) {
            l->awaiting--;
            maybe_up(l);
        }
    } else if (!strcmp(kind, "message") && reply->elements == 3 && e[2]->type == REDIS_REPLY_STRING) {
        l->stats.received++;
        if (l->ops.on_message)
            l->ops.on_message(l->ud, e[1]->str, e[1]->len, NULL, e[2]->str, e[2]->len);
    } else if (!strcmp(kind, "pmessage") && reply->elements == 4 && e[3]->type == REDIS_REPLY_STRING) {
        l->stats.received++;
        if (l->ops.on_message)
            l->ops.on_message(l->ud, e[2]->str, e[2]->len, e[1]->str, e[3]->str, e[3]->len);
    }
}

static int send_subscription(struct redis_link *l, const struct subscription *s) {
    const char *argv[2] = {s->pattern ? "PSUBSCRIBE" : "SUBSCRIBE", s->name};
    size_t lens[2] = {strlen(argv[0]), s->len};
    return redisAsyncCommandArgv(l->sub, on_sub_reply, l, 2, argv, lens) == REDIS_OK ? 0 : -1;
}

static void forget(struct redis_link *l, const redisAsyncContext *ac) {
    if (l->sub == ac) l->sub = NULL;
    if (l->cmd == ac) l->cmd = NULL;
}

/* hiredis frees ac after this when status is an error. */
static void on_connect(const redisAsyncContext *ac, int status) {
    struct redis_link *l = ac->data;
    if (status != REDIS_OK) {
        forget(l, ac);
        fail(l, ac->errstr);
        return;
    }
    /* TCP keepalive too (hiredis: idle 15 s), for the subscriber, which takes no PING. */
    redisEnableKeepAlive((redisContext *)&ac->c);
}

/* hiredis frees ac after this. */
static void on_disconnect(const redisAsyncContext *ac, int status) {
    struct redis_link *l = ac->data;
    int ours = l->sub == ac || l->cmd == ac;
    forget(l, ac);
    if (ours) fail(l, status == REDIS_OK ? "connection closed" : ac->errstr);
}

static redisAsyncContext *open_context(struct redis_link *l, const char **err) {
    redisAsyncContext *ac = redisAsyncConnect(l->addr, l->url.port);
    if (!ac) {
        *err = "out of memory";
        return NULL;
    }
    if (ac->err || redis_uv_attach(ac, l->loop) != 0) {
        snprintf(l->err, sizeof l->err, "%s", ac->err ? ac->errstr : "cannot poll the socket");
        *err = l->err;
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = l;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

/* Queues cmd on ac and counts its reply as awaited. */
static int setup_command(struct redis_link *l, redisAsyncContext *ac, int argc, const char **argv) {
    size_t lens[3];
    for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
    if (redisAsyncCommandArgv(ac, on_setup_reply, l, argc, argv, lens) != REDIS_OK) return -1;
    l->awaiting++;
    return 0;
}

static int setup_auth(struct redis_link *l, redisAsyncContext *ac) {
    if (!l->url.has_password) return 0;
    if (l->url.user[0]) return setup_command(l, ac, 3, (const char *[]){"AUTH", l->url.user, l->url.password});
    return setup_command(l, ac, 2, (const char *[]){"AUTH", l->url.password});
}

/* Everything is queued at once: hiredis writes it when the connect completes. */
static void connect_to(struct redis_link *l) {
    const char *err = NULL;
    l->state = LINK_CONNECTING;
    l->awaiting = 0;
    l->sub = open_context(l, &err);
    if (l->sub) l->cmd = open_context(l, &err);
    if (!l->sub || !l->cmd) {
        fail(l, err);
        return;
    }
    int rc = setup_auth(l, l->cmd);
    if (!rc && l->url.db) {
        char db[16];
        snprintf(db, sizeof db, "%d", l->url.db);
        rc = setup_command(l, l->cmd, 2, (const char *[]){"SELECT", db});
    }
    if (!rc) rc = setup_command(l, l->cmd, 1, (const char *[]){"PING"});
    /* the subscriber: AUTH and PING before SUBSCRIBE (afterwards it takes no other command) */
    if (!rc) rc = setup_auth(l, l->sub);
    if (!rc) rc = setup_command(l, l->sub, 1, (const char *[]){"PING"});
    for (size_t i = 0; !rc && i < l->n_subs; i++) {
        rc = send_subscription(l, &l->subs[i]);
        if (!rc) l->awaiting++;
    }
    if (rc) fail(l, "cannot queue the setup commands");
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
    struct redis_link *l = req->data;
    l->resolving = NULL;
    free(req);
    if (l->closing || l->state != LINK_RESOLVING) { /* freed, or that attempt timed out */
        uv_freeaddrinfo(res);
        if (l->closing && !l->open_handles) free(l);
        return;
    }
    if (status < 0 || !res) {
        uv_freeaddrinfo(res);
        fail(l, status < 0 ? uv_strerror(status) : "no address");
        return;
    }
    if (res->ai_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)res->ai_addr, l->addr, sizeof l->addr);
    else
        uv_ip4_name((const struct sockaddr_in *)res->ai_addr, l->addr, sizeof l->addr);
    uv_freeaddrinfo(res);
    connect_to(l);
}

static void start_attempt(struct redis_link *l) {
    unsigned char tmp[sizeof(struct in6_addr)];
    uv_timer_start(&l->timer, on_timer, CONNECT_TIMEOUT_MS, 0);
    size_t hlen = strlen(l->url.host);
    if (hlen < sizeof l->addr &&
        (inet_pton(AF_INET, l->url.host, tmp) == 1 || inet_pton(AF_INET6, l->url.host, tmp) == 1)) {
        memcpy(l->addr, l->url.host, hlen + 1);
        connect_to(l);
        return;
    }
    l->state = LINK_RESOLVING;
    if (l->resolving) return; /* the last attempt's lookup is still out: its answer serves this one */
    uv_getaddrinfo_t *req = malloc(sizeof *req);
    if (!req) {
        fail(l, "out of memory");
        return;
    }
    req->data = l;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(l->loop, req, on_resolved, l->url.host, NULL, &hints);
    if (rc < 0) {
        free(req);
        fail(l, uv_strerror(rc));
        return;
    }
    l->resolving = req;
}

static void on_timer(uv_timer_t *t) {
    struct redis_link *l = t->data;
    if (l->state == LINK_DOWN) start_attempt(l);
    else if (l->state != LINK_UP) fail(l, "connect timed out");
}

struct redis_link *redis_link_new(uv_loop_t *loop, const struct redis_url *url,
                                  const struct redis_link_ops *ops, void *ud) {
    struct redis_link *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->loop = loop;
    l->url = *url;
    if (ops) l->ops = *ops;
    l->ud = ud;
    l->backoff_ms = BACKOFF_MIN_MS;
    l->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)l;
    if (!l->rng) l->rng = 1;
    uv_timer_init(loop, &l->timer);
    uv_timer_init(loop, &l->beat);
    l->timer.data = l->beat.data = l;
    l->open_handles = 2;
    start_attempt(l);
    return l;
}

static int add_subscription(struct redis_link *l, const char *name, size_t len, int pattern) {
    if (!l || l->closing) return -1;
    for (size_t i = 0; i < l->n_subs; i++)
        if (l->subs[i].pattern == pattern && l->subs[i].len == len && !memcmp(l->subs[i].name, name, len))
            return 0;
    if (l->n_subs == l->cap_subs) {
        size_t cap = l->cap_subs ? l->cap_subs * 2 : 8;
        struct subscription *s = realloc(l->subs, cap * sizeof *s);
        if (!s) return -1;
        l->subs = s;
        l->cap_subs = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return -1;
    memcpy(copy, name, len);
    copy[len] = 0;
    struct subscription *s = &l->subs[l->n_subs++];
    *s = (struct subscription){copy, len, pattern};
    if ((l->state == LINK_CONNECTING || l->state == LINK_UP) && l->sub && send_subscription(l, s) == 0 &&
        l->state == LINK_CONNECTING)
        l->awaiting++;
    return 0;
}

int redis_link_subscribe(struct redis_link *l, const char *channel, size_t len) {
    return add_subscription(l, channel, len, 0);
}

int redis_link_psubscribe(struct redis_link *l, const char *pattern, size_t len) {
    return add_subscription(l, pattern, len, 1);
}

static void on_publish_reply(redisAsyncContext *ac, void *r, void *privdata) {
    struct redis_link *l = privdata;
    redisReply *reply = r;
    if (l->closing) return;
    if (reply && reply->type == REDIS_REPLY_INTEGER) l->stats.published++;
    else l->stats.publish_failed++;
}

int redis_link_publish(struct redis_link *l, const char *channel, size_t clen, const void *data,
                       size_t len) {
    if (l->closing) return -1;
    const char *argv[3] = {"PUBLISH", channel, data};
    size_t lens[3] = {7, clen, len};
    if (l->state != LINK_UP || !l->cmd ||
        redisAsyncCommandArgv(l->cmd, on_publish_reply, l, 3, argv, lens) != REDIS_OK) {
        l->stats.publish_failed++;
        return -1;
    }
    return 0;
}

static void on_command_reply(redisAsyncContext *ac, void *r, void *privdata) {
    struct pending_cmd *p = privdata;
    if (!p->l->closing && p->cb) p->cb(p->ud, r);
    free(p);
}

int redis_link_command(struct redis_link *l, redis_link_reply_fn cb, void *ud, int argc,
                       const char **argv, const size_t *argvlen) {
    if (l->closing || l->state != LINK_UP || !l->cmd) return -1;
    struct pending_cmd *p = malloc(sizeof *p);
    if (!p) return -1;
    *p = (struct pending_cmd){l, cb, ud};
    if (redisAsyncCommandArgv(l->cmd, on_command_reply, p, argc, argv, argvlen) != REDIS_OK) {
        free(p);
        return -1;
    }
    return 0;
}

int redis_link_is_up(const struct redis_link *l) { return l->state == LINK_UP && !l->closing; }

void redis_link_stats(const struct redis_link *l, struct redis_link_stats *out) { *out = l->stats; }

static void on_timer_closed(uv_handle_t *h) {
    struct redis_link *l = h->data;
    if (--l->open_handles == 0 && !l->resolving) free(l); /* else on_resolved frees it */
}

/* From the loop, outside every hiredis callback: the contexts can go now. */
static void on_final(uv_timer_t *t) {
    struct redis_link *l = t->data;
    drop_contexts(l);
    for (size_t i = 0; i < l->n_subs; i++) free(l->subs[i].name);
    free(l->subs);
    l->subs = NULL;
    l->n_subs = 0;
    uv_close((uv_handle_t *)&l->timer, on_timer_closed);
    uv_close((uv_handle_t *)&l->beat, on_timer_closed);
}

void redis_link_free(struct redis_link *l) {
    if (!l || l->closing) return;
    l->closing = 1;
    l->stats.up = 0;
    if (l->resolving) uv_cancel((uv_req_t *)l->resolving);
    uv_timer_stop(&l->beat);
    uv_timer_stop(&l->timer);
    uv_timer_start(&l->timer, on_final, 0, 0);
}
