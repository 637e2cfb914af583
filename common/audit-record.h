/* SPDX-License-Identifier: MIT */
/* One record of the audit log and the hash that chains it to the one before. Shared by the
 * broker (which appends) and jitctl (which verifies, without trusting the broker). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUDIT_HASH_LEN 64 /* lowercase hex SHA-256 */
#define AUDIT_GENESIS_HASH "0000000000000000000000000000000000000000000000000000000000000000"
/* journald entry that carries the chain's head: JIT_AUDIT_SEQ, JIT_AUDIT_HASH. */
#define AUDIT_HEAD_MESSAGE_ID "a6af73a831954c12a35fddcbc2882456"
/* journald entry of an export: JIT_AUDIT_ARCHIVE_LAST_SEQ and _HASH vouch for the anchor. */
#define AUDIT_ARCHIVED_MESSAGE_ID "2fdd838a6ac343bcb157b192bd4263f6"

typedef struct AuditRecord {
        int64_t seq;        /* 1, 2, 3, ... with no gaps */
        uint64_t at;        /* realtime usec */
        char *event;        /* the journald JIT_EVENT name: "requested", "approval", ... */
        char *actor;        /* a user name, "rule:NAME", or "broker" */
        int64_t actor_uid;  /* -1 when the actor is not a person */
        int64_t request_id; /* 0 when the event concerns no request */
        char *details;      /* a JSON object */
        char prev_hash[AUDIT_HASH_LEN + 1];
        char hash[AUDIT_HASH_LEN + 1];
} AuditRecord;

/* Computes the record's hash: SHA-256 over "jit-audit-v1", prev_hash and the content
 * (at, event, actor, actor_uid, request_id, details), newline-separated. seq is not
 * hashed: order is what prev_hash proves, so a swapped pair shows as reordered, not
 * edited. Returns 0 or -EIO (libcrypto failed). */
int audit_record_hash(const AuditRecord *r, char ret[AUDIT_HASH_LEN + 1]);

/* The same hash for many records in a row (audit --verify walks millions): one digest
 * context, fetched once, instead of an allocation and a digest lookup per record. Not
 * thread-safe: one per thread. new: 0, -ENOMEM or -EIO; hash: as audit_record_hash(). */
typedef struct AuditHasher AuditHasher;
int audit_hasher_new(AuditHasher **ret);
AuditHasher *audit_hasher_free(AuditHasher *h);
int audit_hasher_hash(AuditHasher *h, const AuditRecord *r, char ret[AUDIT_HASH_LEN + 1]);
static inline void audit_hasher_freep(AuditHasher **h) {
        if (*h)
                audit_hasher_free(*h);
}

/* Called for each record of a walk, oldest first; a negative return stops the walk. The
 * record and its strings live until the call returns. */
typedef int (*AuditRecordFn)(const AuditRecord *r, void *userdata);

void audit_record_done(AuditRecord *r);
