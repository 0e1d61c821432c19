/* admin: the admin API under /api/ (docs/protocol.md §8), JSON in and out.
 * With --admin-token-file every call needs Authorization: Bearer <token>
 * (constant-time compare; 401 without); with none configured, the API
 * answers loopback peers only. */
#ifndef SPACE_ADMIN_H
#define SPACE_ADMIN_H

#include <stddef.h>

#include "conn.h"
#include "http.h"

#define ADMIN_MAX_BODY_BYTES (1024 * 1024)
#define ADMIN_PAGE_DEFAULT 100      /* listings: ?limit= default and most */
#define ADMIN_PAGE_MAX 1000
#define ADMIN_PAGE_MAX_TEXT "1000"
#define ADMIN_ROOM_MAX_BYTES 256    /* room names the API joins users to */
#define ADMIN_ROOM_MAX_TEXT "256"
#define ADMIN_BAN_MAX_SECONDS 31536000 /* a year */
#define ADMIN_BAN_MAX_TEXT "31536000"
#define ADMIN_MAX_USER_SOCKETS 1024 /* connections of one user an action reaches */

/* Answers a request under /api/. Called with body NULL and len the declared
 * Content-Length when that is over ADMIN_MAX_BODY_BYTES, before the body
 * arrives: the answer is then 401/403 or 413, and the conn closes. */
void admin_handle_request(struct conn *c, const struct http_request *req, const char *body, size_t len,
                          int keep_alive);

#endif
