/* mem.c — /proc readers. */
#include "mem.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The value of "Name:  N kB" in a /proc file, in bytes; 0 if missing. */
static uint64_t mem_field(const char *path, const char *name, int *ok)
{
    FILE *f = fopen(path, "r");
    char line[256];
    size_t nl = strlen(name);
    uint64_t v = 0;
    int found = 0;
    if (!f) {
        if (ok)
            *ok = 0;
        return 0;
    }
    while (fgets(line, sizeof(line), f)) {
        unsigned long long kb;
        if (strncmp(line, name, nl) == 0 && line[nl] == ':' &&
            sscanf(line + nl + 1, "%llu", &kb) == 1) {
            v = (uint64_t)kb * 1024;
            found = 1;
            break;
        }
    }
    fclose(f);
    if (ok && !found)
        *ok = 0;
    return v;
}

static void mem_sockstat(mem_sample *m)
{
    FILE *f = fopen("/proc/net/sockstat", "r");
    char line[256];
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "TCP:", 4) != 0)
            continue;
        const char *p = strstr(line, " inuse ");
        unsigned long long v;
        if (p && sscanf(p + 7, "%llu", &v) == 1)
            m->tcp_inuse = v;
        p = strstr(line, " mem ");
        if (p && sscanf(p + 5, "%llu", &v) == 1)
            m->tcp_pages = v;
    }
    fclose(f);
}

uint64_t mem_rss(const int *pids, int npids, int *ok)
{
    uint64_t sum = 0;
    for (int i = 0; i < npids; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/status", pids[i]);
        sum += mem_field(path, "VmRSS", ok);
    }
    return sum;
}

void mem_read(const int *pids, int npids, mem_sample *m)
{
    m->rss_ok = npids > 0;
    m->rss = mem_rss(pids, npids, &m->rss_ok);
    uint64_t total = mem_field("/proc/meminfo", "MemTotal", NULL);
    uint64_t avail = mem_field("/proc/meminfo", "MemAvailable", NULL);
    m->used = total > avail ? total - avail : 0;
    m->slab = mem_field("/proc/meminfo", "Slab", NULL);
    mem_sockstat(m);
}

/* utime + stime of one process, clock ticks (fields 14 and 15 of
 * /proc/PID/stat, counted after the ')' that ends its name). */
static int mem_cpu_ticks(int pid, unsigned long long *ticks)
{
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *got = fgets(line, sizeof(line), f);
    fclose(f);
    const char *p = got ? strrchr(line, ')') : NULL;
    unsigned long long ut, st;
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                     &ut, &st) != 2)
        return -1;
    *ticks = ut + st;
    return 0;
}

double mem_cpu_s(const int *pids, int npids, int *ok)
{
    long hz = sysconf(_SC_CLK_TCK);
    unsigned long long sum = 0;
    for (int i = 0; i < npids; i++) {
        unsigned long long t = 0;
        if (mem_cpu_ticks(pids[i], &t) != 0)
            *ok = 0;
        sum += t;
    }
    return (double)sum / (double)(hz > 0 ? hz : 100);
}

uint64_t mem_total(void)
{
    return mem_field("/proc/meminfo", "MemTotal", NULL);
}
