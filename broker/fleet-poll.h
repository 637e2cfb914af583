/* SPDX-License-Identifier: MIT */
/* The fleet client's arithmetic, apart from any connection (docs/fleet.md, "Propagation"):
 * how long to wait before the next connection attempt, when the next poll is due, and how
 * far one poll moves the change cursor. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FLEET_BACKOFF_FIRST_USEC (1 * 1000000ULL)
#define FLEET_BACKOFF_MAX_USEC (30 * 1000000ULL)
/* The poll interval P, and how far each wait may stray from it either way. */
#define FLEET_POLL_INTERVAL_USEC (2 * 1000000ULL)
#define FLEET_POLL_JITTER_USEC (200 * 1000ULL)

/* The wait before the next connection attempt after a failed one that waited prev_usec
 * (0: the first failure): 1 s, doubled each time, at most 30 s. */
uint64_t fleet_backoff_next(uint64_t prev_usec);

/* The wait before the next poll: P moved by jitter, which is scaled from r (any 32 bits,
 * e.g. random) into [-FLEET_POLL_JITTER_USEC, +FLEET_POLL_JITTER_USEC]. */
uint64_t fleet_poll_delay(uint32_t r);

/* One row of the change feed as a poll read it: its seq and whether the transaction that
 * wrote it had ended before the oldest transaction still running at the poll's snapshot
 * (txid < pg_snapshot_xmin). */
typedef struct FleetChangeRow {
        int64_t seq;
        bool settled;
} FleetChangeRow;

/* The cursor rule: moves *cursor past the rows (in seq order, all above *cursor) up to the
 * first one not settled, which a lower seq still being written could precede, and stops
 * there; the rows passed are added to *seen. Returns how many were passed, or -EINVAL when
 * the rows are not in increasing order above the cursor (nothing moved then). */
int fleet_cursor_advance(int64_t *cursor, const FleetChangeRow *rows, size_t n, uint64_t *seen);
