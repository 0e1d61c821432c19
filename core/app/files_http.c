#include "files_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etag.h"
#include "files.h"
#include "httpd.h"
#include "log.h"
#include "clock.h"
#include "server.h"
#include "stream_file.h"

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
    struct server *srv = server_of(c);
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
    if (name_len <= 0 || (memcpy(id, p, id_len), id[id_len] = 0, file_store_lookup(&srv->files, id, &info)) != 0 ||
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
    if (inm && etag_matches(*inm, etag)) {
        httpd_respond(c, 304, NULL, NULL, 0, common, !keep_alive);
        return;
    }
    uv_file fd = file_store_open_blob(&srv->files, &info);
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
    stream_file_body(c, fd, from, head ? 0 : length, keep_alive);
}
