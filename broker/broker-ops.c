/* SPDX-License-Identifier: MIT */
/* One function per protocol operation (common/PROTOCOL.md). Each authorizes the caller
 * from SO_PEERCRED, validates every field, changes state in one transaction through the
 * state machine, logs the event, and answers. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker-audit.h"
#include "broker-journal.h"
#include "broker-sessions.h"
#include "broker.h"
#include "cleanup.h"
#include "config.h"
#include "duration.h"
#include "policy-json.h"
#include "protocol.h"
#include "timeutil.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(Request *, request_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)

typedef struct Op {
        Broker *b;
        const struct ucred *peer;
        int peer_fd; /* the connection, for SO_PEERPIDFD */
        json_object *msg;
        Identity caller;
} Op;

static json_object *json_time(uint64_t usec) {
        char buf[RFC3339_BUF_MAX];
        return usec ? json_object_new_string(format_rfc3339(usec, buf, sizeof(buf))) : NULL;
}

static json_object *json_string_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

static uint64_t grant_usec_left(const Broker *b, const Request *r) {
        if (r->state != REQUEST_ACTIVE || strcmp(r->boot_id, b->boot_id) != 0)
                return 0;
        uint64_t nb = now_usec(CLOCK_BOOTTIME), nr = now_usec(CLOCK_REALTIME);
        uint64_t by_boot = r->deadline_boot > nb ? r->deadline_boot - nb : 0;
        uint64_t by_real = r->expires_at > nr ? r->expires_at - nr : 0;
        return by_boot < by_real ? by_boot : by_real;
}

static json_object *request_to_json(const Broker *b, const Request *r) {
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "id", json_object_new_int64(r->id));
        json_object_object_add(o, "state",
                               json_object_new_string(request_state_to_string(r->state)));
        json_object_object_add(o, "requester", json_object_new_string(r->requester));
        json_object_object_add(o, "requester_uid", json_object_new_int64(r->requester_uid));
        json_object_object_add(o, "service", json_object_new_string(r->service));
        json_object_object_add(o, "duration", json_object_new_int64((int64_t) r->duration));
        json_object_object_add(o, "reason", json_object_new_string(r->reason));
        json_object_object_add(o, "ticket", json_string_or_null(r->ticket));
        json_object_object_add(o, "once", json_object_new_boolean(r->once));
        json_object_object_add(o, "rule", json_object_new_string(r->rule));
        json_object_object_add(o, "approvals_required",
                               json_object_new_int((int) r->approvals_required));

        json_object *approvals = json_object_new_array();
        for (size_t i = 0; approvals && i < r->n_approvals; i++) {
                json_object *a = json_object_new_object();
                if (!a)
                        break;
                json_object_object_add(a, "approver",
                                       json_object_new_string(r->approvals[i].approver));
                json_object_object_add(
                        a, "kind",
                        json_object_new_string(r->approvals[i].by_rule ? "rule" : "person"));
                json_object_object_add(
                        a, "approver_uid",
                        r->approvals[i].by_rule
                                ? NULL
                                : json_object_new_int64(r->approvals[i].approver_uid));
                json_object_object_add(a, "policy_version",
                                       json_string_or_null(r->approvals[i].policy_version));
                json_object_object_add(a, "comment", json_string_or_null(r->approvals[i].comment));
                json_object_object_add(a, "at", json_time(r->approvals[i].at));
                json_object_array_add(approvals, a);
        }
        json_object_object_add(o, "approvals", approvals);

        json_object_object_add(o, "created_at", json_time(r->created_at));
        json_object_object_add(o, "activated_at", json_time(r->activated_at));
        json_object_object_add(o, "expires_at", json_time(r->expires_at));
        json_object_object_add(o, "ended_at", json_time(r->ended_at));
        json_object_object_add(o, "ended_by", json_string_or_null(r->ended_by));
        json_object_object_add(o, "end_reason", json_string_or_null(r->end_reason));
        json_object_object_add(o, "policy_version", json_string_or_null(r->policy_version));
        json_object_object_add(o, "break_glass", json_object_new_boolean(r->break_glass));
        json_object_object_add(o, "acknowledged_by", json_string_or_null(r->acknowledged_by));
        json_object_object_add(o, "acknowledged_at", json_time(r->acknowledged_at));
        json_object_object_add(
                o, "seconds_left",
                r->state == REQUEST_ACTIVE
                        ? json_object_new_int64((int64_t) (grant_usec_left(b, r) / USEC_PER_SEC))
                        : NULL);
        return o;
}

static json_object *reply_request(Op *op, int64_t id) {
        _cleanup_(request_freep) Request *r = NULL;
        int k = db_get_request(op->b->db, id, &r);
        if (k < 0) {
                errno = -k;
                log_error("reading request %lld back: %m", (long long) id);
                return jit_reply_error(JIT_ERROR_INTERNAL,
                                       "the change was saved but could not be read back");
        }
        return jit_reply_ok(request_to_json(op->b, r));
}

static json_object *internal_error(Op *op, const char *what, int r) {
        errno = -r;
        log_error("%s (for uid %u): %m; sqlite: %s", what, (unsigned) op->peer->uid,
                  db_error(op->b->db));
        return jit_reply_error(JIT_ERROR_INTERNAL,
                               "the broker failed while %s; nothing was changed", what);
}

static json_object *refuse(Op *op, const Request *r, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static json_object *refuse(Op *op, const Request *r, const char *fmt, ...) {
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        char who[32];
        snprintf(who, sizeof(who), "uid %u", (unsigned) op->peer->uid);
        log_event(JIT_EVENT_REFUSED, LOG_NOTICE, r, op->caller.name ?: who, NULL, "refused %s: %s",
                  op->caller.name ?: who, msg);
        return jit_reply_error(JIT_ERROR_REFUSED, "%s", msg);
}

static json_object *bad_field(const char *field, int r, size_t max) {
        if (r == -E2BIG)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "%s is longer than %zu bytes", field,
                                       max);
        if (r == -EBADMSG)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                       "%s contains control characters or invalid UTF-8", field);
        return jit_reply_error(JIT_ERROR_BAD_REQUEST, "%s is missing or of the wrong type", field);
}

static int get_id(json_object *msg, int64_t *ret) {
        return jit_message_get_int(msg, "id", 1, INT64_MAX, true, ret, NULL);
}

static bool is_root(const Op *op) {
        return op->peer->uid == 0;
}

static const PolicyRule *request_rule(const Op *op, const Request *r) {
        return policy_find_rule(op->b->policy, r->rule);
}

static bool caller_approves(const Op *op, const Request *r) {
        const PolicyRule *rule = request_rule(op, r);
        return rule && policy_rule_is_approver(rule, &op->caller);
}

static bool in_list(const StringList *l, const Identity *id) {
        for (size_t i = 0; i < l->n; i++)
                if (identity_matches(id, l->items[i]))
                        return true;
        return false;
}

/* Break-glass grants are reviewed by root or by the others who may break glass. */
static bool caller_reviews_break_glass(const Op *op, const Request *r) {
        return r->break_glass &&
               (is_root(op) || in_list(&op->b->policy->break_glass.requesters, &op->caller));
}

static bool may_see(const Op *op, const Request *r) {
        return is_root(op) || r->requester_uid == op->caller.uid || caller_approves(op, r) ||
               caller_reviews_break_glass(op, r);
}

/* pending -> active, through the state machine: the grant runs from now for its duration. */
static int request_activate(const Broker *b, Request *r, uint64_t now_real, uint64_t now_boot) {
        RequestState next;
        int k = request_transition(r->state, EVENT_APPROVED, &next);
        if (k < 0)
                return k;
        r->state = next;
        r->activated_at = now_real;
        r->expires_at = now_real + r->duration * USEC_PER_SEC;
        memcpy(r->boot_id, b->boot_id, sizeof(r->boot_id));
        r->deadline_boot = now_boot + r->duration * USEC_PER_SEC;
        r->deadline_at = r->expires_at;
        return 0;
}

/* ---- check: the PAM module asks whether a user holds a grant ---- */

/* The PAM stack's two questions share their message: root only, a user and a service. */
static json_object *get_user_service(Op *op, const char *what, const char **ret_user,
                                     const char **ret_service) {
        int r;

        /* Only root (the PAM stack inside sudo/sshd) may ask on someone's behalf. */
        if (!is_root(op))
                return refuse(op, NULL, "only root may %s", what);
        if ((r = jit_message_get_string(op->msg, "user", JIT_USER_MAX, true, ret_user)) < 0)
                return bad_field("user", r, JIT_USER_MAX);
        if ((r = jit_message_get_string(op->msg, "service", JIT_SERVICE_MAX, true, ret_service)) <
            0)
                return bad_field("service", r, JIT_SERVICE_MAX);
        if (!valid_service_name(*ret_service))
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "service must be a PAM service name");
        return NULL;
}

/* The active grant of the named user for service, now: 1 with *ret_id, 0 for none (an
 * unknown user has none), or -errno. */
static int find_grant(Op *op, const char *user, const char *service, int64_t *ret_id,
                      uint64_t *ret_expires_at) {
        uid_t uid;
        int r = user_uid_from_name(user, &uid);
        if (r == -ENOENT || r == -EINVAL)
                return 0;
        if (r < 0)
                return r;
        return db_find_grant(op->b->db, uid, service, op->b->boot_id, now_usec(CLOCK_BOOTTIME),
                             now_usec(CLOCK_REALTIME), ret_id, ret_expires_at);
}

static json_object *op_check(Op *op) {
        const char *user, *service;
        json_object *bad = get_user_service(op, "check grants", &user, &service);
        int r;

        if (bad)
                return bad;

        json_object *res = json_object_new_object();
        if (!res)
                return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");

        int64_t id = 0;
        uint64_t expires_at = 0;
        r = find_grant(op, user, service, &id, &expires_at);
        if (r < 0) {
                json_object_put(res);
                return internal_error(op, "looking up a grant", r);
        }

        bool allowed = r > 0;
        char id_field[64], user_field[JIT_USER_MAX + 16], service_field[JIT_SERVICE_MAX + 16];
        snprintf(id_field, sizeof(id_field), "JIT_REQUEST_ID=%lld", (long long) id);
        snprintf(user_field, sizeof(user_field), "JIT_USER=%s", user);
        snprintf(service_field, sizeof(service_field), "JIT_SERVICE=%s", service);
        const char *fields[] = { user_field, service_field, allowed ? id_field : NULL, NULL };
        if (allowed)
                log_event(JIT_EVENT_ACCESS_ALLOWED, LOG_INFO, NULL, NULL, fields,
                          "%s allowed for %s under grant %lld", service, user, (long long) id);
        else
                log_event(JIT_EVENT_ACCESS_DENIED, LOG_NOTICE, NULL, NULL, fields,
                          "%s denied for %s: no active grant", service, user);

        json_object_object_add(res, "allowed", json_object_new_boolean(allowed));
        json_object_object_add(res, "request_id", allowed ? json_object_new_int64(id) : NULL);
        json_object_object_add(res, "expires_at", allowed ? json_time(expires_at) : NULL);
        return jit_reply_ok(res);
}

/* ---- request ---- */

static json_object *op_request(Op *op) {
        Broker *b = op->b;
        const char *service, *reason, *ticket;
        int64_t duration = 0;
        bool has_duration, once;
        char cap_buf[DURATION_BUF_MAX], want_buf[DURATION_BUF_MAX];
        int r;

        if ((r = jit_message_get_string(op->msg, "service", JIT_SERVICE_MAX, false, &service)) < 0)
                return bad_field("service", r, JIT_SERVICE_MAX);
        if (!service)
                service = "sudo";
        if (!valid_service_name(service))
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "service must be a PAM service name "
                                                              "(letters, digits, '.', '_', '-')");
        if ((r = jit_message_get_string(op->msg, "reason", JIT_REASON_MAX, true, &reason)) < 0)
                return bad_field("reason", r, JIT_REASON_MAX);
        if (strspn(reason, " ") == strlen(reason))
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "reason must not be empty");
        if ((r = jit_message_get_string(op->msg, "ticket", JIT_TICKET_MAX, false, &ticket)) < 0)
                return bad_field("ticket", r, JIT_TICKET_MAX);
        if (ticket && !*ticket)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "ticket must not be empty");
        if ((r = jit_message_get_int(op->msg, "duration", 1, (int64_t) JIT_DURATION_MAX_SEC, false,
                                     &duration, &has_duration)) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                       "duration must be whole seconds between 1 and %llu",
                                       (unsigned long long) JIT_DURATION_MAX_SEC);
        if (jit_message_get_bool(op->msg, "once", &once) < 0)
                return bad_field("once", -EINVAL, 0);

        _cleanup_(policy_decision_done) PolicyDecision d = {};
        PolicyQuery q = {
                .requester = &op->caller,
                .service = service,
                .duration = has_duration ? (uint64_t) duration : 0,
                .at = time(NULL),
                .ticket = ticket,
                .reason = reason,
        };
        if ((r = policy_decide(b->policy, &q, &d)) < 0)
                return internal_error(op, "applying the policy", r);
        if (d.verdict == VERDICT_REFUSED)
                return refuse(op, NULL, "%s", d.message ? d.message : "refused by policy");
        bool automatic = d.verdict == VERDICT_AUTO_APPROVE;

        if (!automatic) {
                unsigned active, pending;
                if ((r = db_count_open(b->db, op->caller.uid, &active, &pending)) < 0)
                        return internal_error(op, "counting pending requests", r);
                if (pending >= b->policy->max_pending_per_user)
                        return refuse(op, NULL,
                                      "%s already has %u pending requests (the limit is %u); "
                                      "cancel one first",
                                      op->caller.name, pending, b->policy->max_pending_per_user);
        }

        uint64_t now_real = now_usec(CLOCK_REALTIME), now_boot = now_usec(CLOCK_BOOTTIME);
        Request req = {
                .requester = op->caller.name,
                .requester_uid = op->caller.uid,
                .service = (char *) service,
                .duration = d.duration,
                .reason = (char *) reason,
                .ticket = (char *) ticket,
                .once = once,
                .rule = d.rule->name,
                .approvals_required = automatic ? 0 : d.rule->approvals,
                .state = REQUEST_PENDING,
                .created_at = now_real,
                .deadline_boot = now_boot + b->policy->pending_ttl * USEC_PER_SEC,
                .deadline_at = now_real + b->policy->pending_ttl * USEC_PER_SEC,
                .policy_version = b->policy->hash,
        };
        memcpy(req.boot_id, b->boot_id, sizeof(req.boot_id));

        if ((r = db_begin(b->db)) < 0)
                return internal_error(op, "starting a transaction", r);
        if (automatic && (r = request_activate(b, &req, now_real, now_boot)) < 0) {
                db_rollback(b->db);
                return internal_error(op, "activating the grant", r);
        }
        if ((r = db_insert_request(b->db, &req)) < 0) {
                db_rollback(b->db);
                return internal_error(op, "saving the request", r);
        }
        if (automatic) {
                /* Recorded as approved by the rule itself, never by a person. */
                Approval a = {
                        .approver = d.rule->name,
                        .approver_uid = (uid_t) -1,
                        .at = now_real,
                        .by_rule = true,
                        .policy_version = b->policy->hash,
                };
                if ((r = db_add_approval(b->db, req.id, &a)) < 0) {
                        db_rollback(b->db);
                        return internal_error(op, "recording the auto-approval", r);
                }
        }
        /* The records go in the same transaction: no state change without its record. */
        char rule_actor[POLICY_TEXT_MAX + 8];
        snprintf(rule_actor, sizeof(rule_actor), "rule:%s", req.rule);
        Request filed = req;
        filed.state = REQUEST_PENDING;
        if ((r = audit_append(b, JIT_EVENT_REQUESTED, op->caller.name, op->caller.uid, req.id,
                              audit_request_details(&filed))) < 0 ||
            (automatic && (r = audit_append(b, JIT_EVENT_AUTO_APPROVED, rule_actor, -1, req.id,
                                            audit_request_details(&req))) < 0)) {
                db_rollback(b->db);
                return internal_error(op, "writing the audit record", r);
        }
        if ((r = db_commit(b->db)) < 0) {
                db_rollback(b->db);
                return internal_error(op, "saving the request", r);
        }

        log_event(JIT_EVENT_REQUESTED, LOG_NOTICE, &req, op->caller.name, NULL,
                  "%s requested %s for %s (request %lld, rule %s): %s", req.requester, req.service,
                  duration_format(req.duration, want_buf, sizeof(want_buf)), (long long) req.id,
                  req.rule, req.reason);
        if (automatic)
                log_event(JIT_EVENT_AUTO_APPROVED, LOG_NOTICE, &req, req.rule, NULL,
                          "%s granted to %s for %s by rule %s (request %lld)", req.service,
                          req.requester, duration_format(req.duration, cap_buf, sizeof(cap_buf)),
                          req.rule, (long long) req.id);
        broker_state_changed(b);
        return reply_request(op, req.id);
}

/* Opens the transaction of a change to request id and reads it inside: NULL with *ret
 * set and the transaction open, or the error reply (nothing open). */
static json_object *begin_on_request(Op *op, int64_t id, Request **ret) {
        int k = db_begin(op->b->db);
        if (k < 0)
                return internal_error(op, "starting a transaction", k);
        k = db_get_request(op->b->db, id, ret);
        if (k < 0) {
                db_rollback(op->b->db);
                if (k == -ENOENT)
                        return jit_reply_error(JIT_ERROR_NOT_FOUND, "no request %lld",
                                               (long long) id);
                return internal_error(op, "reading the request", k);
        }
        return NULL;
}

/* ---- approve ---- */

static json_object *op_approve(Op *op) {
        Broker *b = op->b;
        _cleanup_(request_freep) Request *r = NULL;
        const char *comment;
        int64_t id;
        int k;

        if (get_id(op->msg, &id) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "id must be a positive integer");
        if ((k = jit_message_get_string(op->msg, "comment", JIT_REASON_MAX, false, &comment)) < 0)
                return bad_field("comment", k, JIT_REASON_MAX);

        json_object *err = begin_on_request(op, id, &r);
        if (err)
                return err;

        /* The rule is judged as the policy stands now, not as it stood at filing. */
        const PolicyRule *rule = request_rule(op, r);
        _cleanup_free_ uid_t *prior = calloc(r->n_approvals + 1, sizeof(uid_t));
        if (!prior) {
                db_rollback(b->db);
                return internal_error(op, "approving", -ENOMEM);
        }
        for (size_t i = 0; i < r->n_approvals; i++)
                prior[i] = r->approvals[i].approver_uid;

        ApprovalVerdict v = approval_decide(
                r->state, r->requester_uid, op->caller.uid,
                rule && policy_rule_is_approver(rule, &op->caller), prior, r->n_approvals,
                rule && rule->approvals > r->approvals_required ? rule->approvals
                                                                : r->approvals_required,
                rule && rule->allow_self_approval);
        switch (v) {
        case APPROVAL_NOT_PENDING:
                db_rollback(b->db);
                return jit_reply_error(JIT_ERROR_CONFLICT,
                                       "request %lld is %s; only pending requests can be approved",
                                       (long long) id, request_state_to_string(r->state));
        case APPROVAL_SELF:
                db_rollback(b->db);
                return refuse(op, r, "%s cannot approve their own request %lld", op->caller.name,
                              (long long) id);
        case APPROVAL_NOT_APPROVER:
                db_rollback(b->db);
                if (!rule)
                        return refuse(
                                op, r,
                                "request %lld was filed under rule \"%s\", which the policy no longer has",
                                (long long) id, r->rule);
                return refuse(op, r, "%s is not an approver for rule \"%s\"", op->caller.name,
                              r->rule);
        case APPROVAL_DUPLICATE:
                db_rollback(b->db);
                return refuse(op, r,
                              "%s has already approved request %lld; an approver counts once",
                              op->caller.name, (long long) id);
        case APPROVAL_COUNTED:
        case APPROVAL_COMPLETE:
                break;
        }

        uint64_t cap = policy_rule_cap(b->policy, rule);
        if (r->duration > cap) {
                char want[DURATION_BUF_MAX], capb[DURATION_BUF_MAX];
                db_rollback(b->db);
                return refuse(op, r,
                              "request %lld asks for %s, longer than the %s rule \"%s\" now allows",
                              (long long) id, duration_format(r->duration, want, sizeof(want)),
                              duration_format(cap, capb, sizeof(capb)), rule->name);
        }

        uint64_t now_real = now_usec(CLOCK_REALTIME), now_boot = now_usec(CLOCK_BOOTTIME);
        Approval a = {
                .approver = op->caller.name,
                .approver_uid = op->caller.uid,
                .comment = (char *) comment,
                .at = now_real,
                .policy_version = b->policy->hash,
        };
        if ((k = db_add_approval(b->db, id, &a)) < 0) {
                db_rollback(b->db);
                return internal_error(op, "recording the approval", k);
        }
        if (v == APPROVAL_COMPLETE) {
                if ((k = request_activate(b, r, now_real, now_boot)) < 0 ||
                    (k = db_update_request(b->db, r)) < 0) {
                        db_rollback(b->db);
                        return internal_error(op, "activating the grant", k);
                }
        }
        json_object *details = audit_request_details(r);
        if (details) {
                json_object_object_add(details, "approver",
                                       json_object_new_string(op->caller.name));
                if (comment)
                        json_object_object_add(details, "comment", json_object_new_string(comment));
        }
        if ((k = audit_append(b, JIT_EVENT_APPROVAL, op->caller.name, op->caller.uid, id,
                              details)) < 0 ||
            (v == APPROVAL_COMPLETE &&
             (k = audit_append(b, JIT_EVENT_GRANTED, op->caller.name, op->caller.uid, id,
                               audit_request_details(r))) < 0)) {
                db_rollback(b->db);
                return internal_error(op, "writing the audit record", k);
        }
        if ((k = db_commit(b->db)) < 0) {
                db_rollback(b->db);
                return internal_error(op, "saving the approval", k);
        }

        char fbuf[JIT_USER_MAX + 32];
        snprintf(fbuf, sizeof(fbuf), "JIT_APPROVER=%s", op->caller.name);
        const char *fields[] = { fbuf, NULL };
        log_event(JIT_EVENT_APPROVAL, LOG_NOTICE, r, op->caller.name, fields,
                  "%s approved request %lld of %s (%zu of %u)", op->caller.name, (long long) id,
                  r->requester, r->n_approvals + 1, r->approvals_required);
        if (v == APPROVAL_COMPLETE) {
                char d[DURATION_BUF_MAX];
                log_event(JIT_EVENT_GRANTED, LOG_NOTICE, r, op->caller.name, fields,
                          "%s granted to %s for %s (request %lld)", r->service, r->requester,
                          duration_format(r->duration, d, sizeof(d)), (long long) id);
        }
        broker_state_changed(b);
        return reply_request(op, id);
}

/* ---- deny, cancel, revoke: a request leaves pending/active early ---- */

enum {
        MAY_REQUESTER = 1 << 0,
        MAY_APPROVER = 1 << 1,
        MAY_ROOT = 1 << 2,
};

static json_object *end_request(Op *op, RequestEvent event, unsigned who, const char *verb,
                                const char *reason) {
        Broker *b = op->b;
        _cleanup_(request_freep) Request *r = NULL;
        int64_t id;
        int k;

        if (get_id(op->msg, &id) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "id must be a positive integer");

        json_object *err = begin_on_request(op, id, &r);
        if (err)
                return err;

        bool allowed = ((who & MAY_REQUESTER) && r->requester_uid == op->caller.uid) ||
                       ((who & MAY_APPROVER) && caller_approves(op, r) &&
                        r->requester_uid != op->caller.uid) ||
                       ((who & MAY_ROOT) && is_root(op));
        if (!allowed) {
                db_rollback(b->db);
                return refuse(op, r, "%s may not %s request %lld", op->caller.name, verb,
                              (long long) id);
        }

        RequestState next;
        if (request_transition(r->state, event, &next) < 0) {
                db_rollback(b->db);
                return jit_reply_error(JIT_ERROR_CONFLICT, "request %lld is %s and cannot be %s",
                                       (long long) id, request_state_to_string(r->state),
                                       event == EVENT_REVOKE ? "revoked"
                                       : event == EVENT_DENY ? "denied"
                                                             : "cancelled");
        }
        r->state = next;
        r->ended_at = now_usec(CLOCK_REALTIME);
        free(r->ended_by);
        r->ended_by = strdup(op->caller.name);
        free(r->end_reason);
        r->end_reason = reason ? strdup(reason) : NULL;
        if (!r->ended_by || (reason && !r->end_reason)) {
                db_rollback(b->db);
                return internal_error(op, verb, -ENOMEM);
        }
        JitEvent ev = event == EVENT_DENY     ? JIT_EVENT_DENIED
                      : event == EVENT_REVOKE ? JIT_EVENT_REVOKED
                                              : JIT_EVENT_CANCELLED;
        if ((k = db_update_request(b->db, r)) < 0 ||
            (k = audit_append(b, ev, op->caller.name, op->caller.uid, id,
                              audit_request_details(r))) < 0 ||
            (k = db_commit(b->db)) < 0) {
                db_rollback(b->db);
                return internal_error(op, "saving the change", k);
        }
        log_event(ev, LOG_NOTICE, r, op->caller.name, NULL, "%s %s request %lld of %s%s%s",
                  op->caller.name,
                  event == EVENT_DENY     ? "denied"
                  : event == EVENT_REVOKE ? "revoked"
                                          : "cancelled",
                  (long long) id, r->requester, reason ? ": " : "", reason ? reason : "");
        if (event == EVENT_REVOKE)
                sessions_grant_ended(b, r);
        broker_state_changed(b);
        return reply_request(op, id);
}

static json_object *op_deny(Op *op) {
        const char *reason;
        int k = jit_message_get_string(op->msg, "reason", JIT_REASON_MAX, true, &reason);
        if (k < 0)
                return bad_field("reason", k, JIT_REASON_MAX);
        return end_request(op, EVENT_DENY, MAY_APPROVER | MAY_ROOT, "deny", reason);
}

static json_object *op_revoke(Op *op) {
        const char *reason;
        int k = jit_message_get_string(op->msg, "reason", JIT_REASON_MAX, false, &reason);
        if (k < 0)
                return bad_field("reason", k, JIT_REASON_MAX);
        return end_request(op, EVENT_REVOKE, MAY_REQUESTER | MAY_APPROVER | MAY_ROOT, "revoke",
                           reason);
}

static json_object *op_cancel(Op *op) {
        return end_request(op, EVENT_CANCEL, MAY_REQUESTER | MAY_ROOT, "cancel", NULL);
}

/* ---- list, show, status ---- */

static json_object *requests_to_array(Op *op, Request **list, size_t n, bool only_visible) {
        json_object *arr = json_object_new_array();
        for (size_t i = 0; arr && i < n; i++) {
                if (only_visible && !may_see(op, list[i]))
                        continue;
                json_object *o = request_to_json(op->b, list[i]);
                if (o)
                        json_object_array_add(arr, o);
        }
        return arr;
}

static json_object *op_list(Op *op) {
        static const RequestState open_states[] = { REQUEST_PENDING, REQUEST_ACTIVE };
        static const RequestState pending[] = { REQUEST_PENDING };
        static const RequestState active[] = { REQUEST_ACTIVE };
        const RequestState *states = open_states;
        size_t n_states = 2;
        const char *filter;
        bool mine;
        int k;

        if ((k = jit_message_get_string(op->msg, "filter", 16, false, &filter)) < 0)
                return bad_field("filter", k, 16);
        if (jit_message_get_bool(op->msg, "mine", &mine) < 0)
                return bad_field("mine", -EINVAL, 0);
        if (!filter || STREQ(filter, "open"))
                ;
        else if (STREQ(filter, "pending"))
                states = pending, n_states = 1;
        else if (STREQ(filter, "active"))
                states = active, n_states = 1;
        else if (STREQ(filter, "all"))
                states = NULL, n_states = 0;
        else
                return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                       "filter must be open, pending, active or all");

        Request **list = NULL;
        size_t n = 0;
        k = db_list_requests(op->b->db, states, n_states, DB_LIST_MAX, true,
                             mine ? op->caller.uid : (uid_t) -1, &list, &n);
        if (k < 0)
                return internal_error(op, "listing requests", k);
        json_object *arr = requests_to_array(op, list, n, true);
        request_free_many(list, n);
        return arr ? jit_reply_ok(arr) : jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
}

static json_object *profile_to_json(const Policy *p) {
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        if (p->profile.owner)
                json_object_object_add(o, "owner", json_object_new_string(p->profile.owner));
        if (p->profile.environment)
                json_object_object_add(o, "environment",
                                       json_object_new_string(p->profile.environment));
        if (p->profile.classification)
                json_object_object_add(o, "classification",
                                       json_object_new_string(p->profile.classification));
        if (p->profile.description)
                json_object_object_add(o, "description",
                                       json_object_new_string(p->profile.description));
        return o;
}

static json_object *op_show(Op *op) {
        _cleanup_(request_freep) Request *r = NULL;
        int64_t id;

        if (get_id(op->msg, &id) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "id must be a positive integer");
        int k = db_get_request(op->b->db, id, &r);
        if (k == -ENOENT)
                return jit_reply_error(JIT_ERROR_NOT_FOUND, "no request %lld", (long long) id);
        if (k < 0)
                return internal_error(op, "reading the request", k);
        if (!may_see(op, r))
                return refuse(op, r, "%s may not see request %lld", op->caller.name,
                              (long long) id);

        json_object *o = request_to_json(op->b, r);
        if (!o)
                return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
        json_object_object_add(o, "profile", profile_to_json(op->b->policy));
        json_object_object_add(o, "sessions", sessions_json(op->b, r->id));
        json_object_object_add(o, "current_policy_version",
                               json_object_new_string(op->b->policy->hash));
        const PolicyRule *rule = request_rule(op, r);
        json_object *approvers = json_object_new_array();
        for (size_t i = 0; rule && approvers && i < rule->approvers.n; i++)
                json_object_array_add(approvers, json_object_new_string(rule->approvers.items[i]));
        json_object_object_add(o, "approvers", approvers);
        return jit_reply_ok(o);
}

static json_object *op_status(Op *op) {
        static const RequestState active[] = { REQUEST_ACTIVE };
        static const RequestState pending[] = { REQUEST_PENDING };
        Request **la = NULL, **lp = NULL;
        size_t na = 0, np = 0;
        unsigned all_active = 0, all_pending = 0;
        int k;

        if ((k = db_list_requests(op->b->db, active, 1, DB_LIST_MAX, false, op->caller.uid, &la,
                                  &na)) < 0 ||
            (k = db_list_requests(op->b->db, pending, 1, DB_LIST_MAX, false, op->caller.uid, &lp,
                                  &np)) < 0 ||
            (k = db_count_open(op->b->db, (uid_t) -1, &all_active, &all_pending)) < 0) {
                request_free_many(la, na);
                request_free_many(lp, np);
                return internal_error(op, "reading status", k);
        }

        json_object *res = json_object_new_object();
        json_object *broker = json_object_new_object();
        if (res && broker) {
                json_object *grants = requests_to_array(op, la, na, false);
                for (size_t i = 0; grants && i < json_object_array_length(grants); i++)
                        json_object_object_add(json_object_array_get_idx(grants, i), "sessions",
                                               sessions_json(op->b, la[i]->id));
                json_object_object_add(res, "grants", grants);
                json_object_object_add(res, "pending", requests_to_array(op, lp, np, false));
                json_object_object_add(broker, "version", json_object_new_string(JIT_VERSION));
                json_object_object_add(broker, "active", json_object_new_int((int) all_active));
                json_object_object_add(broker, "pending", json_object_new_int((int) all_pending));
                json_object_object_add(broker, "policy",
                                       json_object_new_string(op->b->policy_path));
                json_object_object_add(res, "broker", broker);
                broker = NULL;
        }
        json_object_put(broker);
        request_free_many(la, na);
        request_free_many(lp, np);
        return res ? jit_reply_ok(res) : jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
}

/* ---- break-glass and its acknowledgement ---- */

static json_object *op_break_glass(Op *op) {
        Broker *b = op->b;
        const char *service, *reason;
        int64_t duration = 0;
        bool has_duration;
        char dbuf[DURATION_BUF_MAX];
        int r;

        if ((r = jit_message_get_string(op->msg, "service", JIT_SERVICE_MAX, true, &service)) < 0)
                return bad_field("service", r, JIT_SERVICE_MAX);
        if (!valid_service_name(service))
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "service must be a PAM service name");
        if ((r = jit_message_get_string(op->msg, "reason", JIT_REASON_MAX, true, &reason)) < 0)
                return bad_field("reason", r, JIT_REASON_MAX);
        if (strspn(reason, " ") == strlen(reason))
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "reason must not be empty");
        if ((r = jit_message_get_int(op->msg, "duration", 1, (int64_t) JIT_DURATION_MAX_SEC, false,
                                     &duration, &has_duration)) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "duration must be whole seconds");

        _cleanup_(policy_decision_done) PolicyDecision d = {};
        if ((r = policy_break_glass_decide(b->policy, &op->caller, service,
                                           has_duration ? (uint64_t) duration : 0, &d)) < 0)
                return internal_error(op, "applying the policy", r);
        if (d.verdict == VERDICT_REFUSED)
                return refuse(op, NULL, "%s",
                              d.message ? d.message : "break-glass refused by policy");

        uint64_t now_real = now_usec(CLOCK_REALTIME), now_boot = now_usec(CLOCK_BOOTTIME);
        Request req = {
                .requester = op->caller.name,
                .requester_uid = op->caller.uid,
                .service = (char *) service,
                .duration = d.duration,
                .reason = (char *) reason,
                .rule = (char *) "break-glass",
                .state = REQUEST_PENDING,
                .created_at = now_real,
                .policy_version = b->policy->hash,
                .break_glass = true,
        };
        if ((r = db_begin(b->db)) < 0)
                return internal_error(op, "starting a transaction", r);
        if ((r = request_activate(b, &req, now_real, now_boot)) < 0 ||
            (r = db_insert_request(b->db, &req)) < 0 ||
            (r = audit_append(b, JIT_EVENT_BREAK_GLASS, op->caller.name, op->caller.uid, req.id,
                              audit_request_details(&req))) < 0 ||
            (r = db_commit(b->db)) < 0) {
                db_rollback(b->db);
                return internal_error(op, "saving the break-glass grant", r);
        }

        log_event(JIT_EVENT_BREAK_GLASS, LOG_ALERT, &req, op->caller.name, NULL,
                  "BREAK-GLASS: %s took %s for %s without approval (request %lld): %s",
                  req.requester, req.service, duration_format(req.duration, dbuf, sizeof(dbuf)),
                  (long long) req.id, req.reason);
        broker_state_changed(b);
        return reply_request(op, req.id);
}

static json_object *op_ack(Op *op) {
        Broker *b = op->b;
        _cleanup_(request_freep) Request *r = NULL;
        int64_t id;
        int k;

        if (get_id(op->msg, &id) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "id must be a positive integer");
        json_object *err = begin_on_request(op, id, &r);
        if (err)
                return err;
        if (!r->break_glass) {
                db_rollback(b->db);
                return jit_reply_error(JIT_ERROR_CONFLICT,
                                       "request %lld is not a break-glass grant", (long long) id);
        }
        if (r->acknowledged_by) {
                db_rollback(b->db);
                return jit_reply_error(JIT_ERROR_CONFLICT,
                                       "request %lld was already acknowledged by %s",
                                       (long long) id, r->acknowledged_by);
        }
        /* A second person: never the one who broke the glass, root included. */
        if (r->requester_uid == op->caller.uid) {
                db_rollback(b->db);
                return refuse(op, r, "%s cannot acknowledge their own break-glass grant %lld",
                              op->caller.name, (long long) id);
        }
        if (!caller_reviews_break_glass(op, r)) {
                db_rollback(b->db);
                return refuse(op, r, "%s may not acknowledge break-glass grants", op->caller.name);
        }
        r->acknowledged_by = strdup(op->caller.name);
        r->acknowledged_at = now_usec(CLOCK_REALTIME);
        if (!r->acknowledged_by) {
                db_rollback(b->db);
                return internal_error(op, "acknowledging", -ENOMEM);
        }
        if ((k = db_update_request(b->db, r)) < 0 ||
            (k = audit_append(b, JIT_EVENT_ACKNOWLEDGED, op->caller.name, op->caller.uid, id,
                              audit_request_details(r))) < 0 ||
            (k = db_commit(b->db)) < 0) {
                db_rollback(b->db);
                return internal_error(op, "saving the acknowledgement", k);
        }
        log_event(JIT_EVENT_ACKNOWLEDGED, LOG_NOTICE, r, op->caller.name, NULL,
                  "%s acknowledged break-glass grant %lld of %s", op->caller.name, (long long) id,
                  r->requester);
        return reply_request(op, id);
}

/* ---- explain: a dry run of the live policy ---- */

static int parse_rfc3339(const char *s, time_t *ret) {
        struct tm tm = {};
        const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!end)
                return -EINVAL;
        if (STREQ(end, "Z"))
                *ret = timegm(&tm);
        else if (*end == '\0') {
                tm.tm_isdst = -1;
                *ret = mktime(&tm);
        } else
                return -EINVAL;
        return *ret == (time_t) -1 ? -EINVAL : 0;
}

static json_object *op_explain(Op *op) {
        const char *user, *service, *ticket, *at_text;
        int64_t duration = 0;
        bool has_duration;
        time_t at = time(NULL);
        Identity id = { .uid = (uid_t) -1 };
        int r;

        if ((r = jit_message_get_string(op->msg, "user", JIT_USER_MAX, true, &user)) < 0)
                return bad_field("user", r, JIT_USER_MAX);
        if ((r = jit_message_get_string(op->msg, "service", JIT_SERVICE_MAX, true, &service)) < 0)
                return bad_field("service", r, JIT_SERVICE_MAX);
        if ((r = jit_message_get_string(op->msg, "ticket", JIT_TICKET_MAX, false, &ticket)) < 0)
                return bad_field("ticket", r, JIT_TICKET_MAX);
        if ((r = jit_message_get_string(op->msg, "at", 64, false, &at_text)) < 0)
                return bad_field("at", r, 64);
        if (at_text && parse_rfc3339(at_text, &at) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "at must be an RFC 3339 time");
        if (jit_message_get_int(op->msg, "duration", 1, (int64_t) JIT_DURATION_MAX_SEC, false,
                                &duration, &has_duration) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "duration must be whole seconds");

        json_object *groups;
        if (json_object_object_get_ex(op->msg, "groups", &groups) &&
            !json_object_is_type(groups, json_type_null)) {
                /* Explaining for hypothetical groups: nothing is looked up. */
                size_t n = json_object_is_type(groups, json_type_array)
                                   ? json_object_array_length(groups)
                                   : SIZE_MAX;
                if (n > IDENTITY_GROUPS_MAX || !valid_account_name(user))
                        return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                               "groups must be a list of group names");
                id.name = strdup(user);
                id.groups = calloc(n + 1, sizeof(char *));
                if (!id.name || !id.groups) {
                        identity_done(&id);
                        return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
                }
                for (size_t i = 0; i < n; i++) {
                        json_object *g = json_object_array_get_idx(groups, i);
                        const char *gs = json_object_is_type(g, json_type_string)
                                                 ? json_object_get_string(g)
                                                 : NULL;
                        if (!gs || !valid_account_name(gs) ||
                            !(id.groups[id.n_groups++] = strdup(gs))) {
                                identity_done(&id);
                                return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                                       "groups must be a list of group names");
                        }
                }
        } else if ((r = identity_from_name(user, &id)) < 0)
                return jit_reply_error(JIT_ERROR_NOT_FOUND, "no user %s", user);

        PolicyQuery q = {
                .requester = &id,
                .service = service,
                .duration = has_duration ? (uint64_t) duration : 0,
                .at = at,
                .ticket = ticket,
        };
        PolicyDecision d = {};
        r = policy_decide(op->b->policy, &q, &d);
        json_object *res = r < 0 ? NULL : policy_decision_to_json(op->b->policy, &q, &d);
        policy_decision_done(&d);
        identity_done(&id);
        return res ? jit_reply_ok(res) : jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
}

/* ---- audit: the record, for auditors in full, for others their own requests ---- */

#define AUDIT_GROUP "jit-auditors"
/* A record is up to ~2 KiB as JSON: this many stay under the 4 MiB reply. */
#define AUDIT_QUERY_MAX 2000

static json_object *op_audit(Op *op) {
        const char *since_text, *until_text, *user;
        int64_t request_id = 0, limit = 1000;
        time_t since = 0, until = 0;
        int r;

        if ((r = jit_message_get_string(op->msg, "since", 64, false, &since_text)) < 0)
                return bad_field("since", r, 64);
        if ((r = jit_message_get_string(op->msg, "until", 64, false, &until_text)) < 0)
                return bad_field("until", r, 64);
        if ((since_text && parse_rfc3339(since_text, &since) < 0) ||
            (until_text && parse_rfc3339(until_text, &until) < 0))
                return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                       "since and until must be RFC 3339 times");
        if ((r = jit_message_get_string(op->msg, "user", JIT_USER_MAX, false, &user)) < 0)
                return bad_field("user", r, JIT_USER_MAX);
        if (jit_message_get_int(op->msg, "request", 1, INT64_MAX, false, &request_id, NULL) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "request must be a positive id");
        if (jit_message_get_int(op->msg, "limit", 1, AUDIT_QUERY_MAX, false, &limit, NULL) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "limit must be 1..%d",
                                       AUDIT_QUERY_MAX);

        /* Root and auditors read everything; everyone else the records of their own requests. */
        bool auditor = is_root(op) ||
                       identity_in_group(&op->caller, op->b->policy->audit_group ?: AUDIT_GROUP);
        json_object *records = NULL;
        r = audit_query(op->b, (uint64_t) since * USEC_PER_SEC, (uint64_t) until * USEC_PER_SEC,
                        user, request_id, auditor ? (uid_t) -1 : op->caller.uid, (unsigned) limit,
                        &records);
        if (r < 0)
                return internal_error(op, "reading the audit log", r);
        return jit_reply_ok(records);
}

static json_object *op_audit_archive(Op *op) {
        const char *until_text;
        time_t until;
        int r;

        /* Archiving moves records out of the live log: root only, like reading the database. */
        if (!is_root(op))
                return refuse(op, NULL, "only root may archive the audit log");
        if ((r = jit_message_get_string(op->msg, "until", 64, true, &until_text)) < 0)
                return bad_field("until", r, 64);
        if (parse_rfc3339(until_text, &until) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "until must be an RFC 3339 time");

        _cleanup_free_ char *dir = audit_archive_dir(op->b->db_path);
        if (!dir)
                return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
        json_object *info = NULL;
        r = audit_archive(op->b, (uint64_t) until * USEC_PER_SEC, dir, op->caller.name,
                          op->caller.uid, &info);
        if (r < 0)
                return internal_error(op, "archiving the audit log", r);
        return jit_reply_ok(info);
}

/* ---- sessions: pam_jit's session part registers and closes them ---- */

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5 */
#endif

static json_object *op_session_open(Op *op) {
        const char *user, *service, *tty, *rhost;
        json_object *bad = get_user_service(op, "register sessions", &user, &service);
        int r;

        if (bad)
                return bad;
        if ((r = jit_message_get_string(op->msg, "tty", 64, false, &tty)) < 0)
                return bad_field("tty", r, 64);
        if ((r = jit_message_get_string(op->msg, "rhost", 256, false, &rhost)) < 0)
                return bad_field("rhost", r, 256);

        int64_t id = 0, session = 0;
        uint64_t expires_at;
        r = find_grant(op, user, service, &id, &expires_at);
        if (r == 0)
                /* The account stack decided; a session without a grant has nothing to end. */
                return jit_reply_ok(json_object_new_object());
        if (r < 0)
                return internal_error(op, "looking up the grant", r);

        /* The session's process is the peer: held by pidfd from the kernel, never by a pid
         * in the message. SO_PEERPIDFD names it race-free; else pidfd_open() of the peer,
         * which waits for our answer and so cannot have gone. */
        int pidfd = -1;
        socklen_t l = sizeof(pidfd);
        if (op->peer_fd < 0 || getsockopt(op->peer_fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &l) < 0 ||
            pidfd < 0)
                pidfd = pidfd_open(op->peer->pid, 0);
        if (pidfd < 0)
                return internal_error(op, "holding the session's process", -errno);
        (void) fcntl(pidfd, F_SETFD, FD_CLOEXEC);

        _cleanup_(request_freep) Request *grant = NULL;
        if ((r = db_get_request(op->b->db, id, &grant)) < 0) {
                close(pidfd);
                return internal_error(op, "reading the grant", r);
        }
        r = sessions_open(op->b, pidfd, op->peer->pid, grant, tty, rhost, &session);
        if (r < 0)
                return internal_error(op, "registering the session", r);
        broker_state_changed(op->b); /* its expiry warning */
        json_object *res = json_object_new_object();
        if (res) {
                json_object_object_add(res, "session", json_object_new_int64(session));
                json_object_object_add(res, "request_id", json_object_new_int64(id));
        }
        return jit_reply_ok(res);
}

static json_object *op_session_close(Op *op) {
        int64_t session;
        int r;

        if (!is_root(op))
                return refuse(op, NULL, "only root may close sessions");
        if (jit_message_get_int(op->msg, "session", 1, INT64_MAX, true, &session, NULL) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "session must be a positive id");
        r = sessions_close(op->b, session, "closed");
        if (r < 0)
                return internal_error(op, "closing the session", r);
        return jit_reply_ok(NULL);
}

static const struct {
        const char *name;
        json_object *(*handler)(Op *op);
        bool needs_caller; /* resolve the caller's name and groups first */
} ops[] = {
        /* check is the PAM hot path and only needs the peer's uid. */
        { "check", op_check, false },
        { "request", op_request, true },
        { "approve", op_approve, true },
        { "deny", op_deny, true },
        { "revoke", op_revoke, true },
        { "cancel", op_cancel, true },
        { "list", op_list, true },
        { "show", op_show, true },
        { "status", op_status, true },
        { "break-glass", op_break_glass, true },
        { "ack", op_ack, true },
        { "explain", op_explain, false },
        { "audit", op_audit, true },
        { "audit-archive", op_audit_archive, true },
        { "session-open", op_session_open, false },
        { "session-close", op_session_close, false },
};

json_object *broker_dispatch(Broker *b, const struct ucred *peer, int peer_fd, json_object *msg) {
        Op op = { .b = b,
                  .peer = peer,
                  .peer_fd = peer_fd,
                  .msg = msg,
                  .caller = { .uid = (uid_t) -1 } };
        const char *name;
        json_object *reply;

        if (jit_message_get_string(msg, "op", 32, true, &name) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "missing \"op\"");

        for (size_t i = 0; i < ELEMENTSOF(ops); i++) {
                if (!STREQ(ops[i].name, name))
                        continue;
                /* Who is asking comes from the kernel, resolved here; never from the message. */
                int r = ops[i].needs_caller ? identity_from_uid(peer->uid, &op.caller) : 0;
                if (r < 0) {
                        errno = -r;
                        log_warning("request from uid %u that has no user entry: %m",
                                    (unsigned) peer->uid);
                        return jit_reply_error(JIT_ERROR_REFUSED, "uid %u is not a known user",
                                               (unsigned) peer->uid);
                }
                reply = ops[i].handler(&op);
                if (ops[i].needs_caller)
                        identity_done(&op.caller);
                return reply;
        }
        return jit_reply_error(JIT_ERROR_BAD_REQUEST, "unknown op \"%.32s\"", name);
}
