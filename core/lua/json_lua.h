/* json_lua: JSON text <-> Lua values, for the Lua host.
 *
 * Why not lua-cjson here: cjson 2.1.0 decodes every number as a float and
 * has no way to encode an empty array, so `[]` would come back as `{}` and
 * ids as `3.0`; it also passes invalid UTF-8 through. Scripts may still
 * `require "cjson"` for their own use.
 *
 * Mapping: object -> table; array -> table with the array metatable (so it
 * encodes back as an array even when empty); integer -> integer; other
 * numbers -> float; null -> JSON_NULL (a light userdata, the same value as
 * cjson.null); Socket.IO binary placeholders -> binary userdata; in a
 * client's event, strings of JSON_LARGE_STRING bytes or more -> file
 * handles (json_lua_decode_event; encoded back as strings). Strings
 * are read and written by json_str (surrogate escapes: see json_str.h).
 * Nesting: at most JSON_MAX_DEPTH arrays and objects, both ways. */
#ifndef SPACE_JSON_LUA_H
#define SPACE_JSON_LUA_H

#include <lua.h>
#include <stddef.h>

#include "sbuf.h"

#define JSON_MAX_DEPTH 64
#define JSON_ARRAY_MT "space.array"   /* registry key of the array metatable */
#define JSON_BINARY_MT "space.binary" /* registry key of the binary metatable */
#define JSON_FILE_MT "space.file"     /* registry key of the file handle metatable */
#define JSON_NULL NULL                /* light userdata NULL stands for null */

/* A string this long in a client's event is an upload's text (base64),
 * not something a handler reads: it becomes a file handle, its bytes
 * copied once out of the message, so that they pass through Lua without
 * another copy and go to space.store_file as they are. Far above any
 * string the stock rules accept elsewhere. */
#define JSON_LARGE_STRING (64 * 1024)

/* Attachments of a Socket.IO binary packet: placeholders {"_placeholder":
 * true,"num":N} decode to attachment N; encoding collects binary values. */
struct json_attachments {
    size_t count;                 /* decode: attachments available */
    const void *const *data;      /* decode: their bytes */
    const size_t *len;            /* decode: their lengths */
    int used;                     /* decode: 1 when a placeholder was replaced */
};

/* Creates the two metatables in the registry. Call once per state. */
void json_lua_open(lua_State *L);

/* Decodes the len bytes at p and pushes the value. Returns 0, or -1 with an
 * error message pushed instead. att may be NULL (placeholders stay tables). */
int json_lua_decode(lua_State *L, const char *p, size_t len, const struct json_attachments *att);
/* The same, for a client's event or ack: strings of JSON_LARGE_STRING bytes
 * or more become file handles. */
int json_lua_decode_event(lua_State *L, const char *p, size_t len, const struct json_attachments *att);

/* Where the encoder puts binary values: each becomes a placeholder numbered
 * from count on, and its bytes go to data/len (they stay valid while the
 * encoded value does: it holds them). More than max is an error; with max 0
 * (or no list) any binary value is. */
struct json_binary_list {
    size_t count;       /* binary values met so far */
    size_t max;         /* room in data and len */
    const void **data;
    size_t *len;
};
/* Appends the JSON text of the value at idx to out. Raises a Lua error for a
 * value JSON cannot hold (a function, invalid UTF-8, a cycle); returns -1
 * with a message pushed when memory runs out, else 0. */
int json_lua_encode(lua_State *L, int idx, struct sbuf *out, struct json_binary_list *bins);

/* Marks the table at idx as a JSON array (it encodes as one even when
 * empty); whether the value at idx is so marked. */
void json_lua_set_array(lua_State *L, int idx);
int json_lua_is_array(lua_State *L, int idx);

/* Pushes a new binary userdata holding a copy of len bytes. */
void json_lua_push_binary(lua_State *L, const void *p, size_t len);
/* The bytes of the binary userdata at idx, or NULL when it is not one. */
const void *json_lua_to_binary(lua_State *L, int idx, size_t *len);

/* File handles: a large string of a client's event, kept as its bytes in
 * a userdata (immutable, and never moved by the collector, so a worker
 * thread may read them while a reference keeps the handle alive). Scripts
 * see #h (the text's bytes), tostring(h) (the text, a copy), h.size (the
 * bytes it decodes to as base64, counted from its length and padding),
 * h.length (= #h) and h.is_base64 (true: the text is taken as base64; it
 * is checked when decoded). The text at idx, or NULL when not a handle. */
const char *json_lua_to_file(lua_State *L, int idx, size_t *len);

#endif
