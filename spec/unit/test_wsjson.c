/* Unit tests for core/wsjson.h: the shape of a plain /ws frame (issue 11, item 9): what is
 * accepted, why the rest is refused, and which event and id the refusal can still name.
 * Inputs are copied to exact-size heap blocks so that a read past the end shows up under ASan. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "wsjson.h"

static char *copy;

static const char *parse(const char *s, struct wsjson_msg *m) {
    free(copy);
    size_t n = strlen(s);
    copy = malloc(n ? n : 1);
    memcpy(copy, s, n);
    return wsjson_parse(copy, n, m);
}

#define CHECK_ACCEPTED(why) do { const char *w_ = (why); if (!CHECK(w_ == NULL)) fprintf(stderr, "    refused: %s\n", w_); } while (0)

TEST(accepts_event_data_and_id) {
    struct wsjson_msg m;
    CHECK_ACCEPTED(parse(" {\"event\":\"join_room\",\"data\":{\"room\":\"r\"},\"id\":\"req-2\"} ", &m));
    CHECK_SLICE("\"join_room\"", m.event);
    CHECK_SLICE("{\"room\":\"r\"}", m.data);
    CHECK_SLICE("\"req-2\"", m.id);
    CHECK_ACCEPTED(parse("{\"jsonrpc\":\"2.0\",\"id\":-1.5e3,\"event\":\"x\"}", &m));
    CHECK_SLICE("-1.5e3", m.id);
    CHECK_INT(0, (long long)m.data.len);
    CHECK_ACCEPTED(parse("{\"\\u0065vent\":\"x\",\"data\":{}}", &m)); /* escaped key */
    CHECK_SLICE("\"x\"", m.event);
    CHECK_INT(0, (long long)m.id.len);
}

TEST(refuses_what_is_not_such_an_object) {
    struct wsjson_msg m;
    const char *bad[] = {
        "", "hello", "[]", "\"x\"", "null", "{\"event\":\"x\"", "\xef\xbb\xbf{\"event\":\"x\"}", "{\"event\":\"x\"} {}",
        "{\"data\":{}}", "{\"event\":5}", "{\"event\":\"\"}", "{\"event\":\"connect\"}", "{\"event\":\"x\",\"data\":[]}",
        "{\"event\":\"x\",\"data\":null}", "{\"event\":\"x\",\"id\":true}", "{\"event\":\"x\",\"id\":null}",
        "{\"event\":\"x\",\"event\":\"y\"}", "{\"event\":\"x\",\"data\":{\"n\":1e400}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = parse(bad[i], &m);
        if (!CHECK(why != NULL)) fprintf(stderr, "    input: %s\n", bad[i]);
    }
}

TEST(a_refusal_names_what_it_could_read) {
    struct wsjson_msg m;
    char deep[400];
    strcpy(deep, "{\"id\":7,\"event\":\"get\",\"data\":{\"x\":");
    size_t n = strlen(deep);
    memset(deep + n, '[', 70);
    memset(deep + n + 70, ']', 70);
    strcpy(deep + n + 140, "}}");
    CHECK(parse(deep, &m) != NULL);
    CHECK(strstr(parse(deep, &m), "64") != NULL);
    CHECK_SLICE("7", m.id);
    CHECK_SLICE("\"get\"", m.event);
    CHECK(parse("{\"event\":\"get\",\"id\":\"a\",\"data\":\"s\"}", &m) != NULL);
    CHECK_SLICE("\"a\"", m.id);
    CHECK_SLICE("\"get\"", m.event);
    CHECK(parse("{\"event\":\"get\",\"id\":[1]}", &m) != NULL);
    CHECK_INT(0, (long long)m.id.len); /* a wrong-typed id is not echoed */
    CHECK(parse("{\"event\":\"get\",\"id\":1e400}", &m) != NULL);
    CHECK_INT(0, (long long)m.id.len);
    CHECK(parse("{\"event\":\"get\",\"id\":\"x\"", &m) != NULL);
    CHECK_INT(0, (long long)m.id.len); /* not JSON: nothing is read */
}

TEST(id_sizes) {
    struct wsjson_msg m;
    char s[512];
    snprintf(s, sizeof s, "{\"event\":\"x\",\"id\":\"%.*s\"}", 64, "0123456789012345678901234567890123456789012345678901234567890123456789");
    CHECK_ACCEPTED(parse(s, &m));
    snprintf(s, sizeof s, "{\"event\":\"x\",\"id\":\"%.*s\"}", 65, "0123456789012345678901234567890123456789012345678901234567890123456789");
    CHECK(parse(s, &m) != NULL);
    /* 64 bytes written as escapes: counted decoded */
    strcpy(s, "{\"event\":\"x\",\"id\":\"");
    for (int i = 0; i < 64; i++) strcat(s, "\\u0041");
    strcat(s, "\"}");
    CHECK_ACCEPTED(parse(s, &m));
    long long v = -1;
    CHECK_INT(1, wsjson_id_is_small_int((struct slice){"123", 3}, &v));
    CHECK_INT(123, v);
    CHECK_INT(1, wsjson_id_is_small_int((struct slice){"999999999999999", 15}, &v));
    CHECK_INT(0, wsjson_id_is_small_int((struct slice){"1000000000000000", 16}, &v));
    CHECK_INT(0, wsjson_id_is_small_int((struct slice){"-1", 2}, &v));
    CHECK_INT(0, wsjson_id_is_small_int((struct slice){"1.0", 3}, &v));
    CHECK_INT(0, wsjson_id_is_small_int((struct slice){"\"1\"", 3}, &v));
}

int main(void) {
    RUN(accepts_event_data_and_id);
    RUN(refuses_what_is_not_such_an_object);
    RUN(a_refusal_names_what_it_could_read);
    RUN(id_sizes);
    free(copy);
    return check_finish("test_wsjson");
}
