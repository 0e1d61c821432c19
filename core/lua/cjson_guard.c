#include "cjson_guard.h"

#include <lauxlib.h>

/* lua-cjson 2.1.0's defaults: the most scripts may set. A depth of 1000
 * recurses well within the C stack; a sparse ratio of 0 (no check) or a
 * large "safe" index lets {[1e9] = 1} encode a billion nulls into a
 * buffer lua-cjson mallocs, outside the Lua memory cap. */
#define MAX_DEPTH 1000
#define MAX_SPARSE_RATIO 2
#define MAX_SPARSE_SAFE 10

static void wrap(lua_State *L, int idx);

/* Calls upvalue 1, the wrapped lua-cjson function, with the arguments. */
static int call_wrapped(lua_State *L) {
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

/* Raises unless argument arg is absent or an integer in [lo, hi]. */
static void check_arg(lua_State *L, int arg, const char *what, lua_Integer lo, lua_Integer hi) {
    if (lua_isnoneornil(L, arg)) return;
    lua_Integer n = luaL_checkinteger(L, arg);
    if (n < lo || n > hi)
        luaL_error(L, "cjson.%s: %s may be %d to %d (scripts may lower lua-cjson's limits, not raise them), not %I",
                   lua_tostring(L, lua_upvalueindex(2)), what, (int)lo, (int)hi, n);
}

/* encode_max_depth([depth]), decode_max_depth([depth]) */
static int guarded_depth(lua_State *L) {
    check_arg(L, 1, "the depth", 1, MAX_DEPTH);
    return call_wrapped(L);
}

/* encode_sparse_array([convert[, ratio[, safe]]]) */
static int guarded_sparse(lua_State *L) {
    check_arg(L, 2, "the ratio", 1, MAX_SPARSE_RATIO);
    check_arg(L, 3, "the safe index", 0, MAX_SPARSE_SAFE);
    return call_wrapped(L);
}

/* new(): an instance made from a guarded one is guarded too. */
static int guarded_new(lua_State *L) {
    lua_settop(L, 0);
    call_wrapped(L);
    if (lua_istable(L, 1)) wrap(L, 1);
    return 1;
}

static void wrap(lua_State *L, int idx) {
    static const struct {
        const char *name;
        lua_CFunction f;
    } guarded[] = {
        {"encode_max_depth", guarded_depth},
        {"decode_max_depth", guarded_depth},
        {"encode_sparse_array", guarded_sparse},
        {"new", guarded_new},
    };
    idx = lua_absindex(L, idx);
    for (size_t i = 0; i < sizeof guarded / sizeof guarded[0]; i++) {
        if (lua_getfield(L, idx, guarded[i].name) != LUA_TFUNCTION) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushstring(L, guarded[i].name);
        lua_pushcclosure(L, guarded[i].f, 2);
        lua_setfield(L, idx, guarded[i].name);
    }
}

int cjson_guard_push(lua_State *L, const char *module) {
    int top = lua_gettop(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, module) != LUA_TTABLE || lua_getfield(L, -1, "new") != LUA_TFUNCTION) {
        lua_settop(L, top);
        return 0;
    }
    lua_call(L, 0, 1); /* a new instance: lua-cjson's defaults, its own config */
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    wrap(L, -1);
    return 1;
}
