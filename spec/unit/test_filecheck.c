/* Unit tests for core/filecheck.h: filecheck_sniff (the MIME type the magic
 * bytes say; text/plain = valid UTF-8 without NUL) and filecheck_name (a base
 * name: valid UTF-8, no '/', '\', control characters (C0, DEL, C1), not "."
 * or "..", no ".." in it, 1..max_bytes bytes). Every input is copied to an
 * exact-size heap block so that reading past its length shows under ASan. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "filecheck.h"

static const char *sniff_n(const void *p, size_t n) {
    void *copy = calloc(1, n ? n : 1);
    memcpy(copy, p, n);
    const char *t = filecheck_sniff(copy, n);
    free(copy);
    return t;
}

static const char *name_n(const char *p, size_t n, size_t max) {
    char *copy = calloc(1, n ? n : 1);
    memcpy(copy, p, n);
    const char *why = filecheck_name(copy, n, max);
    free(copy);
    return why;
}

/* Sniff of a byte literal (sizeof - 1: without the terminating NUL). */
#define SNIFF(lit) sniff_n((lit), sizeof(lit) - 1)

static int check_type(const char *expected, const char *got, const char *expr, const char *file, int line) {
    if (expected == NULL || got == NULL) {
        if (expected == got) return check_true(1, expr, file, line);
        check_fail_header(file, line);
        fprintf(stderr, "    %s\n    expected: %s\n    got:      %s\n", expr, expected ? expected : "(null)",
                got ? got : "(null)");
        return 0;
    }
    return check_str(expected, got, expr, file, line);
}
#define CHECK_TYPE(expected, got) check_type((expected), (got), #got " == " #expected, __FILE__, __LINE__)

/* A name is accepted (NULL) or refused (a non-empty reason). */
#define NAME_OK(lit, max) check_name(1, (lit), sizeof(lit) - 1, (max), __FILE__, __LINE__)
#define NAME_BAD(lit, max) check_name(0, (lit), sizeof(lit) - 1, (max), __FILE__, __LINE__)

static void check_name(int ok, const char *p, size_t n, size_t max, const char *file, int line) {
    const char *why = name_n(p, n, max);
    int pass = ok ? why == NULL : (why != NULL && why[0] != 0);
    if (!check_true(pass, ok ? "filecheck_name accepts" : "filecheck_name refuses with a reason", file, line)) {
        fprintf(stderr, "    name (%zu bytes, max %zu): ", n, max);
        check_print_bytes(p, n);
        fprintf(stderr, "\n    reason: %s\n", why ? why : "(null: accepted)");
    }
}

/* ---- sniff: each magic number ------------------------------------------ */

TEST(sniffs_png) {
    CHECK_TYPE("image/png", SNIFF("\x89PNG\r\n\x1a\n"));
    CHECK_TYPE("image/png", SNIFF("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01"));
}

TEST(sniffs_jpeg) {
    CHECK_TYPE("image/jpeg", SNIFF("\xff\xd8\xff"));
    CHECK_TYPE("image/jpeg", SNIFF("\xff\xd8\xff\xe0\0\x10JFIF\0"));
    CHECK_TYPE("image/jpeg", SNIFF("\xff\xd8\xff\xdb"));
}

TEST(sniffs_gif_87a_and_89a) {
    CHECK_TYPE("image/gif", SNIFF("GIF87a"));
    CHECK_TYPE("image/gif", SNIFF("GIF89a\x01\0\x01\0\x80\0\0"));
}

TEST(sniffs_webp) {
    CHECK_TYPE("image/webp", SNIFF("RIFF\x24\0\0\0WEBP"));
    CHECK_TYPE("image/webp", SNIFF("RIFF\x24\0\0\0WEBPVP8 \x18\0\0\0"));
    CHECK_TYPE("image/webp", SNIFF("RIFF....WEBP")); /* the size field is not checked */
}

TEST(sniffs_pdf) {
    CHECK_TYPE("application/pdf", SNIFF("%PDF-"));
    CHECK_TYPE("application/pdf", SNIFF("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"));
}

TEST(sniffs_text) {
    CHECK_TYPE("text/plain", SNIFF("hello"));
    CHECK_TYPE("text/plain", SNIFF("h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80\n")); /* é ✓ 😀 */
    CHECK_TYPE("text/plain", SNIFF("\xef\xbb\xbfwith a BOM"));
    CHECK_TYPE("text/plain", SNIFF("tab\tcr\r\x01\x1f\x7f controls but no NUL"));
    CHECK_TYPE("text/plain", SNIFF("\xf4\x8f\xbf\xbf")); /* U+10FFFF */
    CHECK_TYPE("text/plain", SNIFF("x"));
}

/* Empty content is valid UTF-8 without NUL: text/plain by the rule. */
TEST(sniffs_empty_content_as_text) {
    CHECK_TYPE("text/plain", sniff_n("", 0));
}

/* A magic number wins over whatever follows (binary data, NUL bytes). */
TEST(magic_wins_over_content) {
    CHECK_TYPE("image/png", SNIFF("\x89PNG\r\n\x1a\n\xff\xfe\0"));
    CHECK_TYPE("application/pdf", SNIFF("%PDF-\0\0\xff"));
    CHECK_TYPE("image/gif", SNIFF("GIF89a\0\xff"));
    CHECK_TYPE("image/jpeg", SNIFF("\xff\xd8\xff\0"));
}

/* ---- sniff: near misses ------------------------------------------------- */

TEST(png_with_any_one_wrong_byte_is_not_png) {
    const unsigned char magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    for (int i = 0; i < 8; i++) {
        for (int bit = 0; bit < 8; bit++) {
            unsigned char b[16];
            memcpy(b, magic, 8);
            memset(b + 8, 'x', 8);
            b[i] ^= (unsigned char)(1u << bit);
            const char *t = sniff_n(b, sizeof b);
            if (!CHECK(t == NULL || strcmp(t, "image/png") != 0))
                fprintf(stderr, "    byte %d bit %d flipped still sniffs as %s\n", i, bit, t);
        }
    }
    CHECK_TYPE(NULL, SNIFF("\x89PNG\r\n\x1a"));     /* 7 of 8 bytes: 0x89 alone is not UTF-8 either */
    CHECK_TYPE(NULL, SNIFF("\x89PNG\r\n\x1a\r"));   /* last byte wrong */
    CHECK_TYPE("text/plain", SNIFF("PNG\r\n\x1a\n")); /* no 0x89: just ASCII */
}

TEST(jpeg_near_misses) {
    CHECK_TYPE(NULL, SNIFF("\xff\xd8"));
    CHECK_TYPE(NULL, SNIFF("\xff\xd8\xfe"));
    CHECK_TYPE(NULL, SNIFF("\xfe\xd8\xff"));
    CHECK_TYPE(NULL, SNIFF("\xd8\xff\xff"));
}

TEST(gif_near_misses) {
    CHECK_TYPE("text/plain", SNIFF("GIF88a")); /* plain ASCII: text, not gif */
    CHECK_TYPE("text/plain", SNIFF("GIF89"));
    CHECK_TYPE("text/plain", SNIFF("gif89a"));
    CHECK_TYPE(NULL, SNIFF("GIF88a\0"));
}

TEST(webp_near_misses) {
    CHECK_TYPE("text/plain", SNIFF("RIFF....WEBX"));
    CHECK_TYPE(NULL, SNIFF("RIFF\x24\0\0\0WEBX"));
    CHECK_TYPE(NULL, SNIFF("RIFF\x24\0\0\0WAVE")); /* a WAV file */
    CHECK_TYPE(NULL, SNIFF("RIFX\x24\0\0\0WEBP"));
    CHECK_TYPE("text/plain", SNIFF("RIFF....WEB"));  /* 11 bytes */
    CHECK_TYPE("text/plain", SNIFF("RIFF"));
    CHECK_TYPE("text/plain", SNIFF("WEBPRIFF...."));
}

TEST(pdf_near_misses) {
    CHECK_TYPE("text/plain", SNIFF("%PDF"));
    CHECK_TYPE("text/plain", SNIFF("%pdf-1.7"));
    CHECK_TYPE("text/plain", SNIFF(" %PDF-1.7"));
    CHECK_TYPE("text/plain", SNIFF("%PDF1.7"));
}

/* ---- sniff: text that is not text --------------------------------------- */

TEST(text_with_nul_is_nothing) {
    CHECK_TYPE(NULL, sniff_n("\0", 1));
    CHECK_TYPE(NULL, sniff_n("hello\0world", 11));
    CHECK_TYPE(NULL, sniff_n("hello\0", 6));
    CHECK_TYPE(NULL, sniff_n("\0hello", 6));
    CHECK_TYPE(NULL, sniff_n("h\xc3\xa9\0", 4));
}

TEST(invalid_utf8_is_nothing) {
    CHECK_TYPE(NULL, SNIFF("\xff"));
    CHECK_TYPE(NULL, SNIFF("abc\xfe"));
    CHECK_TYPE(NULL, SNIFF("\x80"));                 /* lone continuation byte */
    CHECK_TYPE(NULL, SNIFF("a\xc0\xaf"));            /* overlong '/' */
    CHECK_TYPE(NULL, SNIFF("a\xe0\x80\xaf"));        /* overlong, 3 bytes */
    CHECK_TYPE(NULL, SNIFF("a\xed\xa0\x80"));        /* UTF-16 surrogate U+D800 */
    CHECK_TYPE(NULL, SNIFF("a\xf4\x90\x80\x80"));    /* above U+10FFFF */
    CHECK_TYPE(NULL, SNIFF("a\xe2\x82"));            /* truncated at the end */
    CHECK_TYPE(NULL, SNIFF("a\xe2\x82z"));           /* truncated in the middle */
    CHECK_TYPE(NULL, SNIFF("\xc3\xa9\xc3"));         /* é then a cut sequence */
    CHECK_TYPE(NULL, SNIFF("latin-1 caf\xe9"));
}

/* The length is honoured: bytes past it are not looked at. */
TEST(sniff_honours_the_length) {
    CHECK_TYPE("text/plain", sniff_n("abc\0def", 3));
    CHECK_TYPE("text/plain", sniff_n("%PDF-", 4));
    CHECK_TYPE(NULL, sniff_n("\xff\xd8\xff", 2));
}

/* Every answer is one of the six types or NULL. */
TEST(sniff_answers_one_of_six_or_null) {
    static const char *types[] = {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"};
    uint32_t x = 12345;
    for (int n = 0; n < 2000; n++) {
        unsigned char b[24];
        size_t len = (size_t)(n % 25);
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            b[i] = (unsigned char)(x >> 16);
        }
        if (n % 3 == 0 && len >= 8) memcpy(b, "\x89PNG\r\n\x1a\n", 8);
        const char *t = sniff_n(b, len);
        int known = t == NULL;
        for (int k = 0; k < 6 && !known; k++) known = strcmp(t, types[k]) == 0;
        CHECK(known);
    }
}

/* ---- names -------------------------------------------------------------- */

TEST(accepts_plain_and_utf8_base_names) {
    NAME_OK("a.txt", 255);
    NAME_OK("a", 255);
    NAME_OK("photo 2024-01-01 (1).png", 255);
    NAME_OK("\xc3\xa9t\xc3\xa9.png", 255);                     /* été.png */
    NAME_OK("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.pdf", 255);  /* 日本語.pdf */
    NAME_OK("\xf0\x9f\x98\x80", 255);                          /* 😀 */
    NAME_OK(".hidden", 255);
    NAME_OK("a.b.c", 255);
    NAME_OK("a.", 255);
    NAME_OK("x\xc2\xa0y", 255);          /* U+00A0 no-break space: not a control */
    NAME_OK("x\xc2\xbfy", 255);          /* U+00BF */
    NAME_OK("x\xe2\x80\xa8y", 255);      /* U+2028: a separator, not a control character */
    NAME_OK("it's 100% #1 ?&=+;,", 255);
}

TEST(refuses_dot_and_dot_dot) {
    NAME_BAD(".", 255);
    NAME_BAD("..", 255);
    NAME_BAD("...", 255);
    NAME_BAD("a..b", 255);
    NAME_BAD("..a", 255);
    NAME_BAD("a..", 255);
    NAME_BAD("a...b", 255);
}

TEST(refuses_path_separators) {
    NAME_BAD("./x", 255);
    NAME_BAD("a/b", 255);
    NAME_BAD("/", 255);
    NAME_BAD("/etc/passwd", 255);
    NAME_BAD("a/", 255);
    NAME_BAD("a\\b", 255);
    NAME_BAD("\\", 255);
    NAME_BAD("..\\x", 255);
    NAME_BAD("C:\\x", 255);
}

TEST(refuses_control_characters) {
    NAME_BAD("\x01", 255);
    NAME_BAD("a\x01", 255);
    NAME_BAD("a\x1f" "b", 255);
    NAME_BAD("a\nb", 255);
    NAME_BAD("a\tb", 255);
    NAME_BAD("a\rb", 255);
    NAME_BAD("a\x7f" "b", 255);        /* DEL */
    NAME_BAD("a\xc2\x80" "b", 255);    /* U+0080 */
    NAME_BAD("a\xc2\x85" "b", 255);    /* U+0085 NEL */
    NAME_BAD("\xc2\x85", 255);
    NAME_BAD("a\xc2\x9f", 255);        /* U+009F */
    CHECK(name_n("a\0b", 3, 255) != NULL); /* NUL inside the length */
}

TEST(refuses_empty) {
    CHECK(name_n("", 0, 255) != NULL);
}

TEST(length_255_vs_256_bytes) {
    char buf[300];
    memset(buf, 'n', sizeof buf);
    CHECK(name_n(buf, 255, 255) == NULL);
    CHECK(name_n(buf, 256, 255) != NULL);
    CHECK(name_n(buf, 1, 255) == NULL);
    /* 127 x "é" + "x" = 255 bytes; 128 x "é" = 256 bytes */
    for (int i = 0; i < 128; i++) memcpy(buf + 2 * i, "\xc3\xa9", 2);
    buf[254] = 'x';
    CHECK(name_n(buf, 255, 255) == NULL);
    buf[254] = (char)0xc3;
    CHECK(name_n(buf, 256, 255) != NULL);
    /* the limit is the argument */
    CHECK(name_n("abc", 3, 3) == NULL);
    CHECK(name_n("abc", 3, 2) != NULL);
    CHECK(name_n("a", 1, 0) != NULL);
}

TEST(refuses_invalid_utf8) {
    NAME_BAD("\xff", 255);
    NAME_BAD("a\xfe" "b", 255);
    NAME_BAD("caf\xe9", 255);               /* Latin-1 */
    NAME_BAD("\x80", 255);
    NAME_BAD("a\xc0\xaf" "b", 255);         /* overlong '/' */
    NAME_BAD("a\xe0\x80\xaf" "b", 255);     /* overlong '/', 3 bytes */
    NAME_BAD("\xc0\xae\xc0\xae", 255);      /* overlong ".." */
    NAME_BAD("a\xc1\x9c" "b", 255);         /* overlong '\' */
    NAME_BAD("a\xed\xa0\x80", 255);         /* surrogate */
    NAME_BAD("a\xf4\x90\x80\x80", 255);     /* above U+10FFFF */
    NAME_BAD("a\xe2\x82", 255);             /* truncated */
    NAME_BAD("a\xc2", 255);                 /* C2 at the very end */
}

/* The length is honoured: bytes past it are not looked at. */
TEST(name_honours_the_length) {
    CHECK(name_n("a/b", 1, 255) == NULL);
    CHECK(name_n("ab..", 2, 255) == NULL);
    CHECK(name_n("a.\x01", 2, 255) == NULL);
}

int main(void) {
    RUN(sniffs_png);
    RUN(sniffs_jpeg);
    RUN(sniffs_gif_87a_and_89a);
    RUN(sniffs_webp);
    RUN(sniffs_pdf);
    RUN(sniffs_text);
    RUN(sniffs_empty_content_as_text);
    RUN(magic_wins_over_content);
    RUN(png_with_any_one_wrong_byte_is_not_png);
    RUN(jpeg_near_misses);
    RUN(gif_near_misses);
    RUN(webp_near_misses);
    RUN(pdf_near_misses);
    RUN(text_with_nul_is_nothing);
    RUN(invalid_utf8_is_nothing);
    RUN(sniff_honours_the_length);
    RUN(sniff_answers_one_of_six_or_null);
    RUN(accepts_plain_and_utf8_base_names);
    RUN(refuses_dot_and_dot_dot);
    RUN(refuses_path_separators);
    RUN(refuses_control_characters);
    RUN(refuses_empty);
    RUN(length_255_vs_256_bytes);
    RUN(refuses_invalid_utf8);
    RUN(name_honours_the_length);
    return check_finish("test_filecheck");
}
