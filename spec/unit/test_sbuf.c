/* Unit tests for core/sbuf.h: the growable output buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sbuf.h"

TEST(starts_empty_without_allocating) {
    struct sbuf b = {0};
    CHECK_INT(0, sbuf_reserve(&b, 0));
    CHECK(b.p == NULL);
    CHECK_INT(0, sbuf_append(&b, NULL, 0));
    CHECK_UINT(0, b.len);
    sbuf_free(&b);
    CHECK(b.p == NULL);
}

TEST(first_growth_allocates_256_bytes) {
    struct sbuf b = {0};
    CHECK_INT(0, sbuf_putc(&b, 'x'));
    CHECK_UINT(256, b.cap);
    CHECK_UINT(1, b.len);
    CHECK_INT('x', b.p[0]);
    sbuf_free(&b);
}

TEST(appends_keep_earlier_bytes_across_growth) {
    struct sbuf b = {0};
    char expect[10000];
    for (int i = 0; i < 10000; i++) {
        expect[i] = (char)('a' + i % 26);
        if (sbuf_putc(&b, expect[i]) != 0) CHECK(0);
    }
    CHECK_MEMN(expect, sizeof expect, b.p, b.len);
    CHECK(b.cap >= b.len);
    CHECK_INT(0, (int)(b.cap & (b.cap - 1))); /* 256 doubled: a power of two */
    sbuf_free(&b);
}

TEST(reserve_grows_by_doubling_to_fit) {
    struct sbuf b = {0};
    CHECK_INT(0, sbuf_reserve(&b, 1000));
    CHECK_UINT(1024, b.cap);
    CHECK_UINT(0, b.len);
    CHECK_INT(0, sbuf_append(&b, "abc", 3));
    CHECK_INT(0, sbuf_reserve(&b, 1021));
    CHECK_UINT(1024, b.cap); /* exactly fits: no growth */
    CHECK_INT(0, sbuf_reserve(&b, 1022));
    CHECK_UINT(2048, b.cap);
    CHECK_MEM("abc", b.p, b.len);
    sbuf_free(&b);
}

TEST(reserve_refuses_impossible_sizes_and_leaves_the_buffer) {
    struct sbuf b = {0};
    CHECK_INT(0, sbuf_append(&b, "keep", 4));
    char *p = b.p;
    size_t cap = b.cap;
    CHECK_INT(-1, sbuf_reserve(&b, SIZE_MAX));
    CHECK_INT(-1, sbuf_reserve(&b, SIZE_MAX - 3));
    CHECK_INT(-1, sbuf_append(&b, "x", SIZE_MAX));
    CHECK(b.p == p);
    CHECK_UINT(cap, b.cap);
    CHECK_MEM("keep", b.p, b.len);
    sbuf_free(&b);
}

TEST(printf_appends_formatted_text) {
    struct sbuf b = {0};
    CHECK_INT(0, sbuf_append(&b, "[", 1));
    CHECK_INT(0, sbuf_printf(&b, "%d,%s,%05.1f", -42, "x", 3.14159));
    CHECK_INT(0, sbuf_printf(&b, "%s", ""));
    CHECK_INT(0, sbuf_putc(&b, ']'));
    CHECK_MEM("[-42,x,003.1]", b.p, b.len);
    sbuf_free(&b);
}

TEST(printf_handles_output_larger_than_the_buffer) {
    struct sbuf b = {0};
    char big[5000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = 0;
    CHECK_INT(0, sbuf_printf(&b, "<%s>", big));
    CHECK_UINT(5001, b.len);
    CHECK(b.len < b.cap); /* room was made for vsnprintf's NUL */
    CHECK_INT('<', b.p[0]);
    CHECK_INT('q', b.p[4999]);
    CHECK_INT('>', b.p[5000]);
    sbuf_free(&b);
}

TEST(printf_at_exact_capacity_boundary) {
    /* Fill to cap - n, then print exactly n chars: needs n + 1 for the NUL. */
    struct sbuf b = {0};
    CHECK_INT(0, sbuf_reserve(&b, 256));
    memset(b.p, 'z', 256);
    b.len = 250;
    CHECK_INT(0, sbuf_printf(&b, "%s", "123456"));
    CHECK_UINT(256, b.len);
    CHECK(b.cap > 256);
    CHECK_MEMN("zzz123456", 9, b.p + 247, 9);
    sbuf_free(&b);
}

TEST(reset_keeps_the_allocation) {
    struct sbuf b = {0};
    CHECK_INT(0, sbuf_printf(&b, "%s", "hello"));
    char *p = b.p;
    size_t cap = b.cap;
    sbuf_reset(&b);
    CHECK_UINT(0, b.len);
    CHECK(b.p == p);
    CHECK_UINT(cap, b.cap);
    CHECK_INT(0, sbuf_append(&b, "again", 5));
    CHECK_MEM("again", b.p, b.len);
    CHECK(b.p == p);
    sbuf_free(&b);
    CHECK_UINT(0, b.len);
    CHECK_UINT(0, b.cap);
}

/* ---- sbuf_on_stack: starts in caller storage ---- */

TEST(on_stack_writes_into_the_storage_while_it_fits) {
    char storage[16];
    struct sbuf b = sbuf_on_stack(storage, sizeof storage);
    CHECK(b.p == storage);
    CHECK_UINT(0, b.len);
    CHECK_UINT(16, b.cap);
    CHECK_INT(0, sbuf_append(&b, "0123456789abcdef", 16)); /* exactly full */
    CHECK(b.p == storage);
    CHECK_MEM("0123456789abcdef", storage, 16);
    sbuf_free(&b); /* must not free the storage (ASan would say so) */
    CHECK(b.p == NULL);
    CHECK_UINT(0, b.cap);
}

TEST(on_stack_moves_to_the_heap_when_outgrown) {
    char storage[8];
    struct sbuf b = sbuf_on_stack(storage, sizeof storage);
    CHECK_INT(0, sbuf_append(&b, "abcdef", 6));
    CHECK_INT(0, sbuf_append(&b, "ghij", 4));
    CHECK(b.p != storage);
    CHECK(b.cap >= 10);
    CHECK_MEM("abcdefghij", b.p, b.len);
    memset(storage, 'X', sizeof storage); /* the heap copy is independent */
    CHECK_MEM("abcdefghij", b.p, b.len);
    for (int i = 0; i < 1000; i++) sbuf_putc(&b, 'z'); /* grows again: realloc of the heap copy */
    CHECK_UINT(1010, b.len);
    CHECK_MEMN("abcdefghij", 10, b.p, 10);
    sbuf_free(&b); /* frees the heap copy (LeakSanitizer would say so) */
}

TEST(on_stack_printf_needs_room_for_the_nul) {
    char storage[8];
    struct sbuf b = sbuf_on_stack(storage, sizeof storage);
    CHECK_INT(0, sbuf_printf(&b, "%s", "1234567")); /* 7 + NUL fit */
    CHECK(b.p == storage);
    CHECK_MEM("1234567", b.p, b.len);
    sbuf_reset(&b);
    CHECK_INT(0, sbuf_printf(&b, "%s", "12345678")); /* 8 + NUL do not */
    CHECK(b.p != storage);
    CHECK_MEM("12345678", b.p, b.len);
    sbuf_free(&b);
}

TEST(on_stack_with_zero_capacity_allocates_on_first_write) {
    char storage[1];
    struct sbuf b = sbuf_on_stack(storage, 0);
    CHECK_INT(0, sbuf_putc(&b, 'a'));
    CHECK(b.p != storage);
    CHECK_MEM("a", b.p, b.len);
    sbuf_free(&b);
}

TEST(on_stack_reset_keeps_the_storage) {
    char storage[32];
    struct sbuf b = sbuf_on_stack(storage, sizeof storage);
    sbuf_append(&b, "abc", 3);
    sbuf_reset(&b);
    sbuf_append(&b, "xy", 2);
    CHECK(b.p == storage);
    CHECK_MEM("xy", b.p, b.len);
    sbuf_free(&b);
}

int main(void) {
    RUN(starts_empty_without_allocating);
    RUN(first_growth_allocates_256_bytes);
    RUN(appends_keep_earlier_bytes_across_growth);
    RUN(reserve_grows_by_doubling_to_fit);
    RUN(reserve_refuses_impossible_sizes_and_leaves_the_buffer);
    RUN(printf_appends_formatted_text);
    RUN(printf_handles_output_larger_than_the_buffer);
    RUN(printf_at_exact_capacity_boundary);
    RUN(reset_keeps_the_allocation);
    RUN(on_stack_writes_into_the_storage_while_it_fits);
    RUN(on_stack_moves_to_the_heap_when_outgrown);
    RUN(on_stack_printf_needs_room_for_the_nul);
    RUN(on_stack_with_zero_capacity_allocates_on_first_write);
    RUN(on_stack_reset_keeps_the_storage);
    return check_finish("test_sbuf");
}
