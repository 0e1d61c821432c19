/* Unit tests for core/utf8.h: strict UTF-8 validation (RFC 3629). Cases from
 * Markus Kuhn's UTF-8 decoder capability and stress test, plus exhaustive
 * comparisons against a slow reference decoder. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "utf8.h"

#define VALID(...) check_bytes(1, (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}), __FILE__, __LINE__)
#define INVALID(...) check_bytes(0, (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}), __FILE__, __LINE__)

static void check_bytes(int expect, const uint8_t *p, size_t n, const char *file, int line) {
    /* Copy to an exact-size heap block so reading past the end shows up under ASan. */
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, p, n);
    int got = utf8_valid(copy, n);
    if (!check_int(expect, got, "utf8_valid", file, line)) {
        fputs("    bytes:", stderr);
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %02X", p[i]);
        fputc('\n', stderr);
    }
    free(copy);
}

/* Slow reference: decode one code point at a time, then judge it. */
static int ref_valid(const uint8_t *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F;
        else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F;
        else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07;
        else return 0;
        if (n - i < len) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len]) return 0;              /* overlong */
        if (cp >= 0xD800 && cp <= 0xDFFF) return 0;  /* surrogate */
        if (cp > 0x10FFFF) return 0;                 /* beyond Unicode */
        i += len;
    }
    return 1;
}

/* Encodes cp in exactly len bytes (overlong when len is more than needed). */
static size_t encode_len(uint32_t cp, size_t len, uint8_t out[4]) {
    static const uint8_t lead[5] = {0, 0, 0xC0, 0xE0, 0xF0};
    if (len == 1) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    for (size_t k = len - 1; k > 0; k--) {
        out[k] = (uint8_t)(0x80 | (cp & 0x3F));
        cp >>= 6;
    }
    out[0] = (uint8_t)(lead[len] | cp);
    return len;
}

static size_t min_len(uint32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

/* ---- Kuhn 1: some correct text ---- */

TEST(accepts_ascii_and_the_empty_string) {
    CHECK_INT(1, utf8_valid("", 0));
    CHECK_INT(1, utf8_valid("hello, world", 12));
    VALID(0x00);
    VALID(0x00, 0x7F, 0x41, 0x00);
}

TEST(accepts_greek_kosme) {
    VALID(0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5);
}

TEST(accepts_valid_one_to_four_byte_forms) {
    VALID(0x24);                   /* $ */
    VALID(0xC2, 0xA2);             /* U+00A2 */
    VALID(0xE2, 0x82, 0xAC);       /* U+20AC euro */
    VALID(0xF0, 0x90, 0x8D, 0x88); /* U+10348 */
    VALID(0xF0, 0x9F, 0x98, 0x80); /* U+1F600 emoji */
}

/* ---- Kuhn 2: boundary conditions ---- */

TEST(accepts_first_code_point_of_each_length) {
    VALID(0xC2, 0x80);             /* U+0080 */
    VALID(0xE0, 0xA0, 0x80);       /* U+0800 */
    VALID(0xF0, 0x90, 0x80, 0x80); /* U+10000 */
}

TEST(accepts_last_code_point_of_each_length) {
    VALID(0x7F);
    VALID(0xDF, 0xBF);             /* U+07FF */
    VALID(0xEF, 0xBF, 0xBF);       /* U+FFFF */
    VALID(0xF4, 0x8F, 0xBF, 0xBF); /* U+10FFFF */
}

TEST(accepts_other_boundaries) {
    VALID(0xED, 0x9F, 0xBF);       /* U+D7FF, just below the surrogates */
    VALID(0xEE, 0x80, 0x80);       /* U+E000, just above */
    VALID(0xEF, 0xBF, 0xBD);       /* U+FFFD */
    VALID(0xF1, 0x80, 0x80, 0x80); /* U+40000 */
    VALID(0xF3, 0xBF, 0xBF, 0xBF); /* U+FFFFF */
}

TEST(accepts_noncharacters) {
    /* U+FFFE, U+FFFF, U+FDD0, U+1FFFF are noncharacters but valid UTF-8. */
    VALID(0xEF, 0xBF, 0xBE);
    VALID(0xEF, 0xBF, 0xBF);
    VALID(0xEF, 0xB7, 0x90);
    VALID(0xF0, 0x9F, 0xBF, 0xBF);
}

TEST(rejects_five_and_six_byte_forms) {
    INVALID(0xF8, 0x88, 0x80, 0x80, 0x80);       /* first 5-byte */
    INVALID(0xFC, 0x84, 0x80, 0x80, 0x80, 0x80); /* first 6-byte */
    INVALID(0xFB, 0xBF, 0xBF, 0xBF, 0xBF);       /* last 5-byte */
    INVALID(0xFD, 0xBF, 0xBF, 0xBF, 0xBF, 0xBF); /* last 6-byte */
    INVALID(0xF7, 0xBF, 0xBF, 0xBF);             /* U+1FFFFF */
}

TEST(rejects_code_points_above_u10ffff) {
    INVALID(0xF4, 0x90, 0x80, 0x80); /* U+110000 */
    INVALID(0xF4, 0xBF, 0xBF, 0xBF);
    INVALID(0xF5, 0x80, 0x80, 0x80);
    INVALID(0xF6, 0x80, 0x80, 0x80);
    INVALID(0xF7, 0x80, 0x80, 0x80);
}

/* ---- Kuhn 3: malformed sequences ---- */

TEST(rejects_unexpected_continuation_bytes) {
    INVALID(0x80);
    INVALID(0xBF);
    INVALID(0x80, 0xBF);
    INVALID(0x80, 0xBF, 0x80);
    INVALID(0x80, 0xBF, 0x80, 0xBF);
    INVALID(0x41, 0x80);
    INVALID(0xC2, 0x80, 0x80); /* one too many */
    for (int c = 0x80; c <= 0xBF; c++) CHECK_INT(0, utf8_valid((uint8_t[]){(uint8_t)c}, 1));
}

TEST(rejects_lonely_start_bytes_followed_by_space) {
    int bad = 0;
    for (int c = 0xC0; c <= 0xFF; c++) {
        uint8_t s[2] = {(uint8_t)c, 0x20};
        if (utf8_valid(s, 2) != 0) {
            fprintf(stderr, "    lonely start %02X accepted\n", c);
            bad++;
        }
    }
    CHECK_INT(0, bad);
}

TEST(rejects_sequences_missing_the_last_byte) {
    INVALID(0xC2);
    INVALID(0xDF);
    INVALID(0xE0, 0xA0);
    INVALID(0xEF, 0xBF);
    INVALID(0xF0, 0x90, 0x80);
    INVALID(0xF4, 0x8F, 0xBF);
    INVALID(0xC0);
    INVALID(0xE0, 0x80);
    INVALID(0xF0, 0x80, 0x80);
    INVALID(0xF7, 0xBF, 0xBF);
    /* Kuhn 3.4: all ten of them concatenated */
    INVALID(0xC0, 0xE0, 0x80, 0xF0, 0x80, 0x80, 0xF8, 0x80, 0x80, 0x80, 0xFC, 0x80, 0x80, 0x80,
            0x80, 0xDF, 0xEF, 0xBF, 0xF7, 0xBF, 0xBF, 0xFB, 0xBF, 0xBF, 0xBF, 0xFD, 0xBF, 0xBF,
            0xBF, 0xBF);
}

TEST(rejects_truncation_at_the_end_of_valid_text) {
    VALID(0x61, 0xE2, 0x82, 0xAC);
    INVALID(0x61, 0xE2, 0x82);
    INVALID(0x61, 0xE2);
    VALID(0x61, 0xF0, 0x9F, 0x98, 0x80);
    INVALID(0x61, 0xF0, 0x9F, 0x98);
}

TEST(rejects_a_start_byte_interrupted_by_ascii) {
    INVALID(0xE2, 0x41, 0xAC);
    INVALID(0xE2, 0x82, 0x41);
    INVALID(0xF0, 0x9F, 0x41, 0x80);
    INVALID(0xC3, 0x28); /* the classic bad text frame */
}

TEST(rejects_impossible_bytes) {
    INVALID(0xFE);
    INVALID(0xFF);
    INVALID(0xFE, 0xFE, 0xFF, 0xFF);
}

/* ---- Kuhn 4: overlong sequences ---- */

TEST(rejects_overlong_slash) {
    INVALID(0xC0, 0xAF);
    INVALID(0xE0, 0x80, 0xAF);
    INVALID(0xF0, 0x80, 0x80, 0xAF);
    INVALID(0xF8, 0x80, 0x80, 0x80, 0xAF);
    INVALID(0xFC, 0x80, 0x80, 0x80, 0x80, 0xAF);
}

TEST(rejects_maximum_overlongs) {
    INVALID(0xC1, 0xBF);             /* U+007F */
    INVALID(0xE0, 0x9F, 0xBF);       /* U+07FF */
    INVALID(0xF0, 0x8F, 0xBF, 0xBF); /* U+FFFF */
}

TEST(rejects_overlong_nul) {
    INVALID(0xC0, 0x80);
    INVALID(0xE0, 0x80, 0x80);
    INVALID(0xF0, 0x80, 0x80, 0x80);
    INVALID(0xF8, 0x80, 0x80, 0x80, 0x80);
}

/* ---- Kuhn 5: UTF-16 surrogates ---- */

TEST(rejects_single_surrogates) {
    INVALID(0xED, 0xA0, 0x80); /* U+D800 */
    INVALID(0xED, 0xAD, 0xBF); /* U+DB7F */
    INVALID(0xED, 0xAE, 0x80); /* U+DB80 */
    INVALID(0xED, 0xAF, 0xBF); /* U+DBFF */
    INVALID(0xED, 0xB0, 0x80); /* U+DC00 */
    INVALID(0xED, 0xBE, 0x80); /* U+DF80 */
    INVALID(0xED, 0xBF, 0xBF); /* U+DFFF */
}

TEST(rejects_paired_surrogates) {
    INVALID(0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80); /* U+D800 U+DC00 (CESU-8) */
    INVALID(0xED, 0xAF, 0xBF, 0xED, 0xBF, 0xBF);
}

/* ---- exhaustive comparisons ---- */

TEST(every_scalar_value_is_valid_in_its_shortest_form) {
    unsigned bad = 0;
    uint8_t b[4];
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        size_t n = encode_len(cp, min_len(cp), b);
        if (!utf8_valid(b, n) && bad++ < 5) fprintf(stderr, "    U+%04X rejected\n", (unsigned)cp);
    }
    CHECK_UINT(0, bad);
}

TEST(every_surrogate_and_overlong_form_is_invalid) {
    unsigned bad = 0;
    uint8_t b[4];
    for (uint32_t cp = 0xD800; cp <= 0xDFFF; cp++)
        if (utf8_valid(b, encode_len(cp, 3, b)) && bad++ < 5)
            fprintf(stderr, "    surrogate U+%04X accepted\n", (unsigned)cp);
    for (uint32_t cp = 0; cp < 0x10000; cp++)
        for (size_t len = min_len(cp) + 1; len <= 4; len++)
            if (len > 1 && utf8_valid(b, encode_len(cp, len, b)) && bad++ < 5)
                fprintf(stderr, "    overlong U+%04X in %zu bytes accepted\n", (unsigned)cp, len);
    CHECK_UINT(0, bad);
}

TEST(agrees_with_reference_on_all_inputs_up_to_3_bytes) {
    unsigned bad = 0;
    uint8_t b[3];
    for (size_t n = 1; n <= 3; n++) {
        for (uint32_t v = 0; v < (1u << (8 * n)); v++) {
            for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
            int got = utf8_valid(b, n), want = ref_valid(b, n);
            if (got != want && bad++ < 5)
                fprintf(stderr, "    %06X (len %zu): got %d, want %d\n", (unsigned)v, n, got, want);
        }
    }
    CHECK_UINT(0, bad);
}

TEST(agrees_with_reference_on_all_4_byte_sequences_with_lead_f0_to_f7) {
    unsigned bad = 0;
    uint8_t b[4];
    for (uint32_t lead = 0xF0; lead <= 0xF7; lead++) {
        b[0] = (uint8_t)lead;
        for (uint32_t v = 0; v < (1u << 24); v++) {
            b[1] = (uint8_t)(v >> 16), b[2] = (uint8_t)(v >> 8), b[3] = (uint8_t)v;
            int got = utf8_valid(b, 4), want = ref_valid(b, 4);
            if (got != want && bad++ < 5)
                fprintf(stderr, "    %02X %02X %02X %02X: got %d, want %d\n", b[0], b[1], b[2], b[3],
                        got, want);
        }
    }
    CHECK_UINT(0, bad);
}

TEST(agrees_with_reference_on_random_mixed_text) {
    uint64_t x = 0x9E3779B97F4A7C15ull;
    unsigned bad = 0;
    uint8_t buf[32];
    static const uint8_t pool[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0,
                                   0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0,
                                   0xF1, 0xF3, 0xF4, 0xF5, 0xF8, 0xFE, 0xFF};
    for (int iter = 0; iter < 2000000; iter++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t n = (size_t)(x % sizeof buf);
        uint64_t y = x;
        for (size_t i = 0; i < n; i++) {
            y = y * 6364136223846793005ull + 1442695040888963407ull;
            buf[i] = pool[(y >> 33) % sizeof pool];
        }
        int got = utf8_valid(buf, n), want = ref_valid(buf, n);
        if (got != want && bad++ < 5) fprintf(stderr, "    random case %d differs\n", iter);
    }
    CHECK_UINT(0, bad);
}

TEST(reads_only_len_bytes) {
    /* A valid 2-byte character cut by len. */
    CHECK_INT(0, utf8_valid("\xc3\xa9", 1));
    CHECK_INT(1, utf8_valid("a\xc3\xa9", 1));
    CHECK_INT(1, utf8_valid("\xff", 0));
}

/* ASCII is read eight bytes at a time: a bad byte, a truncated sequence or a valid character at
 * every offset of a long ASCII run, and runs of every length, are judged as one byte at a time. */
TEST(long_ascii_runs_with_one_other_byte_anywhere) {
    enum { N = 40 };
    for (size_t len = 0; len <= N; len++) {
        for (size_t at = 0; at <= len; at++) {
            uint8_t buf[N + 2];
            memset(buf, 'a', sizeof buf);
            size_t n = len;
            CHECK_INT(1, utf8_valid(buf, n));
            if (at < len) {
                buf[at] = 0xff;
                CHECK_INT(0, utf8_valid(buf, n));
                buf[at] = 0xc3; /* a start byte: valid only with its continuation inside len */
                CHECK_INT(0, utf8_valid(buf, n));
                buf[at + 1] = 0xa9;
                CHECK_INT(at + 1 < len, utf8_valid(buf, n));
                buf[at] = 0x80; /* a lone continuation byte */
                CHECK_INT(0, utf8_valid(buf, n));
            }
        }
    }
}

int main(void) {
    RUN(accepts_ascii_and_the_empty_string);
    RUN(long_ascii_runs_with_one_other_byte_anywhere);
    RUN(accepts_greek_kosme);
    RUN(accepts_valid_one_to_four_byte_forms);
    RUN(accepts_first_code_point_of_each_length);
    RUN(accepts_last_code_point_of_each_length);
    RUN(accepts_other_boundaries);
    RUN(accepts_noncharacters);
    RUN(rejects_five_and_six_byte_forms);
    RUN(rejects_code_points_above_u10ffff);
    RUN(rejects_unexpected_continuation_bytes);
    RUN(rejects_lonely_start_bytes_followed_by_space);
    RUN(rejects_sequences_missing_the_last_byte);
    RUN(rejects_truncation_at_the_end_of_valid_text);
    RUN(rejects_a_start_byte_interrupted_by_ascii);
    RUN(rejects_impossible_bytes);
    RUN(rejects_overlong_slash);
    RUN(rejects_maximum_overlongs);
    RUN(rejects_overlong_nul);
    RUN(rejects_single_surrogates);
    RUN(rejects_paired_surrogates);
    RUN(every_scalar_value_is_valid_in_its_shortest_form);
    RUN(every_surrogate_and_overlong_form_is_invalid);
    RUN(agrees_with_reference_on_all_inputs_up_to_3_bytes);
    RUN(agrees_with_reference_on_all_4_byte_sequences_with_lead_f0_to_f7);
    RUN(agrees_with_reference_on_random_mixed_text);
    RUN(reads_only_len_bytes);
    return check_finish("test_utf8");
}
