/* redis_wire: the messages of @socket.io/redis-adapter 8.x (classic pub/sub)
 * and @socket.io/redis-emitter 5.x, both ways (socketio-wire.md §4.1-4.4).
 * Pure: msgpack-c does the msgpack, no libuv, no Lua, no hiredis.
 *
 * A Socket.IO event is held as the server holds it elsewhere: JSON text of
 * the data (the array [event, ...args]) whose binary values are placeholders
 * {"_placeholder":true,"num":N}, plus the attachments. The encoder writes
 * msgpack as notepack.io 3.x does (smallest int forms, float64 for the rest,
 * keys in insertion order, placeholders as bin); the decoder reads whatever
 * a notepack 2.x/3.x peer may send and gives JSON that JSON.parse reads back
 * to the same values. Not kept: the order JavaScript gives integer-like keys
 * (JSON object keys are written in the order they come).
 *
 * A placeholder is an object with exactly the members "_placeholder": true
 * and "num": a whole number. A peer's message whose data holds binary values
 * and also a map that reads as a placeholder is refused: its JSON form would
 * be ambiguous (Node's own parser would fail on it when sending). */
#ifndef SPACE_REDIS_WIRE_H
#define SPACE_REDIS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "sbuf.h"

/* Every decoder refuses a message bigger than RW_MAX_MESSAGE, holding more
 * than RW_MAX_ITEMS values (msgpack-c builds a 24-byte object for each), or
 * whose JSON text would pass RW_MAX_JSON (a placeholder takes 29 bytes for
 * an empty bin's 2). The server's --max-payload defaults to 16 MiB. */
#define RW_MAX_MESSAGE ((size_t)64 << 20)
#define RW_MAX_ITEMS ((size_t)8 << 20)
#define RW_MAX_JSON ((size_t)256 << 20)
/* Containers (arrays, maps, empty or not) nested, counted from the
 * message's root: msgpack-c's C unpacker refuses more (its
 * MSGPACK_EMBED_STACK_SIZE), so the encoder refuses to write more too. The
 * root and the packet map take two of them: an event's data nests 30 deep. */
#define RW_MAX_DEPTH 32

#define RW_FLAG_VOLATILE 1u
#define RW_FLAG_COMPRESS 2u
#define RW_FLAG_LOCAL 4u
#define RW_FLAG_BROADCAST 8u

/* A broadcast [uid, packet, opts] (msgpack), or a BROADCAST request's packet
 * and opts. */
struct rw_broadcast {
    struct slice uid, nsp;             /* nsp: "/" when the packet has none (the encoder writes "/" for "") */
    int type;                          /* 2 EVENT (BINARY_EVENT 5 is written and read as 2, 6 as 3) */
    int64_t ack_id;                    /* packet.id, -1 when absent */
    const char *json;                  /* packet.data as JSON text, attachments as placeholders */
    size_t json_len;
    size_t n_bin;
    const void *const *bin;
    const size_t *bin_len;
    size_t n_rooms, n_except;
    const struct slice *rooms, *except;
    unsigned flags;                    /* RW_FLAG_* */
    uint64_t timeout_ms;               /* flags.timeout, 0: none */
};

/* What a decoder built: every pointer a decoded struct holds points in here
 * (the decoder copies the input first), so the input may go once it
 * returns. Zero it (or let a decoder do it), free it with rw_decoded_free. */
struct rw_chunk;
struct rw_decoded {
    struct rw_chunk *chunks; /* an arena: blocks that never move */
    const void **bin;        /* growable while decoding */
    size_t *bin_len;
    size_t n_bin, cap_bin;
    int literal_placeholder; /* a map that reads as a placeholder came */
    const char *raw;         /* the copy of a msgpack input */
    size_t raw_len;
};
void rw_decoded_free(struct rw_decoded *d);

/* Appends the msgpack of b. 0, or -1 on OOM, JSON that is not valid (or a
 * placeholder num >= n_bin), or nesting over RW_MAX_DEPTH. Placeholders
 * become bin values only when b->n_bin > 0. Numbers: a whole number in
 * [-2^63, 2^64) as the smallest int, anything else float64 (notepack.io
 * writes whole numbers past that range as wrapped, wrong int64s; checked
 * against notepack.io 3.0.1, all other forms byte for byte). */
int rw_encode_broadcast(struct sbuf *out, const struct rw_broadcast *b);
/* Decodes a broadcast into *b (d is reset first). 0, or -1 when it is
 * malformed, over the limits, or out of memory (d is then freed). */
int rw_decode_broadcast(const void *p, size_t n, struct rw_broadcast *b, struct rw_decoded *d);

/* Channel names (prefix: the adapter's "key", default "socket.io"):
 *   RW_CH_BROADCAST  "<prefix>#<nsp>#", or "<prefix>#<nsp>#<room>#" when room_or_uid is not empty
 *   RW_CH_PATTERN    "<prefix>#<nsp>#*" (PSUBSCRIBE; like Node, nsp is not glob-escaped)
 *   RW_CH_REQUEST    "<prefix>-request#<nsp>#"
 *   RW_CH_RESPONSE   "<prefix>-response#<nsp>#", or "...#<uid>#" when room_or_uid is not empty */
enum rw_channel_kind { RW_CH_BROADCAST, RW_CH_PATTERN, RW_CH_REQUEST, RW_CH_RESPONSE };
int rw_channel(struct sbuf *out, const char *prefix, enum rw_channel_kind kind, struct slice nsp,
               struct slice room_or_uid);
/* The room of a broadcast channel (as Node reads it): channel must start
 * with "<prefix>#<nsp>#"; *room gets what lies between that and the last
 * byte (empty: no room). 0, or -1 when the channel is another one. */
int rw_channel_room(struct slice channel, const char *prefix, struct slice nsp, struct slice *room);

/* Request types (§4.3). */
enum rw_request_type {
    RW_REQ_SOCKETS = 0, RW_REQ_ALL_ROOMS = 1, RW_REQ_REMOTE_JOIN = 2, RW_REQ_REMOTE_LEAVE = 3,
    RW_REQ_REMOTE_DISCONNECT = 4, RW_REQ_REMOTE_FETCH = 5, RW_REQ_SERVER_SIDE_EMIT = 6,
    RW_REQ_BROADCAST = 7, RW_REQ_BROADCAST_CLIENT_COUNT = 8, RW_REQ_BROADCAST_ACK = 9,
};

/* A request on "<prefix>-request#<nsp>#": JSON, or msgpack (BROADCAST,
 * type 7) when the first byte is not '{'. Absent fields are empty / 0 /
 * NULL; has_* says which optional ones came. The responses a peer sends on
 * "<prefix>-response#..." decode the same way (type 8's clientCount, type
 * 9's packet and type 6's data in data_json; the others have no type). */
struct rw_request {
    int type;
    struct slice uid, request_id;   /* has_request_id: a requestId came (an answer is expected) */
    int has_uid, has_request_id;
    /* opts {rooms, except, flags} (join/leave/disconnect/fetch; BROADCAST's are in packet) */
    size_t n_opts_rooms, n_opts_except;
    const struct slice *opts_rooms, *opts_except;
    unsigned opts_flags;
    uint64_t opts_timeout_ms;
    /* "rooms": the rooms to join or leave (2, 3), the rooms to list (SOCKETS 0) */
    size_t n_rooms;
    const struct slice *rooms;
    int has_rooms;
    int close;                      /* REMOTE_DISCONNECT's close: 1 true, 0 false or absent */
    const char *data_json;          /* SERVER_SIDE_EMIT's data array as JSON text (NULL when absent); in a
                                       response: type 6's data, type 9's packet (the ack argument) */
    size_t data_len;
    uint64_t client_count;          /* a type 8 response's clientCount */
    struct slice sid, room;         /* the legacy per-socket forms {type, requestId, sid, room|close} */
    int has_sid;
    struct rw_broadcast packet;     /* BROADCAST (7): uid, packet and opts; bins of a msgpack data too */
};
/* 0, or -1 when it is malformed (a missing or non-integer type included),
 * over the limits, or out of memory (d is then freed). */
int rw_decode_request(const void *p, size_t n, struct rw_request *r, struct rw_decoded *d);

/* What a fetchSockets answer says of one socket. Empty JSON fields are
 * written as {} ; time as JavaScript's Date.toString() gives it. */
struct rw_socket_info {
    struct slice id;
    struct slice time, address, url;
    int64_t issued;                 /* ms since the epoch */
    int secure;
    const char *headers_json, *query_json, *auth_json; /* JSON objects, or NULL */
    size_t headers_len, query_len, auth_len;
    size_t n_rooms;
    const struct slice *rooms;
    const char *data_json;          /* socket.data as JSON; NULL: {} */
    size_t data_len;
};

/* Responses, as the Node adapter writes them (the JSON ones byte for byte).
 * Each appends to out and returns 0, or -1 on OOM or JSON text that is not
 * valid. */
int rw_encode_all_rooms_response(struct sbuf *out, struct slice request_id, const struct slice *rooms, size_t n);
int rw_encode_sockets_response(struct sbuf *out, struct slice request_id, const struct slice *ids, size_t n);
int rw_encode_fetch_sockets_response(struct sbuf *out, struct slice request_id, const struct rw_socket_info *s,
                                     size_t n);
/* {"type":6,"requestId":...,"data":<data_json>} (data: the first ack argument; NULL: null) */
int rw_encode_server_side_emit_response(struct sbuf *out, struct slice request_id, const char *data_json,
                                        size_t len);
/* {"type":8,"requestId":...,"clientCount":N} */
int rw_encode_client_count_response(struct sbuf *out, struct slice request_id, uint64_t count);
/* msgpack {type:9, requestId, packet:<json>} (json: the first ack argument;
 * NULL: null). Placeholders become bin values when n_bin > 0. */
int rw_encode_broadcast_ack(struct sbuf *out, struct slice request_id, const char *json, size_t len);
int rw_encode_broadcast_ack_bin(struct sbuf *out, struct slice request_id, const char *json, size_t len,
                                size_t n_bin, const void *const *bin, const size_t *bin_len);
/* {"requestId":...} (the legacy per-socket join/leave/disconnect) */
int rw_encode_simple_response(struct sbuf *out, struct slice request_id);

/* Writes the shortest text JSON.parse reads back as d ("null" when it is
 * not finite), NUL-terminated; returns its length. buf needs 32 bytes. */
size_t rw_format_double(char *buf, double d);

#endif
