/* procstat: what /proc says about another process (the server under test). */
#ifndef LG_PROCSTAT_H
#define LG_PROCSTAT_H

#include <stdint.h>

/* utime + stime of every thread of pid, in seconds; < 0 when unreadable. */
double procstat_cpu_s(int pid);
/* VmRSS of pid in KiB; -1 when unreadable. */
long procstat_rss_kib(int pid);
/* Busy and total jiffies of one CPU core from /proc/stat (busy = all but
 * idle and iowait); -1 when unreadable. */
int procstat_core(int core, double *busy_s, double *total_s);
/* The same core's time split: user+nice, system, irq+softirq (seconds). */
int procstat_core_split(int core, double *user_s, double *system_s, double *softirq_s);
/* This process's own user + system CPU seconds. */
double procstat_self_cpu_s(void);

#endif
