/* SPDX-License-Identifier: MIT */
#include "notify-spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "policy.h"
#include "text-escape.h"

/* ---- the environment ---- */

/* A JSON value as the environment carries it: text, a number, 1 or 0, "" for null. */
static char *value_text(json_object *v) {
        if (!v)
                return strdup("");
        switch (json_object_get_type(v)) {
        case json_type_boolean:
                return strdup(json_object_get_boolean(v) ? "1" : "0");
        case json_type_string:
                return strdup(json_object_get_string(v));
        case json_type_array: {
                /* Approver entries: names without spaces, so spaces separate them. */
                char *s = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&s, &len);
                if (!f)
                        return NULL;
                for (size_t i = 0; i < json_object_array_length(v); i++) {
                        const char *e = json_object_get_string(json_object_array_get_idx(v, i));
                        fprintf(f, "%s%s", i > 0 ? " " : "", e ?: "");
                }
                return fclose(f) == 0 ? s : (free(s), NULL);
        }
        default:
                return strdup(json_object_get_string(v) ?: "");
        }
}

static int add_var(char ***env, size_t *n, const char *key, const char *value) {
        _cleanup_free_ char *escaped = jit_text_escape(value, strlen(value));
        char *var = NULL;
        if (!escaped)
                return -ENOMEM;
        size_t len = strlen(escaped);
        if (len > NOTIFY_ENV_VALUE_MAX) {
                len = NOTIFY_ENV_VALUE_MAX;
                /* Never half a character. */
                while (len > 0 && ((unsigned char) escaped[len] & 0xc0) == 0x80)
                        len--;
        }
        if (asprintf(&var, "%s=%.*s", key, (int) len, escaped) < 0)
                return -ENOMEM;
        char **l = reallocarray(*env, *n + 2, sizeof(char *));
        if (!l) {
                free(var);
                return -ENOMEM;
        }
        l[(*n)++] = var;
        l[*n] = NULL;
        *env = l;
        return 0;
}

void notify_environment_free(char **env) {
        for (size_t i = 0; env && env[i]; i++)
                free(env[i]);
        free(env);
}

static json_object *member(json_object *o, const char *key) {
        json_object *v = NULL;
        return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

int notify_environment(json_object *doc, const char *user, char ***ret) {
        static const struct {
                const char *var;
                const char *object; /* NULL: the document itself */
                const char *key;
        } vars[] = {
                { "JIT_EVENT", NULL, "event" },
                { "JIT_EVENT_ID", NULL, "id" },
                { "JIT_ATTEMPT", NULL, "attempt" },
                { "JIT_TIME", NULL, "time" },
                { "JIT_ACTOR", NULL, "actor" },
                { "JIT_MESSAGE", NULL, "message" },
                { "JIT_HOST", NULL, "host" },
                { "JIT_COMMAND", NULL, "command" },
                { "JIT_APPROVERS", NULL, "approvers" },
                { "JIT_REQUEST_ID", "request", "id" },
                { "JIT_REQUESTER", "request", "requester" },
                { "JIT_SERVICE", "request", "service" },
                { "JIT_STATE", "request", "state" },
                { "JIT_REASON", "request", "reason" },
                { "JIT_TICKET", "request", "ticket" },
                { "JIT_DURATION", "request", "duration" },
                { "JIT_DURATION_TEXT", "request", "duration_text" },
                { "JIT_RULE", "request", "rule" },
                { "JIT_ONCE", "request", "once" },
                { "JIT_BREAK_GLASS", "request", "break_glass" },
                { "JIT_APPROVALS", "request", "approvals_count" },
                { "JIT_APPROVALS_REQUIRED", "request", "approvals_required" },
                { "JIT_EXPIRES_AT", "request", "expires_at" },
                { "JIT_END_REASON", "request", "end_reason" },
                { "JIT_SUDO_COMMAND", "request", "command_line" },
                { "JIT_SUDO_PROGRAM", "request", "command" },
                { "JIT_RUN_AS", "request", "run_as_user" },
                { "JIT_PROFILE_OWNER", "profile", "owner" },
                { "JIT_PROFILE_ENVIRONMENT", "profile", "environment" },
                { "JIT_PROFILE_CLASSIFICATION", "profile", "classification" },
                { "JIT_PROFILE_DESCRIPTION", "profile", "description" },
        };
        char **env = NULL;
        size_t n = 0;
        int r = 0;

        const char *fixed[][2] = {
                { "PATH", NOTIFY_PATH }, { "HOME", "/" },     { "LANG", "C.UTF-8" },
                { "USER", user },        { "LOGNAME", user },
        };
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(fixed); i++)
                r = add_var(&env, &n, fixed[i][0], fixed[i][1]);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(vars); i++) {
                json_object *from = vars[i].object ? member(doc, vars[i].object) : doc;
                _cleanup_free_ char *v = value_text(member(from, vars[i].key));
                r = v ? add_var(&env, &n, vars[i].var, v) : -ENOMEM;
        }
        if (r >= 0) {
                /* The approve command only while there is something to approve. */
                const char *c = json_object_get_string(member(doc, "command"));
                r = add_var(&env, &n, "JIT_APPROVE_COMMAND",
                            c && strncmp(c, "jitctl approve ", 15) == 0 ? c : "");
        }
        if (r < 0) {
                notify_environment_free(env);
                return r;
        }
        *ret = env;
        return 0;
}

/* ---- the process ---- */

static int failf(char **ret_error, int error, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int failf(char **ret_error, int error, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(ret_error, fmt, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
        return error;
}

/* A hook runs with the broker's trust in it: a file someone else could rewrite, or replace
 * in its directory, would run their code with the events' contents. */
static int check_command(const char *path, char **ret_error) {
        _cleanup_free_ char *dir = strdup(path);
        struct stat st;
        if (!dir)
                return -ENOMEM;
        char *slash = strrchr(dir, '/');
        if (slash)
                slash[slash == dir ? 1 : 0] = '\0';
        if (stat(dir, &st) < 0)
                return failf(ret_error, -errno, "%s: %s", dir, strerror(errno));
        if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
                return failf(ret_error, -EACCES,
                             "%s is in %s, which is not owned by root or is writable by others",
                             path, dir);
        if (stat(path, &st) < 0)
                return failf(ret_error, -errno, "%s: %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return failf(ret_error, -EACCES, "%s is not a regular file", path);
        if (st.st_uid != 0)
                return failf(ret_error, -EACCES, "%s is not owned by root", path);
        if (st.st_mode & (S_IWGRP | S_IWOTH))
                return failf(ret_error, -EACCES, "%s is writable by group or others", path);
        if (!(st.st_mode & S_IXOTH))
                return failf(ret_error, -EACCES, "%s is not executable by every user", path);
        return 0;
}

typedef struct Credentials {
        uid_t uid;
        gid_t gid;
        gid_t groups[POLICY_NOTIFY_GROUPS_MAX];
        size_t n_groups;
} Credentials;

static int resolve_credentials(const NotifySpawn *s, Credentials *c, char **ret_error) {
        struct passwd pw, *pwp = NULL;
        struct group gr, *grp = NULL;
        char buf[16384];

        int k = getpwnam_r(s->user, &pw, buf, sizeof(buf), &pwp);
        if (k != 0)
                return failf(ret_error, -k, "looking up user %s: %s", s->user, strerror(k));
        if (!pwp)
                return failf(ret_error, -ESRCH, "user %s does not exist", s->user);
        if (pw.pw_uid == 0 || pw.pw_gid == 0)
                return failf(ret_error, -EPERM,
                             "user %s is root (uid or group 0): a hook never runs as root",
                             s->user);
        c->uid = pw.pw_uid;
        c->gid = pw.pw_gid;
        c->n_groups = 0;
        if (s->n_groups > POLICY_NOTIFY_GROUPS_MAX)
                return failf(ret_error, -E2BIG, "more than %d groups", POLICY_NOTIFY_GROUPS_MAX);
        for (size_t i = 0; i < s->n_groups; i++) {
                k = getgrnam_r(s->groups[i], &gr, buf, sizeof(buf), &grp);
                if (k != 0)
                        return failf(ret_error, -k, "looking up group %s: %s", s->groups[i],
                                     strerror(k));
                if (!grp)
                        return failf(ret_error, -ESRCH, "group %s does not exist", s->groups[i]);
                if (gr.gr_gid == 0)
                        return failf(ret_error, -EPERM,
                                     "group %s is root's: a hook never runs with it", s->groups[i]);
                c->groups[c->n_groups++] = gr.gr_gid;
        }
        return 0;
}

/* Between fork() and exec(): only system calls, on values prepared before. */
static void child_write(const char *s) {
        size_t len = 0;
        while (s[len])
                len++;
        (void) !write(STDERR_FILENO, s, len);
}

static _Noreturn void child_fail(const char *what) {
        char num[16];
        int e = errno, i = (int) sizeof(num) - 1;
        num[i] = '\0';
        do
                num[--i] = (char) ('0' + e % 10);
        while ((e /= 10) > 0 && i > 0);
        child_write("jit-brokerd: notify hook: ");
        child_write(what);
        child_write(" failed, errno ");
        child_write(num + i);
        child_write("\n");
        _exit(126);
}

static void set_limit(__rlimit_resource_t resource, rlim_t value, const char *what) {
        struct rlimit l = { .rlim_cur = value, .rlim_max = value };
        /* prlimit(): the one system call the unit's filter allows for it (@default). */
        if (prlimit(0, resource, &l, NULL) < 0)
                child_fail(what);
}

static _Noreturn void child(const NotifySpawn *s, const Credentials *c, char *const *argv,
                            int input, int output, pid_t parent) {
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        sigset_t none;

        /* The broker ignores SIGPIPE and blocks its signals: neither may reach the hook. */
        for (int sig = 1; sig < _NSIG; sig++)
                (void) sigaction(sig, &dfl, NULL);
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);

        if (dup2(output, STDOUT_FILENO) < 0 || dup2(output, STDERR_FILENO) < 0)
                _exit(126);
        if (dup2(input, STDIN_FILENO) < 0)
                child_fail("dup2");
        if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0)
                for (int fd = 3; fd < 65536; fd++)
                        (void) close(fd);
        if (setsid() < 0)
                child_fail("setsid");
        if (chdir("/") < 0)
                child_fail("chdir /");
        umask(0077);

        set_limit(RLIMIT_AS, NOTIFY_RLIMIT_AS, "setrlimit AS");
        set_limit(RLIMIT_NOFILE, NOTIFY_RLIMIT_NOFILE, "setrlimit NOFILE");
        set_limit(RLIMIT_NPROC, NOTIFY_RLIMIT_NPROC, "setrlimit NPROC");
        set_limit(RLIMIT_FSIZE, NOTIFY_RLIMIT_FSIZE, "setrlimit FSIZE");
        set_limit(RLIMIT_CORE, 0, "setrlimit CORE");
        set_limit(RLIMIT_CPU, (rlim_t) s->timeout + 1, "setrlimit CPU");

        /* The raw calls: one thread is left, and none of glibc's machinery is wanted here. */
        if (syscall(SYS_setgroups, c->n_groups, c->groups) < 0)
                child_fail("setgroups");
        if (syscall(SYS_setresgid, c->gid, c->gid, c->gid) < 0)
                child_fail("setresgid");
        if (syscall(SYS_setresuid, c->uid, c->uid, c->uid) < 0)
                child_fail("setresuid");
        uid_t ru, eu, su;
        gid_t rg, eg, sg;
        if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 || ru != c->uid ||
            eu != c->uid || su != c->uid || rg != c->gid || eg != c->gid || sg != c->gid ||
            ru == 0 || eg == 0) {
                errno = EPERM;
                child_fail("dropping privileges");
        }
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                child_fail("PR_SET_NO_NEW_PRIVS");
        /* Set after the uid changed, which clears it; the broker may have died since the
         * fork, before it was set. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
                child_fail("PR_SET_PDEATHSIG");
        if (getppid() != parent)
                _exit(126);

        execve(s->command, argv, s->env);
        child_fail("execve");
}

/* A pipe whose ends are not 0, 1 or 2 (the broker's own may be closed), close-on-exec. */
static int safe_pipe(int fds[2]) {
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        for (int i = 0; i < 2; i++)
                if (fds[i] < 3) {
                        int moved = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
                        if (moved < 0) {
                                int e = -errno;
                                close(fds[0]);
                                close(fds[1]);
                                return e;
                        }
                        close(fds[i]);
                        fds[i] = moved;
                }
        return 0;
}

int notify_spawn(const NotifySpawn *s, pid_t *ret_pid, int *ret_output, char **ret_error) {
        _cleanup_free_ char **argv = NULL;
        Credentials c;
        int in[2] = { -EBADF, -EBADF }, out[2] = { -EBADF, -EBADF };
        int r;

        *ret_error = NULL;
        if ((r = check_command(s->command, ret_error)) < 0 ||
            (r = resolve_credentials(s, &c, ret_error)) < 0)
                return r;
        argv = calloc(s->n_args + 2, sizeof(char *));
        if (!argv)
                return -ENOMEM;
        argv[0] = (char *) s->command;
        for (size_t i = 0; i < s->n_args; i++)
                argv[i + 1] = s->args[i];

        /* stdin holds the whole document before the hook starts: no writer to wait for. */
        size_t len = strlen(s->input);
        if ((r = safe_pipe(in)) < 0)
                return failf(ret_error, r, "creating a pipe: %s", strerror(-r));
        if ((size_t) fcntl(in[1], F_GETPIPE_SZ) < len + 1 &&
            fcntl(in[1], F_SETPIPE_SZ, (int) len + 1) < 0)
                r = -errno;
        if (r >= 0 && fcntl(in[1], F_SETFL, O_NONBLOCK) < 0)
                r = -errno;
        if (r >= 0) {
                ssize_t n = write(in[1], s->input, len);
                r = n < 0 ? -errno : (size_t) n == len ? 0 : -EMSGSIZE;
        }
        in[1] = safe_close(in[1]);
        if (r >= 0 && (r = safe_pipe(out)) >= 0 && fcntl(out[0], F_SETFL, O_NONBLOCK) < 0)
                r = -errno;
        if (r < 0) {
                safe_close(in[0]);
                safe_close(out[0]);
                safe_close(out[1]);
                return failf(ret_error, r, "preparing the hook's input and output: %s",
                             strerror(-r));
        }

        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0) {
                r = -errno;
                safe_close(in[0]);
                safe_close(out[0]);
                safe_close(out[1]);
                return failf(ret_error, r, "fork: %s", strerror(-r));
        }
        if (pid == 0)
                child(s, &c, argv, in[0], out[1], parent);
        safe_close(in[0]);
        safe_close(out[1]);
        *ret_pid = pid;
        *ret_output = out[0];
        return 0;
}
