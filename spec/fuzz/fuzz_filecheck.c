/* libFuzzer target: filecheck_name and filecheck_sniff (core/filecheck.h),
 * which judge client-supplied file names and contents before anything is
 * stored. The input is tried whole, and split at its first byte into a
 * max_bytes limit and the rest.
 *   filecheck_name: a name it accepts is non-empty, at most max_bytes long,
 *     valid UTF-8 (checked by an independent reference decoder), and has no
 *     '/', '\', "..", C0 control, DEL or C1 control (U+0080..U+009F), and is
 *     not "."; a refusal comes with a non-empty reason; and conversely a name
 *     that meets all of that is accepted (the reference decides both ways).
 *   filecheck_sniff: answers one of the six types or NULL; "text/plain" only
 *     for NUL-free valid UTF-8 without a known magic; each magic number gives
 *     its type; NUL-free valid UTF-8 without a magic is always "text/plain".
 * The input is copied to an exact-size block so reads past the length show. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filecheck.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "fuzz_filecheck: " __VA_ARGS__);                                           \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

/* Independent RFC 3629 check: decode each code point, then judge it. */
static int ref_utf8(const uint8_t *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint32_t c = p[i], cp;
        size_t len;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC0 && c < 0xE0) len = 2, cp = c & 0x1F;
        else if (c >= 0xE0 && c < 0xF0) len = 3, cp = c & 0x0F;
        else if (c >= 0xF0 && c < 0xF8) len = 4, cp = c & 0x07;
        else return 0;
        if (n - i < len) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (p[i + k] & 0x3Fu);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return 0;
        if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
        i += len;
    }
    return 1;
}

/* Why the reference refuses the name, or NULL when it is a good base name. */
static const char *ref_name(const uint8_t *p, size_t n, size_t max) {
    if (n == 0) return "empty";
    if (n > max) return "too long";
    if (!ref_utf8(p, n)) return "not UTF-8";
    for (size_t i = 0; i < n; i++) {
        if (p[i] < 0x20 || p[i] == 0x7F) return "C0 control or DEL";
        if (p[i] == '/' || p[i] == '\\') return "separator";
        if (i + 1 < n && p[i] == '.' && p[i + 1] == '.') return "..";
        /* U+0080..U+009F: C2 80 .. C2 9F (the input is valid UTF-8 here) */
        if (p[i] == 0xC2 && i + 1 < n && p[i + 1] >= 0x80 && p[i + 1] <= 0x9F) return "C1 control";
    }
    if (n == 1 && p[0] == '.') return "\".\"";
    return NULL;
}

static int has(const uint8_t *p, size_t n, const char *magic, size_t m, size_t at) {
    return n >= at + m && memcmp(p + at, magic, m) == 0;
}

static const char *ref_sniff(const uint8_t *p, size_t n) {
    if (has(p, n, "\x89PNG\r\n\x1a\n", 8, 0)) return "image/png";
    if (has(p, n, "\xff\xd8\xff", 3, 0)) return "image/jpeg";
    if (has(p, n, "GIF87a", 6, 0) || has(p, n, "GIF89a", 6, 0)) return "image/gif";
    if (has(p, n, "RIFF", 4, 0) && has(p, n, "WEBP", 4, 8)) return "image/webp";
    if (has(p, n, "%PDF-", 5, 0)) return "application/pdf";
    if (memchr(p, 0, n) == NULL && ref_utf8(p, n)) return "text/plain";
    return NULL;
}

static void dump(const uint8_t *p, size_t n) {
    fprintf(stderr, "  input (%zu bytes):", n);
    for (size_t i = 0; i < n && i < 64; i++) fprintf(stderr, " %02X", p[i]);
    fputc('\n', stderr);
}

static void check_name(const uint8_t *data, size_t size, size_t max) {
    char *name = malloc(size ? size : 1);
    memcpy(name, data, size);
    const char *why = filecheck_name(name, size, max);
    const char *want = ref_name(data, size, max);
    free(name);
    if (!why) {
        if (want) {
            dump(data, size);
            FAIL("filecheck_name accepted a name (max %zu) the rules refuse: %s", max, want);
        }
        /* Belt and braces, spelled out: */
        if (size == 0 || size > max || memchr(data, '/', size) || memchr(data, '\\', size)) FAIL("accepted a bad name");
    } else {
        if (why[0] == 0) FAIL("filecheck_name refused with an empty reason");
        if (!want) {
            dump(data, size);
            FAIL("filecheck_name refused a good base name (max %zu): %s", max, why);
        }
    }
}

static void check_sniff(const uint8_t *data, size_t size) {
    static const char *types[] = {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"};
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    const char *got = filecheck_sniff(copy, size);
    free(copy);
    int known = got == NULL;
    for (int i = 0; i < 6 && !known; i++) known = strcmp(got, types[i]) == 0;
    if (!known) FAIL("filecheck_sniff answered an unknown type \"%s\"", got);
    if (got && strcmp(got, "text/plain") == 0 && (memchr(data, 0, size) || !ref_utf8(data, size))) {
        dump(data, size);
        FAIL("text/plain for content with NUL or invalid UTF-8");
    }
    const char *want = ref_sniff(data, size);
    if ((got == NULL) != (want == NULL) || (got && strcmp(got, want) != 0)) {
        dump(data, size);
        FAIL("filecheck_sniff = %s, reference = %s", got ? got : "NULL", want ? want : "NULL");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_sniff(data, size);
    check_name(data, size, 255);
    if (size > 0) {
        size_t max = data[0]; /* small limits too, 0 included */
        check_name(data + 1, size - 1, max);
        check_sniff(data + 1, size - 1);
    }
    return 0;
}
