#include "loop_lag.h"

static void on_turn(uv_prepare_t *p) {
    struct loop_lag *lag = p->data;
    uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(p->loop);
    if (lag->last_turn_ns) {
        uint64_t turn = now - lag->last_turn_ns, slept = idle - lag->last_idle_ns;
        histogram_observe(lag->into, (double)(turn > slept ? turn - slept : 0) / 1e9);
    }
    lag->last_turn_ns = now;
    lag->last_idle_ns = idle;
}

void loop_lag_start(struct loop_lag *lag, uv_loop_t *loop, struct histogram *into) {
    lag->into = into;
    lag->last_turn_ns = lag->last_idle_ns = 0;
    uv_loop_configure(loop, UV_METRICS_IDLE_TIME);
    uv_prepare_init(loop, &lag->turn_hook);
    lag->turn_hook.data = lag;
    uv_prepare_start(&lag->turn_hook, on_turn);
    uv_unref((uv_handle_t *)&lag->turn_hook);
}
