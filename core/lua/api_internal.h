/* api_internal: what the files of the Lua API (api.c, api_conn.c,
 * api_space.c, api_files.c) share. Scripts' C state is reached through
 * api.h alone; nothing outside these files includes this. */
#ifndef SPACE_API_INTERNAL_H
#define SPACE_API_INTERNAL_H

#include <lua.h>
#include <stddef.h>

struct nsp;
struct sio_socket;
struct user;

#define API_ROOM_NAME_MAX 1024 /* bytes of a room name */

/* Raises unless the value at idx is an event name a client accepts. */
void api__check_event_name(lua_State *L, int idx);
/* The room name at idx (1 to API_ROOM_NAME_MAX bytes), or raises. */
const char *api__check_room(lua_State *L, int idx, size_t *len);
/* Pushes {id, name} of u (a fresh table). */
void api__push_user(lua_State *L, const struct user *u);
/* Broadcasts stack values [first, top] as an EVENT to the room of nsp,
 * except to except. Returns the recipients. */
size_t api__broadcast_values(lua_State *L, struct nsp *nsp, const char *room, size_t room_len,
                             struct sio_socket *except, int first);

/* Registers the connection metatable (api_conn.c). */
void api__conn_open(lua_State *L);
/* The `space` module's opener, for package.preload (api_space.c). */
int api__space_open(lua_State *L);
/* Adds the file functions to the module table on top (api_files.c). */
void api__files_register(lua_State *L);
/* Adds the history functions to the module table on top (api_history.c). */
void api__history_register(lua_State *L);

#endif
