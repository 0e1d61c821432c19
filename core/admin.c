#include "admin.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "httpd.h"
#include "json_scan.h"
#include "room.h"
#include "sio.h"
#include "user.h"
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

static size_t count_rooms(struct server *srv) {
    size_t n = 0;
    struct hmap_entry *e;
    for (size_t i = 0; hmap_next(&srv->namespaces, &i, &e);) n += ((struct nsp *)e->value)->rooms.count;
    return n;
}

static void handle_status(struct conn *c, int keep_alive) {
    struct server *srv = c->srv;
    struct script_stats st;
    script_stats(srv->script, &st);
    struct sbuf b = {0};
    sbuf_printf(&b,
                "{\"version\":\"%s\",\"uptime_ms\":%llu,\"connections\":%llu,\"sessions\":%zu,\"users\":%zu,\"rooms\":%zu,"
                "\"protocol_errors\":%llu,\"slow_consumers_closed\":%llu,\"scripts\":",
                SPACE_VERSION, (unsigned long long)(server_wall_ms() - srv->started_ms),
                (unsigned long long)srv->n_conns, srv->sessions.count, srv->users.count, count_rooms(srv),
                (unsigned long long)srv->protocol_errors, (unsigned long long)srv->slow_closes);
    append_scripts(&b, &st);
    sbuf_putc(&b, '}');
    respond_json(c, 200, &b, keep_alive);
}

/* {==================================================================
 * Users and rooms
 * =================================================================== */

static void append_user(struct sbuf *b, const struct user *u) {
    unsigned conns = 0;
    for (const struct sio_socket *s = u->sockets; s; s = s->user_next) conns++;
    sbuf_printf(b, "{\"id\":");
    json_append_string(b, u->id, strlen(u->id));
    sbuf_printf(b, ",\"name\":");
    json_append_string(b, u->name, strlen(u->name));
    sbuf_printf(b, ",\"connections\":%u,\"since\":%llu,\"rooms\":[", conns, (unsigned long long)u->since_ms);
    /* Each room once, whatever the number of the user's connections in it. */
    int first = 1;
    for (const struct sio_socket *s = u->sockets; s; s = s->user_next) {
        for (uint32_t i = 0; i < s->rooms.n; i++) {
            const struct room *r = s->rooms.slots[i].room;
            int seen = 0;
            for (const struct sio_socket *t = u->sockets; t != s && !seen; t = t->user_next)
                seen = room_has(&t->rooms, r);
            if (seen) continue;
            if (!first) sbuf_putc(b, ',');
            first = 0;
            json_append_string(b, r->name, r->name_len);
        }
    }
    sbuf_printf(b, "]}");
}

static void handle_users(struct conn *c, int keep_alive) {
    struct sbuf b = {0};
    sbuf_printf(&b, "{\"users\":[");
    struct hmap_entry *e;
    int first = 1;
    for (size_t i = 0; hmap_next(&c->srv->users, &i, &e);) {
        if (!first) sbuf_putc(&b, ',');
        first = 0;
        append_user(&b, e->value);
    }
    sbuf_printf(&b, "],\"count\":%zu}", c->srv->users.count);
    respond_json(c, 200, &b, keep_alive);
}

static void handle_user(struct conn *c, const char *id, size_t id_len, int disconnect, int keep_alive) {
    struct user *u = hmap_get(&c->srv->users, id, id_len);
    if (!u) {
        respond_error(c, 404, "no such user", keep_alive);
        return;
    }
    struct sbuf b = {0};
    if (!disconnect) {
        append_user(&b, u);
        respond_json(c, 200, &b, keep_alive);
        return;
    }
    /* Closing the last socket frees the user: count and collect first. */
    unsigned n = 0;
    struct sio_socket *list[1024];
    for (struct sio_socket *s = u->sockets; s && n < 1024; s = s->user_next) list[n++] = s;
    for (unsigned i = 0; i < n; i++) sio_socket_close_session(list[i], 4000, "disconnected by the admin API");
    sbuf_printf(&b, "{\"disconnected\":%u}", n);
    respond_json(c, 200, &b, keep_alive);
}

static struct nsp *root_nsp(struct server *srv) { return hmap_get(&srv->namespaces, "/", 1); }

static void append_room_users(struct sbuf *b, const struct room *r) {
    sbuf_printf(b, "[");
    struct hmap_entry *e;
    int first = 1;
    for (size_t i = 0; hmap_next(&r->users, &i, &e);) {
        const struct user *u = ((const struct room_user *)e->value)->user;
        if (!first) sbuf_putc(b, ',');
        first = 0;
        sbuf_printf(b, "{\"id\":");
        json_append_string(b, u->id, strlen(u->id));
        sbuf_printf(b, ",\"name\":");
        json_append_string(b, u->name, strlen(u->name));
        sbuf_putc(b, '}');
    }
    sbuf_putc(b, ']');
}

static void handle_rooms(struct conn *c, int keep_alive) {
    struct nsp *nsp = root_nsp(c->srv);
    struct sbuf b = {0};
    sbuf_printf(&b, "{\"rooms\":[");
    size_t count = 0;
    if (nsp) {
        struct hmap_entry *e;
        for (size_t i = 0; hmap_next(&nsp->rooms, &i, &e);) {
            const struct room *r = e->value;
            if (count++) sbuf_putc(&b, ',');
            sbuf_printf(&b, "{\"name\":");
            json_append_string(&b, r->name, r->name_len);
            sbuf_printf(&b, ",\"users\":%zu,\"connections\":%u}", r->users.count, r->n_members);
        }
    }
    sbuf_printf(&b, "],\"count\":%zu}", count);
    respond_json(c, 200, &b, keep_alive);
}

static void handle_room(struct conn *c, const char *name, size_t len, int keep_alive) {
    struct nsp *nsp = root_nsp(c->srv);
    struct room *r = nsp ? room_find(&nsp->rooms, name, len) : NULL;
    if (!r) {
        respond_error(c, 404, "no such room (rooms exist while someone is in them)", keep_alive);
        return;
    }
    struct sbuf b = {0};
    sbuf_printf(&b, "{\"room\":");
    json_append_string(&b, r->name, r->name_len);
    sbuf_printf(&b, ",\"users\":");
    append_room_users(&b, r);
    sbuf_printf(&b, ",\"count\":%zu,\"connections\":%u}", r->users.count, r->n_members);
    respond_json(c, 200, &b, keep_alive);
}

/* Events the backend may not emit: Socket.IO's reserved names, and the
 * ones clients send, which a client would take for its own. */
static int emit_refused(const char *event, size_t len) {
    static const char *const client_only[] = {"join_room", "leave_room", "send_message", "send_file",
                                              "get_room_users", "refresh_token", NULL};
    if (len == 0 || sio_is_reserved_event(event, len)) return 1;
    for (const char *const *e = client_only; *e; e++)
        if (strlen(*e) == len && memcmp(*e, event, len) == 0) return 1;
    return 0;
}

static void handle_emit(struct conn *c, const char *room, size_t room_len, const char *body, size_t len,
                        int keep_alive) {
    struct json_member ev, data;
    char event[256];
    if (!json_valid(body, len)) {
        respond_error(c, 400, "the body must be JSON: {\"event\": NAME, \"data\": VALUE}", keep_alive);
        return;
    }
    size_t pos = 0;
    if (json_object_next(body, len, &pos, &ev) < 0 || !json_object_get(body, len, "event", &ev) || ev.type != 's' ||
        json_string_value(ev.value, event, sizeof event) < 0) {
        respond_error(c, 400, "\"event\" must be a string", keep_alive);
        return;
    }
    if (emit_refused(event, strlen(event))) {
        respond_error(c, 400, "that event name is reserved or sent by clients", keep_alive);
        return;
    }
    int has_data = json_object_get(body, len, "data", &data);
    struct sbuf arr = {0};
    sbuf_putc(&arr, '[');
    json_append_string(&arr, event, strlen(event));
    if (has_data) {
        sbuf_putc(&arr, ',');
        sbuf_append(&arr, data.value.p, data.value.len);
    }
    sbuf_putc(&arr, ']');
    struct nsp *nsp = root_nsp(c->srv);
    struct room *r = nsp ? room_find(&nsp->rooms, room, room_len) : NULL;
    size_t n = 0;
    if (r) {
        struct sio_out o = {SIO_EVENT, -1, arr.p, arr.len, 0, NULL, NULL};
        n = sio_broadcast(c->srv, nsp, r, NULL, &o);
    }
    sbuf_free(&arr);
    struct sbuf b = {0};
    sbuf_printf(&b, "{\"recipients\":%zu}", n);
    respond_json(c, 200, &b, keep_alive);
}

/* }================================================================== */

/* Splits "/api/<a>/<b>/<c>" into up to 3 percent-decoded segments. */
static int split_path(struct slice path, char seg[3][512], size_t len[3]) {
    const char *p = path.p + 5, *end = path.p + path.len; /* after "/api/" */
    int n = 0;
    while (p <= end && n < 3) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *e = slash ? slash : end;
        long l = http_percent_decode((struct slice){p, (size_t)(e - p)}, seg[n], sizeof seg[n] - 1);
        if (l < 0) return -1;
        seg[n][l] = 0;
        len[n++] = (size_t)l;
        if (!slash) return n;
        p = slash + 1;
    }
    return -1; /* too many segments */
}

void admin_handle_request(struct conn *c, const struct http_request *req, const char *body, size_t len,
                          int keep_alive) {
    struct server *srv = c->srv;
    if (srv->auth.admin_token) {
        if (!auth_admin_ok(&srv->auth, req)) {
            struct sbuf b = {0};
            sbuf_printf(&b, "{\"error\":\"missing or wrong admin token (Authorization: Bearer ...)\"}");
            httpd_respond(c, 401, "application/json", b.p, b.len, "WWW-Authenticate: Bearer\r\n", !keep_alive);
            sbuf_free(&b);
            return;
        }
    } else if (!peer_is_loopback(c)) {
        respond_error(c, 403, "the admin API needs --admin-token-file; without it only loopback clients may use it",
                      keep_alive);
        return;
    }
    if (len > ADMIN_MAX_BODY_BYTES) {
        respond_error(c, 413, "the body is too large", keep_alive);
        return;
    }
    char seg[3][512];
    size_t sl[3];
    int n = split_path(req->path, seg, sl);
    int get = slice_eq(req->method, "GET") || slice_eq(req->method, "HEAD"), post = slice_eq(req->method, "POST");
    const char *want = NULL; /* the method the route takes, when it exists */
    if (n == 1 && strcmp(seg[0], "reload") == 0) {
        if (post) { handle_reload(c, keep_alive); return; }
        want = "POST";
    } else if (n == 1 && strcmp(seg[0], "status") == 0) {
        if (get) { handle_status(c, keep_alive); return; }
        want = "GET";
    } else if (n == 1 && strcmp(seg[0], "users") == 0) {
        if (get) { handle_users(c, keep_alive); return; }
        want = "GET";
    } else if (n == 2 && strcmp(seg[0], "users") == 0 && sl[1]) {
        if (get) { handle_user(c, seg[1], sl[1], 0, keep_alive); return; }
        want = "GET";
    } else if (n == 3 && strcmp(seg[0], "users") == 0 && sl[1] && strcmp(seg[2], "disconnect") == 0) {
        if (post) { handle_user(c, seg[1], sl[1], 1, keep_alive); return; }
        want = "POST";
    } else if (n == 1 && strcmp(seg[0], "rooms") == 0) {
        if (get) { handle_rooms(c, keep_alive); return; }
        want = "GET";
    } else if (n == 2 && strcmp(seg[0], "rooms") == 0 && sl[1]) {
        if (get) { handle_room(c, seg[1], sl[1], keep_alive); return; }
        want = "GET";
    } else if (n == 3 && strcmp(seg[0], "rooms") == 0 && sl[1] && strcmp(seg[2], "emit") == 0) {
        if (post) { handle_emit(c, seg[1], sl[1], body, len, keep_alive); return; }
        want = "POST";
    }
    if (!want) {
        respond_error(c, 404, "no such API call", keep_alive);
        return;
    }
    char allow[32];
    snprintf(allow, sizeof allow, "Allow: %s\r\n", want);
    struct sbuf b = {0};
    sbuf_printf(&b, "{\"error\":\"use %s\"}", want);
    httpd_respond(c, 405, "application/json", b.p, b.len, allow, !keep_alive);
    sbuf_free(&b);
}
