/* sio_packet: the pure Socket.IO v5 packet codec (the text inside an
 * Engine.IO message):
 *   type [attachments "-"] [nsp ","] [ack id] [json]
 * The JSON part is returned as a slice; its shape is checked by whoever
 * decodes it (sio_packet_check_shape says what each type allows). */
#ifndef SPACE_SIO_PACKET_H
#define SPACE_SIO_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "sbuf.h"

#define SIO_MAX_ATTACHMENTS 10 /* socket.io-parser >= 4.2.6 refuses more */
#define SIO_MAX_NSP_BYTES 256

enum sio_type {
    SIO_CONNECT = 0, SIO_DISCONNECT = 1, SIO_EVENT = 2, SIO_ACK = 3,
    SIO_CONNECT_ERROR = 4, SIO_BINARY_EVENT = 5, SIO_BINARY_ACK = 6,
};

struct sio_packet {
    enum sio_type type;
    unsigned attachments; /* types 5 and 6 only */
    struct slice nsp;     /* "/" when omitted */
    int64_t ack_id;       /* -1 when absent */
    struct slice json;    /* may be empty */
};

/* Decodes the header of one packet. Returns 0, or -1 when it is invalid. */
int sio_packet_decode(const char *p, size_t len, struct sio_packet *out);

/* Appends "type[att-][nsp,][id]" (the JSON follows, appended by the caller). */
int sio_packet_encode_head(struct sbuf *out, enum sio_type type, unsigned attachments,
                           struct slice nsp, int64_t ack_id);

/* 1 when name is reserved by Socket.IO and may never be an event name. */
int sio_is_reserved_event(const char *name, size_t len);

#endif
