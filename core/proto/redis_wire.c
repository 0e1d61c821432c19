#include "redis_wire.h"

#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"
#include "json_str.h"

#define MAX_SAFE_INT 9007199254740992.0 /* 2^53: JavaScript's integers are exact up to here */

/* ---- the arena a decode result lives in ---- */

struct rw_chunk {
    struct rw_chunk *next;
    max_align_t data[];
};

static void *arena_alloc(struct rw_decoded *d, size_t n) {
    if (n > RW_MAX_JSON) return NULL;
    struct rw_chunk *c = malloc(sizeof *c + (n ? n : 1));
    if (!c) return NULL;
    c->next = d->chunks;
    d->chunks = c;
    return c->data;
}

static char *arena_dup(struct rw_decoded *d, const void *p, size_t n) {
    char *s = arena_alloc(d, n);
    if (s && n) memcpy(s, p, n);
    return s;
}

void rw_decoded_free(struct rw_decoded *d) {
    while (d->chunks) {
        struct rw_chunk *next = d->chunks->next;
        free(d->chunks);
        d->chunks = next;
    }
    free(d->bin);
    free(d->bin_len);
    memset(d, 0, sizeof *d);
}

static int add_bin(struct rw_decoded *d, const void *p, size_t n) {
    if (d->n_bin == d->cap_bin) {
        size_t cap = d->cap_bin ? d->cap_bin * 2 : 4;
        const void **b = realloc(d->bin, cap * sizeof *b);
        if (!b) return -1;
        d->bin = b;
        size_t *l = realloc(d->bin_len, cap * sizeof *l);
        if (!l) return -1;
        d->bin_len = l;
        d->cap_bin = cap;
    }
    d->bin[d->n_bin] = p;
    d->bin_len[d->n_bin++] = n;
    return 0;
}

/* ---- numbers ---- */

size_t rw_format_double(char *buf, double d) {
    if (!isfinite(d)) return (size_t)snprintf(buf, 32, "null");
    if (d == 0) return (size_t)snprintf(buf, 32, signbit(d) ? "-0" : "0");
    /* Integers as JavaScript prints them (no exponent below 1e21). */
    if (d == floor(d) && fabs(d) < 1e21) return (size_t)snprintf(buf, 32, "%.0f", d);
    /* Shortest of 15, 16, 17 digits that reads back the same: any decimal
     * of 15 digits or fewer survives %.15g, so nothing shorter is missed. */
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, 32, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) break;
    }
    return (size_t)n;
}

/* ---- msgpack into an sbuf ---- */

static int sbuf_write_cb(void *data, const char *buf, size_t len) { return sbuf_append(data, buf, len); }

static int pack_str(msgpack_packer *pk, const char *s, size_t n) {
    if (msgpack_pack_str(pk, n)) return -1;
    return msgpack_pack_str_body(pk, s, n);
}

static int pack_slice(msgpack_packer *pk, struct slice s) { return pack_str(pk, s.p ? s.p : "", s.len); }

static int pack_lit(msgpack_packer *pk, const char *s) { return pack_str(pk, s, strlen(s)); }

/* A JavaScript number as notepack writes it: an integer (exact in a double)
 * in the smallest int form, anything else float64. */
static int pack_number(msgpack_packer *pk, double v) {
    if (v == floor(v) && v >= -9223372036854775808.0 && v < 18446744073709551616.0) {
        if (v >= 0) return msgpack_pack_uint64(pk, (uint64_t)v); /* -0 too */
        return msgpack_pack_int64(pk, (int64_t)v);
    }
    return msgpack_pack_double(pk, v);
}

/* ---- JSON text -> msgpack (the text is valid JSON: json_valid) ---- */

struct jenc {
    msgpack_packer pk;
    const char *p;
    size_t len, i;
    size_t n_bin;
    const void *const *bin;
    const size_t *bin_len;
    struct sbuf tmp; /* unescaped strings */
};

static size_t skip_ws(const char *p, size_t len, size_t i) {
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) i++;
    return i;
}

/* The string whose opening quote is at e->i; e->i moves past it. */
static int j_string(struct jenc *e) {
    int esc;
    enum json_str_error err;
    const char *body = e->p + e->i + 1;
    long end = json_str_scan(body, e->len - e->i - 1, &esc, &err, NULL);
    if (end < 0) return -1;
    e->i += (size_t)end + 2;
    if (!esc) return pack_str(&e->pk, body, (size_t)end);
    sbuf_reset(&e->tmp);
    if (sbuf_reserve(&e->tmp, json_str_unescaped_len(body, (size_t)end))) return -1;
    size_t n = json_str_unescape(body, (size_t)end, e->tmp.p);
    return pack_str(&e->pk, e->tmp.p, n);
}

/* 1 when the raw key (escapes not decoded) spells name once decoded. */
static int key_is(struct slice raw, const char *name) {
    size_t n = strlen(name);
    if (!memchr(raw.p, '\\', raw.len)) return raw.len == n && !memcmp(raw.p, name, n);
    char buf[32];
    if (raw.len > 6 * sizeof buf || json_str_unescaped_len(raw.p, raw.len) != n || n >= sizeof buf) return 0;
    json_str_unescape(raw.p, raw.len, buf);
    return !memcmp(buf, name, n);
}

/* The attachment a placeholder names, when the valid JSON object text p is
 * one: exactly the members _placeholder (true) and num (a whole number, 0
 * or more, as JavaScript sees numbers); else -1. The encoder and the
 * decoder judge the same text the same way. */
static long placeholder_num(const char *p, size_t len) {
    size_t pos = 0, n = 0;
    struct json_member m;
    int flag = 0;
    long num = -1;
    while (json_object_next_valid(p, len, &pos, &m) == 1) {
        if (++n > 2) return -1;
        if (key_is(m.key, "_placeholder")) {
            flag = m.type == 't';
        } else if (key_is(m.key, "num") && m.type == 'n') {
            char tmp[400];
            if (m.value.len >= sizeof tmp) return -1;
            memcpy(tmp, m.value.p, m.value.len);
            tmp[m.value.len] = 0;
            double v = strtod(tmp, NULL);
            if (v == floor(v) && v >= 0 && v < 1e9) num = (long)v;
        }
    }
    return n == 2 && flag ? num : -1;
}

/* Counts the members of the object or the elements of the array whose
 * bracket is at i; *placeholder gets the attachment a placeholder object
 * names (or -1 when it is not one). */
static size_t j_count(struct jenc *e, size_t i, long *placeholder) {
    const char *p = e->p;
    size_t len = e->len, n = 0, start = i;
    int obj = p[i] == '{';
    i = skip_ws(p, len, i + 1);
    while (i < len && p[i] != '}' && p[i] != ']') {
        if (obj) {
            i = skip_ws(p, len, json_skip_valid_value(p, len, i)) + 1; /* the key and ':' */
            i = skip_ws(p, len, i);
        }
        n++;
        i = skip_ws(p, len, json_skip_valid_value(p, len, i));
        if (i < len && p[i] == ',') i = skip_ws(p, len, i + 1);
    }
    *placeholder = obj && n == 2 ? placeholder_num(p + start, i + 1 - start) : -1;
    return n;
}

static int j_value(struct jenc *e, int depth) {
    const char *p = e->p;
    e->i = skip_ws(p, e->len, e->i);
    if (e->i >= e->len) return -1;
    char c = p[e->i];
    if (c == '"') return j_string(e);
    if (c == '{' || c == '[') {
        long ph;
        size_t n = j_count(e, e->i, &ph);
        if (c == '{' && ph >= 0 && e->n_bin) {
            if ((size_t)ph >= e->n_bin) return -1;
            e->i = json_skip_valid_value(p, e->len, e->i);
            if (msgpack_pack_bin(&e->pk, e->bin_len[ph])) return -1;
            return msgpack_pack_bin_body(&e->pk, e->bin[ph], e->bin_len[ph]);
        }
        if (depth + 1 > RW_MAX_DEPTH) return -1;
        if ((c == '{' ? msgpack_pack_map(&e->pk, n) : msgpack_pack_array(&e->pk, n))) return -1;
        e->i++;
        for (size_t k = 0; k < n; k++) {
            e->i = skip_ws(p, e->len, e->i);
            if (k) e->i = skip_ws(p, e->len, e->i + 1); /* the ',' */
            if (c == '{') {
                if (j_string(e)) return -1;
                e->i = skip_ws(p, e->len, e->i) + 1; /* the ':' */
            }
            if (j_value(e, depth + 1)) return -1;
        }
        e->i = skip_ws(p, e->len, e->i) + 1; /* the closing bracket */
        return 0;
    }
    if (c == 't') return e->i += 4, msgpack_pack_true(&e->pk);
    if (c == 'f') return e->i += 5, msgpack_pack_false(&e->pk);
    if (c == 'n') return e->i += 4, msgpack_pack_nil(&e->pk);
    size_t end = json_skip_valid_value(p, e->len, e->i);
    char tmp[64], *num = tmp;
    size_t n = end - e->i;
    if (n >= sizeof tmp && !(num = malloc(n + 1))) return -1;
    memcpy(num, p + e->i, n);
    num[n] = 0;
    double v = strtod(num, NULL); /* 1e400 is Infinity, as JSON.parse reads it */
    if (num != tmp) free(num);
    e->i = end;
    return pack_number(&e->pk, v);
}

/* Packs the JSON text (NULL: null); depth: the containers already open. */
static int pack_json(msgpack_packer *pk, const char *json, size_t len, int depth, size_t n_bin,
                     const void *const *bin, const size_t *bin_len) {
    if (!json) return msgpack_pack_nil(pk);
    if (!json_valid(json, len)) return -1;
    struct jenc e = {.pk = *pk, .p = json, .len = len, .n_bin = n_bin, .bin = bin, .bin_len = bin_len};
    int rc = j_value(&e, depth);
    sbuf_free(&e.tmp);
    return rc;
}

/* ---- broadcast ---- */

static int pack_rooms(msgpack_packer *pk, const struct slice *r, size_t n) {
    if (msgpack_pack_array(pk, n)) return -1;
    for (size_t i = 0; i < n; i++)
        if (pack_slice(pk, r[i])) return -1;
    return 0;
}

static const struct {
    unsigned flag;
    const char *name;
} flag_names[] = {
    {RW_FLAG_VOLATILE, "volatile"},
    {RW_FLAG_COMPRESS, "compress"},
    {RW_FLAG_LOCAL, "local"},
    {RW_FLAG_BROADCAST, "broadcast"},
};
#define N_FLAGS (sizeof flag_names / sizeof flag_names[0])

/* {type, data, nsp[, id]} then {rooms, except, flags} (socket.io's order). */
static int pack_packet_opts(msgpack_packer *pk, const struct rw_broadcast *b, int depth) {
    int type = b->type == 5 ? 2 : b->type == 6 ? 3 : b->type;
    struct slice nsp = b->nsp.len ? b->nsp : (struct slice){"/", 1};
    if (msgpack_pack_map(pk, b->ack_id >= 0 ? 4 : 3) || pack_lit(pk, "type") || msgpack_pack_int(pk, type) ||
        pack_lit(pk, "data") ||
        pack_json(pk, b->json, b->json_len, depth + 1, b->n_bin, b->bin, b->bin_len) ||
        pack_lit(pk, "nsp") || pack_slice(pk, nsp))
        return -1;
    if (b->ack_id >= 0 && (pack_lit(pk, "id") || msgpack_pack_int64(pk, b->ack_id))) return -1;
    if (msgpack_pack_map(pk, 3) || pack_lit(pk, "rooms") || pack_rooms(pk, b->rooms, b->n_rooms) ||
        pack_lit(pk, "except") || pack_rooms(pk, b->except, b->n_except) || pack_lit(pk, "flags"))
        return -1;
    size_t n = b->timeout_ms ? 1 : 0;
    for (size_t i = 0; i < N_FLAGS; i++) n += (b->flags & flag_names[i].flag) != 0;
    if (msgpack_pack_map(pk, n)) return -1;
    for (size_t i = 0; i < N_FLAGS; i++)
        if ((b->flags & flag_names[i].flag) && (pack_lit(pk, flag_names[i].name) || msgpack_pack_true(pk)))
            return -1;
    if (b->timeout_ms && (pack_lit(pk, "timeout") || msgpack_pack_uint64(pk, b->timeout_ms))) return -1;
    return 0;
}

int rw_encode_broadcast(struct sbuf *out, const struct rw_broadcast *b) {
    size_t start = out->len;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, sbuf_write_cb);
    if (!b->json || msgpack_pack_array(&pk, 3) || pack_slice(&pk, b->uid) || pack_packet_opts(&pk, b, 1)) {
        out->len = start;
        return -1;
    }
    return 0;
}

int rw_encode_broadcast_ack_bin(struct sbuf *out, struct slice request_id, const char *json, size_t len,
                                size_t n_bin, const void *const *bin, const size_t *bin_len) {
    size_t start = out->len;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, sbuf_write_cb);
    if (msgpack_pack_map(&pk, 3) || pack_lit(&pk, "type") || msgpack_pack_int(&pk, RW_REQ_BROADCAST_ACK) ||
        pack_lit(&pk, "requestId") || pack_slice(&pk, request_id) || pack_lit(&pk, "packet") ||
        pack_json(&pk, json, len, 1, n_bin, bin, bin_len)) {
        out->len = start;
        return -1;
    }
    return 0;
}

int rw_encode_broadcast_ack(struct sbuf *out, struct slice request_id, const char *json, size_t len) {
    return rw_encode_broadcast_ack_bin(out, request_id, json, len, 0, NULL, NULL);
}

/* ---- msgpack -> JSON text ---- */

/* Checks, before msgpack-c allocates anything, that p holds exactly one
 * msgpack value, every length within the bytes, every container's count
 * no more than the bytes left, at most RW_MAX_ITEMS values (so what
 * msgpack-c allocates is bounded) and containers nested at most
 * RW_MAX_DEPTH deep (msgpack-c's own limit). */
static int mp_check(const uint8_t *p, size_t n) {
    uint64_t left[RW_MAX_DEPTH]; /* items still to come in each open container */
    int top = 0;
    size_t i = 0, values = 0;
    do {
        if (i >= n || ++values > RW_MAX_ITEMS) return -1;
        uint8_t c = p[i++];
        uint64_t skip = 0, items = 0;
        size_t hdr = 0;
        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) skip = 0;
        else if (c >= 0xa0 && c <= 0xbf) skip = c & 0x1f;
        else if (c >= 0x90 && c <= 0x9f) items = c & 0x0f;
        else if (c >= 0x80 && c <= 0x8f) items = 2u * (c & 0x0f);
        else {
            switch (c) {
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xca: case 0xce: case 0xd2: skip = 4; break;
            case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xc4: case 0xd9: case 0xc7: hdr = 1; break;
            case 0xc5: case 0xda: case 0xc8: case 0xdc: case 0xde: hdr = 2; break;
            case 0xc6: case 0xdb: case 0xc9: case 0xdd: case 0xdf: hdr = 4; break;
            default: return -1; /* 0xc1, never used */
            }
            if (hdr) {
                if (n - i < hdr) return -1;
                uint64_t v = 0;
                for (size_t k = 0; k < hdr; k++) v = v << 8 | p[i + k];
                i += hdr;
                if (c == 0xdc || c == 0xdd) items = v;
                else if (c == 0xde || c == 0xdf) items = 2 * v;
                else skip = v + (c == 0xc7 || c == 0xc8 || c == 0xc9); /* ext: the type byte */
            }
        }
        if (skip > n - i) return -1;
        i += (size_t)skip;
        if (top > 0) left[top - 1]--;
        if (c == 0xdc || c == 0xdd || c == 0xde || c == 0xdf || (c >= 0x80 && c <= 0x9f)) {
            /* msgpack-c checks its stack before it looks at the count: an
             * empty container takes a level too */
            if (items > n - i || top >= RW_MAX_DEPTH) return -1;
            if (items) left[top++] = items;
        }
        while (top > 0 && left[top - 1] == 0) top--;
    } while (top > 0);
    return i == n ? 0 : -1;
}

struct jdec {
    struct sbuf out;
    struct rw_decoded *d;
};

static int put(struct jdec *j, const char *s) { return sbuf_append(&j->out, s, strlen(s)); }

static int put_double(struct jdec *j, double v) {
    char buf[32];
    return sbuf_append(&j->out, buf, rw_format_double(buf, v));
}

/* A days count since 1970-01-01 → civil date (proleptic Gregorian). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* A Date (ms since the epoch, as JavaScript's Date constructor clips it) as
 * JSON.stringify writes it: its ISO string, or null when it is invalid. */
static int put_date(struct jdec *j, double ms) {
    ms = trunc(ms);
    if (!(fabs(ms) <= 8.64e15)) return put(j, "null");
    int64_t t = (int64_t)ms, days = t / 86400000, rem = t % 86400000;
    if (rem < 0) rem += 86400000, days--;
    int64_t y;
    unsigned mo, da;
    civil_from_days(days, &y, &mo, &da);
    char buf[64];
    int len = y >= 0 && y <= 9999 ? snprintf(buf, sizeof buf, "\"%04" PRId64, y)
                                  : snprintf(buf, sizeof buf, "\"%c%06" PRId64, y < 0 ? '-' : '+', y < 0 ? -y : y);
    len += snprintf(buf + len, sizeof buf - (size_t)len, "-%02u-%02uT%02u:%02u:%02u.%03uZ\"", mo, da,
                    (unsigned)(rem / 3600000), (unsigned)(rem / 60000 % 60), (unsigned)(rem / 1000 % 60),
                    (unsigned)(rem % 1000));
    return sbuf_append(&j->out, buf, (size_t)len);
}

static uint64_t be(const uint8_t *b, int n) {
    uint64_t v = 0;
    for (int k = 0; k < n; k++) v = v << 8 | b[k];
    return v;
}

static int put_bin(struct jdec *j, const void *p, size_t n) {
    if (add_bin(j->d, p, n)) return -1;
    return sbuf_printf(&j->out, "{\"_placeholder\":true,\"num\":%zu}", j->d->n_bin - 1);
}

/* An ext value as notepack.io 3 decodes it. msgpack-c does not say which
 * form carried it, and notepack reads a fixext and an ext of the same size
 * differently, so the header byte is looked at: the byte before the type
 * is the fixext code (0xd4-0xd8) for a fixext, the length's low byte
 * (equal to the size, never 0xd4-0xd8 for sizes 1-16) for an ext. */
static int put_ext(struct jdec *j, const msgpack_object *o) {
    const uint8_t *b = (const uint8_t *)o->via.ext.ptr;
    uint32_t size = o->via.ext.size;
    if (b < (const uint8_t *)j->d->raw + 2 || b + size > (const uint8_t *)j->d->raw + j->d->raw_len) return -1;
    static const uint8_t fix_code[17] = {[1] = 0xd4, [2] = 0xd5, [4] = 0xd6, [8] = 0xd7, [16] = 0xd8};
    int fixext = size <= 16 && fix_code[size] && b[-2] == fix_code[size];
    int8_t type = o->via.ext.type;
    if (type == 0 && fixext && size == 1) return put(j, "null"); /* notepack 2's undefined */
    if (type == 0 && fixext && size == 8)                        /* notepack 2's Date: ms, int64 */
        return put_date(j, (double)(int64_t)be(b, 8));
    if (type == 0 && !fixext) return put_bin(j, b, size);        /* notepack 2's ArrayBuffer */
    if (type == -1 && fixext && size == 4) return put_date(j, (double)be(b, 4) * 1e3);
    if (type == -1 && fixext && size == 8) {
        uint64_t v = be(b, 8);
        return put_date(j, (double)(v & 0x3ffffffffULL) * 1e3 + (double)(v >> 34) / 1e6);
    }
    if (type == -1 && !fixext && b[-3] == 0xc7) {
        if (size != 12) return -1; /* notepack would read 12 bytes whatever the length */
        return put_date(j, (double)(int64_t)be(b + 4, 8) * 1e3 + (double)be(b, 4) / 1e6);
    }
    /* any other: [type, Buffer] */
    if (sbuf_printf(&j->out, "[%d,", type) || put_bin(j, b, size)) return -1;
    return sbuf_putc(&j->out, ']');
}

static int put_int(struct jdec *j, const msgpack_object *o) {
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > (uint64_t)MAX_SAFE_INT) return put_double(j, (double)o->via.u64);
        return sbuf_printf(&j->out, "%" PRIu64, o->via.u64);
    }
    if (o->via.i64 < -(int64_t)MAX_SAFE_INT) return put_double(j, (double)o->via.i64);
    return sbuf_printf(&j->out, "%" PRId64, o->via.i64);
}

static int m_json(struct jdec *j, const msgpack_object *o);

/* A map key as JavaScript turns it into a property name. */
static int m_key(struct jdec *j, const msgpack_object *k) {
    switch (k->type) {
    case MSGPACK_OBJECT_STR: return json_append_string(&j->out, k->via.str.size ? k->via.str.ptr : "", k->via.str.size);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
    case MSGPACK_OBJECT_NIL:
    case MSGPACK_OBJECT_BOOLEAN: {
        size_t at = j->out.len;
        if (sbuf_putc(&j->out, '"') || m_json(j, k) || sbuf_putc(&j->out, '"')) return -1;
        if (j->out.len - at == 4 && !memcmp(j->out.p + at, "\"-0\"", 4)) /* String(-0) is "0" */
            memcpy(j->out.p + at, "\"0\"", 3), j->out.len--;
        return 0;
    }
    default: return -1;
    }
}

static int m_json(struct jdec *j, const msgpack_object *o) {
    if (j->out.len > RW_MAX_JSON) return -1;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return put(j, "null");
    case MSGPACK_OBJECT_BOOLEAN: return put(j, o->via.boolean ? "true" : "false");
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return put_int(j, o);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return put_double(j, o->via.f64);
    case MSGPACK_OBJECT_STR: return json_append_string(&j->out, o->via.str.size ? o->via.str.ptr : "", o->via.str.size);
    case MSGPACK_OBJECT_BIN: return put_bin(j, o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_EXT: return put_ext(j, o);
    case MSGPACK_OBJECT_ARRAY:
        if (sbuf_putc(&j->out, '[')) return -1;
        for (uint32_t i = 0; i < o->via.array.size; i++)
            if ((i && sbuf_putc(&j->out, ',')) || m_json(j, &o->via.array.ptr[i])) return -1;
        return sbuf_putc(&j->out, ']');
    case MSGPACK_OBJECT_MAP: {
        size_t at = j->out.len;
        if (sbuf_putc(&j->out, '{')) return -1;
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if ((i && sbuf_putc(&j->out, ',')) || m_key(j, &kv->key) || sbuf_putc(&j->out, ':') ||
                m_json(j, &kv->val))
                return -1;
        }
        if (sbuf_putc(&j->out, '}')) return -1;
        /* A map a peer sent that reads as a placeholder: ours are told apart
         * from it only when there are no attachments (rw_decode_*). */
        if (o->via.map.size == 2 && placeholder_num(j->out.p + at, j->out.len - at) >= 0)
            j->d->literal_placeholder = 1;
        return 0;
    }
    default: return -1;
    }
}

/* The JSON text of o, kept in d. */
static int m_to_json(struct rw_decoded *d, const msgpack_object *o, const char **json, size_t *len) {
    struct jdec j = {.d = d};
    int rc = m_json(&j, o);
    if (rc == 0) {
        *len = j.out.len;
        rc = (*json = arena_dup(d, j.out.p, j.out.len)) ? 0 : -1;
    }
    sbuf_free(&j.out);
    return rc;
}

/* ---- decoding helpers over msgpack objects ---- */

static int m_is(const msgpack_object *k, const char *s) {
    size_t n = strlen(s);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && !memcmp(k->via.str.ptr, s, n);
}

static int m_str(const msgpack_object *o, struct slice *s) {
    if (o->type != MSGPACK_OBJECT_STR) return -1;
    *s = (struct slice){o->via.str.ptr, o->via.str.size};
    return 0;
}

static int m_truthy(const msgpack_object *o) {
    switch (o->type) {
    case MSGPACK_OBJECT_BOOLEAN: return o->via.boolean;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return o->via.u64 != 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return 1;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return o->via.f64 != 0 && !isnan(o->via.f64);
    case MSGPACK_OBJECT_STR: return o->via.str.size != 0;
    case MSGPACK_OBJECT_NIL: return 0;
    default: return 1;
    }
}

/* A room name: a string, or a number (rooms are matched as strings here). */
static int m_rooms(struct rw_decoded *d, const msgpack_object *o, const struct slice **rooms, size_t *n) {
    *rooms = NULL;
    *n = 0;
    if (o->type == MSGPACK_OBJECT_NIL) return 0;
    if (o->type != MSGPACK_OBJECT_ARRAY) return -1;
    struct slice *r = arena_alloc(d, o->via.array.size * sizeof *r);
    if (!r) return -1;
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        if (e->type == MSGPACK_OBJECT_STR) {
            m_str(e, &r[i]);
        } else if (e->type == MSGPACK_OBJECT_POSITIVE_INTEGER || e->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ||
                   e->type == MSGPACK_OBJECT_FLOAT32 || e->type == MSGPACK_OBJECT_FLOAT64) {
            char buf[32];
            double v = e->type == MSGPACK_OBJECT_POSITIVE_INTEGER   ? (double)e->via.u64
                       : e->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? (double)e->via.i64
                                                                    : e->via.f64;
            size_t len = rw_format_double(buf, v);
            if (!strcmp(buf, "-0")) len = 1, buf[0] = '0';
            if (!(r[i].p = arena_dup(d, buf, len))) return -1;
            r[i].len = len;
        } else {
            return -1;
        }
    }
    *rooms = r;
    *n = o->via.array.size;
    return 0;
}

static int m_flags(const msgpack_object *o, unsigned *flags, uint64_t *timeout) {
    *flags = 0;
    *timeout = 0;
    if (o->type == MSGPACK_OBJECT_NIL) return 0;
    if (o->type != MSGPACK_OBJECT_MAP) return -1;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        for (size_t f = 0; f < N_FLAGS; f++)
            if (m_is(k, flag_names[f].name)) {
                if (m_truthy(v)) *flags |= flag_names[f].flag;
                else *flags &= ~flag_names[f].flag;
            }
        if (m_is(k, "timeout")) {
            if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) *timeout = v->via.u64;
            else if ((v->type == MSGPACK_OBJECT_FLOAT32 || v->type == MSGPACK_OBJECT_FLOAT64) && v->via.f64 >= 1 &&
                     v->via.f64 < 1.8e19)
                *timeout = (uint64_t)v->via.f64;
            else *timeout = 0;
        }
    }
    return 0;
}

static int m_opts(struct rw_decoded *d, const msgpack_object *o, struct rw_broadcast *b) {
    b->n_rooms = b->n_except = 0;
    b->rooms = b->except = NULL;
    if (o->type == MSGPACK_OBJECT_NIL) return 0;
    if (o->type != MSGPACK_OBJECT_MAP) return -1;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        if (m_is(k, "rooms") && m_rooms(d, v, &b->rooms, &b->n_rooms)) return -1;
        if (m_is(k, "except") && m_rooms(d, v, &b->except, &b->n_except)) return -1;
        if (m_is(k, "flags") && m_flags(v, &b->flags, &b->timeout_ms)) return -1;
    }
    return 0;
}

/* packet {type, data, nsp, id}: type and data must be there. */
static int m_packet(struct rw_decoded *d, const msgpack_object *o, struct rw_broadcast *b) {
    if (o->type != MSGPACK_OBJECT_MAP) return -1;
    int has_type = 0, has_data = 0;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        if (m_is(k, "type")) {
            if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 > 6) return -1;
            b->type = (int)v->via.u64;
            if (b->type == 5) b->type = 2;
            if (b->type == 6) b->type = 3;
            has_type = 1;
        } else if (m_is(k, "data")) {
            if (m_to_json(d, v, &b->json, &b->json_len)) return -1;
            has_data = 1;
        } else if (m_is(k, "nsp")) {
            /* Node defaults only an absent nsp: null or "" match no namespace */
            if (m_str(v, &b->nsp)) return -1;
        } else if (m_is(k, "id")) {
            if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= (uint64_t)INT64_MAX)
                b->ack_id = (int64_t)v->via.u64;
            else if (v->type != MSGPACK_OBJECT_NIL) return -1;
        }
    }
    return has_type && has_data ? 0 : -1;
}

static void broadcast_init(struct rw_broadcast *b) {
    memset(b, 0, sizeof *b);
    b->ack_id = -1;
    b->nsp = (struct slice){"/", 1};
}

static void broadcast_bins(struct rw_broadcast *b, const struct rw_decoded *d) {
    b->n_bin = d->n_bin;
    b->bin = d->bin;
    b->bin_len = d->bin_len;
}

/* Checks and unpacks a copy of p kept in d. */
static int m_unpack(const void *p, size_t n, struct rw_decoded *d, msgpack_unpacked *u) {
    if (n > RW_MAX_MESSAGE || mp_check(p, n)) return -1;
    char *raw = arena_dup(d, p, n);
    if (!raw) return -1;
    d->raw = raw, d->raw_len = n;
    size_t off = 0;
    msgpack_unpacked_init(u);
    if (msgpack_unpack_next(u, raw, n, &off) != MSGPACK_UNPACK_SUCCESS || off != n) {
        msgpack_unpacked_destroy(u);
        return -1;
    }
    return 0;
}

int rw_decode_broadcast(const void *p, size_t n, struct rw_broadcast *b, struct rw_decoded *d) {
    memset(d, 0, sizeof *d);
    broadcast_init(b);
    msgpack_unpacked u;
    if (m_unpack(p, n, d, &u)) goto fail_free;
    const msgpack_object *root = &u.data;
    int rc = -1;
    if (root->type == MSGPACK_OBJECT_ARRAY && (root->via.array.size == 2 || root->via.array.size == 3)) {
        const msgpack_object *a = root->via.array.ptr;
        rc = m_str(&a[0], &b->uid) || m_packet(d, &a[1], b) || (root->via.array.size == 3 && m_opts(d, &a[2], b))
                 ? -1
                 : 0;
    }
    msgpack_unpacked_destroy(&u);
    if (rc || (d->literal_placeholder && d->n_bin)) goto fail_free;
    broadcast_bins(b, d);
    return 0;
fail_free:
    rw_decoded_free(d);
    broadcast_init(b);
    return -1;
}

/* ---- requests ---- */

static void request_init(struct rw_request *r) {
    memset(r, 0, sizeof *r);
    broadcast_init(&r->packet);
}

static int m_request(struct rw_decoded *d, const msgpack_object *o, struct rw_request *r) {
    if (o->type != MSGPACK_OBJECT_MAP) return -1;
    int has_type = 0, has_packet = 0;
    for (uint32_t i = 0; i < o->via.map.size; i++) { /* first the type: it says what "packet" is */
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        if (m_is(k, "type")) {
            if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 > 1000) return -1;
            r->type = (int)v->via.u64;
            has_type = 1;
        }
    }
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        if (m_is(k, "type")) {
            continue;
        } else if (m_is(k, "packet") && r->type != RW_REQ_BROADCAST) {
            if (m_to_json(d, v, &r->data_json, &r->data_len)) return -1; /* BROADCAST_ACK's ack argument */
        } else if (m_is(k, "clientCount")) {
            if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) return -1;
            r->client_count = v->via.u64;
        } else if (m_is(k, "uid")) {
            if (m_str(v, &r->uid)) return -1;
            r->has_uid = 1;
        } else if (m_is(k, "requestId")) {
            if (m_str(v, &r->request_id)) return -1;
            r->has_request_id = 1;
        } else if (m_is(k, "packet")) {
            if (m_packet(d, v, &r->packet)) return -1;
            has_packet = 1;
        } else if (m_is(k, "opts")) {
            if (m_opts(d, v, &r->packet)) return -1;
        } else if (m_is(k, "rooms")) {
            if (m_rooms(d, v, &r->rooms, &r->n_rooms)) return -1;
            r->has_rooms = 1;
        } else if (m_is(k, "close")) {
            r->close = m_truthy(v);
        } else if (m_is(k, "data")) {
            if (m_to_json(d, v, &r->data_json, &r->data_len)) return -1;
        } else if (m_is(k, "sid")) {
            if (m_str(v, &r->sid)) return -1;
            r->has_sid = 1;
        } else if (m_is(k, "room")) {
            if (m_str(v, &r->room)) return -1;
        }
    }
    if (!has_type || (r->type == RW_REQ_BROADCAST && !has_packet)) return -1;
    r->packet.uid = r->uid;
    r->opts_rooms = r->packet.rooms, r->n_opts_rooms = r->packet.n_rooms;
    r->opts_except = r->packet.except, r->n_opts_except = r->packet.n_except;
    r->opts_flags = r->packet.flags, r->opts_timeout_ms = r->packet.timeout_ms;
    return 0;
}

/* A JSON string value (quotes included): its text, decoded into d when it has escapes. */
static int j_str(struct rw_decoded *d, const struct json_member *m, struct slice *s) {
    if (m->type != 's') return -1;
    const char *body = m->value.p + 1;
    size_t len = m->value.len - 2;
    if (!memchr(body, '\\', len)) {
        *s = (struct slice){body, len};
        return 0;
    }
    char *out = arena_alloc(d, json_str_unescaped_len(body, len));
    if (!out) return -1;
    *s = (struct slice){out, json_str_unescape(body, len, out)};
    return 0;
}

/* The elements of the JSON array v (strings, or numbers as their text). */
static int j_rooms(struct rw_decoded *d, struct slice v, const struct slice **rooms, size_t *n) {
    *rooms = NULL;
    *n = 0;
    if (v.len == 4 && !memcmp(v.p, "null", 4)) return 0;
    if (v.p[0] != '[') return -1;
    size_t count = 0, i = skip_ws(v.p, v.len, 1);
    while (i < v.len && v.p[i] != ']') {
        count++;
        i = skip_ws(v.p, v.len, json_skip_valid_value(v.p, v.len, i));
        if (i < v.len && v.p[i] == ',') i = skip_ws(v.p, v.len, i + 1);
    }
    struct slice *r = arena_alloc(d, count * sizeof *r);
    if (!r) return -1;
    i = skip_ws(v.p, v.len, 1);
    for (size_t k = 0; k < count; k++) {
        size_t end = json_skip_valid_value(v.p, v.len, i);
        struct json_member m = {.value = {v.p + i, end - i}, .type = v.p[i] == '"' ? 's' : 0};
        if (m.type == 's') {
            if (j_str(d, &m, &r[k])) return -1;
        } else if (v.p[i] == '-' || (v.p[i] >= '0' && v.p[i] <= '9')) {
            char tmp[400], buf[32];
            if (end - i >= sizeof tmp) return -1;
            memcpy(tmp, v.p + i, end - i);
            tmp[end - i] = 0;
            size_t len = rw_format_double(buf, strtod(tmp, NULL));
            if (!strcmp(buf, "-0")) len = 1, buf[0] = '0';
            if (!(r[k].p = arena_dup(d, buf, len))) return -1;
            r[k].len = len;
        } else {
            return -1;
        }
        i = skip_ws(v.p, v.len, end);
        if (i < v.len && v.p[i] == ',') i = skip_ws(v.p, v.len, i + 1);
    }
    *rooms = r;
    *n = count;
    return 0;
}

static int j_opts(struct rw_decoded *d, struct slice v, struct rw_request *r) {
    if (v.len == 4 && !memcmp(v.p, "null", 4)) return 0;
    if (v.p[0] != '{') return -1;
    size_t pos = 0;
    struct json_member m;
    int rc;
    while ((rc = json_object_next_valid(v.p, v.len, &pos, &m)) == 1) {
        if (slice_eq(m.key, "rooms") && j_rooms(d, m.value, &r->opts_rooms, &r->n_opts_rooms)) return -1;
        if (slice_eq(m.key, "except") && j_rooms(d, m.value, &r->opts_except, &r->n_opts_except)) return -1;
        if (slice_eq(m.key, "flags") && m.type == 'o') {
            size_t fpos = 0;
            struct json_member f;
            while (json_object_next_valid(m.value.p, m.value.len, &fpos, &f) == 1) {
                for (size_t k = 0; k < N_FLAGS; k++)
                    if (slice_eq(f.key, flag_names[k].name)) {
                        if (f.type == 't') r->opts_flags |= flag_names[k].flag;
                        else r->opts_flags &= ~flag_names[k].flag;
                    }
                int64_t t;
                if (slice_eq(f.key, "timeout"))
                    r->opts_timeout_ms = f.type == 'n' && json_int_value(f.value, &t, 1) == 0 && t > 0 ? (uint64_t)t : 0;
            }
        }
    }
    return rc;
}

static int j_request(struct rw_decoded *d, const char *p, size_t n, struct rw_request *r) {
    if (!json_valid(p, n)) return -1;
    size_t pos = 0;
    struct json_member m;
    int rc, has_type = 0;
    while ((rc = json_object_next_valid(p, n, &pos, &m)) == 1) {
        if (slice_eq(m.key, "type")) {
            int64_t t;
            if (m.type != 'n' || json_int_value(m.value, &t, 0) || t < 0 || t > 1000) return -1;
            r->type = (int)t;
            has_type = 1;
        } else if (slice_eq(m.key, "uid")) {
            if (j_str(d, &m, &r->uid)) return -1;
            r->has_uid = 1;
        } else if (slice_eq(m.key, "requestId")) {
            if (j_str(d, &m, &r->request_id)) return -1;
            r->has_request_id = 1;
        } else if (slice_eq(m.key, "opts")) {
            if (j_opts(d, m.value, r)) return -1;
        } else if (slice_eq(m.key, "rooms")) {
            if (j_rooms(d, m.value, &r->rooms, &r->n_rooms)) return -1;
            r->has_rooms = 1;
        } else if (slice_eq(m.key, "close")) {
            r->close = m.type == 't';
        } else if (slice_eq(m.key, "data")) {
            r->data_json = m.value.p;
            r->data_len = m.value.len;
        } else if (slice_eq(m.key, "sid")) {
            if (j_str(d, &m, &r->sid)) return -1;
            r->has_sid = 1;
        } else if (slice_eq(m.key, "room")) {
            if (j_str(d, &m, &r->room)) return -1;
        } else if (slice_eq(m.key, "clientCount")) {
            int64_t c;
            if (m.type != 'n' || json_int_value(m.value, &c, 0) || c < 0) return -1;
            r->client_count = (uint64_t)c;
        }
    }
    if (rc < 0 || !has_type || r->type == RW_REQ_BROADCAST) return -1; /* 7 comes as msgpack */
    r->packet.uid = r->uid;
    return 0;
}

int rw_decode_request(const void *p, size_t n, struct rw_request *r, struct rw_decoded *d) {
    memset(d, 0, sizeof *d);
    request_init(r);
    if (n == 0 || n > RW_MAX_MESSAGE) return -1;
    if (*(const char *)p == '{') {
        char *raw = arena_dup(d, p, n);
        if (!raw || j_request(d, raw, n, r)) goto fail;
        return 0;
    }
    msgpack_unpacked u;
    if (m_unpack(p, n, d, &u)) goto fail;
    int rc = m_request(d, &u.data, r);
    msgpack_unpacked_destroy(&u);
    if (rc || (d->literal_placeholder && d->n_bin)) goto fail;
    broadcast_bins(&r->packet, d);
    return 0;
fail:
    rw_decoded_free(d);
    request_init(r);
    return -1;
}

/* ---- channels ---- */

int rw_channel(struct sbuf *out, const char *prefix, enum rw_channel_kind kind, struct slice nsp,
               struct slice room_or_uid) {
    static const char *const middle[] = {"#", "#", "-request#", "-response#"};
    if ((unsigned)kind > RW_CH_RESPONSE) return -1;
    size_t start = out->len;
    int rc = sbuf_append(out, prefix, strlen(prefix)) || sbuf_append(out, middle[kind], strlen(middle[kind])) ||
             (nsp.len && sbuf_append(out, nsp.p, nsp.len)) || sbuf_putc(out, '#');
    if (!rc && kind == RW_CH_PATTERN) rc = sbuf_putc(out, '*');
    if (!rc && room_or_uid.len && (kind == RW_CH_BROADCAST || kind == RW_CH_RESPONSE))
        rc = sbuf_append(out, room_or_uid.p, room_or_uid.len) || sbuf_putc(out, '#');
    if (rc) out->len = start;
    return rc ? -1 : 0;
}

int rw_channel_room(struct slice channel, const char *prefix, struct slice nsp, struct slice *room) {
    size_t pl = strlen(prefix), head = pl + 1 + nsp.len + 1;
    if (channel.len < head || memcmp(channel.p, prefix, pl) || channel.p[pl] != '#' ||
        memcmp(channel.p + pl + 1, nsp.p, nsp.len) || channel.p[head - 1] != '#')
        return -1;
    /* Node: channel.slice(prefix.length, -1), whatever the last byte is. */
    *room = (struct slice){channel.p + head, channel.len > head ? channel.len - head - 1 : 0};
    return 0;
}

/* ---- JSON responses ---- */

/* A slice as a JSON string (an empty slice may have no bytes at all). */
static int put_str(struct sbuf *out, struct slice s) { return json_append_string(out, s.p ? s.p : "", s.len); }

static int put_rid(struct sbuf *out, const char *head, struct slice request_id) {
    return sbuf_append(out, head, strlen(head)) || put_str(out, request_id) ? -1 : 0;
}

static int put_strings(struct sbuf *out, const struct slice *s, size_t n) {
    if (sbuf_putc(out, '[')) return -1;
    for (size_t i = 0; i < n; i++)
        if ((i && sbuf_putc(out, ',')) || put_str(out, s[i])) return -1;
    return sbuf_putc(out, ']');
}

static int put_list_response(struct sbuf *out, struct slice request_id, const char *key, const struct slice *s,
                             size_t n) {
    size_t start = out->len;
    if (put_rid(out, "{\"requestId\":", request_id) || sbuf_printf(out, ",\"%s\":", key) < 0 ||
        put_strings(out, s, n) || sbuf_putc(out, '}')) {
        out->len = start;
        return -1;
    }
    return 0;
}

int rw_encode_all_rooms_response(struct sbuf *out, struct slice request_id, const struct slice *rooms, size_t n) {
    return put_list_response(out, request_id, "rooms", rooms, n);
}

int rw_encode_sockets_response(struct sbuf *out, struct slice request_id, const struct slice *ids, size_t n) {
    return put_list_response(out, request_id, "sockets", ids, n);
}

/* JSON text given by the caller, checked (NULL or empty: dflt). */
static int put_json(struct sbuf *out, const char *json, size_t len, const char *dflt) {
    if (!json || !len) return sbuf_append(out, dflt, strlen(dflt));
    if (!json_valid(json, len)) return -1;
    return sbuf_append(out, json, len);
}

static int put_socket(struct sbuf *out, const struct rw_socket_info *s) {
    if (sbuf_append(out, "{\"id\":", 6) || put_str(out, s->id) ||
        sbuf_append(out, ",\"handshake\":{\"headers\":", 24) || put_json(out, s->headers_json, s->headers_len, "{}") ||
        sbuf_append(out, ",\"time\":", 8) || put_str(out, s->time) ||
        sbuf_append(out, ",\"address\":", 11) || put_str(out, s->address) ||
        sbuf_printf(out, ",\"xdomain\":false,\"secure\":%s,\"issued\":%" PRId64 ",\"url\":",
                    s->secure ? "true" : "false", s->issued) < 0 ||
        put_str(out, s->url) || sbuf_append(out, ",\"query\":", 9) ||
        put_json(out, s->query_json, s->query_len, "{}") || sbuf_append(out, ",\"auth\":", 8) ||
        put_json(out, s->auth_json, s->auth_len, "{}") || sbuf_append(out, "},\"rooms\":", 10) ||
        put_strings(out, s->rooms, s->n_rooms) || sbuf_append(out, ",\"data\":", 8) ||
        put_json(out, s->data_json, s->data_len, "{}") || sbuf_putc(out, '}'))
        return -1;
    return 0;
}

int rw_encode_fetch_sockets_response(struct sbuf *out, struct slice request_id, const struct rw_socket_info *s,
                                     size_t n) {
    size_t start = out->len;
    if (put_rid(out, "{\"requestId\":", request_id) || sbuf_append(out, ",\"sockets\":[", 12)) goto fail;
    for (size_t i = 0; i < n; i++)
        if ((i && sbuf_putc(out, ',')) || put_socket(out, &s[i])) goto fail;
    if (sbuf_append(out, "]}", 2)) goto fail;
    return 0;
fail:
    out->len = start;
    return -1;
}

int rw_encode_server_side_emit_response(struct sbuf *out, struct slice request_id, const char *data_json,
                                        size_t len) {
    size_t start = out->len;
    if (put_rid(out, "{\"type\":6,\"requestId\":", request_id) || sbuf_append(out, ",\"data\":", 8) ||
        put_json(out, data_json, len, "null") || sbuf_putc(out, '}')) {
        out->len = start;
        return -1;
    }
    return 0;
}

int rw_encode_client_count_response(struct sbuf *out, struct slice request_id, uint64_t count) {
    size_t start = out->len;
    if (put_rid(out, "{\"type\":8,\"requestId\":", request_id) ||
        sbuf_printf(out, ",\"clientCount\":%" PRIu64 "}", count) < 0) {
        out->len = start;
        return -1;
    }
    return 0;
}

int rw_encode_simple_response(struct sbuf *out, struct slice request_id) {
    size_t start = out->len;
    if (put_rid(out, "{\"requestId\":", request_id) || sbuf_putc(out, '}')) {
        out->len = start;
        return -1;
    }
    return 0;
}
