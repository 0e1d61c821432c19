/* check.h: a tiny assertion kit for the C unit tests (header only).
 *
 *   TEST(parses_minimal_get) { CHECK_INT(18, http_parse_request(...)); }
 *   int main(void) { RUN(parses_minimal_get); return check_finish("test_http"); }
 *
 * Every CHECK counts as one check; a failing one prints file:line, the test
 * it belongs to, and expected vs got, then the test carries on. The binary
 * ends with "<suite>: N passed, M failed" (counting checks) and returns 1
 * when any check failed. */
#ifndef SPACE_CHECK_H
#define SPACE_CHECK_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static unsigned check_passed_n, check_failed_n, check_tests_n, check_tests_failed_n;
static const char *check_current_test = "?";

static inline void check_fail_header(const char *file, int line) {
    check_failed_n++;
    fprintf(stderr, "%s:%d: FAIL in %s\n", file, line, check_current_test);
}

/* Prints len bytes, escaping non-printables, at most 200 of them. */
static inline void check_print_bytes(const void *p, size_t len) {
    const unsigned char *s = p;
    if (!s) {
        fputs("(null)", stderr);
        return;
    }
    fputc('"', stderr);
    for (size_t i = 0; i < len && i < 200; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') fprintf(stderr, "\\%c", c);
        else if (c >= 0x20 && c < 0x7f) fputc(c, stderr);
        else fprintf(stderr, "\\x%02x", c);
    }
    fputc('"', stderr);
    if (len > 200) fprintf(stderr, "...(%zu bytes)", len);
}

static inline int check_true(int ok, const char *expr, const char *file, int line) {
    if (ok) {
        check_passed_n++;
        return 1;
    }
    check_fail_header(file, line);
    fprintf(stderr, "    expected true: %s\n", expr);
    return 0;
}

static inline int check_int(long long expected, long long got, const char *expr, const char *file,
                     int line) {
    if (expected == got) {
        check_passed_n++;
        return 1;
    }
    check_fail_header(file, line);
    fprintf(stderr, "    %s\n    expected: %lld\n    got:      %lld\n", expr, expected, got);
    return 0;
}

static inline int check_uint(unsigned long long expected, unsigned long long got, const char *expr,
                      const char *file, int line) {
    if (expected == got) {
        check_passed_n++;
        return 1;
    }
    check_fail_header(file, line);
    fprintf(stderr, "    %s\n    expected: %llu\n    got:      %llu\n", expr, expected, got);
    return 0;
}

static inline int check_mem(const void *expected, size_t elen, const void *got, size_t glen,
                     const char *expr, const char *file, int line) {
    if (elen == glen && (elen == 0 || (expected && got && memcmp(expected, got, elen) == 0))) {
        check_passed_n++;
        return 1;
    }
    check_fail_header(file, line);
    fprintf(stderr, "    %s\n    expected: ", expr);
    check_print_bytes(expected, elen);
    fprintf(stderr, " (%zu bytes)\n    got:      ", elen);
    check_print_bytes(got, glen);
    fprintf(stderr, " (%zu bytes)\n", glen);
    return 0;
}

static inline int check_str(const char *expected, const char *got, const char *expr,
                            const char *file, int line) {
    return check_mem(expected, strlen(expected), got, got ? strlen(got) : 0, expr, file, line) &&
           (got != NULL || expected[0] == 0);
}

#define CHECK(cond) check_true(!!(cond), #cond, __FILE__, __LINE__)
#define CHECK_INT(expected, got) \
    check_int((long long)(expected), (long long)(got), #got " == " #expected, __FILE__, __LINE__)
#define CHECK_UINT(expected, got) \
    check_uint((unsigned long long)(expected), (unsigned long long)(got), #got " == " #expected, \
               __FILE__, __LINE__)
#define CHECK_PTR(expected, got) \
    check_true((const void *)(expected) == (const void *)(got), #got " == " #expected, __FILE__, __LINE__)
/* Byte strings: (pointer, length) against a C string. */
#define CHECK_MEM(expected_cstr, got_p, got_len)                                                   \
    check_mem((expected_cstr), strlen(expected_cstr), (got_p), (size_t)(got_len),                  \
              #got_p " == " #expected_cstr, __FILE__, __LINE__)
#define CHECK_MEMN(expected_p, expected_len, got_p, got_len)                                       \
    check_mem((expected_p), (size_t)(expected_len), (got_p), (size_t)(got_len),                    \
              #got_p " == " #expected_p, __FILE__, __LINE__)
#define CHECK_STR(expected_cstr, got_cstr) \
    check_str((expected_cstr), (got_cstr), #got_cstr " == " #expected_cstr, __FILE__, __LINE__)
/* A struct slice {p, len} against a C string. */
#define CHECK_SLICE(expected_cstr, s)                                                              \
    check_mem((expected_cstr), strlen(expected_cstr), (s).p, (s).len, #s " == " #expected_cstr,    \
              __FILE__, __LINE__)

#define TEST(name) static void name(void)
#define RUN(name) check_run(#name, name)

static inline void check_run(const char *name, void (*fn)(void)) {
    unsigned before = check_failed_n;
    check_current_test = name;
    check_tests_n++;
    fn();
    if (check_failed_n != before) {
        check_tests_failed_n++;
        fprintf(stderr, "  -> test %s failed\n", name);
    }
    check_current_test = "?";
}

static inline int check_finish(const char *suite) {
    printf("%s: %u tests, %u failed tests\n", suite, check_tests_n, check_tests_failed_n);
    printf("%s: %u passed, %u failed\n", suite, check_passed_n, check_failed_n);
    fflush(stdout);
    return check_failed_n ? 1 : 0;
}

#endif
