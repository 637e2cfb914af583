/* SPDX-License-Identifier: MIT */
#include "effects.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "cleanup.h"

/* Effects of one transaction: a handful; this only bounds a runaway loop. */
#define EFFECTS_MAX 4096

static void effect_clear(Effect *e) {
        request_free(e->request);
        free(e->actor);
        for (size_t i = 0; i < EFFECT_FIELDS_MAX; i++)
                free(e->fields[i]);
        free(e->message);
        *e = (Effect){};
}

static int effect_add(EffectQueue *q, JitEvent event, int priority, const Request *r,
                      const char *actor, const char *field, const char *fmt, va_list ap)
        __attribute__((format(printf, 7, 0)));
static int effect_add(EffectQueue *q, JitEvent event, int priority, const Request *r,
                      const char *actor, const char *field, const char *fmt, va_list ap) {
        if (q->n >= EFFECTS_MAX)
                return -ENOBUFS;
        if (q->n == q->allocated) {
                size_t n = q->allocated ? q->allocated * 2 : 16;
                Effect *items = reallocarray(q->items, n, sizeof(Effect));
                if (!items)
                        return -ENOMEM;
                q->items = items;
                q->allocated = n;
        }
        Effect e = { .event = event, .priority = priority };
        if (vasprintf(&e.message, fmt, ap) < 0) {
                e.message = NULL;
                return -ENOMEM;
        }
        if ((r && !(e.request = request_dup(r))) || (actor && !(e.actor = strdup(actor))) ||
            (field && !(e.field = strdup(field)))) {
                effect_clear(&e);
                return -ENOMEM;
        }
        q->items[q->n++] = e;
        return 0;
}

int effect_stage(EffectQueue *q, JitEvent event, int priority, const Request *r, const char *actor,
                 const char *field, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int k = effect_add(q, event, priority, r, actor, field, fmt, ap);
        va_end(ap);
        return k;
}

/* The effect just added becomes due at once, ahead of the staged ones. */
static Effect *make_due(EffectQueue *q) {
        assert(q->n_due < q->n);
        Effect posted = q->items[q->n - 1];
        q->items[q->n - 1] = q->items[q->n_due];
        q->items[q->n_due] = posted;
        if (q->wakeup)
                q->wakeup(q->userdata);
        return &q->items[q->n_due++];
}

int effect_post(EffectQueue *q, JitEvent event, int priority, const Request *r, const char *actor,
                const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int k = effect_add(q, event, priority, r, actor, NULL, fmt, ap);
        va_end(ap);
        if (k < 0)
                return k;
        (void) make_due(q);
        return 0;
}

int effect_post_end(EffectQueue *q, JitEvent event, int priority, const Request *r,
                    const char *actor, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int k = effect_add(q, event, priority, r, actor, NULL, fmt, ap);
        va_end(ap);
        if (k < 0)
                return k;
        make_due(q)->ends_grant = true;
        return 0;
}

/* ---- refusals at a bounded rate ---- */

static const char *suppressed_what(JitEvent event) {
        return event == JIT_EVENT_ACCESS_DENIED ? "denied checks" : "refusals";
}

/* A due entry with two fields of its own. */
static int post_fields(EffectQueue *q, JitEvent event, int priority, const char *field1,
                       const char *field2, const char *fmt, ...)
        __attribute__((format(printf, 6, 7)));
static int post_fields(EffectQueue *q, JitEvent event, int priority, const char *field1,
                       const char *field2, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int k = effect_add(q, event, priority, NULL, "broker", field1, fmt, ap);
        va_end(ap);
        if (k < 0)
                return k;
        Effect *e = &q->items[q->n - 1];
        if (!(e->fields[1] = strdup(field2))) {
                effect_clear(e);
                q->n--;
                return -ENOMEM;
        }
        (void) make_due(q);
        return 0;
}

/* The summary of what a slot held back, posted; the caller holds the lock. */
static void post_summary(EffectQueue *q, LogLimit *l) {
        char n[32], uid[32];
        snprintf(n, sizeof(n), "JIT_SUPPRESSED=%u", l->pending);
        snprintf(uid, sizeof(uid), "JIT_UID=%u", (unsigned) l->uid);
        if (l->uid == (uid_t) -1)
                (void) post_fields(q, l->event, LOG_NOTICE, n, uid,
                                   "suppressed %u %s of unknown users", l->pending,
                                   suppressed_what(l->event));
        else
                (void) post_fields(q, l->event, LOG_NOTICE, n, uid, "suppressed %u %s of uid %u",
                                   l->pending, suppressed_what(l->event), (unsigned) l->uid);
        l->pending = 0;
}

/* A window that ended: what it held back waits for its summary. */
static void end_window(LogLimit *l) {
        l->pending += l->suppressed;
        l->suppressed = 0;
        l->logged = 0;
        l->window_start = 0;
}

bool log_limit_allowed(LogLimiter *l, JitEvent event, uid_t uid, uint64_t now) {
        LogLimit *slot = NULL, *spare = NULL;
        bool allowed = true;

        pthread_mutex_lock(&l->lock);
        for (size_t i = 0; i < LOG_LIMIT_SLOTS; i++) {
                LogLimit *s = &l->slots[i];
                bool in_use = s->window_start != 0 || s->pending != 0;
                if (in_use && s->uid == uid && s->event == event) {
                        slot = s;
                        break;
                }
                if (!spare && !in_use)
                        spare = s;
        }
        if (!slot && spare)
                *(slot = spare) = (LogLimit){ .uid = uid, .event = event };
        /* Without a slot (that many uids, each with a summary still due, within one window)
         * the entry goes unlimited rather than unsaid. */
        if (slot) {
                if (slot->window_start != 0 && now >= slot->window_start + LOG_LIMIT_INTERVAL_USEC)
                        end_window(slot);
                if (slot->window_start == 0)
                        slot->window_start = now ?: 1;
                if (slot->logged < LOG_LIMIT_BURST)
                        slot->logged++;
                else {
                        slot->suppressed++;
                        allowed = false;
                }
        }
        pthread_mutex_unlock(&l->lock);
        return allowed;
}

bool effect_log_allowed(EffectQueue *q, JitEvent event, uid_t uid, uint64_t now) {
        return log_limit_allowed(&q->limiter, event, uid, now);
}

uint64_t effects_flush_suppressed(EffectQueue *q, uint64_t now) {
        LogLimiter *l = &q->limiter;
        uint64_t next = 0;

        pthread_mutex_lock(&l->lock);
        for (size_t i = 0; i < LOG_LIMIT_SLOTS; i++) {
                LogLimit *s = &l->slots[i];
                uint64_t end = s->window_start + LOG_LIMIT_INTERVAL_USEC;
                if (s->window_start != 0 && now >= end)
                        end_window(s);
                if (s->pending > 0)
                        post_summary(q, s);
                if (s->window_start != 0 && s->suppressed > 0 && (next == 0 || end < next))
                        next = end;
        }
        pthread_mutex_unlock(&l->lock);
        return next;
}

void effect_ends_grant(EffectQueue *q) {
        if (q->n > q->n_due)
                q->items[q->n - 1].ends_grant = true;
}

void effects_changed(EffectQueue *q) {
        q->state_changed = true;
        if (q->wakeup)
                q->wakeup(q->userdata);
}

void effects_commit(EffectQueue *q) {
        q->n_due = q->n;
        effects_changed(q);
}

void effects_rollback(EffectQueue *q) {
        assert(q->n_due <= q->n);
        while (q->n > q->n_due)
                effect_clear(&q->items[--q->n]);
}

Effect *effects_take_due(EffectQueue *q, size_t *ret_n) {
        size_t n = q->n_due;
        Effect *due = NULL;

        assert(n <= q->n); /* the due ones are a prefix of the queue */
        *ret_n = 0;
        if (n == 0)
                return NULL;
        due = malloc(n * sizeof(Effect));
        if (!due)
                return NULL; /* left queued; the next iteration tries again */
        memcpy(due, q->items, n * sizeof(Effect));
        memmove(q->items, q->items + n, (q->n - n) * sizeof(Effect));
        q->n -= n;
        q->n_due = 0;
        *ret_n = n;
        return due;
}

void effects_free(Effect *items, size_t n) {
        for (size_t i = 0; i < n; i++)
                effect_clear(&items[i]);
        free(items);
}

void effect_queue_done(EffectQueue *q) {
        q->n_due = q->n;
        size_t n;
        Effect *due = effects_take_due(q, &n);
        effects_free(due, n);
        free(q->items);
        *q = (EffectQueue){};
}

int effect_add_field(EffectQueue *q, const char *field) {
        if (q->n == 0)
                return -EINVAL;
        Effect *e = &q->items[q->n - 1];
        for (size_t i = 0; i < EFFECT_FIELDS_MAX; i++)
                if (!e->fields[i])
                        return (e->fields[i] = strdup(field)) ? 0 : -ENOMEM;
        return -E2BIG;
}
