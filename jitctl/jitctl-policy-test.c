/* SPDX-License-Identifier: MIT */
/* jitctl policy test: runs a file of expected decisions (libconfig cases) against a
 * policy and prints PASS or FAIL per case. */
#include "jitctl-policy.h"

#include <errno.h>
#include <json-c/json.h>
#include <libconfig.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#include "cleanup.h"
#include "command-line.h"
#include "duration.h"
#include "jitctl-exit.h"
#include "jitctl-format.h"
#include "jitctl-policy-internal.h"
#include "jitctl-text.h"
#include "names.h"
#include "policy-json.h"
#include "policy.h"

/* ---------------------------------------------------------------------------------------
 * test */

typedef struct Case {
        char *name; /* escaped for the terminal */
        const char *raw_name;
        unsigned line;
        const char *user;
        char **groups;
        size_t n_groups;
        const char *service;
        uint64_t duration;
        time_t at;
        const char *ticket;
        const char *reason;
        PolicyVerdict expect;
        const char *rule;
        const char *message;
        bool break_glass;
        char **argv; /* command: one command line under sudo; NULL for all of sudo */
        char *run_as_user, *run_as_group;
        JitCommandLine command;
} Case;

static void case_done(Case *c) {
        free(c->name);
        free(c->groups);
        jit_words_free(c->argv);
        free(c->run_as_user);
        free(c->run_as_group);
}

typedef struct CaseFile {
        const char *path;
        char *error;
        config_t cfg; /* owns every string the cases point to */
        Case *cases;
        size_t n_cases;
        const char *policy; /* the file's policy key, as written */
} CaseFile;

static int case_error(CaseFile *f, const config_setting_t *s, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int case_error(CaseFile *f, const config_setting_t *s, const char *fmt, ...) {
        va_list ap;

        if (f->error)
                return -EINVAL;
        va_start(ap, fmt);
        f->error = config_message_at(f->path, s, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

static const char *const case_keys[] = { "name",    "user",        "groups",  "service", "for",
                                         "at",      "ticket",      "reason",  "expect",  "rule",
                                         "message", "break_glass", "command", "as",      NULL };

static int check_known_keys(CaseFile *f, const config_setting_t *s, const char *what,
                            const char *const *known) {
        for (int i = 0; i < config_setting_length(s); i++) {
                const config_setting_t *m = config_setting_get_elem(s, (unsigned) i);
                const char *key = config_setting_name(m);
                bool ok = false;
                char expected[256] = "";

                for (const char *const *k = known; *k; k++) {
                        ok = ok || STREQ(*k, key);
                        if (expected[0])
                                strncat(expected, ", ", sizeof(expected) - strlen(expected) - 1);
                        strncat(expected, *k, sizeof(expected) - strlen(expected) - 1);
                }
                if (!ok)
                        return case_error(f, m, "%s: unknown key '%s' (expected one of: %s)", what,
                                          key, expected);
        }
        return 0;
}

/* A string member of a case, or NULL when absent. */
static int case_string(CaseFile *f, const config_setting_t *s, const char *what, const char *key,
                       const char **ret) {
        const config_setting_t *m = config_setting_get_member(s, key);

        *ret = NULL;
        if (!m)
                return 0;
        if (config_setting_type(m) != CONFIG_TYPE_STRING)
                return case_error(f, m, "%s: %s: expected a string", what, key);
        *ret = config_setting_get_string(m);
        if (strlen(*ret) > 4096)
                return case_error(f, m, "%s: %s: longer than 4096 bytes", what, key);
        return 0;
}

/* command and as: one command line under sudo, as explain --command and --as read them. */
static int parse_case_command(CaseFile *f, const config_setting_t *s, const char *what, Case *c) {
        const char *command, *as, *why = NULL;
        int r;

        if ((r = case_string(f, s, what, "command", &command)) < 0 ||
            (r = case_string(f, s, what, "as", &as)) < 0)
                return r;
        if (as && !command)
                return case_error(f, config_setting_get_member(s, "as"),
                                  "%s: as: goes with command", what);
        if (!command)
                return 0;
        if (!STREQ(c->service, "sudo"))
                return case_error(f, config_setting_get_member(s, "command"),
                                  "%s: command: only for service \"sudo\"", what);
        r = policy_command_split(command, &c->argv, &why);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return case_error(f, config_setting_get_member(s, "command"), "%s: command: %s",
                                  what, why);
        if (as) {
                r = policy_run_as_parse(as, &c->run_as_user, &c->run_as_group);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return case_error(f, config_setting_get_member(s, "as"),
                                          "%s: as: \"%s\" is not USER or USER:GROUP", what, as);
        }
        c->command = (JitCommandLine){
                .command = c->argv[0],
                .argv = (const char *const *) c->argv,
                .run_as_user = c->run_as_user,
                .run_as_group = c->run_as_group,
        };
        return 0;
}

static int parse_case(CaseFile *f, const config_setting_t *s, size_t index, Case *c) {
        const config_setting_t *m;
        const char *v;
        char what[300];
        int r;

        if (!config_setting_is_group(s))
                return case_error(f, s, "cases: entry %zu: expected a group { name = ...; ... }",
                                  index + 1);
        c->line = config_setting_source_line(s);
        snprintf(what, sizeof(what), "case %zu", index + 1);
        if ((r = case_string(f, s, what, "name", &c->raw_name)) < 0)
                return r;
        if (!c->raw_name || !*c->raw_name)
                return case_error(f, s, "%s: needs a name", what);
        c->name = escape_text(c->raw_name, 0, NULL);
        if (!c->name)
                return -ENOMEM;
        for (size_t i = 0; i < index; i++)
                if (STREQ(f->cases[i].raw_name, c->raw_name))
                        return case_error(f, config_setting_get_member(s, "name"),
                                          "case \"%s\" is named twice (first at line %u)", c->name,
                                          f->cases[i].line);
        snprintf(what, sizeof(what), "case \"%s\"", c->name);
        if ((r = check_known_keys(f, s, what, case_keys)) < 0)
                return r;

        if ((r = case_string(f, s, what, "user", &c->user)) < 0)
                return r;
        if (!c->user)
                return case_error(f, s, "%s: missing 'user'", what);
        if (!valid_account_name(c->user))
                return case_error(f, config_setting_get_member(s, "user"),
                                  "%s: user: \"%s\" is not a user name", what, c->user);

        if ((m = config_setting_get_member(s, "groups"))) {
                if (config_setting_type(m) != CONFIG_TYPE_ARRAY &&
                    config_setting_type(m) != CONFIG_TYPE_LIST)
                        return case_error(
                                f, m, "%s: groups: expected a list of strings like [\"a\", \"b\"]",
                                what);
                int n = config_setting_length(m);
                if (n > IDENTITY_GROUPS_MAX)
                        return case_error(f, m, "%s: groups: more than %d entries", what,
                                          IDENTITY_GROUPS_MAX);
                c->groups = calloc((size_t) n + 1, sizeof(char *));
                if (!c->groups)
                        return -ENOMEM;
                for (int i = 0; i < n; i++) {
                        const config_setting_t *e = config_setting_get_elem(m, (unsigned) i);
                        const char *g = config_setting_get_string(e);
                        if (!g)
                                return case_error(f, e, "%s: groups: entry %d is not a string",
                                                  what, i + 1);
                        if (g[0] == '%') /* written like a policy entry */
                                g++;
                        if (!valid_account_name(g))
                                return case_error(f, e, "%s: groups: \"%s\" is not a group name",
                                                  what, g);
                        c->groups[c->n_groups++] = (char *) g;
                }
        }

        if ((r = case_string(f, s, what, "service", &c->service)) < 0)
                return r;
        if (!c->service)
                c->service = "sudo";
        else if (!jit_service_name_is_valid(c->service))
                return case_error(f, config_setting_get_member(s, "service"),
                                  "%s: service: \"%s\" is not a PAM service name", what,
                                  c->service);

        if ((r = case_string(f, s, what, "for", &v)) < 0)
                return r;
        if (v && duration_parse(v, &c->duration) < 0)
                return case_error(f, config_setting_get_member(s, "for"),
                                  "%s: for: \"%s\" is not a duration "
                                  "(expected e.g. \"90s\", \"30m\", \"1h30m\", \"2h\", \"1d\")",
                                  what, v);

        if ((r = case_string(f, s, what, "at", &v)) < 0)
                return r;
        if (policy_time_parse(v ?: "Mon 12:00", time(NULL), &c->at) < 0)
                return case_error(f, config_setting_get_member(s, "at"),
                                  "%s: at: \"%s\" is not a time "
                                  "(expected \"Mon 10:00\", \"2024-01-01T10:00\", "
                                  "\"2024-01-01T10:00:00Z\" or \"now\")",
                                  what, v);

        if ((r = case_string(f, s, what, "ticket", &c->ticket)) < 0 ||
            (r = case_string(f, s, what, "reason", &c->reason)) < 0 ||
            (r = case_string(f, s, what, "rule", &c->rule)) < 0 ||
            (r = case_string(f, s, what, "message", &c->message)) < 0)
                return r;

        if ((m = config_setting_get_member(s, "break_glass"))) {
                if (config_setting_type(m) != CONFIG_TYPE_BOOL)
                        return case_error(f, m, "%s: break_glass: expected true or false", what);
                c->break_glass = config_setting_get_bool(m);
        }

        if ((r = parse_case_command(f, s, what, c)) < 0)
                return r;

        if ((r = case_string(f, s, what, "expect", &v)) < 0)
                return r;
        if (!v)
                return case_error(
                        f, s, "%s: missing 'expect' (\"auto\", \"approval\" or \"refused\")", what);
        c->expect = policy_verdict_from_string(v);
        if (c->expect == _POLICY_VERDICT_INVALID)
                return case_error(f, config_setting_get_member(s, "expect"),
                                  "%s: expect: \"%s\" is not \"auto\", \"approval\" or \"refused\"",
                                  what, v);

        /* Keys that could never be checked are mistakes, not decoration. */
        if (c->message && c->expect != VERDICT_REFUSED)
                return case_error(
                        f, config_setting_get_member(s, "message"),
                        "%s: message: only a refusal has a message (expect = \"refused\")", what);
        if (c->break_glass && c->rule)
                return case_error(f, config_setting_get_member(s, "rule"),
                                  "%s: rule: a break-glass decision has no rule", what);
        if (c->break_glass && c->expect == VERDICT_NEEDS_APPROVAL)
                return case_error(
                        f, config_setting_get_member(s, "expect"),
                        "%s: expect: break-glass is \"auto\" or \"refused\", never \"approval\"",
                        what);
        if (c->break_glass && c->argv)
                return case_error(f, config_setting_get_member(s, "command"),
                                  "%s: command: break-glass grants all of a service, not one "
                                  "command",
                                  what);
        if (c->break_glass && (c->ticket || c->reason))
                return case_error(f, config_setting_get_member(s, c->ticket ? "ticket" : "reason"),
                                  "%s: break-glass checks neither ticket nor reason", what);
        return 0;
}

static void case_file_done(CaseFile *f) {
        for (size_t i = 0; i < f->n_cases; i++)
                case_done(&f->cases[i]);
        free(f->cases);
        free(f->error);
        config_destroy(&f->cfg);
}

static int case_file_parse(CaseFile *f, const char *text) {
        const config_setting_t *root, *list;
        int r;

        if (config_read_string(&f->cfg, text) != CONFIG_TRUE) {
                if (asprintf(&f->error, "%s:%d: %s", f->path, config_error_line(&f->cfg),
                             config_error_text(&f->cfg)) < 0)
                        f->error = NULL;
                return -EINVAL;
        }
        root = config_root_setting(&f->cfg);
        if ((r = check_known_keys(f, root, "cases file",
                                  (const char *const[]){ "policy", "cases", NULL })) < 0 ||
            (r = case_string(f, root, "cases file", "policy", &f->policy)) < 0)
                return r;
        if (f->policy && !*f->policy)
                return case_error(f, config_setting_get_member(root, "policy"),
                                  "policy: must not be empty");

        list = config_setting_get_member(root, "cases");
        if (!list)
                return case_error(f, NULL, "no 'cases' list (cases = ( { name = ...; ... } );)");
        if (config_setting_type(list) != CONFIG_TYPE_LIST)
                return case_error(f, list, "cases: expected a list ( { ... }, { ... } )");
        int n = config_setting_length(list);
        if (n == 0)
                return case_error(f, list, "cases: the list is empty: nothing would be tested");
        if (n > POLICY_RULES_MAX)
                return case_error(f, list, "cases: more than %d cases", POLICY_RULES_MAX);
        f->cases = calloc((size_t) n, sizeof(Case));
        if (!f->cases)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                f->n_cases = (size_t) i + 1;
                r = parse_case(f, config_setting_get_elem(list, (unsigned) i), (size_t) i,
                               &f->cases[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* "approval by rule \"x\"", "refused: MESSAGE", "auto by break_glass": a decision in words. */
static char *describe_decision(const PolicyDecision *d, bool break_glass) {
        char *s = NULL;
        _cleanup_free_ char *message = d->message ? escape_text(d->message, 0, NULL) : NULL;
        _cleanup_free_ char *rule = d->rule ? escape_text(d->rule->name, 0, NULL) : NULL;

        if ((d->message && !message) || (d->rule && !rule))
                return NULL;
        int k = d->verdict == VERDICT_REFUSED ? asprintf(&s, "refused: %s", message ?: "")
                : break_glass
                        ? asprintf(&s, "%s by break_glass", policy_verdict_to_string(d->verdict))
                        : asprintf(&s, "%s by rule \"%s\"", policy_verdict_to_string(d->verdict),
                                   rule ?: "?");
        return k < 0 ? NULL : s;
}

static char *describe_expectation(const Case *c) {
        char *s = NULL;
        _cleanup_free_ char *rule = c->rule ? escape_text(c->rule, 0, NULL) : NULL;
        _cleanup_free_ char *message = c->message ? escape_text(c->message, 0, NULL) : NULL;

        if ((c->rule && !rule) || (c->message && !message))
                return NULL;
        if (asprintf(&s, "%s%s%s%s%s%s%s", policy_verdict_to_string(c->expect),
                     c->break_glass ? " by break_glass" : "", rule ? " by rule \"" : "", rule ?: "",
                     rule ? "\"" : "", message ? " with a message containing \"" : "",
                     message ? message : "") < 0)
                return NULL;
        if (message) {
                char *t = NULL;
                if (asprintf(&t, "%s\"", s) < 0)
                        t = NULL;
                free(s);
                s = t;
        }
        return s;
}

static bool case_passes(const Case *c, const PolicyDecision *d) {
        if (d->verdict != c->expect)
                return false;
        if (c->rule && !(d->rule && STREQ(d->rule->name, c->rule)))
                return false;
        if (c->message && !(d->message && strstr(d->message, c->message)))
                return false;
        return true;
}

/* Cases never ask NSS: the identity is exactly the case's user and groups. */
static int run_case(const Policy *p, const Case *c, Identity *id, PolicyQuery *q,
                    PolicyDecision *d) {
        *id = (Identity){ .name = (char *) c->user,
                          .uid = (uid_t) -1,
                          .groups = c->groups,
                          .n_groups = c->n_groups };
        *q = (PolicyQuery){
                .requester = id,
                .service = c->service,
                .duration = c->duration,
                .at = c->at,
                .ticket = c->ticket,
                .reason = c->reason,
                .command = c->argv ? &c->command : NULL,
        };
        if (c->break_glass)
                return policy_break_glass_decide(p, id, c->service, c->duration, d);
        return policy_decide(p, q, d);
}

static json_object *case_result_json(const Policy *p, const Case *c, const PolicyQuery *q,
                                     const PolicyDecision *d, bool passed) {
        json_object *o = json_object_new_object(), *expected = json_object_new_object();
        json_object *decision = policy_decision_to_json(p, q, d);

        if (!o || !expected || !decision) {
                json_object_put(o);
                json_object_put(expected);
                json_object_put(decision);
                return NULL;
        }
        json_object_object_add(expected, "verdict",
                               json_object_new_string(policy_verdict_to_string(c->expect)));
        json_object_object_add(expected, "rule", c->rule ? json_object_new_string(c->rule) : NULL);
        json_object_object_add(expected, "message",
                               c->message ? json_object_new_string(c->message) : NULL);
        json_object_object_add(o, "name", json_object_new_string(c->raw_name));
        json_object_object_add(o, "line", json_object_new_int((int) c->line));
        json_object_object_add(o, "passed", json_object_new_boolean(passed));
        json_object_object_add(o, "break_glass", json_object_new_boolean(c->break_glass));
        json_object_object_add(o, "expected", expected);
        json_object_object_add(o, "decision", decision);
        return o;
}

/* The policy a cases file names, relative to the cases file. */
static char *case_policy_path(const char *cases_path, const char *policy) {
        char *s = NULL;

        if (!policy)
                return strdup(JIT_POLICY_PATH);
        if (policy[0] == '/')
                return strdup(policy);
        _cleanup_free_ char *copy = strdup(cases_path);
        if (!copy)
                return NULL;
        if (asprintf(&s, "%s/%s", dirname(copy), policy) < 0)
                return NULL;
        return s;
}

int policy_test_file(const char *cases_path, const char *policy_path, bool json) {
        _cleanup_(case_file_done) CaseFile f = { .path = cases_path };
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_free_ char *text = NULL, *error = NULL, *path = NULL;
        _cleanup_(json_object_putp) json_object *results = NULL;
        const char *ignored;
        size_t len, width = 0, passed = 0, failed = 0;
        int r;

        config_init(&f.cfg);
        r = read_policy(cases_path, &text, &len, &ignored);
        if (r < 0)
                return report("test", json, JIT_EXIT_USAGE, "bad-request", "%s: %s", cases_path,
                              r == -EINVAL ? "not a regular file" : strerror(-r));
        if (memchr(text, '\0', len))
                return report("test", json, JIT_EXIT_USAGE, "bad-request",
                              "%s: the file contains a NUL byte", cases_path);
        r = case_file_parse(&f, text);
        if (r == -ENOMEM)
                return report("test", json, JIT_EXIT_FAILURE, "internal", "out of memory");
        if (r < 0)
                return report("test", json, JIT_EXIT_USAGE, "bad-request", "%s",
                              f.error ?: "malformed cases file");

        path = policy_path ? strdup(policy_path) : case_policy_path(cases_path, f.policy);
        if (!path)
                return report("test", json, JIT_EXIT_FAILURE, "internal", "out of memory");
        r = load_policy(path, &p, &error, NULL);
        if (r == -ENOMEM)
                return report("test", json, JIT_EXIT_FAILURE, "internal", "out of memory");
        if (r < 0)
                return report("test", json, JIT_EXIT_FAILURE, "invalid-policy", "%s",
                              error ?: strerror(-r));

        if (json && !(results = json_object_new_array()))
                return report("test", json, JIT_EXIT_FAILURE, "internal", "out of memory");
        for (size_t i = 0; i < f.n_cases; i++) {
                size_t w = text_width(f.cases[i].name);
                width = w > width ? w : width;
        }
        if (width > 40)
                width = 40; /* a long name shifts only its own line */

        for (size_t i = 0; i < f.n_cases; i++) {
                const Case *c = &f.cases[i];
                Identity id;
                PolicyQuery q;
                PolicyDecision d = {};

                if (run_case(p, c, &id, &q, &d) < 0)
                        return report("test", json, JIT_EXIT_FAILURE, "internal", "out of memory");
                bool ok = case_passes(c, &d);
                ok ? passed++ : failed++;
                if (json) {
                        json_object *o = case_result_json(p, c, &q, &d, ok);
                        if (!o || json_object_array_add(results, o) < 0) {
                                json_object_put(o);
                                policy_decision_done(&d);
                                return report("test", json, JIT_EXIT_FAILURE, "internal",
                                              "out of memory");
                        }
                        policy_decision_done(&d);
                        continue;
                }

                _cleanup_free_ char *got = describe_decision(&d, c->break_glass);
                _cleanup_free_ char *want = ok ? NULL : describe_expectation(c);
                if (!got || (!ok && !want)) {
                        policy_decision_done(&d);
                        return report("test", json, JIT_EXIT_FAILURE, "internal", "out of memory");
                }
                size_t w = text_width(c->name) + (ok ? 0 : 1);
                printf("%s %s%s%*s  ", ok ? "PASS" : "FAIL", c->name, ok ? "" : ":",
                       (int) (w < width + 1 ? width + 1 - w : 0), "");
                if (ok)
                        printf("%s\n", got);
                else {
                        printf("expected %s, got %s\n", want, got);
                        /* Enough to see why without running explain. */
                        printf("%*sat %s:%u%s\n", (int) width + 8, "", cases_path, c->line,
                               d.n_skipped > 0 ? "; rules that did not match:" : "");
                        for (size_t k = 0; k < d.n_skipped; k++) {
                                printf("%*s", (int) width + 10, "");
                                fputs_escaped(d.skipped[k], stdout);
                                fputc('\n', stdout);
                        }
                }
                policy_decision_done(&d);
        }

        if (json) {
                if (print_json(results, stdout) < 0)
                        return JIT_EXIT_FAILURE;
        } else
                printf("%zu passed, %zu failed\n", passed, failed);
        return failed > 0 ? JIT_EXIT_FAILURE : JIT_EXIT_OK;
}
