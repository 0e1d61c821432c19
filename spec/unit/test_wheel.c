/* Unit tests for core/wheel.h: entries fire once, never before their due
 * time and, when advanced at wheel_next_due, at their exact millisecond;
 * next_due is never late; rescheduling, cancelling and scheduling from
 * inside fire work; far deadlines survive wheel rounds; a randomized run
 * is checked against a reference model (a plain array). */
#include <stdlib.h>

#include "check.h"
#include "wheel.h"

#define TICK 25

struct item {
    struct wheel_entry e; /* first: the entry converts to its item */
    int fired;
    uint64_t fired_at;
    uint64_t due; /* the model's view: 0 = not scheduled */
};

struct run {
    uint64_t now;
    struct wheel *w;
    struct item *resched; /* fire reschedules this one to now + 10 */
    struct item *pair[2]; /* fire of one of these cancels the other */
};

static void fire(struct wheel_entry *e, void *ud) {
    struct run *r = ud;
    struct item *it = (struct item *)e;
    it->fired++;
    it->fired_at = r->now;
    if (r->pair[0] == it) wheel_cancel(r->w, &r->pair[1]->e);
    if (r->pair[1] == it) wheel_cancel(r->w, &r->pair[0]->e);
    if (r->resched == it) {
        r->resched = NULL;
        wheel_schedule(r->w, e, r->now + 10);
    }
}

static void advance_to(struct wheel *w, struct run *r, uint64_t to) {
    for (; r->now <= to; r->now += 5) wheel_advance(w, r->now, fire, r);
    r->now = to;
}

static struct wheel *new_wheel(uint64_t now) {
    struct wheel *w = malloc(sizeof *w);
    wheel_init(w, TICK, now);
    return w;
}

TEST(fires_once_never_early_within_a_tick) {
    struct wheel *w = new_wheel(1000);
    struct run r = {.now = 1000, .w = w};
    struct item a = {0}, b = {0};
    wheel_schedule(w, &a.e, 1030);
    wheel_schedule(w, &b.e, 1050);
    CHECK_UINT(2, w->count);
    advance_to(w, &r, 1029);
    CHECK_INT(0, a.fired);
    advance_to(w, &r, 1200);
    CHECK_INT(1, a.fired);
    CHECK_INT(1, b.fired);
    CHECK(a.fired_at >= 1030 && a.fired_at < 1030 + TICK);
    CHECK(b.fired_at >= 1050 && b.fired_at < 1050 + TICK);
    CHECK(!wheel_is_scheduled(&a.e));
    CHECK_UINT(0, w->count);
    free(w);
}

TEST(overdue_entries_fire_at_the_next_advance) {
    struct wheel *w = new_wheel(1000);
    struct run r = {.now = 1000, .w = w};
    struct item a = {0};
    wheel_schedule(w, &a.e, 10); /* in the past */
    advance_to(w, &r, 1000 + TICK);
    CHECK_INT(1, a.fired);
    free(w);
}

TEST(reschedule_and_schedule_by) {
    struct wheel *w = new_wheel(0);
    struct run r = {.now = 0, .w = w};
    struct item a = {0};
    wheel_schedule(w, &a.e, 100);
    wheel_schedule(w, &a.e, 500); /* later */
    wheel_schedule_by(w, &a.e, 900); /* ignored: already due earlier */
    CHECK_UINT(500, a.e.due_ms);
    wheel_schedule_by(w, &a.e, 300); /* earlier */
    CHECK_UINT(300, a.e.due_ms);
    CHECK_UINT(1, w->count);
    advance_to(w, &r, 299);
    CHECK_INT(0, a.fired);
    advance_to(w, &r, 400);
    CHECK_INT(1, a.fired);
    free(w);
}

TEST(cancel_and_cancel_from_fire) {
    struct wheel *w = new_wheel(0);
    struct item a = {0}, b = {0}, c = {0};
    struct run r = {.now = 0, .w = w, .pair = {&a, &b}};
    wheel_schedule(w, &a.e, 50);
    wheel_schedule(w, &b.e, 50); /* same slot: a's fire cancels it */
    wheel_schedule(w, &c.e, 60);
    wheel_cancel(w, &c.e);
    wheel_cancel(w, &c.e); /* twice is harmless */
    advance_to(w, &r, 200);
    CHECK_INT(1, a.fired + b.fired); /* whichever fired first cancelled the other */
    CHECK(!wheel_is_scheduled(&a.e) && !wheel_is_scheduled(&b.e));
    CHECK_INT(0, c.fired);
    CHECK_UINT(0, w->count);
    free(w);
}

TEST(schedule_from_fire_runs_later) {
    struct wheel *w = new_wheel(0);
    struct item a = {0};
    struct run r = {.now = 0, .w = w, .resched = &a};
    wheel_schedule(w, &a.e, 50);
    advance_to(w, &r, 50);
    CHECK_INT(1, a.fired);
    CHECK(wheel_is_scheduled(&a.e));
    advance_to(w, &r, 100);
    CHECK_INT(2, a.fired);
    CHECK(a.fired_at >= 60);
    free(w);
}

TEST(far_deadlines_survive_rounds_and_stalls) {
    struct wheel *w = new_wheel(0);
    struct run r = {.now = 0, .w = w};
    struct item a = {0}, b = {0};
    uint64_t round = (uint64_t)WHEEL_SLOTS * TICK;
    wheel_schedule(w, &a.e, 3 * round + 7);
    wheel_schedule(w, &b.e, 5 * round);
    advance_to(w, &r, 3 * round);
    CHECK_INT(0, a.fired);
    advance_to(w, &r, 3 * round + 40);
    CHECK_INT(1, a.fired);
    /* A stall: one advance far past b's deadline. */
    wheel_advance(w, 9 * round, fire, &r);
    CHECK_INT(1, b.fired);
    free(w);
}

/* Advances as the server's one timer does: to wheel_next_due, each time. */
static void run_timer_until(struct wheel *w, struct run *r, uint64_t until) {
    for (;;) {
        uint64_t due = wheel_next_due(w);
        if (due == WHEEL_NEVER || due > until) break;
        if (due > r->now) r->now = due;
        wheel_advance(w, r->now, fire, r);
    }
    r->now = until;
}

TEST(fires_at_its_exact_millisecond_not_the_tick) {
    struct wheel *w = new_wheel(1003);
    struct run r = {.now = 1003, .w = w};
    struct item a = {0}, b = {0}, c = {0}, d = {0};
    CHECK_UINT(WHEEL_NEVER, wheel_next_due(w));
    wheel_schedule(w, &a.e, 1003 + 300); /* inside a tick: 1303 */
    wheel_schedule(w, &b.e, 1010);       /* in the current tick */
    wheel_schedule(w, &c.e, 1003 + 1000);
    wheel_schedule(w, &d.e, 1003 + 3 * WHEEL_SLOTS * TICK + 1); /* rounds away */
    CHECK_UINT(1010, wheel_next_due(w));
    run_timer_until(w, &r, 1003 + 4 * WHEEL_SLOTS * TICK);
    CHECK_INT(1, a.fired);
    CHECK_UINT(1303, a.fired_at);
    CHECK_UINT(1010, b.fired_at);
    CHECK_UINT(2003, c.fired_at);
    CHECK_INT(1, d.fired);
    CHECK_UINT(1003 + 3 * WHEEL_SLOTS * TICK + 1, d.fired_at);
    CHECK_UINT(WHEEL_NEVER, wheel_next_due(w));
    free(w);
}

/* The heartbeat of the official suite's polling test: a ping every 300 ms,
 * each next one 300 ms after the pong (which comes 2 ms after the ping),
 * and a connect timeout at 1000. The third ping must go out before the
 * timeout: at 906, as from Node, not a tick per cycle later. */
struct beat {
    struct wheel_entry ping, timeout;
    struct wheel *w;
    uint64_t now;
    uint64_t pings_at[8];
    int pings;
    uint64_t timeout_at;
};

static void beat_fire(struct wheel_entry *e, void *ud) {
    struct beat *b = ud;
    if (e == &b->timeout) {
        b->timeout_at = b->now;
        return;
    }
    if (b->pings < 8) b->pings_at[b->pings] = b->now;
    b->pings++;
    wheel_schedule(b->w, &b->ping, b->now + 2 + 300); /* pong after 2 ms, next ping 300 later */
}

TEST(heartbeat_does_not_drift_past_the_connect_timeout) {
    for (uint64_t start = 5000; start < 5000 + TICK; start++) { /* every phase within a tick */
        struct wheel *w = new_wheel(start);
        struct beat b = {.w = w, .now = start};
        wheel_schedule(w, &b.ping, start + 300);
        wheel_schedule(w, &b.timeout, start + 1000);
        for (;;) {
            uint64_t due = wheel_next_due(w);
            if (due == WHEEL_NEVER || b.timeout_at) break;
            if (due > b.now) b.now = due;
            wheel_advance(w, b.now, beat_fire, &b);
        }
        CHECK_UINT(start + 300, b.pings_at[0]);
        CHECK_UINT(start + 602, b.pings_at[1]);
        CHECK_UINT(start + 904, b.pings_at[2]);
        CHECK_UINT(start + 1000, b.timeout_at);
        free(w);
    }
}

TEST(next_due_is_never_late) {
    struct wheel *w = new_wheel(0);
    struct item a = {0}, b = {0};
    wheel_schedule(w, &a.e, 700);
    CHECK(wheel_next_due(w) <= 700);
    wheel_schedule(w, &b.e, 40);
    CHECK(wheel_next_due(w) <= 40);
    /* A cancel may leave it early: advancing then finds nothing to fire
     * and makes it exact again. */
    wheel_cancel(w, &b.e);
    struct run r = {.now = wheel_next_due(w), .w = w};
    wheel_advance(w, r.now, fire, &r);
    CHECK_INT(0, a.fired);
    run_timer_until(w, &r, 699);
    CHECK_INT(0, a.fired);
    CHECK_UINT(700, wheel_next_due(w));
    run_timer_until(w, &r, 700);
    CHECK_INT(1, a.fired);
    CHECK_UINT(700, a.fired_at);
    /* Overdue when scheduled: due at once. */
    wheel_schedule(w, &b.e, 10);
    CHECK(wheel_next_due(w) <= 701);
    wheel_advance(w, 701, fire, &r);
    CHECK_INT(1, b.fired);
    free(w);
}

TEST(randomized_against_model) {
    enum { N = 300 };
    struct wheel *w = new_wheel(5000);
    struct run r = {.now = 5000, .w = w};
    static struct item items[N];
    memset(items, 0, sizeof items);
    srand(7);
    unsigned early = 0, lost = 0, late = 0;
    for (int step = 0; step < 20000; step++) {
        struct item *it = &items[rand() % N];
        int op = rand() % 10;
        if (op < 5) {
            uint64_t due = r.now + (uint64_t)(rand() % 60000);
            wheel_schedule(w, &it->e, due);
            it->due = due;
        } else if (op < 6) {
            wheel_cancel(w, &it->e);
            it->due = 0;
        } else {
            uint64_t to = r.now + (uint64_t)(rand() % 200);
            /* The wheel says when it has work; it must not be late. */
            uint64_t model_next = WHEEL_NEVER;
            for (int i = 0; i < N; i++)
                if (items[i].due && items[i].due < model_next) model_next = items[i].due;
            if (wheel_next_due(w) > model_next) late++;
            for (int i = 0; i < N; i++) items[i].fired = 0;
            wheel_advance(w, to, fire, &r);
            for (int i = 0; i < N; i++) {
                struct item *x = &items[i];
                if (x->fired) {
                    if (!x->due || x->due > to) early++;
                    x->due = 0;
                } else if (x->due && x->due <= to) {
                    lost++; /* due and not fired */
                }
            }
            r.now = to;
        }
    }
    CHECK_UINT(0, early);
    CHECK_UINT(0, lost);
    CHECK_UINT(0, late);
    uint64_t scheduled = 0;
    for (int i = 0; i < N; i++) scheduled += items[i].due != 0;
    CHECK_UINT(scheduled, w->count);
    free(w);
}

int main(void) {
    RUN(fires_once_never_early_within_a_tick);
    RUN(overdue_entries_fire_at_the_next_advance);
    RUN(reschedule_and_schedule_by);
    RUN(cancel_and_cancel_from_fire);
    RUN(schedule_from_fire_runs_later);
    RUN(far_deadlines_survive_rounds_and_stalls);
    RUN(fires_at_its_exact_millisecond_not_the_tick);
    RUN(heartbeat_does_not_drift_past_the_connect_timeout);
    RUN(next_due_is_never_late);
    RUN(randomized_against_model);
    return check_finish("test_wheel");
}
