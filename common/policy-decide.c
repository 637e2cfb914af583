/* SPDX-License-Identifier: MIT */
/* Deciding with the policy: which rule matches a requester and service, or one command
 * line under sudo (first match wins), and policy_decide() with its explanation, why each
 * earlier rule did not match. */
#include "policy.h"

#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "duration.h"
#include "policy-internal.h"
#include "string-table.h"

static bool list_matches(const StringList *l, const Identity *id) {
        for (size_t i = 0; i < l->n; i++)
                if (identity_matches(id, l->items[i]))
                        return true;
        return false;
}

const PolicyRule *policy_match(const Policy *p, const Identity *requester, const char *service) {
        for (size_t i = 0; i < p->n_rules; i++)
                if (policy_rule_has_service(&p->rules[i], service) &&
                    p->rules[i].scope != POLICY_SCOPE_COMMAND &&
                    list_matches(&p->rules[i].requesters, requester))
                        return &p->rules[i];
        return NULL;
}

const PolicyRule *policy_match_at(const Policy *p, const Identity *requester, const char *service,
                                  time_t at) {
        struct tm tm;
        bool have_tm = localtime_r(&at, &tm);

        for (size_t i = 0; i < p->n_rules; i++) {
                const PolicyRule *r = &p->rules[i];
                if (r->scope == POLICY_SCOPE_COMMAND) /* never decides all of a service */
                        continue;
                if (policy_rule_has_service(r, service) &&
                    list_matches(&r->requesters, requester) &&
                    (r->when.n == 0 || (have_tm && rule_in_window_tm(r, &tm))))
                        return r;
        }
        return NULL;
}

bool policy_rule_is_approver(const PolicyRule *r, const Identity *id) {
        return list_matches(&r->approvers, id);
}

/* Deciding */

static int decision_add_skipped(PolicyDecision *d, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* d->skipped has room for one per rule (decide() allocates it). */
static int decision_add_skipped(PolicyDecision *d, const char *fmt, ...) {
        char *line = NULL;
        va_list ap;

        va_start(ap, fmt);
        int k = vasprintf(&line, fmt, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;
        d->skipped[d->n_skipped++] = line;
        return 0;
}

static int decision_refuse(PolicyDecision *d, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static int decision_refuse(PolicyDecision *d, const char *fmt, ...) {
        va_list ap;

        d->verdict = VERDICT_REFUSED;
        va_start(ap, fmt);
        int k = vasprintf(&d->message, fmt, ap);
        va_end(ap);
        if (k < 0) {
                d->message = NULL;
                return -ENOMEM;
        }
        return 0;
}

/* "Mon-Fri 08:00-20:00, Sat 10:00-12:00" as written in the rule. */
static char *join_when(const PolicyRule *r) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        for (size_t i = 0; i < r->when.n; i++)
                fprintf(f, "%s%s", i ? ", " : "", r->when.items[i]);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

/* The run-as of a command line as run_as lists it: "user" or "user:group". */
static char *run_as_text(const JitCommandLine *cl) {
        char *s = NULL;

        if (asprintf(&s, "%s%s%s", cl->run_as_user ?: "root", cl->run_as_group ? ":" : "",
                     cl->run_as_group ?: "") < 0)
                return NULL;
        return s;
}

/* Why rule r does not match (added to d->skipped), or *ret_matches. */
static int rule_mismatch(const PolicyRule *r, const PolicyQuery *q, const struct tm *tm,
                         PolicyDecision *d, bool *ret_matches) {
        const CommandPattern *pattern = NULL;

        *ret_matches = false;
        if (!policy_rule_has_service(r, q->service))
                return decision_add_skipped(d, "rule \"%s\": does not cover %s", r->name,
                                            q->service);
        if (!q->command && r->scope == POLICY_SCOPE_COMMAND)
                return decision_add_skipped(
                        d, "rule \"%s\": grants single commands only (scope = \"command\")",
                        r->name);
        if (!list_matches(&r->requesters, q->requester))
                return decision_add_skipped(d, "rule \"%s\": %s is not in its requesters", r->name,
                                            q->requester->name);
        if (r->when.n > 0 && !(tm && rule_in_window_tm(r, tm))) {
                _cleanup_free_ char *when = join_when(r);
                if (!when)
                        return -ENOMEM;
                return decision_add_skipped(d, "rule \"%s\": outside its when windows (%s)",
                                            r->name, when);
        }
        if (q->command) {
                /* A rule without commands may grant all of sudo, so one command of it too. */
                if (r->n_commands > 0 && !(pattern = policy_rule_find_pattern(r, q->command)))
                        return decision_add_skipped(
                                d, "rule \"%s\": the command matches none of its patterns",
                                r->name);
                if (!policy_rule_allows_run_as(r, q->command->run_as_user,
                                               q->command->run_as_group)) {
                        _cleanup_free_ char *as = run_as_text(q->command);
                        if (!as)
                                return -ENOMEM;
                        return decision_add_skipped(d, "rule \"%s\": may not run commands as %s",
                                                    r->name, as);
                }
        }
        d->command_pattern = pattern;
        *ret_matches = true;
        return 0;
}

static int decide(const Policy *p, const PolicyQuery *q, PolicyDecision *d) {
        char want[DURATION_BUF_MAX], cap[DURATION_BUF_MAX];
        struct tm tm;
        bool have_tm = localtime_r(&q->at, &tm);
        const PolicyRule *r = NULL;
        _cleanup_free_ char *as = NULL;
        int k;

        d->duration = q->duration;
        if (q->command) {
                /* What the patterns cannot be trusted to read is refused, not matched. */
                if ((k = jit_command_line_check(q->command)) < 0)
                        return decision_refuse(d, "%s", jit_command_line_error(k));
                /* sudo alone runs single commands: no other service has a command line. */
                if (!STREQ(q->service, "sudo"))
                        return decision_refuse(d,
                                               "a single command can be granted for sudo only, "
                                               "not for %s",
                                               q->service);
                if (!(as = run_as_text(q->command)))
                        return -ENOMEM;
        }
        if (p->n_rules > 0 && !(d->skipped = calloc(p->n_rules, sizeof(char *))))
                return -ENOMEM;
        for (size_t i = 0; i < p->n_rules && !r; i++) {
                bool matches;
                if ((k = rule_mismatch(&p->rules[i], q, have_tm ? &tm : NULL, d, &matches)) < 0)
                        return k;
                if (matches)
                        r = &p->rules[i];
        }
        if (!r && q->command)
                return decision_refuse(d, "no policy rule lets %s run %s as %s with %s",
                                       q->requester->name, q->command->command, as, q->service);
        if (!r)
                return decision_refuse(d, "no policy rule lets %s request %s", q->requester->name,
                                       q->service);

        /* From here on the rule decides: no fall-through to a later, laxer one. */
        d->rule = r;
        d->cap = policy_rule_cap(p, r);
        if (q->duration == 0) /* the default is not the user's choice: it fits the cap */
                d->duration = p->default_duration < d->cap ? p->default_duration : d->cap;

        if (r->ticket_regex) {
                if (!q->ticket || !*q->ticket)
                        return decision_refuse(d, "rule \"%s\" needs a ticket matching %s", r->name,
                                               r->ticket_pattern);
                k = regexec(r->ticket_regex, q->ticket, 0, NULL, 0);
                if (k == REG_ESPACE)
                        return -ENOMEM;
                if (k != 0)
                        return decision_refuse(
                                d, "rule \"%s\" needs a ticket matching %s; \"%s\" does not match",
                                r->name, r->ticket_pattern, q->ticket);
        }
        if (q->reason && strlen(q->reason) < r->reason_min_length)
                return decision_refuse(
                        d, "rule \"%s\" needs a reason of at least %u bytes (this one has %zu)",
                        r->name, r->reason_min_length, strlen(q->reason));
        if (d->duration > d->cap)
                return decision_refuse(d,
                                       "requested %s is longer than the %s that rule \"%s\" allows",
                                       duration_format(d->duration, want, sizeof(want)),
                                       duration_format(d->cap, cap, sizeof(cap)), r->name);
        d->verdict = r->auto_approve ? VERDICT_AUTO_APPROVE : VERDICT_NEEDS_APPROVAL;
        return 0;
}

int policy_decide(const Policy *p, const PolicyQuery *q, PolicyDecision *ret) {
        PolicyDecision d = { .verdict = VERDICT_REFUSED };

        int r = decide(p, q, &d);
        if (r < 0) {
                policy_decision_done(&d);
                return r;
        }
        *ret = d;
        return 0;
}

int policy_break_glass_decide(const Policy *p, const Identity *requester, const char *service,
                              uint64_t duration, PolicyDecision *ret) {
        const PolicyBreakGlass *bg = &p->break_glass;
        PolicyDecision d = { .verdict = VERDICT_REFUSED, .duration = duration };
        char want[DURATION_BUF_MAX], cap[DURATION_BUF_MAX];
        int r = 0;

        if (!bg->enabled)
                r = decision_refuse(&d,
                                    "break-glass is not enabled: the policy has no break_glass");
        else if (!list_matches(&bg->requesters, requester))
                r = decision_refuse(&d, "%s is not in break_glass.requesters", requester->name);
        else if (!string_list_contains(&bg->services, service))
                r = decision_refuse(&d, "break_glass does not cover %s", service);
        else {
                d.cap = bg->max_duration;
                if (duration == 0)
                        d.duration = bg->max_duration;
                if (d.duration > d.cap)
                        r = decision_refuse(
                                &d, "requested %s is longer than the %s that break_glass allows",
                                duration_format(d.duration, want, sizeof(want)),
                                duration_format(d.cap, cap, sizeof(cap)));
                else
                        d.verdict = VERDICT_AUTO_APPROVE;
        }
        if (r < 0) {
                policy_decision_done(&d);
                return r;
        }
        *ret = d;
        return 0;
}

void policy_decision_done(PolicyDecision *d) {
        free(d->message);
        for (size_t i = 0; i < d->n_skipped; i++)
                free(d->skipped[i]);
        free(d->skipped);
        *d = (PolicyDecision){ .verdict = VERDICT_REFUSED };
}

static const char *const verdict_names[_POLICY_VERDICT_MAX] = {
        [VERDICT_REFUSED] = "refused",
        [VERDICT_NEEDS_APPROVAL] = "approval",
        [VERDICT_AUTO_APPROVE] = "auto",
};

DEFINE_STRING_TABLE(policy_verdict, PolicyVerdict, verdict_names, _POLICY_VERDICT_MAX);
