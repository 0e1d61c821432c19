/* sqlite_writer: the history store's writer thread (see history_sqlite.c). */
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
    sqlite_age_bound(max_age_s, bound);
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

void sqlite_writer_main(void *arg) {
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
        sqlite_rows_free(batch); /* no query copies from it any more */
        uv_mutex_lock(&st->mu);
    }
    uv_mutex_unlock(&st->mu);
}

/* On the loop: the writer's errors, logged at most once per ERROR_LOG_EVERY_MS. */
void sqlite_on_async(uv_async_t *a) {
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

