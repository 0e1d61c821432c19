#include "wheel.h"

#include <stddef.h>

static void list_init(struct wheel_entry *head) { head->prev = head->next = head; }

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

void wheel_init(struct wheel *w, uint64_t tick_ms, uint64_t now_ms) {
    for (size_t i = 0; i < WHEEL_SLOTS; i++) list_init(&w->slots[i]);
    w->tick_ms = tick_ms ? tick_ms : 1;
    w->next_tick = now_ms / w->tick_ms + 1;
    w->count = 0;
}

/* The tick whose advance fires an entry due at due_ms: the first tick that
 * starts at or after due_ms, so nothing fires early; never one already
 * passed over. */
static uint64_t tick_of(const struct wheel *w, uint64_t due_ms) {
    uint64_t t = due_ms / w->tick_ms + (due_ms % w->tick_ms != 0);
    return t < w->next_tick ? w->next_tick : t;
}

static void insert(struct wheel *w, struct wheel_entry *e) {
    list_push(&w->slots[tick_of(w, e->due_ms) & (WHEEL_SLOTS - 1)], e);
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
}

void wheel_advance(struct wheel *w, uint64_t now_ms, void (*fire)(struct wheel_entry *e, void *ud),
                   void *ud) {
    uint64_t last = now_ms / w->tick_ms; /* ticks up to this one have started */
    if (last < w->next_tick) return;
    uint64_t first = w->next_tick;
    /* After a long stall, one pass over every slot covers everything. */
    if (last - first >= WHEEL_SLOTS) first = last - WHEEL_SLOTS + 1;
    w->next_tick = last + 1;
    for (uint64_t t = first; t <= last; t++) {
        /* Take the slot's list whole: fire may schedule into this slot. */
        struct wheel_entry pending;
        struct wheel_entry *head = &w->slots[t & (WHEEL_SLOTS - 1)];
        if (head->next == head) continue;
        pending.next = head->next;
        pending.prev = head->prev;
        pending.next->prev = &pending;
        pending.prev->next = &pending;
        list_init(head);
        while (pending.next != &pending) {
            struct wheel_entry *e = pending.next;
            list_unlink(e);
            if (e->due_ms > now_ms) { /* a later round of the wheel */
                insert(w, e);
                continue;
            }
            w->count--;
            fire(e, ud);
        }
    }
}
