#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "base64.h"
#include "filecheck.h"
#include "log.h"

struct store_job {
    uv_work_t work;
    files_stored_cb cb;
    void *ud;
    const char *dir;
    struct file_info info;
    const void *in; /* the caller's bytes (or base64 text), read on the worker */
    size_t in_len;
    int base64;
    size_t max_bytes;
    enum files_result result;
    char err[256];
};

static int make_dir(const char *path) {
    if (mkdir(path, 0755) == 0) return 0;
    struct stat st;
    if (errno != EEXIST) return -1;
    if (stat(path, &st) != 0) return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR; /* "exists" is no success when it is a file */
        return -1;
    }
    return 0;
}

static int mkdir_p(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (make_dir(tmp) != 0) return -1;
        *p = '/';
    }
    return make_dir(tmp);
}

static int fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Writes data to a fresh file in tmp_dir, fsyncs it, renames it to path
 * and fsyncs path's directory. */
static int write_atomically(const char *tmp_dir, const char *path, const char *final_dir, const void *data,
                            size_t len, char *err, size_t errlen) {
    char tmp[4096];
    unsigned char rnd[8];
    RAND_bytes(rnd, sizeof rnd);
    snprintf(tmp, sizeof tmp, "%s/%02x%02x%02x%02x%02x%02x%02x%02x.part", tmp_dir, rnd[0], rnd[1], rnd[2], rnd[3],
             rnd[4], rnd[5], rnd[6], rnd[7]);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "create %.200s: %s", tmp, strerror(errno));
        return -1;
    }
    const unsigned char *p = data;
    size_t left = len;
    while (left) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            snprintf(err, errlen, "write %.200s: %s", tmp, n < 0 ? strerror(errno) : "short write");
            close(fd);
            unlink(tmp);
            return -1;
        }
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        snprintf(err, errlen, "fsync %.200s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "rename to %.200s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    fsync_dir(final_dir);
    return 0;
}

/* Hashes and writes the checked bytes: the blob (once per content), then
 * the record; any failure leaves nothing behind. */
static void store_bytes(struct store_job *j, const unsigned char *data, size_t len) {
    unsigned char md[32];
    unsigned mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) snprintf(j->info.sha256 + 2 * i, 3, "%02x", md[i]);
    char tmp_dir[4096], blob_dir[4096], blob[4200], meta_dir[4096], meta[4200];
    snprintf(tmp_dir, sizeof tmp_dir, "%s/tmp", j->dir);
    snprintf(blob_dir, sizeof blob_dir, "%s/blobs/%.2s", j->dir, j->info.sha256);
    snprintf(blob, sizeof blob, "%s/%s", blob_dir, j->info.sha256);
    snprintf(meta_dir, sizeof meta_dir, "%s/meta", j->dir);
    snprintf(meta, sizeof meta, "%s/%s", meta_dir, j->info.id);
    j->result = FILES_FAILED; /* until the record is written */
    if (mkdir_p(tmp_dir) || mkdir_p(blob_dir) || mkdir_p(meta_dir)) {
        snprintf(j->err, sizeof j->err, "create directories under %.200s: %s", j->dir, strerror(errno));
        return;
    }
    struct stat st;
    /* The same bytes are stored once. */
    int existed = stat(blob, &st) == 0 && (size_t)st.st_size == len;
    if (!existed && write_atomically(tmp_dir, blob, blob_dir, data, len, j->err, sizeof j->err) != 0) return;
    char record[600];
    int n = snprintf(record, sizeof record, "%s\n%s\n%zu\n%s\n", j->info.sha256, j->info.type, len, j->info.name);
    if (write_atomically(tmp_dir, meta, meta_dir, record, (size_t)n, j->err, sizeof j->err) != 0) {
        if (!existed) unlink(blob); /* nothing stored: no blob without a record */
        return;
    }
    j->result = FILES_STORED;
}

/* The job's bytes, decoded from base64 into *owned when they are text;
 * NULL with the refusal noted in the job. */
static const unsigned char *job_bytes(struct store_job *j, size_t *len, unsigned char **owned) {
    *owned = NULL;
    if (!j->base64) {
        *len = j->in_len;
        return j->in;
    }
    if (!(*owned = malloc(j->in_len / 4 * 3 + 1))) {
        j->result = FILES_FAILED;
        snprintf(j->err, sizeof j->err, "out of memory decoding %zu bytes of base64", j->in_len);
        return NULL;
    }
    long n = base64_decode(*owned, j->in, j->in_len);
    if (n < 0) {
        j->result = FILES_INVALID_BASE64;
        snprintf(j->err, sizeof j->err, "'data' is not valid base64");
        return NULL;
    }
    *len = (size_t)n;
    return *owned;
}

/* On a worker: decode, check, hash and write; the result goes to the job. */
static void store_work(uv_work_t *w) {
    struct store_job *j = w->data;
    size_t len;
    unsigned char *owned;
    const unsigned char *data = job_bytes(j, &len, &owned);
    if (data) {
        j->info.size = len;
        const char *sniffed = filecheck_sniff(data, len);
        if (len > j->max_bytes) {
            j->result = FILES_TOO_LARGE;
            snprintf(j->err, sizeof j->err, "files have at most %zu bytes", j->max_bytes);
        } else if (!sniffed || strcmp(sniffed, j->info.type) != 0) {
            j->result = FILES_WRONG_TYPE;
            snprintf(j->err, sizeof j->err, "the content is not %.200s", j->info.type);
        } else {
            store_bytes(j, data, len);
        }
    }
    free(owned);
}

static void store_done(uv_work_t *w, int status) {
    struct store_job *j = w->data;
    if (status != 0 && j->result == FILES_STORED) {
        j->result = FILES_FAILED;
        snprintf(j->err, sizeof j->err, "cancelled");
    }
    char q[LOG_QUOTED_MAX];
    if (j->result == FILES_FAILED)
        log_error("files", "store failed id=%s error=\"%s\"", j->info.id, log_quoted(q, sizeof q, j->err));
    else if (j->result == FILES_STORED)
        log_debug("files", "stored id=%s sha256=%s size=%zu", j->info.id, j->info.sha256, j->info.size);
    j->cb(j->ud, j->result == FILES_STORED ? &j->info : NULL, j->result, j->err);
    free(j);
}

static void warm_work(uv_work_t *w) { (void)w; }
static void warm_done(uv_work_t *w, int status) { (void)w, (void)status; }

void file_store_init(struct file_store *st, uv_loop_t *loop, const char *dir) {
    st->loop = loop;
    st->dir = dir;
    unsigned char rnd[8];
    RAND_bytes(rnd, sizeof rnd);
    uv_queue_work(loop, &st->warm, warm_work, warm_done);
}

int file_store_put(struct file_store *st, const char seq_id[17], const struct file_put *put, files_stored_cb cb,
                   void *ud) {
    struct store_job *j = calloc(1, sizeof *j);
    if (!j) return -1;
    j->in = put->data;
    j->in_len = put->len;
    j->base64 = put->base64;
    j->max_bytes = put->max_bytes;
    j->cb = cb;
    j->ud = ud;
    j->dir = st->dir;
    j->work.data = j;
    unsigned char rnd[8];
    RAND_bytes(rnd, sizeof rnd);
    snprintf(j->info.id, sizeof j->info.id, "%.16s%02x%02x%02x%02x%02x%02x%02x%02x", seq_id, rnd[0], rnd[1], rnd[2], rnd[3],
             rnd[4], rnd[5], rnd[6], rnd[7]);
    snprintf(j->info.type, sizeof j->info.type, "%s", put->type);
    snprintf(j->info.name, sizeof j->info.name, "%s", put->name);
    if (uv_queue_work(st->loop, &j->work, store_work, store_done) != 0) {
        free(j);
        return -1;
    }
    return 0;
}

int file_store_lookup(const struct file_store *st, const char *id, struct file_info *info) {
    char path[4200];
    snprintf(path, sizeof path, "%s/meta/%s", st->dir, id);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char size[32];
    int ok = fgets(info->sha256, sizeof info->sha256, f) && fgetc(f) == '\n' &&
             fgets(info->type, sizeof info->type, f) && fgets(size, sizeof size, f) &&
             fgets(info->name, sizeof info->name, f);
    fclose(f);
    if (!ok) return -1;
    info->type[strcspn(info->type, "\n")] = 0;
    info->name[strcspn(info->name, "\n")] = 0;
    info->size = (size_t)strtoull(size, NULL, 10);
    snprintf(info->id, sizeof info->id, "%s", id);
    return 0;
}

uv_file file_store_open_blob(const struct file_store *st, const struct file_info *info) {
    char blob[4200];
    snprintf(blob, sizeof blob, "%s/blobs/%.2s/%s", st->dir, info->sha256, info->sha256);
    uv_fs_t open_req;
    uv_file fd = uv_fs_open(NULL, &open_req, blob, O_RDONLY | O_CLOEXEC, 0, NULL);
    uv_fs_req_cleanup(&open_req);
    return fd;
}
