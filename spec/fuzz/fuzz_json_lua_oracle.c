/* libFuzzer target: core/lua/json_lua.c's decoder against a reference decoder, lua-cjson (the
 * `cjson` module scripts may require), in the same Lua state, on the same bytes.
 *
 * Oracles:
 *   - values: for a text both accept, the two Lua values are deeply equal: the same types, strings
 *     byte for byte, numbers equal as doubles, tables with the same keys holding equal values, and
 *     null the same light userdata (cjson.null is json_lua's JSON_NULL);
 *   - encoding: what json_lua_encode writes for a value it decoded, cjson decodes to a value equal
 *     to it (the escapes json_str writes, the shortest float forms, integers beyond 2^53);
 *   - acceptance: json_lua refuses only what json_check (json_scan) refuses: not JSON per RFC 8259,
 *     nested deeper than 64, or a number beyond the double range; and what json_lua accepts,
 *     json_check and cjson accept (but for the exclusion below).
 *
 * Deliberate differences, excluded explicitly:
 *   - cjson reads every number as a float (2.1.0 has no integers): json_lua's integer i is compared
 *     as (double)i, which both round to nearest from the same digits;
 *   - cjson has no empty array: json_lua's `[]` (an empty table marked as an array) matches cjson's
 *     empty table; the array mark itself is not compared (cjson has none);
 *   - cjson refuses every surrogate escape that does not pair (\ud800 alone, a low one first);
 *     json_lua decodes those to U+FFFD (see json_str.h): a text holding any \uD800-\uDFFF escape is
 *     not required to be accepted by cjson;
 *   - cjson is lenient where json_lua is strict (no UTF-8 check, 1e400 -> inf, nesting to 1000,
 *     numbers strtod reads such as "1." or "-.5"): those are json_lua refusals json_check explains,
 *     so they fall under the acceptance oracle, not the values one. decode_invalid_numbers(false)
 *     keeps cjson from reading hex, NaN and Infinity as numbers.
 * The input is copied to an exact-size heap block so that any read past its end is caught. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_lua.h"
#include "json_scan.h"
#include "sbuf.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "fuzz_json_lua_oracle: " __VA_ARGS__);                                     \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

struct input {
    const char *p;
    size_t n;
};

/* The value at a (json_lua's) equals the one at b (cjson's); path names the place for a failure. */
static void same(lua_State *L, int a, int b, int depth) {
    a = lua_absindex(L, a);
    b = lua_absindex(L, b);
    if (depth > JSON_MAX_DEPTH + 1) FAIL("json_lua's value nests deeper than its limit");
    if (!lua_checkstack(L, 8)) FAIL("out of Lua stack comparing values");
    int ta = lua_type(L, a), tb = lua_type(L, b);
    if (ta != tb) FAIL("json_lua made a %s where cjson made a %s (depth %d)", lua_typename(L, ta), lua_typename(L, tb), depth);
    switch (ta) {
    case LUA_TNUMBER: {
        double va = lua_isinteger(L, a) ? (double)lua_tointeger(L, a) : lua_tonumber(L, a);
        double vb = lua_tonumber(L, b);
        if (va != vb) FAIL("json_lua read the number %.17g, cjson %.17g", va, vb);
        return;
    }
    case LUA_TSTRING: {
        size_t la, lb;
        const char *sa = lua_tolstring(L, a, &la), *sb = lua_tolstring(L, b, &lb);
        if (la != lb || memcmp(sa, sb, la) != 0)
            FAIL("strings differ: json_lua %zu bytes \"%.*s\", cjson %zu bytes \"%.*s\"", la, (int)(la > 80 ? 80 : la), sa,
                 lb, (int)(lb > 80 ? 80 : lb), sb);
        return;
    }
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, a) != lua_toboolean(L, b)) FAIL("booleans differ");
        return;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, a) != JSON_NULL || lua_touserdata(L, b) != JSON_NULL) FAIL("a light userdata that is not null");
        return;
    case LUA_TTABLE: {
        long na = 0, nb = 0;
        lua_pushnil(L);
        while (lua_next(L, a)) { /* key at -2, value at -1 */
            na++;
            lua_pushvalue(L, -2);
            lua_rawget(L, b);
            if (lua_isnil(L, -1)) {
                lua_pushvalue(L, -3);
                FAIL("cjson's table lacks the key %s", luaL_tolstring(L, -1, NULL));
            }
            same(L, -2, -1, depth + 1);
            lua_pop(L, 2);
        }
        lua_pushnil(L);
        while (lua_next(L, b)) {
            nb++;
            lua_pop(L, 1);
        }
        if (na != nb) FAIL("json_lua's table has %ld members, cjson's %ld", na, nb);
        return;
    }
    default: FAIL("json_lua made a %s", lua_typename(L, ta));
    }
}

/* Whether the text holds a \u escape of a surrogate (where cjson refuses what does not pair). */
static int has_surrogate_escape(const char *p, size_t n) {
    for (size_t i = 0; i + 3 < n; i++)
        if (p[i] == '\\' && p[i + 1] == 'u' && (p[i + 2] | 0x20) == 'd' && strchr("89abcdefABCDEF", p[i + 3]) && p[i + 3])
            return 1;
    return 0;
}

/* one(input): runs both decoders and the oracles; raises nothing. */
static int one(lua_State *L) {
    const struct input *in = lua_touserdata(L, 1);
    lua_settop(L, 0);
    const char *p = in->p;
    size_t n = in->n;

    int ours = json_lua_decode(L, p, n, NULL) == 0; /* value or message at 1 */

    lua_rawgetp(L, LUA_REGISTRYINDEX, (void *)&one); /* cjson.safe's decode, at 2 */
    lua_pushlstring(L, p, n);
    lua_call(L, 1, 2); /* value, or nil and a message */
    int theirs = !(lua_isnil(L, 2) && lua_isstring(L, 3));
    lua_settop(L, 2);

    enum json_check_error check = json_check(p, n, JSON_MAX_DEPTH, NULL);
    if (ours && check != JSON_CHECK_OK) FAIL("json_lua accepted what json_check refuses (%d)", (int)check);
    if (!ours && check == JSON_CHECK_OK) FAIL("json_lua refused what json_check accepts: %s", lua_tostring(L, 1));
    if (ours && !theirs && !has_surrogate_escape(p, n)) FAIL("cjson refused what json_lua accepts");
    if (ours && theirs) same(L, 1, 2, 0);
    if (ours) {
        /* The way out: what json_lua's encoder writes for the value, cjson reads back as it. */
        struct sbuf out = {0};
        if (json_lua_encode(L, 1, &out, NULL) != 0) FAIL("encode ran out of memory");
        lua_rawgetp(L, LUA_REGISTRYINDEX, (void *)&one);
        lua_pushlstring(L, out.p, out.len);
        lua_call(L, 1, 2);
        if (lua_isnil(L, -2))
            FAIL("cjson refused json_lua's encoding (%s): %.*s", lua_tostring(L, -1), (int)(out.len > 200 ? 200 : out.len), out.p);
        same(L, 1, -2, 0);
        sbuf_free(&out);
    }
    lua_settop(L, 0);
    return 0;
}

static lua_State *state(void) {
    static lua_State *L; /* one state for the whole run: making one per input would dominate */
    if (L) return L;
    L = luaL_newstate();
    if (!L) FAIL("no Lua state");
    luaL_openlibs(L);
    json_lua_open(L);
    /* A cjson.safe instance of its own (as cjson_guard gives scripts), strict about numbers. */
    if (luaL_dostring(L, "local c = require('cjson.safe').new() c.decode_invalid_numbers(false) return c.decode") != LUA_OK)
        FAIL("cannot load lua-cjson: %s", lua_tostring(L, -1));
    lua_rawsetp(L, LUA_REGISTRYINDEX, (void *)&one);
    return L;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 65536) return 0;
    char *p = malloc(size ? size : 1);
    if (size) memcpy(p, data, size);
    struct input in = {p, size};
    lua_State *L = state();
    lua_settop(L, 0);
    lua_pushcfunction(L, one);
    lua_pushlightuserdata(L, &in);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) FAIL("Lua error: %s", lua_tostring(L, -1));
    lua_settop(L, 0);
    free(p);
    return 0;
}
