/* SPDX-License-Identifier: MIT */
/* The grant lifecycle core: the only code that changes a request. Each change is one
 * transaction that reads the request, asks the state machine (request-state.h), writes the
 * request and its audit record, and stages its effects (effects.h), which become due only
 * when the transaction commits. Authorization of every change is decided here too; the
 * protocol handlers (broker-ops.c) only read fields and turn results into replies.
 *
 * Functions return 0 (or a count), or a negative errno with *e describing the refusal or
 * failure for the reply: -EPERM refused (policy, permission), -EBUSY conflict (wrong state),
 * -ENOENT no such request, anything else an internal failure (e->doing says of what). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "effects.h"
#include "policy.h"
#include "protocol.h"
#include "store.h"
#include "users.h"

typedef struct Grants {
        BrokerDb *db;
        const Policy *policy; /* the policy in force; the broker swaps it on reload */
        const char *boot_id;
        EffectQueue *effects;
        /* now_usec(), unless a test steps the clocks itself. */
        uint64_t (*now)(clockid_t clock);
        /* Failures of the broker's own batch changes, which have no caller to tell: the
         * daemon logs them. id 0 when the failure is not about one request. */
        void (*report)(void *userdata, int error, const char *what, int64_t id);
        void *report_userdata;
        unsigned tx_depth; /* nested transactions join the outermost */
} Grants;

typedef struct GrantError {
        JitError code;     /* for the reply */
        const char *doing; /* internal failures: "saving the approval" */
        char message[512];
} GrantError;

/* What a requester asks for. duration 0: the rule's default. */
typedef struct GrantAsk {
        const char *service;
        uint64_t duration;
        const char *reason;
        const char *ticket;
        bool once;
} GrantAsk;

/* Files a request under the first matching rule (or an active grant, when the rule
 * approves by itself). */
int grant_file(Grants *g, const Identity *caller, const GrantAsk *ask, int64_t *ret_id,
               GrantError *e);
/* An emergency grant where break_glass allows it: active at once, loudly recorded. */
int grant_break_glass(Grants *g, const Identity *caller, const GrantAsk *ask, int64_t *ret_id,
                      GrantError *e);
/* One approval; the last one required activates the grant. */
int grant_approve(Grants *g, const Identity *caller, int64_t id, const char *comment,
                  GrantError *e);
/* deny (approvers, root), cancel (requester, root) or revoke (requester, approvers, root). */
int grant_end(Grants *g, const Identity *caller, int64_t id, RequestEvent event, const char *reason,
              GrantError *e);
/* A second person reviews a break-glass grant. */
int grant_acknowledge(Grants *g, const Identity *caller, int64_t id, GrantError *e);

/* The broker's own changes. */
/* Ends what is due: expired grants, pending requests that waited too long, grants of
 * another boot; re-bases pending requests of another boot. Returns 0 or the last error. */
int grant_end_due(Grants *g);
/* After a reload: refuses pending requests and withdraws grants the new policy no longer
 * allows (break-glass grants run out by themselves). */
void grant_withdraw_disallowed(Grants *g);
/* A one-shot grant whose session closed is used up. Joins an open transaction. */
int grant_consume(Grants *g, int64_t id, GrantError *e);

/* Transactions of the core, also for callers that record something in the same
 * transaction as a change of the core (sessions). Nested calls join the outermost. */
int grants_begin(Grants *g);
int grants_commit(Grants *g);
void grants_rollback(Grants *g);

/* The transaction guard: rolled back when it goes out of scope without a commit. */
typedef struct GrantTx {
        Grants *g;
} GrantTx;
static inline void grant_tx_release(GrantTx *t) {
        if (t->g)
                grants_rollback(t->g);
}
#define _cleanup_tx_ __attribute__((cleanup(grant_tx_release)))

/* Who may see a request: root, its requester, an approver of its rule, and for break-glass
 * grants those who may review them. */
bool grant_may_see(const Grants *g, const Identity *caller, const Request *r);
