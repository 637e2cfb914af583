/* SPDX-License-Identifier: MIT */
/* What follows a committed change: its journald entry, and for a grant that ended, its
 * sessions. The lifecycle core (grant.c) stages effects while its transaction is open; the
 * commit makes them due and a rollback drops them, so nothing is announced that was not
 * saved. The daemon runs what is due once per event-loop iteration (brokerd.c), which
 * keeps the core free of journald, timers and sessions. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "events.h"
#include "store.h"

typedef struct Effect {
        JitEvent event;
        int priority;
        Request *request; /* owned copy, or NULL */
        char *actor;
        char *field; /* one extra "KEY=value" journal field, or NULL */
        char *message;
        bool ends_grant; /* the grant ended: act on its sessions (settings.on_expiry) */
} Effect;

typedef struct EffectQueue {
        Effect *items;
        size_t n; /* items[0..n_due) are committed, the rest staged */
        size_t n_due;
        size_t allocated;
        bool state_changed; /* a deadline or a count moved: timers and STATUS need a look */
        /* Called when effects become due (the daemon enables its deferred source). */
        void (*wakeup)(void *userdata);
        void *userdata;
} EffectQueue;

/* Stages an effect; r is copied (may be NULL). Returns 0 or -ENOMEM. */
int effect_stage(EffectQueue *q, JitEvent event, int priority, const Request *r, const char *actor,
                 const char *field, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
/* Adds an effect that is due at once, whatever the transaction does: a refusal, which
 * changes nothing and is logged all the same. */
int effect_post(EffectQueue *q, JitEvent event, int priority, const Request *r, const char *actor,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Marks the last staged effect as ending its grant. */
void effect_ends_grant(EffectQueue *q);

/* Something outside a transaction of the core moved a deadline (a session opened): the
 * timers and STATUS need a look. */
void effects_changed(EffectQueue *q);

/* The transaction committed: staged effects become due. */
void effects_commit(EffectQueue *q);
/* The transaction rolled back: staged effects are dropped. */
void effects_rollback(EffectQueue *q);

/* Hands the due effects to the caller (who frees them with effects_free()); staged ones
 * stay. */
Effect *effects_take_due(EffectQueue *q, size_t *ret_n);
void effects_free(Effect *items, size_t n);
void effect_queue_done(EffectQueue *q);
