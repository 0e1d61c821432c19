/* log: one line per event, "time level component: message key=value ...",
 * so that operators can grep by level, component or key. */
#ifndef SPACE_LOG_H
#define SPACE_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
/* --log-format json: each line one JSON object (log.c says which members). */
void log_set_json(int on);
/* Parses "debug"/"info"/"warn"/"error"; returns -1 when unknown. */
int log_level_parse(const char *s);
int log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* s made safe inside key="..." (quotes, backslashes and control characters
 * escaped, so one event stays one line), cut to fit cap; returns out. */
const char *log_quoted(char *out, size_t cap, const char *s);
#define LOG_QUOTED_MAX 512

#define log_debug(comp, ...) \
    do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, comp, __VA_ARGS__); } while (0)
#define log_info(comp, ...) log_msg(LOG_INFO, comp, __VA_ARGS__)
#define log_warn(comp, ...) log_msg(LOG_WARN, comp, __VA_ARGS__)
#define log_error(comp, ...) log_msg(LOG_ERROR, comp, __VA_ARGS__)

#endif
