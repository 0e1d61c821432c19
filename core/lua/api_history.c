/* api_history: the `space` module's functions for the rooms' history
 * (core/history): appending a message as it is sent, and reading pages of
 * it, answered later through a callback. */
#include "api.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "clock.h"
#include "history.h"
#include "ids.h"
#include "json_lua.h"
#include "sbuf.h"
#include "script.h"

#define HISTORY_EVENT_MAX_BYTES 64 /* an event name kept with a message */

static void put_hex(uint64_t v, char out[HISTORY_OFFSET_LEN + 1]) {
    static const char hex[] = "0123456789abcdef";
    for (int i = HISTORY_OFFSET_LEN - 1; i >= 0; i--, v >>= 4) out[i] = hex[v & 15];
    out[HISTORY_OFFSET_LEN] = 0;
}

/* The offset at idx (16 lowercase hex digits) copied to out, or raises. */
static void check_offset(lua_State *L, int idx, const char *what, char out[HISTORY_OFFSET_LEN + 1]) {
    size_t len = 0;
    /* The type first: lua_tolstring would turn a number into a string in place. */
    const char *s = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &len) : NULL;
    int ok = s && len == HISTORY_OFFSET_LEN;
    for (size_t i = 0; ok && i < len; i++) ok = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
    if (!ok) luaL_error(L, "space.history: '%s' must be an offset (16 hex digits)", what);
    memcpy(out, s, HISTORY_OFFSET_LEN + 1);
}

/* space.history_append(room, event, data) -> offset: gives data a fresh
 * offset (data.offset) and keeps it in the room's history (queued: the
 * write happens off the loop). With history off (a rule at 0) data still
 * gets its offset, and nothing is kept. */
static int space_history_append(lua_State *L) {
    size_t room_len, ev_len;
    const char *room = api__check_room(L, 1, &room_len);
    const char *event = luaL_checklstring(L, 2, &ev_len);
    luaL_argcheck(L, ev_len > 0 && ev_len <= HISTORY_EVENT_MAX_BYTES && !memchr(event, ' ', ev_len) &&
                         strlen(event) == ev_len,
                  2, "an event name of 1 to 64 bytes, without spaces");
    luaL_checktype(L, 3, LUA_TTABLE);
    char offset[IDS_ID_LEN + 1];
    ids_new_id(api_env(L)->ids, offset);
    lua_pushstring(L, offset);
    lua_setfield(L, 3, "offset");
    struct sbuf *out = api_scratch(L);
    sbuf_reset(out);
    if (json_lua_encode(L, 3, out, NULL) != 0) return lua_error(L);
    struct history_store *st = api_env(L)->history;
    if (st) st->ops->append(st, room, room_len, offset, event, out->p, out->len);
    lua_pushstring(L, offset);
    return 1;
}

struct query_ctx {
    struct script_host *host;
    int fn_ref;     /* the Lua callback */
    int with_events; /* each message as {event, data} */
};

/* Pushes the messages as an array of the data tables (with_events: of
 * {event = name, data = table}); a message whose JSON does not decode
 * (cannot happen for what we wrote) is left out. */
static void push_messages(lua_State *L, const struct history_msg *msgs, size_t n, int with_events) {
    lua_createtable(L, (int)n, 0);
    json_lua_set_array(L, -1);
    lua_Integer k = 0;
    for (size_t i = 0; i < n; i++) {
        if (json_lua_decode(L, msgs[i].data, msgs[i].data_len, NULL) != 0) {
            lua_pop(L, 1);
            continue;
        }
        if (with_events) {
            lua_createtable(L, 0, 2);
            lua_insert(L, -2);
            lua_setfield(L, -2, "data");
            lua_pushstring(L, msgs[i].event);
            lua_setfield(L, -2, "event");
        }
        lua_rawseti(L, -2, ++k);
    }
}

static void on_page(void *ud, const struct history_msg *msgs, size_t n, int has_more, const char *err) {
    struct query_ctx *ctx = ud;
    lua_State *L = script_state(ctx->host);
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->fn_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, ctx->fn_ref);
    if (err) {
        lua_pushnil(L);
        lua_pushboolean(L, 0);
        lua_pushstring(L, err);
    } else {
        push_messages(L, msgs, n, ctx->with_events);
        lua_pushboolean(L, has_more);
        lua_pushnil(L);
    }
    script_call(ctx->host, 3, 0, "history callback");
    lua_settop(L, top);
    free(ctx);
}

/* space.history(room, {before = offset?, after = offset?, limit = n?,
 * upto = offset?, events = bool?}, callback) -> upto: reads a page of the
 * room's history off the loop, then callback(messages, has_more) with
 * messages oldest first (each the data as sent, offset included; with
 * events = true each {event = name, data = data}), or callback(nil, false,
 * err). Without after: the newest `limit` before `before`; with after: the
 * oldest `limit` after it. Nothing past upto is in the page, by default the
 * offsets made until the call (what follows comes live); the bound
 * used is returned, for the next page of a replay. limit: 1 to 10000,
 * default 50. The callback always runs later, never inside this call. */
static int space_history(lua_State *L) {
    size_t room_len;
    const char *room = api__check_room(L, 1, &room_len);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    struct history_query q = {.limit = 50};
    if (lua_getfield(L, 2, "before") != LUA_TNIL) check_offset(L, -1, "before", q.before);
    if (lua_getfield(L, 2, "after") != LUA_TNIL) check_offset(L, -1, "after", q.after);
    if (lua_getfield(L, 2, "limit") != LUA_TNIL) {
        lua_Integer limit = luaL_checkinteger(L, -1);
        if (limit < 1 || limit > 10000) return luaL_error(L, "space.history: 'limit' must be 1 to 10000");
        q.limit = (unsigned)limit;
    }
    if (lua_getfield(L, 2, "upto") != LUA_TNIL) {
        check_offset(L, -1, "upto", q.upto);
    } else {
        /* Nothing this process made after the call (live delivery brings it),
         * and of another process sharing the history (--workers) nothing past
         * this millisecond. */
        const struct ids *ids = api_env(L)->ids;
        uint64_t now = ((clock_wall_ms() + 1) << IDS_MS_SHIFT) - 1;
        put_hex(ids->last_id, q.upto);
        put_hex(now > ids->last_id ? now : ids->last_id, q.upto_others);
        q.origin = ((ids->node_tag & 15u) << 6) | (ids->worker & 63u); /* as ids_new_id writes it */
        q.origin_bits = IDS_ORIGIN_BITS;
    }
    lua_getfield(L, 2, "events");
    int with_events = lua_toboolean(L, -1);
    lua_pop(L, 5);
    if (q.before[0] && q.after[0]) return luaL_error(L, "space.history: 'before' or 'after', not both");
    struct history_store *st = api_env(L)->history;
    if (!st) return luaL_error(L, "space.history: no history store");
    struct query_ctx *ctx = malloc(sizeof *ctx);
    if (!ctx) return luaL_error(L, "out of memory");
    ctx->host = api_host(L);
    ctx->with_events = with_events;
    lua_pushvalue(L, 3);
    ctx->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (st->ops->query(st, room, room_len, &q, on_page, ctx) != 0) {
        luaL_unref(L, LUA_REGISTRYINDEX, ctx->fn_ref);
        free(ctx);
        return luaL_error(L, "out of memory");
    }
    lua_pushlstring(L, q.upto, HISTORY_OFFSET_LEN);
    return 1;
}

static const luaL_Reg history_funcs[] = {
    {"history_append", space_history_append},
    {"history", space_history},
    {NULL, NULL},
};

void api__history_register(lua_State *L) { luaL_setfuncs(L, history_funcs, 0); }
