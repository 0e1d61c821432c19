/* auth: who a client is. With a JWT key configured, every connection must
 * bring a valid token (CONNECT auth {"token"}, else the handshake's
 * Authorization: Bearer, else the token query parameter); without one the
 * server runs in development mode (the scripts name users). Also holds the
 * admin API token. Keys are read once at start. */
#ifndef SPACE_AUTH_H
#define SPACE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "jwt.h"

struct config;

struct auth {
    struct jwt_key *key;       /* NULL: development mode */
    struct jwt_policy policy;
    char *admin_token;         /* NULL: admin API for loopback peers only */
    size_t admin_token_len;
};

/* Reads the keys the config names. 0, or -1 with the reason in err. */
int auth_init(struct auth *a, const struct config *cfg, char *err, size_t errlen);
void auth_free(struct auth *a);

/* A client's token that verified (auth_verify_token). */
struct auth_token {
    struct jwt_claims claims; /* sub, exp and the claims JSON (its text in buf) */
    uint64_t notice_ms;       /* when the client is told it expired, ms since the epoch: the
                                 leeway that let it in also delays the notice; 0 without exp
                                 (or one too far off to count in ms) */
    char *buf;                /* owned: holds the claims JSON until auth_token_free */
};

/* Verifies a client's token with a's key (which must be set) and policy at
 * now_s (seconds since the epoch). On JWT_OK out holds the claims; free it
 * with auth_token_free. Else out owns nothing (JWT_MALFORMED also when the
 * claims buffer cannot be allocated). */
enum jwt_result auth_verify_token(const struct auth *a, const char *token, size_t len, int64_t now_s,
                                  struct auth_token *out);
void auth_token_free(struct auth_token *t);

/* The token a handshake request carries (Authorization: Bearer, else the
 * token query parameter), percent-decoded, malloc'd; NULL when none. */
char *auth_token_from_request(const struct http_request *req);

/* 1 when the request's Authorization: Bearer equals the admin token
 * (constant-time). */
int auth_admin_ok(const struct auth *a, const struct http_request *req);

#endif
