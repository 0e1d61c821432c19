/* redis_uv: drives a hiredis async context from a libuv loop (a uv_poll_t
 * on its socket). Our own glue and not hiredis 0.14's adapters/libuv.h:
 * that one drops the poll error libuv reports for a refused connect, so the
 * connect callback never fires and the context hangs. */
#ifndef SPACE_REDIS_UV_H
#define SPACE_REDIS_UV_H

#include <uv.h>

struct redisAsyncContext;

/* Hooks ac to loop; 0, or -1 (nothing attached: free ac yourself). The glue
 * lives until hiredis frees the context (its cleanup hook closes the poll
 * handle, whose close callback frees the glue). */
int redis_uv_attach(struct redisAsyncContext *ac, uv_loop_t *loop);

#endif
