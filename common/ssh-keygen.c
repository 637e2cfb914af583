/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "ssh-keygen.h"

static int memfd_with(const char *name, const void *data, size_t len) {
        _cleanup_close_ int fd = memfd_create(name, MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        const char *p = data;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t) n;
        }
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        return TAKE_FD(fd);
}

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* Between fork() and exec(): system calls only, on values prepared before. */
_Noreturn static void child(const SshKeygenRun *run, int in, int out, int err, const int *files) {
        int high[3 + SSH_KEYGEN_FILES_MAX];
        int src[3 + SSH_KEYGEN_FILES_MAX] = { in, out, err };
        size_t n = 3 + run->n_files;
        sigset_t none;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int s = 1; s < NSIG; s++)
                signal(s, SIG_DFL);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (size_t i = 0; i < run->n_files; i++)
                src[3 + i] = files[i];
        /* Above every target first, so that no dup2() below overwrites a source. */
        for (size_t i = 0; i < n; i++)
                if ((high[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 16)) < 0)
                        _exit(127);
        for (size_t i = 0; i < n; i++)
                if (dup2(high[i], (int) i) < 0) /* the copy at i is not close-on-exec */
                        _exit(127);
        syscall(SYS_close_range, (unsigned) n, ~0U, 0);
        if (run->drop && (setgroups(0, NULL) < 0 || setresgid(run->gid, run->gid, run->gid) < 0 ||
                          setresuid(run->uid, run->uid, run->uid) < 0))
                _exit(127);
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        if (chdir("/") < 0)
                _exit(127);
        execve(run->program ?: SSH_KEYGEN_PATH, run->argv, run->env);
        _exit(127);
}

/* Appends what fd has now to buf (keeping at most max bytes); false at EOF or error. */
static bool drain(int fd, char *buf, size_t *len, size_t max) {
        char chunk[4096];
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0)
                return errno == EINTR || errno == EAGAIN;
        if (n == 0)
                return false;
        size_t keep = (size_t) n < max - *len ? (size_t) n : max - *len;
        memcpy(buf + *len, chunk, keep);
        *len += keep;
        return true;
}

int ssh_keygen_run(const SshKeygenRun *run, SshKeygenResult *ret) {
        _cleanup_close_ int in = -EBADF, out_r = -EBADF, out_w = -EBADF, err_r = -EBADF,
                            err_w = -EBADF;
        int files[SSH_KEYGEN_FILES_MAX] = { -EBADF, -EBADF };
        int p[2], r = 0;

        if (run->n_files > SSH_KEYGEN_FILES_MAX)
                return -EINVAL;
        memset(ret, 0, sizeof(*ret));
        if ((in = memfd_with("ssh-keygen-stdin", run->input, run->input_len)) < 0)
                return in;
        for (size_t i = 0; i < run->n_files; i++)
                if ((files[i] = memfd_with("ssh-keygen-file", run->files[i], run->files_len[i])) <
                    0) {
                        r = files[i];
                        goto out;
                }
        if (pipe2(p, O_CLOEXEC) < 0) {
                r = -errno;
                goto out;
        }
        out_r = p[0], out_w = p[1];
        if (pipe2(p, O_CLOEXEC) < 0) {
                r = -errno;
                goto out;
        }
        err_r = p[0], err_w = p[1];

        pid_t pid = fork();
        if (pid < 0) {
                r = -errno;
                goto out;
        }
        if (pid == 0)
                child(run, in, out_w, err_w, files);
        out_w = safe_close(out_w);
        err_w = safe_close(err_w);

        size_t out_len = 0, err_len = 0;
        bool out_open = true, err_open = true;
        uint64_t deadline = now_ms() + run->timeout_ms;
        while (out_open || err_open) {
                uint64_t t = now_ms();
                if (t >= deadline) {
                        ret->timed_out = true;
                        break;
                }
                struct pollfd fds[2] = { { .fd = out_open ? out_r : -1, .events = POLLIN },
                                         { .fd = err_open ? err_r : -1, .events = POLLIN } };
                int k = poll(fds, 2, (int) (deadline - t));
                if (k < 0 && errno != EINTR) {
                        ret->timed_out = true; /* cannot wait any more: treat as stuck */
                        break;
                }
                if (k <= 0)
                        continue;
                if (fds[0].revents)
                        out_open = drain(out_r, ret->out, &out_len, SSH_KEYGEN_OUTPUT_MAX);
                if (fds[1].revents)
                        err_open = drain(err_r, ret->err, &err_len, SSH_KEYGEN_OUTPUT_MAX);
        }
        ret->out[out_len] = 0;
        ret->err[err_len] = 0;
        /* Its output is closed; it may still run (a child of its own holding the pipes is not
         * waited for): it has what is left of the deadline to exit. */
        if (!ret->timed_out) {
                _cleanup_close_ int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
                uint64_t t = now_ms();
                struct pollfd pf = { .fd = pidfd, .events = POLLIN };
                if (pidfd < 0 || t >= deadline || poll(&pf, 1, (int) (deadline - t)) <= 0)
                        ret->timed_out = true;
        }
        if (ret->timed_out)
                kill(pid, SIGKILL);
        int status;
        /* The pipes are closed (or it was killed): waiting now is short. */
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR) {
                        r = -errno;
                        goto out;
                }
        ret->status = WIFEXITED(status) && !ret->timed_out ? WEXITSTATUS(status) : -1;
out:
        for (size_t i = 0; i < run->n_files; i++)
                safe_close(files[i]);
        return r;
}
