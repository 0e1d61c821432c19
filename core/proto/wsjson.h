/* wsjson: the shape of one message of the plain /ws protocol, a text frame
 * holding one JSON object {"event": NAME, "data": {...}?, "id": ID?}:
 * NAME a non-empty string that Socket.IO does not reserve, data an object,
 * ID a number or a string (JSON-RPC's request id) of at most
 * WSJSON_MAX_ID_BYTES, other members ignored. Pure: slices point into the
 * frame; the data is decoded later, by the Lua host. */
#ifndef SPACE_WSJSON_H
#define SPACE_WSJSON_H

#include <stddef.h>

#include "http.h"

#define WSJSON_MAX_ID_BYTES 64 /* a string id decoded, or a number's text */

struct wsjson_msg {
    struct slice event; /* the "event" string token, quotes included; empty when unreadable */
    struct slice data;  /* the "data" value's text; empty when absent */
    struct slice id;    /* the "id" token (number, or string with quotes); empty when absent or unusable */
};

/* Reads one frame. Returns NULL when it is such a message; else why not
 * (static text for the client's invalid_payload error), with event and id
 * filled as far as they could be read (the answer echoes them). */
const char *wsjson_parse(const char *p, size_t len, struct wsjson_msg *m);

/* Whether the id token is a plain non-negative integer of at most 15
 * digits: then the number itself can stand for it; *value gets it. */
int wsjson_id_is_small_int(struct slice id, long long *value);

#endif
