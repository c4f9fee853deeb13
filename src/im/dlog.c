/* dlog.c — the delivery logs of embedded mode (see dlog.h): a hash of logs
 * behind striped locks; each log is a FIFO of entries (one allocation per
 * entry: header and payload together), its last id, what retention dropped
 * last (to tell a reader it has a gap) and, for an inbox, the user's pushed
 * cursor. With delivery.dir every change is also written to im/dlog_disk.c. */
#include "im/dlog.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/node.h"
#include "im/dlog_disk.h"

#define DLOG_MAX_UID 64

typedef struct dlog_ent {
    struct dlog_ent *next;
    dlog_id id;
    uint64_t time_ms;
    uint32_t msglen;
    uint8_t fromlen;
    uint8_t seqlen;
    char data[];                   /* seq, from, then msg */
} dlog_ent;

typedef struct dlog_log {
    struct dlog_log *next;         /* stripe chain */
    dlog_ent *head, *tail;         /* oldest first */
    long count;
    dlog_id last;                  /* newest id ever given (0-0: none) */
    dlog_id dropped;               /* newest id retention dropped (0-0: none) */
    dlog_id cursor;
    uint8_t has_cursor;
    uint32_t appid;
    uint8_t uidlen;                /* 0: a room's history */
    char uid[];
} dlog_log;

typedef struct dlog_stripe {
    pthread_mutex_t lock;
    dlog_log *logs;
} dlog_stripe;

static dlog_stripe dlog_stripes[DLOG_STRIPES];
static int dlog_ready;
static int dlog_on_disk;           /* delivery.dir: every change written through */
static atomic_long dlog_nlogs, dlog_nentries, dlog_nbytes;

/* ---------- ids ---------- */

static int dlog_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 20)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int dlog_id_parse(const char *s, size_t n, dlog_id *out)
{
    const char *dash = memchr(s, '-', n);
    if (!dash)
        return -1;
    size_t a = (size_t)(dash - s);
    return dlog_u64(s, a, &out->ms) == 0 && dlog_u64(dash + 1, n - a - 1, &out->seq) == 0 ? 0 : -1;
}

size_t dlog_id_format(dlog_id id, char out[DLOG_ID_MAX])
{
    int n = snprintf(out, DLOG_ID_MAX, "%" PRIu64 "-%" PRIu64, id.ms, id.seq);
    return n > 0 ? (size_t)n : 0;
}

int dlog_id_cmp(dlog_id a, dlog_id b)
{
    if (a.ms != b.ms)
        return a.ms < b.ms ? -1 : 1;
    return a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0;
}

static int dlog_id_zero(dlog_id a) { return a.ms == 0 && a.seq == 0; }

static uint64_t dlog_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---------- logs ---------- */

static uint32_t dlog_hash(const dlog_key *k)
{
    uint32_t h = 2166136261u ^ k->appid;
    h *= 16777619u;
    for (size_t i = 0; i < k->uidlen; i++) {
        h ^= (uint8_t)k->uid[i];
        h *= 16777619u;
    }
    return h ^ (uint32_t)k->uidlen;
}

static dlog_stripe *dlog_stripe_of(const dlog_key *k) { return &dlog_stripes[dlog_hash(k) % DLOG_STRIPES]; }

void dlog_lock(const dlog_key *k) { pthread_mutex_lock(&dlog_stripe_of(k)->lock); }
void dlog_unlock(const dlog_key *k) { pthread_mutex_unlock(&dlog_stripe_of(k)->lock); }

/* Stripes are always taken in address order, so two holders of the same
 * pair never wait for each other. */
void dlog_lock2(const dlog_key *user, const dlog_key *room)
{
    dlog_stripe *a = dlog_stripe_of(user), *b = dlog_stripe_of(room);
    if (a == b) {
        pthread_mutex_lock(&a->lock);
        return;
    }
    pthread_mutex_lock(&(a < b ? a : b)->lock);
    pthread_mutex_lock(&(a < b ? b : a)->lock);
}

void dlog_unlock2(const dlog_key *user, const dlog_key *room)
{
    dlog_stripe *a = dlog_stripe_of(user), *b = dlog_stripe_of(room);
    pthread_mutex_unlock(&a->lock);
    if (a != b)
        pthread_mutex_unlock(&b->lock);
}

static dlog_log *dlog_find(const dlog_key *k, int create)
{
    dlog_stripe *s = dlog_stripe_of(k);
    for (dlog_log *l = s->logs; l; l = l->next)
        if (l->appid == k->appid && l->uidlen == k->uidlen && memcmp(l->uid, k->uid, k->uidlen) == 0)
            return l;
    if (!create || k->uidlen > DLOG_MAX_UID)
        return NULL;
    dlog_log *l = calloc(1, sizeof(*l) + k->uidlen + 1);
    if (!l)
        return NULL;
    l->appid = k->appid;
    l->uidlen = (uint8_t)k->uidlen;
    memcpy(l->uid, k->uid, k->uidlen);
    l->next = s->logs;
    s->logs = l;
    atomic_fetch_add(&dlog_nlogs, 1);
    return l;
}

static long dlog_max(const dlog_log *l)
{
    return l->uidlen ? g_node.cfg.inboxMax : g_node.cfg.roomHistoryMax;
}

static uint64_t dlog_ttl_ms(const dlog_log *l)
{
    return (uint64_t)(l->uidlen ? g_node.cfg.inboxTTL : g_node.cfg.roomHistoryTTL) * 1000;
}

static size_t dlog_ent_bytes(const dlog_ent *e) { return sizeof(*e) + e->seqlen + e->fromlen + e->msglen; }

static dlog_key dlog_key_of(const dlog_log *l)
{
    return (dlog_key){ l->appid, l->uid, l->uidlen };
}

static void dlog_drop_head(dlog_log *l)
{
    dlog_ent *e = l->head;
    l->head = e->next;
    if (!l->head)
        l->tail = NULL;
    l->count--;
    l->dropped = e->id;
    atomic_fetch_sub(&dlog_nentries, 1);
    atomic_fetch_sub(&dlog_nbytes, (long)dlog_ent_bytes(e));
    free(e);
}

/* Retention: the oldest go first, by count and by age (and from the disk
 * copy in one range delete). */
static void dlog_retain(dlog_log *l, uint64_t now)
{
    uint64_t ttl = dlog_ttl_ms(l);
    int dropped = 0;
    while (l->head && (l->count > dlog_max(l) || now - l->head->time_ms > ttl)) {
        dlog_drop_head(l);
        dropped = 1;
    }
    if (dropped && dlog_on_disk) {
        dlog_key k = dlog_key_of(l);
        (void)dlog_disk_trim(&k, l->dropped);       /* logged there; memory is right */
    }
}

/* Ids come from one node-wide clock (milliseconds in the high 44 bits of
 * one atomic word, a sequence within the millisecond in the low 20), so
 * that they also order entries of different logs: a replay that merges a
 * user's inbox with its room's history follows the order of the sends.
 * Lock-free; a clock that steps back keeps the last millisecond. */
#define DLOG_SEQ_BITS 20
static _Atomic uint64_t dlog_clock;

static dlog_id dlog_clock_next(uint64_t now)
{
    uint64_t v = atomic_load(&dlog_clock), nv;
    do {
        nv = (now > (v >> DLOG_SEQ_BITS)) ? now << DLOG_SEQ_BITS : v + 1;
    } while (!atomic_compare_exchange_weak(&dlog_clock, &v, nv));
    return (dlog_id){ nv >> DLOG_SEQ_BITS, nv & ((1u << DLOG_SEQ_BITS) - 1) };
}

/* The next id of l: from the clock, and above l's last id whatever happened
 * (entries loaded from disk with a clock that was ahead). */
static dlog_id dlog_next_id(const dlog_log *l, uint64_t now)
{
    dlog_id id = dlog_clock_next(now);
    if (dlog_id_cmp(id, l->last) > 0)
        return id;
    return (dlog_id){ l->last.ms, l->last.seq + 1 };
}

static dlog_ent *dlog_ent_new(dlog_id id, uint64_t time_ms, const char *seq, size_t seqlen,
                              const char *from, size_t fromlen, const char *msg, size_t msglen)
{
    if (seqlen > 255 || fromlen > 255 || msglen > UINT32_MAX)
        return NULL;
    dlog_ent *e = malloc(sizeof(*e) + seqlen + fromlen + msglen);
    if (!e)
        return NULL;
    e->next = NULL;
    e->id = id;
    e->time_ms = time_ms;
    e->seqlen = (uint8_t)seqlen;
    e->fromlen = (uint8_t)fromlen;
    e->msglen = (uint32_t)msglen;
    memcpy(e->data, seq, seqlen);
    memcpy(e->data + seqlen, from, fromlen);
    memcpy(e->data + seqlen + fromlen, msg, msglen);
    return e;
}

static void dlog_link(dlog_log *l, dlog_ent *e)
{
    if (l->tail)
        l->tail->next = e;
    else
        l->head = e;
    l->tail = e;
    l->count++;
    l->last = e->id;
    atomic_fetch_add(&dlog_nentries, 1);
    atomic_fetch_add(&dlog_nbytes, (long)dlog_ent_bytes(e));
}

static dlog_entry dlog_view(const dlog_ent *e)
{
    const char *from = e->data + e->seqlen;
    return (dlog_entry){ e->id, e->time_ms, from, e->fromlen, from + e->fromlen, e->msglen,
                         e->data, e->seqlen };
}

int dlog_append_locked(const dlog_key *k, const char *seq, size_t seqlen, const char *from,
                       size_t fromlen, const char *msg, size_t msglen, dlog_id *id)
{
    dlog_log *l = dlog_find(k, 1);
    uint64_t now = dlog_now_ms();
    dlog_ent *e = l ? dlog_ent_new(dlog_next_id(l, now), now, seq, seqlen, from, fromlen, msg, msglen)
                    : NULL;
    if (!e)
        return -1;
    if (dlog_on_disk) {                           /* on disk first: what was answered is kept */
        dlog_entry v = dlog_view(e);
        if (dlog_disk_put(k, &v) != 0) {
            free(e);
            return -1;
        }
    }
    dlog_link(l, e);
    *id = e->id;
    dlog_retain(l, now);
    return 0;
}

size_t dlog_read_locked(const dlog_key *k, const dlog_id *after, size_t max,
                        dlog_read_fn fn, void *ud, int *gap)
{
    dlog_log *l = dlog_find(k, 0);
    *gap = 0;
    if (!l)
        return 0;
    dlog_retain(l, dlog_now_ms());
    if (after && !dlog_id_zero(l->dropped) && dlog_id_cmp(*after, l->dropped) < 0)
        *gap = 1;                                 /* it had not seen what was dropped */
    else if (after && dlog_id_zero(l->dropped) && !dlog_id_zero(*after) && l->head &&
             dlog_id_cmp(*after, l->head->id) < 0)
        *gap = 1;                                 /* from an earlier log of this key (swept) */
    size_t n = 0;
    for (dlog_ent *e = l->head; e && (max == 0 || n < max); e = e->next) {
        if (after && dlog_id_cmp(e->id, *after) <= 0)
            continue;
        dlog_entry out = dlog_view(e);
        n++;
        if (fn(&out, ud) != 0)
            break;
    }
    return n;
}

int dlog_last_locked(const dlog_key *k, dlog_id *id)
{
    dlog_log *l = dlog_find(k, 0);
    if (!l || dlog_id_zero(l->last))
        return -1;
    *id = l->last;
    return 0;
}

int dlog_cursor_get_locked(const dlog_key *k, dlog_id *id)
{
    dlog_log *l = dlog_find(k, 0);
    if (!l || !l->has_cursor)
        return -1;
    *id = l->cursor;
    return 0;
}

int dlog_cursor_get(const dlog_key *k, dlog_id *id)
{
    dlog_lock(k);
    int r = dlog_cursor_get_locked(k, id);
    dlog_unlock(k);
    return r;
}

void dlog_cursor_set(const dlog_key *k, dlog_id id)
{
    dlog_lock(k);
    dlog_log *l = dlog_find(k, 1);
    if (l && (!l->has_cursor || dlog_id_cmp(id, l->cursor) > 0)) {
        l->cursor = id;
        l->has_cursor = 1;
        if (dlog_on_disk)
            (void)dlog_disk_cursor_put(k, id);     /* logged there; memory is right */
    }
    dlog_unlock(k);
}

/* ---------- the sweep ---------- */

/* Retention runs when a log is written or read; the sweep also applies it
 * to logs nobody touches, and frees a log once it is empty and its newest
 * id is past the age limit (nothing of it can be replayed any more: a
 * resume from one of its ids then answers recovered:false, as a log whose
 * Redis key expired does in cluster mode). */
static int dlog_sweep_log(dlog_log **pp, uint64_t now)
{
    dlog_log *l = *pp;
    dlog_retain(l, now);
    if (l->head || l->last.ms + dlog_ttl_ms(l) >= now)
        return 0;
    *pp = l->next;
    if (dlog_on_disk && l->has_cursor) {
        dlog_key k = dlog_key_of(l);
        (void)dlog_disk_cursor_del(&k);           /* logged there; memory is right */
    }
    atomic_fetch_sub(&dlog_nlogs, 1);
    free(l);
    return 1;
}

void dlog_sweep(int stripes)
{
    static atomic_uint next;                      /* the stripe to sweep next */
    uint64_t now = dlog_now_ms();
    for (int i = 0; dlog_ready && i < stripes; i++) {
        dlog_stripe *s = &dlog_stripes[atomic_fetch_add(&next, 1) % DLOG_STRIPES];
        pthread_mutex_lock(&s->lock);
        for (dlog_log **pp = &s->logs; *pp;)
            if (!dlog_sweep_log(pp, now))
                pp = &(*pp)->next;
        pthread_mutex_unlock(&s->lock);
    }
}

/* ---------- life-cycle ---------- */

int dlog_enabled(void) { return dlog_ready && g_node.cfg.deliveryEnabled; }

/* Loading the disk copy: entries come log by log, oldest first. */
static void dlog_load_entry(const dlog_key *k, const dlog_entry *v, void *ud)
{
    long *n = ud;
    dlog_log *l = dlog_find(k, 1);
    if (!l || (!dlog_id_zero(l->last) && dlog_id_cmp(v->id, l->last) <= 0))
        return;
    dlog_ent *e = dlog_ent_new(v->id, v->time_ms, v->seq, v->seqlen, v->from, v->fromlen, v->msg, v->msglen);
    if (!e)
        return;
    dlog_link(l, e);
    uint64_t word = (v->id.ms << DLOG_SEQ_BITS) | (v->id.seq & ((1u << DLOG_SEQ_BITS) - 1));
    uint64_t cur = atomic_load(&dlog_clock);
    while (word > cur && !atomic_compare_exchange_weak(&dlog_clock, &cur, word))
        ;                                         /* new ids stay above every loaded one */
    (*n)++;
}

static void dlog_load_cursor(const dlog_key *k, dlog_id id, void *ud)
{
    (void)ud;
    dlog_log *l = dlog_find(k, 1);
    if (l) {
        l->cursor = id;
        l->has_cursor = 1;
    }
}

/* Applies retention to everything loaded (what aged out while stopped). */
static void dlog_retain_all(void)
{
    uint64_t now = dlog_now_ms();
    for (int i = 0; i < DLOG_STRIPES; i++)
        for (dlog_log *l = dlog_stripes[i].logs; l; l = l->next)
            dlog_retain(l, now);
}

static int dlog_open_disk(const char *dir, char *err, size_t errlen)
{
    long n = 0;
    if (dlog_disk_open(dir, err, errlen) != 0)
        return -1;
    if (dlog_disk_load(dlog_load_entry, dlog_load_cursor, &n) != 0) {
        snprintf(err, errlen, "delivery.dir %s: the stored logs cannot be read (see the log)", dir);
        dlog_disk_close();
        return -1;
    }
    dlog_on_disk = 1;
    dlog_retain_all();
    log_info("delivery: %ld stored messages loaded from %s", n, dir);
    return 0;
}

int dlog_init(char *err, size_t errlen)
{
    for (int i = 0; i < DLOG_STRIPES; i++) {
        pthread_mutex_init(&dlog_stripes[i].lock, NULL);
        dlog_stripes[i].logs = NULL;
    }
    dlog_ready = 1;
    if (g_node.cfg.deliveryDir[0] && dlog_open_disk(g_node.cfg.deliveryDir, err, errlen) != 0) {
        dlog_free();
        return -1;
    }
    return 0;
}

void dlog_free(void)
{
    if (!dlog_ready)
        return;
    if (dlog_on_disk) {
        dlog_on_disk = 0;                         /* memory is freed below, the disk keeps all */
        dlog_disk_close();
    }
    for (int i = 0; i < DLOG_STRIPES; i++) {
        dlog_log *l = dlog_stripes[i].logs;
        while (l) {
            dlog_log *next = l->next;
            while (l->head)
                dlog_drop_head(l);
            free(l);
            l = next;
        }
        dlog_stripes[i].logs = NULL;
        pthread_mutex_destroy(&dlog_stripes[i].lock);
    }
    atomic_store(&dlog_nlogs, 0);
    dlog_ready = 0;
}

void dlog_get_stats(dlog_stats *s)
{
    s->logs = atomic_load(&dlog_nlogs);
    s->entries = atomic_load(&dlog_nentries);
    s->bytes = atomic_load(&dlog_nbytes);
}
