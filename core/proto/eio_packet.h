/* eio_packet: the pure Engine.IO v4 packet codec (one packet per WebSocket
 * message; the polling payload framing lives with the polling transport). */
#ifndef SPACE_EIO_PACKET_H
#define SPACE_EIO_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "sbuf.h"

enum eio_type {
    EIO_OPEN = 0, EIO_CLOSE = 1, EIO_PING = 2, EIO_PONG = 3,
    EIO_MESSAGE = 4, EIO_UPGRADE = 5, EIO_NOOP = 6,
    EIO_BASE64 = 'b', /* "b<base64>": a binary message sent as text */
};

struct eio_packet {
    enum eio_type type;
    struct slice data; /* the rest after the type character */
};

/* Decodes one text packet. Returns 0, or -1 for a parse error (empty, or an
 * unknown type character). */
int eio_packet_decode(const char *p, size_t len, struct eio_packet *out);

/* Iterates the packets of a polling payload (joined by 0x1E). Returns 1
 * with the next packet in *out and *pos advanced, 0 at the end. An empty
 * payload has one empty packet (which eio_packet_decode refuses). */
int eio_payload_next(const char *payload, size_t len, size_t *pos, struct slice *out);

/* Appends the open packet: 0{"sid","upgrades","pingInterval","pingTimeout","maxPayload"}. */
int eio_open_encode(struct sbuf *out, const char *sid, int can_upgrade, int64_t ping_interval_ms,
                    int64_t ping_timeout_ms, int64_t max_payload);

#endif
