#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The level is set once at start from the flags, before the loop runs; it is
 * configuration, not state, so it lives here rather than in struct server. */
static enum log_level min_level = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level) { min_level = level; }

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

void log_msg(enum log_level level, const char *component, const char *fmt, ...) {
    if (level < min_level) return;
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
