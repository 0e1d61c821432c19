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

struct server;
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

/* The token a handshake request carries (Authorization: Bearer, else the
 * token query parameter), percent-decoded, malloc'd; NULL when none. */
char *auth_token_from_request(const struct http_request *req);

/* 1 when the request's Authorization: Bearer equals the admin token
 * (constant-time). */
int auth_admin_ok(const struct auth *a, const struct http_request *req);

#endif
