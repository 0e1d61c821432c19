/* script: the host object. It creates the Lua state on the capped
 * allocator (lua_alloc.c), sets up the budget's timer (budget.c), the
 * guards (guards.c) and the built-in modules, and loads the first
 * generation (load.c); calls go through pcall.c, events through
 * dispatch.c, connections through login.c. */
#include "host_internal.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define BYTES_PER_MB (1024 * 1024)

struct script_host *script_host_new(const struct script_env *env, const char *dir, const char *plugins_dir,
                                    char *err, size_t errlen) {
    struct script_host *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->env = *env;
    h->dir = strdup(dir);
    h->plugins_dir = strdup(plugins_dir);
    h->mem_limit = (size_t)env->cfg->lua_memory_mb * BYTES_PER_MB;
    h->L = lua_newstate(script__alloc, h);
    if (!h->dir || !h->plugins_dir || !h->L) {
        snprintf(err, errlen, "cannot create the Lua state");
        script_host_free(h);
        return NULL;
    }
    /* Generational: an event's garbage (decoded arguments, replies) dies
     * young, and a minor collection visits only the young objects, not
     * every connection's handle and table as an incremental cycle does. */
    lua_gc(h->L, LUA_GCGEN, 0, 0);
    script__watch_init(h);
    luaL_openlibs(h->L);
    script__timers_init(h); /* before the first load: init.lua may start timers */
    /* Scripts reach string methods through the string metatable: lock it,
     * so that no generation can change the library the next one uses. */
    lua_pushliteral(h->L, "");
    lua_getmetatable(h->L, -1);
    lua_pushliteral(h->L, "locked");
    lua_setfield(h->L, -2, "__metatable");
    lua_pop(h->L, 2);
    api_open(h->L, h);
    lua_getglobal(h->L, "require");
    lua_pushliteral(h->L, "space");
    lua_call(h->L, 1, 0);
    script__guard_state(h->L);
    if (script__open_builtins(h->L) != 0) {
        snprintf(err, errlen, "the built-in module space.schema does not load");
        script_host_free(h);
        return NULL;
    }
    uint64_t t0 = uv_hrtime();
    if (script__load(h, err, errlen) != 0) {
        script_host_free(h);
        return NULL;
    }
    h->last_load_ms = (double)(uv_hrtime() - t0) / 1e6;
    return h;
}

void script_stats(const struct script_host *h, struct script_stats *out) {
    *out = (struct script_stats){h->generation, h->files, h->reloads_ok, h->reloads_failed, h->last_load_ms,
                                 h->last_error, h->mem_used};
}

void script_host_free(struct script_host *h) {
    if (!h) return;
    script__watch_free(h);
    script__timers_free(h); /* off net's deadline timer, before their memory goes with the state */
    if (h->L) lua_close(h->L);
    script__pool_free(h);
    sbuf_free(&h->scratch);
    free(h->dir);
    free(h->plugins_dir);
    free(h);
}

unsigned script_files_loaded(const struct script_host *h) { return h->files; }
lua_State *script_state(struct script_host *h) { return h->L; }
