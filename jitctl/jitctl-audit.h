/* SPDX-License-Identifier: MIT */
/* jitctl audit: the broker's audit log, and --verify, which checks the log's hash chain
 * straight from the database and the journal, without trusting the broker. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <time.h>

extern const char jitctl_audit_help[];

/* Runs `jitctl audit` with the global options already parsed (--json may come again among
 * argv). argv[0] is the program name getopt shows in its messages. Returns a jitctl exit
 * status. */
int jitctl_audit(const char *socket_path, unsigned timeout_ms, bool json, bool no_pager,
                 bool no_legend, int argc, char *argv[]);

/* One record (or any value) as one JSON line, with what a terminal would act on escaped. */
int audit_print_json_line(json_object *o, FILE *f);
/* A record's details as key=value text for a person, escaped and cut to fit a line;
 * malloc'd, NULL on ENOMEM. */
char *audit_condense_details(json_object *details);
