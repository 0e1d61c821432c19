/* stream_file: sends length bytes of a file as an HTTP response body, in
 * chunks read on libuv's thread pool as far ahead as the client takes them
 * (downloads and static files). */
#ifndef SPACE_STREAM_FILE_H
#define SPACE_STREAM_FILE_H

#include <stdint.h>
#include <uv.h>

#include "conn.h"

/* Streams length bytes of fd from offset from as a response body whose head
 * was sent already. Owns fd (closes it). The connection serves its next
 * request afterwards when keep_alive, else closes. */
void stream_file_body(struct conn *c, uv_file fd, uint64_t from, uint64_t length, int keep_alive);

#endif
