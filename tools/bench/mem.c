/* mem.c — /proc readers. */
#include "mem.h"

#include <stdio.h>
#include <string.h>

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

uint64_t mem_total(void)
{
    return mem_field("/proc/meminfo", "MemTotal", NULL);
}
