/* lua_alloc: the Lua state's allocator. Every block goes through the
 * memory cap (--lua-memory-mb) and a per-call allowance (a quarter of it),
 * and small blocks through a pool of free blocks by size class. A refused
 * allocation notes the script's file:line for the log. */
#include "host_internal.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_KEEP 512                   /* free blocks the pool keeps per class */
#define EXEMPT_FREE_BYTES (1024 * 1024) /* frees this large are timed apart from the call */

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

void script__pool_free(struct script_host *h) {
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

void *script__alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
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
