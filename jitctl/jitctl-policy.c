/* SPDX-License-Identifier: MIT */
/* jitctl policy check and explain --policy: a policy read from a file, without the broker;
 * and the explanation of a decision, from the file or from the broker. test is
 * jitctl-policy-test.c, the command line jitctl-policy-command.c. */
#include "jitctl-policy.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#include "cleanup.h"
#include "command-line.h"
#include "duration.h"
#include "jitctl-command.h"
#include "jitctl-exit.h"
#include "jitctl-format.h"
#include "jitctl-policy-internal.h"
#include "jitctl-text.h"
#include "names.h"
#include "policy-json.h"
#include "policy.h"
#include "timeutil.h"

/* Reads the file without the broker's ownership rules (a checkout in git is not owned by
 * root), bounded like the broker reads it; those rules are reported as a warning instead. */
int read_policy(const char *path, char **ret, size_t *ret_len, const char **ret_warning) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        struct stat st;

        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if ((uint64_t) st.st_size > POLICY_FILE_MAX)
                return -EFBIG;
        *ret_warning = st.st_uid != 0 ? "not owned by root: the broker will refuse it"
                       : (st.st_mode & (S_IWGRP | S_IWOTH))
                               ? "writable by group or others: the broker will refuse it"
                               : NULL;
        _cleanup_free_ char *buf = malloc((size_t) st.st_size + 1);
        size_t got = 0;
        if (!buf)
                return -ENOMEM;
        while (got < (size_t) st.st_size) {
                ssize_t n = read(fd, buf + got, (size_t) st.st_size - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                got += (size_t) n;
        }
        buf[got] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_len = got;
        return 0;
}

/* Reads and parses a policy for jitctl. On failure *ret_error says why, naming the file. */
int load_policy(const char *path, Policy **ret, char **ret_error, const char **ret_warning) {
        _cleanup_free_ char *text = NULL;
        const char *warning = NULL;
        size_t len = 0;

        *ret_error = NULL;
        int r = read_policy(path, &text, &len, &warning);
        if (r < 0) {
                if (asprintf(ret_error, "%s: %s", path,
                             r == -EINVAL ? "not a regular file" : strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        if (ret_warning)
                *ret_warning = warning;
        return policy_parse(text, len, path, ret, ret_error);
}

int policy_command_split(const char *text, char ***ret_argv, const char **ret_why) {
        char **words = NULL;
        size_t n;
        int r;

        r = jit_words_split(text, JIT_COMMAND_ARGS_MAX, &words, NULL, &n, ret_why);
        if (r < 0)
                return r;
        JitCommandLine cl = { .command = words[0], .argv = (const char *const *) words };
        if (n == 0)
                *ret_why = "no command given";
        else if (words[0][0] != '/')
                *ret_why = "the command must be an absolute path, such as /usr/bin/systemctl "
                           "(it is not looked up in sudo's path here)";
        else if ((r = jit_command_line_check(&cl)) < 0)
                *ret_why = jit_command_line_error(r);
        else {
                *ret_argv = words;
                return 0;
        }
        jit_words_free(words);
        return -EINVAL;
}

int policy_run_as_parse(const char *as, char **ret_user, char **ret_group) {
        const char *colon = strchr(as, ':');
        _cleanup_free_ char *user = colon ? strndup(as, (size_t) (colon - as)) : strdup(as);
        _cleanup_free_ char *group = colon ? strdup(colon + 1) : NULL;

        if (!user || (colon && !group))
                return -ENOMEM;
        if (!valid_account_name(user) || (group && !valid_account_name(group)))
                return -EINVAL;
        *ret_user = TAKE_PTR(user);
        *ret_group = TAKE_PTR(group);
        return 0;
}

/* A failure of a policy subcommand: on stderr, and with json as the one document. */
int report(const char *what, bool json, int status, const char *code, const char *fmt, ...) {
        const Context c = { .json = json };
        char prefix[64];
        va_list ap;

        snprintf(prefix, sizeof(prefix), "jitctl: policy %s: ", what);
        va_start(ap, fmt);
        int r = vfail(&c, prefix, status, code, fmt, ap);
        va_end(ap);
        return r;
}

static json_object *list_json(const StringList *l) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; a && i < l->n; i++)
                json_object_array_add(a, json_object_new_string(l->items[i]));
        return a;
}

static void print_list(const StringList *l) {
        for (size_t i = 0; i < l->n; i++) {
                fputs(i ? ", " : "", stdout);
                fputs_escaped(l->items[i], stdout);
        }
}

static json_object *rule_json(const Policy *p, const PolicyRule *rule) {
        json_object *ro = json_object_new_object();
        if (!ro)
                return NULL;
        json_object_object_add(ro, "name", json_object_new_string(rule->name));
        json_object_object_add(ro, "line", json_object_new_int((int) rule->line));
        json_object_object_add(ro, "services", list_json(&rule->services));
        json_object_object_add(ro, "requesters", list_json(&rule->requesters));
        json_object_object_add(ro, "approvers", list_json(&rule->approvers));
        json_object_object_add(ro, "approvals",
                               json_object_new_int(rule->auto_approve ? 0 : (int) rule->approvals));
        json_object_object_add(ro, "max_duration",
                               json_object_new_int64((int64_t) policy_rule_cap(p, rule)));
        json_object_object_add(ro, "auto_approve", json_object_new_boolean(rule->auto_approve));
        json_object_object_add(ro, "when", list_json(&rule->when));
        json_object_object_add(ro, "ticket_pattern",
                               rule->ticket_pattern ? json_object_new_string(rule->ticket_pattern)
                                                    : NULL);
        json_object_object_add(ro, "reason_min_length",
                               json_object_new_int((int) rule->reason_min_length));
        json_object_object_add(ro, "allow_self_approval",
                               json_object_new_boolean(rule->allow_self_approval));
        json_object_object_add(
                ro, "signed",
                rule->signed_approvals == POLICY_SIGNED_DEFAULT
                        ? NULL
                        : json_object_new_boolean(rule->signed_approvals == POLICY_SIGNED_YES));
        json_object_object_add(ro, "scope",
                               json_object_new_string(policy_scope_to_string(rule->scope)));
        json_object *commands = json_object_new_array();
        for (size_t i = 0; commands && i < rule->n_commands; i++)
                json_object_array_add(commands, json_object_new_string(rule->commands[i].text));
        json_object_object_add(ro, "commands", commands);
        json_object_object_add(ro, "run_as", list_json(&rule->run_as));
        json_object_object_add(ro, "hosts",
                               rule->hosts_text ? json_object_new_string(rule->hosts_text) : NULL);
        return ro;
}

/* The fleet section and this host's labels; NULL without one. */
static json_object *fleet_json(const Policy *p) {
        HostLabel labels[POLICY_HOST_LABELS_MAX];
        json_object *o;

        if (!p->fleet.enabled || !(o = json_object_new_object()))
                return NULL;
        json_object_object_add(o, "line", json_object_new_int((int) p->fleet.line));
        json_object_object_add(o, "database", json_object_new_string(p->fleet.database));
        json_object_object_add(o, "host", json_object_new_string(p->fleet.host));
        json_object_object_add(o, "credentials", json_object_new_string(p->fleet.credentials));
        json_object_object_add(o, "max_offline",
                               p->fleet.max_offline > 0
                                       ? json_object_new_int64((int64_t) p->fleet.max_offline)
                                       : NULL);
        json_object *lo = json_object_new_object();
        size_t n = policy_host_labels(p, labels);
        for (size_t i = 0; lo && i < n; i++)
                json_object_object_add(lo, labels[i].key, json_object_new_string(labels[i].value));
        json_object_object_add(o, "labels", lo);
        return o;
}

static void print_fleet(const Policy *p) {
        HostLabel labels[POLICY_HOST_LABELS_MAX];
        char d[DURATION_BUF_MAX];

        if (!p->fleet.enabled)
                return;
        printf("  Fleet (line %u): this host is ", p->fleet.line);
        fputs_escaped(p->fleet.host, stdout);
        fputs(", labels ", stdout);
        size_t n = policy_host_labels(p, labels);
        for (size_t i = 0; i < n; i++) {
                printf("%s%s=", i ? "," : "", labels[i].key);
                fputs_escaped(labels[i].value, stdout);
        }
        if (n == 0)
                fputs("(none)", stdout);
        fputs("; store ", stdout);
        fputs_escaped(p->fleet.database, stdout);
        fputs(", credentials ", stdout);
        fputs_escaped(p->fleet.credentials, stdout);
        if (p->fleet.max_offline > 0)
                printf("; grants honoured offline for at most %s",
                       duration_format(p->fleet.max_offline, d, sizeof(d)));
        else
                fputs("; grants honoured offline until they end", stdout);
        fputs(" (not in use yet)\n", stdout);
}

static json_object *check_json(const char *path, const Policy *p, const char *error,
                               const char *warning) {
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "path", json_object_new_string(path));
        json_object_object_add(o, "valid", json_object_new_boolean(p != NULL));
        json_object_object_add(o, "error", error ? json_object_new_string(error) : NULL);
        json_object_object_add(o, "warning", warning ? json_object_new_string(warning) : NULL);
        if (!p)
                return o;
        json_object_object_add(o, "version", json_object_new_string(p->hash));
        json_object *warnings = json_object_new_array();
        for (size_t i = 0; warnings && i < p->n_warnings; i++)
                json_object_array_add(warnings, json_object_new_string(p->warnings[i]));
        json_object_object_add(o, "warnings", warnings);
        json_object *rules = json_object_new_array();
        for (size_t i = 0; rules && i < p->n_rules; i++)
                json_object_array_add(rules, rule_json(p, &p->rules[i]));
        json_object_object_add(o, "rules", rules);
        json_object *bg = NULL;
        if (p->break_glass.enabled && (bg = json_object_new_object())) {
                json_object_object_add(bg, "line", json_object_new_int((int) p->break_glass.line));
                json_object_object_add(bg, "requesters", list_json(&p->break_glass.requesters));
                json_object_object_add(bg, "services", list_json(&p->break_glass.services));
                json_object_object_add(
                        bg, "max_duration",
                        json_object_new_int64((int64_t) p->break_glass.max_duration));
        }
        json_object_object_add(o, "break_glass", bg);
        json_object_object_add(o, "fleet", fleet_json(p));
        return o;
}

static void print_rule(const Policy *p, size_t i) {
        const PolicyRule *rule = &p->rules[i];
        char d[DURATION_BUF_MAX];

        printf("  %zu. ", i + 1);
        fputs_escaped(rule->name, stdout);
        printf(" (line %u): ", rule->line);
        print_list(&rule->services);
        fputs(" for ", stdout);
        print_list(&rule->requesters);
        if (rule->auto_approve)
                fputs(", approved automatically", stdout);
        else {
                printf(", %u approval%s from ", rule->approvals, rule->approvals == 1 ? "" : "s");
                print_list(&rule->approvers);
        }
        printf(", up to %s", duration_format(policy_rule_cap(p, rule), d, sizeof(d)));
        if (rule->when.n > 0) {
                fputs("; only ", stdout);
                print_list(&rule->when);
        }
        if (rule->ticket_pattern) {
                fputs("; ticket matching ", stdout);
                fputs_escaped(rule->ticket_pattern, stdout);
        }
        if (rule->reason_min_length > 0)
                printf("; reason of at least %u bytes", rule->reason_min_length);
        if (rule->allow_self_approval)
                fputs("; self-approval allowed", stdout);
        if (rule->signed_approvals == POLICY_SIGNED_YES)
                fputs("; signed approvals", stdout);
        else if (rule->signed_approvals == POLICY_SIGNED_NO)
                fputs("; unsigned approvals", stdout);
        if (rule->scope == POLICY_SCOPE_COMMAND)
                fputs("; single commands only", stdout);
        if (rule->hosts_text) {
                fputs("; fleet hosts ", stdout);
                fputs_escaped(rule->hosts_text, stdout);
        }
        /* Run-as matters only where a single command can be granted: under sudo. */
        bool default_run_as = rule->run_as.n == 1 && STREQ(rule->run_as.items[0], "root");
        if (policy_rule_has_service(rule, "sudo") && !default_run_as) {
                fputs("; commands run as ", stdout);
                print_list(&rule->run_as);
        }
        fputc('\n', stdout);
        for (size_t k = 0; k < rule->n_commands; k++) {
                fputs("       command: ", stdout);
                fputs_escaped(rule->commands[k].text, stdout);
                fputc('\n', stdout);
        }
}

int policy_check_file(const char *path, bool json) {
        _cleanup_free_ char *error = NULL;
        _cleanup_(policy_freep) Policy *p = NULL;
        const char *warning = NULL;
        char d1[DURATION_BUF_MAX], d2[DURATION_BUF_MAX];

        int r = load_policy(path, &p, &error, &warning);
        if (json) {
                _cleanup_(json_object_putp) json_object *o =
                        check_json(path, r >= 0 ? p : NULL, error, warning);
                if (!o || print_json(o, stdout) < 0)
                        return JIT_EXIT_FAILURE;
        } else if (r < 0)
                (void) report("check", false, JIT_EXIT_FAILURE, "invalid-policy", "%s",
                              error ?: strerror(-r));
        else {
                printf("%s: valid, %zu rule%s; grants %s by default, at most %s.\n", path,
                       p->n_rules, p->n_rules == 1 ? "" : "s",
                       duration_format(p->default_duration, d1, sizeof(d1)),
                       duration_format(p->max_duration, d2, sizeof(d2)));
                for (size_t i = 0; i < p->n_rules; i++)
                        print_rule(p, i);
                if (p->n_rules == 0)
                        puts("  No rules: every request is refused.");
                if (p->break_glass.enabled) {
                        printf("  Break-glass (line %u): ", p->break_glass.line);
                        print_list(&p->break_glass.services);
                        fputs(" for ", stdout);
                        print_list(&p->break_glass.requesters);
                        printf(", without approval, up to %s\n",
                               duration_format(p->break_glass.max_duration, d1, sizeof(d1)));
                }
                print_fleet(p);
                printf("  Version: %s\n", p->hash);
        }
        if (!json && r >= 0)
                for (size_t i = 0; i < p->n_warnings; i++) {
                        fputs("jitctl: policy check: warning: ", stderr);
                        fputs_escaped(p->warnings[i], stderr);
                        fputc('\n', stderr);
                }
        if (warning && !json)
                fprintf(stderr, "jitctl: policy check: warning: %s is %s\n", path, warning);
        return r < 0 ? JIT_EXIT_FAILURE : JIT_EXIT_OK;
}

/* ---------------------------------------------------------------------------------------
 * explain */

/* "Mon 2024-01-01 10:00:00 CET" for an RFC 3339 UTC time from a decision. */
static const char *local_time_text(const char *rfc3339, char *buf, size_t len) {
        uint64_t usec;

        if (!rfc3339 || timestamp_parse(rfc3339, 0, &usec) < 0)
                return NULL;
        return format_time_for_people(usec, buf, len);
}

static void print_escaped(const char *s, FILE *f) {
        fputs_escaped(s ?: "?", f);
}

/* "Command:  /usr/bin/systemctl restart nginx (as root)" for a decision about one command
 * line: the program's path, then its arguments, quoted as a shell would need them. */
static int print_command(json_object *o) {
        const char *command = json_get_string(o, "command");
        json_object *argv = NULL;

        if (!command)
                return 0;
        size_t n = json_object_object_get_ex(o, "argv", &argv) &&
                                   json_object_is_type(argv, json_type_array)
                           ? json_object_array_length(argv)
                           : 0;
        _cleanup_free_ const char **words = calloc(n + 2, sizeof(char *));
        if (!words)
                return -ENOMEM;
        words[0] = command;
        for (size_t i = 1; i < n; i++)
                words[i] = json_object_get_string(json_object_array_get_idx(argv, i)) ?: "?";
        _cleanup_free_ char *line = jit_command_line_quote(words);
        if (!line)
                return -ENOMEM;
        fputs("Command:  ", stdout);
        fputs_escaped(line, stdout);
        fputs(" (as ", stdout);
        print_escaped(json_get_string(o, "run_as"), stdout);
        fputs(")\n", stdout);
        return 0;
}

int policy_print_explanation(json_object *o, bool json) {
        char d1[DURATION_BUF_MAX], d2[DURATION_BUF_MAX], when[64];
        const char *verdict = json_get_string(o, "verdict");
        PolicyVerdict v;

        if (!json_object_is_type(o, json_type_object) ||
            (v = policy_verdict_from_string(verdict)) == _POLICY_VERDICT_INVALID)
                return report("explain", json, JIT_EXIT_FAILURE, "bad-reply",
                              "the broker's explanation is not a decision");
        if (json) {
                if (print_json(o, stdout) < 0)
                        return JIT_EXIT_FAILURE;
                return v == VERDICT_REFUSED ? JIT_EXIT_REFUSED : JIT_EXIT_OK;
        }

        const char *rule = json_get_string(o, "rule"), *at = json_get_string(o, "at");
        int64_t duration = json_get_int(o, "duration", 0), cap = json_get_int(o, "cap", 0);
        json_object *skipped = NULL, *approvers = NULL;

        fputs("Request:  ", stdout);
        print_escaped(json_get_string(o, "user"), stdout);
        fputs(" for ", stdout);
        print_escaped(json_get_string(o, "service"), stdout);
        if (duration > 0)
                printf(", %s", duration_format((uint64_t) duration, d1, sizeof(d1)));
        if (local_time_text(at, when, sizeof(when)))
                printf(", at %s", when);
        fputc('\n', stdout);
        if (print_command(o) < 0)
                return report("explain", json, JIT_EXIT_FAILURE, "internal", "out of memory");

        if (json_object_object_get_ex(o, "skipped", &skipped) &&
            json_object_is_type(skipped, json_type_array))
                for (size_t i = 0; i < json_object_array_length(skipped); i++) {
                        fputs(i == 0 ? "Skipped:  " : "          ", stdout);
                        print_escaped(json_object_get_string(json_object_array_get_idx(skipped, i)),
                                      stdout);
                        fputc('\n', stdout);
                }

        fputs("Rule:     ", stdout);
        if (rule)
                fputs_escaped(rule, stdout);
        else
                fputs("none matches", stdout);
        const char *scope = json_get_string(o, "scope");
        if (rule && scope && STREQ(scope, "command"))
                fputs(" (single commands only)", stdout);
        fputc('\n', stdout);
        if (rule && json_get_string(o, "command")) {
                const char *pattern = json_get_string(o, "command_pattern");
                fputs("Pattern:  ", stdout);
                if (pattern)
                        fputs_escaped(pattern, stdout);
                else
                        fputs("any command (the rule lists no commands)", stdout);
                fputc('\n', stdout);
        }

        fputs("Decision: ", stdout);
        if (v == VERDICT_REFUSED) {
                fputs("refused: ", stdout);
                print_escaped(json_get_string(o, "message"), stdout);
        } else if (v == VERDICT_AUTO_APPROVE)
                fputs("approved automatically", stdout);
        else {
                int64_t n = json_get_int(o, "approvals", 1);
                printf("needs %lld approval%s from ", (long long) n, n == 1 ? "" : "s");
                if (json_object_object_get_ex(o, "approvers", &approvers) &&
                    json_object_is_type(approvers, json_type_array))
                        for (size_t i = 0; i < json_object_array_length(approvers); i++) {
                                fputs(i ? ", " : "", stdout);
                                print_escaped(json_object_get_string(
                                                      json_object_array_get_idx(approvers, i)),
                                              stdout);
                        }
        }
        fputc('\n', stdout);

        if (rule && cap > 0)
                printf("Duration: %s (the rule allows up to %s)\n",
                       duration_format((uint64_t) duration, d1, sizeof(d1)),
                       duration_format((uint64_t) cap, d2, sizeof(d2)));
        const char *version = json_get_string(o, "policy_version");
        if (version) {
                fputs("Policy:   version ", stdout);
                fputs_escaped(version, stdout);
                fputc('\n', stdout);
        }
        return v == VERDICT_REFUSED ? JIT_EXIT_REFUSED : JIT_EXIT_OK;
}

int policy_explain_file(const ExplainArgs *a, bool json) {
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_free_ char *error = NULL;
        Identity id = { .uid = (uid_t) -1 };
        PolicyDecision d = {};
        int r;

        r = load_policy(a->policy, &p, &error, NULL);
        if (r == -ENOMEM)
                return report("explain", json, JIT_EXIT_FAILURE, "internal", "out of memory");
        if (r < 0)
                return report("explain", json, JIT_EXIT_FAILURE, "invalid-policy", "%s",
                              error ?: strerror(-r));

        if (a->have_groups) /* exactly as given: a what-if that needs no such account */
                id = (Identity){ .name = (char *) a->user,
                                 .uid = (uid_t) -1,
                                 .groups = a->groups,
                                 .n_groups = a->n_groups };
        else {
                r = identity_from_name(a->user, &id);
                if (r == -ENOENT)
                        return report("explain", json, JIT_EXIT_FAILURE, "not-found",
                                      "no user %s on this host (use --groups to explain for a "
                                      "user that does not exist here)",
                                      a->user);
                if (r < 0)
                        return report("explain", json, JIT_EXIT_FAILURE, "internal",
                                      "cannot look up user %s: %s", a->user, strerror(-r));
        }

        JitCommandLine cl = {
                .command = a->argv ? a->argv[0] : NULL,
                .argv = (const char *const *) a->argv,
                .run_as_user = a->run_as_user,
                .run_as_group = a->run_as_group,
        };
        PolicyQuery q = {
                .requester = &id,
                .service = a->service,
                .duration = a->duration,
                .at = a->have_at ? a->at : time(NULL),
                .ticket = a->ticket,
                .reason = a->reason,
                .command = a->argv ? &cl : NULL,
        };
        r = policy_decide(p, &q, &d);
        _cleanup_(json_object_putp) json_object *o =
                r < 0 ? NULL : policy_decision_to_json(p, &q, &d);
        policy_decision_done(&d);
        if (!a->have_groups)
                identity_done(&id);
        if (!o)
                return report("explain", json, JIT_EXIT_FAILURE, "internal", "out of memory");
        return policy_print_explanation(o, json);
}
