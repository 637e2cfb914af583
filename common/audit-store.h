/* SPDX-License-Identifier: MIT */
/* The audit tables of the broker's database (audit, audit_anchor), read and written here
 * only: by the broker's store, and read-only by jitctl audit --verify, which must see the
 * log as a tamperer may have left it. Negative errno on failure; no logging. */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "audit-record.h"
#include "audit-verify.h"

/* The schema version that brought the audit log. */
#define AUDIT_SCHEMA_VERSION 3
#define AUDIT_CHAIN_ID_LEN 32

/* Opens the database read-only, running none of its schema's code (a tamperer could have
 * put some there), for one thread. -errno as open(2) saw it, so that the caller can say
 * why. */
int audit_store_open_readonly(const char *path, sqlite3 **ret);

/* One snapshot for several reads (the anchor and the records), even while the broker
 * appends or an archive moves the anchor. */
int audit_store_read_begin(sqlite3 *db);
void audit_store_read_end(sqlite3 *db);

int audit_store_schema_version(sqlite3 *db, int64_t *ret);
int audit_store_count(sqlite3 *db, int64_t *ret);

/* The anchor row. *ret_rows counts the rows found (there must be one); a malformed hash is
 * replaced by a marker that matches nothing, and the chain id is "" when not 32 hex
 * digits. */
int audit_store_anchor(sqlite3 *db, char chain_id[AUDIT_CHAIN_ID_LEN + 1], AuditHead *ret,
                       int *ret_rows);
/* The newest record, or the anchor when the live log is empty. */
int audit_store_head(sqlite3 *db, AuditHead *ret, char chain_id[AUDIT_CHAIN_ID_LEN + 1]);
/* The same with st, a statement of AUDIT_STORE_HEAD_SQL the caller keeps prepared (and
 * resets). */
#define AUDIT_STORE_HEAD_SQL                                                                       \
        "SELECT a.chain_id, COALESCE(l.seq, a.seq), COALESCE(l.hash, a.hash)"                      \
        " FROM audit_anchor a LEFT JOIN"                                                           \
        " (SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1) l WHERE a.id = 1"
int audit_store_head_with(sqlite3_stmt *st, AuditHead *ret, char chain_id[AUDIT_CHAIN_ID_LEN + 1]);

typedef struct AuditFilter {
        uint64_t since, until; /* realtime usec, 0 = open */
        const char *user;      /* actor, or requester of the record's request */
        int64_t request_id;    /* 0 = any */
        int64_t uid_only;      /* -1 = any, else only records of that uid's own requests */
        unsigned limit;        /* 0 = all; else the newest `limit`, still oldest first */
        uint64_t upto_at;      /* archives: records up to the newest one at or before this */
        int64_t after_seq;     /* 0 = any, else only records after this seq */
        bool oldest;           /* with limit: the oldest `limit` matches instead */
} AuditFilter;

/* Calls fn (audit-record.h) for each matching record, oldest first; the record's strings
 * live until fn returns. Text holding a NUL, or NULL, or a malformed hash, yields a hash
 * marker that matches nothing: the record is not what was written. fn's negative return
 * stops the walk and is returned. */
int audit_store_foreach(sqlite3 *db, const AuditFilter *f, AuditRecordFn fn, void *userdata);
/* Every record, as audit_store_foreach() without a filter, in one pass over the table in
 * seq order: memory stays at sqlite's page cache however long the log (audit --verify).
 * Inside audit_store_read_begin(), two calls see the same records. */
int audit_store_foreach_all(sqlite3 *db, AuditRecordFn fn, void *userdata);

/* Appends the record (seq, hashes computed by the caller). */
int audit_store_insert(sqlite3 *db, const AuditRecord *r);
/* The same with st, a statement of AUDIT_STORE_INSERT_SQL the caller keeps prepared. */
#define AUDIT_STORE_INSERT_SQL                                                                     \
        "INSERT INTO audit (seq, at, event, actor, actor_uid, request_id, details, prev_hash,"     \
        " hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
int audit_store_insert_with(sqlite3_stmt *st, const AuditRecord *r);
/* Moves the anchor forward to (seq, hash) and deletes the records at or before it. */
int audit_store_advance_anchor(sqlite3 *db, int64_t seq, const char *hash);
