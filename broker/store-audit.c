/* SPDX-License-Identifier: MIT */
/* Writing the audit log: one hash-chained record per event, in the transaction of the
 * change it records. The tables themselves are common/audit-store.c's. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "audit-store.h"
#include "cleanup.h"
#include "store-fleet-audit.h"
#include "store.h"
#include "timeutil.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)

int audit_append(BrokerDb *store, JitEvent event, const char *actor, int64_t actor_uid,
                 int64_t request_id, json_object *details) {
        _cleanup_(json_object_putp) json_object *d = details ?: json_object_new_object();
        AuditRecord rec = {
                .at = now_usec(CLOCK_REALTIME),
                .event = (char *) jit_event_name(event),
                .actor = (char *) (actor ?: "broker"),
                .actor_uid = actor_uid,
                .request_id = request_id,
        };
        int r;

        if (!d)
                return -ENOMEM;
        rec.details = (char *) json_object_to_json_string_ext(
                d, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!rec.details)
                return -ENOMEM;
        /* Both statements kept prepared: two records per approval, one per check of a
         * session. */
        AuditHead head;
        sqlite3_stmt *st;
        if ((r = db_prepare(store, AUDIT_STORE_HEAD_SQL, &st)) < 0)
                return r;
        r = audit_store_head_with(st, &head, NULL);
        db_release(store, st);
        if (r < 0)
                return r;
        memcpy(rec.prev_hash, head.hash, sizeof(rec.prev_hash));
        rec.seq = head.seq + 1;
        if ((r = audit_record_hash(&rec, rec.hash)) < 0)
                return r;
        if ((r = db_prepare(store, AUDIT_STORE_INSERT_SQL, &st)) < 0)
                return r;
        r = audit_store_insert_with(st, &rec);
        db_release(store, st);
        if (r < 0)
                return r;
        /* A fleet grant's grant, first use and end go into the fleet's chain too, in this
         * same transaction: nothing recorded here is missing from the upload. */
        return db_fleet_audit_note(store, event, rec.actor, request_id, rec.at, d);
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
        if (r->command) {
                json_object *argv = json_object_new_array();
                for (size_t i = 0; argv && r->argv && r->argv[i]; i++)
                        json_object_array_add(argv, json_object_new_string(r->argv[i]));
                add_string(o, "command", r->command);
                json_object_object_add(o, "argv", argv);
                add_string(o, "run_as_user", r->run_as_user ?: "root");
                add_string(o, "run_as_group", r->run_as_group);
                add_string(o, "cwd", r->cwd);
        }
        return o;
}
