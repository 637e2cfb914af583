/* SPDX-License-Identifier: MIT */
#include "audit-verify.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
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

/* Where a record that does not chain to the one before it belongs. Its prev_hash names
 * its real predecessor: found later, the two were swapped; found earlier, something was
 * slipped in between; found nowhere, its predecessor is gone. */
static void classify_broken_link(const AuditRecord *records, size_t n, size_t i,
                                 const AuditHead *anchor, AuditVerdict *v) {
        const AuditRecord *r = &records[i];
        char pred[64];

        predecessor_name(anchor, i == 0 ? anchor->seq : records[i - 1].seq, i == 0, pred,
                         sizeof(pred));
        for (size_t j = i + 1; j < n; j++)
                if (STREQ(records[j].hash, r->prev_hash)) {
                        set_fault(v, AUDIT_REORDERED, r->seq,
                                  "records %" PRId64 " and %" PRId64
                                  " are out of order: record %" PRId64 " chains to record %" PRId64
                                  ", which is stored after it",
                                  r->seq, records[j].seq, r->seq, records[j].seq);
                        return;
                }
        for (size_t j = 0; j + 1 < i; j++)
                if (STREQ(records[j].hash, r->prev_hash)) {
                        set_fault(v, AUDIT_EDITED, r->seq,
                                  "record %" PRId64 " was edited or a record was inserted before "
                                  "it: it chains to record %" PRId64 ", not to %s",
                                  r->seq, records[j].seq, pred);
                        return;
                }
        if (i > 0 && STREQ(anchor->hash, r->prev_hash)) {
                set_fault(v, AUDIT_EDITED, r->seq,
                          "record %" PRId64 " was edited or a record was inserted before it: it "
                          "chains to the anchor, not to %s",
                          r->seq, pred);
                return;
        }
        set_fault(v, AUDIT_DELETED, r->seq,
                  "record %" PRId64 " does not chain to %s: the record before it was deleted (and "
                  "the rest renumbered) or rewritten",
                  r->seq, pred);
}

/* The walk in stored order. Returns 0 (v->fault says what was found) or a negative errno
 * when a hash could not be computed. */
static int verify_records(const AuditRecord *records, size_t n, const AuditHead *anchor,
                          AuditVerdict *v) {
        const char *prev_hash = anchor->hash;

        /* Seqs come from files anyone can write (archives): no arithmetic on them may
         * overflow. The anchor is at least 0 (audit_verify()), and every record that gets
         * past the first check below is above the one before it, so "before" only grows. */
        for (size_t i = 0; i < n; i++) {
                const AuditRecord *r = &records[i];
                int64_t before = i == 0 ? anchor->seq : records[i - 1].seq, expected;
                char hash[AUDIT_HASH_LEN + 1];
                char pred[64];

                predecessor_name(anchor, before, i == 0, pred, sizeof(pred));
                if (r->seq <= before || __builtin_add_overflow(before, 1, &expected)) {
                        /* Cannot come from "ORDER BY seq" on a primary key, but the
                         * function does not rely on how it was called. Nothing can follow
                         * INT64_MAX. */
                        set_fault(v, AUDIT_REORDERED, r->seq,
                                  "record %" PRId64 " is out of place: it is stored after %s",
                                  r->seq, pred);
                        return 0;
                }
                if (r->seq > expected) {
                        /* before < expected < r->seq: r->seq - 1 cannot overflow. */
                        char what[64], where[96];

                        if (r->seq - 1 > expected)
                                snprintf(what, sizeof(what),
                                         "records %" PRId64 "-%" PRId64 " are missing", expected,
                                         r->seq - 1);
                        else
                                snprintf(what, sizeof(what), "record %" PRId64 " is missing",
                                         expected);
                        if (i == 0 && anchor->seq == 0)
                                snprintf(where, sizeof(where), "the log starts at record %" PRId64,
                                         r->seq);
                        else
                                snprintf(where, sizeof(where), "record %" PRId64 " follows %s",
                                         r->seq, pred);
                        set_fault(v, AUDIT_DELETED, expected, "%s (deleted): %s", what, where);
                        return 0;
                }

                int k = audit_record_hash(r, hash);
                if (k < 0)
                        return k;
                if (!STREQ(hash, r->hash)) {
                        set_fault(v, AUDIT_EDITED, r->seq,
                                  "record %" PRId64
                                  " was edited: its content does not match its hash",
                                  r->seq);
                        return 0;
                }
                if (!STREQ(r->prev_hash, prev_hash)) {
                        classify_broken_link(records, n, i, anchor, v);
                        return 0;
                }
                prev_hash = r->hash;
        }
        return 0;
}

/* The journal's heads against the intact walk: the lowest seq whose recorded hash differs,
 * then the highest head beyond the end. */
static void verify_heads(const AuditRecord *records, size_t n, const AuditHead *anchor,
                         const AuditHead *heads, size_t n_heads, AuditVerdict *v) {
        int64_t tail = n > 0 ? records[n - 1].seq : anchor->seq;
        const AuditHead *mismatch = NULL, *beyond = NULL;
        const char *ours = NULL;

        for (size_t i = 0; i < n_heads; i++) {
                const AuditHead *h = &heads[i];
                const char *expected;

                if (h->seq > tail) {
                        if (!beyond || h->seq > beyond->seq)
                                beyond = h;
                        continue;
                }
                if (h->seq == anchor->seq)
                        expected = anchor->hash;
                else if (h->seq > anchor->seq) {
                        /* The walk proved seqs contiguous from anchor + 1 to tail, and
                         * anchor <= h->seq - 1 < tail, so neither subtraction overflows (the
                         * anchor is at least 0) and the index is below n. */
                        uint64_t k = (uint64_t) (h->seq - anchor->seq - 1);
                        if (k >= n)
                                continue; /* cannot happen after an intact walk */
                        expected = records[k].hash;
                } else
                        continue; /* archived before the anchor: nothing to compare with */
                if (!STREQ(h->hash, expected) && (!mismatch || h->seq < mismatch->seq)) {
                        mismatch = h;
                        ours = expected;
                }
        }

        if (mismatch && mismatch->seq == anchor->seq)
                set_fault(v, AUDIT_EDITED, mismatch->seq,
                          "the anchor (record %" PRId64
                          ") was edited: the journal recorded hash %s "
                          "for it, the anchor has %s",
                          mismatch->seq, mismatch->hash, ours);
        else if (mismatch)
                set_fault(v, AUDIT_EDITED, mismatch->seq,
                          "record %" PRId64 " was edited: the journal recorded hash %s for it, the "
                          "log has %s",
                          mismatch->seq, mismatch->hash, ours);
        else if (beyond && n == 0 && anchor->seq == 0)
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

int audit_verify(const AuditRecord *records, size_t n, const AuditHead *anchor,
                 const AuditHead *heads, size_t n_heads, AuditVerdict *ret) {
        AuditVerdict v = { .fault = AUDIT_INTACT, .n_records = (int64_t) n };
        int r;

        /* Seq 0 is the start of the log; nothing is before it. */
        if (!anchor || anchor->seq < 0 || n > INT64_MAX)
                return -EINVAL;
        if (n > 0) {
                v.first_seq = records[0].seq;
                v.last_seq = records[n - 1].seq;
        }
        for (size_t i = 0; i < n_heads; i++)
                if (heads[i].seq > v.journal_seq)
                        v.journal_seq = heads[i].seq;

        r = verify_records(records, n, anchor, &v);
        if (r < 0)
                return r;
        if (v.fault == AUDIT_INTACT)
                verify_heads(records, n, anchor, heads, n_heads, &v);
        if (v.fault == AUDIT_INTACT && n == 0)
                snprintf(v.message, sizeof(v.message), "no records after record %" PRId64,
                         anchor->seq);
        else if (v.fault == AUDIT_INTACT)
                snprintf(v.message, sizeof(v.message),
                         "%zu records (%" PRId64 "-%" PRId64 "), each chained to the one before", n,
                         v.first_seq, v.last_seq);
        *ret = v;
        return 0;
}
