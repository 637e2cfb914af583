/* SPDX-License-Identifier: MIT */
/* jitctl audit: the broker's audit log, and --verify, which checks the log's hash chain
 * straight from the database and the journal, without trusting the broker. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

extern const char jitctl_audit_help[];

/* Runs `jitctl audit` with the global options already parsed (--json may come again among
 * argv). argv[0] is the program name getopt shows in its messages. Returns a jitctl exit
 * status. */
int jitctl_audit(const char *socket_path, unsigned timeout_ms, bool json, int argc, char *argv[]);

/* A --since/--until TIME: "2026-11-23T10:00:00Z" (or with an offset, +02:00), the same
 * without a zone or "2026-11-23" (local time, midnight), "-1h", "-30m", "-1h30m", "-2d"
 * (that long before now), or "now". Returns 0 with seconds since the epoch, or -EINVAL. */
int audit_time_parse(const char *s, time_t now, time_t *ret);
