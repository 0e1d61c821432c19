/* reload: what triggers a reload of the scripts. Every directory under
 * --scripts and --plugins is watched (libuv's recursive flag is ignored on
 * Linux, and watching files breaks when an editor saves by rename), a burst
 * of events is debounced into one reload, and SIGHUP reloads too. The swap
 * itself is script_reload's. */
#ifndef SPACE_RELOAD_H
#define SPACE_RELOAD_H

struct server;

#define RELOAD_DEBOUNCE_MS 100
#define RELOAD_MAX_WATCHED_DIRS 256

/* Starts the watchers and the SIGHUP handler; 0, or -1 (logged). */
int reload_start(struct server *srv);
/* Stops them; reload_free after the loop closed the handles. */
void reload_stop(struct server *srv);
void reload_free(struct server *srv);

#endif
