/* Unit tests for base64_encode / base64_decode (core/base/base64.h): the
 * standard alphabet with padding required. The decoder reads client bytes
 * (send_file's base64 data, Engine.IO polling's "b<base64>" packets), so
 * every malformed form must answer -1, and it must never write more than
 * len / 4 * 3 bytes (the buffer callers allocate). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "base64.h"

/* Decodes a copy of in (exact-size heap block) into an exact-size output
 * block of len / 4 * 3 bytes followed by guard bytes that must stay intact. */
static long decode(const char *in, size_t len, unsigned char *out_copy, size_t out_cap) {
    char *src = malloc(len ? len : 1);
    memcpy(src, in, len);
    size_t cap = len / 4 * 3;
    unsigned char *out = malloc(cap + 8);
    memset(out, 0xA5, cap + 8);
    long n = base64_decode(out, src, len);
    int guard_ok = 1;
    for (size_t i = 0; i < 8; i++) guard_ok &= out[cap + i] == 0xA5;
    CHECK(guard_ok); /* nothing written past len / 4 * 3 */
    if (n > 0 && out_copy) memcpy(out_copy, out, (size_t)n < out_cap ? (size_t)n : out_cap);
    free(out);
    free(src);
    return n;
}

#define DECODES_TO(b64, raw)                                                                       \
    do {                                                                                           \
        unsigned char got_[256];                                                                   \
        long n_ = decode((b64), strlen(b64), got_, sizeof got_);                                  \
        if (CHECK_INT((long)(sizeof(raw) - 1), n_)) CHECK_MEMN((raw), sizeof(raw) - 1, got_, n_); \
        else fprintf(stderr, "    input: \"%s\"\n", (b64));                                        \
    } while (0)

#define INVALID(b64, len)                                                                          \
    do {                                                                                           \
        if (!CHECK_INT(-1, decode((b64), (len), NULL, 0))) {                                       \
            fputs("    input: ", stderr);                                                          \
            check_print_bytes((b64), (len));                                                       \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)
#define INVALID_S(b64) INVALID((b64), strlen(b64))

static size_t encode(const void *in, size_t len, char *out) { return base64_encode(out, in, len); }

TEST(rfc4648_vectors_encode) {
    static const char *raw[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *b64[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char out[16];
        size_t n = encode(raw[i], strlen(raw[i]), out);
        CHECK_MEMN(b64[i], strlen(b64[i]), out, n);
    }
}

TEST(rfc4648_vectors_decode) {
    DECODES_TO("", "");
    DECODES_TO("Zg==", "f");
    DECODES_TO("Zm8=", "fo");
    DECODES_TO("Zm9v", "foo");
    DECODES_TO("Zm9vYg==", "foob");
    DECODES_TO("Zm9vYmE=", "fooba");
    DECODES_TO("Zm9vYmFy", "foobar");
}

TEST(the_whole_alphabet) {
    /* 0xfb 0xff 0xbf -> "+/+/"; 0x00 0x10 0x83 ... covers A..Z a..z 0..9 in order */
    DECODES_TO("+/+/", "\xfb\xff\xbf");
    DECODES_TO("AAAA", "\0\0\0");
    DECODES_TO("////", "\xff\xff\xff");
    DECODES_TO("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
               "\x00\x10\x83\x10\x51\x87\x20\x92\x8b\x30\xd3\x8f\x41\x14\x93\x51\x55\x97\x61\x96\x9b\x71\xd7\x9f"
               "\x82\x18\xa3\x92\x59\xa7\xa2\x9a\xab\xb2\xdb\xaf\xc3\x1c\xb3\xd3\x5d\xb7\xe3\x9e\xbb\xf3\xdf\xbf");
}

TEST(round_trips_every_byte_value_and_every_length) {
    unsigned char raw[300];
    for (int i = 0; i < 300; i++) raw[i] = (unsigned char)(i * 7 + 3);
    for (size_t len = 0; len <= 300; len++) {
        char enc[404];
        size_t n = encode(raw, len, enc);
        CHECK_UINT(4 * ((len + 2) / 3), n);
        unsigned char back[300];
        long m = decode(enc, n, back, sizeof back);
        if (CHECK_INT((long)len, m)) CHECK_MEMN(raw, len, back, (size_t)m);
    }
    unsigned char all[256];
    for (int i = 0; i < 256; i++) all[i] = (unsigned char)i;
    char enc[344];
    size_t n = encode(all, 256, enc);
    unsigned char back[256];
    long m = decode(enc, n, back, sizeof back);
    if (CHECK_INT(256, m)) CHECK_MEMN(all, 256, back, 256);
}

TEST(refuses_length_not_a_multiple_of_4) {
    INVALID_S("Z");
    INVALID_S("Zg");
    INVALID_S("Zg=");
    INVALID_S("Zm9");
    INVALID_S("Zm9vY");
    INVALID_S("Zm9vYg=");
    INVALID_S("Zm9vYg===");
}

TEST(refuses_characters_outside_the_alphabet) {
    INVALID_S("Zm9!");
    INVALID_S("Zm9-");          /* base64url */
    INVALID_S("Zm9_");          /* base64url */
    INVALID_S("Zm 9");
    INVALID_S("Zm9v\n");
    INVALID_S("Zm9v\r\nZm9v");
    INVALID_S("Zm9\t");
    INVALID_S("Zm9.");
    INVALID_S("Zm9\xc3");
    INVALID_S("\xc3\xa9\xc3\xa9");
    INVALID("Zm\0v", 4);
    INVALID("\0\0\0\0", 4);
}

TEST(refuses_misplaced_padding) {
    INVALID_S("====");
    INVALID_S("Z===");          /* three padding characters */
    INVALID_S("=Zg=");
    INVALID_S("Z=g=");
    INVALID_S("Zg=A");          /* data after padding */
    INVALID_S("Zg==Zm9v");      /* padding before the last quantum */
    INVALID_S("Zm8=Zm8=");
    INVALID_S("Zm9vZ===");
    INVALID_S("Zm9v====");
}

/* RFC 4648 §3.5: a decoder MAY refuse non-zero unused bits; if it accepts them
 * it must decode as if they were zero. */
TEST(unused_low_bits_are_refused_or_ignored) {
    unsigned char got[4];
    long n = decode("Zh==", 4, got, sizeof got);
    CHECK(n == -1 || (n == 1 && got[0] == 'f'));
    n = decode("Zm9=", 4, got, sizeof got);
    CHECK(n == -1 || (n == 2 && got[0] == 'f' && got[1] == 'o'));
}

TEST(decodes_a_large_input) {
    size_t len = 3 * 100000 + 1;
    unsigned char *raw = malloc(len), *back = malloc(len + 3);
    char *enc = malloc(4 * ((len + 2) / 3));
    uint32_t x = 1;
    for (size_t i = 0; i < len; i++) {
        x = x * 1664525u + 1013904223u;
        raw[i] = (unsigned char)(x >> 24);
    }
    size_t n = encode(raw, len, enc);
    CHECK_UINT(4 * ((len + 2) / 3), n);
    long m = base64_decode(back, enc, n);
    CHECK_INT((long)len, m);
    CHECK(m == (long)len && memcmp(raw, back, len) == 0);
    enc[n / 2] = '*'; /* one bad character in the middle */
    CHECK_INT(-1, base64_decode(back, enc, n));
    free(raw);
    free(back);
    free(enc);
}

int main(void) {
    RUN(rfc4648_vectors_encode);
    RUN(rfc4648_vectors_decode);
    RUN(the_whole_alphabet);
    RUN(round_trips_every_byte_value_and_every_length);
    RUN(refuses_length_not_a_multiple_of_4);
    RUN(refuses_characters_outside_the_alphabet);
    RUN(refuses_misplaced_padding);
    RUN(unused_low_bits_are_refused_or_ignored);
    RUN(decodes_a_large_input);
    return check_finish("test_base64");
}
