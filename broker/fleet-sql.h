/* SPDX-License-Identifier: MIT */
/* The statements a host's broker sends to the fleet store (docs/fleet.md), as text shared
 * by the broker and by the load generator that replays them (tests/bench/bench-fleet.c),
 * so that what is measured is what the broker sends. */
#pragma once

/* The poll: the rows after the cursor and, from the same snapshot, whether each row's
 * transaction ended before the oldest one still running (the cursor rule). $1 the cursor,
 * $2 the rows at most. */
#define FLEET_POLL_SQL                                                                             \
        "SELECT seq, txid < pg_snapshot_xmin(pg_current_snapshot()) FROM "                         \
        "jit_fleet.changes WHERE seq > $1::bigint ORDER BY seq LIMIT $2::integer"

/* The poll of the shared poll login (docs/fleet.md, "Propagation"): the same rows with what
 * a host needs to tell whether a change concerns it (the request and its selector), so
 * that only those hosts fetch. Not sent by the broker yet (it polls with FLEET_POLL_SQL
 * over its own role and fetches after every change); the load generator sends it. */
#define FLEET_POLL_SELECTORS_SQL                                                                   \
        "SELECT seq, txid < pg_snapshot_xmin(pg_current_snapshot()), kind, request_id, "           \
        "selector_host, selector_labels FROM jit_fleet.changes WHERE seq > $1::bigint "            \
        "ORDER BY seq LIMIT $2::integer"

/* One fleet request as the broker reads it: id, origin, requester, service, reason, ticket,
 * duration, selector, state ('revoked' once revoked), created_at, approvals (JSON) and
 * revokers (JSON). */
#define FLEET_ROW_COLUMNS                                                                          \
        "r.id, r.origin_host, r.requester, r.service, r.reason, r.ticket, r.duration_s, "          \
        "r.selector, CASE WHEN v.revoker IS NOT NULL THEN 'revoked' ELSE r.state END, "            \
        "to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "             \
        "(SELECT json_agg(json_build_object('approver', a.approver, 'verdict', a.verdict, "        \
        "'host', a.origin_host, 'at', extract(epoch FROM a.created_at)) ORDER BY a.id) "           \
        "FROM jit_fleet.approvals AS a WHERE a.request_id = r.id), (SELECT json_agg(x.revoker "    \
        "ORDER BY x.id) FROM jit_fleet.revocations AS x WHERE x.request_id = r.id) "
#define FLEET_ROW_FROM                                                                             \
        "FROM jit_fleet.requests AS r LEFT JOIN LATERAL (SELECT x.revoker FROM "                   \
        "jit_fleet.revocations AS x WHERE x.request_id = r.id ORDER BY x.id LIMIT 1) AS v ON true "

/* The fetch after a poll moved the cursor: the requests the changes ($1, $2] name, as the
 * host's own role may read them (row-level security), $3 at most. */
#define FLEET_FETCH_SQL                                                                            \
        "SELECT " FLEET_ROW_COLUMNS FLEET_ROW_FROM                                                 \
        "WHERE r.id IN (SELECT c.request_id FROM jit_fleet.changes AS c "                          \
        "WHERE c.seq > $1::bigint AND c.seq <= $2::bigint) ORDER BY r.id "                         \
        "LIMIT $3::integer"

/* The catch-up at reconnect: the requests of the ids $1 ('{1,2,3}'), with their
 * revocations. */
#define FLEET_CATCHUP_SQL                                                                          \
        "SELECT " FLEET_ROW_COLUMNS FLEET_ROW_FROM "WHERE r.id = ANY ($1::bigint[]) ORDER BY r.id"
