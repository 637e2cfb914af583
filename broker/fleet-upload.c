/* SPDX-License-Identifier: MIT */
/* The upload of this host's fleet audit records (docs/fleet.md, "The fleet's audit
 * records"): the records wait in the broker's database (store-fleet-audit.c) and go to
 * jit_fleet.audit in chain order, a batch per statement on the fleet connection's queue,
 * so the main loop never waits. Idempotent by (origin_host, seq): a record the store has
 * already, with the same hash, counts as uploaded (an upload cut off halfway is simply sent
 * again); one it has with another hash stops the upload there, logged once. Records are
 * marked uploaded only once PostgreSQL has answered. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker-journal.h"
#include "broker.h"
#include "cleanup.h"
#include "fleet-client.h"
#include "store-fleet-audit.h"
#include "timeutil.h"

/* Records one statement sends at most: each up to 8 KiB of data. */
#define FLEET_UPLOAD_BATCH 100
/* After a failed upload, the next waits this long: every answer is followed by a poll at
 * once, and every poll by an upload, which must not become a loop against a store that
 * refuses it. */
#define FLEET_UPLOAD_RETRY_USEC (10 * 1000000ULL)

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)

/* The records as json_to_recordset() reads them; data travels as a string, so that the
 * store keeps the very text that was hashed. at: realtime usec, made a timestamptz without
 * a float (seconds and microseconds apart). */
#define FLEET_UPLOAD_SQL                                                                           \
        "WITH x AS (SELECT * FROM json_to_recordset($2::json) AS x(seq bigint, at bigint, kind "   \
        "text, request_id bigint, actor text, data text, prev_hash text, hash text)), "            \
        "last AS (SELECT coalesce(max(a.seq), 0) AS seq FROM jit_fleet.audit AS a WHERE "          \
        "a.origin_host = $1), "                                                                    \
        "ins AS (INSERT INTO jit_fleet.audit (origin_host, seq, at, kind, request_id, actor, "     \
        "data, prev_hash, hash) SELECT $1, x.seq, timestamptz 'epoch' + (x.at / 1000000) * "       \
        "interval '1 second' + (x.at % 1000000) * interval '1 microsecond', x.kind, "              \
        "x.request_id, x.actor, x.data::json, x.prev_hash, x.hash FROM x, last WHERE x.seq > "     \
        "last.seq ORDER BY x.seq RETURNING seq) "                                                  \
        "SELECT x.seq, coalesce(i.seq IS NOT NULL OR a.hash = x.hash, false) FROM x LEFT JOIN "    \
        "ins AS i ON i.seq = x.seq LEFT JOIN jit_fleet.audit AS a ON a.origin_host = $1 AND "      \
        "a.seq = x.seq ORDER BY x.seq"

/* Logs why the upload failed, once per reason: it is tried again after every poll. */
static void upload_failed(Broker *b, int priority, const char *fmt, ...) {
        char why[sizeof(b->fleet_upload_error)];
        va_list ap;
        b->fleet_upload_retry_at = now_usec(CLOCK_MONOTONIC) + FLEET_UPLOAD_RETRY_USEC;
        va_start(ap, fmt);
        vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        if (STREQ(why, b->fleet_upload_error))
                return;
        snprintf(b->fleet_upload_error, sizeof(b->fleet_upload_error), "%s", why);
        log_full(priority, "fleet: the upload of this host's fleet audit records failed: %s", why);
}

typedef struct FleetUpload {
        Broker *b;
        char *host;
        int64_t first, last; /* the seqs sent */
        size_t n;
} FleetUpload;

static void uploaded(void *userdata, PGresult *res, const char *error) {
        FleetUpload *u = userdata;
        Broker *b = u->b;
        _cleanup_free_ char *host = u->host;
        size_t sent = u->n;
        int64_t done = 0;
        int r;
        free(u);
        b->fleet_uploading = false;

        if (!res)
                /* The connection went: the next one sends them again. */
                return (void) log_debug("fleet: the upload was cut off: %s", error);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                char msg[200];
                snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res) ?: "");
                msg[strcspn(msg, "\n")] = '\0';
                return upload_failed(b, LOG_WARNING, "the store refused it: %s", msg);
        }
        for (int i = 0; i < PQntuples(res); i++) {
                int64_t seq = strtoll(PQgetvalue(res, i, 0), NULL, 10);
                if (!STREQ(PQgetvalue(res, i, 1), "t")) {
                        /* Never overwritten, never skipped: someone must look. */
                        upload_failed(b, LOG_ERR,
                                      "the store holds record %lld of %s with another hash; "
                                      "this host keeps its own and uploads nothing after it",
                                      (long long) seq, host);
                        break;
                }
                done = seq;
        }
        if (done > 0) {
                _cleanup_(grant_tx_release) GrantTx tx = {};
                if ((r = grants_begin(&b->grants)) >= 0) {
                        tx.g = &b->grants;
                        if ((r = db_fleet_audit_uploaded(b->db, host, done)) >= 0 &&
                            (r = grants_commit(&b->grants)) >= 0)
                                tx.g = NULL;
                }
                if (r < 0)
                        /* Sent again next time: the store takes them as the same. */
                        return (void) log_warning_errno(
                                r, "fleet: cannot mark the uploaded fleet audit records: %m");
                log_debug("fleet: uploaded fleet audit records up to %lld", (long long) done);
        }
        if (done > 0 && (size_t) PQntuples(res) == sent && sent == FLEET_UPLOAD_BATCH) {
                b->fleet_upload_error[0] = '\0';
                broker_fleet_upload(b); /* more wait: the next batch at once */
        } else if (done > 0 && (size_t) PQntuples(res) == sent)
                b->fleet_upload_error[0] = '\0';
}

void broker_fleet_upload(Broker *b) {
        const char *host = fleet_client_host(b->fleet);
        AuditRecord records[FLEET_UPLOAD_BATCH];

        if (!host || b->fleet_uploading || fleet_client_state(b->fleet) != FLEET_CONNECTED ||
            now_usec(CLOCK_MONOTONIC) < b->fleet_upload_retry_at)
                return;
        int n = db_fleet_audit_waiting(b->db, host, records, ELEMENTSOF(records));
        if (n < 0)
                return (void) log_warning_errno(n,
                                                "fleet: cannot read the fleet audit records: %m");
        if (n == 0)
                return;

        _cleanup_(json_object_putp) json_object *list = json_object_new_array();
        for (int i = 0; list && i < n; i++) {
                json_object *o = json_object_new_object();
                if (!o || json_object_array_add(list, o) < 0) {
                        json_object_put(o);
                        list = NULL;
                        break;
                }
                json_object_object_add(o, "seq", json_object_new_int64(records[i].seq));
                json_object_object_add(o, "at", json_object_new_int64((int64_t) records[i].at));
                json_object_object_add(o, "kind", json_object_new_string(records[i].event));
                json_object_object_add(o, "request_id",
                                       json_object_new_int64(records[i].request_id));
                json_object_object_add(o, "actor", json_object_new_string(records[i].actor));
                json_object_object_add(o, "data", json_object_new_string(records[i].details));
                json_object_object_add(o, "prev_hash",
                                       json_object_new_string(records[i].prev_hash));
                json_object_object_add(o, "hash", json_object_new_string(records[i].hash));
        }
        FleetUpload *u = calloc(1, sizeof(*u));
        if (u)
                *u = (FleetUpload){ .b = b,
                                    .host = strdup(host),
                                    .first = records[0].seq,
                                    .last = records[n - 1].seq,
                                    .n = (size_t) n };
        for (int i = 0; i < n; i++)
                audit_record_done(&records[i]);
        const char *text =
                list ? json_object_to_json_string_ext(list, JSON_C_TO_STRING_PLAIN) : NULL;
        if (!u || !u->host || !text) {
                if (u)
                        free(u->host);
                free(u);
                return (void) log_error("fleet: out of memory uploading fleet audit records");
        }
        const char *params[] = { host, text };
        int r = fleet_client_query(b->fleet, FLEET_UPLOAD_SQL, 2, params, uploaded, u);
        if (r < 0) {
                free(u->host);
                free(u);
                if (r != -EBUSY && r != -ENOTCONN)
                        log_warning_errno(r, "fleet: cannot ask for the upload: %m");
                return;
        }
        b->fleet_uploading = true;
}

static int upload_deferred(sd_event_source *s, void *userdata) {
        Broker *b = userdata;
        b->fleet_upload_soon = false;
        broker_fleet_upload(b);
        return 0;
}

void broker_fleet_upload_soon(Broker *b) {
        if (b->fleet_upload_soon || b->fleet_uploading)
                return;
        /* A floating one-shot source: the loop owns it and frees it once run. */
        int r = sd_event_add_defer(b->event, NULL, upload_deferred, b);
        if (r < 0)
                return (void) log_warning_errno(r, "fleet: cannot schedule the upload: %m");
        b->fleet_upload_soon = true;
}
