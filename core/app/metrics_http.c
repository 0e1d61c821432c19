#include "metrics_http.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "httpd.h"
#include "metrics.h"
#include "adapter.h"
#include "cluster.h"
#include "history.h"
#include "script.h"
#include "clock.h"
#include "server.h"

static void head(struct sbuf *b, const char *name, const char *type, const char *help) {
    sbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metric(struct sbuf *b, const char *name, const char *type, const char *help, double value) {
    head(b, name, type, help);
    sbuf_printf(b, "%s %.15g\n", name, value);
}

/* One histogram's series; label is `key="value",` or "". */
static void histogram_series(struct sbuf *b, const char *name, const char *label, const struct histogram *h) {
    uint64_t cum = 0;
    for (int i = 0; i <= METRICS_BUCKETS; i++) {
        cum += h->n[i];
        if (i < METRICS_BUCKETS) sbuf_printf(b, "%s_bucket{%sle=\"%g\"} %llu\n", name, label, metrics_buckets[i], (unsigned long long)cum);
        else sbuf_printf(b, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, label, (unsigned long long)cum);
    }
    size_t ll = strlen(label);
    if (ll) sbuf_printf(b, "%s_sum{%.*s} %.15g\n%s_count{%.*s} %llu\n", name, (int)ll - 1, label, h->sum, name,
                        (int)ll - 1, label, (unsigned long long)h->count);
    else sbuf_printf(b, "%s_sum %.15g\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->count);
}

static void process_metrics(struct sbuf *b, const struct server *srv) {
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    unsigned long long utime = 0, stime = 0, rss = 0;
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        char line[1024];
        size_t n = fread(line, 1, sizeof line - 1, f);
        fclose(f);
        line[n] = 0;
        const char *p = strrchr(line, ')'); /* the command name may hold spaces */
        /* after ") ": state(3) ... utime(14) stime(15) ... rss(24) */
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %*u %*u %llu",
                        &utime, &stime, &rss) != 3)
            utime = stime = rss = 0;
    }
    unsigned open_fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        for (struct dirent *e; (e = readdir(d));)
            if (e->d_name[0] != '.') open_fds++;
        closedir(d);
        open_fds--; /* the directory's own descriptor */
    }
    struct rlimit rl = {0, 0};
    getrlimit(RLIMIT_NOFILE, &rl);
    metric(b, "process_cpu_seconds_total", "counter", "user and system CPU time spent, in seconds",
           ticks > 0 ? (double)(utime + stime) / (double)ticks : 0);
    metric(b, "process_resident_memory_bytes", "gauge", "resident memory size in bytes", (double)rss * (double)page);
    metric(b, "process_open_fds", "gauge", "open file descriptors", (double)open_fds);
    metric(b, "process_max_fds", "gauge", "the open-file limit (RLIMIT_NOFILE)", (double)rl.rlim_cur);
    metric(b, "process_start_time_seconds", "gauge", "start time of the process since the epoch, in seconds",
           (double)srv->started_ms / 1000.0);
}

void metrics_handle_request(struct conn *c, int keep_alive) {
    struct server *srv = server_of(c);
    const struct metrics *m = &srv->metrics;
    struct script_stats st;
    script_stats(srv->script, &st);
    size_t rooms = adapter_total_rooms(&srv->sio);
    struct sbuf b = {0};
    metric(&b, "space_connections", "gauge", "open TCP connections", (double)srv->net.n_conns);
    metric(&b, "space_connections_max", "gauge", "the connection limit (--max-connections)",
           (double)srv->net.admit.max_conns);
    metric(&b, "space_connections_refused_total", "counter", "connections refused past the limit",
           (double)srv->net.admit.refused_total);
    metric(&b, "space_sessions", "gauge", "Engine.IO and /ws sessions", (double)srv->eio.sessions.count);
    metric(&b, "space_users", "gauge", "distinct connected users", (double)srv->sio.users.count);
    metric(&b, "space_rooms", "gauge", "rooms with at least one member", (double)rooms);
    metric(&b, "space_partial_message_bytes", "gauge", "bytes of partly received WebSocket messages",
           (double)srv->net.ws.partial_bytes);
    metric(&b, "space_protocol_errors_total", "counter", "connections closed for a protocol violation",
           (double)srv->net.protocol_errors);
    metric(&b, "space_slow_consumers_closed_total", "counter", "connections closed for falling behind",
           (double)srv->net.slow_closes);
    if (srv->cluster) { /* --redis */
        struct cluster_stats cs;
        cluster_stats(srv->cluster, &cs);
        metric(&b, "space_redis_link_up", "gauge", "1 while the cluster's Redis link is up", (double)cs.link_up);
        metric(&b, "space_redis_published_total", "counter", "messages published to the other nodes",
               (double)cs.published);
        metric(&b, "space_redis_publish_failed_total", "counter",
               "messages that could not be published (the link was down)", (double)cs.publish_failed);
        metric(&b, "space_redis_received_total", "counter", "messages received from the other nodes",
               (double)cs.received);
        metric(&b, "space_redis_requests_answered_total", "counter", "requests of other nodes answered",
               (double)cs.requests_answered);
    }
    if (srv->history) {
        struct history_stats hs;
        srv->history->ops->stats(srv->history, &hs);
        metric(&b, "space_history_appended_total", "counter", "messages queued for the room history",
               (double)hs.appended);
        metric(&b, "space_history_written_total", "counter", "messages written to the room history",
               (double)hs.written);
        metric(&b, "space_history_write_errors_total", "counter",
               "messages the room history could not keep (disk full, database locked, file too large)",
               (double)hs.write_errors);
        metric(&b, "space_history_trimmed_total", "counter", "messages removed by history.max_messages or max_age_s",
               (double)hs.trimmed);
        metric(&b, "space_history_pending", "gauge", "messages queued, not yet written", (double)hs.pending);
    }
    metric(&b, "space_scripts_generation", "gauge", "the running script generation", (double)st.generation);
    metric(&b, "space_script_reloads_total", "counter", "successful reloads", (double)st.reloads_ok);
    metric(&b, "space_script_reload_failures_total", "counter", "refused reloads", (double)st.reloads_failed);
    metric(&b, "space_lua_memory_bytes", "gauge", "memory held by the Lua state", (double)st.lua_bytes);
    metric(&b, "space_uptime_seconds", "gauge", "seconds since start",
           (double)(clock_wall_ms() - srv->started_ms) / 1000.0);

    head(&b, "space_events_received_total", "counter",
         "events received from clients, by name (events without a handler: other)");
    for (unsigned i = 0; i < m->n_names; i++)
        sbuf_printf(&b, "space_events_received_total{event=\"%s\"} %llu\n", m->names[i], (unsigned long long)m->events_in[i]);
    head(&b, "space_events_sent_total", "counter", "events sent to clients, one per recipient, by name");
    for (unsigned i = 0; i < m->n_names; i++)
        sbuf_printf(&b, "space_events_sent_total{event=\"%s\"} %llu\n", m->names[i], (unsigned long long)m->events_out[i]);
    metric(&b, "space_fanout_deliveries_total", "counter", "events delivered to room members by broadcasts",
           (double)m->fanout_deliveries);
    metric(&b, "space_received_bytes_total", "counter", "bytes read from client sockets", (double)srv->net.bytes_in);
    metric(&b, "space_sent_bytes_total", "counter", "bytes written to client sockets", (double)srv->net.bytes_out);
    head(&b, "space_handler_errors_total", "counter",
         "calls into Lua that failed, by handler and kind (error, budget, cpu, time, memory)");
    for (unsigned i = 0; i <= METRICS_MAX_ERROR_KEYS; i++)
        if (m->errors[i].kind)
            sbuf_printf(&b, "space_handler_errors_total{handler=\"%s\",kind=\"%s\"} %llu\n", m->errors[i].handler,
                        m->errors[i].kind, (unsigned long long)m->errors[i].n);
    head(&b, "space_handler_duration_seconds", "histogram",
         "time from an event's arrival at its handler to the handler's answer, by event");
    for (unsigned i = 1; i < m->n_names; i++) {
        if (!m->has_handler[i]) continue;
        char label[METRICS_NAME_MAX + 16];
        snprintf(label, sizeof label, "event=\"%s\",", m->names[i]);
        histogram_series(&b, "space_handler_duration_seconds", label, &m->handler_seconds[i]);
    }
    head(&b, "space_event_loop_lag_seconds", "histogram",
         "busy time of each event loop turn (what a new event may wait behind)");
    histogram_series(&b, "space_event_loop_lag_seconds", "", &m->loop_busy);
    head(&b, "space_event_loop_lag_max_seconds", "gauge", "the longest event loop turn since the start");
    sbuf_printf(&b, "space_event_loop_lag_max_seconds %.9f\n", m->loop_busy.max);
    process_metrics(&b, srv);
    httpd_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len, "Cache-Control: no-store\r\n",
                  !keep_alive);
    sbuf_free(&b);
}
