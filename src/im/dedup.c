/* dedup.c — msgID de-duplication (see dedup.h): a chained hash table, the
 * reservations in flight on one list and the accepted msgIDs on a FIFO in
 * acceptance (= expiry) order, so expiry and eviction are O(1) per entry
 * and never reach a reservation in flight. Memory is counted in malloc
 * chunks (entries and table). */
#include "im/dedup.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct dd_entry {
    struct dd_entry *hnext;          /* hash chain */
    struct dd_entry *prev, *next;    /* on g_dd.flight or g_dd.done */
    uint64_t gen;                    /* the reservation's ticket */
    uint32_t hash;
    uint32_t expires;                /* once committed */
    uint16_t len;
    uint8_t committed;               /* 0 while the send is in flight */
    char id[];
} dd_entry;

typedef struct dd_list {
    dd_entry *head, *tail;           /* head = oldest */
} dd_list;

static struct {
    pthread_mutex_t lock;
    dd_entry **buckets;
    size_t mask;
    size_t count, max;
    size_t bytes, max_bytes;         /* entries' chunks; the table is added */
    uint32_t ttl;
    uint64_t gen;                    /* last ticket given; never reset */
    dd_list flight, done;
} g_dd = { .lock = PTHREAD_MUTEX_INITIALIZER };

#define DEDUP_TABLE_MIN 1024

static uint32_t dedup_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

/* glibc's chunk for a malloc(n): n + its size word, 16-aligned, >= 32. */
static size_t dedup_chunk(size_t n)
{
    size_t c = (n + sizeof(size_t) + 15) & ~(size_t)15;
    return c < 32 ? 32 : c;
}

size_t dedup_entry_bytes(size_t len)
{
    return dedup_chunk(sizeof(dd_entry) + (len > UINT16_MAX ? UINT16_MAX : len));
}

static size_t dedup_table_bytes(size_t buckets)
{
    return dedup_chunk(buckets * sizeof(dd_entry *));
}

int dedup_init(uint32_t ttl_secs, size_t max_entries, size_t max_bytes)
{
    g_dd.ttl = ttl_secs;
    g_dd.max = max_entries ? max_entries : 1;
    g_dd.max_bytes = max_bytes;
    g_dd.mask = DEDUP_TABLE_MIN - 1;
    g_dd.count = g_dd.bytes = 0;
    g_dd.buckets = calloc(g_dd.mask + 1, sizeof(*g_dd.buckets));
    return g_dd.buckets ? 0 : -1;
}

/* ---------- lists ---------- */

static void dedup_list_push(dd_list *l, dd_entry *e)
{
    e->next = NULL;
    e->prev = l->tail;
    if (l->tail) l->tail->next = e; else l->head = e;
    l->tail = e;
}

static void dedup_list_remove(dd_list *l, dd_entry *e)
{
    if (e->prev) e->prev->next = e->next; else l->head = e->next;
    if (e->next) e->next->prev = e->prev; else l->tail = e->prev;
}

/* ---------- table ---------- */

static dd_entry **dedup_slot(uint32_t hash, const char *id, size_t len)
{
    dd_entry **pp = &g_dd.buckets[hash & g_dd.mask];
    while (*pp && !((*pp)->hash == hash && (*pp)->len == len && memcmp((*pp)->id, id, len) == 0))
        pp = &(*pp)->hnext;
    return pp;
}

/* The chain link that points at the reservation t (NULL: none). */
static dd_entry **dedup_ticket_slot(const dedup_ticket *t)
{
    if (!t || t->gen == 0 || !g_dd.buckets)
        return NULL;
    dd_entry **pp = &g_dd.buckets[t->hash & g_dd.mask];
    while (*pp && !((*pp)->gen == t->gen && !(*pp)->committed))
        pp = &(*pp)->hnext;
    return *pp ? pp : NULL;
}

static void dedup_unlink(dd_entry **pp)
{
    dd_entry *e = *pp;
    *pp = e->hnext;
    dedup_list_remove(e->committed ? &g_dd.done : &g_dd.flight, e);
    g_dd.count--;
    g_dd.bytes -= dedup_entry_bytes(e->len);
    free(e);
}

/* Drops an accepted entry (the oldest, for expiry and eviction). */
static void dedup_drop(dd_entry *e)
{
    dedup_unlink(dedup_slot(e->hash, e->id, e->len));
}

static void dedup_grow(void)
{
    size_t nmask = g_dd.mask * 2 + 1;
    dd_entry **nb = calloc(nmask + 1, sizeof(*nb));
    if (!nb)
        return;                       /* longer chains, still correct */
    for (size_t i = 0; i <= g_dd.mask; i++) {
        for (dd_entry *e = g_dd.buckets[i], *n; e; e = n) {
            n = e->hnext;
            e->hnext = nb[e->hash & nmask];
            nb[e->hash & nmask] = e;
        }
    }
    free(g_dd.buckets);
    g_dd.buckets = nb;
    g_dd.mask = nmask;
}

/* ---------- bounds ---------- */

/* Bytes held once one more entry of `cost` bytes is in (the table doubles
 * when the entries outnumber its buckets). */
static size_t dedup_bytes_after(size_t cost)
{
    size_t buckets = g_dd.mask + 1;
    if (g_dd.count + 1 > buckets)
        buckets *= 2;
    return g_dd.bytes + cost + dedup_table_bytes(buckets);
}

/* Forgets the oldest accepted msgIDs until one more entry of `cost` bytes
 * fits. Returns 0, or -1 if only reservations in flight are left. */
static int dedup_make_room(size_t cost)
{
    while (g_dd.count + 1 > g_dd.max || dedup_bytes_after(cost) > g_dd.max_bytes) {
        if (!g_dd.done.head)
            return -1;
        dedup_drop(g_dd.done.head);
    }
    return 0;
}

static void dedup_expire(uint32_t now)
{
    while (g_dd.done.head && (int32_t)(g_dd.done.head->expires - now) <= 0)
        dedup_drop(g_dd.done.head);
}

/* ---------- reserve / commit / release ---------- */

static int dedup_insert(uint32_t h, const char *msgid, size_t len, dedup_ticket *t)
{
    size_t cost = dedup_entry_bytes(len);
    if (dedup_make_room(cost) != 0)
        return DEDUP_FULL;
    dd_entry **pp = dedup_slot(h, msgid, len);   /* after eviction: the chain changed */
    dd_entry *e = malloc(sizeof(*e) + len);
    if (!e)
        return DEDUP_NOMEM;
    e->hnext = NULL;
    e->gen = ++g_dd.gen;
    e->hash = h;
    e->expires = 0;
    e->len = (uint16_t)len;
    e->committed = 0;
    memcpy(e->id, msgid, len);
    *pp = e;
    dedup_list_push(&g_dd.flight, e);
    g_dd.bytes += cost;
    if (++g_dd.count > g_dd.mask + 1)
        dedup_grow();
    t->gen = e->gen;
    t->hash = h;
    return DEDUP_NEW;
}

int dedup_reserve(const char *msgid, size_t len, uint32_t now, dedup_ticket *t)
{
    t->gen = 0;
    t->hash = 0;
    if (len == 0)
        return DEDUP_NEW;
    if (len > UINT16_MAX)
        len = UINT16_MAX;
    uint32_t h = dedup_hash(msgid, len);
    pthread_mutex_lock(&g_dd.lock);
    dedup_expire(now);
    dd_entry *e = *dedup_slot(h, msgid, len);
    int r;
    if (e)
        r = e->committed ? DEDUP_DUP : DEDUP_IN_FLIGHT;
    else
        r = dedup_insert(h, msgid, len, t);
    pthread_mutex_unlock(&g_dd.lock);
    return r;
}

void dedup_commit(const dedup_ticket *t, uint32_t now)
{
    pthread_mutex_lock(&g_dd.lock);
    dd_entry **pp = dedup_ticket_slot(t);
    if (pp) {
        dd_entry *e = *pp;
        dedup_list_remove(&g_dd.flight, e);
        e->committed = 1;
        e->expires = now + g_dd.ttl;
        dedup_list_push(&g_dd.done, e);
    }
    pthread_mutex_unlock(&g_dd.lock);
}

void dedup_release(const dedup_ticket *t)
{
    pthread_mutex_lock(&g_dd.lock);
    dd_entry **pp = dedup_ticket_slot(t);
    if (pp)
        dedup_unlink(pp);
    pthread_mutex_unlock(&g_dd.lock);
}

/* ---------- stats ---------- */

size_t dedup_count(void)
{
    pthread_mutex_lock(&g_dd.lock);
    size_t n = g_dd.count;
    pthread_mutex_unlock(&g_dd.lock);
    return n;
}

size_t dedup_bytes(void)
{
    pthread_mutex_lock(&g_dd.lock);
    size_t n = g_dd.buckets ? g_dd.bytes + dedup_table_bytes(g_dd.mask + 1) : 0;
    pthread_mutex_unlock(&g_dd.lock);
    return n;
}

static void dedup_clear(dd_list *l)
{
    while (l->head)
        dedup_drop(l->head);
}

void dedup_free(void)
{
    pthread_mutex_lock(&g_dd.lock);
    if (g_dd.buckets) {
        dedup_clear(&g_dd.done);
        dedup_clear(&g_dd.flight);
    }
    free(g_dd.buckets);
    g_dd.buckets = NULL;
    pthread_mutex_unlock(&g_dd.lock);
}
