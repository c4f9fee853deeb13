/* mem.h — memory samples: the VmRSS of the server processes (--pid) and
 * the kernel's view (/proc/meminfo, /proc/net/sockstat). */
#ifndef BENCH_MEM_H
#define BENCH_MEM_H

#include <stdint.h>

typedef struct mem_sample {
    double t;                 /* seconds since the start of the run */
    uint64_t rss;             /* sum of VmRSS of the --pid processes, bytes */
    int rss_ok;               /* every --pid could be read */
    uint64_t client_rss;      /* sum of VmRSS of the tool's worker processes */
    uint64_t client_base;     /* their VmRSS before their first connection */
    uint64_t used;            /* MemTotal - MemAvailable, bytes */
    uint64_t slab;            /* Slab, bytes */
    uint64_t tcp_pages;       /* sockstat "TCP: ... mem N" (pages) */
    uint64_t tcp_inuse;       /* sockstat "TCP: inuse N" */
    long conns;               /* logged-in connections alive when sampled */
    const char *step;         /* name of the step, or NULL for a timeline point */
} mem_sample;

void mem_read(const int *pids, int npids, mem_sample *m);

/* Sum of VmRSS of the processes, bytes; *ok cleared if one is unreadable. */
uint64_t mem_rss(const int *pids, int npids, int *ok);

/* CPU time (user + system) the processes have used so far, seconds;
 * *ok cleared if one is unreadable. */
double mem_cpu_s(const int *pids, int npids, int *ok);

/* MemTotal in bytes (0 if unknown). */
uint64_t mem_total(void);

#endif
