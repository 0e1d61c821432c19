/* Unit tests for core/buf.h: refcounted immutable byte buffers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"

TEST(new_buf_has_one_reference_and_the_length) {
    buf *b = buf_new(100);
    CHECK(b != NULL);
    if (!b) return;
    CHECK_UINT(1, b->refcount);
    CHECK_UINT(100, b->len);
    memset(b->data, 0x5A, 100); /* all 100 bytes are writable (ASan checks) */
    buf_unref(b);
}

TEST(from_copies_the_bytes) {
    char src[] = "frame bytes";
    buf *b = buf_from(src, 11);
    CHECK(b != NULL);
    if (!b) return;
    src[0] = 'X';
    CHECK_MEM("frame bytes", b->data, b->len);
    CHECK_UINT(1, b->refcount);
    buf_unref(b);
}

TEST(zero_length_buffers_work) {
    buf *b = buf_new(0);
    CHECK(b != NULL);
    if (b) CHECK_UINT(0, b->len);
    buf_unref(b);
    b = buf_from(NULL, 0);
    CHECK(b != NULL);
    if (b) CHECK_UINT(0, b->len);
    buf_unref(b);
}

TEST(refcount_counts_owners) {
    buf *b = buf_from("x", 1);
    CHECK(buf_ref(b) == b);
    CHECK(buf_ref(b) == b);
    CHECK_UINT(3, b->refcount);
    buf_unref(b);
    CHECK_UINT(2, b->refcount);
    buf_unref(b);
    CHECK_UINT(1, b->refcount);
    CHECK_MEM("x", b->data, b->len);
    buf_unref(b); /* freed here; LeakSanitizer/ASan would flag a leak or double free */
}

TEST(unref_of_null_is_a_no_op) {
    buf_unref(NULL);
    CHECK(1);
}

TEST(refuses_lengths_over_32_bits) {
    CHECK(buf_new((size_t)UINT32_MAX + 1) == NULL);
    CHECK(buf_new(SIZE_MAX) == NULL);
    CHECK(buf_from("x", SIZE_MAX) == NULL);
}

TEST(shared_by_many_queues_then_freed_by_the_last) {
    enum { Q = 1000 };
    buf *b = buf_from("broadcast", 9);
    buf *queues[Q];
    for (int i = 0; i < Q; i++) queues[i] = buf_ref(b);
    buf_unref(b); /* the creator lets go first */
    CHECK_UINT(Q, b->refcount);
    for (int i = 0; i < Q - 1; i++) buf_unref(queues[i]);
    CHECK_UINT(1, queues[Q - 1]->refcount);
    CHECK_MEM("broadcast", queues[Q - 1]->data, queues[Q - 1]->len);
    buf_unref(queues[Q - 1]);
}

int main(void) {
    RUN(new_buf_has_one_reference_and_the_length);
    RUN(from_copies_the_bytes);
    RUN(zero_length_buffers_work);
    RUN(refcount_counts_owners);
    RUN(unref_of_null_is_a_no_op);
    RUN(refuses_lengths_over_32_bits);
    RUN(shared_by_many_queues_then_freed_by_the_last);
    return check_finish("test_buf");
}
