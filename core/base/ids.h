/* ids: the identifiers the server makes. Session and socket ids (sids) are
 * unguessable, as a sid authorizes polling requests; ids handed to scripts
 * (messages, files) are unique and increasing. One struct ids per server. */
#ifndef SPACE_IDS_H
#define SPACE_IDS_H

#include <stdint.h>

#define IDS_SID_LEN 20 /* characters of a sid, without the NUL */
#define IDS_ID_LEN 16  /* hex digits of an id, without the NUL */

#define IDS_MAX_WORKERS 64 /* a worker index is one base64 character of the sid */
#define IDS_MS_SHIFT 22    /* an id is wall-clock ms << IDS_MS_SHIFT, then lower bits (as ids_new_id makes it) */
#define IDS_ORIGIN_BITS 10 /* its lowest bits name the process that made it (worker index, node tag) */

struct ids {
    unsigned worker;   /* this process's worker index (--workers), written into sids and ids */
    unsigned node_tag; /* 4 random bits per process (ids_init): ids of two nodes seldom meet */
    uint32_t sid_seq;  /* sequence part of new sids */
    uint64_t last_id;  /* the last id handed out */
};

/* Picks this process's node tag. Call once at start. */
void ids_init(struct ids *ids);

/* A fresh 20-character URL-safe sid (15 bytes: 12 random + the worker
 * index and a sequence; the worker index is character 16 on its own). */
void ids_new_sid(struct ids *ids, char out[IDS_SID_LEN + 1]);
/* The worker index a sid (IDS_SID_LEN characters) was made by, or -1 when
 * it is no sid of ours. */
int ids_worker_of(const char *sid);
/* A unique, increasing id: 16 hex digits: wall clock ms << 22, then a 12-bit
 * sequence (4096 a millisecond before borrowing ahead), then 10 bits naming
 * the process (the worker index and the node tag), so workers sharing one
 * history database never make the same id. Ids sort by time as strings. */
void ids_new_id(struct ids *ids, char out[IDS_ID_LEN + 1]);

#endif
