/* Unit tests for core/files (the file store) on a private libuv loop and a
 * fresh directory: a stored file is found by its id with its type, name,
 * size and SHA-256, its blob holds the bytes, the same bytes are stored
 * once, the id is the given sequence id plus 64 random bits, an unknown id
 * is not found, and a store whose directory cannot be made reports why.
 * The job decodes base64 itself and refuses, storing nothing, what does not
 * decode, what decodes to more than max_bytes and content of another type. */
#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "files.h"

struct result {
    int calls;
    struct file_info info;
    int ok;
    enum files_result why;
    char err[256];
};

static void on_stored(void *ud, const struct file_info *info, enum files_result why, const char *err) {
    struct result *r = ud;
    r->calls++;
    r->ok = info != NULL;
    r->why = why;
    if (info) r->info = *info;
    snprintf(r->err, sizeof r->err, "%s", err ? err : "");
}

static char dir[512];

static void put_as(struct file_store *st, const char *seq, const char *bytes, size_t len, int base64,
                   size_t max_bytes, const char *type, const char *name, struct result *r) {
    memset(r, 0, sizeof *r);
    struct file_put p = {bytes, len, base64, max_bytes, type, name};
    CHECK_INT(0, file_store_put(st, seq, &p, on_stored, r));
    uv_run(st->loop, UV_RUN_DEFAULT);
    CHECK_INT(1, r->calls);
}

static void put(struct file_store *st, const char *seq, const char *bytes, size_t len, const char *type,
                const char *name, struct result *r) {
    put_as(st, seq, bytes, len, 0, 1 << 20, type, name, r);
}

static size_t count_entries(const char *path) {
    DIR *d = opendir(path);
    size_t n = 0;
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

TEST(stores_and_finds_a_file) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct file_store st;
    file_store_init(&st, &loop, dir);
    struct result r;
    put(&st, "0123456789abcdef", "hello", 5, "text/plain", "a b.txt", &r);
    CHECK(r.ok);
    CHECK_INT(32, (long long)strlen(r.info.id));
    CHECK(memcmp(r.info.id, "0123456789abcdef", 16) == 0);
    CHECK(strspn(r.info.id + 16, "0123456789abcdef") == 16);
    /* SHA-256 of "hello" */
    CHECK_STR("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", r.info.sha256);
    struct file_info got;
    CHECK_INT(0, file_store_lookup(&st, r.info.id, &got));
    CHECK_STR(r.info.id, got.id);
    CHECK_STR(r.info.sha256, got.sha256);
    CHECK_STR("text/plain", got.type);
    CHECK_STR("a b.txt", got.name);
    CHECK_UINT(5, got.size);
    uv_file fd = file_store_open_blob(&st, &got);
    CHECK(fd >= 0);
    char buf[16] = {0};
    CHECK_INT(5, (long long)read(fd, buf, sizeof buf));
    CHECK_MEM("hello", buf, 5);
    close(fd);

    /* The same bytes again: a second file, the same blob. */
    struct result r2;
    put(&st, "0123456789abcdf0", "hello", 5, "text/plain", "other.txt", &r2);
    CHECK(r2.ok);
    CHECK(strcmp(r.info.id, r2.info.id) != 0);
    CHECK_STR(r.info.sha256, r2.info.sha256);
    char blobs[600], meta[600], tmp[600];
    snprintf(blobs, sizeof blobs, "%s/blobs/2c", dir);
    snprintf(meta, sizeof meta, "%s/meta", dir);
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    CHECK_UINT(1, count_entries(blobs));
    CHECK_UINT(2, count_entries(meta));
    CHECK_UINT(0, count_entries(tmp)); /* nothing partial left behind */

    /* Empty files are files too. */
    struct result r3;
    put(&st, "0123456789abcdf1", "", 0, "text/plain", "empty", &r3);
    CHECK(r3.ok);
    CHECK_INT(0, file_store_lookup(&st, r3.info.id, &got));
    CHECK_UINT(0, got.size);

    CHECK_INT(-1, file_store_lookup(&st, "ffffffffffffffffffffffffffffffff", &got));
    CHECK_INT(0, uv_loop_close(&loop));
}

TEST(reports_a_directory_it_cannot_make) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    char path[600];
    snprintf(path, sizeof path, "%s/plainfile", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) fclose(f);
    struct file_store st;
    file_store_init(&st, &loop, path); /* a file where the directory should be */
    struct result r;
    put(&st, "0123456789abcdef", "x", 1, "text/plain", "x", &r);
    CHECK(!r.ok);
    CHECK(strstr(r.err, "create directories") != NULL);
    CHECK_INT(0, uv_loop_close(&loop));
}

TEST(decodes_base64_and_refuses_what_does_not_fit) {
    char sub[600];
    snprintf(sub, sizeof sub, "%s/checks", dir);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct file_store st;
    file_store_init(&st, &loop, sub);
    struct result r;
    /* "aGVsbG8=" is "hello": decoded on the worker, stored as the bytes. */
    put_as(&st, "0123456789abcdef", "aGVsbG8=", 8, 1, 5, "text/plain", "h.txt", &r);
    CHECK(r.ok);
    CHECK_INT(FILES_STORED, r.why);
    CHECK_UINT(5, r.info.size);
    CHECK_STR("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", r.info.sha256);
    char meta[700], blobs[700];
    snprintf(meta, sizeof meta, "%s/meta", sub);
    snprintf(blobs, sizeof blobs, "%s/blobs", sub);
    CHECK_UINT(1, count_entries(meta));

    put_as(&st, "0123456789abcdf0", "aGVsbG8", 7, 1, 100, "text/plain", "h.txt", &r);
    CHECK(!r.ok);
    CHECK_INT(FILES_INVALID_BASE64, r.why);
    put_as(&st, "0123456789abcdf1", "aGVsbG8=", 8, 1, 4, "text/plain", "h.txt", &r);
    CHECK_INT(FILES_TOO_LARGE, r.why);
    CHECK_STR("files have at most 4 bytes", r.err);
    put_as(&st, "0123456789abcdf2", "hello", 5, 0, 4, "text/plain", "h.txt", &r);
    CHECK_INT(FILES_TOO_LARGE, r.why);
    put_as(&st, "0123456789abcdf3", "aGVsbG8=", 8, 1, 100, "image/png", "h.png", &r);
    CHECK_INT(FILES_WRONG_TYPE, r.why);
    CHECK_STR("the content is not image/png", r.err);
    put_as(&st, "0123456789abcdf4", "a\0b", 3, 0, 100, "text/plain", "nul.txt", &r);
    CHECK_INT(FILES_WRONG_TYPE, r.why);
    /* The refusals stored nothing. */
    CHECK_UINT(1, count_entries(meta));
    CHECK_UINT(1, count_entries(blobs));
    CHECK_INT(0, uv_loop_close(&loop));
}

int main(void) {
    const char *tmpdir = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/space-file-store-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(dir)) return 1;
    RUN(stores_and_finds_a_file);
    RUN(reports_a_directory_it_cannot_make);
    RUN(decodes_base64_and_refuses_what_does_not_fit);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_finish("test_file_store");
}
