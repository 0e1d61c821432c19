/* cors: which browser origins may talk to the server, and the CORS headers
 * they get. Pure: no libuv, no Lua. */
#ifndef SPACE_CORS_H
#define SPACE_CORS_H

#include "http.h"

/* 1 when a request with this Origin header may proceed: no Origin (not a
 * browser), the server's own origin (its authority equals the Host header),
 * or one listed in allowed ("*" allows any). */
int cors_origin_allowed(const struct slice *origin, const struct slice *host,
                        const char *const *allowed, int n_allowed);

#endif
