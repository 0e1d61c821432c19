/* redis_uv: hiredis's five event hooks over one uv_poll_t. */
#include "redis_uv.h"

#include <hiredis/async.h>
#include <stdlib.h>

struct redis_uv {
    uv_poll_t poll;
    redisAsyncContext *ac; /* NULL once hiredis has let go (cleanup ran) */
    int events;            /* UV_READABLE | UV_WRITABLE hiredis asked for */
};

static void on_poll(uv_poll_t *h, int status, int events) {
    struct redis_uv *g = h->data;
    if (!g->ac) return;
    if (status < 0) {
        /* libuv has stopped the handle (a socket error). hiredis learns the
         * cause from the socket itself: while connecting, the write handler
         * reads SO_ERROR and calls the connect callback with the error;
         * afterwards a read gets the reset or EOF and disconnects. */
        redisAsyncContext *ac = g->ac;
        if (ac->c.flags & REDIS_CONNECTED) redisAsyncHandleRead(ac);
        else redisAsyncHandleWrite(ac);
        /* Still attached after that: never leave a context without events
         * (it would hang); freeing reports a disconnect to its owner. */
        if (g->ac) redisAsyncFree(g->ac);
        return;
    }
    if ((events & UV_READABLE) && g->ac) redisAsyncHandleRead(g->ac);
    if ((events & UV_WRITABLE) && g->ac) redisAsyncHandleWrite(g->ac);
}

static void update(struct redis_uv *g, int events) {
    if (events == g->events || !g->ac) return;
    g->events = events;
    if (events) uv_poll_start(&g->poll, events, on_poll);
    else uv_poll_stop(&g->poll);
}

static void add_read(void *p) { struct redis_uv *g = p; update(g, g->events | UV_READABLE); }
static void del_read(void *p) { struct redis_uv *g = p; update(g, g->events & ~UV_READABLE); }
static void add_write(void *p) { struct redis_uv *g = p; update(g, g->events | UV_WRITABLE); }
static void del_write(void *p) { struct redis_uv *g = p; update(g, g->events & ~UV_WRITABLE); }

static void on_closed(uv_handle_t *h) { free(h->data); }

/* hiredis is freeing the context and closes the fd right after this. */
static void cleanup(void *p) {
    struct redis_uv *g = p;
    g->ac = NULL;
    uv_close((uv_handle_t *)&g->poll, on_closed);
}

int redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop) {
    if (ac->ev.data) return -1;
    struct redis_uv *g = calloc(1, sizeof *g);
    if (!g) return -1;
    if (uv_poll_init(loop, &g->poll, ac->c.fd) != 0) {
        free(g);
        return -1;
    }
    g->poll.data = g;
    g->ac = ac;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    ac->ev.data = g;
    return 0;
}
