/* SPDX-License-Identifier: MIT */
/* The policy (policy.h): freeing it and its small accessors. Reading the file is
 * policy-parse.c, `when` windows and times policy-when.c, deciding policy-decide.c. */
#include "policy.h"

#include <regex.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "policy-internal.h"
#include "string-table.h"

void string_list_done(StringList *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->items[i]);
        free(l->items);
        *l = (StringList){};
}

bool string_list_contains(const StringList *l, const char *s) {
        for (size_t i = 0; i < l->n; i++)
                if (STREQ(l->items[i], s))
                        return true;
        return false;
}

void policy_free(Policy *p) {
        if (!p)
                return;
        for (size_t i = 0; i < p->n_rules; i++) {
                free(p->rules[i].name);
                string_list_done(&p->rules[i].services);
                string_list_done(&p->rules[i].requesters);
                string_list_done(&p->rules[i].approvers);
                string_list_done(&p->rules[i].when);
                free(p->rules[i].windows);
                free(p->rules[i].ticket_pattern);
                if (p->rules[i].ticket_regex)
                        regfree(p->rules[i].ticket_regex);
                free(p->rules[i].ticket_regex);
                for (size_t k = 0; k < p->rules[i].n_commands; k++)
                        command_pattern_done(&p->rules[i].commands[k]);
                free(p->rules[i].commands);
                string_list_done(&p->rules[i].run_as);
                host_selector_free(p->rules[i].hosts);
                free(p->rules[i].hosts_text);
        }
        free(p->rules);
        for (size_t i = 0; i < p->n_notify; i++) {
                free(p->notify[i].command);
                string_list_done(&p->notify[i].args);
                free(p->notify[i].user);
                string_list_done(&p->notify[i].groups);
        }
        free(p->notify);
        string_list_done(&p->break_glass.requesters);
        string_list_done(&p->break_glass.services);
        for (size_t i = 0; i < p->n_warnings; i++)
                free(p->warnings[i]);
        free(p->warnings);
        free(p->profile.owner);
        free(p->audit_group);
        free(p->allowed_signers);
        free(p->profile.environment);
        free(p->profile.classification);
        free(p->profile.description);
        for (size_t i = 0; i < p->profile.n_labels; i++) {
                free(p->profile.labels[i].key);
                free(p->profile.labels[i].value);
        }
        free(p->profile.labels);
        free(p->fleet.database);
        free(p->fleet.host);
        free(p->fleet.credentials);
        free(p->fleet.poll_credentials);
        free(p->path);
        free(p);
}

bool policy_rule_has_service(const PolicyRule *r, const char *service) {
        return string_list_contains(&r->services, service);
}

bool policy_rule_is_sudo_only(const PolicyRule *r) {
        return r->services.n == 1 && STREQ(r->services.items[0], "sudo");
}

const CommandPattern *policy_rule_find_pattern(const PolicyRule *r, const JitCommandLine *cl) {
        for (size_t i = 0; i < r->n_commands; i++)
                if (command_pattern_match(&r->commands[i], cl->command, cl->argv))
                        return &r->commands[i];
        return NULL;
}

bool policy_rule_allows_run_as(const PolicyRule *r, const char *user, const char *group) {
        const char *u = user ?: "root";
        size_t n = strlen(u);

        for (size_t i = 0; i < r->run_as.n; i++) {
                const char *e = r->run_as.items[i];
                if (strncmp(e, u, n) != 0)
                        continue;
                /* "user" without a group; "user:group" only when that group is asked for. */
                if (group ? e[n] == ':' && STREQ(e + n + 1, group) : e[n] == '\0')
                        return true;
        }
        return false;
}

bool policy_rule_allows_command(const PolicyRule *r, const JitCommandLine *cl) {
        return (r->n_commands == 0 || policy_rule_find_pattern(r, cl)) &&
               policy_rule_allows_run_as(r, cl->run_as_user, cl->run_as_group);
}

const PolicyRule *policy_find_rule(const Policy *p, const char *name) {
        for (size_t i = 0; i < p->n_rules; i++)
                if (STREQ(p->rules[i].name, name))
                        return &p->rules[i];
        return NULL;
}

uint64_t policy_rule_cap(const Policy *p, const PolicyRule *r) {
        if (r->max_duration > 0 && r->max_duration < p->max_duration)
                return r->max_duration;
        return p->max_duration;
}

size_t policy_host_labels(const Policy *p, HostLabel ret[static POLICY_HOST_LABELS_MAX]) {
        const HostLabel candidates[] = {
                { "owner", p->profile.owner },
                { "environment", p->profile.environment },
                { "classification", p->profile.classification },
        };
        size_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(candidates); i++)
                if (host_label_value_is_valid(candidates[i].value))
                        ret[n++] = candidates[i];
        /* Checked by the parser: valid, distinct from the keys above, at most 16. */
        for (size_t i = 0; i < p->profile.n_labels && n < POLICY_HOST_LABELS_MAX; i++)
                ret[n++] = (HostLabel){ p->profile.labels[i].key, p->profile.labels[i].value };
        return n;
}

static const char *const scope_names[_POLICY_SCOPE_MAX] = {
        [POLICY_SCOPE_ANY] = "any",
        [POLICY_SCOPE_COMMAND] = "command",
};

DEFINE_STRING_TABLE(policy_scope, PolicyScope, scope_names, _POLICY_SCOPE_MAX);

static const char *const on_expiry_names[_ON_EXPIRY_MAX] = {
        [ON_EXPIRY_TERMINATE] = "terminate",
        [ON_EXPIRY_WARN] = "warn",
        [ON_EXPIRY_NONE] = "none",
};

DEFINE_STRING_TABLE(on_expiry, OnExpiry, on_expiry_names, _ON_EXPIRY_MAX);

static const char *const notify_event_names[_NOTIFY_EVENT_MAX] = {
        [NOTIFY_FILED] = "filed",
        [NOTIFY_APPROVAL] = "approval",
        [NOTIFY_APPROVED] = "approved",
        [NOTIFY_DENIED] = "denied",
        [NOTIFY_CANCELLED] = "cancelled",
        [NOTIFY_EXPIRED] = "expired",
        [NOTIFY_REVOKED] = "revoked",
        [NOTIFY_TIMED_OUT] = "timed_out",
        [NOTIFY_BREAK_GLASS] = "break_glass",
        [NOTIFY_ACKNOWLEDGED] = "acknowledged",
        [NOTIFY_WITHDRAWN] = "withdrawn",
        [NOTIFY_CONSUMED] = "consumed",
};

DEFINE_STRING_TABLE(notify_event, NotifyEvent, notify_event_names, _NOTIFY_EVENT_MAX);

bool policy_notify_hook_wants(const PolicyNotifyHook *h, NotifyEvent e) {
        return e >= 0 && e < _NOTIFY_EVENT_MAX && (h->events & (1U << e));
}

bool policy_rule_requires_signature(const PolicyRule *rule, bool fleet_request) {
        if (!rule || rule->signed_approvals == POLICY_SIGNED_DEFAULT)
                return fleet_request;
        return rule->signed_approvals == POLICY_SIGNED_YES;
}

const char *policy_allowed_signers(const Policy *p) {
        return p && p->allowed_signers ? p->allowed_signers : POLICY_ALLOWED_SIGNERS_DEFAULT;
}
