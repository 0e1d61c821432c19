/* etag: If-None-Match against a response's entity tag. */
#ifndef SPACE_ETAG_H
#define SPACE_ETAG_H

#include "http.h"

/* Whether the If-None-Match value list names etag (a quoted tag): "*" or a
 * list of entity tags, compared weakly (W/ ignored). */
int etag_matches(struct slice list, const char *etag);

#endif
