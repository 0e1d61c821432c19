#include "nsp_stats.h"

#include "server.h"
#include "sio.h"

size_t nsp_stats_rooms(const struct server *srv) {
    size_t n = 0;
    struct hmap_entry *e;
    for (size_t i = 0; hmap_next(&srv->namespaces, &i, &e);) n += ((const struct nsp *)e->value)->rooms.count;
    return n;
}
