/* sandbox: the environment scripts run in. An allowlist of the standard
 * library (no io, os.exit, load, dofile, debug, package), globals that
 * raise when read or written undeclared, print to the log, and a require
 * that loads text chunks from the scripts directory only, once per
 * generation, into that same environment. */
#ifndef SPACE_SANDBOX_H
#define SPACE_SANDBOX_H

#include <lua.h>

#define SANDBOX_MAX_FILE_BYTES (1024 * 1024)

/* Pushes a fresh environment whose require loads "a.b" from dir/a/b.lua.
 * Modules in package.loaded named in shared (NULL-terminated) are handed
 * to require as they are ("space", "cjson", ...). */
void sandbox_push_env(lua_State *L, const char *dir, const char *const *shared);

/* Hands require(name) in the environment at env_idx (from
 * sandbox_push_env) a read-only view of the value at idx: a module made
 * for this generation alone. */
void sandbox_provide(lua_State *L, int env_idx, const char *name, int idx);

/* Loads the text chunk at path into the environment at env_idx and runs
 * it; pushes its result. Raises with "path:line: message" on any error.
 * *files (may be NULL) counts the files loaded. */
void sandbox_run_file(lua_State *L, const char *path, int env_idx);

/* Files loaded through sandbox_run_file and require since the last reset. */
unsigned sandbox_files_loaded(lua_State *L, int reset);

#endif
