/* What the session's files (eio.c, poll.c, plain.c) share and nobody else calls. */
#ifndef SPACE_SESSION_INTERNAL_H
#define SPACE_SESSION_INTERNAL_H

#include "eio.h"
#include "ws.h"

/* The WebSocket owner ops of a session's transport. */
extern const struct ws_owner_ops eio_ws_ops;
/* A new session in the hub, its timers started; NULL on OOM. */
struct eio_session *eio_session_new(struct eio_hub *hub, enum eio_kind kind, enum eio_transport tr);
/* Refuses what cannot open a WebSocket session here: a bad upgrade
 * (400/426) or a server shutting down (503). Returns 1 when it answered. */
int eio_refuse_upgrade(struct conn *c, const struct http_request *req);
/* Appends e to the growable array *arr of *len entries and *cap places
 * (doubling from first_cap); -1 on OOM (nothing changed). */
int eio_entries_push(struct poll_entry **arr, uint32_t *len, uint32_t *cap, uint32_t first_cap,
                     struct poll_entry e);

#endif
