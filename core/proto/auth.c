#include "auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define MS_PER_S 1000u

/* Reads a whole small file; trailing newlines are not part of a key. */
static char *read_file(const char *path, size_t *len, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(65537);
    size_t n = buf ? fread(buf, 1, 65536, f) : 0;
    int more = fgetc(f) != EOF;
    fclose(f);
    if (!buf || more) {
        free(buf);
        snprintf(err, errlen, "%s is larger than 64 KiB", path);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static size_t trim_newlines(const char *s, size_t n) {
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) n--;
    return n;
}

int auth_init(struct auth *a, const struct config *cfg, char *err, size_t errlen) {
    memset(a, 0, sizeof *a);
    a->policy.issuer = cfg->jwt_issuer[0] ? cfg->jwt_issuer : NULL;
    a->policy.audience = cfg->jwt_audience[0] ? cfg->jwt_audience : NULL;
    a->policy.leeway_s = cfg->jwt_leeway_s;
    const char *env_secret = getenv("SPACE_JWT_SECRET");
    int n_keys = (cfg->jwt_secret_file[0] != 0) + (env_secret && *env_secret) + (cfg->jwt_public_key[0] != 0);
    if (n_keys > 1) {
        snprintf(err, errlen, "configure one JWT key: --jwt-secret-file, SPACE_JWT_SECRET or --jwt-public-key");
        return -1;
    }
    size_t len;
    if (cfg->jwt_secret_file[0] || (env_secret && *env_secret)) {
        char *secret = cfg->jwt_secret_file[0] ? read_file(cfg->jwt_secret_file, &len, err, errlen)
                                               : strdup(env_secret);
        if (!secret) return -1;
        len = trim_newlines(secret, cfg->jwt_secret_file[0] ? len : strlen(secret));
        if (len < 32) {
            snprintf(err, errlen, "the JWT secret has %zu bytes; HS256 wants at least 32", len);
            free(secret);
            return -1;
        }
        a->key = jwt_key_hmac(secret, len);
        OPENSSL_cleanse(secret, len);
        free(secret);
    } else if (cfg->jwt_public_key[0]) {
        char *pem = read_file(cfg->jwt_public_key, &len, err, errlen);
        if (!pem) return -1;
        char why[256];
        a->key = jwt_key_pem(pem, len, why, sizeof why);
        free(pem);
        if (!a->key) {
            snprintf(err, errlen, "%s: %s", cfg->jwt_public_key, why);
            return -1;
        }
    }
    const char *env_admin = getenv("SPACE_ADMIN_TOKEN");
    char *admin = NULL;
    if (cfg->admin_token_file[0]) admin = read_file(cfg->admin_token_file, &len, err, errlen);
    else if (env_admin && *env_admin) admin = strdup(env_admin), len = strlen(env_admin);
    if (cfg->admin_token_file[0] && !admin) return -1;
    if (admin) {
        len = trim_newlines(admin, len);
        if (len < 16) {
            snprintf(err, errlen, "the admin token has %zu bytes; use at least 16", len);
            free(admin);
            return -1;
        }
        admin[len] = 0;
        a->admin_token = admin;
        a->admin_token_len = len;
    }
    return 0;
}

void auth_free(struct auth *a) {
    jwt_key_free(a->key);
    if (a->admin_token) OPENSSL_cleanse(a->admin_token, a->admin_token_len);
    free(a->admin_token);
    memset(a, 0, sizeof *a);
}

enum jwt_result auth_verify_token(const struct auth *a, const char *token, size_t len, int64_t now_s,
                                  struct auth_token *out) {
    memset(out, 0, sizeof *out);
    out->buf = malloc(JWT_MAX_TOKEN_BYTES);
    enum jwt_result r = out->buf ? jwt_verify(a->key, &a->policy, token, len, now_s, &out->claims, out->buf,
                                              JWT_MAX_TOKEN_BYTES)
                                 : JWT_MALFORMED;
    if (r != JWT_OK) {
        auth_token_free(out);
        return r;
    }
    /* An exp too far off to count in ms (jwt takes any int64) is as good as
     * none: multiplied, it would wrap to a time long past. */
    int64_t notice_s = out->claims.exp + a->policy.leeway_s;
    if (out->claims.exp && notice_s <= (int64_t)(UINT64_MAX / MS_PER_S))
        out->notice_ms = (uint64_t)notice_s * MS_PER_S;
    return JWT_OK;
}

void auth_token_free(struct auth_token *t) {
    free(t->buf);
    t->buf = NULL;
}

static int bearer(const struct http_request *req, struct slice *token) {
    const struct slice *h = http_header_get(req, "Authorization");
    if (!h || h->len < 7 || !slice_eq_nocase((struct slice){h->p, 7}, "Bearer ")) return 0;
    *token = (struct slice){h->p + 7, h->len - 7};
    while (token->len && token->p[0] == ' ') token->p++, token->len--;
    return token->len > 0;
}

char *auth_token_from_request(const struct http_request *req) {
    struct slice t;
    if (bearer(req, &t)) return strndup(t.p, t.len < JWT_MAX_TOKEN_BYTES + 1 ? t.len : JWT_MAX_TOKEN_BYTES + 1);
    if (!http_query_get(req->query, "token", &t) || t.len == 0) return NULL;
    size_t cap = t.len < JWT_MAX_TOKEN_BYTES + 1 ? t.len : JWT_MAX_TOKEN_BYTES + 1;
    char *out = malloc(cap + 1);
    long n = out ? http_percent_decode((struct slice){t.p, cap}, out, cap) : -1;
    if (n < 0) {
        free(out);
        return strdup("!"); /* present but undecodable: verification refuses it */
    }
    out[n] = 0;
    return out;
}

int auth_admin_ok(const struct auth *a, const struct http_request *req) {
    struct slice t;
    if (!a->admin_token || !bearer(req, &t) || t.len != a->admin_token_len) return 0;
    return CRYPTO_memcmp(t.p, a->admin_token, t.len) == 0;
}
