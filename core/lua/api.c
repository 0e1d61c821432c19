#include "api.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "files.h"
#include "filecheck.h"
#include "json_lua.h"
#include "script.h"
#include "wire.h"
#include "jwt.h"
#include "log.h"
#include "room.h"
#include "server.h"
#include "sio.h"
#include "user.h"

/* A handle can outlive its socket: it starts closed, is filled in, and
 * every method checks it (sock == NULL once the socket is gone). User
 * value 1: the connection's data table; 2: pending ack callbacks by id. */
struct conn_handle {
    struct sio_socket *sock;
};

enum { UV_DATA = 1, UV_ACKS = 2 };


struct server *api_server(lua_State *L) { return *(struct server **)lua_getextraspace(L); }

/* {==================================================================
 * Sending
 * =================================================================== */

/* Encodes stack values [first, last] as a JSON array into the scratch
 * buffer and fills o (json, attachments). The binary values' bytes are
 * those of the userdata the encoded values hold: o stays valid while
 * they are on the stack. Raises for values JSON cannot hold. */
struct encoded {
    struct sio_out o;
    const void *bin[SIO_MAX_ATTACHMENTS];
    size_t bin_len[SIO_MAX_ATTACHMENTS];
};

static void encode_values(lua_State *L, int first, int last, enum sio_type type, int64_t ack_id,
                          struct encoded *e) {
    struct sbuf *out = &api_server(L)->scratch;
    sbuf_reset(out);
    struct json_binary_list bins = {0, SIO_MAX_ATTACHMENTS, e->bin, e->bin_len};
    sbuf_putc(out, '[');
    for (int i = first; i <= last; i++) {
        if (i > first) sbuf_putc(out, ',');
        if (json_lua_encode(L, i, out, &bins) != 0) lua_error(L);
    }
    if (sbuf_putc(out, ']') != 0) luaL_error(L, "out of memory");
    e->o = (struct sio_out){type, ack_id, out->p, out->len, bins.count, e->bin, e->bin_len};
}

int api_send_values(lua_State *L, struct sio_socket *s, int is_ack, int64_t ack_id, int first,
                    int last) {
    struct encoded e;
    encode_values(L, first, last, is_ack ? SIO_ACK : SIO_EVENT, ack_id, &e);
    return sio_send(s, &e.o) == 0;
}

void api_reply(lua_State *L, struct sio_socket *s, int event_idx, int data_idx, int64_t ack_id) {
    event_idx = lua_absindex(L, event_idx);
    data_idx = lua_absindex(L, data_idx);
    if (sio_socket_is_plain(s)) {
        /* /ws: one frame {"event","data","id"} answers the request id. */
        lua_pushvalue(L, event_idx);
        lua_pushvalue(L, data_idx);
        api_send_values(L, s, 0, ack_id, lua_gettop(L) - 1, lua_gettop(L));
        lua_pop(L, 2);
        return;
    }
    lua_pushvalue(L, event_idx);
    lua_pushvalue(L, data_idx);
    int top = lua_gettop(L);
    if (!lua_isnil(L, event_idx)) api_send_values(L, s, 0, -1, top - 1, top);
    if (ack_id >= 0) api_send_values(L, s, 1, ack_id, top, top);
    lua_pop(L, 2);
}

/* Checks that the value at idx is an event name a client accepts. */
static void check_event_name(lua_State *L, int idx) {
    size_t len;
    const char *name = luaL_checklstring(L, idx, &len);
    if (len == 0 || sio_is_reserved_event(name, len))
        luaL_argerror(L, idx, lua_pushfstring(L, "'%s' is not an event name a client accepts", name));
}

/* Whether a member of r other than except would get a broadcast (the
 * sender alone in its room is common: its message goes to nobody). */
static int has_recipient(const struct room *r, const struct sio_socket *except) {
    for (uint32_t i = 0; i < r->n_members; i++) {
        const struct sio_socket *s = r->members[i].m->owner;
        if (s != except && !s->closed) return 1;
    }
    return 0;
}

/* Broadcasts stack values [first, top] as an EVENT to room of nsp. */
static size_t broadcast_values(lua_State *L, struct nsp *nsp, const char *room, size_t room_len,
                               struct sio_socket *except, int first) {
    struct server *srv = api_server(L);
    int last = lua_gettop(L);
    check_event_name(L, first);
    struct room *r = nsp ? room_find(&nsp->rooms, room, room_len) : NULL;
    if (!r || !has_recipient(r, except)) return 0; /* nothing to encode for nobody */
    struct encoded e;
    encode_values(L, first, last, SIO_EVENT, -1, &e);
    return sio_broadcast(srv, nsp, r, except, &e.o);
}

/* }================================================================== */

/* {==================================================================
 * Connection handles
 * =================================================================== */

/* Registry key (an address) of the connection metatable, beside its name:
 * found without hashing a C string. */
static const char CONN_MT_KEY = 0;

/* The handle at idx when its metatable is the one at mt_idx, else NULL. */
static struct conn_handle *to_handle(lua_State *L, int idx, int mt_idx) {
    struct conn_handle *h = lua_touserdata(L, idx);
    if (!h || !lua_getmetatable(L, idx)) return NULL;
    int ok = lua_rawequal(L, -1, mt_idx);
    lua_pop(L, 1);
    return ok ? h : NULL;
}

/* For the conn methods, whose upvalue 1 is the metatable (every script
 * call into the API goes through here). */
static struct sio_socket *check_conn(lua_State *L) {
    struct conn_handle *h = to_handle(L, 1, lua_upvalueindex(1));
    if (!h) h = luaL_checkudata(L, 1, API_CONN_MT); /* raises the usual message */
    if (!h->sock) luaL_error(L, "attempt to use a closed connection");
    return h->sock;
}

struct sio_socket *api_to_socket(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &CONN_MT_KEY);
    struct conn_handle *h = to_handle(L, idx, lua_gettop(L));
    lua_pop(L, 1);
    return h ? h->sock : NULL;
}

void api_push_conn(lua_State *L, struct sio_socket *s) {
    if (s->script_ref) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, s->script_ref);
        return;
    }
    struct conn_handle *h = lua_newuserdatauv(L, sizeof *h, 2);
    h->sock = NULL;
    luaL_setmetatable(L, API_CONN_MT);
    lua_newtable(L);
    lua_setiuservalue(L, -2, UV_DATA);
    h->sock = s;
    lua_pushvalue(L, -1);
    s->script_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

void api_release_conn(lua_State *L, struct sio_socket *s) {
    if (!s->script_ref) return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->script_ref);
    struct conn_handle *h = lua_touserdata(L, -1);
    if (h) h->sock = NULL;
    lua_pushnil(L);
    lua_setiuservalue(L, -2, UV_ACKS);
    lua_pop(L, 1);
    luaL_unref(L, LUA_REGISTRYINDEX, s->script_ref);
    s->script_ref = 0;
}

void api_push_ack_table(lua_State *L, struct sio_socket *s) {
    if (!s->script_ref) {
        lua_pushnil(L);
        return;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->script_ref);
    lua_getiuservalue(L, -1, UV_ACKS);
    lua_remove(L, -2);
}

/* conn:id() -> the socket id (what the client sees as socket.id) */
static int conn_id(lua_State *L) {
    lua_pushstring(L, check_conn(L)->sid);
    return 1;
}

/* conn:namespace() -> "/" or the namespace's name */
static int conn_namespace(lua_State *L) {
    struct sio_socket *s = check_conn(L);
    lua_pushlstring(L, s->nsp->name, s->nsp->name_len);
    return 1;
}

static void push_user(lua_State *L, const struct user *u) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, u->id);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, u->name);
    lua_setfield(L, -2, "name");
}

/* conn:user() -> {id, name} (a fresh table), or nil before authentication */
static int conn_user(lua_State *L) {
    struct sio_socket *s = check_conn(L);
    if (s->rooms.user) push_user(L, s->rooms.user);
    else lua_pushnil(L);
    return 1;
}

/* conn:set_user{id = string, name = string}: only while authenticating. */
static int conn_set_user(lua_State *L) {
    struct sio_socket *s = check_conn(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (s->rooms.user) return luaL_error(L, "the connection's user is already set");
    lua_getfield(L, 2, "id");
    lua_getfield(L, 2, "name");
    size_t id_len, name_len;
    const char *id = lua_tolstring(L, -2, &id_len);
    const char *name = lua_tolstring(L, -1, &name_len);
    if (!id || id_len == 0 || id_len > 256 || memchr(id, 0, id_len))
        return luaL_argerror(L, 2, "user.id must be a string of 1 to 256 bytes without NUL");
    if (!name || name_len == 0 || name_len > 256 || memchr(name, 0, name_len))
        return luaL_argerror(L, 2, "user.name must be a string of 1 to 256 bytes without NUL");
    struct user *u = user_acquire(api_server(L), id, id_len, name, name_len);
    if (!u) return luaL_error(L, "out of memory");
    s->rooms.user = u;
    return 0;
}

/* conn:data() -> this connection's table, kept until it disconnects */
static int conn_data(lua_State *L) {
    check_conn(L);
    lua_getiuservalue(L, 1, UV_DATA);
    return 1;
}

/* conn:emit(event, ...[, callback]) -> true, or false when the connection
 * is gone. A function as last argument asks the client for an ack: it is
 * called with the ack's arguments. */
static int conn_emit(lua_State *L) {
    struct sio_socket *s = check_conn(L);
    check_event_name(L, 2);
    int last = lua_gettop(L);
    int64_t ack_id = -1;
    if (lua_type(L, last) == LUA_TFUNCTION) {
        ack_id = s->next_ack_id++;
        lua_getiuservalue(L, 1, UV_ACKS);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -1);
            lua_setiuservalue(L, 1, UV_ACKS);
        }
        lua_pushvalue(L, last);
        lua_rawseti(L, -2, ack_id);
        lua_pop(L, 1);
        last--;
    }
    lua_pushboolean(L, api_send_values(L, s, 0, ack_id, 2, last));
    return 1;
}

/* conn:ack(ev, ...) answers the client's ack request of event ev once.
 * -> true when sent; false when none was asked or it was already sent. */
static int conn_ack(lua_State *L) {
    struct sio_socket *s = check_conn(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "ack_id");
    lua_Integer id = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : -1;
    lua_pop(L, 1);
    if (id < 0) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_pushnil(L);
    lua_setfield(L, 2, "ack_id");
    lua_pushboolean(L, api_send_values(L, s, 1, id, 3, lua_gettop(L)));
    return 1;
}

static const char *check_room(lua_State *L, int idx, size_t *len) {
    const char *room = luaL_checklstring(L, idx, len);
    if (*len == 0 || *len > 1024) luaL_argerror(L, idx, "room names have 1 to 1024 bytes");
    return room;
}

/* conn:join(room) -> joined (false when already in), user_is_new (first
 * connection of this user in the room) */
static int conn_join(lua_State *L) {
    struct sio_socket *s = check_conn(L);
    size_t len;
    const char *room = check_room(L, 2, &len);
    if (!s->rooms.user) return luaL_error(L, "the connection has no user yet");
    struct room *r;
    int user_is_new;
    int rc = room_join(&s->nsp->rooms, &s->rooms, room, len, &r, &user_is_new);
    if (rc < 0) return luaL_error(L, "out of memory");
    lua_pushboolean(L, rc == 1);
    lua_pushboolean(L, user_is_new);
    return 2;
}

/* conn:leave(room) -> was_member, user_left (the user's last connection left) */
static int conn_leave(lua_State *L) {
    struct sio_socket *s = check_conn(L);
    size_t len;
    const char *room = check_room(L, 2, &len);
    struct room *r = room_find(&s->nsp->rooms, room, len);
    int user_left = 0;
    int was = r ? room_leave(&s->nsp->rooms, &s->rooms, r, &user_left) : 0;
    lua_pushboolean(L, was);
    lua_pushboolean(L, user_left);
    return 2;
}

/* conn:in_room(room) -> boolean */
static int conn_in_room(lua_State *L) {
    struct sio_socket *s = check_conn(L);
    size_t len;
    const char *room = check_room(L, 2, &len);
    struct room *r = room_find(&s->nsp->rooms, room, len);
    lua_pushboolean(L, r && room_has(&s->rooms, r));
    return 1;
}

/* conn:rooms() -> array of room names */
static int conn_rooms(lua_State *L) {
    struct sio_socket *s = check_conn(L);
    lua_createtable(L, (int)s->rooms.n, 0);
    for (uint32_t i = 0; i < s->rooms.n; i++) {
        lua_pushlstring(L, s->rooms.slots[i].room->name, s->rooms.slots[i].room->name_len);
        lua_rawseti(L, -2, i + 1);
    }
    json_lua_set_array(L, -1);
    return 1;
}

/* conn:to(room, event, ...) -> recipients: every member of the room except
 * this connection (Node's socket.to(room).emit) */
static int conn_to(lua_State *L) {
    struct sio_socket *s = check_conn(L);
    size_t len;
    const char *room = check_room(L, 2, &len);
    lua_pushinteger(L, (lua_Integer)broadcast_values(L, s->nsp, room, len, s, 3));
    return 1;
}

/* conn:disconnect([whole]) closes this namespace's socket (DISCONNECT is
 * sent), or with whole = true the client's whole connection. */
static int conn_disconnect(lua_State *L) {
    struct sio_socket *s = check_conn(L);
    if (lua_toboolean(L, 2)) sio_socket_close_session(s, 1000, "server disconnect");
    else sio_socket_close(s, "server namespace disconnect", 1);
    return 0;
}

/* conn:refresh_token(token) -> exp (ms since the epoch, 0 = none) once the
 * token verifies and names the same user; nil, code, message otherwise. */
static int conn_refresh_token(lua_State *L) {
    struct sio_socket *s = check_conn(L);
    size_t len;
    const char *token = luaL_checklstring(L, 2, &len);
    struct server *srv = api_server(L);
    if (!srv->auth.key) {
        lua_pushnil(L);
        lua_pushliteral(L, "unauthorized");
        lua_pushliteral(L, "no JWT key is configured (development mode)");
        return 3;
    }
    char *buf = malloc(JWT_MAX_TOKEN_BYTES);
    if (!buf) return luaL_error(L, "out of memory");
    struct jwt_claims claims;
    enum jwt_result r = jwt_verify(srv->auth.key, &srv->auth.policy, token, len,
                                   (int64_t)(server_wall_ms() / 1000), &claims, buf, JWT_MAX_TOKEN_BYTES);
    if (r != JWT_OK || strcmp(claims.sub, s->token_sub) != 0) {
        free(buf);
        lua_pushnil(L);
        lua_pushstring(L, r != JWT_OK ? jwt_result_code(r) : "invalid_token");
        lua_pushstring(L, r != JWT_OK ? "the token does not verify" : "the token names another user");
        return 3;
    }
    /* The plugins' policy (a required role, banned users) holds for a fresh
     * token as it did at connect: their on_authenticate runs again. */
    int base = lua_gettop(L);
    int rc = json_lua_decode(L, claims.json, claims.json_len, NULL);
    free(buf);
    if (rc != 0 || !lua_istable(L, -1)) {
        lua_settop(L, base);
        lua_pushnil(L);
        lua_pushliteral(L, "invalid_token");
        lua_pushliteral(L, "the token's claims are not a JSON object");
        return 3;
    }
    lua_createtable(L, 0, 1); /* auth, as a CONNECT would carry it */
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, "token");
    int pr = script_recheck_claims(srv->script, s, base + 1, base + 2);
    if (pr != 0) {
        const char *code = lua_tostring(L, -2);
        const char *msg = lua_isstring(L, -1) ? lua_tostring(L, -1) : "the token is refused";
        lua_pushnil(L);
        lua_pushstring(L, code);
        lua_pushstring(L, msg);
        return 3;
    }
    lua_settop(L, base);
    /* The notice waits out the leeway; the client is told the token's own exp. */
    sio_socket_set_token_exp(s, claims.exp ? (uint64_t)(claims.exp + srv->auth.policy.leeway_s) * 1000 : 0);
    lua_pushinteger(L, (lua_Integer)claims.exp * 1000);
    return 1;
}

/* conn:reply(ev, event, data) answers the client's event ev as a handler's
 * return value would, later (after asynchronous work): the event to the
 * sender, and the ack if one was asked. Once per ev. -> true when sent. */
static int conn_reply(lua_State *L) {
    struct sio_socket *s = check_conn(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    check_event_name(L, 3);
    lua_settop(L, 4);
    lua_getfield(L, 2, "ack_id");
    int64_t ack_id = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : -1;
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_setfield(L, 2, "ack_id");
    api_reply(L, s, 3, 4, ack_id);
    lua_pushboolean(L, 1);
    return 1;
}

static int conn_tostring(lua_State *L) {
    struct conn_handle *h = luaL_checkudata(L, 1, API_CONN_MT);
    if (h->sock) lua_pushfstring(L, "connection (%s)", h->sock->sid);
    else lua_pushliteral(L, "connection (closed)");
    return 1;
}

static const luaL_Reg conn_methods[] = {
    {"id", conn_id}, {"namespace", conn_namespace}, {"user", conn_user}, {"set_user", conn_set_user},
    {"data", conn_data}, {"emit", conn_emit}, {"ack", conn_ack}, {"join", conn_join},
    {"leave", conn_leave}, {"in_room", conn_in_room}, {"rooms", conn_rooms}, {"to", conn_to},
    {"disconnect", conn_disconnect}, {"refresh_token", conn_refresh_token}, {"reply", conn_reply}, {NULL, NULL},
};

static const luaL_Reg conn_meta[] = {{"__tostring", conn_tostring}, {"__index", NULL}, {NULL, NULL}};

/* }================================================================== */

/* {==================================================================
 * The space module
 * =================================================================== */

static struct nsp *opt_nsp(lua_State *L, int idx) {
    size_t len;
    const char *name = luaL_optlstring(L, idx, "/", &len);
    return hmap_get(&api_server(L)->namespaces, name, len);
}

/* space.to(room, event, ...) -> recipients: every member of the room of
 * namespace "/" */
static int space_to(lua_State *L) {
    size_t len;
    const char *room = check_room(L, 1, &len);
    struct nsp *nsp = hmap_get(&api_server(L)->namespaces, "/", 1);
    lua_pushinteger(L, (lua_Integer)broadcast_values(L, nsp, room, len, NULL, 2));
    return 1;
}

/* space.room_users(room[, namespace]) -> array of {id, name} (each user
 * once), count */
static int space_room_users(lua_State *L) {
    size_t len;
    const char *room = check_room(L, 1, &len);
    struct nsp *nsp = opt_nsp(L, 2);
    struct room *r = nsp ? room_find(&nsp->rooms, room, len) : NULL;
    lua_createtable(L, r ? (int)r->users.count : 0, 0);
    json_lua_set_array(L, -1);
    lua_Integer n = 0;
    if (r) {
        struct hmap_entry *e;
        for (size_t i = 0; hmap_next(&r->users, &i, &e);) {
            push_user(L, ((struct room_user *)e->value)->user);
            lua_rawseti(L, -2, ++n);
        }
    }
    lua_pushinteger(L, n);
    return 2;
}

/* space.room_size(room[, namespace]) -> distinct users, connections */
static int space_room_size(lua_State *L) {
    size_t len;
    const char *room = check_room(L, 1, &len);
    struct nsp *nsp = opt_nsp(L, 2);
    struct room *r = nsp ? room_find(&nsp->rooms, room, len) : NULL;
    lua_pushinteger(L, r ? (lua_Integer)r->users.count : 0);
    lua_pushinteger(L, r ? (lua_Integer)r->n_members : 0);
    return 2;
}

/* space.room_has_user(room, user_id[, namespace]) -> boolean: one of the
 * user's connections is in the room */
static int space_room_has_user(lua_State *L) {
    size_t len, id_len;
    const char *room = check_room(L, 1, &len);
    const char *id = luaL_checklstring(L, 2, &id_len);
    struct nsp *nsp = opt_nsp(L, 3);
    struct room *r = nsp ? room_find(&nsp->rooms, room, len) : NULL;
    lua_pushboolean(L, r && hmap_get(&r->users, id, id_len) != NULL);
    return 1;
}

/* space.store(name) -> a table kept across reloads (one per name): the one
 * home of script state that must survive a reload. */
static int space_store(lua_State *L) {
    luaL_checkstring(L, 1);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, "space.stores");
    lua_pushvalue(L, 1);
    if (lua_rawget(L, -2) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, 1);
        lua_pushvalue(L, -2);
        lua_rawset(L, -4);
    }
    return 1;
}

/* The bytes of a string or binary value at idx. */
static const char *check_bytes(lua_State *L, int idx, size_t *len) {
    const char *p = json_lua_to_binary(L, idx, len);
    return p ? p : luaL_checklstring(L, idx, len);
}

/* space.base64_decode(s) -> binary | nil, "invalid base64" (standard
 * alphabet, padding required, no whitespace) */
static int space_base64_decode(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    void *out = lua_newuserdatauv(L, len / 4 * 3 + 1, 0); /* scratch, collected */
    struct script_host *host = api_server(L)->script;
    script_cpu_exempt_begin(host); /* an upload's size is bounded by --max-payload */
    long n = wire_base64_decode(out, s, len);
    if (n >= 0) json_lua_push_binary(L, out, (size_t)n);
    script_cpu_exempt_end(host);
    if (n < 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "invalid base64");
        return 2;
    }
    return 1;
}

/* space.sniff_type(data) -> the MIME type its magic bytes say, or nil */
static int space_sniff_type(lua_State *L) {
    size_t len;
    const char *p = check_bytes(L, 1, &len);
    const char *type = filecheck_sniff(p, len);
    if (type) lua_pushstring(L, type);
    else lua_pushnil(L);
    return 1;
}

/* space.check_file_name(name, max_bytes) -> true | nil, reason */
static int space_check_file_name(lua_State *L) {
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    const char *why = filecheck_name(name, len, (size_t)luaL_checkinteger(L, 2));
    if (!why) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
}

struct store_ctx {
    struct server *srv;
    int fn_ref; /* the Lua callback */
};

static void on_stored(void *ud, const struct file_info *info, const char *err) {
    struct store_ctx *ctx = ud;
    struct server *srv = ctx->srv;
    if (srv->script) {
        lua_State *L = script_state(srv->script);
        int top = lua_gettop(L);
        lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->fn_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, ctx->fn_ref);
        if (info) {
            lua_createtable(L, 0, 6);
            lua_pushstring(L, info->id);
            lua_setfield(L, -2, "id");
            lua_pushstring(L, info->name);
            lua_setfield(L, -2, "name");
            lua_pushstring(L, info->type);
            lua_setfield(L, -2, "type");
            lua_pushinteger(L, (lua_Integer)info->size);
            lua_setfield(L, -2, "size");
            lua_pushstring(L, info->sha256);
            lua_setfield(L, -2, "sha256");
            lua_pushfstring(L, "/files/%s/", info->id);
            char pct[800];
            size_t p = 0;
            for (const unsigned char *s = (const unsigned char *)info->name; *s && p < sizeof pct - 4; s++) {
                if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
                    strchr("-._~", *s))
                    pct[p++] = (char)*s;
                else
                    p += (size_t)snprintf(pct + p, 4, "%%%02X", *s);
            }
            lua_pushlstring(L, pct, p);
            lua_concat(L, 2);
            lua_setfield(L, -2, "url");
            lua_pushnil(L);
        } else {
            lua_pushnil(L);
            lua_pushstring(L, err);
        }
        script_call(srv->script, 2, 0, "store_file callback");
        lua_settop(L, top);
    }
    free(ctx);
}

/* space.store_file(data, {type = T, name = N}, callback) stores the bytes
 * (type and name already checked) on a worker thread; callback(file) with
 * file = {id, name, type, size, sha256, url}, or callback(nil, err). */
static int space_store_file(lua_State *L) {
    size_t len;
    const char *p = check_bytes(L, 1, &len);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    lua_getfield(L, 2, "type");
    lua_getfield(L, 2, "name");
    const char *type = luaL_checkstring(L, -2), *name = luaL_checkstring(L, -1);
    if (strlen(type) >= 128 || strlen(name) > 256 || strchr(name, '\n') || strchr(type, '\n'))
        return luaL_argerror(L, 2, "type or name out of bounds (check them first)");
    struct store_ctx *ctx = malloc(sizeof *ctx);
    if (!ctx) return luaL_error(L, "out of memory");
    ctx->srv = api_server(L);
    lua_pushvalue(L, 3);
    ctx->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    script_cpu_exempt_begin(ctx->srv->script); /* the copy of an upload's bytes */
    int stored = files_store(ctx->srv, p, len, type, name, on_stored, ctx);
    script_cpu_exempt_end(ctx->srv->script);
    if (stored != 0) {
        luaL_unref(L, LUA_REGISTRYINDEX, ctx->fn_ref);
        free(ctx);
        return luaL_error(L, "out of memory");
    }
    return 0;
}

/* space.now() -> milliseconds since the epoch (integer) */
static int space_now(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)server_wall_ms());
    return 1;
}

/* space.new_id() -> a unique id that sorts in creation order */
static int space_new_id(lua_State *L) {
    char id[17];
    server_new_id(api_server(L), id);
    lua_pushstring(L, id);
    return 1;
}

/* space.log(level, message) with level "debug", "info", "warn", "error" */
static int space_log(lua_State *L) {
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    int level = luaL_checkoption(L, 1, NULL, levels);
    const char *msg = luaL_checkstring(L, 2);
    lua_Debug ar;
    char where[128] = "?";
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar))
        snprintf(where, sizeof where, "%s:%d", ar.short_src, ar.currentline);
    log_msg((enum log_level)level, "lua", "%s (%s)", msg, where);
    return 0;
}

/* space.array(t) -> t, marked to encode as a JSON array even when empty */
static int space_array(lua_State *L) {
    if (lua_isnoneornil(L, 1)) lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    json_lua_set_array(L, -1);
    return 1;
}

/* space.binary(s) -> a binary value (sent as a Socket.IO attachment) */
static int space_binary(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    json_lua_push_binary(L, s, len);
    return 1;
}

/* space.is_binary(v) -> boolean */
static int space_is_binary(lua_State *L) {
    lua_pushboolean(L, json_lua_to_binary(L, 1, NULL) != NULL);
    return 1;
}

/* space.json_encode(v) -> string; space.json_decode(s) -> value | nil, err */
static int space_json_encode(lua_State *L) {
    luaL_checkany(L, 1);
    struct sbuf *out = &api_server(L)->scratch;
    sbuf_reset(out);
    if (json_lua_encode(L, 1, out, NULL) != 0) return lua_error(L);
    lua_pushlstring(L, out->p, out->len);
    return 1;
}

static int space_json_decode(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    if (json_lua_decode(L, s, len, NULL) != 0) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    return 1;
}

static const luaL_Reg space_funcs[] = {
    {"to", space_to}, {"room_users", space_room_users}, {"room_size", space_room_size},
    {"room_has_user", space_room_has_user},
    {"store", space_store}, {"now", space_now}, {"base64_decode", space_base64_decode},
    {"sniff_type", space_sniff_type}, {"check_file_name", space_check_file_name}, {"store_file", space_store_file}, {"new_id", space_new_id}, {"log", space_log}, {"array", space_array},
    {"binary", space_binary}, {"is_binary", space_is_binary}, {"json_encode", space_json_encode},
    {"json_decode", space_json_decode}, {NULL, NULL},
};

static int luaopen_space(lua_State *L) {
    luaL_newlib(L, space_funcs);
    lua_pushlightuserdata(L, JSON_NULL);
    lua_setfield(L, -2, "null");
    return 1;
}

void api_open(lua_State *L, struct server *srv) {
    *(struct server **)lua_getextraspace(L) = srv;
    json_lua_open(L);
    luaL_newmetatable(L, API_CONN_MT);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &CONN_MT_KEY);
    luaL_setfuncs(L, conn_meta, 0);
    luaL_newlibtable(L, conn_methods);
    lua_pushvalue(L, -2); /* the methods' upvalue: the metatable, for check_conn */
    luaL_setfuncs(L, conn_methods, 1);
    lua_setfield(L, -2, "__index");
    /* Shared by every handle of every generation: out of scripts' reach. */
    lua_pushliteral(L, API_CONN_MT);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_space);
    lua_setfield(L, -2, "space");
    lua_pop(L, 1);
}

/* }================================================================== */
