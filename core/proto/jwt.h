/* jwt: JSON Web Token verification (RFC 7519) with OpenSSL. HS256/384/512
 * with a secret, RS256/384/512 with an RSA public key, ES256 with a P-256
 * public key (raw r||s signatures, converted to DER for OpenSSL). The
 * algorithm must match the configured key's kind: no "none", no HMAC with
 * a public key. No libuv, no Lua. */
#ifndef SPACE_JWT_H
#define SPACE_JWT_H

#include <stddef.h>
#include <stdint.h>

#define JWT_MAX_TOKEN_BYTES 8192
#define JWT_MAX_SUB_BYTES 256

struct jwt_key;

enum jwt_result {
    JWT_OK = 0,
    JWT_MISSING,          /* no token */
    JWT_TOO_LARGE,        /* over JWT_MAX_TOKEN_BYTES */
    JWT_MALFORMED,        /* not three base64url segments of JSON, or claims of the wrong type */
    JWT_BAD_ALG,          /* alg not allowed for the configured key */
    JWT_BAD_SIGNATURE,
    JWT_EXPIRED,
    JWT_NOT_YET_VALID,
    JWT_BAD_ISSUER,
    JWT_BAD_AUDIENCE,
};

struct jwt_policy {
    const char *issuer;   /* required iss, or NULL */
    const char *audience; /* required in aud, or NULL */
    int64_t leeway_s;     /* clock skew allowed for exp and nbf */
};

struct jwt_claims {
    char sub[JWT_MAX_SUB_BYTES + 1];
    int64_t exp;          /* 0 when absent */
    const char *json;     /* the claims object's JSON text (in the caller's buffer) */
    size_t json_len;
};

/* A key from a secret (HMAC) or a PEM public key (RSA or EC P-256). NULL
 * with err set when the PEM is not a usable public key. */
struct jwt_key *jwt_key_hmac(const void *secret, size_t len);
struct jwt_key *jwt_key_pem(const char *pem, size_t len, char *err, size_t errlen);
void jwt_key_free(struct jwt_key *k);
/* "HS*", "RS*" or "ES256": what the key verifies, for the start log line. */
const char *jwt_key_algs(const struct jwt_key *k);

/* Verifies token at time now_s (seconds since the epoch). On JWT_OK, out
 * holds the sub, exp and the claims JSON, decoded into buf (cap bytes). */
enum jwt_result jwt_verify(const struct jwt_key *k, const struct jwt_policy *p, const char *token, size_t len,
                           int64_t now_s, struct jwt_claims *out, char *buf, size_t cap);

/* The error code clients see (docs/protocol.md §2): "invalid_token", ... */
const char *jwt_result_code(enum jwt_result r);

#endif
