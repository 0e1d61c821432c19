/* host_internal: the Lua host's own header, for the files of core/lua that
 * make up struct script_host (script.c ties them together): lua_alloc.c
 * (the capped allocator and its pool), budget.c (instruction budget, late
 * hook, watchdog, CPU limit), guards.c (what the hook cannot reach),
 * pcall.c (the protected call), load.c (generations and reloads),
 * dispatch.c (events, acks, plugin hooks) and login.c (authentication).
 * Nothing outside core/lua includes it. */
#ifndef SPACE_HOST_INTERNAL_H
#define SPACE_HOST_INTERNAL_H

#include <lua.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "api.h"
#include "script.h"
#include "config.h"
#include "metrics.h"
#include "sbuf.h"
#include "wheel.h"

#define HOOK_EVERY_INSTRUCTIONS 1000 /* the budget hook's count */
#define POOL_STEP 16                 /* the small-block pool's size classes: 16, 32, ... bytes */
#define POOL_MAX 256                 /* the largest block it keeps, bytes */
#define POOL_CLASSES (POOL_MAX / POOL_STEP)

struct label;
struct lua_timer;

/* The scripts' timers (api_timers.c): one wheel on net's deadline timer.
 * Every timer carries the tag of the generation whose code started it, so
 * that a reload can cancel the old generation's timers and a failed load
 * its own. */
struct script_timers {
    struct wheel wheel;
    struct lua_timer *live; /* every scheduled timer (doubly linked) */
    uint64_t next_tag;      /* tags given out so far, one per load */
    uint64_t tag_current;   /* the current generation's */
    uint64_t tag_loading;   /* the generation being loaded, 0: none */
    unsigned n_current, n_loading; /* live timers of each */
    int registered;         /* the wheel is on net's deadline timer */
};

struct script_host {
    struct script_env env;  /* the server state it reaches (script.h) */
    struct sbuf scratch;    /* api_scratch */
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
    /* The late hook (budget.c); the volatile fields are shared with the
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
    int kept_acks;         /* dropped kept events wait for their empty ack (dispatch.c) */
    struct script_timers timers; /* space.after, space.every (api_timers.c) */
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

static inline struct script_host *host_of(lua_State *L) { return api_host(L); }

/* dispatch.c: the empty acks of kept events that were collected unanswered
 * (queued by their finalizer, which may run inside any allocation), sent
 * once the outermost call is over. */
void script__flush_kept_acks(struct script_host *h);

/* api_timers.c: the wheel set up (before the first load) and freed, every
 * timer cancelled (before lua_close); a load begun and ended (ok: the new
 * generation is current, the old one's timers are cancelled; else the
 * failed load's are); space.after and space.every put into the `space`
 * view of the generation loading in the environment at env. */
void script__timers_init(struct script_host *h);
void script__timers_free(struct script_host *h);
void script__timers_load_begin(struct script_host *h);
void script__timers_load_end(struct script_host *h, int ok);
void script__timers_provide(lua_State *L, int env);

/* lua_alloc.c: the lua_Alloc of the state (ud: the host), under the
 * memory caps; and the pool's blocks freed, after lua_close. */
void *script__alloc(void *ud, void *ptr, size_t osize, size_t nsize);
void script__pool_free(struct script_host *h);

/* budget.c: the hook that ends a call over its budget; the budgets of one
 * call started; the timer (late hook and watchdog) set up and torn down,
 * entered and left around every call; coroutines hooked from their start
 * in the environment at env. */
void script__budget_hook(lua_State *L, lua_Debug *ar);
void script__budget_start(struct script_host *h);
void script__watch_init(struct script_host *h);
void script__watch_free(struct script_host *h);
void script__watch_enter(struct script_host *h);
void script__watch_leave(struct script_host *h);
void script__hook_coroutines(lua_State *L, int env);

/* guards.c: the guarded functions put into the environment at env; the
 * bounds on the state's own libraries and metatables, once per state. */
void script__guard_env(lua_State *L, int env);
void script__guard_state(lua_State *L);

/* pcall.c: calls the function below nargs arguments on the stack,
 * protected and on a budget. Returns 0 with nres results pushed, or -1
 * with nothing pushed (the error was logged with what and file:line). */
int script__call(struct script_host *h, int nargs, int nres, const struct label *what);

/* load.c: the built-in modules (cjson, space.schema) into package.loaded,
 * once per state: 0, or -1 when space.schema does not load; and the
 * scripts loaded into a new generation made current: 0, or -1 with the
 * error in err (the current generation stays). */
int script__open_builtins(lua_State *L);
int script__load(struct script_host *h, char *err, size_t errlen);

/* dispatch.c: pushes the field `name` of the socket's namespace (may be
 * nil); runs a hook of every plugin (see there). */
void script__push_ns_field(struct script_host *h, struct sio_socket *s, const char *name);
enum { PLUGIN_REFUSED = 1, PLUGIN_FAILED = 2 };
int script__run_plugin_hooks(struct script_host *h, const char *hook, int nargs, int can_refuse, int user_slot);

#endif
