/* SPDX-License-Identifier: MIT */
/* The fleet audit records made on this host (docs/fleet.md, "The fleet's audit records"):
 * kept in the broker's database (table fleet_audit, schema version 12) in one hash chain
 * per fleet host name, written in the transaction of the change they record, until the
 * fleet store has confirmed them (broker/fleet-upload.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit-record.h"
#include "events.h"
#include "store.h"

/* Records waiting for the upload, per host, beyond which this host takes no new fleet
 * operation (filing, approving, denying, revoking, granting) until the store has them;
 * records of the grants it holds (their use, their end) are still kept, never dropped. */
#define FLEET_AUDIT_WAITING_MAX 10000

/* The kinds of fleet audit records (jit_fleet.audit.kind). */
#define FLEET_AUDIT_REQUESTED "requested"   /* a fleet request filed here */
#define FLEET_AUDIT_APPROVAL "approval"     /* an approval or denial typed here */
#define FLEET_AUDIT_REVOCATION "revocation" /* a revocation typed here */
#define FLEET_AUDIT_WITHDRAWAL "withdrawal" /* its requester withdrew a fleet request here */
#define FLEET_AUDIT_GRANTED "granted"       /* a fleet request granted here */
#define FLEET_AUDIT_USED "used"             /* the first session or command under it here */
#define FLEET_AUDIT_ENDED "ended"           /* its grant here ended: expired, revoked, ... */

/* Appends a record to host's chain: seq and prev_hash follow its last record, the hash is
 * audit_record_hash()'s with event = kind, actor_uid = -1 (uids are this host's own) and
 * details = data, the JSON text kept byte for byte. Inside the caller's transaction. */
int db_fleet_audit_append(BrokerDb *db, const char *host, const char *kind, int64_t fleet_id,
                          const char *actor, uint64_t at, const char *data);

/* What the local audit record of event (for local request local_id) means for the fleet:
 * when local_id is a fleet grant, the record of its grant, first use or end, appended in
 * the same transaction. 0 (nothing to record too) or -errno. */
int db_fleet_audit_note(BrokerDb *db, JitEvent event, const char *actor, int64_t local_id,
                        uint64_t at, json_object *details);

/* The records of host not yet uploaded, oldest first, at most max: how many, or -errno.
 * Each one's strings are the caller's to free (audit_record_done()); request_id is the
 * fleet id, event the kind. */
int db_fleet_audit_waiting(BrokerDb *db, const char *host, AuditRecord *records, size_t max);
/* How many records of host wait for the upload, or -errno. */
int db_fleet_audit_count_waiting(BrokerDb *db, const char *host);
/* The store has host's records up to seq: marked uploaded, and the uploaded ones before the
 * last forgotten (the last stays: the next record's prev_hash), inside the caller's
 * transaction. 0 or -errno. */
int db_fleet_audit_uploaded(BrokerDb *db, const char *host, int64_t seq);
