/* redis_url: the --redis address, redis://[user:password@]host[:port][/db]. */
#ifndef SPACE_REDIS_URL_H
#define SPACE_REDIS_URL_H

#define REDIS_URL_DEFAULT_PORT 6379

struct redis_url {
    char host[256];     /* a name, an IPv4 address, or an IPv6 address without its brackets */
    int port;           /* 1..65535; 6379 when the URL names none */
    int db;             /* SELECT index, 0 when the URL has no path */
    char user[256];     /* "" = no user (AUTH password alone) */
    char password[512]; /* percent-decoded; "" = no AUTH */
    int has_password;   /* a userinfo was given (the password may still be "") */
};

/* Fills out from the NUL-terminated s. Returns NULL, or a message saying what
 * is wrong (a static string, without the URL, so no password reaches a log).
 * Refused: another scheme (rediss:// included: no TLS), a userinfo without
 * ':', bad percent escapes or a decoded NUL, an empty or malformed host, a
 * port outside 1..65535, a path other than /<db>, a query or a fragment. */
const char *redis_url_parse(struct redis_url *out, const char *s);

#endif
