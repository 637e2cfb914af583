/* SPDX-License-Identifier: MIT */
/* What the files of `jitctl audit` share (the listing in jitctl-audit.c, --verify in
 * jitctl-audit-verify.c, export in jitctl-audit-export.c): the parsed command line and
 * how a failure is reported. The rest of jitctl uses jitctl-audit.h.
 *
 * These files stand without jitctl.c and jitctl-command.c: the fuzz-audit-verify target
 * (tests/fuzz/meson.build) links them without those. So the failures, usage errors and
 * broker exchange here repeat usage_error(), fail() and broker_call() of jitctl-command.h
 * (and must read the same); outside --verify, a failure's JSON goes on one line. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "jitctl-exit.h"

/* Returned by argument parsers when the command should go on. */
#define CONTINUE (-1)

enum {
        ARG_JSON = 0x100,
        ARG_SINCE,
        ARG_UNTIL,
        ARG_USER,
        ARG_REQUEST,
        ARG_LIMIT,
        ARG_VERIFY,
        ARG_DB,
        ARG_ARCHIVE,
        ARG_HEADS,
        ARG_NO_PAGER,
        ARG_NO_LEGEND,
        ARG_FLEET,
        ARG_DATABASE,
        ARG_POLICY,
};

typedef struct AuditArgs {
        const char *socket_path;
        unsigned timeout_ms;
        bool json;
        bool no_pager;  /* --no-pager: the listing straight to the terminal */
        bool no_legend; /* --no-legend: the listing without its header line */
        bool verify;
        const char *db;
        const char *archive;                 /* --verify --archive FILE */
        const char *heads;                   /* --verify --heads FILE: heads shipped off the host */
        bool fleet;                          /* --verify --fleet: the fleet's chains */
        const char *database;                /* --fleet --database URI */
        const char *policy;                  /* --fleet --policy PATH (its fleet section) */
        const char *since_text, *until_text; /* as typed, for messages */
        time_t since, until;
        const char *user;
        int64_t request;
        int64_t limit;
} AuditArgs;

/* "jitctl: audit: MESSAGE" and the hint to --help on stderr; returns JIT_EXIT_USAGE. */
int audit_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A failure after the command line was accepted, on stderr and with --json on stdout.
 * Returns status. */
int audit_fail(const AuditArgs *a, int status, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
int audit_fail_oom(const AuditArgs *a);
int audit_fail_bad_reply(const AuditArgs *a);

/* A decimal integer from 1 to max: 0 or -EINVAL. */
int audit_parse_positive(const char *s, int64_t max, int64_t *ret);

/* One exchange with the broker: JIT_EXIT_OK with the reply (and its "result", borrowed
 * from it), or the failure reported and its status. */
int audit_broker_call(const AuditArgs *a, json_object *request, json_object **ret_reply,
                      json_object **ret_result);
/* Adds v (consumed) under key; -ENOMEM when v could not be made or added. */
int audit_add(json_object *o, const char *key, json_object *v);

/* jitctl audit --verify [--db PATH] [--heads FILE] (jitctl-audit-verify.c) */
int audit_verify_db(AuditArgs *a);
/* jitctl audit --verify --archive FILE (jitctl-audit-verify.c) */
int audit_verify_archive(AuditArgs *a);
/* jitctl audit --verify --fleet [--database URI | --policy PATH] (jitctl-audit-fleet.c) */
int audit_verify_fleet(AuditArgs *a);
/* jitctl audit export --until TIME FILE (jitctl-audit-export.c); argv[0] is "export". */
int audit_export(AuditArgs *a, int argc, char *argv[]);
