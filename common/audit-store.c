/* SPDX-License-Identifier: MIT */
#include "audit-store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "sqlite-errno.h"

int audit_store_open_readonly(const char *path, sqlite3 **ret) {
        /* Opened by hand first for an errno worth showing (sqlite says only "unable to open
         * database file"); O_NONBLOCK: a FIFO in its place must not hang us. */
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        struct stat st;
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADMSG;

        sqlite3 *db = NULL;
        /* One thread uses it (jitctl): no mutex taken at every column of every record. */
        int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK) {
                sqlite3_close(db);
                return sqlite_errno(rc);
        }
        sqlite3_extended_result_codes(db, 1);
        sqlite3_busy_timeout(db, 5000);
        /* Whoever could edit the log could edit the schema: run none of its code. */
        sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
        sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
        *ret = db;
        return 0;
}

int audit_store_read_begin(sqlite3 *db) {
        return sqlite_errno(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL));
}

void audit_store_read_end(sqlite3 *db) {
        (void) sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
}

static int query_int(sqlite3 *db, const char *sql, int64_t *ret) {
        sqlite3_stmt *st;
        int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENODATA : sqlite_errno(rc);
}

int audit_store_schema_version(sqlite3 *db, int64_t *ret) {
        return query_int(db, "PRAGMA user_version", ret);
}

int audit_store_count(sqlite3 *db, int64_t *ret) {
        return query_int(db, "SELECT count(*) FROM audit", ret);
}

static bool is_lower_hex(const char *s, size_t len, size_t want) {
        if (!s || len != want)
                return false;
        /* Without branches or an early exit, so that it vectorizes: --verify checks two
         * hashes of every record. */
        bool ok = true;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) s[i];
                ok &= ((unsigned char) (c - '0') < 10) | ((unsigned char) (c - 'a') < 6);
        }
        return ok;
}

/* A stored hash, or a marker that matches no hash the walk computes or compares with (the
 * markers differ from each other too). */
static void copy_hash(char dst[AUDIT_HASH_LEN + 1], sqlite3_stmt *st, int i, const char *marker) {
        const char *s = (const char *) sqlite3_column_text(st, i);
        int len = sqlite3_column_bytes(st, i);
        if (is_lower_hex(s, len < 0 ? 0 : (size_t) len, AUDIT_HASH_LEN))
                memcpy(dst, s, AUDIT_HASH_LEN + 1);
        else
                snprintf(dst, AUDIT_HASH_LEN + 1, "%s", marker);
}

static void copy_chain_id(char dst[AUDIT_CHAIN_ID_LEN + 1], sqlite3_stmt *st, int i) {
        const char *s = (const char *) sqlite3_column_text(st, i);
        if (is_lower_hex(s, s ? strlen(s) : 0, AUDIT_CHAIN_ID_LEN))
                memcpy(dst, s, AUDIT_CHAIN_ID_LEN + 1);
        else
                dst[0] = '\0';
}

int audit_store_anchor(sqlite3 *db, char chain_id[AUDIT_CHAIN_ID_LEN + 1], AuditHead *ret,
                       int *ret_rows) {
        sqlite3_stmt *st;
        int rows = 0, rc = sqlite3_prepare_v2(db, "SELECT chain_id, seq, hash FROM audit_anchor",
                                              -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                if (++rows == 1) {
                        copy_chain_id(chain_id, st, 0);
                        ret->seq = sqlite3_column_int64(st, 1);
                        copy_hash(ret->hash, st, 2, "malformed-anchor-hash");
                }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
                return sqlite_errno(rc);
        *ret_rows = rows;
        return 0;
}

int audit_store_head(sqlite3 *db, AuditHead *ret, char chain_id[AUDIT_CHAIN_ID_LEN + 1]) {
        sqlite3_stmt *st;
        int rc = sqlite3_prepare_v2(db, AUDIT_STORE_HEAD_SQL, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        int r = audit_store_head_with(st, ret, chain_id);
        sqlite3_finalize(st);
        return r;
}

int audit_store_head_with(sqlite3_stmt *st, AuditHead *ret, char chain_id[AUDIT_CHAIN_ID_LEN + 1]) {
        int rc, r = -EBADMSG;
        if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *hash = (const char *) sqlite3_column_text(st, 2);
                if (hash && strlen(hash) == AUDIT_HASH_LEN) {
                        if (chain_id)
                                copy_chain_id(chain_id, st, 0);
                        ret->seq = sqlite3_column_int64(st, 1);
                        memcpy(ret->hash, hash, AUDIT_HASH_LEN + 1);
                        r = 0;
                }
        } else if (rc != SQLITE_DONE)
                r = sqlite_errno(rc);
        return r;
}

/* The text of column i; an embedded NUL or NULL (the schema forbids it, a tamperer need
 * not) clears *ok: the hash covers the text only up to the first NUL. */
static const char *column_text(sqlite3_stmt *st, int i, bool *ok) {
        const char *s = (const char *) sqlite3_column_text(st, i);
        if (!s) {
                *ok = false;
                return "";
        }
        if (strlen(s) != (size_t) sqlite3_column_bytes(st, i))
                *ok = false;
        return s;
}

static int foreach_row(sqlite3_stmt *st, AuditRecordFn fn, void *userdata);

int audit_store_foreach(sqlite3 *db, const AuditFilter *f, AuditRecordFn fn, void *userdata) {
        static const AuditFilter all = { .uid_only = -1 };
        sqlite3_stmt *st;
        char sql[1024];

        if (!f)
                f = &all;
        /* Only the filters asked for, each a plain term: "?1 = 0 OR at >= ?1" would keep
         * sqlite from any index and walk the whole log for every query. A since with a
         * person's filter reads by time, each record's request looked up by its key: else
         * sqlite reads all of that person's records, or requests, whatever the window, and
         * narrowing the window would not help a person with a long history. */
        bool by_time = f->since && !f->request_id && (f->user || f->uid_only >= 0);
        const char *user_filter = by_time ? " AND (actor = ?4 OR EXISTS (SELECT 1 FROM requests r"
                                            " WHERE r.id = audit.request_id AND r.requester = ?4))"
                                          : " AND (actor = ?4 OR request_id IN"
                                            " (SELECT id FROM requests WHERE requester = ?4))";
        const char *uid_filter =
                by_time ? " AND EXISTS (SELECT 1 FROM requests r"
                          " WHERE r.id = audit.request_id AND r.requester_uid = ?5)"
                        : " AND request_id IN"
                          " (SELECT id FROM requests WHERE requester_uid = ?5)";
        snprintf(sql, sizeof(sql),
                 /* the newest `limit` matches, shown oldest first */
                 "SELECT * FROM (SELECT seq, at, event, actor, actor_uid, request_id, details,"
                 " prev_hash, hash FROM audit%s WHERE 1%s%s%s%s%s%s%s ORDER BY seq %s LIMIT ?6)"
                 " ORDER BY seq",
                 by_time ? " INDEXED BY audit_at" : "", f->since ? " AND at >= ?1" : "",
                 f->until ? " AND at <= ?2" : "", f->request_id ? " AND request_id = ?3" : "",
                 f->user ? user_filter : "", f->uid_only >= 0 ? uid_filter : "",
                 /* up to the newest record old enough: a clock stepped back must not leave a
                  * hole in what is archived */
                 f->upto_at ? " AND seq <= (SELECT MAX(seq) FROM audit WHERE at <= ?7)" : "",
                 f->after_seq ? " AND seq > ?8" : "", f->oldest ? "ASC" : "DESC");
        int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        sqlite3_bind_int64(st, 1, (sqlite3_int64) f->since);
        sqlite3_bind_int64(st, 2, (sqlite3_int64) f->until);
        sqlite3_bind_int64(st, 3, f->request_id);
        if (f->user)
                sqlite3_bind_text(st, 4, f->user, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, 4);
        sqlite3_bind_int64(st, 5, f->uid_only);
        sqlite3_bind_int64(st, 6, f->limit ? (sqlite3_int64) f->limit : -1);
        sqlite3_bind_int64(st, 7, (sqlite3_int64) f->upto_at);
        sqlite3_bind_int64(st, 8, f->after_seq);

        return foreach_row(st, fn, userdata);
}

int audit_store_foreach_all(sqlite3 *db, AuditRecordFn fn, void *userdata) {
        sqlite3_stmt *st;
        /* seq is the rowid: a plain scan of the table, no sort, no subquery to hold. */
        int rc = sqlite3_prepare_v2(db,
                                    "SELECT seq, at, event, actor, actor_uid, request_id, details,"
                                    " prev_hash, hash FROM audit ORDER BY seq",
                                    -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        return foreach_row(st, fn, userdata);
}

/* Steps st (the columns of audit, in table order) and finalizes it. */
static int foreach_row(sqlite3_stmt *st, AuditRecordFn fn, void *userdata) {
        int rc, r = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                bool ok = true;
                AuditRecord rec = {
                        .seq = sqlite3_column_int64(st, 0),
                        .at = (uint64_t) sqlite3_column_int64(st, 1),
                        .event = (char *) column_text(st, 2, &ok),
                        .actor = (char *) column_text(st, 3, &ok),
                        .actor_uid = sqlite3_column_int64(st, 4),
                        .request_id = sqlite3_column_int64(st, 5),
                        .details = (char *) column_text(st, 6, &ok),
                };
                copy_hash(rec.prev_hash, st, 7, "malformed-prev-hash");
                copy_hash(rec.hash, st, 8, "malformed-hash");
                if (!ok) /* text the hash does not cover: the record is not what was written */
                        snprintf(rec.hash, sizeof(rec.hash), "text-with-nul-or-null");
                if ((r = fn(&rec, userdata)) < 0)
                        break;
        }
        if (r >= 0 && rc != SQLITE_DONE)
                r = sqlite_errno(rc);
        sqlite3_finalize(st);
        return r < 0 ? r : 0;
}

int audit_store_insert(sqlite3 *db, const AuditRecord *r) {
        sqlite3_stmt *st;
        int rc = sqlite3_prepare_v2(db, AUDIT_STORE_INSERT_SQL, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        int k = audit_store_insert_with(st, r);
        sqlite3_finalize(st);
        return k;
}

int audit_store_insert_with(sqlite3_stmt *st, const AuditRecord *r) {
        sqlite3_bind_int64(st, 1, r->seq);
        sqlite3_bind_int64(st, 2, (sqlite3_int64) r->at);
        sqlite3_bind_text(st, 3, r->event, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, r->actor, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, r->actor_uid);
        sqlite3_bind_int64(st, 6, r->request_id);
        sqlite3_bind_text(st, 7, r->details, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, r->prev_hash, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 9, r->hash, -1, SQLITE_STATIC);
        return sqlite_errno(sqlite3_step(st));
}

int audit_store_advance_anchor(sqlite3 *db, int64_t seq, const char *hash) {
        sqlite3_stmt *st;
        int rc = sqlite3_prepare_v2(db, "UPDATE audit_anchor SET seq = ?1, hash = ?2 WHERE id = 1",
                                    -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        sqlite3_bind_int64(st, 1, seq);
        sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
                return sqlite_errno(rc);
        return sqlite_errno(
                sqlite3_exec(db, "DELETE FROM audit WHERE seq <= (SELECT seq FROM audit_anchor)",
                             NULL, NULL, NULL));
}
