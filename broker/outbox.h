/* SPDX-License-Identifier: MIT */
/* The notification outbox (schema 7, table outbox): one row per event and hook that wants
 * it, written in the transaction of the change it tells of (outbox_stage(), which the core
 * calls just before its commit), so that nothing is announced that was not saved and
 * nothing saved goes unannounced. The delivery engine (notify.c) runs the hooks and takes
 * the rows out once delivered. Store level: no logging, no event loop. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "effects.h"
#include "events.h"
#include "policy.h"
#include "store.h"

/* Rows kept at most. A change never fails because notifications back up: past this, the
 * oldest rows are dropped to make room (a notify-dropped entry says how many). */
#define OUTBOX_ROWS_MAX 10000
/* An event's JSON document, at most; a larger one is written without its approvals and
 * its rule's approvers (which are what can grow). */
#define OUTBOX_PAYLOAD_MAX (48U * 1024U)
/* Approver entries of the rule put in a document; more are cut ("approvers_truncated"). */
#define OUTBOX_APPROVERS_MAX 64

typedef struct OutboxRow {
        int64_t id;
        uint64_t created_at; /* realtime usec */
        char *hook;          /* the hook's identity (outbox_hook_identity()) */
        unsigned hook_index; /* its place in the policy when the row was written */
        char *event;         /* notify_event_to_string() */
        int64_t request_id;
        char *payload; /* the event's JSON document, without its id */
        unsigned attempts;
        uint64_t next_attempt_at; /* realtime usec */
        char *last_error;
} OutboxRow;

/* The notify event an effect of the core tells of, or _NOTIFY_EVENT_INVALID for one no hook
 * is told about. r is the request as the effect carries it: an approval that completed the
 * request is told as "approved" only. */
NotifyEvent outbox_event_of(JitEvent e, const Request *r);

/* A hook is known by its command and arguments: a JSON array of them (malloc'd, NULL on
 * ENOMEM). Rows follow the hook of the same identity across a reload. */
char *outbox_hook_identity(const PolicyNotifyHook *h);

/* The command a person runs next about request r after event ev: "jitctl approve 42" while
 * it waits for approvals, "jitctl ack 42" for a break-glass grant not reviewed yet, else
 * "jitctl show 42". */
void outbox_next_command(NotifyEvent ev, const Request *r, char *buf, size_t len);

/* The event's JSON document (docs/notify.md): e is the effect (its request, actor and
 * message), approvals the request's approvals as saved now (NULL: those e carries), host
 * this host's name, now the time of the event (realtime usec). Returns 0 and a malloc'd
 * string, or -ENOMEM. */
int outbox_payload(const Policy *p, NotifyEvent ev, const Effect *e, const Request *approvals,
                   const char *host, uint64_t now, char **ret);

/* Inside the core's open transaction, just before its commit: a row for every effect staged
 * in q (items[n_due..n)) and every hook of p that wants its event, due at once. Past
 * OUTBOX_ROWS_MAX the oldest rows are deleted first and a JIT_EVENT_NOTIFY_DROPPED effect
 * staged that says so. Returns the number of rows written, or -errno (the transaction must
 * then roll back). */
int outbox_stage(BrokerDb *db, const Policy *p, EffectQueue *q, uint64_t now);

/* The oldest due row (next_attempt_at <= now) of each hook, by id: malloc'd array. */
int outbox_due_per_hook(BrokerDb *db, uint64_t now, int64_t **ret, size_t *ret_n);
/* The earliest next_attempt_at after now: 1 and *ret, or 0 when there is none. */
int outbox_next_due(BrokerDb *db, uint64_t now, uint64_t *ret);
/* -ENOENT when the row is gone. */
int outbox_get(BrokerDb *db, int64_t id, OutboxRow *ret);
/* Delivered (or given up): the row leaves. 0 also when it was gone already. */
int outbox_delete(BrokerDb *db, int64_t id);
/* A failed attempt: attempts, the next try and why (may be NULL). -ENOENT when the row is
 * gone. */
int outbox_failed(BrokerDb *db, int64_t id, unsigned attempts, uint64_t next_attempt_at,
                  const char *error);
/* The hooks rows are kept for, with how many each: malloc'd arrays (outbox_hooks_free()). */
int outbox_hooks(BrokerDb *db, char ***ret_hooks, int64_t **ret_counts, size_t *ret_n);
void outbox_hooks_free(char **hooks, int64_t *counts, size_t n);
/* Deletes every row of hook; returns how many. */
int outbox_drop_hook(BrokerDb *db, const char *hook);
int outbox_count(BrokerDb *db, int64_t *ret);
void outbox_row_done(OutboxRow *r);
