#include "sandbox.h"

#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

/* Registry key of the file counter (a light userdata address as key). */
static const char FILES_KEY = 0;

/* Key, in the metatables of the globals and of the read-only module views,
 * of what rawset answers when a script tries to write such a table (rawset
 * skips __newindex). Scripts cannot reach those metatables (__metatable)
 * nor make this light userdata. */
static const char SEALED_KEY = 0;

static const char *const SAFE_GLOBALS[] = {
    "assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget", "rawlen",
    "rawset", "select", "setmetatable", "getmetatable", "tonumber", "tostring", "type", "xpcall",
    "_VERSION", NULL,
};
static const char *const SAFE_LIBS[] = {"string", "table", "math", "utf8", "coroutine", NULL};
static const char *const SAFE_OS[] = {"time", "clock", "date", "difftime", NULL};

/* Reads a whole file into a Lua string pushed on the stack; -1 with a
 * message pushed when it cannot. */
static int push_file(lua_State *L, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        lua_pushfstring(L, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t total = 0, n;
    char chunk[4096];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        total += n;
        if (total > SANDBOX_MAX_FILE_BYTES) {
            fclose(f);
            luaL_pushresult(&b);
            lua_pop(L, 1);
            lua_pushfstring(L, "%s: larger than %d bytes", path, SANDBOX_MAX_FILE_BYTES);
            return -1;
        }
        luaL_addlstring(&b, chunk, n);
    }
    fclose(f);
    luaL_pushresult(&b);
    return 0;
}

unsigned sandbox_files_loaded(lua_State *L, int reset) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &FILES_KEY);
    unsigned n = (unsigned)lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (reset) {
        lua_pushinteger(L, 0);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &FILES_KEY);
    }
    return n;
}

void sandbox_run_file(lua_State *L, const char *path, int env_idx) {
    env_idx = lua_absindex(L, env_idx);
    if (push_file(L, path) != 0) lua_error(L);
    size_t len;
    const char *src = lua_tolstring(L, -1, &len);
    lua_pushfstring(L, "@%s", path);
    /* "t": text only; binary chunks can break the VM's invariants. */
    if (luaL_loadbufferx(L, src, len, lua_tostring(L, -1), "t") != LUA_OK) {
        /* Syntax errors name the file; "binary chunk" refusals don't. */
        const char *msg = lua_tostring(L, -1);
        if (msg && strncmp(msg, path, strlen(path)) != 0) luaL_error(L, "%s: %s", path, msg);
        lua_error(L);
    }
    lua_replace(L, -3); /* the chunk takes the source's slot */
    lua_pop(L, 1);
    lua_pushvalue(L, env_idx);
    lua_setupvalue(L, -2, 1); /* _ENV */
    lua_call(L, 0, 1);
    lua_pushinteger(L, (lua_Integer)sandbox_files_loaded(L, 0) + 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &FILES_KEY);
}

static int run_file_protected(lua_State *L) {
    sandbox_run_file(L, lua_tostring(L, 1), 2);
    return 1;
}

/* require(name) inside the sandbox: shared host modules as they are,
 * anything else from the scripts directory ("a.b" -> a/b.lua), loaded
 * once per generation into the generation's environment.
 * Upvalues: 1 env, 2 loaded-modules table, 3 directory. */
static int sandbox_require(lua_State *L) {
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    lua_settop(L, 1);
    lua_getfield(L, lua_upvalueindex(2), name);
    if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1))
        return luaL_error(L, "module '%s' is required again while it loads (a require cycle)", name);
    if (!lua_isnil(L, -1)) return 1;
    lua_pop(L, 1);
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              (c == '.' && i > 0 && i + 1 < len && name[i - 1] != '.')))
            return luaL_error(L, "module '%s': names are letters, digits, '_' and '.'", name);
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, lua_tostring(L, lua_upvalueindex(3)));
    luaL_addchar(&b, '/');
    for (size_t i = 0; i < len; i++) luaL_addchar(&b, name[i] == '.' ? '/' : name[i]);
    luaL_addstring(&b, ".lua");
    luaL_pushresult(&b);
    /* Marks the module as loading, so that a require cycle fails clearly;
     * the mark goes when loading fails, so a later require tries again. */
    lua_pushboolean(L, 0);
    lua_setfield(L, lua_upvalueindex(2), name);
    lua_pushcfunction(L, run_file_protected);
    lua_pushvalue(L, -2);
    lua_pushvalue(L, lua_upvalueindex(1));
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
        lua_pushnil(L);
        lua_setfield(L, lua_upvalueindex(2), name);
        return lua_error(L);
    }
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, lua_upvalueindex(2), name);
    return 1;
}

/* Marks the metatable at mt_idx so that rawset refuses its tables with why. */
static void seal(lua_State *L, int mt_idx, const char *why) {
    mt_idx = lua_absindex(L, mt_idx);
    lua_pushstring(L, why);
    lua_rawsetp(L, mt_idx, &SEALED_KEY);
}

/* rawset(t, k, v) as the base library's, but not on the globals or a
 * module view: the strict globals and the read-only views are kept by
 * __newindex, which rawset would skip. */
static int sandbox_rawset(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    luaL_checkany(L, 3);
    if (lua_getmetatable(L, 1)) {
        if (lua_rawgetp(L, -1, &SEALED_KEY) == LUA_TSTRING) return luaL_error(L, "%s", lua_tostring(L, -1));
        lua_pop(L, 2);
    }
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 1;
}

static int read_only_newindex(lua_State *L) {
    return luaL_error(L, "attempt to change the shared module table (field '%s')", luaL_tolstring(L, 2, NULL));
}

/* Pushes a read-only view of the table at idx, so that one generation
 * cannot change what the next one sees. */
static void push_read_only(lua_State *L, int idx) {
    if (!lua_istable(L, idx)) {
        lua_pushvalue(L, idx);
        return;
    }
    lua_newtable(L);
    lua_createtable(L, 0, 3);
    lua_pushvalue(L, idx);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, read_only_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushliteral(L, "read-only");
    lua_setfield(L, -2, "__metatable");
    seal(L, -1, "rawset: attempt to change a shared module table");
    lua_setmetatable(L, -2);
}

void sandbox_provide(lua_State *L, int env_idx, const char *name, int idx) {
    env_idx = lua_absindex(L, env_idx);
    idx = lua_absindex(L, idx);
    lua_getfield(L, env_idx, "require");
    lua_getupvalue(L, -1, 2); /* the loaded-modules table */
    push_read_only(L, idx);
    lua_setfield(L, -2, name);
    lua_pop(L, 2);
}

static int strict_index(lua_State *L) {
    return luaL_error(L, "undeclared global '%s' (use local)", lua_tostring(L, 2));
}

static int strict_newindex(lua_State *L) {
    return luaL_error(L, "assignment to undeclared global '%s' (use local)", lua_tostring(L, 2));
}

static int sandbox_print(lua_State *L) {
    int n = lua_gettop(L); /* before the buffer pushes its own slot */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1) luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    log_info("lua", "print: %s", lua_tostring(L, -1));
    return 0;
}

void sandbox_push_env(lua_State *L, const char *dir, const char *const *shared) {
    lua_newtable(L);
    int env = lua_gettop(L);
    lua_pushglobaltable(L);
    int g = lua_gettop(L);
    for (const char *const *k = SAFE_GLOBALS; *k; k++) {
        lua_getfield(L, g, *k);
        lua_setfield(L, env, *k);
    }
    for (const char *const *k = SAFE_LIBS; *k; k++) {
        lua_getfield(L, g, *k);
        lua_newtable(L); /* a copy, so scripts cannot change the shared library */
        lua_pushnil(L);
        while (lua_next(L, -3)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -4);
        }
        lua_setfield(L, env, *k);
        lua_pop(L, 1);
    }
    lua_getfield(L, g, "os");
    lua_newtable(L);
    for (const char *const *k = SAFE_OS; *k; k++) {
        lua_getfield(L, -2, *k);
        lua_setfield(L, -2, *k);
    }
    lua_setfield(L, env, "os");
    lua_pop(L, 2); /* os, _G */
    lua_pushcfunction(L, sandbox_print);
    lua_setfield(L, env, "print");
    lua_pushcfunction(L, sandbox_rawset); /* in place of the base library's */
    lua_setfield(L, env, "rawset");
    lua_pushvalue(L, env);
    lua_setfield(L, env, "_G");

    lua_pushvalue(L, env);   /* upvalue 1: env */
    lua_newtable(L);         /* upvalue 2: loaded modules */
    for (const char *const *m = shared; *m; m++) {
        luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
        lua_getfield(L, -1, *m);
        push_read_only(L, lua_gettop(L));
        lua_setfield(L, -4, *m);
        lua_pop(L, 2);
    }
    lua_pushstring(L, dir);  /* upvalue 3: directory */
    lua_pushcclosure(L, sandbox_require, 3);
    lua_setfield(L, env, "require");

    lua_newtable(L);
    lua_pushcfunction(L, strict_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, strict_newindex);
    lua_setfield(L, -2, "__newindex");
    /* getmetatable(_G) gives this string and setmetatable(_G, ...) raises. */
    lua_pushliteral(L, "globals");
    lua_setfield(L, -2, "__metatable");
    seal(L, -1, "rawset: globals are not allowed (use local)");
    lua_setmetatable(L, env);
}

