/* SPDX-License-Identifier: MIT */
/* Durations as people write them: "90s", "30m", "1h30m", "1h 30m", "2hours", "1d", "1w":
 * a subset of the time spans of systemd.time(7), see duration_parse(). */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Longest duration anything in jit accepts: a year. Keeps arithmetic far from overflow. */
#define JIT_DURATION_MAX_SEC (366ULL * 24 * 3600)

/* Parses s into seconds. s is one or more parts, each a whole number directly followed
 * by its unit:
 *   w, week, weeks           7 days
 *   d, day, days
 *   h, hr, hour, hours
 *   m, min, minute, minutes
 *   s, sec, second, seconds
 * Parts follow one another directly ("1h30m") or after spaces ("1h 30m"); each unit comes
 * at most once, largest first. Refused (-EINVAL), although systemd reads some of them: a
 * bare number (ambiguous), a space inside a part ("1 h"), leading or trailing whitespace,
 * tabs or newlines, signs, fractions ("1.5h"), upper-case units ("1H"), months, years and
 * units below a second ("1M", "1y", "1ms"), a repeated or out-of-order unit ("1m1h"), and
 * a total of zero. Returns 0, or -EINVAL, or -ERANGE (above JIT_DURATION_MAX_SEC). */
int duration_parse(const char *s, uint64_t *ret_sec);

/* Formats seconds as the shortest canonical form ("1h30m", "2d", "0s"). Needs buf of
 * at least DURATION_BUF_MAX bytes; returns buf. */
#define DURATION_BUF_MAX 32
char *duration_format(uint64_t sec, char *buf, size_t len);
