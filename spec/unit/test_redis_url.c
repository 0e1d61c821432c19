/* Unit tests for core/proto/redis_url.h: the --redis URL. */
#include <stdlib.h>

#include "check.h"
#include "redis_url.h"

/* Parses a heap copy of exactly the string's size, so an over-read shows under ASan. */
static const char *parse(struct redis_url *u, const char *s) {
    char *copy = strdup(s);
    const char *err = redis_url_parse(u, copy);
    free(copy);
    return err;
}

TEST(accepts_the_forms) {
    struct redis_url u;
    CHECK_PTR(NULL, parse(&u, "redis://127.0.0.1:6390"));
    CHECK_STR("127.0.0.1", u.host);
    CHECK_INT(6390, u.port);
    CHECK_INT(0, u.db);
    CHECK_INT(0, u.has_password);
    CHECK_STR("", u.user);

    CHECK_PTR(NULL, parse(&u, "redis://localhost"));
    CHECK_STR("localhost", u.host);
    CHECK_INT(6379, u.port);

    CHECK_PTR(NULL, parse(&u, "redis://redis-1.internal/"));
    CHECK_STR("redis-1.internal", u.host);
    CHECK_INT(6379, u.port);
    CHECK_INT(0, u.db);

    CHECK_PTR(NULL, parse(&u, "redis://h:1/15"));
    CHECK_INT(1, u.port);
    CHECK_INT(15, u.db);

    CHECK_PTR(NULL, parse(&u, "redis://h:65535/0"));
    CHECK_INT(65535, u.port);
}

TEST(userinfo) {
    struct redis_url u;
    CHECK_PTR(NULL, parse(&u, "redis://alice:s3cret@h:7000/2"));
    CHECK_STR("alice", u.user);
    CHECK_STR("s3cret", u.password);
    CHECK_INT(1, u.has_password);
    CHECK_STR("h", u.host);
    CHECK_INT(7000, u.port);
    CHECK_INT(2, u.db);

    CHECK_PTR(NULL, parse(&u, "redis://:pw@h"));
    CHECK_STR("", u.user);
    CHECK_STR("pw", u.password);
    CHECK_INT(1, u.has_password);

    /* percent-decoded; a raw '@' in the password: the last '@' ends the userinfo */
    CHECK_PTR(NULL, parse(&u, "redis://:p%40ss%3Aw%2fo%25rd@h:1"));
    CHECK_STR("p@ss:w/o%rd", u.password);
    CHECK_PTR(NULL, parse(&u, "redis://u:a@b@h:1"));
    CHECK_STR("a@b", u.password);
    CHECK_STR("h", u.host);
    CHECK_PTR(NULL, parse(&u, "redis://u%20x:%C3%A9@h"));
    CHECK_STR("u x", u.user);
    CHECK_STR("\xc3\xa9", u.password);
}

TEST(ipv6) {
    struct redis_url u;
    CHECK_PTR(NULL, parse(&u, "redis://[::1]:6380/3"));
    CHECK_STR("::1", u.host);
    CHECK_INT(6380, u.port);
    CHECK_INT(3, u.db);
    CHECK_PTR(NULL, parse(&u, "redis://:pw@[fe80::1:2]"));
    CHECK_STR("fe80::1:2", u.host);
    CHECK_INT(6379, u.port);
    CHECK_PTR(NULL, parse(&u, "redis://[::ffff:10.0.0.1]:1"));
    CHECK_STR("::ffff:10.0.0.1", u.host);
}

static void refused(const char *s, const char *msg, int line) {
    struct redis_url u;
    const char *err = parse(&u, s);
    if (!check_true(err != NULL, s, __FILE__, line)) return;
    check_str(msg, err, s, __FILE__, line);
}
#define REFUSED(s, msg) refused(s, msg, __LINE__)

TEST(refuses_the_rest) {
    REFUSED("", "expected redis://[user:password@]host[:port][/db]");
    REFUSED("http://h:1", "expected redis://[user:password@]host[:port][/db]");
    REFUSED("REDIS://h", "expected redis://[user:password@]host[:port][/db]");
    REFUSED("redis:/h", "expected redis://[user:password@]host[:port][/db]");
    REFUSED("h:6379", "expected redis://[user:password@]host[:port][/db]");
    REFUSED("rediss://h:6379", "rediss:// (TLS) is not supported");
    REFUSED("redis://", "empty host");
    REFUSED("redis://:6379", "empty host");
    REFUSED("redis://u:p@", "empty host");
    REFUSED("redis://[]:1", "empty host");
    REFUSED("redis://h:", "the port must be a number in 1..65535");
    REFUSED("redis://h:0", "the port must be a number in 1..65535");
    REFUSED("redis://h:65536", "the port must be a number in 1..65535");
    REFUSED("redis://h:99999999999999999999", "the port must be a number in 1..65535");
    REFUSED("redis://h:-1", "the port must be a number in 1..65535");
    REFUSED("redis://h:1:2", "an IPv6 address goes in brackets: redis://[::1]:6379");
    REFUSED("redis://h:+1", "the port must be a number in 1..65535");
    REFUSED("redis://::1:6379", "an IPv6 address goes in brackets: redis://[::1]:6379");
    REFUSED("redis://fe80::1", "an IPv6 address goes in brackets: redis://[::1]:6379");
    REFUSED("redis://h st", "bad character in the host");
    REFUSED("redis://h%41", "bad character in the host");
    REFUSED("redis://[::1", "missing ']' after the IPv6 address");
    REFUSED("redis://[::1]x", "unexpected characters after the IPv6 address");
    REFUSED("redis://[zz::1]", "bad IPv6 address");
    REFUSED("redis://[1234]", "bad IPv6 address");
    REFUSED("redis://h/x", "the path must be /<db>, a number in 0..1000000");
    REFUSED("redis://h/1/2", "the path must be /<db>, a number in 0..1000000");
    REFUSED("redis://h/-1", "the path must be /<db>, a number in 0..1000000");
    REFUSED("redis://h/1000001", "the path must be /<db>, a number in 0..1000000");
    REFUSED("redis://h?db=1", "query parameters are not supported");
    REFUSED("redis://h/1?x", "query parameters are not supported");
    REFUSED("redis://h#x", "a fragment is not supported");
    REFUSED("redis://pw@h", "the userinfo must be user:password or :password");
    REFUSED("redis://:p%4@h", "bad percent escape in the user or password");
    REFUSED("redis://:p%@h", "bad percent escape in the user or password");
    REFUSED("redis://:p%zz@h", "bad percent escape in the user or password");
    REFUSED("redis://:a%00b@h", "the user or password decodes to a NUL byte");
    REFUSED("redis://:a b@h", "control character or space in the user or password");
    REFUSED("redis://:a\tb@h", "control character or space in the user or password");
}

TEST(lengths) {
    struct redis_url u;
    char s[2048];
    char host[300];
    memset(host, 'a', 255);
    host[255] = 0;
    snprintf(s, sizeof s, "redis://%s:1", host);
    CHECK_PTR(NULL, parse(&u, s));
    CHECK_INT(255, strlen(u.host));
    memset(host, 'a', 256);
    host[256] = 0;
    snprintf(s, sizeof s, "redis://%s:1", host);
    REFUSED(s, "host too long");

    char pw[600];
    memset(pw, 'p', 511);
    pw[511] = 0;
    snprintf(s, sizeof s, "redis://:%s@h", pw);
    CHECK_PTR(NULL, parse(&u, s));
    CHECK_INT(511, strlen(u.password));
    memset(pw, 'p', 512);
    pw[512] = 0;
    snprintf(s, sizeof s, "redis://:%s@h", pw);
    REFUSED(s, "password too long");
    snprintf(s, sizeof s, "redis://%s:x@h", pw);
    REFUSED(s, "user too long");
}

int main(void) {
    RUN(accepts_the_forms);
    RUN(userinfo);
    RUN(ipv6);
    RUN(refuses_the_rest);
    RUN(lengths);
    return check_finish("test_redis_url");
}
