#include "presence.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "json_scan.h"
#include "json_str.h"
#include "utf8.h"

/* {==================================================================
 * The replica
 * =================================================================== */

struct p_room;

/* One user in one room, over every remote node. Lives while conns > 0
 * (outside an operation: see op_finish). */
struct p_user {
    struct p_room *room;
    uint64_t conns;             /* sum of the nodes' entries for this (room, user) */
    char *name;                 /* NUL-terminated, the last one announced */
    size_t name_len;
    /* bookkeeping of the operation under way */
    struct p_user *touched_next;
    uint64_t before;            /* conns when first touched */
    int touched;
    size_t id_len;
    char id[];                  /* NUL-terminated; the key in room->users */
};

/* A room some remote node has users in. */
struct p_room {
    struct hmap users;          /* user id -> struct p_user */
    uint64_t conns;             /* sum of its users' conns */
    struct p_room *dead_next;   /* in the operation's list of emptied rooms */
    int dead;                   /* unlinked from p->rooms, freed at the end of the operation */
    size_t name_len;
    char name[];                /* NUL-terminated (may hold NUL); the key in p->rooms */
};

/* One node's connections of one user in one room (conns > 0). */
struct p_entry {
    struct p_user *user;
    uint32_t conns;
    size_t key_len;
    char key[];                 /* room, NUL, user id: unambiguous, as ids hold no NUL */
};

struct p_node {
    struct hmap entries;        /* key (see p_entry) -> struct p_entry */
    uint64_t seq;               /* the last q applied */
    uint64_t last_ms;           /* when it was last heard from */
    uint64_t asked_ms;          /* when its snapshot was last asked for */
    int stale;                  /* a message was lost: the entries may be wrong */
    int asked;
    struct p_node *expired_next;
    size_t uid_len;
    char uid[];                 /* the key in p->nodes */
};

struct presence {
    struct hmap nodes;          /* uid -> struct p_node */
    struct hmap rooms;          /* room -> struct p_room */
    /* the operation under way (op_touch, op_finish) */
    struct p_user *touched_head, *touched_tail;
    struct p_room *dead_rooms;
    /* this node */
    uint64_t seq;               /* membership changes announced (the last delta's q) */
    char sender[PRESENCE_MAX_UID_BYTES + 1];
    struct sbuf uid_json;       /* the uid as a JSON string, quotes included */
    size_t self_len;
    char self[];
};

static void *dup_bytes(const char *s, size_t len) {
    char *d = malloc(len + 1);
    if (!d) return NULL;
    if (len) memcpy(d, s, len);
    d[len] = 0;
    return d;
}

struct presence *presence_new(const char *self_uid) {
    size_t len = strlen(self_uid);
    if (len == 0 || len > PRESENCE_MAX_UID_BYTES || !utf8_valid(self_uid, len)) return NULL;
    struct presence *p = calloc(1, sizeof *p + len + 1);
    if (!p) return NULL;
    memcpy(p->self, self_uid, len + 1);
    p->self_len = len;
    if (json_str_escape(&p->uid_json, self_uid, len) != 0) {
        sbuf_free(&p->uid_json);
        free(p);
        return NULL;
    }
    return p;
}

static void free_node(struct p_node *n) {
    size_t i = 0;
    struct hmap_entry *e;
    while (hmap_next(&n->entries, &i, &e)) free(e->value);
    hmap_free(&n->entries);
    free(n);
}

void presence_free(struct presence *p) {
    if (!p) return;
    size_t i = 0;
    struct hmap_entry *e;
    while (hmap_next(&p->nodes, &i, &e)) free_node(e->value);
    hmap_free(&p->nodes);
    for (i = 0; hmap_next(&p->rooms, &i, &e);) {
        struct p_room *r = e->value;
        size_t j = 0;
        struct hmap_entry *ue;
        while (hmap_next(&r->users, &j, &ue)) {
            struct p_user *u = ue->value;
            free(u->name);
            free(u);
        }
        hmap_free(&r->users);
        free(r);
    }
    hmap_free(&p->rooms);
    sbuf_free(&p->uid_json);
    free(p);
}

/* {==================================================================
 * Operations: every change goes through touch, and op_finish reports the
 * transitions once the whole message applied, then frees what emptied.
 * =================================================================== */

static void op_touch(struct presence *p, struct p_user *u) {
    if (u->touched) return;
    u->touched = 1;
    u->before = u->conns;
    u->touched_next = NULL;
    if (p->touched_tail) p->touched_tail->touched_next = u;
    else p->touched_head = u;
    p->touched_tail = u;
}

static struct presence_user user_view(const struct p_user *u) {
    return (struct presence_user){u->room->name, u->room->name_len, u->id, u->id_len, u->name, u->name_len, u->conns};
}

static void op_finish(struct presence *p, presence_change_fn on_change, void *ud) {
    /* Unlink the emptied users and rooms first, so that the callbacks' queries no longer see them. */
    for (struct p_user *u = p->touched_head; u; u = u->touched_next) {
        if (u->conns) continue;
        struct p_room *r = u->room;
        hmap_del(&r->users, u->id, u->id_len);
        if (r->users.count == 0 && !r->dead) {
            hmap_del(&p->rooms, r->name, r->name_len);
            r->dead = 1;
            r->dead_next = p->dead_rooms;
            p->dead_rooms = r;
        }
    }
    if (on_change)
        for (struct p_user *u = p->touched_head; u; u = u->touched_next) {
            if ((u->before == 0) == (u->conns == 0)) continue;
            struct presence_user v = user_view(u);
            on_change(ud, &v, u->conns > 0);
        }
    for (struct p_user *u = p->touched_head, *next; u; u = next) {
        next = u->touched_next;
        u->touched = 0;
        if (!u->conns) {
            free(u->name);
            free(u);
        }
    }
    p->touched_head = p->touched_tail = NULL;
    for (struct p_room *r = p->dead_rooms, *next; r; r = next) {
        next = r->dead_next;
        hmap_free(&r->users);
        free(r);
    }
    p->dead_rooms = NULL;
}

/* The room, created (empty) when absent; NULL on OOM. */
static struct p_room *room_get(struct presence *p, const char *name, size_t len) {
    struct p_room *r = hmap_get(&p->rooms, name, len);
    if (r) return r;
    r = calloc(1, sizeof *r + len + 1);
    if (!r) return NULL;
    memcpy(r->name, name, len);
    r->name_len = len;
    if (hmap_put(&p->rooms, r->name, len, r) != 0) {
        free(r);
        return NULL;
    }
    return r;
}

/* A room just made by room_get whose first user could not be added. */
static void room_drop_if_empty(struct presence *p, struct p_room *r) {
    if (r->users.count) return;
    hmap_del(&p->rooms, r->name, r->name_len);
    hmap_free(&r->users);
    free(r);
}

/* The user in r, created (0 connections, touched, so that op_finish frees
 * it if nothing is added) when absent; NULL on OOM. */
static struct p_user *user_get(struct presence *p, struct p_room *r, const char *id, size_t id_len,
                               const char *name, size_t name_len) {
    struct p_user *u = hmap_get(&r->users, id, id_len);
    if (u) return u;
    u = calloc(1, sizeof *u + id_len + 1);
    if (!u) return NULL;
    memcpy(u->id, id, id_len);
    u->id_len = id_len;
    u->room = r;
    u->name = dup_bytes(name, name_len);
    u->name_len = name_len;
    if (!u->name || hmap_put(&r->users, u->id, id_len, u) != 0) {
        free(u->name);
        free(u);
        return NULL;
    }
    op_touch(p, u);
    return u;
}

static void user_rename(struct p_user *u, const char *name, size_t len) {
    if (u->name_len == len && memcmp(u->name, name, len) == 0) return;
    char *d = dup_bytes(name, len);
    if (!d) return; /* keeps the old name: only listings show it */
    free(u->name);
    u->name = d;
    u->name_len = len;
}

/* Sets node n's connections of (room, id) to conns. 0, or PRESENCE_ENOMEM (nothing changed). */
static int entry_set(struct presence *p, struct p_node *n, const char *room, size_t room_len, const char *id,
                     size_t id_len, const char *name, size_t name_len, uint32_t conns) {
    char key[PRESENCE_MAX_FIELD_BYTES * 2 + 1];
    memcpy(key, room, room_len);
    key[room_len] = 0;
    memcpy(key + room_len + 1, id, id_len);
    size_t key_len = room_len + 1 + id_len;
    struct p_entry *e = hmap_get(&n->entries, key, key_len);
    if (!e) {
        if (!conns) return 0;
        struct p_room *r = room_get(p, room, room_len);
        if (!r) return PRESENCE_ENOMEM;
        struct p_user *u = user_get(p, r, id, id_len, name, name_len);
        if (!u) {
            room_drop_if_empty(p, r);
            return PRESENCE_ENOMEM;
        }
        e = malloc(sizeof *e + key_len);
        if (!e) return PRESENCE_ENOMEM; /* u is touched with 0 connections: op_finish frees it */
        memcpy(e->key, key, key_len);
        e->key_len = key_len;
        e->user = u;
        e->conns = 0;
        if (hmap_put(&n->entries, e->key, key_len, e) != 0) {
            free(e);
            return PRESENCE_ENOMEM;
        }
    }
    struct p_user *u = e->user;
    op_touch(p, u);
    if (conns) user_rename(u, name, name_len);
    u->conns = u->conns - e->conns + conns;
    u->room->conns = u->room->conns - e->conns + conns;
    if (conns) {
        e->conns = conns;
    } else {
        hmap_del(&n->entries, e->key, e->key_len);
        free(e);
    }
    return 0;
}

/* Takes away everything in entries (a node's, or its old ones) and frees it. */
static void entries_drop(struct presence *p, struct hmap *entries) {
    size_t i = 0;
    struct hmap_entry *he;
    while (hmap_next(entries, &i, &he)) {
        struct p_entry *e = he->value;
        op_touch(p, e->user);
        e->user->conns -= e->conns;
        e->user->room->conns -= e->conns;
        free(e);
    }
    hmap_free(entries);
}

static void node_drop(struct presence *p, struct p_node *n) {
    hmap_del(&p->nodes, n->uid, n->uid_len);
    entries_drop(p, &n->entries);
    free(n);
}

static struct p_node *node_get(struct presence *p, const char *uid, size_t len, int *oom) {
    struct p_node *n = hmap_get(&p->nodes, uid, len);
    if (n) return n;
    if (p->nodes.count >= PRESENCE_MAX_NODES) return NULL;
    n = calloc(1, sizeof *n + len + 1);
    if (!n) {
        *oom = 1;
        return NULL;
    }
    memcpy(n->uid, uid, len);
    n->uid_len = len;
    if (hmap_put(&p->nodes, n->uid, len, n) != 0) {
        free(n);
        *oom = 1;
        return NULL;
    }
    return n;
}

/* {==================================================================
 * Reading messages
 * =================================================================== */

/* The next element of the array a (valid JSON; *pos starts at 0): 1 with
 * *el, 0 at the end, -1 when a is not an array. */
static int array_next(struct slice a, size_t *pos, struct slice *el) {
    size_t i = *pos;
#define SKIP_WS() while (i < a.len && (a.p[i] == ' ' || a.p[i] == '\t' || a.p[i] == '\n' || a.p[i] == '\r')) i++
    if (i >= a.len) return 0;
    SKIP_WS();
    if (i >= a.len) return -1;
    if (*pos == 0) {
        if (a.p[i] != '[') return -1;
        i++;
        SKIP_WS();
        if (i < a.len && a.p[i] == ']') {
            *pos = a.len;
            return 0;
        }
    } else if (a.p[i] == ']') {
        *pos = a.len;
        return 0;
    } else if (a.p[i] == ',') {
        i++;
    } else {
        return -1;
    }
    long end = json_scan_value(a.p, a.len, i); /* the end past trailing whitespace */
    if (end < 0) return -1;
    size_t e = (size_t)end;
    while (e > i && (a.p[e - 1] == ' ' || a.p[e - 1] == '\t' || a.p[e - 1] == '\n' || a.p[e - 1] == '\r')) e--;
    *el = (struct slice){a.p + i, e - i};
    *pos = (size_t)end;
    return 1;
#undef SKIP_WS
}

/* Decodes the string token v (valid JSON) into out (at least max + 1
 * bytes): its length, or -1 when v is not a string, decodes to more than
 * max bytes, or holds a NUL when nul_ok is 0. */
static long read_str(struct slice v, char *out, size_t max, int nul_ok) {
    if (v.len < 2 || v.p[0] != '"' || v.p[v.len - 1] != '"') return -1;
    size_t n = json_str_unescaped_len(v.p + 1, v.len - 2);
    if (n > max) return -1;
    json_str_unescape(v.p + 1, v.len - 2, out);
    out[n] = 0;
    if (!nul_ok && memchr(out, 0, n)) return -1;
    return (long)n;
}

/* A whole number 0..max. */
static int read_uint(struct slice v, uint64_t max, uint64_t *out) {
    int64_t x;
    if (v.len == 0 || v.p[0] == '-' || json_int_value(v, &x, 0) != 0 || x < 0 || (uint64_t)x > max) return -1;
    *out = (uint64_t)x;
    return 0;
}

/* One (room, user) of a message, decoded. */
struct item {
    char room[PRESENCE_MAX_FIELD_BYTES + 1];
    char id[PRESENCE_MAX_FIELD_BYTES + 1];
    char name[PRESENCE_MAX_FIELD_BYTES + 1];
    size_t room_len, id_len, name_len;
    uint64_t conns;
};

static int read_room(struct slice v, struct item *it) {
    long n = read_str(v, it->room, PRESENCE_MAX_FIELD_BYTES, 1);
    if (n < 0) return -1;
    it->room_len = (size_t)n;
    return 0;
}

static int read_user(struct slice id, struct slice name, struct slice conns, struct item *it) {
    long n = read_str(id, it->id, PRESENCE_MAX_FIELD_BYTES, 0);
    if (n <= 0) return -1;
    it->id_len = (size_t)n;
    n = read_str(name, it->name, PRESENCE_MAX_FIELD_BYTES, 0);
    if (n < 0) return -1;
    it->name_len = (size_t)n;
    return read_uint(conns, UINT32_MAX, &it->conns);
}

/* The top level of a message. */
struct msg {
    char kind;
    struct slice uid, room, id, name, conns, entries, to;
    uint64_t seq;
};

enum { F_T = 1, F_N = 2, F_Q = 4, F_R = 8, F_U = 16, F_M = 32, F_C = 64, F_E = 128, F_W = 256 };

static int parse_msg(const char *p, size_t len, struct msg *m) {
    memset(m, 0, sizeof *m);
    size_t pos = 0;
    unsigned seen = 0;
    struct json_member jm;
    int rc;
    while ((rc = json_object_next(p, len, &pos, &jm)) == 1) {
        if (jm.key.len != 1) continue;
        unsigned f;
        struct slice *dst = NULL;
        switch (jm.key.p[0]) {
        case 't': f = F_T; break;
        case 'n': f = F_N, dst = &m->uid; break;
        case 'q': f = F_Q; break;
        case 'r': f = F_R, dst = &m->room; break;
        case 'u': f = F_U, dst = &m->id; break;
        case 'm': f = F_M, dst = &m->name; break;
        case 'c': f = F_C, dst = &m->conns; break;
        case 'e': f = F_E, dst = &m->entries; break;
        case 'w': f = F_W, dst = &m->to; break;
        default: continue;
        }
        if (seen & f) return -1;
        seen |= f;
        if (dst) *dst = jm.value;
        if (f == F_T) {
            if (jm.value.len != 3 || jm.value.p[0] != '"' || !jm.value.p[1] || !strchr("dhsig", jm.value.p[1]))
                return -1;
            m->kind = jm.value.p[1];
        } else if (f == F_Q && read_uint(jm.value, INT64_MAX, &m->seq) != 0) {
            return -1;
        }
    }
    if (rc < 0 || (seen & (F_T | F_N | F_Q)) != (F_T | F_N | F_Q)) return -1;
    unsigned need = m->kind == 'd' ? F_R | F_U | F_M | F_C : m->kind == 's' ? F_E : 0;
    return (seen & need) == need ? 0 : -1;
}

/* Walks a snapshot's entries (the "e" array), calling each on every user
 * when each is given. 0, -1 when malformed, or what each returned (< 0). */
static int snapshot_walk(struct slice entries, struct item *it, int (*each)(void *ud, struct item *it),
                         void *ud) {
    size_t gpos = 0;
    struct slice group;
    int rc;
    while ((rc = array_next(entries, &gpos, &group)) == 1) {
        size_t pos = 0;
        struct slice el;
        if (array_next(group, &pos, &el) != 1 || read_room(el, it) != 0) return -1;
        while ((rc = array_next(group, &pos, &el)) == 1) {
            size_t upos = 0;
            struct slice f[3], extra;
            for (int k = 0; k < 3; k++)
                if (array_next(el, &upos, &f[k]) != 1) return -1;
            if (array_next(el, &upos, &extra) != 0 || read_user(f[0], f[1], f[2], it) != 0) return -1;
            if (each && (rc = each(ud, it)) != 0) return rc;
        }
        if (rc < 0) return -1;
    }
    return rc < 0 ? -1 : 0;
}

struct snapshot_ctx {
    struct presence *p;
    struct p_node *n;
};

static int snapshot_item(void *ud, struct item *it) {
    struct snapshot_ctx *c = ud;
    return entry_set(c->p, c->n, it->room, it->room_len, it->id, it->id_len, it->name, it->name_len,
                     (uint32_t)it->conns);
}

/* Replaces node n's entries with the snapshot's (valid: checked before). */
static int snapshot_apply(struct presence *p, struct p_node *n, struct slice entries, struct item *it) {
    struct hmap old = n->entries;
    n->entries = (struct hmap){0};
    /* A user in both may touch 0 in between: no matter, op_finish compares each
     * user before and after the whole message. */
    struct snapshot_ctx c = {p, n};
    int rc = snapshot_walk(entries, it, snapshot_item, &c);
    entries_drop(p, &old);
    return rc;
}

int presence_apply(struct presence *p, const char *msg, size_t len, uint64_t now_ms, presence_change_fn on_change,
                   void *ud) {
    struct msg m;
    char uid[PRESENCE_MAX_UID_BYTES + 1];
    if (parse_msg(msg, len, &m) != 0) return PRESENCE_EBAD;
    long uid_len = read_str(m.uid, uid, PRESENCE_MAX_UID_BYTES, 0);
    if (uid_len <= 0) return PRESENCE_EBAD;
    /* Everything is checked before anything changes: a refused message changes nothing. */
    struct item *it = malloc(sizeof *it);
    if (!it) return PRESENCE_ENOMEM;
    int rc = 0;
    char to[PRESENCE_MAX_UID_BYTES + 1];
    long to_len = -1;
    if (m.kind == 'd') {
        if (read_room(m.room, it) != 0 || read_user(m.id, m.name, m.conns, it) != 0) rc = PRESENCE_EBAD;
        else if (m.seq == 0) rc = PRESENCE_EBAD; /* a delta takes the next number: 1 at least */
    } else if (m.kind == 's') {
        if (snapshot_walk(m.entries, it, NULL, NULL) != 0) rc = PRESENCE_EBAD;
    } else if (m.kind == 'i' && m.to.p) {
        to_len = read_str(m.to, to, PRESENCE_MAX_UID_BYTES, 0);
        if (to_len <= 0) rc = PRESENCE_EBAD;
    }
    if (rc != 0 || ((size_t)uid_len == p->self_len && memcmp(uid, p->self, p->self_len) == 0)) {
        free(it);
        return rc; /* ours: this node knows its own memberships */
    }

    if (m.kind == 'g') {
        memcpy(p->sender, uid, (size_t)uid_len + 1);
        struct p_node *n = hmap_get(&p->nodes, uid, (size_t)uid_len);
        if (n) {
            node_drop(p, n);
            op_finish(p, on_change, ud);
        }
        free(it);
        return 0;
    }
    int oom = 0;
    struct p_node *n = node_get(p, uid, (size_t)uid_len, &oom);
    if (!n) {
        free(it);
        return oom ? PRESENCE_ENOMEM : PRESENCE_EBAD;
    }
    memcpy(p->sender, uid, (size_t)uid_len + 1);
    n->last_ms = now_ms;
    switch (m.kind) {
    case 'd':
        if (m.seq <= n->seq) break; /* a repeat, or older than a snapshot applied since */
        if (m.seq != n->seq + 1) n->stale = 1;
        n->seq = m.seq;
        rc = entry_set(p, n, it->room, it->room_len, it->id, it->id_len, it->name, it->name_len,
                       (uint32_t)it->conns);
        break;
    case 's':
        if (m.seq < n->seq) break; /* older than the deltas already applied */
        rc = snapshot_apply(p, n, m.entries, it);
        n->seq = m.seq;
        n->stale = n->asked = 0;
        break;
    case 'i':
        if (to_len < 0 || ((size_t)to_len == p->self_len && memcmp(to, p->self, p->self_len) == 0))
            rc = PRESENCE_SEND_SNAPSHOT;
        __attribute__((fallthrough)); /* a hello tells the sender's q as a heartbeat does */
    case 'h':
        if (m.seq != n->seq) {
            n->stale = 1;
            n->seq = m.seq; /* the deltas after it go on from there (also when a uid was reused) */
        }
        break;
    }
    free(it);
    op_finish(p, on_change, ud);
    if (rc == PRESENCE_ENOMEM) {
        n->stale = 1; /* a change is missing: the next message asks for a snapshot */
        n->asked = 0;
        return rc;
    }
    if (n->stale && (!n->asked || now_ms - n->asked_ms >= PRESENCE_RESYNC_MS || now_ms < n->asked_ms)) {
        n->asked = 1;
        n->asked_ms = now_ms;
        rc |= PRESENCE_WANT_SNAPSHOT;
    }
    return rc;
}

const char *presence_sender(const struct presence *p) { return p->sender; }

size_t presence_expire(struct presence *p, uint64_t now_ms, uint64_t timeout_ms, presence_change_fn on_change,
                       void *ud) {
    struct p_node *expired = NULL;
    size_t i = 0, dropped = 0;
    struct hmap_entry *e;
    while (hmap_next(&p->nodes, &i, &e)) {
        struct p_node *n = e->value;
        if (now_ms > n->last_ms && now_ms - n->last_ms > timeout_ms) {
            n->expired_next = expired;
            expired = n;
        }
    }
    for (struct p_node *n = expired, *next; n; n = next) {
        next = n->expired_next;
        node_drop(p, n);
        dropped++;
    }
    if (dropped) op_finish(p, on_change, ud);
    return dropped;
}

/* {==================================================================
 * Writing messages
 * =================================================================== */

/* Appends s as a JSON string; EBAD when it is longer than max, holds a NUL
 * (unless nul_ok) or is not UTF-8. */
static int put_str(struct sbuf *out, const char *s, size_t len, size_t max, int nul_ok) {
    if (len > max || (!nul_ok && memchr(s, 0, len))) return PRESENCE_EBAD;
    int rc = json_str_escape(out, s, len);
    return rc == 0 ? 0 : rc == JSON_STR_NOT_UTF8_RC ? PRESENCE_EBAD : PRESENCE_ENOMEM;
}

/* Appends len bytes; ENOMEM when out cannot grow (sbuf's -1 would read as EBAD). */
static int put_raw(struct sbuf *out, const char *s, size_t len) {
    return sbuf_append(out, s, len) == 0 ? 0 : PRESENCE_ENOMEM;
}

/* {"t":"<kind>","n":<uid>,"q":<seq> (the object left open). */
static int put_head(const struct presence *p, struct sbuf *out, char kind, uint64_t seq) {
    if (sbuf_printf(out, "{\"t\":\"%c\",\"n\":", kind) != 0 || sbuf_append(out, p->uid_json.p, p->uid_json.len) != 0 ||
        sbuf_printf(out, ",\"q\":%" PRIu64, seq) != 0)
        return PRESENCE_ENOMEM;
    return 0;
}

/* Ends a message started at start: the rc, with out restored on error. */
static int put_done(struct sbuf *out, size_t start, int rc) {
    if (rc == 0 && sbuf_putc(out, '}') != 0) rc = PRESENCE_ENOMEM;
    if (rc != 0) out->len = start;
    return rc;
}

int presence_encode_delta(struct presence *p, struct sbuf *out, const char *room, size_t room_len, const char *id,
                          size_t id_len, const char *name, size_t name_len, uint64_t conns) {
    size_t start = out->len;
    if (id_len == 0 || conns > UINT32_MAX) return PRESENCE_EBAD;
    int rc = put_head(p, out, 'd', p->seq + 1);
    if (rc == 0) rc = put_raw(out, ",\"r\":", 5);
    if (rc == 0) rc = put_str(out, room, room_len, PRESENCE_MAX_FIELD_BYTES, 1);
    if (rc == 0) rc = put_raw(out, ",\"u\":", 5);
    if (rc == 0) rc = put_str(out, id, id_len, PRESENCE_MAX_FIELD_BYTES, 0);
    if (rc == 0) rc = put_raw(out, ",\"m\":", 5);
    if (rc == 0) rc = put_str(out, name, name_len, PRESENCE_MAX_FIELD_BYTES, 0);
    if (rc == 0 && sbuf_printf(out, ",\"c\":%" PRIu64, conns) != 0) rc = PRESENCE_ENOMEM;
    rc = put_done(out, start, rc);
    if (rc == 0) p->seq++;
    return rc;
}

int presence_encode_heartbeat(const struct presence *p, struct sbuf *out) {
    return put_done(out, out->len, put_head(p, out, 'h', p->seq));
}

int presence_encode_goodbye(const struct presence *p, struct sbuf *out) {
    return put_done(out, out->len, put_head(p, out, 'g', p->seq));
}

int presence_encode_hello(const struct presence *p, struct sbuf *out, const char *to, size_t to_len) {
    size_t start = out->len;
    if (to && to_len == 0) return PRESENCE_EBAD;
    int rc = put_head(p, out, 'i', p->seq);
    if (rc == 0 && to) {
        rc = put_raw(out, ",\"w\":", 5);
        if (rc == 0) rc = put_str(out, to, to_len, PRESENCE_MAX_UID_BYTES, 0);
    }
    return put_done(out, start, rc);
}

int presence_snapshot_begin(struct presence_snapshot *s, const struct presence *p, struct sbuf *out) {
    *s = (struct presence_snapshot){.out = out, .start = out->len};
    int rc = put_head(p, out, 's', p->seq);
    if (rc == 0) rc = put_raw(out, ",\"e\":[", 6);
    if (rc != 0) {
        out->len = s->start;
        s->err = rc;
    }
    return rc;
}

int presence_snapshot_room(struct presence_snapshot *s, const char *room, size_t len) {
    if (s->err) return s->err;
    struct sbuf *out = s->out;
    size_t mark = out->len;
    int rc = 0;
    if (s->room_open && sbuf_putc(out, ']') != 0) rc = PRESENCE_ENOMEM;
    if (rc == 0 && s->groups && sbuf_putc(out, ',') != 0) rc = PRESENCE_ENOMEM;
    if (rc == 0 && sbuf_putc(out, '[') != 0) rc = PRESENCE_ENOMEM;
    if (rc == 0) rc = put_str(out, room, len, PRESENCE_MAX_FIELD_BYTES, 1);
    if (rc == PRESENCE_EBAD) {
        /* Left out: the previous room stays as it was (closed now, so no later user lands in it). */
        out->len = mark;
        if (s->room_open && sbuf_putc(out, ']') != 0) rc = PRESENCE_ENOMEM;
        s->room_open = 0;
        s->room_refused = 1;
    } else if (rc == 0) {
        s->groups++;
        s->room_open = 1;
        s->room_refused = 0;
    }
    if (rc == PRESENCE_ENOMEM) s->err = rc;
    return rc;
}

int presence_snapshot_user(struct presence_snapshot *s, const char *id, size_t id_len, const char *name,
                           size_t name_len, uint64_t conns) {
    if (s->err) return s->err;
    if (!s->room_open || s->room_refused || id_len == 0 || conns > UINT32_MAX) return PRESENCE_EBAD;
    struct sbuf *out = s->out;
    size_t mark = out->len;
    int rc = put_raw(out, ",[", 2);
    if (rc == 0) rc = put_str(out, id, id_len, PRESENCE_MAX_FIELD_BYTES, 0);
    if (rc == 0) rc = sbuf_putc(out, ',') != 0 ? PRESENCE_ENOMEM : 0;
    if (rc == 0) rc = put_str(out, name, name_len, PRESENCE_MAX_FIELD_BYTES, 0);
    if (rc == 0) rc = sbuf_printf(out, ",%" PRIu64 "]", conns) != 0 ? PRESENCE_ENOMEM : 0;
    if (rc != 0) out->len = mark;
    if (rc == PRESENCE_ENOMEM) s->err = rc;
    return rc;
}

int presence_snapshot_end(struct presence_snapshot *s) {
    struct sbuf *out = s->out;
    int rc = s->err;
    if (rc == 0 && s->room_open && sbuf_putc(out, ']') != 0) rc = PRESENCE_ENOMEM;
    if (rc == 0 && sbuf_append(out, "]}", 2) != 0) rc = PRESENCE_ENOMEM;
    if (rc != 0) out->len = s->start;
    s->room_open = 0;
    s->err = rc ? rc : PRESENCE_EBAD; /* ended: no more steps */
    return rc;
}

/* {==================================================================
 * Queries
 * =================================================================== */

size_t presence_room_users(const struct presence *p, const char *room, size_t len, presence_user_fn each, void *ud) {
    const struct p_room *r = hmap_get(&p->rooms, room, len);
    if (!r) return 0;
    if (each) {
        size_t i = 0;
        struct hmap_entry *e;
        while (hmap_next(&r->users, &i, &e)) {
            struct presence_user v = user_view(e->value);
            each(ud, &v);
        }
    }
    return r->users.count;
}

uint64_t presence_room_conns(const struct presence *p, const char *room, size_t len) {
    const struct p_room *r = hmap_get(&p->rooms, room, len);
    return r ? r->conns : 0;
}

uint64_t presence_user_conns(const struct presence *p, const char *room, size_t len, const char *id, size_t id_len) {
    const struct p_room *r = hmap_get(&p->rooms, room, len);
    const struct p_user *u = r ? hmap_get(&r->users, id, id_len) : NULL;
    return u ? u->conns : 0;
}

int presence_room_has_user(const struct presence *p, const char *room, size_t len, const char *id, size_t id_len) {
    return presence_user_conns(p, room, len, id, id_len) > 0;
}

void presence_rooms(const struct presence *p, presence_room_fn each, void *ud) {
    size_t i = 0;
    struct hmap_entry *e;
    while (hmap_next(&p->rooms, &i, &e)) {
        const struct p_room *r = e->value;
        struct presence_room v = {r->name, r->name_len, r->users.count, r->conns};
        if (each(ud, &v)) return;
    }
}

void presence_user_rooms(const struct presence *p, const char *id, size_t id_len, presence_user_fn each, void *ud) {
    size_t i = 0;
    struct hmap_entry *e;
    while (hmap_next(&p->rooms, &i, &e)) {
        const struct p_room *r = e->value;
        const struct p_user *u = hmap_get(&r->users, id, id_len);
        if (!u) continue;
        struct presence_user v = user_view(u);
        each(ud, &v);
    }
}

size_t presence_room_count(const struct presence *p) { return p->rooms.count; }

size_t presence_node_count(const struct presence *p) { return p->nodes.count; }
