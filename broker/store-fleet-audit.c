/* SPDX-License-Identifier: MIT */
#include "store-fleet-audit.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "sqlite-errno.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)

int db_fleet_audit_append(BrokerDb *db, const char *host, const char *kind, int64_t fleet_id,
                          const char *actor, uint64_t at, const char *data) {
        AuditRecord rec = {
                .at = at,
                .event = (char *) kind,
                .actor = (char *) actor,
                .actor_uid = -1,
                .request_id = fleet_id,
                .details = (char *) data,
                .prev_hash = AUDIT_GENESIS_HASH,
        };
        sqlite3_stmt *st;
        int rc = db_prepare(db,
                            "SELECT seq, hash FROM fleet_audit WHERE host = ?1 ORDER BY seq DESC"
                            " LIMIT 1",
                            &st);
        if (rc < 0)
                return rc;
        sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        rec.seq = 1;
        if (rc == SQLITE_ROW) {
                const char *prev = (const char *) sqlite3_column_text(st, 1);
                rec.seq = sqlite3_column_int64(st, 0) + 1;
                if (!prev || strlen(prev) != AUDIT_HASH_LEN)
                        rc = SQLITE_CORRUPT;
                else
                        memcpy(rec.prev_hash, prev, sizeof(rec.prev_hash));
        }
        db_release(db, st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                return sqlite_errno(rc);
        int r = audit_record_hash(&rec, rec.hash);
        if (r < 0)
                return r;
        rc = db_prepare(db,
                        "INSERT INTO fleet_audit (host, seq, at, kind, request_id, actor, data,"
                        " prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        &st);
        if (rc < 0)
                return rc;
        sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, rec.seq);
        sqlite3_bind_int64(st, 3, (sqlite3_int64) at);
        sqlite3_bind_text(st, 4, kind, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, fleet_id);
        sqlite3_bind_text(st, 6, actor, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, data, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, rec.prev_hash, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 9, rec.hash, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        db_release(db, st);
        return rc == SQLITE_DONE ? 0 : sqlite_errno(rc);
}

static const char *string_of(json_object *o, const char *key) {
        json_object *v;
        return o && json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

int db_fleet_audit_note(BrokerDb *db, JitEvent event, const char *actor, int64_t local_id,
                        uint64_t at, json_object *details) {
        const char *kind;
        switch (event) {
        case JIT_EVENT_FLEET_GRANTED:
                kind = FLEET_AUDIT_GRANTED;
                break;
        case JIT_EVENT_SESSION_OPENED:
        case JIT_EVENT_COMMAND_USED:
                kind = FLEET_AUDIT_USED;
                break;
        case JIT_EVENT_EXPIRED:
        case JIT_EVENT_REVOKED:
        case JIT_EVENT_CONSUMED:
                kind = FLEET_AUDIT_ENDED;
                break;
        default:
                return 0;
        }
        if (local_id <= 0)
                return 0;

        sqlite3_stmt *st;
        int rc = db_prepare(db,
                            "SELECT host, fleet_id, first_used_at IS NOT NULL FROM fleet_grants"
                            " WHERE local_id = ?1",
                            &st);
        if (rc < 0)
                return rc;
        sqlite3_bind_int64(st, 1, local_id);
        rc = sqlite3_step(st);
        _cleanup_free_ char *host = NULL;
        int64_t fleet_id = 0;
        bool used = false;
        if (rc == SQLITE_ROW) {
                const char *h = (const char *) sqlite3_column_text(st, 0);
                host = h ? strdup(h) : NULL;
                fleet_id = sqlite3_column_int64(st, 1);
                used = sqlite3_column_int(st, 2) != 0;
                if (!host)
                        rc = SQLITE_NOMEM;
        }
        db_release(db, st);
        if (rc == SQLITE_DONE)
                return 0; /* a local request: nothing for the fleet */
        if (rc != SQLITE_ROW)
                return sqlite_errno(rc);

        if (STREQ(kind, FLEET_AUDIT_USED)) {
                if (used)
                        return 0; /* its first use is recorded already */
                rc = db_prepare(
                        db, "UPDATE fleet_grants SET first_used_at = ?2 WHERE local_id = ?1", &st);
                if (rc < 0)
                        return rc;
                sqlite3_bind_int64(st, 1, local_id);
                sqlite3_bind_int64(st, 2, (sqlite3_int64) at);
                rc = sqlite3_step(st);
                db_release(db, st);
                if (rc != SQLITE_DONE)
                        return sqlite_errno(rc);
        }

        /* What the fleet needs of it: no uid, no command line (they are this host's). */
        _cleanup_(json_object_putp) json_object *data = json_object_new_object();
        if (!data)
                return -ENOMEM;
        json_object_object_add(data, "local_id", json_object_new_int64(local_id));
        if (STREQ(kind, FLEET_AUDIT_USED))
                json_object_object_add(data, "by", json_object_new_string(jit_event_name(event)));
        else {
                static const char *const keys[] = { "requester", "service", "state", "expires_at",
                                                    "end_reason" };
                for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                        const char *v = string_of(details, keys[i]);
                        if (v)
                                json_object_object_add(data, keys[i], json_object_new_string(v));
                }
        }
        const char *text = json_object_to_json_string_ext(
                data, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text)
                return -ENOMEM;
        return db_fleet_audit_append(db, host, kind, fleet_id, actor ?: "broker", at, text);
}

int db_fleet_audit_waiting(BrokerDb *db, const char *host, AuditRecord *records, size_t max) {
        sqlite3_stmt *st;
        int rc = db_prepare(db,
                            "SELECT seq, at, kind, request_id, actor, data, prev_hash, hash FROM"
                            " fleet_audit WHERE host = ?1 AND uploaded = 0 ORDER BY seq LIMIT ?2",
                            &st);
        if (rc < 0)
                return rc;
        sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64) max);
        size_t n = 0;
        int r = 0;
        while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                AuditRecord *a = &records[n];
                const char *ph = (const char *) sqlite3_column_text(st, 6),
                           *h = (const char *) sqlite3_column_text(st, 7);
                *a = (AuditRecord){
                        .seq = sqlite3_column_int64(st, 0),
                        .at = (uint64_t) sqlite3_column_int64(st, 1),
                        .event = strdup((const char *) sqlite3_column_text(st, 2) ?: ""),
                        .request_id = sqlite3_column_int64(st, 3),
                        .actor = strdup((const char *) sqlite3_column_text(st, 4) ?: ""),
                        .actor_uid = -1,
                        .details = strdup((const char *) sqlite3_column_text(st, 5) ?: ""),
                };
                n++;
                if (!a->event || !a->actor || !a->details) {
                        r = -ENOMEM;
                        break;
                }
                if (!ph || !h || strlen(ph) != AUDIT_HASH_LEN || strlen(h) != AUDIT_HASH_LEN) {
                        r = -EBADMSG;
                        break;
                }
                memcpy(a->prev_hash, ph, sizeof(a->prev_hash));
                memcpy(a->hash, h, sizeof(a->hash));
        }
        db_release(db, st);
        if (r == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
                r = sqlite_errno(rc);
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        audit_record_done(&records[i]);
                return r;
        }
        return (int) n;
}

int db_fleet_audit_count_waiting(BrokerDb *db, const char *host) {
        sqlite3_stmt *st;
        int rc = db_prepare(db, "SELECT count(*) FROM fleet_audit WHERE host = ?1 AND uploaded = 0",
                            &st);
        if (rc < 0)
                return rc;
        sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        int n = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
        db_release(db, st);
        return rc == SQLITE_ROW ? n : sqlite_errno(rc);
}

int db_fleet_audit_uploaded(BrokerDb *db, const char *host, int64_t seq) {
        static const char *const sql[] = {
                "UPDATE fleet_audit SET uploaded = 1 WHERE host = ?1 AND seq <= ?2 AND"
                " uploaded = 0",
                "DELETE FROM fleet_audit WHERE host = ?1 AND seq < ?2 AND uploaded = 1",
        };
        for (size_t i = 0; i < ELEMENTSOF(sql); i++) {
                sqlite3_stmt *st;
                int r = db_prepare(db, sql[i], &st);
                if (r < 0)
                        return r;
                sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, seq);
                int rc = sqlite3_step(st);
                db_release(db, st);
                if (rc != SQLITE_DONE)
                        return sqlite_errno(rc);
        }
        return 0;
}
