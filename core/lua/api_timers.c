/* api_timers: the scripts' timers, space.after(ms, fn) and
 * space.every(ms, fn). They sit on one wheel of the host, registered with
 * net's one deadline timer like every other deadline (no libuv timer per
 * Lua timer). A timer is a full userdata (its handle, with fn as its user
 * value) anchored in the registry while it is scheduled, so a script may
 * drop the handle; once fired (after) or cancelled it is an ordinary value
 * to the collector. fn runs through the protected call on a budget of its
 * own, as an event's handler does.
 *
 * Generations: each load puts its own after/every into its `space` view
 * (a closure carrying the load's tag), so a timer belongs to the
 * generation whose code started it, wherever that code runs from (an old
 * generation's history callback after a reload, too). A reload that
 * loaded cancels every timer of the replaced generation; a load that
 * failed cancels the timers its init.lua started. */
#include "api.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "host_internal.h"
#include "log.h"
#include "net.h"

#define TIMER_MT "space.timer"
#define TIMER_MAX_MS (24 * 60 * 60 * 1000) /* a day: longer waits belong in the app's backend */
#define TIMER_MAX_LIVE 10000               /* per generation: a loop starting timers stops here */
#define TIMER_MAX_FAILURES 3               /* an `every` that fails this often in a row is cancelled */
#define TIMER_WHERE_MAX 96

struct lua_timer {
    struct wheel_entry e;
    struct script_host *h;
    struct lua_timer *prev, *next; /* in h->timers.live while scheduled */
    uint64_t tag;                  /* of the generation that started it */
    uint64_t every_ms;             /* 0: fires once */
    int ref;                       /* registry ref of this userdata while scheduled, else LUA_NOREF */
    unsigned failures;             /* failed runs in a row */
    char where[TIMER_WHERE_MAX];   /* fn's file:line, naming the timer in the log */
};

static unsigned *count_of(struct script_timers *ts, uint64_t tag) {
    if (ts->tag_loading && tag == ts->tag_loading) return &ts->n_loading;
    if (tag == ts->tag_current) return &ts->n_current;
    return NULL;
}

/* Unschedules t and lets the collector have it (when nothing else holds it). */
static void release(struct script_host *h, struct lua_timer *t) {
    struct script_timers *ts = &h->timers;
    if (t->ref == LUA_NOREF) return;
    wheel_cancel(&ts->wheel, &t->e);
    if (t->prev) t->prev->next = t->next;
    else ts->live = t->next;
    if (t->next) t->next->prev = t->prev;
    t->prev = t->next = NULL;
    unsigned *n = count_of(ts, t->tag);
    if (n && *n) (*n)--;
    luaL_unref(h->L, LUA_REGISTRYINDEX, t->ref);
    t->ref = LUA_NOREF;
}

/* Cancels every timer with the tag (every timer: tag 0). */
static void cancel_tag(struct script_host *h, uint64_t tag) {
    struct lua_timer *t = h->timers.live;
    while (t) {
        struct lua_timer *next = t->next;
        if (!tag || t->tag == tag) release(h, t);
        t = next;
    }
}

/* The loop time (whole ms, CLOCK_MONOTONIC as uv_hrtime) at which a timer
 * started now is due: the loop's own time is cached at the start of its
 * turn and cut to the millisecond, so the clock is read and rounded up,
 * and fn never runs sooner than ms after the call that started it. */
static uint64_t due_after(uint64_t ms) { return (uv_hrtime() + 999999) / 1000000 + ms; }

/* A timer is due: runs fn(handle). An `every` is scheduled again first, so
 * fn may cancel it. */
static void on_timer(struct wheel_entry *e, void *ud) {
    (void)ud;
    struct lua_timer *t = WHEEL_OWNER(e, struct lua_timer, e);
    struct script_host *h = t->h;
    lua_State *L = h->L;
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref); /* the handle: anchors t until the end */
    lua_getiuservalue(L, -1, 1);
    lua_pushvalue(L, -2);
    if (t->every_ms) {
        uint64_t now = net_now(h->env.net), due = t->e.due_ms + t->every_ms;
        wheel_schedule(&h->timers.wheel, &t->e, due > now ? due : now + t->every_ms);
    } else {
        release(h, t);
    }
    int failed = script__call(h, 1, 0, &(struct label){"timer ", INT_MAX, "", t->where, "", "", 0}) != 0;
    if (t->ref != LUA_NOREF) { /* an `every` that fn did not cancel */
        t->failures = failed ? t->failures + 1 : 0;
        if (t->failures >= TIMER_MAX_FAILURES) {
            log_warn("lua", "timer cancelled after %d failed runs in a row timer=%s", TIMER_MAX_FAILURES, t->where);
            release(h, t);
        }
    }
    lua_settop(L, top);
}

/* The part of path after dir and a '/', or NULL. */
static const char *under(const char *path, const char *dir) {
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && path[n] == '/' ? path + n + 1 : NULL;
}

/* Names t by where its fn (at the stack top, popped) was defined: the
 * file relative to the scripts directory (plugins/... for a plugin's),
 * and the line, so that the log line and the /metrics label of a failing
 * timer say which one it was (an absolute path would be cut off there). */
static void name_timer(struct script_host *h, lua_State *L, struct lua_timer *t) {
    lua_Debug ar;
    if (!lua_getinfo(L, ">S", &ar) || ar.linedefined <= 0) {
        snprintf(t->where, sizeof t->where, "%s", ar.short_src);
        return;
    }
    const char *src = ar.source[0] == '@' ? ar.source + 1 : ar.short_src, *rel;
    if ((rel = under(src, h->dir)))
        snprintf(t->where, sizeof t->where, "%s:%d", rel, ar.linedefined);
    else if ((rel = under(src, h->plugins_dir)))
        snprintf(t->where, sizeof t->where, "plugins/%s:%d", rel, ar.linedefined);
    else
        snprintf(t->where, sizeof t->where, "%s:%d", ar.short_src, ar.linedefined);
}

/* space.after(ms, fn) / space.every(ms, fn) -> handle. Upvalue 1: the tag
 * of the generation this closure was made for. */
static int start_timer(lua_State *L, int every) {
    struct script_host *h = api_host(L);
    const char *name = every ? "space.every" : "space.after";
    int is_int = 0;
    lua_Integer ms = lua_type(L, 1) == LUA_TNUMBER ? lua_tointegerx(L, 1, &is_int) : 0;
    if (!is_int || ms < 1 || ms > TIMER_MAX_MS)
        return luaL_error(L, "%s: ms must be an integer from 1 to %d (a day), got %s", name, TIMER_MAX_MS,
                          lua_type(L, 1) == LUA_TNUMBER ? lua_tostring(L, 1) : luaL_typename(L, 1));
    if (lua_type(L, 2) != LUA_TFUNCTION)
        return luaL_error(L, "%s: fn must be a function, got %s", name, luaL_typename(L, 2));
    uint64_t tag = (uint64_t)lua_tointeger(L, lua_upvalueindex(1));
    unsigned *n = count_of(&h->timers, tag);
    if (!n)
        return luaL_error(L, "%s: this code's scripts were replaced by a reload: it starts no timers", name);
    if (*n >= TIMER_MAX_LIVE)
        return luaL_error(L, "%s: too many timers (%d live in this generation of the scripts)", name,
                          TIMER_MAX_LIVE);
    struct lua_timer *t = lua_newuserdatauv(L, sizeof *t, 1);
    memset(t, 0, sizeof *t);
    t->h = h;
    t->tag = tag;
    t->every_ms = every ? (uint64_t)ms : 0;
    t->ref = LUA_NOREF;
    luaL_setmetatable(L, TIMER_MT);
    lua_pushvalue(L, 2);
    name_timer(h, L, t);
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, -1);
    t->ref = luaL_ref(L, LUA_REGISTRYINDEX); /* anchors it while scheduled: the script may drop the handle */
    t->next = h->timers.live;
    if (t->next) t->next->prev = t;
    h->timers.live = t;
    (*n)++;
    wheel_schedule(&h->timers.wheel, &t->e, due_after((uint64_t)ms));
    return 1;
}

static int space_after(lua_State *L) { return start_timer(L, 0); }
static int space_every(lua_State *L) { return start_timer(L, 1); }

/* handle:cancel() -> true when this stopped it, false when it had fired
 * (after), was cancelled already or died with its generation. */
static int timer_cancel(lua_State *L) {
    struct lua_timer *t = luaL_checkudata(L, 1, TIMER_MT);
    int live = t->ref != LUA_NOREF;
    release(api_host(L), t);
    lua_pushboolean(L, live);
    return 1;
}

/* handle:active() -> whether it is still scheduled */
static int timer_active(lua_State *L) {
    struct lua_timer *t = luaL_checkudata(L, 1, TIMER_MT);
    lua_pushboolean(L, t->ref != LUA_NOREF);
    return 1;
}

static int timer_tostring(lua_State *L) {
    struct lua_timer *t = luaL_checkudata(L, 1, TIMER_MT);
    lua_pushfstring(L, "timer (%s%s, %s)", t->every_ms ? "every " : "once, ", t->where,
                    t->ref != LUA_NOREF ? "active" : "done");
    return 1;
}

static const luaL_Reg timer_methods[] = {{"cancel", timer_cancel}, {"active", timer_active}, {NULL, NULL}};
static const luaL_Reg timer_metamethods[] = {{"__tostring", timer_tostring}, {"__index", NULL}, {NULL, NULL}};

void script__timers_init(struct script_host *h) {
    lua_State *L = h->L;
    /* No __gc: a timer holds nothing but Lua values and its place on the
     * wheel, which it leaves before it can be collected. */
    luaL_newmetatable(L, TIMER_MT);
    luaL_setfuncs(L, timer_metamethods, 0);
    luaL_newlib(L, timer_methods);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, TIMER_MT);
    lua_setfield(L, -2, "__metatable"); /* getmetatable(timer) gives the name; setmetatable refuses */
    lua_pop(L, 1);
    net_add_wheel(h->env.net, &h->timers.wheel, on_timer);
    h->timers.registered = 1;
}

void script__timers_free(struct script_host *h) {
    if (h->L) cancel_tag(h, 0);
    if (h->timers.registered) net_remove_wheel(h->env.net, &h->timers.wheel);
    h->timers.registered = 0;
}

void script__timers_load_begin(struct script_host *h) {
    h->timers.tag_loading = ++h->timers.next_tag;
    h->timers.n_loading = 0;
}

void script__timers_load_end(struct script_host *h, int ok) {
    struct script_timers *ts = &h->timers;
    uint64_t loaded = ts->tag_loading;
    if (ok) {
        /* No timer of the replaced code runs again. */
        if (ts->tag_current) cancel_tag(h, ts->tag_current);
        ts->tag_current = loaded;
        ts->n_current = ts->n_loading;
    } else {
        cancel_tag(h, loaded);
    }
    ts->tag_loading = 0;
    ts->n_loading = 0;
}

void script__timers_provide(lua_State *L, int env) {
    env = lua_absindex(L, env);
    lua_getfield(L, env, "require");
    lua_getupvalue(L, -1, 2); /* the generation's loaded modules (sandbox.c) */
    if (lua_getfield(L, -1, "space") == LUA_TTABLE) {
        static const struct { const char *name; lua_CFunction fn; } funcs[] = {
            {"after", space_after}, {"every", space_every}};
        for (size_t i = 0; i < sizeof funcs / sizeof funcs[0]; i++) {
            lua_pushstring(L, funcs[i].name);
            lua_pushinteger(L, (lua_Integer)api_host(L)->timers.tag_loading);
            lua_pushcclosure(L, funcs[i].fn, 1);
            lua_rawset(L, -3); /* the view refuses __newindex: these are the host's */
        }
    }
    lua_pop(L, 3);
}
