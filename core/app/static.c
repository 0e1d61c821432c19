#include "static.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "etag.h"
#include "httpd.h"
#include "clock.h"
#include "server.h"
#include "stream_file.h"

static const struct {
    const char *ext, *type;
} types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"webmanifest", "application/manifest+json"},
    {"txt", "text/plain; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"pdf", "application/pdf"},
    {"wasm", "application/wasm"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
};

static const char *type_of(const char *path) {
    const char *base = strrchr(path, '/');
    const char *dot = strrchr(base ? base : path, '.');
    if (dot)
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(dot + 1, types[i].ext) == 0) return types[i].type;
    return "application/octet-stream";
}

/* Decodes the request path into out ("/a/b/"): 0, or -1 when it may not
 * name a file here. Encoded separators and NUL are refused before decoding,
 * so a decoded byte never splits or ends a segment the client did not;
 * a segment that starts with "." ("..", ".", ".git") or is empty ("//",
 * which could also make a redirect leave the host) is refused after. */
static int clean_path(struct slice raw, char *out, size_t cap) {
    for (size_t i = 0; i + 2 < raw.len; i++) {
        if (raw.p[i] != '%') continue;
        char a = raw.p[i + 1], b = (char)(raw.p[i + 2] | 0x20);
        if ((a == '2' && b == 'f') || (a == '5' && b == 'c') || (a == '0' && b == '0')) return -1;
    }
    long n = http_percent_decode(raw, out, cap - 1);
    if (n <= 0 || out[0] != '/' || memchr(out, 0, (size_t)n) || memchr(out, '\\', (size_t)n)) return -1;
    out[n] = 0;
    for (const char *seg = out + 1; *seg; seg++) {
        if (*seg == '.' || *seg == '/') return -1;
        seg = strchr(seg, '/');
        if (!seg) break;
    }
    return 0;
}

/* The real path of path, when it exists and lies within root (itself a
 * real path): 0 with real filled, else -1. Symlinks are followed first, so
 * one that leads out of the folder is caught here. */
static int resolve_under(const char *root, const char *path, char real[PATH_MAX]) {
    if (!realpath(path, real)) return -1;
    size_t n = strlen(root);
    if (n == 1) return 0; /* the folder is "/" */
    return strncmp(real, root, n) == 0 && (real[n] == 0 || real[n] == '/') ? 0 : -1;
}

/* Opens a regular file or a directory at real without following a symlink
 * swapped in since realpath. */
static int open_at(const char *real, struct stat *st) {
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) return -1;
    if (fstat(fd, st) != 0 || !(S_ISREG(st->st_mode) || S_ISDIR(st->st_mode))) {
        close(fd);
        return -1;
    }
    return fd;
}

static void respond_text(struct conn *c, int status, const char *text, const char *extra, int keep_alive) {
    httpd_respond(c, status, "text/plain; charset=utf-8", text, strlen(text), extra, !keep_alive);
}

void static_handle_request(struct conn *c, const struct http_request *req, int keep_alive) {
    const char *root = server_of(c)->cfg->static_root;
    int head = slice_eq(req->method, "HEAD");
    if (!head && !slice_eq(req->method, "GET")) {
        respond_text(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n", keep_alive);
        return;
    }
    char rel[2048], path[PATH_MAX + 2048], real[PATH_MAX];
    struct stat st;
    int fd = -1;
    if (clean_path(req->path, rel, sizeof rel) != 0) goto not_found;
    snprintf(path, sizeof path, "%s%s", root, rel);
    if (resolve_under(root, path, real) != 0 || (fd = open_at(real, &st)) < 0) goto not_found;
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        fd = -1;
        if (rel[strlen(rel) - 1] != '/') {
            /* So that the page's relative links resolve inside the folder. */
            char loc[4200];
            snprintf(loc, sizeof loc, "Location: %.*s/%s%.*s\r\n", (int)req->path.len, req->path.p,
                     req->query.len ? "?" : "", (int)req->query.len, req->query.p);
            respond_text(c, 301, "Moved Permanently", loc, keep_alive);
            return;
        }
        char index[PATH_MAX + 16];
        snprintf(index, sizeof index, "%s/index.html", real);
        if (resolve_under(root, index, real) != 0 || (fd = open_at(real, &st)) < 0 || !S_ISREG(st.st_mode))
            goto not_found;
    }
    /* Size, mtime and inode: a saved edit gives a new tag. */
    char etag[96], headers[512];
    snprintf(etag, sizeof etag, "\"%llx-%llx-%llx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ull + (unsigned long long)st.st_mtim.tv_nsec,
             (unsigned long long)st.st_ino);
    snprintf(headers, sizeof headers, "ETag: %s\r\nCache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n",
             etag);
    const struct slice *inm = http_header_get(req, "If-None-Match");
    if (inm && etag_matches(*inm, etag)) {
        close(fd);
        httpd_respond(c, 304, NULL, NULL, 0, headers, !keep_alive);
        return;
    }
    char head_buf[1024];
    size_t n = http_format_head(head_buf, sizeof head_buf, 200, type_of(real), (size_t)st.st_size, headers,
                                keep_alive);
    conn_send_copy(c, head_buf, n);
    stream_file_body(c, fd, 0, head ? 0 : (uint64_t)st.st_size, keep_alive);
    return;
not_found:
    if (fd >= 0) close(fd);
    respond_text(c, 404, "Not Found", NULL, keep_alive);
}
