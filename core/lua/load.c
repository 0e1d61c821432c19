/* load: a generation of the scripts (init.lua, its rules checked against
 * its schema, its plugins) loaded into a fresh sandbox and swapped in only
 * when all of it loaded; a reload is the same, logged, then the plugins'
 * on_reload. */
#include "history.h"
#include "host_internal.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "cjson_guard.h"
#include "log.h"
#include "lua_schema.h"
#include "sandbox.h"

static const char *const SHARED_MODULES[] = {"space", "space.schema", NULL};
/* Each generation gets its own instances of these (see cjson_guard.h). */
static const char *const CJSON_MODULES[] = {"cjson", "cjson.safe", NULL};

/* For loading: the message alone, it already says file:line. */
static int msghandler_short(lua_State *L) {
    if (!lua_isstring(L, 1)) lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    return 1;
}

/* The line of dir/file where the dotted key's last part is assigned, found
 * by reading the file (rules are data: the chunk has no line per key). */
static int find_key_line(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char want[128];
    const char *dot = strrchr(key, '.');
    snprintf(want, sizeof want, "%s", dot ? dot + 1 : key);
    char *br = strchr(want, '[');
    if (br) *br = 0;
    char section[128] = "";
    if (dot) snprintf(section, sizeof section, "%.*s", (int)(strchr(key, '.') - key), key);
    char line[1024];
    int n = 0, found = 0, in_section = section[0] == 0, section_line = 0;
    while (!found && fgets(line, sizeof line, f)) {
        n++;
        const char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        size_t wl = strlen(want), sl = strlen(section);
        if (!in_section && sl && strncmp(p, section, sl) == 0 && (p[sl] == ' ' || p[sl] == '=')) {
            in_section = 1;
            section_line = n;
        } else if (in_section && strncmp(p, want, wl) == 0 && (p[wl] == ' ' || p[wl] == '=')) {
            found = n;
        }
    }
    fclose(f);
    return found ? found : section_line;
}

/* Checks the module `rules` of the generation against app.rules_schema and
 * fills in defaults, in place. Raises "path:line: message". Stack: env at
 * env_idx; pushes the checked rules (nil for an app without a schema). */
static void load_rules(lua_State *L, int env_idx, int app_idx, const char *dir) {
    if (lua_getfield(L, app_idx, "rules_schema") == LUA_TNIL) return;
    int schema = lua_gettop(L);
    lua_getfield(L, app_idx, "rules");
    const char *module = lua_isstring(L, -1) ? lua_tostring(L, -1) : "rules";
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.lua", dir, module);
    lua_getfield(L, env_idx, "require");
    lua_pushstring(L, module);
    lua_call(L, 1, 1);
    int rules = lua_gettop(L);
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "space.schema");
    lua_getfield(L, -1, "check");
    lua_pushvalue(L, schema);
    lua_pushvalue(L, rules);
    lua_call(L, 2, 2);
    if (lua_isnil(L, -2)) {
        const char *err = lua_tostring(L, -1);
        char key[128] = "";
        /* Messages name the key first, or as 'key' after "unknown"/"missing". */
        const char *q = strchr(err, '\'');
        if (q && strchr(q + 1, '\'')) snprintf(key, sizeof key, "%.*s", (int)(strchr(q + 1, '\'') - q - 1), q + 1);
        else sscanf(err, "%127s", key);
        luaL_error(L, "%s:%d: %s", path, find_key_line(path, key), err);
    }
    lua_pop(L, 1);
    /* In place, so that handlers holding the module see the defaults. */
    if (lua_istable(L, rules)) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_settable(L, rules);
        }
    }
    lua_pushvalue(L, rules);
    lua_replace(L, schema);
    lua_settop(L, schema);
}

/* The history rules of a generation that loaded (at the stack top: {app,
 * plugins, rules}) go to the store, so that a saved edit applies at once. */
static void apply_history_rules(struct script_host *h, lua_State *L) {
    struct history_store *st = h->env.history;
    int top = lua_gettop(L);
    if (st && lua_getfield(L, -1, "rules") == LUA_TTABLE && lua_getfield(L, -1, "history") == LUA_TTABLE) {
        lua_getfield(L, -1, "max_messages");
        lua_getfield(L, -2, "max_age_s");
        if (lua_isinteger(L, -2) && lua_isinteger(L, -1))
            st->ops->set_limits(st, lua_tointeger(L, -2), lua_tointeger(L, -1));
    }
    lua_settop(L, top);
}

static int compare_priority(lua_State *L) {
    lua_getfield(L, 1, "priority");
    lua_getfield(L, 2, "priority");
    lua_pushboolean(L, lua_tonumber(L, -2) > lua_tonumber(L, -1));
    return 1;
}

/* Loads the plugins app.plugins enables: each one's schema.lua checks its
 * config, handler.lua gives its hooks. Pushes the array of {name, handler,
 * conf, priority}, highest priority first. */
static void load_plugins(lua_State *L, int env_idx, int app_idx, const char *dir, const char *plugins_dir) {
    lua_newtable(L);
    int list = lua_gettop(L);
    if (lua_getfield(L, app_idx, "plugins") == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (!lua_istable(L, -1)) luaL_error(L, "%s/init.lua: 'plugins' must map plugin names to their config", dir);
    int plugins = lua_gettop(L);
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, plugins)) {
        const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
        for (const char *p = name; *p || p == name; p++)
            if (!*p || !((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
                luaL_error(L, "%s/init.lua: plugin names are lower-case letters, digits and '_', not '%s'", dir, name);
        int conf = lua_gettop(L);
        char path[1024];
        snprintf(path, sizeof path, "%s/%s/schema.lua", plugins_dir, name);
        sandbox_run_file(L, path, env_idx);
        int schema = lua_gettop(L);
        lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
        lua_getfield(L, -1, "space.schema");
        lua_getfield(L, -1, "check");
        lua_pushvalue(L, schema);
        lua_pushvalue(L, conf);
        lua_call(L, 2, 2);
        if (lua_isnil(L, -2)) {
            char init[1024], key[160];
            snprintf(init, sizeof init, "%s/init.lua", dir);
            snprintf(key, sizeof key, "plugins.%s", name);
            luaL_error(L, "%s:%d: plugin %s: %s", init, find_key_line(init, key), name, lua_tostring(L, -1));
        }
        lua_pop(L, 1);
        int checked = lua_gettop(L);
        snprintf(path, sizeof path, "%s/%s/handler.lua", plugins_dir, name);
        sandbox_run_file(L, path, env_idx);
        if (!lua_istable(L, -1)) luaL_error(L, "%s must return the plugin's table", path);
        int handler = lua_gettop(L);
        lua_createtable(L, 0, 4);
        lua_pushstring(L, name);
        lua_setfield(L, -2, "name");
        lua_pushvalue(L, handler);
        lua_setfield(L, -2, "handler");
        lua_pushvalue(L, checked);
        lua_setfield(L, -2, "conf");
        lua_getfield(L, handler, "PRIORITY");
        lua_setfield(L, -2, "priority");
        lua_rawseti(L, list, ++n);
        lua_settop(L, conf - 1); /* the key stays for lua_next */
    }
    lua_pop(L, 1);
    /* Highest PRIORITY first, as Kong orders its plugins. */
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, list);
    lua_pushcfunction(L, compare_priority);
    lua_call(L, 2, 0);
    lua_pop(L, 1);
}

/* In a protected call: args dir, plugins_dir. Pushes the generation
 * {app, plugins}. */
static int load_generation(lua_State *L) {
    const char *dir = lua_tostring(L, 1);
    const char *plugins_dir = lua_tostring(L, 2);
    sandbox_push_env(L, dir, SHARED_MODULES);
    int env = lua_gettop(L);
    script__timers_provide(L, env);
    for (const char *const *m = CJSON_MODULES; *m; m++) {
        if (!cjson_guard_push(L, *m)) continue;
        sandbox_provide(L, env, *m, -1);
        lua_pop(L, 1);
    }
    script__hook_coroutines(L, env);
    script__guard_env(L, env);
    lua_getfield(L, env, "require");
    lua_pushliteral(L, "init");
    lua_call(L, 1, 1);
    int app = lua_gettop(L);
    if (!lua_istable(L, app)) return luaL_error(L, "%s/init.lua must return the app table", dir);
    if (lua_getfield(L, app, "namespaces") != LUA_TTABLE)
        return luaL_error(L, "%s/init.lua: the app table needs a 'namespaces' table", dir);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        const char *ns = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        if (!ns || ns[0] != '/' || !lua_istable(L, -1))
            return luaL_error(L, "%s/init.lua: namespaces are keyed by names starting with '/', each a table", dir);
        if (lua_getfield(L, -1, "events") != LUA_TTABLE)
            return luaL_error(L, "%s/init.lua: namespace '%s' needs an 'events' table", dir, ns);
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
    load_rules(L, env, app, dir);
    int rules = lua_gettop(L);
    load_plugins(L, env, app, dir, plugins_dir);
    int plugins = lua_gettop(L);
    lua_createtable(L, 0, 3);
    lua_pushvalue(L, app);
    lua_setfield(L, -2, "app");
    lua_pushvalue(L, plugins);
    lua_setfield(L, -2, "plugins");
    lua_pushvalue(L, rules);
    lua_setfield(L, -2, "rules");
    return 1;
}

/* Loads the scripts into a new generation and makes it current: the whole
 * load runs on the budget, from the first instruction. */
int script__load(struct script_host *h, char *err, size_t errlen) {
    lua_State *L = h->L;
    sandbox_files_loaded(L, 1);
    lua_pushcfunction(L, msghandler_short);
    lua_pushcfunction(L, load_generation);
    lua_pushstring(L, h->dir);
    lua_pushstring(L, h->plugins_dir);
    script__budget_start(h);
    h->cpu_limit_ns = 0; /* an operator's reload may take longer than an event: the backstop holds it */
    h->running = LABEL("load");
    script__watch_enter(h); /* for the watchdog; the hook counts from the first instruction */
    lua_sethook(L, script__budget_hook, LUA_MASKCOUNT, HOOK_EVERY_INSTRUCTIONS);
    script__timers_load_begin(h); /* init.lua may start timers: they are the new generation's */
    int rc = lua_pcall(L, 2, 1, -4);
    script__watch_leave(h);
    lua_sethook(L, NULL, 0, 0);
    h->running = NULL;
    script__timers_load_end(h, rc == LUA_OK);
    if (rc != LUA_OK) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
        lua_pop(L, 2);
        lua_gc(L, LUA_GCCOLLECT);
        return -1;
    }
    apply_history_rules(h, L);
    if (h->gen_ref) luaL_unref(L, LUA_REGISTRYINDEX, h->gen_ref);
    h->gen_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    h->files = sandbox_files_loaded(L, 0);
    h->generation++;
    return 0;
}

/* Puts the schema checker the server carries (core/lua/schema.lua) into
 * package.loaded["space.schema"]. */
static int open_schema(lua_State *L) {
    if (luaL_loadbufferx(L, (const char *)lua_schema_source, sizeof lua_schema_source, "=space.schema", "t") ||
        lua_pcall(L, 0, 1, 0)) {
        log_error("lua", "built-in module space.schema: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_insert(L, -2);
    lua_setfield(L, -2, "space.schema");
    lua_pop(L, 1);
    return 0;
}

static int open_cjson(lua_State *L, const char *name) {
    /* cjson is a C module: load it outside the sandbox, once. */
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getglobal(L, "require");
    lua_pushstring(L, name);
    int rc = lua_pcall(L, 1, 1, 0);
    if (rc != LUA_OK) {
        log_warn("lua", "cannot load %s: %s", name, lua_tostring(L, -1));
        lua_pop(L, 2);
        return -1;
    }
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
    return 0;
}

int script__open_builtins(lua_State *L) {
    open_cjson(L, "cjson");
    open_cjson(L, "cjson.safe");
    return open_schema(L);
}

int script_reload(struct script_host *h, const char *why, char *err, size_t errlen) {
    uint64_t t0 = uv_hrtime();
    if (script__load(h, err, errlen) != 0) {
        h->reloads_failed++;
        snprintf(h->last_error, sizeof h->last_error, "%s", err);
        char q[LOG_QUOTED_MAX];
        log_error("reload", "reload failed, the previous scripts keep running trigger=%s error=\"%s\"", why,
                  log_quoted(q, sizeof q, err));
        return -1;
    }
    h->reloads_ok++;
    h->last_error[0] = 0;
    h->last_load_ms = (double)(uv_hrtime() - t0) / 1e6;
    log_info("reload", "reloaded %u files in %.1f ms (generation %llu) trigger=%s", h->files, h->last_load_ms,
             (unsigned long long)h->generation, why);
    script__run_plugin_hooks(h, "on_reload", 0, 0, 0);
    return 0;
}
