/* guards: the functions scripts get in place of those whose work the
 * budget hook cannot see or stop (xpcall's handler, finalizers, patterns,
 * loops whose length an argument sets). */
#include "host_internal.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "json_lua.h"
#include "pattern_cost.h"

/* What the hook cannot reach
 *
 * Lua turns hooks off while a hook or a finalizer runs, and a C function
 * runs to its end between two hooks. So: xpcall's message handler, which
 * Lua runs before unwinding (inside the hook when the budget raised),
 * runs here as a plain call after unwinding; metatables with __gc or
 * __close are refused; a coroutine that died of an error (perhaps inside
 * the hook, where hooks stay off) has its to-be-closed values left alone;
 * the pattern functions first bound their work (pattern_cost.c) and count
 * it against the budget. The watchdog (budget.c) ends what is left.
 */

static int xpcall_finish(lua_State *L, int status, lua_KContext base) {
    if (status == LUA_OK || status == LUA_YIELD) {
        lua_pushboolean(L, 1);
        lua_insert(L, (int)base + 1);
        return lua_gettop(L) - (int)base;
    }
    lua_pushvalue(L, 2); /* the message handler, on the error object */
    lua_insert(L, -2);
    lua_pcall(L, 1, 1, 0);
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
}

/* xpcall(f, msgh, ...): pcall, then msgh(error) as an ordinary call. */
static int xpcall_bounded(lua_State *L) {
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 1);
    for (int i = 3; i <= n; i++) lua_pushvalue(L, i);
    return xpcall_finish(L, lua_pcallk(L, n - 2, LUA_MULTRET, 0, n, xpcall_finish), n);
}

/* Calls upvalue 1 (the original function) with the arguments. */
static int call_original(lua_State *L) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static int setmetatable_guarded(lua_State *L) {
    if (lua_type(L, 2) == LUA_TTABLE) {
        static const char *const refused[] = {"__gc", "__close"};
        for (int i = 0; i < 2; i++) {
            lua_pushstring(L, refused[i]);
            if (lua_rawget(L, 2) != LUA_TNIL)
                return luaL_error(L, "setmetatable: metatables with %s are not allowed in scripts", refused[i]);
            lua_pop(L, 1);
        }
    }
    return call_original(L);
}

/* Whether the coroutine at idx died of an error. */
static int died_of_error(lua_State *L, int idx) {
    lua_State *co = lua_tothread(L, idx);
    return co && lua_status(co) != LUA_OK && lua_status(co) != LUA_YIELD;
}

/* coroutine.close: false and the error of a coroutine that died of one,
 * without running its to-be-closed values (hooks may be off in it). */
static int co_close_guarded(lua_State *L) {
    if (!died_of_error(L, 1)) return call_original(L);
    lua_State *co = lua_tothread(L, 1);
    lua_pushboolean(L, 0);
    if (lua_gettop(co) > 0) {
        lua_pushvalue(co, -1);
        lua_xmove(co, L, 1);
    } else {
        lua_pushnil(L);
    }
    return 2;
}

/* The function coroutine.wrap returns (upvalues: the thread, resume):
 * Lua's own closes the to-be-closed values of a coroutine that failed. */
static int co_wrapped(lua_State *L) {
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_rotate(L, 1, 2);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    if (lua_toboolean(L, 1)) return lua_gettop(L) - 1;
    lua_settop(L, 2);
    if (lua_type(L, 2) == LUA_TSTRING && died_of_error(L, lua_upvalueindex(1))) {
        luaL_where(L, 1);
        lua_insert(L, 2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

/* coroutine.wrap(f) (upvalues: create, resume, as scripts have them). */
static int co_wrap_guarded(lua_State *L) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushcclosure(L, co_wrapped, 2);
    return 1;
}

/* Whether the value at idx is the name of a metamethod that runs where
 * the hook does not (a finalizer) or that scripts may not have. */
static int is_unhooked_event(lua_State *L, int idx) {
    if (lua_type(L, idx) != LUA_TSTRING) return 0;
    const char *k = lua_tostring(L, idx);
    return strcmp(k, "__gc") == 0 || strcmp(k, "__close") == 0;
}

/* rawset(t, k, v): not "__gc" or "__close", into a metatable the host
 * shares (where a finalizer would take effect) or any other table. */
static int rawset_guarded(lua_State *L) {
    if (is_unhooked_event(L, 2)) return luaL_error(L, "rawset: '%s' keys are not allowed in scripts", lua_tostring(L, 2));
    return call_original(L);
}

/* __newindex of the host's shared metatables (array, binary, file, conn): the C
 * side sets them on new values, and one with a __gc added by a script
 * would make those values run it as a finalizer, hooks off. */
static int shared_mt_newindex(lua_State *L) {
    if (is_unhooked_event(L, 2))
        return luaL_error(L, "the metatable of the host's values may not get '%s'", lua_tostring(L, 2));
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 0;
}

static void guard_shared_metatables(lua_State *L) {
    static const char *const names[] = {JSON_ARRAY_MT, JSON_BINARY_MT, JSON_FILE_MT, API_CONN_MT};
    for (int i = 0; i < 4; i++) {
        int top = lua_gettop(L);
        if (luaL_getmetatable(L, names[i]) == LUA_TTABLE && !lua_getmetatable(L, -1)) {
            lua_createtable(L, 0, 2);
            lua_pushcfunction(L, shared_mt_newindex);
            lua_setfield(L, -2, "__newindex");
            lua_pushliteral(L, "locked");
            lua_setfield(L, -2, "__metatable"); /* so that setmetatable(mt, nil) cannot undo it */
            lua_setmetatable(L, -2);
        }
        lua_settop(L, top);
    }
}

/* Puts the guarded functions into the environment at env. */
void script__guard_env(lua_State *L, int env) {
    lua_pushcfunction(L, xpcall_bounded);
    lua_setfield(L, env, "xpcall");
    lua_getfield(L, env, "setmetatable");
    lua_pushcclosure(L, setmetatable_guarded, 1);
    lua_setfield(L, env, "setmetatable");
    lua_getfield(L, env, "rawset");
    lua_pushcclosure(L, rawset_guarded, 1);
    lua_setfield(L, env, "rawset");
    if (lua_getfield(L, env, "coroutine") == LUA_TTABLE) {
        lua_getfield(L, -1, "close");
        lua_pushcclosure(L, co_close_guarded, 1);
        lua_setfield(L, -2, "close");
        lua_getfield(L, -1, "create");
        lua_getfield(L, -2, "resume");
        lua_pushcclosure(L, co_wrap_guarded, 2);
        lua_setfield(L, -2, "wrap");
    }
    lua_pop(L, 1);
}

/* string.find, match, gmatch, gsub as scripts have them: the original
 * (upvalue 1) when the bound on its work fits in the budget left, which
 * it then takes from (upvalue 2: the enum pattern_call, 3: the name). */
static int pattern_bounded(lua_State *L) {
    int t1 = lua_type(L, 1), t2 = lua_type(L, 2);
    if ((t1 == LUA_TSTRING || t1 == LUA_TNUMBER) && (t2 == LUA_TSTRING || t2 == LUA_TNUMBER)) {
        struct script_host *h = host_of(L);
        enum pattern_call call = (enum pattern_call)lua_tointeger(L, lua_upvalueindex(2));
        size_t n, p_len;
        const char *s = lua_tolstring(L, 1, &n), *p = lua_tolstring(L, 2, &p_len);
        int isnum = 0;
        lua_Integer init = call == PATTERN_GSUB ? 1 : lua_tointegerx(L, 3, &isnum);
        if (!isnum) init = 1;
        int plain = lua_toboolean(L, 4) && strcmp(lua_tostring(L, lua_upvalueindex(3)), "find") == 0;
        double left = h->running ? (double)h->budget_left : (double)h->env.cfg->lua_budget;
        double cost = pattern_cost(call, s, n, p, p_len, init, plain, left);
        if (cost > left) {
            /* Measuring the subject took time too: a refusal spends what
             * was left, so that a loop of caught refusals ends soon. */
            h->budget_left = 0;
            char why[160]; /* lua_pushfstring has no %g */
            snprintf(why, sizeof why, "up to %.3g steps, over the %.3g instructions left of the budget", cost,
                     left > 0 ? left : 0);
            return luaL_error(L, "string.%s: pattern too costly for a subject of %I bytes (%s)",
                              lua_tostring(L, lua_upvalueindex(3)), (lua_Integer)n, why);
        }
        h->budget_left -= (int64_t)cost;
    }
    return call_original(L);
}

/* Library functions whose C loop runs as long as an argument says, not as
 * long as the memory it takes: string.rep("", 2^40) and
 * table.move({}, 1, 2^50, 1, {}) copy nothing and never end, insert and
 * remove shift as far as __len claims. Each takes its loop's length from
 * the budget first (upvalue 1: the original, 2: which). */
enum { LOOP_REP, LOOP_MOVE, LOOP_INSERT, LOOP_REMOVE, LOOP_SORT, LOOP_CONCAT, LOOP_UNPACK, LOOP_BYTE };

/* The integer argument at idx, or dflt when absent or not one. */
static lua_Integer int_arg(lua_State *L, int idx, lua_Integer dflt) {
    int ok = 0;
    lua_Integer v = lua_tointegerx(L, idx, &ok);
    return ok ? v : dflt;
}

static double span(lua_Integer from, lua_Integer to) { return to < from ? 0 : (double)to - (double)from + 1; }

static int loop_bounded(lua_State *L) {
    double steps = 0;
    int table = lua_type(L, 1) == LUA_TTABLE;
    switch ((int)lua_tointeger(L, lua_upvalueindex(2))) {
    case LOOP_REP: /* copies of something are bounded by the memory cap; of nothing, not */
    {
        size_t l = 1, lsep = 0;
        if (lua_isstring(L, 1)) lua_tolstring(L, 1, &l);
        if (lua_isstring(L, 3)) lua_tolstring(L, 3, &lsep);
        if (l + lsep == 0) steps = (double)int_arg(L, 2, 0) / 16;
        break;
    }
    case LOOP_MOVE: steps = span(int_arg(L, 2, 1), int_arg(L, 3, 0)); break;
    case LOOP_INSERT:
        if (table && lua_gettop(L) == 3) steps = span(int_arg(L, 2, 1), luaL_len(L, 1) + 1);
        break;
    case LOOP_REMOVE:
        if (table) {
            lua_Integer n = luaL_len(L, 1);
            steps = span(int_arg(L, 2, n), n);
        }
        break;
    case LOOP_SORT:
        if (table) {
            double n = (double)lua_rawlen(L, 1);
            steps = n * (1 + log2(n + 1));
        }
        break;
    case LOOP_UNPACK: /* pushes j - i + 1 values (up to Lua's stack limit) */
        if (!lua_isnoneornil(L, 3)) steps = span(int_arg(L, 2, 1), int_arg(L, 3, 0));
        break;
    case LOOP_BYTE: /* s:byte(i, j): j - i + 1 values, negative from the end, at most #s */
        if (lua_isstring(L, 1) && !lua_isnoneornil(L, 3)) {
            size_t l;
            lua_tolstring(L, 1, &l);
            lua_Integer i = int_arg(L, 2, 1), j = int_arg(L, 3, 0);
            if (i < 0) i = (lua_Integer)l + i + 1;
            if (j < 0) j = (lua_Integer)l + j + 1;
            steps = span(i < 1 ? 1 : i, j > (lua_Integer)l ? (lua_Integer)l : j);
        }
        break;
    case LOOP_CONCAT:
        if (table) steps = span(int_arg(L, 3, 1), lua_isnoneornil(L, 4) ? (lua_Integer)lua_rawlen(L, 1) : int_arg(L, 4, 0));
        break;
    }
    if (steps > 0) {
        struct script_host *h = host_of(L);
        double left = h->running ? (double)h->budget_left : (double)h->env.cfg->lua_budget;
        if (steps > left) {
            char why[160];
            snprintf(why, sizeof why, "%.3g steps, over the %.3g instructions left of the budget", steps,
                     left > 0 ? left : 0);
            return luaL_error(L, "%s: too long a loop (%s)", lua_tostring(L, lua_upvalueindex(3)), why);
        }
        h->budget_left -= (int64_t)steps;
    }
    return call_original(L);
}

static void bound_loops(lua_State *L) {
    static const struct {
        const char *lib, *name;
        int which;
    } loops[] = {{"string", "rep", LOOP_REP},       {"table", "move", LOOP_MOVE}, {"table", "insert", LOOP_INSERT},
                 {"table", "remove", LOOP_REMOVE}, {"table", "sort", LOOP_SORT}, {"table", "concat", LOOP_CONCAT},
                 {"table", "unpack", LOOP_UNPACK}, {"string", "byte", LOOP_BYTE}};
    for (size_t i = 0; i < sizeof loops / sizeof *loops; i++) {
        lua_getglobal(L, loops[i].lib);
        lua_getfield(L, -1, loops[i].name);
        lua_pushinteger(L, loops[i].which);
        lua_pushfstring(L, "%s.%s", loops[i].lib, loops[i].name);
        lua_pushcclosure(L, loop_bounded, 3);
        lua_setfield(L, -2, loops[i].name);
        lua_pop(L, 1);
    }
}

/* Bounds the functions in the string library itself: strings' methods
 * come from it, not from the copy in the scripts' environment. */
static void bound_patterns(lua_State *L) {
    static const char *const names[] = {"find", "match", "gmatch", "gsub"};
    static const enum pattern_call calls[] = {PATTERN_FIND, PATTERN_FIND, PATTERN_GMATCH, PATTERN_GSUB};
    lua_getglobal(L, "string");
    for (int i = 0; i < 4; i++) {
        lua_getfield(L, -1, names[i]);
        lua_pushinteger(L, calls[i]);
        lua_pushstring(L, names[i]);
        lua_pushcclosure(L, pattern_bounded, 3);
        lua_setfield(L, -2, names[i]);
    }
    lua_pop(L, 1);
}

void script__guard_state(lua_State *L) {
    bound_patterns(L);
    bound_loops(L);
    guard_shared_metatables(L);
}
