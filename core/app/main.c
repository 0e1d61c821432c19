/* space-server: turns flags into a config, runs the server, returns the
 * exit code (0 clean shutdown, 1 cannot start, 2 usage error). */
#include <string.h>

#include "config.h"
#include "log.h"
#include "workers.h"

int main(int argc, char **argv) {
    struct config cfg;
    switch (config_load(&cfg, argc, argv)) {
    case CONFIG_EXIT_OK: return 0;
    case CONFIG_USAGE_ERROR: return 2;
    case CONFIG_OK: break;
    }
    log_set_level((enum log_level)log_level_parse(cfg.log_level));
    log_set_json(strcmp(cfg.log_format, "json") == 0);
    return workers_main(&cfg); /* one server, or the parent of --workers */
}
