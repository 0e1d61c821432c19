/* wire: the bytes one outbound Socket.IO packet takes on each transport.
 * A broadcast is encoded once per form present among its recipients and the
 * same refcounted bytes go to all of them. Pure: no libuv, no Lua.
 *
 *   WIRE_WS     WebSocket frames: text "4<packet>", then one binary frame
 *               per attachment (concatenated in one buf)
 *   WIRE_POLL   polling payload elements: "4<packet>" then "b<base64>" per
 *               attachment, joined by 0x1E (the GET response joins entries
 *               with 0x1E too)
 *   WIRE_PLAIN  the plain /ws protocol: one text frame
 *               {"event":E,"data":D[,"id":ID]} (D: the first argument; ID
 *               plain_id, or else the ack id) */
#ifndef SPACE_WIRE_H
#define SPACE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "http.h"
#include "base64.h"
#include "sio_packet.h"

enum wire_form { WIRE_WS = 0, WIRE_POLL = 1, WIRE_PLAIN = 2, WIRE_FORMS };

struct wire_packet {
    enum sio_type type;    /* SIO_EVENT, SIO_ACK, SIO_CONNECT, ... (binary types are derived) */
    struct slice nsp;
    int64_t ack_id;        /* -1: none */
    const char *json;      /* the data: an array for EVENT and ACK */
    size_t len;
    size_t n_bin;
    const void *const *bin;
    const size_t *bin_len;
    struct slice plain_id; /* WIRE_PLAIN: the request id's JSON text, echoed as it came (empty: ack_id, if any) */
};

/* The packet's bytes in that form; NULL on OOM, or for WIRE_PLAIN when the
 * packet has no plain form (binary attachments, or not an EVENT/ACK). *n_packets
 * (may be NULL) receives how many Engine.IO packets it holds (WIRE_POLL). */
buf *wire_encode(enum wire_form form, const struct wire_packet *p, unsigned *n_packets);

/* A plain Engine.IO packet ("2", "3probe", "6", "1"): as a text frame for
 * WIRE_WS, as text for WIRE_POLL. */
buf *wire_encode_eio(enum wire_form form, const char *packet);


#endif
