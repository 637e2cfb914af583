/* SPDX-License-Identifier: MIT */
/* grant-export and grant-import (docs/signed-approvals.md, "Grant bundles"): a grant and its
 * signed approvals, carried on a file to a host without a fleet store, checked there as that
 * host checks a signed approval, against its own policy and allowed_signers, and installed. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approval-signature.h"
#include "broker-journal.h"
#include "broker.h"
#include "cleanup.h"
#include "fleet-client.h"
#include "host-selector.h"
#include "protocol.h"
#include "timeutil.h"

#define BUNDLE_FORMAT "jit-grant-bundle-v1"
#define BUNDLE_APPROVALS_MAX 16
#define BUNDLE_REQUEST_ID_MAX 32
#define BUNDLE_FLEET_ID_MAX 64
#define DURATION_IMPORT_MAX (366ULL * 24 * 3600)

DEFINE_TRIVIAL_CLEANUP_FUNC(Request *, request_free)

static json_object *string_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

static json_object *bundle_export(Broker *b, const Identity *caller, json_object *msg) {
        _cleanup_(request_freep) Request *r = NULL;
        int64_t id;
        int k;

        if (jit_message_get_int(msg, "id", 1, INT64_MAX, true, &id, NULL) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "id must be a positive integer");
        if ((k = db_get_request(b->db, id, &r)) == -ENOENT)
                return jit_reply_error(JIT_ERROR_NOT_FOUND, "no request %lld", (long long) id);
        if (k < 0) {
                log_error_errno(k, "reading request %lld: %m", (long long) id);
                return jit_reply_error(JIT_ERROR_INTERNAL, "the broker failed while reading the "
                                                           "request; nothing was changed");
        }
        if (!grant_may_see(&b->grants, caller, r))
                return jit_reply_error(JIT_ERROR_REFUSED, "%s may not see request %lld",
                                       caller->name, (long long) id);
        if (r->state != REQUEST_ACTIVE)
                return jit_reply_error(JIT_ERROR_CONFLICT,
                                       "request %lld is %s; only an active grant can be exported",
                                       (long long) id, request_state_to_string(r->state));
        if (r->command)
                return jit_reply_error(JIT_ERROR_CONFLICT,
                                       "request %lld is a command grant; only grants of a whole "
                                       "service can be exported",
                                       (long long) id);
        char host[256];
        if ((k = approval_host_name(b->policy, host, sizeof(host))) < 0)
                return jit_reply_error(JIT_ERROR_INTERNAL, "cannot read the host name");

        json_object *approvals = json_object_new_array();
        for (size_t i = 0; approvals && i < r->n_approvals; i++) {
                const Approval *a = &r->approvals[i];
                if (!a->statement || !a->signature)
                        continue;
                json_object *o = json_object_new_object();
                json_object_object_add(o, "approver", json_object_new_string(a->approver));
                json_object_object_add(o, "statement", json_object_new_string(a->statement));
                json_object_object_add(o, "signature", json_object_new_string(a->signature));
                json_object_array_add(approvals, o);
        }
        if (!approvals)
                return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
        if (json_object_array_length(approvals) == 0) {
                json_object_put(approvals);
                return jit_reply_error(JIT_ERROR_CONFLICT,
                                       "request %lld has no signed approval to export",
                                       (long long) id);
        }
        /* A fleet grant's approvals were signed for the fleet request (fleet, f:ID): the
         * bundle names what they name, read from the first statement (they all name it). */
        char rid[BUNDLE_REQUEST_ID_MAX + 1], fleet[BUNDLE_FLEET_ID_MAX + 1] = "";
        snprintf(rid, sizeof(rid), "%lld", (long long) r->id);
        for (size_t i = 0; i < r->n_approvals; i++) {
                ApprovalStatement st;
                const char *why;
                const Approval *a = &r->approvals[i];
                if (!a->statement ||
                    approval_statement_parse(a->statement, strlen(a->statement), &st, &why) < 0)
                        continue;
                if (st.fleet && strlen(st.fleet) <= BUNDLE_FLEET_ID_MAX &&
                    strlen(st.request) <= BUNDLE_REQUEST_ID_MAX) {
                        strcpy(fleet, st.fleet);
                        strcpy(rid, st.request);
                }
                approval_statement_done(&st);
                break;
        }
        json_object *req = json_object_new_object(), *bundle = json_object_new_object();
        json_object_object_add(req, "request", json_object_new_string(rid));
        if (*fleet)
                json_object_object_add(req, "fleet", json_object_new_string(fleet));
        json_object_object_add(req, "requester", json_object_new_string(r->requester));
        json_object_object_add(req, "requester_uid", json_object_new_int64(r->requester_uid));
        json_object_object_add(req, "service", json_object_new_string(r->service));
        json_object_object_add(req, "duration", json_object_new_int64((int64_t) r->duration));
        json_object_object_add(req, "reason", json_object_new_string(r->reason));
        json_object_object_add(req, "ticket", string_or_null(r->ticket));
        json_object_object_add(bundle, "format", json_object_new_string(BUNDLE_FORMAT));
        json_object_object_add(bundle, "origin", json_object_new_string(host));
        json_object_object_add(bundle, "request", req);
        json_object_object_add(bundle, "approvals", approvals);
        return jit_reply_ok(bundle);
}

static json_object *refused(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_object *refused(const char *fmt, ...) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        log_notice("grant import refused: %s", msg);
        return jit_reply_error(JIT_ERROR_REFUSED, "%s", msg);
}

/* A member that is not typed text (a statement, a signature): bounded, without NUL. */
static const char *raw_string(json_object *o, const char *key, size_t max) {
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        size_t len = (size_t) json_object_get_string_len(v);
        const char *s = json_object_get_string(v);
        return len <= max && strlen(s) == len ? s : NULL;
}

typedef struct Imported {
        Approval *items;
        char **names;
        size_t n;
} Imported;

static void imported_done(Imported *im) {
        for (size_t i = 0; i < im->n; i++) {
                free(im->names[i]);
                free(im->items[i].signer_fingerprint);
        }
        free(im->items);
        free(im->names);
}

/* One approval of the bundle, checked as a signed approval here is (broker-ops.c), with
 * the request, fleet and hosts its statement names; counted into *im when it holds. */
typedef struct BundleCheck {
        Broker *b;
        const Request *r;
        const char *request_id;
        const char *fleet; /* the fleet a fleet grant's statements name; NULL: none */
        const PolicyRule *rule;
        const char *host;
        const HostLabel *labels;
        size_t n_labels;
} BundleCheck;

/* One approval of the bundle, checked as a signed approval here is (approval_check_signed(),
 * with the hosts its statement names: a selector that picks this host will do), by an
 * approver of this host's rule; counted into *im when it holds. */
static json_object *check_one(BundleCheck *bc, size_t i, json_object *o, Imported *im) {
        const char *approver, *statement = raw_string(o, "statement", APPROVAL_STATEMENT_MAX),
                              *signature = raw_string(o, "signature", SSHSIG_ARMORED_MAX);
        const PolicyRule *rule = bc->rule;
        const Request *r = bc->r;
        int k;

        if (jit_message_get_string(o, "approver", JIT_USER_MAX, true, &approver) < 0 ||
            !statement || !signature)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                       "approval %zu: approver, statement and signature are "
                                       "required",
                                       i + 1);
        /* Keyed on the statement, not on the signature's text: a copy of the signature
         * re-wrapped, or re-signed, is still the same approval. */
        if ((k = db_statement_known(bc->b->db, statement)) != 0)
                return k > 0 ? refused("approval %zu was used here already: a bundle is "
                                       "imported once",
                                       i + 1)
                             : jit_reply_error(JIT_ERROR_INTERNAL, "cannot read the approvals");
        _cleanup_(identity_done) Identity who = { .uid = (uid_t) -1 };
        if (identity_from_name(approver, &who) < 0 || !policy_rule_is_approver(rule, &who))
                return refused("approval %zu: %s is not an approver of rule \"%s\" here", i + 1,
                               approver, rule->name);
        if (who.uid == r->requester_uid && !rule->allow_self_approval)
                return refused("approval %zu: %s cannot approve their own request", i + 1,
                               approver);

        _cleanup_free_ char *why = NULL;
        SshSigInfo info;
        uint64_t not_after;
        SignedApproval a = {
                .request = r,
                .request_id = bc->request_id,
                .fleet = bc->fleet,
                .approver = approver,
                .statement = statement,
                .signature = signature,
                .host = bc->host,
                .labels = bc->labels,
                .n_labels = bc->n_labels,
                .approver_is_requester = who.uid == r->requester_uid,
                .allowed_signers = policy_allowed_signers(bc->b->policy),
                .now = now_usec(CLOCK_REALTIME) / 1000000,
        };
        k = approval_check_signed(&a, &info, &not_after, &why);
        if (k == -EBADMSG)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "approval %zu: %s", i + 1,
                                       why ? why : "malformed");
        if (k == -EPERM)
                return refused("approval %zu: %s", i + 1, why ? why : "out of memory");
        if (k < 0) {
                log_error_errno(k, "checking an imported signature: %s", why ? why : "%m");
                return jit_reply_error(JIT_ERROR_INTERNAL,
                                       "the signature could not be checked (%s); nothing was "
                                       "changed",
                                       why ? why : strerror(-k));
        }
        for (size_t j = 0; j < im->n; j++) {
                if (im->items[j].approver_uid == who.uid)
                        return refused("approval %zu: %s approved twice; an approver counts once",
                                       i + 1, approver);
                if (STREQ(im->items[j].signer_fingerprint, info.fingerprint))
                        return refused("approval %zu: key %s already signed %s's approval; a key "
                                       "counts once",
                                       i + 1, info.fingerprint, im->items[j].approver);
        }
        char *fp = strdup(info.fingerprint);
        if (!fp)
                return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
        im->names[im->n] = TAKE_PTR(who.name);
        im->items[im->n] = (Approval){
                .approver = im->names[im->n],
                .approver_uid = who.uid,
                .at = now_usec(CLOCK_REALTIME),
                .policy_version = (char *) bc->b->policy->hash,
                .statement = (char *) statement,
                .signature = (char *) signature,
                .signer_fingerprint = fp,
        };
        im->n++;
        return NULL;
}

static json_object *bundle_import(Broker *b, const Identity *caller, json_object *msg) {
        json_object *bundle, *req, *approvals;
        const char *format = NULL, *origin, *request_id, *requester, *service, *reason, *ticket,
                   *fleet = NULL;
        int64_t uid, duration;

        if (caller->uid != 0)
                return jit_reply_error(JIT_ERROR_REFUSED, "only root may import a grant");
        if (!json_object_object_get_ex(msg, "bundle", &bundle) ||
            !json_object_is_type(bundle, json_type_object) ||
            jit_message_get_string(bundle, "format", 64, true, &format) < 0 ||
            !STREQ(format, BUNDLE_FORMAT))
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "not a %s bundle", BUNDLE_FORMAT);
        if (jit_message_get_string(bundle, "origin", 256, true, &origin) < 0 ||
            !json_object_object_get_ex(bundle, "request", &req) ||
            !json_object_is_type(req, json_type_object) ||
            jit_message_get_string(req, "request", BUNDLE_REQUEST_ID_MAX, true, &request_id) < 0 ||
            jit_message_get_string(req, "requester", JIT_USER_MAX, true, &requester) < 0 ||
            jit_message_get_int(req, "requester_uid", 0, UINT32_MAX - 1, true, &uid, NULL) < 0 ||
            jit_message_get_string(req, "service", JIT_SERVICE_MAX, true, &service) < 0 ||
            jit_message_get_int(req, "duration", 1, DURATION_IMPORT_MAX, true, &duration, NULL) <
                    0 ||
            jit_message_get_string(req, "reason", JIT_REASON_MAX, true, &reason) < 0 ||
            jit_message_get_string(req, "ticket", JIT_TICKET_MAX, false, &ticket) < 0 ||
            jit_message_get_string(req, "fleet", BUNDLE_FLEET_ID_MAX, false, &fleet) < 0 ||
            !json_object_object_get_ex(bundle, "approvals", &approvals) ||
            !json_object_is_type(approvals, json_type_array))
                return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                       "the bundle lacks a field or has one of the wrong type "
                                       "or size");
        /* A fleet grant: its statements name the fleet and f:ID; a host of a fleet takes
         * that fleet's grants from its store, never from a file. */
        if (fleet && (!*fleet || strncmp(request_id, "f:", 2) != 0))
                return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                       "a fleet grant's bundle names its fleet and a request "
                                       "f:ID");
        if (fleet && fleet_client_host(b->fleet))
                return refused("the bundle holds a grant of fleet %s, and this host is in a "
                               "fleet: it takes fleet grants from its fleet store",
                               fleet);
        size_t n = json_object_array_length(approvals);
        if (n == 0 || n > BUNDLE_APPROVALS_MAX)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "a bundle holds 1 to %d approvals",
                                       BUNDLE_APPROVALS_MAX);

        _cleanup_(identity_done) Identity req_id = { .uid = (uid_t) -1 };
        if (identity_from_name(requester, &req_id) < 0)
                return refused("requester %s is not a user here", requester);
        if (req_id.uid != (uid_t) uid)
                return refused("requester %s has uid %u here, not %lld as the bundle says",
                               requester, (unsigned) req_id.uid, (long long) uid);
        /* The rule as filing the request here would find it, with the same checks of the
         * ticket, the reason and the duration. */
        PolicyQuery q = {
                .requester = &req_id,
                .service = service,
                .duration = (uint64_t) duration,
                .at = (time_t) (now_usec(CLOCK_REALTIME) / 1000000),
                .ticket = ticket,
                .reason = reason,
        };
        _cleanup_(policy_decision_done) PolicyDecision d = { .verdict = VERDICT_REFUSED };
        if (policy_decide(b->policy, &q, &d) < 0)
                return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
        const PolicyRule *rule = d.rule;
        if (!rule || rule->auto_approve || rule->scope == POLICY_SCOPE_COMMAND)
                return refused("no rule here grants %s to %s with approvals", service, requester);
        if ((uint64_t) duration > policy_rule_cap(b->policy, rule))
                return refused("the grant lasts %lld s, longer than rule \"%s\" allows here",
                               (long long) duration, rule->name);
        if (d.verdict == VERDICT_REFUSED)
                return refused("%s here", d.message ? d.message : "refused by the policy");

        char host[256];
        if (approval_host_name(b->policy, host, sizeof(host)) < 0)
                return jit_reply_error(JIT_ERROR_INTERNAL, "cannot read the host name");
        HostLabel labels[POLICY_HOST_LABELS_MAX];
        size_t n_labels = policy_host_labels(b->policy, labels);

        Request r = {
                .requester = (char *) requester,
                .requester_uid = (uid_t) uid,
                .service = (char *) service,
                .duration = (uint64_t) duration,
                .reason = (char *) reason,
                .ticket = (char *) ticket,
        };
        _cleanup_(imported_done) Imported im = {
                .items = calloc(n, sizeof(Approval)),
                .names = calloc(n, sizeof(char *)),
        };
        if (!im.items || !im.names)
                return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
        BundleCheck bc = { .b = b,
                           .r = &r,
                           .request_id = request_id,
                           .fleet = fleet,
                           .rule = rule,
                           .host = host,
                           .labels = labels,
                           .n_labels = n_labels };
        for (size_t i = 0; i < n; i++) {
                json_object *fail = check_one(&bc, i, json_object_array_get_idx(approvals, i), &im);
                if (fail)
                        return fail;
        }
        if (im.n < rule->approvals)
                return refused("%zu signed approval%s, rule \"%s\" needs %u here", im.n,
                               im.n == 1 ? "" : "s", rule->name, rule->approvals);

        GrantAsk ask = { .service = service,
                         .duration = (uint64_t) duration,
                         .reason = reason,
                         .ticket = ticket };
        ImportGrantAsk ia = { .origin = origin,
                              .origin_request = request_id,
                              .approvals = im.items,
                              .n_approvals = im.n };
        GrantError e;
        int64_t id;
        int k = grant_import_activate(&b->grants, caller, &req_id, rule, &ask, &ia, &id, &e);
        if (k < 0) {
                if (e.doing)
                        log_error_errno(k, "%s: %m", e.doing);
                return jit_reply_error(e.code, "%s", e.message);
        }
        _cleanup_(request_freep) Request *saved = NULL;
        if (db_get_request(b->db, id, &saved) < 0)
                return jit_reply_error(JIT_ERROR_INTERNAL,
                                       "the grant was imported but could not be read back");
        return jit_reply_ok(broker_request_to_json(b, saved));
}

json_object *broker_bundle_op(Broker *b, const char *name, const Identity *caller,
                              json_object *msg) {
        if (STREQ(name, "grant-export"))
                return bundle_export(b, caller, msg);
        return bundle_import(b, caller, msg);
}
