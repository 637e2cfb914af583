/* SPDX-License-Identifier: MIT */
/* The fleet client's place in the fleet's change feed, kept in the broker's database (table
 * fleet_cursor, schema version 9): per fleet host name, so that a host renamed in the
 * policy starts from the beginning of the feed. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct FleetCursor {
        int64_t seq;           /* the last change moved past; 0: none yet */
        uint64_t changes_seen; /* changes moved past, in all */
        uint64_t updated_at;   /* CLOCK_REALTIME usec of the last save; 0: never */
        uint64_t last_sync;    /* CLOCK_REALTIME usec of the last successful poll kept; 0: none
                                * (schema version 11) */
} FleetCursor;

/* The cursor of host: 0, with all zero when it has none yet, or -errno. */
int db_fleet_cursor_load(BrokerDb *db, const char *host, FleetCursor *ret);
/* Keeps c as host's cursor; -errno when it cannot (the next poll tries again). */
int db_fleet_cursor_save(BrokerDb *db, const char *host, const FleetCursor *c);

/* Fleet grants this host made (table fleet_grants, schema version 10): fleet request id ->
 * the local request that is its grant here, per fleet host name, with the grant's own
 * deadline on this boot's CLOCK_BOOTTIME (version 11: the request's deadline_boot may be
 * cut shorter by fleet.max_offline). */
int db_fleet_grant_save(BrokerDb *db, const char *host, int64_t fleet_id, int64_t local_id,
                        uint64_t own_deadline_boot);
/* 0 and *ret_local_id, -ENOENT when this host made none for fleet_id, or -errno. */
int db_fleet_grant_find(BrokerDb *db, const char *host, int64_t fleet_id, int64_t *ret_local_id);
/* 0 and the own deadline of the fleet grant that is local request local_id, -ENOENT when it
 * is not a fleet grant, or -errno. */
int db_fleet_grant_own_deadline(BrokerDb *db, int64_t local_id, uint64_t *ret_deadline_boot);
/* Sets the deadline_boot of host's active fleet grants of boot_id to the earlier of their
 * own deadline and until_boot (INT64_MAX: their own): how many changed, or -errno. */
int db_fleet_grants_honour_until(BrokerDb *db, const char *host, const char *boot_id,
                                 uint64_t until_boot);
/* The fleet ids of host's active fleet grants, at most max, into ids: how many, or -errno. */
int db_fleet_grants_active(BrokerDb *db, const char *host, int64_t *ids, size_t max);
