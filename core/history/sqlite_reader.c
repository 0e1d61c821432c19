/* sqlite_reader: the history store's queries, on libuv's thread pool (see history_sqlite.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "clock.h"
#include "hmap.h"
#include "ids.h"
#include "log.h"
#include "sbuf.h"
#include "sqlite_store.h"

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
        struct row *c = sqlite_row_new(r->room, r->room_len, r->offset, r->event, r->data, r->data_len);
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
            struct row *r = sqlite_row_new(j->room, j->room_len, m.offset, ev, m.data, m.data_len);
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
    sqlite_rows_free(j->copies);
    free(j->room);
    free(j);
    st->queries--;
    sqlite_store_maybe_free(st);
}

int sqlite_store_query(struct history_store *base, const char *room, size_t room_len, const struct history_query *q,
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
    sqlite_age_bound(st->loop_max_age_s, j->min_off);
    if (!j->off) {
        struct row **tail = &j->copies;
        uv_mutex_lock(&st->mu);
        copy_matching(j, st->inflight, &tail);
        copy_matching(j, st->pending, &tail);
        uv_mutex_unlock(&st->mu);
    }
    if (uv_queue_work(st->loop, &j->work, query_work, query_done) != 0) {
        sqlite_rows_free(j->copies);
        free(j->room);
        free(j);
        return -1;
    }
    st->queries++;
    return 0;
}

