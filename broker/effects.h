/* SPDX-License-Identifier: MIT */
/* What follows a committed change: its journald entry, and for a grant that ended, its
 * sessions. The lifecycle core (grant.c) stages effects while its transaction is open; the
 * commit makes them due and a rollback drops them, so nothing is announced that was not
 * saved. The daemon runs what is due once per event-loop iteration (brokerd.c), which
 * keeps the core free of journald, timers and sessions. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "events.h"
#include "store.h"

#define EFFECT_FIELDS_MAX 4

typedef struct Effect {
        JitEvent event;
        int priority;
        Request *request; /* owned copy, or NULL */
        char *actor;
        /* extra "KEY=value" journal fields; NULL-terminated (field is the first) */
        union {
                char *field;
                char *fields[EFFECT_FIELDS_MAX + 1];
        };
        char *message;
        bool ends_grant; /* the grant ended: act on its sessions (settings.on_expiry) */
} Effect;

/* Refusals and denied checks are journal entries any user can cause at will, with their own
 * text in them: each uid gets at most LOG_LIMIT_BURST of each kind per LOG_LIMIT_INTERVAL
 * (a window, as journald's own rate limit), and what was held back is summed up in one
 * entry after the window ends: "suppressed N refusals of uid U" with JIT_SUPPRESSED=N and
 * JIT_UID=U, under the MESSAGE_ID of the kind. The replies to the callers are unaffected.
 * The check is answered on another thread than the main loop: the limiter has a lock of its
 * own, and only the main loop posts the summaries (effects_flush_suppressed()). */
#define LOG_LIMIT_BURST 10
#define LOG_LIMIT_INTERVAL_USEC (10ULL * 1000000ULL)
#define LOG_LIMIT_SLOTS 1024

typedef struct LogLimit {
        uid_t uid; /* (uid_t) -1: users that do not exist */
        JitEvent event;
        uint64_t window_start; /* CLOCK_BOOTTIME usec; 0: no window */
        unsigned logged;
        unsigned suppressed; /* in this window */
        unsigned pending;    /* in windows that ended, not summed up yet */
} LogLimit;

typedef struct LogLimiter {
        pthread_mutex_t lock; /* zero-initialized is unlocked */
        LogLimit slots[LOG_LIMIT_SLOTS];
} LogLimiter;

typedef struct EffectQueue {
        Effect *items;
        size_t n; /* items[0..n_due) are committed, the rest staged */
        size_t n_due;
        size_t allocated;
        bool state_changed; /* a deadline or a count moved: timers and STATUS need a look */
        /* Called when effects become due (the daemon enables its deferred source). */
        void (*wakeup)(void *userdata);
        void *userdata;
        LogLimiter limiter; /* refusals and denied checks, per uid and kind */
} EffectQueue;

/* Stages an effect; r is copied (may be NULL). Returns 0 or -ENOMEM. */
int effect_stage(EffectQueue *q, JitEvent event, int priority, const Request *r, const char *actor,
                 const char *field, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
/* Adds an effect that is due at once, whatever the transaction does: a refusal, which
 * changes nothing and is logged all the same. */
int effect_post(EffectQueue *q, JitEvent event, int priority, const Request *r, const char *actor,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* effect_post() for an end that is enforced before it is saved (grant.c holds it): the
 * grant's sessions are acted on at once, whatever the transaction did. */
int effect_post_end(EffectQueue *q, JitEvent event, int priority, const Request *r,
                    const char *actor, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Adds a "KEY=value" journal field to the last staged effect (up to EFFECT_FIELDS_MAX). */
int effect_add_field(EffectQueue *q, const char *field);
/* Marks the last staged effect as ending its grant. */
void effect_ends_grant(EffectQueue *q);

/* Whether an entry of this kind (JIT_EVENT_REFUSED, JIT_EVENT_ACCESS_DENIED) about uid may
 * go to the journal now (CLOCK_BOOTTIME usec). Any thread. */
bool log_limit_allowed(LogLimiter *l, JitEvent event, uid_t uid, uint64_t now);
/* The same, with q's limiter. */
bool effect_log_allowed(EffectQueue *q, JitEvent event, uid_t uid, uint64_t now);
/* Posts the summaries of the windows that have ended by now (the main loop, every
 * LOG_LIMIT_INTERVAL). Returns when the next window with entries held back ends
 * (CLOCK_BOOTTIME usec), or 0 when none has any. */
uint64_t effects_flush_suppressed(EffectQueue *q, uint64_t now);

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
