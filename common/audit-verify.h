/* SPDX-License-Identifier: MIT */
/* Checking the audit log's hash chain against its anchor and against the chain heads the
 * broker sent to journald (docs/security.md, rule 14: an anchor outside the database is what
 * proves that nothing was cut off its end). Pure: no I/O, for jitctl audit --verify. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "audit-record.h"

/* A point of the chain: the anchor (audit_anchor's seq and hash) or a head from the
 * journal (JIT_AUDIT_SEQ, JIT_AUDIT_HASH). */
typedef struct AuditHead {
        int64_t seq;
        char hash[AUDIT_HASH_LEN + 1];
} AuditHead;

typedef enum AuditFault {
        AUDIT_INTACT,
        AUDIT_EDITED,    /* a record's content, or its hash, is not what was written */
        AUDIT_DELETED,   /* a record in the middle (or at the start) is gone */
        AUDIT_REORDERED, /* records are there but not in the order they were written */
        AUDIT_TRUNCATED, /* records at the end are gone: the journal saw a later head */
        _AUDIT_FAULT_MAX,
        _AUDIT_FAULT_INVALID = -1,
} AuditFault;

typedef struct AuditVerdict {
        AuditFault fault;
        int64_t seq;       /* the first bad seq (TRUNCATED: the first missing one); 0 intact */
        char message[512]; /* one line for a person */
        int64_t n_records;
        int64_t first_seq, last_seq;        /* 0 when there are no records */
        int64_t journal_seq;                /* the highest head the journal holds; 0 none */
        char last_hash[AUDIT_HASH_LEN + 1]; /* the last record's hash as read; "" none */
} AuditVerdict;

/* Verifies records, in ascending seq order as stored, from anchor on. heads are the
 * journal's heads of this chain, in any order. The first problem wins: the walk in stored
 * order (a gap, a record whose hash is not its content's, a record that does not chain to
 * the one before it, a record at or below the one before it), then the heads (one whose
 * hash differs from the record's, then one beyond the last record). A head before the
 * anchor cannot be checked and is skipped. Any seq is taken, INT64_MAX and negative ones
 * included, without overflow. No records after the anchor is intact (a live log that was
 * just archived); an archive must refuse that itself. Returns 0 with the verdict in *ret,
 * -EINVAL for an anchor below 0 (no verdict: the input is not a log), or -ENOMEM/-EIO
 * when libcrypto failed (no verdict: a failure to hash must not read as tampering). */
int audit_verify(const AuditRecord *records, size_t n, const AuditHead *anchor,
                 const AuditHead *heads, size_t n_heads, AuditVerdict *ret);

/* The records of a log for audit_verify_stream(): calls fn on each, in stored order, and
 * returns fn's negative return (which stops it), its own negative errno, or 0. */
typedef int (*AuditRecordSource)(void *source, AuditRecordFn fn, void *userdata);

/* audit_verify() over a log read as it goes, holding one record at a time: the same
 * verdict, whatever the log's length, in memory that does not grow with it (the heads
 * aside). The source is read once to its end; a second time, from the start, only when a
 * record does not chain to the one before it and no later record is the one it names.
 * Both reads must yield the same records (one read transaction). Returns 0 with the
 * verdict, -EINVAL (as audit_verify()), -ENOMEM, -EIO (libcrypto), or the source's
 * failure. */
int audit_verify_stream(AuditRecordSource source, void *source_data, const AuditHead *anchor,
                        const AuditHead *heads, size_t n_heads, AuditVerdict *ret);

/* "intact", "edited", "deleted", "reordered", "truncated"; NULL out of range. And back:
 * _AUDIT_FAULT_INVALID for anything else. */
const char *audit_fault_to_string(AuditFault f);
AuditFault audit_fault_from_string(const char *s);
