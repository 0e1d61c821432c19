/* redis_url: a strict parser: anything it cannot map onto AUTH/SELECT and one
 * TCP address is refused, so a typo fails at start and not at the first
 * reconnect. */
#include "redis_url.h"

#include <string.h>

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes [s, s+len) into out (cap bytes with the NUL). */
static const char *decode(char *out, size_t cap, const char *s, size_t len, const char *what_long) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            if (len - i < 3) return "bad percent escape in the user or password";
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0) return "bad percent escape in the user or password";
            c = (char)(h << 4 | l);
            if (c == 0) return "the user or password decodes to a NUL byte";
            i += 2;
        } else if ((unsigned char)c <= 0x20 || c == 0x7f) {
            return "control character or space in the user or password";
        }
        if (n + 1 >= cap) return what_long;
        out[n++] = c;
    }
    out[n] = 0;
    return NULL;
}

static int digits(const char *s, size_t len, long max, long *out) {
    long v = 0;
    if (len == 0) return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
        if (v > max) return -1;
    }
    *out = v;
    return 0;
}

const char *redis_url_parse(struct redis_url *out, const char *s) {
    static const char scheme[] = "redis://";
    memset(out, 0, sizeof *out);
    out->port = REDIS_URL_DEFAULT_PORT;
    if (!s || strncmp(s, scheme, sizeof scheme - 1) != 0) {
        if (s && strncmp(s, "rediss://", 9) == 0) return "rediss:// (TLS) is not supported";
        return "expected redis://[user:password@]host[:port][/db]";
    }
    const char *a = s + sizeof scheme - 1;
    size_t alen = strcspn(a, "/?#");
    const char *rest = a + alen;

    /* userinfo: up to the last '@' of the authority (a raw '@' in a password still works). */
    const char *at = NULL;
    for (const char *p = a; p < a + alen; p++)
        if (*p == '@') at = p;
    if (at) {
        const char *colon = memchr(a, ':', (size_t)(at - a));
        if (!colon) return "the userinfo must be user:password or :password";
        const char *err = decode(out->user, sizeof out->user, a, (size_t)(colon - a), "user too long");
        if (err) return err;
        err = decode(out->password, sizeof out->password, colon + 1, (size_t)(at - colon - 1),
                     "password too long");
        if (err) return err;
        out->has_password = 1;
        alen -= (size_t)(at + 1 - a);
        a = at + 1;
    }

    /* host, then :port */
    const char *h = a, *port = NULL;
    size_t hlen;
    if (alen && a[0] == '[') {
        const char *close = memchr(a, ']', alen);
        if (!close) return "missing ']' after the IPv6 address";
        h = a + 1;
        hlen = (size_t)(close - h);
        if (hlen == 0) return "empty host";
        for (size_t i = 0; i < hlen; i++)
            if (!(hexval(h[i]) >= 0 || h[i] == ':' || h[i] == '.')) return "bad IPv6 address";
        if (!memchr(h, ':', hlen)) return "bad IPv6 address";
        const char *after = close + 1;
        if (after < a + alen) {
            if (*after != ':') return "unexpected characters after the IPv6 address";
            port = after + 1;
        }
    } else {
        const char *colon = memchr(a, ':', alen);
        if (colon && memchr(colon + 1, ':', (size_t)(a + alen - colon - 1)))
            return "an IPv6 address goes in brackets: redis://[::1]:6379";
        hlen = colon ? (size_t)(colon - a) : alen;
        if (hlen == 0) return "empty host";
        for (size_t i = 0; i < hlen; i++) {
            char c = h[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-' || c == '_'))
                return "bad character in the host";
        }
        if (colon) port = colon + 1;
    }
    if (hlen >= sizeof out->host) return "host too long";
    memcpy(out->host, h, hlen);
    out->host[hlen] = 0;
    if (port) {
        long v;
        if (digits(port, (size_t)(a + alen - port), 65535, &v) != 0 || v == 0)
            return "the port must be a number in 1..65535";
        out->port = (int)v;
    }

    /* path: nothing, "/" or "/<db>" */
    if (*rest == '?') return "query parameters are not supported";
    if (*rest == '#') return "a fragment is not supported";
    if (*rest == '/') {
        const char *d = rest + 1;
        size_t dlen = strlen(d);
        if (memchr(d, '?', dlen)) return "query parameters are not supported";
        if (dlen) {
            long v;
            if (digits(d, dlen, 1000000, &v) != 0) return "the path must be /<db>, a number in 0..1000000";
            out->db = (int)v;
        }
    }
    return NULL;
}
