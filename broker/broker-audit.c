/* SPDX-License-Identifier: MIT */
#include "broker-audit.h"

#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-journal.h>

#include "broker.h"
#include "cleanup.h"
#include "timeutil.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)

/* The newest record, or the anchor when the live chain is empty. */
static int audit_head(sqlite3 *db, int64_t *ret_seq, char ret_hash[AUDIT_HASH_LEN + 1], char *ret_chain,
                      size_t chain_len) {
        sqlite3_stmt *st;
        int rc = sqlite3_prepare_v2(db,
                                    "SELECT a.chain_id, COALESCE(l.seq, a.seq), COALESCE(l.hash, a.hash)"
                                    " FROM audit_anchor a LEFT JOIN"
                                    " (SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1) l WHERE a.id = 1",
                                    -1, &st, NULL);
        if (rc != SQLITE_OK)
                return -EIO;
        int r = -EIO;
        if (sqlite3_step(st) == SQLITE_ROW) {
                const char *chain = (const char *) sqlite3_column_text(st, 0);
                const char *hash = (const char *) sqlite3_column_text(st, 2);
                if (chain && hash && strlen(hash) == AUDIT_HASH_LEN) {
                        if (ret_chain)
                                snprintf(ret_chain, chain_len, "%s", chain);
                        *ret_seq = sqlite3_column_int64(st, 1);
                        memcpy(ret_hash, hash, AUDIT_HASH_LEN + 1);
                        r = 0;
                }
        }
        sqlite3_finalize(st);
        return r;
}

int audit_append(Broker *b, JitEvent event, const char *actor, int64_t actor_uid, int64_t request_id,
                 json_object *details) {
        _cleanup_(json_object_putp) json_object *d = details ?: json_object_new_object();
        sqlite3 *db = db_sqlite(b->db);
        AuditRecord rec = {
                .at = now_usec(CLOCK_REALTIME),
                .event = (char *) jit_event_name(event),
                .actor = (char *) (actor ?: "broker"),
                .actor_uid = actor_uid,
                .request_id = request_id,
        };
        int64_t head_seq;
        int r;

        if (!d)
                return -ENOMEM;
        rec.details = (char *) json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!rec.details)
                return -ENOMEM;
        if ((r = audit_head(db, &head_seq, rec.prev_hash, NULL, 0)) < 0)
                return r;
        rec.seq = head_seq + 1;
        if ((r = audit_record_hash(&rec, rec.hash)) < 0)
                return r;

        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db,
                               "INSERT INTO audit (seq, at, event, actor, actor_uid, request_id, details, prev_hash, hash)"
                               " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                               -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        sqlite3_bind_int64(st, 1, rec.seq);
        sqlite3_bind_int64(st, 2, (sqlite3_int64) rec.at);
        sqlite3_bind_text(st, 3, rec.event, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, rec.actor, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, rec.actor_uid);
        sqlite3_bind_int64(st, 6, rec.request_id);
        sqlite3_bind_text(st, 7, rec.details, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, rec.prev_hash, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 9, rec.hash, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? 0 : -EIO;
}

static void add_string(json_object *o, const char *key, const char *value) {
        if (value)
                json_object_object_add(o, key, json_object_new_string(value));
}

json_object *audit_request_details(const Request *r) {
        json_object *o = json_object_new_object();
        char t[RFC3339_BUF_MAX];

        if (!o)
                return NULL;
        add_string(o, "requester", r->requester);
        json_object_object_add(o, "requester_uid", json_object_new_int64(r->requester_uid));
        add_string(o, "service", r->service);
        add_string(o, "state", request_state_to_string(r->state));
        add_string(o, "rule", r->rule);
        json_object_object_add(o, "duration", json_object_new_int64((int64_t) r->duration));
        add_string(o, "reason", r->reason);
        add_string(o, "ticket", r->ticket);
        add_string(o, "policy_version", r->policy_version);
        if (r->expires_at)
                add_string(o, "expires_at", format_rfc3339(r->expires_at, t, sizeof(t)));
        add_string(o, "end_reason", r->end_reason);
        if (r->break_glass)
                json_object_object_add(o, "break_glass", json_object_new_boolean(true));
        return o;
}

void audit_log_head(Broker *b, bool force) {
        char hash[AUDIT_HASH_LEN + 1], chain[64];
        int64_t seq;

        if (audit_head(db_sqlite(b->db), &seq, hash, chain, sizeof(chain)) < 0) {
                log_error("reading the audit log's head failed: %s", db_error(b->db));
                return;
        }
        if (!force && seq == b->audit_logged_seq)
                return;
        sd_journal_send("MESSAGE=audit log head: record %" PRId64 ", hash %s", seq, hash,
                        "MESSAGE_ID=" AUDIT_HEAD_MESSAGE_ID, "PRIORITY=%d", LOG_INFO,
                        "SYSLOG_IDENTIFIER=jit-brokerd", "JIT_EVENT=audit-head", "JIT_AUDIT_CHAIN=%s", chain,
                        "JIT_AUDIT_SEQ=%" PRId64, seq, "JIT_AUDIT_HASH=%s", hash, NULL);
        b->audit_logged_seq = seq;
}

int audit_query(Broker *b, uint64_t since, uint64_t until, const char *user, int64_t request_id,
                uid_t uid_only, unsigned limit, json_object **ret) {
        sqlite3 *db = db_sqlite(b->db);
        sqlite3_stmt *st;
        int rc = sqlite3_prepare_v2(
                db,
                "SELECT seq, at, event, actor, actor_uid, request_id, details, prev_hash, hash FROM audit"
                " WHERE (?1 = 0 OR at >= ?1) AND (?2 = 0 OR at <= ?2) AND (?3 = 0 OR request_id = ?3)"
                " AND (?4 IS NULL OR actor = ?4 OR request_id IN (SELECT id FROM requests WHERE requester = ?4))"
                " AND (?5 < 0 OR request_id IN (SELECT id FROM requests WHERE requester_uid = ?5))"
                " ORDER BY seq LIMIT ?6",
                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return -EIO;
        sqlite3_bind_int64(st, 1, (sqlite3_int64) since);
        sqlite3_bind_int64(st, 2, (sqlite3_int64) until);
        sqlite3_bind_int64(st, 3, request_id);
        if (user)
                sqlite3_bind_text(st, 4, user, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, 4);
        sqlite3_bind_int64(st, 5, uid_only == (uid_t) -1 ? -1 : (sqlite3_int64) uid_only);
        sqlite3_bind_int64(st, 6, limit);

        json_object *arr = json_object_new_array();
        int r = arr ? 0 : -ENOMEM;
        while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                json_object *o = json_object_new_object();
                char t[RFC3339_BUF_MAX];
                if (!o) {
                        r = -ENOMEM;
                        break;
                }
                int64_t uid = sqlite3_column_int64(st, 4), rid = sqlite3_column_int64(st, 5);
                json_object_object_add(o, "seq", json_object_new_int64(sqlite3_column_int64(st, 0)));
                json_object_object_add(
                        o, "at", json_object_new_string(format_rfc3339((uint64_t) sqlite3_column_int64(st, 1), t, sizeof(t))));
                json_object_object_add(o, "event", json_object_new_string((const char *) sqlite3_column_text(st, 2)));
                json_object_object_add(o, "actor", json_object_new_string((const char *) sqlite3_column_text(st, 3)));
                json_object_object_add(o, "actor_uid", uid >= 0 ? json_object_new_int64(uid) : NULL);
                json_object_object_add(o, "request_id", rid > 0 ? json_object_new_int64(rid) : NULL);
                json_object *details = json_tokener_parse((const char *) sqlite3_column_text(st, 6));
                json_object_object_add(o, "details", details ?: json_object_new_object());
                json_object_object_add(o, "prev_hash", json_object_new_string((const char *) sqlite3_column_text(st, 7)));
                json_object_object_add(o, "hash", json_object_new_string((const char *) sqlite3_column_text(st, 8)));
                json_object_array_add(arr, o);
        }
        if (r == 0 && rc != SQLITE_DONE)
                r = -EIO;
        sqlite3_finalize(st);
        if (r < 0) {
                json_object_put(arr);
                return r;
        }
        *ret = arr;
        return 0;
}
