/* static: --static DIR, a folder of web files served at "/" (GET and HEAD)
 * for whatever path no other route takes. A directory serves its
 * index.html; Content-Type comes from the extension; ETag (size and mtime)
 * with If-None-Match gives 304. A request can only reach regular files
 * below the folder's real path: "..", ".", hidden names (".git"), encoded
 * separators (%2F, %5C), NUL and symlinks that lead out all answer 404.
 * Bodies stream from libuv's thread pool as /files/ downloads do. */
#ifndef SPACE_STATIC_H
#define SPACE_STATIC_H

#include "conn.h"
#include "http.h"

/* Serves req from cfg->static_root (set: --static was given). */
void static_handle_request(struct conn *c, const struct http_request *req, int keep_alive);

#endif
