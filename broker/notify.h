/* SPDX-License-Identifier: MIT */
/* Delivering notifications: the hooks of the policy's notify section, run for the rows of
 * the outbox (outbox.h) on the main loop, never in the way of a check or a change. A row
 * leaves the outbox when its hook exits 0; a failure or a timeout is retried later with a
 * growing wait, so every event reaches every hook that wants it at least once, across
 * restarts of the broker (docs/notify.md). */
#pragma once

#include <stddef.h>
#include <systemd/sd-event.h>

#include "grant.h"
#include "policy.h"
#include "store.h"

/* Hooks running at once, in all. Each hook runs one event at a time, so that it sees its
 * events in order while it succeeds. */
#define NOTIFY_RUNNING_MAX 4
/* The last bytes of a hook's output kept for the journal. */
#define NOTIFY_OUTPUT_KEEP 4096
/* After a failure the wait is the hook's retry, doubled for each failure of the same
 * notification, up to this. */
#define NOTIFY_BACKOFF_MAX_USEC (3600ULL * 1000000ULL)
/* A notification is given up after this many failed attempts... */
#define NOTIFY_ATTEMPTS_MAX 30
/* ... or when an attempt fails this long after the event. */
#define NOTIFY_GIVE_UP_USEC (24ULL * 3600ULL * 1000000ULL)

typedef struct Notifier Notifier;

/* A notifier on e's loop for the outbox of db; it runs nothing until a policy is set. The
 * main loop's thread must have SIGCHLD blocked (sd_event_add_child()). */
int notifier_new(sd_event *e, BrokerDb *db, Notifier **ret);
/* The policy in force, at start and after each reload (p outlives the next call). Rows of a
 * hook that p no longer has (same command and args) are dropped, with a notify-dropped
 * entry; rows of the hooks it keeps are delivered with their new settings. */
void notifier_set_policy(Notifier *n, const Policy *p);
/* Starts what is due, when something may be: after effects ran. NULL: nothing. */
void notifier_kick(Notifier *n);
/* Stops: running hooks are killed (their rows stay, for the next start). NULL-safe. */
Notifier *notifier_free(Notifier *n);
/* Grants.before_commit for the outbox: writes the rows of the effects the transaction
 * staged (outbox_stage()). n may be NULL (the broker is stopping): the rows are written all
 * the same, for the next start. */
int notifier_stage(Notifier *n, Grants *g);
/* How many hooks are running. */
size_t notifier_running(const Notifier *n);
