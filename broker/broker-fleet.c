/* SPDX-License-Identifier: MIT */
/* Fleet requests (docs/fleet.md): the protocol's fleet operations, answered once PostgreSQL
 * has answered (the connection is taken and the reply written then, the main loop never
 * waits), and what this host does with the changes its poll reports: it reads the fleet
 * requests they name, decides with its own policy, and writes or ends a local grant. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "approval-signature.h"
#include "broker-journal.h"
#include "broker.h"
#include "cleanup.h"
#include "duration.h"
#include "fleet-client.h"
#include "fleet-sql.h"
#include "host-selector.h"
#include "protocol.h"
#include "store-fleet-audit.h"
#include "store-fleet.h"
#include "timeutil.h"

/* How long writing a reply to a client may take: it is small, and the client waits for it. */
#define FLEET_REPLY_TIMEOUT_USEC (1 * 1000000ULL)
/* The fleet store's approvals.statement holds at most this (schema version 1). */
#define FLEET_STATEMENT_MAX 4096U
/* Fleet requests one fetch reads at most; more wait for the next poll's range. */
#define FLEET_FETCH_ROWS_MAX 1000

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)

/* The group that sees every request (the policy's audit_group, else this). */
#define FLEET_AUDIT_GROUP "jit-auditors"

/* ---- answering a client when PostgreSQL has answered ---- */

typedef enum FleetOpKind {
        FLEET_OP_REQUEST,
        FLEET_OP_LIST,
        FLEET_OP_SHOW,
        FLEET_OP_APPROVE,
        FLEET_OP_DENY,
        FLEET_OP_REVOKE,
        FLEET_OP_WITHDRAW,
        FLEET_OP_STATEMENT,
} FleetOpKind;

typedef struct FleetPending {
        Broker *b;
        int fd; /* a duplicate of the client's connection */
        FleetOpKind kind;
        int64_t id;
        Identity caller; /* who asked: what a list or show gives them */
        bool sees_all;   /* root and the audit group */
        /* approve, deny, revoke: written only once the caller is seen to see the request
         * (the first query shows it) */
        const char *then_sql;
        char *then_params[7];
        int then_n;
} FleetPending;

static void pending_free(FleetPending *p) {
        if (p->fd >= 0)
                close(p->fd);
        identity_done(&p->caller);
        for (int i = 0; i < p->then_n; i++)
                free(p->then_params[i]);
        free(p);
}

/* A fleet request is seen as a local one is (grant_may_see()): by root and the audit
 * group, its requester, and the approvers of the rule this host's policy matches it to. */
static bool may_see_row(FleetPending *p, PGresult *res, int row) {
        const char *requester = PQgetvalue(res, row, 2), *service = PQgetvalue(res, row, 3);
        if (p->sees_all || STREQ(requester, p->caller.name))
                return true;
        _cleanup_(identity_done) Identity req = { .uid = (uid_t) -1 };
        if (identity_from_name(requester, &req) < 0)
                return false;
        const PolicyRule *rule = policy_match(p->b->policy, &req, service);
        return rule && policy_rule_is_approver(rule, &p->caller);
}

static void reply_send(FleetPending *p, json_object *reply) {
        size_t len;
        _cleanup_free_ char *text = reply ? jit_message_serialize(reply, &len) : NULL;

        if (!text)
                log_error("fleet: out of memory answering a client");
        else if (jit_frame_send(p->fd, text, len,
                                now_usec(CLOCK_MONOTONIC) + FLEET_REPLY_TIMEOUT_USEC) < 0)
                log_debug("fleet: the client left before its answer");
        json_object_put(reply);
        pending_free(p);
}

static json_object *unreachable(void) {
        return jit_reply_error(JIT_ERROR_INTERNAL, "fleet store unreachable");
}

static json_object *pg_error_reply(PGresult *res, const char *error, const char *what) {
        if (!res)
                return jit_reply_error(JIT_ERROR_INTERNAL, "fleet store unreachable: %s", error);
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res) ?: "");
        msg[strcspn(msg, "\n")] = '\0';
        if (state && STREQ(state, "23505"))
                return jit_reply_error(JIT_ERROR_CONFLICT, "%s: already done", what);
        if (state && (STREQ(state, "42501") || STREQ(state, "23503")))
                return jit_reply_error(JIT_ERROR_NOT_FOUND,
                                       "%s: no fleet request this host may see by that id", what);
        return jit_reply_error(JIT_ERROR_INTERNAL, "%s: the fleet store refused it: %s", what, msg);
}

static json_object *value_or_null(PGresult *res, int row, int col) {
        return PQgetisnull(res, row, col) ? NULL
                                          : json_object_new_string(PQgetvalue(res, row, col));
}

static json_object *row_to_json(PGresult *res, int row) {
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        char id[32];
        snprintf(id, sizeof(id), "f:%s", PQgetvalue(res, row, 0));
        json_object_object_add(o, "id", json_object_new_string(id));
        json_object_object_add(o, "fleet_id",
                               json_object_new_int64(strtoll(PQgetvalue(res, row, 0), NULL, 10)));
        static const char *const names[] = { NULL,         "origin_host",   "requester",
                                             "service",    "reason",        "ticket",
                                             "duration",   "hosts",         "state",
                                             "created_at", "approvals",     "revoked_by",
                                             "expires_at", "covered_hosts", "covered_hosts_total" };
        for (int c = 1; c < (int) ELEMENTSOF(names) && c < PQnfields(res); c++) {
                if (STREQ(names[c], "duration") || STREQ(names[c], "covered_hosts_total"))
                        json_object_object_add(
                                o, names[c],
                                json_object_new_int64(strtoll(PQgetvalue(res, row, c), NULL, 10)));
                else if (STREQ(names[c], "expires_at")) {
                        char t[RFC3339_BUF_MAX];
                        double at = PQgetisnull(res, row, c)
                                            ? 0
                                            : strtod(PQgetvalue(res, row, c), NULL);
                        json_object_object_add(
                                o, "expires_at",
                                at > 0 ? json_object_new_string(format_rfc3339(
                                                 (uint64_t) (at * USEC_PER_SEC), t, sizeof(t)))
                                       : NULL);
                } else if (STREQ(names[c], "approvals") || STREQ(names[c], "revoked_by") ||
                           STREQ(names[c], "covered_hosts"))
                        json_object_object_add(
                                o, names[c],
                                PQgetisnull(res, row, c)
                                        ? json_object_new_array()
                                        : json_tokener_parse(PQgetvalue(res, row, c)));
                else
                        json_object_object_add(o, names[c], value_or_null(res, row, c));
        }
        return o;
}

#define FLEET_TIME(x) "to_char(" x " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
/* The hosts the request covers and what each recorded of it (jit_fleet.request_hosts,
 * fed by the upload of their fleet audit records): the first 1000 by name, so that the
 * reply stays far below JIT_REPLY_MAX, and how many there are in all. */
#define FLEET_COVERED_COLUMNS                                                                                                                                       \
        ", (SELECT json_agg(json_build_object('host', h.host, 'granted_at', " FLEET_TIME("h.granted_at") ", 'first_used_at', " FLEET_TIME(                          \
                "h.first_used_at") ", 'ended_at', " FLEET_TIME("h.ended_at") ", 'end_state', h.end_state) ORDER BY h.host) "                                        \
                                                                             "FROM (SELECT * FROM jit_fleet.request_hosts AS q WHERE q.request_id = r.id ORDER BY " \
                                                                             "q.host LIMIT 1000) AS h), (SELECT count(*) FROM jit_fleet.request_hosts AS q WHERE "  \
                                                                             "q.request_id = r.id) "

#define FLEET_SHOW_SQL                                                                             \
        "SELECT " FLEET_ROW_COLUMNS FLEET_COVERED_COLUMNS FLEET_ROW_FROM "WHERE r.id = $1::bigint"

/* The fleet audit record of an operation typed here, once the store has it: appended to
 * this host's chain and uploaded after. */
static void record_typed(FleetPending *p, const char *kind, int64_t fleet_id, json_object *data) {
        _cleanup_(json_object_putp) json_object *d = data;
        const char *host = fleet_client_host(p->b->fleet);
        const char *text = d ? json_object_to_json_string_ext(
                                       d, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
                             : NULL;
        _cleanup_(grant_tx_release) GrantTx tx = {};
        int r = -ENOMEM;

        if (host && text && (r = grants_begin(&p->b->grants)) >= 0) {
                tx.g = &p->b->grants;
                if ((r = db_fleet_audit_append(p->b->db, host, kind, fleet_id, p->caller.name,
                                               now_usec(CLOCK_REALTIME), text)) >= 0 &&
                    (r = grants_commit(&p->b->grants)) >= 0)
                        tx.g = NULL;
        }
        if (r < 0)
                log_error_errno(r,
                                "fleet: cannot record the %s of fleet request %lld in the fleet "
                                "audit records: %m",
                                kind, (long long) fleet_id);
}

static json_object *typed_data(const char *key, const char *value) {
        json_object *o = json_object_new_object();
        if (o && value)
                json_object_object_add(o, key, json_object_new_string(value));
        return o;
}

/* A fleet request as its row reads (FLEET_ROW_COLUMNS), with the requester's uid as this
 * host knows it: what a signed approval's statement is built from. Strings point into res. */
static void request_of_row(Broker *b, PGresult *res, int row, uid_t requester_uid, Request *ret) {
        double expires = PQgetisnull(res, row, 12) ? 0 : strtod(PQgetvalue(res, row, 12), NULL);
        *ret = (Request){
                .id = strtoll(PQgetvalue(res, row, 0), NULL, 10),
                .requester = PQgetvalue(res, row, 2),
                .requester_uid = requester_uid,
                .service = PQgetvalue(res, row, 3),
                .reason = PQgetvalue(res, row, 4),
                .ticket = PQgetisnull(res, row, 5) ? NULL : PQgetvalue(res, row, 5),
                .duration = (uint64_t) strtoull(PQgetvalue(res, row, 6), NULL, 10),
                /* the window offered runs to the end of a grant approved at its last moment */
                .deadline_at = expires > 0 ? (uint64_t) (expires * USEC_PER_SEC)
                                           : now_usec(CLOCK_REALTIME) +
                                                     b->policy->pending_ttl * USEC_PER_SEC,
        };
}

/* The statement the caller signs to approve the fleet request of this row: fleet identity,
 * f:ID, the selector as hosts, the window from now to the end of a grant approved when the
 * request times out. */
static json_object *statement_reply(FleetPending *p, PGresult *res) {
        Broker *b = p->b;
        const char *fleet = fleet_client_fleet_id(b->fleet);
        _cleanup_(identity_done) Identity req = { .uid = (uid_t) -1 };
        _cleanup_free_ char *storage = NULL, *text = NULL;
        ApprovalStatement st;
        const char *why;
        char rid[32];
        size_t len;
        int k;

        if (!STREQ(PQgetvalue(res, 0, 8), "pending"))
                return jit_reply_error(JIT_ERROR_CONFLICT,
                                       "f:%lld is %s; only pending requests can be approved",
                                       (long long) p->id, PQgetvalue(res, 0, 8));
        if (identity_from_name(PQgetvalue(res, 0, 2), &req) < 0)
                return jit_reply_error(JIT_ERROR_REFUSED,
                                       "f:%lld: its requester %s is not a user on this host",
                                       (long long) p->id, PQgetvalue(res, 0, 2));
        const PolicyRule *rule = policy_match(b->policy, &req, PQgetvalue(res, 0, 3));
        if (!rule || !policy_rule_is_approver(rule, &p->caller))
                return jit_reply_error(JIT_ERROR_REFUSED, "%s is not an approver of f:%lld here",
                                       p->caller.name, (long long) p->id);
        if (!fleet)
                return unreachable();
        Request r;
        request_of_row(b, res, 0, req.uid, &r);
        uint64_t nb, na;
        approval_default_window(&r, now_usec(CLOCK_REALTIME), &nb, &na);
        if ((k = approval_statement_of(&r, PQgetvalue(res, 0, 7), p->caller.name, nb, na, &st,
                                       &storage)) < 0)
                return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
        snprintf(rid, sizeof(rid), "f:%lld", (long long) p->id);
        st.request = rid;
        st.fleet = fleet;
        if ((k = approval_statement_format(&st, &text, &len, &why)) < 0)
                return k == -ENOMEM ? jit_reply_error(JIT_ERROR_INTERNAL, "out of memory")
                                    : jit_reply_error(JIT_ERROR_CONFLICT,
                                                      "f:%lld cannot be signed: its %s does not "
                                                      "fit an approval statement",
                                                      (long long) p->id, why);
        json_object *o = json_object_new_object();
        if (!o)
                return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
        json_object_object_add(o, "statement", json_object_new_string_len(text, (int) len));
        json_object_object_add(o, "namespace",
                               json_object_new_string(APPROVAL_SIGNATURE_NAMESPACE));
        json_object_object_add(o, "signed_required",
                               json_object_new_boolean(policy_rule_requires_signature(rule, true)));
        return jit_reply_ok(o);
}

static void answered(void *userdata, PGresult *res, const char *error) {
        FleetPending *p = userdata;
        static const char *const what[] = {
                [FLEET_OP_REQUEST] = "filing the fleet request",
                [FLEET_OP_LIST] = "listing fleet requests",
                [FLEET_OP_SHOW] = "reading the fleet request",
                [FLEET_OP_APPROVE] = "approving the fleet request",
                [FLEET_OP_DENY] = "denying the fleet request",
                [FLEET_OP_REVOKE] = "revoking the fleet request",
                [FLEET_OP_WITHDRAW] = "withdrawing the fleet request",
                [FLEET_OP_STATEMENT] = "reading the fleet request",
        };

        if (!res || PQresultStatus(res) != PGRES_TUPLES_OK)
                return reply_send(p, pg_error_reply(res, error, what[p->kind]));
        int n = PQntuples(res);
        if (p->kind == FLEET_OP_LIST) {
                json_object *a = json_object_new_array();
                for (int i = 0; a && i < n; i++)
                        if (may_see_row(p, res, i))
                                json_object_array_add(a, row_to_json(res, i));
                json_object *o = json_object_new_object();
                if (o)
                        json_object_object_add(o, "requests", a);
                return reply_send(p, jit_reply_ok(o));
        }
        if (p->then_sql) {
                if (n != 1 || !may_see_row(p, res, 0))
                        return reply_send(p, jit_reply_error(JIT_ERROR_NOT_FOUND,
                                                             "no fleet request f:%lld that this "
                                                             "host may see",
                                                             (long long) p->id));
                if (p->kind == FLEET_OP_WITHDRAW) {
                        /* Only the origin host changes a filing's state (row-level security
                         * says so too): the requester withdraws it there. */
                        const char *origin = PQgetvalue(res, 0, 1);
                        if (!STREQ(origin, fleet_client_host(p->b->fleet)))
                                return reply_send(
                                        p, jit_reply_error(JIT_ERROR_REFUSED,
                                                           "f:%lld was filed on host %s: only "
                                                           "there can it be withdrawn (jitctl "
                                                           "cancel f:%lld on %s)",
                                                           (long long) p->id, origin,
                                                           (long long) p->id, origin));
                        if (!STREQ(PQgetvalue(res, 0, 2), p->caller.name))
                                return reply_send(
                                        p, jit_reply_error(JIT_ERROR_REFUSED,
                                                           "only its requester withdraws fleet "
                                                           "request f:%lld",
                                                           (long long) p->id));
                }
                /* Seen: now the write itself. */
                const char *sql = p->then_sql;
                p->then_sql = NULL;
                if (fleet_client_query(p->b->fleet, sql, p->then_n,
                                       (const char *const *) p->then_params, answered, p) < 0)
                        reply_send(p, unreachable());
                return;
        }
        if (n == 1 && (p->kind == FLEET_OP_APPROVE || p->kind == FLEET_OP_DENY ||
                       p->kind == FLEET_OP_REVOKE || p->kind == FLEET_OP_WITHDRAW)) {
                /* Written: the answer is the request as it stands now, which a statement
                 * that inserts does not see yet. */
                if (p->kind == FLEET_OP_REVOKE)
                        record_typed(p, FLEET_AUDIT_REVOCATION, p->id,
                                     typed_data("reason", p->then_params[3]));
                else if (p->kind == FLEET_OP_WITHDRAW)
                        record_typed(p, FLEET_AUDIT_WITHDRAWAL, p->id,
                                     typed_data("state", "withdrawn"));
                else {
                        json_object *d = typed_data("verdict", p->then_params[3]);
                        if (d && p->then_params[5])
                                json_object_object_add(d, "signed", json_object_new_boolean(true));
                        record_typed(p, FLEET_AUDIT_APPROVAL, p->id, d);
                }
                Broker *b = p->b;
                char id_text[32];
                snprintf(id_text, sizeof(id_text), "%lld", (long long) p->id);
                const char *params[] = { id_text };
                p->kind = FLEET_OP_SHOW;
                if (fleet_client_query(b->fleet, FLEET_SHOW_SQL, 1, params, answered, p) < 0)
                        reply_send(p, unreachable());
                broker_fleet_upload(b); /* behind the answer's query: the client waits for that */
                return;
        }
        if (n == 0 && (p->kind == FLEET_OP_APPROVE || p->kind == FLEET_OP_DENY))
                /* Shown a moment ago, not written now. */
                return reply_send(p, jit_reply_error(JIT_ERROR_REFUSED,
                                                     "f:%lld is not pending, or is your own "
                                                     "(nobody approves or denies their own "
                                                     "request)",
                                                     (long long) p->id));
        if (n == 0 && p->kind == FLEET_OP_WITHDRAW)
                return reply_send(p, jit_reply_error(JIT_ERROR_CONFLICT,
                                                     "f:%lld is not pending: it cannot be "
                                                     "withdrawn",
                                                     (long long) p->id));
        if (n != 1 || !may_see_row(p, res, 0))
                return reply_send(p, jit_reply_error(JIT_ERROR_NOT_FOUND,
                                                     "no fleet request f:%lld that this host may "
                                                     "see",
                                                     (long long) p->id));
        if (p->kind == FLEET_OP_STATEMENT)
                return reply_send(p, statement_reply(p, res));
        if (p->kind == FLEET_OP_REQUEST) {
                json_object *d = typed_data("selector", PQgetvalue(res, 0, 7));
                if (d) {
                        json_object_object_add(d, "service",
                                               json_object_new_string(PQgetvalue(res, 0, 3)));
                        json_object_object_add(
                                d, "duration",
                                json_object_new_int64(strtoll(PQgetvalue(res, 0, 6), NULL, 10)));
                }
                record_typed(p, FLEET_AUDIT_REQUESTED, strtoll(PQgetvalue(res, 0, 0), NULL, 10), d);
                broker_fleet_upload(p->b);
        }
        reply_send(p, jit_reply_ok(row_to_json(res, 0)));
}

/* Queues sql for the client and takes its connection: 0, or the reply to give now. */
static json_object *ask(Broker *b, const Identity *caller, int peer_fd, bool *taken,
                        FleetOpKind kind, int64_t id, const char *sql, int n,
                        const char *const *params, const char *then_sql, int then_n,
                        const char *const *then_params) {
        if (!taken || peer_fd < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "fleet operations need a connection");
        FleetPending *p = calloc(1, sizeof(*p));
        if (!p)
                return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
        *p = (FleetPending){ .b = b, .kind = kind, .id = id, .fd = -1 };
        if (then_sql) {
                /* The request is shown first; the write follows when the caller may see it. */
                p->then_sql = then_sql;
                p->then_n = then_n;
                for (int i = 0; i < then_n; i++)
                        if (then_params[i] && !(p->then_params[i] = strdup(then_params[i]))) {
                                pending_free(p);
                                return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
                        }
        }
        if (identity_copy(caller, &p->caller) < 0) {
                free(p);
                return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
        }
        p->sees_all = caller->uid == 0 ||
                      identity_in_group(caller, b->policy->audit_group ?: FLEET_AUDIT_GROUP);
        p->fd = fcntl(peer_fd, F_DUPFD_CLOEXEC, 3);
        if (p->fd < 0) {
                int k = -errno;
                pending_free(p);
                return jit_reply_error(JIT_ERROR_INTERNAL, "cannot keep the connection: %s",
                                       strerror(-k));
        }
        int r = fleet_client_query(b->fleet, sql, n, params, answered, p);
        if (r < 0) {
                pending_free(p);
                if (r == -ENOTCONN)
                        return unreachable();
                if (r == -EBUSY)
                        return jit_reply_error(JIT_ERROR_INTERNAL,
                                               "the fleet store is busy: try again");
                return jit_reply_error(JIT_ERROR_INTERNAL, "cannot ask the fleet store: %s",
                                       strerror(-r));
        }
        *taken = true;
        return NULL;
}

static int get_fleet_id(json_object *msg, int64_t *ret) {
        bool present;
        return jit_message_get_int(msg, "id", 1, INT64_MAX, true, ret, &present);
}

static json_object *labels_json(const HostSelector *s) {
        json_object *o = json_object_new_object();
        for (size_t i = 0; o && s && !s->host && i < s->n_terms; i++)
                json_object_object_add(o, s->terms[i].key,
                                       json_object_new_string(s->terms[i].value));
        return o;
}

static json_object *fleet_request(Broker *b, const Identity *caller, int peer_fd, json_object *msg,
                                  bool *taken) {
        const char *service, *reason, *ticket, *hosts, *why = NULL;
        int64_t duration = 0;
        bool has_duration;
        int r;

        if (jit_message_get_string(msg, "hosts", HOST_SELECTOR_MAX, true, &hosts) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                       "hosts must be a host selector of at most %d bytes",
                                       HOST_SELECTOR_MAX);
        if (jit_message_get_string(msg, "service", JIT_SERVICE_MAX, false, &service) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "bad service");
        service = service ?: "sudo";
        if (!jit_service_name_is_valid(service))
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "service must be a PAM service name");
        if (jit_message_get_string(msg, "reason", JIT_REASON_MAX, true, &reason) < 0 ||
            strspn(reason, " ") == strlen(reason))
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "reason must be 1 to %d bytes",
                                       JIT_REASON_MAX);
        if (jit_message_get_string(msg, "ticket", JIT_TICKET_MAX, false, &ticket) < 0 ||
            (ticket && !*ticket))
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "bad ticket");
        if (jit_message_get_int(msg, "duration", 1, (int64_t) JIT_DURATION_MAX_SEC, false,
                                &duration, &has_duration) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "bad duration");

        HostSelector *sel = NULL;
        if ((r = host_selector_parse(hosts, &sel, &why)) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "--hosts: %s", why ?: strerror(-r));
        _cleanup_free_ char *canonical = host_selector_format(sel);
        _cleanup_(json_object_putp) json_object *labels = labels_json(sel);
        _cleanup_free_ char *selector_host = sel->host ? strdup(sel->host) : NULL;
        host_selector_free(sel);
        if (!canonical || !labels)
                return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");

        /* The filing host files it under its own rule for the requester; each target
         * decides again with its own policy. */
        const PolicyRule *rule = policy_match(b->policy, caller, service);
        if (!rule)
                return jit_reply_error(JIT_ERROR_REFUSED,
                                       "no rule of this host's policy lets %s request %s",
                                       caller->name, service);
        if (!has_duration)
                duration = (int64_t) b->policy->default_duration;
        if ((uint64_t) duration > policy_rule_cap(b->policy, rule))
                return jit_reply_error(JIT_ERROR_REFUSED,
                                       "a duration of %lld s is over rule \"%s\"'s cap of %llu s",
                                       (long long) duration, rule->name,
                                       (unsigned long long) policy_rule_cap(b->policy, rule));
        if (fleet_client_state(b->fleet) != FLEET_CONNECTED)
                return unreachable();

        char duration_text[32], expires_text[32];
        snprintf(duration_text, sizeof(duration_text), "%lld", (long long) duration);
        /* Its time to be answered, as a local request's: pending_ttl from now, by this
         * host's clock; every target refuses to grant it after that instant. */
        uint64_t expires = now_usec(CLOCK_REALTIME) / USEC_PER_SEC + b->policy->pending_ttl;
        snprintf(expires_text, sizeof(expires_text), "%llu", (unsigned long long) expires);
        const char *params[] = {
                fleet_client_host(b->fleet),
                caller->name,
                service,
                reason,
                ticket,
                duration_text,
                canonical,
                selector_host,
                json_object_to_json_string_ext(labels, JSON_C_TO_STRING_PLAIN),
                rule->name,
                b->policy->hash,
                expires_text,
        };
        /* origin_id: the next of this host's own (it reads all of them); one connection
         * runs one query at a time, so two filings never race for it. */
        if (b->fleet_next_sweep > expires * USEC_PER_SEC)
                b->fleet_next_sweep = expires * USEC_PER_SEC;
        return ask(b, caller, peer_fd, taken, FLEET_OP_REQUEST, 0,
                   "WITH f AS (INSERT INTO jit_fleet.requests (origin_host, origin_id, requester, "
                   "service, reason, ticket, duration_s, selector, selector_host, "
                   "selector_labels, rule, policy_version, expires_at) VALUES ($1, (SELECT "
                   "coalesce(max(origin_id), 0) + 1 FROM jit_fleet.requests WHERE origin_host = "
                   "$1), $2, $3, $4, $5, $6::integer, $7, $8, $9::jsonb, $10, $11, "
                   "to_timestamp($12::bigint)) RETURNING *) "
                   "SELECT f.id, f.origin_host, f.requester, f.service, f.reason, f.ticket, "
                   "f.duration_s, f.selector, f.state, to_char(f.created_at AT TIME ZONE 'UTC', "
                   "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '[]', NULL, extract(epoch FROM "
                   "f.expires_at) FROM f",
                   (int) ELEMENTSOF(params), params, NULL, 0, NULL);
}

json_object *broker_fleet_op(Broker *b, const char *name, const Identity *caller, int peer_fd,
                             json_object *msg, bool *taken) {
        int64_t id = 0;
        char id_text[32];

        if (!fleet_client_host(b->fleet))
                return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                       "this host is not in a fleet (no fleet section in its "
                                       "policy)");
        if (!STREQ(name, "fleet-list") && !STREQ(name, "fleet-show") &&
            !STREQ(name, "fleet-approval-statement")) {
                /* Every operation typed here is a fleet audit record: none is taken while
                 * the records wait beyond the bound (docs/fleet.md). */
                int waiting = db_fleet_audit_count_waiting(b->db, fleet_client_host(b->fleet));
                if (waiting < 0)
                        return jit_reply_error(JIT_ERROR_INTERNAL,
                                               "cannot read the fleet audit records: %s",
                                               strerror(-waiting));
                if (waiting >= FLEET_AUDIT_WAITING_MAX)
                        return jit_reply_error(JIT_ERROR_INTERNAL,
                                               "%d fleet audit records of this host wait for "
                                               "the upload to the fleet store: no new fleet "
                                               "operation here until it has them",
                                               waiting);
        }
        if (STREQ(name, "fleet-request"))
                return fleet_request(b, caller, peer_fd, msg, taken);
        if (STREQ(name, "fleet-list")) {
                if (fleet_client_state(b->fleet) != FLEET_CONNECTED)
                        return unreachable();
                return ask(b, caller, peer_fd, taken, FLEET_OP_LIST, 0,
                           "SELECT " FLEET_ROW_COLUMNS FLEET_ROW_FROM
                           "WHERE r.state = 'pending' AND (r.expires_at IS NULL OR "
                           "r.expires_at > now()) AND v.revoker IS NULL AND NOT EXISTS "
                           "(SELECT 1 FROM jit_fleet.approvals AS d WHERE d.request_id = r.id "
                           "AND d.verdict = 'deny') ORDER BY r.id LIMIT 1000",
                           0, NULL, NULL, 0, NULL);
        }
        if (get_fleet_id(msg, &id) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "id must be a positive integer");
        snprintf(id_text, sizeof(id_text), "%lld", (long long) id);
        if (fleet_client_state(b->fleet) != FLEET_CONNECTED)
                return unreachable();
        const char *host = fleet_client_host(b->fleet);

        if (STREQ(name, "fleet-show")) {
                const char *params[] = { id_text };
                return ask(b, caller, peer_fd, taken, FLEET_OP_SHOW, id, FLEET_SHOW_SQL, 1, params,
                           NULL, 0, NULL);
        }
        if (STREQ(name, "fleet-approval-statement")) {
                const char *params[] = { id_text };
                return ask(b, caller, peer_fd, taken, FLEET_OP_STATEMENT, id, FLEET_SHOW_SQL, 1,
                           params, NULL, 0, NULL);
        }
        if (STREQ(name, "fleet-approve") || STREQ(name, "fleet-deny")) {
                bool approve = STREQ(name, "fleet-approve");
                const char *comment, *statement = NULL, *signature = NULL;
                if (jit_message_get_string(msg, approve ? "comment" : "reason", JIT_REASON_MAX,
                                           !approve, &comment) < 0)
                        return jit_reply_error(JIT_ERROR_BAD_REQUEST, "bad %s",
                                               approve ? "comment" : "reason");
                /* A signed approval: stored as signed; every target host verifies it
                 * against its own allowed_signers before it counts it. A denial only
                 * withholds, and needs no signature. */
                json_object *v;
                if (approve && json_object_object_get_ex(msg, "statement", &v) &&
                    !json_object_is_type(v, json_type_null)) {
                        ApprovalStatement st;
                        const char *why = NULL;
                        char rid[32];
                        if (!json_object_is_type(v, json_type_string) ||
                            (size_t) json_object_get_string_len(v) > FLEET_STATEMENT_MAX ||
                            !json_object_object_get_ex(msg, "signature", &v) ||
                            !json_object_is_type(v, json_type_string) ||
                            (size_t) json_object_get_string_len(v) > SSHSIG_ARMORED_MAX)
                                return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                                       "a signed fleet approval needs a statement "
                                                       "of at most %u bytes and a signature of "
                                                       "at most %u",
                                                       FLEET_STATEMENT_MAX, SSHSIG_ARMORED_MAX);
                        signature = json_object_get_string(v);
                        json_object_object_get_ex(msg, "statement", &v);
                        statement = json_object_get_string(v);
                        /* Only what names it is checked here; the targets check the rest. */
                        snprintf(rid, sizeof(rid), "f:%lld", (long long) id);
                        if (approval_statement_parse(statement, strlen(statement), &st, &why) < 0)
                                return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                                       "the signed statement is malformed: %s",
                                                       why);
                        bool names_it = STREQ(st.request, rid) &&
                                        STREQ(st.approver, caller->name) && st.fleet &&
                                        fleet_client_fleet_id(b->fleet) &&
                                        STREQ(st.fleet, fleet_client_fleet_id(b->fleet));
                        approval_statement_done(&st);
                        if (!names_it)
                                return jit_reply_error(JIT_ERROR_REFUSED,
                                                       "the signed statement is not %s's "
                                                       "approval of %s in this fleet",
                                                       caller->name, rid);
                }
                const char *params[] = { id_text,      host,
                                         caller->name, approve ? "approve" : "deny",
                                         comment,      statement,
                                         signature };
                /* One's own request is never approved by oneself here; each target also
                 * checks the approver against its own rule. */
                const char *show[] = { id_text };
                return ask(b, caller, peer_fd, taken, approve ? FLEET_OP_APPROVE : FLEET_OP_DENY,
                           id, FLEET_SHOW_SQL, 1, show,
                           "WITH a AS (INSERT INTO jit_fleet.approvals (request_id, origin_host, "
                           "approver, verdict, comment, statement, signature) SELECT r.id, $2, "
                           "$3, $4, $5, $6, $7 FROM "
                           "jit_fleet.requests AS r WHERE r.id = $1::bigint AND r.state = "
                           "'pending' AND (r.expires_at IS NULL OR r.expires_at > now()) AND "
                           "r.requester <> $3 RETURNING request_id) SELECT request_id FROM a",
                           (int) ELEMENTSOF(params), params);
        }
        if (STREQ(name, "fleet-revoke")) {
                const char *reason;
                if (jit_message_get_string(msg, "reason", JIT_REASON_MAX, false, &reason) < 0)
                        return jit_reply_error(JIT_ERROR_BAD_REQUEST, "bad reason");
                const char *params[] = { id_text, host, caller->name, reason };
                const char *show[] = { id_text };
                return ask(b, caller, peer_fd, taken, FLEET_OP_REVOKE, id, FLEET_SHOW_SQL, 1, show,
                           "WITH v AS (INSERT INTO jit_fleet.revocations (request_id, "
                           "origin_host, revoker, reason) SELECT r.id, $2, $3, $4 FROM "
                           "jit_fleet.requests AS r WHERE r.id = $1::bigint RETURNING request_id) "
                           "SELECT request_id FROM v",
                           (int) ELEMENTSOF(params), params);
        }
        if (STREQ(name, "fleet-cancel")) {
                /* The requester withdraws a pending request on its origin host: no target
                 * grants it from then on (grants made before end by a revoke). */
                const char *params[] = { id_text, host, caller->name };
                const char *show[] = { id_text };
                return ask(b, caller, peer_fd, taken, FLEET_OP_WITHDRAW, id, FLEET_SHOW_SQL, 1,
                           show,
                           "UPDATE jit_fleet.requests SET state = 'withdrawn', state_changed_at "
                           "= now() WHERE id = $1::bigint AND origin_host = $2 AND requester = "
                           "$3 AND state = 'pending' RETURNING id",
                           (int) ELEMENTSOF(params), params);
        }
        return jit_reply_error(JIT_ERROR_BAD_REQUEST, "unknown op \"%s\"", name);
}

/* ---- this host: the changes its poll reports ---- */

/* Whether rule may grant a request for sel on this host: a host name the rule's selector
 * picks, or labels that include every label of the rule's selector. */
static bool rule_covers(const PolicyRule *rule, const HostSelector *sel, const char *host,
                        const HostLabel *labels, size_t n_labels) {
        if (!rule->hosts)
                return false;
        if (sel->host)
                return STREQ(sel->host, host) &&
                       host_selector_matches(rule->hosts, host, labels, n_labels);
        if (rule->hosts->host)
                return false;
        for (size_t i = 0; i < rule->hosts->n_terms; i++) {
                bool found = false;
                for (size_t j = 0; j < sel->n_terms && !found; j++)
                        found = STREQ(sel->terms[j].key, rule->hosts->terms[i].key) &&
                                STREQ(sel->terms[j].value, rule->hosts->terms[i].value);
                if (!found)
                        return false;
        }
        return true;
}

static void fleet_revoke_here(Broker *b, int64_t fleet_id, int64_t local_id, const char *revoker) {
        _cleanup_(identity_done) Identity root = { .uid = (uid_t) -1 };
        GrantError e = {};
        char reason[512];
        int r;

        if ((r = identity_from_uid(0, &root)) < 0)
                return (void) log_error_errno(r, "fleet: cannot resolve root: %m");
        snprintf(reason, sizeof(reason), "revoked in the fleet by %s (fleet request %lld)", revoker,
                 (long long) fleet_id);
        r = grant_end(&b->grants, &root, local_id, EVENT_REVOKE, reason, &e);
        if (r == -EBUSY)
                return; /* over already */
        if (r < 0)
                log_warning("fleet: cannot end local grant %lld of fleet request %lld: %s",
                            (long long) local_id, (long long) fleet_id, e.message);
        else
                log_info("fleet: request %lld revoked by %s: local grant %lld ended",
                         (long long) fleet_id, revoker, (long long) local_id);
}

static bool fleet_revoke_checked(Broker *b, int64_t fleet_id, int64_t local_id,
                                 const char *requester, const char *service, const char *revoker) {
        _cleanup_(identity_done) Identity who = { .uid = (uid_t) -1 };
        _cleanup_(identity_done) Identity req_id = { .uid = (uid_t) -1 };
        bool may = false;

        if (revoker && identity_from_name(revoker, &who) >= 0) {
                may = who.uid == 0 || STREQ(revoker, requester);
                if (!may && identity_from_name(requester, &req_id) >= 0) {
                        const PolicyRule *rule = policy_match(b->policy, &req_id, service);
                        may = rule && policy_rule_is_approver(rule, &who);
                }
        }
        if (!may) {
                log_notice("fleet: request %lld: the revocation by %s does not count here (not "
                           "the requester, an approver or root)",
                           (long long) fleet_id, revoker);
                return false;
        }
        fleet_revoke_here(b, fleet_id, local_id, revoker);
        return true;
}

/* Until when (CLOCK_BOOTTIME usec) fleet grants are honoured after a successful poll at
 * sync_boot: fleet.max_offline later; 0 without max_offline. */
static uint64_t honoured_until(Broker *b, uint64_t sync_boot) {
        uint64_t max_offline = b->policy->fleet.max_offline;
        if (max_offline == 0)
                return 0;
        if (sync_boot == 0)
                sync_boot = now_usec(CLOCK_BOOTTIME);
        return sync_boot + max_offline * USEC_PER_SEC;
}

/* ---- signed fleet approvals, verified when they arrive ---- */

/* Signed approvals one fetch verifies at most (two ssh-keygen runs each); the others wait
 * for the next poll, which reads the same changes again. */
#define FLEET_VERIFY_PER_FETCH 8
/* Verdicts kept; an older one forgotten is verified (and logged) again if seen again. */
#define FLEET_VERDICTS_MAX 1024

typedef struct FleetVerdict {
        /* SHA-256 over the policy's version, the approval's id, approver, statement and
         * signature and the request's fields: any change is verified anew */
        char key[APPROVAL_SHA256_HEX_LEN + 1];
        bool ok;
        uint64_t not_after; /* the signed window's end, seconds */
        char fingerprint[SSHSIG_FINGERPRINT_MAX];
} FleetVerdict;

static FleetVerdict *verdict_find(Broker *b, const char *key) {
        for (size_t i = 0; b->fleet_verdicts && i < FLEET_VERDICTS_MAX; i++)
                if (STREQ(b->fleet_verdicts[i].key, key))
                        return &b->fleet_verdicts[i];
        return NULL;
}

static FleetVerdict *verdict_add(Broker *b) {
        if (!b->fleet_verdicts &&
            !(b->fleet_verdicts = calloc(FLEET_VERDICTS_MAX, sizeof(FleetVerdict))))
                return NULL;
        FleetVerdict *v = &b->fleet_verdicts[b->fleet_verdicts_next];
        b->fleet_verdicts_next = (b->fleet_verdicts_next + 1) % FLEET_VERDICTS_MAX;
        *v = (FleetVerdict){};
        return v;
}

/* Verifies the signed approval a (a JSON object of the fetch: id, approver, statement,
 * signature) of request r for this host: 1 and *ret the verdict when it counts, 0 when it
 * does not (said once, in the journal), -EAGAIN when this fetch may not verify more. */
static int fleet_verify(Broker *b, const Request *r, int64_t fleet_id, json_object *a,
                        const char *approver, bool approver_is_requester, const char *selector,
                        const HostLabel *labels, size_t n_labels, const FleetVerdict **ret) {
        json_object *v;
        const char *statement = json_object_object_get_ex(a, "statement", &v) &&
                                                json_object_is_type(v, json_type_string)
                                        ? json_object_get_string(v)
                                        : NULL;
        const char *signature = json_object_object_get_ex(a, "signature", &v) &&
                                                json_object_is_type(v, json_type_string)
                                        ? json_object_get_string(v)
                                        : NULL;
        int64_t approval_id = json_object_object_get_ex(a, "id", &v) ? json_object_get_int64(v) : 0;
        _cleanup_free_ char *text = NULL, *why = NULL;
        char key[APPROVAL_SHA256_HEX_LEN + 1];

        if (asprintf(&text, "%s\x1f%lld\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%llu",
                     b->policy->hash, (long long) approval_id, approver, statement ?: "-",
                     signature ?: "-", r->requester, r->service, r->reason ?: "", r->ticket ?: "-",
                     selector, (unsigned long long) r->duration) < 0)
                return -ENOMEM;
        approval_statement_hash_text(text, key);
        FleetVerdict *known = verdict_find(b, key);
        if (known) {
                *ret = known;
                return known->ok;
        }
        if (statement && signature && b->fleet_verify_left == 0)
                return -EAGAIN;

        FleetVerdict *verdict = verdict_add(b);
        if (!verdict)
                return -ENOMEM;
        memcpy(verdict->key, key, sizeof(key));
        *ret = verdict;
        if (!statement || !signature) {
                log_warning("fleet: request %lld: %s's approval is not signed, and rule %s "
                            "requires signed approvals here: not counted",
                            (long long) fleet_id, approver, r->rule);
                return 0;
        }
        b->fleet_verify_left--;

        char host[256], rid[32];
        int k = approval_host_name(b->policy, host, sizeof(host));
        if (k < 0)
                return log_error_errno(k, "fleet: cannot read this host's name: %m"), 0;
        snprintf(rid, sizeof(rid), "f:%lld", (long long) fleet_id);
        SignedApproval sa = {
                .request = r,
                .request_id = rid,
                .fleet = fleet_client_fleet_id(b->fleet),
                .approver = approver,
                .statement = statement,
                .signature = signature,
                .host = host,
                .labels = labels,
                .n_labels = n_labels,
                .approver_is_requester = approver_is_requester,
                .allowed_signers = policy_allowed_signers(b->policy),
                .now = now_usec(CLOCK_REALTIME) / USEC_PER_SEC,
        };
        SshSigInfo info;
        uint64_t not_after = 0, started = now_usec(CLOCK_MONOTONIC);
        if (!sa.fleet)
                k = -ENOTCONN, why = strdup("the fleet's identity is not known yet");
        else
                k = approval_check_signed(&sa, &info, &not_after, &why);
        if (k < 0) {
                log_warning("fleet: request %lld: %s's signed approval (approval %lld) is "
                            "refused here: %s",
                            (long long) fleet_id, approver, (long long) approval_id,
                            why ?: "out of memory");
                if (k == -ETIMEDOUT || k == -ENOMEM || k == -ENOTCONN)
                        verdict->key[0] = 0; /* not a verdict: tried again next time */
                return 0;
        }
        verdict->ok = true;
        verdict->not_after = not_after;
        snprintf(verdict->fingerprint, sizeof(verdict->fingerprint), "%s", info.fingerprint);
        log_info("fleet: request %lld: %s's signed approval verified, key %s (%llu ms)",
                 (long long) fleet_id, approver, info.fingerprint,
                 (unsigned long long) ((now_usec(CLOCK_MONOTONIC) - started) / 1000));
        return 1;
}

/* One fleet request as the fetch read it: decided here. */
static void fleet_apply_row(Broker *b, PGresult *res, int row) {
        const char *host = fleet_client_host(b->fleet);
        int64_t fleet_id = strtoll(PQgetvalue(res, row, 0), NULL, 10), local_id = 0;
        const char *origin = PQgetvalue(res, row, 1), *requester = PQgetvalue(res, row, 2),
                   *service = PQgetvalue(res, row, 3), *reason = PQgetvalue(res, row, 4),
                   *selector = PQgetvalue(res, row, 7), *state = PQgetvalue(res, row, 8);
        const char *ticket = PQgetisnull(res, row, 5) ? NULL : PQgetvalue(res, row, 5);
        uint64_t duration = (uint64_t) strtoull(PQgetvalue(res, row, 6), NULL, 10);
        HostLabel labels[POLICY_HOST_LABELS_MAX];
        size_t n_labels = policy_host_labels(b->policy, labels);
        HostSelector *sel = NULL;
        int r;

        if (host_selector_parse(selector, &sel, NULL) < 0)
                return;
        bool mine = host_selector_matches(sel, host, labels, n_labels);
        r = db_fleet_grant_find(b->db, host, fleet_id, &local_id);
        if (r < 0 && r != -ENOENT) {
                host_selector_free(sel);
                return (void) log_warning_errno(r, "fleet: cannot read the fleet grants: %m");
        }
        if (r == 0) {
                /* Granted here before: only its revocation matters now, by someone who
                 * may revoke it here (as a local revoke: the requester, an approver of the
                 * grant's rule, root). */
                host_selector_free(sel);
                if (!STREQ(state, "revoked") || PQgetisnull(res, row, 11))
                        return;
                _cleanup_(json_object_putp) json_object *revokers =
                        json_tokener_parse(PQgetvalue(res, row, 11));
                size_t n = json_object_is_type(revokers, json_type_array)
                                   ? json_object_array_length(revokers)
                                   : 0;
                /* The first revocation that counts here ends it. */
                for (size_t i = 0; i < n; i++)
                        if (fleet_revoke_checked(
                                    b, fleet_id, local_id, requester, service,
                                    json_object_get_string(json_object_array_get_idx(revokers, i))))
                                break;
                return;
        }
        if (!mine || !STREQ(state, "pending")) {
                host_selector_free(sel);
                return;
        }
        /* Its time to be answered, by this host's own clock: after it, never granted here,
         * whatever the origin host has written yet. */
        double expires_at = PQgetisnull(res, row, 12) ? 0 : strtod(PQgetvalue(res, row, 12), NULL);
        uint64_t filed_at;
        /* A row filed before version 5 has no such time: this host's own pending_ttl from
         * its filing, as for a local request, rather than never. */
        if (PQgetisnull(res, row, 12))
                expires_at = rfc3339_parse(PQgetvalue(res, row, 9), &filed_at) < 0
                                     ? 1
                                     : (double) (filed_at / USEC_PER_SEC + b->policy->pending_ttl);
        if (expires_at > 0 && (double) now_usec(CLOCK_REALTIME) >= expires_at * USEC_PER_SEC) {
                host_selector_free(sel);
                return (void) log_info("fleet: request %lld: its time to be answered is over, "
                                       "not granted here",
                                       (long long) fleet_id);
        }

        _cleanup_(identity_done) Identity req_id = { .uid = (uid_t) -1 };
        if (identity_from_name(requester, &req_id) < 0) {
                host_selector_free(sel);
                return (void) log_notice("fleet: request %lld: requester %s is not a user here",
                                         (long long) fleet_id, requester);
        }
        const PolicyRule *rule = policy_match(b->policy, &req_id, service);
        bool covered = rule && rule_covers(rule, sel, host, labels, n_labels);
        host_selector_free(sel);
        if (!covered)
                return (void) log_debug("fleet: request %lld: no rule here allows %s for %s on %s",
                                        (long long) fleet_id, service, requester, selector);
        if (duration > policy_rule_cap(b->policy, rule))
                return (void) log_notice("fleet: request %lld: %llu s is over rule %s's cap here",
                                         (long long) fleet_id, (unsigned long long) duration,
                                         rule->name);

        /* The approvals this host counts: approvers of its rule, as it resolves them. */
        _cleanup_(json_object_putp) json_object *list =
                PQgetisnull(res, row, 10) ? NULL : json_tokener_parse(PQgetvalue(res, row, 10));
        size_t n = list && json_object_is_type(list, json_type_array)
                           ? json_object_array_length(list)
                           : 0;
        _cleanup_free_ Approval *approvals = calloc(n + 1, sizeof(Approval));
        _cleanup_free_ char **names = calloc(n + 1, sizeof(char *));
        /* the counted approvals' keys, copied: the verdicts are a ring */
        _cleanup_free_ char(*fingerprints)[SSHSIG_FINGERPRINT_MAX] =
                calloc(n + 1, SSHSIG_FINGERPRINT_MAX);
        size_t counted = 0;
        uint64_t approved_at = 0;
        bool denied = false, later = false;
        if (!approvals || !names || !fingerprints)
                return (void) log_error("fleet: out of memory");
        /* Signed approvals (docs/signed-approvals.md): each verified here, against this
         * host's allowed_signers, for this host, before it counts; a key counts once. */
        bool needs_signature = policy_rule_requires_signature(rule, true);
        Request signed_req;
        request_of_row(b, res, row, req_id.uid, &signed_req);
        signed_req.rule = (char *) rule->name;
        for (size_t i = 0; i < n && counted < rule->approvals; i++) {
                json_object *a = json_object_array_get_idx(list, i), *v;
                const char *approver = json_object_object_get_ex(a, "approver", &v)
                                               ? json_object_get_string(v)
                                               : NULL;
                const char *verdict = json_object_object_get_ex(a, "verdict", &v)
                                              ? json_object_get_string(v)
                                              : NULL;
                double at = json_object_object_get_ex(a, "at", &v) ? json_object_get_double(v) : 0;
                Identity who = { .uid = (uid_t) -1 };
                if (!approver || !verdict || identity_from_name(approver, &who) < 0)
                        continue;
                bool counts = policy_rule_is_approver(rule, &who) &&
                              (who.uid != req_id.uid || rule->allow_self_approval);
                bool seen = false;
                for (size_t k = 0; k < counted; k++)
                        seen = seen || approvals[k].approver_uid == who.uid;
                if (counts && STREQ(verdict, "deny")) {
                        identity_done(&who);
                        log_info("fleet: request %lld denied by %s", (long long) fleet_id,
                                 approver);
                        denied = true;
                        break;
                }
                const FleetVerdict *checked = NULL;
                if (counts && !seen && needs_signature) {
                        int k = fleet_verify(b, &signed_req, fleet_id, a, approver,
                                             who.uid == req_id.uid, selector, labels, n_labels,
                                             &checked);
                        if (k == -EAGAIN) {
                                /* Verified at the next poll: the cursor stays before it. */
                                identity_done(&who);
                                later = true;
                                break;
                        }
                        counts = k > 0;
                        for (size_t j = 0; counts && j < counted; j++)
                                if (approvals[j].signer_fingerprint &&
                                    STREQ(approvals[j].signer_fingerprint, checked->fingerprint)) {
                                        log_notice("fleet: request %lld: %s's approval is signed "
                                                   "by key %s, which signed %s's already: a key "
                                                   "counts once",
                                                   (long long) fleet_id, approver,
                                                   checked->fingerprint, approvals[j].approver);
                                        counts = false;
                                }
                        /* The signed window must still hold a grant starting now. */
                        if (counts && now_usec(CLOCK_REALTIME) / USEC_PER_SEC + duration >
                                              checked->not_after) {
                                log_notice("fleet: request %lld: %s's signed approval holds only "
                                           "for a grant ending by %llu (epoch seconds)",
                                           (long long) fleet_id, approver,
                                           (unsigned long long) checked->not_after);
                                counts = false;
                        }
                }
                if (counts && !seen) {
                        json_object *sv;
                        approvals[counted] = (Approval){
                                .approver = who.name,
                                .approver_uid = who.uid,
                                .at = (uint64_t) (at * 1e6),
                                .policy_version = (char *) b->policy->hash,
                        };
                        if (checked) {
                                memcpy(fingerprints[counted], checked->fingerprint,
                                       SSHSIG_FINGERPRINT_MAX);
                                approvals[counted].signer_fingerprint = fingerprints[counted];
                                if (json_object_object_get_ex(a, "statement", &sv))
                                        approvals[counted].statement =
                                                (char *) json_object_get_string(sv);
                                if (json_object_object_get_ex(a, "signature", &sv))
                                        approvals[counted].signature =
                                                (char *) json_object_get_string(sv);
                        }
                        names[counted++] = TAKE_PTR(who.name);
                        if ((uint64_t) (at * 1e6) > approved_at)
                                approved_at = (uint64_t) (at * 1e6);
                }
                identity_done(&who);
        }
        if (later)
                b->fleet_grant_deferred = true;
        if (denied || later || counted < rule->approvals || counted == 0) {
                for (size_t k = 0; k < counted; k++)
                        free(names[k]);
                return;
        }

        int waiting = db_fleet_audit_count_waiting(b->db, host);
        if (waiting < 0 || waiting >= FLEET_AUDIT_WAITING_MAX) {
                for (size_t k = 0; k < counted; k++)
                        free(names[k]);
                /* Granted later, when the upload has drained them: the fetch reads it again. */
                b->fleet_grant_deferred = true;
                return (void) log_warning("fleet: request %lld not granted here yet: %s",
                                          (long long) fleet_id,
                                          waiting < 0 ? "cannot read the fleet audit records"
                                                      : "too many fleet audit records wait for "
                                                        "the upload");
        }

        GrantAsk gask = {
                .service = service, .duration = duration, .reason = reason, .ticket = ticket
        };
        FleetGrantAsk fa = { .fleet_host = host,
                             .fleet_id = fleet_id,
                             .origin_host = origin,
                             .selector = selector,
                             .approved_at = approved_at,
                             .approvals = approvals,
                             .n_approvals = counted,
                             .honoured_until_boot =
                                     honoured_until(b, fleet_client_last_sync_boot(b->fleet)) };
        GrantError e = {};
        r = grant_fleet_activate(&b->grants, &req_id, rule, &gask, &fa, &local_id, &e);
        for (size_t k = 0; k < counted; k++)
                free(names[k]);
        if (r == -ETIME)
                log_info("fleet: request %lld was approved but its time is over",
                         (long long) fleet_id);
        else if (r < 0)
                log_warning("fleet: cannot grant fleet request %lld here: %s", (long long) fleet_id,
                            e.message);
        else
                broker_state_changed(b);
}

typedef struct FleetFetch {
        Broker *b;
        int64_t from, to;
} FleetFetch;

static void fetched(void *userdata, PGresult *res, const char *error) {
        FleetFetch *f = userdata;
        Broker *b = f->b;
        int64_t from = f->from, to = f->to;
        free(f);

        if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
                /* Not applied: the kept cursor stays, and the next poll reads them again. */
                log_debug("fleet: the fetch failed: %s", res ? PQresultErrorMessage(res) : error);
                fleet_client_rewind(b->fleet);
                return;
        }
        /* Every request the changes name that concerns this host, by id: at most one poll's
         * rows (FLEET_POLL_ROWS_MAX). */
        b->fleet_grant_deferred = false;
        b->fleet_verify_left = FLEET_VERIFY_PER_FETCH;
        for (int i = 0; i < PQntuples(res); i++)
                fleet_apply_row(b, res, i);
        if (b->fleet_grant_deferred) {
                /* A grant held back (the fleet audit records wait for upload): read again. */
                fleet_client_rewind(b->fleet);
                return;
        }
        fleet_client_applied(b->fleet, from, to);
}

/* Whether a change may concern this host: its selector picks the host (by name, or every
 * label with this host's value), or the host holds a grant of that request (a revocation
 * ends it even if the host's labels changed since). */
static bool change_concerns(Broker *b, const char *host, const HostLabel *labels, size_t n_labels,
                            const FleetChange *c) {
        int64_t local_id;
        bool picks = false;

        if (c->selector_host)
                picks = STREQ(c->selector_host, host);
        else {
                _cleanup_(json_object_putp) json_object *o = json_tokener_parse(c->selector_labels);
                picks = json_object_is_type(o, json_type_object);
                json_object_object_foreach (o, key, value) {
                        bool found = false;
                        for (size_t i = 0; i < n_labels && !found; i++)
                                found = STREQ(labels[i].key, key) &&
                                        json_object_is_type(value, json_type_string) &&
                                        STREQ(labels[i].value, json_object_get_string(value));
                        picks = picks && found;
                }
        }
        return picks || db_fleet_grant_find(b->db, host, c->request_id, &local_id) != -ENOENT;
}

void broker_fleet_changes(void *userdata, int64_t from, int64_t to, const FleetChange *changes,
                          size_t n) {
        Broker *b = userdata;
        const char *host = fleet_client_host(b->fleet);
        HostLabel labels[POLICY_HOST_LABELS_MAX];
        size_t n_labels = policy_host_labels(b->policy, labels);

        if (!host)
                return;
        /* The ids of the requests that concern this host, each once: "{1,2,3}". */
        size_t len = n * 21 + 3, at = 0, ids = 0;
        _cleanup_free_ char *array = malloc(len);
        if (!array) {
                fleet_client_rewind(b->fleet);
                return;
        }
        array[at++] = '{';
        for (size_t i = 0; i < n; i++) {
                bool again = false;
                for (size_t j = 0; j < i && !again; j++)
                        again = changes[j].request_id == changes[i].request_id;
                if (again || !change_concerns(b, host, labels, n_labels, &changes[i]))
                        continue;
                at += (size_t) snprintf(array + at, len - at, "%s%lld", ids++ ? "," : "",
                                        (long long) changes[i].request_id);
        }
        snprintf(array + at, len - at, "}");
        if (ids == 0) {
                /* Nothing here to fetch: a host the changes do not name costs the store
                 * nothing more than its poll. */
                fleet_client_applied(b->fleet, from, to);
                return;
        }

        FleetFetch *f = calloc(1, sizeof(*f));
        if (!f) {
                fleet_client_rewind(b->fleet);
                return;
        }
        *f = (FleetFetch){ .b = b, .from = from, .to = to };
        /* Only what this host may read: row-level security for its own role, the same rule
         * in the store's function for the shared poll login. */
        if (fleet_client_fetch(b->fleet, array, fetched, f) < 0) {
                free(f);
                fleet_client_rewind(b->fleet);
        }
}

/* ---- when PostgreSQL is away: max_offline and the catch-up ---- */

/* The deadlines are written again only when they move by this much (a sixteenth of
 * max_offline, at most a minute), not at every poll: a grant may thus end up to that much
 * before max_offline has passed, never after. */
static uint64_t honour_step(uint64_t max_offline) {
        uint64_t step = max_offline * USEC_PER_SEC / 16;
        return step < 60 * USEC_PER_SEC ? step : 60 * USEC_PER_SEC;
}

/* When a sweep fails, the next one after this. */
#define FLEET_SWEEP_RETRY_USEC (10 * USEC_PER_SEC)

static void swept(void *userdata, PGresult *res, const char *error) {
        Broker *b = userdata;

        if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
                log_notice("fleet: cannot mark this host's expired fleet requests timed_out: %s",
                           res ? PQresultErrorMessage(res) : error);
                b->fleet_next_sweep = now_usec(CLOCK_REALTIME) + FLEET_SWEEP_RETRY_USEC;
                return;
        }
        long long marked = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (marked > 0)
                log_info("fleet: %lld fleet request%s filed here timed out", marked,
                         marked == 1 ? "" : "s");
        /* The next one to time out, unless a filing comes earlier. */
        uint64_t next =
                PQgetisnull(res, 0, 1)
                        ? UINT64_MAX
                        : (uint64_t) strtoull(PQgetvalue(res, 0, 1), NULL, 10) * USEC_PER_SEC;
        if (next < b->fleet_next_sweep)
                b->fleet_next_sweep = next;
}

/* The origin host marks its own pending requests whose time is over timed_out (targets
 * already refuse them by their own clocks): one statement when one is due. */
static void sweep_expired(Broker *b, const char *host) {
        uint64_t now = now_usec(CLOCK_REALTIME);
        char now_text[32];

        if (now < b->fleet_next_sweep)
                return;
        snprintf(now_text, sizeof(now_text), "%llu", (unsigned long long) (now / USEC_PER_SEC));
        const char *params[] = { host, now_text };
        uint64_t was = b->fleet_next_sweep;
        b->fleet_next_sweep = UINT64_MAX; /* the answer says when next */
        if (fleet_client_query(b->fleet,
                               "WITH t AS (UPDATE jit_fleet.requests SET state = 'timed_out', "
                               "state_changed_at = now() WHERE origin_host = $1 AND state = "
                               "'pending' AND expires_at <= to_timestamp($2::bigint) RETURNING "
                               "id) SELECT (SELECT count(*) FROM t), (SELECT ceil(extract(epoch "
                               "FROM min(expires_at)))::bigint FROM jit_fleet.requests WHERE "
                               "origin_host = $1 AND state = 'pending' AND expires_at > "
                               "to_timestamp($2::bigint))",
                               2, params, swept, b) < 0)
                b->fleet_next_sweep = was;
}

void broker_fleet_synced(void *userdata, uint64_t sync_boot) {
        Broker *b = userdata;
        const char *host = fleet_client_host(b->fleet);
        uint64_t until = honoured_until(b, sync_boot);

        if (!host)
                return;
        sweep_expired(b, host);
        broker_fleet_upload_soon(b); /* what was recorded since, or what failed before */
        if (until == 0)
                until = INT64_MAX; /* their own deadlines */
        uint64_t was = b->fleet_honoured_until;
        if (was != 0 && until >= was &&
            (until == INT64_MAX || until - was < honour_step(b->policy->fleet.max_offline)))
                return;
        int r = db_fleet_grants_honour_until(b->db, host, b->boot_id, until);
        if (r < 0)
                /* They end sooner, never later: the next poll tries again. */
                return (void) log_warning_errno(r, "fleet: cannot extend the fleet grants: %m");
        b->fleet_honoured_until = until;
        fleet_client_keep_sync(b->fleet);
        if (r > 0)
                broker_state_changed(b); /* the deadline timer moves */
}

static void caught_up(void *userdata, PGresult *res, const char *error) {
        Broker *b = userdata;

        if (!res || PQresultStatus(res) != PGRES_TUPLES_OK)
                /* The change feed still names every revocation: the poll applies it. */
                return (void) log_notice("fleet: the catch-up after connecting failed: %s",
                                         res ? PQresultErrorMessage(res) : error);
        b->fleet_verify_left = FLEET_VERIFY_PER_FETCH;
        for (int i = 0; i < PQntuples(res); i++)
                fleet_apply_row(b, res, i);
        log_info("fleet: caught up on the revocations of %d fleet grant%s held here",
                 PQntuples(res), PQntuples(res) == 1 ? "" : "s");
}

void broker_fleet_connected(void *userdata) {
        Broker *b = userdata;
        const char *host = fleet_client_host(b->fleet);
        int64_t ids[FLEET_FETCH_ROWS_MAX];

        if (!host)
                return;
        b->fleet_honoured_until = 0;  /* the first poll writes the deadlines again */
        b->fleet_next_sweep = 0;      /* and marks what timed out meanwhile */
        b->fleet_upload_retry_at = 0; /* a new connection uploads at once */
        int n = db_fleet_grants_active(b->db, host, ids, ELEMENTSOF(ids));
        if (n < 0)
                return (void) log_warning_errno(n, "fleet: cannot list the fleet grants held: %m");
        if (n == 0)
                return broker_fleet_upload(b);
        /* "{1,2,3}": at most 1000 ids of 20 digits. */
        size_t len = (size_t) n * 21 + 3;
        _cleanup_free_ char *array = malloc(len);
        if (!array)
                return (void) log_error("fleet: out of memory");
        size_t at = 0;
        array[at++] = '{';
        for (int i = 0; i < n; i++)
                at += (size_t) snprintf(array + at, len - at, "%s%lld", i ? "," : "",
                                        (long long) ids[i]);
        snprintf(array + at, len - at, "}");
        const char *params[] = { array };
        /* The requests held here, with their revocations, before the change feed: an outage
         * does not delay a revocation by the length of the feed behind it. */
        int r = fleet_client_query(b->fleet, FLEET_CATCHUP_SQL, 1, params, caught_up, b);
        if (r < 0)
                log_notice_errno(r, "fleet: cannot ask for the catch-up: %m");
        /* After the catch-up: what was recorded here while the store was away. */
        broker_fleet_upload(b);
}
