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

#include "httpd.h"
#include "log.h"
#include "server.h"

#define FILE_CHUNK_BYTES (64 * 1024)
#define FILE_QUEUE_HIGH_BYTES (512 * 1024) /* read ahead no further than this */

/* {==================================================================
 * Storing (on libuv's thread pool)
 * =================================================================== */

struct store_job {
    uv_work_t work;
    files_stored_cb cb;
    void *ud;
    const char *dir;
    struct file_info info;
    unsigned char *data;
    size_t len;
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

static void store_work(uv_work_t *w) {
    struct store_job *j = w->data;
    unsigned char md[32];
    unsigned mdlen = 0;
    EVP_Digest(j->data, j->len, md, &mdlen, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) snprintf(j->info.sha256 + 2 * i, 3, "%02x", md[i]);
    char tmp_dir[4096], blob_dir[4096], blob[4200], meta_dir[4096], meta[4200];
    snprintf(tmp_dir, sizeof tmp_dir, "%s/tmp", j->dir);
    snprintf(blob_dir, sizeof blob_dir, "%s/blobs/%.2s", j->dir, j->info.sha256);
    snprintf(blob, sizeof blob, "%s/%s", blob_dir, j->info.sha256);
    snprintf(meta_dir, sizeof meta_dir, "%s/meta", j->dir);
    snprintf(meta, sizeof meta, "%s/%s", meta_dir, j->info.id);
    if (mkdir_p(tmp_dir) || mkdir_p(blob_dir) || mkdir_p(meta_dir)) {
        snprintf(j->err, sizeof j->err, "create directories under %.200s: %s", j->dir, strerror(errno));
        return;
    }
    struct stat st;
    /* The same bytes are stored once. */
    int existed = stat(blob, &st) == 0 && (size_t)st.st_size == j->len;
    if (!existed && write_atomically(tmp_dir, blob, blob_dir, j->data, j->len, j->err, sizeof j->err) != 0)
        return;
    char record[600];
    int n = snprintf(record, sizeof record, "%s\n%s\n%zu\n%s\n", j->info.sha256, j->info.type, j->len, j->info.name);
    if (write_atomically(tmp_dir, meta, meta_dir, record, (size_t)n, j->err, sizeof j->err) != 0 && !existed)
        unlink(blob); /* nothing stored: no blob without a record */
}

static void store_done(uv_work_t *w, int status) {
    struct store_job *j = w->data;
    free(j->data);
    j->data = NULL;
    if (status != 0 && !j->err[0]) snprintf(j->err, sizeof j->err, "cancelled");
    char q[LOG_QUOTED_MAX];
    if (j->err[0]) log_error("files", "store failed id=%s error=\"%s\"", j->info.id, log_quoted(q, sizeof q, j->err));
    else log_debug("files", "stored id=%s sha256=%s size=%zu", j->info.id, j->info.sha256, j->info.size);
    j->cb(j->ud, j->err[0] ? NULL : &j->info, j->err);
    free(j);
}

int files_store(struct server *srv, const void *data, size_t len, const char *type, const char *name,
                files_stored_cb cb, void *ud) {
    struct store_job *j = calloc(1, sizeof *j);
    if (!j || !(j->data = malloc(len ? len : 1))) {
        free(j);
        return -1;
    }
    memcpy(j->data, data, len);
    j->len = len;
    j->cb = cb;
    j->ud = ud;
    j->dir = srv->cfg->files_dir;
    j->work.data = j;
    char id[17];
    unsigned char rnd[8];
    server_new_id(srv, id);
    RAND_bytes(rnd, sizeof rnd);
    snprintf(j->info.id, sizeof j->info.id, "%s%02x%02x%02x%02x%02x%02x%02x%02x", id, rnd[0], rnd[1], rnd[2], rnd[3],
             rnd[4], rnd[5], rnd[6], rnd[7]);
    snprintf(j->info.type, sizeof j->info.type, "%s", type);
    snprintf(j->info.name, sizeof j->info.name, "%s", name);
    j->info.size = len;
    if (uv_queue_work(srv->loop, &j->work, store_work, store_done) != 0) {
        free(j->data);
        free(j);
        return -1;
    }
    return 0;
}

/* }================================================================== */

/* {==================================================================
 * Downloading
 * =================================================================== */

/* A conn streaming a file holds this as its transport state. */
struct file_stream {
    uv_fs_t req;
    struct conn *c;      /* NULL once the conn closed while a read was out */
    uv_file fd;
    uint64_t offset, remaining;
    int reading;
    int keep_alive;
    buf *chunk;          /* the read in flight */
};

static void stream_pump(struct file_stream *fs);

static void stream_free(struct file_stream *fs) {
    uv_fs_t close_req;
    if (fs->fd >= 0) uv_fs_close(NULL, &close_req, fs->fd, NULL); /* synchronous: fast */
    buf_unref(fs->chunk);
    free(fs);
}

static void stream_finish(struct conn *c, struct file_stream *fs) {
    c->tr_state = NULL;
    int keep_alive = fs->keep_alive;
    stream_free(fs);
    if (!keep_alive) conn_close_after_flush(c);
    else httpd_resume(c);
}

static void on_chunk_read(uv_fs_t *req) {
    struct file_stream *fs = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    fs->reading = 0;
    struct conn *c = fs->c;
    if (!c) {
        stream_free(fs); /* the conn went away meanwhile */
        return;
    }
    if (n <= 0) {
        log_warn("files", "read failed conn=%llu error=%s", (unsigned long long)c->id,
                 n < 0 ? uv_strerror((int)n) : "unexpected end of file");
        c->tr_state = NULL;
        stream_free(fs);
        conn_close(c);
        return;
    }
    buf *chunk = fs->chunk;
    fs->chunk = NULL;
    chunk->len = (uint32_t)n;
    fs->offset += (uint64_t)n;
    fs->remaining -= (uint64_t)n;
    int rc = conn_send(c, chunk);
    buf_unref(chunk);
    if (rc != 0) return; /* closing: on_close frees us */
    stream_pump(fs);
}

static void stream_pump(struct file_stream *fs) {
    struct conn *c = fs->c;
    if (fs->reading || conn_is_closing(c)) return;
    if (fs->remaining == 0) {
        stream_finish(c, fs);
        return;
    }
    if (c->out_bytes >= FILE_QUEUE_HIGH_BYTES) return; /* on_drain resumes */
    size_t n = fs->remaining < FILE_CHUNK_BYTES ? (size_t)fs->remaining : FILE_CHUNK_BYTES;
    fs->chunk = buf_new(n);
    if (!fs->chunk) {
        conn_close(c);
        return;
    }
    uv_buf_t b = uv_buf_init((char *)fs->chunk->data, (unsigned)n);
    fs->req.data = fs;
    fs->reading = 1;
    if (uv_fs_read(c->srv->loop, &fs->req, fs->fd, &b, 1, (int64_t)fs->offset, on_chunk_read) != 0) {
        fs->reading = 0;
        conn_close(c);
    }
}

static void stream_on_data(struct conn *c, const char *p, size_t n) {
    /* A pipelined request waits until the file has gone out. */
    if (conn_in_append(c, p, n) != 0 || c->in_len > HTTP_MAX_HEAD_BYTES) conn_close(c);
}

static void stream_on_timeout(struct conn *c) { (void)c; }

static void stream_on_drain(struct conn *c) {
    if (c->tr_state) stream_pump(c->tr_state);
}

static void stream_on_close(struct conn *c) {
    struct file_stream *fs = c->tr_state;
    if (!fs) return;
    c->tr_state = NULL;
    if (fs->reading) fs->c = NULL; /* freed by the read callback */
    else stream_free(fs);
}

static const struct transport file_transport = {
    .name = "file",
    .on_data = stream_on_data,
    .on_timeout = stream_on_timeout,
    .on_close = stream_on_close,
    .on_drain = stream_on_drain,
};

static int read_meta(const char *dir, const char *id, struct file_info *info) {
    char path[4200];
    snprintf(path, sizeof path, "%s/meta/%s", dir, id);
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

/* If-None-Match: "*" or a list of entity tags, compared weakly (W/ ignored). */
int files_etag_matches(struct slice list, const char *etag) {
    if (slice_eq(list, "*")) return 1;
    size_t elen = strlen(etag);
    const char *p = list.p, *end = list.p + list.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ',' || *p == '\t')) p++;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/') p += 2;
        const char *s = p;
        while (p < end && *p != ',') p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
        if ((size_t)(e - s) == elen && memcmp(s, etag, elen) == 0) return 1;
    }
    return 0;
}

static void respond_text(struct conn *c, int status, const char *text, const char *extra, int keep_alive) {
    httpd_respond(c, status, "text/plain; charset=utf-8", text, strlen(text), extra, !keep_alive);
}

/* Parses a single "bytes=a-b" range against size. 1 with [*from, *to]; 0 when
 * absent or not a form we take (serve it whole); -1 when unsatisfiable. */
static int parse_range(const struct slice *h, uint64_t size, uint64_t *from, uint64_t *to) {
    if (!h || h->len < 7 || memcmp(h->p, "bytes=", 6) != 0 || memchr(h->p, ',', h->len)) return 0;
    char tmp[64];
    if (h->len - 6 >= sizeof tmp) return 0;
    memcpy(tmp, h->p + 6, h->len - 6);
    tmp[h->len - 6] = 0;
    char *dash = strchr(tmp, '-');
    if (!dash) return 0;
    *dash = 0;
    char *end;
    if (tmp[0] == 0) { /* suffix: the last N bytes */
        unsigned long long n = strtoull(dash + 1, &end, 10);
        if (*end || dash[1] == 0) return 0;
        if (n == 0 || size == 0) return -1;
        *from = n >= size ? 0 : size - n;
        *to = size - 1;
        return 1;
    }
    unsigned long long a = strtoull(tmp, &end, 10);
    if (*end) return 0;
    unsigned long long b = size ? size - 1 : 0;
    if (dash[1]) {
        b = strtoull(dash + 1, &end, 10);
        if (*end || b < a) return 0;
        if (b >= size) b = size - 1;
    }
    if (a >= size) return -1;
    *from = a;
    *to = b;
    return 1;
}

/* Content-Disposition: images display inline; anything a browser could run
 * or render as a page is an attachment. filename* carries the UTF-8 name. */
static void disposition(char *out, size_t cap, const struct file_info *info) {
    int inline_ok = strncmp(info->type, "image/", 6) == 0;
    char ascii[300], pct[800];
    size_t a = 0, p = 0;
    for (const unsigned char *s = (const unsigned char *)info->name; *s && a < sizeof ascii - 1; s++)
        ascii[a++] = (*s < 0x80 && *s != '"' && *s != '\\' && *s != ';') ? (char)*s : '_';
    ascii[a] = 0;
    for (const unsigned char *s = (const unsigned char *)info->name; *s && p < sizeof pct - 4; s++) {
        if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || strchr("-._~", *s))
            pct[p++] = (char)*s;
        else p += (size_t)snprintf(pct + p, 4, "%%%02X", *s);
    }
    pct[p] = 0;
    snprintf(out, cap, "Content-Disposition: %s; filename=\"%s\"; filename*=UTF-8''%s\r\n",
             inline_ok ? "inline" : "attachment", ascii, pct);
}

void files_handle_request(struct conn *c, const struct http_request *req, int keep_alive) {
    struct server *srv = c->srv;
    int head = slice_eq(req->method, "HEAD");
    if (!head && !slice_eq(req->method, "GET")) {
        respond_text(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n", keep_alive);
        return;
    }
    /* /files/<id>/<name>: the id finds the file; the name must be its own. */
    const char *p = req->path.p + 7, *end = req->path.p + req->path.len;
    const char *slash = memchr(p, '/', (size_t)(end - p));
    char id[FILES_MAX_ID], name[sizeof ((struct file_info *)0)->name];
    size_t id_len = slash ? (size_t)(slash - p) : 0;
    int id_ok = slash && id_len == 32;
    for (size_t i = 0; id_ok && i < id_len; i++) id_ok = (p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f');
    long name_len = id_ok ? http_percent_decode((struct slice){slash + 1, (size_t)(end - slash - 1)}, name,
                                                sizeof name - 1)
                          : -1;
    struct file_info info;
    if (name_len <= 0 || (memcpy(id, p, id_len), id[id_len] = 0, read_meta(srv->cfg->files_dir, id, &info)) != 0 ||
        strlen(info.name) != (size_t)name_len || memcmp(info.name, name, (size_t)name_len) != 0) {
        respond_text(c, 404, "Not Found", NULL, keep_alive);
        return;
    }
    char etag[80];
    snprintf(etag, sizeof etag, "\"%s\"", info.sha256);
    const struct slice *inm = http_header_get(req, "If-None-Match");
    char common[1024], disp[1200];
    disposition(disp, sizeof disp, &info);
    snprintf(common, sizeof common,
             "ETag: %s\r\nCache-Control: public, max-age=31536000, immutable\r\n"
             "X-Content-Type-Options: nosniff\r\nAccept-Ranges: bytes\r\n",
             etag);
    if (inm && files_etag_matches(*inm, etag)) {
        httpd_respond(c, 304, NULL, NULL, 0, common, !keep_alive);
        return;
    }
    char blob[4200];
    snprintf(blob, sizeof blob, "%s/blobs/%.2s/%s", srv->cfg->files_dir, info.sha256, info.sha256);
    uv_fs_t open_req;
    uv_file fd = uv_fs_open(NULL, &open_req, blob, O_RDONLY | O_CLOEXEC, 0, NULL);
    uv_fs_req_cleanup(&open_req);
    if (fd < 0) {
        log_error("files", "blob missing id=%s sha256=%s", info.id, info.sha256);
        respond_text(c, 404, "Not Found", NULL, keep_alive);
        return;
    }
    uint64_t from = 0, to = info.size ? info.size - 1 : 0;
    int range = parse_range(http_header_get(req, "Range"), info.size, &from, &to);
    char headers[2600], ctype[160];
    snprintf(ctype, sizeof ctype, "%s%s", info.type, strcmp(info.type, "text/plain") == 0 ? "; charset=utf-8" : "");
    if (range < 0) {
        uv_fs_t cr;
        uv_fs_close(NULL, &cr, fd, NULL);
        snprintf(headers, sizeof headers, "%sContent-Range: bytes */%zu\r\n", common, info.size);
        httpd_respond(c, 416, NULL, NULL, 0, headers, !keep_alive);
        return;
    }
    uint64_t length = info.size ? to - from + 1 : 0;
    if (range > 0)
        snprintf(headers, sizeof headers, "%s%sContent-Range: bytes %llu-%llu/%zu\r\n", common, disp,
                 (unsigned long long)from, (unsigned long long)to, info.size);
    else
        snprintf(headers, sizeof headers, "%s%s", common, disp);
    char head_buf[4096];
    size_t n = http_format_head(head_buf, sizeof head_buf, range > 0 ? 206 : 200, ctype, (size_t)length, headers,
                                keep_alive);
    conn_send_copy(c, head_buf, n);
    files_stream_body(c, fd, from, head ? 0 : length, keep_alive);
}

void files_stream_body(struct conn *c, uv_file fd, uint64_t from, uint64_t length, int keep_alive) {
    struct file_stream *fs = length == 0 ? NULL : calloc(1, sizeof *fs);
    if (!fs) {
        uv_fs_t cr;
        uv_fs_close(NULL, &cr, fd, NULL);
        if (length == 0) {
            if (!keep_alive) conn_close_after_flush(c);
        } else {
            conn_close(c);
        }
        return;
    }
    fs->c = c;
    fs->fd = fd;
    fs->offset = from;
    fs->remaining = length;
    fs->keep_alive = keep_alive;
    c->tr = &file_transport;
    c->tr_state = fs;
    conn_set_deadline(c, 0);
    stream_pump(fs);
}

/* }================================================================== */
