/* SPDX-License-Identifier: MIT */
/* bench_verify.py's stopwatch: runs a command and reports its wall time and peak resident
 * memory (ru_maxrss of wait4()). A child's ru_maxrss starts at its parent's resident size
 * (fork copies it, exec keeps the high-water mark), so the parent must be small: a Python
 * parent would add its own tens of MiB to every figure.
 *
 *   bench-verify-run COMMAND [ARG...]
 *
 * The command's stdout is passed through, its stderr dropped; the last line on stderr is
 * "SECONDS MAXRSS_KIB EXIT_STATUS". Exit status: 0, or 1 when the command could not be run. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char *argv[]) {
        struct timespec t0, t1;
        struct rusage ru;
        int status;

        if (argc < 2) {
                fprintf(stderr, "usage: %s COMMAND [ARG...]\n", argv[0]);
                return 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &t0);
        pid_t pid = fork();
        if (pid < 0) {
                perror("fork");
                return 1;
        }
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (null < 0 || dup2(null, STDERR_FILENO) < 0)
                        _exit(127);
                execvp(argv[1], argv + 1);
                _exit(127);
        }
        if (wait4(pid, &status, 0, &ru) < 0) {
                perror("wait4");
                return 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double seconds = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
        fprintf(stderr, "%.6f %ld %d\n", seconds, ru.ru_maxrss,
                WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        return 0;
}
