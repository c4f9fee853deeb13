/* presence.c — the node's user registry (see presence.h): 64 stripes, each a
 * mutex and a chained hash table that doubles when it gets full. */
#include "im/presence.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct pres_stripe {
    pthread_mutex_t lock;
    pres_entry **buckets;
    uint32_t mask;               /* nbuckets - 1 */
    uint32_t count;
} pres_stripe;

static pres_stripe g_stripes[PRESENCE_STRIPES];
static atomic_long g_users;

uint32_t presence_hash(uint32_t appid, const char *id, size_t len)
{
    uint64_t h = 1469598103934665603ull ^ appid;   /* FNV-1a over appid and id */
    h *= 1099511628211ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)id[i];
        h *= 1099511628211ull;
    }
    return (uint32_t)(h ^ (h >> 32));
}

int presence_init(void)
{
    for (int i = 0; i < PRESENCE_STRIPES; i++) {
        pres_stripe *s = &g_stripes[i];
        pthread_mutex_init(&s->lock, NULL);
        s->mask = 15;
        s->count = 0;
        s->buckets = calloc(16, sizeof(*s->buckets));
        if (!s->buckets)
            return -1;
    }
    return 0;
}

void presence_free(void)
{
    for (int i = 0; i < PRESENCE_STRIPES; i++) {
        pres_stripe *s = &g_stripes[i];
        for (uint32_t b = 0; s->buckets && b <= s->mask; b++) {
            pres_entry *e = s->buckets[b];
            while (e) {
                pres_entry *n = e->next;
                free(e);
                e = n;
            }
        }
        free(s->buckets);
        s->buckets = NULL;
        pthread_mutex_destroy(&s->lock);
    }
}

static pres_stripe *presence_stripe(uint32_t hash) { return &g_stripes[hash % PRESENCE_STRIPES]; }
/* The stripe takes the low bits; buckets use the high ones. */
static uint32_t presence_bucket(const pres_stripe *s, uint32_t hash) { return (hash >> 6) & s->mask; }

static void presence_grow(pres_stripe *s)
{
    uint32_t nmask = s->mask * 2 + 1;
    pres_entry **nb = calloc((size_t)nmask + 1, sizeof(*nb));
    if (!nb)
        return;                                  /* keep the longer chains */
    for (uint32_t b = 0; b <= s->mask; b++) {
        pres_entry *e = s->buckets[b];
        while (e) {
            pres_entry *n = e->next;
            uint32_t i = (e->hash >> 6) & nmask;
            e->next = nb[i];
            nb[i] = e;
            e = n;
        }
    }
    free(s->buckets);
    s->buckets = nb;
    s->mask = nmask;
}

static pres_entry **presence_find(pres_stripe *s, uint32_t hash, uint32_t appid,
                                  const char *id, size_t len)
{
    pres_entry **pp = &s->buckets[presence_bucket(s, hash)];
    for (; *pp; pp = &(*pp)->next) {
        pres_entry *e = *pp;
        if (e->hash == hash && e->appid == appid && e->idlen == len && memcmp(e->id, id, len) == 0)
            return pp;
    }
    return pp;
}

pres_entry *presence_acquire(uint32_t appid, const char *id, size_t len, int *first,
                             presence_edge_fn on_acquire, void *ud)
{
    if (len >= PRESENCE_MAX_ID)
        return NULL;
    uint32_t hash = presence_hash(appid, id, len);
    pres_stripe *s = presence_stripe(hash);
    uint32_t now = (uint32_t)time(NULL);
    pthread_mutex_lock(&s->lock);
    pres_entry **pp = presence_find(s, hash, appid, id, len);
    pres_entry *e = *pp;
    *first = (e == NULL);
    if (!e) {
        e = malloc(sizeof(*e) + len + 1);
        if (e) {
            e->next = NULL;
            e->hash = hash;
            e->appid = appid;
            e->conns = 0;
            e->login_time = now;
            e->client_ip4 = 0;
            e->client_port = 0;
            e->idlen = (uint8_t)len;
            memcpy(e->id, id, len);
            e->id[len] = '\0';
            *pp = e;
            if (++s->count > s->mask + 1)
                presence_grow(s);
            atomic_fetch_add(&g_users, 1);
        }
    }
    if (e) {
        e->conns++;
        atomic_store_explicit(&e->hb_time, now, memory_order_relaxed);
        if (on_acquire)
            on_acquire(e, ud);
    }
    pthread_mutex_unlock(&s->lock);
    return e;
}

int presence_release(pres_entry *e, presence_edge_fn on_release, void *ud)
{
    pres_stripe *s = presence_stripe(e->hash);
    int last = 0;
    pthread_mutex_lock(&s->lock);
    e->conns--;
    if (on_release)
        on_release(e, ud);
    if (e->conns == 0) {
        pres_entry **pp = presence_find(s, e->hash, e->appid, e->id, e->idlen);
        if (*pp == e) {
            *pp = e->next;
            s->count--;
            atomic_fetch_sub(&g_users, 1);
        }
        last = 1;
    }
    pthread_mutex_unlock(&s->lock);
    if (last)
        free(e);
    return last;
}

uint32_t presence_heartbeat(pres_entry *e, uint32_t now)
{
    return atomic_exchange_explicit(&e->hb_time, now, memory_order_relaxed);
}

static int presence_fresh(const pres_entry *e, uint32_t now)
{
    uint32_t hb = atomic_load_explicit(&e->hb_time, memory_order_relaxed);
    return hb + PRESENCE_ONLINE_SECS > now;
}

int presence_online(uint32_t appid, const char *id, size_t len, uint32_t now)
{
    if (len >= PRESENCE_MAX_ID)
        return 0;
    uint32_t hash = presence_hash(appid, id, len);
    pres_stripe *s = presence_stripe(hash);
    pthread_mutex_lock(&s->lock);
    pres_entry *e = *presence_find(s, hash, appid, id, len);
    int on = e && presence_fresh(e, now);
    pthread_mutex_unlock(&s->lock);
    return on;
}

uint32_t presence_conns(uint32_t appid, const char *id, size_t len)
{
    if (len >= PRESENCE_MAX_ID)
        return 0;
    uint32_t hash = presence_hash(appid, id, len);
    pres_stripe *s = presence_stripe(hash);
    pthread_mutex_lock(&s->lock);
    pres_entry *e = *presence_find(s, hash, appid, id, len);
    uint32_t n = e ? e->conns : 0;
    pthread_mutex_unlock(&s->lock);
    return n;
}

void presence_each_stripe(int stripe, uint32_t appid, void (*fn)(const pres_entry *e, void *ud), void *ud)
{
    pres_stripe *s = &g_stripes[stripe];
    pthread_mutex_lock(&s->lock);
    for (uint32_t b = 0; b <= s->mask; b++)
        for (pres_entry *e = s->buckets[b]; e; e = e->next)
            if (appid == 0 || e->appid == appid)
                fn(e, ud);
    pthread_mutex_unlock(&s->lock);
}

void presence_each(uint32_t appid, void (*fn)(const pres_entry *e, void *ud), void *ud)
{
    for (int i = 0; i < PRESENCE_STRIPES; i++)
        presence_each_stripe(i, appid, fn, ud);
}

long presence_count(void) { return atomic_load(&g_users); }
