/* resume.c — login and ack with the delivery logs (see resume.h). A login
 * becomes a resume_job: the replay frames (encoded under the log locks),
 * the reply's seq, and the task that attaches the connection on its worker.
 * The job is owned by the task from the moment it is posted; the task frees
 * it whatever happened to the connection meanwhile. */
#include "im/resume.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/node.h"
#include "core/task.h"
#include "im/codes.h"
#include "im/hub.h"
#include "im/presence.h"
#include "im/proto.h"
#include "net/conn.h"
#include "net/worker.h"
#include "ws/session.h"

/* One replayed entry; inbox and room entries are merged by id (both are
 * "<ms>-<seq>" of the same clock), so the replay follows the time order. */
typedef struct resume_item {
    dlog_id id;
    size_t order;                  /* read order: ties keep it */
    sbuf *frame;
} resume_item;

/* A message the client sent while its login was pending: handled after the
 * login's reply and replay, so that replies keep the order of requests. */
typedef struct resume_later {
    struct resume_later *next;
    size_t len;
    char text[];
} resume_later;

typedef struct resume_job {
    task t;
    struct resume_job *next;       /* the worker's pending logins */
    struct resume_job **pprev;     /* what points at this one there (NULL: not listed) */
    struct resume_job **head;      /* the list it is on: that thread's resume_pending_jobs */
    struct worker *w;              /* the worker that owns the job */
    resume_later *later, **later_tail;
    struct conn *c;
    uint32_t appid;
    uint8_t uidlen;
    char uid[PRESENCE_MAX_ID];
    char *seq;                     /* the login's seq, for its reply */
    size_t seqlen;
    int resumed;                   /* lastID or lastRoomID given: data says recovered */
    int recovered;
    int moves_cursor;              /* inbox entries were replayed: cursor = last */
    dlog_id cursor;
    int failed;                    /* out of memory while reading */
    int room_pass;                 /* reading the room's history: skip the user's own sends */
    size_t n, cap;
    struct resume_item *items;     /* the replay: inbox and room entries */
} resume_job;

/* The logins of this worker whose task or store answer has not run yet:
 * in embedded mode a handful (one trip through the worker's inbox), in
 * cluster mode every login waiting for Redis (thousands in a reconnect
 * storm): taken off in O(1); searched only for a command sent during its
 * login (resume_defer). */
static _Thread_local resume_job *resume_pending_jobs;

static resume_job *resume_job_of(const struct conn *c)
{
    for (resume_job *j = resume_pending_jobs; j; j = j->next)
        if (j->c == c)
            return j;
    return NULL;
}

static void resume_list(resume_job *j)
{
    j->next = resume_pending_jobs;
    if (j->next)
        j->next->pprev = &j->next;
    j->pprev = &resume_pending_jobs;
    j->head = &resume_pending_jobs;
    resume_pending_jobs = j;
}

static void resume_unlist(resume_job *j)
{
    if (!j->pprev)
        return;
    if (worker_self() != j->w || j->head != &resume_pending_jobs) {
        j->pprev = NULL;           /* the final drain, on another thread: that list is gone */
        return;
    }
    *j->pprev = j->next;
    if (j->next)
        j->next->pprev = j->pprev;
    j->pprev = NULL;
}

static void resume_job_free(resume_job *j)
{
    while (j->later) {
        resume_later *l = j->later;
        j->later = l->next;
        free(l);
    }
    for (size_t i = 0; i < j->n; i++)
        sbuf_unref(j->items[i].frame);
    free(j->items);
    free(j->seq);
    free(j);
}

/* ---------- reading the logs (under their locks) ---------- */

static int resume_add(resume_job *j, dlog_id id, sbuf *f)
{
    if (j->n == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 16;
        resume_item *ni = realloc(j->items, cap * sizeof(*ni));
        if (!ni)
            return -1;
        j->items = ni;
        j->cap = cap;
    }
    j->items[j->n] = (resume_item){ id, j->n, f };
    j->n++;
    return 0;
}

static int resume_item_cmp(const void *a, const void *b)
{
    const resume_item *x = a, *y = b;
    int c = dlog_id_cmp(x->id, y->id);
    return c ? c : (x->order < y->order ? -1 : 1);
}

static int resume_on_entry(const dlog_entry *e, void *ud)
{
    resume_job *j = ud;
    char idtext[DLOG_ID_MAX];
    if (j->room_pass && e->fromlen == j->uidlen && memcmp(e->from, j->uid, j->uidlen) == 0)
        return 0;                                  /* live room pushes skip their sender too */
    size_t idlen = dlog_id_format(e->id, idtext);
    const char *seq = e->seqlen ? e->seq : idtext;     /* the msgID, else the id */
    sbuf *f = hub_push_frame_id(seq, e->seqlen ? e->seqlen : idlen, "msg", e->msg, e->msglen,
                                e->from, e->fromlen, &e->id);
    if (!f || resume_add(j, e->id, f) != 0) {
        sbuf_unref(f);
        j->failed = 1;
        return 1;
    }
    return 0;
}

/* The inbox entries the user has not seen: after lastID, else after the
 * pushed cursor, else all that are kept (offline messages). */
static int resume_from_future(const dlog_key *k, const dlog_id *id);

/* An id this log never gave (newer than its newest entry: the node lost
 * its memory, or the id comes from elsewhere) cannot say what was seen:
 * everything kept is replayed and the client is told it may have a gap. */
static const dlog_id *resume_after(const dlog_key *k, const dlog_id *id, int *gap)
{
    if (!resume_from_future(k, id))
        return id;
    *gap = 1;
    return NULL;
}

static int resume_read_inbox(resume_job *j, const dlog_key *k, const resume_req *q, int *gap)
{
    dlog_id after;
    const dlog_id *from = NULL;
    int unknown = 0;
    if (q->has_last) {
        from = resume_after(k, &q->last, &unknown);
    } else if (dlog_cursor_get_locked(k, &after) == 0) {
        from = &after;
    }
    size_t before = j->n;
    dlog_read_locked(k, from, 0, resume_on_entry, j, gap);
    if (!q->has_last)
        *gap = 0;                                  /* a legacy client cannot be told */
    *gap |= unknown;
    if (j->n > before) {
        j->moves_cursor = 1;
        dlog_last_locked(k, &j->cursor);
    }
    return j->failed ? -1 : 0;
}

static int resume_read_room(resume_job *j, const dlog_key *k, const resume_req *q, int *gap)
{
    int unknown = 0;
    const dlog_id *from = resume_after(k, &q->last_room, &unknown);
    j->room_pass = 1;
    dlog_read_locked(k, from, 0, resume_on_entry, j, gap);
    j->room_pass = 0;
    *gap |= unknown;
    return j->failed ? -1 : 0;
}

/* An id newer than the newest entry of its log cannot come from this log. */
static int resume_from_future(const dlog_key *k, const dlog_id *id)
{
    dlog_id last;
    if (dlog_last_locked(k, &last) != 0)
        return id->ms != 0 || id->seq != 0;
    return dlog_id_cmp(*id, last) > 0;
}

/* ---------- the task on the connection's worker ---------- */

/* The commands that waited for j's login, in order. One of them may start
 * another login: the rest then wait for that one (moved to its job). */
static void resume_run_later(resume_job *j, struct conn *c)
{
    while (j->later && c->state == CONN_WS_OPEN) {
        if (resume_pending(c)) {
            resume_job *next = resume_job_of(c);
            if (next) {                            /* its list is empty: ours go first */
                *next->later_tail = j->later;
                next->later_tail = j->later_tail;
                j->later = NULL;
            }
            return;
        }
        resume_later *l = j->later;
        j->later = l->next;
        proto_handle(c, l->text, l->len);
        free(l);
    }
}

/* The login's reply, then the replay in id order. 1 if all of it went out. */
static int resume_reply_and_replay(resume_job *j, struct conn *c)
{
    proto_reply_raw(c, j->seq, j->seqlen, "login", 5, IM_OK,
                    !j->resumed ? "null" : j->recovered ? "{\"recovered\":true}" : "{\"recovered\":false}");
    size_t sent = 0;
    if (j->n > 1)
        qsort(j->items, j->n, sizeof(*j->items), resume_item_cmp);
    while (sent < j->n && ws_session_send_frame(c, j->items[sent].frame) == WS_SEND_OK)
        sent++;
    return sent == j->n;
}

static void resume_run(struct worker *w, task *t)
{
    (void)w;
    resume_job *j = (resume_job *)t;
    struct conn *c = j->c;
    resume_unlist(j);
    if (conn_unhold(c) || c->state != CONN_WS_OPEN) {     /* gone meanwhile */
        resume_job_free(j);
        return;
    }
    int first;
    if (hub_attach(c, j->appid, j->uid, j->uidlen, &first) != 0) {
        proto_reply_raw(c, j->seq, j->seqlen, "login", 5, IM_SERVER_ERROR, "null");
        resume_run_later(j, c);
        resume_job_free(j);
        return;
    }
    if (resume_reply_and_replay(j, c) && j->moves_cursor && !g_node.cfg.ackRequired) {
        dlog_key k = { j->appid, j->uid, j->uidlen };
        dlog_cursor_set(&k, j->cursor);
    }
    resume_run_later(j, c);
    resume_job_free(j);
}

int resume_defer(struct conn *c, const char *msg, size_t len)
{
    resume_job *j = resume_job_of(c);
    resume_later *l = j ? malloc(sizeof(*l) + len) : NULL;
    if (!l)
        return -1;
    l->next = NULL;
    l->len = len;
    memcpy(l->text, msg, len);
    *j->later_tail = l;
    j->later_tail = &l->next;
    return 0;
}

/* ---------- login and ack ---------- */

int resume_pending(const struct conn *c) { return (c->flags & CONN_F_BUSY) != 0; }

static resume_job *resume_job_new(struct conn *c, const resume_req *q)
{
    resume_job *j = mem_zalloc(sizeof(*j));
    if (!j)
        return NULL;
    j->t.run = resume_run;
    j->w = conn_worker(c);
    j->later_tail = &j->later;
    j->c = c;
    j->appid = q->appid;
    j->uidlen = (uint8_t)q->uidlen;
    memcpy(j->uid, q->uid, q->uidlen);
    return j;
}

static int resume_keep_seq(resume_job *j, const resume_req *q, int gap)
{
    j->resumed = q->has_last || q->has_last_room;
    j->recovered = !gap;
    j->seq = malloc(q->seqlen + 1);
    if (!j->seq)
        return -1;
    memcpy(j->seq, q->seq, q->seqlen);
    j->seqlen = q->seqlen;
    return 0;
}

/* ---------- logins that wait for a store (cluster mode) ---------- */

static const resume_store *resume_store_remote;

void resume_set_store(const resume_store *s) { resume_store_remote = s; }

int resume_enabled(void) { return resume_store_remote != NULL || dlog_enabled(); }

/* The store's answer, on c's worker: the reply, the replay, then what the
 * gate held (hub_gate_open). */
static void resume_found_run(void *ud, const resume_found *f)
{
    resume_job *j = ud;
    struct conn *c = j->c;
    resume_unlist(j);
    if (conn_unhold(c) || c->state != CONN_WS_OPEN) {     /* gone: hub_detach ended the gate */
        resume_job_free(j);
        return;
    }
    for (size_t i = 0; f->ok && i < f->ninbox && !j->failed; i++)
        resume_on_entry(&f->inbox[i], j);
    size_t ninbox = j->n;
    j->room_pass = 1;
    for (size_t i = 0; f->ok && i < f->nroom && !j->failed; i++)
        resume_on_entry(&f->room[i], j);
    j->recovered = f->ok && !f->gap && !j->failed;
    /* the cursor: the last inbox entry of the replay, then of the held
     * pushes sent after it, when all of the replay went out (two moves:
     * the store ignores an id its inbox never gave) */
    int all = resume_reply_and_replay(j, c) && !j->failed;
    int cursor = all && !g_node.cfg.ackRequired;
    dlog_id held;
    if (cursor && ninbox)
        resume_store_remote->cursor(j->appid, j->uid, j->uidlen, f->inbox[f->ninbox - 1].id);
    /* no replay read (Redis failed under it), or not all of it made into
     * frames (out of memory): the connection is served, but its pushes
     * never move the cursor (hub_gate_open) */
    if (c->state == CONN_WS_OPEN &&
        hub_gate_open(c, f->ok ? f->inbox_max : NULL, f->ok ? f->room_max : NULL,
                      resume_store_remote->keep_ms, !f->ok || j->failed, &held) && cursor)
        resume_store_remote->cursor(j->appid, j->uid, j->uidlen, held);
    resume_run_later(j, c);
    resume_job_free(j);
}

/* Attach now, gated; the store answers later (resume_found_run). */
static int resume_login_remote(struct conn *c, const resume_req *q)
{
    resume_job *j = resume_job_new(c, q);
    int first;
    if (!j || resume_keep_seq(j, q, 0) != 0) {
        if (j)
            resume_job_free(j);
        return IM_SERVER_ERROR;
    }
    if (hub_attach(c, q->appid, q->uid, q->uidlen, &first) != 0) {
        resume_job_free(j);
        return IM_SERVER_ERROR;
    }
    if (hub_gate_hold(c) != 0) {
        hub_detach(c);
        resume_job_free(j);
        return IM_SERVER_ERROR;
    }
    conn_hold(c);                                /* until resume_found_run */
    resume_list(j);
    if (resume_store_remote->read(q, resume_found_run, j) != 0) {
        resume_unlist(j);
        conn_unhold(c);
        hub_detach(c);                           /* ends the gate too */
        resume_job_free(j);
        return IM_SERVER_ERROR;
    }
    return -1;
}

int resume_login(struct conn *c, const resume_req *q)
{
    if (resume_store_remote)
        return resume_login_remote(c, q);
    dlog_key user = { q->appid, q->uid, q->uidlen }, room = { q->appid, "", 0 };
    resume_job *j = resume_job_new(c, q);
    if (!j)
        return IM_SERVER_ERROR;
    int gap_inbox = 0, gap_room = 0, code = -1;
    if (q->has_last_room)                              /* the room's lock only when it replays */
        dlog_lock2(&user, &room);
    else
        dlog_lock(&user);
    if (resume_read_inbox(j, &user, q, &gap_inbox) != 0 ||
        (q->has_last_room && resume_read_room(j, &room, q, &gap_room) != 0) ||
        resume_keep_seq(j, q, gap_inbox || gap_room) != 0) {
        code = IM_SERVER_ERROR;
    } else {
        conn_hold(c);                                  /* until resume_run */
        resume_list(j);
        worker_post(conn_worker(c), &j->t);            /* ordered with the sends (resume.h) */
    }
    if (q->has_last_room)
        dlog_unlock2(&user, &room);
    else
        dlog_unlock(&user);
    if (code != -1)
        resume_job_free(j);
    return code;
}

int resume_ack(struct conn *c, const char *id, size_t len)
{
    dlog_id v;
    if (!c->pres)
        return IM_NOT_LOGGED_IN;
    if (dlog_id_parse(id, len, &v) != 0)
        return IM_PARAM_ILLEGAL;
    if (resume_store_remote && hub_gate_uncounted(c))
        return IM_OK;      /* its replay was never read: the cursor stays for the next login */
    if (resume_store_remote) {                   /* the store ignores an id its inbox never gave */
        resume_store_remote->cursor(c->pres->appid, c->pres->id, c->pres->idlen, v);
        return IM_OK;
    }
    dlog_key k = { c->pres->appid, c->pres->id, c->pres->idlen };
    dlog_lock(&k);
    int future = resume_from_future(&k, &v);
    dlog_unlock(&k);
    if (future)
        return IM_PARAM_ILLEGAL;
    dlog_cursor_set(&k, v);
    return IM_OK;
}
