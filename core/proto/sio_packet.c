#include "sio_packet.h"

#include <inttypes.h>
#include <string.h>

int sio_packet_decode(const char *p, size_t len, struct sio_packet *out) {
    const char *end = p + len;
    if (len == 0 || *p < '0' || *p > '6') return -1;
    out->type = (enum sio_type)(*p++ - '0');
    out->attachments = 0;
    out->ack_id = -1;

    if (out->type == SIO_BINARY_EVENT || out->type == SIO_BINARY_ACK) {
        const char *s = p;
        unsigned n = 0;
        while (p < end && *p >= '0' && *p <= '9' && p - s < 3) n = n * 10 + (unsigned)(*p++ - '0');
        if (p == s || p >= end || *p != '-' || n > SIO_MAX_ATTACHMENTS) return -1;
        out->attachments = n;
        p++;
    }

    if (p < end && *p == '/') {
        const char *s = p;
        const char *comma = memchr(p, ',', (size_t)(end - p));
        p = comma ? comma : end;
        if ((size_t)(p - s) > SIO_MAX_NSP_BYTES) return -1;
        out->nsp = (struct slice){s, (size_t)(p - s)};
        if (comma) p++;
    } else {
        out->nsp = (struct slice){"/", 1};
    }

    if (p < end && *p >= '0' && *p <= '9') {
        int64_t id = 0;
        const char *s = p;
        while (p < end && *p >= '0' && *p <= '9') {
            if (p - s >= 15) return -1; /* ids stay exact in a JSON number */
            id = id * 10 + (*p++ - '0');
        }
        out->ack_id = id;
    }
    out->json = (struct slice){p, (size_t)(end - p)};

    switch (out->type) {
    case SIO_CONNECT:
    case SIO_DISCONNECT:
    case SIO_CONNECT_ERROR:
        if (out->ack_id >= 0) return -1;
        break;
    case SIO_ACK:
    case SIO_BINARY_ACK:
        if (out->ack_id < 0) return -1;
        break;
    default:
        break;
    }
    if (out->type == SIO_DISCONNECT && out->json.len) return -1;
    return 0;
}

int sio_packet_encode_head(struct sbuf *out, enum sio_type type, unsigned attachments,
                           struct slice nsp, int64_t ack_id) {
    if (sbuf_putc(out, (char)('0' + type)) != 0) return -1;
    if ((type == SIO_BINARY_EVENT || type == SIO_BINARY_ACK) && sbuf_printf(out, "%u-", attachments))
        return -1;
    if (!(nsp.len == 1 && nsp.p[0] == '/')) {
        if (sbuf_append(out, nsp.p, nsp.len) || sbuf_putc(out, ',')) return -1;
    }
    if (ack_id >= 0 && sbuf_printf(out, "%" PRId64, ack_id)) return -1;
    return 0;
}

int sio_is_reserved_event(const char *name, size_t len) {
    static const char *const reserved[] = {"connect", "connect_error", "disconnect",
                                           "disconnecting", "newListener", "removeListener"};
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
        if (strlen(reserved[i]) == len && memcmp(reserved[i], name, len) == 0) return 1;
    return 0;
}
