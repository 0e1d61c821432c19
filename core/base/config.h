/* config: every flag of space-server in one table (name, type, default,
 * range, help), read from argv and from SPACE_* environment variables. */
#ifndef SPACE_CONFIG_H
#define SPACE_CONFIG_H

#include <stdint.h>

#define CONFIG_MAX_LIST 16

struct config {
    const char *scripts_dir;   /* --scripts: handlers and rules */
    const char *plugins_dir;   /* --plugins: plugins the scripts may enable */
    const char *data_dir;      /* --data-dir: the history database, and files/ by default */
    const char *files_dir;     /* --files-dir: where sent files are stored (default DATA_DIR/files) */
    int64_t max_partial_bytes; /* --max-partial-bytes: all clients' partly received messages together */
    const char *host;          /* --host: listen address */
    int64_t port;              /* --port */
    int64_t workers;           /* --workers: processes sharing the port (more than 1 needs --redis) */
    int64_t ping_interval_ms;  /* --ping-interval */
    int64_t ping_timeout_ms;   /* --ping-timeout */
    int64_t connect_timeout_ms;/* --connect-timeout: time to join a namespace */
    int64_t http_timeout_ms;   /* --http-timeout: time to finish a request's headers */
    int64_t max_payload;       /* --max-payload: largest message, in bytes */
    int64_t max_output;        /* --max-output: bytes queued to one slow client before it is closed */
    int64_t max_connections;   /* --max-connections: 0 = the open-file limit less a reserve (admit.c) */
    int64_t lua_memory_mb;     /* --lua-memory: cap of the Lua state */
    int64_t lua_budget;        /* --lua-budget: VM instructions per handler call */
    int64_t lua_cpu_ms;        /* --lua-cpu-ms: CPU time per handler call */
    const char *log_level;     /* --log-level */
    const char *log_format;    /* --log-format: text or json */
    const char *jwt_secret_file;   /* --jwt-secret-file: HMAC key (SPACE_JWT_SECRET: the key itself) */
    const char *jwt_public_key;    /* --jwt-public-key: PEM for RS256/ES256 */
    const char *jwt_issuer;        /* --jwt-issuer */
    const char *jwt_audience;      /* --jwt-audience */
    int64_t jwt_leeway_s;          /* --jwt-leeway: clock skew allowed, seconds */
    int64_t token_grace_ms;        /* --token-grace: time to refresh an expired token */
    const char *admin_token_file;  /* --admin-token-file (SPACE_ADMIN_TOKEN: the token itself) */
    const char *static_dir;        /* --static: a folder served at "/" ("" = none) */
    const char *redis_url;         /* --redis: the cluster's Redis ("" = one process, no cluster) */
    int64_t cluster_timeout_ms;    /* --cluster-timeout: silence after which a node is dropped */
    int64_t recovery_window_ms;    /* --recovery-window: a dropped connection is kept this long (0: off) */
    char static_root[4096];        /* its real path, resolved by config_load */
    char files_default[4096];      /* DATA_DIR/files, when --files-dir is not given */
    const char *cors_origins[CONFIG_MAX_LIST]; /* --cors-origin, repeatable; "*" = any */
    int n_cors_origins;
    int cors_from_env;         /* the list came from SPACE_CORS_ORIGIN; a flag replaces it */
    char cors_env[1024];       /* SPACE_CORS_ORIGIN, split in place at its commas */
};

enum config_result { CONFIG_OK, CONFIG_EXIT_OK, CONFIG_USAGE_ERROR };

/* Fills cfg from defaults, then the environment, then argv (the flag wins).
 * On CONFIG_USAGE_ERROR one line saying why was printed to stderr; on
 * CONFIG_EXIT_OK --help or --version was printed. */
enum config_result config_load(struct config *cfg, int argc, char **argv);

#endif
