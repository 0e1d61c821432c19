/* Unit tests for core/proto/etag.h: If-None-Match lists against one tag. */
#include "check.h"
#include "etag.h"

static int m(const char *list, const char *etag) { return etag_matches((struct slice){list, strlen(list)}, etag); }

TEST(matches_star_and_lists) {
    CHECK_INT(1, m("*", "\"a\""));
    CHECK_INT(1, m("\"a\"", "\"a\""));
    CHECK_INT(1, m("\"x\", \"a\"", "\"a\""));
    CHECK_INT(1, m("\"x\",W/\"a\" ", "\"a\"")); /* weak comparison */
    CHECK_INT(1, m(" \t\"a\"\t,\"b\"", "\"a\""));
}

TEST(refuses_others) {
    CHECK_INT(0, m("", "\"a\""));
    CHECK_INT(0, m("\"ab\"", "\"a\""));
    CHECK_INT(0, m("a", "\"a\""));
    CHECK_INT(0, m("**", "\"a\""));
    CHECK_INT(0, m("\"x\", \"b\"", "\"a\""));
}

int main(void) {
    RUN(matches_star_and_lists);
    RUN(refuses_others);
    return check_finish("test_etag");
}
