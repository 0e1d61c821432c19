#include "metrics.h"

#include "httpd.h"
#include "script.h"
#include "server.h"
#include "sio.h"

static void metric(struct sbuf *b, const char *name, const char *type, const char *help, double value) {
    sbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.15g\n", name, help, name, type, name, value);
}

void metrics_handle_request(struct conn *c, int keep_alive) {
    struct server *srv = c->srv;
    struct script_stats st;
    script_stats(srv->script, &st);
    size_t rooms = 0;
    struct hmap_entry *e;
    for (size_t i = 0; hmap_next(&srv->namespaces, &i, &e);) rooms += ((struct nsp *)e->value)->rooms.count;
    struct sbuf b = {0};
    metric(&b, "space_connections", "gauge", "open TCP connections", (double)srv->n_conns);
    metric(&b, "space_connections_max", "gauge", "the connection limit (--max-connections)",
           (double)srv->admit.max_conns);
    metric(&b, "space_connections_refused_total", "counter", "connections refused past the limit",
           (double)srv->admit.refused_total);
    metric(&b, "space_sessions", "gauge", "Engine.IO and /ws sessions", (double)srv->sessions.count);
    metric(&b, "space_users", "gauge", "distinct connected users", (double)srv->users.count);
    metric(&b, "space_rooms", "gauge", "rooms with at least one member", (double)rooms);
    metric(&b, "space_partial_message_bytes", "gauge", "bytes of partly received WebSocket messages",
           (double)srv->partial_bytes);
    metric(&b, "space_protocol_errors_total", "counter", "connections closed for a protocol violation",
           (double)srv->protocol_errors);
    metric(&b, "space_slow_consumers_closed_total", "counter", "connections closed for falling behind",
           (double)srv->slow_closes);
    metric(&b, "space_scripts_generation", "gauge", "the running script generation", (double)st.generation);
    metric(&b, "space_script_reloads_total", "counter", "successful reloads", (double)st.reloads_ok);
    metric(&b, "space_script_reload_failures_total", "counter", "refused reloads", (double)st.reloads_failed);
    metric(&b, "space_lua_memory_bytes", "gauge", "memory held by the Lua state", (double)st.lua_bytes);
    metric(&b, "space_uptime_seconds", "gauge", "seconds since start",
           (double)(server_wall_ms() - srv->started_ms) / 1000.0);
    httpd_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len, "Cache-Control: no-store\r\n",
                  !keep_alive);
    sbuf_free(&b);
}
