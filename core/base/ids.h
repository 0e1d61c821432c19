/* ids: the identifiers the server makes. Session and socket ids (sids) are
 * unguessable, as a sid authorizes polling requests; ids handed to scripts
 * (messages, files) are unique and increasing. One struct ids per server. */
#ifndef SPACE_IDS_H
#define SPACE_IDS_H

#include <stdint.h>

#define IDS_SID_LEN 20 /* characters of a sid, without the NUL */
#define IDS_ID_LEN 16  /* hex digits of an id, without the NUL */

struct ids {
    uint32_t sid_seq; /* sequence part of new sids */
    uint64_t last_id; /* the last id handed out */
};

/* A fresh 20-character URL-safe sid (15 bytes: 12 random + a sequence). */
void ids_new_sid(struct ids *ids, char out[IDS_SID_LEN + 1]);
/* A unique, increasing id: 16 hex digits (wall clock ms << 12, borrowed ahead when needed). */
void ids_new_id(struct ids *ids, char out[IDS_ID_LEN + 1]);

#endif
