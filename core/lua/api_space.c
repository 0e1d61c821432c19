/* api_space: the `space` module (require "space"): rooms of a namespace,
 * stores kept across reloads, time, ids, the log, JSON and binary values.
 * Its file functions are in api_files.c. */
#include "api.h"

#include <lauxlib.h>
#include <stdio.h>

#include "api_internal.h"
#include "json_lua.h"
#include "log.h"
#include "adapter.h"
#include "clock.h"
#include "ids.h"
#include "script.h"
#include "sio.h"

static struct nsp *opt_nsp(lua_State *L, int idx) {
    size_t len;
    const char *name = luaL_optlstring(L, idx, "/", &len);
    return sio_find_nsp(api_env(L)->sio, name, len);
}

/* space.to(room, event, ...) -> recipients: every member of the room of
 * namespace "/" */
static int space_to(lua_State *L) {
    size_t len;
    const char *room = api__check_room(L, 1, &len);
    struct nsp *nsp = sio_find_nsp(api_env(L)->sio, "/", 1);
    lua_pushinteger(L, (lua_Integer)api__broadcast_values(L, nsp, room, len, NULL, 2));
    return 1;
}

struct user_list {
    lua_State *L;
    lua_Integer n;
};

static void push_user(void *ud, const struct user *u) {
    struct user_list *list = ud;
    api__push_user(list->L, u);
    lua_rawseti(list->L, -2, ++list->n);
}

/* space.room_users(room[, namespace]) -> array of {id, name} (each user
 * once), count */
static int space_room_users(lua_State *L) {
    size_t len;
    const char *room = api__check_room(L, 1, &len);
    struct nsp *nsp = opt_nsp(L, 2);
    size_t users = 0, conns = 0;
    if (nsp) adapter_room_size(nsp, room, len, &users, &conns);
    lua_createtable(L, (int)users, 0);
    json_lua_set_array(L, -1);
    struct user_list list = {L, 0};
    if (nsp) adapter_room_users(nsp, room, len, push_user, &list);
    lua_pushinteger(L, list.n);
    return 2;
}

/* space.room_size(room[, namespace]) -> distinct users, connections */
static int space_room_size(lua_State *L) {
    size_t len;
    const char *room = api__check_room(L, 1, &len);
    struct nsp *nsp = opt_nsp(L, 2);
    size_t users = 0, conns = 0;
    if (nsp) adapter_room_size(nsp, room, len, &users, &conns);
    lua_pushinteger(L, (lua_Integer)users);
    lua_pushinteger(L, (lua_Integer)conns);
    return 2;
}

/* space.room_has_user(room, user_id[, namespace]) -> boolean: one of the
 * user's connections is in the room */
static int space_room_has_user(lua_State *L) {
    size_t len, id_len;
    const char *room = api__check_room(L, 1, &len);
    const char *id = luaL_checklstring(L, 2, &id_len);
    struct nsp *nsp = opt_nsp(L, 3);
    lua_pushboolean(L, nsp && adapter_room_has_user(nsp, room, len, id, id_len));
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

/* space.now() -> milliseconds since the epoch (integer) */
static int space_now(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)clock_wall_ms());
    return 1;
}

/* space.new_id() -> a unique id that sorts in creation order */
static int space_new_id(lua_State *L) {
    char id[17];
    ids_new_id(api_env(L)->ids, id);
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
    struct sbuf *out = api_scratch(L);
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
    {"store", space_store}, {"now", space_now}, {"new_id", space_new_id}, {"log", space_log}, {"array", space_array},
    {"binary", space_binary}, {"is_binary", space_is_binary}, {"json_encode", space_json_encode},
    {"json_decode", space_json_decode}, {NULL, NULL},
};

int api__space_open(lua_State *L) {
    luaL_newlib(L, space_funcs);
    api__files_register(L);
    api__history_register(L);
    lua_pushlightuserdata(L, JSON_NULL);
    lua_setfield(L, -2, "null");
    return 1;
}
