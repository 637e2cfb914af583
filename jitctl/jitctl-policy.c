/* SPDX-License-Identifier: MIT */
#include "jitctl-policy.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <libconfig.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#include "cleanup.h"
#include "duration.h"
#include "jitctl-format.h"
#include "jitctl-text.h"
#include "policy-json.h"
#include "policy.h"
#include "protocol.h"
#include "timeutil.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(Policy *, policy_free);

/* Reads the file without the broker's ownership rules (a checkout in git is not owned by
 * root), bounded like the broker reads it; those rules are reported as a warning instead. */
static int read_policy(const char *path, char **ret, size_t *ret_len, const char **ret_warning) {
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
static int load_policy(const char *path, Policy **ret, char **ret_error, const char **ret_warning) {
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

/* A failure of a policy subcommand: on stderr, and with json as the one document. */
static int report(const char *what, bool json, int status, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
static int report(const char *what, bool json, int status, const char *code, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        fprintf(stderr, "jitctl: policy %s: ", what);
        fputs_escaped(msg ?: "out of memory", stderr);
        fputc('\n', stderr);
        if (json) {
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();
                if (o) {
                        json_object_object_add(o, "error", json_object_new_string(code));
                        json_object_object_add(o, "message",
                                               json_object_new_string(msg ?: "out of memory"));
                        (void) print_json(o, stdout);
                }
        }
        return status;
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
        return ro;
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
        fputc('\n', stdout);
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
        } else if (r < 0) {
                fputs("jitctl: policy check: ", stderr);
                fputs_escaped(error ? error : strerror(-r), stderr);
                fputc('\n', stderr);
        } else {
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

/* "Mon 2024-01-01 10:00 CET" for an RFC 3339 UTC time from a decision. */
static const char *local_time_text(const char *rfc3339, char *buf, size_t len) {
        struct tm tm;
        time_t t;

        if (!rfc3339 || policy_time_parse(rfc3339, 0, &t) < 0 || !localtime_r(&t, &tm) ||
            strftime(buf, len, "%a %Y-%m-%d %H:%M %Z", &tm) == 0)
                return NULL;
        return buf;
}

static void print_escaped(const char *s, FILE *f) {
        fputs_escaped(s ?: "?", f);
}

int policy_print_explanation(json_object *o, bool json) {
        char d1[DURATION_BUF_MAX], d2[DURATION_BUF_MAX], when[64];
        const char *verdict = json_get_string(o, "verdict");
        PolicyVerdict v;

        if (!json_object_is_type(o, json_type_object) ||
            policy_verdict_from_string(verdict, &v) < 0)
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
        fputc('\n', stdout);

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

        PolicyQuery q = {
                .requester = &id,
                .service = a->service,
                .duration = a->duration,
                .at = a->have_at ? a->at : time(NULL),
                .ticket = a->ticket,
                .reason = a->reason,
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
} Case;

static void case_done(Case *c) {
        free(c->name);
        free(c->groups);
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

static const char *const case_keys[] = { "name",    "user",        "groups", "service", "for",
                                         "at",      "ticket",      "reason", "expect",  "rule",
                                         "message", "break_glass", NULL };

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
        else if (!valid_service_name(c->service))
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

        if ((r = case_string(f, s, what, "expect", &v)) < 0)
                return r;
        if (!v)
                return case_error(
                        f, s, "%s: missing 'expect' (\"auto\", \"approval\" or \"refused\")", what);
        if (policy_verdict_from_string(v, &c->expect) < 0)
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
