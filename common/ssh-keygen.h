/* SPDX-License-Identifier: MIT */
/* Running OpenSSH's ssh-keygen for signatures (docs/signed-approvals.md): a child with a
 * given environment only, its input from memory, a bounded output, a deadline. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#ifndef SSH_KEYGEN_PATH
#define SSH_KEYGEN_PATH "/usr/bin/ssh-keygen"
#endif
#ifndef SSH_ADD_PATH
#define SSH_ADD_PATH "/usr/bin/ssh-add"
#endif
/* What is kept of each of stdout and stderr; the rest is read and dropped. */
#define SSH_KEYGEN_OUTPUT_MAX 8192
#define SSH_KEYGEN_FILES_MAX 2

typedef struct SshKeygenRun {
        const char *program; /* NULL: SSH_KEYGEN_PATH */
        char *const *argv;   /* argv[0] is shown in ps */
        char *const *env;    /* the whole environment, NULL-terminated */
        const void *input;   /* stdin, whole */
        size_t input_len;
        /* In-memory files the child sees as /proc/self/fd/3, /proc/self/fd/4 (ssh_keygen_file()).
         */
        const char *files[SSH_KEYGEN_FILES_MAX];
        size_t files_len[SSH_KEYGEN_FILES_MAX];
        size_t n_files;
        /* Run as this uid and gid with no supplementary groups (drop set), else as the caller. */
        bool drop;
        uid_t uid;
        gid_t gid;
        unsigned timeout_ms;
} SshKeygenRun;

typedef struct SshKeygenResult {
        int status; /* exit status; -1 when killed or ended by a signal */
        bool timed_out;
        char out[SSH_KEYGEN_OUTPUT_MAX + 1]; /* NUL-terminated, cut */
        char err[SSH_KEYGEN_OUTPUT_MAX + 1];
} SshKeygenResult;

/* The path under which the child sees run->files[i]. */
#define SSH_KEYGEN_FILE_0 "/proc/self/fd/3"
#define SSH_KEYGEN_FILE_1 "/proc/self/fd/4"

/* Runs ssh-keygen and waits for it (at most timeout_ms; then it is killed). 0 when it ran
 * (whatever its exit status, in ret), -errno when it could not be started. */
int ssh_keygen_run(const SshKeygenRun *run, SshKeygenResult *ret);
