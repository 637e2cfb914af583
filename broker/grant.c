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

#include "approval-statement.h"
#include "cleanup.h"
#include "duration.h"
#include "protocol.h"
#include "store-fleet.h"
#include "store-retention.h"
#include "store.h"
#include "timeutil.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(Request *, request_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)

/* ---- transactions ---- */

int grants_begin(Grants *g) {
        if (g->tx_depth == 0) {
                if (g->before_begin)
                        g->before_begin(g, g->before_commit_userdata);
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
                int k = g->before_commit ? g->before_commit(g, g->before_commit_userdata) : 0;
                if (k >= 0)
                        k = db_commit(g->db);
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

const char *grant_store_failure(int error) {
        switch (error) {
        case -ENOSPC:
        case -EDQUOT:
                return "the disk is full";
        case -EROFS:
        case -EACCES:
                return "the database is read-only";
        case -EBUSY:
                return "the database is locked by another process";
        default:
                return strerror(error < 0 ? -error : error);
        }
}

/* A failure of the store says why, read from sqlite before the guard rolls back. */
static int store_error(Grants *g, int error) {
        return error == -EIO || error == -EACCES ? db_failure_errno(g->db, error) : error;
}

static int fail(Grants *g, GrantError *e, int error, const char *doing) {
        assert(error < 0);
        error = store_error(g, error);
        e->code = JIT_ERROR_INTERNAL;
        e->doing = doing;
        e->held = false;
        if (error == -ENOSPC || error == -EROFS || error == -EBUSY)
                snprintf(e->message, sizeof(e->message),
                         "the broker failed while %s: %s; nothing was changed", doing,
                         grant_store_failure(error));
        else
                snprintf(e->message, sizeof(e->message),
                         "the broker failed while %s; nothing was changed", doing);
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
        e->held = false;
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
        e->held = false;
        char who[32];
        snprintf(who, sizeof(who), "uid %u", (unsigned) caller->uid);
        const char *name = caller->name ?: who;
        /* Anyone can be refused at will, with their own text in the entry: at a bounded rate
         * per uid, the rest summed up later. The reply says it all the same. */
        if (effect_log_allowed(g->effects, JIT_EVENT_REFUSED, caller->uid, g->now(CLOCK_BOOTTIME)))
                (void) effect_post(g->effects, JIT_EVENT_REFUSED, LOG_NOTICE, r, name,
                                   "refused %s: %s", name, e->message);
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

/* The end fields of r, as an end says them. */
static int request_mark_ended(Request *r, RequestState state, uint64_t at, const char *ended_by,
                              const char *reason) {
        char *by = strdup(ended_by), *why = reason ? strdup(reason) : NULL;
        if (!by || (reason && !why)) {
                free(by);
                free(why);
                return -ENOMEM;
        }
        r->state = state;
        r->ended_at = at;
        free(r->ended_by);
        r->ended_by = by;
        free(r->end_reason);
        r->end_reason = why;
        return 0;
}

/* Every way a request ends: the state machine, the end fields, the row and its audit
 * record (with details added, which is consumed), inside the caller's transaction. */
static int request_end(Grants *g, Request *r, const HeldEnd *end, json_object *added) {
        _cleanup_(json_object_putp) json_object *extra = added;
        RequestState next;
        assert(end->event >= 0 && end->event < _REQUEST_EVENT_MAX); /* chosen by the code */
        int k = request_transition(r->state, end->event, &next);
        if (k < 0)
                return k;
        assert(next == end->state);
        if ((k = request_mark_ended(r, next, end->at, end->ended_by, end->reason)) < 0 ||
            (k = db_update_request(g->db, r)) < 0)
                return k;
        json_object *details = audit_request_details(r);
        if (details && extra)
                json_object_object_add(details, "held", TAKE_PTR(extra));
        return audit_append(g->db, end->audit_event, end->actor, end->actor_uid, r->id, details);
}

/* Reads request id for a change of the core. */
static int read_request(Grants *g, int64_t id, Request **ret, GrantError *e) {
        int k = db_get_request(g->db, id, ret);
        if (k == -ENOENT) {
                snprintf(e->message, sizeof(e->message), "no request %lld", (long long) id);
                e->code = JIT_ERROR_NOT_FOUND;
                e->doing = NULL;
                e->held = false;
                return k;
        }
        if (k < 0)
                return fail(g, e, k, "reading the request");
        return 0;
}

/* Opens the transaction of a change to request id and reads it inside. */
static int begin_on_request(Grants *g, GrantTx *tx, int64_t id, Request **ret, GrantError *e) {
        int k = tx_begin(g, tx);
        if (k < 0)
                return fail(g, e, k, "starting a transaction");
        return read_request(g, id, ret, e);
}

/* begin_on_request() for an end, which must not be lost because the database cannot be
 * written: when the transaction cannot even start (locked, read-only), the request is read
 * without one and *ret_write_error says why, so that the end is held instead. */
static int begin_for_end(Grants *g, GrantTx *tx, int64_t id, Request **ret, int *ret_write_error,
                         GrantError *e) {
        int k = tx_begin(g, tx);
        *ret_write_error = k < 0 ? store_error(g, k) : 0;
        return read_request(g, id, ret, e);
}

/* ---- ends that cannot be saved: enforced from memory, written later ---- */

const HeldEnd *grants_held_find(const Grants *g, int64_t id) {
        for (size_t i = 0; i < g->n_held; i++)
                if (g->held[i].id == id)
                        return &g->held[i];
        return NULL;
}

uint64_t grants_held_saved(Grants *g) {
        pthread_mutex_lock(&g->held_lock);
        uint64_t n = g->held_saved;
        pthread_mutex_unlock(&g->held_lock);
        return n;
}

bool grants_ended_in_memory(Grants *g, int64_t id) {
        pthread_mutex_lock(&g->held_lock);
        bool ended = grants_held_find(g, id);
        for (size_t i = 0; !ended && i < g->n_used; i++)
                ended = g->used[i] == id;
        pthread_mutex_unlock(&g->held_lock);
        return ended;
}

int grants_mark_used(Grants *g, int64_t id) {
        int r = 0;
        pthread_mutex_lock(&g->held_lock);
        int64_t *l = reallocarray(g->used, g->n_used + 1, sizeof(int64_t));
        if (l) {
                g->used = l;
                g->used[g->n_used++] = id;
        } else
                r = -ENOMEM;
        pthread_mutex_unlock(&g->held_lock);
        return r;
}

/* A request read from the store, as the held end of it (if any) makes it: what decisions
 * see. Never written back as is: the end is written by the retry, with its audit record. */
static void apply_held(const Grants *g, Request *r) {
        const HeldEnd *h = grants_held_find(g, r->id);
        if (h && request_mark_ended(r, h->state, h->at, h->ended_by, h->reason) < 0)
                r->state = h->state; /* without the texts, but ended all the same */
}

static void held_end_done(HeldEnd *h) {
        free(h->ended_by);
        free(h->reason);
        free(h->actor);
        free(h->message);
        *h = (HeldEnd){};
}

void grants_done(Grants *g) {
        pthread_mutex_lock(&g->held_lock);
        for (size_t i = 0; i < g->n_held; i++)
                held_end_done(&g->held[i]);
        free(g->held);
        g->held = NULL;
        g->n_held = 0;
        free(g->used);
        g->used = NULL;
        g->n_used = 0;
        g->held_changes++;
        pthread_mutex_unlock(&g->held_lock);
}

/* Keeps end (which the write of r failed with error) in memory and enforces it now: the
 * journal entry says so and the grant's sessions are acted on. 1, or -ENOMEM when not even
 * that was possible. */
static int hold_end(Grants *g, Request *r, const HeldEnd *end, bool ends_grant, int error) {
        HeldEnd h = *end;
        h.ended_by = strdup(end->ended_by);
        h.reason = end->reason ? strdup(end->reason) : NULL;
        h.actor = strdup(end->actor);
        h.message = strdup(end->message);
        h.error = error;
        h.attempts = end->attempts ?: 1;
        pthread_mutex_lock(&g->held_lock);
        HeldEnd *l = reallocarray(g->held, g->n_held + 1, sizeof(HeldEnd));
        if (l)
                g->held = l;
        bool ok = l && h.ended_by && (!end->reason || h.reason) && h.actor && h.message;
        if (ok) {
                g->held[g->n_held++] = h;
                g->held_changes++;
        }
        pthread_mutex_unlock(&g->held_lock);
        if (!ok) {
                held_end_done(&h);
                return -ENOMEM;
        }

        /* The request as it stands now, for the journal and for its sessions. */
        apply_held(g, r);
        int k;
        if (ends_grant)
                k = effect_post_end(
                        g->effects, end->audit_event, LOG_WARNING, r, end->actor,
                        "%s; enforced now but not saved yet (%s), retried " GRANT_RETRY_TEXT,
                        end->message, grant_store_failure(error));
        else
                k = effect_post(
                        g->effects, end->audit_event, LOG_WARNING, r, end->actor,
                        "%s; enforced now but not saved yet (%s), retried " GRANT_RETRY_TEXT,
                        end->message, grant_store_failure(error));
        if (k < 0 && g->report)
                g->report(g->report_userdata, k, "announcing the held end of request", r->id);
        effects_changed(g->effects);
        return 1;
}

int grants_hold_again(Grants *g, const HeldEnd *h) {
        _cleanup_(request_freep) Request *r = NULL;
        RequestState next;

        if (grants_held_find(g, h->id))
                return 0;
        int k = db_get_request(g->db, h->id, &r);
        if (k == -ENOENT)
                return 0;
        if (k < 0)
                return k;
        if (request_transition(r->state, h->event, &next) < 0 || next != h->state)
                return 0; /* written after all, or ended otherwise */
        k = hold_end(g, r, h, false, h->error);
        return k < 0 ? k : 1;
}

/* Ends r, which the caller read inside tx, or outside when write_error says the transaction
 * could not start: written and committed (0), or when the store fails, held (1, *ret_error
 * says why). Negative: neither, the end is lost (-ENOMEM), or r cannot move so (-EBUSY).
 * tx is closed either way. */
static int end_or_hold(Grants *g, GrantTx *tx, Request *r, HeldEnd *end, int write_error,
                       int *ret_error) {
        RequestState next;
        bool ends_grant = r->state == REQUEST_ACTIVE;
        int k = write_error;

        if (request_transition(r->state, end->event, &next) < 0)
                return -EBUSY;
        end->id = r->id;
        end->state = next;
        end->at = g->now(CLOCK_REALTIME);
        if (k >= 0) {
                if ((k = request_end(g, r, end, NULL)) >= 0 &&
                    (k = effect_stage(g->effects, end->audit_event, LOG_NOTICE, r, end->actor, NULL,
                                      "%s", end->message)) >= 0) {
                        if (ends_grant)
                                effect_ends_grant(g->effects);
                        k = tx_commit(tx);
                }
                if (k >= 0)
                        return 0;
                k = store_error(g, k);
                grant_tx_release(tx); /* now: what is held must not be rolled back later */
                tx->g = NULL;
        }
        *ret_error = k;
        return hold_end(g, r, end, ends_grant, k);
}

/* The held end of h->id, written now with its original time and actor. 0 when it is
 * saved (or there is nothing left to save), else why not. */
static int write_held(Grants *g, HeldEnd *h) {
        _cleanup_tx_ GrantTx tx = {};
        _cleanup_(request_freep) Request *r = NULL;
        char at[RFC3339_BUF_MAX];
        RequestState next;
        int k;

        if ((k = tx_begin(g, &tx)) < 0)
                return store_error(g, k);
        k = db_get_request(g->db, h->id, &r);
        if (k == -ENOENT || (k >= 0 && request_transition(r->state, h->event, &next) < 0)) {
                /* Gone, or ended by something else meanwhile: nothing left to write. */
                if (g->report)
                        g->report(g->report_userdata, -ESTALE, "dropping the held end of request",
                                  h->id);
                return 0;
        }
        if (k < 0)
                return store_error(g, k);
        json_object *held = json_object_new_object();
        if (held) {
                json_object_object_add(
                        held, "ended_at",
                        json_object_new_string(format_rfc3339(h->at, at, sizeof(at))));
                json_object_object_add(held, "attempts", json_object_new_int((int) h->attempts));
                json_object_object_add(held, "error",
                                       json_object_new_string(grant_store_failure(h->error)));
        }
        if ((k = request_end(g, r, h, held)) < 0 ||
            (k = effect_stage(g->effects, h->audit_event, LOG_NOTICE, r, h->actor, NULL,
                              "%s (saved now; %u attempt%s failed before)", h->message, h->attempts,
                              h->attempts == 1 ? "" : "s")) < 0 ||
            (k = tx_commit(&tx)) < 0)
                return store_error(g, k);
        return 0;
}

size_t grants_retry_held(Grants *g) {
        size_t saved = 0;
        while (g->n_held > 0) {
                HeldEnd *h = &g->held[0];
                int k = write_held(g, h);
                if (k < 0) {
                        /* The first failure ends this round: the others would fail the same way,
                         * each after the busy timeout when the database is locked. */
                        h->error = k;
                        h->attempts++;
                        g->held_changes++;
                        break;
                }
                pthread_mutex_lock(&g->held_lock);
                held_end_done(h);
                memmove(g->held, g->held + 1, --g->n_held * sizeof(HeldEnd));
                g->held_changes++;
                g->held_saved++;
                pthread_mutex_unlock(&g->held_lock);
                saved++;
        }
        if (saved > 0)
                effects_changed(g->effects);
        return g->n_held;
}

/* What a caller is told about an end that is enforced but not saved. */
static int held_reply(GrantError *e, const HeldEnd *end, bool was_active, const char *done,
                      int error) {
        e->code = JIT_ERROR_INTERNAL;
        e->doing = NULL;
        e->held = true;
        snprintf(e->message, sizeof(e->message),
                 "request %lld is %s%s now, but the change is not saved yet: %s (the broker "
                 "retries " GRANT_RETRY_TEXT ")",
                 (long long) end->id, done, was_active ? " and its access ended" : "",
                 grant_store_failure(error));
        return error < 0 ? error : -EIO;
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
        if (ask->command) {
                r.command = (char *) ask->command->command;
                r.argv = (char **) ask->command->argv;
                r.run_as_user = (char *) ask->command->run_as_user;
                r.run_as_group = (char *) ask->command->run_as_group;
                r.cwd = (char *) ask->command->cwd;
                r.command_identity = (char *) ask->command_identity;
        }
        snprintf(r.boot_id, sizeof(r.boot_id), "%s", g->boot_id);
        return r;
}

/* settings.max_filings_per_hour: every request filed counts, cancelled or refused later
 * ones included, since each is a row and audit records for good. Root is not counted: it
 * can write the database itself. */
static int check_filing_rate(Grants *g, const Identity *caller, GrantError *e) {
        const uint64_t hour = 3600 * USEC_PER_SEC;
        unsigned limit = g->policy->max_filings_per_hour, filed;
        uint64_t now = g->now(CLOCK_REALTIME);
        int k;

        if (is_root(caller))
                return 0;
        if ((k = db_count_filings(g->db, caller->uid, now > hour ? now - hour : 0, limit, &filed)) <
            0)
                return fail(g, e, k, "counting recent requests");
        if (filed >= limit)
                return refuse(g, e, caller, NULL,
                              "%s filed %u requests in the last hour, the most "
                              "settings.max_filings_per_hour allows (cancelled ones count); "
                              "try again later",
                              caller->name, filed);
        return 0;
}

static const char *format_bytes(uint64_t n, char *buf, size_t len) {
        static const char units[] = "KMGT";
        if (n < 1024) {
                snprintf(buf, len, "%" PRIu64 "B", n);
                return buf;
        }
        double v = (double) n / 1024;
        size_t u = 0;
        while (v >= 1024 && u + 1 < sizeof(units) - 1)
                v /= 1024, u++;
        snprintf(buf, len, "%.1f%c", v, units[u]);
        return buf;
}

/* settings.disk_reserve: below it new requests are refused, so that what ends grants (a
 * row update and an audit record each) still has room to be written. */
static int check_disk_reserve(Grants *g, const Identity *caller, GrantError *e) {
        const Policy *p = g->policy;
        uint64_t available, total, reserve;
        char a[16], rb[16];

        if (p->disk_reserve == 0 && p->disk_reserve_percent == 0)
                return 0;
        int k = g->disk_space ? g->disk_space(g->disk_space_userdata, &available, &total)
                              : db_disk_space(g->db, &available, &total);
        if (k < 0) {
                /* Cannot tell: the write itself will say when the disk is full. */
                if (g->report)
                        g->report(g->report_userdata, k, "reading the free space", 0);
                return 0;
        }
        reserve = p->disk_reserve_percent > 0 ? total / 100 * p->disk_reserve_percent
                                              : p->disk_reserve;
        if (available >= reserve)
                return 0;
        return refuse(g, e, caller, NULL,
                      "disk nearly full: new requests are refused until space is freed; ending "
                      "grants still works (%s free, settings.disk_reserve keeps %s)",
                      format_bytes(available, a, sizeof(a)), format_bytes(reserve, rb, sizeof(rb)));
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
                .command = ask->command,
        };
        if ((k = policy_decide(g->policy, &q, &d)) < 0)
                return fail(g, e, k, "applying the policy");
        if (d.verdict == VERDICT_REFUSED)
                return refuse(g, e, caller, NULL, "%s",
                              d.message ? d.message : "refused by policy");
        bool automatic = d.verdict == VERDICT_AUTO_APPROVE;

        if (!automatic) {
                unsigned active, pending;
                if ((k = db_count_open(g->db, caller->uid, &active, &pending)) < 0)
                        return fail(g, e, k, "counting pending requests");
                if (pending >= g->policy->max_pending_per_user)
                        return refuse(g, e, caller, NULL,
                                      "%s already has %u pending requests (the limit is %u); "
                                      "cancel one first",
                                      caller->name, pending, g->policy->max_pending_per_user);
        }
        if ((k = check_filing_rate(g, caller, e)) < 0 || (k = check_disk_reserve(g, caller, e)) < 0)
                return k;

        Request req = request_new(g, caller, ask, d.duration, d.rule->name);
        req.approvals_required = automatic ? 0 : d.rule->approvals;
        /* The audit record of the filing shows the request as it was filed. */
        Request filed = req;

        if ((k = tx_begin(g, &tx)) < 0)
                return fail(g, e, k, "starting a transaction");
        if (automatic && (k = request_activate(g, &req)) < 0)
                return fail(g, e, k, "activating the grant");
        if ((k = db_insert_request(g->db, &req)) < 0)
                return fail(g, e, k, "saving the request");
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
                        return fail(g, e, k, "recording the auto-approval");
        }
        char rule_actor[POLICY_TEXT_MAX + 8];
        snprintf(rule_actor, sizeof(rule_actor), "rule:%s", req.rule);
        if ((k = audit_append(g->db, JIT_EVENT_REQUESTED, caller->name, caller->uid, req.id,
                              audit_request_details(&filed))) < 0 ||
            (automatic && (k = audit_append(g->db, JIT_EVENT_AUTO_APPROVED, rule_actor, -1, req.id,
                                            audit_request_details(&req))) < 0))
                return fail(g, e, k, "writing the audit record");
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
                return fail(g, e, k, "saving the request");
        if ((k = tx_commit(&tx)) < 0)
                return fail(g, e, k, "saving the request");
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
                return fail(g, e, k, "applying the policy");
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
                return fail(g, e, k, "saving the break-glass grant");
        *ret_id = req.id;
        return 0;
}

/* The keys of the signed approvals a fleet grant counted, as journal fields of its entry
 * (JIT_SIGNER_FINGERPRINT=, once per key, as many as an entry holds). */
static int add_fleet_signer_fields(EffectQueue *q, const FleetGrantAsk *fa) {
        size_t added = 0;
        for (size_t i = 0; i < fa->n_approvals && added < EFFECT_FIELDS_MAX; i++) {
                _cleanup_free_ char *field = NULL;
                if (!fa->approvals[i].signer_fingerprint)
                        continue;
                if (asprintf(&field, "JIT_SIGNER_FINGERPRINT=%s",
                             fa->approvals[i].signer_fingerprint) < 0)
                        return -ENOMEM;
                int k = effect_add_field(q, field);
                if (k < 0)
                        return k;
                added++;
        }
        return 0;
}

int grant_fleet_activate(Grants *g, const Identity *requester, const PolicyRule *rule,
                         const GrantAsk *ask, const FleetGrantAsk *fa, int64_t *ret_id,
                         GrantError *e) {
        _cleanup_tx_ GrantTx tx = {};
        char dbuf[DURATION_BUF_MAX];
        int k;

        uint64_t now_real = g->now(CLOCK_REALTIME), now_boot = g->now(CLOCK_BOOTTIME);
        /* Never later than this host's now: an approval time from a skewed clock cannot
         * lengthen the grant past its duration from here. */
        uint64_t approved_at = fa->approved_at < now_real ? fa->approved_at : now_real;
        uint64_t ends = approved_at + ask->duration * USEC_PER_SEC;
        if (ends <= now_real)
                return -ETIME;
        Request req = request_new(g, requester, ask, ask->duration, rule->name);
        req.approvals_required = rule->approvals;
        req.approvals = (Approval *) fa->approvals;
        req.n_approvals = fa->n_approvals;
        if ((k = request_activate(g, &req)) < 0)
                return fail(g, e, k, "activating the fleet grant");
        /* The deadline counts from the approval in the fleet, not from when this host
         * heard of it; on this boot's clock, so that a wall-clock jump cannot stretch it. */
        req.activated_at = approved_at;
        req.expires_at = req.deadline_at = ends;
        uint64_t own_deadline_boot = now_boot + (ends - now_real);
        req.deadline_boot =
                fa->honoured_until_boot > 0 && fa->honoured_until_boot < own_deadline_boot
                        ? fa->honoured_until_boot
                        : own_deadline_boot;

        json_object *details = audit_request_details(&req);
        if (details) {
                json_object_object_add(details, "fleet_id", json_object_new_int64(fa->fleet_id));
                json_object_object_add(details, "fleet_origin",
                                       json_object_new_string(fa->origin_host));
                json_object_object_add(details, "fleet_selector",
                                       json_object_new_string(fa->selector));
                /* The keys of the signed approvals this host verified (docs/signed-approvals.md).
                 */
                json_object *signers = json_object_new_array();
                for (size_t i = 0; signers && i < fa->n_approvals; i++)
                        if (fa->approvals[i].signer_fingerprint)
                                json_object_array_add(signers,
                                                      json_object_new_string(
                                                              fa->approvals[i].signer_fingerprint));
                if (signers && json_object_array_length(signers) > 0)
                        json_object_object_add(details, "signers", signers);
                else
                        json_object_put(signers);
        }
        if ((k = tx_begin(g, &tx)) < 0 || (k = db_insert_request(g->db, &req)) < 0)
                return fail(g, e, k, "saving the fleet grant");
        for (size_t i = 0; i < fa->n_approvals; i++)
                if ((k = db_add_approval(g->db, req.id, &fa->approvals[i])) < 0)
                        return fail(g, e, k, "saving the fleet grant's approvals");
        if ((k = db_fleet_grant_save(g->db, fa->fleet_host, fa->fleet_id, req.id,
                                     own_deadline_boot)) < 0 ||
            (k = audit_append(g->db, JIT_EVENT_FLEET_GRANTED, "fleet", -1, req.id, details)) < 0 ||
            (k = effect_stage(g->effects, JIT_EVENT_FLEET_GRANTED, LOG_NOTICE, &req, "fleet", NULL,
                              "fleet request %lld from %s granted here to %s for %s, %s (local "
                              "request %lld): %s",
                              (long long) fa->fleet_id, fa->origin_host, req.requester, req.service,
                              duration_format(req.duration, dbuf, sizeof(dbuf)), (long long) req.id,
                              req.reason)) < 0 ||
            (k = add_fleet_signer_fields(g->effects, fa)) < 0 || (k = tx_commit(&tx)) < 0)
                return fail(g, e, k, "saving the fleet grant");
        *ret_id = req.id;
        return 0;
}

int grant_import_activate(Grants *g, const Identity *importer, const Identity *requester,
                          const PolicyRule *rule, const GrantAsk *ask, const ImportGrantAsk *ia,
                          int64_t *ret_id, GrantError *e) {
        _cleanup_tx_ GrantTx tx = {};
        char dbuf[DURATION_BUF_MAX];
        int k;

        Request req = request_new(g, requester, ask, ask->duration, rule->name);
        req.approvals_required = rule->approvals;
        req.approvals = (Approval *) ia->approvals;
        req.n_approvals = ia->n_approvals;
        if ((k = request_activate(g, &req)) < 0)
                return fail(g, e, k, "activating the imported grant");

        json_object *details = audit_request_details(&req);
        json_object *signers = json_object_new_array();
        for (size_t i = 0; signers && i < ia->n_approvals; i++)
                json_object_array_add(signers,
                                      json_object_new_string(ia->approvals[i].signer_fingerprint));
        if (details) {
                json_object_object_add(details, "imported_from",
                                       json_object_new_string(ia->origin));
                json_object_object_add(details, "origin_request",
                                       json_object_new_string(ia->origin_request));
                json_object_object_add(details, "signers", signers);
        } else
                json_object_put(signers);
        if ((k = tx_begin(g, &tx)) < 0 || (k = db_insert_request(g->db, &req)) < 0)
                return fail(g, e, k, "saving the imported grant");
        for (size_t i = 0; i < ia->n_approvals; i++)
                if ((k = db_add_approval(g->db, req.id, &ia->approvals[i])) < 0)
                        return fail(g, e, k, "saving the imported grant's approvals");
        if ((k = audit_append(g->db, JIT_EVENT_GRANTED, importer->name, importer->uid, req.id,
                              details)) < 0 ||
            (k = effect_stage(g->effects, JIT_EVENT_GRANTED, LOG_NOTICE, &req, importer->name, NULL,
                              "%s granted to %s for %s (request %lld), imported from %s request "
                              "%s with %zu signed approvals",
                              req.service, req.requester,
                              duration_format(req.duration, dbuf, sizeof(dbuf)), (long long) req.id,
                              ia->origin, ia->origin_request, ia->n_approvals)) < 0 ||
            (k = tx_commit(&tx)) < 0)
                return fail(g, e, k, "saving the imported grant");
        *ret_id = req.id;
        return 0;
}

/* Why rule may no longer grant r as it was asked for (all of the service under a rule that
 * now grants single commands, or a command line or run-as user its patterns no longer
 * allow), in buf; NULL when it may. */
static const char *scope_refusal(const PolicyRule *rule, const Request *r, char *buf, size_t len) {
        if (!r->command && rule->scope == POLICY_SCOPE_COMMAND)
                return snprintf(buf, len, "rule \"%s\" now grants single commands only", r->rule),
                       buf;
        if (!r->command)
                return NULL;
        JitCommandLine cl = {
                .command = r->command,
                .argv = (const char *const *) r->argv,
                .run_as_user = r->run_as_user,
                .run_as_group = r->run_as_group,
                .cwd = r->cwd,
        };
        if (!policy_rule_allows_command(rule, &cl))
                return snprintf(buf, len,
                                "rule \"%s\" no longer allows this command line or its run-as "
                                "user",
                                r->rule),
                       buf;
        return NULL;
}

static char *strdup_or_null(const char *s, bool *ok) {
        char *c = s ? strdup(s) : NULL;
        if (s && !c)
                *ok = false;
        return c;
}

/* Adds a (copied) to r's approvals where reading r back would put it: ordered by time, then
 * uid, as the store lists them. */
static int request_add_approval(Request *r, const Approval *a) {
        bool ok = true;
        Approval copy = {
                .approver = strdup_or_null(a->approver, &ok),
                .approver_uid = a->approver_uid,
                .comment = strdup_or_null(a->comment, &ok),
                .at = a->at,
                .by_rule = a->by_rule,
                .policy_version = strdup_or_null(a->policy_version, &ok),
                .statement = strdup_or_null(a->statement, &ok),
                .signature = strdup_or_null(a->signature, &ok),
                .signer_fingerprint = strdup_or_null(a->signer_fingerprint, &ok),
        };
        Approval *l = NULL;
        if (!ok || !(l = reallocarray(r->approvals, r->n_approvals + 1, sizeof(Approval)))) {
                free(copy.approver);
                free(copy.comment);
                free(copy.policy_version);
                free(copy.statement);
                free(copy.signature);
                free(copy.signer_fingerprint);
                return -ENOMEM;
        }
        r->approvals = l;
        size_t i = r->n_approvals;
        while (i > 0 && (l[i - 1].at > copy.at ||
                         (l[i - 1].at == copy.at && l[i - 1].approver_uid > copy.approver_uid))) {
                l[i] = l[i - 1];
                i--;
        }
        l[i] = copy;
        r->n_approvals++;
        return 0;
}

int grant_approve(Grants *g, const Identity *caller, int64_t id, const char *comment,
                  GrantError *e) {
        return grant_approve_saved(g, caller, id, comment, NULL, e);
}

int grant_approve_saved(Grants *g, const Identity *caller, int64_t id, const char *comment,
                        Request **ret, GrantError *e) {
        return grant_approve_signed(g, caller, id, comment, NULL, ret, e);
}

/* The end of the window an approval's stored statement was signed for; 0 when unsigned
 * (or unreadable, which cannot be: it was read before it was stored). */
static uint64_t signed_not_after(const Approval *a) {
        ApprovalStatement s;
        const char *why;
        if (!a->statement ||
            approval_statement_parse(a->statement, strlen(a->statement), &s, &why) < 0)
                return 0;
        uint64_t t = s.not_after;
        approval_statement_done(&s);
        return t;
}

static int add_signer_field(EffectQueue *q, const char *fingerprint) {
        _cleanup_free_ char *field = NULL;
        if (asprintf(&field, "JIT_SIGNER_FINGERPRINT=%s", fingerprint) < 0)
                return -ENOMEM;
        return effect_add_field(q, field);
}

int grant_approve_signed(Grants *g, const Identity *caller, int64_t id, const char *comment,
                         const GrantSignature *sig, Request **ret, GrantError *e) {
        _cleanup_tx_ GrantTx tx = {};
        _cleanup_(request_freep) Request *r = NULL;
        int k;

        if ((k = begin_on_request(g, &tx, id, &r, e)) < 0)
                return k;
        apply_held(g, r); /* a deny or cancel not saved yet has ended it all the same */

        /* The rule is judged as the policy stands now, not as it stood at filing. */
        const PolicyRule *rule = policy_find_rule(g->policy, r->rule);
        _cleanup_free_ uid_t *prior = calloc(r->n_approvals + 1, sizeof(uid_t));
        if (!prior)
                return fail(g, e, -ENOMEM, "approving");
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

        /* Signatures (docs/signed-approvals.md): required by the rule; a key counts once,
         * however many principals it is listed for; and every signed window must still
         * hold the grant this approval would start. */
        if (!sig && policy_rule_requires_signature(rule, false))
                return refuse(g, e, caller, r,
                              "rule \"%s\" requires signed approvals: approve with jitctl approve "
                              "--sign, with an SSH key of %s's in ssh-agent that %s lists",
                              r->rule, caller->name, policy_allowed_signers(g->policy));
        for (size_t i = 0; sig && i < r->n_approvals; i++)
                if (r->approvals[i].signer_fingerprint &&
                    STREQ(r->approvals[i].signer_fingerprint, sig->fingerprint))
                        return refuse(g, e, caller, r,
                                      "key %s already signed %s's approval of request %lld; a "
                                      "key counts once",
                                      sig->fingerprint, r->approvals[i].approver, (long long) id);
        if (v == APPROVAL_COMPLETE) {
                uint64_t ends = g->now(CLOCK_REALTIME) / 1000000 + r->duration;
                for (size_t i = 0; i < r->n_approvals; i++) {
                        uint64_t na = signed_not_after(&r->approvals[i]);
                        char t[64];
                        if (r->approvals[i].statement && na < ends)
                                return refuse(g, e, caller, r,
                                              "%s's signed approval of request %lld holds only "
                                              "for a grant ending by %s: the grant would end "
                                              "later",
                                              r->approvals[i].approver, (long long) id,
                                              format_rfc3339(na * 1000000, t, sizeof(t)));
                }
        }

        /* A policy changed while the broker was down was loaded without the sweep of a
         * reload: the cap is judged here again. */
        char scope_why[256];
        if (scope_refusal(rule, r, scope_why, sizeof(scope_why)))
                return refuse(g, e, caller, r, "the policy no longer allows request %lld: %s",
                              (long long) id, scope_why);
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
                .statement = sig ? (char *) sig->statement : NULL,
                .signature = sig ? (char *) sig->signature : NULL,
                .signer_fingerprint = sig ? (char *) sig->fingerprint : NULL,
        };
        if ((k = db_add_approval(g->db, id, &a)) < 0)
                return fail(g, e, k, "recording the approval");
        if (v == APPROVAL_COMPLETE &&
            ((k = request_activate(g, r)) < 0 || (k = db_update_request(g->db, r)) < 0))
                return fail(g, e, k, "activating the grant");
        json_object *details = audit_request_details(r);
        if (details) {
                json_object_object_add(details, "approver", json_object_new_string(caller->name));
                if (comment)
                        json_object_object_add(details, "comment", json_object_new_string(comment));
                if (sig)
                        json_object_object_add(details, "signer_fingerprint",
                                               json_object_new_string(sig->fingerprint));
        }
        if ((k = audit_append(g->db, JIT_EVENT_APPROVAL, caller->name, caller->uid, id, details)) <
                    0 ||
            (v == APPROVAL_COMPLETE &&
             (k = audit_append(g->db, JIT_EVENT_GRANTED, caller->name, caller->uid, id,
                               audit_request_details(r))) < 0))
                return fail(g, e, k, "writing the audit record");

        char field[JIT_USER_MAX + 32], d[DURATION_BUF_MAX];
        snprintf(field, sizeof(field), "JIT_APPROVER=%s", caller->name);
        if ((k = effect_stage(g->effects, JIT_EVENT_APPROVAL, LOG_NOTICE, r, caller->name, field,
                              "%s approved request %lld of %s (%zu of %u)", caller->name,
                              (long long) id, r->requester, r->n_approvals + 1,
                              r->approvals_required)) < 0 ||
            (sig && (k = add_signer_field(g->effects, sig->fingerprint)) < 0) ||
            (v == APPROVAL_COMPLETE &&
             (k = effect_stage(g->effects, JIT_EVENT_GRANTED, LOG_NOTICE, r, caller->name, field,
                               "%s granted to %s for %s (request %lld)", r->service, r->requester,
                               duration_format(r->duration, d, sizeof(d)), (long long) id)) < 0) ||
            (k = tx_commit(&tx)) < 0)
                return fail(g, e, k, "saving the approval");
        /* The request as it now stands in the store, for the reply: without it (no memory)
         * the caller reads it back. */
        if (ret && request_add_approval(r, &a) >= 0)
                *ret = TAKE_PTR(r);
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
                return fail(g, e, -EINVAL, "ending the request");
        }

        int write_error;
        if ((k = begin_for_end(g, &tx, id, &r, &write_error, e)) < 0)
                return k;
        apply_held(g, r); /* ended already, if not saved yet: a conflict like any other */
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
                return conflict(e, "request %lld is %s%s and cannot be %s", (long long) id,
                                request_state_to_string(r->state),
                                grants_held_find(g, id) ? " (not saved yet)" : "", done);
        bool was_active = r->state == REQUEST_ACTIVE;
        char message[2048];
        snprintf(message, sizeof(message), "%s %s request %lld of %s%s%s", caller->name, done,
                 (long long) id, r->requester, reason ? ": " : "", reason ? reason : "");
        HeldEnd end = {
                .event = event,
                .audit_event = ev,
                .ended_by = caller->name,
                .reason = (char *) reason,
                .actor = caller->name,
                .actor_uid = caller->uid,
                .message = message,
        };
        int error = 0;
        k = end_or_hold(g, &tx, r, &end, write_error, &error);
        if (k > 0)
                return held_reply(e, &end, was_active, done, error);
        if (k < 0)
                return fail(g, e, error < 0 ? error : k, "saving the change");
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
                return fail(g, e, -ENOMEM, "acknowledging");
        if ((k = db_update_request(g->db, r)) < 0 ||
            (k = audit_append(g->db, JIT_EVENT_ACKNOWLEDGED, caller->name, caller->uid, id,
                              audit_request_details(r))) < 0 ||
            (k = effect_stage(g->effects, JIT_EVENT_ACKNOWLEDGED, LOG_NOTICE, r, caller->name, NULL,
                              "%s acknowledged break-glass grant %lld of %s", caller->name,
                              (long long) id, r->requester)) < 0 ||
            (k = tx_commit(&tx)) < 0)
                return fail(g, e, k, "saving the acknowledgement");
        return 0;
}

/* ---- the broker's own changes ---- */

static int end_due_request(Grants *g, int64_t id) {
        _cleanup_tx_ GrantTx tx = {};
        _cleanup_(request_freep) Request *r = NULL;
        GrantError e;
        int k, write_error;

        if ((k = begin_for_end(g, &tx, id, &r, &write_error, &e)) < 0)
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
                        if (write_error < 0)
                                return write_error; /* nothing ends: retried on the next tick */
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
        else if (event == EVENT_EXPIRE && r->expires_at > now_real) {
                /* A fleet grant before its own time: fleet.max_offline cut it (docs/fleet.md
                 * "When PostgreSQL is away"). */
                uint64_t own = 0;
                if (db_fleet_grant_own_deadline(g->db, r->id, &own) == 0 && own > now_boot)
                        why = FLEET_OFFLINE_REASON;
        }

        char message[1024];
        if (event == EVENT_EXPIRE)
                snprintf(message, sizeof(message), "grant %lld (%s for %s) ended: %s",
                         (long long) r->id, r->service, r->requester, why);
        else
                snprintf(message, sizeof(message),
                         "request %lld (%s for %s) timed out without enough approvals",
                         (long long) r->id, r->service, r->requester);
        HeldEnd end = {
                .event = event,
                .audit_event = event == EVENT_EXPIRE ? JIT_EVENT_EXPIRED : JIT_EVENT_TIMED_OUT,
                .ended_by = (char *) "broker",
                .reason = (char *) why,
                .actor = (char *) "broker",
                .actor_uid = -1,
                .message = message,
        };
        int error = 0;
        k = end_or_hold(g, &tx, r, &end, write_error, &error);
        /* Held (1): the check refuses it anyway, by its deadlines; the retry writes it. */
        return k < 0 ? (error < 0 ? error : k) : 0;
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
                if (grants_held_find(g, ids[i]))
                        continue; /* ended in memory; the retry writes it */
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
        if (scope_refusal(rule, r, buf, len))
                return buf;
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
        char reason[640], message[1024];
        bool active = r->state == REQUEST_ACTIVE;
        int k, error = 0;

        snprintf(reason, sizeof(reason), "the new policy (version %.12s) no longer allows it: %s",
                 g->policy->hash, why);
        snprintf(message, sizeof(message), "%s %lld of %s %s: %s", active ? "grant" : "request",
                 (long long) r->id, r->requester, active ? "withdrawn" : "refused", reason);
        HeldEnd end = {
                .event = active ? EVENT_REVOKE : EVENT_DENY,
                .audit_event = JIT_EVENT_WITHDRAWN,
                .ended_by = (char *) "broker",
                .reason = reason,
                .actor = (char *) "broker",
                .actor_uid = -1,
                .message = message,
        };
        k = tx_begin(g, &tx);
        k = end_or_hold(g, &tx, r, &end, k < 0 ? store_error(g, k) : 0, &error);
        return k < 0 ? (error < 0 ? error : k) : 0;
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
                /* Break-glass grants answer to break_glass, not to a rule: they run out. Ends
                 * held in memory are ended already. */
                if (r->break_glass || grants_held_find(g, r->id) ||
                    !still_allowed(g, r, why, sizeof(why)))
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
        apply_held(g, r); /* a grant ended in memory is not used up: its end is written */
        if (!r->once || r->state != REQUEST_ACTIVE)
                return tx_commit(&tx); /* nothing to use up */
        HeldEnd end = {
                .event = EVENT_CONSUME,
                .state = REQUEST_CONSUMED,
                .audit_event = JIT_EVENT_CONSUMED,
                .at = g->now(CLOCK_REALTIME),
                .ended_by = (char *) "broker",
                .reason = (char *) "its one session closed",
                .actor = (char *) "broker",
                .actor_uid = -1,
        };
        if ((k = request_end(g, r, &end, NULL)) < 0 ||
            (k = effect_stage(g->effects, JIT_EVENT_CONSUMED, LOG_NOTICE, r, "broker", NULL,
                              "one-shot grant %" PRId64 " of %s consumed: its session closed",
                              r->id, r->requester)) < 0 ||
            (k = tx_commit(&tx)) < 0)
                return fail(g, e, k, "using up the one-shot grant");
        return 0;
}

/* A command's details for its audit record and journal entry. */
static json_object *command_details(const JitCommandLine *cl, pid_t pid) {
        json_object *o = json_object_new_object(), *argv = json_object_new_array();
        if (!o || !argv) {
                json_object_put(o);
                json_object_put(argv);
                return NULL;
        }
        for (size_t i = 0; cl->argv[i]; i++)
                json_object_array_add(argv, json_object_new_string(cl->argv[i]));
        json_object_object_add(o, "command", json_object_new_string(cl->command));
        json_object_object_add(o, "argv", argv);
        json_object_object_add(o, "run_as_user", json_object_new_string(cl->run_as_user ?: "root"));
        if (cl->run_as_group)
                json_object_object_add(o, "run_as_group", json_object_new_string(cl->run_as_group));
        if (cl->cwd)
                json_object_object_add(o, "cwd", json_object_new_string(cl->cwd));
        json_object_object_add(o, "pid", json_object_new_int64(pid));
        return o;
}

int grant_use_command(Grants *g, int64_t id, const JitCommandLine *cl, pid_t pid, GrantError *e) {
        _cleanup_tx_ GrantTx tx = {};
        _cleanup_(request_freep) Request *r = NULL;
        _cleanup_free_ char *line = NULL, *f_command = NULL, *f_run_as = NULL, *f_cwd = NULL;
        int k;

        if ((k = begin_on_request(g, &tx, id, &r, e)) < 0)
                return k;
        apply_held(g, r);
        if (r->state != REQUEST_ACTIVE)
                return conflict(e, "request %" PRId64 " is %s, not an active grant", id,
                                request_state_to_string(r->state));
        if (!(line = jit_command_line_quote(cl->argv)) ||
            asprintf(&f_command, "JIT_COMMAND=%s", cl->command) < 0 ||
            asprintf(&f_run_as, "JIT_RUN_AS=%s%s%s", cl->run_as_user ?: "root",
                     cl->run_as_group ? ":" : "", cl->run_as_group ?: "") < 0 ||
            asprintf(&f_cwd, "JIT_CWD=%s", cl->cwd ?: "") < 0)
                return fail(g, e, -ENOMEM, "recording the command");
        if ((k = audit_append(g->db, JIT_EVENT_COMMAND_USED, r->requester, r->requester_uid, id,
                              command_details(cl, pid))) < 0)
                return fail(g, e, k, "writing the audit record");
        if ((k = effect_stage(g->effects, JIT_EVENT_COMMAND_USED, LOG_NOTICE, r, r->requester,
                              f_command, "%s ran %s as %s under grant %" PRId64 " (sudo, pid %d)",
                              r->requester, line, cl->run_as_user ?: "root", id, (int) pid)) < 0 ||
            (k = effect_add_field(g->effects, f_run_as)) < 0 ||
            (k = effect_add_field(g->effects, f_cwd)) < 0)
                return fail(g, e, k, "recording the command");
        /* A one-shot command grant is spent by the command it allowed: a second sudo of it
         * is refused at once, whether or not the PAM session line tracks the first. */
        if (r->once && r->command) {
                HeldEnd end = {
                        .event = EVENT_CONSUME,
                        .state = REQUEST_CONSUMED,
                        .audit_event = JIT_EVENT_CONSUMED,
                        .at = g->now(CLOCK_REALTIME),
                        .ended_by = (char *) "broker",
                        .reason = (char *) "its one command ran",
                        .actor = (char *) "broker",
                        .actor_uid = -1,
                };
                if ((k = request_end(g, r, &end, NULL)) < 0 ||
                    (k = effect_stage(g->effects, JIT_EVENT_CONSUMED, LOG_NOTICE, r, "broker", NULL,
                                      "one-shot grant %" PRId64 " of %s consumed: sudo ran %s",
                                      r->id, r->requester, line)) < 0)
                        return fail(g, e, k, "using up the one-shot grant");
        }
        if ((k = tx_commit(&tx)) < 0)
                return fail(g, e, k, "recording the command");
        return 0;
}
