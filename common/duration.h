/* SPDX-License-Identifier: MIT */
/* Durations as people write them: "90s", "30m", "1h30m", "2h", "1d". */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Longest duration anything in jit accepts: a year. Keeps arithmetic far from overflow. */
#define JIT_DURATION_MAX_SEC (366ULL * 24 * 3600)

/* Parses s into seconds. Units d, h, m, s, each at most once, largest first; a bare
 * number is refused (ambiguous). Returns 0, or -EINVAL (malformed, zero) or -ERANGE
 * (above JIT_DURATION_MAX_SEC). */
int duration_parse(const char *s, uint64_t *ret_sec);

/* Formats seconds as the shortest canonical form ("1h30m", "2d", "0s"). Needs buf of
 * at least DURATION_BUF_MAX bytes; returns buf. */
#define DURATION_BUF_MAX 32
char *duration_format(uint64_t sec, char *buf, size_t len);
