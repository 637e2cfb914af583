/* SPDX-License-Identifier: MIT */
/* The append-only audit log: one hash-chained record per event, written in the same
 * transaction as the state change it records; its head also goes to journald, so that a
 * database cut short can be told from one that was never longer. */
#pragma once

#include <json-c/json.h>
#include <stdint.h>
#include <sys/types.h>

#include "audit-record.h"
#include "broker-journal.h"
#include "store.h"

typedef struct Broker Broker;

/* A record as the audit op and the streams give it; raw: times and details as stored. */
json_object *audit_record_to_json(const AuditRecord *r, bool raw);

/* Sends the chain's head (chain id, seq, hash) to journald if it moved since the last
 * time, or always when force. */
void audit_log_head(Broker *b, bool force);

/* Records matching the filters (0/NULL: any), oldest first, at most limit. uid_only:
 * (uid_t)-1 for everything, else only records of that uid's own requests. */
int audit_query(Broker *b, uint64_t since, uint64_t until, const char *user, int64_t request_id,
                uid_t uid_only, unsigned limit, json_object **ret);

/* Seals the records at or before until (realtime usec) into an archive file in dir (one
 * JSON line of header, one per record with its stored fields, one seal line), then, in
 * one transaction, moves the anchor to the last archived record, deletes the archived
 * records and appends an "audit-archived" record: the live chain goes on from the
 * archive's head. *ret describes what was done ({"records": 0} when nothing was due). */
int audit_archive(Broker *b, uint64_t until, const char *dir, const char *actor, int64_t actor_uid,
                  json_object **ret);

/* Where archives go: "archive" beside the database (its state directory). */
char *audit_archive_dir(const char *db_path);

/* settings.audit_retention: archives what is older than the retention, if anything. */
void audit_apply_retention(Broker *b);
