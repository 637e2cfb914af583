/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Which allowed checks get a journald entry of their own. Every sudo asks, and an entry per
 * check cost the broker a fifth of its time and a synchronous wait on journald; the record
 * an auditor needs is when a grant was used: its first use, then at most one entry per grant
 * and interval, with the number of uses it stands for (each session has entries of its own,
 * and every refusal is logged, at a bounded rate per user). */
#define ACCESS_LOG_INTERVAL_USEC (60 * 1000000ULL)
#define ACCESS_LOG_GRANTS_MAX 1024

typedef struct AccessLog {
        struct {
                int64_t grant;
                uint64_t logged_at; /* CLOCK_BOOTTIME usec of its last entry */
                uint64_t uses;      /* allowed checks since then, not logged */
        } entries[ACCESS_LOG_GRANTS_MAX];
        unsigned n;
} AccessLog;

/* Counts a use of grant at now: true when it is to be logged, with *ret_uses the uses the
 * entry stands for (this one and those since the last entry). A grant the table has no room
 * for pushes out the one logged longest ago: at worst an extra entry, never a lost one. */
bool access_log_use(AccessLog *l, int64_t grant, uint64_t now, uint64_t *ret_uses);
