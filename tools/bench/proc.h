/* proc.h — child processes of the tool: fork with a command pipe (parent
 * to child) and a result pipe (child to parent), polling the result pipes,
 * and reaping by PID with a time limit. */
#ifndef BENCH_PROC_H
#define BENCH_PROC_H

#include <sys/types.h>

#include "ipc.h"

typedef struct proc {
    pid_t pid;
    int cmd_fd;          /* parent's write end */
    int out_fd;          /* parent's read end (non-blocking) */
    ipc_reader rd;
    int ended;           /* result pipe at EOF */
    int status;          /* exit status once reaped, -1 before */
} proc;

typedef int (*proc_fn)(void *arg, int cmd_fd, int out_fd);

/* Forks a child running fn(arg, cmd, out) and exiting with its result. The
 * child closes the pipes of the `n` processes in `others`. Returns 0 or -1. */
int proc_spawn(proc *p, const proc *others, int n, proc_fn fn, void *arg);

/* Sends a one-byte command (ignored if the child is gone). */
void proc_command(proc *p, char c);

/* Waits up to timeout_ms for any result pipe to be readable and reads
 * everything available into the readers. */
void proc_poll(proc *ps, int n, int timeout_ms);

/* Waits for the children to exit; after timeout_s kills the remaining
 * ones (by PID) and waits for them. Closes the pipes. */
void proc_reap(proc *ps, int n, double timeout_s);

#endif
