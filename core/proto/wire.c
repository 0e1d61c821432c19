#include "wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sbuf.h"
#include "ws_codec.h"

static enum sio_type wire_type(const struct wire_packet *p) {
    if (p->n_bin && p->type == SIO_EVENT) return SIO_BINARY_EVENT;
    if (p->n_bin && p->type == SIO_ACK) return SIO_BINARY_ACK;
    return p->type;
}

/* The Socket.IO packet text, "4" (Engine.IO message) included. */
static int packet_text(struct sbuf *out, const struct wire_packet *p) {
    return sbuf_putc(out, '4') ||
           sio_packet_encode_head(out, wire_type(p), (unsigned)p->n_bin, p->nsp, p->ack_id) ||
           sbuf_append(out, p->json, p->len);
}

static buf *from_sbuf(struct sbuf *s) {
    buf *b = buf_from(s->p, s->len);
    sbuf_free(s);
    return b;
}

static buf *encode_ws(const struct wire_packet *p) {
    char head[64];
    struct sbuf h = sbuf_on_stack(head, sizeof head);
    if (sbuf_putc(&h, '4') ||
        sio_packet_encode_head(&h, wire_type(p), (unsigned)p->n_bin, p->nsp, p->ack_id)) {
        sbuf_free(&h);
        return NULL;
    }
    size_t tlen = h.len + p->len;
    size_t total = ws_frame_header_len(tlen) + tlen;
    for (size_t i = 0; i < p->n_bin; i++) total += ws_frame_header_len(p->bin_len[i]) + p->bin_len[i];
    buf *b = buf_new(total);
    if (!b) {
        sbuf_free(&h);
        return NULL;
    }
    uint8_t *o = b->data;
    o += ws_frame_header_write(o, WS_OP_TEXT, tlen);
    memcpy(o, h.p, h.len);
    o += h.len;
    if (p->len) memcpy(o, p->json, p->len);
    o += p->len;
    for (size_t i = 0; i < p->n_bin; i++) {
        o += ws_frame_header_write(o, WS_OP_BINARY, p->bin_len[i]);
        if (p->bin_len[i]) memcpy(o, p->bin[i], p->bin_len[i]);
        o += p->bin_len[i];
    }
    sbuf_free(&h);
    return b;
}

static buf *encode_poll(const struct wire_packet *p, unsigned *n_packets) {
    struct sbuf s = {0};
    if (packet_text(&s, p)) goto oom;
    for (size_t i = 0; i < p->n_bin; i++) {
        if (sbuf_reserve(&s, 2 + 4 * ((p->bin_len[i] + 2) / 3))) goto oom;
        s.p[s.len++] = 0x1e;
        s.p[s.len++] = 'b';
        s.len += base64_encode(s.p + s.len, p->bin[i], p->bin_len[i]);
    }
    if (n_packets) *n_packets = 1 + (unsigned)p->n_bin;
    return from_sbuf(&s);
oom:
    sbuf_free(&s);
    return NULL;
}

/* Skips one JSON string starting at its opening quote; returns the index
 * after the closing quote, or 0 when there is none. */
static size_t skip_string(const char *s, size_t len, size_t i) {
    for (i++; i < len; i++) {
        if (s[i] == '\\') i++;
        else if (s[i] == '"') return i + 1;
    }
    return 0;
}

/* Skips one JSON value (strings, nesting); returns the index after it. */
static size_t skip_value(const char *s, size_t len, size_t i) {
    int depth = 0;
    for (; i < len; i++) {
        char c = s[i];
        if (c == '"') {
            size_t e = skip_string(s, len, i);
            if (!e) return len;
            i = e - 1;
        } else if (c == '[' || c == '{') {
            depth++;
        } else if (c == ']' || c == '}') {
            if (depth == 0) return i;
            depth--;
        } else if (c == ',' && depth == 0) {
            return i;
        }
    }
    return i;
}

/* From the array text ["event", data, ...]: {"event":"event","data":data,"id":ID}.
 * An ACK's array [data, ...] becomes {"event":"ack","data":data,"id":N}. */
static buf *encode_plain(const struct wire_packet *p) {
    if (p->n_bin || (p->type != SIO_EVENT && p->type != SIO_ACK)) return NULL;
    const char *s = p->json;
    size_t len = p->len, i = 1;
    if (len < 2 || s[0] != '[') return NULL;
    struct sbuf out = {0};
    if (p->type == SIO_EVENT) {
        size_t end = skip_string(s, len, i);
        if (s[i] != '"' || !end) goto oom;
        if (sbuf_append(&out, "{\"event\":", 9) || sbuf_append(&out, s + i, end - i)) goto oom;
        i = end;
        if (i < len && s[i] == ',') i++;
    } else if (sbuf_append(&out, "{\"event\":\"ack\"", 14)) {
        goto oom;
    }
    size_t vend = skip_value(s, len, i);
    if (sbuf_append(&out, ",\"data\":", 8)) goto oom;
    if (vend > i) {
        if (sbuf_append(&out, s + i, vend - i)) goto oom;
    } else if (sbuf_append(&out, "null", 4)) {
        goto oom;
    }
    if (p->plain_id.len) {
        if (sbuf_append(&out, ",\"id\":", 6) || sbuf_append(&out, p->plain_id.p, p->plain_id.len)) goto oom;
    } else if (p->ack_id >= 0 && sbuf_printf(&out, ",\"id\":%" PRId64, p->ack_id)) {
        goto oom;
    }
    if (sbuf_putc(&out, '}')) goto oom;
    size_t hlen = ws_frame_header_len(out.len);
    buf *b = buf_new(hlen + out.len);
    if (b) {
        ws_frame_header_write(b->data, WS_OP_TEXT, out.len);
        memcpy(b->data + hlen, out.p, out.len);
    }
    sbuf_free(&out);
    return b;
oom:
    sbuf_free(&out);
    return NULL;
}

buf *wire_encode(enum wire_form form, const struct wire_packet *p, unsigned *n_packets) {
    if (n_packets) *n_packets = 1;
    switch (form) {
    case WIRE_WS: return encode_ws(p);
    case WIRE_POLL: return encode_poll(p, n_packets);
    case WIRE_PLAIN: return encode_plain(p);
    default: return NULL;
    }
}

buf *wire_encode_eio(enum wire_form form, const char *packet) {
    size_t n = strlen(packet);
    if (form == WIRE_POLL) return buf_from(packet, n);
    buf *b = buf_new(ws_frame_header_len(n) + n);
    if (!b) return NULL;
    size_t h = ws_frame_header_write(b->data, WS_OP_TEXT, n);
    memcpy(b->data + h, packet, n);
    return b;
}
