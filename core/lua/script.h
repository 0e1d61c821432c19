/* script: the Lua host. One Lua 5.4 state with a capped allocator; scripts
 * run in a sandboxed environment (an allowlist of the standard library),
 * every call is protected, runs under an instruction budget and reports
 * errors with file:line. Handlers are looked up per event in the current
 * script generation, never captured by the C side, so a reload takes
 * effect at the next event. The scripts reach C only through api.h (api*.c).
 * The host's parts are listed in host_internal.h. */
#ifndef SPACE_SCRIPT_H
#define SPACE_SCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include "sbuf.h"

struct auth;
struct config;
struct file_store;
struct history_store;
struct ids;
struct metrics;
struct net;
struct sio_hub;
struct sio_socket;
struct script_host;

enum script_result {
    SCRIPT_OK = 0,
    SCRIPT_REFUSE = 1,          /* the script refused (connect): refusal JSON written */
    SCRIPT_PROTOCOL_ERROR = -1, /* the client's data broke the protocol: close it */
};

/* Creates the state and loads the scripts in dir (plugins from
 * plugins_dir). NULL when they don't load; the reason (file:line: message)
 * is written to err. */
/* What the host reaches of the server's state, and nothing else: filled in
 * by the app (the composition root), copied by the host. */
struct script_env {
    const struct config *cfg;
    const struct auth *auth;       /* JWT keys: login and conn:refresh_token */
    struct ids *ids;               /* space.new_id, file ids */
    struct sio_hub *sio;           /* namespaces, users, rooms (through their adapters) */
    struct file_store *files;      /* space.store_file */
    struct metrics *metrics;       /* events and handler failures are counted here */
    struct history_store *history; /* space.history_append, space.history */
    struct net *net;               /* the scripts' timers sit on its deadline timer (space.after, space.every) */
};

struct script_host *script_host_new(const struct script_env *env, const char *dir, const char *plugins_dir, char *err,
                                    size_t errlen);
/* Loads the scripts again into a fresh generation and swaps it in only when
 * everything loaded and checked; else the running generation stays and err
 * says why (file:line: message). Logged either way; why names the trigger. */
int script_reload(struct script_host *h, const char *why, char *err, size_t errlen);

struct script_stats {
    uint64_t generation;      /* 1 after the first load, +1 per successful reload */
    unsigned files;           /* files the current generation loaded */
    uint64_t reloads_ok, reloads_failed;
    double last_load_ms;      /* time the last successful load took */
    const char *last_error;   /* of the last reload, "" when it succeeded */
    size_t lua_bytes;         /* memory the Lua state holds */
};
void script_stats(const struct script_host *h, struct script_stats *out);
void script_host_free(struct script_host *h);
/* The Lua state (for the API's asynchronous callbacks). */
struct lua_State *script_state(struct script_host *h);
/* Files loaded by the current generation. */
unsigned script_files_loaded(const struct script_host *h);

int script_has_namespace(struct script_host *h, const char *nsp, size_t len);
/* Runs the plugins' on_authenticate over claims (a table at claims_idx) and
 * auth (at auth) for a socket already connected (a refreshed token): 0 when
 * all let them through, 1 when one refused or failed (its code and message
 * are left on the stack top). The user a plugin names is not used. */
int script_recheck_claims(struct script_host *h, struct sio_socket *s, int claims_idx, int auth);

/* Authenticates a CONNECT (json: its auth object): the token with a JWT
 * key, else the namespace's authenticate(conn, auth); on SCRIPT_OK the
 * socket has its user. On SCRIPT_REFUSE, refusal holds the CONNECT_ERROR
 * data. */
enum script_result script_authenticate(struct script_host *h, struct sio_socket *s, const char *json,
                                       size_t len, struct sbuf *refusal);
/* Calls the function below nargs arguments on the Lua stack, protected and
 * on the instruction budget; 0 with nres results, or -1 (logged as what). */
int script_call(struct script_host *h, int nargs, int nres, const char *what);
/* Work the server does for a script inside a call, bounded by the input's
 * size (decoding an upload), is the server's, not the script's: its CPU
 * time between begin and end is not counted against --lua-cpu-ms. */
void script_cpu_exempt_begin(struct script_host *h);
void script_cpu_exempt_end(struct script_host *h);
/* Sends `error` {code, message, event} to s from the server itself. */
void script_send_error(struct script_host *h, struct sio_socket *s, const char *event, const char *code,
                       const char *message);
void script_on_connected(struct script_host *h, struct sio_socket *s);
enum script_result script_on_event(struct script_host *h, struct sio_socket *s, int64_t ack_id,
                                   const char *json, size_t len, unsigned n_att,
                                   const void *const *att, const size_t *att_len);
enum script_result script_on_ack(struct script_host *h, struct sio_socket *s, int64_t ack_id,
                                 const char *json, size_t len, unsigned n_att,
                                 const void *const *att, const size_t *att_len);
void script_on_disconnect(struct script_host *h, struct sio_socket *s, const char *reason);
/* The socket is going away: its Lua handle becomes closed. */
void script_release_socket(struct script_host *h, struct sio_socket *s);

#endif
