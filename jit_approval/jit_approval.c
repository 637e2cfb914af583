/* SPDX-License-Identifier: MIT */
/* jit_approval: a sudo approval plugin. After sudoers has allowed a command, sudo asks each
 * approval plugin whether to run it (check()); this one asks jit-brokerd whether the invoking
 * user holds an active grant that covers this exact command: the path sudo will execute
 * (command_info's command=, not argv[0]), the argv, the run-as user and group, the cwd. It
 * allows only on a well-formed yes from a broker running as root; anything else (no grant, a
 * broker that is absent, slow or garbled) refuses, with one line through sudo's printf saying
 * why and what to run.
 *
 * Only users in the gated group (jit, or group= in sudo.conf) are asked about: root and
 * everyone outside it pass untouched, even when the plugin is misconfigured, so that it can
 * never lock an administrator out. The sudo plugin API is a set of callbacks without a
 * handle: what open() learns is kept in one static struct until check(). */

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sudo_plugin.h>
#include <unistd.h>

#include "cleanup.h"
#include "client.h"
#include "command-line.h"
#include "config.h"
#include "names.h"
#include "protocol.h"

#define TIMEOUT_MS_DEFAULT 3000U
#define TIMEOUT_MS_MAX 60000U
#define GROUP_DEFAULT "jit"
#define SUN_PATH_MAX 107

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)

static struct {
        sudo_printf_t print;
        char socket[SUN_PATH_MAX + 1];
        unsigned timeout_ms;
        char group[JIT_USER_MAX + 1];
        char user[JIT_USER_MAX + 1];
        uid_t uid;
        char cwd[PATH_MAX];       /* the invoking user's, when command_info has none */
        const char *config_error; /* a bad option: gated users are refused, nobody else */
} plugin;

static const char *startswith(const char *s, const char *prefix) {
        size_t n = strlen(prefix);
        return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

/* "KEY=value" vectors: the value of key, or NULL. */
static const char *vector_get(char *const v[], const char *key) {
        size_t n = strlen(key);
        for (size_t i = 0; v && v[i]; i++)
                if (strncmp(v[i], key, n) == 0 && v[i][n] == '=')
                        return v[i] + n + 1;
        return NULL;
}

static bool copy(char *dst, size_t size, const char *src) {
        if (!src || strlen(src) >= size)
                return false;
        memcpy(dst, src, strlen(src) + 1);
        return true;
}

static int parse_options(char *const options[]) {
        for (size_t i = 0; options && options[i]; i++) {
                const char *o = options[i], *v;
                if ((v = startswith(o, "socket="))) {
                        if (*v != '/' || !copy(plugin.socket, sizeof(plugin.socket), v))
                                return plugin.config_error = "socket= must be an absolute path "
                                                             "shorter than 108 bytes",
                                       -EINVAL;
                } else if ((v = startswith(o, "timeout="))) {
                        char *end;
                        errno = 0;
                        unsigned long t = strtoul(v, &end, 10);
                        if (errno || *end || end == v || t < 100 || t > TIMEOUT_MS_MAX)
                                return plugin.config_error = "timeout= must be milliseconds "
                                                             "from 100 to 60000",
                                       -EINVAL;
                        plugin.timeout_ms = (unsigned) t;
                } else if ((v = startswith(o, "group="))) {
                        if (!valid_account_name(v) || !copy(plugin.group, sizeof(plugin.group), v))
                                return plugin.config_error = "group= must be a group name", -EINVAL;
                } else
                        return plugin.config_error = "unknown option in sudo.conf", -EINVAL;
        }
        return 0;
}

static int approval_open(unsigned int version, sudo_conv_t conversation,
                         sudo_printf_t sudo_plugin_printf, char *const settings[],
                         char *const user_info[], int submit_optind, char *const submit_argv[],
                         char *const submit_envp[], char *const plugin_options[],
                         const char **errstr) {
        memset(&plugin, 0, sizeof(plugin));
        plugin.print = sudo_plugin_printf;
        plugin.timeout_ms = TIMEOUT_MS_DEFAULT;
        plugin.uid = (uid_t) -1;
        (void) copy(plugin.socket, sizeof(plugin.socket), JIT_SOCKET_DEFAULT);
        (void) copy(plugin.group, sizeof(plugin.group), GROUP_DEFAULT);

        if (SUDO_API_VERSION_GET_MAJOR(version) != SUDO_API_VERSION_MAJOR)
                plugin.config_error = "this sudo speaks another plugin API";
        else
                (void) parse_options(plugin_options);

        const char *user = vector_get(user_info, "user"), *uid = vector_get(user_info, "uid");
        char *end;
        errno = 0;
        unsigned long u = uid ? strtoul(uid, &end, 10) : 0;
        if (uid && !errno && *end == '\0' && end != uid && u < (uid_t) -1)
                plugin.uid = (uid_t) u;
        if (!copy(plugin.user, sizeof(plugin.user), user))
                plugin.user[0] = '\0';
        (void) copy(plugin.cwd, sizeof(plugin.cwd), vector_get(user_info, "cwd"));
        /* Never fail here: a failed open refuses every command, root's included. */
        return 1;
}

static void approval_close(void) {
}

/* Whether the invoking user is in the gated group, as the PAM lines' pam_succeed_if sees it
 * (getgrouplist() too: sssd, LDAP, nested groups). A group that does not exist gates nobody;
 * a lookup that fails gates. */
static int user_is_gated(void) {
        int r = jit_user_in_group(plugin.user, plugin.group);
        return r < 0 ? -EIO : r;
}

/* Refuses with one line for the user; *errstr is what sudo logs. */
static int refuse(const char **errstr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(const char **errstr, const char *fmt, ...) {
        char line[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        if (plugin.print)
                plugin.print(SUDO_CONV_ERROR_MSG, "jit: %s\n", line);
        *errstr = "refused by jit";
        return 0;
}

static int approval_check(char *const command_info[], char *const run_argv[],
                          char *const run_envp[], const char **errstr) {
        if (plugin.uid == 0)
                return 1;
        int gated = plugin.user[0] ? user_is_gated() : -EINVAL;
        if (gated == 0)
                return 1;
        if (plugin.config_error)
                return refuse(errstr,
                              "jit_approval is misconfigured in sudo.conf (%s); "
                              "command refused",
                              plugin.config_error);
        if (gated < 0)
                return refuse(errstr, "cannot tell whether jit gates this user; command refused");

        JitCommandLine cl = {
                .command = vector_get(command_info, "command"),
                .argv = (const char *const *) run_argv,
                .run_as_user = vector_get(command_info, "runas_user"),
                .run_as_group = vector_get(command_info, "runas_group"),
                .cwd = vector_get(command_info, "cwd") ?: (plugin.cwd[0] ? plugin.cwd : NULL),
        };
        /* How sudo will run it, beyond the command line: a grant for one command covers it
         * only with the environment sudo makes of a reset one, without a chroot, not as
         * sudoedit (the broker judges; the plugin says what it saw). */
        const char *chroot_dir = vector_get(command_info, "chroot");
        const char *sudoedit = vector_get(command_info, "sudoedit");
        cl.chroot = chroot_dir && *chroot_dir && strcmp(chroot_dir, "/") != 0;
        cl.sudoedit = sudoedit && strcmp(sudoedit, "true") == 0;
        struct passwd *target = getpwnam(cl.run_as_user ?: "root");
        size_t bad_len = 0;
        const char *bad =
                target ? jit_environment_problem(run_envp, target->pw_name, target->pw_dir,
                                                 target->pw_shell, &bad_len)
                       : "(run-as user unknown)";
        cl.env_plain = !bad;
        _cleanup_free_ char *shown = NULL;
        int r = jit_command_line_check(&cl);
        if (r < 0)
                return refuse(errstr, "%s; command refused", jit_command_line_error(r));
        shown = jit_command_line_quote(cl.argv);
        if (!shown)
                return refuse(errstr, "out of memory; command refused");

        _cleanup_(json_object_putp) json_object *req = jit_command_request_new(&cl, plugin.user);
        _cleanup_(json_object_putp) json_object *reply = NULL;
        if (!req)
                return refuse(errstr, "out of memory; command refused");
        r = jit_client_call(plugin.socket, plugin.timeout_ms, req, &reply);
        if (r < 0)
                return refuse(errstr, "the access broker is unavailable (%s); command refused",
                              strerror(-r));

        json_object *ok, *result, *allowed;
        if (!json_object_object_get_ex(reply, "ok", &ok) || !json_object_get_boolean(ok)) {
                const char *msg = NULL;
                if (jit_message_get_string(reply, "message", JIT_REASON_MAX, false, &msg) < 0 ||
                    !msg)
                        msg = "no reason given";
                return refuse(errstr, "the access broker refused the check (%s); command refused",
                              msg);
        }
        if (!json_object_object_get_ex(reply, "result", &result) ||
            !json_object_object_get_ex(result, "allowed", &allowed) ||
            !json_object_is_type(allowed, json_type_boolean))
                return refuse(errstr, "the access broker answered garbage; command refused");
        if (json_object_get_boolean(allowed))
                return 1;

        if (bad || cl.chroot || cl.sudoedit)
                /* A grant for all of sudo would have covered it: say what a grant for one
                 * command never covers. */
                return refuse(errstr,
                              "no grant covers this command: a grant for one command covers it "
                              "only as sudo runs it by default%s%.*s%s",
                              bad         ? " (the environment sets "
                              : cl.chroot ? " (not in a chroot)"
                                          : " (not as sudoedit)",
                              bad ? (int) (bad_len > 64 ? 64 : bad_len) : 0, bad ?: "",
                              bad ? ")" : "");
        const char *as =
                cl.run_as_user && strcmp(cl.run_as_user, "root") != 0 ? cl.run_as_user : NULL;
        _cleanup_free_ char *arg = jit_shell_quote(shown);
        return refuse(errstr,
                      "no grant covers this command. Ask for one: jitctl request --command %s%s%s "
                      "--reason \"...\"",
                      arg ?: "'...'", as ? " --as " : "", as ?: "");
}

static int approval_show_version(int verbose) {
        if (plugin.print)
                plugin.print(SUDO_CONV_INFO_MSG, "jit_approval %s\n", JIT_VERSION);
        return 1;
}

/* The only symbol the plugin exports (jit_approval.sym): sudo.conf's
 * "Plugin jit_approval jit_approval.so". */
__attribute__((visibility("default"))) struct approval_plugin jit_approval = {
        .type = SUDO_APPROVAL_PLUGIN,
        .version = SUDO_API_VERSION,
        .open = approval_open,
        .close = approval_close,
        .check = approval_check,
        .show_version = approval_show_version,
};
