/* login: who a connection is. With a JWT key the token must verify and
 * the plugins' on_authenticate may refuse it or name the user; without
 * one (development mode) the namespace's authenticate names the user. */
#include "host_internal.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "json_lua.h"
#include "json_str.h"
#include "auth.h"
#include "clock.h"
#include "sio.h"
#include "user.h"

#define MS_PER_S 1000

/* The CONNECT_ERROR data: {"message": message, "data": {"code": code}}. */
static void write_refusal(struct sbuf *refusal, const char *message, const char *code) {
    sbuf_reset(refusal);
    sbuf_printf(refusal, "{\"message\":");
    json_append_string(refusal, message, strlen(message));
    sbuf_printf(refusal, ",\"data\":{\"code\":");
    json_append_string(refusal, code, strlen(code));
    sbuf_printf(refusal, "}}");
}

/* conn:set_user(table at idx), protected. 0 or -1. */
static int set_user_from(struct script_host *h, struct sio_socket *s, int idx) {
    lua_State *L = h->L;
    idx = lua_absindex(L, idx);
    api_push_conn(L, s);
    lua_getfield(L, -1, "set_user");
    lua_insert(L, -2);
    lua_pushvalue(L, idx);
    return script__call(h, 2, 0, LABEL("authenticate (set_user)"));
}

/* Development mode: the namespace's authenticate(conn, auth) names the user. */
static enum script_result authenticate_dev(struct script_host *h, struct sio_socket *s, int auth,
                                           struct sbuf *refusal) {
    lua_State *L = h->L;
    script__push_ns_field(h, s, "authenticate");
    if (!lua_isfunction(L, -1)) {
        /* No policy: every connection is its own guest. */
        char name[16];
        snprintf(name, sizeof name, "guest-%.6s", s->sid);
        s->rooms.user = user_acquire(&h->env.sio->users, s->sid, strlen(s->sid), name, strlen(name));
        return s->rooms.user ? SCRIPT_OK : SCRIPT_REFUSE;
    }
    api_push_conn(L, s);
    lua_pushvalue(L, auth);
    if (script__call(h, 2, 3, LABEL("authenticate")) != 0) {
        write_refusal(refusal, "authentication failed", "internal_error");
        return SCRIPT_REFUSE;
    }
    int r1 = lua_gettop(L) - 2;
    if (lua_istable(L, r1)) {
        if (set_user_from(h, s, r1) == 0) return SCRIPT_OK;
        write_refusal(refusal, "unauthorized", "invalid_user"); /* e.g. a name with a NUL byte */
        return SCRIPT_REFUSE;
    }
    const char *code = lua_isstring(L, r1 + 1) ? lua_tostring(L, r1 + 1) : "unauthorized";
    write_refusal(refusal, lua_isstring(L, r1 + 2) ? lua_tostring(L, r1 + 2) : code, code);
    return SCRIPT_REFUSE;
}

int script_recheck_claims(struct script_host *h, struct sio_socket *s, int claims_idx, int auth) {
    lua_State *L = h->L;
    claims_idx = lua_absindex(L, claims_idx);
    auth = lua_absindex(L, auth);
    api_push_conn(L, s);
    lua_pushvalue(L, claims_idx);
    lua_pushvalue(L, auth);
    if (script__run_plugin_hooks(h, "on_authenticate", 3, 1, 0)) return 1;
    lua_pop(L, 3);
    return 0;
}

/* With a JWT key: the token must verify; then plugins' on_authenticate(self,
 * conf, conn, claims, auth) may refuse (nil, code, message) or name the
 * user (a table); else the user is {id = sub, name = name or
 * preferred_username or sub}. */
static enum script_result authenticate_jwt(struct script_host *h, struct sio_socket *s, int auth,
                                           struct sbuf *refusal) {
    lua_State *L = h->L;
    size_t token_len = 0;
    const char *token = NULL;
    if (lua_getfield(L, auth, "token") == LUA_TSTRING) token = lua_tolstring(L, -1, &token_len);
    else if ((token = sio_socket_handshake_token(s))) token_len = strlen(token);
    struct auth_token tok;
    enum jwt_result r = auth_verify_token(h->env.auth, token, token_len, (int64_t)(clock_wall_ms() / MS_PER_S), &tok);
    if (r != JWT_OK) {
        write_refusal(refusal, "unauthorized", jwt_result_code(r));
        return SCRIPT_REFUSE;
    }
    const struct jwt_claims *claims = &tok.claims; /* sub and exp stay after the free */
    int rc = json_lua_decode(L, claims->json, claims->json_len, NULL);
    auth_token_free(&tok);
    if (rc != 0 || !lua_istable(L, -1)) {
        write_refusal(refusal, "unauthorized", "invalid_token");
        return SCRIPT_REFUSE;
    }
    int claims_idx = lua_gettop(L);
    sio_socket_set_token_exp(s, tok.notice_ms);
    snprintf(s->token_sub, sizeof s->token_sub, "%s", claims->sub);

    /* Plugins, by priority: the first refusal wins; the first user too. */
    lua_pushnil(L); /* the user slot */
    int user_idx = lua_gettop(L);
    api_push_conn(L, s);
    lua_pushvalue(L, claims_idx);
    lua_pushvalue(L, auth);
    int pr = script__run_plugin_hooks(h, "on_authenticate", 3, 1, user_idx);
    if (pr == PLUGIN_FAILED) {
        write_refusal(refusal, "authentication failed", "internal_error");
        return SCRIPT_REFUSE;
    }
    if (pr == PLUGIN_REFUSED) {
        /* PROTOCOL §2: the message is "unauthorized", the code says why. */
        write_refusal(refusal, "unauthorized", lua_tostring(L, -2));
        return SCRIPT_REFUSE;
    }
    lua_pop(L, 3);
    if (lua_isnil(L, user_idx)) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, claims->sub);
        lua_setfield(L, -2, "id");
        const char *name = NULL;
        if (lua_getfield(L, claims_idx, "name") == LUA_TSTRING) name = lua_tostring(L, -1);
        else if (lua_pop(L, 1), lua_getfield(L, claims_idx, "preferred_username") == LUA_TSTRING)
            name = lua_tostring(L, -1);
        lua_pushstring(L, name && *name ? name : claims->sub);
        lua_setfield(L, -3, "name");
        lua_pop(L, 1);
        lua_replace(L, user_idx);
    }
    if (set_user_from(h, s, user_idx) != 0) {
        write_refusal(refusal, "unauthorized", "invalid_token");
        return SCRIPT_REFUSE;
    }
    return SCRIPT_OK;
}

enum script_result script_authenticate(struct script_host *h, struct sio_socket *s, const char *json,
                                       size_t len, struct sbuf *refusal) {
    lua_State *L = h->L;
    int top = lua_gettop(L);
    if (len == 0) {
        lua_newtable(L);
    } else if (json_lua_decode(L, json, len, NULL) != 0 || !lua_istable(L, -1) ||
               lua_getmetatable(L, -1)) {
        lua_settop(L, top);
        return SCRIPT_PROTOCOL_ERROR; /* CONNECT data must be a JSON object */
    }
    int auth = lua_gettop(L);
    enum script_result r = h->env.auth->key ? authenticate_jwt(h, s, auth, refusal)
                                            : authenticate_dev(h, s, auth, refusal);
    lua_settop(L, top);
    return r;
}
