/* Unit tests for core/history (the SQLite store) on a private libuv loop and
 * a fresh directory: a query right after appends sees them before the writer
 * committed (read-your-writes) and answers later, never inside the call;
 * pages (before, after, upto, has_more) come oldest first; no page shows more
 * than max_messages of a room, and a change of the rules trims every room to
 * the smaller limit; a limit of 0 turns history off; close writes what is queued, and
 * a reopened store reports the largest offset; a write past RLIMIT_FSIZE is
 * counted as an error and the store goes on. */
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "check.h"
#include "chunk.h"
#include "history.h"
#include "ids.h"

#define MAX_PAGE 64

struct page {
    int calls;
    size_t n;
    int has_more;
    char offsets[MAX_PAGE][HISTORY_OFFSET_LEN + 1];
    char texts[MAX_PAGE][64];
    char err[256];
};

static void on_page(void *ud, const struct history_msg *msgs, size_t n, int has_more, const char *err) {
    struct page *p = ud;
    p->calls++;
    p->n = n;
    p->has_more = has_more;
    snprintf(p->err, sizeof p->err, "%s", err ? err : "");
    for (size_t i = 0; i < n && i < MAX_PAGE; i++) {
        memcpy(p->offsets[i], msgs[i].offset, sizeof p->offsets[i]);
        snprintf(p->texts[i], sizeof p->texts[i], "%.*s", (int)msgs[i].data_len, msgs[i].data);
    }
}

static char dir[512], path[600];

static void offset_of(unsigned i, char out[HISTORY_OFFSET_LEN + 1]) {
    /* ids as the server makes them: now << 12, increasing */
    static uint64_t base;
    if (!base) base = (uint64_t)time(NULL) * 1000 << IDS_MS_SHIFT;
    snprintf(out, HISTORY_OFFSET_LEN + 1, "%016llx", (unsigned long long)(base + i));
}

static void append(struct history_store *st, const char *room, unsigned i) {
    char off[HISTORY_OFFSET_LEN + 1], json[64];
    offset_of(i, off);
    int n = snprintf(json, sizeof json, "{\"i\":%u}", i);
    CHECK_INT(0, st->ops->append(st, room, strlen(room), off, "new_message", json, (size_t)n));
}

static void query(uv_loop_t *loop, struct history_store *st, const char *room, struct history_query q,
                  struct page *p) {
    memset(p, 0, sizeof *p);
    CHECK_INT(0, st->ops->query(st, room, strlen(room), &q, on_page, p));
    CHECK_INT(0, p->calls); /* never inside the call */
    while (!p->calls) uv_run(loop, UV_RUN_ONCE);
    CHECK_INT(1, p->calls);
    CHECK_STR("", p->err);
}

static void wait_written(uv_loop_t *loop, struct history_store *st) {
    struct history_stats s;
    for (int i = 0; i < 5000; i++) {
        st->ops->stats(st, &s);
        if (!s.pending) return;
        uv_sleep(1);
    }
    (void)loop;
    CHECK_INT(0, (long long)s.pending);
}

static void close_store(uv_loop_t *loop, struct history_store *st) {
    st->ops->close(st);
    uv_run(loop, UV_RUN_DEFAULT);
}

TEST(read_your_writes_and_pages) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    uint64_t max = 1;
    char err[256] = "";
    struct history_store *st = history_sqlite_open(&loop, path, &max, err, sizeof err);
    CHECK(st != NULL);
    if (!st) return;
    CHECK_INT(0, (long long)max);
    for (unsigned i = 0; i < 30; i++) append(st, "r", i);
    append(st, "other", 100);
    struct page p;
    query(&loop, st, "r", (struct history_query){.limit = 10}, &p); /* maybe before any commit */
    CHECK_INT(10, (long long)p.n);
    CHECK_INT(1, p.has_more);
    CHECK_STR("{\"i\":20}", p.texts[0]);
    CHECK_STR("{\"i\":29}", p.texts[9]);
    struct history_query q = {.limit = 25};
    memcpy(q.before, p.offsets[0], sizeof q.before);
    query(&loop, st, "r", q, &p);
    CHECK_INT(20, (long long)p.n);
    CHECK_INT(0, p.has_more);
    CHECK_STR("{\"i\":0}", p.texts[0]);
    CHECK_STR("{\"i\":19}", p.texts[19]);
    wait_written(&loop, st);
    struct history_query a = {.limit = 5};
    offset_of(3, a.after);
    offset_of(12, a.upto);
    query(&loop, st, "r", a, &p);
    CHECK_INT(5, (long long)p.n);
    CHECK_INT(1, p.has_more);
    CHECK_STR("{\"i\":4}", p.texts[0]);
    offset_of(9, a.after);
    query(&loop, st, "r", a, &p);
    CHECK_INT(3, (long long)p.n); /* 10, 11, 12: none past upto */
    CHECK_INT(0, p.has_more);
    query(&loop, st, "nobody", (struct history_query){.limit = 5}, &p);
    CHECK_INT(0, (long long)p.n);
    close_store(&loop, st);
    CHECK_INT(0, uv_loop_close(&loop));
}

TEST(limits_trim_and_turn_off) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    uint64_t max = 0;
    char err[256] = "";
    struct history_store *st = history_sqlite_open(&loop, path, &max, err, sizeof err);
    CHECK(st != NULL);
    if (!st) return;
    char last[HISTORY_OFFSET_LEN + 1];
    offset_of(100, last);
    CHECK_INT((long long)strtoull(last, NULL, 16), (long long)max); /* the largest stored, of any room */
    st->ops->set_limits(st, 4, 3600);
    for (unsigned i = 200; i < 210; i++) append(st, "t", i);
    wait_written(&loop, st);
    struct page p;
    query(&loop, st, "t", (struct history_query){.limit = 50}, &p);
    CHECK_INT(4, (long long)p.n);
    CHECK_STR("{\"i\":206}", p.texts[0]);
    CHECK_INT(0, p.has_more);
    st->ops->set_limits(st, 0, 3600); /* off: and what the limit of 4 hid is deleted */
    CHECK_INT(-1, st->ops->append(st, "t", 1, "ffffffffffffffff", "new_message", "{}", 2));
    query(&loop, st, "t", (struct history_query){.limit = 50}, &p);
    CHECK_INT(0, (long long)p.n);
    struct history_stats s = {0};
    for (int i = 0; i < 5000 && s.trimmed < 6; i++) {
        uv_sleep(1);
        st->ops->stats(st, &s);
    }
    CHECK(s.trimmed >= 6);
    st->ops->set_limits(st, 1000, 3600);
    query(&loop, st, "t", (struct history_query){.limit = 50}, &p);
    CHECK_INT(4, (long long)p.n);
    close_store(&loop, st);
    CHECK_INT(0, uv_loop_close(&loop));
}

TEST(a_full_disk_is_counted_and_the_store_goes_on) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    char full[700];
    snprintf(full, sizeof full, "%s/full.sqlite3", dir);
    uint64_t max = 0;
    char err[256] = "";
    struct rlimit old;
    getrlimit(RLIMIT_FSIZE, &old);
    struct history_store *st = history_sqlite_open(&loop, full, &max, err, sizeof err);
    CHECK(st != NULL);
    if (!st) return;
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = {1024 * 1024, old.rlim_max}; /* a few of its 64 KiB pages */
    CHECK_INT(0, setrlimit(RLIMIT_FSIZE, &small));
    char big[4000];
    memset(big, 'x', sizeof big);
    big[0] = '"', big[sizeof big - 1] = '"';
    struct history_stats s = {0};
    for (unsigned i = 0; i < 2000 && !s.write_errors; i += 50) {
        for (unsigned k = 0; k < 50; k++) {
            char off[HISTORY_OFFSET_LEN + 1];
            offset_of(1000 + i + k, off);
            st->ops->append(st, "f", 1, off, "new_message", big, sizeof big);
        }
        wait_written(&loop, st);
        st->ops->stats(st, &s);
    }
    CHECK(s.write_errors > 0);
    CHECK_INT(0, (long long)s.pending);
    struct page p;
    query(&loop, st, "f", (struct history_query){.limit = 1}, &p); /* still answers */
    CHECK_INT(1, (long long)p.n);
    setrlimit(RLIMIT_FSIZE, &old);
    close_store(&loop, st);
    CHECK_INT(0, uv_loop_close(&loop));
}

TEST(chunk_bodies_round_trip_and_malformed_ones_stop) {
    struct sbuf b = {0};
    CHECK_INT(0, chunk_append(&b, "0000000000000001", "new_message", "{\"t\":\"a b\\n\"}", 14));
    CHECK_INT(0, chunk_append(&b, "0000000000000002", "new_file", "", 0));
    CHECK_INT(-1, chunk_append(&b, "0000000000000003",
                               "an_event_name_longer_than_sixty_four_bytes_is_refused_by_the_codec_x", "{}", 2));
    const char *p = b.p, *end = b.p + b.len;
    struct chunk_msg m;
    CHECK_INT(0, chunk_next(&p, end, &m));
    CHECK_STR("0000000000000001", m.offset);
    CHECK_MEMN("new_message", 11, m.event, m.event_len);
    CHECK_MEMN("{\"t\":\"a b\\n\"}", 14, m.data, m.data_len);
    CHECK_INT(0, chunk_next(&p, end, &m));
    CHECK_STR("0000000000000002", m.offset);
    CHECK_INT(0, (long long)m.data_len);
    CHECK_INT(-1, chunk_next(&p, end, &m));
    static const char *const bad[] = {"0000000000000001 e 5:abc", "0000000000000001 e x:abc",
                                      "0000000000000001 e :", "000000000000001 e 1:a", "0000000000000001e 1:a",
                                      "0000000000000001 e 99999999999999999999:a"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *q = bad[i];
        CHECK_INT(-1, chunk_next(&q, bad[i] + strlen(bad[i]), &m));
        CHECK(q == bad[i]);
    }
    sbuf_free(&b);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s/space-history-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/sub/history.sqlite3", dir);
    RUN(chunk_bodies_round_trip_and_malformed_ones_stop);
    RUN(read_your_writes_and_pages);
    RUN(limits_trim_and_turn_off);
    RUN(a_full_disk_is_counted_and_the_store_goes_on);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_finish("test_history");
}
