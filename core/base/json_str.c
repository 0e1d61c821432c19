#include "json_str.h"

#include <stdint.h>
#include <string.h>

#include "utf8.h"

/* The length of the leading run of bytes of s that a JSON string holds as
 * they are, in both directions: ASCII, not a control character, '"' or
 * '\\'. Eight bytes at a time (each test below is true when some byte
 * of v is the one looked for); the caller looks at the rest byte by byte. */
static size_t plain_prefix(const char *s, size_t n) {
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t i = 0;
    for (; n - i >= 8; i += 8) {
        uint64_t v, q, b;
        memcpy(&v, s + i, 8);
        q = v ^ (ones * '"');
        b = v ^ (ones * '\\');
        uint64_t special = ((q - ones) & ~q) | ((b - ones) & ~b) | ((v - ones * 0x20) & ~v) | v;
        if (special & highs) break;
    }
    return i;
}

/* {==================================================================
 * Reading
 * =================================================================== */

const char *json_str_error_text(enum json_str_error err) {
    switch (err) {
    case JSON_STR_OK: return "no error";
    case JSON_STR_UNTERMINATED: return "unterminated string";
    case JSON_STR_CONTROL: return "control character in string";
    case JSON_STR_BAD_ESCAPE: return "bad escape in string";
    case JSON_STR_BAD_U_ESCAPE: return "bad \\u escape";
    case JSON_STR_NOT_UTF8: return "invalid UTF-8 in string";
    }
    return "bad string";
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
    return -1;
}

/* The four hex digits at p (n bytes available) as a number, or -1. */
static long hex4(const char *p, size_t n) {
    if (n < 4) return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0) return -1;
        v = v << 4 | h;
    }
    return v;
}

static long scan_fail(enum json_str_error e, size_t i, enum json_str_error *err, size_t *at) {
    *err = e;
    if (at) *at = i;
    return -1;
}

long json_str_scan(const char *p, size_t len, int *escapes, enum json_str_error *err, size_t *at) {
    unsigned char high = 0;
    int esc = 0;
    for (size_t i = plain_prefix(p, len); i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"') {
            /* Escapes decode to whole UTF-8 sequences, so checking the raw
             * body is checking the decoded value. */
            if ((high & 0x80) && !utf8_valid(p, i)) return scan_fail(JSON_STR_NOT_UTF8, 0, err, at);
            if (escapes) *escapes = esc;
            return (long)i;
        }
        if (c < 0x20) return scan_fail(JSON_STR_CONTROL, i, err, at);
        high |= c;
        if (c != '\\') continue;
        esc = 1;
        if (len - i < 2) break;
        char e = p[i + 1];
        if (e == 'u') {
            if (hex4(p + i + 2, len - i - 2) < 0) return scan_fail(JSON_STR_BAD_U_ESCAPE, i, err, at);
            i += 5;
        } else if (e && strchr("\"\\/bfnrt", e)) {
            i++;
        } else {
            return scan_fail(JSON_STR_BAD_ESCAPE, i, err, at);
        }
    }
    return scan_fail(JSON_STR_UNTERMINATED, len, err, at);
}

/* The code point of the \u escape at p[i] ('\\'), pairing surrogates; *used
 * gets the bytes it takes (6 or 12). A malformed escape (only met when the
 * body was not scanned) reads as U+FFFD. */
static unsigned u_escape(const char *p, size_t len, size_t i, size_t *used) {
    long cp = hex4(p + i + 2, len - i - 2);
    *used = 6;
    if (cp < 0) {
        *used = len - i < 6 ? len - i : 6;
        return 0xFFFD;
    }
    if (cp >= 0xD800 && cp <= 0xDBFF && len - i >= 12 && p[i + 6] == '\\' && p[i + 7] == 'u') {
        long lo = hex4(p + i + 8, len - i - 8);
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
            *used = 12;
            return 0x10000 + (((unsigned)cp - 0xD800) << 10) + ((unsigned)lo - 0xDC00);
        }
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0xFFFD; /* a lone surrogate has no UTF-8 form */
    return (unsigned)cp;
}

static size_t utf8_len(unsigned cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

static size_t put_utf8(char *out, unsigned cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static char short_escape(char e) {
    switch (e) {
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    default: return e; /* " \ / (and anything else, when not scanned) */
    }
}

/* One walk for both: out NULL only counts. */
static size_t unescape(const char *p, size_t len, char *out) {
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        const char *bs = memchr(p + i, '\\', len - i);
        size_t run = bs ? (size_t)(bs - (p + i)) : len - i;
        if (out) memcpy(out + n, p + i, run);
        n += run;
        i += run;
        if (i >= len) break;
        if (len - i < 2) { /* a lone trailing backslash (only when not scanned): dropped */
            break;
        }
        if (p[i + 1] != 'u') {
            if (out) out[n] = short_escape(p[i + 1]);
            n++;
            i += 2;
            continue;
        }
        size_t used;
        unsigned cp = u_escape(p, len, i, &used);
        n += out ? put_utf8(out + n, cp) : utf8_len(cp);
        i += used;
    }
    return n;
}

size_t json_str_unescape(const char *p, size_t len, char *out) { return unescape(p, len, out); }

size_t json_str_unescaped_len(const char *p, size_t len) { return unescape(p, len, NULL); }

/* }================================================================== */

/* {==================================================================
 * Writing
 * =================================================================== */

static const char hexdigits[] = "0123456789abcdef";

/* Appends the escape of the byte c (a control character, '"' or '\\'). */
static int put_escape(struct sbuf *out, unsigned char c) {
    char esc[6] = {'\\', 0};
    size_t n = 2;
    switch (c) {
    case '"': esc[1] = '"'; break;
    case '\\': esc[1] = '\\'; break;
    case '\n': esc[1] = 'n'; break;
    case '\r': esc[1] = 'r'; break;
    case '\t': esc[1] = 't'; break;
    case '\b': esc[1] = 'b'; break;
    case '\f': esc[1] = 'f'; break;
    default:
        memcpy(esc, "\\u00", 4);
        esc[4] = hexdigits[c >> 4];
        esc[5] = hexdigits[c & 15];
        n = 6;
    }
    return sbuf_append_fast(out, esc, n);
}

/* The body of s, escaped, without quotes; 0, -1 or JSON_STR_NOT_UTF8_RC. */
static int escape_body(struct sbuf *out, const char *s, size_t len) {
    size_t run = 0;
    unsigned char high = 0;
    for (size_t i = plain_prefix(s, len); i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        high |= c;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        if (sbuf_append_fast(out, s + run, i - run) || put_escape(out, c)) return -1;
        run = i + 1;
    }
    if ((high & 0x80) && !utf8_valid(s, len)) return JSON_STR_NOT_UTF8_RC;
    return sbuf_append_fast(out, s + run, len - run);
}

int json_str_escape(struct sbuf *out, const char *s, size_t len) {
    if (sbuf_reserve(out, len + 2)) return -1;
    out->p[out->len++] = '"';
    int rc = escape_body(out, s, len);
    if (rc) return rc;
    return sbuf_append_fast(out, "\"", 1);
}

/* The length of the valid UTF-8 sequence at s[0] (a byte >= 0x80), or 0. */
static size_t utf8_seq(const char *s, size_t len) {
    unsigned char c = (unsigned char)*s;
    size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    return n && n <= len && utf8_valid(s, n) ? n : 0;
}

int json_append_string(struct sbuf *out, const char *s, size_t len) {
    size_t start = out->len;
    int rc = json_str_escape(out, s, len);
    if (rc != JSON_STR_NOT_UTF8_RC) return rc;
    /* Not UTF-8: again, piece by piece, each stray byte as U+FFFD. */
    out->len = start;
    if (sbuf_putc(out, '"')) return -1;
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && (unsigned char)s[j] < 0x80) j++;
        if (escape_body(out, s + i, j - i)) return -1;
        i = j;
        while (i < len && (unsigned char)s[i] >= 0x80) {
            size_t n = utf8_seq(s + i, len - i);
            if (n ? sbuf_append_fast(out, s + i, n) : sbuf_append_fast(out, "\\ufffd", 6)) return -1;
            i += n ? n : 1;
        }
    }
    return sbuf_putc(out, '"');
}

/* }================================================================== */
