/* sqlite_store: what the SQLite history store's three files share (not
 * part of the interface: history.h is). history_sqlite.c opens, appends,
 * closes; sqlite_writer.c is the writer thread; sqlite_reader.c answers
 * queries on libuv's thread pool. The design is told at the top of
 * history_sqlite.c. */
#ifndef SPACE_SQLITE_STORE_H
#define SPACE_SQLITE_STORE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "history.h"

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
struct row *sqlite_row_new(const char *room, size_t room_len, const char *offset, const char *event,
                           const char *data, size_t data_len);
void sqlite_rows_free(struct row *r);
/* The oldest offset the age limit keeps. */
void sqlite_age_bound(int64_t max_age_s, char out[HISTORY_OFFSET_LEN + 1]);

/* The writer thread's body (arg: the store). */
void sqlite_writer_main(void *arg);
/* The loop's end of the writer's async handle: logs write errors. */
void sqlite_on_async(uv_async_t *a);

/* history_ops.query. */
int sqlite_store_query(struct history_store *base, const char *room, size_t room_len, const struct history_query *q,
                       history_query_cb cb, void *ud);
/* Frees the store once it is closing and no query is in flight. */
void sqlite_store_maybe_free(struct sqlite_store *st);

#endif
