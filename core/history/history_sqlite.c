/* history_sqlite: the history store in one SQLite database (WAL mode).
 *
 * On disk a room's history is a run of chunks: one row per room per batch,
 * holding that batch's messages of the room (oldest first) with the first
 * and last offset and the count, indexed by (room, last) and (room, first):
 *
 *   chunks(room, first, last, n, body)
 *   body = { OFFSET ' ' EVENT ' ' LENGTH ':' DATA } * n
 *
 * so the writer pays a B-tree insert per room and batch, not per message.
 *
 * Writes: append() links a row into `pending` (under the mutex), waking the
 * writer thread only when it sleeps with nothing to do; the writer lets a
 * batch gather for GROUP_COMMIT_MS, takes everything pending (moved to
 * `inflight`), groups it by room, writes one chunk per room in one
 * transaction, trims, commits, and drops the batch. A failed batch (disk
 * full, locked, file too large) is rolled back, counted and logged from the
 * loop (an async handle), and the writer goes on with the next one: live
 * chat never waits.
 *
 * Trimming: at about one chunk in TRIM_EVERY its room loses the chunks wholly
 * past its newest max_messages messages or the age limit, and chunks past
 * the age limit are swept every AGE_SWEEP_MS, so a room may hold a few
 * messages more than the rule for a while; queries hide them (a page ends
 * at the room's max_messages-th newest message, and at the age limit). When
 * the rules change, the writer trims every room exactly (the chunk that
 * straddles the limit is rewritten) to the smaller of the old and the new
 * limit, so what was hidden does not come back with a larger one.
 *
 * Reads: query() copies the room's rows still pending or in flight, then a
 * job on libuv's thread pool reads the page from an idle read connection
 * (one per job at a time, kept for the next): the chunks nearest the page's
 * bound first, until no further chunk can hold a nearer message; it merges
 * the copies in (so a message appended before the query is seen whether or
 * not it was committed) and answers on the loop.
 *
 * This file: offsets, rows, appends, limits, stats, open and close; the
 * writer thread is sqlite_writer.c, the queries sqlite_reader.c. */
#include "history.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "chunk.h"
#include "clock.h"
#include "hmap.h"
#include "ids.h"
#include "log.h"
#include "sbuf.h"
#include "sqlite_store.h"

void history_offset_of_ms(uint64_t ms, char out[HISTORY_OFFSET_LEN + 1]) {
    static const char hex[] = "0123456789abcdef";
    uint64_t v = ms << IDS_MS_SHIFT; /* offsets are ids */
    for (int i = HISTORY_OFFSET_LEN - 1; i >= 0; i--, v >>= 4) out[i] = hex[v & 15];
    out[HISTORY_OFFSET_LEN] = 0;
}

struct row *sqlite_row_new(const char *room, size_t room_len, const char *offset, const char *event,
                           const char *data, size_t data_len) {
    size_t ev_len = strlen(event);
    struct row *r = malloc(sizeof *r + room_len + 1 + ev_len + 1 + data_len + 1);
    if (!r) return NULL;
    r->next = NULL;
    snprintf(r->offset, sizeof r->offset, "%s", offset);
    r->room = (char *)(r + 1);
    memcpy(r->room, room, room_len);
    r->room[room_len] = 0;
    r->room_len = room_len;
    r->event = r->room + room_len + 1;
    memcpy(r->event, event, ev_len + 1);
    r->data = r->event + ev_len + 1;
    memcpy(r->data, data, data_len);
    r->data[data_len] = 0;
    r->data_len = data_len;
    return r;
}

void sqlite_rows_free(struct row *r) {
    while (r) {
        struct row *next = r->next;
        free(r);
        r = next;
    }
}

/* The oldest offset the age limit keeps. */
void sqlite_age_bound(int64_t max_age_s, char out[HISTORY_OFFSET_LEN + 1]) {
    uint64_t now = clock_wall_ms(), age_ms = (uint64_t)max_age_s * 1000;
    history_offset_of_ms(now > age_ms ? now - age_ms : 0, out);
}

/* {==================================================================
 * Appends, limits, stats, open and close
 * =================================================================== */

static int sqlite_append(struct history_store *base, const char *room, size_t room_len, const char *offset,
                         const char *event, const char *json, size_t json_len) {
    struct sqlite_store *st = (struct sqlite_store *)base;
    if (st->closing || st->loop_max_messages == 0 || st->loop_max_age_s == 0) return -1;
    struct row *r = sqlite_row_new(room, room_len, offset, event, json, json_len);
    uv_mutex_lock(&st->mu);
    if (!r || st->n_pending >= MAX_PENDING_ROWS) {
        st->write_errors++;
        st->errors_unlogged++;
        snprintf(st->last_error, sizeof st->last_error, "%s",
                 r ? "the write queue is full (the disk does not keep up)" : "out of memory");
        uv_mutex_unlock(&st->mu);
        free(r);
        sqlite_on_async(&st->async);
        return -1;
    }
    *st->pending_tail = r;
    st->pending_tail = &r->next;
    st->n_pending++;
    st->appended++;
    if (st->writer_idle) uv_cond_signal(&st->cv); /* else it is gathering or writing, and takes this too */
    uv_mutex_unlock(&st->mu);
    return 0;
}

static void sqlite_set_limits(struct history_store *base, int64_t max_messages, int64_t max_age_s) {
    struct sqlite_store *st = (struct sqlite_store *)base;
    st->loop_max_messages = max_messages;
    st->loop_max_age_s = max_age_s;
    uv_mutex_lock(&st->mu);
    /* What the old limit hid is gone for good: every room to the smaller one.
     * Off keeps what is kept (under the old limits) until history is on again. */
    int64_t keep = max_messages > 0 && max_messages < st->max_messages ? max_messages : st->max_messages;
    if (max_messages != st->max_messages || max_age_s != st->max_age_s) {
        st->full_trim = keep;
        uv_cond_signal(&st->cv);
    }
    if (max_messages > 0) st->max_messages = max_messages;
    if (max_age_s > 0) st->max_age_s = max_age_s;
    uv_mutex_unlock(&st->mu);
}

static void sqlite_stats(struct history_store *base, struct history_stats *out) {
    struct sqlite_store *st = (struct sqlite_store *)base;
    uv_mutex_lock(&st->mu);
    out->appended = st->appended;
    out->written = st->written;
    out->write_errors = st->write_errors;
    out->trimmed = st->trimmed;
    out->pending = st->n_pending + st->n_inflight;
    uv_mutex_unlock(&st->mu);
}

void sqlite_store_maybe_free(struct sqlite_store *st) {
    if (!st->closing || !st->async_closed || st->queries) return;
    for (unsigned i = 0; i < st->n_idle_readers; i++) sqlite3_close(st->idle_readers[i]);
    uv_mutex_destroy(&st->mu);
    uv_cond_destroy(&st->cv);
    free(st->path);
    free(st);
}

static void on_async_closed(uv_handle_t *h) {
    struct sqlite_store *st = h->data;
    st->async_closed = 1;
    sqlite_store_maybe_free(st);
}

static void sqlite_close(struct history_store *base) {
    struct sqlite_store *st = (struct sqlite_store *)base;
    if (!st || st->closing) return;
    st->closing = 1;
    uv_mutex_lock(&st->mu);
    st->stop = 1;
    uv_cond_signal(&st->cv);
    uv_mutex_unlock(&st->mu);
    uv_thread_join(&st->writer); /* it writes what is queued first */
    sqlite3_close(st->wdb);
    st->wdb = NULL;
    sqlite_on_async(&st->async); /* errors of the last batches */
    uv_close((uv_handle_t *)&st->async, on_async_closed);
}

static const struct history_ops sqlite_ops = {
    .append = sqlite_append,
    .query = sqlite_store_query,
    .set_limits = sqlite_set_limits,
    .stats = sqlite_stats,
    .close = sqlite_close,
};

static int mkdir_parents(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return 0;
}

/* The chunks of a room are ranges of its two indexes. Processes sharing the
 * database (--workers) each write chunks of their own. */
static const char SQL_SCHEMA[] =
    /* Large pages: a batch writes a few megabytes, and each page is a write
     * to the WAL and another at the checkpoint (for a new database only). */
    "PRAGMA page_size = 65536;"
    "PRAGMA journal_mode = WAL;"
    "PRAGMA synchronous = NORMAL;"
    "PRAGMA cache_size = -65536;"
    "CREATE TABLE IF NOT EXISTS chunks(room TEXT NOT NULL, first TEXT NOT NULL, last TEXT NOT NULL, "
    "n INTEGER NOT NULL, body BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS chunks_room_last ON chunks(room, last);"
    "CREATE INDEX IF NOT EXISTS chunks_room_first ON chunks(room, first);";

struct history_store *history_sqlite_open(void *uv_loop, const char *path, uint64_t *max_offset, char *err,
                                          size_t errlen) {
    *max_offset = 0;
    struct sqlite_store *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(path))) {
        free(st);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (mkdir_parents(path) != 0) {
        snprintf(err, errlen, "cannot create the directory of %s: %s", path, strerror(errno));
        goto fail;
    }
    if (sqlite3_open_v2(path, &st->wdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path, st->wdb ? sqlite3_errmsg(st->wdb) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(st->wdb, BUSY_TIMEOUT_MS);
    char *msg = NULL;
    int rc;
    /* Workers starting together create the database together: switching to
     * WAL does not wait for the other's lock (no busy handler), so wait here,
     * at start, for up to SCHEMA_WAIT_MS. */
    for (int waited = 0; ((rc = sqlite3_exec(st->wdb, SQL_SCHEMA, NULL, NULL, &msg)) == SQLITE_BUSY ||
                          rc == SQLITE_LOCKED) && waited < SCHEMA_WAIT_MS; waited += 10) {
        sqlite3_free(msg);
        msg = NULL;
        uv_sleep(10);
    }
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, msg ? msg : sqlite3_errmsg(st->wdb));
        sqlite3_free(msg);
        goto fail;
    }
    sqlite3_stmt *s = NULL;
    /* A scan of the table, once at start (no index on the offset alone: every
     * index is paid on every insert). */
    if (sqlite3_prepare_v2(st->wdb, "SELECT max(last) FROM chunks", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
        *max_offset = strtoull((const char *)sqlite3_column_text(s, 0), NULL, 16);
    sqlite3_finalize(s);
    st->base.ops = &sqlite_ops;
    st->loop = uv_loop;
    st->rng = uv_hrtime() | 1;
    st->pending_tail = &st->pending;
    st->max_messages = st->loop_max_messages = 1000;
    st->max_age_s = st->loop_max_age_s = 604800;
    uv_mutex_init(&st->mu);
    uv_cond_init(&st->cv);
    /* The writer signals the async handle only after a failed batch, so
     * the handle may follow the thread (nothing is queued before we return). */
    if (uv_thread_create(&st->writer, sqlite_writer_main, st) != 0) {
        snprintf(err, errlen, "cannot start the history writer thread");
        uv_mutex_destroy(&st->mu);
        uv_cond_destroy(&st->cv);
        goto fail;
    }
    uv_async_init(st->loop, &st->async, sqlite_on_async);
    st->async.data = st;
    uv_unref((uv_handle_t *)&st->async); /* the loop may end while the store is open */
    return &st->base;
fail:
    sqlite3_close(st->wdb);
    free(st->path);
    free(st);
    return NULL;
}

