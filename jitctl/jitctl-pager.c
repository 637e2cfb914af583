/* SPDX-License-Identifier: MIT */
/* The pager: a child process reading a pipe that becomes our standard output. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jitctl-pager.h"

static pid_t pager_pid;

/* Root for someone else: sudo, pkexec or doas left their mark, or a setuid bit. */
static bool privileged_for_someone_else(void) {
        if (geteuid() != getuid())
                return true;
        return geteuid() == 0 &&
               (getenv("SUDO_UID") || getenv("PKEXEC_UID") || getenv("DOAS_USER"));
}

/* In the child: copy what arrives to the terminal, for when no pager could be started. */
_Noreturn static void copy_through(void) {
        char buf[4096];
        for (;;) {
                ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        _exit(0);
                for (ssize_t off = 0; off < n;) {
                        ssize_t w = write(STDOUT_FILENO, buf + off, (size_t) (n - off));
                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w <= 0)
                                _exit(1);
                        off += w;
                }
        }
}

/* No TERM, or "dumb": a pager could not draw its screen (less would stop and ask for
 * RETURN). */
static bool terminal_is_dumb(void) {
        const char *term = getenv("TERM");
        return !term || !*term || strcmp(term, "dumb") == 0;
}

void pager_start(bool disabled) {
        if (disabled || !isatty(STDOUT_FILENO) || terminal_is_dumb())
                return;
        bool secure = privileged_for_someone_else();
        const char *pager = NULL;
        if (!secure) {
                pager = secure_getenv("JIT_PAGER");
                if (!pager)
                        pager = secure_getenv("PAGER");
                if (pager && (!*pager || strcmp(pager, "cat") == 0))
                        return;
        }

        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0)
                return; /* no pager: the output goes straight to the terminal */
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
                if (fds[0] != STDIN_FILENO)
                        close(fds[0]);
                close(fds[1]);
                return;
        }
        if (pid == 0) {
                if (dup2(fds[0], STDIN_FILENO) < 0)
                        _exit(1);
                /* Close-on-exec does not help when no exec succeeds: the write end must go
                 * now, or copy_through() would never see the end of its input. */
                close(fds[0]);
                close(fds[1]);
                /* less: quit when it fits one screen, keep what is shown, no terminal
                 * init, chop long lines (tables), quit on ^C. The person's own LESS wins. */
                (void) setenv("LESS", "FRSXMK", 0);
                if (secure) {
                        (void) setenv("LESSSECURE", "1", 1);
                        execlp("less", "less", (char *) NULL);
                } else if (pager)
                        execl("/bin/sh", "sh", "-c", pager, (char *) NULL);
                else
                        execlp("less", "less", (char *) NULL);
                copy_through();
        }
        if (dup2(fds[1], STDOUT_FILENO) < 0) {
                /* Keep the terminal: end the pager, which sees end of input at once. */
                close(fds[0]);
                close(fds[1]);
                (void) waitpid(pid, NULL, 0);
                return;
        }
        close(fds[0]);
        close(fds[1]);
        pager_pid = pid;
        /* Leaving the pager early closes the pipe: a write then fails with EPIPE instead of
         * killing us, and pager_finish() does not call that a failure. */
        signal(SIGPIPE, SIG_IGN);
}

bool pager_finish(void) {
        bool written = fflush(stdout) == 0 && !ferror(stdout);
        if (pager_pid <= 0)
                return written;
        /* The pager sees the end of its input, and the person reads until they quit. A
         * write that failed could only fail with EPIPE: they quit before the end. */
        (void) fclose(stdout);
        while (waitpid(pager_pid, NULL, 0) < 0 && errno == EINTR)
                ;
        pager_pid = 0;
        return true;
}
