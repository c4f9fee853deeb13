/* task.h — a unit of work posted to a loop thread, and the lock-free inbox
 * that carries tasks there: any thread pushes with one compare-and-swap,
 * the owning loop takes the whole list at once and runs it in posting
 * order. Used by the workers (net/worker.h) and the Redis link
 * (cluster/rlink.h). */
#ifndef IMGATE_TASK_H
#define IMGATE_TASK_H

#include <stdatomic.h>
#include <stddef.h>

struct worker;

typedef struct task {
    struct task *next;
    /* w: the worker running it, or NULL on a thread that is not a worker */
    void (*run)(struct worker *w, struct task *t);
} task;

typedef _Atomic(task *) task_inbox;

/* Pushes t; returns 1 if the inbox was empty (the owner needs a wake-up). */
static inline int task_push(task_inbox *in, task *t)
{
    task *head = atomic_load_explicit(in, memory_order_relaxed);
    do {
        t->next = head;
    } while (!atomic_compare_exchange_weak_explicit(in, &head, t, memory_order_release,
                                                    memory_order_relaxed));
    return head == NULL;
}

/* Takes every task, oldest first (the owner only). */
static inline task *task_take_all(task_inbox *in)
{
    task *list = atomic_exchange_explicit(in, NULL, memory_order_acquire);
    task *fifo = NULL;
    while (list) {                       /* pushed newest-first: reverse */
        task *next = list->next;
        list->next = fifo;
        fifo = list;
        list = next;
    }
    return fifo;
}

/* Runs a list taken by task_take_all; each task may free itself. */
static inline void task_run_all(task *fifo, struct worker *w)
{
    while (fifo) {
        task *next = fifo->next;
        fifo->run(w, fifo);
        fifo = next;
    }
}

#endif
