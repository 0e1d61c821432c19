/* dispatch: a client's events and acks to the handlers of the current
 * generation (looked up per event, never kept by C), the plugins' hooks
 * around them, and the answers: a reply, an ack or an `error` event. */
#include "host_internal.h"

#include <lauxlib.h>
#include <stdio.h>
#include <uv.h>

#include "json_lua.h"
#include "log.h"
#include "sio.h"

/* Pushes app.namespaces[nsp] (a table) or nil. */
static int push_namespace(struct script_host *h, const char *nsp, size_t len) {
    lua_State *L = h->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->gen_ref);
    lua_getfield(L, -1, "app");
    lua_getfield(L, -1, "namespaces");
    lua_pushlstring(L, nsp, len);
    lua_gettable(L, -2);
    lua_replace(L, -4);
    lua_pop(L, 2);
    return lua_istable(L, -1);
}

/* Pushes the namespace's field `name` of the socket's namespace (may be nil). */
void script__push_ns_field(struct script_host *h, struct sio_socket *s, const char *name) {
    lua_State *L = h->L;
    if (!push_namespace(h, s->nsp->name, s->nsp->name_len)) return; /* nil stays */
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
}

int script_has_namespace(struct script_host *h, const char *nsp, size_t len) {
    int ok = push_namespace(h, nsp, len);
    lua_pop(h->L, 1);
    return ok;
}

/* Calls hook of every plugin of the current generation that has one, in
 * priority order: hook(handler, conf, args...) with the nargs values on top
 * of the stack (left there). With can_refuse, stops at the first plugin
 * that returns nil, code[, message], leaving code and message pushed, and
 * returns PLUGIN_REFUSED; or at the first that fails, leaving
 * "internal_error" and a message, and returns PLUGIN_FAILED; else returns 0
 * with the stack as it was. With user_slot (a stack index; 0 = none), the
 * first table a plugin returns is put there while it holds nil (the user
 * that on_authenticate names). */
int script__run_plugin_hooks(struct script_host *h, const char *hook, int nargs, int can_refuse, int user_slot) {
    lua_State *L = h->L;
    int first = lua_gettop(L) - nargs + 1;
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->gen_ref);
    lua_getfield(L, -1, "plugins");
    lua_remove(L, -2);
    int list = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, list);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, list, i);
        int plugin = lua_gettop(L);
        lua_getfield(L, plugin, "handler");
        lua_getfield(L, -1, hook);
        if (!lua_isfunction(L, -1)) {
            lua_settop(L, list);
            continue;
        }
        lua_insert(L, -2);              /* fn, handler */
        lua_getfield(L, plugin, "conf");
        for (int a = 0; a < nargs; a++) lua_pushvalue(L, first + a);
        struct label what = {"plugin ", INT_MAX, "", NULL, ".", hook, plugin};
        int failed = script__call(h, 2 + nargs, 3, &what) != 0;
        if (failed && can_refuse) {
            /* A plugin that fails refuses: a broken rate limiter or auth check must not let events through. */
            lua_settop(L, list - 1);
            lua_pushliteral(L, "internal_error");
            lua_pushliteral(L, "a plugin failed");
            return PLUGIN_FAILED;
        }
        if (!failed && can_refuse && lua_isnil(L, -3) && lua_type(L, -2) == LUA_TSTRING) {
            lua_remove(L, -3);          /* code, message stay */
            lua_remove(L, plugin);
            lua_remove(L, list);
            return PLUGIN_REFUSED;
        }
        if (!failed && user_slot && lua_istable(L, -3) && lua_isnil(L, user_slot)) {
            lua_pushvalue(L, -3);
            lua_replace(L, user_slot);
        }
        lua_settop(L, list);
    }
    lua_settop(L, list - 1);
    return 0;
}

/* reply_lua's work: raises when the event name is one clients reserve
 * or the data cannot be encoded, before anything is sent. */
static int reply_send(lua_State *L) {
    struct sio_socket *s = api_to_socket(L, 1);
    if (!s) return 0;
    lua_settop(L, 4);
    size_t len;
    const char *event = lua_tolstring(L, 2, &len);
    if (event && (len == 0 || sio_is_reserved_event(event, len)))
        return luaL_error(L, "'%s' is not an event name a client accepts", event);
    api_reply(L, s, 2, 3, lua_isinteger(L, 4) ? lua_tointeger(L, 4) : -1);
    return 0;
}

/* reply(conn, event, data, ack_id|nil, handler|nil): emits event to the
 * connection and answers the ack with data; in a protected call, since
 * encoding may raise. The error of an answer names the handler's
 * file:line (it has returned: its own line is gone). */
static int reply_lua(lua_State *L) {
    lua_settop(L, 5);
    lua_pushcfunction(L, reply_send);
    for (int i = 1; i <= 4; i++) lua_pushvalue(L, i);
    if (lua_pcall(L, 4, 0, 0) == LUA_OK) return 0;
    if (lua_isfunction(L, 5) && lua_type(L, -1) == LUA_TSTRING) {
        lua_Debug ar;
        lua_pushvalue(L, 5);
        lua_getinfo(L, ">S", &ar);
        lua_pushfstring(L, "%s:%d: the handler's answer: ", ar.short_src, ar.linedefined);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

/* Emits the values at event_idx and data_idx to s, and answers ack_id (if
 * >= 0) with the data. handler_idx (0: none) is the function that
 * answered. 0, or -1 when nothing could be sent (logged). */
static int reply(struct script_host *h, struct sio_socket *s, int event_idx, int data_idx, int64_t ack_id,
                 const struct label *what, int handler_idx) {
    lua_State *L = h->L;
    event_idx = lua_absindex(L, event_idx);
    data_idx = lua_absindex(L, data_idx);
    if (handler_idx) handler_idx = lua_absindex(L, handler_idx);
    lua_pushcfunction(L, reply_lua);
    api_push_conn(L, s);
    lua_pushvalue(L, event_idx);
    lua_pushvalue(L, data_idx);
    if (ack_id >= 0) lua_pushinteger(L, ack_id);
    else lua_pushnil(L);
    if (handler_idx) lua_pushvalue(L, handler_idx);
    else lua_pushnil(L);
    return script__call(h, 5, 0, what);
}

/* Sends `error` {code, message, event} to s and answers its ack with the
 * same object. */
static void send_error(struct script_host *h, struct sio_socket *s, const char *event, int64_t ack_id,
                       const char *code, const char *message) {
    lua_State *L = h->L;
    lua_pushliteral(L, "error");
    lua_createtable(L, 0, 3);
    lua_pushstring(L, code);
    lua_setfield(L, -2, "code");
    lua_pushstring(L, message);
    lua_setfield(L, -2, "message");
    lua_pushstring(L, event);
    lua_setfield(L, -2, "event");
    reply(h, s, -2, -1, ack_id, LABEL("error reply"), 0);
    lua_pop(L, 2);
}

void script_send_error(struct script_host *h, struct sio_socket *s, const char *event, const char *code,
                       const char *message) {
    int top = lua_gettop(h->L);
    send_error(h, s, event, -1, code, message);
    lua_settop(h->L, top);
}

void script_on_connected(struct script_host *h, struct sio_socket *s) {
    lua_State *L = h->L;
    int top = lua_gettop(L);
    api_push_conn(L, s);
    script__run_plugin_hooks(h, "on_connect", 1, 0, 0);
    lua_settop(L, top);
    if (s->closed) return;
    script__push_ns_field(h, s, "on_connect");
    if (lua_isfunction(L, -1)) {
        api_push_conn(L, s);
        script__call(h, 1, 0, LABEL("on_connect"));
    }
    lua_settop(L, top);
}

void script_on_disconnect(struct script_host *h, struct sio_socket *s, const char *reason) {
    lua_State *L = h->L;
    int top = lua_gettop(L);
    script__push_ns_field(h, s, "on_disconnect");
    if (lua_isfunction(L, -1)) {
        api_push_conn(L, s);
        lua_pushstring(L, reason);
        script__call(h, 2, 0, LABEL("on_disconnect"));
    }
    lua_settop(L, top);
    api_push_conn(L, s);
    lua_pushstring(L, reason);
    script__run_plugin_hooks(h, "on_disconnect", 2, 0, 0);
    lua_settop(L, top);
}

void script_release_socket(struct script_host *h, struct sio_socket *s) { api_release_conn(h->L, s); }

/* Decodes an event or ack's JSON array and its attachments; pushes it.
 * An event's large strings arrive as file handles (json_lua.h). Returns -1
 * (nothing pushed) when it is not an array. */
static int push_args(lua_State *L, int is_event, const char *json, size_t len, unsigned n_att,
                     const void *const *att, const size_t *att_len) {
    if (len == 0) {
        lua_newtable(L);
        json_lua_set_array(L, -1);
        return 0;
    }
    struct json_attachments a = {n_att, att, att_len, 0};
    if ((is_event ? json_lua_decode_event : json_lua_decode)(L, json, len, n_att ? &a : NULL) != 0) {
        lua_pop(L, 1);
        return -1;
    }
    /* Only an array carries the array metatable (strings have one too). */
    if (!lua_istable(L, -1) || !json_lua_is_array(L, -1)) {
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

/* The ack id the call's answer takes: the client's, or for a handler that
 * got ev, what is left in ev.ack_id (conn:ack and conn:reply clear it, so
 * an ack already answered is not answered again). When the call answers
 * now, ev.ack_id is cleared too: a conn:reply from a callback later sends
 * its event but not a second ack. */
static int64_t take_pending_ack(lua_State *L, int ev, int64_t ack_id, int answers) {
    if (!ev) return ack_id;
    /* Raw: a metatable a script gave ev runs nothing here, outside a protected call. */
    lua_pushliteral(L, "ack_id");
    lua_rawget(L, ev);
    int64_t pending = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : -1;
    lua_pop(L, 1);
    if (answers && pending >= 0) {
        lua_pushliteral(L, "ack_id");
        lua_pushnil(L);
        lua_rawset(L, ev);
    }
    return pending;
}

/* Answers ack_id (if >= 0) with no data: Socket.IO `43<id>[]`, on /ws
 * {"event":"ack","data":null,"id":ID}, as conn:ack(ev) with no values. */
static void ack_empty(struct sio_socket *s, int64_t ack_id) {
    if (ack_id < 0) return;
    struct sio_out a = {SIO_ACK, ack_id, "[]", 2, 0, NULL, NULL};
    sio_send(s, &a);
}

/* Registry key (an address) of the list of dropped kept events' acks:
 * conn, ack_id, conn, ack_id, ... */
static const char KEPT_ACKS_KEY = 0;

/* __gc of a kept event: collected with its ack unanswered, the script can
 * no longer answer it, so the ack goes empty, as for a handler that
 * returned nothing. Only queued here (a finalizer runs inside whatever
 * allocated); script__flush_kept_acks sends it. */
static int kept_event_gc(lua_State *L) {
    lua_pushliteral(L, "ack_id");
    lua_rawget(L, 1);
    lua_Integer id = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : -1;
    if (id < 0 || !lua_getmetatable(L, 1)) return 0;
    lua_pushliteral(L, "conn");
    lua_rawget(L, -2);
    int conn = lua_gettop(L);
    if (!api_to_socket(L, conn)) return 0; /* the connection is gone: no one to answer */
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &KEPT_ACKS_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &KEPT_ACKS_KEY);
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    lua_pushvalue(L, conn);
    lua_rawseti(L, -2, n + 1);
    lua_pushinteger(L, id);
    lua_rawseti(L, -2, n + 2);
    host_of(L)->kept_acks = 1;
    lua_pushliteral(L, "event");
    lua_rawget(L, 1);
    char q[LOG_QUOTED_MAX];
    const char *name = lua_tostring(L, -1);
    log_warn("lua", "a handler kept an event and dropped it unanswered: its ack goes with no data event=\"%s\"",
             log_quoted(q, sizeof q, name ? name : "?"));
    return 0;
}

void script__flush_kept_acks(struct script_host *h) {
    lua_State *L = h->L;
    h->kept_acks = 0;
    int top = lua_gettop(L);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &KEPT_ACKS_KEY) == LUA_TTABLE) {
        lua_pushnil(L);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &KEPT_ACKS_KEY); /* a finalizer from here on starts a new list */
        lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
        for (lua_Integer i = 1; i + 1 <= n; i += 2) {
            lua_rawgeti(L, top + 1, i);
            struct sio_socket *s = api_to_socket(L, -1); /* NULL once the connection is gone */
            lua_rawgeti(L, top + 1, i + 1);
            if (s && !s->closed) ack_empty(s, lua_tointeger(L, -1));
            lua_settop(L, top + 1);
        }
    }
    lua_settop(L, top);
}

/* Keeps the event ev of s for a later answer: when ev is collected with its
 * ack unanswered, kept_event_gc answers it empty. ev's metatable holds the
 * connection, out of the script's reach (__metatable). A metatable the
 * handler gave ev itself is left alone (no finalizer then). */
static void keep_event(lua_State *L, int ev, struct sio_socket *s) {
    if (lua_getmetatable(L, ev)) {
        lua_pop(L, 1);
        return;
    }
    lua_createtable(L, 0, 3);
    lua_pushcfunction(L, kept_event_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    api_push_conn(L, s);
    lua_setfield(L, -2, "conn");
    lua_setmetatable(L, ev);
}

/* Runs the handler of the event named at name_idx with the arguments in the
 * array at args_idx ([name, data, ...]) and answers as the handler says. */
static void dispatch_event(struct script_host *h, struct sio_socket *s, int name_idx, int args_idx,
                           int64_t ack_id) {
    lua_State *L = h->L;
    const char *name = lua_tostring(L, name_idx);
    lua_Integer n = (lua_Integer)lua_rawlen(L, args_idx);
    script__push_ns_field(h, s, "events");
    if (lua_istable(L, -1)) {
        lua_pushvalue(L, name_idx);
        lua_rawget(L, -2);
        lua_remove(L, -2);
    }
    if (!lua_isfunction(L, -1)) {
        char msg[160];
        snprintf(msg, sizeof msg, "unknown event '%.100s'", name);
        send_error(h, s, name, ack_id, "unknown_event", msg);
        return;
    }
    /* Plugins first: any may refuse the event with its code. */
    api_push_conn(L, s);
    lua_pushvalue(L, name_idx);
    lua_rawgeti(L, args_idx, 2);
    if (script__run_plugin_hooks(h, "on_event", 3, 1, 0)) {
        const char *code = lua_tostring(L, -2);
        const char *message = lua_isstring(L, -1) ? lua_tostring(L, -1) : code;
        if (!s->closed) send_error(h, s, name, ack_id, code, message);
        return;
    }
    lua_pop(L, 3);
    if (s->closed) return;
    /* handler(conn, data, ev): ev = {event, args (all but the name), ack_id?},
     * built only for a handler that can see it: a Lua function with fewer
     * than three parameters and no '...' cannot (scripts have no debug
     * library), and most handlers are function(conn, data). */
    lua_Debug ar;
    lua_pushvalue(L, -1);
    lua_getinfo(L, ">u", &ar);
    int with_ev = ar.isvararg || ar.nparams >= 3;
    if (with_ev) {
        lua_createtable(L, 0, 3);
        lua_pushvalue(L, name_idx);
        lua_setfield(L, -2, "event");
        lua_createtable(L, (int)(n > 1 ? n - 1 : 0), 1);
        for (lua_Integer i = 2; i <= n; i++) {
            lua_rawgeti(L, args_idx, i);
            lua_rawseti(L, -2, i - 1);
        }
        lua_pushinteger(L, n > 1 ? n - 1 : 0);
        lua_setfield(L, -2, "n");
        lua_setfield(L, -2, "args");
        if (ack_id >= 0) {
            lua_pushinteger(L, ack_id);
            lua_setfield(L, -2, "ack_id");
        }
    } else {
        lua_pushnil(L);
    }
    int ev = lua_gettop(L); /* ev (or nil), kept below the call */
    lua_pushvalue(L, ev - 1); /* the handler */
    api_push_conn(L, s);
    lua_rawgeti(L, args_idx, 2); /* data: the first argument */
    if (with_ev) lua_pushvalue(L, ev);
    int base = ev; /* results land above ev */
    struct label what = {s->nsp->name, (int)s->nsp->name_len, ":", name, "", "", 0};
    int failed = script__call(h, with_ev ? 3 : 2, 3, &what) != 0;
    if (s->closed) return;
    int r1 = base + 1;
    int answers = failed || lua_type(L, r1) == LUA_TSTRING || (lua_isnil(L, r1) && lua_type(L, r1 + 1) == LUA_TSTRING);
    int64_t pending_ack = take_pending_ack(L, with_ev ? ev : 0, ack_id, answers);
    if (failed) {
        send_error(h, s, name, pending_ack, "internal_error", "the handler failed");
    } else if (lua_type(L, r1) == LUA_TSTRING) {
        /* Every call answers: an answer that cannot be sent is an internal_error. */
        if (reply(h, s, r1, r1 + 1, pending_ack, &what, ev - 1) != 0 && !s->closed)
            send_error(h, s, name, pending_ack, "internal_error", "the handler failed");
    } else if (answers) {
        const char *code = lua_tostring(L, r1 + 1);
        const char *message = lua_isstring(L, r1 + 2) ? lua_tostring(L, r1 + 2) : code;
        send_error(h, s, name, pending_ack, code, message);
    } else if (!with_ev) {
        /* Nothing returned, and no ev to answer with later: the ack still
         * goes, empty, so that a client waiting for it never hangs. */
        ack_empty(s, pending_ack);
    } else if (pending_ack >= 0) {
        /* A handler that took ev and returned nothing keeps the event: it
         * answers later with conn:reply or conn:ack, once (ev.ack_id stays). */
        keep_event(L, ev, s);
    }
}

/* The metrics slot of the event named at name_idx: its own once the app has
 * a handler for it (a client's made-up names all count as "other"). */
static unsigned count_event_slot(struct script_host *h, struct sio_socket *s, int name_idx, const char *name,
                                 size_t len, int *handled) {
    struct metrics *m = h->env.metrics;
    unsigned slot = metrics_event_slot(m, name, len);
    if ((*handled = slot && m->has_handler[slot])) return slot; /* the usual case: no lookup */
    lua_State *L = h->L;
    int top = lua_gettop(L);
    script__push_ns_field(h, s, "events");
    *handled = lua_istable(L, -1) && (lua_pushvalue(L, name_idx), lua_rawget(L, -2) == LUA_TFUNCTION);
    lua_settop(L, top);
    return *handled ? metrics_event_learn(m, name, len) : slot;
}

enum script_result script_on_event(struct script_host *h, struct sio_socket *s, int64_t ack_id,
                                   const char *json, size_t len, unsigned n_att,
                                   const void *const *att, const size_t *att_len) {
    lua_State *L = h->L;
    int top = lua_gettop(L);
    if (len == 0) return SCRIPT_OK; /* "42" with no payload: accepted and ignored, as Node does */
    if (push_args(L, 1, json, len, n_att, att, att_len) != 0) return SCRIPT_PROTOCOL_ERROR;
    int args = lua_gettop(L);
    int t = lua_rawgeti(L, args, 1);
    if (t != LUA_TSTRING && t != LUA_TNUMBER && !json_lua_to_file(L, -1, NULL)) {
        lua_settop(L, top);
        return SCRIPT_PROTOCOL_ERROR;
    }
    if (t == LUA_TUSERDATA) { /* a name long enough to be a file handle: a name all the same */
        luaL_tolstring(L, -1, NULL);
        lua_remove(L, -2);
    }
    size_t name_len;
    const char *name = lua_tolstring(L, -1, &name_len); /* numbers become strings, as in Node */
    if (sio_is_reserved_event(name, name_len)) {
        lua_settop(L, top);
        return SCRIPT_PROTOCOL_ERROR;
    }
    int handled;
    unsigned slot = count_event_slot(h, s, lua_gettop(L), name, name_len, &handled);
    uint64_t t0 = uv_hrtime();
    dispatch_event(h, s, lua_gettop(L), args, ack_id);
    metrics_event_in(h->env.metrics, slot, handled, uv_hrtime() - t0);
    lua_settop(L, top);
    return SCRIPT_OK;
}

enum script_result script_on_ack(struct script_host *h, struct sio_socket *s, int64_t ack_id,
                                 const char *json, size_t len, unsigned n_att,
                                 const void *const *att, const size_t *att_len) {
    lua_State *L = h->L;
    int top = lua_gettop(L);
    if (push_args(L, 0, json, len, n_att, att, att_len) != 0) return SCRIPT_PROTOCOL_ERROR;
    int args = lua_gettop(L);
    api_push_ack_table(L, s);
    if (!lua_istable(L, -1) || lua_rawgeti(L, -1, ack_id) != LUA_TFUNCTION) {
        lua_settop(L, top); /* an ack nobody waits for is ignored */
        return SCRIPT_OK;
    }
    lua_pushnil(L);
    lua_rawseti(L, -3, ack_id);
    lua_Integer n = (lua_Integer)lua_rawlen(L, args);
    for (lua_Integer i = 1; i <= n; i++) lua_rawgeti(L, args, i);
    script__call(h, (int)n, 0, LABEL("ack callback"));
    lua_settop(L, top);
    return SCRIPT_OK;
}
