#define _GNU_SOURCE /* gettid, for a timer signal to this thread */
#include "script.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cjson_guard.h"
#include "json_lua.h"
#include "json_str.h"
#include "jwt.h"
#include "log.h"
#include "server.h"
#include "sio.h"
#include "sio_packet.h"
#include "lua_schema.h"
#include "pattern_cost.h"
#include "sandbox.h"
#include "user.h"
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define HOOK_EVERY_INSTRUCTIONS 1000
#define WATCH_TICK_NS (1000 * 1000)       /* the late hook's timer period: 1 ms */
#define WATCH_IDLE_TICKS 100              /* ticks without a call before the timer stops */
#define LATE_HOOK_MIN_BUDGET 5000000      /* smaller budgets are counted from the first instruction */
#define POOL_STEP 16                      /* the small-block pool's size classes: 16, 32, ... */
#define POOL_MAX 256                      /* the largest block it keeps */
#define POOL_KEEP 512                     /* free blocks it keeps per class */
#define POOL_CLASSES (POOL_MAX / POOL_STEP)
#define HANDLER_TIME_BUDGET_NS (2000ull * 1000 * 1000) /* a backstop; the instruction budget comes first */
#define EXEMPT_FREE_BYTES (1024 * 1024) /* frees this large are timed apart from the call */
#define SCRIPT_MAX_FILE_BYTES (1024 * 1024)

struct script_host {
    struct server *srv;
    lua_State *L;
    char *dir;             /* the scripts directory */
    size_t mem_used;       /* bytes the Lua state holds */
    size_t mem_limit;      /* the cap */
    int gen_ref;           /* registry ref of the current generation {app, plugins} */
    char *plugins_dir;     /* the plugins directory */
    unsigned files;        /* files the current generation loaded */
    uint64_t generation;
    uint64_t reloads_ok, reloads_failed;
    double last_load_ms;
    char last_error[1024]; /* of the last failed reload; "" after a success */
    int64_t budget_left;   /* instructions the running call may still run */
    uint64_t deadline_ns;  /* and the time it must end by */
    size_t call_allocated; /* bytes it allocated so far */
    void *pool[POOL_CLASSES];       /* free small blocks by class, linked through their first word */
    unsigned pool_n[POOL_CLASSES];
    const struct label *running; /* what is running, NULL between calls */
    /* The late hook (see below); the volatile fields are shared with the
     * timer's signal handler, which runs on this thread. */
    int timer_ok;                   /* the timer exists (the watchdog runs on it) */
    int late_hook;                  /* 1: the budget hook waits for the timer */
    timer_t timer;
    volatile sig_atomic_t depth;    /* calls in progress (nested ones included) */
    volatile sig_atomic_t seq;      /* outermost calls started (wraps) */
    volatile sig_atomic_t seen;     /* seq at the previous tick */
    volatile sig_atomic_t hooked;   /* the hook is set for the running call */
    volatile sig_atomic_t ticking;  /* the timer runs */
    volatile sig_atomic_t idle_ticks;
    uint64_t stuck_since_ns;        /* when the watchdog first saw the running call (its own field) */
    volatile sig_atomic_t pressed;  /* it set the hook on every instruction for that call */
    uint64_t cpu_limit_ns;          /* CPU time the running call may take; 0: the backstop only (loads) */
    uint64_t cpu_since_ns;          /* this thread's CPU clock when the watchdog first saw the call */
    volatile sig_atomic_t over_cpu; /* the running call used up its CPU time */
    enum metrics_failure limit_hit; /* the limit that ended the running call, for /metrics */
    volatile sig_atomic_t exempt;   /* depth of the server's own work for the call (script_cpu_exempt_*) */
    uint64_t exempt_since_ns;       /* this thread's CPU clock when the outermost such work began */
    volatile sig_atomic_t exempt_us; /* CPU time of that work so far in this call, not counted */
    char oom_where[160];   /* file:line of the allocation the caps refused in this call */
};

/* Names a call in the log line of its failure: the parts are joined only
 * when it failed, so that the calls that succeed (one per event and per
 * plugin hook) format nothing. name, when set, is the stack index of a
 * table whose field "name" stands in for c (a plugin's name, looked up
 * only then). */
struct label {
    const char *a;
    int a_len;                 /* of a (%.*s: INT_MAX for the whole string) */
    const char *b, *c, *d, *e; /* c is cut at 100 bytes */
    int name;
};
#define LABEL(s) (&(struct label){(s), INT_MAX, "", "", "", "", 0})

static struct script_host *host_of(lua_State *L) { return api_server(L)->script; }
static void run_plugin_hook_reload(struct script_host *h);

/* {==================================================================
 * Limits: memory cap and instruction budget
 * =================================================================== */

/* The small-block pool. Lua allocates and frees a dozen small objects per
 * event, and frees them in batches when it collects: more than malloc's
 * per-thread cache holds, so most went through the slow paths. A block of
 * n <= POOL_MAX bytes always has the room of its class (n rounded up to
 * POOL_STEP), so that any block of the class can serve the next request. */
static size_t pool_class(size_t n) { return (n - 1) / POOL_STEP; }

static void *pool_get(struct script_host *h, size_t n) {
    size_t c = pool_class(n);
    void *p = h->pool[c];
    if (!p) return malloc((c + 1) * POOL_STEP);
    h->pool[c] = *(void **)p;
    h->pool_n[c]--;
    return p;
}

static void pool_put(struct script_host *h, void *p, size_t n) {
    size_t c = pool_class(n);
    if (n == 0 || n > POOL_MAX || h->pool_n[c] >= POOL_KEEP) {
        free(p);
        return;
    }
    *(void **)p = h->pool[c];
    h->pool[c] = p;
    h->pool_n[c]++;
}

static void pool_free(struct script_host *h) {
    for (size_t c = 0; c < POOL_CLASSES; c++) {
        while (h->pool[c]) {
            void *p = h->pool[c];
            h->pool[c] = *(void **)p;
            free(p);
        }
        h->pool_n[c] = 0;
    }
}

/* realloc for Lua's blocks (old bytes at ptr, 0 for a new one), through the pool. */
static void *pool_realloc(struct script_host *h, void *ptr, size_t old, size_t nsize) {
    if (!ptr) return nsize <= POOL_MAX ? pool_get(h, nsize) : malloc(nsize);
    if (old <= POOL_MAX && nsize <= POOL_MAX) {
        if (pool_class(old) == pool_class(nsize)) return ptr; /* it has the room */
        void *p = pool_get(h, nsize);
        if (!p) return NULL;
        memcpy(p, ptr, old < nsize ? old : nsize);
        pool_put(h, ptr, old);
        return p;
    }
    /* Either side large: malloc's block, at the class's room when it becomes small. */
    return realloc(ptr, nsize <= POOL_MAX ? (pool_class(nsize) + 1) * POOL_STEP : nsize);
}

/* A refused allocation ends in "not enough memory", which Lua raises with
 * no position and no message handler: the line of the innermost Lua
 * function running is noted here, for the log line of the call's failure.
 * Reading the stack allocates nothing, so it is safe from the allocator. */
static void *refused_here(struct script_host *h, const char *cap) {
    if (!h->running) return NULL;
    lua_Debug ar;
    for (int level = 0; lua_getstack(h->L, level, &ar); level++) {
        if (lua_getinfo(h->L, "Sl", &ar) && ar.currentline > 0) {
            snprintf(h->oom_where, sizeof h->oom_where, "%s:%d: not enough memory (%s)", ar.short_src,
                     ar.currentline, cap);
            return NULL;
        }
    }
    /* No Lua function running (a stack being shrunk): keep what was noted. */
    if (!h->oom_where[0]) snprintf(h->oom_where, sizeof h->oom_where, "not enough memory (%s)", cap);
    return NULL;
}

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    struct script_host *h = ud;
    size_t old = ptr ? osize : 0; /* with ptr NULL, osize is a type tag */
    if (nsize == 0) {
        /* Freeing a client's big payload (an upload's string, when the
         * collector gets to it in whatever call runs then) is the server's
         * work, not that call's: not counted against --lua-cpu-ms. */
        int exempt = old >= EXEMPT_FREE_BYTES && h->running;
        if (exempt) script_cpu_exempt_begin(h);
        if (ptr) pool_put(h, ptr, old);
        if (exempt) script_cpu_exempt_end(h);
        h->mem_used -= old;
        return NULL;
    }
    /* Only growth may fail: scripts can catch out-of-memory, the cap holds anyway. */
    if (nsize > old) {
        if (h->mem_used - old + nsize > h->mem_limit) return refused_here(h, "the memory cap");
        /* One call may also only allocate so much in all: a memory bomb
         * stops after a bounded amount of work, not when memory is full. */
        if (h->running && (h->call_allocated += nsize - old) > h->mem_limit / 4)
            return refused_here(h, "a quarter of the memory cap in one call");
    }
    void *p = pool_realloc(h, ptr, old, nsize);
    if (p) h->mem_used = h->mem_used - old + nsize;
    return p;
}

static void budget_hook(lua_State *L, lua_Debug *ar) {
    struct script_host *h = host_of(L);
    h->budget_left -= HOOK_EVERY_INSTRUCTIONS;
    /* Time too: C calls between hooks (string.rep, patterns) can be slow. */
    int over_time = uv_hrtime() > h->deadline_ns, over_cpu = h->over_cpu;
    if (h->budget_left > 0 && !over_time && !over_cpu) return;
    /* Fire again on the very next instruction, so that a script's own
     * pcall that swallowed this error cannot keep running. */
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
    lua_getinfo(L, "Sl", ar);
    if (ar->currentline > 0) lua_pushfstring(L, "%s:%d: ", ar->short_src, ar->currentline);
    else lua_pushliteral(L, "");
    h->limit_hit = over_cpu ? METRICS_FAIL_CPU : over_time ? METRICS_FAIL_TIME : METRICS_FAIL_BUDGET;
    if (over_cpu)
        lua_pushfstring(L, "CPU time limit exceeded (%d ms)", (int)(h->cpu_limit_ns / 1000000));
    else if (over_time)
        lua_pushfstring(L, "time budget exceeded (%d ms)", (int)(HANDLER_TIME_BUDGET_NS / 1000000));
    else
        lua_pushfstring(L, "instruction budget exceeded (%I instructions)", (lua_Integer)api_server(L)->cfg->lua_budget);
    lua_concat(L, 2);
    lua_error(L);
}

/* Starts the budgets of one call into Lua. */
static void budget_start(struct script_host *h) {
    h->budget_left = h->srv->cfg->lua_budget;
    h->deadline_ns = uv_hrtime() + HANDLER_TIME_BUDGET_NS;
    h->cpu_limit_ns = (uint64_t)h->srv->cfg->lua_cpu_ms * 1000000u;
    h->over_cpu = 0;
    h->limit_hit = METRICS_FAIL_ERROR;
    h->exempt = 0; /* also after a memory error raised inside exempt work */
    h->exempt_us = 0;
    h->call_allocated = 0;
    h->oom_where[0] = 0;
}

/* }================================================================== */

/* {==================================================================
 * The late hook
 *
 * While a count hook is set, Lua 5.4 runs every VM instruction through
 * luaG_traceexec: that was a third of the cost of the Lua code run per
 * event. A call that ends within a millisecond cannot run over a budget
 * of millions of instructions, so the hook is set only once a call has
 * run that long: a timer ticks every millisecond while calls are being
 * made (it stops after WATCH_IDLE_TICKS idle ticks) and signals this
 * thread; the handler sets the hook when it finds the same outermost
 * call running as at the previous tick. lua_sethook is made to be called
 * from a signal handler (lua.c does it for Ctrl-C), and the VM rereads
 * its trap at every jump, so a loop that calls nothing stops too. The
 * budget then counts from there: a call may run 1-2 ms more than it
 * allows. Budgets under LATE_HOOK_MIN_BUDGET, where that would be most of
 * it, and systems without thread-directed timers count from the first
 * instruction, as before. Coroutines have their own hook, which the
 * signal cannot reach: scripts get coroutine.create and wrap that hook a
 * new coroutine from its first instruction (co_hooked).
 * =================================================================== */

#define WATCH_SIGNO (SIGRTMIN + 7) /* above what glibc and libuv use */

/* {------------------------------------------------------------------
 * The watchdog. The same ticks count how long one outermost call runs.
 * The budget hook ends a call at the latest at HANDLER_TIME_BUDGET_NS;
 * one still running a second later is where no hook can reach it (a C
 * function, or a path where Lua keeps hooks off that the guards above
 * missed). It cannot be unwound from a signal handler, and the loop (and
 * with it SIGTERM) waits for it: the watchdog logs the handler and exits
 * with status 3, for a supervisor to restart the server. Everything here
 * is async-signal-safe: write(2) and hand-made formatting.
 * ------------------------------------------------------------------- */

#define WATCHDOG_NS (HANDLER_TIME_BUDGET_NS + 1000ull * 1000 * 1000) /* the backstop, then a second */
#define WATCHDOG_EXIT_STATUS 3

struct line {
    char p[512];
    size_t n;
};

static void put(struct line *l, const char *s, size_t max) {
    for (size_t i = 0; s && i < max && s[i] && l->n < sizeof l->p - 1; i++) l->p[l->n++] = s[i];
}

static void put_num(struct line *l, unsigned long v, int width) {
    char d[24];
    int k = 0;
    do d[k++] = (char)('0' + v % 10), v /= 10;
    while (v && k < (int)sizeof d);
    while (k < width && k < (int)sizeof d) d[k++] = '0';
    while (k > 0 && l->n < sizeof l->p - 1) l->p[l->n++] = d[--k];
}

/* The log's time stamp (UTC), from the days since 1970 to a civil date. */
static void put_time(struct line *l) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long days = (long)(ts.tv_sec / 86400), secs = (long)(ts.tv_sec % 86400);
    long z = days + 719468, era = z / 146097, doe = z - era * 146097;
    long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    long day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
    long year = yoe + era * 400 + (month <= 2);
    put_num(l, (unsigned long)year, 4), put(l, "-", 1), put_num(l, (unsigned long)month, 2), put(l, "-", 1);
    put_num(l, (unsigned long)day, 2), put(l, "T", 1), put_num(l, (unsigned long)(secs / 3600), 2), put(l, ":", 1);
    put_num(l, (unsigned long)(secs / 60 % 60), 2), put(l, ":", 1), put_num(l, (unsigned long)(secs % 60), 2);
    put(l, ".", 1), put_num(l, (unsigned long)(ts.tv_nsec / 1000000), 3), put(l, "Z", 1);
}

static void watchdog_exit(struct script_host *h, uint64_t ran_ns) {
    struct line l = {.n = 0};
    put_time(&l);
    put(&l, " error lua: watchdog: handler=", SIZE_MAX);
    const struct label *w = h->running;
    if (w) {
        put(&l, w->a, (size_t)w->a_len), put(&l, w->b, SIZE_MAX);
        put(&l, w->c ? w->c : "?", 100), put(&l, w->d, SIZE_MAX), put(&l, w->e, SIZE_MAX);
    } else {
        put(&l, "?", 1);
    }
    put(&l, " ran ", SIZE_MAX);
    put_num(&l, (unsigned long)(ran_ns / 1000000), 1);
    put(&l, " ms where no hook can stop it (a C function, or hooks off); exiting with status 3\n", SIZE_MAX);
    ssize_t r = write(STDERR_FILENO, l.p, l.n);
    (void)r;
    _exit(WATCHDOG_EXIT_STATUS);
}

/* }------------------------------------------------------------------ */

/* This thread's CPU clock (clock_gettime is async-signal-safe). */
static uint64_t thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Nested sections (a big free inside an upload's decoding) count once:
 * the outermost one measures and credits. */
void script_cpu_exempt_begin(struct script_host *h) {
    if (h->exempt++ == 0) h->exempt_since_ns = thread_cpu_ns();
}

void script_cpu_exempt_end(struct script_host *h) {
    if (h->exempt <= 0 || --h->exempt > 0) return;
    uint64_t us = (uint64_t)h->exempt_us + (thread_cpu_ns() - h->exempt_since_ns) / 1000u;
    h->exempt_us = (sig_atomic_t)(us > INT32_MAX ? INT32_MAX : us);
}

/* The timer carries its host in the signal's value: no global needed. */
static void watch_tick(int sig, siginfo_t *si, void *uc) {
    (void)sig, (void)uc;
    struct script_host *h = si->si_value.sival_ptr;
    if (!h) return;
    int saved_errno = errno;
    if (h->depth > 0) {
        h->idle_ticks = 0;
        if (h->seq == h->seen) {
            if (h->late_hook && !h->hooked) {
                h->hooked = 1;
                lua_sethook(h->L, budget_hook, LUA_MASKCOUNT, HOOK_EVERY_INSTRUCTIONS);
            }
            /* Time, not ticks: a busy machine merges timer signals. */
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
            uint64_t ran = now - h->stuck_since_ns;
            /* Past the backstop: the budget hook on the very next
             * instruction, for a loop of slow C calls between two hooks. */
            if (ran >= HANDLER_TIME_BUDGET_NS && !h->pressed) {
                h->pressed = 1;
                lua_sethook(h->L, budget_hook, LUA_MASKCOUNT, 1);
            }
            /* The loop waits for the call: past its CPU time (not wall
             * time, which a busy machine stretches), the hook ends it on
             * the next instruction. */
            if (h->cpu_limit_ns && !h->over_cpu && !h->exempt &&
                thread_cpu_ns() - h->cpu_since_ns >= h->cpu_limit_ns + (uint64_t)h->exempt_us * 1000u) {
                h->over_cpu = 1;
                h->pressed = 1;
                lua_sethook(h->L, budget_hook, LUA_MASKCOUNT, 1);
            }
            if (ran >= WATCHDOG_NS) watchdog_exit(h, ran);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            h->pressed = 0;
            h->stuck_since_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
            h->cpu_since_ns = thread_cpu_ns(); /* a tick late at most: no clock read per call */
        }
        h->seen = h->seq;
    } else if (++h->idle_ticks >= WATCH_IDLE_TICKS) {
        struct itimerspec off = {{0, 0}, {0, 0}};
        timer_settime(h->timer, 0, &off, NULL);
        h->ticking = 0;
    }
    errno = saved_errno;
}

/* Sets up the timer for h; h->timer_ok and late_hook stay 0 when it cannot be. */
static void watch_init(struct script_host *h) {
#if defined(__linux__) && defined(SIGEV_THREAD_ID)
    int signo = WATCH_SIGNO;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = watch_tick;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = signo;
    sev._sigev_un._tid = gettid(); /* this thread: the one that runs Lua */
    sev.sigev_value.sival_ptr = h;
    if (sigaction(signo, &sa, NULL) != 0 || timer_create(CLOCK_MONOTONIC, &sev, &h->timer) != 0) {
        log_warn("lua", "no timer for the late budget hook and the watchdog (%s): every instruction is counted",
                 strerror(errno));
        return;
    }
    h->timer_ok = 1;
    h->late_hook = h->srv->cfg->lua_budget >= LATE_HOOK_MIN_BUDGET;
#else
    (void)h;
#endif
}

/* coroutine.create and coroutine.wrap as scripts have them: the original
 * (upvalue 1), then the budget hook on the new thread. A thread copies the
 * hook of its creator only when it is made, and the late hook is set on
 * the main thread alone: a coroutine made early in a call would run
 * unhooked for good. */
static int co_hooked(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION); /* before the original: its error would not name 'create' */
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    lua_State *co = lua_tothread(L, -1);
    if (!co && lua_getupvalue(L, -1, 1)) { /* wrap: the thread is its function's upvalue */
        co = lua_tothread(L, -1);
        lua_pop(L, 1);
    }
    if (co) lua_sethook(co, budget_hook, LUA_MASKCOUNT, HOOK_EVERY_INSTRUCTIONS);
    return 1;
}

/* Puts co_hooked in place of create and wrap in the environment's coroutine table. */
static void hook_coroutines(lua_State *L, int env) {
    if (lua_getfield(L, env, "coroutine") == LUA_TTABLE) {
        static const char *const names[] = {"create", "wrap"};
        for (int i = 0; i < 2; i++) {
            lua_getfield(L, -1, names[i]);
            lua_pushcclosure(L, co_hooked, 1);
            lua_setfield(L, -2, names[i]);
        }
    }
    lua_pop(L, 1);
}

static void watch_free(struct script_host *h) {
    if (!h->timer_ok) return;
    timer_delete(h->timer);
    /* A tick already queued must not reach the freed host: ignoring the
     * signal discards it (POSIX), and none comes after timer_delete. */
    signal(WATCH_SIGNO, SIG_IGN);
    h->timer_ok = h->late_hook = 0;
}

/* Before and after a call: the outermost call starts the timer when it
 * is not running; when it ends, it clears the hook if the timer set it. */
static void watch_enter(struct script_host *h) {
    lua_State *L = h->L;
    h->depth++;
    if (!h->late_hook) lua_sethook(L, budget_hook, LUA_MASKCOUNT, HOOK_EVERY_INSTRUCTIONS);
    if (h->depth > 1) return;
    h->seq++;
    if (h->timer_ok && !h->ticking) {
        h->ticking = 1;
        h->idle_ticks = 0;
        struct itimerspec every = {{0, WATCH_TICK_NS}, {0, WATCH_TICK_NS}};
        timer_settime(h->timer, 0, &every, NULL);
    }
}

static void watch_leave(struct script_host *h) {
    lua_State *L = h->L;
    h->depth--;
    if (!h->late_hook) {
        /* Back in an outer call: its hook again (the budget left is shared). */
        if (h->depth > 0) lua_sethook(L, budget_hook, LUA_MASKCOUNT, HOOK_EVERY_INSTRUCTIONS);
        else lua_sethook(L, NULL, 0, 0);
        return;
    }
    if (h->depth == 0 && (h->hooked || h->pressed)) {
        lua_sethook(L, NULL, 0, 0);
        h->hooked = 0;
    }
}

/* {==================================================================
 * What the hook cannot reach
 *
 * Lua turns hooks off while a hook or a finalizer runs, and a C function
 * runs to its end between two hooks. So: xpcall's message handler, which
 * Lua runs before unwinding (inside the hook when the budget raised),
 * runs here as a plain call after unwinding; metatables with __gc or
 * __close are refused; a coroutine that died of an error (perhaps inside
 * the hook, where hooks stay off) has its to-be-closed values left alone;
 * the pattern functions first bound their work (pattern_cost.c) and count
 * it against the budget. The watchdog (watch_tick) ends what is left.
 * =================================================================== */

static int xpcall_finish(lua_State *L, int status, lua_KContext base) {
    if (status == LUA_OK || status == LUA_YIELD) {
        lua_pushboolean(L, 1);
        lua_insert(L, (int)base + 1);
        return lua_gettop(L) - (int)base;
    }
    lua_pushvalue(L, 2); /* the message handler, on the error object */
    lua_insert(L, -2);
    lua_pcall(L, 1, 1, 0);
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
}

/* xpcall(f, msgh, ...): pcall, then msgh(error) as an ordinary call. */
static int xpcall_bounded(lua_State *L) {
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 1);
    for (int i = 3; i <= n; i++) lua_pushvalue(L, i);
    return xpcall_finish(L, lua_pcallk(L, n - 2, LUA_MULTRET, 0, n, xpcall_finish), n);
}

/* Calls upvalue 1 (the original function) with the arguments. */
static int call_original(lua_State *L) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static int setmetatable_guarded(lua_State *L) {
    if (lua_type(L, 2) == LUA_TTABLE) {
        static const char *const refused[] = {"__gc", "__close"};
        for (int i = 0; i < 2; i++) {
            lua_pushstring(L, refused[i]);
            if (lua_rawget(L, 2) != LUA_TNIL)
                return luaL_error(L, "setmetatable: metatables with %s are not allowed in scripts", refused[i]);
            lua_pop(L, 1);
        }
    }
    return call_original(L);
}

/* Whether the coroutine at idx died of an error. */
static int died_of_error(lua_State *L, int idx) {
    lua_State *co = lua_tothread(L, idx);
    return co && lua_status(co) != LUA_OK && lua_status(co) != LUA_YIELD;
}

/* coroutine.close: false and the error of a coroutine that died of one,
 * without running its to-be-closed values (hooks may be off in it). */
static int co_close_guarded(lua_State *L) {
    if (!died_of_error(L, 1)) return call_original(L);
    lua_State *co = lua_tothread(L, 1);
    lua_pushboolean(L, 0);
    if (lua_gettop(co) > 0) {
        lua_pushvalue(co, -1);
        lua_xmove(co, L, 1);
    } else {
        lua_pushnil(L);
    }
    return 2;
}

/* The function coroutine.wrap returns (upvalues: the thread, resume):
 * Lua's own closes the to-be-closed values of a coroutine that failed. */
static int co_wrapped(lua_State *L) {
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_rotate(L, 1, 2);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    if (lua_toboolean(L, 1)) return lua_gettop(L) - 1;
    lua_settop(L, 2);
    if (lua_type(L, 2) == LUA_TSTRING && died_of_error(L, lua_upvalueindex(1))) {
        luaL_where(L, 1);
        lua_insert(L, 2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

/* coroutine.wrap(f) (upvalues: create, resume, as scripts have them). */
static int co_wrap_guarded(lua_State *L) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushcclosure(L, co_wrapped, 2);
    return 1;
}

/* Whether the value at idx is the name of a metamethod that runs where
 * the hook does not (a finalizer) or that scripts may not have. */
static int is_unhooked_event(lua_State *L, int idx) {
    if (lua_type(L, idx) != LUA_TSTRING) return 0;
    const char *k = lua_tostring(L, idx);
    return strcmp(k, "__gc") == 0 || strcmp(k, "__close") == 0;
}

/* rawset(t, k, v): not "__gc" or "__close", into a metatable the host
 * shares (where a finalizer would take effect) or any other table. */
static int rawset_guarded(lua_State *L) {
    if (is_unhooked_event(L, 2)) return luaL_error(L, "rawset: '%s' keys are not allowed in scripts", lua_tostring(L, 2));
    return call_original(L);
}

/* __newindex of the host's shared metatables (array, binary, conn): the C
 * side sets them on new values, and one with a __gc added by a script
 * would make those values run it as a finalizer, hooks off. */
static int shared_mt_newindex(lua_State *L) {
    if (is_unhooked_event(L, 2))
        return luaL_error(L, "the metatable of the host's values may not get '%s'", lua_tostring(L, 2));
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 0;
}

static void guard_shared_metatables(lua_State *L) {
    static const char *const names[] = {JSON_ARRAY_MT, JSON_BINARY_MT, API_CONN_MT};
    for (int i = 0; i < 3; i++) {
        int top = lua_gettop(L);
        if (luaL_getmetatable(L, names[i]) == LUA_TTABLE && !lua_getmetatable(L, -1)) {
            lua_createtable(L, 0, 2);
            lua_pushcfunction(L, shared_mt_newindex);
            lua_setfield(L, -2, "__newindex");
            lua_pushliteral(L, "locked");
            lua_setfield(L, -2, "__metatable"); /* so that setmetatable(mt, nil) cannot undo it */
            lua_setmetatable(L, -2);
        }
        lua_settop(L, top);
    }
}

/* Puts the guarded functions into the environment at env. */
static void guard_env(lua_State *L, int env) {
    lua_pushcfunction(L, xpcall_bounded);
    lua_setfield(L, env, "xpcall");
    lua_getfield(L, env, "setmetatable");
    lua_pushcclosure(L, setmetatable_guarded, 1);
    lua_setfield(L, env, "setmetatable");
    lua_getfield(L, env, "rawset");
    lua_pushcclosure(L, rawset_guarded, 1);
    lua_setfield(L, env, "rawset");
    if (lua_getfield(L, env, "coroutine") == LUA_TTABLE) {
        lua_getfield(L, -1, "close");
        lua_pushcclosure(L, co_close_guarded, 1);
        lua_setfield(L, -2, "close");
        lua_getfield(L, -1, "create");
        lua_getfield(L, -2, "resume");
        lua_pushcclosure(L, co_wrap_guarded, 2);
        lua_setfield(L, -2, "wrap");
    }
    lua_pop(L, 1);
}

/* string.find, match, gmatch, gsub as scripts have them: the original
 * (upvalue 1) when the bound on its work fits in the budget left, which
 * it then takes from (upvalue 2: the enum pattern_call, 3: the name). */
static int pattern_bounded(lua_State *L) {
    int t1 = lua_type(L, 1), t2 = lua_type(L, 2);
    if ((t1 == LUA_TSTRING || t1 == LUA_TNUMBER) && (t2 == LUA_TSTRING || t2 == LUA_TNUMBER)) {
        struct script_host *h = host_of(L);
        enum pattern_call call = (enum pattern_call)lua_tointeger(L, lua_upvalueindex(2));
        size_t n, p_len;
        const char *s = lua_tolstring(L, 1, &n), *p = lua_tolstring(L, 2, &p_len);
        int isnum = 0;
        lua_Integer init = call == PATTERN_GSUB ? 1 : lua_tointegerx(L, 3, &isnum);
        if (!isnum) init = 1;
        int plain = lua_toboolean(L, 4) && strcmp(lua_tostring(L, lua_upvalueindex(3)), "find") == 0;
        double left = h->running ? (double)h->budget_left : (double)h->srv->cfg->lua_budget;
        double cost = pattern_cost(call, s, n, p, p_len, init, plain, left);
        if (cost > left) {
            /* Measuring the subject took time too: a refusal spends what
             * was left, so that a loop of caught refusals ends soon. */
            h->budget_left = 0;
            char why[160]; /* lua_pushfstring has no %g */
            snprintf(why, sizeof why, "up to %.3g steps, over the %.3g instructions left of the budget", cost,
                     left > 0 ? left : 0);
            return luaL_error(L, "string.%s: pattern too costly for a subject of %I bytes (%s)",
                              lua_tostring(L, lua_upvalueindex(3)), (lua_Integer)n, why);
        }
        h->budget_left -= (int64_t)cost;
    }
    return call_original(L);
}

/* Library functions whose C loop runs as long as an argument says, not as
 * long as the memory it takes: string.rep("", 2^40) and
 * table.move({}, 1, 2^50, 1, {}) copy nothing and never end, insert and
 * remove shift as far as __len claims. Each takes its loop's length from
 * the budget first (upvalue 1: the original, 2: which). */
enum { LOOP_REP, LOOP_MOVE, LOOP_INSERT, LOOP_REMOVE, LOOP_SORT, LOOP_CONCAT, LOOP_UNPACK, LOOP_BYTE };

/* The integer argument at idx, or dflt when absent or not one. */
static lua_Integer int_arg(lua_State *L, int idx, lua_Integer dflt) {
    int ok = 0;
    lua_Integer v = lua_tointegerx(L, idx, &ok);
    return ok ? v : dflt;
}

static double span(lua_Integer from, lua_Integer to) { return to < from ? 0 : (double)to - (double)from + 1; }

static int loop_bounded(lua_State *L) {
    double steps = 0;
    int table = lua_type(L, 1) == LUA_TTABLE;
    switch ((int)lua_tointeger(L, lua_upvalueindex(2))) {
    case LOOP_REP: /* copies of something are bounded by the memory cap; of nothing, not */
    {
        size_t l = 1, lsep = 0;
        if (lua_isstring(L, 1)) lua_tolstring(L, 1, &l);
        if (lua_isstring(L, 3)) lua_tolstring(L, 3, &lsep);
        if (l + lsep == 0) steps = (double)int_arg(L, 2, 0) / 16;
        break;
    }
    case LOOP_MOVE: steps = span(int_arg(L, 2, 1), int_arg(L, 3, 0)); break;
    case LOOP_INSERT:
        if (table && lua_gettop(L) == 3) steps = span(int_arg(L, 2, 1), luaL_len(L, 1) + 1);
        break;
    case LOOP_REMOVE:
        if (table) {
            lua_Integer n = luaL_len(L, 1);
            steps = span(int_arg(L, 2, n), n);
        }
        break;
    case LOOP_SORT:
        if (table) {
            double n = (double)lua_rawlen(L, 1);
            steps = n * (1 + log2(n + 1));
        }
        break;
    case LOOP_UNPACK: /* pushes j - i + 1 values (up to Lua's stack limit) */
        if (!lua_isnoneornil(L, 3)) steps = span(int_arg(L, 2, 1), int_arg(L, 3, 0));
        break;
    case LOOP_BYTE: /* s:byte(i, j): j - i + 1 values, negative from the end, at most #s */
        if (lua_isstring(L, 1) && !lua_isnoneornil(L, 3)) {
            size_t l;
            lua_tolstring(L, 1, &l);
            lua_Integer i = int_arg(L, 2, 1), j = int_arg(L, 3, 0);
            if (i < 0) i = (lua_Integer)l + i + 1;
            if (j < 0) j = (lua_Integer)l + j + 1;
            steps = span(i < 1 ? 1 : i, j > (lua_Integer)l ? (lua_Integer)l : j);
        }
        break;
    case LOOP_CONCAT:
        if (table) steps = span(int_arg(L, 3, 1), lua_isnoneornil(L, 4) ? (lua_Integer)lua_rawlen(L, 1) : int_arg(L, 4, 0));
        break;
    }
    if (steps > 0) {
        struct script_host *h = host_of(L);
        double left = h->running ? (double)h->budget_left : (double)h->srv->cfg->lua_budget;
        if (steps > left) {
            char why[160];
            snprintf(why, sizeof why, "%.3g steps, over the %.3g instructions left of the budget", steps,
                     left > 0 ? left : 0);
            return luaL_error(L, "%s: too long a loop (%s)", lua_tostring(L, lua_upvalueindex(3)), why);
        }
        h->budget_left -= (int64_t)steps;
    }
    return call_original(L);
}

static void bound_loops(lua_State *L) {
    static const struct {
        const char *lib, *name;
        int which;
    } loops[] = {{"string", "rep", LOOP_REP},       {"table", "move", LOOP_MOVE}, {"table", "insert", LOOP_INSERT},
                 {"table", "remove", LOOP_REMOVE}, {"table", "sort", LOOP_SORT}, {"table", "concat", LOOP_CONCAT},
                 {"table", "unpack", LOOP_UNPACK}, {"string", "byte", LOOP_BYTE}};
    for (size_t i = 0; i < sizeof loops / sizeof *loops; i++) {
        lua_getglobal(L, loops[i].lib);
        lua_getfield(L, -1, loops[i].name);
        lua_pushinteger(L, loops[i].which);
        lua_pushfstring(L, "%s.%s", loops[i].lib, loops[i].name);
        lua_pushcclosure(L, loop_bounded, 3);
        lua_setfield(L, -2, loops[i].name);
        lua_pop(L, 1);
    }
}

/* Bounds the functions in the string library itself: strings' methods
 * come from it, not from the copy in the scripts' environment. */
static void bound_patterns(lua_State *L) {
    static const char *const names[] = {"find", "match", "gmatch", "gsub"};
    static const enum pattern_call calls[] = {PATTERN_FIND, PATTERN_FIND, PATTERN_GMATCH, PATTERN_GSUB};
    lua_getglobal(L, "string");
    for (int i = 0; i < 4; i++) {
        lua_getfield(L, -1, names[i]);
        lua_pushinteger(L, calls[i]);
        lua_pushstring(L, names[i]);
        lua_pushcclosure(L, pattern_bounded, 3);
        lua_setfield(L, -2, names[i]);
    }
    lua_pop(L, 1);
}

/* }================================================================== */

/* For loading: the message alone, it already says file:line. */
static int msghandler_short(lua_State *L) {
    if (!lua_isstring(L, 1)) lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    return 1;
}

static int msghandler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Calls the function below nargs arguments on the stack, protected and on a
 * budget. Returns 0 with nres results pushed, or -1 with nothing pushed
 * (the error was logged with what and file:line). */
static int call(struct script_host *h, int nargs, int nres, const struct label *what) {
    lua_State *L = h->L;
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, msghandler);
    lua_insert(L, base);
    /* A call made from inside another (conn:refresh_token runs the
     * plugins' on_authenticate) spends the outer call's budget: a fresh
     * one each time would let a loop of such calls run for good. */
    if (!h->running) budget_start(h);
    const struct label *outer = h->running;
    h->running = what;
    watch_enter(h);
    int rc = lua_pcall(L, nargs, nres, base);
    if (rc != LUA_OK) {
        const char *err = lua_tostring(L, -1);
        if (rc == LUA_ERRMEM && h->oom_where[0]) err = h->oom_where;
        const char *c = what->c;
        if (what->name) c = lua_getfield(L, what->name, "name") == LUA_TSTRING ? lua_tostring(L, -1) : "?";
        char q[LOG_QUOTED_MAX];
        log_error("lua", "handler failed handler=%.*s%s%.100s%s%s error=\"%s\"", what->a_len, what->a, what->b, c,
                  what->d, what->e, log_quoted(q, sizeof q, err ? err : "?"));
        char handler[METRICS_HANDLER_MAX];
        snprintf(handler, sizeof handler, "%.*s%s%.40s%s%s", what->a_len, what->a, what->b, c, what->d, what->e);
        metrics_handler_failed(&h->srv->metrics, handler, rc == LUA_ERRMEM ? METRICS_FAIL_MEMORY : h->limit_hit);
        lua_settop(L, base - 1);
        /* Still watched: finalizers run here, with hooks off. Not on the
         * call's allowance: the collection shrinks the stack, which takes
         * a new block. */
        if (!outer) h->call_allocated = 0;
        lua_gc(L, LUA_GCCOLLECT);
    }
    watch_leave(h);
    h->running = outer;
    if (rc != LUA_OK) return -1;
    lua_remove(L, base);
    return 0;
}

/* }================================================================== */

/* {==================================================================
 * Loading a generation: sandbox, require, init.lua
 * =================================================================== */

/* {==================================================================
 * Loading a generation: init.lua, its rules, its plugins
 * =================================================================== */

static const char *const SHARED_MODULES[] = {"space", "space.schema", NULL};
/* Each generation gets its own instances of these (see cjson_guard.h). */
static const char *const CJSON_MODULES[] = {"cjson", "cjson.safe", NULL};

/* The line of dir/file where the dotted key's last part is assigned, found
 * by reading the file (rules are data: the chunk has no line per key). */
static int find_key_line(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char want[128];
    const char *dot = strrchr(key, '.');
    snprintf(want, sizeof want, "%s", dot ? dot + 1 : key);
    char *br = strchr(want, '[');
    if (br) *br = 0;
    char section[128] = "";
    if (dot) snprintf(section, sizeof section, "%.*s", (int)(strchr(key, '.') - key), key);
    char line[1024];
    int n = 0, found = 0, in_section = section[0] == 0, section_line = 0;
    while (!found && fgets(line, sizeof line, f)) {
        n++;
        const char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        size_t wl = strlen(want), sl = strlen(section);
        if (!in_section && sl && strncmp(p, section, sl) == 0 && (p[sl] == ' ' || p[sl] == '=')) {
            in_section = 1;
            section_line = n;
        } else if (in_section && strncmp(p, want, wl) == 0 && (p[wl] == ' ' || p[wl] == '=')) {
            found = n;
        }
    }
    fclose(f);
    return found ? found : section_line;
}

/* Checks the module `rules` of the generation against app.rules_schema and
 * fills in defaults, in place. Raises "path:line: message". Stack: env at env_idx. */
static void load_rules(lua_State *L, int env_idx, int app_idx, const char *dir) {
    if (lua_getfield(L, app_idx, "rules_schema") == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    int schema = lua_gettop(L);
    lua_getfield(L, app_idx, "rules");
    const char *module = lua_isstring(L, -1) ? lua_tostring(L, -1) : "rules";
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.lua", dir, module);
    lua_getfield(L, env_idx, "require");
    lua_pushstring(L, module);
    lua_call(L, 1, 1);
    int rules = lua_gettop(L);
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "space.schema");
    lua_getfield(L, -1, "check");
    lua_pushvalue(L, schema);
    lua_pushvalue(L, rules);
    lua_call(L, 2, 2);
    if (lua_isnil(L, -2)) {
        const char *err = lua_tostring(L, -1);
        char key[128] = "";
        /* Messages name the key first, or as 'key' after "unknown"/"missing". */
        const char *q = strchr(err, '\'');
        if (q && strchr(q + 1, '\'')) snprintf(key, sizeof key, "%.*s", (int)(strchr(q + 1, '\'') - q - 1), q + 1);
        else sscanf(err, "%127s", key);
        luaL_error(L, "%s:%d: %s", path, find_key_line(path, key), err);
    }
    lua_pop(L, 1);
    /* In place, so that handlers holding the module see the defaults. */
    if (lua_istable(L, rules)) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_settable(L, rules);
        }
    }
    lua_settop(L, schema - 1);
}

static int compare_priority(lua_State *L) {
    lua_getfield(L, 1, "priority");
    lua_getfield(L, 2, "priority");
    lua_pushboolean(L, lua_tonumber(L, -2) > lua_tonumber(L, -1));
    return 1;
}

/* Loads the plugins app.plugins enables: each one's schema.lua checks its
 * config, handler.lua gives its hooks. Pushes the array of {name, handler,
 * conf, priority}, highest priority first. */
static void load_plugins(lua_State *L, int env_idx, int app_idx, const char *dir, const char *plugins_dir) {
    lua_newtable(L);
    int list = lua_gettop(L);
    if (lua_getfield(L, app_idx, "plugins") == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (!lua_istable(L, -1)) luaL_error(L, "%s/init.lua: 'plugins' must map plugin names to their config", dir);
    int plugins = lua_gettop(L);
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, plugins)) {
        const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
        for (const char *p = name; *p || p == name; p++)
            if (!*p || !((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
                luaL_error(L, "%s/init.lua: plugin names are lower-case letters, digits and '_', not '%s'", dir, name);
        int conf = lua_gettop(L);
        char path[1024];
        snprintf(path, sizeof path, "%s/%s/schema.lua", plugins_dir, name);
        sandbox_run_file(L, path, env_idx);
        int schema = lua_gettop(L);
        lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
        lua_getfield(L, -1, "space.schema");
        lua_getfield(L, -1, "check");
        lua_pushvalue(L, schema);
        lua_pushvalue(L, conf);
        lua_call(L, 2, 2);
        if (lua_isnil(L, -2)) {
            char init[1024], key[160];
            snprintf(init, sizeof init, "%s/init.lua", dir);
            snprintf(key, sizeof key, "plugins.%s", name);
            luaL_error(L, "%s:%d: plugin %s: %s", init, find_key_line(init, key), name, lua_tostring(L, -1));
        }
        lua_pop(L, 1);
        int checked = lua_gettop(L);
        snprintf(path, sizeof path, "%s/%s/handler.lua", plugins_dir, name);
        sandbox_run_file(L, path, env_idx);
        if (!lua_istable(L, -1)) luaL_error(L, "%s must return the plugin's table", path);
        int handler = lua_gettop(L);
        lua_createtable(L, 0, 4);
        lua_pushstring(L, name);
        lua_setfield(L, -2, "name");
        lua_pushvalue(L, handler);
        lua_setfield(L, -2, "handler");
        lua_pushvalue(L, checked);
        lua_setfield(L, -2, "conf");
        lua_getfield(L, handler, "PRIORITY");
        lua_setfield(L, -2, "priority");
        lua_rawseti(L, list, ++n);
        lua_settop(L, conf - 1); /* the key stays for lua_next */
    }
    lua_pop(L, 1);
    /* Highest PRIORITY first, as Kong orders its plugins. */
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, list);
    lua_pushcfunction(L, compare_priority);
    lua_call(L, 2, 0);
    lua_pop(L, 1);
}

/* In a protected call: args dir, plugins_dir. Pushes the generation
 * {app, plugins}. */
static int load_generation(lua_State *L) {
    const char *dir = lua_tostring(L, 1);
    const char *plugins_dir = lua_tostring(L, 2);
    sandbox_push_env(L, dir, SHARED_MODULES);
    int env = lua_gettop(L);
    for (const char *const *m = CJSON_MODULES; *m; m++) {
        if (!cjson_guard_push(L, *m)) continue;
        sandbox_provide(L, env, *m, -1);
        lua_pop(L, 1);
    }
    hook_coroutines(L, env);
    guard_env(L, env);
    lua_getfield(L, env, "require");
    lua_pushliteral(L, "init");
    lua_call(L, 1, 1);
    int app = lua_gettop(L);
    if (!lua_istable(L, app)) return luaL_error(L, "%s/init.lua must return the app table", dir);
    if (lua_getfield(L, app, "namespaces") != LUA_TTABLE)
        return luaL_error(L, "%s/init.lua: the app table needs a 'namespaces' table", dir);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        const char *ns = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        if (!ns || ns[0] != '/' || !lua_istable(L, -1))
            return luaL_error(L, "%s/init.lua: namespaces are keyed by names starting with '/', each a table", dir);
        if (lua_getfield(L, -1, "events") != LUA_TTABLE)
            return luaL_error(L, "%s/init.lua: namespace '%s' needs an 'events' table", dir, ns);
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
    load_rules(L, env, app, dir);
    load_plugins(L, env, app, dir, plugins_dir);
    int plugins = lua_gettop(L);
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, app);
    lua_setfield(L, -2, "app");
    lua_pushvalue(L, plugins);
    lua_setfield(L, -2, "plugins");
    return 1;
}

/* Loads the scripts into a new generation and makes it current. Returns 0,
 * or -1 with the error in err (the current generation stays). */
static int host_load(struct script_host *h, char *err, size_t errlen) {
    lua_State *L = h->L;
    sandbox_files_loaded(L, 1);
    lua_pushcfunction(L, msghandler_short);
    lua_pushcfunction(L, load_generation);
    lua_pushstring(L, h->dir);
    lua_pushstring(L, h->plugins_dir);
    budget_start(h);
    h->cpu_limit_ns = 0; /* an operator's reload may take longer than an event: the backstop holds it */
    h->running = LABEL("load");
    watch_enter(h); /* for the watchdog; the hook counts from the first instruction */
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, HOOK_EVERY_INSTRUCTIONS);
    int rc = lua_pcall(L, 2, 1, -4);
    watch_leave(h);
    lua_sethook(L, NULL, 0, 0);
    h->running = NULL;
    if (rc != LUA_OK) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
        lua_pop(L, 2);
        lua_gc(L, LUA_GCCOLLECT);
        return -1;
    }
    if (h->gen_ref) luaL_unref(L, LUA_REGISTRYINDEX, h->gen_ref);
    h->gen_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    h->files = sandbox_files_loaded(L, 0);
    h->generation++;
    return 0;
}

/* Puts the schema checker the server carries (core/lua/schema.lua) into
 * package.loaded["space.schema"]. */
static int open_schema(lua_State *L) {
    if (luaL_loadbufferx(L, (const char *)lua_schema_source, sizeof lua_schema_source, "=space.schema", "t") ||
        lua_pcall(L, 0, 1, 0)) {
        log_error("lua", "built-in module space.schema: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_insert(L, -2);
    lua_setfield(L, -2, "space.schema");
    lua_pop(L, 1);
    return 0;
}

static int open_cjson(lua_State *L, const char *name) {
    /* cjson is a C module: load it outside the sandbox, once. */
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getglobal(L, "require");
    lua_pushstring(L, name);
    int rc = lua_pcall(L, 1, 1, 0);
    if (rc != LUA_OK) {
        log_warn("lua", "cannot load %s: %s", name, lua_tostring(L, -1));
        lua_pop(L, 2);
        return -1;
    }
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
    return 0;
}

struct script_host *script_host_new(struct server *srv, const char *dir, const char *plugins_dir, char *err,
                                    size_t errlen) {
    struct script_host *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->srv = srv;
    h->dir = strdup(dir);
    h->plugins_dir = strdup(plugins_dir);
    h->mem_limit = (size_t)srv->cfg->lua_memory_mb * 1024 * 1024;
    h->L = lua_newstate(capped_alloc, h);
    if (!h->dir || !h->plugins_dir || !h->L) {
        snprintf(err, errlen, "cannot create the Lua state");
        script_host_free(h);
        return NULL;
    }
    srv->script = h;
    /* Generational: an event's garbage (decoded arguments, replies) dies
     * young, and a minor collection visits only the young objects, not
     * every connection's handle and table as an incremental cycle does. */
    lua_gc(h->L, LUA_GCGEN, 0, 0);
    watch_init(h);
    luaL_openlibs(h->L);
    /* Scripts reach string methods through the string metatable: lock it,
     * so that no generation can change the library the next one uses. */
    lua_pushliteral(h->L, "");
    lua_getmetatable(h->L, -1);
    lua_pushliteral(h->L, "locked");
    lua_setfield(h->L, -2, "__metatable");
    lua_pop(h->L, 2);
    api_open(h->L, srv);
    lua_getglobal(h->L, "require");
    lua_pushliteral(h->L, "space");
    lua_call(h->L, 1, 0);
    bound_patterns(h->L);
    bound_loops(h->L);
    guard_shared_metatables(h->L);
    open_cjson(h->L, "cjson");
    open_cjson(h->L, "cjson.safe");
    if (open_schema(h->L) != 0) {
        snprintf(err, errlen, "the built-in module space.schema does not load");
        srv->script = NULL;
        script_host_free(h);
        return NULL;
    }
    uint64_t t0 = uv_hrtime();
    if (host_load(h, err, errlen) != 0) {
        srv->script = NULL;
        script_host_free(h);
        return NULL;
    }
    h->last_load_ms = (double)(uv_hrtime() - t0) / 1e6;
    return h;
}

int script_reload(struct script_host *h, const char *why, char *err, size_t errlen) {
    uint64_t t0 = uv_hrtime();
    if (host_load(h, err, errlen) != 0) {
        h->reloads_failed++;
        snprintf(h->last_error, sizeof h->last_error, "%s", err);
        char q[LOG_QUOTED_MAX];
        log_error("reload", "reload failed, the previous scripts keep running trigger=%s error=\"%s\"", why,
                  log_quoted(q, sizeof q, err));
        return -1;
    }
    h->reloads_ok++;
    h->last_error[0] = 0;
    h->last_load_ms = (double)(uv_hrtime() - t0) / 1e6;
    log_info("reload", "reloaded %u files in %.1f ms (generation %llu) trigger=%s", h->files, h->last_load_ms,
             (unsigned long long)h->generation, why);
    run_plugin_hook_reload(h);
    return 0;
}

void script_stats(const struct script_host *h, struct script_stats *out) {
    *out = (struct script_stats){h->generation, h->files, h->reloads_ok, h->reloads_failed, h->last_load_ms,
                                 h->last_error, h->mem_used};
}

void script_host_free(struct script_host *h) {
    if (!h) return;
    watch_free(h);
    if (h->L) lua_close(h->L);
    pool_free(h);
    free(h->dir);
    free(h->plugins_dir);
    free(h);
}

unsigned script_files_loaded(const struct script_host *h) { return h->files; }
lua_State *script_state(struct script_host *h) { return h->L; }

/* }================================================================== */

/* {==================================================================
 * Dispatch
 * =================================================================== */

/* Pushes app.namespaces[nsp] (a table) or nil. */
static int push_namespace(struct script_host *h, const char *nsp, size_t len) {
    lua_State *L = h->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->gen_ref);
    lua_getfield(L, -1, "app");
    lua_getfield(L, -1, "namespaces");
    lua_pushlstring(L, nsp, len);
    lua_gettable(L, -2);
    lua_replace(L, -4);
    lua_pop(L, 2);
    return lua_istable(L, -1);
}

/* Pushes the namespace's field `name` of the socket's namespace (may be nil). */
static void push_ns_field(struct script_host *h, struct sio_socket *s, const char *name) {
    lua_State *L = h->L;
    if (!push_namespace(h, s->nsp->name, s->nsp->name_len)) return; /* nil stays */
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
}

int script_has_namespace(struct script_host *h, const char *nsp, size_t len) {
    int ok = push_namespace(h, nsp, len);
    lua_pop(h->L, 1);
    return ok;
}

/* Calls hook of every plugin of the current generation that has one, in
 * priority order: hook(handler, conf, args...) with the nargs values on top
 * of the stack (left there). With can_refuse, stops at the first plugin
 * that returns nil, code[, message], leaving code and message pushed, and
 * returns PLUGIN_REFUSED; or at the first that fails, leaving
 * "internal_error" and a message, and returns PLUGIN_FAILED; else returns 0
 * with the stack as it was. With user_slot (a stack index; 0 = none), the
 * first table a plugin returns is put there while it holds nil (the user
 * that on_authenticate names). */
enum { PLUGIN_REFUSED = 1, PLUGIN_FAILED = 2 };
static int run_plugin_hooks(struct script_host *h, const char *hook, int nargs, int can_refuse, int user_slot) {
    lua_State *L = h->L;
    int first = lua_gettop(L) - nargs + 1;
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->gen_ref);
    lua_getfield(L, -1, "plugins");
    lua_remove(L, -2);
    int list = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, list);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, list, i);
        int plugin = lua_gettop(L);
        lua_getfield(L, plugin, "handler");
        lua_getfield(L, -1, hook);
        if (!lua_isfunction(L, -1)) {
            lua_settop(L, list);
            continue;
        }
        lua_insert(L, -2);              /* fn, handler */
        lua_getfield(L, plugin, "conf");
        for (int a = 0; a < nargs; a++) lua_pushvalue(L, first + a);
        struct label what = {"plugin ", INT_MAX, "", NULL, ".", hook, plugin};
        int failed = call(h, 2 + nargs, 3, &what) != 0;
        if (failed && can_refuse) {
            /* A plugin that fails refuses: a broken rate limiter or auth check must not let events through. */
            lua_settop(L, list - 1);
            lua_pushliteral(L, "internal_error");
            lua_pushliteral(L, "a plugin failed");
            return PLUGIN_FAILED;
        }
        if (!failed && can_refuse && lua_isnil(L, -3) && lua_type(L, -2) == LUA_TSTRING) {
            lua_remove(L, -3);          /* code, message stay */
            lua_remove(L, plugin);
            lua_remove(L, list);
            return PLUGIN_REFUSED;
        }
        if (!failed && user_slot && lua_istable(L, -3) && lua_isnil(L, user_slot)) {
            lua_pushvalue(L, -3);
            lua_replace(L, user_slot);
        }
        lua_settop(L, list);
    }
    lua_settop(L, list - 1);
    return 0;
}

static void run_plugin_hook_reload(struct script_host *h) {
    run_plugin_hooks(h, "on_reload", 0, 0, 0);
}

/* reply_lua's work: raises when the event name is one clients reserve
 * or the data cannot be encoded, before anything is sent. */
static int reply_send(lua_State *L) {
    struct sio_socket *s = api_to_socket(L, 1);
    if (!s) return 0;
    lua_settop(L, 4);
    size_t len;
    const char *event = lua_tolstring(L, 2, &len);
    if (event && (len == 0 || sio_is_reserved_event(event, len)))
        return luaL_error(L, "'%s' is not an event name a client accepts", event);
    api_reply(L, s, 2, 3, lua_isinteger(L, 4) ? lua_tointeger(L, 4) : -1);
    return 0;
}

/* reply(conn, event, data, ack_id|nil, handler|nil): emits event to the
 * connection and answers the ack with data; in a protected call, since
 * encoding may raise. The error of an answer names the handler's
 * file:line (it has returned: its own line is gone). */
static int reply_lua(lua_State *L) {
    lua_settop(L, 5);
    lua_pushcfunction(L, reply_send);
    for (int i = 1; i <= 4; i++) lua_pushvalue(L, i);
    if (lua_pcall(L, 4, 0, 0) == LUA_OK) return 0;
    if (lua_isfunction(L, 5) && lua_type(L, -1) == LUA_TSTRING) {
        lua_Debug ar;
        lua_pushvalue(L, 5);
        lua_getinfo(L, ">S", &ar);
        lua_pushfstring(L, "%s:%d: the handler's answer: ", ar.short_src, ar.linedefined);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

/* Emits the values at event_idx and data_idx to s, and answers ack_id (if
 * >= 0) with the data. handler_idx (0: none) is the function that
 * answered. 0, or -1 when nothing could be sent (logged). */
static int reply(struct script_host *h, struct sio_socket *s, int event_idx, int data_idx, int64_t ack_id,
                 const struct label *what, int handler_idx) {
    lua_State *L = h->L;
    event_idx = lua_absindex(L, event_idx);
    data_idx = lua_absindex(L, data_idx);
    if (handler_idx) handler_idx = lua_absindex(L, handler_idx);
    lua_pushcfunction(L, reply_lua);
    api_push_conn(L, s);
    lua_pushvalue(L, event_idx);
    lua_pushvalue(L, data_idx);
    if (ack_id >= 0) lua_pushinteger(L, ack_id);
    else lua_pushnil(L);
    if (handler_idx) lua_pushvalue(L, handler_idx);
    else lua_pushnil(L);
    return call(h, 5, 0, what);
}

/* Sends `error` {code, message, event} to s and answers its ack with the
 * same object. */
static void send_error(struct script_host *h, struct sio_socket *s, const char *event, int64_t ack_id,
                       const char *code, const char *message) {
    lua_State *L = h->L;
    lua_pushliteral(L, "error");
    lua_createtable(L, 0, 3);
    lua_pushstring(L, code);
    lua_setfield(L, -2, "code");
    lua_pushstring(L, message);
    lua_setfield(L, -2, "message");
    lua_pushstring(L, event);
    lua_setfield(L, -2, "event");
    reply(h, s, -2, -1, ack_id, LABEL("error reply"), 0);
    lua_pop(L, 2);
}

/* The CONNECT_ERROR data: {"message": message, "data": {"code": code}}. */
static void write_refusal(struct sbuf *refusal, const char *message, const char *code) {
    sbuf_reset(refusal);
    sbuf_printf(refusal, "{\"message\":");
    json_append_string(refusal, message, strlen(message));
    sbuf_printf(refusal, ",\"data\":{\"code\":");
    json_append_string(refusal, code, strlen(code));
    sbuf_printf(refusal, "}}");
}

/* conn:set_user(table at idx), protected. 0 or -1. */
static int set_user_from(struct script_host *h, struct sio_socket *s, int idx) {
    lua_State *L = h->L;
    idx = lua_absindex(L, idx);
    api_push_conn(L, s);
    lua_getfield(L, -1, "set_user");
    lua_insert(L, -2);
    lua_pushvalue(L, idx);
    return call(h, 2, 0, LABEL("authenticate (set_user)"));
}

/* Development mode: the namespace's authenticate(conn, auth) names the user. */
static enum script_result authenticate_dev(struct script_host *h, struct sio_socket *s, int auth,
                                           struct sbuf *refusal) {
    lua_State *L = h->L;
    push_ns_field(h, s, "authenticate");
    if (!lua_isfunction(L, -1)) {
        /* No policy: every connection is its own guest. */
        char name[16];
        snprintf(name, sizeof name, "guest-%.6s", s->sid);
        s->rooms.user = user_acquire(h->srv, s->sid, strlen(s->sid), name, strlen(name));
        return s->rooms.user ? SCRIPT_OK : SCRIPT_REFUSE;
    }
    api_push_conn(L, s);
    lua_pushvalue(L, auth);
    if (call(h, 2, 3, LABEL("authenticate")) != 0) {
        write_refusal(refusal, "authentication failed", "internal_error");
        return SCRIPT_REFUSE;
    }
    int r1 = lua_gettop(L) - 2;
    if (lua_istable(L, r1)) {
        if (set_user_from(h, s, r1) == 0) return SCRIPT_OK;
        write_refusal(refusal, "unauthorized", "invalid_user"); /* e.g. a name with a NUL byte */
        return SCRIPT_REFUSE;
    }
    const char *code = lua_isstring(L, r1 + 1) ? lua_tostring(L, r1 + 1) : "unauthorized";
    write_refusal(refusal, lua_isstring(L, r1 + 2) ? lua_tostring(L, r1 + 2) : code, code);
    return SCRIPT_REFUSE;
}

int script_recheck_claims(struct script_host *h, struct sio_socket *s, int claims_idx, int auth) {
    lua_State *L = h->L;
    claims_idx = lua_absindex(L, claims_idx);
    auth = lua_absindex(L, auth);
    api_push_conn(L, s);
    lua_pushvalue(L, claims_idx);
    lua_pushvalue(L, auth);
    if (run_plugin_hooks(h, "on_authenticate", 3, 1, 0)) return 1;
    lua_pop(L, 3);
    return 0;
}

/* With a JWT key: the token must verify; then plugins' on_authenticate(self,
 * conf, conn, claims, auth) may refuse (nil, code, message) or name the
 * user (a table); else the user is {id = sub, name = name or
 * preferred_username or sub}. */
static enum script_result authenticate_jwt(struct script_host *h, struct sio_socket *s, int auth,
                                           struct sbuf *refusal) {
    lua_State *L = h->L;
    struct server *srv = h->srv;
    size_t token_len = 0;
    const char *token = NULL;
    if (lua_getfield(L, auth, "token") == LUA_TSTRING) token = lua_tolstring(L, -1, &token_len);
    else if ((token = sio_socket_handshake_token(s))) token_len = strlen(token);
    char *claims_buf = malloc(JWT_MAX_TOKEN_BYTES);
    struct jwt_claims claims;
    enum jwt_result r = claims_buf ? jwt_verify(srv->auth.key, &srv->auth.policy, token, token_len,
                                                (int64_t)(server_wall_ms() / 1000), &claims, claims_buf,
                                                JWT_MAX_TOKEN_BYTES)
                                   : JWT_MALFORMED;
    if (r != JWT_OK) {
        free(claims_buf);
        write_refusal(refusal, "unauthorized", jwt_result_code(r));
        return SCRIPT_REFUSE;
    }
    int rc = json_lua_decode(L, claims.json, claims.json_len, NULL);
    free(claims_buf);
    if (rc != 0 || !lua_istable(L, -1)) {
        write_refusal(refusal, "unauthorized", "invalid_token");
        return SCRIPT_REFUSE;
    }
    int claims_idx = lua_gettop(L);
    /* The leeway that let the token in also delays its expiry notice. */
    sio_socket_set_token_exp(s, claims.exp ? (uint64_t)(claims.exp + srv->auth.policy.leeway_s) * 1000 : 0);
    snprintf(s->token_sub, sizeof s->token_sub, "%s", claims.sub);

    /* Plugins, by priority: the first refusal wins; the first user too. */
    lua_pushnil(L); /* the user slot */
    int user_idx = lua_gettop(L);
    api_push_conn(L, s);
    lua_pushvalue(L, claims_idx);
    lua_pushvalue(L, auth);
    int pr = run_plugin_hooks(h, "on_authenticate", 3, 1, user_idx);
    if (pr == PLUGIN_FAILED) {
        write_refusal(refusal, "authentication failed", "internal_error");
        return SCRIPT_REFUSE;
    }
    if (pr == PLUGIN_REFUSED) {
        /* PROTOCOL §2: the message is "unauthorized", the code says why. */
        write_refusal(refusal, "unauthorized", lua_tostring(L, -2));
        return SCRIPT_REFUSE;
    }
    lua_pop(L, 3);
    if (lua_isnil(L, user_idx)) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, claims.sub);
        lua_setfield(L, -2, "id");
        const char *name = NULL;
        if (lua_getfield(L, claims_idx, "name") == LUA_TSTRING) name = lua_tostring(L, -1);
        else if (lua_pop(L, 1), lua_getfield(L, claims_idx, "preferred_username") == LUA_TSTRING)
            name = lua_tostring(L, -1);
        lua_pushstring(L, name && *name ? name : claims.sub);
        lua_setfield(L, -3, "name");
        lua_pop(L, 1);
        lua_replace(L, user_idx);
    }
    if (set_user_from(h, s, user_idx) != 0) {
        write_refusal(refusal, "unauthorized", "invalid_token");
        return SCRIPT_REFUSE;
    }
    return SCRIPT_OK;
}

enum script_result script_authenticate(struct script_host *h, struct sio_socket *s, const char *json,
                                       size_t len, struct sbuf *refusal) {
    lua_State *L = h->L;
    int top = lua_gettop(L);
    if (len == 0) {
        lua_newtable(L);
    } else if (json_lua_decode(L, json, len, NULL) != 0 || !lua_istable(L, -1) ||
               lua_getmetatable(L, -1)) {
        lua_settop(L, top);
        return SCRIPT_PROTOCOL_ERROR; /* CONNECT data must be a JSON object */
    }
    int auth = lua_gettop(L);
    enum script_result r = h->srv->auth.key ? authenticate_jwt(h, s, auth, refusal)
                                            : authenticate_dev(h, s, auth, refusal);
    lua_settop(L, top);
    return r;
}

int script_call(struct script_host *h, int nargs, int nres, const char *what) {
    return call(h, nargs, nres, &(struct label){what, INT_MAX, "", "", "", "", 0});
}

void script_send_error(struct script_host *h, struct sio_socket *s, const char *event, const char *code,
                       const char *message) {
    int top = lua_gettop(h->L);
    send_error(h, s, event, -1, code, message);
    lua_settop(h->L, top);
}

void script_on_connected(struct script_host *h, struct sio_socket *s) {
    lua_State *L = h->L;
    int top = lua_gettop(L);
    api_push_conn(L, s);
    run_plugin_hooks(h, "on_connect", 1, 0, 0);
    lua_settop(L, top);
    if (s->closed) return;
    push_ns_field(h, s, "on_connect");
    if (lua_isfunction(L, -1)) {
        api_push_conn(L, s);
        call(h, 1, 0, LABEL("on_connect"));
    }
    lua_settop(L, top);
}

void script_on_disconnect(struct script_host *h, struct sio_socket *s, const char *reason) {
    lua_State *L = h->L;
    int top = lua_gettop(L);
    push_ns_field(h, s, "on_disconnect");
    if (lua_isfunction(L, -1)) {
        api_push_conn(L, s);
        lua_pushstring(L, reason);
        call(h, 2, 0, LABEL("on_disconnect"));
    }
    lua_settop(L, top);
    api_push_conn(L, s);
    lua_pushstring(L, reason);
    run_plugin_hooks(h, "on_disconnect", 2, 0, 0);
    lua_settop(L, top);
}

void script_release_socket(struct script_host *h, struct sio_socket *s) { api_release_conn(h->L, s); }

/* Decodes an event or ack's JSON array and its attachments; pushes it.
 * Returns -1 (nothing pushed) when it is not an array. */
static int push_args(lua_State *L, const char *json, size_t len, unsigned n_att, const void *const *att,
                     const size_t *att_len) {
    if (len == 0) {
        lua_newtable(L);
        json_lua_set_array(L, -1);
        return 0;
    }
    struct json_attachments a = {n_att, att, att_len, 0};
    if (json_lua_decode(L, json, len, n_att ? &a : NULL) != 0) {
        lua_pop(L, 1);
        return -1;
    }
    /* Only an array carries the array metatable (strings have one too). */
    if (!lua_istable(L, -1) || !json_lua_is_array(L, -1)) {
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

/* Runs the handler of the event named at name_idx with the arguments in the
 * array at args_idx ([name, data, ...]) and answers as the handler says. */
static void dispatch_event(struct script_host *h, struct sio_socket *s, int name_idx, int args_idx,
                           int64_t ack_id) {
    lua_State *L = h->L;
    const char *name = lua_tostring(L, name_idx);
    lua_Integer n = (lua_Integer)lua_rawlen(L, args_idx);
    push_ns_field(h, s, "events");
    if (lua_istable(L, -1)) {
        lua_pushvalue(L, name_idx);
        lua_rawget(L, -2);
        lua_remove(L, -2);
    }
    if (!lua_isfunction(L, -1)) {
        char msg[160];
        snprintf(msg, sizeof msg, "unknown event '%.100s'", name);
        send_error(h, s, name, ack_id, "unknown_event", msg);
        return;
    }
    /* Plugins first: any may refuse the event with its code. */
    api_push_conn(L, s);
    lua_pushvalue(L, name_idx);
    lua_rawgeti(L, args_idx, 2);
    if (run_plugin_hooks(h, "on_event", 3, 1, 0)) {
        const char *code = lua_tostring(L, -2);
        const char *message = lua_isstring(L, -1) ? lua_tostring(L, -1) : code;
        if (!s->closed) send_error(h, s, name, ack_id, code, message);
        return;
    }
    lua_pop(L, 3);
    if (s->closed) return;
    /* handler(conn, data, ev): ev = {event, args (all but the name), ack_id?},
     * built only for a handler that can see it: a Lua function with fewer
     * than three parameters and no '...' cannot (scripts have no debug
     * library), and most handlers are function(conn, data). */
    lua_Debug ar;
    lua_pushvalue(L, -1);
    lua_getinfo(L, ">u", &ar);
    int with_ev = ar.isvararg || ar.nparams >= 3;
    if (with_ev) {
        lua_createtable(L, 0, 3);
        lua_pushvalue(L, name_idx);
        lua_setfield(L, -2, "event");
        lua_createtable(L, (int)(n > 1 ? n - 1 : 0), 1);
        for (lua_Integer i = 2; i <= n; i++) {
            lua_rawgeti(L, args_idx, i);
            lua_rawseti(L, -2, i - 1);
        }
        lua_pushinteger(L, n > 1 ? n - 1 : 0);
        lua_setfield(L, -2, "n");
        lua_setfield(L, -2, "args");
        if (ack_id >= 0) {
            lua_pushinteger(L, ack_id);
            lua_setfield(L, -2, "ack_id");
        }
    } else {
        lua_pushnil(L);
    }
    int ev = lua_gettop(L); /* ev (or nil), kept below the call */
    lua_pushvalue(L, ev - 1); /* the handler */
    api_push_conn(L, s);
    lua_rawgeti(L, args_idx, 2); /* data: the first argument */
    if (with_ev) lua_pushvalue(L, ev);
    int base = ev; /* results land above ev */
    struct label what = {s->nsp->name, (int)s->nsp->name_len, ":", name, "", "", 0};
    if (call(h, with_ev ? 3 : 2, 3, &what) != 0) {
        if (!s->closed) send_error(h, s, name, ack_id, "internal_error", "the handler failed");
        return;
    }
    if (s->closed) return;
    /* Results: event, data | nil, code, message | nothing. */
    int64_t pending_ack = ack_id;
    if (with_ev) {
        lua_getfield(L, ev, "ack_id"); /* cleared when the handler answered with conn:ack */
        pending_ack = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : -1;
        lua_pop(L, 1);
    }
    int r1 = base + 1;
    if (lua_type(L, r1) == LUA_TSTRING) {
        /* Every call answers: an answer that cannot be sent is an internal_error. */
        if (reply(h, s, r1, r1 + 1, pending_ack, &what, ev - 1) != 0 && !s->closed)
            send_error(h, s, name, pending_ack, "internal_error", "the handler failed");
    } else if (lua_isnil(L, r1) && lua_type(L, r1 + 1) == LUA_TSTRING) {
        const char *code = lua_tostring(L, r1 + 1);
        const char *message = lua_isstring(L, r1 + 2) ? lua_tostring(L, r1 + 2) : code;
        send_error(h, s, name, pending_ack, code, message);
    }
}

/* The metrics slot of the event named at name_idx: its own once the app has
 * a handler for it (a client's made-up names all count as "other"). */
static unsigned count_event_slot(struct script_host *h, struct sio_socket *s, int name_idx, const char *name,
                                 size_t len, int *handled) {
    struct metrics *m = &h->srv->metrics;
    unsigned slot = metrics_event_slot(m, name, len);
    if ((*handled = slot && m->has_handler[slot])) return slot; /* the usual case: no lookup */
    lua_State *L = h->L;
    int top = lua_gettop(L);
    push_ns_field(h, s, "events");
    *handled = lua_istable(L, -1) && (lua_pushvalue(L, name_idx), lua_rawget(L, -2) == LUA_TFUNCTION);
    lua_settop(L, top);
    return *handled ? metrics_event_learn(m, name, len) : slot;
}

enum script_result script_on_event(struct script_host *h, struct sio_socket *s, int64_t ack_id,
                                   const char *json, size_t len, unsigned n_att,
                                   const void *const *att, const size_t *att_len) {
    lua_State *L = h->L;
    int top = lua_gettop(L);
    if (len == 0) return SCRIPT_OK; /* "42" with no payload: accepted and ignored, as Node does */
    if (push_args(L, json, len, n_att, att, att_len) != 0) return SCRIPT_PROTOCOL_ERROR;
    int args = lua_gettop(L);
    int t = lua_rawgeti(L, args, 1);
    if (t != LUA_TSTRING && t != LUA_TNUMBER) {
        lua_settop(L, top);
        return SCRIPT_PROTOCOL_ERROR;
    }
    size_t name_len;
    const char *name = lua_tolstring(L, -1, &name_len); /* numbers become strings, as in Node */
    if (sio_is_reserved_event(name, name_len)) {
        lua_settop(L, top);
        return SCRIPT_PROTOCOL_ERROR;
    }
    int handled;
    unsigned slot = count_event_slot(h, s, lua_gettop(L), name, name_len, &handled);
    uint64_t t0 = uv_hrtime();
    dispatch_event(h, s, lua_gettop(L), args, ack_id);
    metrics_event_in(&h->srv->metrics, slot, handled, uv_hrtime() - t0);
    lua_settop(L, top);
    return SCRIPT_OK;
}

enum script_result script_on_ack(struct script_host *h, struct sio_socket *s, int64_t ack_id,
                                 const char *json, size_t len, unsigned n_att,
                                 const void *const *att, const size_t *att_len) {
    lua_State *L = h->L;
    int top = lua_gettop(L);
    if (push_args(L, json, len, n_att, att, att_len) != 0) return SCRIPT_PROTOCOL_ERROR;
    int args = lua_gettop(L);
    api_push_ack_table(L, s);
    if (!lua_istable(L, -1) || lua_rawgeti(L, -1, ack_id) != LUA_TFUNCTION) {
        lua_settop(L, top); /* an ack nobody waits for is ignored */
        return SCRIPT_OK;
    }
    lua_pushnil(L);
    lua_rawseti(L, -3, ack_id);
    lua_Integer n = (lua_Integer)lua_rawlen(L, args);
    for (lua_Integer i = 1; i <= n; i++) lua_rawgeti(L, args, i);
    call(h, (int)n, 0, LABEL("ack callback"));
    lua_settop(L, top);
    return SCRIPT_OK;
}

/* }================================================================== */
