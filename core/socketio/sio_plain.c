/* The plain /ws protocol at the Socket.IO level (docs/protocol.md §6): one
 * socket in "/", logged in from the handshake's query and token, then one
 * JSON object {event, data, id?} per text frame, handed to the app as the
 * Socket.IO event [event, data]; request ids are echoed as the client wrote them. */
#include <stdlib.h>
#include <string.h>

#include "eio.h"
#include "json_scan.h"
#include "json_str.h"
#include "log.h"
#include "sio.h"
#include "sio_internal.h"
#include "utf8.h"
#include "ws.h"
#include "wsjson.h"

/* Keeps a /ws request id's text; returns its key, or -1 when out of memory
 * (the answer then goes without the id). */
int64_t sio__plain_id_keep(struct sio_client *c, struct slice id) {
    if (!c->plain_ids && !(c->plain_ids = calloc(1, sizeof *c->plain_ids))) return -1;
    struct plain_ids *ids = c->plain_ids;
    char *text = malloc(id.len);
    if (!text) return -1;
    memcpy(text, id.p, id.len);
    int64_t seq = ids->next_seq++;
    int slot = (int)(seq % PLAIN_IDS_MAX);
    free(ids->text[slot]); /* the oldest waiting id, if any: forgotten */
    ids->key[slot] = PLAIN_ID_KEY_BASE + seq;
    ids->text[slot] = text;
    ids->len[slot] = id.len;
    return ids->key[slot];
}

/* Takes the text kept under key out (the caller frees it); NULL when it
 * was answered already or forgotten. */
char *sio__plain_id_take(struct sio_client *c, int64_t key, size_t *len) {
    struct plain_ids *ids = c->plain_ids;
    int slot = (int)((key - PLAIN_ID_KEY_BASE) % PLAIN_IDS_MAX);
    if (!ids || ids->key[slot] != key) return NULL;
    char *text = ids->text[slot];
    *len = ids->len[slot];
    ids->key[slot] = 0;
    ids->text[slot] = NULL;
    return text;
}


/* Appends "key":"value" (value percent-decoded from the query) when the
 * query has key with a valid UTF-8 value. */
static void append_query_field(struct sbuf *out, struct slice query, const char *key) {
    struct slice raw;
    char value[1024];
    if (!http_query_get(query, key, &raw)) return;
    long n = http_percent_decode(raw, value, sizeof value);
    if (n < 0 || !utf8_valid(value, (size_t)n)) return;
    if (out->len > 1) sbuf_putc(out, ',');
    sbuf_printf(out, "\"%s\":", key);
    json_append_string(out, value, (size_t)n);
}

void sio_socket_output_hold(struct sio_socket *s) { eio_output_hold(s->client->eio); }
void sio_socket_output_release(struct sio_socket *s) { eio_output_release(s->client->eio); }
void sio_socket_output_ahead(struct sio_socket *s, int on) { eio_output_ahead(s->client->eio, on); }

#define PLAIN_RESUME_MAX 16          /* since/room pairs of one handshake */
#define PLAIN_RESUME_VALUE_BYTES 1024 /* a decoded room name or offset */

/* The values of key in the query, in order (at most max); the count found,
 * which may be more than max. */
static unsigned query_values(struct slice query, const char *key, struct slice *out, unsigned max) {
    size_t klen = strlen(key);
    unsigned n = 0;
    const char *p = query.p, *end = query.p + query.len;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        if (!amp) amp = end;
        const char *eq = memchr(p, '=', (size_t)(amp - p));
        if (eq && (size_t)(eq - p) == klen && memcmp(p, key, klen) == 0) {
            if (n < max) out[n] = (struct slice){eq + 1, (size_t)(amp - eq - 1)};
            n++;
        }
        p = amp + 1;
    }
    return n;
}

/* /ws?since=OFFSET&room=ROOM (repeatable pairs, issue 14): each pair is
 * handed to the app as the event join_room {room, since}, right after the
 * connection handler, so it joins as join_room does (same checks, the
 * joined_room answer) and replays what the room said after since ahead of
 * anything live. Pairs that do not pair up answer invalid_payload. */
static void plain_resume(struct sio_client *c, struct sio_socket *s, struct slice query) {
    static const struct slice join = {"\"join_room\"", 11};
    struct slice since[PLAIN_RESUME_MAX], room[PLAIN_RESUME_MAX];
    unsigned ns = query_values(query, "since", since, PLAIN_RESUME_MAX);
    unsigned nr = query_values(query, "room", room, PLAIN_RESUME_MAX);
    if (!ns && !nr) return;
    if (ns != nr) {
        sio__answer_invalid_payload(s, join, -1, "since and room come in pairs: /ws?since=OFFSET&room=ROOM");
        return;
    }
    if (ns > PLAIN_RESUME_MAX) {
        sio__answer_invalid_payload(s, join, -1, "at most 16 since/room pairs; the first 16 are joined");
        ns = PLAIN_RESUME_MAX;
    }
    struct sbuf args = {0};
    for (unsigned i = 0; i < ns && !s->closed; i++) {
        char r[PLAIN_RESUME_VALUE_BYTES], o[PLAIN_RESUME_VALUE_BYTES];
        long rn = http_percent_decode(room[i], r, sizeof r), on = http_percent_decode(since[i], o, sizeof o);
        if (rn < 0 || on < 0 || !utf8_valid(r, (size_t)rn) || !utf8_valid(o, (size_t)on)) {
            sio__answer_invalid_payload(s, join, -1, "a room or since that is not percent-encoded UTF-8");
            continue;
        }
        sbuf_reset(&args);
        int bad = sbuf_printf(&args, "[\"join_room\",{\"room\":") || json_append_string(&args, r, (size_t)rn) ||
                  sbuf_printf(&args, ",\"since\":") || json_append_string(&args, o, (size_t)on) ||
                  sbuf_printf(&args, "}]");
        if (bad) break;
        c->hub->app->on_event(c->hub->app_ud, s, -1, args.p, args.len, 0, NULL, NULL);
    }
    sbuf_free(&args);
}

/* The plain /ws protocol: authenticate from the query (name, token) and
 * open the one socket; then each text frame is one JSON message. */
void sio__plain_start(void *client, const struct http_request *req) {
    struct sio_client *c = client;
    struct sio_hub *hub = c->hub;
    struct sbuf auth = {0}, refusal = {0};
    /* The token comes from the handshake (Authorization header first, then
     * the query), as for Socket.IO; only the development name goes here. */
    sbuf_putc(&auth, '{');
    append_query_field(&auth, req->query, "name");
    sbuf_putc(&auth, '}');
    enum sio_verdict r;
    struct sio_socket *s = auth.p ? sio__socket_open(c, (struct slice){"/", 1}, auth.p, auth.len, &r, &refusal) : NULL;
    sbuf_free(&auth);
    if (!s) {
        /* {"event":"error","data":{"code":"unauthorized","message":...,"event":"connect"}}, then 4401 */
        /* The refusal's own code becomes the message: token_expired, ... */
        struct sbuf frame = {0};
        char msg[128] = "connection refused";
        struct json_member data, code;
        if (refusal.p && json_object_get(refusal.p, refusal.len, "data", &data) && data.type == 'o' &&
            json_object_get(data.value.p, data.value.len, "code", &code) && code.type == 's')
            json_string_value(code.value, msg, sizeof msg);
        sbuf_printf(&frame, "{\"event\":\"error\",\"data\":{\"code\":\"unauthorized\",\"message\":");
        json_append_string(&frame, msg, strlen(msg));
        sbuf_printf(&frame, ",\"event\":\"connect\"}}");
        buf *b = frame.p ? ws_frame_new(WS_OP_TEXT, frame.p, frame.len, NULL, 0) : NULL;
        if (b && c->eio->ws) ws_send(c->eio->ws, b);
        buf_unref(b);
        sbuf_free(&frame);
        sbuf_free(&refusal);
        eio_close(c->eio, WS_CLOSE_UNAUTHORIZED, "refused");
        return;
    }
    sbuf_free(&refusal);
    hub->app->on_connected(hub->app_ud, s);
    if (!s->closed) plain_resume(c, s, req->query);
}

void sio__plain_on_message(void *client, const char *p, size_t n) {
    struct sio_client *c = client;
    struct sio_socket *s = c->sockets;
    if (!s) return;
    struct wsjson_msg m;
    const char *why = wsjson_parse(p, n, &m);
    int64_t ack_id = -1;
    long long small;
    if (m.id.len) ack_id = wsjson_id_is_small_int(m.id, &small) ? (int64_t)small : sio__plain_id_keep(c, m.id);
    if (why) {
        /* Not a protocol violation: the frame arrived whole and valid UTF-8;
         * its sender is told, as for any refused data, and stays. */
        char q[LOG_QUOTED_MAX];
        log_debug("sio", "refused a /ws message sid=%s: %s", c->eio->sid, log_quoted(q, sizeof q, why));
        sio__answer_invalid_payload(s, m.event, ack_id, why);
        return;
    }
    /* The handlers take an event as Socket.IO carries it: [NAME, data]. */
    char storage[512];
    struct sbuf args = sbuf_on_stack(storage, sizeof storage);
    if (sbuf_putc(&args, '[') || sbuf_append(&args, m.event.p, m.event.len) ||
        (m.data.len && (sbuf_putc(&args, ',') || sbuf_append(&args, m.data.p, m.data.len))) || sbuf_putc(&args, ']')) {
        sbuf_free(&args);
        eio_close(c->eio, WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    enum sio_verdict r = c->hub->app->on_event(c->hub->app_ud, s, ack_id, args.p, args.len, 0, NULL, NULL);
    sbuf_free(&args);
    /* Checked above, so only the Lua state running out of memory gets here. */
    if (r == SIO_PROTOCOL_ERROR && !s->closed)
        sio__answer_invalid_payload(s, m.event, ack_id, "the message does not fit in the scripts' memory (--lua-memory)");
}

