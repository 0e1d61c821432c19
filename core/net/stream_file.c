#include "stream_file.h"

#include <stdlib.h>

#include "httpd.h"
#include "log.h"
#include "net.h"

#define FILE_CHUNK_BYTES (64 * 1024)
#define FILE_QUEUE_HIGH_BYTES (512 * 1024) /* read ahead no further than this */

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
    if (uv_fs_read(c->net->loop, &fs->req, fs->fd, &b, 1, (int64_t)fs->offset, on_chunk_read) != 0) {
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

void stream_file_body(struct conn *c, uv_file fd, uint64_t from, uint64_t length, int keep_alive) {
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
