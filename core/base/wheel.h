/* wheel: a hashed timing wheel for deadlines (pings, timeouts), exact to
 * the millisecond. Two levels: a coarse wheel of WHEEL_SLOTS ticks holds
 * everything due after the current tick, and when a tick begins its
 * entries move to a fine wheel of 1 ms slots, so each fires at its own
 * millisecond, not at a tick boundary (a heartbeat that rounded every
 * deadline up to a tick drifted a tick per ping cycle). Scheduling and
 * cancelling are O(1); advancing visits only the slots whose time came, so
 * idle entries cost nothing between their deadlines (a sweep over every
 * connection would visit them all on every tick). The owner runs ONE timer,
 * armed at wheel_next_due. Entries are intrusive: the owner embeds a
 * wheel_entry and must cancel it before freeing itself. Pure: the caller
 * passes times. */
#ifndef SPACE_WHEEL_H
#define SPACE_WHEEL_H

#include <stddef.h>
#include <stdint.h>

/* The struct that embeds entry e as its member m. */
#define WHEEL_OWNER(e, type, m) ((type *)(void *)((char *)(e) - offsetof(type, m)))

#define WHEEL_SLOTS 1024     /* coarse ticks in one round; a power of two */
#define WHEEL_NEAR_SLOTS 64  /* 1 ms slots; a power of two, at least one tick wide */
#define WHEEL_NEVER UINT64_MAX

struct wheel_entry {
    struct wheel_entry *prev, *next; /* NULL when not scheduled */
    uint64_t due_ms;
};

struct wheel {
    struct wheel_entry slots[WHEEL_SLOTS];     /* list heads (circular): due in tick next_tick or later */
    struct wheel_entry near[WHEEL_NEAR_SLOTS]; /* list heads: due before tick next_tick, by millisecond */
    uint64_t tick_ms;                          /* width of one coarse slot (at most WHEEL_NEAR_SLOTS) */
    uint64_t next_tick;                        /* first tick whose entries are still in slots */
    uint64_t next_ms;                          /* first millisecond not yet advanced over */
    uint64_t next_due;                         /* when advance next has work; never later than that */
    uint64_t count;                            /* entries scheduled */
};

void wheel_init(struct wheel *w, uint64_t tick_ms, uint64_t now_ms);

/* (Re)schedules e to fire at due_ms (or at the first advance after it). */
void wheel_schedule(struct wheel *w, struct wheel_entry *e, uint64_t due_ms);
/* Schedules e at due_ms unless it is already due earlier. */
void wheel_schedule_by(struct wheel *w, struct wheel_entry *e, uint64_t due_ms);
void wheel_cancel(struct wheel *w, struct wheel_entry *e);
static inline int wheel_is_scheduled(const struct wheel_entry *e) { return e->next != 0; }

/* Fires every entry due at or before now_ms, millisecond by millisecond. An
 * entry is unscheduled before fire runs; fire may schedule or cancel any
 * entry, this one included. Never fires an entry before its due time. */
void wheel_advance(struct wheel *w, uint64_t now_ms, void (*fire)(struct wheel_entry *e, void *ud),
                   void *ud);

/* The time at which wheel_advance next has something to do (WHEEL_NEVER:
 * nothing scheduled): the due time of the earliest entry of the current
 * tick, else the start of the next tick that holds entries (advancing then
 * brings its entries near and the answer becomes exact). A cancel may leave
 * it early, never late. O(1). */
static inline uint64_t wheel_next_due(const struct wheel *w) { return w->next_due; }

#endif
