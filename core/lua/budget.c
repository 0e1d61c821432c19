/* budget: the limits of one call into Lua. An instruction budget
 * (--lua-budget) counted by a hook that is set late, by a timer, once a
 * call has run a millisecond; a wall-time backstop; the CPU time limit
 * (--lua-cpu-ms) with the server's own work exempted; and the watchdog
 * that exits when a call runs where no hook reaches it. */
#define _GNU_SOURCE /* gettid, for a timer signal to this thread */
#include "host_internal.h"

#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "log.h"

#define NS_PER_US 1000u
#define NS_PER_MS 1000000u
#define NS_PER_S 1000000000u
#define WATCH_TICK_NS (1000 * 1000)       /* the late hook's timer period: 1 ms */
#define WATCH_IDLE_TICKS 100              /* ticks without a call before the timer stops */
#define LATE_HOOK_MIN_BUDGET 5000000      /* smaller budgets are counted from the first instruction */
#define HANDLER_TIME_BUDGET_NS (2000ull * NS_PER_MS) /* a backstop; the instruction budget comes first */

/* {==================================================================
 * The instruction budget
 * =================================================================== */

void script__budget_hook(lua_State *L, lua_Debug *ar) {
    struct script_host *h = host_of(L);
    h->budget_left -= HOOK_EVERY_INSTRUCTIONS;
    /* Time too: C calls between hooks (string.rep, patterns) can be slow. */
    int over_time = uv_hrtime() > h->deadline_ns, over_cpu = h->over_cpu;
    if (h->budget_left > 0 && !over_time && !over_cpu) return;
    /* Fire again on the very next instruction, so that a script's own
     * pcall that swallowed this error cannot keep running. */
    lua_sethook(L, script__budget_hook, LUA_MASKCOUNT, 1);
    lua_getinfo(L, "Sl", ar);
    if (ar->currentline > 0) lua_pushfstring(L, "%s:%d: ", ar->short_src, ar->currentline);
    else lua_pushliteral(L, "");
    h->limit_hit = over_cpu ? METRICS_FAIL_CPU : over_time ? METRICS_FAIL_TIME : METRICS_FAIL_BUDGET;
    if (over_cpu)
        lua_pushfstring(L, "CPU time limit exceeded (%d ms)", (int)(h->cpu_limit_ns / NS_PER_MS));
    else if (over_time)
        lua_pushfstring(L, "time budget exceeded (%d ms)", (int)(HANDLER_TIME_BUDGET_NS / NS_PER_MS));
    else
        lua_pushfstring(L, "instruction budget exceeded (%I instructions)", (lua_Integer)api_env(L)->cfg->lua_budget);
    lua_concat(L, 2);
    lua_error(L);
}

/* Starts the budgets of one call into Lua. */
void script__budget_start(struct script_host *h) {
    h->budget_left = h->env.cfg->lua_budget;
    h->deadline_ns = uv_hrtime() + HANDLER_TIME_BUDGET_NS;
    h->cpu_limit_ns = (uint64_t)h->env.cfg->lua_cpu_ms * NS_PER_MS;
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
 * function, or a path where Lua keeps hooks off that the guards (guards.c)
 * missed). It cannot be unwound from a signal handler, and the loop (and
 * with it SIGTERM) waits for it: the watchdog logs the handler and exits
 * with status 3, for a supervisor to restart the server. Everything here
 * is async-signal-safe: write(2) and hand-made formatting.
 * ------------------------------------------------------------------- */

#define WATCHDOG_NS (HANDLER_TIME_BUDGET_NS + 1000ull * NS_PER_MS) /* the backstop, then a second */
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
    put(l, ".", 1), put_num(l, (unsigned long)(ts.tv_nsec / NS_PER_MS), 3), put(l, "Z", 1);
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
    put_num(&l, (unsigned long)(ran_ns / NS_PER_MS), 1);
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
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* Nested sections (a big free inside an upload's decoding) count once:
 * the outermost one measures and credits. */
void script_cpu_exempt_begin(struct script_host *h) {
    if (h->exempt++ == 0) h->exempt_since_ns = thread_cpu_ns();
}

void script_cpu_exempt_end(struct script_host *h) {
    if (h->exempt <= 0 || --h->exempt > 0) return;
    uint64_t us = (uint64_t)h->exempt_us + (thread_cpu_ns() - h->exempt_since_ns) / NS_PER_US;
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
                lua_sethook(h->L, script__budget_hook, LUA_MASKCOUNT, HOOK_EVERY_INSTRUCTIONS);
            }
            /* Time, not ticks: a busy machine merges timer signals. */
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t now = (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
            uint64_t ran = now - h->stuck_since_ns;
            /* Past the backstop: the budget hook on the very next
             * instruction, for a loop of slow C calls between two hooks. */
            if (ran >= HANDLER_TIME_BUDGET_NS && !h->pressed) {
                h->pressed = 1;
                lua_sethook(h->L, script__budget_hook, LUA_MASKCOUNT, 1);
            }
            /* The loop waits for the call: past its CPU time (not wall
             * time, which a busy machine stretches), the hook ends it on
             * the next instruction. */
            if (h->cpu_limit_ns && !h->over_cpu && !h->exempt &&
                thread_cpu_ns() - h->cpu_since_ns >= h->cpu_limit_ns + (uint64_t)h->exempt_us * NS_PER_US) {
                h->over_cpu = 1;
                h->pressed = 1;
                lua_sethook(h->L, script__budget_hook, LUA_MASKCOUNT, 1);
            }
            if (ran >= WATCHDOG_NS) watchdog_exit(h, ran);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            h->pressed = 0;
            h->stuck_since_ns = (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
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
void script__watch_init(struct script_host *h) {
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
    h->late_hook = h->env.cfg->lua_budget >= LATE_HOOK_MIN_BUDGET;
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
    if (co) lua_sethook(co, script__budget_hook, LUA_MASKCOUNT, HOOK_EVERY_INSTRUCTIONS);
    return 1;
}

/* Puts co_hooked in place of create and wrap in the environment's coroutine table. */
void script__hook_coroutines(lua_State *L, int env) {
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

void script__watch_free(struct script_host *h) {
    if (!h->timer_ok) return;
    timer_delete(h->timer);
    /* A tick already queued must not reach the freed host: ignoring the
     * signal discards it (POSIX), and none comes after timer_delete. */
    signal(WATCH_SIGNO, SIG_IGN);
    h->timer_ok = h->late_hook = 0;
}

/* Before and after a call: the outermost call starts the timer when it
 * is not running; when it ends, it clears the hook if the timer set it. */
void script__watch_enter(struct script_host *h) {
    lua_State *L = h->L;
    /* seq first: a tick that finds depth > 0 must find the new call's seq,
     * or it takes the call for the previous one and measures its CPU time
     * and wall time from that call's start (the decoding of an upload in
     * between then ended the new call as over --lua-cpu-ms). */
    if (h->depth == 0) h->seq++;
    h->depth++;
    if (!h->late_hook) lua_sethook(L, script__budget_hook, LUA_MASKCOUNT, HOOK_EVERY_INSTRUCTIONS);
    if (h->depth > 1) return;
    if (h->timer_ok && !h->ticking) {
        h->ticking = 1;
        h->idle_ticks = 0;
        struct itimerspec every = {{0, WATCH_TICK_NS}, {0, WATCH_TICK_NS}};
        timer_settime(h->timer, 0, &every, NULL);
    }
}

void script__watch_leave(struct script_host *h) {
    lua_State *L = h->L;
    h->depth--;
    if (!h->late_hook) {
        /* Back in an outer call: its hook again (the budget left is shared). */
        if (h->depth > 0) lua_sethook(L, script__budget_hook, LUA_MASKCOUNT, HOOK_EVERY_INSTRUCTIONS);
        else lua_sethook(L, NULL, 0, 0);
        return;
    }
    if (h->depth == 0 && (h->hooked || h->pressed)) {
        lua_sethook(L, NULL, 0, 0);
        h->hooked = 0;
    }
}
