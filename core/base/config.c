#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "version.h"

enum opt_type { OPT_STRING, OPT_INT, OPT_LIST };

struct option_spec {
    const char *name;   /* flag without the leading "--" */
    enum opt_type type;
    size_t offset;      /* field in struct config */
    const char *def;    /* default, as text */
    int64_t min, max;   /* range, for OPT_INT */
    const char *help;
};

#define F(field) offsetof(struct config, field)
static const struct option_spec options[] = {
    {"scripts", OPT_STRING, F(scripts_dir), "./scripts", 0, 0, "handlers and rules (Lua), reloaded on change"},
    {"plugins", OPT_STRING, F(plugins_dir), "./plugins", 0, 0, "plugins the scripts may enable"},
    {"data-dir", OPT_STRING, F(data_dir), "./data", 0, 0,
     "the history database (history.sqlite3) and, unless --files-dir says otherwise, files/; created if missing"},
    {"files-dir", OPT_STRING, F(files_dir), "", 0, 0, "where sent files are stored (default DATA_DIR/files)"},
    {"host", OPT_STRING, F(host), "0.0.0.0", 0, 0, "address to listen on"},
    {"port", OPT_INT, F(port), "8000", 0, 65535, "port to listen on (0: any free port)"},
    {"workers", OPT_INT, F(workers), "1", 1, 64,
     "processes serving the port together (SO_REUSEPORT); more than 1 needs --redis"},
    {"ping-interval", OPT_INT, F(ping_interval_ms), "25000", 10, 3600000, "Engine.IO pingInterval, ms"},
    {"ping-timeout", OPT_INT, F(ping_timeout_ms), "20000", 10, 3600000, "Engine.IO pingTimeout, ms"},
    {"connect-timeout", OPT_INT, F(connect_timeout_ms), "45000", 10, 3600000,
     "time a client has to join a namespace, ms"},
    {"http-timeout", OPT_INT, F(http_timeout_ms), "10000", 10, 3600000,
     "time a client has to send a request's headers, ms"},
    {"max-payload", OPT_INT, F(max_payload), "16777216", 1024, 1073741824,
     "largest message or polling body, bytes"},
    {"max-partial-bytes", OPT_INT, F(max_partial_bytes), "268435456", 1048576, 68719476736,
     "bytes of partly received messages held for all clients together; more: close 1013"},
    {"max-output", OPT_INT, F(max_output), "67108864", 65536, 1073741824,
     "bytes queued to one client before it is closed as too slow"},
    {"max-connections", OPT_INT, F(max_connections), "0", 0, 100000000,
     "connections served at once; more are refused (0: the open-file limit less a reserve)"},
    {"lua-memory", OPT_INT, F(lua_memory_mb), "256", 8, 65536, "memory cap of the Lua state, MiB"},
    {"lua-budget", OPT_INT, F(lua_budget), "10000000", 10000, 10000000000,
     "VM instructions one handler call may run"},
    {"lua-cpu-ms", OPT_INT, F(lua_cpu_ms), "50", 1, 60000,
     "CPU time one handler call may take, ms (the event loop waits for it; loading scripts is exempt)"},
    {"log-level", OPT_STRING, F(log_level), "info", 0, 0, "debug, info, warn or error"},
    {"log-format", OPT_STRING, F(log_format), "text", 0, 0, "text (one line per event) or json (one object per line)"},
    {"jwt-secret-file", OPT_STRING, F(jwt_secret_file), "", 0, 0,
     "file holding the HS256/384/512 key; turns authentication on (SPACE_JWT_SECRET: the key itself)"},
    {"jwt-public-key", OPT_STRING, F(jwt_public_key), "", 0, 0,
     "PEM public key for RS256/384/512 or ES256; turns authentication on"},
    {"jwt-issuer", OPT_STRING, F(jwt_issuer), "", 0, 0, "required iss claim"},
    {"jwt-audience", OPT_STRING, F(jwt_audience), "", 0, 0, "required aud claim"},
    {"jwt-leeway", OPT_INT, F(jwt_leeway_s), "30", 0, 3600, "clock skew allowed for exp and nbf, seconds"},
    {"token-grace", OPT_INT, F(token_grace_ms), "30000", 0, 3600000,
     "time a client has to send refresh_token once its token expired, ms"},
    {"admin-token-file", OPT_STRING, F(admin_token_file), "", 0, 0,
     "file holding the admin API token (SPACE_ADMIN_TOKEN: the token itself)"},
    {"static", OPT_STRING, F(static_dir), "", 0, 0,
     "a folder served at / (the web page: examples/web); none by default"},
    {"redis", OPT_STRING, F(redis_url), "", 0, 0,
     "join a cluster over Redis, redis://[user:password@]host:port[/db] (socket.io's Redis adapter format)"},
    {"cluster-timeout", OPT_INT, F(cluster_timeout_ms), "30000", 1000, 3600000,
     "a cluster node not heard from for this long is dropped and its users leave their rooms, ms"},
    {"recovery-window", OPT_INT, F(recovery_window_ms), "120000", 0, 86400000,
     "how long a dropped Socket.IO connection can be recovered, ms (0: no recovery)"},
    {"cors-origin", OPT_LIST, F(cors_origins), "", 0, 0,
     "a browser origin allowed besides the server's own (repeatable; * = any)"},
};
#undef F
#define N_OPTIONS (sizeof options / sizeof options[0])

static void print_help(void) {
    printf("Usage: space-server --scripts DIR [options]\n\n"
           "The Space realtime server: Socket.IO v5 / Engine.IO v4 with Lua handlers.\n\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct option_spec *o = &options[i];
        char flag[64];
        snprintf(flag, sizeof flag, "--%s %s", o->name, o->type == OPT_INT ? "N" : "S");
        if (o->type == OPT_LIST || !o->def[0]) { /* no default to show: the help says what none means */
            printf("  %-22s %s\n", flag, o->help);
            continue;
        }
        printf("  %-22s %s (default %s)\n", flag, o->help, o->def);
    }
    printf("  %-22s %s\n  %-22s %s\n\n", "--help", "this text", "--version", "the version");
    printf("Every flag also reads SPACE_<NAME> from the environment (SPACE_PING_INTERVAL...);\n"
           "the flag wins. SPACE_CORS_ORIGIN takes a comma-separated list.\n");
}

/* Stores value into the field of o; prints why and returns -1 when invalid. */
static int set_option(struct config *cfg, const struct option_spec *o, const char *value,
                      const char *source) {
    char *field = (char *)cfg + o->offset;
    if (o->type == OPT_LIST) {
        if (!*value) return 0; /* the empty default */
        const char **list = (const char **)field;
        if (strcmp(source, "flag") != 0) {
            /* From the environment: a comma-separated list. */
            if (strlen(value) >= sizeof cfg->cors_env) {
                fprintf(stderr, "space-server: %s is too long\n", source);
                return -1;
            }
            strcpy(cfg->cors_env, value);
            cfg->cors_from_env = 1;
            for (char *tok = strtok(cfg->cors_env, ","); tok; tok = strtok(NULL, ",")) {
                if (cfg->n_cors_origins == CONFIG_MAX_LIST) goto too_many;
                list[cfg->n_cors_origins++] = tok;
            }
            return 0;
        }
        if (cfg->cors_from_env) cfg->n_cors_origins = cfg->cors_from_env = 0;
        if (cfg->n_cors_origins == CONFIG_MAX_LIST) goto too_many;
        list[cfg->n_cors_origins++] = value;
        return 0;
    too_many:
        fprintf(stderr, "space-server: at most %d values for --%s\n", CONFIG_MAX_LIST, o->name);
        return -1;
    }
    if (o->type == OPT_STRING) {
        *(const char **)field = value;
        return 0;
    }
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno || end == value || *end || !isdigit((unsigned char)value[0]) || v < o->min ||
        v > o->max) {
        fprintf(stderr, "space-server: %s: --%s wants an integer from %lld to %lld, not '%s'\n",
                source, o->name, (long long)o->min, (long long)o->max, value);
        return -1;
    }
    *(int64_t *)field = v;
    return 0;
}

static const struct option_spec *find_option(const char *name, size_t len) {
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strlen(options[i].name) == len && memcmp(options[i].name, name, len) == 0)
            return &options[i];
    return NULL;
}

/* --static: the folder's real path, resolved once, is what every request
 * path must stay under (static.c). */
static int static_resolve_root(struct config *cfg) {
    struct stat st;
    if (!realpath(cfg->static_dir, cfg->static_root) || stat(cfg->static_root, &st) != 0) {
        fprintf(stderr, "space-server: --static %s: %s\n", cfg->static_dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "space-server: --static %s: not a directory\n", cfg->static_dir);
        return -1;
    }
    return 0;
}

enum config_result config_load(struct config *cfg, int argc, char **argv) {
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (set_option(cfg, &options[i], options[i].def, "default") != 0) return CONFIG_USAGE_ERROR;

    for (size_t i = 0; i < N_OPTIONS; i++) {
        char env[64] = "SPACE_";
        size_t n = 6;
        for (const char *p = options[i].name; *p && n < sizeof env - 1; p++)
            env[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        env[n] = 0;
        const char *v = getenv(env);
        if (v && set_option(cfg, &options[i], v, env) != 0) return CONFIG_USAGE_ERROR;
    }

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_help();
            return CONFIG_EXIT_OK;
        }
        if (strcmp(a, "--version") == 0) {
            printf("space-server %s\n", SPACE_VERSION);
            return CONFIG_EXIT_OK;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "space-server: unexpected argument '%s' (see --help)\n", a);
            return CONFIG_USAGE_ERROR;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct option_spec *o = find_option(name, len);
        if (!o) {
            fprintf(stderr, "space-server: unknown flag '%s' (see --help)\n", a);
            return CONFIG_USAGE_ERROR;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value) {
            if (i + 1 >= argc) {
                fprintf(stderr, "space-server: --%s needs a value\n", o->name);
                return CONFIG_USAGE_ERROR;
            }
            value = argv[++i];
        }
        if (set_option(cfg, o, value, "flag") != 0) return CONFIG_USAGE_ERROR;
    }
    if (log_level_parse(cfg->log_level) < 0) {
        fprintf(stderr, "space-server: --log-level wants debug, info, warn or error, not '%s'\n",
                cfg->log_level);
        return CONFIG_USAGE_ERROR;
    }
    if (strcmp(cfg->log_format, "text") != 0 && strcmp(cfg->log_format, "json") != 0) {
        fprintf(stderr, "space-server: --log-format wants text or json, not '%s'\n", cfg->log_format);
        return CONFIG_USAGE_ERROR;
    }
    if (cfg->static_dir[0] && static_resolve_root(cfg) != 0) return CONFIG_USAGE_ERROR;
    if (!cfg->data_dir[0]) {
        fprintf(stderr, "space-server: --data-dir wants a directory\n");
        return CONFIG_USAGE_ERROR;
    }
    if (!cfg->files_dir[0]) { /* the file store lives in the data directory unless told otherwise */
        if ((size_t)snprintf(cfg->files_default, sizeof cfg->files_default, "%s/files", cfg->data_dir) >=
            sizeof cfg->files_default) {
            fprintf(stderr, "space-server: --data-dir is too long\n");
            return CONFIG_USAGE_ERROR;
        }
        cfg->files_dir = cfg->files_default;
    }
    if (cfg->workers > 1 && !cfg->redis_url[0]) {
        /* Workers share rooms and broadcasts through Redis: without it each would be an island. */
        fprintf(stderr, "space-server: --workers %lld needs --redis: the workers coordinate through Redis\n",
                (long long)cfg->workers);
        return CONFIG_USAGE_ERROR;
    }
    return CONFIG_OK;
}
