#include "procstat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

double procstat_cpu_s(int pid) {
    char path[64], line[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = 0;
    /* The name (field 2) may hold spaces; fields count from after its ')'. */
    char *p = strrchr(line, ')');
    if (!p) return -1;
    p++;
    unsigned long long utime = 0, stime = 0;
    /* after ')': state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
    if (sscanf(p, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

long procstat_rss_kib(int pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

double procstat_self_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static int read_core(int core, unsigned long long v[8]) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    char line[512], want[16];
    int wl = snprintf(want, sizeof want, "cpu%d ", core);
    int rc = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, want, (size_t)wl) != 0) continue;
        memset(v, 0, 8 * sizeof v[0]);
        if (sscanf(line + wl, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &v[6], &v[7]) >= 7)
            rc = 0;
        break;
    }
    fclose(f);
    return rc;
}

int procstat_core_split(int core, double *user_s, double *system_s, double *softirq_s) {
    unsigned long long v[8];
    if (read_core(core, v) != 0) return -1;
    double tck = (double)sysconf(_SC_CLK_TCK);
    *user_s = (double)(v[0] + v[1]) / tck;
    *system_s = (double)v[2] / tck;
    *softirq_s = (double)(v[5] + v[6]) / tck;
    return 0;
}

int procstat_core(int core, double *busy_s, double *total_s) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    char line[512], want[16];
    int wl = snprintf(want, sizeof want, "cpu%d ", core);
    int rc = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, want, (size_t)wl) != 0) continue;
        unsigned long long v[8] = {0};
        if (sscanf(line + wl, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &v[6], &v[7]) >= 7) {
            double tck = (double)sysconf(_SC_CLK_TCK);
            unsigned long long total = 0;
            for (int i = 0; i < 8; i++) total += v[i];
            *total_s = (double)total / tck;
            *busy_s = (double)(total - v[3] - v[4]) / tck;
            rc = 0;
        }
        break;
    }
    fclose(f);
    return rc;
}
