/* pattern_cost: an upper bound on the work Lua's pattern matcher may do
 * for one call of string.find, match, gmatch or gsub, computed before it
 * runs. The matcher is one C call that no hook can interrupt, and it
 * backtracks: each quantified item (x*, x+, x-) may try every length of
 * the run of characters its class matches, so the work grows as the
 * product of those runs, times the positions tried. A call whose bound is
 * over the budget is refused instead of run. Pure: no Lua, no libuv. */
#ifndef SPACE_PATTERN_COST_H
#define SPACE_PATTERN_COST_H

#include <stddef.h>

enum pattern_call {
    PATTERN_FIND,  /* also match: the first match from init, '^' anchors */
    PATTERN_GSUB,  /* every match from the start, '^' anchors */
    PATTERN_GMATCH /* every match from init, '^' is a plain character */
};

/* Steps (roughly: characters compared) that the call may take on the
 * subject s[0, n) from the 1-based init (Lua's rules for a negative or
 * out-of-range init), at most; a value over limit stands for "more than
 * limit" (the computation stops early). plain: find's fourth argument. */
double pattern_cost(enum pattern_call call, const char *s, size_t n, const char *p, size_t p_len,
                    long long init, int plain, double limit);

#endif
