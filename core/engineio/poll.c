/* poll: the Engine.IO long-polling transport of a session (docs/protocol.md
 * §1). Output waits in the session's queue; a GET is answered at once
 * when something is queued, else parked until something is (a ping comes
 * every pingInterval, so a parked GET never waits longer). A POST carries
 * packets joined by 0x1E. One GET at a time: a second one closes the
 * session, as the reference server does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cors.h"
#include "eio.h"
#include "eio_packet.h"
#include "httpd.h"
#include "log.h"
#include "clock.h"
#include "ids.h"
#include "session_internal.h"
#include "net.h"
#include "ws.h"

void eio_on_packet(struct eio_session *s, int binary, const uint8_t *p, size_t n);

/* The transport of a conn whose GET is parked: it holds the request open. */
static void parked_on_data(struct conn *c, const char *p, size_t n) {
    /* A pipelined request waits until the parked GET is answered. */
    if (conn_in_append(c, p, n) != 0 || c->in_len > HTTP_MAX_HEAD_BYTES + (size_t)c->net->cfg->max_payload)
        conn_close(c);
}

static void parked_on_timeout(struct conn *c) { (void)c; }

static void parked_on_close(struct conn *c) {
    struct eio_session *s = c->tr_state;
    if (!s || s->poll_get != c) return;
    s->poll_get = NULL;
    free(s->poll_headers);
    s->poll_headers = NULL;
    eio_close(s, WS_CLOSE_NORMAL, "poll connection closed prematurely");
}

static const struct transport parked_transport = {
    .name = "polling",
    .on_data = parked_on_data,
    .on_timeout = parked_on_timeout,
    .on_close = parked_on_close,
};

void poll_cors_headers(struct eio_hub *hub, const struct http_request *req, char *out, size_t cap) {
    const struct config *cfg = hub->cfg;
    out[0] = 0;
    const struct slice *origin = http_header_get(req, "Origin");
    if (!cfg->n_cors_origins) return;
    for (int i = 0; i < cfg->n_cors_origins; i++) {
        if (origin && slice_eq(*origin, cfg->cors_origins[i]) && origin->len < 256) {
            /* A listed origin is echoed, with credentials allowed (as the
             * Node cors middleware does for a specific origin). */
            snprintf(out, cap,
                     "Access-Control-Allow-Origin: %.*s\r\nVary: Origin\r\n"
                     "Access-Control-Allow-Credentials: true\r\n",
                     (int)origin->len, origin->p);
            return;
        }
    }
    for (int i = 0; i < cfg->n_cors_origins; i++) {
        if (strcmp(cfg->cors_origins[i], "*") == 0) {
            snprintf(out, cap, "Access-Control-Allow-Origin: *\r\n");
            return;
        }
    }
}

static void mark_for_flush(struct eio_session *s) {
    if (s->in_poll_flush || !s->poll_get) return;
    s->in_poll_flush = 1;
    s->next_poll = s->hub->poll_flush;
    s->hub->poll_flush = s;
}

int poll_queue(struct eio_session *s, buf *b, unsigned n_packets) {
    if (s->close_slow) return -1;
    if (s->pq_bytes + b->len > (size_t)s->hub->cfg->max_output) {
        log_warn("poll", "closing slow consumer sid=%s queued=%zu", s->sid, s->pq_bytes);
        s->hub->net->slow_closes++;
        s->close_slow = 1; /* closed by the session's timer, due now: we may be inside a broadcast */
        eio_wake_by(s, net_now(s->hub->net));
        return -1;
    }
    if (s->pq_head == s->pq_len) s->pq_head = s->pq_len = 0;
    if (eio_entries_push(&s->pq, &s->pq_len, &s->pq_cap, 4, (struct poll_entry){b, n_packets}) != 0) return -1;
    buf_ref(b);
    s->pq_bytes += b->len;
    mark_for_flush(s);
    return 0;
}

void poll_release(struct eio_session *s) {
    for (uint32_t i = s->pq_head; i < s->pq_len; i++) buf_unref(s->pq[i].b);
    free(s->pq);
    s->pq = NULL;
    s->pq_head = s->pq_len = s->pq_cap = 0;
    s->pq_bytes = 0;
    if (s->poll_get) {
        /* Only reached when the GET was not answered: let its conn go. */
        struct conn *c = s->poll_get;
        s->poll_get = NULL;
        c->tr_state = NULL;
        free(s->poll_headers);
        s->poll_headers = NULL;
        conn_close(c);
    }
}

/* Answers the GET on c with up to POLL_MAX_PACKETS queued packets, or with
 * `packet` when nothing is queued. The conn returns to HTTP keep-alive. */
static void answer(struct eio_session *s, struct conn *c, const char *packet, const char *headers,
                   int keep_alive) {
    struct eio_hub *hub = s->hub;
    uint32_t end = s->pq_head;
    unsigned packets = 0;
    size_t body = 0;
    while (end < s->pq_len && (end == s->pq_head || packets + s->pq[end].n_packets <= POLL_MAX_PACKETS)) {
        body += s->pq[end].b->len + (end > s->pq_head);
        packets += s->pq[end].n_packets;
        end++;
    }
    if (end == s->pq_head && packet) body = strlen(packet);
    char head[1024];
    char extra[700];
    snprintf(extra, sizeof extra, "Cache-Control: no-store\r\n%s", headers ? headers : "");
    size_t n = http_format_head(head, sizeof head, 200, "text/plain; charset=UTF-8", body, extra, keep_alive);
    conn_send_copy(c, head, n);
    if (end == s->pq_head) {
        if (packet) conn_send_copy(c, packet, strlen(packet));
    } else {
        for (uint32_t i = s->pq_head; i < end; i++) {
            if (i > s->pq_head) conn_send(c, hub->record_separator);
            conn_send(c, s->pq[i].b);
            s->pq_bytes -= s->pq[i].b->len;
            buf_unref(s->pq[i].b);
        }
        s->pq_head = end;
        if (s->pq_head == s->pq_len) s->pq_head = s->pq_len = 0;
    }
    if (!keep_alive) conn_close_after_flush(c);
    else httpd_resume(c);
}

void poll_answer(struct eio_session *s, const char *packet) {
    struct conn *c = s->poll_get;
    if (!c) return;
    s->poll_get = NULL;
    c->tr_state = NULL;
    char *headers = s->poll_headers;
    s->poll_headers = NULL;
    answer(s, c, packet, headers, s->poll_keep_alive);
    free(headers);
}

void eio_flush_polls(struct eio_hub *hub) {
    while (hub->poll_flush) {
        struct eio_session *s = hub->poll_flush;
        hub->poll_flush = s->next_poll;
        s->in_poll_flush = 0;
        if (!s->closed && s->poll_get && (s->pq_head < s->pq_len || s->probe_answered)) {
            poll_answer(s, s->probe_answered ? "6" : NULL);
            eio_drained(s);
        }
    }
}

void poll_handle_get(struct eio_session *s, struct conn *c, const struct http_request *req, int keep_alive) {
    char headers[512];
    poll_cors_headers(s->hub, req, headers, sizeof headers);
    if (s->poll_get) {
        /* A second GET: the reference answers it 400 and closes the session. */
        httpd_respond(c, 400, NULL, NULL, 0, headers, !keep_alive);
        eio_close(s, WS_CLOSE_NORMAL, "overlapping GET");
        return;
    }
    if (s->pq_head < s->pq_len || s->probe_answered) {
        answer(s, c, s->probe_answered ? "6" : NULL, headers, keep_alive);
        eio_drained(s);
        return;
    }
    s->poll_headers = strdup(headers);
    if (!s->poll_headers) {
        httpd_respond(c, 503, NULL, NULL, 0, NULL, 1);
        return;
    }
    s->poll_get = c;
    s->poll_keep_alive = keep_alive;
    c->tr = &parked_transport;
    c->tr_state = s;
    conn_set_deadline(c, 0);
}

void poll_handle_post(struct eio_session *s, struct conn *c, const struct http_request *req,
                      const char *body, size_t len, int keep_alive) {
    char headers[512];
    poll_cors_headers(s->hub, req, headers, sizeof headers);
    const struct slice *ctype = http_header_get(req, "Content-Type");
    if (ctype && ctype->len >= 24 && memcmp(ctype->p, "application/octet-stream", 24) == 0) {
        httpd_respond(c, 400, NULL, NULL, 0, headers, !keep_alive);
        eio_protocol_error(s, "binary POST body");
        return;
    }
    /* Every packet is checked before any runs, so a bad payload changes nothing. */
    size_t pos = 0;
    struct slice pkt;
    struct eio_packet decoded;
    while (eio_payload_next(body, len, &pos, &pkt)) {
        if (eio_packet_decode(pkt.p, pkt.len, &decoded) != 0) {
            httpd_respond(c, 400, "application/json", "{\"code\":3,\"message\":\"Bad request\"}", 35,
                          headers, !keep_alive);
            eio_protocol_error(s, "malformed polling payload");
            return;
        }
    }
    pos = 0;
    while (!s->closed && eio_payload_next(body, len, &pos, &pkt))
        eio_on_packet(s, 0, (const uint8_t *)pkt.p, pkt.len);
    httpd_respond(c, 200, "text/html", "ok", 2, headers, !keep_alive);
}

int eio_entries_push(struct poll_entry **arr, uint32_t *len, uint32_t *cap, uint32_t first_cap,
                     struct poll_entry e) {
    if (*len == *cap) {
        uint32_t grown = *cap ? *cap * 2 : first_cap;
        struct poll_entry *q = realloc(*arr, grown * sizeof *q);
        if (!q) return -1;
        *arr = q;
        *cap = grown;
    }
    (*arr)[(*len)++] = e;
    return 0;
}
