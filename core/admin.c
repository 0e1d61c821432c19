#include "admin.h"

#include <netinet/in.h>
#include <string.h>

#include "httpd.h"
#include "json_str.h"
#include "script.h"
#include "server.h"
#include "version.h"

static int peer_is_loopback(const struct conn *c) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0) return 0;
    if (ss.ss_family == AF_INET)
        return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a)) return 1;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return 0;
}

static void respond_json(struct conn *c, int status, struct sbuf *body, int keep_alive) {
    httpd_respond(c, status, "application/json", body->p, body->len, "Cache-Control: no-store\r\n", !keep_alive);
    sbuf_free(body);
}

static void respond_error(struct conn *c, int status, const char *message, int keep_alive) {
    struct sbuf b = {0};
    sbuf_printf(&b, "{\"error\":");
    json_append_string(&b, message, strlen(message));
    sbuf_putc(&b, '}');
    respond_json(c, status, &b, keep_alive);
}

static void append_scripts(struct sbuf *b, const struct script_stats *st) {
    sbuf_printf(b, "{\"generation\":%llu,\"files\":%u,\"reloads_ok\":%llu,\"reloads_failed\":%llu,"
                   "\"last_load_ms\":%.3f,\"lua_bytes\":%zu,\"last_error\":",
                (unsigned long long)st->generation, st->files, (unsigned long long)st->reloads_ok,
                (unsigned long long)st->reloads_failed, st->last_load_ms, st->lua_bytes);
    if (st->last_error[0]) json_append_string(b, st->last_error, strlen(st->last_error));
    else sbuf_printf(b, "null");
    sbuf_putc(b, '}');
}

static void handle_reload(struct conn *c, int keep_alive) {
    char err[1024];
    int rc = script_reload(c->srv->script, "POST /api/reload", err, sizeof err);
    struct script_stats st;
    script_stats(c->srv->script, &st);
    struct sbuf b = {0};
    sbuf_printf(&b, "{\"ok\":%s,\"scripts\":", rc == 0 ? "true" : "false");
    append_scripts(&b, &st);
    if (rc != 0) {
        sbuf_printf(&b, ",\"error\":");
        json_append_string(&b, err, strlen(err));
    }
    sbuf_putc(&b, '}');
    respond_json(c, rc == 0 ? 200 : 422, &b, keep_alive);
}

static void handle_status(struct conn *c, int keep_alive) {
    struct server *srv = c->srv;
    struct script_stats st;
    script_stats(srv->script, &st);
    struct sbuf b = {0};
    sbuf_printf(&b,
                "{\"version\":\"%s\",\"uptime_ms\":%llu,\"connections\":%llu,\"sessions\":%zu,\"users\":%zu,"
                "\"protocol_errors\":%llu,\"slow_consumers_closed\":%llu,\"scripts\":",
                SPACE_VERSION, (unsigned long long)(server_wall_ms() - srv->started_ms),
                (unsigned long long)srv->n_conns, srv->sessions.count, srv->users.count,
                (unsigned long long)srv->protocol_errors, (unsigned long long)srv->slow_closes);
    append_scripts(&b, &st);
    sbuf_putc(&b, '}');
    respond_json(c, 200, &b, keep_alive);
}

void admin_handle_request(struct conn *c, const struct http_request *req, const char *body, size_t len,
                          int keep_alive) {
    (void)body;
    (void)len;
    if (!peer_is_loopback(c)) {
        respond_error(c, 403, "the admin API answers loopback clients only until an admin token is configured",
                      keep_alive);
        return;
    }
    struct slice path = req->path;
    if (slice_eq(path, "/api/reload")) {
        if (!slice_eq(req->method, "POST")) respond_error(c, 405, "use POST", keep_alive);
        else handle_reload(c, keep_alive);
        return;
    }
    if (slice_eq(path, "/api/status")) {
        if (!slice_eq(req->method, "GET")) respond_error(c, 405, "use GET", keep_alive);
        else handle_status(c, keep_alive);
        return;
    }
    respond_error(c, 404, "no such API call", keep_alive);
}
