/* SPDX-License-Identifier: MIT */
/* Starting one notify hook: its environment from the event's document, its user and groups,
 * its limits, and the fork and exec. The child does only what is safe between fork() and
 * exec() in a process with threads (system calls on values prepared before the fork). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

/* A value of the environment is cut to this many bytes (after escaping). */
#define NOTIFY_ENV_VALUE_MAX 1024
/* Limits of a hook's process (setrlimit(2)); RLIMIT_CPU is its timeout and 1 s. */
#define NOTIFY_RLIMIT_AS (1024ULL << 20)
#define NOTIFY_RLIMIT_NOFILE 64
#define NOTIFY_RLIMIT_NPROC 64
#define NOTIFY_RLIMIT_FSIZE (16ULL << 20)
/* The PATH a hook starts with. */
#define NOTIFY_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

typedef struct NotifySpawn {
        const char *command; /* absolute path */
        char *const *args;   /* after the command */
        size_t n_args;
        const char *user;    /* never root */
        char *const *groups; /* supplementary groups, by name */
        size_t n_groups;
        uint64_t timeout;  /* seconds: its CPU time limit */
        const char *input; /* its stdin, whole */
        char *const *env;  /* "KEY=value", NULL-terminated (notify_environment()) */
} NotifySpawn;

/* The hook's environment for the event document doc (outbox.h's payload, with "id" and
 * "attempt" added): JIT_EVENT, JIT_EVENT_ID, JIT_REQUEST_ID, ... (docs/notify.md), every
 * value escaped (no control characters) and cut to NOTIFY_ENV_VALUE_MAX bytes, plus PATH,
 * HOME, LANG, USER and LOGNAME for user. A malloc'd NULL-terminated array
 * (notify_environment_free()). */
int notify_environment(json_object *doc, const char *user, char ***ret);
void notify_environment_free(char **env);

/* Starts the hook: runs s->command as s->user (its uid and primary group) with only
 * s->groups as supplementary groups, no_new_privs, the limits above, cwd /, a clean
 * environment, every descriptor closed but stdin (a pipe holding s->input) and stdout and
 * stderr (one pipe, whose non-blocking read end is *ret_output), in a session and process
 * group of its own (kill(-pid) reaches all of it), killed when the broker dies. Refuses a
 * user or group that does not exist or is root, and a command that is not a regular
 * executable file owned by root and writable by nobody else. On failure -errno and
 * *ret_error (malloc'd) saying why; nothing is left running. */
int notify_spawn(const NotifySpawn *s, pid_t *ret_pid, int *ret_output, char **ret_error);
