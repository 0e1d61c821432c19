#include "admin.h"

#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "ban.h"
#include "clock.h"
#include "cluster.h"
#include "httpd.h"
#include "json_scan.h"
#include "json_str.h"
#include "log.h"
#include "script.h"
#include "server.h"
#include "sio.h"
#include "user.h"
#include "utf8.h"
#include "version.h"
#include "ws.h"

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
    int rc = script_reload(server_of(c)->script, "POST /api/reload", err, sizeof err);
    struct script_stats st;
    script_stats(server_of(c)->script, &st);
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
    struct server *srv = server_of(c);
    struct script_stats st;
    script_stats(srv->script, &st);
    struct sbuf b = {0};
    sbuf_printf(&b,
                "{\"version\":\"%s\",\"uptime_ms\":%llu,\"connections\":%llu,\"sessions\":%zu,\"users\":%zu,\"rooms\":%zu,"
                "\"protocol_errors\":%llu,\"slow_consumers_closed\":%llu,\"scripts\":",
                SPACE_VERSION, (unsigned long long)(clock_wall_ms() - srv->started_ms),
                (unsigned long long)srv->net.n_conns, srv->eio.sessions.count, srv->sio.users.count, adapter_total_rooms(&srv->sio),
                (unsigned long long)srv->net.protocol_errors, (unsigned long long)srv->net.slow_closes);
    append_scripts(&b, &st);
    sbuf_putc(&b, '}');
    respond_json(c, 200, &b, keep_alive);
}

/* {==================================================================
 * Users and rooms
 * =================================================================== */

struct user_rooms {
    struct sbuf *b;
    const struct user *u;
    const struct sio_socket *s; /* the socket whose rooms are listed now */
    int first;
};

static int append_user_room(void *ud, const struct adapter_room *r) {
    struct user_rooms *ur = ud;
    for (const struct sio_socket *t = ur->u->sockets; t != ur->s; t = t->user_next)
        if (adapter_has(t, r->name, r->name_len)) return 0; /* listed with an earlier connection */
    if (!ur->first) sbuf_putc(ur->b, ',');
    ur->first = 0;
    json_append_string(ur->b, r->name, r->name_len);
    return 0;
}

static void append_user(struct sbuf *b, const struct user *u) {
    unsigned conns = 0;
    for (const struct sio_socket *s = u->sockets; s; s = s->user_next) conns++;
    sbuf_printf(b, "{\"id\":");
    json_append_string(b, u->id, strlen(u->id));
    sbuf_printf(b, ",\"name\":");
    json_append_string(b, u->name, strlen(u->name));
    sbuf_printf(b, ",\"connections\":%u,\"since\":%llu,\"rooms\":[", conns, (unsigned long long)u->since_ms);
    /* Each room once, whatever the number of the user's connections in it. */
    struct user_rooms ur = {b, u, NULL, 1};
    for (const struct sio_socket *s = u->sockets; s; s = s->user_next) {
        ur.s = s;
        adapter_socket_rooms(s, append_user_room, &ur);
    }
    sbuf_printf(b, "]}");
}

struct page {
    size_t limit, offset;
};

/* ?limit=N&offset=M of a listing: 0, or -1 (answered 400). */
static int read_page(struct conn *c, const struct http_request *req, struct page *pg, int keep_alive) {
    struct { const char *key; size_t *out; size_t max; } q[2] = {{"limit", &pg->limit, ADMIN_PAGE_MAX},
                                                               {"offset", &pg->offset, (size_t)1 << 40}};
    pg->limit = ADMIN_PAGE_DEFAULT;
    pg->offset = 0;
    for (int i = 0; i < 2; i++) {
        struct slice v;
        if (!http_query_get(req->query, q[i].key, &v)) continue;
        size_t n = 0;
        int ok = v.len > 0 && v.len <= 13;
        for (size_t k = 0; ok && k < v.len; k++) {
            if (v.p[k] < '0' || v.p[k] > '9') ok = 0;
            else n = n * 10 + (size_t)(v.p[k] - '0');
        }
        if (!ok || n > q[i].max || (i == 0 && n == 0)) {
            char msg[96];
            snprintf(msg, sizeof msg, "%s must be an integer%s", q[i].key,
                     i == 0 ? " from 1 to " ADMIN_PAGE_MAX_TEXT : " >= 0");
            respond_error(c, 400, msg, keep_alive);
            return -1;
        }
        *q[i].out = n;
    }
    return 0;
}

/* The page's closing members: count (listed here), total, offset, limit, next_offset. */
static void close_page(struct sbuf *b, const struct page *pg, size_t listed, size_t total) {
    sbuf_printf(b, "],\"count\":%zu,\"total\":%zu,\"offset\":%zu,\"limit\":%zu,\"next_offset\":", listed, total,
                pg->offset, pg->limit);
    if (pg->offset + listed < total) sbuf_printf(b, "%zu}", pg->offset + listed);
    else sbuf_printf(b, "null}");
}

static struct nsp *root_nsp(struct server *srv) { return sio_find_nsp(&srv->sio, "/", 1); }

/* A user on other nodes only (--redis): as append_user, from the cluster's presence. */
struct remote_page {
    struct sbuf *b;
    const struct page *pg;
    size_t seen, listed;
};

static void append_remote_user(void *ud, const struct cluster_user *u) {
    struct remote_page *rp = ud;
    if (rp->listed >= rp->pg->limit || rp->seen++ < rp->pg->offset) return;
    struct sbuf *b = rp->b;
    if (rp->listed++) sbuf_putc(b, ',');
    sbuf_printf(b, "{\"id\":");
    json_append_string(b, u->id, strlen(u->id));
    sbuf_printf(b, ",\"name\":");
    json_append_string(b, u->name, strlen(u->name));
    sbuf_printf(b, ",\"connections\":%llu,\"since\":null,\"rooms\":[", (unsigned long long)u->conns);
    for (size_t i = 0; i < u->n_rooms; i++) {
        if (i) sbuf_putc(b, ',');
        json_append_string(b, u->rooms[i], u->room_lens[i]);
    }
    sbuf_printf(b, "],\"remote\":true}");
}

static void handle_users(struct conn *c, const struct page *pg, int keep_alive) {
    struct server *srv = server_of(c);
    struct sbuf b = {0};
    sbuf_printf(&b, "{\"users\":[");
    struct hmap_entry *e;
    size_t seen = 0, listed = 0;
    for (size_t i = 0; hmap_next(&srv->sio.users, &i, &e) && listed < pg->limit;) {
        if (seen++ < pg->offset) continue;
        if (listed++) sbuf_putc(&b, ',');
        append_user(&b, e->value);
    }
    /* Then the users only other nodes have (in a room there), after this node's own. */
    size_t local = srv->sio.users.count;
    struct page rest = {pg->limit - listed, pg->offset > local ? pg->offset - local : 0};
    struct remote_page rp = {&b, &rest, 0, 0};
    size_t remote = srv->cluster ? cluster_remote_users(srv->cluster, root_nsp(srv), NULL, NULL) : 0;
    if (remote && rest.limit) {
        /* The separator between the two parts is written by the first remote entry. */
        struct sbuf part = {0};
        rp.b = &part;
        cluster_remote_users(srv->cluster, root_nsp(srv), append_remote_user, &rp);
        if (part.len) {
            if (listed) sbuf_putc(&b, ',');
            sbuf_append(&b, part.p, part.len);
        }
        sbuf_free(&part);
    }
    close_page(&b, pg, listed + rp.listed, local + remote);
    respond_json(c, 200, &b, keep_alive);
}

static void handle_user(struct conn *c, const char *id, size_t id_len, int disconnect, int keep_alive) {
    struct server *srv = server_of(c);
    struct user *u = hmap_get(&srv->sio.users, id, id_len);
    /* In a cluster the user may be on other nodes: they close theirs too. */
    if (disconnect && srv->cluster) cluster_user_action(srv->cluster, CLUSTER_KICK, id, id_len, 0, NULL);
    if (!u && disconnect && srv->cluster) {
        struct sbuf b = {0};
        sbuf_printf(&b, "{\"disconnected\":0}");
        respond_json(c, 200, &b, keep_alive);
        return;
    }
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
    for (unsigned i = 0; i < n; i++) sio_socket_close_session(list[i], WS_CLOSE_KICKED, "disconnected by the admin API");
    sbuf_printf(&b, "{\"disconnected\":%u}", n);
    respond_json(c, 200, &b, keep_alive);
}


struct room_users {
    struct sbuf *b;
    int first;
};

static void append_room_user(void *ud, const struct user *u) {
    struct room_users *ru = ud;
    if (!ru->first) sbuf_putc(ru->b, ',');
    ru->first = 0;
    sbuf_printf(ru->b, "{\"id\":");
    json_append_string(ru->b, u->id, strlen(u->id));
    sbuf_printf(ru->b, ",\"name\":");
    json_append_string(ru->b, u->name, strlen(u->name));
    sbuf_putc(ru->b, '}');
}

static void append_room_users(struct sbuf *b, struct nsp *nsp, const char *room, size_t len) {
    struct room_users ru = {b, 1};
    sbuf_printf(b, "[");
    adapter_room_users(nsp, room, len, append_room_user, &ru);
    sbuf_putc(b, ']');
}

struct room_page {
    struct sbuf *b;
    const struct page *pg;
    size_t seen, listed;
};

static int append_room(void *ud, const struct adapter_room *r) {
    struct room_page *rp = ud;
    if (rp->listed >= rp->pg->limit) return 1;
    if (rp->seen++ < rp->pg->offset) return 0;
    if (rp->listed++) sbuf_putc(rp->b, ',');
    sbuf_printf(rp->b, "{\"name\":");
    json_append_string(rp->b, r->name, r->name_len);
    sbuf_printf(rp->b, ",\"users\":%zu,\"connections\":%zu}", r->users, r->conns);
    return 0;
}

static void handle_rooms(struct conn *c, const struct page *pg, int keep_alive) {
    struct nsp *nsp = root_nsp(server_of(c));
    struct sbuf b = {0};
    sbuf_printf(&b, "{\"rooms\":[");
    struct room_page rp = {&b, pg, 0, 0};
    if (nsp) adapter_rooms(nsp, append_room, &rp);
    close_page(&b, pg, rp.listed, nsp ? adapter_room_count(nsp) : 0);
    respond_json(c, 200, &b, keep_alive);
}

static void handle_room(struct conn *c, const char *name, size_t len, int keep_alive) {
    struct nsp *nsp = root_nsp(server_of(c));
    size_t users = 0, conns = 0;
    if (nsp) adapter_room_size(nsp, name, len, &users, &conns);
    if (!conns) {
        respond_error(c, 404, "no such room (rooms exist while someone is in them)", keep_alive);
        return;
    }
    struct sbuf b = {0};
    sbuf_printf(&b, "{\"room\":");
    json_append_string(&b, name, len);
    sbuf_printf(&b, ",\"users\":");
    append_room_users(&b, nsp, name, len);
    sbuf_printf(&b, ",\"count\":%zu,\"connections\":%zu}", users, conns);
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

/* Reads {"event": NAME, "data": VALUE} into arr as Socket.IO's [NAME, VALUE]
 * (the name into event). NULL, or why the body is refused (400). */
static const char *parse_emit(const char *body, size_t len, struct sbuf *arr, char *event, size_t cap) {
    struct json_member ev, data;
    if (!body || !json_valid(body, len)) return "the body must be JSON: {\"event\": NAME, \"data\": VALUE}";
    size_t pos = 0;
    if (json_object_next(body, len, &pos, &ev) < 0 || !json_object_get(body, len, "event", &ev) || ev.type != 's' ||
        json_string_value(ev.value, event, cap) < 0)
        return "\"event\" must be a string";
    if (emit_refused(event, strlen(event))) return "that event name is reserved or sent by clients";
    int has_data = json_object_get(body, len, "data", &data);
    sbuf_putc(arr, '[');
    json_append_string(arr, event, strlen(event));
    if (has_data) {
        sbuf_putc(arr, ',');
        sbuf_append(arr, data.value.p, data.value.len);
    }
    sbuf_putc(arr, ']');
    return NULL;
}

static void respond_recipients(struct conn *c, size_t n, int keep_alive) {
    struct sbuf b = {0};
    sbuf_printf(&b, "{\"recipients\":%zu}", n);
    respond_json(c, 200, &b, keep_alive);
}

enum emit_target { EMIT_ROOM, EMIT_USER, EMIT_ALL };

/* POST /api/rooms/{room}/emit, /api/users/{id}/emit, /api/emit. */
static void handle_emit(struct conn *c, enum emit_target target, const char *name, size_t name_len, const char *body,
                        size_t len, int keep_alive) {
    char event[256];
    struct sbuf arr = {0};
    const char *why = parse_emit(body, len, &arr, event, sizeof event);
    if (why) {
        sbuf_free(&arr);
        respond_error(c, 400, why, keep_alive);
        return;
    }
    struct server *srv = server_of(c);
    struct nsp *nsp = root_nsp(srv);
    struct sio_out o = {SIO_EVENT, -1, arr.p, arr.len, 0, NULL, NULL};
    size_t n = 0;
    if (target == EMIT_ROOM) {
        if (nsp) n = sio_broadcast(nsp, name, name_len, NULL, &o);
    } else if (target == EMIT_USER) {
        struct user *u = hmap_get(&srv->sio.users, name, name_len);
        if (!u) {
            sbuf_free(&arr);
            respond_error(c, 404, "no such user (users exist while connected)", keep_alive);
            return;
        }
        for (struct sio_socket *s = u->sockets; s; s = s->user_next)
            if (s->nsp == nsp && !s->closed && sio_send(s, &o) == 0) n++;
    } else if (nsp) {
        struct adapter_target everyone = {.n_rooms = 0};
        n = adapter_broadcast(nsp, &everyone, &o);
    }
    sbuf_free(&arr);
    respond_recipients(c, n, keep_alive);
}

/* {"room": R, "user": {"id", "name"}}: what user_joined_room/user_left_room carry. */
static void append_room_user_event(struct sbuf *b, const char *event, const char *room, size_t room_len,
                                   const struct user *u) {
    sbuf_printf(b, "[\"%s\",{\"room\":", event);
    json_append_string(b, room, room_len);
    sbuf_printf(b, ",\"user\":{\"id\":");
    json_append_string(b, u->id, strlen(u->id));
    sbuf_printf(b, ",\"name\":");
    json_append_string(b, u->name, strlen(u->name));
    sbuf_printf(b, "}}]");
}

static int room_name_ok(const char *room, size_t len) {
    if (len == 0 || len > ADMIN_ROOM_MAX_BYTES || !utf8_valid(room, len)) return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)room[i] < 0x20 || room[i] == 0x7f) return 0;
    return 1;
}

/* POST /api/users/{id}/rooms/{room} (join) and DELETE (leave): every
 * connection of the user in "/", as the join_room and leave_room handlers
 * do: the others are told user_joined_room / user_left_room (when the user
 * was not in / is no longer in the room), the user's connections
 * joined_room {room, users, count} / left_room {room}. */
static void handle_membership(struct conn *c, const char *id, size_t id_len, const char *room, size_t room_len,
                              int join, int keep_alive) {
    struct server *srv = server_of(c);
    struct user *u = hmap_get(&srv->sio.users, id, id_len);
    struct nsp *nsp = root_nsp(srv);
    if (!u || !nsp) {
        respond_error(c, 404, "no such user (users exist while connected)", keep_alive);
        return;
    }
    if (!room_name_ok(room, room_len)) {
        respond_error(c, 400, "the room name must be 1 to " ADMIN_ROOM_MAX_TEXT " bytes of UTF-8 text", keep_alive);
        return;
    }
    struct sio_socket *changed[ADMIN_MAX_USER_SOCKETS];
    unsigned n = 0;
    int told = 0; /* user_is_new / user_left */
    struct sbuf ev = {0};
    for (struct sio_socket *s = u->sockets; s && n < ADMIN_MAX_USER_SOCKETS; s = s->user_next) {
        if (s->nsp != nsp || s->closed) continue;
        if (join) {
            int user_is_new = 0;
            int rc = adapter_join(s, room, room_len, &user_is_new);
            if (rc < 0) break;
            if (rc == 1) changed[n++] = s;
            if (user_is_new) {
                /* Told before the user's other connections join: as conn:to, it skips the joiner. */
                append_room_user_event(&ev, "user_joined_room", room, room_len, u);
                struct sio_out o = {SIO_EVENT, -1, ev.p, ev.len, 0, NULL, NULL};
                sio_broadcast(nsp, room, room_len, s, &o);
                told = 1;
            }
        } else {
            int user_left = 0;
            if (adapter_leave(s, room, room_len, &user_left)) changed[n++] = s;
            told |= user_left;
        }
    }
    sbuf_reset(&ev);
    size_t room_users = 0, room_conns = 0;
    adapter_room_size(nsp, room, room_len, &room_users, &room_conns);
    if (!join && told && room_conns) {
        append_room_user_event(&ev, "user_left_room", room, room_len, u);
        struct sio_out o = {SIO_EVENT, -1, ev.p, ev.len, 0, NULL, NULL};
        sio_broadcast(nsp, room, room_len, NULL, &o);
    }
    /* The user's own connections learn it as from their handler's answer. */
    sbuf_reset(&ev);
    sbuf_printf(&ev, "[\"%s\",{\"room\":", join ? "joined_room" : "left_room");
    json_append_string(&ev, room, room_len);
    if (join && room_conns) {
        sbuf_printf(&ev, ",\"users\":");
        append_room_users(&ev, nsp, room, room_len);
        sbuf_printf(&ev, ",\"count\":%zu", room_users);
    }
    sbuf_printf(&ev, "}]");
    struct sio_out o = {SIO_EVENT, -1, ev.p, ev.len, 0, NULL, NULL};
    for (unsigned i = 0; i < n; i++)
        if (!changed[i]->closed) sio_send(changed[i], &o);
    sbuf_free(&ev);
    struct sbuf b = {0};
    sbuf_printf(&b, "{\"%s\":%u,\"%s\":%s}", join ? "joined" : "left", n, join ? "user_is_new" : "user_left",
                told ? "true" : "false");
    respond_json(c, 200, &b, keep_alive);
}

/* }================================================================== */

/* {==================================================================
 * Bans
 * =================================================================== */

static unsigned close_user(struct user *u, const char *reason) {
    /* Closing the last socket frees the user: collect first. */
    unsigned n = 0;
    struct sio_socket *list[ADMIN_MAX_USER_SOCKETS];
    for (struct sio_socket *s = u->sockets; s && n < ADMIN_MAX_USER_SOCKETS; s = s->user_next) list[n++] = s;
    for (unsigned i = 0; i < n; i++) sio_socket_close_session(list[i], WS_CLOSE_KICKED, reason);
    return n;
}

/* POST /api/users/{id}/ban {seconds, reason?}: refuses the user's connects
 * until then (CONNECT_ERROR unauthorized, code banned) and disconnects it now. */
static void handle_ban(struct conn *c, const char *id, size_t id_len, const char *body, size_t len,
                       int keep_alive) {
    struct server *srv = server_of(c);
    struct json_member sec, rs;
    int64_t seconds = 0;
    char reason[BAN_REASON_MAX] = "";
    if (!body || !json_valid(body, len) || len == 0 || body[0] != '{' || !json_object_get(body, len, "seconds", &sec) ||
        sec.type != 'n' || json_int_value(sec.value, &seconds, 0) != 0 || seconds < 1 || seconds > ADMIN_BAN_MAX_SECONDS) {
        respond_error(c, 400, "the body must be {\"seconds\": 1 to " ADMIN_BAN_MAX_TEXT ", \"reason\": TEXT?}", keep_alive);
        return;
    }
    if (json_object_get(body, len, "reason", &rs) &&
        (rs.type != 's' || json_string_value(rs.value, reason, sizeof reason) < 0)) {
        respond_error(c, 400, "\"reason\" must be a string of at most 255 bytes", keep_alive);
        return;
    }
    uint64_t now = clock_wall_ms(), until = now + (uint64_t)seconds * 1000;
    if (ban_set(&srv->sio.bans, id, id_len, now, until, reason) != 0) {
        respond_error(c, 500, "out of memory", keep_alive);
        return;
    }
    if (srv->cluster) cluster_user_action(srv->cluster, CLUSTER_BAN, id, id_len, until, reason);
    struct user *u = hmap_get(&srv->sio.users, id, id_len);
    unsigned n = u ? close_user(u, "banned by the admin API") : 0;
    char q[LOG_QUOTED_MAX], qr[LOG_QUOTED_MAX];
    log_info("admin", "banned user=\"%s\" seconds=%lld disconnected=%u reason=\"%s\"", log_quoted(q, sizeof q, id),
             (long long)seconds, n, log_quoted(qr, sizeof qr, reason));
    struct sbuf b = {0};
    sbuf_printf(&b, "{\"id\":");
    json_append_string(&b, id, id_len);
    sbuf_printf(&b, ",\"until\":%llu,\"disconnected\":%u}", (unsigned long long)until, n);
    respond_json(c, 200, &b, keep_alive);
}

static void handle_unban(struct conn *c, const char *id, size_t id_len, int keep_alive) {
    struct server *srv = server_of(c);
    if (srv->cluster) cluster_user_action(srv->cluster, CLUSTER_UNBAN, id, id_len, 0, NULL);
    if (!ban_lift(&srv->sio.bans, id, id_len, clock_wall_ms())) {
        respond_error(c, 404, "that user is not banned", keep_alive);
        return;
    }
    struct sbuf b = {0};
    sbuf_printf(&b, "{\"unbanned\":true}");
    respond_json(c, 200, &b, keep_alive);
}

static void handle_bans(struct conn *c, int keep_alive) {
    struct hmap *bans = &server_of(c)->sio.bans;
    ban_prune(bans, clock_wall_ms());
    struct sbuf b = {0};
    sbuf_printf(&b, "{\"bans\":[");
    struct hmap_entry *e;
    int first = 1;
    for (size_t i = 0; hmap_next(bans, &i, &e);) {
        const struct ban *ban = e->value;
        if (!first) sbuf_putc(&b, ',');
        first = 0;
        sbuf_printf(&b, "{\"id\":");
        json_append_string(&b, ban->id, ban->id_len);
        sbuf_printf(&b, ",\"since\":%llu,\"until\":%llu,\"reason\":", (unsigned long long)ban->since_ms,
                    (unsigned long long)ban->until_ms);
        json_append_string(&b, ban->reason, strlen(ban->reason));
        sbuf_putc(&b, '}');
    }
    sbuf_printf(&b, "],\"count\":%zu}", bans->count);
    respond_json(c, 200, &b, keep_alive);
}

/* }================================================================== */

/* Splits "/api/<a>/<b>/<c>/<d>" into up to 4 percent-decoded segments. */
static int split_path(struct slice path, char seg[4][512], size_t len[4]) {
    const char *p = path.p + 5, *end = path.p + path.len; /* after "/api/" */
    int n = 0;
    while (p <= end && n < 4) {
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

/* Who called: the peer, and a prefix of the admin token's SHA-256 (there is
 * one token; the prefix tells which one was in force, not the token). */
static void who_called(struct conn *c, char *out, size_t cap) {
    char peer[64];
    conn_peer_name(c, peer, sizeof peer);
    const struct auth *a = &server_of(c)->auth;
    if (!a->admin_token) {
        snprintf(out, cap, "peer=%s token=-", peer);
        return;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_Digest(a->admin_token, a->admin_token_len, md, &mdlen, EVP_sha256(), NULL);
    snprintf(out, cap, "peer=%s token=sha256:%02x%02x%02x%02x", peer, md[0], md[1], md[2], md[3]);
}

/* Every call is logged with who and what: changes at info, reads at debug. */
static void log_call(struct conn *c, const struct http_request *req, const char *body, size_t len, int change) {
    if (!change && !log_enabled(LOG_DEBUG)) return;
    char who[128], qp[LOG_QUOTED_MAX], qb[LOG_QUOTED_MAX], path[512], text[256];
    who_called(c, who, sizeof who);
    snprintf(path, sizeof path, "%.*s", (int)(req->target.len < 500 ? req->target.len : 500), req->target.p);
    size_t tn = body ? (len < 200 ? len : 200) : 0;
    for (size_t i = 0; i < tn; i++) text[i] = body[i] ? body[i] : '?'; /* a C string from here on */
    text[tn] = 0;
    log_msg(change ? LOG_INFO : LOG_DEBUG, "admin", "call %s method=%.*s path=\"%s\" body=\"%s\"", who,
            (int)(req->method.len < 10 ? req->method.len : 10), req->method.p, log_quoted(qp, sizeof qp, path),
            log_quoted(qb, sizeof qb, text));
}

void admin_handle_request(struct conn *c, const struct http_request *req, const char *body, size_t len,
                          int keep_alive) {
    struct server *srv = server_of(c);
    if (srv->auth.admin_token) {
        if (!auth_admin_ok(&srv->auth, req)) {
            char peer[64], q[LOG_QUOTED_MAX], path[256];
            conn_peer_name(c, peer, sizeof peer);
            snprintf(path, sizeof path, "%.*s", (int)(req->path.len < 200 ? req->path.len : 200), req->path.p);
            log_warn("admin", "refused peer=%s reason=\"%s\" path=\"%s\"", peer,
                     http_header_get(req, "Authorization") ? "wrong token" : "no token", log_quoted(q, sizeof q, path));
            struct sbuf b = {0};
            sbuf_printf(&b, "{\"error\":\"missing or wrong admin token (Authorization: Bearer ...)\"}");
            httpd_respond(c, 401, "application/json", b.p, b.len, "WWW-Authenticate: Bearer\r\n", !keep_alive);
            sbuf_free(&b);
            return;
        }
    } else if (!peer_is_loopback(c)) {
        char peer[64];
        conn_peer_name(c, peer, sizeof peer);
        log_warn("admin", "refused peer=%s reason=\"not loopback and no admin token configured\"", peer);
        respond_error(c, 403, "the admin API needs --admin-token-file; without it only loopback clients may use it",
                      keep_alive);
        return;
    }
    if (len > ADMIN_MAX_BODY_BYTES) {
        respond_error(c, 413, "the body is too large", keep_alive);
        return;
    }
    char seg[4][512];
    size_t sl[4];
    int n = split_path(req->path, seg, sl);
    int get = slice_eq(req->method, "GET") || slice_eq(req->method, "HEAD"), post = slice_eq(req->method, "POST"),
        del = slice_eq(req->method, "DELETE");
    log_call(c, req, body, len, !get);
    const char *want = NULL; /* the methods the route takes, when it exists */
    int users = n >= 1 && strcmp(seg[0], "users") == 0, rooms = n >= 1 && strcmp(seg[0], "rooms") == 0;
    struct page pg;
    if (n == 1 && strcmp(seg[0], "reload") == 0) {
        if (post) { handle_reload(c, keep_alive); return; }
        want = "POST";
    } else if (n == 1 && strcmp(seg[0], "status") == 0) {
        if (get) { handle_status(c, keep_alive); return; }
        want = "GET";
    } else if (n == 1 && strcmp(seg[0], "emit") == 0) {
        if (post) { handle_emit(c, EMIT_ALL, NULL, 0, body, len, keep_alive); return; }
        want = "POST";
    } else if (n == 1 && strcmp(seg[0], "bans") == 0) {
        if (get) { handle_bans(c, keep_alive); return; }
        want = "GET";
    } else if (n == 1 && users) {
        if (get) { if (read_page(c, req, &pg, keep_alive) == 0) handle_users(c, &pg, keep_alive); return; }
        want = "GET";
    } else if (n == 2 && users && sl[1]) {
        if (get) { handle_user(c, seg[1], sl[1], 0, keep_alive); return; }
        want = "GET";
    } else if (n == 3 && users && sl[1] && strcmp(seg[2], "disconnect") == 0) {
        if (post) { handle_user(c, seg[1], sl[1], 1, keep_alive); return; }
        want = "POST";
    } else if (n == 3 && users && sl[1] && strcmp(seg[2], "emit") == 0) {
        if (post) { handle_emit(c, EMIT_USER, seg[1], sl[1], body, len, keep_alive); return; }
        want = "POST";
    } else if (n == 3 && users && sl[1] && strcmp(seg[2], "ban") == 0) {
        if (post) { handle_ban(c, seg[1], sl[1], body, len, keep_alive); return; }
        if (del) { handle_unban(c, seg[1], sl[1], keep_alive); return; }
        want = "POST, DELETE";
    } else if (n == 4 && users && sl[1] && strcmp(seg[2], "rooms") == 0) {
        if (post || del) { handle_membership(c, seg[1], sl[1], seg[3], sl[3], post, keep_alive); return; }
        want = "POST, DELETE";
    } else if (n == 1 && rooms) {
        if (get) { if (read_page(c, req, &pg, keep_alive) == 0) handle_rooms(c, &pg, keep_alive); return; }
        want = "GET";
    } else if (n == 2 && rooms && sl[1]) {
        if (get) { handle_room(c, seg[1], sl[1], keep_alive); return; }
        want = "GET";
    } else if (n == 3 && rooms && sl[1] && strcmp(seg[2], "emit") == 0) {
        if (post) { handle_emit(c, EMIT_ROOM, seg[1], sl[1], body, len, keep_alive); return; }
        want = "POST";
    }
    if (!want) {
        respond_error(c, 404, "no such API call", keep_alive);
        return;
    }
    char allow[48];
    snprintf(allow, sizeof allow, "Allow: %s\r\n", want);
    struct sbuf b = {0};
    sbuf_printf(&b, "{\"error\":\"use %s\"}", want);
    httpd_respond(c, 405, "application/json", b.p, b.len, allow, !keep_alive);
    sbuf_free(&b);
}
