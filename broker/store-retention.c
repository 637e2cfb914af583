/* SPDX-License-Identifier: MIT */
#include "store-retention.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "cleanup.h"
#include "sqlite-errno.h"

int db_count_filings(BrokerDb *db, uid_t uid, uint64_t since, unsigned limit, unsigned *ret) {
        sqlite3_stmt *st;
        /* No index on (requester_uid, created_at) yet: ids grow with time, so the rows of the
         * window are the rowid range after the newest row filed before it. */
        int rc = sqlite3_prepare_v2(
                db_sqlite(db),
                "SELECT COUNT(*) FROM (SELECT 1 FROM requests"
                " WHERE id > COALESCE((SELECT id FROM requests WHERE created_at < ?2"
                "                      ORDER BY id DESC LIMIT 1), 0)"
                " AND requester_uid = ?1 AND break_glass = 0 LIMIT ?3)",
                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        sqlite3_bind_int64(st, 1, (sqlite3_int64) uid);
        sqlite3_bind_int64(st, 2, (sqlite3_int64) since);
        sqlite3_bind_int64(st, 3, (sqlite3_int64) limit);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = (unsigned) sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return rc == SQLITE_ROW ? 0 : (sqlite_errno(rc) ?: -EIO);
}

int db_disk_space(BrokerDb *db, uint64_t *ret_available, uint64_t *ret_total) {
        const char *path = sqlite3_db_filename(db_sqlite(db), "main");
        struct statvfs sv;

        if (!path || !*path)
                return -ENOENT; /* an in-memory database has no file system */
        if (statvfs(path, &sv) < 0)
                return -errno;
        *ret_available = (uint64_t) sv.f_bavail * sv.f_frsize;
        *ret_total = (uint64_t) sv.f_blocks * sv.f_frsize;
        return 0;
}

/* The errno of the last failed system call on the database file or on its WAL
 * (SQLITE_FCNTL_LAST_ERRNO): a failed commit does not reach sqlite3_system_errno(). */
static int last_file_errno(sqlite3 *s) {
        sqlite3_file *wal = NULL;
        int e = 0;

        if (sqlite3_file_control(s, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal) == SQLITE_OK &&
            wal && wal->pMethods &&
            wal->pMethods->xFileControl(wal, SQLITE_FCNTL_LAST_ERRNO, &e) == SQLITE_OK && e != 0)
                return e;
        e = 0;
        if (sqlite3_file_control(s, "main", SQLITE_FCNTL_LAST_ERRNO, &e) == SQLITE_OK && e != 0)
                return e;
        return sqlite3_system_errno(s);
}

int db_failure_errno(BrokerDb *db, int error) {
        sqlite3 *s = db_sqlite(db);
        int code = sqlite3_extended_errcode(s);

        switch (code & 0xff) {
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_IOERR:
        case SQLITE_CANTOPEN: {
                /* The system call's errno tells a file system that went read-only (ext4's
                 * errors=remount-ro) or filled up from a plain I/O error; failing that, the
                 * file system's own flags. */
                switch (last_file_errno(s)) {
                case ENOSPC:
                case EDQUOT:
                        return -ENOSPC;
                case EROFS:
                        return -EROFS;
                }
                const char *path = sqlite3_db_filename(s, "main");
                struct statvfs sv;
                if (path && *path && statvfs(path, &sv) >= 0 && (sv.f_flag & ST_RDONLY))
                        return -EROFS;
                break;
        }
        }
        if (error == -EACCES)
                return -EROFS; /* sqlite_errno() says EACCES for SQLITE_READONLY */
        return error;
}

/* A row as a JSON object of its columns, by name, with their stored types. */
static json_object *row_to_json(sqlite3_stmt *st) {
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        for (int i = 0; i < sqlite3_column_count(st); i++) {
                int type = sqlite3_column_type(st, i);
                json_object *v =
                        type == SQLITE_INTEGER ? json_object_new_int64(sqlite3_column_int64(st, i))
                        : type == SQLITE_FLOAT
                                ? json_object_new_double(sqlite3_column_double(st, i))
                        : type == SQLITE_TEXT ? json_object_new_string_len(
                                                        (const char *) sqlite3_column_text(st, i),
                                                        sqlite3_column_bytes(st, i))
                                              : NULL; /* NULL (no blobs in this schema) */
                if (type != SQLITE_NULL && type != SQLITE_BLOB && !v)
                        goto oom;
                if (json_object_object_add(o, sqlite3_column_name(st, i), v) < 0) {
                        json_object_put(v);
                        goto oom;
                }
        }
        return o;
oom:
        json_object_put(o);
        return NULL;
}

/* The rows of sql (one parameter: the request id) as a JSON array, added to o as key. */
static int add_children(sqlite3 *s, json_object *o, const char *key, const char *sql, int64_t id) {
        sqlite3_stmt *st;
        int rc = sqlite3_prepare_v2(s, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        json_object *arr = json_object_new_array();
        int k = arr ? 0 : -ENOMEM;
        sqlite3_bind_int64(st, 1, id);
        while (k == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                json_object *row = row_to_json(st);
                if (!row || json_object_array_add(arr, row) < 0) {
                        json_object_put(row);
                        k = -ENOMEM;
                }
        }
        if (k == 0 && rc != SQLITE_DONE)
                k = sqlite_errno(rc) ?: -EIO;
        sqlite3_finalize(st);
        if (k == 0 && json_object_object_add(o, key, arr) < 0)
                k = -ENOMEM;
        if (k < 0)
                json_object_put(arr);
        return k;
}

int db_ended_requests(BrokerDb *db, uint64_t before, unsigned limit, json_object **ret_requests,
                      int64_t **ret_ids, size_t *ret_n) {
        sqlite3 *s = db_sqlite(db);
        sqlite3_stmt *st;
        _cleanup_free_ int64_t *ids = NULL;
        json_object *arr = json_object_new_array();
        size_t n = 0;
        int k = 0;

        if (!arr)
                return -ENOMEM;
        /* Oldest first by rowid, stopping at the limit. A session still open (on_expiry =
         * warn lets one outlive its grant) keeps its request live until it closes. */
        int rc = sqlite3_prepare_v2(
                s,
                "SELECT * FROM requests WHERE state NOT IN ('pending', 'active')"
                " AND ended_at IS NOT NULL AND ended_at < ?1"
                " AND NOT EXISTS (SELECT 1 FROM sessions s"
                "                 WHERE s.request_id = requests.id AND s.closed_at IS NULL)"
                " ORDER BY id LIMIT ?2",
                -1, &st, NULL);
        if (rc != SQLITE_OK) {
                json_object_put(arr);
                return sqlite_errno(rc);
        }
        sqlite3_bind_int64(st, 1, (sqlite3_int64) before);
        sqlite3_bind_int64(st, 2, (sqlite3_int64) limit);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                json_object *row = row_to_json(st);
                int64_t *l = reallocarray(ids, n + 1, sizeof(int64_t));
                if (!row || !l || json_object_array_add(arr, row) < 0) {
                        json_object_put(row);
                        if (l)
                                ids = l;
                        k = -ENOMEM;
                        break;
                }
                ids = l;
                ids[n++] = sqlite3_column_int64(st, 0);
        }
        if (k == 0 && rc != SQLITE_DONE)
                k = sqlite_errno(rc) ?: -EIO;
        sqlite3_finalize(st);
        for (size_t i = 0; k == 0 && i < n; i++) {
                json_object *o = json_object_array_get_idx(arr, i);
                if ((k = add_children(s, o, "approvals",
                                      "SELECT * FROM approvals WHERE request_id = ?1"
                                      " ORDER BY at, approver_uid",
                                      ids[i])) < 0 ||
                    (k = add_children(s, o, "sessions",
                                      "SELECT * FROM sessions WHERE request_id = ?1 ORDER BY id",
                                      ids[i])) < 0)
                        break;
        }
        if (k < 0) {
                json_object_put(arr);
                return k;
        }
        *ret_requests = arr;
        *ret_ids = TAKE_PTR(ids);
        *ret_n = n;
        return 0;
}

int db_delete_requests(BrokerDb *db, const int64_t *ids, size_t n) {
        static const char *const statements[] = {
                /* Children first: both reference requests(id). */
                "DELETE FROM sessions WHERE request_id = ?1",
                "DELETE FROM approvals WHERE request_id = ?1",
                "DELETE FROM requests WHERE id = ?1",
        };
        sqlite3 *s = db_sqlite(db);

        for (size_t j = 0; j < ELEMENTSOF(statements); j++) {
                sqlite3_stmt *st;
                int rc = sqlite3_prepare_v2(s, statements[j], -1, &st, NULL);
                if (rc != SQLITE_OK)
                        return sqlite_errno(rc);
                for (size_t i = 0; i < n; i++) {
                        sqlite3_reset(st);
                        sqlite3_bind_int64(st, 1, ids[i]);
                        rc = sqlite3_step(st);
                        if (rc != SQLITE_DONE) {
                                sqlite3_finalize(st);
                                return sqlite_errno(rc) ?: -EIO;
                        }
                }
                sqlite3_finalize(st);
        }
        return 0;
}
