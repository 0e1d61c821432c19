/* clock: the wall clock in milliseconds. Loop time (monotonic, cached per
 * turn) is libuv's and lives with the loop (net.h). */
#ifndef SPACE_CLOCK_H
#define SPACE_CLOCK_H

#include <stdint.h>

/* Milliseconds since the epoch. */
uint64_t clock_wall_ms(void);

#endif
