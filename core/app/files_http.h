/* files_http: downloads of sent files, GET and HEAD /files/<id>/<name>
 * (Range, If-None-Match), streamed from the file store. */
#ifndef SPACE_FILES_HTTP_H
#define SPACE_FILES_HTTP_H

#include "conn.h"
#include "http.h"

/* Serves GET and HEAD /files/<id>/<name>. */
void files_handle_request(struct conn *c, const struct http_request *req, int keep_alive);

#endif
