/* SPDX-License-Identifier: MIT */
/* The sessions table: the sessions pam_jit registered under grants. */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "sqlite-errno.h"
#include "store.h"

#define SESSION_COLUMNS                                                                            \
        "s.id, s.request_id, s.service, s.tty, s.rhost, s.pid, s.pid_start, s.boot_id,"            \
        " s.opened_at, s.closed_at, s.end_reason, s.warned"

static char *column_strdup(sqlite3_stmt *st, int i, bool *ok) {
        const char *s = (const char *) sqlite3_column_text(st, i);
        if (!s)
                return NULL;
        char *d = strdup(s);
        if (!d)
                *ok = false;
        return d;
}

static int read_row(sqlite3_stmt *st, SessionRow *s) {
        bool ok = true;
        *s = (SessionRow){
                .id = sqlite3_column_int64(st, 0),
                .request_id = sqlite3_column_int64(st, 1),
                .service = column_strdup(st, 2, &ok),
                .tty = column_strdup(st, 3, &ok),
                .rhost = column_strdup(st, 4, &ok),
                .pid = (pid_t) sqlite3_column_int64(st, 5),
                .pid_start = (uint64_t) sqlite3_column_int64(st, 6),
                .opened_at = (uint64_t) sqlite3_column_int64(st, 8),
                .closed_at = (uint64_t) sqlite3_column_int64(st, 9),
                .end_reason = column_strdup(st, 10, &ok),
                .warned = sqlite3_column_int(st, 11),
        };
        const char *boot = (const char *) sqlite3_column_text(st, 7);
        snprintf(s->boot_id, sizeof(s->boot_id), "%s", boot ?: "");
        if (sqlite3_column_count(st) > 13) {
                s->grant_active = sqlite3_column_int(st, 12);
                s->grant_deadline_boot = (uint64_t) sqlite3_column_int64(st, 13);
        }
        if (!ok || !s->service) {
                session_row_done(s);
                return -ENOMEM;
        }
        return 0;
}

void session_row_done(SessionRow *s) {
        free(s->service);
        free(s->tty);
        free(s->rhost);
        free(s->end_reason);
        *s = (SessionRow){};
}

void session_rows_free(SessionRow *rows, size_t n) {
        for (size_t i = 0; i < n; i++)
                session_row_done(&rows[i]);
        free(rows);
}

/* Runs st (bound by the caller) and collects its rows. */
static int read_rows(BrokerDb *db, sqlite3_stmt *st, SessionRow **ret, size_t *ret_n) {
        SessionRow *rows = NULL;
        size_t n = 0, allocated = 0;
        int rc, r = 0;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (n == DB_LIST_MAX)
                        break;
                if (n == allocated) {
                        size_t k = allocated ? allocated * 2 : 8;
                        SessionRow *more = reallocarray(rows, k, sizeof(SessionRow));
                        if (!more) {
                                r = -ENOMEM;
                                break;
                        }
                        rows = more;
                        allocated = k;
                }
                if ((r = read_row(st, &rows[n])) < 0)
                        break;
                n++;
        }
        if (r == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
                r = sqlite_errno(rc);
        db_release(db, st);
        if (r < 0) {
                session_rows_free(rows, n);
                return r;
        }
        *ret = rows;
        *ret_n = n;
        return 0;
}

int db_session_grant(BrokerDb *db, int64_t id, Request **ret) {
        sqlite3_stmt *st;
        int r = db_prepare(
                db, "SELECT requester, requester_uid, service, once FROM requests WHERE id = ?1",
                &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
                db_release(db, st);
                return rc == SQLITE_DONE ? -ENOENT : sqlite_errno(rc);
        }
        bool ok = true;
        Request *g = calloc(1, sizeof(Request));
        if (g) {
                g->id = id;
                g->requester = column_strdup(st, 0, &ok);
                g->requester_uid = (uid_t) sqlite3_column_int64(st, 1);
                g->service = column_strdup(st, 2, &ok);
                g->once = sqlite3_column_int(st, 3);
        }
        db_release(db, st);
        if (!g || !ok || !g->requester || !g->service) {
                request_free(g);
                return -ENOMEM;
        }
        *ret = g;
        return 0;
}

int db_insert_session(BrokerDb *db, const SessionRow *s, int64_t *ret_id) {
        sqlite3_stmt *st;
        int r = db_prepare(
                db,
                "INSERT INTO sessions (id, request_id, service, tty, rhost, pid, pid_start,"
                " boot_id, opened_at) VALUES (?9, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, s->request_id);
        sqlite3_bind_text(st, 2, s->service, -1, SQLITE_STATIC);
        if (s->tty)
                sqlite3_bind_text(st, 3, s->tty, -1, SQLITE_STATIC);
        if (s->rhost)
                sqlite3_bind_text(st, 4, s->rhost, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, s->pid);
        sqlite3_bind_int64(st, 6, (sqlite3_int64) s->pid_start);
        sqlite3_bind_text(st, 7, s->boot_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 8, (sqlite3_int64) s->opened_at);
        if (s->id > 0)
                sqlite3_bind_int64(st, 9, s->id);
        int rc = sqlite3_step(st);
        db_release(db, st);
        if (rc != SQLITE_DONE)
                return sqlite_errno(rc);
        *ret_id = sqlite3_last_insert_rowid(db_sqlite(db));
        return 0;
}

int db_next_session_id(BrokerDb *db, int64_t *ret) {
        sqlite3_stmt *st;
        /* Past every id the table has had (AUTOINCREMENT's counter), not only those it has. */
        int r = db_prepare(
                db,
                "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence"
                " WHERE name = 'sessions'), 0), COALESCE((SELECT MAX(id) FROM sessions), 0))",
                &st);
        if (r < 0)
                return r;
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = sqlite3_column_int64(st, 0) + 1;
        db_release(db, st);
        return rc == SQLITE_ROW ? 0 : sqlite_errno(rc);
}

int db_session_exists(BrokerDb *db, int64_t id) {
        sqlite3_stmt *st;
        int r = db_prepare(db, "SELECT 1 FROM sessions WHERE id = ?1", &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        int rc = sqlite3_step(st);
        db_release(db, st);
        return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : sqlite_errno(rc);
}

int db_close_session(BrokerDb *db, int64_t id, uint64_t at, const char *reason) {
        sqlite3_stmt *st;
        int r = db_prepare(db,
                           "UPDATE sessions SET closed_at = ?2, end_reason = ?3"
                           " WHERE id = ?1 AND closed_at IS NULL",
                           &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, (sqlite3_int64) at);
        sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        db_release(db, st);
        return rc == SQLITE_DONE ? sqlite3_changes(db_sqlite(db)) : sqlite_errno(rc);
}

int db_mark_session_warned(BrokerDb *db, int64_t id) {
        sqlite3_stmt *st;
        int r = db_prepare(db, "UPDATE sessions SET warned = 1 WHERE id = ?1", &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        int rc = sqlite3_step(st);
        db_release(db, st);
        return sqlite_errno(rc);
}

int db_get_session(BrokerDb *db, int64_t id, SessionRow *ret) {
        sqlite3_stmt *st;
        int r = db_prepare(db, "SELECT " SESSION_COLUMNS " FROM sessions s WHERE s.id = ?1", &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        int rc = sqlite3_step(st);
        r = rc == SQLITE_ROW ? read_row(st, ret) : rc == SQLITE_DONE ? -ENOENT : sqlite_errno(rc);
        db_release(db, st);
        return r;
}

int db_list_sessions(BrokerDb *db, int64_t request_id, SessionRow **ret, size_t *ret_n) {
        sqlite3_stmt *st;
        int r = db_prepare(db,
                           "SELECT " SESSION_COLUMNS
                           " FROM sessions s WHERE s.request_id = ?1 ORDER BY s.id",
                           &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, request_id);
        return read_rows(db, st, ret, ret_n);
}

int db_open_sessions(BrokerDb *db, SessionRow **ret, size_t *ret_n) {
        sqlite3_stmt *st;
        int r = db_prepare(db,
                           "SELECT " SESSION_COLUMNS ", r.state = 'active', r.deadline_boot"
                           " FROM sessions s JOIN requests r ON r.id = s.request_id"
                           " WHERE s.closed_at IS NULL ORDER BY s.id",
                           &st);
        if (r < 0)
                return r;
        return read_rows(db, st, ret, ret_n);
}

int db_sessions_to_warn(BrokerDb *db, const char *boot_id, SessionRow **ret, size_t *ret_n) {
        sqlite3_stmt *st;
        int r = db_prepare(db,
                           "SELECT " SESSION_COLUMNS ", r.state = 'active', r.deadline_boot"
                           " FROM sessions s JOIN requests r ON r.id = s.request_id"
                           " WHERE s.closed_at IS NULL AND s.warned = 0 AND r.state = 'active'"
                           " AND r.boot_id = ?1 ORDER BY s.id",
                           &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, boot_id, -1, SQLITE_STATIC);
        return read_rows(db, st, ret, ret_n);
}

/* Session open/close commit with synchronous=NORMAL: in WAL mode the commit is in the WAL
 * (the page cache) when it returns, so it survives a crash or restart of the broker, not
 * yet a power loss; the WAL's fdatasync() right after (wal-sync.c) closes that gap. Per connection,
 * and only between transactions (sqlite applies it to the next one). */
int db_session_durability(BrokerDb *db, bool relaxed) {
        if (!sqlite3_get_autocommit(db_sqlite(db)))
                return -EBUSY; /* inside a transaction: it would not apply to it alone */
        return sqlite_errno(
                sqlite3_exec(db_sqlite(db),
                             relaxed ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL",
                             NULL, NULL, NULL));
}

/* The path of the write-ahead log, for its fdatasync() (wal-sync.c): every commit in it so
 * far (NORMAL ones too) is on disk after one. The WAL is append-only between checkpoints and
 * its frames are checksummed in a chain, so a power loss before it drops only a tail of
 * commits, never one that a later, synced record (its hash chain) depends on. A checkpoint
 * syncs the WAL itself. */
int db_wal_path(BrokerDb *db, char **ret) {
        const char *file = sqlite3_db_filename(db_sqlite(db), "main");

        if (!file || !*file)
                return -ENOENT;
        return asprintf(ret, "%s-wal", file) < 0 ? -ENOMEM : 0;
}
