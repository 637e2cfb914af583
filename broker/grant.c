/* SPDX-License-Identifier: MIT */
#include "grant.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "cleanup.h"
#include "duration.h"
#include "protocol.h"
#include "store.h"
#include "timeutil.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(Request *, request_free)

/* ---- transactions ---- */

int grants_begin(Grants *g) {
        if (g->tx_depth == 0) {
                int k = db_begin(g->db);
                if (k < 0)
                        return k;
        }
        g->tx_depth++;
        return 0;
}

int grants_commit(Grants *g) {
        if (g->tx_depth == 0)
                return -EINVAL;
        if (g->tx_depth == 1) {
                int k = db_commit(g->db);
                if (k < 0)
                        return k; /* still open: the caller's guard rolls it back */
                effects_commit(g->effects);
        }
        g->tx_depth--;
        return 0;
}

void grants_rollback(Grants *g) {
        if (g->tx_depth == 0)
                return;
        /* An inner failure undoes the whole transaction. */
        g->tx_depth = 0;
        db_rollback(g->db);
        effects_rollback(g->effects);
}

static int tx_begin(Grants *g, GrantTx *t) {
        assert(!t->g); /* one guard per transaction level: its rollback undoes one begin */
        int k = grants_begin(g);
        if (k >= 0)
                t->g = g;
        return k;
}

static int tx_commit(GrantTx *t) {
        assert(t->g && t->g->tx_depth > 0);
        int k = grants_commit(t->g);
        if (k >= 0)
                t->g = NULL;
        return k;
}

/* ---- results ---- */

static int fail(GrantError *e, int error, const char *doing) {
        assert(error < 0);
        e->code = JIT_ERROR_INTERNAL;
        e->doing = doing;
        snprintf(e->message, sizeof(e->message), "the broker failed while %s; nothing was changed",
                 doing);
        return error;
}

static int conflict(GrantError *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int conflict(GrantError *e, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof(e->message), fmt, ap);
        va_end(ap);
        e->code = JIT_ERROR_CONFLICT;
        e->doing = NULL;
        return -EBUSY;
}

/* A refusal changes nothing and is recorded in the journal all the same. */
static int refuse(Grants *g, GrantError *e, const Identity *caller, const Request *r,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int refuse(Grants *g, GrantError *e, const Identity *caller, const Request *r,
                  const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof(e->message), fmt, ap);
        va_end(ap);
        e->code = JIT_ERROR_REFUSED;
        e->doing = NULL;
        char who[32];
        snprintf(who, sizeof(who), "uid %u", (unsigned) caller->uid);
        const char *name = caller->name ?: who;
        (void) effect_post(g->effects, JIT_EVENT_REFUSED, LOG_NOTICE, r, name, "refused %s: %s",
                           name, e->message);
        return -EPERM;
}

/* ---- who may do what ---- */

static bool is_root(const Identity *caller) {
        return caller->uid == 0;
}

static bool in_list(const StringList *l, const Identity *id) {
        for (size_t i = 0; i < l->n; i++)
                if (identity_matches(id, l->items[i]))
                        return true;
        return false;
}

static bool caller_approves(const Grants *g, const Identity *caller, const Request *r) {
        const PolicyRule *rule = policy_find_rule(g->policy, r->rule);
        return rule && policy_rule_is_approver(rule, caller);
}

/* Break-glass grants are reviewed by root or by the others who may break glass. */
static bool caller_reviews_break_glass(const Grants *g, const Identity *caller, const Request *r) {
        return r->break_glass &&
               (is_root(caller) || in_list(&g->policy->break_glass.requesters, caller));
}

bool grant_may_see(const Grants *g, const Identity *caller, const Request *r) {
        return is_root(caller) || r->requester_uid == caller->uid ||
               caller_approves(g, caller, r) || caller_reviews_break_glass(g, caller, r);
}

/* ---- the changes ---- */

/* pending -> active, through the state machine: the grant runs from now for its duration. */
static int request_activate(const Grants *g, Request *r) {
        RequestState next;
        int k = request_transition(r->state, EVENT_APPROVED, &next);
        if (k < 0)
                return k;
        uint64_t now_real = g->now(CLOCK_REALTIME), now_boot = g->now(CLOCK_BOOTTIME);
        r->state = next;
        r->activated_at = now_real;
        r->expires_at = now_real + r->duration * USEC_PER_SEC;
        snprintf(r->boot_id, sizeof(r->boot_id), "%s", g->boot_id);
        r->deadline_boot = now_boot + r->duration * USEC_PER_SEC;
        r->deadline_at = r->expires_at;
        return 0;
}

/* Every way a request ends: the state machine, the end fields, the row and its audit
 * record, inside the caller's transaction. */
static int request_end(Grants *g, Request *r, RequestEvent event, const char *ended_by,
                       const char *reason, JitEvent audit_event, const char *actor,
                       int64_t actor_uid) {
        RequestState next;
        assert(event >= 0 && event < _REQUEST_EVENT_MAX); /* chosen by the code, not read */
        int k = request_transition(r->state, event, &next);
        if (k < 0)
                return k;
        char *by = strdup(ended_by), *why = reason ? strdup(reason) : NULL;
        if (!by || (reason && !why)) {
                free(by);
                free(why);
                return -ENOMEM;
        }
        r->state = next;
        r->ended_at = g->now(CLOCK_REALTIME);
        free(r->ended_by);
        r->ended_by = by;
        free(r->end_reason);
        r->end_reason = why;
        if ((k = db_update_request(g->db, r)) < 0)
                return k;
        return audit_append(g->db, audit_event, actor, actor_uid, r->id, audit_request_details(r));
}

/* Opens the transaction of a change to request id and reads it inside. */
static int begin_on_request(Grants *g, GrantTx *tx, int64_t id, Request **ret, GrantError *e) {
        int k = tx_begin(g, tx);
        if (k < 0)
                return fail(e, k, "starting a transaction");
        k = db_get_request(g->db, id, ret);
        if (k == -ENOENT) {
                snprintf(e->message, sizeof(e->message), "no request %lld", (long long) id);
                e->code = JIT_ERROR_NOT_FOUND;
                e->doing = NULL;
                return k;
        }
        if (k < 0)
                return fail(e, k, "reading the request");
        return 0;
}

static Request request_new(const Grants *g, const Identity *caller, const GrantAsk *ask,
                           uint64_t duration, const char *rule) {
        uint64_t now_real = g->now(CLOCK_REALTIME), now_boot = g->now(CLOCK_BOOTTIME);
        Request r = {
                .requester = caller->name,
                .requester_uid = caller->uid,
                .service = (char *) ask->service,
                .duration = duration,
                .reason = (char *) ask->reason,
                .ticket = (char *) ask->ticket,
                .once = ask->once,
                .rule = (char *) rule,
                .state = REQUEST_PENDING,
                .created_at = now_real,
                .deadline_boot = now_boot + g->policy->pending_ttl * USEC_PER_SEC,
                .deadline_at = now_real + g->policy->pending_ttl * USEC_PER_SEC,
                .policy_version = (char *) g->policy->hash,
        };
        snprintf(r.boot_id, sizeof(r.boot_id), "%s", g->boot_id);
        return r;
}

int grant_file(Grants *g, const Identity *caller, const GrantAsk *ask, int64_t *ret_id,
               GrantError *e) {
        _cleanup_tx_ GrantTx tx = {};
        _cleanup_(policy_decision_done) PolicyDecision d = {};
        char want[DURATION_BUF_MAX], cap[DURATION_BUF_MAX];
        int k;

        PolicyQuery q = {
                .requester = caller,
                .service = ask->service,
                .duration = ask->duration,
                .at = (time_t) (g->now(CLOCK_REALTIME) / USEC_PER_SEC),
                .ticket = ask->ticket,
                .reason = ask->reason,
        };
        if ((k = policy_decide(g->policy, &q, &d)) < 0)
                return fail(e, k, "applying the policy");
        if (d.verdict == VERDICT_REFUSED)
                return refuse(g, e, caller, NULL, "%s",
                              d.message ? d.message : "refused by policy");
        bool automatic = d.verdict == VERDICT_AUTO_APPROVE;

        if (!automatic) {
                unsigned active, pending;
                if ((k = db_count_open(g->db, caller->uid, &active, &pending)) < 0)
                        return fail(e, k, "counting pending requests");
                if (pending >= g->policy->max_pending_per_user)
                        return refuse(g, e, caller, NULL,
                                      "%s already has %u pending requests (the limit is %u); "
                                      "cancel one first",
                                      caller->name, pending, g->policy->max_pending_per_user);
        }

        Request req = request_new(g, caller, ask, d.duration, d.rule->name);
        req.approvals_required = automatic ? 0 : d.rule->approvals;
        /* The audit record of the filing shows the request as it was filed. */
        Request filed = req;

        if ((k = tx_begin(g, &tx)) < 0)
                return fail(e, k, "starting a transaction");
        if (automatic && (k = request_activate(g, &req)) < 0)
                return fail(e, k, "activating the grant");
        if ((k = db_insert_request(g->db, &req)) < 0)
                return fail(e, k, "saving the request");
        filed.id = req.id;
        if (automatic) {
                /* Recorded as approved by the rule itself, never by a person. */
                Approval a = {
                        .approver = d.rule->name,
                        .approver_uid = (uid_t) -1,
                        .at = req.activated_at,
                        .by_rule = true,
                        .policy_version = (char *) g->policy->hash,
                };
                if ((k = db_add_approval(g->db, req.id, &a)) < 0)
                        return fail(e, k, "recording the auto-approval");
        }
        char rule_actor[POLICY_TEXT_MAX + 8];
        snprintf(rule_actor, sizeof(rule_actor), "rule:%s", req.rule);
        if ((k = audit_append(g->db, JIT_EVENT_REQUESTED, caller->name, caller->uid, req.id,
                              audit_request_details(&filed))) < 0 ||
            (automatic && (k = audit_append(g->db, JIT_EVENT_AUTO_APPROVED, rule_actor, -1, req.id,
                                            audit_request_details(&req))) < 0))
                return fail(e, k, "writing the audit record");
        if ((k = effect_stage(g->effects, JIT_EVENT_REQUESTED, LOG_NOTICE, &req, caller->name, NULL,
                              "%s requested %s for %s (request %lld, rule %s): %s", req.requester,
                              req.service, duration_format(req.duration, want, sizeof(want)),
                              (long long) req.id, req.rule, req.reason)) < 0 ||
            (automatic &&
             (k = effect_stage(g->effects, JIT_EVENT_AUTO_APPROVED, LOG_NOTICE, &req, req.rule,
                               NULL, "%s granted to %s for %s by rule %s (request %lld)",
                               req.service, req.requester,
                               duration_format(req.duration, cap, sizeof(cap)), req.rule,
                               (long long) req.id)) < 0))
                return fail(e, k, "saving the request");
        if ((k = tx_commit(&tx)) < 0)
                return fail(e, k, "saving the request");
        *ret_id = req.id;
        return 0;
}

int grant_break_glass(Grants *g, const Identity *caller, const GrantAsk *ask, int64_t *ret_id,
                      GrantError *e) {
        _cleanup_tx_ GrantTx tx = {};
        _cleanup_(policy_decision_done) PolicyDecision d = {};
        char dbuf[DURATION_BUF_MAX];
        int k;

        if ((k = policy_break_glass_decide(g->policy, caller, ask->service, ask->duration, &d)) < 0)
                return fail(e, k, "applying the policy");
        if (d.verdict == VERDICT_REFUSED)
                return refuse(g, e, caller, NULL, "%s",
                              d.message ? d.message : "break-glass refused by policy");

        GrantAsk bg = { .service = ask->service, .reason = ask->reason };
        Request req = request_new(g, caller, &bg, d.duration, "break-glass");
        req.deadline_boot = req.deadline_at = 0;
        req.break_glass = true;
        if ((k = tx_begin(g, &tx)) < 0 || (k = request_activate(g, &req)) < 0 ||
            (k = db_insert_request(g->db, &req)) < 0 ||
            (k = audit_append(g->db, JIT_EVENT_BREAK_GLASS, caller->name, caller->uid, req.id,
                              audit_request_details(&req))) < 0 ||
            (k = effect_stage(
                     g->effects, JIT_EVENT_BREAK_GLASS, LOG_ALERT, &req, caller->name, NULL,
                     "BREAK-GLASS: %s took %s for %s without approval (request %lld): %s",
                     req.requester, req.service, duration_format(req.duration, dbuf, sizeof(dbuf)),
                     (long long) req.id, req.reason)) < 0 ||
            (k = tx_commit(&tx)) < 0)
                return fail(e, k, "saving the break-glass grant");
        *ret_id = req.id;
        return 0;
}

int grant_approve(Grants *g, const Identity *caller, int64_t id, const char *comment,
                  GrantError *e) {
        _cleanup_tx_ GrantTx tx = {};
        _cleanup_(request_freep) Request *r = NULL;
        int k;

        if ((k = begin_on_request(g, &tx, id, &r, e)) < 0)
                return k;

        /* The rule is judged as the policy stands now, not as it stood at filing. */
        const PolicyRule *rule = policy_find_rule(g->policy, r->rule);
        _cleanup_free_ uid_t *prior = calloc(r->n_approvals + 1, sizeof(uid_t));
        if (!prior)
                return fail(e, -ENOMEM, "approving");
        for (size_t i = 0; i < r->n_approvals; i++)
                prior[i] = r->approvals[i].approver_uid;

        ApprovalVerdict v = approval_decide(
                r->state, r->requester_uid, caller->uid,
                rule && policy_rule_is_approver(rule, caller), prior, r->n_approvals,
                rule && rule->approvals > r->approvals_required ? rule->approvals
                                                                : r->approvals_required,
                rule && rule->allow_self_approval);
        switch (v) {
        case APPROVAL_NOT_PENDING:
                return conflict(e, "request %lld is %s; only pending requests can be approved",
                                (long long) id, request_state_to_string(r->state));
        case APPROVAL_SELF:
                return refuse(g, e, caller, r, "%s cannot approve their own request %lld",
                              caller->name, (long long) id);
        case APPROVAL_NOT_APPROVER:
                if (!rule)
                        return refuse(
                                g, e, caller, r,
                                "request %lld was filed under rule \"%s\", which the policy no longer has",
                                (long long) id, r->rule);
                return refuse(g, e, caller, r, "%s is not an approver for rule \"%s\"",
                              caller->name, r->rule);
        case APPROVAL_DUPLICATE:
                return refuse(g, e, caller, r,
                              "%s has already approved request %lld; an approver counts once",
                              caller->name, (long long) id);
        case APPROVAL_COUNTED:
        case APPROVAL_COMPLETE:
                break;
        }

        /* A policy changed while the broker was down was loaded without the sweep of a
         * reload: the cap is judged here again. */
        uint64_t cap = policy_rule_cap(g->policy, rule);
        if (r->duration > cap) {
                char want[DURATION_BUF_MAX], capb[DURATION_BUF_MAX];
                return refuse(g, e, caller, r,
                              "request %lld asks for %s, longer than the %s rule \"%s\" now allows",
                              (long long) id, duration_format(r->duration, want, sizeof(want)),
                              duration_format(cap, capb, sizeof(capb)), rule->name);
        }

        Approval a = {
                .approver = caller->name,
                .approver_uid = caller->uid,
                .comment = (char *) comment,
                .at = g->now(CLOCK_REALTIME),
                .policy_version = (char *) g->policy->hash,
        };
        if ((k = db_add_approval(g->db, id, &a)) < 0)
                return fail(e, k, "recording the approval");
        if (v == APPROVAL_COMPLETE &&
            ((k = request_activate(g, r)) < 0 || (k = db_update_request(g->db, r)) < 0))
                return fail(e, k, "activating the grant");
        json_object *details = audit_request_details(r);
        if (details) {
                json_object_object_add(details, "approver", json_object_new_string(caller->name));
                if (comment)
                        json_object_object_add(details, "comment", json_object_new_string(comment));
        }
        if ((k = audit_append(g->db, JIT_EVENT_APPROVAL, caller->name, caller->uid, id, details)) <
                    0 ||
            (v == APPROVAL_COMPLETE &&
             (k = audit_append(g->db, JIT_EVENT_GRANTED, caller->name, caller->uid, id,
                               audit_request_details(r))) < 0))
                return fail(e, k, "writing the audit record");

        char field[JIT_USER_MAX + 32], d[DURATION_BUF_MAX];
        snprintf(field, sizeof(field), "JIT_APPROVER=%s", caller->name);
        if ((k = effect_stage(g->effects, JIT_EVENT_APPROVAL, LOG_NOTICE, r, caller->name, field,
                              "%s approved request %lld of %s (%zu of %u)", caller->name,
                              (long long) id, r->requester, r->n_approvals + 1,
                              r->approvals_required)) < 0 ||
            (v == APPROVAL_COMPLETE &&
             (k = effect_stage(g->effects, JIT_EVENT_GRANTED, LOG_NOTICE, r, caller->name, field,
                               "%s granted to %s for %s (request %lld)", r->service, r->requester,
                               duration_format(r->duration, d, sizeof(d)), (long long) id)) < 0) ||
            (k = tx_commit(&tx)) < 0)
                return fail(e, k, "saving the approval");
        return 0;
}

enum {
        MAY_REQUESTER = 1 << 0,
        MAY_APPROVER = 1 << 1,
        MAY_ROOT = 1 << 2,
};

int grant_end(Grants *g, const Identity *caller, int64_t id, RequestEvent event, const char *reason,
              GrantError *e) {
        _cleanup_tx_ GrantTx tx = {};
        _cleanup_(request_freep) Request *r = NULL;
        unsigned who;
        const char *verb, *done;
        JitEvent ev;
        int k;

        switch (event) {
        case EVENT_DENY:
                who = MAY_APPROVER | MAY_ROOT, verb = "deny", done = "denied",
                ev = JIT_EVENT_DENIED;
                break;
        case EVENT_CANCEL:
                who = MAY_REQUESTER | MAY_ROOT, verb = "cancel", done = "cancelled",
                ev = JIT_EVENT_CANCELLED;
                break;
        case EVENT_REVOKE:
                who = MAY_REQUESTER | MAY_APPROVER | MAY_ROOT, verb = "revoke", done = "revoked",
                ev = JIT_EVENT_REVOKED;
                break;
        default:
                return fail(e, -EINVAL, "ending the request");
        }

        if ((k = begin_on_request(g, &tx, id, &r, e)) < 0)
                return k;
        /* An approver never reviews their own request: they cancel it like anyone. */
        bool allowed = ((who & MAY_REQUESTER) && r->requester_uid == caller->uid) ||
                       ((who & MAY_APPROVER) && caller_approves(g, caller, r) &&
                        r->requester_uid != caller->uid) ||
                       ((who & MAY_ROOT) && is_root(caller));
        if (!allowed)
                return refuse(g, e, caller, r, "%s may not %s request %lld", caller->name, verb,
                              (long long) id);
        RequestState next;
        if (request_transition(r->state, event, &next) < 0)
                return conflict(e, "request %lld is %s and cannot be %s", (long long) id,
                                request_state_to_string(r->state), done);
        bool was_active = r->state == REQUEST_ACTIVE;
        if ((k = request_end(g, r, event, caller->name, reason, ev, caller->name, caller->uid)) <
                    0 ||
            (k = effect_stage(g->effects, ev, LOG_NOTICE, r, caller->name, NULL,
                              "%s %s request %lld of %s%s%s", caller->name, done, (long long) id,
                              r->requester, reason ? ": " : "", reason ? reason : "")) < 0)
                return fail(e, k, "saving the change");
        if (was_active)
                effect_ends_grant(g->effects);
        if ((k = tx_commit(&tx)) < 0)
                return fail(e, k, "saving the change");
        return 0;
}

int grant_acknowledge(Grants *g, const Identity *caller, int64_t id, GrantError *e) {
        _cleanup_tx_ GrantTx tx = {};
        _cleanup_(request_freep) Request *r = NULL;
        int k;

        if ((k = begin_on_request(g, &tx, id, &r, e)) < 0)
                return k;
        if (!r->break_glass)
                return conflict(e, "request %lld is not a break-glass grant", (long long) id);
        if (r->acknowledged_by)
                return conflict(e, "request %lld was already acknowledged by %s", (long long) id,
                                r->acknowledged_by);
        /* A second person: never the one who broke the glass, root included. */
        if (r->requester_uid == caller->uid)
                return refuse(g, e, caller, r,
                              "%s cannot acknowledge their own break-glass grant %lld",
                              caller->name, (long long) id);
        if (!caller_reviews_break_glass(g, caller, r))
                return refuse(g, e, caller, r, "%s may not acknowledge break-glass grants",
                              caller->name);
        r->acknowledged_by = strdup(caller->name);
        r->acknowledged_at = g->now(CLOCK_REALTIME);
        if (!r->acknowledged_by)
                return fail(e, -ENOMEM, "acknowledging");
        if ((k = db_update_request(g->db, r)) < 0 ||
            (k = audit_append(g->db, JIT_EVENT_ACKNOWLEDGED, caller->name, caller->uid, id,
                              audit_request_details(r))) < 0 ||
            (k = effect_stage(g->effects, JIT_EVENT_ACKNOWLEDGED, LOG_NOTICE, r, caller->name, NULL,
                              "%s acknowledged break-glass grant %lld of %s", caller->name,
                              (long long) id, r->requester)) < 0 ||
            (k = tx_commit(&tx)) < 0)
                return fail(e, k, "saving the acknowledgement");
        return 0;
}

/* ---- the broker's own changes ---- */

static int end_due_request(Grants *g, int64_t id) {
        _cleanup_tx_ GrantTx tx = {};
        _cleanup_(request_freep) Request *r = NULL;
        GrantError e;
        int k;

        if ((k = begin_on_request(g, &tx, id, &r, &e)) < 0)
                return k;
        uint64_t now_real = g->now(CLOCK_REALTIME), now_boot = g->now(CLOCK_BOOTTIME);
        bool other_boot = !STREQ(r->boot_id, g->boot_id);
        RequestEvent event = r->state == REQUEST_ACTIVE ? EVENT_EXPIRE : EVENT_PENDING_TIMEOUT;
        const char *why = event == EVENT_EXPIRE ? "expired" : "pending too long";

        if (other_boot && r->state == REQUEST_PENDING) {
                /* A pending request waits out its time across a reboot, re-based on this boot's
                 * clock. */
                uint64_t left = r->deadline_at > now_real ? r->deadline_at - now_real : 0;
                if (left > 0) {
                        snprintf(r->boot_id, sizeof(r->boot_id), "%s", g->boot_id);
                        r->deadline_boot = now_boot + left;
                        if ((k = db_update_request(g->db, r)) < 0)
                                return k;
                        return tx_commit(&tx);
                }
        } else if (other_boot)
                /* A grant is not trusted across a reboot: its clock is gone, like sudo's
                 * timestamps. */
                why = "the host rebooted";

        if (event == EVENT_EXPIRE) {
                if ((k = request_end(g, r, event, "broker", why, JIT_EVENT_EXPIRED, "broker", -1)) <
                            0 ||
                    (k = effect_stage(g->effects, JIT_EVENT_EXPIRED, LOG_NOTICE, r, "broker", NULL,
                                      "grant %lld (%s for %s) ended: %s", (long long) r->id,
                                      r->service, r->requester, why)) < 0)
                        return k;
                effect_ends_grant(g->effects);
        } else if ((k = request_end(g, r, event, "broker", why, JIT_EVENT_TIMED_OUT, "broker",
                                    -1)) < 0 ||
                   (k = effect_stage(g->effects, JIT_EVENT_TIMED_OUT, LOG_NOTICE, r, "broker", NULL,
                                     "request %lld (%s for %s) timed out without enough approvals",
                                     (long long) r->id, r->service, r->requester)) < 0)
                return k;
        return tx_commit(&tx);
}

int grant_end_due(Grants *g) {
        _cleanup_free_ int64_t *ids = NULL;
        size_t n = 0;
        int r = db_due_requests(g->db, g->boot_id, g->now(CLOCK_BOOTTIME), g->now(CLOCK_REALTIME),
                                &ids, &n);
        if (r < 0) {
                if (g->report)
                        g->report(g->report_userdata, r, "finding expired grants", 0);
                return r;
        }
        for (size_t i = 0; i < n; i++) {
                int k = end_due_request(g, ids[i]);
                if (k < 0) {
                        /* The check refuses it anyway (it compares deadlines); retried on the
                         * next tick. */
                        if (g->report)
                                g->report(g->report_userdata, k, "ending request", ids[i]);
                        r = k;
                }
        }
        return r;
}

/* Whether the rule a request was filed under still exists and still lets its requester ask
 * for its service and duration: NULL, or why not. */
static const char *still_allowed(const Grants *g, const Request *r, char *buf, size_t len) {
        const PolicyRule *rule = policy_find_rule(g->policy, r->rule);
        Identity id = { .uid = (uid_t) -1 };
        bool requester_ok = false;
        char d1[DURATION_BUF_MAX], d2[DURATION_BUF_MAX];

        if (!rule)
                return snprintf(buf, len, "rule \"%s\" is gone", r->rule), buf;
        if (!policy_rule_has_service(rule, r->service))
                return snprintf(buf, len, "rule \"%s\" no longer covers %s", r->rule, r->service),
                       buf;
        if (identity_from_uid(r->requester_uid, &id) >= 0) {
                requester_ok = in_list(&rule->requesters, &id);
                identity_done(&id);
        }
        if (!requester_ok)
                return snprintf(buf, len, "rule \"%s\" no longer lists %s as a requester", r->rule,
                                r->requester),
                       buf;
        uint64_t cap = policy_rule_cap(g->policy, rule);
        if (r->duration > cap)
                return snprintf(buf, len, "%s is longer than the %s rule \"%s\" now allows",
                                duration_format(r->duration, d1, sizeof(d1)),
                                duration_format(cap, d2, sizeof(d2)), r->rule),
                       buf;
        return NULL;
}

static int withdraw(Grants *g, Request *r, const char *why) {
        _cleanup_tx_ GrantTx tx = {};
        char reason[640];
        bool active = r->state == REQUEST_ACTIVE;
        int k;

        snprintf(reason, sizeof(reason), "the new policy (version %.12s) no longer allows it: %s",
                 g->policy->hash, why);
        if ((k = tx_begin(g, &tx)) < 0 ||
            (k = request_end(g, r, active ? EVENT_REVOKE : EVENT_DENY, "broker", reason,
                             JIT_EVENT_WITHDRAWN, "broker", -1)) < 0 ||
            (k = effect_stage(g->effects, JIT_EVENT_WITHDRAWN, LOG_NOTICE, r, "broker", NULL,
                              "%s %lld of %s %s: %s", active ? "grant" : "request",
                              (long long) r->id, r->requester, active ? "withdrawn" : "refused",
                              reason)) < 0)
                return k;
        if (active)
                effect_ends_grant(g->effects);
        return tx_commit(&tx);
}

void grant_withdraw_disallowed(Grants *g) {
        static const RequestState open_states[] = { REQUEST_PENDING, REQUEST_ACTIVE };
        Request **list = NULL;
        size_t n = 0;
        char why[512];

        int k = db_list_requests(g->db, open_states, 2, 0, false, (uid_t) -1, &list, &n);
        if (k < 0) {
                if (g->report)
                        g->report(g->report_userdata, k,
                                  "re-checking open requests after the reload", 0);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                Request *r = list[i];
                /* Break-glass grants answer to break_glass, not to a rule: they run out. */
                if (r->break_glass || !still_allowed(g, r, why, sizeof(why)))
                        continue;
                k = withdraw(g, r, why);
                if (k < 0 && g->report)
                        g->report(g->report_userdata, k, "withdrawing after the reload", r->id);
        }
        request_free_many(list, n);
        g->effects->state_changed = true;
}

int grant_consume(Grants *g, int64_t id, GrantError *e) {
        _cleanup_tx_ GrantTx tx = {};
        _cleanup_(request_freep) Request *r = NULL;
        int k;

        if ((k = begin_on_request(g, &tx, id, &r, e)) < 0)
                return k;
        if (!r->once || r->state != REQUEST_ACTIVE)
                return tx_commit(&tx); /* nothing to use up */
        if ((k = request_end(g, r, EVENT_CONSUME, "broker", "its one session closed",
                             JIT_EVENT_CONSUMED, "broker", -1)) < 0 ||
            (k = effect_stage(g->effects, JIT_EVENT_CONSUMED, LOG_NOTICE, r, "broker", NULL,
                              "one-shot grant %" PRId64 " of %s consumed: its session closed",
                              r->id, r->requester)) < 0 ||
            (k = tx_commit(&tx)) < 0)
                return fail(e, k, "using up the one-shot grant");
        return 0;
}
