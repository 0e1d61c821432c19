/* libFuzzer target: json_check (a client message's JSON problem, at any depth) and wsjson_parse
 * (the shape of a plain /ws frame), against json_scan's recursive validator as the reference:
 *   - json_check at the depth limit says OK or NUMBER_RANGE exactly when json_valid holds;
 *     TOO_DEEP only for text that is valid JSON at any depth (json_check without a limit says OK
 *     or NUMBER_RANGE); SYNTAX and TRAILING whatever the limit; TRAILING only where
 *     json_scan_value reads one value that ends before the input does (when not too deep);
 *   - a text that is one number is NUMBER_RANGE exactly when strtod reads it as infinite;
 *   - the offset of the problem lies inside the input (or at its end);
 *   - wsjson_parse accepts only valid JSON objects; then event is a string token inside the
 *     input, data an object or empty, id a number or string token (≤ 64 bytes decoded), each
 *     valid JSON on its own; a refusal's event and id slices are inside the input too;
 *   - json_object_next_valid walks a valid object exactly as json_object_next does.
 * The input is copied to an exact-size heap block so that any read past its end is caught. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"
#include "wsjson.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "fuzz_wsjson: " __VA_ARGS__);                                              \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

static void inside(const char *p, size_t n, struct slice s, const char *what) {
    if (s.len && (s.p < p || s.p + s.len > p + n)) FAIL("%s slice outside the input", what);
}

static int is_number_text(const char *p, size_t n) {
    size_t i = 0;
    while (i < n && strchr(" \t\n\r", p[i])) i++;
    return i < n && (p[i] == '-' || (p[i] >= '0' && p[i] <= '9'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 65536) return 0;
    char *p = malloc(size ? size : 1);
    if (size) memcpy(p, data, size);

    size_t at = SIZE_MAX;
    enum json_check_error limited = json_check(p, size, JSON_SCAN_MAX_DEPTH, &at);
    enum json_check_error unlimited = json_check(p, size, UINT_MAX, NULL);
    if (at > size) FAIL("the problem's offset %zu is past the end (%zu)", at, size);
    int valid = json_valid(p, size);
    int accepted = limited == JSON_CHECK_OK || limited == JSON_CHECK_NUMBER_RANGE;
    if (accepted != valid) FAIL("json_check = %d at depth 64, json_valid = %d", limited, valid);
    if (unlimited == JSON_CHECK_TOO_DEEP) FAIL("TOO_DEEP without a depth limit");
    if (limited == JSON_CHECK_TOO_DEEP && unlimited != JSON_CHECK_OK && unlimited != JSON_CHECK_NUMBER_RANGE)
        FAIL("TOO_DEEP for text that is not valid JSON at any depth (%d)", unlimited);
    if ((unlimited == JSON_CHECK_SYNTAX || unlimited == JSON_CHECK_TRAILING) && limited != unlimited)
        FAIL("a syntax verdict that depends on the limit: %d vs %d", limited, unlimited);
    if (limited == JSON_CHECK_SYNTAX && json_scan_value(p, size, 0) >= 0) FAIL("SYNTAX, but json_scan_value reads a value");
    if (limited == JSON_CHECK_TRAILING) {
        long end = json_scan_value(p, size, 0);
        if (end >= (long)size) FAIL("TRAILING, but the value takes the whole input");
    }
    if (accepted && is_number_text(p, size)) {
        char *z = malloc(size + 1);
        memcpy(z, p, size);
        z[size] = 0;
        int finite = isfinite(strtod(z, NULL));
        free(z);
        if (finite != (limited == JSON_CHECK_OK)) FAIL("number range: json_check = %d, strtod finite = %d", limited, finite);
    }

    if (valid) { /* both walks agree */
        size_t pa = 0, pb = 0;
        struct json_member a, b;
        int ra, rb;
        do {
            ra = json_object_next(p, size, &pa, &a);
            rb = json_object_next_valid(p, size, &pb, &b);
            if (ra < 0) break; /* not an object: the checked walk is not for it */
            if (ra != rb || pa != pb || (ra == 1 && (a.key.p != b.key.p || a.key.len != b.key.len || a.value.p != b.value.p ||
                                                    a.value.len != b.value.len || a.type != b.type)))
                FAIL("json_object_next_valid differs from json_object_next");
        } while (ra == 1);
    }

    struct wsjson_msg m;
    const char *why = wsjson_parse(p, size, &m);
    inside(p, size, m.event, "event");
    inside(p, size, m.data, "data");
    inside(p, size, m.id, "id");
    if (!why) {
        if (limited != JSON_CHECK_OK) FAIL("wsjson_parse accepted JSON json_check refuses (%d)", limited);
        if (m.event.len < 3 || m.event.p[0] != '"' || !json_valid(m.event.p, m.event.len)) FAIL("accepted with a bad event token");
        if (m.data.len && (m.data.p[0] != '{' || !json_valid(m.data.p, m.data.len))) FAIL("accepted with data not an object");
        if (m.id.len) {
            if (!json_valid(m.id.p, m.id.len)) FAIL("accepted with an id that is not JSON");
            if (m.id.p[0] == '"' ? json_string_decoded_len(m.id) > WSJSON_MAX_ID_BYTES : m.id.len > WSJSON_MAX_ID_BYTES)
                FAIL("accepted an id over 64 bytes");
        }
    } else if (!*why) {
        FAIL("an empty reason");
    }
    long long small;
    if (m.id.len && wsjson_id_is_small_int(m.id, &small) && (small < 0 || small > 999999999999999LL))
        FAIL("a small id out of its range: %lld", small);
    free(p);
    return 0;
}
