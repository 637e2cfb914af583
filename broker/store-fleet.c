/* SPDX-License-Identifier: MIT */
#include "store-fleet.h"

#include <errno.h>
#include <sqlite3.h>

#include "sqlite-errno.h"

int db_fleet_cursor_load(BrokerDb *db, const char *host, FleetCursor *ret) {
        sqlite3_stmt *st;
        int rc = db_prepare(
                db,
                "SELECT seq, changes_seen, updated_at, last_sync FROM fleet_cursor WHERE host = ?1",
                &st);
        if (rc < 0)
                return rc;
        sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        *ret = (FleetCursor){};
        if (rc == SQLITE_ROW)
                *ret = (FleetCursor){ .seq = sqlite3_column_int64(st, 0),
                                      .changes_seen = (uint64_t) sqlite3_column_int64(st, 1),
                                      .updated_at = (uint64_t) sqlite3_column_int64(st, 2),
                                      .last_sync = (uint64_t) sqlite3_column_int64(st, 3) };
        db_release(db, st);
        return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sqlite_errno(rc);
}

int db_fleet_cursor_save(BrokerDb *db, const char *host, const FleetCursor *c) {
        sqlite3_stmt *st;
        int rc = db_prepare(db,
                            "INSERT INTO fleet_cursor (host, seq, changes_seen, updated_at,"
                            " last_sync) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (host) DO UPDATE"
                            " SET seq = excluded.seq, changes_seen = excluded.changes_seen,"
                            " updated_at = excluded.updated_at, last_sync = excluded.last_sync",
                            &st);
        if (rc < 0)
                return rc;
        sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, c->seq);
        sqlite3_bind_int64(st, 3, (sqlite3_int64) c->changes_seen);
        sqlite3_bind_int64(st, 4, (sqlite3_int64) c->updated_at);
        sqlite3_bind_int64(st, 5, (sqlite3_int64) c->last_sync);
        rc = sqlite3_step(st);
        db_release(db, st);
        return rc == SQLITE_DONE ? 0 : sqlite_errno(rc);
}

int db_fleet_grant_save(BrokerDb *db, const char *host, int64_t fleet_id, int64_t local_id,
                        uint64_t own_deadline_boot) {
        sqlite3_stmt *st;
        int rc = db_prepare(db,
                            "INSERT INTO fleet_grants (host, fleet_id, local_id, deadline_boot)"
                            " VALUES (?1, ?2, ?3, ?4)",
                            &st);
        if (rc < 0)
                return rc;
        sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, fleet_id);
        sqlite3_bind_int64(st, 3, local_id);
        sqlite3_bind_int64(st, 4, (sqlite3_int64) own_deadline_boot);
        rc = sqlite3_step(st);
        db_release(db, st);
        return rc == SQLITE_DONE ? 0 : sqlite_errno(rc);
}

int db_fleet_grant_find(BrokerDb *db, const char *host, int64_t fleet_id, int64_t *ret_local_id) {
        sqlite3_stmt *st;
        int rc = db_prepare(
                db, "SELECT local_id FROM fleet_grants WHERE host = ?1 AND fleet_id = ?2", &st);
        if (rc < 0)
                return rc;
        sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, fleet_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret_local_id = sqlite3_column_int64(st, 0);
        db_release(db, st);
        return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sqlite_errno(rc);
}

int db_fleet_grant_own_deadline(BrokerDb *db, int64_t local_id, uint64_t *ret_deadline_boot) {
        sqlite3_stmt *st;
        int rc = db_prepare(db,
                            "SELECT deadline_boot FROM fleet_grants WHERE local_id = ?1 AND"
                            " deadline_boot IS NOT NULL",
                            &st);
        if (rc < 0)
                return rc;
        sqlite3_bind_int64(st, 1, local_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret_deadline_boot = (uint64_t) sqlite3_column_int64(st, 0);
        db_release(db, st);
        return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sqlite_errno(rc);
}

int db_fleet_grants_honour_until(BrokerDb *db, const char *host, const char *boot_id,
                                 uint64_t until_boot) {
        sqlite3_stmt *st;
        /* Only rows whose deadline moves are written: an unchanged one costs no write. */
        int rc = db_prepare(db,
                            "UPDATE requests SET deadline_boot = min(f.deadline_boot, ?3)"
                            " FROM fleet_grants AS f WHERE f.host = ?1 AND f.local_id ="
                            " requests.id AND f.deadline_boot IS NOT NULL AND requests.state ="
                            " 'active' AND requests.boot_id = ?2 AND requests.deadline_boot IS"
                            " NOT min(f.deadline_boot, ?3)",
                            &st);
        if (rc < 0)
                return rc;
        sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, boot_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, until_boot > INT64_MAX ? INT64_MAX : (sqlite3_int64) until_boot);
        rc = sqlite3_step(st);
        int changed = rc == SQLITE_DONE ? sqlite3_changes(db_sqlite(db)) : 0;
        db_release(db, st);
        return rc == SQLITE_DONE ? changed : sqlite_errno(rc);
}

int db_fleet_grants_active(BrokerDb *db, const char *host, int64_t *ids, size_t max) {
        sqlite3_stmt *st;
        int rc = db_prepare(db,
                            "SELECT f.fleet_id FROM fleet_grants AS f JOIN requests AS r ON r.id ="
                            " f.local_id WHERE f.host = ?1 AND r.state = 'active' ORDER BY"
                            " f.fleet_id LIMIT ?2",
                            &st);
        if (rc < 0)
                return rc;
        sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64) max);
        size_t n = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < max)
                ids[n++] = sqlite3_column_int64(st, 0);
        db_release(db, st);
        return rc == SQLITE_DONE || rc == SQLITE_ROW ? (int) n : sqlite_errno(rc);
}
