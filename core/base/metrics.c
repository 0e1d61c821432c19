#include "metrics.h"

#include <stdio.h>
#include <string.h>

/* Prometheus' default buckets, with finer ones below a millisecond: a
 * handler call or a loop turn usually takes microseconds. */
const double metrics_buckets[METRICS_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                              0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};

/* The stock app's events both ways, labelled from the start; handlers of
 * other apps add theirs as they are first called. */
static const char *const FIXED_NAMES[] = {
    "join_room",  "leave_room",  "send_message",  "send_file",  "get_room_users", "refresh_token",
    "error",      "connected",   "joined_room",   "left_room",  "user_joined_room", "user_left_room",
    "new_message", "message_sent", "new_file",    "file_sent",  "room_users",     "token_refreshed",
    "token_expired", NULL};

void histogram_observe(struct histogram *h, double v) {
    int i = 0;
    while (i < METRICS_BUCKETS && v > metrics_buckets[i]) i++;
    h->n[i]++;
    h->count++;
    h->sum += v;
    if (v > h->max) h->max = v;
}

void metrics_init(struct metrics *m) {
    m->n_names = 1; /* slot 0: "other" */
    memcpy(m->names[0], "other", 6);
    m->name_len[0] = 5;
    for (const char *const *n = FIXED_NAMES; *n; n++) metrics_event_learn(m, *n, strlen(*n));
}

unsigned metrics_event_slot(const struct metrics *m, const char *name, size_t len) {
    if (len == 0 || len >= METRICS_NAME_MAX) return 0;
    for (unsigned i = 1; i < m->n_names; i++)
        if (m->name_len[i] == len && m->names[i][0] == name[0] && memcmp(m->names[i], name, len) == 0) return i;
    return 0;
}

unsigned metrics_event_learn(struct metrics *m, const char *name, size_t len) {
    unsigned slot = metrics_event_slot(m, name, len);
    if (slot || len == 0 || len >= METRICS_NAME_MAX || m->n_names == METRICS_MAX_NAMES) return slot;
    /* Label values must be valid UTF-8 and need escaping for '"' and '\\':
     * names that would need it stay "other". */
    for (size_t i = 0; i < len; i++)
        if (name[i] == '"' || name[i] == '\\' || (unsigned char)name[i] < 0x20 || (unsigned char)name[i] >= 0x7f)
            return 0;
    slot = m->n_names++;
    memcpy(m->names[slot], name, len);
    m->names[slot][len] = 0;
    m->name_len[slot] = (uint8_t)len;
    return slot;
}

void metrics_event_in(struct metrics *m, unsigned slot, int handled, uint64_t ns) {
    m->events_in[slot]++;
    if (slot && handled) {
        m->has_handler[slot] = 1;
        histogram_observe(&m->handler_seconds[slot], (double)ns / 1e9);
    }
}

void metrics_event_out(struct metrics *m, const char *json, size_t len, size_t n, int fanout) {
    if (!n) return;
    unsigned slot = 0;
    /* ["name", ...]: a name with escapes stays "other" (its slot would need decoding) */
    if (len > 3 && json[0] == '[' && json[1] == '"') {
        const char *q = memchr(json + 2, '"', len - 2 < METRICS_NAME_MAX ? len - 2 : METRICS_NAME_MAX);
        if (q && !memchr(json + 2, '\\', (size_t)(q - json - 2))) slot = metrics_event_slot(m, json + 2, (size_t)(q - json - 2));
    }
    m->events_out[slot] += n;
    if (fanout) m->fanout_deliveries += n;
}

void metrics_handler_failed(struct metrics *m, const char *handler, enum metrics_failure why) {
    /* One pointer per kind: rows compare kinds by address. */
    static const char *const kinds[] = {"error", "budget", "cpu", "time", "memory"};
    const char *kind = kinds[why];
    unsigned i;
    for (i = 0; i < m->n_errors; i++)
        if (m->errors[i].kind == kind && strcmp(m->errors[i].handler, handler) == 0) break;
    if (i == m->n_errors) {
        if (m->n_errors == METRICS_MAX_ERROR_KEYS) {
            /* full: the last row, handler="other", takes the rest (its kind is the first it saw) */
            i = METRICS_MAX_ERROR_KEYS;
            if (!m->errors[i].kind) {
                memcpy(m->errors[i].handler, "other", 6);
                m->errors[i].kind = kind;
            }
        } else {
            snprintf(m->errors[i].handler, sizeof m->errors[i].handler, "%s", handler);
            for (char *p = m->errors[i].handler; *p; p++)
                if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) *p = '_';
            m->errors[i].kind = kind;
            m->n_errors++;
        }
    }
    m->errors[i].n++;
}
