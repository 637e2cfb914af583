/* SPDX-License-Identifier: MIT */
/* The fleet client's place in the fleet's change feed, kept in the broker's database (table
 * fleet_cursor, schema version 9): per fleet host name, so that a host renamed in the
 * policy starts from the beginning of the feed. */
#pragma once

#include <stdint.h>

#include "store.h"

typedef struct FleetCursor {
        int64_t seq;           /* the last change moved past; 0: none yet */
        uint64_t changes_seen; /* changes moved past, in all */
        uint64_t updated_at;   /* CLOCK_REALTIME usec of the last save; 0: never */
} FleetCursor;

/* The cursor of host: 0, with all zero when it has none yet, or -errno. */
int db_fleet_cursor_load(BrokerDb *db, const char *host, FleetCursor *ret);
/* Keeps c as host's cursor; -errno when it cannot (the next poll tries again). */
int db_fleet_cursor_save(BrokerDb *db, const char *host, const FleetCursor *c);

/* Fleet grants this host made (table fleet_grants, schema version 10): fleet request id ->
 * the local request that is its grant here, per fleet host name. */
int db_fleet_grant_save(BrokerDb *db, const char *host, int64_t fleet_id, int64_t local_id);
/* 0 and *ret_local_id, -ENOENT when this host made none for fleet_id, or -errno. */
int db_fleet_grant_find(BrokerDb *db, const char *host, int64_t fleet_id, int64_t *ret_local_id);
