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

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "command-line.h"
#include "effects.h"
#include "policy.h"
#include "protocol.h"
#include "store.h"
#include "users.h"

/* How often the broker tries again to write an end it holds (brokerd.c), as the replies
 * that tell of one say. */
#define GRANT_RETRY_USEC (5ULL * 1000000ULL)
#define GRANT_RETRY_TEXT "every 5 s"

/* Why a fleet grant ended before its time when fleet.max_offline passed without a
 * successful poll: its end reason, audit record and journal entry say this. */
#define FLEET_OFFLINE_REASON "fleet store unreachable for longer than max_offline"

/* An end (revoke, deny, cancel, withdrawal, expiry, timeout) that could not be saved: it is
 * enforced from memory at once (the check, session-open and every change of the core treat
 * the request as ended) and written, with its original time and actor, as soon as the
 * database takes it (grants_retry_held()). */
typedef struct HeldEnd {
        int64_t id;
        RequestEvent event;   /* the state machine's move */
        RequestState state;   /* where it ends */
        JitEvent audit_event; /* its audit record and journal entry */
        uint64_t at;          /* realtime usec of the end: the request's ended_at */
        char *ended_by;
        char *reason;
        char *actor;
        int64_t actor_uid;
        char *message; /* the journal entry's text */
        int error;     /* why the last write failed */
        unsigned attempts;
} HeldEnd;

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
        /* Bytes available and total where the database lives (settings.disk_reserve);
         * db_disk_space() unless a test injects it. */
        int (*disk_space)(void *userdata, uint64_t *ret_available, uint64_t *ret_total);
        void *disk_space_userdata;
        unsigned tx_depth; /* nested transactions join the outermost */
        HeldEnd *held;     /* ends enforced but not saved yet, oldest first */
        size_t n_held;
        /* Taken by the core when it changes held, and by grants_end_is_held(), so that a
         * check answered on another thread sees them too (zero-initialized is unlocked). */
        pthread_mutex_t held_lock;
        unsigned held_changes; /* counts changes of held, for the daemon's copy of them */
        uint64_t held_saved;   /* ends let go of once saved (under held_lock) */
        int64_t *used;         /* one-shot grants used up in memory (grants_mark_used()) */
        size_t n_used;
        /* What is saved with every change, in its own transaction: called by grants_commit()
         * just before the outermost commit, when the effects the transaction staged are
         * effects->items[n_due..n). A failure fails the commit, and the caller's guard rolls
         * the whole change back. The daemon writes the notification outbox here (outbox.h);
         * NULL: nothing. */
        int (*before_commit)(struct Grants *g, void *userdata);
        void *before_commit_userdata;
        /* Called by grants_begin() before the outermost transaction begins: the daemon
         * writes the session records it answered before writing them (broker-sessions.h),
         * so that the audit log keeps the order things happened in. NULL: nothing. */
        void (*before_begin)(struct Grants *g, void *userdata);
} Grants;

typedef struct GrantError {
        JitError code;     /* for the reply */
        const char *doing; /* internal failures: "saving the approval" */
        bool held;         /* an end that is enforced but not saved yet (HeldEnd) */
        char message[512];
} GrantError;

/* What a requester asks for. duration 0: the rule's default. */
typedef struct GrantAsk {
        const char *service;
        uint64_t duration;
        const char *reason;
        const char *ticket;
        bool once;
        const JitCommandLine *command; /* a grant for this command line only (sudo); NULL: all */
        const char *command_identity;  /* jit_program_identity() of command->command */
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
/* grant_approve(), and *ret (when not NULL, and memory allows; else left untouched) the
 * request as saved, the new approval included: what reading it back would give. */
int grant_approve_saved(Grants *g, const Identity *caller, int64_t id, const char *comment,
                        Request **ret, GrantError *e);
/* A signature the daemon checked against allowed_signers (approval-signature.h) over the
 * statement it built itself for this request, approver and window. */
typedef struct GrantSignature {
        const char *statement; /* the bytes signed */
        const char *signature; /* armored sshsig */
        const char *fingerprint;
        uint64_t not_after; /* the signed window's end, seconds since the epoch */
} GrantSignature;
/* grant_approve_saved() with the approval's signature (NULL: unsigned). Refuses an unsigned
 * approval under a rule that requires signatures, a key that signed an approval of the
 * request already (a key counts once), and the last approval when a signed window before it
 * ends before the grant would. */
int grant_approve_signed(Grants *g, const Identity *caller, int64_t id, const char *comment,
                         const GrantSignature *sig, Request **ret, GrantError *e);
/* deny (approvers, root), cancel (requester, root) or revoke (requester, approvers, root).
 * When the change cannot be saved it is held (HeldEnd): enforced at once and retried; the
 * result is then the store's error with e->held set and e->message saying exactly that
 * (code internal). */
int grant_end(Grants *g, const Identity *caller, int64_t id, RequestEvent event, const char *reason,
              GrantError *e);
/* A grant carried here in a bundle (jitctl grant import; broker-bundle.c verified its signed
 * approvals against this host's policy and allowed_signers): active from now for
 * ask->duration under rule, with the approvals given, recorded as JIT_EVENT_GRANTED by
 * importer with the origin and the signers. */
typedef struct ImportGrantAsk {
        const char *origin;         /* the bundle's origin host, as it says */
        const char *origin_request; /* the request id the statements name ("42", "f:42") */
        const Approval *approvals;
        size_t n_approvals;
} ImportGrantAsk;
int grant_import_activate(Grants *g, const Identity *importer, const Identity *requester,
                          const PolicyRule *rule, const GrantAsk *ask, const ImportGrantAsk *ia,
                          int64_t *ret_id, GrantError *e);
/* A second person reviews a break-glass grant. */
int grant_acknowledge(Grants *g, const Identity *caller, int64_t id, GrantError *e);

/* A fleet request whose approvals this host's policy accepts (broker-fleet.c decided it):
 * an active grant for requester under rule, ending at approved_at + ask->duration (realtime
 * usec), with the approvals given, recorded as JIT_EVENT_FLEET_GRANTED with the fleet id and
 * origin; its deadline_boot is the earlier of that and fa->honoured_until_boot; the mapping fleet
 * id -> local id is saved in the same transaction. -ETIME when that deadline has passed already. */
typedef struct FleetGrantAsk {
        const char *fleet_host; /* this host's fleet name */
        int64_t fleet_id;
        const char *origin_host;
        const char *selector;
        uint64_t approved_at;
        const Approval *approvals;
        size_t n_approvals;
        /* fleet.max_offline: honoured on this boot's CLOCK_BOOTTIME until at most this (the
         * last successful poll + max_offline; the next ones push it forward); 0: no limit */
        uint64_t honoured_until_boot;
} FleetGrantAsk;
int grant_fleet_activate(Grants *g, const Identity *requester, const PolicyRule *rule,
                         const GrantAsk *ask, const FleetGrantAsk *fa, int64_t *ret_id,
                         GrantError *e);

/* The broker's own changes. */
/* Ends what is due: expired grants, pending requests that waited too long, grants of
 * another boot; re-bases pending requests of another boot. Returns 0 or the last error. */
int grant_end_due(Grants *g);
/* After a reload: refuses pending requests and withdraws grants the new policy no longer
 * allows (break-glass grants run out by themselves). */
void grant_withdraw_disallowed(Grants *g);
/* sudo runs cl under grant id (the approval plugin asked, from sudo's pid): the use is
 * recorded (audit record and journal entry with the command, run-as and cwd), and a
 * one-shot command grant is consumed by it. -EBUSY when the grant is no longer active. */
int grant_use_command(Grants *g, int64_t id, const JitCommandLine *cl, pid_t pid, GrantError *e);
/* A one-shot grant whose session closed is used up. Joins an open transaction. */
int grant_consume(Grants *g, int64_t id, GrantError *e);

/* Ends held in memory because writing them failed (HeldEnd). */
/* The held end of request id, or NULL (the core's own thread only). */
const HeldEnd *grants_held_find(const Grants *g, int64_t id);
/* Whether request id has ended in memory (a held end), or is a one-shot grant used up in
 * memory (its one session could not be recorded: grants_mark_used()). Every answer that
 * lets a user in (the check, session-open), from any thread, must refuse such a grant. */
bool grants_ended_in_memory(Grants *g, int64_t id);
/* How many held ends have been let go of once saved, so far. An answer read while this
 * moved may predate an end no longer held: read it again. Any thread. */
uint64_t grants_held_saved(Grants *g);
/* One-shot grant id has a session the store could not record: it serves no second one. */
int grants_mark_used(Grants *g, int64_t id);
/* Writes the held ends; each that is saved gets its audit record and journal entry then.
 * Returns how many are still held. */
size_t grants_retry_held(Grants *g);
/* Holds h again (a copy), as a broker that stopped before it was written kept it (the
 * daemon keeps the held ends in its runtime directory): 1 when it is held, 0 when the
 * request has moved on meanwhile (it was saved after all, or is gone). Journal entry only;
 * the daemon ends the grant's sessions once it holds them again. */
int grants_hold_again(Grants *g, const HeldEnd *h);
/* Frees the held ends (the daemon stops, a test ends). */
void grants_done(Grants *g);
/* "the disk is full", "the database is read-only", "the database is locked by another
 * process", or strerror(): why a write of the store failed (error as db_failure_errno()
 * gives it). */
const char *grant_store_failure(int error);

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
