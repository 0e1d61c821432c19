/* The plain /ws kind of session (docs/protocol.md §6): one JSON object per
 * WebSocket text frame, no Engine.IO framing, heartbeat by WebSocket pings
 * (eio.c sends them). Binary frames are not part of the protocol. */
#include <string.h>

#include "cors.h"
#include "eio.h"
#include "httpd.h"
#include "net.h"
#include "session_internal.h"
#include "ws.h"

static void handle_plain(void *ud, struct conn *c, const struct http_request *req, const char *body, size_t len,
                         int keep_alive) {
    (void)body, (void)len, (void)keep_alive;
    struct eio_hub *hub = ud;
    const struct config *cfg = hub->cfg;
    if (!cors_origin_allowed(http_header_get(req, "Origin"), http_header_get(req, "Host"),
                             cfg->cors_origins, cfg->n_cors_origins)) {
        httpd_respond(c, 403, "text/plain; charset=utf-8", "Forbidden origin", 16, NULL, 1);
        return;
    }
    if (eio_refuse_upgrade(c, req)) return;
    struct eio_session *s = eio_session_new(hub, EIO_KIND_PLAIN, EIO_WEBSOCKET);
    if (s) conn_peer_name(c, s->peer, sizeof s->peer);
    if (!s || !(s->upper = hub->up->open(hub->up_ud, s, req))) {
        if (s) eio_close(s, WS_CLOSE_INTERNAL, "out of memory");
        httpd_respond(c, 503, "text/plain; charset=utf-8", "Out of memory", 13, NULL, 1);
        return;
    }
    if (ws_accept(c, req, &eio_ws_ops, s) != 0) {
        eio_close(s, WS_CLOSE_INTERNAL, "accept failed");
        return;
    }
    s->ws = c;
    hub->up->start_plain(s->upper, req);
}

void plain_on_message(struct eio_session *s, int binary, const uint8_t *p, size_t n) {
    if (binary) {
        s->hub->net->protocol_errors++;
        struct conn *c = s->ws;
        s->ws = NULL;
        ws_detach(c);
        ws_close(c, WS_CLOSE_UNSUPPORTED, "binary frames are not part of this protocol");
        eio_close(s, WS_CLOSE_UNSUPPORTED, "binary frame");
        return;
    }
    s->hub->up->on_plain(s->upper, (const char *)p, n);
}

void plain_init(struct eio_hub *hub) {
    hub->plain_route = (struct http_route){.path = "/ws", .handle = handle_plain, .ud = hub};
    httpd_add_route(hub->net, &hub->plain_route);
}
