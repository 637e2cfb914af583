/* SPDX-License-Identifier: MIT */
/* The broker's connection to the fleet store (docs/fleet.md): with a fleet section in the
 * policy, one PostgreSQL connection driven by libpq's non-blocking calls from the sd-event
 * loop, never from a check. At connect it checks the schema's version and that the host is
 * registered for its role; then it polls the change feed every 2 s and moves its cursor,
 * kept in the broker's database. It reconnects with backoff (1 s doubling to 30 s) and
 * logs each change of state once; its owner applies the changes (broker-fleet.c). */
#pragma once

#include "fleet-libpq.h"
#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "policy.h"
#include "store.h"

/* A connection attempt (TCP, TLS, authentication) must be done within this; a query must
 * be answered within FLEET_QUERY_TIMEOUT_USEC (the statement timeout of docs/fleet.md). */
#define FLEET_CONNECT_TIMEOUT_USEC (5 * 1000000ULL)
/* The URI's host names must be resolved within this, before the connection's own time. */
#define FLEET_RESOLVE_TIMEOUT_USEC (5 * 1000000ULL)
#define FLEET_QUERY_TIMEOUT_USEC (2 * 1000000ULL)
/* Rows of the change feed one poll reads at most. */
#define FLEET_POLL_ROWS_MAX 1000

typedef enum FleetState {
        FLEET_DISABLED,        /* no fleet section */
        FLEET_CONNECTING,      /* the first attempt, after start or a new fleet section */
        FLEET_CONNECTED,       /* checked and polling */
        FLEET_UNREACHABLE,     /* the last attempt or poll failed; retrying */
        FLEET_SCHEMA_MISMATCH, /* the store's schema is not this broker's; retrying */
        _FLEET_STATE_MAX,
} FleetState;

typedef struct FleetClient FleetClient;

int fleet_client_new(sd_event *event, BrokerDb *db, FleetClient **ret);
FleetClient *fleet_client_free(FleetClient *fc);

/* Takes the policy's fleet section (copied; f may be NULL: none). A section unlike the one
 * in use drops the connection and starts again with the new one; none disconnects; the
 * same section, while not connected, tries again now. */
int fleet_client_set_policy(FleetClient *fc, const PolicyFleet *f);

FleetState fleet_client_state(const FleetClient *fc);
const char *fleet_state_to_string(FleetState s);

/* What `jitctl status` shows: host, database, state, since, last_error, last_poll,
 * schema_version, cursor, changes_seen; NULL when disabled or out of memory. */
json_object *fleet_client_status_json(const FleetClient *fc);

/* This host's fleet name while enabled, else NULL. */
const char *fleet_client_host(const FleetClient *fc);
/* The fleet's identity (32 hex digits) read at the last connection; NULL before one. */
const char *fleet_client_fleet_id(const FleetClient *fc);

/* A query of the broker's own (a fleet request, an approval, the catch-up), run on the
 * host's own connection between polls, one at a time, in the order asked, each within
 * FLEET_QUERY_TIMEOUT_USEC. done is called exactly once: with the result (res, whatever its
 * status), or with res NULL and error saying why (the connection failed or was dropped).
 * -ENOTCONN at once, and nothing queued, while the client is not connected: a new fleet
 * request fails at once when the store is away. */
typedef void (*FleetQueryDone)(void *userdata, PGresult *res, const char *error);
#define FLEET_QUERIES_MAX 64
#define FLEET_QUERY_PARAMS_MAX 16
int fleet_client_query(FleetClient *fc, const char *sql, int n, const char *const *params,
                       FleetQueryDone done, void *userdata);

/* The fetch after a poll of the requests ids ("{1,2,3}"), queued like a query: through the
 * shared poll login with the host's fetch key (FLEET_FETCH_SHARED_SQL) when
 * fleet.poll_credentials is set, else, or once the store refuses that (a host without a
 * fetch key, an older schema; logged once), with the host's own role (FLEET_FETCH_SQL).
 * Either way the rows are FLEET_FETCH_SQL's. */
int fleet_client_fetch(FleetClient *fc, const char *ids, FleetQueryDone done, void *userdata);

/* The changes (from, to] are applied: the cursor kept in the local database moves to to,
 * when from is where it stands (else an earlier range failed: the poll reads again). */
void fleet_client_applied(FleetClient *fc, int64_t from, int64_t to);
/* Applying them failed: the next poll reads again from the kept cursor. */
void fleet_client_rewind(FleetClient *fc);

/* One change of the feed as the poll read it (valid during the hook only): the request it
 * is about and that request's selector (a host name, or labels as a JSON object). */
typedef struct FleetChange {
        int64_t request_id;
        const char *selector_host;   /* NULL for labels */
        const char *selector_labels; /* "{"environment": "staging"}" */
} FleetChange;

/* Called after a poll saw the changes (from, to] settle, with those n changes; once they
 * are applied the hook's owner calls fleet_client_applied() (until then a restart reads
 * them again). */
typedef void (*FleetChangesHook)(void *userdata, int64_t from, int64_t to,
                                 const FleetChange *changes, size_t n);
void fleet_client_set_changes_hook(FleetClient *fc, FleetChangesHook hook, void *userdata);

/* Called after every successful poll with its time on CLOCK_BOOTTIME (fleet.max_offline
 * counts from it), and once connected, before the first poll: a query the hook asks then
 * is answered before anything the change feed names (the catch-up, revocations first).
 * Both get the changes hook's userdata. */
typedef void (*FleetSyncHook)(void *userdata, uint64_t sync_boot);
typedef void (*FleetConnectedHook)(void *userdata);
void fleet_client_set_sync_hooks(FleetClient *fc, FleetSyncHook synced,
                                 FleetConnectedHook on_connected);
/* CLOCK_BOOTTIME usec of the last successful poll since the broker started; 0: none. */
uint64_t fleet_client_last_sync_boot(const FleetClient *fc);
/* Keeps the time of the last successful poll with the kept cursor (last_sync), so that a
 * restart knows it. */
void fleet_client_keep_sync(FleetClient *fc);
