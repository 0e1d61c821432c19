#include "wsjson.h"

#include <string.h>

#include "json_scan.h"
#include "sio_packet.h"

/* A member name, decoded when it holds escapes ("\u0065vent" is "event"):
 * 1 when it is name. */
static int key_is(struct slice raw, const char *name) {
    if (!memchr(raw.p, '\\', raw.len)) return slice_eq(raw, name);
    char buf[16];
    long n = json_string_value((struct slice){raw.p - 1, raw.len + 2}, buf, sizeof buf);
    return n >= 0 && strcmp(buf, name) == 0;
}

static const char *check_id(const struct json_member *mb) {
    if (mb->type == 'n') {
        if (mb->value.len > WSJSON_MAX_ID_BYTES) return "\"id\" must have at most 64 characters";
        if (json_check(mb->value.p, mb->value.len, 1, NULL)) return "\"id\" is a number out of range";
        return NULL;
    }
    if (mb->type != 's') return "\"id\" must be a number or a string";
    if (json_string_decoded_len(mb->value) > WSJSON_MAX_ID_BYTES) return "\"id\" must be a string of at most 64 bytes";
    return NULL;
}

static const char *check_event(struct slice token) {
    if (token.len == 2) return "\"event\" must not be empty";
    char name[32];
    long n = json_string_value(token, name, sizeof name);
    if (n > 0 && sio_is_reserved_event(name, (size_t)n)) return "\"event\" is a name Socket.IO reserves";
    return NULL;
}

const char *wsjson_parse(const char *p, size_t len, struct wsjson_msg *m) {
    memset(m, 0, sizeof *m);
    if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) return "a byte order mark before the JSON object";
    /* Over a limit, the JSON is still valid: the members are read all the
     * same, so that the answer can name the event and echo the id. */
    const char *limit = NULL;
    switch (json_check(p, len, JSON_SCAN_MAX_DEPTH, NULL)) {
    case JSON_CHECK_OK: break;
    case JSON_CHECK_SYNTAX: return "the message is not valid JSON";
    case JSON_CHECK_TRAILING: return "bytes after the JSON object";
    case JSON_CHECK_TOO_DEEP: limit = "JSON nested deeper than 64 levels"; break;
    case JSON_CHECK_NUMBER_RANGE: limit = "a number out of range (beyond a double)"; break;
    }
    size_t pos = 0;
    while (pos < len && (p[pos] == ' ' || p[pos] == '\t' || p[pos] == '\n' || p[pos] == '\r')) pos++;
    if (p[pos] != '{') return "the message must be a JSON object";
    /* Members once each, then the checks in an order that reads the id and
     * the event first: the answer echoes them even when the rest is wrong. */
    struct json_member mb, event = {0}, data = {0}, id = {0};
    int seen_event = 0, seen_data = 0, seen_id = 0;
    const char *why = limit;
    pos = 0;
    while (json_object_next_valid(p, len, &pos, &mb) == 1) {
        if (key_is(mb.key, "event")) {
            if (seen_event++) why = "\"event\" appears twice";
            event = mb;
        } else if (key_is(mb.key, "data")) {
            if (seen_data++) why = "\"data\" appears twice";
            data = mb;
        } else if (key_is(mb.key, "id")) {
            if (seen_id++) why = "\"id\" appears twice";
            id = mb;
        }
    }
    if (seen_id == 1) {
        const char *bad_id = check_id(&id);
        if (bad_id) why = why ? why : bad_id;
        else m->id = id.value;
    }
    if (seen_event == 1 && event.type == 's') m->event = event.value;
    if (why) return why;
    if (!seen_event) return "\"event\" is missing";
    if (event.type != 's') return "\"event\" must be a string";
    if ((why = check_event(event.value))) return why;
    if (seen_data && data.type != 'o') return "\"data\" must be a JSON object";
    if (seen_data) m->data = data.value;
    return NULL;
}

int wsjson_id_is_small_int(struct slice id, long long *value) {
    if (id.len == 0 || id.len > 15) return 0;
    long long v = 0;
    for (size_t i = 0; i < id.len; i++) {
        if (id.p[i] < '0' || id.p[i] > '9') return 0;
        v = v * 10 + (id.p[i] - '0');
    }
    *value = v;
    return 1;
}
