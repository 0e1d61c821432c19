/* api: the only place where Lua touches C state: the `space` module
 * (require "space", api_space.c and api_files.c) and the connection handle
 * type (api_conn.c); api.c sends. Documented for script writers in
 * README.md ("The Lua API"). */
#ifndef SPACE_API_H
#define SPACE_API_H

#include <lua.h>
#include <stdint.h>

struct script_env;
struct script_host;
struct sbuf;
struct sio_socket;

#define API_CONN_MT "space.conn"

/* Stores the host for the API functions and registers the module in
 * package.preload. Call once per state. */
void api_open(lua_State *L, struct script_host *h);
struct script_host *api_host(lua_State *L);
/* The server state the scripts may reach (script.h). */
const struct script_env *api_env(lua_State *L);
/* A buffer for building outbound messages: reused, never held across calls. */
struct sbuf *api_scratch(lua_State *L);

/* Pushes the socket's handle (created on first use; one per socket). */
void api_push_conn(lua_State *L, struct sio_socket *s);
/* The live socket of the handle at idx, or NULL (closed or not a handle). */
struct sio_socket *api_to_socket(lua_State *L, int idx);
/* Marks the handle closed and forgets it. */
void api_release_conn(lua_State *L, struct sio_socket *s);

/* Sends the values at stack [first, last] as one packet to s: an EVENT
 * (ack_id -1 or the id the client should answer) or an ACK (is_ack).
 * Raises a Lua error for values that cannot be sent. Returns 1 when sent. */
int api_send_values(lua_State *L, struct sio_socket *s, int is_ack, int64_t ack_id, int first,
                    int last);

/* Answers a client's event: emits the event at event_idx with the data at
 * data_idx and answers ack_id (>= 0) with the data; on /ws one frame with
 * the request id. Raises for values that cannot be sent. */
void api_reply(lua_State *L, struct sio_socket *s, int event_idx, int data_idx, int64_t ack_id);

/* Pushes the table of pending server->client ack callbacks of s (from the
 * handle's user values), or nil. */
void api_push_ack_table(lua_State *L, struct sio_socket *s);

#endif
