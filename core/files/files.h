/* files: sent files. Storage is content-addressed (SHA-256: the same bytes
 * are stored once) under --files-dir:
 *   blobs/<2 hex>/<64 hex>   the bytes, written to tmp/, fsynced, renamed
 *   meta/<file id>           "sha256 type size name" for one sent file
 *   tmp/                     partial writes (a crash leaves nothing behind a URL)
 * The file id is server-made, unique, sorts in acceptance order and ends in
 * 64 random bits, so it cannot be guessed from the room or the time.
 * Writing runs on libuv's thread pool; downloads (GET/HEAD /files/<id>/<name>,
 * Range, If-None-Match) stream in chunks as the client takes them. */
#ifndef SPACE_FILES_H
#define SPACE_FILES_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "conn.h"
#include "http.h"

#define FILES_MAX_ID 40

struct server;

struct file_info {
    char id[FILES_MAX_ID];
    char sha256[65];
    char type[128];
    char name[256 + 1];
    size_t size;
};

/* Called on the loop when a store finished: info on success, or NULL with
 * err saying why (logged already). */
typedef void (*files_stored_cb)(void *ud, const struct file_info *info, const char *err);

/* Stores a copy of len bytes as a new file (type and name already checked).
 * Returns 0 (cb will run), or -1 (out of memory; cb will not run). */
int files_store(struct server *srv, const void *data, size_t len, const char *type, const char *name,
                files_stored_cb cb, void *ud);

/* Streams length bytes of fd from offset from as a response body whose head
 * was sent already; reads run on libuv's thread pool, as far ahead as the
 * client takes them. Owns fd (closes it). The connection serves its next
 * request afterwards when keep_alive, else closes. */
void files_stream_body(struct conn *c, uv_file fd, uint64_t from, uint64_t length, int keep_alive);

/* If-None-Match (list): whether it names etag ("*" or a list, W/ ignored). */
int files_etag_matches(struct slice list, const char *etag);

/* Serves GET and HEAD /files/<id>/<name>. */
void files_handle_request(struct conn *c, const struct http_request *req, int keep_alive);

#endif
