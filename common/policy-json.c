/* SPDX-License-Identifier: MIT */
#include "policy-json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cleanup.h"
#include "timeutil.h"

/* Adds key to o, taking v; false (and v released) when either is missing. */
static bool add(json_object *o, const char *key, json_object *v, bool may_be_null) {
        if (!v && !may_be_null)
                return false;
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return false;
        }
        return true;
}

static json_object *string_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

static json_object *strings(char *const *items, size_t n) {
        json_object *a = json_object_new_array_ext((int) n);

        for (size_t i = 0; a && i < n; i++) {
                json_object *s = json_object_new_string(items[i]);
                if (!s || json_object_array_add(a, s) < 0) {
                        json_object_put(s);
                        json_object_put(a);
                        return NULL;
                }
        }
        return a;
}

/* The query's command line: "command", "argv" and "run_as" ("user" or "user:group"), all
 * null for a whole-service request. */
static bool add_command(json_object *o, const JitCommandLine *cl) {
        if (!cl)
                return add(o, "command", NULL, true) && add(o, "argv", NULL, true) &&
                       add(o, "run_as", NULL, true);
        size_t n = 0;
        while (cl->argv && cl->argv[n])
                n++;
        _cleanup_free_ char *run_as = NULL;
        if (asprintf(&run_as, "%s%s%s", cl->run_as_user ?: "root", cl->run_as_group ? ":" : "",
                     cl->run_as_group ?: "") < 0)
                return false;
        return add(o, "command", string_or_null(cl->command), !cl->command) &&
               add(o, "argv", strings((char *const *) cl->argv, n), false) &&
               add(o, "run_as", json_object_new_string(run_as), false);
}

json_object *policy_decision_to_json(const Policy *p, const PolicyQuery *q,
                                     const PolicyDecision *d) {
        json_object *o = json_object_new_object();
        const PolicyRule *r = d->rule;
        char at[RFC3339_BUF_MAX];
        bool ok;

        if (!o)
                return NULL;
        format_rfc3339(q->at > 0 ? (uint64_t) q->at * USEC_PER_SEC : 0, at, sizeof(at));
        ok = add(o, "verdict", json_object_new_string(policy_verdict_to_string(d->verdict)),
                 false) &&
             add(o, "rule", r ? json_object_new_string(r->name) : NULL, !r) &&
             add(o, "message", string_or_null(d->message), !d->message) &&
             add(o, "user", json_object_new_string(q->requester->name), false) &&
             add(o, "service", json_object_new_string(q->service), false) &&
             add(o, "duration", json_object_new_int64((int64_t) d->duration), false) &&
             add(o, "cap", json_object_new_int64((int64_t) d->cap), false) &&
             add(o, "approvers",
                 r ? strings(r->approvers.items, r->approvers.n) : json_object_new_array(),
                 false) &&
             add(o, "approvals",
                 json_object_new_int(r && !r->auto_approve ? (int) r->approvals : 0), false) &&
             add(o, "auto_approve",
                 json_object_new_boolean(r ? r->auto_approve : d->verdict == VERDICT_AUTO_APPROVE),
                 false) &&
             add(o, "skipped", strings(d->skipped, d->n_skipped), false) &&
             add_command(o, q->command) &&
             add(o, "command_pattern",
                 string_or_null(d->command_pattern ? d->command_pattern->text : NULL),
                 !d->command_pattern) &&
             add(o, "scope", r ? json_object_new_string(policy_scope_to_string(r->scope)) : NULL,
                 !r) &&
             add(o, "policy_version", json_object_new_string(p->hash), false) &&
             add(o, "at", json_object_new_string(at), false);
        if (!ok) {
                json_object_put(o);
                return NULL;
        }
        return o;
}
