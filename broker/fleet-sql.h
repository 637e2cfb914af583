/* SPDX-License-Identifier: MIT */
/* The statements a host's broker sends to the fleet store (docs/fleet.md), as text shared
 * by the broker and by the load generator that replays them (tests/bench/bench-fleet.c),
 * so that what is measured is what the broker sends. */
#pragma once

/* The poll: the rows after the cursor with what a host needs to tell whether a change
 * concerns it (the request and its selector), and, from the same snapshot, whether each
 * row's transaction ended before the oldest one still running (the cursor rule). $1 the
 * cursor, $2 the rows at most. */
#define FLEET_POLL_SQL                                                                             \
        "SELECT seq, txid < pg_snapshot_xmin(pg_current_snapshot()), request_id, "                 \
        "selector_host, selector_labels FROM jit_fleet.changes WHERE seq > $1::bigint "            \
        "ORDER BY seq LIMIT $2::integer"

/* A fleet request's state as the store holds it (a target decides on the time by its own
 * clock), or as shown: timed_out from expires_at on, before its origin host has marked it. */
#define FLEET_STATE_STORED "CASE WHEN v.revoker IS NOT NULL THEN 'revoked' ELSE r.state END, "
#define FLEET_STATE_SHOWN                                                                          \
        "CASE WHEN v.revoker IS NOT NULL THEN 'revoked' WHEN r.state = 'pending' AND "             \
        "r.expires_at <= now() THEN 'timed_out' ELSE r.state END, "
/* One fleet request as the broker reads it: id, origin, requester, service, reason, ticket,
 * duration, selector, state, created_at, approvals (JSON; with what a signed approval is
 * verified with when `signed` adds it), revokers (JSON), expires_at. */
/* clang-format off */
#define FLEET_ROW_COLUMNS_SIGNED(state, signed)                                                    \
        "r.id, r.origin_host, r.requester, r.service, r.reason, r.ticket, r.duration_s, "          \
        "r.selector, " state                                                                       \
        "to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "             \
        "(SELECT json_agg(json_build_object('approver', a.approver, 'verdict', a.verdict, "        \
        "'host', a.origin_host, 'at', extract(epoch FROM a.created_at)" signed                     \
        ") ORDER BY a.id) FROM jit_fleet.approvals AS a WHERE a.request_id = r.id), "              \
        "(SELECT json_agg(x.revoker ORDER BY x.id) FROM jit_fleet.revocations AS x WHERE "         \
        "x.request_id = r.id), extract(epoch FROM r.expires_at) "
/* clang-format on */
#define FLEET_ROW_COLUMNS_STATE(state) FLEET_ROW_COLUMNS_SIGNED(state, "")
/* What a target host verifies a signed approval with (fetch and catch-up only: a list
 * does not carry signatures). */
#define FLEET_APPROVAL_SIGNED ", 'id', a.id, 'statement', a.statement, 'signature', a.signature"
#define FLEET_ROW_COLUMNS_FETCH FLEET_ROW_COLUMNS_SIGNED(FLEET_STATE_STORED, FLEET_APPROVAL_SIGNED)
#define FLEET_ROW_COLUMNS FLEET_ROW_COLUMNS_STATE(FLEET_STATE_SHOWN)
#define FLEET_ROW_FROM                                                                             \
        "FROM jit_fleet.requests AS r LEFT JOIN LATERAL (SELECT x.revoker FROM "                   \
        "jit_fleet.revocations AS x WHERE x.request_id = r.id ORDER BY x.id LIMIT 1) AS v ON true "

/* The fetch after a poll: the requests of the ids $1 ('{1,2,3}') among the changes that
 * concern this host, as the host's own role may read them (row-level security), with
 * each approval's statement and signature. */
#define FLEET_FETCH_SQL                                                                            \
        "SELECT " FLEET_ROW_COLUMNS_FETCH FLEET_ROW_FROM "WHERE r.id = ANY ($1::bigint[]) ORDER BY r.id"

/* The same fetch through the shared poll login (schema version 8): $1 the host's name, $2
 * its fetch key (common/fleet-fetch-key.h), $3 the ids. The function's body repeats
 * FLEET_ROW_COLUMNS_FETCH and FLEET_ROW_FROM: a change of those is a new migration of it. */
#define FLEET_FETCH_SHARED_SQL "SELECT * FROM jit_fleet.fetch_for_host($1, $2, $3::bigint[])"

/* The catch-up at reconnect: the same, for the fleet grants the host holds. */
#define FLEET_CATCHUP_SQL FLEET_FETCH_SQL
