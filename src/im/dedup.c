/* dedup.c — msgID de-duplication (see dedup.h): a chained hash table plus a
 * FIFO list in insertion (= expiry) order, so expiry and eviction are O(1)
 * per entry. */
#include "im/dedup.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct dd_entry {
    struct dd_entry *hnext;          /* hash chain */
    struct dd_entry *prev, *next;    /* FIFO, oldest first */
    uint32_t hash;
    uint32_t expires;
    uint16_t len;
    uint8_t committed;               /* 0 while the send is in flight */
    char id[];
} dd_entry;

static struct {
    pthread_mutex_t lock;
    dd_entry **buckets;
    size_t mask;
    size_t count, max;
    uint32_t ttl;
    dd_entry *oldest, *newest;
} g_dd = { .lock = PTHREAD_MUTEX_INITIALIZER };

static uint32_t dedup_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

int dedup_init(uint32_t ttl_secs, size_t max)
{
    g_dd.ttl = ttl_secs;
    g_dd.max = max ? max : 1;
    g_dd.mask = 1023;
    g_dd.buckets = calloc(g_dd.mask + 1, sizeof(*g_dd.buckets));
    return g_dd.buckets ? 0 : -1;
}

static dd_entry **dedup_slot(uint32_t hash, const char *id, size_t len)
{
    dd_entry **pp = &g_dd.buckets[hash & g_dd.mask];
    while (*pp && !((*pp)->hash == hash && (*pp)->len == len && memcmp((*pp)->id, id, len) == 0))
        pp = &(*pp)->hnext;
    return pp;
}

static void dedup_unlink(dd_entry *e)
{
    dd_entry **pp = dedup_slot(e->hash, e->id, e->len);
    if (*pp == e)
        *pp = e->hnext;
    if (e->prev) e->prev->next = e->next; else g_dd.oldest = e->next;
    if (e->next) e->next->prev = e->prev; else g_dd.newest = e->prev;
    g_dd.count--;
    free(e);
}

static void dedup_grow(void)
{
    size_t nmask = g_dd.mask * 2 + 1;
    dd_entry **nb = calloc(nmask + 1, sizeof(*nb));
    if (!nb)
        return;
    for (dd_entry *e = g_dd.oldest; e; e = e->next) {
        e->hnext = nb[e->hash & nmask];
        nb[e->hash & nmask] = e;
    }
    free(g_dd.buckets);
    g_dd.buckets = nb;
    g_dd.mask = nmask;
}

int dedup_reserve(const char *msgid, size_t len, uint32_t now)
{
    if (len == 0)
        return 1;
    if (len > UINT16_MAX)
        len = UINT16_MAX;
    uint32_t h = dedup_hash(msgid, len);
    int r;
    pthread_mutex_lock(&g_dd.lock);
    while (g_dd.oldest && (int32_t)(g_dd.oldest->expires - now) <= 0)
        dedup_unlink(g_dd.oldest);
    dd_entry **pp = dedup_slot(h, msgid, len);
    if (*pp) {
        r = (*pp)->committed ? 0 : 2;
    } else {
        while (g_dd.count >= g_dd.max && g_dd.oldest)
            dedup_unlink(g_dd.oldest);
        pp = dedup_slot(h, msgid, len);
        dd_entry *e = malloc(sizeof(*e) + len);
        if (!e) {
            r = -1;
        } else {
            e->hash = h;
            e->expires = now + g_dd.ttl;
            e->len = (uint16_t)len;
            e->committed = 0;
            memcpy(e->id, msgid, len);
            e->hnext = NULL;
            *pp = e;
            e->next = NULL;
            e->prev = g_dd.newest;
            if (g_dd.newest) g_dd.newest->next = e; else g_dd.oldest = e;
            g_dd.newest = e;
            if (++g_dd.count > g_dd.mask + 1)
                dedup_grow();
            r = 1;
        }
    }
    pthread_mutex_unlock(&g_dd.lock);
    return r;
}

/* Runs fn on msgID's entry (if any) under the lock. */
static void dedup_with(const char *msgid, size_t len, void (*fn)(dd_entry *e))
{
    if (len == 0)
        return;
    if (len > UINT16_MAX)
        len = UINT16_MAX;
    pthread_mutex_lock(&g_dd.lock);
    dd_entry *e = *dedup_slot(dedup_hash(msgid, len), msgid, len);
    if (e)
        fn(e);
    pthread_mutex_unlock(&g_dd.lock);
}

static void dedup_mark_committed(dd_entry *e) { e->committed = 1; }

void dedup_release(const char *msgid, size_t len) { dedup_with(msgid, len, dedup_unlink); }
void dedup_commit(const char *msgid, size_t len) { dedup_with(msgid, len, dedup_mark_committed); }

size_t dedup_count(void)
{
    pthread_mutex_lock(&g_dd.lock);
    size_t n = g_dd.count;
    pthread_mutex_unlock(&g_dd.lock);
    return n;
}

void dedup_free(void)
{
    pthread_mutex_lock(&g_dd.lock);
    while (g_dd.oldest)
        dedup_unlink(g_dd.oldest);
    free(g_dd.buckets);
    g_dd.buckets = NULL;
    pthread_mutex_unlock(&g_dd.lock);
}
