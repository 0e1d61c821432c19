#include "eio_packet.h"

#include <inttypes.h>
#include <string.h>

int eio_packet_decode(const char *p, size_t len, struct eio_packet *out) {
    if (len == 0) return -1;
    char t = p[0];
    if (t >= '0' && t <= '6') out->type = (enum eio_type)(t - '0');
    else if (t == 'b') out->type = EIO_BASE64;
    else return -1;
    out->data = (struct slice){p + 1, len - 1};
    return 0;
}

int eio_payload_next(const char *payload, size_t len, size_t *pos, struct slice *out) {
    if (*pos > len) return 0;
    const char *start = payload + *pos;
    const char *sep = memchr(start, 0x1e, len - *pos);
    size_t n = sep ? (size_t)(sep - start) : len - *pos;
    *out = (struct slice){start, n};
    *pos += n + 1; /* past the separator; past the end after the last packet */
    return 1;
}

int eio_open_encode(struct sbuf *out, const char *sid, int can_upgrade, int64_t ping_interval_ms,
                    int64_t ping_timeout_ms, int64_t max_payload) {
    return sbuf_printf(out,
                       "0{\"sid\":\"%s\",\"upgrades\":%s,\"pingInterval\":%" PRId64
                       ",\"pingTimeout\":%" PRId64 ",\"maxPayload\":%" PRId64 "}",
                       sid, can_upgrade ? "[\"websocket\"]" : "[]", ping_interval_ms,
                       ping_timeout_ms, max_payload);
}
