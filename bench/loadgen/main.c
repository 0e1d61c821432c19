/* loadgen: scenarios, options, progress and the summary.
 *
 *   fanout       R rooms x M members; S senders per room send send_message
 *                within a window of W unanswered messages (or at --rate);
 *                every other member must receive each message (new_message),
 *                the text carries the CLOCK_MONOTONIC send time. --uploads U
 *                adds U clients in a room of their own that send send_file
 *                (--upload-bytes each, --upload-count times) from the start
 *                of the window: the chat's latency while they upload.
 *   inbound      N clients, each alone in its own room, sending within a
 *                window: events through the server's handlers per second.
 *   connections  N clients, each joined to a room of --room-size, held open;
 *                the server's RSS per connection and the connect rate.
 *
 * Progress: one line a second on stderr. Summary: key=value lines on stdout.
 * Exit status: 0 when the scenario completed with nothing lost, 1 when not,
 * 2 for a usage error. */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loadgen.h"
#include "procstat.h"

enum scenario { SC_FANOUT, SC_INBOUND, SC_CONNECTIONS };

#define LG_MAX_WATCH 16

/* A process whose CPU time counts as the server's (--pids): a cluster is
 * several server processes and a redis-server. */
struct watched {
    int pid;
    char name[32];
};
enum phase { PH_SETUP, PH_SETTLE, PH_WARMUP, PH_MEASURE, PH_DRAIN, PH_HOLD, PH_DONE };
static const char *const phase_names[] = {"setup", "settle", "warmup", "measure", "drain", "hold", "done"};

struct opts {
    enum scenario scenario;
    const char *host;
    int port;
    enum proto proto;
    int pid;                 /* the server's, for CPU and RSS; 0 = unknown */
    int server_core;         /* the core the server is pinned to, for its busy time; -1 = none */
    int loadgen_core;        /* the core this process is pinned to; -1 = none */
    uint32_t rooms, members, senders, window, size, clients, room_size;
    double rate;             /* messages a second over all senders; 0 = window mode */
    double duration_s, warmup_s, hold_s, settle_s;
    double setup_timeout_s, drain_timeout_s;
    uint32_t src_addrs, procs, concurrency;
    uint32_t uploads, upload_bytes, upload_count;
    int upload_mode;         /* 0 base64, 1 binary, 2 mixed (odd uploaders binary) */
    const char *label;
    int ports[LG_MAX_SERVERS];  /* --ports; none: --port alone */
    uint32_t n_ports;
    struct watched watch[LG_MAX_WATCH]; /* --pids */
    uint32_t n_watch;
};

static struct opts o = {
    .scenario = SC_FANOUT, .host = "127.0.0.1", .port = 8000, .proto = PROTO_SIO,
    .rooms = 1, .members = 1000, .senders = 1, .window = 64, .size = 100, .clients = 1000, .room_size = 10,
    .duration_s = 10, .warmup_s = 1, .hold_s = 2, .settle_s = 0.3,
    .setup_timeout_s = 120, .drain_timeout_s = 10,
    .upload_bytes = 10485760, .upload_count = 1, .upload_mode = 2,
    .src_addrs = 1, .procs = 1, .server_core = -1, .loadgen_core = -1, .concurrency = 256, .label = "loadgen",
};

/* {==================================================================
 * State of a run
 * =================================================================== */

struct snapshot {
    uint64_t t_ns;
    struct counters c;
    double server_cpu_s, self_cpu_s;
    double watch_cpu_s[LG_MAX_WATCH]; /* each --pids process's own */
    double core_busy_s, core_total_s; /* the server's core (--server-core), whoever ran there */
    double lg_core_busy_s, lg_core_total_s; /* the load generator's core (--loadgen-core) */
    double core_user_s, core_system_s, core_softirq_s; /* the server core's split */
};

static struct lg lg;
static uv_loop_t *loop;
static uv_timer_t tick_timer, rate_timer, progress_timer;
static enum phase phase;
static uint64_t phase_started_ns, run_started_ns;
static struct snapshot win_start, win_end, sec_prev;
static int failed;                       /* the scenario did not complete */
static char fail_reason[512];
static uint64_t rate_t0_ns, rate_scheduled, rate_skipped;
static uint32_t rr_next;                 /* round-robin over senders (rate mode) */
static struct client **senders;
static uint32_t n_senders;
static long rss_before_kib = -1, rss_after_kib = -1;
static double hold_cpu_start = -1, hold_cpu_end = -1;
static uint32_t ready_at_setup;          /* clients in their rooms when the set-up ended */
static int ctl_fd = -1;                  /* connections child: the parent's control pipe */

static void fail(const char *fmt, ...) {
    if (failed) return;
    failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fail_reason, sizeof fail_reason, fmt, ap);
    va_end(ap);
}

static double secs(uint64_t ns) { return (double)ns / 1e9; }

/* The server's CPU seconds: --pid's plus every --pids process's (each pid
 * once); < 0 when there is none or one of them is unreadable. Fills each[]
 * (one per --pids entry) when given. */
static double server_cpu(double *each) {
    double sum = 0;
    int any = 0, bad = 0;
    if (o.pid) {
        double v = procstat_cpu_s(o.pid);
        any = 1;
        if (v < 0) bad = 1;
        else sum += v;
    }
    for (uint32_t i = 0; i < o.n_watch; i++) {
        double v = procstat_cpu_s(o.watch[i].pid);
        if (each) each[i] = v;
        int dup = o.watch[i].pid == o.pid;
        for (uint32_t k = 0; k < i && !dup; k++) dup = o.watch[k].pid == o.watch[i].pid;
        if (dup) continue;
        any = 1;
        if (v < 0) bad = 1;
        else sum += v;
    }
    return any && !bad ? sum : -1;
}

static void snap(struct snapshot *s) {
    s->t_ns = lg_now_ns();
    s->c = lg.c;
    s->server_cpu_s = server_cpu(s->watch_cpu_s);
    s->self_cpu_s = procstat_self_cpu_s();
    if (o.server_core < 0 || procstat_core(o.server_core, &s->core_busy_s, &s->core_total_s) != 0)
        s->core_busy_s = s->core_total_s = -1;
    if (o.server_core < 0 ||
        procstat_core_split(o.server_core, &s->core_user_s, &s->core_system_s, &s->core_softirq_s) != 0)
        s->core_user_s = s->core_system_s = s->core_softirq_s = -1;
    if (o.loadgen_core < 0 || procstat_core(o.loadgen_core, &s->lg_core_busy_s, &s->lg_core_total_s) != 0)
        s->lg_core_busy_s = s->lg_core_total_s = -1;
}

static void set_phase(enum phase p) {
    phase = p;
    phase_started_ns = lg_now_ns();
}

static uint64_t expected_deliveries(uint64_t sent) {
    return o.scenario == SC_FANOUT ? sent * (uint64_t)(o.members - 1) : 0;
}

/* {==================================================================
 * Sending
 * =================================================================== */

static void fill_window(struct client *c) {
    while (lg.sending && c->state == ST_READY && c->sent - c->acked < o.window) lg_send_message(&lg, c);
}

static void on_ack(struct lg *l, struct client *c) {
    (void)l;
    if (o.rate == 0) fill_window(c);
}

#define UPLOAD_ROOM 3000000u

static void start_uploads(void) {
    for (uint32_t i = 0; i < lg.n_clients; i++)
        if (lg.clients[i].uploader) lg_upload_start(&lg, &lg.clients[i]);
}

static void on_rate_tick(uv_timer_t *t) {
    (void)t;
    if (!lg.sending || !n_senders) return;
    uint64_t now = lg_now_ns();
    uint64_t due = (uint64_t)(o.rate * secs(now - rate_t0_ns));
    /* The window bounds what may be outstanding even here: a server that
     * falls behind shows as skipped sends, not as an ever-growing queue. */
    uint32_t budget = n_senders * 4 + 64;
    while (rate_scheduled < due && budget--) {
        struct client *c = senders[rr_next++ % n_senders];
        rate_scheduled++;
        if (c->state == ST_READY && c->sent - c->acked < o.window) lg_send_message(&lg, c);
        else rate_skipped++;
    }
    if (rate_scheduled < due) { /* more than the budget behind: skip, keep the schedule */
        rate_skipped += due - rate_scheduled;
        rate_scheduled = due;
    }
}

static void start_sending(void) {
    lg.sending = 1;
    if (o.rate > 0) {
        rate_t0_ns = lg_now_ns();
        uv_timer_start(&rate_timer, on_rate_tick, 1, 1);
    } else {
        for (uint32_t i = 0; i < n_senders; i++) fill_window(senders[i]);
    }
}

/* {==================================================================
 * Progress and the summary
 * =================================================================== */

static void on_progress(uv_timer_t *t) {
    (void)t;
    struct snapshot now;
    snap(&now);
    double dt = secs(now.t_ns - sec_prev.t_ns);
    if (dt <= 0) return;
    double el = secs(now.t_ns - run_started_ns);
    if (phase == PH_SETUP || phase == PH_HOLD || phase == PH_SETTLE || o.scenario == SC_CONNECTIONS) {
        fprintf(stderr, "[%s] %5.1fs %-7s ready=%u failed=%u in_handshake=%u", o.label[0] ? o.label : "loadgen",
                el, phase_names[phase], lg.n_ready, lg.n_failed, lg.in_handshake);
        if (o.pid) fprintf(stderr, " server_rss=%ldKiB", procstat_rss_kib(o.pid));
    } else {
        double srv = now.server_cpu_s >= 0 && sec_prev.server_cpu_s >= 0 ? (now.server_cpu_s - sec_prev.server_cpu_s) / dt : -1;
        fprintf(stderr,
                "[%s] %5.1fs %-7s sent/s=%.0f acked/s=%.0f deliveries/s=%.0f p50=%.2fms p99=%.2fms "
                "server_cpu=%.0f%% server_core=%.0f%% loadgen_cpu=%.0f%% errors=%llu uploads=%llu/%llu",
                o.label[0] ? o.label : "loadgen", el, phase_names[phase],
                (double)(now.c.sent - sec_prev.c.sent) / dt, (double)(now.c.acked - sec_prev.c.acked) / dt,
                (double)(now.c.delivered - sec_prev.c.delivered) / dt, hist_quantile(&lg.lat_sec, 0.5) / 1e6,
                hist_quantile(&lg.lat_sec, 0.99) / 1e6, srv * 100,
                now.core_total_s > sec_prev.core_total_s && sec_prev.core_total_s >= 0
                    ? (now.core_busy_s - sec_prev.core_busy_s) / (now.core_total_s - sec_prev.core_total_s) * 100 : -1,
                (now.self_cpu_s - sec_prev.self_cpu_s) / dt * 100,
                (unsigned long long)lg.c.errors, (unsigned long long)lg.c.uploads_done,
                (unsigned long long)lg.c.uploads_started);
    }
    fputc('\n', stderr);
    hist_reset(&lg.lat_sec);
    sec_prev = now;
}

static void kv(const char *k, const char *fmt, ...) {
    printf("%s=", k);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static void print_summary(void) {
    static const char *const sc_names[] = {"fanout", "inbound", "connections"};
    kv("scenario", "%s", sc_names[o.scenario]);
    kv("proto", "%s", o.proto == PROTO_SIO ? "socketio" : "plain");
    kv("clients", "%u", lg.n_clients);
    kv("ready", "%u", ready_at_setup ? ready_at_setup : lg.n_ready);
    kv("setup_failed", "%u", lg.n_failed);
    double setup_s = lg.setup_done_ns ? secs(lg.setup_done_ns - lg.setup_started_ns) : 0;
    kv("setup_s", "%.3f", setup_s);
    kv("connect_rate", "%.0f", setup_s > 0 ? (double)(lg.n_clients - lg.n_failed) / setup_s : 0);
    if (o.scenario == SC_CONNECTIONS) {
        kv("rss_before_kib", "%ld", rss_before_kib);
        kv("rss_after_kib", "%ld", rss_after_kib);
        uint32_t n = lg.n_clients - lg.n_failed;
        double per = n && rss_after_kib >= 0 ? (double)(rss_after_kib - rss_before_kib) * 1024.0 / n : 0;
        kv("rss_per_conn_bytes", "%.0f", per);
        kv("rss_projection_1m_gib", "%.2f", per * 1e6 / (1024.0 * 1024 * 1024));
        if (hold_cpu_start >= 0 && hold_cpu_end >= 0)
            kv("idle_server_cpu_pct", "%.1f", (hold_cpu_end - hold_cpu_start) / o.hold_s * 100);
    } else {
        double w = secs(win_end.t_ns - win_start.t_ns);
        uint64_t sent = win_end.c.sent - win_start.c.sent, acked = win_end.c.acked - win_start.c.acked;
        uint64_t deliv = win_end.c.delivered - win_start.c.delivered;
        double srv_cpu = win_start.server_cpu_s >= 0 && win_end.server_cpu_s >= 0
                             ? win_end.server_cpu_s - win_start.server_cpu_s : -1;
        double self_cpu = win_end.self_cpu_s - win_start.self_cpu_s;
        kv("rooms", "%u", o.scenario == SC_FANOUT ? o.rooms : lg.n_clients);
        kv("members", "%u", o.scenario == SC_FANOUT ? o.members : 1);
        kv("senders", "%u", n_senders);
        kv("window", "%u", o.window);
        kv("rate_target", "%.0f", o.rate);
        kv("msg_size", "%u", o.size);
        kv("window_s", "%.3f", w);
        kv("sent_per_s", "%.0f", w > 0 ? sent / w : 0);
        kv("acked_per_s", "%.0f", w > 0 ? acked / w : 0);
        kv("deliveries_per_s", "%.0f", w > 0 ? deliv / w : 0);
        kv("server_cpu_s", "%.3f", srv_cpu);
        kv("server_cpu_pct", "%.1f", srv_cpu >= 0 && w > 0 ? srv_cpu / w * 100 : -1);
        for (uint32_t i = 0; i < o.n_watch; i++) {
            /* each --pids process: proc_<name>_cpu_s, _cpu_pct (of a core), _share_pct (of the server CPU) */
            double a = win_start.watch_cpu_s[i], b = win_end.watch_cpu_s[i];
            double cpu = a >= 0 && b >= 0 ? b - a : -1;
            const char *nm = o.watch[i].name;
            printf("proc_%s_pid=%d\n", nm, o.watch[i].pid);
            printf("proc_%s_cpu_s=%.3f\n", nm, cpu);
            printf("proc_%s_cpu_pct=%.1f\n", nm, cpu >= 0 && w > 0 ? cpu / w * 100 : -1);
            printf("proc_%s_share_pct=%.1f\n", nm, cpu >= 0 && srv_cpu > 0 ? cpu / srv_cpu * 100 : -1);
        }
        kv("loadgen_cpu_pct", "%.1f", w > 0 ? self_cpu / w * 100 : 0);
        double core_busy = win_start.core_busy_s >= 0 ? win_end.core_busy_s - win_start.core_busy_s : -1;
        double core_total = win_start.core_total_s >= 0 ? win_end.core_total_s - win_start.core_total_s : -1;
        kv("server_core_busy_pct", "%.1f", core_busy >= 0 && core_total > 0 ? core_busy / core_total * 100 : -1);
        kv("deliveries_per_core_busy_s", "%.0f", core_busy > 0 ? deliv / core_busy : 0);
        if (core_total > 0 && win_start.core_user_s >= 0) {
            double us = win_end.core_user_s - win_start.core_user_s, sy = win_end.core_system_s - win_start.core_system_s;
            double si = win_end.core_softirq_s - win_start.core_softirq_s;
            kv("server_core_user_pct", "%.1f", us / core_total * 100);
            kv("server_core_system_pct", "%.1f", sy / core_total * 100);
            kv("server_core_softirq_pct", "%.1f", si / core_total * 100);
            /* user+system time on the core that the server process did not account: other processes */
            kv("server_core_others_pct", "%.1f", srv_cpu >= 0 ? (us + sy - srv_cpu) / core_total * 100 : -1);
        }
        kv("events_per_core_busy_s", "%.0f", core_busy > 0 ? acked / core_busy : 0);
        double lg_busy = win_start.lg_core_busy_s >= 0 ? win_end.lg_core_busy_s - win_start.lg_core_busy_s : -1;
        double lg_total = win_start.lg_core_total_s >= 0 ? win_end.lg_core_total_s - win_start.lg_core_total_s : -1;
        kv("loadgen_core_busy_pct", "%.1f", lg_busy >= 0 && lg_total > 0 ? lg_busy / lg_total * 100 : -1);
        kv("deliveries_per_server_cpu_s", "%.0f", srv_cpu > 0 ? deliv / srv_cpu : 0);
        kv("events_per_server_cpu_s", "%.0f", srv_cpu > 0 ? acked / srv_cpu : 0);
        kv("lat_samples", "%llu", (unsigned long long)lg.lat.count);
        kv("lat_p50_us", "%.1f", hist_quantile(&lg.lat, 0.5) / 1e3);
        kv("lat_p90_us", "%.1f", hist_quantile(&lg.lat, 0.9) / 1e3);
        kv("lat_p99_us", "%.1f", hist_quantile(&lg.lat, 0.99) / 1e3);
        kv("lat_p999_us", "%.1f", hist_quantile(&lg.lat, 0.999) / 1e3);
        kv("lat_max_us", "%.1f", lg.lat.count ? lg.lat.max / 1e3 : 0);
        kv("lat_mean_us", "%.1f", hist_mean(&lg.lat) / 1e3);
        kv("total_sent", "%llu", (unsigned long long)lg.c.sent);
        kv("total_acked", "%llu", (unsigned long long)lg.c.acked);
        kv("expected_deliveries", "%llu", (unsigned long long)expected_deliveries(lg.c.sent));
        kv("delivered", "%llu", (unsigned long long)lg.c.delivered);
        long long lost = (long long)expected_deliveries(lg.c.sent) - (long long)lg.c.delivered;
        kv("lost", "%lld", lost);
        kv("unanswered", "%lld", (long long)lg.c.sent - (long long)lg.c.acked);
        kv("out_of_order", "%llu", (unsigned long long)lg.c.order_bad);
        kv("rate_skipped", "%llu", (unsigned long long)rate_skipped);
        if (o.scenario == SC_FANOUT && o.uploads) {
            static const char *const modes[] = {"base64", "binary", "mixed"};
            kv("uploaders", "%u", o.uploads);
            kv("upload_bytes", "%u", o.upload_bytes);
            kv("upload_mode", "%s", modes[o.upload_mode]);
            kv("uploads_started", "%llu", (unsigned long long)lg.c.uploads_started);
            kv("uploads_done", "%llu", (unsigned long long)lg.c.uploads_done);
            double up_s = lg.up_last_done_ns > lg.up_first_ns ? secs(lg.up_last_done_ns - lg.up_first_ns) : 0;
            kv("upload_s", "%.3f", up_s);
            kv("upload_mib_per_s", "%.1f", up_s > 0 ? (double)lg.c.uploads_done * o.upload_bytes / 1048576.0 / up_s : 0);
            /* the chat while an upload was in flight (within the lat_* figures above) */
            kv("lat_up_samples", "%llu", (unsigned long long)lg.lat_up.count);
            kv("lat_up_p50_us", "%.1f", hist_quantile(&lg.lat_up, 0.5) / 1e3);
            kv("lat_up_p99_us", "%.1f", hist_quantile(&lg.lat_up, 0.99) / 1e3);
            kv("lat_up_max_us", "%.1f", lg.lat_up.count ? lg.lat_up.max / 1e3 : 0);
        }
    }
    kv("errors", "%llu", (unsigned long long)lg.c.errors);
    kv("closed_by_server", "%llu", (unsigned long long)lg.c.closed);
    kv("pings_answered", "%llu", (unsigned long long)lg.c.pings);
    kv("first_error", "\"%s\"", lg.last_error);
    kv("ok", "%d", !failed);
    if (failed) kv("fail_reason", "\"%s\"", fail_reason);
}

/* {==================================================================
 * The scenario's clock: one tick every 50 ms moves the phases on
 * =================================================================== */

static void finish(void) {
    set_phase(PH_DONE);
    uv_timer_stop(&tick_timer);
    uv_timer_stop(&rate_timer);
    uv_timer_stop(&progress_timer);
    lg_close_all(&lg);
    uv_close((uv_handle_t *)&tick_timer, NULL);
    uv_close((uv_handle_t *)&rate_timer, NULL);
    uv_close((uv_handle_t *)&progress_timer, NULL);
    uv_close((uv_handle_t *)&lg.flush_hook, NULL);
}

static int all_answered(void) {
    return lg.c.acked >= lg.c.sent && lg.c.delivered >= expected_deliveries(lg.c.sent) &&
           lg.c.uploads_done >= lg.c.uploads_started;
}

static void on_ctl_readable(uv_poll_t *p, int status, int events);

static void on_tick(uv_timer_t *t) {
    (void)t;
    uint64_t now = lg_now_ns();
    double in_phase = secs(now - phase_started_ns);
    if (phase != PH_SETUP && phase != PH_DONE && lg.c.closed) {
        fail("%llu clients were closed by the server: %s", (unsigned long long)lg.c.closed, lg.last_error);
        finish();
        return;
    }
    switch (phase) {
    case PH_SETUP:
        if (lg.setup_done_ns) {
            if (lg.n_failed && o.scenario != SC_CONNECTIONS) {
                fail("%u of %u clients failed to connect and join: %s", lg.n_failed, lg.n_clients, lg.last_error);
                finish();
                return;
            }
            ready_at_setup = lg.n_ready;
            set_phase(PH_SETTLE);
        } else if (in_phase > o.setup_timeout_s) {
            fail("set-up timed out after %.0fs: %u ready, %u failed, %u in handshake (%s)", o.setup_timeout_s,
                 lg.n_ready, lg.n_failed, lg.in_handshake, lg.last_error);
            finish();
        }
        return;
    case PH_SETTLE:
        if (in_phase < o.settle_s) return;
        if (o.scenario == SC_CONNECTIONS) {
            if (o.pid) rss_after_kib = procstat_rss_kib(o.pid);
            if (ctl_fd >= 0) {
                /* A child of --procs: report, then hold until the parent closes the pipe. */
                char line[128];
                int n = snprintf(line, sizeof line, "ready=%u failed=%u setup_s=%.3f\n", lg.n_ready, lg.n_failed,
                                 lg.setup_done_ns ? secs(lg.setup_done_ns - lg.setup_started_ns) : 0);
                if (write(STDOUT_FILENO, line, (size_t)n) < 0) _exit(1);
                static uv_poll_t ctl;
                uv_poll_init(loop, &ctl, ctl_fd);
                uv_poll_start(&ctl, UV_READABLE | UV_DISCONNECT, on_ctl_readable);
                set_phase(PH_HOLD);
                o.hold_s = 1e9;
                return;
            }
            hold_cpu_start = server_cpu(NULL);
            set_phase(PH_HOLD);
            return;
        }
        set_phase(PH_WARMUP);
        start_sending();
        return;
    case PH_WARMUP:
        if (in_phase < o.warmup_s) return;
        hist_reset(&lg.lat);
        snap(&win_start);
        lg.measuring = 1;
        set_phase(PH_MEASURE);
        start_uploads();
        return;
    case PH_MEASURE:
        if (in_phase < o.duration_s) return;
        snap(&win_end);
        lg.measuring = 0;
        lg.sending = 0;
        uv_timer_stop(&rate_timer);
        set_phase(PH_DRAIN);
        return;
    case PH_DRAIN:
        if (all_answered()) {
            if (lg.c.delivered > expected_deliveries(lg.c.sent))
                fail("%llu more deliveries than expected", (unsigned long long)(lg.c.delivered - expected_deliveries(lg.c.sent)));
            if (lg.c.order_bad) fail("%llu messages out of sequence", (unsigned long long)lg.c.order_bad);
            if (lg.c.errors) fail("%llu error events: %s", (unsigned long long)lg.c.errors, lg.last_error);
            finish();
        } else if (in_phase > o.drain_timeout_s) {
            fail("after %.0fs of draining: %lld deliveries lost, %lld messages unanswered, %llu uploads unanswered",
                 o.drain_timeout_s, (long long)expected_deliveries(lg.c.sent) - (long long)lg.c.delivered,
                 (long long)lg.c.sent - (long long)lg.c.acked,
                 (unsigned long long)(lg.c.uploads_started - lg.c.uploads_done));
            finish();
        }
        return;
    case PH_HOLD:
        if (in_phase < o.hold_s) return;
        hold_cpu_end = server_cpu(NULL);
        if (lg.n_failed) fail("%u of %u clients failed to connect and join: %s", lg.n_failed, lg.n_clients, lg.last_error);
        finish();
        return;
    case PH_DONE:
        return;
    }
}

static void on_ctl_readable(uv_poll_t *p, int status, int events) {
    (void)status;
    (void)events;
    char b[16];
    if (read(ctl_fd, b, sizeof b) > 0) return;
    uv_poll_stop(p);
    uv_close((uv_handle_t *)p, NULL);
    finish();
}

/* {==================================================================
 * Set-up of the clients per scenario
 * =================================================================== */

static void build_clients(uint32_t first_idx, uint32_t n) {
    lg.clients = calloc(n, sizeof *lg.clients);
    senders = calloc(n, sizeof *senders);
    if (!lg.clients || !senders) {
        fprintf(stderr, "loadgen: out of memory\n");
        exit(1);
    }
    lg.n_clients = n;
    for (uint32_t i = 0; i < n; i++) {
        struct client *c = &lg.clients[i];
        c->lg = &lg;
        c->idx = first_idx + i;
        c->sender = -1;
        switch (o.scenario) {
        case SC_FANOUT:
            if (c->idx >= o.rooms * o.members) { /* an uploader */
                c->room = UPLOAD_ROOM;
                c->uploader = 1;
                c->upload_binary = o.upload_mode == 2 ? (c->idx & 1) : o.upload_mode == 1;
                c->uploads_left = o.upload_count;
                break;
            }
            c->room = c->idx / o.members;
            if (c->idx % o.members < o.senders) c->sender = (int32_t)(c->idx % o.members);
            c->next_seq = calloc(o.senders, sizeof *c->next_seq);
            break;
        case SC_INBOUND:
            c->room = 1000000 + c->idx; /* alone in its room */
            c->sender = 0;
            break;
        case SC_CONNECTIONS:
            c->room = 2000000 + c->idx / o.room_size;
            break;
        }
        if (c->sender >= 0) senders[n_senders++] = c;
    }
}

static void raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void on_sigint(uv_signal_t *h, int signum) {
    (void)signum;
    fail("interrupted");
    uv_signal_stop(h);
    uv_close((uv_handle_t *)h, NULL);
    if (phase != PH_DONE) finish();
}

/* Runs clients [first_idx, first_idx + n) on a fresh loop; returns when done. */
static void run_loop(uint32_t first_idx, uint32_t n) {
    loop = uv_default_loop();
    lg_init(&lg, loop);
    lg.proto = o.proto;
    lg.n_src_addrs = o.src_addrs;
    lg.senders_per_room = o.senders;
    lg.members_per_room = o.members;
    lg.msg_size = o.size;
    lg.window = o.window;
    lg.max_in_handshake = o.concurrency;
    lg.on_ack = on_ack;
    lg.n_servers = o.n_ports ? o.n_ports : 1;
    for (uint32_t i = 0; i < lg.n_servers; i++) {
        int port = o.n_ports ? o.ports[i] : o.port;
        snprintf(lg.host_header[i], sizeof lg.host_header[i], "%s:%d", o.host, port);
        if (uv_ip4_addr(o.host, port, &lg.server[i]) != 0) {
            fprintf(stderr, "loadgen: --host must be an IPv4 address\n");
            exit(2);
        }
    }
    build_clients(first_idx, n);
    if (o.scenario == SC_FANOUT && o.uploads && lg_uploads_prepare(&lg, o.upload_bytes, UPLOAD_ROOM) != 0) {
        fprintf(stderr, "loadgen: out of memory for the upload frames\n");
        exit(1);
    }
    uv_timer_init(loop, &tick_timer);
    uv_timer_init(loop, &rate_timer);
    uv_timer_init(loop, &progress_timer);
    static uv_signal_t sig;
    uv_signal_init(loop, &sig);
    uv_signal_start(&sig, on_sigint, SIGINT);
    uv_unref((uv_handle_t *)&sig);
    run_started_ns = lg_now_ns();
    snap(&sec_prev);
    set_phase(PH_SETUP);
    lg.setup_started_ns = lg_now_ns();
    lg_start_more(&lg);
    uv_timer_start(&tick_timer, on_tick, 50, 50);
    uv_timer_start(&progress_timer, on_progress, 1000, 1000);
    uv_run(loop, UV_RUN_DEFAULT);
}

/* {==================================================================
 * connections over several processes (--procs)
 * =================================================================== */

struct child {
    pid_t pid;
    int out_fd;   /* its stdout: the ready line */
    int ctl_fd;   /* closing it tells the child to finish */
    char line[256];
    size_t len;
    int done;
};

static int run_connections_procs(void) {
    struct child *ch = calloc(o.procs, sizeof *ch);
    if (!ch) return 1;
    if (o.pid) rss_before_kib = procstat_rss_kib(o.pid);
    uint64_t t0 = lg_now_ns();
    uint32_t per = o.clients / o.procs, extra = o.clients % o.procs, first = 0;
    for (uint32_t i = 0; i < o.procs; i++) {
        uint32_t n = per + (i < extra ? 1 : 0);
        int out[2], ctl[2];
        if (pipe(out) != 0 || pipe(ctl) != 0) {
            perror("pipe");
            return 1;
        }
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            dup2(out[1], STDOUT_FILENO);
            close(out[0]);
            close(out[1]);
            close(ctl[1]);
            ctl_fd = ctl[0];
            for (uint32_t k = 0; k < i; k++) close(ch[k].ctl_fd), close(ch[k].out_fd);
            run_loop(first, n);
            _exit(failed ? 1 : 0);
        }
        close(out[1]);
        close(ctl[0]);
        ch[i] = (struct child){.pid = pid, .out_fd = out[0], .ctl_fd = ctl[1]};
        first += n;
    }
    /* Wait for every child's ready line, with a bound. */
    uint32_t ready = 0, failed_n = 0, got = 0;
    double setup_max = 0;
    uint64_t deadline = t0 + (uint64_t)((o.setup_timeout_s + 5) * 1e9);
    while (got < o.procs && lg_now_ns() < deadline) {
        struct pollfd pf[64];
        uint32_t map[64], np = 0;
        for (uint32_t i = 0; i < o.procs && np < 64; i++)
            if (!ch[i].done) pf[np] = (struct pollfd){.fd = ch[i].out_fd, .events = POLLIN}, map[np++] = i;
        int pr = poll(pf, np, 1000);
        if (pr <= 0) {
            if (o.pid) fprintf(stderr, "[%s] waiting for %u processes, server_rss=%ldKiB\n", o.label,
                               o.procs - got, procstat_rss_kib(o.pid));
            continue;
        }
        for (uint32_t k = 0; k < np; k++) {
            if (!(pf[k].revents & (POLLIN | POLLHUP))) continue;
            struct child *c = &ch[map[k]];
            ssize_t r = read(c->out_fd, c->line + c->len, sizeof c->line - 1 - c->len);
            if (r > 0) c->len += (size_t)r;
            c->line[c->len] = 0;
            if (r <= 0 || strchr(c->line, '\n')) {
                unsigned rd = 0, fl = 0;
                double st = 0;
                if (sscanf(c->line, "ready=%u failed=%u setup_s=%lf", &rd, &fl, &st) != 3) fl = per + 1;
                ready += rd;
                failed_n += fl;
                if (st > setup_max) setup_max = st;
                c->done = 1;
                got++;
            }
        }
    }
    if (got < o.procs) fail("only %u of %u processes finished their set-up", got, o.procs);
    sleep(1);
    if (o.pid) rss_after_kib = procstat_rss_kib(o.pid);
    hold_cpu_start = server_cpu(NULL);
    fprintf(stderr, "[%s] %u ready, %u failed over %u processes; holding %.0fs\n", o.label, ready, failed_n,
            o.procs, o.hold_s);
    usleep((useconds_t)(o.hold_s * 1e6));
    hold_cpu_end = server_cpu(NULL);
    for (uint32_t i = 0; i < o.procs; i++) close(ch[i].ctl_fd);
    for (uint32_t i = 0; i < o.procs; i++) {
        int st;
        for (int k = 0; k < 100 && waitpid(ch[i].pid, &st, WNOHANG) == 0; k++) usleep(100000);
        if (waitpid(ch[i].pid, &st, WNOHANG) == 0) {
            kill(ch[i].pid, SIGKILL);
            waitpid(ch[i].pid, &st, 0);
        }
        close(ch[i].out_fd);
    }
    if (failed_n) fail("%u of %u clients failed to connect and join", failed_n, o.clients);
    /* The summary, as one process would print it. */
    lg.n_clients = o.clients;
    lg.n_ready = ready;
    lg.n_failed = failed_n;
    lg.setup_started_ns = 1;
    lg.setup_done_ns = 1 + (uint64_t)(setup_max * 1e9);
    printf("procs=%u\n", o.procs);
    print_summary();
    return failed ? 1 : 0;
}

/* {==================================================================
 * Options
 * =================================================================== */

static void usage(void) {
    fprintf(stderr,
            "Usage: loadgen --scenario fanout|inbound|connections [options]\n"
            "  --host H --port P        the server (IPv4; default 127.0.0.1:8000)\n"
            "  --proto socketio|plain   Socket.IO over WebSocket, or the plain /ws protocol\n"
            "  --pid PID                the server's process, for CPU and RSS from /proc\n"
            "  --ports P1,P2,...        several servers (nodes of a cluster): client i connects to\n"
            "                           P[i %% n], so a room's members and its senders spread round-robin\n"
            "  --pids [NAME=]PID,...    more processes whose CPU counts as the server's (summed with\n"
            "                           --pid's, each pid once; e.g. node2=123,redis=456); each one's\n"
            "                           own figure is printed as proc_NAME_cpu_s, _cpu_pct, _share_pct\n"
            "  --server-core N          the core the server is pinned to: its busy share from /proc/stat\n"
            "  --loadgen-core N         the core this process is pinned to, likewise\n"
            "fanout:      --rooms R --members M --senders S [--window W | --rate MSGS_PER_S] --size BYTES\n"
            "             [--uploads U --upload-bytes B --upload-count K --upload-mode base64|binary|mixed]\n"
            "             (U more clients send send_file from the window's start, K files each, one at a\n"
            "             time; mixed: every other uploader sends a binary attachment; socketio only)\n"
            "inbound:     --clients N --window W --size BYTES\n"
            "connections: --clients N --room-size K --hold S [--procs P]\n"
            "common:      --duration S --warmup S --src-addrs K (bind 127.0.0.1..K) --concurrency C\n"
            "             --setup-timeout S --drain-timeout S --label TEXT\n"
            "Summary: key=value lines on stdout; exit 0 when nothing was lost.\n");
}

/* --ports 8001,8002 */
static int parse_ports(const char *v) {
    o.n_ports = 0;
    for (const char *p = v; *p;) {
        char *end;
        long port = strtol(p, &end, 10);
        if (end == p || port < 1 || port > 65535 || (*end && *end != ',') || o.n_ports == LG_MAX_SERVERS) {
            fprintf(stderr, "loadgen: --ports wants up to %d ports separated by commas, not '%s'\n", LG_MAX_SERVERS, v);
            return -1;
        }
        o.ports[o.n_ports++] = (int)port;
        p = *end ? end + 1 : end;
    }
    if (!o.n_ports) return fprintf(stderr, "loadgen: --ports is empty\n"), -1;
    return 0;
}

/* --pids node1=123,node2=456,789: the name is a kv key part, so [A-Za-z0-9_] */
static int parse_pids(const char *v) {
    o.n_watch = 0;
    for (const char *p = v; *p;) {
        const char *item_end = strchr(p, ',');
        size_t len = item_end ? (size_t)(item_end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        struct watched w = {0};
        const char *num = p;
        int bad = o.n_watch == LG_MAX_WATCH;
        if (eq) {
            size_t nl = (size_t)(eq - p);
            bad |= nl == 0 || nl >= sizeof w.name;
            for (size_t k = 0; k < nl && !bad; k++)
                bad |= !(p[k] == '_' || (p[k] >= '0' && p[k] <= '9') || (p[k] >= 'a' && p[k] <= 'z') ||
                         (p[k] >= 'A' && p[k] <= 'Z'));
            if (!bad) memcpy(w.name, p, nl);
            num = eq + 1;
        }
        char *end;
        long pid = strtol(num, &end, 10);
        bad |= end == num || pid < 1 || end != p + len;
        if (bad) {
            fprintf(stderr, "loadgen: --pids wants up to %d [NAME=]PID items separated by commas, not '%s'\n",
                    LG_MAX_WATCH, v);
            return -1;
        }
        w.pid = (int)pid;
        if (!eq) snprintf(w.name, sizeof w.name, "pid%d", w.pid);
        o.watch[o.n_watch++] = w;
        p = item_end ? item_end + 1 : p + len;
    }
    if (!o.n_watch) return fprintf(stderr, "loadgen: --pids is empty\n"), -1;
    return 0;
}

static int parse_opts(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "loadgen: %s needs a value\n", a);
            return -1;
        }
        const char *v = argv[++i];
        char *end = NULL;
        double d = strtod(v, &end);
        int num = end && *end == 0 && end != v;
#define NUM(name, field, min)                                                         \
    if (!strcmp(a, name)) {                                                           \
        if (!num || d < (min)) {                                                      \
            fprintf(stderr, "loadgen: %s wants a number >= %g, not '%s'\n", a, (double)(min), v); \
            return -1;                                                                \
        }                                                                             \
        o.field = d;                                                                  \
        continue;                                                                     \
    }
        if (!strcmp(a, "--scenario")) {
            if (!strcmp(v, "fanout")) o.scenario = SC_FANOUT;
            else if (!strcmp(v, "inbound")) o.scenario = SC_INBOUND;
            else if (!strcmp(v, "connections")) o.scenario = SC_CONNECTIONS;
            else return fprintf(stderr, "loadgen: unknown scenario '%s'\n", v), -1;
            continue;
        }
        if (!strcmp(a, "--proto")) {
            if (!strcmp(v, "socketio") || !strcmp(v, "sio")) o.proto = PROTO_SIO;
            else if (!strcmp(v, "plain") || !strcmp(v, "ws")) o.proto = PROTO_PLAIN;
            else return fprintf(stderr, "loadgen: unknown proto '%s'\n", v), -1;
            continue;
        }
        if (!strcmp(a, "--upload-mode")) {
            if (!strcmp(v, "base64")) o.upload_mode = 0;
            else if (!strcmp(v, "binary")) o.upload_mode = 1;
            else if (!strcmp(v, "mixed")) o.upload_mode = 2;
            else return fprintf(stderr, "loadgen: unknown upload mode '%s'\n", v), -1;
            continue;
        }
        if (!strcmp(a, "--host")) {
            o.host = v;
            continue;
        }
        if (!strcmp(a, "--label")) {
            o.label = v;
            continue;
        }
        if (!strcmp(a, "--ports")) {
            if (parse_ports(v) != 0) return -1;
            continue;
        }
        if (!strcmp(a, "--pids")) {
            if (parse_pids(v) != 0) return -1;
            continue;
        }
        NUM("--port", port, 1)
        NUM("--pid", pid, 0)
        NUM("--server-core", server_core, -1)
        NUM("--loadgen-core", loadgen_core, -1)
        NUM("--rooms", rooms, 1)
        NUM("--members", members, 2)
        NUM("--senders", senders, 1)
        NUM("--window", window, 1)
        NUM("--rate", rate, 0)
        NUM("--size", size, 40)
        NUM("--clients", clients, 1)
        NUM("--room-size", room_size, 1)
        NUM("--duration", duration_s, 0.1)
        NUM("--warmup", warmup_s, 0)
        NUM("--hold", hold_s, 0)
        NUM("--settle", settle_s, 0)
        NUM("--setup-timeout", setup_timeout_s, 1)
        NUM("--drain-timeout", drain_timeout_s, 0.1)
        NUM("--src-addrs", src_addrs, 1)
        NUM("--procs", procs, 1)
        NUM("--concurrency", concurrency, 1)
        NUM("--uploads", uploads, 0)
        NUM("--upload-bytes", upload_bytes, 1)
        NUM("--upload-count", upload_count, 1)
#undef NUM
        fprintf(stderr, "loadgen: unknown option '%s' (see --help)\n", a);
        return -1;
    }
    if (o.senders > o.members) o.senders = o.members;
    if (o.size > 4000) {
        fprintf(stderr, "loadgen: --size is at most 4000 (the server's message.max_length)\n");
        return -1;
    }
    if (o.uploads && (o.scenario != SC_FANOUT || o.proto != PROTO_SIO)) {
        fprintf(stderr, "loadgen: --uploads is for the fanout scenario over Socket.IO\n");
        return -1;
    }
    if (o.upload_bytes > (48u << 20)) {
        fprintf(stderr, "loadgen: --upload-bytes is at most 48 MiB\n");
        return -1;
    }
    if (o.procs > 64) o.procs = 64;
    if (o.src_addrs > 254) o.src_addrs = 254;
    return 0;
}

int main(int argc, char **argv) {
    if (parse_opts(argc, argv) != 0) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* A run never outlives its own plan by much: set-up, phases, drain, plus slack. */
    double budget = o.setup_timeout_s + o.settle_s + o.warmup_s + o.duration_s + o.drain_timeout_s + o.hold_s + 30;
    alarm((unsigned)ceil(budget));

    if (o.scenario == SC_CONNECTIONS && o.procs > 1) return run_connections_procs();

    uint32_t n = o.scenario == SC_FANOUT ? o.rooms * o.members + o.uploads : o.clients;
    if (o.scenario == SC_CONNECTIONS && o.pid) rss_before_kib = procstat_rss_kib(o.pid);
    run_loop(0, n);
    print_summary();
    return failed ? 1 : 0;
}
