/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define USEC_PER_SEC 1000000ULL
#define USEC_PER_MSEC 1000ULL

uint64_t now_usec(clockid_t clock);

/* RFC 3339 UTC with second precision, "2026-11-23T13:28:51Z". */
#define RFC3339_BUF_MAX 32
char *format_rfc3339(uint64_t realtime_usec, char *buf, size_t len);

/* The rule for times: programs (--json, the protocol, the audit log) get RFC 3339 UTC;
 * people get local time with its zone, as systemctl and journalctl show it:
 * "Sun 2026-11-29 15:45:40 CET". */
#define TIME_FOR_PEOPLE_BUF_MAX 64
char *format_time_for_people(uint64_t realtime_usec, char *buf, size_t len);
/* Exactly "YYYY-MM-DDTHH:MM:SSZ" (what format_rfc3339() writes): 0 with *ret_usec, or
 * -EINVAL. */
int rfc3339_parse(const char *s, uint64_t *ret_usec);

/* A point in time as people and programs write it: what `journalctl --since` reads, in
 * part. One of
 *   now
 *   today, yesterday, tomorrow      local midnight at the start of that day
 *   -DURATION, +DURATION            that long before or after now; DURATION as
 *                                   duration_parse() reads it: "-1h", "-30m", "-1h 30m"
 *   YYYY-MM-DD                      local midnight
 *   YYYY-MM-DD HH:MM[:SS[.FRAC]]    local time; "T" (or "t") may replace the space
 *   the same with a time zone       "Z" (or "z", or " UTC"): UTC; "+HH:MM" or "-HH:MM":
 *                                   that far east or west of UTC. So RFC 3339, as
 *                                   format_rfc3339() writes it, is read back.
 * Local time is the time zone of the process (TZ, else /etc/localtime). The hour may have
 * one digit; seconds may be 60 (a leap second, read as the next second); fractions have
 * 1 to 9 digits, of which microseconds are kept. Nothing else is read: no whitespace
 * around, no other words. now is the current realtime in usec (for now, today, yesterday,
 * tomorrow and relative times). Returns 0 with *ret_usec in realtime usec; -EINVAL when
 * s is none of these or names a time that does not exist (2026-02-30, or a local time
 * skipped by a change to daylight saving time); -ERANGE when it falls before 1970 or the
 * duration is too long. */
int timestamp_parse(const char *s, uint64_t now, uint64_t *ret_usec);

/* Exactly n decimal digits at *s, advancing past them; false, with *s as it was, when the
 * next n characters are not all digits. For the parsers of times (timestamp_parse(), the
 * policy's). */
bool take_digits(const char **s, int n, int *ret);

/* "in 1h 5m" style remaining-time text for terminals: the two largest units. */
char *format_time_left(uint64_t usec, char *buf, size_t len);
