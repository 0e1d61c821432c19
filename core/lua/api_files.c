/* api_files: the `space` module's functions for uploads: checking a
 * name, and storing an upload (files.c: decoded, checked, hashed and
 * written in one thread-pool job) with a callback when done; the older
 * pieces (decoding, sniffing) for scripts that want them on the loop. */
#include "api.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "filecheck.h"
#include "files.h"
#include "json_lua.h"
#include "script.h"
#include "ids.h"
#include "base64.h"

/* What the struct file_info fields that keep them hold. */
#define FILE_TYPE_MAX_BYTES (sizeof((struct file_info *)0)->type - 1)
#define FILE_NAME_MAX_BYTES (sizeof((struct file_info *)0)->name - 1)

/* The bytes of a string, binary value or file handle (its text) at idx. */
static const char *check_bytes(lua_State *L, int idx, size_t *len) {
    const char *p = json_lua_to_binary(L, idx, len);
    if (!p) p = json_lua_to_file(L, idx, len);
    return p ? p : luaL_checklstring(L, idx, len);
}

/* space.is_file(v) -> whether v is a file handle (a large string of a
 * client's event, json_lua.h) */
static int space_is_file(lua_State *L) {
    lua_pushboolean(L, json_lua_to_file(L, 1, NULL) != NULL);
    return 1;
}

/* space.base64_decode(s) -> binary | nil, "invalid base64" (standard
 * alphabet, padding required, no whitespace) */
static int space_base64_decode(lua_State *L) {
    size_t len;
    const char *s = check_bytes(L, 1, &len);
    void *out = lua_newuserdatauv(L, len / 4 * 3 + 1, 0); /* scratch, collected */
    struct script_host *host = api_host(L);
    script_cpu_exempt_begin(host); /* an upload's size is bounded by --max-payload */
    long n = base64_decode(out, s, len);
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
    struct script_host *host;
    int fn_ref;   /* the Lua callback */
    int data_ref; /* the stored value: its bytes stay alive (and unmoved) while the job reads them */
};

/* The protocol's code and the sender's message for how a store ended. */
static void push_refusal(lua_State *L, enum files_result why, const char *err) {
    switch (why) {
    case FILES_INVALID_BASE64: lua_pushliteral(L, "invalid_file"); break;
    case FILES_TOO_LARGE: lua_pushliteral(L, "file_too_large"); break;
    case FILES_WRONG_TYPE: lua_pushliteral(L, "file_type_not_allowed"); break;
    default:
        lua_pushliteral(L, "internal_error");
        lua_pushliteral(L, "the file could not be stored"); /* the cause is logged, not told */
        return;
    }
    lua_pushstring(L, err);
}

static void on_stored(void *ud, const struct file_info *info, enum files_result why, const char *err) {
    struct store_ctx *ctx = ud;
    struct script_host *host = ctx->host;
    {
        lua_State *L = script_state(host);
        int top = lua_gettop(L);
        luaL_unref(L, LUA_REGISTRYINDEX, ctx->data_ref);
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
            lua_pushnil(L);
        } else {
            lua_pushnil(L);
            push_refusal(L, why, err);
        }
        script_call(host, 3, 0, "store_file callback");
        lua_settop(L, top);
    }
    free(ctx);
}

/* space.store_file(data, {type = T, name = N, max_bytes = M, base64 = B},
 * callback): data is a file handle (base64 text unless base64 = false), a
 * binary value (the bytes) or a string (the bytes, or base64 text with
 * base64 = true). One thread-pool job decodes it, checks that it has at
 * most M bytes and that its content is of type T, hashes and writes it;
 * nothing of that runs on the loop, and the bytes are not copied (the
 * value is kept alive until the job ends). The name (and that T is
 * allowed) is the caller's to check first. callback(file) with file =
 * {id, name, type, size, sha256, url}, or callback(nil, code, message):
 * invalid_file (base64 that does not decode), file_too_large,
 * file_type_not_allowed, internal_error (the disk; logged). */
static int space_store_file(lua_State *L) {
    size_t len;
    const char *p = check_bytes(L, 1, &len);
    int is_handle = json_lua_to_file(L, 1, NULL) != NULL;
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    lua_getfield(L, 2, "type");
    lua_getfield(L, 2, "name");
    const char *type = luaL_checkstring(L, -2), *name = luaL_checkstring(L, -1);
    if (strlen(type) > FILE_TYPE_MAX_BYTES || strlen(name) > FILE_NAME_MAX_BYTES || strchr(name, '\n') ||
        strchr(type, '\n'))
        return luaL_argerror(L, 2, "type or name out of bounds (check them first)");
    lua_Integer max = lua_getfield(L, 2, "max_bytes") == LUA_TNIL ? LUA_MAXINTEGER : lua_tointeger(L, -1);
    if (max < 0 || (max == 0 && !lua_isinteger(L, -1)))
        return luaL_argerror(L, 2, "max_bytes must be a non-negative integer");
    int base64 = lua_getfield(L, 2, "base64") == LUA_TNIL ? is_handle : lua_toboolean(L, -1);
    if (base64 && json_lua_to_binary(L, 1, NULL)) return luaL_argerror(L, 1, "a binary value is bytes, not base64");
    /* The references first: luaL_ref may raise, and nothing is allocated yet. */
    lua_pushvalue(L, 3);
    int fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, 1);
    int data_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    struct store_ctx *ctx = malloc(sizeof *ctx);
    if (!ctx) {
        luaL_unref(L, LUA_REGISTRYINDEX, fn_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, data_ref);
        return luaL_error(L, "out of memory");
    }
    *ctx = (struct store_ctx){api_host(L), fn_ref, data_ref};
    char seq_id[IDS_ID_LEN + 1]; /* file ids share the sequence of message ids */
    ids_new_id(api_env(L)->ids, seq_id);
    struct file_put put = {p, len, base64, (size_t)max, type, name};
    script_cpu_exempt_begin(ctx->host); /* the server's: a job queued (the pool's threads may start) */
    int queued = file_store_put(api_env(L)->files, seq_id, &put, on_stored, ctx);
    script_cpu_exempt_end(ctx->host);
    if (queued != 0) {
        luaL_unref(L, LUA_REGISTRYINDEX, ctx->fn_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, ctx->data_ref);
        free(ctx);
        return luaL_error(L, "out of memory");
    }
    return 0;
}

static const luaL_Reg files_funcs[] = {
    {"base64_decode", space_base64_decode}, {"sniff_type", space_sniff_type},
    {"check_file_name", space_check_file_name}, {"store_file", space_store_file}, {"is_file", space_is_file},
    {NULL, NULL},
};

void api__files_register(lua_State *L) { luaL_setfuncs(L, files_funcs, 0); }
