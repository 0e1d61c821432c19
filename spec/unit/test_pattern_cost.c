/* Unit tests for core/pattern_cost.h: the bound stays small for the
 * patterns scripts use on ordinary text (trims, splits, escapes), grows
 * past any budget for the backtracking bombs, follows Lua's init rules,
 * and counts a plain find as positions times the pattern's length. */
#include <stdlib.h>

#include "check.h"
#include "pattern_cost.h"

#define BUDGET 10e6

static char *repeat(const char *unit, size_t times, const char *tail) {
    size_t u = strlen(unit), t = strlen(tail);
    char *s = malloc(u * times + t + 1);
    for (size_t i = 0; i < times; i++) memcpy(s + i * u, unit, u);
    memcpy(s + u * times, tail, t + 1);
    return s;
}

/* The refined bound: a limit of 0 makes it measure every class's runs. */
static double cost(enum pattern_call call, const char *s, const char *p) {
    return pattern_cost(call, s, strlen(s), p, strlen(p), 1, 0, 0);
}

TEST(ordinary_text_is_cheap) {
    char *text = repeat("hello world, this is  a message. ", 60, "  ");
    CHECK(cost(PATTERN_FIND, text, "^%s*(.-)%s*$") < 2e5);
    CHECK(cost(PATTERN_GSUB, text, "%s+") < 1e5);
    CHECK(cost(PATTERN_GMATCH, text, "%S+") < 1e5);
    CHECK(cost(PATTERN_GSUB, text, "[<>&\"]") < 1e5);
    CHECK(cost(PATTERN_FIND, text, "^[%w_]+$") < 1e5);
    CHECK(cost(PATTERN_FIND, "room-1", "^[%w%-_]+$") < 100);
    free(text);
}

TEST(bombs_are_over_any_budget) {
    char *spaces = repeat(" ", 100000, "x");
    CHECK(cost(PATTERN_FIND, spaces, "[ \t]+$") > 1e9);
    CHECK(cost(PATTERN_FIND, spaces, "%s+$") > 1e9);
    free(spaces);
    char *a = repeat("a", 100000, "");
    CHECK(cost(PATTERN_FIND, a, ".-.-.-b") > 1e15);
    CHECK(cost(PATTERN_GMATCH, a, "a-a-a-b") > 1e15);
    CHECK(cost(PATTERN_GSUB, a, "a*a*a*b") > 1e15);
    CHECK(cost(PATTERN_FIND, a, "(a?)(a?)(a?)(a?)(a?)(a?)(a?)(a?)(a?)(a?)(a?)(a?)(a?)(a?)(a?)(a?)(a?)(a?)(a?)(a?)b") > BUDGET);
    /* %b scans the subject on every path */
    CHECK(cost(PATTERN_GSUB, a, "%baa") > BUDGET);
    free(a);
}

TEST(runs_bound_each_class) {
    /* one long run of spaces and nothing else: only its class pays */
    char *s = repeat("ab", 1000, "");
    CHECK(cost(PATTERN_FIND, s, "^%s*(.-)%s*$") < 2e4);
    CHECK(cost(PATTERN_FIND, s, "^[%s]*x") < 10);
    CHECK(cost(PATTERN_FIND, s, "^[^ab]*x") < 10);
    CHECK(cost(PATTERN_FIND, s, "^[c-z]*x") < 10);
    CHECK(cost(PATTERN_FIND, s, "^[a-b]*x") > 1000);
    CHECK(cost(PATTERN_FIND, s, "^[]a-b]*x") > 1000);
    CHECK(cost(PATTERN_FIND, s, "^%a*x") > 1000);
    CHECK(cost(PATTERN_FIND, s, "^%A*x") < 10);
    free(s);
}

TEST(anchors_and_init) {
    char *s = repeat("a", 1000, "");
    double anchored = cost(PATTERN_FIND, s, "^a*b"), free_ = cost(PATTERN_FIND, s, "a*b");
    CHECK(anchored < 1e4);
    CHECK(free_ > 1e5);
    /* gmatch: '^' is a plain character, every position is tried */
    CHECK(cost(PATTERN_GMATCH, s, "^a*b") > 1e5);
    /* from init 991 only 10 bytes are left */
    CHECK(pattern_cost(PATTERN_FIND, s, 1000, "a*b", 3, 991, 0, BUDGET) < 1000);
    CHECK(pattern_cost(PATTERN_FIND, s, 1000, "a*b", 3, -10, 0, BUDGET) < 1000);
    CHECK(pattern_cost(PATTERN_FIND, s, 1000, "a*b", 3, 2000, 0, BUDGET) == 0);
    CHECK(pattern_cost(PATTERN_FIND, s, 1000, "a*b", 3, -5000, 0, BUDGET) > 1e5);
    CHECK(pattern_cost(PATTERN_FIND, s, 1000, "a*b", 3, INT64_MIN, 0, BUDGET) > 1e5);
    CHECK(pattern_cost(PATTERN_GMATCH, s, 1000, "a*b", 3, INT64_MAX, 0, BUDGET) <= 10);
    free(s);
}

TEST(plain_find) {
    char *s = repeat("a", 4000000, ""), *p = repeat("a", 2000000, "b");
    CHECK(pattern_cost(PATTERN_FIND, s, strlen(s), p, strlen(p), 1, 1, BUDGET) > 1e12);
    CHECK(pattern_cost(PATTERN_FIND, s, strlen(s), "a.*", 3, 1, 1, BUDGET) < 2e7);
    /* under the limit, the coarse bound (every run the whole subject) is enough */
    CHECK(pattern_cost(PATTERN_FIND, "ab ab", 5, "^%s*x", 5, 1, 0, BUDGET) == 2 * 6);
    CHECK(pattern_cost(PATTERN_FIND, "ab", 2, p, strlen(p), 1, 1, BUDGET) <= 1);
    free(s);
    free(p);
}

TEST(malformed_patterns_stop_where_the_matcher_raises) {
    CHECK(cost(PATTERN_FIND, "abc", "[a") < 100);
    CHECK(cost(PATTERN_FIND, "abc", "a%") < 100);
    CHECK(cost(PATTERN_FIND, "abc", "%f") < 100);
    CHECK(cost(PATTERN_FIND, "abc", "%b") < 100);
    CHECK(cost(PATTERN_FIND, "", "") >= 1);
}

int main(void) {
    RUN(ordinary_text_is_cheap);
    RUN(bombs_are_over_any_budget);
    RUN(runs_bound_each_class);
    RUN(anchors_and_init);
    RUN(plain_find);
    RUN(malformed_patterns_stop_where_the_matcher_raises);
    return check_finish("test_pattern_cost");
}
