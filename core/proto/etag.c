#include "etag.h"

#include <string.h>

/* If-None-Match: "*" or a list of entity tags, compared weakly (W/ ignored). */
int etag_matches(struct slice list, const char *etag) {
    if (slice_eq(list, "*")) return 1;
    size_t elen = strlen(etag);
    const char *p = list.p, *end = list.p + list.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ',' || *p == '\t')) p++;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/') p += 2;
        const char *s = p;
        while (p < end && *p != ',') p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
        if ((size_t)(e - s) == elen && memcmp(s, etag, elen) == 0) return 1;
    }
    return 0;
}
