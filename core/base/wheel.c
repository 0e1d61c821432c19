#include "wheel.h"

#include <stddef.h>

/* Invariants: next_ms <= next_tick * tick_ms <= next_ms + tick_ms. An entry
 * due before next_tick * tick_ms is in near[max(due, next_ms) % NEAR] (the
 * window is at most one tick, so no two of its milliseconds share a slot);
 * any other entry is in slots[(due / tick_ms) % SLOTS], perhaps for a later
 * round. Whether an entry is near follows from its due time alone. */

#define SLOT_MASK (WHEEL_SLOTS - 1)
#define NEAR_MASK (WHEEL_NEAR_SLOTS - 1)

static void list_init(struct wheel_entry *head) { head->prev = head->next = head; }

static int list_empty(const struct wheel_entry *head) { return head->next == head; }

static void list_unlink(struct wheel_entry *e) {
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = NULL;
}

static void list_push(struct wheel_entry *head, struct wheel_entry *e) {
    e->next = head->next;
    e->prev = head;
    head->next->prev = e;
    head->next = e;
}

/* Moves the whole list of head into pending (head is left empty), so that
 * callbacks may schedule into head while pending is walked. */
static void list_take(struct wheel_entry *head, struct wheel_entry *pending) {
    list_init(pending);
    if (list_empty(head)) return;
    pending->next = head->next;
    pending->prev = head->prev;
    pending->next->prev = pending;
    pending->prev->next = pending;
    list_init(head);
}

static uint64_t window_end(const struct wheel *w) { return w->next_tick * w->tick_ms; }

/* When advance must run for e: its own millisecond when near, else the
 * start of its tick (when it moves near). */
static uint64_t wake_of(const struct wheel *w, uint64_t due_ms) {
    if (due_ms < window_end(w)) return due_ms > w->next_ms ? due_ms : w->next_ms;
    return due_ms - due_ms % w->tick_ms;
}

static void insert(struct wheel *w, struct wheel_entry *e) {
    uint64_t due = e->due_ms;
    if (due < window_end(w)) list_push(&w->near[(due > w->next_ms ? due : w->next_ms) & NEAR_MASK], e);
    else list_push(&w->slots[(due / w->tick_ms) & SLOT_MASK], e);
    uint64_t wake = wake_of(w, due);
    if (wake < w->next_due) w->next_due = wake;
}

/* Points the wheel at now_ms; only while it holds nothing. */
static void reset_to(struct wheel *w, uint64_t now_ms) {
    w->next_ms = now_ms;
    w->next_tick = now_ms / w->tick_ms + 1;
    w->next_due = WHEEL_NEVER;
}

void wheel_init(struct wheel *w, uint64_t tick_ms, uint64_t now_ms) {
    for (size_t i = 0; i < WHEEL_SLOTS; i++) list_init(&w->slots[i]);
    for (size_t i = 0; i < WHEEL_NEAR_SLOTS; i++) list_init(&w->near[i]);
    w->tick_ms = !tick_ms ? 1 : tick_ms > WHEEL_NEAR_SLOTS ? WHEEL_NEAR_SLOTS : tick_ms;
    w->count = 0;
    reset_to(w, now_ms);
}

void wheel_schedule(struct wheel *w, struct wheel_entry *e, uint64_t due_ms) {
    if (wheel_is_scheduled(e)) list_unlink(e);
    else w->count++;
    e->due_ms = due_ms;
    insert(w, e);
}

void wheel_schedule_by(struct wheel *w, struct wheel_entry *e, uint64_t due_ms) {
    if (wheel_is_scheduled(e) && e->due_ms <= due_ms) return;
    wheel_schedule(w, e, due_ms);
}

void wheel_cancel(struct wheel *w, struct wheel_entry *e) {
    if (!wheel_is_scheduled(e)) return;
    list_unlink(e);
    w->count--;
    /* next_due stays: an early wake finds nothing and looks again. */
}

/* The tick next_tick begins: its entries move near, those of later rounds
 * stay. */
static void begin_tick(struct wheel *w) {
    struct wheel_entry pending;
    list_take(&w->slots[w->next_tick & SLOT_MASK], &pending);
    w->next_tick++;
    while (!list_empty(&pending)) {
        struct wheel_entry *e = pending.next;
        list_unlink(e);
        insert(w, e);
    }
}

/* The exact next_due: the first near millisecond holding entries, else the
 * first tick (within a round) holding any. */
static uint64_t find_next_due(const struct wheel *w) {
    if (!w->count) return WHEEL_NEVER;
    for (uint64_t t = w->next_ms; t < window_end(w); t++)
        if (!list_empty(&w->near[t & NEAR_MASK])) return t;
    for (uint64_t k = w->next_tick; k < w->next_tick + WHEEL_SLOTS; k++)
        if (!list_empty(&w->slots[k & SLOT_MASK])) return k * w->tick_ms;
    return WHEEL_NEVER; /* not reached: count says something is scheduled */
}

void wheel_advance(struct wheel *w, uint64_t now_ms, void (*fire)(struct wheel_entry *e, void *ud),
                   void *ud) {
    if (now_ms < w->next_ms) return;
    while (w->next_ms <= now_ms) {
        if (!w->count) { /* nothing to visit: jump (after a stall, too) */
            reset_to(w, now_ms + 1);
            return;
        }
        struct wheel_entry pending;
        list_take(&w->near[w->next_ms & NEAR_MASK], &pending);
        w->next_ms++;
        if (w->next_ms == window_end(w)) begin_tick(w);
        /* Everything taken was due by the millisecond just passed. */
        while (!list_empty(&pending)) {
            struct wheel_entry *e = pending.next;
            list_unlink(e);
            w->count--;
            fire(e, ud);
        }
    }
    w->next_due = find_next_due(w);
}
