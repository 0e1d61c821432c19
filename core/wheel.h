/* wheel: a hashed timing wheel for coarse deadlines (pings, timeouts).
 * Scheduling and cancelling are O(1); advancing visits only the slots
 * whose time came, so a million idle connections cost nothing between
 * their deadlines (a sweep over every connection would visit them all on
 * every tick). Entries are intrusive: the owner embeds a wheel_entry and
 * must cancel it before freeing itself. Pure: the caller passes times. */
#ifndef SPACE_WHEEL_H
#define SPACE_WHEEL_H

#include <stddef.h>
#include <stdint.h>

/* The struct that embeds entry e as its member m. */
#define WHEEL_OWNER(e, type, m) ((type *)(void *)((char *)(e) - offsetof(type, m)))

#define WHEEL_SLOTS 1024 /* a power of two */

struct wheel_entry {
    struct wheel_entry *prev, *next; /* NULL when not scheduled */
    uint64_t due_ms;
};

struct wheel {
    struct wheel_entry slots[WHEEL_SLOTS]; /* list heads (circular) */
    uint64_t tick_ms;                      /* width of one slot */
    uint64_t next_tick;                    /* first tick not yet advanced over */
    uint64_t count;                        /* entries scheduled */
};

void wheel_init(struct wheel *w, uint64_t tick_ms, uint64_t now_ms);

/* (Re)schedules e to fire at due_ms (or at the first advance after it). */
void wheel_schedule(struct wheel *w, struct wheel_entry *e, uint64_t due_ms);
/* Schedules e at due_ms unless it is already due earlier. */
void wheel_schedule_by(struct wheel *w, struct wheel_entry *e, uint64_t due_ms);
void wheel_cancel(struct wheel *w, struct wheel_entry *e);
static inline int wheel_is_scheduled(const struct wheel_entry *e) { return e->next != 0; }

/* Fires, in no particular order, every entry due at or before now_ms. An
 * entry is unscheduled before fire runs; fire may schedule or cancel any
 * entry, this one included. Never fires an entry before its due time. */
void wheel_advance(struct wheel *w, uint64_t now_ms, void (*fire)(struct wheel_entry *e, void *ud),
                   void *ud);

#endif
