/* SPDX-License-Identifier: MIT */
#include "store-fleet.h"

#include <errno.h>
#include <sqlite3.h>

#include "sqlite-errno.h"

int db_fleet_cursor_load(BrokerDb *db, const char *host, FleetCursor *ret) {
        sqlite3_stmt *st;
        int rc = db_prepare(
                db, "SELECT seq, changes_seen, updated_at FROM fleet_cursor WHERE host = ?1", &st);
        if (rc < 0)
                return rc;
        sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        *ret = (FleetCursor){};
        if (rc == SQLITE_ROW)
                *ret = (FleetCursor){ .seq = sqlite3_column_int64(st, 0),
                                      .changes_seen = (uint64_t) sqlite3_column_int64(st, 1),
                                      .updated_at = (uint64_t) sqlite3_column_int64(st, 2) };
        db_release(db, st);
        return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sqlite_errno(rc);
}

int db_fleet_cursor_save(BrokerDb *db, const char *host, const FleetCursor *c) {
        sqlite3_stmt *st;
        int rc = db_prepare(db,
                            "INSERT INTO fleet_cursor (host, seq, changes_seen, updated_at)"
                            " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (host) DO UPDATE SET"
                            " seq = excluded.seq, changes_seen = excluded.changes_seen,"
                            " updated_at = excluded.updated_at",
                            &st);
        if (rc < 0)
                return rc;
        sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, c->seq);
        sqlite3_bind_int64(st, 3, (sqlite3_int64) c->changes_seen);
        sqlite3_bind_int64(st, 4, (sqlite3_int64) c->updated_at);
        rc = sqlite3_step(st);
        db_release(db, st);
        return rc == SQLITE_DONE ? 0 : sqlite_errno(rc);
}

int db_fleet_grant_save(BrokerDb *db, const char *host, int64_t fleet_id, int64_t local_id) {
        sqlite3_stmt *st;
        int rc = db_prepare(
                db, "INSERT INTO fleet_grants (host, fleet_id, local_id) VALUES (?1, ?2, ?3)", &st);
        if (rc < 0)
                return rc;
        sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, fleet_id);
        sqlite3_bind_int64(st, 3, local_id);
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
