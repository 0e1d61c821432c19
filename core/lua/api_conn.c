/* api_conn: the connection handle scripts get (conn:emit, join, ...),
 * one per socket, which outlives its socket as a closed handle. */
#include "api.h"

#include <lauxlib.h>
#include <string.h>

#include "api_internal.h"
#include "json_lua.h"
#include "auth.h"
#include "adapter.h"
#include "script.h"
#include "clock.h"
#include "sio.h"
#include "user.h"
#include "ws.h"

#define MS_PER_S 1000
#define USER_FIELD_MAX_BYTES 256 /* of a user's id and name set by a script */

/* A handle can outlive its socket: it starts closed, is filled in, and
 * every method checks it (sock == NULL once the socket is gone). User
 * value 1: the connection's data table; 2: pending ack callbacks by id. */
struct conn_handle {
    struct sio_socket *sock;
};

enum { UV_DATA = 1, UV_ACKS = 2 };

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

/* conn:recovered() -> true when this connection recovered an earlier one
 * (Socket.IO connection state recovery: same id, rooms and data) */
static int conn_recovered(lua_State *L) {
    lua_pushboolean(L, check_conn(L)->recovered);
    return 1;
}

/* conn:namespace() -> "/" or the namespace's name */
static int conn_namespace(lua_State *L) {
    struct sio_socket *s = check_conn(L);
    lua_pushlstring(L, s->nsp->name, s->nsp->name_len);
    return 1;
}


/* conn:user() -> {id, name} (a fresh table), or nil before authentication */
static int conn_user(lua_State *L) {
    struct sio_socket *s = check_conn(L);
    if (s->rooms.user) api__push_user(L, s->rooms.user);
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
    if (!id || id_len == 0 || id_len > USER_FIELD_MAX_BYTES || memchr(id, 0, id_len))
        return luaL_argerror(L, 2, "user.id must be a string of 1 to 256 bytes without NUL");
    if (!name || name_len == 0 || name_len > USER_FIELD_MAX_BYTES || memchr(name, 0, name_len))
        return luaL_argerror(L, 2, "user.name must be a string of 1 to 256 bytes without NUL");
    struct user *u = user_acquire(&api_env(L)->sio->users, id, id_len, name, name_len);
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
    api__check_event_name(L, 2);
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


/* conn:join(room) -> joined (false when already in), user_is_new (first
 * connection of this user in the room) */
static int conn_join(lua_State *L) {
    struct sio_socket *s = check_conn(L);
    size_t len;
    const char *room = api__check_room(L, 2, &len);
    if (!s->rooms.user) return luaL_error(L, "the connection has no user yet");
    int user_is_new;
    int rc = adapter_join(s, room, len, &user_is_new);
    if (rc < 0) return luaL_error(L, "out of memory");
    lua_pushboolean(L, rc == 1);
    lua_pushboolean(L, user_is_new);
    return 2;
}

/* conn:leave(room) -> was_member, user_left (the user's last connection left) */
static int conn_leave(lua_State *L) {
    struct sio_socket *s = check_conn(L);
    size_t len;
    const char *room = api__check_room(L, 2, &len);
    int user_left = 0;
    int was = adapter_leave(s, room, len, &user_left);
    lua_pushboolean(L, was);
    lua_pushboolean(L, user_left);
    return 2;
}

/* conn:in_room(room) -> boolean */
static int conn_in_room(lua_State *L) {
    struct sio_socket *s = check_conn(L);
    size_t len;
    const char *room = api__check_room(L, 2, &len);
    lua_pushboolean(L, adapter_has(s, room, len));
    return 1;
}

struct room_list {
    lua_State *L;
    lua_Integer n;
};

static int push_room_name(void *ud, const struct adapter_room *r) {
    struct room_list *list = ud;
    lua_pushlstring(list->L, r->name, r->name_len);
    lua_rawseti(list->L, -2, ++list->n);
    return 0;
}

/* conn:rooms() -> array of room names */
static int conn_rooms(lua_State *L) {
    struct sio_socket *s = check_conn(L);
    lua_createtable(L, (int)s->rooms.n, 0);
    struct room_list list = {L, 0};
    adapter_socket_rooms(s, push_room_name, &list);
    json_lua_set_array(L, -1);
    return 1;
}

/* conn:to(room, event, ...) -> recipients: every member of the room except
 * this connection (Node's socket.to(room).emit) */
static int conn_to(lua_State *L) {
    struct sio_socket *s = check_conn(L);
    size_t len;
    const char *room = api__check_room(L, 2, &len);
    lua_pushinteger(L, (lua_Integer)api__broadcast_values(L, s->nsp, room, len, s, 3));
    return 1;
}

/* conn:disconnect([whole]) closes this namespace's socket (DISCONNECT is
 * sent), or with whole = true the client's whole connection. */
static int conn_disconnect(lua_State *L) {
    struct sio_socket *s = check_conn(L);
    if (lua_toboolean(L, 2)) sio_socket_close_session(s, WS_CLOSE_NORMAL, "server disconnect");
    else sio_socket_close(s, "server namespace disconnect", 1);
    return 0;
}

/* conn:refresh_token(token) -> exp (ms since the epoch, 0 = none) once the
 * token verifies and names the same user; nil, code, message otherwise. */
static int conn_refresh_token(lua_State *L) {
    struct sio_socket *s = check_conn(L);
    size_t len;
    const char *token = luaL_checklstring(L, 2, &len);
    const struct script_env *env = api_env(L);
    if (!env->auth->key) {
        lua_pushnil(L);
        lua_pushliteral(L, "unauthorized");
        lua_pushliteral(L, "no JWT key is configured (development mode)");
        return 3;
    }
    struct auth_token tok;
    enum jwt_result r = auth_verify_token(env->auth, token, len, (int64_t)(clock_wall_ms() / MS_PER_S), &tok);
    if (r != JWT_OK || strcmp(tok.claims.sub, s->token_sub) != 0) {
        auth_token_free(&tok);
        lua_pushnil(L);
        lua_pushstring(L, r != JWT_OK ? jwt_result_code(r) : "invalid_token");
        lua_pushstring(L, r != JWT_OK ? "the token does not verify" : "the token names another user");
        return 3;
    }
    /* The plugins' policy (a required role, banned users) holds for a fresh
     * token as it did at connect: their on_authenticate runs again. */
    int base = lua_gettop(L);
    int rc = json_lua_decode(L, tok.claims.json, tok.claims.json_len, NULL);
    auth_token_free(&tok);
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
    int pr = script_recheck_claims(api_host(L), s, base + 1, base + 2);
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
    sio_socket_set_token_exp(s, tok.notice_ms);
    lua_pushinteger(L, (lua_Integer)tok.claims.exp * MS_PER_S);
    return 1;
}

/* conn:reply(ev, event, data) answers the client's event ev as a handler's
 * return value would, later (after asynchronous work): the event to the
 * sender, and the ack if one was asked. Once per ev. -> true when sent. */
static int conn_reply(lua_State *L) {
    struct sio_socket *s = check_conn(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    api__check_event_name(L, 3);
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

/* conn:is_open() -> false once the connection is gone (for the callbacks
 * of asynchronous work, which may answer after a disconnect). */
static int conn_is_open(lua_State *L) {
    struct conn_handle *h = to_handle(L, 1, lua_upvalueindex(1));
    if (!h) h = luaL_checkudata(L, 1, API_CONN_MT);
    lua_pushboolean(L, h->sock != NULL);
    return 1;
}

/* conn:hold() holds what is sent to the connection (counted: each hold
 * needs a release); conn:release() ends one, and when none is left what
 * waited goes out; conn:ahead(on): while on, what is sent goes out at
 * once, ahead of what waits. For a replay that must come before anything
 * live (join_room with since). */
static int conn_hold_output(lua_State *L) {
    sio_socket_output_hold(check_conn(L));
    return 0;
}

static int conn_release(lua_State *L) {
    sio_socket_output_release(check_conn(L));
    return 0;
}

static int conn_ahead(lua_State *L) {
    struct sio_socket *s = check_conn(L);
    sio_socket_output_ahead(s, lua_toboolean(L, 2));
    return 0;
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
    {"disconnect", conn_disconnect}, {"refresh_token", conn_refresh_token}, {"reply", conn_reply},
    {"recovered", conn_recovered}, {"is_open", conn_is_open}, {"hold", conn_hold_output},
    {"release", conn_release}, {"ahead", conn_ahead}, {NULL, NULL},
};

static const luaL_Reg conn_meta[] = {{"__tostring", conn_tostring}, {"__index", NULL}, {NULL, NULL}};

void api__conn_open(lua_State *L) {
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
}
