/* history: the rooms' message history behind one interface table, as the
 * room adapter is (socketio/adapter.h): SQLite by default (history_sqlite.c),
 * and room for another store (Redis streams in a cluster) without touching
 * callers.
 *
 * A message is kept as the JSON text of its data (which already holds its
 * offset), with its event name, under its room and offset. Offsets are the
 * server's ids (ids_new_id: 16 lowercase hex digits, increasing), so they
 * sort as strings. Appends return at once (the write is queued for a worker
 * thread); queries answer through a callback that always runs later, on the
 * loop, never inside the call, and see every row appended before them
 * (read-your-writes), committed or not. */
#ifndef SPACE_HISTORY_H
#define SPACE_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#define HISTORY_OFFSET_LEN 16 /* hex digits of an offset (IDS_ID_LEN) */

struct history_store;

/* One stored message, as a query hands it over (valid during the callback). */
struct history_msg {
    char offset[HISTORY_OFFSET_LEN + 1];
    const char *event; /* "new_message", "new_file" */
    const char *data;  /* the data's JSON text, offset included */
    size_t data_len;
};

/* What a query asks: at most limit messages of the room, either the newest
 * ones before `before` (exclusive; "" = the newest of all), or, when after
 * is set, the oldest ones after `after` (exclusive). */
struct history_query {
    char before[HISTORY_OFFSET_LEN + 1]; /* "" = no bound */
    char after[HISTORY_OFFSET_LEN + 1];  /* "" = not this kind */
    char upto[HISTORY_OFFSET_LEN + 1];   /* "" = no bound, else nothing past it (inclusive): rows
                                            appended after the caller looked are left to live delivery */
    char upto_others[HISTORY_OFFSET_LEN + 1]; /* "": none; else rows another process made (their
                                                 low origin_bits differ from origin) may go up to it */
    unsigned origin, origin_bits;        /* the caller's process in its offsets' lowest bits */
    unsigned limit;                      /* >= 1 */
};

/* The answer: msgs oldest first; has_more says more exist beyond the page
 * (older ones for a `before` query, newer ones for an `after` query). err is
 * NULL on success (msgs may still be empty). Runs on the loop. */
typedef void (*history_query_cb)(void *ud, const struct history_msg *msgs, size_t n, int has_more, const char *err);

/* Counters for /metrics (read on the loop). */
struct history_stats {
    uint64_t appended;     /* rows queued */
    uint64_t written;      /* rows committed */
    uint64_t write_errors; /* rows lost to a failed write (disk full, locked, too large) */
    uint64_t trimmed;      /* rows deleted by the limits */
    uint64_t pending;      /* rows queued, not yet committed */
};

struct history_ops {
    /* Queues one message (room, offset from ids_new_id, event, the data's
     * JSON). 0, or -1 when it was dropped (history off, queue full, out of
     * memory: counted). Never blocks on the disk. */
    int (*append)(struct history_store *st, const char *room, size_t room_len, const char *offset,
                  const char *event, const char *json, size_t json_len);
    /* Starts a query; cb runs later on the loop (also with history off: an
     * empty page). 0, or -1 (out of memory; cb will not run). */
    int (*query)(struct history_store *st, const char *room, size_t room_len, const struct history_query *q,
                 history_query_cb cb, void *ud);
    /* The rules: per room at most max_messages, none older than max_age_s;
     * either 0 turns history off. Applied by the writer from its next batch. */
    void (*set_limits)(struct history_store *st, int64_t max_messages, int64_t max_age_s);
    void (*stats)(struct history_store *st, struct history_stats *out);
    /* Writes what is queued, stops the writer and frees the store once the
     * queries in flight have answered. Call on the loop thread, with the
     * loop still able to run once more (the store's handles close). */
    void (*close)(struct history_store *st);
};

struct history_store {
    const struct history_ops *ops;
};

/* Opens (creating it and its directory when missing) the SQLite database
 * at path and starts its writer. *max_offset is the largest offset stored
 * (0 when none): the caller raises its id sequence above it so offsets keep
 * increasing across a restart. NULL with err on failure. */
struct history_store *history_sqlite_open(void *uv_loop, const char *path, uint64_t *max_offset, char *err,
                                          size_t errlen);

/* The offset of a millisecond timestamp: offsets before it are older. */
void history_offset_of_ms(uint64_t ms, char out[HISTORY_OFFSET_LEN + 1]);

#endif
