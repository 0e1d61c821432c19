#include "sio.h"

#include <stdlib.h>
#include <string.h>

#include "eio.h"
#include "log.h"
#include "script.h"
#include "server.h"
#include "user.h"
#include "ws.h"

/* A binary packet waits for its attachments here. */
struct pending_binary {
    char *text;            /* the packet's text (header and JSON), copied */
    size_t len;
    unsigned expected;     /* attachments announced */
    unsigned got;
    void *att[SIO_MAX_ATTACHMENTS];
    size_t att_len[SIO_MAX_ATTACHMENTS];
};

struct sio_client {
    struct eio_session *eio;
    struct server *srv;
    struct sio_socket *sockets;    /* joined namespaces */
    struct pending_binary pending; /* pending.expected == 0 when none */
};

struct sio_client *sio_client_new(struct eio_session *eio, const struct http_request *req) {
    (void)req;
    struct sio_client *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->eio = eio;
    c->srv = eio->srv;
    return c;
}

static void pending_clear(struct pending_binary *p) {
    free(p->text);
    for (unsigned i = 0; i < p->got; i++) free(p->att[i]);
    memset(p, 0, sizeof *p);
}

void sio_client_free(struct sio_client *c) {
    pending_clear(&c->pending);
    free(c);
}

static void protocol_error(struct sio_client *c, const char *what) {
    c->srv->protocol_errors++;
    log_info("sio", "protocol error sid=%s error=\"%s\"", c->eio->sid, what);
    eio_close(c->eio, WS_CLOSE_PROTOCOL_ERROR, what);
}

static struct sio_socket *find_socket(struct sio_client *c, struct slice nsp) {
    for (struct sio_socket *s = c->sockets; s; s = s->next)
        if (s->nsp->name_len == nsp.len && memcmp(s->nsp->name, nsp.p, nsp.len) == 0) return s;
    return NULL;
}

static struct nsp *get_nsp(struct server *srv, struct slice name) {
    struct nsp *n = hmap_get(&srv->namespaces, name.p, name.len);
    if (n) return n;
    n = calloc(1, sizeof *n + name.len + 1);
    if (!n) return NULL;
    memcpy(n->name, name.p, name.len);
    n->name_len = name.len;
    if (hmap_put(&srv->namespaces, n->name, name.len, n) != 0) {
        free(n);
        return NULL;
    }
    return n;
}

/* {==================================================================
 * Output
 * =================================================================== */

static int build_head(struct sbuf *head, struct nsp *nsp, const struct sio_out *o) {
    enum sio_type type = o->type;
    if (o->n_bin && type == SIO_EVENT) type = SIO_BINARY_EVENT;
    if (o->n_bin && type == SIO_ACK) type = SIO_BINARY_ACK;
    sbuf_reset(head);
    return sio_packet_encode_head(head, type, (unsigned)o->n_bin, (struct slice){nsp->name, nsp->name_len},
                                  o->ack_id);
}

static void fill_msg(struct eio_msg *m, const struct sbuf *head, const struct sio_out *o) {
    *m = (struct eio_msg){head->p, head->len, o->json, o->len, o->n_bin, o->bin, o->bin_len};
}

int sio_send(struct sio_socket *s, const struct sio_out *o) {
    if (s->closed) return -1;
    char small[64];
    struct sbuf head = {small, 0, sizeof small}; /* grows onto the heap only for long names */
    int rc = -1;
    if (build_head(&head, s->nsp, o) == 0) {
        struct eio_msg m;
        fill_msg(&m, &head, o);
        rc = eio_send(s->client->eio, &m);
    }
    if (head.p != small) free(head.p);
    return rc;
}

size_t sio_broadcast(struct server *srv, struct nsp *nsp, struct room *r, struct sio_socket *except,
                     const struct sio_out *o) {
    (void)srv;
    char small[64];
    struct sbuf head = {small, 0, sizeof small};
    buf *wire[EIO_FORM_COUNT] = {0}; /* each wire form encoded once, by the first member that needs it */
    size_t sent = 0;
    if (build_head(&head, nsp, o) == 0) {
        struct eio_msg m;
        fill_msg(&m, &head, o);
        for (uint32_t i = 0; i < r->n_members; i++) {
            struct sio_socket *s = r->members[i].m->owner;
            if (s == except || s->closed) continue;
            struct eio_session *e = s->client->eio;
            enum eio_form f = eio_form_of(e);
            if (!wire[f] && !(wire[f] = eio_encode(f, &m))) break;
            /* A failed send closes only that slow member: the room may
             * change under us then, which the index check tolerates. */
            if (eio_send_encoded(e, wire[f]) == 0) sent++;
        }
    }
    for (int f = 0; f < EIO_FORM_COUNT; f++) buf_unref(wire[f]);
    if (head.p != small) free(head.p);
    return sent;
}

/* {==================================================================
 * Sockets
 * =================================================================== */

static void send_connect_error(struct sio_client *c, struct slice nsp, const char *json, size_t len) {
    char small[300];
    struct sbuf head = {small, 0, sizeof small};
    if (sio_packet_encode_head(&head, SIO_CONNECT_ERROR, 0, nsp, -1) == 0) {
        struct eio_msg m = {head.p, head.len, json, len, 0, NULL, NULL};
        eio_send(c->eio, &m);
    }
    if (head.p != small) free(head.p);
}

static void on_connect(struct sio_client *c, const struct sio_packet *pkt) {
    struct server *srv = c->srv;
    if (find_socket(c, pkt->nsp)) {
        protocol_error(c, "second CONNECT for a joined namespace");
        return;
    }
    if (!script_has_namespace(srv->script, pkt->nsp.p, pkt->nsp.len)) {
        static const char invalid[] = "{\"message\":\"Invalid namespace\"}";
        send_connect_error(c, pkt->nsp, invalid, sizeof invalid - 1);
        return;
    }
    struct nsp *nsp = get_nsp(srv, pkt->nsp);
    struct sio_socket *s = nsp ? calloc(1, sizeof *s) : NULL;
    if (!s) {
        eio_close(c->eio, WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    s->client = c;
    s->nsp = nsp;
    s->rooms.owner = s;
    s->connected_ms = server_wall_ms();
    server_new_sid(srv, s->sid);

    struct sbuf refusal = {0}; /* not the scratch buffer: the script may emit meanwhile */
    enum script_result r = script_authenticate(srv->script, s, pkt->json.p, pkt->json.len, &refusal);
    if (r != SCRIPT_OK) {
        if (r == SCRIPT_REFUSE) send_connect_error(c, pkt->nsp, refusal.p, refusal.len);
        sbuf_free(&refusal);
        script_release_socket(srv->script, s);
        user_release(srv, s->rooms.user);
        free(s);
        if (r == SCRIPT_PROTOCOL_ERROR) protocol_error(c, "CONNECT data is not a JSON object");
        return;
    }
    sbuf_free(&refusal);
    s->next = c->sockets;
    c->sockets = s;
    nsp->n_sockets++;
    c->eio->connect_deadline_ms = 0;

    char reply[48];
    int n = snprintf(reply, sizeof reply, "{\"sid\":\"%s\"}", s->sid);
    struct sio_out o = {SIO_CONNECT, -1, reply, (size_t)n, 0, NULL, NULL};
    sio_send(s, &o);
    log_debug("sio", "connected sid=%s socket=%s nsp=%s user=%s", c->eio->sid, s->sid, nsp->name,
              s->rooms.user ? s->rooms.user->id : "-");
    script_on_connected(srv->script, s);
}

void sio_socket_close(struct sio_socket *s, const char *reason, int notify_client) {
    if (s->closed) return;
    struct sio_client *c = s->client;
    struct server *srv = c->srv;
    /* The disconnect handler runs first, while the rooms can still be read. */
    script_on_disconnect(srv->script, s, reason);
    s->closed = 1;
    if (notify_client && !c->eio->closed) {
        struct sio_out o = {SIO_DISCONNECT, -1, NULL, 0, 0, NULL, NULL};
        s->closed = 0;
        sio_send(s, &o);
        s->closed = 1;
    }
    room_leave_all(&s->nsp->rooms, &s->rooms);
    s->nsp->n_sockets--;
    script_release_socket(srv->script, s);
    for (struct sio_socket **p = &c->sockets; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    user_release(srv, s->rooms.user);
    s->rooms.user = NULL;
    s->next_dead = srv->dead_sockets;
    srv->dead_sockets = s;
}

void sio_socket_close_session(struct sio_socket *s, uint16_t ws_code, const char *reason) {
    if (!s->closed) eio_close(s->client->eio, ws_code, reason);
}

void sio_free_dead(struct server *srv) {
    while (srv->dead_sockets) {
        struct sio_socket *s = srv->dead_sockets;
        srv->dead_sockets = s->next_dead;
        free(s);
    }
}

void sio_client_on_close(struct sio_client *c, const char *reason) {
    while (c->sockets) sio_socket_close(c->sockets, reason, 0);
}

/* {==================================================================
 * Input
 * =================================================================== */

static void dispatch(struct sio_client *c, const struct sio_packet *pkt, unsigned n_att,
                     void *const *att, const size_t *att_len) {
    struct sio_socket *s = find_socket(c, pkt->nsp);
    if (!s) {
        protocol_error(c, "packet for a namespace that is not joined");
        return;
    }
    int rc;
    if (pkt->type == SIO_EVENT || pkt->type == SIO_BINARY_EVENT)
        rc = script_on_event(c->srv->script, s, pkt->ack_id, pkt->json.p, pkt->json.len, n_att,
                             (const void *const *)att, att_len);
    else
        rc = script_on_ack(c->srv->script, s, pkt->ack_id, pkt->json.p, pkt->json.len, n_att,
                           (const void *const *)att, att_len);
    if (rc == SCRIPT_PROTOCOL_ERROR) protocol_error(c, "malformed event or ack data");
}

void sio_client_on_text(struct sio_client *c, const char *p, size_t n) {
    if (c->pending.expected) {
        protocol_error(c, "text packet while attachments were expected");
        return;
    }
    struct sio_packet pkt;
    if (sio_packet_decode(p, n, &pkt) != 0) {
        protocol_error(c, "malformed Socket.IO packet");
        return;
    }
    switch (pkt.type) {
    case SIO_CONNECT:
        on_connect(c, &pkt);
        return;
    case SIO_DISCONNECT: {
        struct sio_socket *s = find_socket(c, pkt.nsp);
        if (!s) protocol_error(c, "DISCONNECT for a namespace that is not joined");
        else sio_socket_close(s, "client namespace disconnect", 0);
        return;
    }
    case SIO_CONNECT_ERROR:
        protocol_error(c, "CONNECT_ERROR from a client");
        return;
    case SIO_BINARY_EVENT:
    case SIO_BINARY_ACK:
        if (pkt.attachments > 0) {
            if (!find_socket(c, pkt.nsp)) {
                protocol_error(c, "packet for a namespace that is not joined");
                return;
            }
            c->pending.text = malloc(n);
            if (!c->pending.text) {
                eio_close(c->eio, WS_CLOSE_INTERNAL, "out of memory");
                return;
            }
            memcpy(c->pending.text, p, n);
            c->pending.len = n;
            c->pending.expected = pkt.attachments;
            return;
        }
        __attribute__((fallthrough)); /* no attachments: delivered at once */
    case SIO_EVENT:
    case SIO_ACK:
        dispatch(c, &pkt, 0, NULL, NULL);
        return;
    }
}

void sio_client_on_binary(struct sio_client *c, const uint8_t *p, size_t n) {
    struct pending_binary *pb = &c->pending;
    if (!pb->expected) {
        protocol_error(c, "binary message while no attachment was expected");
        return;
    }
    void *copy = malloc(n ? n : 1);
    if (!copy) {
        eio_close(c->eio, WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    if (n) memcpy(copy, p, n);
    pb->att[pb->got] = copy;
    pb->att_len[pb->got++] = n;
    if (pb->got < pb->expected) return;

    /* Complete: take it out of the client first, since dispatch may close it. */
    struct pending_binary done = *pb;
    memset(pb, 0, sizeof *pb);
    struct sio_packet pkt;
    sio_packet_decode(done.text, done.len, &pkt);
    dispatch(c, &pkt, done.got, done.att, done.att_len);
    pending_clear(&done);
}
