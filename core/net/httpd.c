#include "httpd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdlib.h>

#include "admit.h"
#include "log.h"
#include "net.h"

static void reset_deadline(struct conn *c) {
    conn_set_deadline(c, net_now(c->net) + (uint64_t)c->net->cfg->http_timeout_ms);
}

void httpd_start(struct conn *c) {
    c->tr = &httpd_transport;
    reset_deadline(c);
}

void httpd_respond(struct conn *c, int status, const char *content_type, const void *body,
                   size_t len, const char *extra_headers, int close) {
    char head[2048];
    size_t n = http_format_head(head, sizeof head, status, content_type, len, extra_headers, !close);
    buf *b = n ? buf_new(n + len) : NULL;
    if (!b) {
        conn_close(c);
        return;
    }
    memcpy(b->data, head, n);
    if (c->flags & CONN_HEAD_REQUEST) b->len = (uint32_t)n; /* the same head, no body */
    else if (len) memcpy(b->data + n, body, len);
    conn_send(c, b);
    buf_unref(b);
    if (close) conn_close_after_flush(c);
}

static void respond_error(struct conn *c, int status) {
    const char *text = http_status_text(status);
    httpd_respond(c, status, "text/plain; charset=utf-8", text, strlen(text), NULL, 1);
}

static int wants_keep_alive(const struct http_request *req) {
    const struct slice *conn = http_header_get(req, "Connection");
    if (conn && http_value_has_token(*conn, "close")) return 0;
    if (req->minor_version == 0) return conn && http_value_has_token(*conn, "keep-alive");
    return 1;
}

void httpd_add_route(struct net *n, const struct http_route *r) {
    if (n->n_routes == NET_MAX_ROUTES) abort(); /* a composition error, found at start */
    n->routes[n->n_routes++] = r;
}

void httpd_set_fallback(struct net *n, const struct http_route *r) { n->fallback = r; }

static int route_matches(const struct http_route *r, const struct http_request *req) {
    size_t len = strlen(r->path);
    if (r->flags & HTTP_ROUTE_PREFIX) return req->path.len >= len && memcmp(req->path.p, r->path, len) == 0;
    return req->path.len == len && memcmp(req->path.p, r->path, len) == 0;
}

static const struct http_route *find_route(const struct net *n, const struct http_request *req) {
    for (unsigned i = 0; i < n->n_routes; i++)
        if (route_matches(n->routes[i], req)) return n->routes[i];
    return n->fallback;
}

static void route(struct conn *c, const struct http_route *r, const struct http_request *req, const char *body,
                  size_t body_len, int keep_alive) {
    if (c->flags & CONN_SERVICE_SLOT) {
        /* Past the limit, only health, metrics and the admin API: an
         * operator must be able to look and reload when full. */
        if (!r || !(r->flags & HTTP_ROUTE_SERVICE)) {
            admit_refused(c->net, "connection limit");
            httpd_respond(c, 503, "text/plain; charset=utf-8", "Service Unavailable", 19,
                          "Retry-After: 1\r\n", 1);
            return;
        }
        keep_alive = 0; /* one request: the slot is for the next one */
    }
    if (!r) {
        httpd_respond(c, 404, "text/plain; charset=utf-8", "Not Found", 9, NULL, !keep_alive);
        return;
    }
    if ((r->flags & HTTP_ROUTE_GET_HEAD) && !slice_eq(req->method, "GET") && !slice_eq(req->method, "HEAD")) {
        httpd_respond(c, 405, "text/plain; charset=utf-8", "Method Not Allowed", 18, "Allow: GET, HEAD\r\n",
                      !keep_alive);
        return;
    }
    r->handle(r->ud, c, req, body, body_len, keep_alive);
}

static void end_partial_body(struct conn *c) {
    const struct http_route *r = c->partial_route;
    c->flags &= ~(uint32_t)CONN_PARTIAL_POST;
    c->partial_route = NULL;
    if (r && r->body_ended) r->body_ended(r->ud, c);
}

static void on_data(struct conn *c, const char *p, size_t n) {
    const char *data = p;
    size_t len = n, used = 0;
    if (c->in_len) {
        if (conn_in_append(c, p, n) != 0) {
            conn_close(c);
            return;
        }
        data = c->in;
        len = c->in_len;
    }
    while (used < len && c->tr == &httpd_transport && !conn_is_closing(c)) {
        struct http_request req;
        long head = http_parse_request(data + used, len - used, &req);
        if (head == HTTP_INCOMPLETE) break;
        if (head < 0) {
            char peer[64];
            conn_peer_name(c, peer, sizeof peer);
            log_info("http", "bad request conn=%llu peer=%s status=%d", (unsigned long long)c->id,
                     peer, head == HTTP_HEAD_TOO_LARGE ? 431 : 400);
            respond_error(c, head == HTTP_HEAD_TOO_LARGE ? 431 : 400);
            used = len;
            break;
        }
        long long blen = http_body_length(&req, c->net->cfg->max_payload);
        if (blen < 0) {
            /* Close after answering: the bytes that follow cannot be told
             * apart from the body, so none of them is read as a request. */
            int status = blen == HTTP_BODY_TOO_LARGE ? 413 : blen == HTTP_BODY_UNSUPPORTED ? 501 : 400;
            if (status != 413) {
                char peer[64];
                conn_peer_name(c, peer, sizeof peer);
                log_info("http", "bad request conn=%llu peer=%s status=%d reason=\"body framing\"",
                         (unsigned long long)c->id, peer, status);
            }
            respond_error(c, status);
            used = len;
            break;
        }
        const struct http_route *r = find_route(c->net, &req);
        if (r && r->max_body && (size_t)blen > r->max_body) {
            /* Refused by its head: no need to hold up to --max-payload first. */
            r->handle(r->ud, c, &req, NULL, (size_t)blen, 0);
            used = len;
            break;
        }
        if ((size_t)head + (size_t)blen > len - used) { /* body still arriving */
            if (!(c->flags & CONN_PARTIAL_POST) && r && r->body_pending && slice_eq(req.method, "POST") &&
                r->body_pending(r->ud, c, &req)) {
                c->flags |= CONN_PARTIAL_POST;
                c->partial_route = r;
            }
            break;
        }
        const char *body = data + used + head;
        c->req_raw = data + used; /* two stores: the handoff's bytes stay where they are */
        c->req_raw_len = len - used;
        used += (size_t)head + (size_t)blen;
        if (c->flags & CONN_PARTIAL_POST) end_partial_body(c);
        if (slice_eq(req.method, "HEAD")) c->flags |= CONN_HEAD_REQUEST;
        route(c, r, &req, body, (size_t)blen, wants_keep_alive(&req));
        c->flags &= ~(uint32_t)CONN_HEAD_REQUEST;
        c->req_raw = NULL;
        if (c->tr == &httpd_transport && !(c->flags & CONN_CLOSING)) reset_deadline(c); /* a route may have closed it */
    }
    if (c->tr != &httpd_transport && !conn_is_closing(c) && used < len) {
        /* Upgraded: the bytes after the head belong to the new transport. */
        size_t rest = len - used;
        used = len;
        c->tr->on_data(c, data + len - rest, rest);
    }
    if (data == c->in) {
        conn_in_consume(c, used);
    } else if (used < len && !conn_is_closing(c)) {
        if (conn_in_append(c, data + used, len - used) != 0) conn_close(c);
    }
}

static void on_timeout(struct conn *c) {
    if (c->flags & CONN_SERVICE_SLOT) admit_refused(c->net, "connection limit");
    char peer[64];
    conn_peer_name(c, peer, sizeof peer);
    if (c->in_len) {
        log_info("http", "request timeout conn=%llu peer=%s", (unsigned long long)c->id, peer);
        respond_error(c, 408);
    } else {
        conn_close(c); /* an idle keep-alive conn */
    }
}

void httpd_resume(struct conn *c) {
    httpd_start(c);
    if (c->in_len) on_data(c, "", 0);
}

static void on_close(struct conn *c) {
    if (c->flags & CONN_PARTIAL_POST) end_partial_body(c);
    if (c->flags & CONN_SERVICE_SLOT) admit_slot_closed(c->net);
}

const struct transport httpd_transport = {
    .name = "http",
    .on_data = on_data,
    .on_timeout = on_timeout,
    .on_close = on_close,
};
