/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define USEC_PER_SEC 1000000ULL
#define USEC_PER_MSEC 1000ULL

uint64_t now_usec(clockid_t clock);

/* RFC 3339 UTC with second precision, "2026-11-23T13:28:51Z". */
#define RFC3339_BUF_MAX 32
char *format_rfc3339(uint64_t realtime_usec, char *buf, size_t len);

/* "in 1h 5m" style remaining-time text for terminals: the two largest units. */
char *format_time_left(uint64_t usec, char *buf, size_t len);
