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
} JitCommandLine;

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
 * "Plugin jit_approval PATH [OPTIONS]" (leading blanks allowed; '#' starts a comment). */
bool jit_sudo_conf_loads_approval(const char *text, size_t len);
/* The same for the file at path, trusted only when it is a regular file owned by root that
 * nobody else may write: 1 yes, 0 no (or not trusted), -errno when it cannot be read. */
int jit_sudo_conf_file_loads_approval(const char *path);
#define JIT_SUDO_CONF "/etc/sudo.conf"
#define JIT_SUDO_CONF_MAX (256U * 1024U)

/* What a command grant's program is, so that a swapped symlink or a replaced file is not
 * taken for it: "REALPATH\nDEV:INO:SIZE:MTIME_NS" of path, malloc'd in *ret. Only a program
 * root alone controls is vouched for: the file and every directory on the way to it, as
 * written and as resolved, owned by root and writable by nobody else. 0, or -errno:
 * -EPERM (someone else could change it; *ret_why says which), -ENOENT, -ENOEXEC (not an
 * executable regular file), -ENOMEM. */
int jit_program_identity(const char *path, char **ret, const char **ret_why);
