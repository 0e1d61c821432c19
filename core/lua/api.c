/* api: what the `space` module and the connection handles share: the
 * server the state belongs to, encoding and sending values, and the checks
 * of event and room names. The handles are in api_conn.c, the module in
 * api_space.c, its file functions in api_files.c. */
#include "api.h"

#include <lauxlib.h>
#include <string.h>

#include "api_internal.h"
#include "json_lua.h"
#include "adapter.h"
#include "host_internal.h"
#include "sio.h"
#include "user.h"

struct script_host *api_host(lua_State *L) { return *(struct script_host **)lua_getextraspace(L); }
const struct script_env *api_env(lua_State *L) { return &api_host(L)->env; }
struct sbuf *api_scratch(lua_State *L) { return &api_host(L)->scratch; }

/* {==================================================================
 * Sending
 * =================================================================== */

/* Encodes stack values [first, last] as a JSON array into the scratch
 * buffer and fills o (json, attachments). The binary values' bytes are
 * those of the userdata the encoded values hold: o stays valid while
 * they are on the stack. Raises for values JSON cannot hold. */
struct encoded {
    struct sio_out o;
    const void *bin[SIO_MAX_ATTACHMENTS];
    size_t bin_len[SIO_MAX_ATTACHMENTS];
};

static void encode_values(lua_State *L, int first, int last, enum sio_type type, int64_t ack_id,
                          struct encoded *e) {
    struct sbuf *out = api_scratch(L);
    sbuf_reset(out);
    struct json_binary_list bins = {0, SIO_MAX_ATTACHMENTS, e->bin, e->bin_len};
    sbuf_putc(out, '[');
    for (int i = first; i <= last; i++) {
        if (i > first) sbuf_putc(out, ',');
        if (json_lua_encode(L, i, out, &bins) != 0) lua_error(L);
    }
    if (sbuf_putc(out, ']') != 0) luaL_error(L, "out of memory");
    e->o = (struct sio_out){type, ack_id, out->p, out->len, bins.count, e->bin, e->bin_len};
}

int api_send_values(lua_State *L, struct sio_socket *s, int is_ack, int64_t ack_id, int first,
                    int last) {
    struct encoded e;
    encode_values(L, first, last, is_ack ? SIO_ACK : SIO_EVENT, ack_id, &e);
    return sio_send(s, &e.o) == 0;
}

void api_reply(lua_State *L, struct sio_socket *s, int event_idx, int data_idx, int64_t ack_id) {
    event_idx = lua_absindex(L, event_idx);
    data_idx = lua_absindex(L, data_idx);
    if (sio_socket_is_plain(s)) {
        /* /ws: one frame {"event","data","id"} answers the request id. */
        lua_pushvalue(L, event_idx);
        lua_pushvalue(L, data_idx);
        api_send_values(L, s, 0, ack_id, lua_gettop(L) - 1, lua_gettop(L));
        lua_pop(L, 2);
        return;
    }
    lua_pushvalue(L, event_idx);
    lua_pushvalue(L, data_idx);
    int top = lua_gettop(L);
    if (!lua_isnil(L, event_idx)) api_send_values(L, s, 0, -1, top - 1, top);
    if (ack_id >= 0) api_send_values(L, s, 1, ack_id, top, top);
    lua_pop(L, 2);
}

void api__check_event_name(lua_State *L, int idx) {
    size_t len;
    const char *name = luaL_checklstring(L, idx, &len);
    if (len == 0 || sio_is_reserved_event(name, len))
        luaL_argerror(L, idx, lua_pushfstring(L, "'%s' is not an event name a client accepts", name));
}

/* Whether a socket of the room other than except would get a broadcast
 * (the sender alone in its room is common: its message goes to nobody). */
static int has_recipient(struct nsp *nsp, const char *room, size_t len, const struct sio_socket *except) {
    if (nsp->adapter->has_peers) return 1;
    size_t users, conns;
    adapter_room_size(nsp, room, len, &users, &conns);
    return conns > 1 || (conns == 1 && !(except && adapter_has(except, room, len)));
}

size_t api__broadcast_values(lua_State *L, struct nsp *nsp, const char *room, size_t room_len,
                             struct sio_socket *except, int first) {
    int last = lua_gettop(L);
    api__check_event_name(L, first);
    if (!nsp || !has_recipient(nsp, room, room_len, except)) return 0; /* nothing to encode for nobody */
    struct encoded e;
    encode_values(L, first, last, SIO_EVENT, -1, &e);
    return sio_broadcast(nsp, room, room_len, except, &e.o);
}

/* }================================================================== */

const char *api__check_room(lua_State *L, int idx, size_t *len) {
    const char *room = luaL_checklstring(L, idx, len);
    if (*len == 0 || *len > API_ROOM_NAME_MAX) luaL_argerror(L, idx, "room names have 1 to 1024 bytes");
    return room;
}

void api__push_user(lua_State *L, const struct user *u) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, u->id);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, u->name);
    lua_setfield(L, -2, "name");
}

void api_open(lua_State *L, struct script_host *h) {
    *(struct script_host **)lua_getextraspace(L) = h;
    json_lua_open(L);
    api__conn_open(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, api__space_open);
    lua_setfield(L, -2, "space");
    lua_pop(L, 1);
}

