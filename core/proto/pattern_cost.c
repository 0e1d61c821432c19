#include "pattern_cost.h"


#include <ctype.h>
#include <stddef.h>
#include <string.h>

#define MAX_CLASSES 32           /* quantified items whose runs are measured; more count as the whole subject */
#define MAX_SCAN_BYTES 4000000 /* subject bytes x classes measured at most (a few ms: the scan is one C loop no hook stops); past it, the coarse bound stands */

/* A character class as a membership table. */
struct class {
    unsigned char in[256];
};

/* %a, %d, ... as the manual defines them (upper case: the complement);
 * any other character after '%' stands for itself. */
static int in_named_class(int c, int cl) {
    int r;
    switch (tolower(cl)) {
    case 'a': r = isalpha(c); break;
    case 'c': r = iscntrl(c); break;
    case 'd': r = isdigit(c); break;
    case 'g': r = isgraph(c); break;
    case 'l': r = islower(c); break;
    case 'p': r = ispunct(c); break;
    case 's': r = isspace(c); break;
    case 'u': r = isupper(c); break;
    case 'w': r = isalnum(c); break;
    case 'x': r = isxdigit(c); break;
    default: return cl == c;
    }
    if (isupper(cl)) r = !r;
    return r != 0;
}

/* Whether c is in the set p[open, close), p[open] being '[' and p[close]
 * its ']': an optional '^', then %-classes, ranges a-z and characters. */
static int in_set(const char *p, size_t open, size_t close, int c) {
    size_t i = open + 1;
    int found = 1;
    if (p[i] == '^') {
        found = 0;
        i++;
    }
    for (; i < close; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '%' && i + 1 < close) {
            i++;
            if (in_named_class(c, (unsigned char)p[i])) return found;
        } else if (i + 2 < close && p[i + 1] == '-') {
            if (ch <= c && c <= (unsigned char)p[i + 2]) return found;
            i += 2;
        } else if (ch == c) {
            return found;
        }
    }
    return !found;
}

/* The index of the ']' closing the set opened at p[open], or 0 when the
 * pattern ends first (the matcher raises there). */
static size_t set_end(const char *p, size_t len, size_t open) {
    size_t i = open + 1;
    if (i < len && p[i] == '^') i++;
    do { /* the first character is part of the set even when it is ']' */
        if (i >= len) return 0;
        if (p[i++] == '%' && i < len) i++;
    } while (i >= len || p[i] != ']');
    return i;
}

/* Parses the single-character class at p[i]; fills cl (when not NULL) and
 * returns the index after it, or 0 when the pattern is malformed there. */
static size_t parse_class(const char *p, size_t len, size_t i, struct class *cl) {
    unsigned char c = (unsigned char)p[i];
    if (c == '.') {
        if (cl) memset(cl->in, 1, sizeof cl->in);
        return i + 1;
    }
    if (c == '%') {
        if (i + 1 >= len) return 0;
        if (cl)
            for (int x = 0; x < 256; x++) cl->in[x] = (unsigned char)in_named_class(x, (unsigned char)p[i + 1]);
        return i + 2;
    }
    if (c == '[') {
        size_t close = set_end(p, len, i);
        if (!close) return 0;
        if (cl)
            for (int x = 0; x < 256; x++) cl->in[x] = (unsigned char)in_set(p, i, close, x);
        return close + 1;
    }
    if (cl) {
        memset(cl->in, 0, sizeof cl->in);
        cl->in[c] = 1;
    }
    return i + 1;
}

/* What the pattern is made of, as far as the cost goes. */
struct shape {
    int anchored;
    double items;      /* items matched one after another: the work of one path */
    double slow_items; /* %b and back references: each may scan the subject */
    double options;    /* x? items: two ways each */
    unsigned n_runs;   /* quantified items with a measured class */
    double unmeasured; /* quantified items beyond MAX_CLASSES */
    struct class runs[MAX_CLASSES]; /* last: parse fills each table it uses, so a reset stops short of them */
};

/* Zeroes the counts, not the 8 KiB of class tables (once per pattern call). */
static void shape_reset(struct shape *sh) { memset(sh, 0, offsetof(struct shape, runs)); }

/* measure: build the class tables of the quantified items (256 entries
 * each), needed only when the subject is scanned; without, every such
 * item counts as unmeasured (as long as the subject: the coarse bound). */
static void parse(const char *p, size_t len, int anchor_ok, int measure, struct shape *sh) {
    size_t i = 0;
    if (anchor_ok && len > 0 && p[0] == '^') {
        sh->anchored = 1;
        i = 1;
    }
    while (i < len) {
        unsigned char c = (unsigned char)p[i];
        sh->items++;
        if (c == '(' || c == ')' || (c == '$' && i + 1 == len)) {
            i++;
            continue;
        }
        if (c == '%' && i + 1 < len && (p[i + 1] == 'b' || p[i + 1] == 'f' || isdigit((unsigned char)p[i + 1]))) {
            if (p[i + 1] == 'b') {
                sh->slow_items++;
                i += 4;
            } else if (p[i + 1] == 'f') {
                if (i + 2 >= len || p[i + 2] != '[') return;
                size_t close = set_end(p, len, i + 2);
                if (!close) return;
                i = close + 1;
            } else {
                sh->slow_items++;
                i += 2;
            }
            continue;
        }
        struct class *cl = measure && sh->n_runs < MAX_CLASSES ? &sh->runs[sh->n_runs] : NULL;
        size_t end = parse_class(p, len, i, cl);
        if (!end) return; /* the matcher raises when it gets here */
        char q = end < len ? p[end] : 0;
        if (q == '*' || q == '+' || q == '-') {
            if (cl) sh->n_runs++;
            else sh->unmeasured++;
            end++;
        } else if (q == '?') {
            sh->options++;
            end++;
        }
        i = end;
    }
}

/* Lua's posrelatI: a 1-based position, negative from the end, clamped to 1. */
static size_t start_of(long long init, size_t n) {
    if (init > 0) return (size_t)init - 1;
    unsigned long long back = 0ull - (unsigned long long)init; /* -init, also for LLONG_MIN */
    if (init == 0 || back > n) return 0;
    return n - (size_t)back;
}

/* The positions tried, times the ways through the quantified items, times
 * the work of one way. Doubles: a product too large becomes infinity,
 * which is over any limit. */
static double bound(const struct shape *sh, const double *factors, double rest, double starts) {
    double per_path = sh->items + sh->slow_items * rest;
    double c = starts * (per_path < 1 ? 1 : per_path);
    for (unsigned k = 0; k < sh->n_runs; k++) c *= factors[k];
    for (double k = 0; k < sh->unmeasured; k++) c *= rest + 1;
    for (double k = 0; k < sh->options && c < 1e300; k++) c *= 2;
    return c;
}

double pattern_cost(enum pattern_call call, const char *s, size_t n, const char *p, size_t p_len,
                    long long init, int plain, double limit) {
    size_t from = call == PATTERN_GSUB ? 0 : start_of(init, n);
    if (from > n) {
        if (call != PATTERN_GMATCH) return 0; /* find and match fail at once */
        from = n;
    }
    double rest = (double)(n - from);
    if (plain) /* one comparison of up to the pattern's length per position */
        return p_len > n - from ? 1 : (rest - (double)p_len + 1) * (p_len ? (double)p_len : 1);

    /* First with every run as long as the subject, without class tables:
     * most calls end here, at the cost of one pass over the pattern. */
    struct shape sh;
    shape_reset(&sh);
    parse(p, p_len, call != PATTERN_GMATCH, 0, &sh);
    double starts = sh.anchored ? 1 : rest + 1;
    double factors[MAX_CLASSES] = {0};
    double c = bound(&sh, factors, rest, starts);
    if (c <= limit || sh.unmeasured == 0) return c;
    shape_reset(&sh);
    parse(p, p_len, call != PATTERN_GMATCH, 1, &sh);
    if (sh.n_runs == 0 || rest * sh.n_runs > MAX_SCAN_BYTES) return c;

    /* Then with the longest run each class really has in the subject. */
    size_t run[MAX_CLASSES] = {0}, longest[MAX_CLASSES] = {0};
    for (size_t i = from; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        for (unsigned k = 0; k < sh.n_runs; k++) {
            if (sh.runs[k].in[ch]) {
                if (++run[k] > longest[k]) longest[k] = run[k];
            } else {
                run[k] = 0;
            }
        }
    }
    for (unsigned k = 0; k < sh.n_runs; k++) factors[k] = (double)longest[k] + 1;
    return bound(&sh, factors, rest, starts);
}
