#include "log.h"

#include "json_str.h"
#include "sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The level is set once at start from the flags, before the loop runs; it is
 * configuration, not state, so it lives here rather than in struct server. */
static enum log_level min_level = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level) { min_level = level; }

/* --log-format json: set once at start, like the level. */
static int json_format;

void log_set_json(int on) { json_format = on; }

int log_level_parse(const char *s) {
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0) return i;
    return -1;
}

int log_enabled(enum log_level level) { return level >= min_level; }

const char *log_quoted(char *out, size_t cap, const char *s) {
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    if (!cap) return out;
    for (; s && *s && n + 5 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[n++] = '\\';
            out[n++] = (char)ch;
        } else if (ch == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else if (ch < 0x20 || ch == 0x7f) {
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[ch >> 4];
            out[n++] = hex[ch & 15];
        } else {
            out[n++] = (char)ch;
        }
    }
    out[n] = 0;
    return out;
}

static void log_json(enum log_level level, const char *component, const char *fmt, va_list ap);

void log_msg(enum log_level level, const char *component, const char *fmt, ...) {
    if (level < min_level) return;
    if (json_format) {
        va_list ap;
        va_start(ap, fmt);
        log_json(level, component, fmt, ap);
        va_end(ap);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[2048];
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], component);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    /* One event, one line: a newline or another control character in a
     * client's text (through space.log, print, an error message) would
     * let it write log lines of its own (or drive a terminal). A tab
     * stays: print separates its arguments with it. */
    static const char hex[] = "0123456789abcdef";
    char out[sizeof line + 64];
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)line; *p && o + 5 < sizeof out; p++) {
        if ((*p >= 0x20 && *p != 0x7f) || *p == '\t') {
            out[o++] = (char)*p;
        } else if (*p == '\n' || *p == '\r') {
            out[o++] = '\\';
            out[o++] = *p == '\n' ? 'n' : 'r';
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = 0;
    fprintf(stderr, "%s\n", out);
}

/* {==================================================================
 * --log-format json: one object per line. The text line's parts become
 * members: "time", "level", "component", "msg" (the words before the first
 * key=value), then each key with its value as a string (quoted values
 * unescaped; an unquoted value runs to the next key=).
 * =================================================================== */

#define LOG_JSON_TEXT 4096
/* Room for the worst case, so that a line needs no allocation: each byte of
 * the text becomes at most 6 (\u00XX), each key=value adds 6. */
#define LOG_JSON_LINE (6 * LOG_JSON_TEXT + 512)

/* A key=... token starts at p: letters, digits, '_' or '.', then '='. */
static size_t key_len_at(const char *p) {
    size_t k = 0;
    if (!((p[0] >= 'a' && p[0] <= 'z') || p[0] == '_')) return 0;
    while ((p[k] >= 'a' && p[k] <= 'z') || (p[k] >= '0' && p[k] <= '9') || p[k] == '_' || p[k] == '.') k++;
    return p[k] == '=' ? k : 0;
}

static int unhex(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void log_json(enum log_level level, const char *component, const char *fmt, va_list ap) {
    char text[LOG_JSON_TEXT];
    vsnprintf(text, sizeof text, fmt, ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char storage[LOG_JSON_LINE];
    struct sbuf o = sbuf_on_stack(storage, sizeof storage);
    char head[128];
    int hn = snprintf(head, sizeof head, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"component\":",
                      tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                      ts.tv_nsec / 1000000, level_names[level]);
    sbuf_append(&o, head, (size_t)hn);
    json_append_string(&o, component, strlen(component));
    sbuf_append(&o, ",\"msg\":", 7);
    /* the message: up to the first " key=" */
    const char *p = text, *end = text + strlen(text);
    while (p < end && !(p > text && p[-1] == ' ' && key_len_at(p))) p++;
    const char *msg_end = p > text && p[-1] == ' ' ? p - 1 : p;
    json_append_string(&o, text, (size_t)(msg_end - text));
    char val[LOG_JSON_TEXT];
    while (p < end) {
        size_t k = key_len_at(p);
        if (!k) break; /* cannot happen: p always stops at a key */
        sbuf_putc(&o, ',');
        json_append_string(&o, p, k);
        sbuf_putc(&o, ':');
        p += k + 1;
        size_t vn = 0;
        if (*p == '"') {
            /* log_quoted's escapes: \" \\ \n \r \xHH */
            for (p++; p < end && *p != '"' && vn < sizeof val; p++) {
                if (*p == '\\' && p + 1 < end) {
                    p++;
                    if (*p == 'n') val[vn++] = '\n';
                    else if (*p == 'r') val[vn++] = '\r';
                    else if (*p == 'x' && p + 2 < end && unhex(p[1]) >= 0 && unhex(p[2]) >= 0) {
                        val[vn++] = (char)(unhex(p[1]) * 16 + unhex(p[2]));
                        p += 2;
                    } else val[vn++] = *p;
                } else {
                    val[vn++] = *p;
                }
            }
            if (p < end) p++; /* the closing quote */
        }
        /* unquoted (or what follows a quoted value): up to the next " key=" */
        const char *q = p;
        while (q < end && !(q > p && q[-1] == ' ' && key_len_at(q))) q++;
        const char *vend = q < end && q > p ? q - 1 : q;
        for (const char *r = p; r < vend && vn < sizeof val; r++) val[vn++] = *r;
        json_append_string(&o, val, vn);
        p = q;
    }
    sbuf_append(&o, "}\n", 2);
    if (o.p) fwrite(o.p, 1, o.len, stderr);
    sbuf_free(&o);
}

/* }================================================================== */
