#include "wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sbuf.h"
#include "ws_codec.h"

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t wire_base64_encode(char *out, const void *in, size_t len) {
    const uint8_t *p = in;
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = B64[(v >> 6) & 63];
        out[o++] = B64[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = i + 1 < len ? B64[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    return o;
}

/* Decoding table: the value of each base64 character, -1 for the rest. */
static const signed char B64_VALUE[256] = {
    ['A'] = 0,  ['B'] = 1,  ['C'] = 2,  ['D'] = 3,  ['E'] = 4,  ['F'] = 5,  ['G'] = 6,  ['H'] = 7,
    ['I'] = 8,  ['J'] = 9,  ['K'] = 10, ['L'] = 11, ['M'] = 12, ['N'] = 13, ['O'] = 14, ['P'] = 15,
    ['Q'] = 16, ['R'] = 17, ['S'] = 18, ['T'] = 19, ['U'] = 20, ['V'] = 21, ['W'] = 22, ['X'] = 23,
    ['Y'] = 24, ['Z'] = 25, ['a'] = 26, ['b'] = 27, ['c'] = 28, ['d'] = 29, ['e'] = 30, ['f'] = 31,
    ['g'] = 32, ['h'] = 33, ['i'] = 34, ['j'] = 35, ['k'] = 36, ['l'] = 37, ['m'] = 38, ['n'] = 39,
    ['o'] = 40, ['p'] = 41, ['q'] = 42, ['r'] = 43, ['s'] = 44, ['t'] = 45, ['u'] = 46, ['v'] = 47,
    ['w'] = 48, ['x'] = 49, ['y'] = 50, ['z'] = 51, ['0'] = 52, ['1'] = 53, ['2'] = 54, ['3'] = 55,
    ['4'] = 56, ['5'] = 57, ['6'] = 58, ['7'] = 59, ['8'] = 60, ['9'] = 61, ['+'] = 62, ['/'] = 63,
};
/* Entries not listed are 0, which is also 'A': valid characters are told
 * apart by this second table. */
int wire_base64_value(char c) {
    unsigned char u = (unsigned char)c;
    if (B64_VALUE[u] == 0 && u != 'A') return -1;
    return B64_VALUE[u];
}

long wire_base64_decode(void *out, const char *in, size_t len) {
    uint8_t *o = out;
    if (len % 4) return -1;
    size_t n = 0, i = 0;
    /* Fast path: whole groups without padding. */
    for (; i + 4 < len; i += 4) {
        int a = wire_base64_value(in[i]), b = wire_base64_value(in[i + 1]);
        int c = wire_base64_value(in[i + 2]), d = wire_base64_value(in[i + 3]);
        if ((a | b | c | d) < 0) return -1;
        uint32_t x = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        o[n++] = (uint8_t)(x >> 16);
        o[n++] = (uint8_t)(x >> 8);
        o[n++] = (uint8_t)x;
    }
    for (; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            if (in[i + k] == '=' && i + 4 == len && k >= 2) {
                v[k] = 0;
                pad++;
            } else {
                if (pad) return -1; /* data after padding */
                v[k] = wire_base64_value(in[i + k]);
                if (v[k] < 0) return -1;
            }
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        o[n++] = (uint8_t)(x >> 16);
        if (pad < 2) o[n++] = (uint8_t)(x >> 8);
        if (pad < 1) o[n++] = (uint8_t)x;
    }
    return (long)n;
}

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
        s.len += wire_base64_encode(s.p + s.len, p->bin[i], p->bin_len[i]);
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
