/* SPDX-License-Identifier: MIT */
#include "effects.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

/* Effects of one transaction: a handful; this only bounds a runaway loop. */
#define EFFECTS_MAX 4096

static void effect_clear(Effect *e) {
        request_free(e->request);
        free(e->actor);
        free(e->field);
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

int effect_post(EffectQueue *q, JitEvent event, int priority, const Request *r, const char *actor,
                const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int k = effect_add(q, event, priority, r, actor, NULL, fmt, ap);
        va_end(ap);
        if (k < 0)
                return k;
        assert(q->n_due < q->n);
        /* Ahead of the staged ones: swap it into the due part. */
        Effect posted = q->items[q->n - 1];
        q->items[q->n - 1] = q->items[q->n_due];
        q->items[q->n_due++] = posted;
        if (q->wakeup)
                q->wakeup(q->userdata);
        return 0;
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
