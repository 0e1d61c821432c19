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
 * not it was committed) and answers on the loop. */
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

#define MAX_PENDING_ROWS 100000   /* queued rows; past it appends are dropped (the disk is stuck) */
#define GROUP_COMMIT_MS 500        /* a batch gathers this long before its transaction */
#define GROUP_COMMIT_ROWS 5000    /* or until this many rows wait */
#define TRIM_EVERY 16             /* a room is trimmed at about one append in this many */
#define AGE_SWEEP_MS 600000       /* rows past max_age_s are deleted this often (and at start) */
#define MAX_IDLE_READERS 8        /* read connections kept between queries */
#define BUSY_TIMEOUT_MS 5000      /* another process (--workers) holding the write lock */
#define SCHEMA_WAIT_MS 5000       /* at start, another process creating the database */
#define ERROR_LOG_EVERY_MS 10000  /* at most one log line of write errors per this */
#define MAX_OFFSET_UNBOUNDED "~" /* above every hex string */

/* A queued row, one allocation: the struct, then room, event and data,
 * each NUL-terminated. */
struct row {
    struct row *next;
    struct row *same_room; /* the writer's: the next row of this row's room in the batch */
    char offset[HISTORY_OFFSET_LEN + 1];
    char *room;
    size_t room_len;
    char *event;
    char *data;
    size_t data_len;
};

struct sqlite_store {
    struct history_store base;
    uv_loop_t *loop;
    char *path;
    uv_thread_t writer;
    uv_async_t async; /* the writer -> the loop: write errors to log */
    sqlite3 *wdb;     /* the writer's connection (its thread only, once started) */

    /* Shared with the writer and the query jobs, under mu. */
    uv_mutex_t mu;
    uv_cond_t cv;
    struct row *pending, **pending_tail;
    size_t n_pending;
    struct row *inflight; /* the batch being written */
    size_t n_inflight;
    int stop;
    int writer_idle;  /* the writer waits for a row: an append wakes it */
    int64_t full_trim; /* > 0: trim every room to this many rows (the rules changed) */
    int64_t max_messages, max_age_s; /* the writer's copy of the limits */
    uint64_t appended, written, write_errors, trimmed;
    uint64_t errors_unlogged;
    char last_error[256];
    sqlite3 *idle_readers[MAX_IDLE_READERS];
    unsigned n_idle_readers;

    /* The loop's own. */
    int64_t loop_max_messages, loop_max_age_s; /* 0 in either: off */
    unsigned queries; /* in flight: the store is freed after the last */
    int closing, async_closed;
    uint64_t last_log_ms;

    /* The writer's own. */
    uint64_t rng;           /* xorshift state: which appends trim their room */
    uint64_t next_sweep_ms; /* the next age sweep */
};

void history_offset_of_ms(uint64_t ms, char out[HISTORY_OFFSET_LEN + 1]) {
    static const char hex[] = "0123456789abcdef";
    uint64_t v = ms << IDS_MS_SHIFT; /* offsets are ids */
    for (int i = HISTORY_OFFSET_LEN - 1; i >= 0; i--, v >>= 4) out[i] = hex[v & 15];
    out[HISTORY_OFFSET_LEN] = 0;
}

static struct row *row_new(const char *room, size_t room_len, const char *offset, const char *event,
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

static void rows_free(struct row *r) {
    while (r) {
        struct row *next = r->next;
        free(r);
        r = next;
    }
}

/* The oldest offset the age limit keeps. */
static void age_bound(int64_t max_age_s, char out[HISTORY_OFFSET_LEN + 1]) {
    uint64_t now = clock_wall_ms(), age_ms = (uint64_t)max_age_s * 1000;
    history_offset_of_ms(now > age_ms ? now - age_ms : 0, out);
}

/* {==================================================================
 * The writer thread
 * =================================================================== */

static const char SQL_INSERT[] = "INSERT INTO chunks(room, first, last, n, body) VALUES (?1, ?2, ?3, ?4, ?5)";
static const char SQL_SWEEP_AGE[] = "DELETE FROM chunks WHERE last < ?1";
static const char SQL_SWEEP_COUNT[] = "SELECT coalesce(sum(n), 0) FROM chunks WHERE last < ?1";

static uint64_t xorshift(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return *s = x;
}

static int step_done(sqlite3_stmt *s) {
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Trims one room: chunks wholly past its newest keep messages or the age
 * limit are deleted; exact: the chunk that straddles keep is rewritten to
 * the messages within it (a change of the rules; else that chunk waits, and
 * pages hide what is past the limit). Adds the chunks deleted to *trimmed. */
static int trim_room(sqlite3 *db, const char *room, size_t room_len, int64_t keep, const char *age, int exact,
                     uint64_t *trimmed) {
    sqlite3_stmt *s = NULL, *del = NULL, *upd = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT rowid, last, n, body FROM chunks WHERE room = ?1 AND last >= ?2 "
                                    "ORDER BY last DESC", -1, &s, NULL);
    if (rc != SQLITE_OK) return rc;
    sqlite3_bind_text(s, 1, room, (int)room_len, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, age, -1, SQLITE_STATIC);
    int64_t cum = 0, rewrite_id = 0, rewrite_n = 0;
    char cut[HISTORY_OFFSET_LEN + 1] = "";   /* chunks whose newest is at or before it go ("": none) */
    char first[HISTORY_OFFSET_LEN + 1] = ""; /* the rewritten chunk's oldest message */
    struct sbuf body = {0};
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t n = sqlite3_column_int64(s, 2);
        if (cum >= keep) { /* wholly past the limit: it and every older one */
            snprintf(cut, sizeof cut, "%s", (const char *)sqlite3_column_text(s, 1));
            break;
        }
        if (exact && cum + n > keep) { /* keep its newest keep - cum */
            const char *p = sqlite3_column_blob(s, 3), *end = p + sqlite3_column_bytes(s, 3);
            struct chunk_msg m;
            for (int64_t i = 0; i < n - (keep - cum) && chunk_next(&p, end, &m) == 0;) i++;
            const char *q = p;
            if (chunk_next(&q, end, &m) == 0 && !sbuf_append(&body, p, (size_t)(end - p))) {
                memcpy(first, m.offset, sizeof first);
                rewrite_id = sqlite3_column_int64(s, 0);
                rewrite_n = keep - cum;
                *trimmed += (uint64_t)(n - rewrite_n);
            }
        }
        cum += n;
    }
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
    sqlite3_finalize(s);
    if (rc == SQLITE_OK && rewrite_id) {
        rc = sqlite3_prepare_v2(db, "UPDATE chunks SET first = ?2, n = ?3, body = ?4 WHERE rowid = ?1", -1, &upd, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int64(upd, 1, rewrite_id);
            sqlite3_bind_text(upd, 2, first, HISTORY_OFFSET_LEN, SQLITE_STATIC);
            sqlite3_bind_int64(upd, 3, rewrite_n);
            sqlite3_bind_blob(upd, 4, body.p, (int)body.len, SQLITE_STATIC);
            rc = step_done(upd);
        }
        sqlite3_finalize(upd);
    }
    sbuf_free(&body);
    /* The messages of the chunks that go are counted first (for /metrics). */
    static const char *const sql[2] = {
        "SELECT coalesce(sum(n), 0) FROM chunks WHERE room = ?1 AND (last <= ?2 OR last < ?3)",
        "DELETE FROM chunks WHERE room = ?1 AND (last <= ?2 OR last < ?3)",
    };
    for (int i = 0; i < 2 && rc == SQLITE_OK; i++) {
        rc = sqlite3_prepare_v2(db, sql[i], -1, &del, NULL);
        if (rc != SQLITE_OK) break;
        sqlite3_bind_text(del, 1, room, (int)room_len, SQLITE_STATIC);
        sqlite3_bind_text(del, 2, cut, -1, SQLITE_STATIC);
        sqlite3_bind_text(del, 3, age, -1, SQLITE_STATIC);
        if (i == 0 && sqlite3_step(del) == SQLITE_ROW) *trimmed += (uint64_t)sqlite3_column_int64(del, 0);
        rc = step_done(del);
        sqlite3_finalize(del);
        del = NULL;
    }
    return rc;
}

/* The rows of one room in a batch, in the order appended (which is the
 * order of their offsets). */
struct room_rows {
    struct row *head, *tail;
    size_t n;
};

/* Writes one batch in one transaction, one chunk per room: SQLITE_OK, or
 * the failing code with the message in err. *trimmed counts the chunks the
 * limits deleted. */
static int write_batch(struct sqlite_store *st, sqlite3 *db, struct row *batch, size_t n, int64_t max_messages,
                       int64_t max_age_s, int64_t full_trim, uint64_t *trimmed, char *err, size_t errlen) {
    sqlite3_stmt *ins = NULL, *sweep = NULL, *rooms = NULL;
    char bound[HISTORY_OFFSET_LEN + 1];
    age_bound(max_age_s, bound);
    /* The batch by room, in one pass (a hash map, not a sort). */
    struct room_rows *v = n ? malloc(n * sizeof *v) : NULL;
    struct hmap by_room = {0};
    struct sbuf body = {0};
    int rc = n && !v ? SQLITE_NOMEM : SQLITE_OK;
    size_t k = 0;
    for (struct row *r = batch; r && rc == SQLITE_OK; r = r->next) {
        r->same_room = NULL;
        struct room_rows *g = hmap_get(&by_room, r->room, r->room_len);
        if (g) {
            g->tail->same_room = r;
            g->tail = r;
            g->n++;
            continue;
        }
        g = &v[k++];
        *g = (struct room_rows){r, r, 1};
        if (hmap_put(&by_room, r->room, r->room_len, g) != 0) rc = SQLITE_NOMEM;
    }
    hmap_free(&by_room);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    int began = rc == SQLITE_OK;
    if (rc == SQLITE_OK) rc = sqlite3_prepare_v2(db, SQL_INSERT, -1, &ins, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_prepare_v2(db, SQL_SWEEP_AGE, -1, &sweep, NULL);
    for (size_t i = 0; i < k && rc == SQLITE_OK; i++) {
        const struct room_rows *g = &v[i];
        sbuf_reset(&body);
        for (const struct row *r = g->head; r && rc == SQLITE_OK; r = r->same_room)
            if (chunk_append(&body, r->offset, r->event, r->data, r->data_len)) rc = SQLITE_NOMEM;
        if (rc != SQLITE_OK) break;
        sqlite3_bind_text(ins, 1, g->head->room, (int)g->head->room_len, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, g->head->offset, HISTORY_OFFSET_LEN, SQLITE_STATIC);
        sqlite3_bind_text(ins, 3, g->tail->offset, HISTORY_OFFSET_LEN, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 4, (int64_t)g->n);
        sqlite3_bind_blob(ins, 5, body.p, (int)body.len, SQLITE_STATIC);
        rc = step_done(ins);
        /* The walk to the room's limit, at about one chunk in TRIM_EVERY. */
        if (rc == SQLITE_OK && !full_trim && xorshift(&st->rng) % TRIM_EVERY == 0)
            rc = trim_room(db, g->head->room, g->head->room_len, max_messages, bound, 0, trimmed);
    }
    if (rc == SQLITE_OK && full_trim > 0) { /* the rules changed: every room, exactly */
        rc = sqlite3_prepare_v2(db, "SELECT DISTINCT room FROM chunks", -1, &rooms, NULL);
        while (rc == SQLITE_OK && sqlite3_step(rooms) == SQLITE_ROW) {
            const char *room = (const char *)sqlite3_column_text(rooms, 0);
            if (room) rc = trim_room(db, room, (size_t)sqlite3_column_bytes(rooms, 0), full_trim, bound, 1, trimmed);
        }
    }
    uint64_t now = clock_wall_ms();
    if (rc == SQLITE_OK && now >= st->next_sweep_ms) { /* rooms nobody writes to any more */
        sqlite3_stmt *count = NULL;
        if (sqlite3_prepare_v2(db, SQL_SWEEP_COUNT, -1, &count, NULL) == SQLITE_OK) {
            sqlite3_bind_text(count, 1, bound, HISTORY_OFFSET_LEN, SQLITE_STATIC);
            if (sqlite3_step(count) == SQLITE_ROW) *trimmed += (uint64_t)sqlite3_column_int64(count, 0);
        }
        sqlite3_finalize(count);
        sqlite3_bind_text(sweep, 1, bound, HISTORY_OFFSET_LEN, SQLITE_STATIC);
        rc = step_done(sweep);
    }
    sqlite3_finalize(rooms);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc == SQLITE_OK && now >= st->next_sweep_ms) st->next_sweep_ms = now + AGE_SWEEP_MS;
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s (%s)", sqlite3_errmsg(db), sqlite3_errstr(rc));
        if (began) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    sqlite3_finalize(ins);
    sqlite3_finalize(sweep);
    sbuf_free(&body);
    free(v);
    return rc;
}

static void writer_main(void *arg) {
    struct sqlite_store *st = arg;
    uv_mutex_lock(&st->mu);
    for (;;) {
        while (!st->pending && !st->stop && !st->full_trim) {
            st->writer_idle = 1;
            uv_cond_wait(&st->cv, &st->mu);
            st->writer_idle = 0;
        }
        if (!st->pending && !st->full_trim) break; /* stopping, and everything is written */
        /* Let the batch gather (a stop wakes us at once). */
        if (!st->stop && st->n_pending < GROUP_COMMIT_ROWS)
            uv_cond_timedwait(&st->cv, &st->mu, (uint64_t)GROUP_COMMIT_MS * 1000000);
        struct row *batch = st->pending;
        size_t n = st->n_pending;
        st->inflight = batch;
        st->n_inflight = n;
        st->pending = NULL;
        st->pending_tail = &st->pending;
        st->n_pending = 0;
        int64_t max_messages = st->max_messages, max_age_s = st->max_age_s, full_trim = st->full_trim;
        st->full_trim = 0;
        uv_mutex_unlock(&st->mu);

        uint64_t trimmed = 0;
        char err[256] = "";
        int rc = write_batch(st, st->wdb, batch, n, max_messages, max_age_s, full_trim, &trimmed, err, sizeof err);

        uv_mutex_lock(&st->mu);
        st->inflight = NULL;
        st->n_inflight = 0;
        if (rc == SQLITE_OK) {
            st->written += n;
            st->trimmed += trimmed;
        } else {
            st->write_errors += n;
            st->errors_unlogged += n;
            snprintf(st->last_error, sizeof st->last_error, "%s", err);
            uv_async_send(&st->async);
        }
        uv_mutex_unlock(&st->mu);
        rows_free(batch); /* no query copies from it any more */
        uv_mutex_lock(&st->mu);
    }
    uv_mutex_unlock(&st->mu);
}

/* On the loop: the writer's errors, logged at most once per ERROR_LOG_EVERY_MS. */
static void on_async(uv_async_t *a) {
    struct sqlite_store *st = a->data;
    uint64_t now = clock_wall_ms();
    if (st->last_log_ms && now - st->last_log_ms < ERROR_LOG_EVERY_MS) return; /* the count waits for the next */
    char err[256];
    uv_mutex_lock(&st->mu);
    uint64_t n = st->errors_unlogged, total = st->write_errors;
    st->errors_unlogged = 0;
    snprintf(err, sizeof err, "%s", st->last_error);
    uv_mutex_unlock(&st->mu);
    if (!n) return;
    st->last_log_ms = now;
    char q[LOG_QUOTED_MAX];
    log_error("history", "write failed, messages not kept lost=%llu total_lost=%llu error=\"%s\"",
              (unsigned long long)n, (unsigned long long)total, log_quoted(q, sizeof q, err));
}

/* {==================================================================
 * Queries
 * =================================================================== */

struct query_job {
    uv_work_t work;
    struct sqlite_store *st;
    char *room;
    size_t room_len;
    struct history_query q;
    char min_off[HISTORY_OFFSET_LEN + 1]; /* the age limit, then also the room's max_messages-th newest */
    int64_t max_messages;                 /* the rule at the call */
    int off;                              /* history is off: an empty page */
    history_query_cb cb;
    void *ud;
    struct row *copies; /* the room's rows pending or in flight at the call (within the age and upto) */
    struct row **rows;  /* the answer, oldest first */
    size_t n_rows;
    int has_more;
    char err[256];
};

static int in_bounds(const struct query_job *j, const char *off) {
    if (strcmp(off, j->min_off) < 0) return 0;
    if (!j->q.upto[0] || strcmp(off, j->q.upto) <= 0) return 1;
    /* Past what this process had made at the call: a row of another process
     * (sharing the database) made until the call may still be in. */
    if (!j->q.upto_others[0] || strcmp(off, j->q.upto_others) > 0 || !j->q.origin_bits) return 0;
    unsigned origin = (unsigned)strtoul(off + HISTORY_OFFSET_LEN - 3, NULL, 16) & ((1u << j->q.origin_bits) - 1);
    return origin != j->q.origin;
}

static int in_page(const struct query_job *j, const char *off) {
    if (!in_bounds(j, off)) return 0;
    if (j->q.after[0]) return strcmp(off, j->q.after) > 0;
    return !j->q.before[0] || strcmp(off, j->q.before) < 0;
}

static void copy_matching(struct query_job *j, struct row *r, struct row ***tail) {
    for (; r; r = r->next) {
        if (r->room_len != j->room_len || memcmp(r->room, j->room, j->room_len) != 0 || !in_bounds(j, r->offset))
            continue;
        struct row *c = row_new(r->room, r->room_len, r->offset, r->event, r->data, r->data_len);
        if (!c) continue; /* out of memory: the row may still be read from the disk */
        **tail = c;
        *tail = &c->next;
    }
}

static sqlite3 *reader_take(struct sqlite_store *st, char *err, size_t errlen) {
    uv_mutex_lock(&st->mu);
    sqlite3 *db = st->n_idle_readers ? st->idle_readers[--st->n_idle_readers] : NULL;
    uv_mutex_unlock(&st->mu);
    if (db) return db;
    if (sqlite3_open_v2(st->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "open %s: %s", st->path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    sqlite3_exec(db, "PRAGMA query_only = 1", NULL, NULL, NULL);
    return db;
}

static void reader_give_back(struct sqlite_store *st, sqlite3 *db) {
    uv_mutex_lock(&st->mu);
    if (st->n_idle_readers < MAX_IDLE_READERS) {
        st->idle_readers[st->n_idle_readers++] = db;
        db = NULL;
    }
    uv_mutex_unlock(&st->mu);
    sqlite3_close(db);
}

static int by_offset(const void *a, const void *b) {
    return strcmp((*(const struct row *const *)a)->offset, (*(const struct row *const *)b)->offset);
}

static int by_offset_desc(const void *a, const void *b) { return by_offset(b, a); }

/* A growable array of rows (each owned). */
struct rowvec {
    struct row **v;
    size_t n, cap;
};

static int vec_push(struct rowvec *x, struct row *r) {
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 64;
        struct row **v = realloc(x->v, cap * sizeof *v);
        if (!v) return -1;
        x->v = v;
        x->cap = cap;
    }
    x->v[x->n++] = r;
    return 0;
}

static void vec_free(struct rowvec *x) {
    for (size_t i = 0; i < x->n; i++) free(x->v[i]);
    free(x->v);
    x->v = NULL;
    x->n = x->cap = 0;
}

/* Reads the room's messages that pass keep() from its chunks into x (which
 * may hold rows already): chunks newest first (or, asc, oldest first, those
 * after `after`), until x holds want rows and no further chunk can hold a
 * nearer one (chunks of processes sharing the database may overlap). */
static int read_chunks(sqlite3 *db, struct query_job *j, int asc, size_t want, struct rowvec *x,
                       int (*keep)(const struct query_job *, const char *)) {
    const char *sql = asc ? "SELECT first, body FROM chunks WHERE room = ?1 AND last > ?2 AND first <= ?3 "
                            "ORDER BY first ASC"
                          : "SELECT last, body FROM chunks WHERE room = ?1 AND first < ?2 AND last >= ?3 "
                            "ORDER BY last DESC";
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK) return rc;
    const char *upto = j->q.upto_others[0] ? j->q.upto_others : j->q.upto[0] ? j->q.upto : MAX_OFFSET_UNBOUNDED;
    sqlite3_bind_text(s, 1, j->room, (int)j->room_len, SQLITE_STATIC);
    if (asc) {
        sqlite3_bind_text(s, 2, j->q.after, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, upto, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_text(s, 2, keep == in_page && j->q.before[0] ? j->q.before : MAX_OFFSET_UNBOUNDED, -1,
                          SQLITE_STATIC);
        sqlite3_bind_text(s, 3, j->min_off, -1, SQLITE_STATIC);
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(s, 0);
        if (!key) continue;
        if (x->n >= want) {
            qsort(x->v, x->n, sizeof *x->v, asc ? by_offset : by_offset_desc);
            const char *cutoff = x->v[want - 1]->offset;
            if (asc ? strcmp(key, cutoff) > 0 : strcmp(key, cutoff) < 0) break;
        }
        const char *p = sqlite3_column_blob(s, 1), *end = p + sqlite3_column_bytes(s, 1);
        struct chunk_msg m;
        while (chunk_next(&p, end, &m) == 0) {
            if (!keep(j, m.offset)) continue;
            char ev[CHUNK_EVENT_MAX + 1];
            memcpy(ev, m.event, m.event_len);
            ev[m.event_len] = 0;
            struct row *r = row_new(j->room, j->room_len, m.offset, ev, m.data, m.data_len);
            if (!r || vec_push(x, r) != 0) {
                free(r);
                rc = SQLITE_NOMEM;
                break;
            }
        }
        if (rc == SQLITE_NOMEM) break;
    }
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
    sqlite3_finalize(s);
    return rc;
}

/* Raises j->min_off to the room's max_messages-th newest message, counting
 * the copies (newer than what is on disk) first: trimming is amortized, so
 * the disk may hold a few messages more than the rule, and no page shows them. */
static int apply_count_limit(struct query_job *j, sqlite3 *db) {
    size_t p = 0;
    for (struct row *r = j->copies; r; r = r->next) p++;
    char floor[HISTORY_OFFSET_LEN + 1] = "";
    if ((int64_t)p >= j->max_messages) {
        struct row *r = j->copies;
        for (size_t i = 0; i < p - (size_t)j->max_messages; i++) r = r->next;
        memcpy(floor, r->offset, sizeof floor);
    } else {
        struct rowvec x = {0};
        size_t want = (size_t)j->max_messages - p;
        int rc = read_chunks(db, j, 0, want, &x, in_bounds);
        if (rc == SQLITE_OK && x.n >= want) {
            qsort(x.v, x.n, sizeof *x.v, by_offset_desc);
            memcpy(floor, x.v[want - 1]->offset, sizeof floor);
        }
        vec_free(&x);
        if (rc != SQLITE_OK) return rc;
    }
    if (floor[0] && strcmp(floor, j->min_off) > 0) memcpy(j->min_off, floor, sizeof floor);
    return SQLITE_OK;
}

static void query_work(uv_work_t *w) {
    struct query_job *j = w->data;
    if (j->off) return;
    struct sqlite_store *st = j->st;
    sqlite3 *db = reader_take(st, j->err, sizeof j->err);
    if (!db) return;
    int rc = apply_count_limit(j, db);
    /* The copies this page takes, then the disk's. */
    struct rowvec x = {0};
    for (struct row *r = j->copies, *next; r; r = next) {
        next = r->next;
        if (rc == SQLITE_OK && in_page(j, r->offset) && vec_push(&x, r) == 0) continue;
        free(r);
    }
    j->copies = NULL;
    int after = j->q.after[0] != 0;
    if (rc == SQLITE_OK) rc = read_chunks(db, j, after, (size_t)j->q.limit + 1, &x, in_page);
    if (rc != SQLITE_OK) snprintf(j->err, sizeof j->err, "%s", rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(db));
    reader_give_back(st, db);
    if (j->err[0]) {
        vec_free(&x);
        return;
    }
    /* Sorted, each message once (a copy written meanwhile is read from the
     * disk too; rows of another process with the same offset differ in their data). */
    struct row **all = x.v;
    size_t n = x.n;
    if (n) qsort(all, n, sizeof *all, by_offset);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && strcmp(all[m - 1]->offset, all[i]->offset) == 0 && all[m - 1]->data_len == all[i]->data_len &&
            memcmp(all[m - 1]->data, all[i]->data, all[i]->data_len) == 0) {
            free(all[i]);
            continue;
        }
        all[m++] = all[i];
    }
    size_t limit = j->q.limit;
    j->has_more = m > limit;
    size_t from = 0, count = m;
    if (m > limit) {
        if (after) { /* the oldest `limit` after the bound */
            for (size_t i = limit; i < m; i++) free(all[i]);
        } else { /* the newest `limit` before it */
            from = m - limit;
            for (size_t i = 0; i < from; i++) free(all[i]);
        }
        count = limit;
    }
    if (from) memmove(all, all + from, count * sizeof *all);
    j->rows = all;
    j->n_rows = count;
}

static void store_maybe_free(struct sqlite_store *st);

static void query_done(uv_work_t *w, int status) {
    struct query_job *j = w->data;
    struct sqlite_store *st = j->st;
    if (status != 0 && !j->err[0]) snprintf(j->err, sizeof j->err, "cancelled");
    struct history_msg *msgs = j->n_rows ? calloc(j->n_rows, sizeof *msgs) : NULL;
    if (j->n_rows && !msgs) snprintf(j->err, sizeof j->err, "out of memory");
    for (size_t i = 0; msgs && i < j->n_rows; i++) {
        memcpy(msgs[i].offset, j->rows[i]->offset, sizeof msgs[i].offset);
        msgs[i].event = j->rows[i]->event;
        msgs[i].data = j->rows[i]->data;
        msgs[i].data_len = j->rows[i]->data_len;
    }
    if (j->err[0]) {
        char q[LOG_QUOTED_MAX];
        log_error("history", "query failed error=\"%s\"", log_quoted(q, sizeof q, j->err));
        j->cb(j->ud, NULL, 0, 0, j->err);
    } else {
        j->cb(j->ud, msgs, msgs ? j->n_rows : 0, j->has_more, NULL);
    }
    free(msgs);
    for (size_t i = 0; i < j->n_rows; i++) free(j->rows[i]);
    free(j->rows);
    rows_free(j->copies);
    free(j->room);
    free(j);
    st->queries--;
    store_maybe_free(st);
}

static int sqlite_query(struct history_store *base, const char *room, size_t room_len, const struct history_query *q,
                        history_query_cb cb, void *ud) {
    struct sqlite_store *st = (struct sqlite_store *)base;
    struct query_job *j = calloc(1, sizeof *j);
    if (!j || !(j->room = malloc(room_len + 1))) {
        free(j);
        return -1;
    }
    memcpy(j->room, room, room_len);
    j->room[room_len] = 0;
    j->room_len = room_len;
    j->q = *q;
    if (!j->q.limit) j->q.limit = 1;
    j->st = st;
    j->cb = cb;
    j->ud = ud;
    j->work.data = j;
    j->off = st->loop_max_messages == 0 || st->loop_max_age_s == 0;
    j->max_messages = st->loop_max_messages;
    age_bound(st->loop_max_age_s, j->min_off);
    if (!j->off) {
        struct row **tail = &j->copies;
        uv_mutex_lock(&st->mu);
        copy_matching(j, st->inflight, &tail);
        copy_matching(j, st->pending, &tail);
        uv_mutex_unlock(&st->mu);
    }
    if (uv_queue_work(st->loop, &j->work, query_work, query_done) != 0) {
        rows_free(j->copies);
        free(j->room);
        free(j);
        return -1;
    }
    st->queries++;
    return 0;
}

/* {==================================================================
 * Appends, limits, stats, open and close
 * =================================================================== */

static int sqlite_append(struct history_store *base, const char *room, size_t room_len, const char *offset,
                         const char *event, const char *json, size_t json_len) {
    struct sqlite_store *st = (struct sqlite_store *)base;
    if (st->closing || st->loop_max_messages == 0 || st->loop_max_age_s == 0) return -1;
    struct row *r = row_new(room, room_len, offset, event, json, json_len);
    uv_mutex_lock(&st->mu);
    if (!r || st->n_pending >= MAX_PENDING_ROWS) {
        st->write_errors++;
        st->errors_unlogged++;
        snprintf(st->last_error, sizeof st->last_error, "%s",
                 r ? "the write queue is full (the disk does not keep up)" : "out of memory");
        uv_mutex_unlock(&st->mu);
        free(r);
        on_async(&st->async);
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

static void store_maybe_free(struct sqlite_store *st) {
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
    store_maybe_free(st);
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
    on_async(&st->async); /* errors of the last batches */
    uv_close((uv_handle_t *)&st->async, on_async_closed);
}

static const struct history_ops sqlite_ops = {
    .append = sqlite_append,
    .query = sqlite_query,
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
    if (uv_thread_create(&st->writer, writer_main, st) != 0) {
        snprintf(err, errlen, "cannot start the history writer thread");
        uv_mutex_destroy(&st->mu);
        uv_cond_destroy(&st->cv);
        goto fail;
    }
    uv_async_init(st->loop, &st->async, on_async);
    st->async.data = st;
    uv_unref((uv_handle_t *)&st->async); /* the loop may end while the store is open */
    return &st->base;
fail:
    sqlite3_close(st->wdb);
    free(st->path);
    free(st);
    return NULL;
}
