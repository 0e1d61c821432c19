#include "cors.h"

#include <string.h>

int cors_origin_allowed(const struct slice *origin, const struct slice *host,
                        const char *const *allowed, int n_allowed) {
    if (!origin) return 1;
    for (int i = 0; i < n_allowed; i++)
        if (strcmp(allowed[i], "*") == 0 || slice_eq(*origin, allowed[i])) return 1;
    /* Same origin: the authority after "scheme://" is the Host the browser sent. */
    const char *sep = origin->len > 3 ? memchr(origin->p, ':', origin->len) : NULL;
    if (!sep || !host || (size_t)(origin->p + origin->len - sep) < 3 || sep[1] != '/' || sep[2] != '/')
        return 0;
    struct slice authority = {sep + 3, (size_t)(origin->p + origin->len - sep - 3)};
    if (authority.len == 0 || authority.len != host->len) return 0;
    for (size_t i = 0; i < host->len; i++) {
        char a = authority.p[i], b = host->p[i];
        if (a >= 'A' && a <= 'Z') a |= 0x20;
        if (b >= 'A' && b <= 'Z') b |= 0x20;
        if (a != b) return 0;
    }
    return 1;
}
