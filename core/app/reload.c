#include "reload.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "log.h"
#include "script.h"
#include "clock.h"
#include "server.h"

struct watched_dir {
    uv_fs_event_t handle;
    struct reloader *owner;
    char path[];
};

struct reloader {
    struct server *srv;
    uv_timer_t debounce;
    uv_signal_t sighup;
    struct watched_dir *dirs[RELOAD_MAX_WATCHED_DIRS];
    int n_dirs;
};

static void on_dir_closed(uv_handle_t *h) { free(h->data); }

static void unwatch_all(struct reloader *r) {
    for (int i = 0; i < r->n_dirs; i++) {
        r->dirs[i]->handle.data = r->dirs[i];
        uv_close((uv_handle_t *)&r->dirs[i]->handle, on_dir_closed);
    }
    r->n_dirs = 0;
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status);

static int is_watched(const struct reloader *r, const char *dir) {
    for (int i = 0; i < r->n_dirs; i++)
        if (strcmp(r->dirs[i]->path, dir) == 0) return 1;
    return 0;
}

/* Watches dir and every directory below it that is not watched yet
 * (bounded). Existing watches stay: closing them would drop the events
 * of a save that lands while a reload runs. */
static void watch_tree(struct reloader *r, const char *dir, int depth) {
    if (r->n_dirs == RELOAD_MAX_WATCHED_DIRS || depth > 8) return;
    if (!is_watched(r, dir)) {
        struct watched_dir *w = calloc(1, sizeof *w + strlen(dir) + 1);
        if (!w) return;
        strcpy(w->path, dir);
        w->owner = r;
        uv_fs_event_init(r->srv->loop, &w->handle);
        w->handle.data = w;
        if (uv_fs_event_start(&w->handle, on_fs_event, dir, 0) != 0) {
            uv_close((uv_handle_t *)&w->handle, on_dir_closed);
            return;
        }
        r->dirs[r->n_dirs++] = w;
    }
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue; /* ., .., and editors' hidden temp dirs */
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) watch_tree(r, path, depth + 1);
    }
    closedir(d);
}

static void watch_all(struct reloader *r) {
    watch_tree(r, r->srv->cfg->scripts_dir, 0);
    struct stat st;
    if (stat(r->srv->cfg->plugins_dir, &st) == 0 && S_ISDIR(st.st_mode)) watch_tree(r, r->srv->cfg->plugins_dir, 0);
}

/* Drops watches of directories that are gone (their inotify watch died with them). */
static void unwatch_missing(struct reloader *r) {
    struct stat st;
    for (int i = 0; i < r->n_dirs;) {
        if (stat(r->dirs[i]->path, &st) == 0 && S_ISDIR(st.st_mode)) {
            i++;
            continue;
        }
        struct watched_dir *w = r->dirs[i];
        w->handle.data = w;
        uv_close((uv_handle_t *)&w->handle, on_dir_closed);
        r->dirs[i] = r->dirs[--r->n_dirs];
    }
}

static void do_reload(struct reloader *r, const char *why) {
    char err[1024];
    /* Directories may have come or gone: watch the tree as it is now,
     * before loading, so that a save during the load is seen. */
    unwatch_missing(r);
    watch_all(r);
    script_reload(r->srv->script, why, err, sizeof err);
}

static void on_debounce(uv_timer_t *t) { do_reload(t->data, "file change"); }

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status) {
    (void)events;
    struct watched_dir *w = h->data;
    if (status < 0) return;
    /* Only Lua sources matter (editors also write swap and backup files). */
    if (filename) {
        size_t n = strlen(filename);
        struct stat st;
        char path[4096];
        char dir[4096];
        size_t dl = sizeof dir;
        int is_dir = uv_fs_event_getpath(h, dir, &dl) == 0 &&
                     (snprintf(path, sizeof path, "%.*s/%s", (int)dl, dir, filename), stat(path, &st) == 0) &&
                     S_ISDIR(st.st_mode);
        if (!is_dir && (n < 4 || strcmp(filename + n - 4, ".lua") != 0)) return;
    }
    /* One save is a burst of events: reload once, when it is over. */
    uv_timer_start(&w->owner->debounce, on_debounce, RELOAD_DEBOUNCE_MS, 0);
}

static void on_sighup(uv_signal_t *h, int signum) {
    (void)signum;
    do_reload(h->data, "SIGHUP");
}

int reload_start(struct server *srv) {
    struct reloader *r = calloc(1, sizeof *r);
    if (!r) return -1;
    r->srv = srv;
    srv->reloader = r;
    uv_timer_init(srv->loop, &r->debounce);
    r->debounce.data = r;
    uv_signal_init(srv->loop, &r->sighup);
    r->sighup.data = r;
    uv_signal_start(&r->sighup, on_sighup, SIGHUP);
    watch_all(r);
    log_debug("reload", "watching directories=%d", r->n_dirs);
    return 0;
}

void reload_stop(struct server *srv) {
    struct reloader *r = srv->reloader;
    if (!r) return;
    unwatch_all(r);
    uv_close((uv_handle_t *)&r->debounce, NULL);
    uv_close((uv_handle_t *)&r->sighup, NULL);
}

void reload_free(struct server *srv) {
    free(srv->reloader);
    srv->reloader = NULL;
}
