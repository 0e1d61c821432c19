/* Tests of core/cluster/redis_link.h against a real redis-server, started
 * here as a child process on a free loopback port (redis 7 cannot take
 * --port 0, so a port is found by binding a socket first):
 *   - SUBSCRIBE/PSUBSCRIBE deliveries of a PUBLISH (binary-safe), commands
 *     and their replies, a subscription added while up;
 *   - the server killed: on_down, publish refused and counted; restarted on
 *     the same port: on_up again, resubscribed, messages flow again;
 *   - Redis dropping the subscriber alone: down, then up and resubscribed;
 *   - nothing listening at start: retries (one "link down" line), then up
 *     once the server appears (one "link up" line);
 *   - a frozen server (SIGSTOP): the heartbeat takes the link down; up again after SIGCONT;
 *   - AUTH (password alone, user+password, percent-decoded), a wrong
 *     password never comes up, SELECT from the URL's db;
 *   - a host name (resolved off the loop) and an IPv6 address;
 *   - redis_link_free from inside callbacks and while connecting;
 *   - every test closes its loop (uv_loop_close must succeed: no handle
 *     left) and ends with as many open fds as it started with.
 * redis-server missing is a failure with a message, never a skip. */
#define _GNU_SOURCE /* close_range */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "check.h"
#include "log.h"
#include "redis_link.h"
#include "redis_url.h"

#define WAIT_MS 15000 /* bound of every wait (generous: the machine is shared) */

/* ---- the redis-server child ---- */

static pid_t servers[8];

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("free_port");
        exit(1);
    }
    close(fd);
    return ntohs(a.sin_port);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static int can_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* Starts redis-server on 127.0.0.1 (and ::1 when the machine has it) and waits until it accepts. */
static pid_t start_server(int port, const char *password) {
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    const char *argv[20] = {"redis-server", "--port", portstr, "--bind", "127.0.0.1", "-::1",
                            "--save", "", "--appendonly", "no", "--loglevel", "warning",
                            "--daemonize", "no"};
    int n = 14;
    if (password) {
        argv[n++] = "--requirepass";
        argv[n++] = password;
    }
    argv[n] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        /* dies with the test, even one killed by a timeout or an ASan abort */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(126);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        close_range(3, ~0U, 0); /* not the test's sockets */
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < WAIT_MS / 10; i++) {
        if (can_connect(port)) {
            for (int j = 0; j < 8; j++)
                if (!servers[j]) {
                    servers[j] = pid;
                    break;
                }
            return pid;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
                fprintf(stderr, "test_redis_link: cannot run redis-server (not on PATH?): install "
                                "redis-server (Debian: apt-get install redis-server); these tests "
                                "need a real one\n");
            else
                fprintf(stderr, "test_redis_link: redis-server exited at start (port %d)\n", port);
            exit(1);
        }
        sleep_ms(10);
    }
    fprintf(stderr, "test_redis_link: redis-server did not listen on port %d\n", port);
    kill(pid, SIGKILL);
    exit(1);
}

static void stop_server(pid_t pid) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    for (int j = 0; j < 8; j++)
        if (servers[j] == pid) servers[j] = 0;
}

static void stop_all_servers(void) {
    for (int j = 0; j < 8; j++)
        if (servers[j]) stop_server(servers[j]);
}

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the DIR's own */
}

/* ---- what a link reported ---- */

struct probe {
    struct redis_link *link;
    int ups, downs, msgs;
    char channel[64], pattern[64], data[256];
    size_t channel_len, data_len;
    int had_pattern;
    int free_on_message; /* redis_link_free from inside on_message */
    int free_on_down;
};

static void on_message(void *ud, const char *channel, size_t clen, const char *pattern, const char *data,
                       size_t len) {
    struct probe *p = ud;
    p->msgs++;
    p->channel_len = clen < sizeof p->channel ? clen : sizeof p->channel - 1;
    memcpy(p->channel, channel, p->channel_len);
    p->channel[p->channel_len] = 0;
    p->had_pattern = pattern != NULL;
    snprintf(p->pattern, sizeof p->pattern, "%s", pattern ? pattern : "");
    p->data_len = len < sizeof p->data ? len : sizeof p->data;
    memcpy(p->data, data, p->data_len);
    if (p->free_on_message) {
        redis_link_free(p->link);
        p->link = NULL;
    }
}

static void on_up(void *ud) { ((struct probe *)ud)->ups++; }

static void on_down(void *ud) {
    struct probe *p = ud;
    p->downs++;
    if (p->free_on_down) {
        redis_link_free(p->link);
        p->link = NULL;
    }
}

static const struct redis_link_ops probe_ops = {on_message, on_up, on_down};

static struct redis_link *open_link(uv_loop_t *loop, const char *url, struct probe *p) {
    struct redis_url u;
    const char *err = redis_url_parse(&u, url);
    if (err) {
        fprintf(stderr, "bad url %s: %s\n", url, err);
        exit(1);
    }
    memset(p, 0, sizeof *p);
    p->link = redis_link_new(loop, &u, &probe_ops, p);
    return p->link;
}

/* ---- running the loop until something happened ---- */

static void on_tick(uv_timer_t *t) { (void)t; }

/* Runs the loop until *flag >= want or WAIT_MS passed; returns whether it got there. */
static int run_until(uv_loop_t *loop, const int *flag, int want) {
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    uint64_t end = uv_now(loop) + WAIT_MS;
    while (*flag < want && uv_now(loop) < end) uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag >= want;
}

/* Runs the loop for ms (to see that nothing happens). */
static void run_for(uv_loop_t *loop, int ms) {
    int never = 0;
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    uint64_t end = uv_now(loop) + (uint64_t)ms;
    while (!never && uv_now(loop) < end) uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

/* Frees the link (if still there), drains the loop, and checks that it closes clean. */
static void close_all(uv_loop_t *loop, struct probe *p) {
    redis_link_free(p->link);
    p->link = NULL;
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK_INT(0, uv_loop_close(loop));
}

/* A command's reply, copied. */
struct reply_probe {
    int calls, type, was_null;
    long long integer;
    char str[128];
};

static void on_reply(void *ud, const struct redisReply *r) {
    struct reply_probe *rp = ud;
    rp->calls++;
    rp->was_null = r == NULL;
    if (!r) return;
    rp->type = r->type;
    rp->integer = r->integer;
    snprintf(rp->str, sizeof rp->str, "%.*s", r->str ? (int)r->len : 0, r->str ? r->str : "");
}

static int command(uv_loop_t *loop, struct redis_link *l, struct reply_probe *rp, int argc, const char **argv) {
    size_t lens[8];
    for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
    memset(rp, 0, sizeof *rp);
    if (redis_link_command(l, on_reply, rp, argc, argv, lens) != 0) return -1;
    return run_until(loop, &rp->calls, 1) ? 0 : -1;
}

/* Publishes until p has seen want messages (a fresh SUBSCRIBE may not be
 * active yet when the first PUBLISH arrives on the other connection). */
static int publish_until(uv_loop_t *loop, struct probe *p, const char *ch, const char *data, size_t len,
                         int want) {
    for (int i = 0; i < WAIT_MS / 100 && p->msgs < want; i++) {
        if (p->link && redis_link_is_up(p->link)) redis_link_publish(p->link, ch, strlen(ch), data, len);
        uv_timer_t tick;
        uv_timer_init(loop, &tick);
        uv_timer_start(&tick, on_tick, 5, 5);
        uint64_t end = uv_now(loop) + 100;
        while (p->msgs < want && uv_now(loop) < end) uv_run(loop, UV_RUN_ONCE);
        uv_close((uv_handle_t *)&tick, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
    }
    return p->msgs >= want;
}

static char url_buf[512];
static const char *url_for(const char *fmt, int port) {
    snprintf(url_buf, sizeof url_buf, fmt, port);
    return url_buf;
}

/* stderr into a file for a while, to count log lines; read through a
 * descriptor of its own, so reading never moves where the log writes. */
static int saved_stderr = -1;
static char capture_path[64];
static void capture_stderr(void) {
    fflush(stderr);
    snprintf(capture_path, sizeof capture_path, "/tmp/test_redis_link.XXXXXX");
    int fd = mkstemp(capture_path);
    saved_stderr = dup(2);
    dup2(fd, 2);
    close(fd);
}
/* Lines of the capture so far holding needle (and needle2 when given). */
static int count_captured(const char *needle, const char *needle2) {
    fflush(stderr);
    FILE *f = fopen(capture_path, "r");
    char line[1024];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, needle) && (!needle2 || strstr(line, needle2));
    if (f) fclose(f);
    return n;
}
/* stderr back; the captured lines shown there. */
static void end_capture(void) {
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    FILE *f = fopen(capture_path, "r");
    char line[1024];
    while (f && fgets(line, sizeof line, f)) fputs(line, stderr);
    if (f) fclose(f);
    unlink(capture_path);
}

/* ---- tests ---- */

TEST(publish_reaches_subscribers) {
    int fds = count_fds();
    int port = free_port();
    pid_t srv = start_server(port, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct probe p;
    struct redis_link *l = open_link(&loop, url_for("redis://127.0.0.1:%d", port), &p);
    CHECK(l != NULL);
    CHECK_INT(0, redis_link_subscribe(l, "room:1", 6));
    CHECK_INT(0, redis_link_subscribe(l, "room:1", 6)); /* held once */
    CHECK_INT(0, redis_link_psubscribe(l, "pat:*", 5));
    CHECK(run_until(&loop, &p.ups, 1));
    CHECK_INT(1, redis_link_is_up(l));

    /* binary data with a NUL byte, on a SUBSCRIBE channel */
    CHECK_INT(0, redis_link_publish(l, "room:1", 6, "a\0b", 3));
    CHECK(run_until(&loop, &p.msgs, 1));
    CHECK_MEM("room:1", p.channel, p.channel_len);
    CHECK_MEMN("a\0b", 3, p.data, p.data_len);
    CHECK_INT(0, p.had_pattern);

    /* a PSUBSCRIBE pattern */
    CHECK_INT(0, redis_link_publish(l, "pat:x", 5, "hello", 5));
    CHECK(run_until(&loop, &p.msgs, 2));
    CHECK_MEM("pat:x", p.channel, p.channel_len);
    CHECK_STR("pat:*", p.pattern);
    CHECK_INT(1, p.had_pattern);
    CHECK_MEM("hello", p.data, p.data_len);

    /* a subscription added while up */
    CHECK_INT(0, redis_link_subscribe(l, "late", 4));
    CHECK(publish_until(&loop, &p, "late", "z", 1, 3));
    CHECK_MEM("late", p.channel, p.channel_len);

    /* commands on the other connection, with their replies */
    struct reply_probe rp;
    CHECK_INT(0, command(&loop, l, &rp, 3, (const char *[]){"SET", "k", "v1"}));
    CHECK_INT(REDIS_REPLY_STATUS, rp.type);
    CHECK_INT(0, command(&loop, l, &rp, 2, (const char *[]){"GET", "k"}));
    CHECK_INT(REDIS_REPLY_STRING, rp.type);
    CHECK_STR("v1", rp.str);
    CHECK_INT(0, command(&loop, l, &rp, 1, (const char *[]){"NOSUCHCOMMAND"}));
    CHECK_INT(REDIS_REPLY_ERROR, rp.type);
    CHECK_INT(1, redis_link_is_up(l)); /* an error reply is not a failure of the link */
    CHECK_INT(0, command(&loop, l, &rp, 3, (const char *[]){"PUBSUB", "NUMSUB", "room:1"}));
    CHECK_INT(REDIS_REPLY_ARRAY, rp.type);

    run_for(&loop, 50); /* the PUBLISH replies */
    struct redis_link_stats st;
    redis_link_stats(l, &st);
    CHECK_INT(1, st.up);
    CHECK_UINT(1, st.connects);
    CHECK_UINT(0, st.disconnects);
    CHECK_UINT(0, st.publish_failed);
    CHECK(st.published >= 3);
    CHECK_UINT(3, st.received);
    CHECK_INT(1, p.ups);
    CHECK_INT(0, p.downs);

    close_all(&loop, &p);
    stop_server(srv);
    CHECK_INT(fds, count_fds());
}

TEST(survives_a_server_restart) {
    int fds = count_fds();
    int port = free_port();
    pid_t srv = start_server(port, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct probe p;
    struct redis_link *l = open_link(&loop, url_for("redis://127.0.0.1:%d", port), &p);
    redis_link_subscribe(l, "room:1", 6);
    redis_link_psubscribe(l, "r*", 2);
    CHECK(run_until(&loop, &p.ups, 1));
    CHECK(publish_until(&loop, &p, "room:1", "one", 3, 2)); /* channel + pattern */

    capture_stderr();
    stop_server(srv);
    CHECK(run_until(&loop, &p.downs, 1));
    CHECK_INT(0, redis_link_is_up(l));
    struct redis_link_stats st;
    redis_link_stats(l, &st);
    CHECK_INT(0, st.up);
    CHECK_UINT(1, st.disconnects);
    uint64_t failed = st.publish_failed;
    CHECK_INT(-1, redis_link_publish(l, "room:1", 6, "lost", 4));
    CHECK_INT(-1, redis_link_publish(l, "room:1", 6, "lost", 4));
    redis_link_stats(l, &st);
    CHECK_UINT(failed + 2, st.publish_failed);
    struct reply_probe rp = {0};
    const char *get[] = {"GET", "k"};
    size_t getlen[] = {3, 1};
    CHECK_INT(-1, redis_link_command(l, on_reply, &rp, 2, get, getlen));
    run_for(&loop, 300); /* a few failed reconnects: logged once */
    CHECK_INT(0, rp.calls);
    CHECK_INT(1, p.downs);

    srv = start_server(port, NULL);
    CHECK(run_until(&loop, &p.ups, 2));
    int down_lines = count_captured("link down", NULL);
    int up_lines = count_captured("link up", NULL);
    end_capture();
    CHECK_INT(1, down_lines);
    CHECK_INT(1, up_lines);
    /* resubscribed without being asked: both the channel and the pattern deliver */
    int before = p.msgs;
    CHECK_INT(0, redis_link_publish(l, "room:1", 6, "two", 3));
    CHECK(run_until(&loop, &p.msgs, before + 2));
    CHECK_MEM("two", p.data, p.data_len);
    redis_link_stats(l, &st);
    CHECK_UINT(2, st.connects);
    CHECK_UINT(1, st.disconnects);
    CHECK_INT(1, st.up);

    /* and again, with a command in flight when it dies: its cb gets NULL
     * (BLPOP only to have a reply outstanding; it is not blocked for long) */
    memset(&rp, 0, sizeof rp);
    const char *blpop[] = {"BLPOP", "nothing", "0"};
    size_t blen[] = {5, 7, 1};
    CHECK_INT(0, redis_link_command(l, on_reply, &rp, 3, blpop, blen));
    run_for(&loop, 50);
    stop_server(srv);
    CHECK(run_until(&loop, &p.downs, 2));
    CHECK_INT(1, rp.calls);
    CHECK_INT(1, rp.was_null);
    srv = start_server(port, NULL);
    CHECK(run_until(&loop, &p.ups, 3));
    before = p.msgs;
    CHECK(publish_until(&loop, &p, "room:1", "three", 5, before + 2));

    close_all(&loop, &p);
    stop_server(srv);
    CHECK_INT(fds, count_fds());
}

/* Redis drops only the subscriber (as its output buffer limit for pub/sub
 * clients does): the whole link goes down and comes back resubscribed. */
TEST(subscriber_dropped_alone) {
    int fds = count_fds();
    int port = free_port();
    pid_t srv = start_server(port, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct probe p;
    open_link(&loop, url_for("redis://127.0.0.1:%d", port), &p);
    redis_link_subscribe(p.link, "s", 1);
    CHECK(run_until(&loop, &p.ups, 1));
    struct reply_probe rp;
    CHECK_INT(0, command(&loop, p.link, &rp, 4, (const char *[]){"CLIENT", "KILL", "TYPE", "pubsub"}));
    /* the reply, or NULL: the link may drop the command connection first */
    CHECK(rp.was_null || (rp.type == REDIS_REPLY_INTEGER && rp.integer == 1));
    CHECK(run_until(&loop, &p.downs, 1));
    CHECK(run_until(&loop, &p.ups, 2));
    CHECK(publish_until(&loop, &p, "s", "back", 4, 1));
    close_all(&loop, &p);
    stop_server(srv);
    CHECK_INT(fds, count_fds());
}

TEST(refused_at_start_then_up) {
    int fds = count_fds();
    int port = free_port();
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct probe p;
    capture_stderr();
    struct redis_link *l = open_link(&loop, url_for("redis://127.0.0.1:%d", port), &p);
    redis_link_subscribe(l, "c", 1);
    run_for(&loop, 1000); /* several refused connects (100, 200, 400 ms ...) */
    /* seen as refused at once, not only by the 5 s connect deadline (hiredis
     * 0.14's own libuv adapter drops that error: the connect would hang) */
    CHECK_INT(1, count_captured("link down", "reason=\"Connection refused\""));
    CHECK_INT(0, p.ups);
    CHECK_INT(0, p.downs); /* never up: nothing to report down */
    CHECK_INT(0, redis_link_is_up(l));
    CHECK_INT(-1, redis_link_publish(l, "c", 1, "x", 1));
    struct redis_link_stats st;
    redis_link_stats(l, &st);
    CHECK_UINT(0, st.connects);
    CHECK_UINT(1, st.publish_failed);

    pid_t srv = start_server(port, NULL);
    CHECK(run_until(&loop, &p.ups, 1));
    int down_lines = count_captured("link down", NULL);
    end_capture();
    CHECK_INT(1, down_lines);
    CHECK(publish_until(&loop, &p, "c", "hi", 2, 1));
    CHECK_MEM("hi", p.data, p.data_len);
    close_all(&loop, &p);
    stop_server(srv);
    CHECK_INT(fds, count_fds());
}

TEST(frozen_server_found_by_heartbeat) {
    int fds = count_fds();
    int port = free_port();
    pid_t srv = start_server(port, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct probe p;
    open_link(&loop, url_for("redis://127.0.0.1:%d", port), &p);
    redis_link_subscribe(p.link, "h", 1);
    CHECK(run_until(&loop, &p.ups, 1));
    kill(srv, SIGSTOP); /* the connections stay open; nothing answers */
    CHECK(run_until(&loop, &p.downs, 1));
    kill(srv, SIGCONT);
    CHECK(run_until(&loop, &p.ups, 2));
    CHECK(publish_until(&loop, &p, "h", "awake", 5, 1));
    close_all(&loop, &p);
    stop_server(srv);
    CHECK_INT(fds, count_fds());
}

TEST(auth_and_select) {
    int fds = count_fds();
    int port = free_port();
    pid_t srv = start_server(port, "p@ss w");
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct probe p, q, bad;

    /* the password alone, percent-encoded in the URL, and db 3 */
    open_link(&loop, url_for("redis://:p%%40ss%%20w@127.0.0.1:%d/3", port), &p);
    redis_link_subscribe(p.link, "a", 1);
    CHECK(run_until(&loop, &p.ups, 1));
    CHECK(publish_until(&loop, &p, "a", "authed", 6, 1));
    struct reply_probe rp;
    CHECK_INT(0, command(&loop, p.link, &rp, 3, (const char *[]){"SET", "dbkey", "in3"}));
    CHECK_INT(REDIS_REPLY_STATUS, rp.type);

    /* user + password (the default ACL user); db 0 does not see db 3's key */
    open_link(&loop, url_for("redis://default:p%%40ss%%20w@127.0.0.1:%d", port), &q);
    CHECK(run_until(&loop, &q.ups, 1));
    CHECK_INT(0, command(&loop, q.link, &rp, 2, (const char *[]){"GET", "dbkey"}));
    CHECK_INT(REDIS_REPLY_NIL, rp.type);
    CHECK_INT(0, command(&loop, q.link, &rp, 2, (const char *[]){"SELECT", "3"}));
    CHECK_INT(0, command(&loop, q.link, &rp, 2, (const char *[]){"GET", "dbkey"}));
    CHECK_STR("in3", rp.str);

    /* a wrong password: never up, keeps retrying, logs once */
    capture_stderr();
    open_link(&loop, url_for("redis://:wrong@127.0.0.1:%d", port), &bad);
    run_for(&loop, 800);
    int down_lines = count_captured("link down", NULL);
    int wrongpass = count_captured("link down", "WRONGPASS");
    end_capture();
    CHECK_INT(0, bad.ups);
    CHECK_INT(0, redis_link_is_up(bad.link));
    CHECK_INT(1, down_lines);
    CHECK_INT(1, wrongpass);
    /* no password at all against a server that wants one */
    struct probe none;
    open_link(&loop, url_for("redis://127.0.0.1:%d", port), &none);
    run_for(&loop, 300);
    CHECK_INT(0, none.ups);

    redis_link_free(p.link);
    redis_link_free(q.link);
    redis_link_free(bad.link);
    close_all(&loop, &none);
    stop_server(srv);
    CHECK_INT(fds, count_fds());
}

TEST(host_names_and_ipv6) {
    int fds = count_fds();
    int port = free_port();
    pid_t srv = start_server(port, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct probe p, q;
    open_link(&loop, url_for("redis://localhost:%d", port), &p);
    redis_link_subscribe(p.link, "n", 1);
    CHECK(run_until(&loop, &p.ups, 1));
    CHECK(publish_until(&loop, &p, "n", "by name", 7, 1));

    int v6 = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
                              .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int have_v6 = v6 >= 0 && connect(v6, (struct sockaddr *)&a6, sizeof a6) == 0;
    if (v6 >= 0) close(v6);
    if (have_v6) {
        open_link(&loop, url_for("redis://[::1]:%d", port), &q);
        redis_link_subscribe(q.link, "n", 1);
        CHECK(run_until(&loop, &q.ups, 1));
        CHECK(publish_until(&loop, &q, "n", "over v6", 7, 1));
        redis_link_free(q.link);
    } else {
        printf("test_redis_link: no IPv6 loopback here, the [::1] case was not run\n");
    }
    /* a name that does not resolve: down, retrying, never up */
    struct probe bad;
    open_link(&loop, "redis://no-such-host.invalid:6379", &bad);
    run_for(&loop, 300);
    CHECK_INT(0, bad.ups);
    redis_link_free(bad.link);

    close_all(&loop, &p);
    stop_server(srv);
    CHECK_INT(fds, count_fds());
}

TEST(free_from_callbacks_and_while_connecting) {
    int fds = count_fds();
    int port = free_port();
    pid_t srv = start_server(port, NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct probe p, q, r, s;

    /* from on_message, with a second message already on its way */
    open_link(&loop, url_for("redis://127.0.0.1:%d", port), &p);
    redis_link_subscribe(p.link, "f", 1);
    redis_link_psubscribe(p.link, "f*", 2);
    CHECK(run_until(&loop, &p.ups, 1));
    p.free_on_message = 1;
    CHECK(publish_until(&loop, &p, "f", "x", 1, 1));
    run_for(&loop, 100);
    CHECK_INT(1, p.msgs); /* the pattern copy was not delivered after the free */
    CHECK(p.link == NULL);

    /* from on_down */
    int port2 = free_port();
    pid_t srv2 = start_server(port2, NULL);
    open_link(&loop, url_for("redis://127.0.0.1:%d", port2), &q);
    q.free_on_down = 1;
    CHECK(run_until(&loop, &q.ups, 1));
    stop_server(srv2);
    CHECK(run_until(&loop, &q.downs, 1));
    run_for(&loop, 300);
    CHECK_INT(1, q.downs);
    CHECK(q.link == NULL);

    /* while connecting (nothing listening), and right after new */
    open_link(&loop, url_for("redis://127.0.0.1:%d", port2), &r);
    run_for(&loop, 150);
    redis_link_free(r.link);
    open_link(&loop, url_for("redis://127.0.0.1:%d", port), &s);
    redis_link_subscribe(s.link, "g", 1);
    redis_link_free(s.link);
    /* and while resolving a name */
    struct probe t;
    open_link(&loop, url_for("redis://localhost:%d", port), &t);
    redis_link_free(t.link);
    run_for(&loop, 200);
    CHECK_INT(0, r.ups + s.ups + t.ups);

    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(0, uv_loop_close(&loop));
    stop_server(srv);
    CHECK_INT(fds, count_fds());
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    atexit(stop_all_servers);
    log_set_level(LOG_INFO); /* the lines the tests count; retries are debug */
    /* libuv's first loop opens a process-wide pipe (signal handling) that
     * stays: open it before the fd counts start */
    uv_loop_t warm;
    uv_loop_init(&warm);
    uv_loop_close(&warm);
    RUN(publish_reaches_subscribers);
    RUN(survives_a_server_restart);
    RUN(subscriber_dropped_alone);
    RUN(refused_at_start_then_up);
    RUN(frozen_server_found_by_heartbeat);
    RUN(auth_and_select);
    RUN(host_names_and_ipv6);
    RUN(free_from_callbacks_and_while_connecting);
    return check_finish("test_redis_link");
}
