/* SPDX-License-Identifier: MIT */
/* A command line as sudo will run it, for command-scoped grants: the absolute path of the
 * program, its argv, the run-as user and group and the working directory. The sudo approval
 * plugin (jit_approval.so) asks about one, jitctl files a request for one, the broker
 * matches them against grants and rules: one shape, one set of limits, one way to show it. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

/* Limits: the whole line must fit a request frame with room to spare. */
#define JIT_COMMAND_PATH_MAX 4096
#define JIT_COMMAND_ARGS_MAX 256
#define JIT_COMMAND_ARG_MAX 4096
#define JIT_COMMAND_LINE_MAX (32U * 1024U) /* all of argv, bytes */

typedef struct JitCommandLine {
        const char *command;      /* absolute path */
        const char *const *argv;  /* NULL-terminated; argv[0] as sudo passes it */
        const char *run_as_user;  /* NULL: root */
        const char *run_as_group; /* NULL: the user's */
        const char *cwd;          /* NULL: not known */
        /* What the plugin saw of how sudo will run it (check-command only): the environment
         * is what sudo makes of a reset one (jit_environment_problem() found nothing), and
         * no chroot or sudoedit is asked for. A grant for one command covers nothing else:
         * LD_PRELOAD or PATH set by the caller, or another root directory, would run other
         * code under the approved name. */
        bool env_plain;
        bool chroot;
        bool sudoedit;
} JitCommandLine;

/* Where sudo looks for a command given by name: Debian's sudoers sets secure_path to this,
 * and sudo then searches it, not the caller's PATH. */
#define JIT_SUDO_SECURE_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* The first variable of envp (the environment sudo will run a command with) that is not
 * what sudo's env_reset makes for a run as user pw_name (home pw_dir, shell pw_shell): a name
 * it does not set or keep by default, a value it would not have (PATH other than
 * JIT_SUDO_SECURE_PATH, HOME other than pw_dir, ...), or a kept value with '/' or '%'. NULL
 * when there is none. The returned text points into envp (the variable's name, up to '='
 * is its length in *ret_len). */
const char *jit_environment_problem(char *const envp[], const char *pw_name, const char *pw_dir,
                                    const char *pw_shell, size_t *ret_len);

/* 0, or a negative errno for jit_command_line_error(): -ENAMETOOLONG, -E2BIG, -EINVAL (not an
 * absolute path, no argv[0]), -EILSEQ (text a person cannot read as it is: controls,
 * invisible or reordering characters, bad UTF-8). */
int jit_command_line_check(const JitCommandLine *cl);
const char *jit_command_line_error(int r);

/* Splits text into words at spaces, a part in single quotes ('two words') kept together:
 * the command line of jitctl request --command and the policy's command patterns, read
 * the same way and without a shell. *ret_words is NULL-terminated; (*ret_quoted)[i] says
 * whether word i had quotes in it (may be NULL). 0, -ENOMEM, or -EINVAL with *ret_why
 * (static text): an unclosed quote, an empty word (''), more than max words. */
int jit_words_split(const char *text, size_t max, char ***ret_words, bool **ret_quoted,
                    size_t *ret_n, const char **ret_why);
void jit_words_free(char **words);

/* argv as one line a shell would read back the same: words that need it in single quotes
 * ('it'\''s'). NULL on ENOMEM. */
char *jit_command_line_quote(const char *const *argv);
/* s in single quotes for a shell. NULL on ENOMEM. */
char *jit_shell_quote(const char *s);

/* {"version":1,"op":"check-command","user":user,"command":...,"argv":[...],
 * "run_as_user":...,"run_as_group":...,"cwd":...}; NULL on ENOMEM. */
json_object *jit_command_request_new(const JitCommandLine *cl, const char *user);

/* Whether sudo.conf's text (len bytes) loads the approval plugin jit_approval: a line
 * "Plugin jit_approval PATH [OPTIONS]" (leading blanks allowed; '#' starts a comment).
 * When it does and ret_group is given, the group it gates (its group= option, else "jit")
 * goes there (at most size bytes with the NUL; a longer one counts as not loaded). */
bool jit_sudo_conf_loads_approval(const char *text, size_t len, char *ret_group, size_t size);
/* The same for the file at path, trusted only when it is a regular file owned by root that
 * nobody else may write: 1 yes, 0 no (or not trusted), -errno when it cannot be read. */
int jit_sudo_conf_file_loads_approval(const char *path, char *ret_group, size_t size);
/* Whether user is a member of group as the system sees it at login: the group's member list,
 * the user's primary group and initgroups' list (getgrouplist(): sssd, LDAP and nested
 * groups included), the way pam_succeed_if's ingroup decides. 1 yes, 0 no (also when the
 * group does not exist), -errno when a lookup fails. */
int jit_user_in_group(const char *user, const char *group);
#define JIT_SUDO_CONF "/etc/sudo.conf"
#define JIT_SUDO_CONF_MAX (256U * 1024U)

/* What a command grant's program is, so that a swapped symlink or a replaced file is not
 * taken for it: "REALPATH\nDEV:INO:SIZE:MTIME_NS" of path, malloc'd in *ret. Only a program
 * root alone controls is vouched for: the file and every directory on the way to it, as
 * written and as resolved, owned by root and writable by nobody else. 0, or -errno:
 * -EPERM (someone else could change it; *ret_why says which), -ENOENT, -ENOEXEC (not an
 * executable regular file), -ENOMEM. */
int jit_program_identity(const char *path, char **ret, const char **ret_why);
