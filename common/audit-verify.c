/* SPDX-License-Identifier: MIT */
#include "audit-verify.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "string-table.h"

static const char *const fault_names[_AUDIT_FAULT_MAX] = {
        [AUDIT_INTACT] = "intact",       [AUDIT_EDITED] = "edited",
        [AUDIT_DELETED] = "deleted",     [AUDIT_REORDERED] = "reordered",
        [AUDIT_TRUNCATED] = "truncated",
};

DEFINE_STRING_TABLE(audit_fault, AuditFault, fault_names, _AUDIT_FAULT_MAX);

static void set_fault(AuditVerdict *v, AuditFault f, int64_t seq, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void set_fault(AuditVerdict *v, AuditFault f, int64_t seq, const char *fmt, ...) {
        va_list ap;

        v->fault = f;
        v->seq = seq;
        va_start(ap, fmt);
        vsnprintf(v->message, sizeof(v->message), fmt, ap);
        va_end(ap);
}

/* "record 16", or how the anchor reads when the chain starts at the very beginning. */
static void predecessor_name(const AuditHead *anchor, int64_t seq, bool is_anchor, char *buf,
                             size_t len) {
        if (is_anchor && anchor->seq == 0)
                snprintf(buf, len, "the start of the log");
        else if (is_anchor)
                snprintf(buf, len, "record %" PRId64 " (the anchor)", seq);
        else
                snprintf(buf, len, "record %" PRId64, seq);
}

/* The walk over a log read as it goes: one record at a time, nothing kept of the records
 * before it but the last one's seq and hash. */
typedef enum WalkState {
        WALK_CHAINED, /* every record so far is where it belongs and chained */
        WALK_SEEKING, /* a link broke: looking further on for the record it names */
        WALK_DONE,    /* a verdict: the rest is only counted */
} WalkState;

typedef struct Walk {
        const AuditHead *anchor;
        AuditHasher *hasher;
        AuditVerdict *v;
        WalkState state;
        int error; /* the hash of a record could not be computed */
        size_t n;  /* records read */
        int64_t prev_seq;
        char prev_hash[AUDIT_HASH_LEN + 1];
        /* The journal's heads by seq (ties in the order given), compared as their records
         * go by; the first that differs is the lowest. */
        const AuditHead **heads;
        size_t n_heads, next_head;
        const AuditHead *mismatch;
        char ours[AUDIT_HASH_LEN + 1];
        /* The record that does not chain to the one before it. */
        size_t broken;
        int64_t broken_seq;
        char broken_prev_hash[AUDIT_HASH_LEN + 1];
        char pred[64];
        size_t back; /* the second read: records read again */
        bool stopped;
} Walk;

/* Stops a second read early; never a source's own failure, which Walk.stopped tells. */
#define WALK_STOP (-ECANCELED)

static int head_order(const void *a, const void *b) {
        const AuditHead *x = *(const AuditHead *const *) a, *y = *(const AuditHead *const *) b;
        if (x->seq != y->seq)
                return x->seq < y->seq ? -1 : 1;
        return x < y ? -1 : x > y; /* the order given: the first one wins */
}

/* Where a record that does not chain to the one before it belongs. Its prev_hash names
 * its real predecessor: found later, the two were swapped; found earlier, something was
 * slipped in between; found nowhere, its predecessor is gone. The later ones are looked
 * for as the walk goes on (walk_record()); these are what is left when none was. */
static int walk_back(const AuditRecord *r, void *userdata) {
        Walk *w = userdata;
        size_t j = w->back++;

        if (j + 1 >= w->broken) {
                w->stopped = true;
                return WALK_STOP;
        }
        if (STREQ(r->hash, w->broken_prev_hash)) {
                set_fault(w->v, AUDIT_EDITED, w->broken_seq,
                          "record %" PRId64 " was edited or a record was inserted before "
                          "it: it chains to record %" PRId64 ", not to %s",
                          w->broken_seq, r->seq, w->pred);
                w->stopped = true;
                return WALK_STOP;
        }
        return 0;
}

static int classify_broken_link(AuditRecordSource source, void *source_data, Walk *w) {
        if (w->broken >= 2) {
                w->state = WALK_DONE;
                int r = source(source_data, walk_back, w);
                if (r < 0 && !w->stopped)
                        return r;
                if (w->v->fault != AUDIT_INTACT)
                        return 0;
        }
        if (w->broken > 0 && STREQ(w->anchor->hash, w->broken_prev_hash))
                set_fault(w->v, AUDIT_EDITED, w->broken_seq,
                          "record %" PRId64 " was edited or a record was inserted before it: it "
                          "chains to the anchor, not to %s",
                          w->broken_seq, w->pred);
        else
                set_fault(w->v, AUDIT_DELETED, w->broken_seq,
                          "record %" PRId64 " does not chain to %s: the record before it was "
                          "deleted (and the rest renumbered) or rewritten",
                          w->broken_seq, w->pred);
        return 0;
}

/* One record of the walk in stored order, while all before it chained. Returns 0 (the
 * verdict says what was found) or a negative errno when its hash could not be computed. */
static int check_record(Walk *w, const AuditRecord *r, size_t i) {
        const AuditHead *anchor = w->anchor;
        /* Seqs come from files anyone can write (archives): no arithmetic on them may
         * overflow. The anchor is at least 0 (audit_verify_stream()), and every record that
         * gets past the first check below is above the one before it, so "before" only
         * grows. */
        int64_t before = i == 0 ? anchor->seq : w->prev_seq, expected;
        char hash[AUDIT_HASH_LEN + 1];
        char pred[64];

        if (r->seq <= before || __builtin_add_overflow(before, 1, &expected)) {
                /* Cannot come from "ORDER BY seq" on a primary key, but the function does
                 * not rely on how it was called. Nothing can follow INT64_MAX. */
                predecessor_name(anchor, before, i == 0, pred, sizeof(pred));
                set_fault(w->v, AUDIT_REORDERED, r->seq,
                          "record %" PRId64 " is out of place: it is stored after %s", r->seq,
                          pred);
                w->state = WALK_DONE;
                return 0;
        }
        if (r->seq > expected) {
                /* before < expected < r->seq: r->seq - 1 cannot overflow. */
                char what[64], where[96];

                predecessor_name(anchor, before, i == 0, pred, sizeof(pred));
                if (r->seq - 1 > expected)
                        snprintf(what, sizeof(what), "records %" PRId64 "-%" PRId64 " are missing",
                                 expected, r->seq - 1);
                else
                        snprintf(what, sizeof(what), "record %" PRId64 " is missing", expected);
                if (i == 0 && anchor->seq == 0)
                        snprintf(where, sizeof(where), "the log starts at record %" PRId64, r->seq);
                else
                        snprintf(where, sizeof(where), "record %" PRId64 " follows %s", r->seq,
                                 pred);
                set_fault(w->v, AUDIT_DELETED, expected, "%s (deleted): %s", what, where);
                w->state = WALK_DONE;
                return 0;
        }

        int k = audit_hasher_hash(w->hasher, r, hash);
        if (k < 0) {
                w->error = k;
                return k;
        }
        if (!STREQ(hash, r->hash)) {
                set_fault(w->v, AUDIT_EDITED, r->seq,
                          "record %" PRId64 " was edited: its content does not match its hash",
                          r->seq);
                w->state = WALK_DONE;
                return 0;
        }
        if (!STREQ(r->prev_hash, w->prev_hash)) {
                /* Classified once it is known whether a later record is the one it names. */
                w->state = WALK_SEEKING;
                w->broken = i;
                w->broken_seq = r->seq;
                memcpy(w->broken_prev_hash, r->prev_hash, sizeof(w->broken_prev_hash));
                w->broken_prev_hash[AUDIT_HASH_LEN] = '\0';
                predecessor_name(anchor, before, i == 0, w->pred, sizeof(w->pred));
                return 0;
        }

        /* Intact so far, seqs contiguous from the anchor: a head of this seq is about this
         * very record. */
        while (w->next_head < w->n_heads && w->heads[w->next_head]->seq <= r->seq) {
                const AuditHead *h = w->heads[w->next_head++];
                if (h->seq == r->seq && !w->mismatch && !STREQ(h->hash, r->hash)) {
                        w->mismatch = h;
                        memcpy(w->ours, r->hash, sizeof(w->ours));
                        w->ours[AUDIT_HASH_LEN] = '\0';
                }
        }
        w->prev_seq = r->seq;
        memcpy(w->prev_hash, r->hash, sizeof(w->prev_hash));
        w->prev_hash[AUDIT_HASH_LEN] = '\0';
        return 0;
}

static int walk_record(const AuditRecord *r, void *userdata) {
        Walk *w = userdata;
        size_t i = w->n++;

        if (i == 0)
                w->v->first_seq = r->seq;
        w->v->last_seq = r->seq;
        memcpy(w->v->last_hash, r->hash, sizeof(w->v->last_hash));
        w->v->last_hash[AUDIT_HASH_LEN] = '\0';

        switch (w->state) {
        case WALK_CHAINED:
                return check_record(w, r, i);
        case WALK_SEEKING:
                if (STREQ(r->hash, w->broken_prev_hash)) {
                        set_fault(w->v, AUDIT_REORDERED, w->broken_seq,
                                  "records %" PRId64 " and %" PRId64
                                  " are out of order: record %" PRId64 " chains to record %" PRId64
                                  ", which is stored after it",
                                  w->broken_seq, r->seq, w->broken_seq, r->seq);
                        w->state = WALK_DONE;
                }
                return 0;
        case WALK_DONE:
                break;
        }
        return 0;
}

/* After an intact walk: the heads that differ (the anchor's first, then the lowest met on
 * the walk), then the highest head beyond the end. */
static void verify_heads(const Walk *w, const AuditHead *heads, size_t n_heads, AuditVerdict *v) {
        const AuditHead *anchor = w->anchor, *mismatch = w->mismatch, *beyond = NULL;
        int64_t tail = w->n > 0 ? v->last_seq : anchor->seq;

        for (size_t i = 0; i < n_heads; i++)
                if (heads[i].seq > tail && (!beyond || heads[i].seq > beyond->seq))
                        beyond = &heads[i];

        if (mismatch && mismatch->seq == anchor->seq)
                set_fault(v, AUDIT_EDITED, mismatch->seq,
                          "the anchor (record %" PRId64
                          ") was edited: the journal recorded hash %s "
                          "for it, the anchor has %s",
                          mismatch->seq, mismatch->hash, w->ours);
        else if (mismatch)
                set_fault(v, AUDIT_EDITED, mismatch->seq,
                          "record %" PRId64 " was edited: the journal recorded hash %s for it, the "
                          "log has %s",
                          mismatch->seq, mismatch->hash, w->ours);
        else if (beyond && w->n == 0 && anchor->seq == 0)
                set_fault(v, AUDIT_TRUNCATED, 1,
                          "the log was truncated: it is empty, but the journal saw record %" PRId64
                          " (hash %s)",
                          beyond->seq, beyond->hash);
        else if (beyond) /* tail < beyond->seq <= INT64_MAX: tail + 1 cannot overflow */
                set_fault(v, AUDIT_TRUNCATED, tail + 1,
                          "the log was truncated after record %" PRId64
                          ": the journal saw record %" PRId64 " (hash %s)",
                          tail, beyond->seq, beyond->hash);
}

int audit_verify_stream(AuditRecordSource source, void *source_data, const AuditHead *anchor,
                        const AuditHead *heads, size_t n_heads, AuditVerdict *ret) {
        _cleanup_(audit_hasher_freep) AuditHasher *hasher = NULL;
        _cleanup_free_ const AuditHead **sorted = NULL;
        AuditVerdict v = { .fault = AUDIT_INTACT };
        Walk w = { .anchor = anchor, .v = &v };
        int r;

        /* Seq 0 is the start of the log; nothing is before it. */
        if (!anchor || anchor->seq < 0)
                return -EINVAL;
        if ((r = audit_hasher_new(&hasher)) < 0)
                return r;
        w.hasher = hasher;
        w.prev_seq = anchor->seq;
        memcpy(w.prev_hash, anchor->hash, sizeof(w.prev_hash));
        w.prev_hash[AUDIT_HASH_LEN] = '\0';

        if (n_heads > 0) {
                sorted = calloc(n_heads, sizeof(*sorted));
                if (!sorted)
                        return -ENOMEM;
                for (size_t i = 0; i < n_heads; i++) {
                        sorted[i] = &heads[i];
                        if (heads[i].seq > v.journal_seq)
                                v.journal_seq = heads[i].seq;
                }
                qsort(sorted, n_heads, sizeof(*sorted), head_order);
                w.heads = sorted;
                w.n_heads = n_heads;
        }
        /* Heads before the anchor were archived: nothing to compare with. The anchor's own
         * come first, being the lowest compared. */
        for (; w.next_head < n_heads && sorted[w.next_head]->seq <= anchor->seq; w.next_head++)
                if (sorted[w.next_head]->seq == anchor->seq && !w.mismatch &&
                    !STREQ(sorted[w.next_head]->hash, anchor->hash)) {
                        w.mismatch = sorted[w.next_head];
                        memcpy(w.ours, anchor->hash, sizeof(w.ours));
                        w.ours[AUDIT_HASH_LEN] = '\0';
                }

        r = source(source_data, walk_record, &w);
        if (w.error < 0)
                return w.error;
        if (r < 0)
                return r;
        if (w.n > INT64_MAX)
                return -EINVAL;
        v.n_records = (int64_t) w.n;
        if (w.state == WALK_SEEKING && (r = classify_broken_link(source, source_data, &w)) < 0)
                return r;

        if (v.fault == AUDIT_INTACT)
                verify_heads(&w, heads, n_heads, &v);
        if (v.fault == AUDIT_INTACT && w.n == 0)
                snprintf(v.message, sizeof(v.message), "no records after record %" PRId64,
                         anchor->seq);
        else if (v.fault == AUDIT_INTACT)
                snprintf(v.message, sizeof(v.message),
                         "%zu records (%" PRId64 "-%" PRId64 "), each chained to the one before",
                         w.n, v.first_seq, v.last_seq);
        *ret = v;
        return 0;
}

typedef struct ArraySource {
        const AuditRecord *records;
        size_t n;
} ArraySource;

static int array_source(void *source, AuditRecordFn fn, void *userdata) {
        const ArraySource *a = source;
        for (size_t i = 0; i < a->n; i++) {
                int r = fn(&a->records[i], userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

int audit_verify(const AuditRecord *records, size_t n, const AuditHead *anchor,
                 const AuditHead *heads, size_t n_heads, AuditVerdict *ret) {
        ArraySource src = { .records = records, .n = n };

        if (n > INT64_MAX)
                return -EINVAL;
        return audit_verify_stream(array_source, &src, anchor, heads, n_heads, ret);
}
