/* pcall: the one protected call into Lua, on the budget, that logs a
 * failure with file:line and a traceback and counts it in /metrics. */
#include "host_internal.h"

#include <lauxlib.h>
#include <stdio.h>

#include "log.h"

static int msghandler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Calls the function below nargs arguments on the stack, protected and on a
 * budget. Returns 0 with nres results pushed, or -1 with nothing pushed
 * (the error was logged with what and file:line). */
int script__call(struct script_host *h, int nargs, int nres, const struct label *what) {
    lua_State *L = h->L;
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, msghandler);
    lua_insert(L, base);
    /* A call made from inside another (conn:refresh_token runs the
     * plugins' on_authenticate) spends the outer call's budget: a fresh
     * one each time would let a loop of such calls run for good. */
    if (!h->running) script__budget_start(h);
    const struct label *outer = h->running;
    h->running = what;
    script__watch_enter(h);
    int rc = lua_pcall(L, nargs, nres, base);
    if (rc != LUA_OK) {
        const char *err = lua_tostring(L, -1);
        if (rc == LUA_ERRMEM && h->oom_where[0]) err = h->oom_where;
        const char *c = what->c;
        if (what->name) c = lua_getfield(L, what->name, "name") == LUA_TSTRING ? lua_tostring(L, -1) : "?";
        char q[LOG_QUOTED_MAX];
        log_error("lua", "handler failed handler=%.*s%s%.100s%s%s error=\"%s\"", what->a_len, what->a, what->b, c,
                  what->d, what->e, log_quoted(q, sizeof q, err ? err : "?"));
        char handler[METRICS_HANDLER_MAX];
        snprintf(handler, sizeof handler, "%.*s%s%.40s%s%s", what->a_len, what->a, what->b, c, what->d, what->e);
        metrics_handler_failed(h->env.metrics, handler, rc == LUA_ERRMEM ? METRICS_FAIL_MEMORY : h->limit_hit);
        lua_settop(L, base - 1);
        /* Still watched: finalizers run here, with hooks off. Not on the
         * call's allowance: the collection shrinks the stack, which takes
         * a new block. */
        if (!outer) h->call_allocated = 0;
        lua_gc(L, LUA_GCCOLLECT);
    }
    script__watch_leave(h);
    h->running = outer;
    if (!outer && h->kept_acks) script__flush_kept_acks(h);
    if (rc != LUA_OK) return -1;
    lua_remove(L, base);
    return 0;
}

int script_call(struct script_host *h, int nargs, int nres, const char *what) {
    return script__call(h, nargs, nres, &(struct label){what, INT_MAX, "", "", "", "", 0});
}
