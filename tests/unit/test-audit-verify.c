/* SPDX-License-Identifier: MIT */
/* common/audit-verify.[ch]: every way a hash-chained log can be tampered with is told
 * apart, at the right record. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "audit-verify.h"
#include "cleanup.h"

#define CHAIN_MAX 16

/* A chain built the way the broker builds it; strings live in the struct. */
typedef struct Chain {
        AuditRecord r[CHAIN_MAX];
        size_t n;
        AuditHead anchor;
        char details[CHAIN_MAX][128];
} Chain;

static const char *const events[] = { "requested", "approval", "granted", "expired", "revoked" };

static void rehash(Chain *c, size_t i) {
        assert_int_equal(audit_record_hash(&c->r[i], c->r[i].hash), 0);
}

/* Rewrites prev_hash and hash of records from..n-1, as someone who knows the scheme (it
 * is unkeyed) would after changing record from-1. */
static void rechain(Chain *c, size_t from) {
        for (size_t i = from; i < c->n; i++) {
                strcpy(c->r[i].prev_hash, i == 0 ? c->anchor.hash : c->r[i - 1].hash);
                rehash(c, i);
        }
}

static void chain_build(Chain *c, int64_t anchor_seq, const char *anchor_hash, size_t n) {
        memset(c, 0, sizeof(*c));
        c->anchor.seq = anchor_seq;
        strcpy(c->anchor.hash, anchor_hash);
        c->n = n;
        for (size_t i = 0; i < n; i++) {
                AuditRecord *r = &c->r[i];
                snprintf(c->details[i], sizeof(c->details[i]),
                         "{\"reason\":\"disk full on db%zu\"}", i);
                *r = (AuditRecord){
                        .seq = anchor_seq + 1 + (int64_t) i,
                        .at = 1700000000000000ULL + i * 1000000ULL,
                        .event = (char *) events[i % 5],
                        .actor = (char *) (i % 2 ? "bob" : "alice"),
                        .actor_uid = i % 2 ? 1001 : 1000,
                        .request_id = 1 + (int64_t) i / 3,
                        .details = c->details[i],
                };
        }
        rechain(c, 0);
}

static void chain_remove(Chain *c, size_t i) {
        memmove(&c->r[i], &c->r[i + 1], (c->n - i - 1) * sizeof(AuditRecord));
        memmove(c->details[i], c->details[i + 1], (c->n - i - 1) * sizeof(c->details[0]));
        c->n--;
        for (size_t k = i; k < c->n; k++)
                c->r[k].details = c->details[k];
}

static AuditHead head_of(const Chain *c, size_t i) {
        AuditHead h = { .seq = c->r[i].seq };
        strcpy(h.hash, c->r[i].hash);
        return h;
}

static AuditVerdict verify(const Chain *c, const AuditHead *heads, size_t n_heads) {
        AuditVerdict v;
        memset(&v, 0xa5, sizeof(v)); /* nothing may be left unset */
        assert_int_equal(audit_verify(c->r, c->n, &c->anchor, heads, n_heads, &v), 0);
        assert_non_null(memchr(v.message, '\0', sizeof(v.message)));
        assert_null(strchr(v.message, '\n'));
        return v;
}

static void assert_verdict(const AuditVerdict *v, AuditFault fault, int64_t seq) {
        if (v->fault != fault || v->seq != seq)
                fail_msg("expected %s at %lld, got %s at %lld: %s", audit_fault_to_string(fault),
                         (long long) seq, audit_fault_to_string(v->fault), (long long) v->seq,
                         v->message);
}

static void test_fault_names(void **state) {
        assert_string_equal(audit_fault_to_string(AUDIT_INTACT), "intact");
        assert_string_equal(audit_fault_to_string(AUDIT_EDITED), "edited");
        assert_string_equal(audit_fault_to_string(AUDIT_DELETED), "deleted");
        assert_string_equal(audit_fault_to_string(AUDIT_REORDERED), "reordered");
        assert_string_equal(audit_fault_to_string(AUDIT_TRUNCATED), "truncated");
        assert_null(audit_fault_to_string(_AUDIT_FAULT_MAX));
        assert_null(audit_fault_to_string((AuditFault) -1));
        assert_null(audit_fault_to_string((AuditFault) 1000));
        assert_int_equal(audit_fault_from_string("intact"), AUDIT_INTACT);
        assert_int_equal(audit_fault_from_string("truncated"), AUDIT_TRUNCATED);
        assert_int_equal(audit_fault_from_string("Edited"), _AUDIT_FAULT_INVALID);
        assert_int_equal(audit_fault_from_string(""), _AUDIT_FAULT_INVALID);
        assert_int_equal(audit_fault_from_string(NULL), _AUDIT_FAULT_INVALID);
}

static void test_intact(void **state) {
        Chain c;
        chain_build(&c, 0, AUDIT_GENESIS_HASH, 10);

        AuditVerdict v = verify(&c, NULL, 0);
        assert_verdict(&v, AUDIT_INTACT, 0);
        assert_int_equal(v.n_records, 10);
        assert_int_equal(v.first_seq, 1);
        assert_int_equal(v.last_seq, 10);
        assert_int_equal(v.journal_seq, 0);
        assert_string_equal(v.message, "10 records (1-10), each chained to the one before");

        /* Heads at the start (seq 0, the genesis), in the middle and at the end, in any
         * order, repeated. */
        AuditHead heads[] = { head_of(&c, 9),
                              { .seq = 0, .hash = AUDIT_GENESIS_HASH },
                              head_of(&c, 4),
                              head_of(&c, 9) };
        v = verify(&c, heads, ELEMENTSOF(heads));
        assert_verdict(&v, AUDIT_INTACT, 0);
        assert_int_equal(v.journal_seq, 10);

        /* A head older than the end is normal: heads are sent every minute. */
        v = verify(&c, heads + 2, 1);
        assert_verdict(&v, AUDIT_INTACT, 0);
        assert_int_equal(v.journal_seq, 5);
}

static void test_edited_details(void **state) {
        Chain c;
        chain_build(&c, 0, AUDIT_GENESIS_HASH, 10);

        /* One character of a reason. */
        c.details[3][strlen("{\"reason\":\"")] = 'D';
        AuditVerdict v = verify(&c, NULL, 0);
        assert_verdict(&v, AUDIT_EDITED, 4);
        assert_string_equal(v.message, "record 4 was edited: its content does not match its hash");
        assert_int_equal(v.n_records, 10);
        assert_int_equal(v.last_seq, 10);
}

static void test_edited_fields(void **state) {
        static const char *const fields[] = { "at",        "event",      "actor",
                                              "actor_uid", "request_id", "hash" };
        for (size_t f = 0; f < ELEMENTSOF(fields); f++) {
                Chain c;
                chain_build(&c, 0, AUDIT_GENESIS_HASH, 10);
                AuditRecord *r = &c.r[6];
                switch (f) {
                case 0:
                        r->at += 1;
                        break;
                case 1:
                        r->event = (char *) "denied";
                        break;
                case 2:
                        r->actor = (char *) "mallory";
                        break;
                case 3:
                        r->actor_uid = 0;
                        break;
                case 4:
                        r->request_id = 99;
                        break;
                case 5:
                        r->hash[0] = r->hash[0] == '0' ? '1' : '0';
                        break;
                }
                AuditVerdict v = verify(&c, NULL, 0);
                if (v.fault != AUDIT_EDITED || v.seq != 7)
                        fail_msg("editing %s: got %s at %lld", fields[f],
                                 audit_fault_to_string(v.fault), (long long) v.seq);
        }
}

/* Editing a record and recomputing its hash (the hash is not keyed) leaves the next
 * record chained to a hash that no record has any more. */
static void test_rewritten_record(void **state) {
        Chain c;
        chain_build(&c, 0, AUDIT_GENESIS_HASH, 10);

        c.details[3][strlen("{\"reason\":\"")] = 'D';
        rehash(&c, 3);
        AuditVerdict v = verify(&c, NULL, 0);
        assert_verdict(&v, AUDIT_DELETED, 5);
        assert_string_equal(v.message,
                            "record 5 does not chain to record 4: the record before it was "
                            "deleted (and the rest renumbered) or rewritten");

        /* Rewriting the whole rest of the chain is caught only by a head the journal saw. */
        rechain(&c, 4);
        v = verify(&c, NULL, 0);
        assert_verdict(&v, AUDIT_INTACT, 0);
        Chain orig;
        chain_build(&orig, 0, AUDIT_GENESIS_HASH, 10);
        AuditHead heads[] = { head_of(&orig, 2), head_of(&orig, 7) };
        v = verify(&c, heads, ELEMENTSOF(heads));
        assert_verdict(&v, AUDIT_EDITED, 8);
        assert_non_null(strstr(v.message, "record 8 was edited: the journal recorded hash "));
        assert_non_null(strstr(v.message, orig.r[7].hash));
        assert_non_null(strstr(v.message, c.r[7].hash));
}

static void test_deleted_middle(void **state) {
        Chain c;
        chain_build(&c, 0, AUDIT_GENESIS_HASH, 10);

        chain_remove(&c, 4); /* seq 5 */
        AuditVerdict v = verify(&c, NULL, 0);
        assert_verdict(&v, AUDIT_DELETED, 5);
        assert_string_equal(v.message, "record 5 is missing (deleted): record 6 follows record 4");
        assert_int_equal(v.n_records, 9);

        chain_remove(&c, 4); /* seq 6 */
        v = verify(&c, NULL, 0);
        assert_verdict(&v, AUDIT_DELETED, 5);
        assert_string_equal(v.message,
                            "records 5-6 are missing (deleted): record 7 follows record 4");
}

static void test_deleted_first(void **state) {
        Chain c;
        chain_build(&c, 0, AUDIT_GENESIS_HASH, 10);

        chain_remove(&c, 0);
        AuditVerdict v = verify(&c, NULL, 0);
        assert_verdict(&v, AUDIT_DELETED, 1);
        assert_string_equal(v.message, "record 1 is missing (deleted): the log starts at record 2");
        assert_int_equal(v.first_seq, 2);
}

/* Deleting a record and renumbering the rest closes the gap in seq, not in the chain. */
static void test_deleted_renumbered(void **state) {
        Chain c;
        chain_build(&c, 0, AUDIT_GENESIS_HASH, 10);

        chain_remove(&c, 4);
        for (size_t i = 4; i < c.n; i++)
                c.r[i].seq--;
        AuditVerdict v = verify(&c, NULL, 0);
        assert_verdict(&v, AUDIT_DELETED, 5);
        assert_int_equal(v.last_seq, 9);
}

static void test_truncated(void **state) {
        Chain c, orig;
        chain_build(&orig, 0, AUDIT_GENESIS_HASH, 10);
        chain_build(&c, 0, AUDIT_GENESIS_HASH, 10);

        c.n = 7; /* records 8-10 deleted */
        /* Without a head beyond the end, nothing can tell. */
        AuditVerdict v = verify(&c, NULL, 0);
        assert_verdict(&v, AUDIT_INTACT, 0);
        AuditHead old = head_of(&orig, 5);
        v = verify(&c, &old, 1);
        assert_verdict(&v, AUDIT_INTACT, 0);

        AuditHead heads[] = { head_of(&orig, 5), head_of(&orig, 9), head_of(&orig, 8) };
        v = verify(&c, heads, ELEMENTSOF(heads));
        assert_verdict(&v, AUDIT_TRUNCATED, 8);
        assert_int_equal(v.journal_seq, 10);
        assert_int_equal(v.last_seq, 7);
        char expected[256];
        snprintf(expected, sizeof(expected),
                 "the log was truncated after record 7: the journal saw record 10 (hash %s)",
                 orig.r[9].hash);
        assert_string_equal(v.message, expected);
}

static void test_reordered(void **state) {
        Chain c;
        chain_build(&c, 0, AUDIT_GENESIS_HASH, 10);

        /* Swap the contents of records 4 and 5; seq stays in place (ORDER BY seq). */
        AuditRecord t = c.r[3];
        c.r[3] = c.r[4];
        c.r[4] = t;
        c.r[3].seq = 4;
        c.r[4].seq = 5;
        AuditVerdict v = verify(&c, NULL, 0);
        assert_verdict(&v, AUDIT_REORDERED, 4);
        assert_string_equal(v.message, "records 4 and 5 are out of order: record 4 chains to "
                                       "record 5, which is stored after it");

        /* Stored out of seq order altogether. */
        chain_build(&c, 0, AUDIT_GENESIS_HASH, 10);
        t = c.r[3];
        c.r[3] = c.r[4];
        c.r[4] = t;
        v = verify(&c, NULL, 0);
        assert_verdict(&v, AUDIT_DELETED, 4);
        chain_build(&c, 0, AUDIT_GENESIS_HASH, 10);
        c.r[3].seq = 3;
        v = verify(&c, NULL, 0);
        assert_verdict(&v, AUDIT_REORDERED, 3);
}

/* A record slipped in between: the one after it still names its real predecessor. */
static void test_inserted(void **state) {
        Chain c;
        chain_build(&c, 0, AUDIT_GENESIS_HASH, 10);

        strcpy(c.r[5].prev_hash, c.r[3].hash); /* record 6 skips record 5 */
        rehash(&c, 5);
        rechain(&c, 6);
        AuditVerdict v = verify(&c, NULL, 0);
        assert_verdict(&v, AUDIT_EDITED, 6);
        assert_string_equal(v.message, "record 6 was edited or a record was inserted before it: it "
                                       "chains to record 4, not to record 5");
}

static void test_head_wrong_hash(void **state) {
        Chain c;
        chain_build(&c, 0, AUDIT_GENESIS_HASH, 10);

        AuditHead heads[] = { head_of(&c, 9), head_of(&c, 5), head_of(&c, 2) };
        heads[1].hash[10] = heads[1].hash[10] == 'a' ? 'b' : 'a';
        AuditVerdict v = verify(&c, heads, ELEMENTSOF(heads));
        assert_verdict(&v, AUDIT_EDITED, 6);
        char expected[256];
        snprintf(expected, sizeof(expected),
                 "record 6 was edited: the journal recorded hash %s for it, the log has %s",
                 heads[1].hash, c.r[5].hash);
        assert_string_equal(v.message, expected);
        assert_int_equal(v.journal_seq, 10);

        /* The lowest bad seq wins, before a truncation further on. */
        AuditHead more[] = { { .seq = 20, .hash = AUDIT_GENESIS_HASH }, heads[1], heads[2] };
        more[2].hash[0] = more[2].hash[0] == 'a' ? 'b' : 'a';
        v = verify(&c, more, ELEMENTSOF(more));
        assert_verdict(&v, AUDIT_EDITED, 3);
        assert_int_equal(v.journal_seq, 20);

        /* A walk problem comes before any head. */
        c.details[1][strlen("{\"reason\":\"")] = 'D';
        v = verify(&c, more, ELEMENTSOF(more));
        assert_verdict(&v, AUDIT_EDITED, 2);
}

static void test_empty(void **state) {
        Chain c;
        chain_build(&c, 0, AUDIT_GENESIS_HASH, 0);

        AuditVerdict v = verify(&c, NULL, 0);
        assert_verdict(&v, AUDIT_INTACT, 0);
        assert_int_equal(v.n_records, 0);
        assert_int_equal(v.first_seq, 0);
        assert_int_equal(v.last_seq, 0);
        assert_int_equal(v.journal_seq, 0);

        /* The broker's head at its first start. */
        AuditHead genesis = { .seq = 0, .hash = AUDIT_GENESIS_HASH };
        v = verify(&c, &genesis, 1);
        assert_verdict(&v, AUDIT_INTACT, 0);

        Chain orig;
        chain_build(&orig, 0, AUDIT_GENESIS_HASH, 3);
        AuditHead heads[] = { genesis, head_of(&orig, 2) };
        v = verify(&c, heads, ELEMENTSOF(heads));
        assert_verdict(&v, AUDIT_TRUNCATED, 1);
        assert_int_equal(v.journal_seq, 3);
        assert_non_null(strstr(v.message, "the log was truncated: it is empty, but the journal "
                                          "saw record 3 (hash "));

        /* After an export, an empty live chain starts at its anchor. */
        chain_build(&c, 3, orig.r[2].hash, 0);
        v = verify(&c, heads, ELEMENTSOF(heads));
        assert_verdict(&v, AUDIT_INTACT, 0);
        AuditHead later = { .seq = 4, .hash = AUDIT_GENESIS_HASH };
        v = verify(&c, &later, 1);
        assert_verdict(&v, AUDIT_TRUNCATED, 4);
        assert_non_null(strstr(v.message, "the log was truncated after record 3: "));
}

static void test_anchor(void **state) {
        static const char anchor_hash[] =
                "3fa2c1d0e4b5a6978877665544332211ffeeddccbbaa00998877665544332211";
        Chain c;
        chain_build(&c, 100, anchor_hash, 10);

        AuditHead archived = { .seq = 50, .hash = AUDIT_GENESIS_HASH }; /* not checkable */
        AuditHead at_anchor = { .seq = 100 };
        strcpy(at_anchor.hash, anchor_hash);
        AuditHead heads[] = { archived, at_anchor, head_of(&c, 9) };
        AuditVerdict v = verify(&c, heads, ELEMENTSOF(heads));
        assert_verdict(&v, AUDIT_INTACT, 0);
        assert_int_equal(v.first_seq, 101);
        assert_int_equal(v.last_seq, 110);
        assert_int_equal(v.journal_seq, 110);
        assert_string_equal(v.message, "10 records (101-110), each chained to the one before");

        /* The journal remembers another hash where the chain starts. */
        at_anchor.hash[0] = '4';
        v = verify(&c, &at_anchor, 1);
        assert_verdict(&v, AUDIT_EDITED, 100);
        assert_non_null(strstr(v.message, "the anchor (record 100) was edited"));

        /* The first record after the anchor. */
        chain_remove(&c, 0);
        v = verify(&c, NULL, 0);
        assert_verdict(&v, AUDIT_DELETED, 101);
        assert_string_equal(v.message,
                            "record 101 is missing (deleted): record 102 follows record 100 "
                            "(the anchor)");

        /* A record in the middle, and the end. */
        chain_build(&c, 100, anchor_hash, 10);
        chain_remove(&c, 6);
        v = verify(&c, NULL, 0);
        assert_verdict(&v, AUDIT_DELETED, 107);
        chain_build(&c, 100, anchor_hash, 10);
        AuditHead end = head_of(&c, 9);
        c.n = 5;
        v = verify(&c, &end, 1);
        assert_verdict(&v, AUDIT_TRUNCATED, 106);

        /* An anchor moved or edited: the first record no longer chains to it. */
        chain_build(&c, 100, anchor_hash, 10);
        c.anchor.hash[5] = '0';
        v = verify(&c, NULL, 0);
        assert_verdict(&v, AUDIT_DELETED, 101);
        assert_non_null(strstr(v.message, "record 101 does not chain to record 100 (the anchor)"));
}

/* With the anchor at the genesis, record 1 must chain to it. */
static void test_first_record_rewritten(void **state) {
        Chain c;
        chain_build(&c, 0, AUDIT_GENESIS_HASH, 3);

        c.r[0].prev_hash[3] = '1';
        rehash(&c, 0);
        rechain(&c, 1);
        AuditVerdict v = verify(&c, NULL, 0);
        assert_verdict(&v, AUDIT_DELETED, 1);
        assert_non_null(strstr(v.message, "record 1 does not chain to the start of the log"));
}

/* Seqs from a file anyone can write: the extremes verify without overflow (UBSan in the
 * sanitized build), and a chain cannot wrap around past INT64_MAX. */
static void test_seq_extremes(void **state) {
        Chain c;
        AuditVerdict v;

        /* Nothing follows INT64_MAX: an anchor there is a log with no records, and a record
         * stored after it is out of place. */
        chain_build(&c, INT64_MAX, AUDIT_GENESIS_HASH, 0);
        v = verify(&c, NULL, 0);
        assert_verdict(&v, AUDIT_INTACT, 0);
        assert_string_equal(v.message, "no records after record 9223372036854775807");
        AuditHead at_anchor = { .seq = INT64_MAX, .hash = AUDIT_GENESIS_HASH };
        v = verify(&c, &at_anchor, 1);
        assert_verdict(&v, AUDIT_INTACT, 0);
        at_anchor.hash[0] = 'f';
        v = verify(&c, &at_anchor, 1);
        assert_verdict(&v, AUDIT_EDITED, INT64_MAX);

        chain_build(&c, INT64_MAX - 1, AUDIT_GENESIS_HASH, 1);
        assert_int_equal(c.r[0].seq, INT64_MAX);
        AuditHead end = head_of(&c, 0);
        v = verify(&c, &end, 1);
        assert_verdict(&v, AUDIT_INTACT, 0);
        assert_int_equal(v.first_seq, INT64_MAX);
        assert_int_equal(v.last_seq, INT64_MAX);
        assert_int_equal(v.journal_seq, INT64_MAX);
        end.hash[0] = end.hash[0] == 'a' ? 'b' : 'a';
        v = verify(&c, &end, 1);
        assert_verdict(&v, AUDIT_EDITED, INT64_MAX);

        /* A record at INT64_MAX, then one that would wrap to INT64_MIN. */
        c.anchor.seq = INT64_MAX;
        v = verify(&c, NULL, 0);
        assert_verdict(&v, AUDIT_REORDERED, INT64_MAX);
        assert_string_equal(v.message, "record 9223372036854775807 is out of place: it is stored "
                                       "after record 9223372036854775807 (the anchor)");
        chain_build(&c, 0, AUDIT_GENESIS_HASH, 3);
        c.r[1].seq = INT64_MAX;
        c.r[2].seq = INT64_MIN;
        rechain(&c, 0);
        v = verify(&c, NULL, 0);
        assert_verdict(&v, AUDIT_DELETED, 2);
        assert_string_equal(v.message, "records 2-9223372036854775806 are missing (deleted): "
                                       "record 9223372036854775807 follows record 1");
        c.r[1].seq = 2;
        rechain(&c, 0);
        v = verify(&c, NULL, 0);
        assert_verdict(&v, AUDIT_REORDERED, INT64_MIN);

        /* The first record far from the anchor, and heads at both ends of the range. */
        chain_build(&c, 0, AUDIT_GENESIS_HASH, 1);
        c.r[0].seq = INT64_MAX;
        rechain(&c, 0);
        v = verify(&c, NULL, 0);
        assert_verdict(&v, AUDIT_DELETED, 1);
        chain_build(&c, 5, AUDIT_GENESIS_HASH, 3);
        AuditHead heads[] = { { .seq = INT64_MIN, .hash = AUDIT_GENESIS_HASH },
                              { .seq = -1, .hash = AUDIT_GENESIS_HASH },
                              { .seq = INT64_MAX, .hash = AUDIT_GENESIS_HASH } };
        v = verify(&c, heads, ELEMENTSOF(heads));
        assert_verdict(&v, AUDIT_TRUNCATED, 9);
        assert_int_equal(v.journal_seq, INT64_MAX);
        v = verify(&c, heads, 2); /* before the anchor: nothing to compare with */
        assert_verdict(&v, AUDIT_INTACT, 0);
}

/* An anchor below 0 is not a log: no verdict at all, rather than one computed from it. */
static void test_negative_anchor(void **state) {
        Chain c;
        AuditVerdict v;

        for (int64_t seq = -1; seq != 0; seq = seq == -1 ? INT64_MIN : 0) {
                chain_build(&c, 0, AUDIT_GENESIS_HASH, 2);
                c.anchor.seq = seq;
                assert_int_equal(audit_verify(c.r, c.n, &c.anchor, NULL, 0, &v), -EINVAL);
                c.n = 0;
                assert_int_equal(audit_verify(c.r, c.n, &c.anchor, NULL, 0, &v), -EINVAL);
        }
        assert_int_equal(audit_verify(c.r, 0, NULL, NULL, 0, &v), -EINVAL);
}

/* audit_verify_stream() reads the log as it goes (jitctl audit --verify on the live
 * database): a source that counts how often, and how far, it is read. */
typedef struct CountingSource {
        const Chain *c;
        unsigned reads;
        size_t records_read;
        size_t fail_after; /* 0: never; else the source fails with -EIO after this many */
} CountingSource;

static int counting_source(void *source, AuditRecordFn fn, void *userdata) {
        CountingSource *s = source;
        s->reads++;
        for (size_t i = 0; i < s->c->n; i++) {
                if (s->fail_after > 0 && s->records_read == s->fail_after)
                        return -EIO;
                s->records_read++;
                /* A copy, gone after the call: nothing may be kept of a record but what
                 * the walk copies. */
                AuditRecord r = s->c->r[i];
                int k = fn(&r, userdata);
                memset(&r, 0x5a, sizeof(r));
                if (k < 0)
                        return k;
        }
        return 0;
}

static AuditVerdict verify_stream(const Chain *c, const AuditHead *heads, size_t n_heads,
                                  CountingSource *s) {
        AuditVerdict v, ref;
        *s = (CountingSource){ .c = c };
        memset(&v, 0xa5, sizeof(v));
        assert_int_equal(audit_verify_stream(counting_source, s, &c->anchor, heads, n_heads, &v),
                         0);
        /* The same verdict as over the records in memory. */
        ref = verify(c, heads, n_heads);
        assert_int_equal(v.fault, ref.fault);
        assert_int_equal(v.seq, ref.seq);
        assert_string_equal(v.message, ref.message);
        assert_int_equal(v.n_records, ref.n_records);
        assert_int_equal(v.first_seq, ref.first_seq);
        assert_int_equal(v.last_seq, ref.last_seq);
        assert_int_equal(v.journal_seq, ref.journal_seq);
        assert_string_equal(v.last_hash, c->n ? c->r[c->n - 1].hash : "");
        return v;
}

static void test_stream(void **state) {
        CountingSource s;
        Chain c;
        AuditVerdict v;

        /* Intact, with heads in any order: one read. */
        chain_build(&c, 0, AUDIT_GENESIS_HASH, 10);
        AuditHead heads[] = { head_of(&c, 9), head_of(&c, 2), head_of(&c, 5), head_of(&c, 2) };
        v = verify_stream(&c, heads, ELEMENTSOF(heads), &s);
        assert_verdict(&v, AUDIT_INTACT, 0);
        assert_int_equal(s.reads, 1);

        /* Two heads of one seq that both differ: the first given is named. */
        heads[1].hash[0] = heads[1].hash[0] == 'a' ? 'b' : 'a';
        heads[3].hash[0] = heads[3].hash[0] == 'c' ? 'd' : 'c';
        v = verify_stream(&c, heads, ELEMENTSOF(heads), &s);
        assert_verdict(&v, AUDIT_EDITED, 3);
        assert_non_null(strstr(v.message, heads[1].hash));

        /* A fault early on: the rest is still read, and counted. */
        chain_build(&c, 0, AUDIT_GENESIS_HASH, 10);
        c.details[1][strlen("{\"reason\":\"")] = 'D';
        v = verify_stream(&c, NULL, 0, &s);
        assert_verdict(&v, AUDIT_EDITED, 2);
        assert_int_equal(v.n_records, 10);
        assert_int_equal(s.reads, 1);

        /* Swapped: the record named is found further on, in the one read. */
        chain_build(&c, 0, AUDIT_GENESIS_HASH, 10);
        AuditRecord t = c.r[4];
        c.r[4] = c.r[5];
        c.r[5] = t;
        c.r[4].seq = 5;
        c.r[5].seq = 6;
        v = verify_stream(&c, NULL, 0, &s);
        assert_verdict(&v, AUDIT_REORDERED, 5);
        assert_int_equal(s.reads, 1);

        /* Inserted: found earlier, by a second read that stops where it was found. */
        chain_build(&c, 0, AUDIT_GENESIS_HASH, 10);
        strcpy(c.r[5].prev_hash, c.r[3].hash);
        rehash(&c, 5);
        rechain(&c, 6);
        v = verify_stream(&c, NULL, 0, &s);
        assert_verdict(&v, AUDIT_EDITED, 6);
        assert_int_equal(s.reads, 2);
        assert_int_equal(s.records_read, 10 + 4);

        /* Found nowhere: the second read goes up to the record before the broken one. */
        chain_build(&c, 0, AUDIT_GENESIS_HASH, 10);
        c.r[5].prev_hash[0] = c.r[5].prev_hash[0] == 'a' ? 'b' : 'a';
        rehash(&c, 5);
        rechain(&c, 6);
        v = verify_stream(&c, NULL, 0, &s);
        assert_verdict(&v, AUDIT_DELETED, 6);
        assert_int_equal(s.reads, 2);
        assert_int_equal(s.records_read, 10 + 5);

        /* The first or second record broken: nothing before it to read again. */
        chain_build(&c, 0, AUDIT_GENESIS_HASH, 3);
        c.r[1].prev_hash[0] = c.r[1].prev_hash[0] == 'a' ? 'b' : 'a';
        rehash(&c, 1);
        rechain(&c, 2);
        v = verify_stream(&c, NULL, 0, &s);
        assert_verdict(&v, AUDIT_DELETED, 2);
        assert_int_equal(s.reads, 1);
}

/* The source's own failure is no verdict: a log that cannot be read is not tampered with. */
static void test_stream_source_fails(void **state) {
        Chain c;
        AuditVerdict v;

        chain_build(&c, 0, AUDIT_GENESIS_HASH, 10);
        CountingSource s = { .c = &c, .fail_after = 4 };
        assert_int_equal(audit_verify_stream(counting_source, &s, &c.anchor, NULL, 0, &v), -EIO);

        /* ... also when it fails in the second read. */
        strcpy(c.r[5].prev_hash, c.r[3].hash);
        rehash(&c, 5);
        rechain(&c, 6);
        s = (CountingSource){ .c = &c, .fail_after = 12 };
        assert_int_equal(audit_verify_stream(counting_source, &s, &c.anchor, NULL, 0, &v), -EIO);
        assert_int_equal(s.reads, 2);

        c.anchor.seq = -1;
        s = (CountingSource){ .c = &c };
        assert_int_equal(audit_verify_stream(counting_source, &s, &c.anchor, NULL, 0, &v), -EINVAL);
        assert_int_equal(s.reads, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fault_names),
                cmocka_unit_test(test_intact),
                cmocka_unit_test(test_edited_details),
                cmocka_unit_test(test_edited_fields),
                cmocka_unit_test(test_rewritten_record),
                cmocka_unit_test(test_deleted_middle),
                cmocka_unit_test(test_deleted_first),
                cmocka_unit_test(test_deleted_renumbered),
                cmocka_unit_test(test_truncated),
                cmocka_unit_test(test_reordered),
                cmocka_unit_test(test_inserted),
                cmocka_unit_test(test_head_wrong_hash),
                cmocka_unit_test(test_empty),
                cmocka_unit_test(test_anchor),
                cmocka_unit_test(test_first_record_rewritten),
                cmocka_unit_test(test_seq_extremes),
                cmocka_unit_test(test_negative_anchor),
                cmocka_unit_test(test_stream),
                cmocka_unit_test(test_stream_source_fails),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
