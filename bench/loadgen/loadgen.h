/* loadgen: a load generator for space-server and its peers.
 *
 * One process, one libuv loop. Every client is a real WebSocket client
 * (masked frames, ping/pong, close) speaking either Socket.IO v5 over
 * Engine.IO v4 (reads the open packet, answers pings "2" with "3", sends
 * 40{"name":...}, waits for 40{"sid"...}) or the plain /ws JSON protocol.
 * Each client joins one room; scenarios (main.c) decide who sends what. */
#ifndef LG_LOADGEN_H
#define LG_LOADGEN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "hist.h"

enum proto { PROTO_SIO, PROTO_PLAIN };

#define LG_MAX_SERVERS 16

enum client_state {
    ST_IDLE,        /* not started */
    ST_CONNECTING,  /* TCP connect in flight */
    ST_HTTP,        /* upgrade request sent, waiting for 101 */
    ST_EIO_OPEN,    /* WebSocket up, waiting for the Engine.IO open packet */
    ST_SIO_CONNECT, /* 40 sent, waiting for 40{"sid"} (plain: waiting for "connected") */
    ST_JOINING,     /* join_room sent, waiting for joined_room */
    ST_READY,       /* in its room */
    ST_CLOSED,      /* gone (failed or finished) */
};

struct client {
    uv_tcp_t tcp;                /* first: (struct client *)handle */
    uv_connect_t creq;
    struct lg *lg;
    uint32_t idx;                /* global index, also the user name u<idx> */
    uint32_t room;               /* room index */
    int32_t sender;              /* sender slot in its room, -1 for a pure receiver */
    uint8_t state;               /* enum client_state */
    uint8_t writing;             /* uv_writes in flight */
    uint8_t pending_flush;       /* linked into lg->flush_list */
    uint8_t frag_op;             /* opcode of the message being reassembled */
    uint32_t rng;                /* xorshift state for masks */
    /* input: unparsed tail, and a fragmented message being reassembled */
    char *in;
    uint32_t in_len, in_cap;
    char *frag;
    uint32_t frag_len, frag_cap;
    /* output: bytes not yet handed to the kernel */
    char *out;
    uint32_t out_len, out_cap;
    struct client *next_flush;
    /* sender */
    uint64_t sent, acked;
    /* receiver: the next sequence number expected from each sender of the room */
    uint32_t *next_seq;
    /* uploader (fanout --uploads): alone with the other uploaders in their own room */
    uint8_t uploader, upload_binary, upload_in_flight;
    uint32_t uploads_left;
};

struct counters {
    uint64_t sent;        /* send_message emitted */
    uint64_t acked;       /* message_sent received */
    uint64_t delivered;   /* new_message received */
    uint64_t errors;      /* error events received */
    uint64_t order_bad;   /* new_message out of sequence (gap, duplicate, reorder) */
    uint64_t pings;       /* Engine.IO pings answered */
    uint64_t closed;      /* clients closed by the server or by an error after setup */
    uint64_t uploads_started, uploads_done; /* send_file sent, file_sent received */
};

struct lg {
    uv_loop_t *loop;
    uv_prepare_t flush_hook;
    struct client *clients;
    uint32_t n_clients;
    struct client *flush_list;
    char *recv_buf;
    /* options */
    enum proto proto;
    /* --ports: client i connects to server[i % n_servers], so that the
     * members of one room (and its senders) spread over several nodes */
    struct sockaddr_in server[LG_MAX_SERVERS];
    char host_header[LG_MAX_SERVERS][64];
    uint32_t n_servers;
    uint32_t n_src_addrs;        /* >1: bind client i to 127.0.0.(1 + i % n) */
    uint32_t senders_per_room;
    uint32_t members_per_room;
    uint32_t msg_size;
    /* progress of the set-up */
    uint32_t next_to_start, in_handshake, max_in_handshake;
    uint32_t n_ready, n_failed;
    int starting;                /* inside lg_start_more */
    uint64_t setup_started_ns, setup_done_ns;
    /* measurement */
    int measuring;               /* record latencies */
    int sending;                 /* senders may send */
    uint32_t window;             /* unanswered messages per sender (window mode) */
    uint64_t now_ns;             /* CLOCK_MONOTONIC at the current read */
    struct counters c;
    struct hist lat;             /* latencies during the window */
    struct hist lat_sec;         /* latencies of the last progress second */
    /* uploads (upload.c): the frames every uploader writes, built once */
    char *up_b64, *up_bin;       /* base64: one text frame; binary: the text frame then the binary one */
    size_t up_b64_len, up_bin_len;
    uint32_t upload_bytes, uploads_in_flight;
    uint64_t up_first_ns, up_last_done_ns; /* the first upload's start, the last answer so far */
    struct hist lat_up;          /* latencies of messages sent while an upload was in flight */
    char last_error[256];
    /* called when a sender got an answer (window refill) */
    void (*on_ack)(struct lg *lg, struct client *c);
};

uint64_t lg_now_ns(void);

/* Starts the set-up of clients [next_to_start, n_clients) as far as the
 * handshake concurrency allows; called again as handshakes finish. */
void lg_start_more(struct lg *lg);
/* Emits one send_message from c to its room. */
void lg_send_message(struct lg *lg, struct client *c);
/* Writes one WebSocket frame (FIN set, masked with `mask`) of p[0..n) to o,
 * which has room for n + 14 bytes; returns its length. */
size_t lg_frame(uint8_t *o, int opcode, const char *p, size_t n, uint32_t mask);
/* Writes p[0..n) (whole frames) to c after what c has queued; p must live
 * until the write ends (it is not copied). */
void lg_write_shared(struct client *c, const char *p, size_t n);
/* upload.c: builds the upload frames for `bytes`-byte files sent to room
 * r<room>; 0, or -1 when out of memory. */
int lg_uploads_prepare(struct lg *lg, uint32_t bytes, uint32_t room);
/* Sends c's next send_file (base64 or binary as c->upload_binary says). */
void lg_upload_start(struct lg *lg, struct client *c);
/* c got file_sent: counts it and starts c's next upload, if any. */
void lg_upload_done(struct lg *lg, struct client *c);
/* Closes every client (close frame, then the socket). */
void lg_close_all(struct lg *lg);
void lg_init(struct lg *lg, uv_loop_t *loop);

#endif
