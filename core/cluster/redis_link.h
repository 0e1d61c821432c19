/* redis_link: the cluster's link to Redis: two hiredis async connections
 * (one subscribed, one for commands) that come back by themselves.
 *
 * A lost connection, a refused or timed-out connect and an AUTH/SELECT
 * failure all take the link down; it reconnects after a backoff (100 ms
 * doubling to 5 s, with jitter), sends AUTH/SELECT again and resubscribes
 * every channel and pattern before it reports itself up. Nothing here
 * blocks the loop: names are resolved with uv_getaddrinfo, connects are
 * non-blocking, and a connect (with AUTH and the subscriptions) that takes
 * over 5 s counts as failed. A PING every 3 s on the command connection,
 * unanswered 3 s later, takes the link down too (a frozen Redis). One log line per state change ("link down",
 * "link up"), none per message. */
#ifndef SPACE_REDIS_LINK_H
#define SPACE_REDIS_LINK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "redis_url.h"

struct redis_link;
struct redisReply;

struct redis_link_ops {
    /* A message on a channel; pattern: the PSUBSCRIBE pattern it matched
     * (NUL-terminated), or NULL for a SUBSCRIBE channel. The bytes live for
     * the call only. During a reconnect a resubscribed channel may deliver
     * before on_up. */
    void (*on_message)(void *ud, const char *channel, size_t channel_len, const char *pattern,
                       const char *data, size_t len);
    /* Connected, authenticated, and every subscription confirmed: state may
     * be re-announced. Called after every (re)connect. */
    void (*on_up)(void *ud);
    /* The link was up and is lost (it retries by itself): local work goes on. */
    void (*on_down)(void *ud);
};

struct redis_link_stats {
    int up;
    uint64_t connects;       /* times the link came up */
    uint64_t disconnects;    /* times an up link went down */
    uint64_t publish_failed; /* PUBLISH refused (link down) or lost/answered with an error */
    uint64_t published;      /* PUBLISH answered by Redis */
    uint64_t received;       /* messages delivered to on_message */
};

/* Starts connecting at once (url is copied; ops is copied). NULL when out of memory. */
struct redis_link *redis_link_new(uv_loop_t *loop, const struct redis_url *url,
                                  const struct redis_link_ops *ops, void *ud);

/* Subscriptions kept across reconnects: added any time, sent when
 * connected; one already held is a no-op. 0, or -1 (out of memory, freed). */
int redis_link_subscribe(struct redis_link *l, const char *channel, size_t len);
int redis_link_psubscribe(struct redis_link *l, const char *pattern, size_t len);

/* PUBLISH on the command connection: 0 queued, -1 when the link is down
 * (counted in publish_failed; never blocks, never queues for later). */
int redis_link_publish(struct redis_link *l, const char *channel, size_t clen, const void *data,
                       size_t len);

/* Any other command on the command connection (argv form, binary-safe;
 * not SUBSCRIBE and friends, nor a blocking one that would hold the
 * heartbeat PING back for over 3 s). 0: cb will be called exactly once, with the
 * reply, or with NULL when the link went down first. -1 (link down): cb is
 * not called. After redis_link_free no cb is called at all. */
typedef void (*redis_link_reply_fn)(void *ud, const struct redisReply *reply);
int redis_link_command(struct redis_link *l, redis_link_reply_fn cb, void *ud, int argc,
                       const char **argv, const size_t *argvlen);

/* Whether the link is up now. */
int redis_link_is_up(const struct redis_link *l);
void redis_link_stats(const struct redis_link *l, struct redis_link_stats *out);

/* Closes both connections. Safe anywhere, including from the link's own
 * callbacks (on_message, on_up, on_down, a command's cb): after it returns
 * no callback of the link is called. The memory and handles are released
 * by the loop (run it before uv_loop_close). NULL is a no-op. */
void redis_link_free(struct redis_link *l);

#endif
