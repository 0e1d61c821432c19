/* httpd: the HTTP/1.1 transport of a conn: reads request heads (and bodies
 * with Content-Length), routes them, writes responses, keeps the connection
 * alive between requests, and hands it over on a WebSocket upgrade. */
#ifndef SPACE_HTTPD_H
#define SPACE_HTTPD_H

#include <stddef.h>

#include "conn.h"
#include "http.h"

extern const struct transport httpd_transport;

/* Called for every new connection. */
void httpd_start(struct conn *c);

/* Takes the conn back as HTTP after another transport held it (a parked
 * polling GET) and serves what it received meanwhile. */
void httpd_resume(struct conn *c);

/* Writes a complete response. extra_headers: NULL or "Name: value\r\n"
 * lines. close: 1 to close the conn once it is written. */
void httpd_respond(struct conn *c, int status, const char *content_type, const void *body,
                   size_t len, const char *extra_headers, int close);

#endif
