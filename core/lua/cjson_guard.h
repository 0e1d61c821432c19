/* cjson_guard: the lua-cjson that scripts get. lua-cjson keeps its settings
 * in the module's config, shared by every caller: a script that raised
 * encode_max_depth could overflow the C stack (SIGSEGV) with a deep table,
 * and the raised limit outlived its generation. Each generation gets an
 * instance of its own (lua-cjson's new()), whose depth and sparse-array
 * limits scripts can only lower from lua-cjson's defaults. */
#ifndef SPACE_CJSON_GUARD_H
#define SPACE_CJSON_GUARD_H

#include <lua.h>

/* Pushes a fresh guarded instance of package.loaded[module] ("cjson" or
 * "cjson.safe") and returns 1, or pushes nothing and returns 0 when that
 * module is not loaded. */
int cjson_guard_push(lua_State *L, const char *module);

#endif
