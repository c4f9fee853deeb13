/* proc.c — forking, polling and reaping the tool's child processes. */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

int proc_spawn(proc *p, const proc *others, int n, proc_fn fn, void *arg)
{
    int cmd[2], out[2];
    memset(p, 0, sizeof(*p));
    p->status = -1;
    if (pipe(cmd) != 0)
        return -1;
    if (pipe(out) != 0) {
        close(cmd[0]);
        close(cmd[1]);
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(cmd[0]); close(cmd[1]); close(out[0]); close(out[1]);
        return -1;
    }
    if (pid == 0) {
        close(cmd[1]);
        close(out[0]);
        for (int i = 0; i < n; i++) {
            if (others[i].pid > 0) {
                close(others[i].cmd_fd);
                close(others[i].out_fd);
            }
        }
        signal(SIGINT, SIG_IGN);          /* the parent decides when to stop */
        _exit(fn(arg, cmd[0], out[1]));
    }
    close(cmd[0]);
    close(out[1]);
    fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
    p->pid = pid;
    p->cmd_fd = cmd[1];
    p->out_fd = out[0];
    return 0;
}

void proc_command(proc *p, char c)
{
    if (p->pid > 0 && p->cmd_fd >= 0) {
        ssize_t w = write(p->cmd_fd, &c, 1);
        (void)w;
    }
}

void proc_poll(proc *ps, int n, int timeout_ms)
{
    struct pollfd pf[512];
    int map[512], k = 0;
    for (int i = 0; i < n && k < 512; i++) {
        if (ps[i].pid > 0 && !ps[i].ended) {
            pf[k].fd = ps[i].out_fd;
            pf[k].events = POLLIN;
            map[k++] = i;
        }
    }
    if (k == 0) {
        if (timeout_ms > 0) {
            struct timespec ts = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000L };
            nanosleep(&ts, NULL);
        }
        return;
    }
    if (poll(pf, (nfds_t)k, timeout_ms) <= 0)
        return;
    for (int j = 0; j < k; j++) {
        if (pf[j].revents & (POLLIN | POLLHUP | POLLERR)) {
            proc *p = &ps[map[j]];
            if (ipc_fill(&p->rd, p->out_fd) < 0 || p->rd.eof)
                p->ended = 1;
        }
    }
}

static int proc_try_wait(proc *p, int flags)
{
    if (p->pid <= 0 || p->status >= 0)
        return 1;
    int st = 0;
    pid_t r = waitpid(p->pid, &st, flags);
    if (r == p->pid || (r < 0 && errno == ECHILD)) {
        p->status = r == p->pid && WIFEXITED(st) ? WEXITSTATUS(st) : 128;
        return 1;
    }
    return 0;
}

void proc_reap(proc *ps, int n, double timeout_s)
{
    uint64_t deadline = clock_ns() + (uint64_t)(timeout_s * 1e9);
    for (;;) {
        int left = 0;
        for (int i = 0; i < n; i++)
            left += !proc_try_wait(&ps[i], WNOHANG);
        if (!left || clock_ns() > deadline)
            break;
        struct timespec ts = { 0, 20000000L };
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < n; i++) {
        if (!proc_try_wait(&ps[i], WNOHANG)) {
            kill(ps[i].pid, SIGKILL);
            proc_try_wait(&ps[i], 0);
        }
        if (ps[i].pid > 0) {
            close(ps[i].cmd_fd);
            close(ps[i].out_fd);
            ps[i].cmd_fd = ps[i].out_fd = -1;
        }
        ipc_reader_free(&ps[i].rd);
    }
}
