/* SPDX-License-Identifier: MIT */
#include "fleet-poll.h"

#include <errno.h>
#include <limits.h>

uint64_t fleet_backoff_next(uint64_t prev_usec) {
        if (prev_usec < FLEET_BACKOFF_FIRST_USEC)
                return FLEET_BACKOFF_FIRST_USEC;
        if (prev_usec >= FLEET_BACKOFF_MAX_USEC / 2)
                return FLEET_BACKOFF_MAX_USEC;
        return prev_usec * 2;
}

uint64_t fleet_poll_delay(uint32_t r) {
        /* r over [0, 2^32) onto [0, 2 * jitter], then centred on P. */
        uint64_t spread = (uint64_t) r * (2 * FLEET_POLL_JITTER_USEC + 1) >> 32;
        return FLEET_POLL_INTERVAL_USEC - FLEET_POLL_JITTER_USEC + spread;
}

int fleet_cursor_advance(int64_t *cursor, const FleetChangeRow *rows, size_t n, uint64_t *seen) {
        int64_t last = *cursor;

        if (n > INT_MAX)
                return -EINVAL;
        /* Checked whole first: a reply out of order moves nothing. */
        for (size_t i = 0; i < n; i++) {
                if (rows[i].seq <= last)
                        return -EINVAL;
                last = rows[i].seq;
        }
        size_t passed = 0;
        while (passed < n && rows[passed].settled)
                passed++;
        if (passed > 0)
                *cursor = rows[passed - 1].seq;
        *seen += passed;
        return (int) passed;
}
