/* httpd: the HTTP/1.1 transport of a conn: reads request heads (and bodies
 * with Content-Length), routes them through the routes the layers above
 * registered, writes responses, keeps the connection alive between
 * requests, and hands it over on a WebSocket upgrade. */
#ifndef SPACE_HTTPD_H
#define SPACE_HTTPD_H

#include <stddef.h>

#include "conn.h"
#include "http.h"

struct net;

extern const struct transport httpd_transport;

/* A request handler. body is NULL with len the declared Content-Length
 * when that is over the route's max_body (answer it; the conn closes). */
typedef void (*http_handler_fn)(void *ud, struct conn *c, const struct http_request *req, const char *body,
                                size_t len, int keep_alive);

enum http_route_flags {
    HTTP_ROUTE_PREFIX = 1 << 0,    /* path is a prefix (else the whole path) */
    HTTP_ROUTE_SERVICE = 1 << 1,   /* answered in a service slot past the connection limit (admit.h) */
    HTTP_ROUTE_GET_HEAD = 1 << 2,  /* other methods get 405 */
};

struct http_route {
    const char *path;
    unsigned flags;                /* enum http_route_flags */
    size_t max_body;               /* 0: --max-payload; larger is refused by its head */
    http_handler_fn handle;
    /* A POST's head arrived and its body is still coming: 1 when the route
     * keeps track (it may keep a key in c->partial_key), and then
     * body_ended runs when the body arrived or the conn closed first. Both
     * may be NULL. */
    int (*body_pending)(void *ud, struct conn *c, const struct http_request *req);
    void (*body_ended)(void *ud, struct conn *c);
    void *ud;
};

/* Registers a route (the route is not copied: it outlives the server's run).
 * Routes are tried in order; the fallback (at most one) after all of them. */
void httpd_add_route(struct net *n, const struct http_route *r);
void httpd_set_fallback(struct net *n, const struct http_route *r);

/* Called for every new connection. */
void httpd_start(struct conn *c);

/* Takes the conn back as HTTP after another transport held it (a parked
 * polling GET) and serves what it received meanwhile. */
void httpd_resume(struct conn *c);

/* Writes a complete response. extra_headers: NULL or "Name: value\r\n"
 * lines. close: 1 to close the conn once it is written. */
void httpd_respond(struct conn *c, int status, const char *content_type, const void *body,
                   size_t len, const char *extra_headers, int close);

#endif
