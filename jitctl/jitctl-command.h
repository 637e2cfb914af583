/* SPDX-License-Identifier: MIT */
/* What jitctl's commands share: the global options (Context), an entry of the command
 * table, usage errors and failures as DESIGN.md says they read, one exchange with the
 * broker, and the checks of what was typed. jitctl.c parses the global options and runs
 * the command; the commands are in jitctl-requests.c, jitctl-policy-command.c and
 * jitctl-audit.c. */
#pragma once

#include <getopt.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "jitctl-exit.h"

/* Returned by argument parsers when the command should go on. */
#define CONTINUE (-1)

typedef struct Command Command;

/* Options that apply to every command. The only mutable state of the program. */
typedef struct Context {
        const char *socket_path;
        unsigned timeout_ms;
        bool json;
        bool no_pager;          /* --no-pager: list and audit print straight to the terminal */
        bool no_legend;         /* --no-legend: tables without headers and "none" lines */
        const Command *command; /* NULL while the global options are parsed */
} Context;

struct Command {
        const char *name;
        int (*run)(Context *c, int argc, char *argv[]); /* NULL: not supported yet */
        const char *help;
};

enum {
        ARG_VERSION = 0x100,
        ARG_SOCKET,
        ARG_JSON,
        ARG_TIMEOUT,
        ARG_SERVICE,
        ARG_FOR,
        ARG_REASON,
        ARG_TICKET,
        ARG_ONCE,
        ARG_WAIT,
        ARG_PENDING,
        ARG_ACTIVE,
        ARG_ALL,
        ARG_MINE,
        ARG_TEXT,
        ARG_POLICY,
        ARG_USER,
        ARG_AT,
        ARG_GROUPS,
        ARG_NO_PAGER,
        ARG_NO_LEGEND,
        ARG_SINCE,
        ARG_COMMAND,
        ARG_AS,
        ARG_HOSTS,
        ARG_DATABASE,
        ARG_TO,
        ARG_LABELS,
        ARG_REVIEW,
        ARG_REKEY,
};

/* clang-format off */
#define COMMON_OPTIONS                                                                            \
        { "help", no_argument, NULL, 'h' }, { "json", no_argument, NULL, ARG_JSON },              \
        { "no-pager", no_argument, NULL, ARG_NO_PAGER },                                          \
        { "no-legend", no_argument, NULL, ARG_NO_LEGEND }
/* clang-format on */

/* Usage (jitctl.c) */

/* "jitctl: COMMAND: MESSAGE" and the hint to --help on stderr; returns JIT_EXIT_USAGE. */
int usage_error(const Context *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The help of the command, or jitctl's own before the command; returns JIT_EXIT_OK. */
int print_help(const Context *c);
/* The hint to --help alone, after getopt_long's own message; returns JIT_EXIT_USAGE. */
int option_error(const Context *c);

/* Failures and the broker (jitctl-command.c) */

int fail(const Context *c, int status, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* fail() with what comes before the message on stderr given ("jitctl: " for fail()). */
int vfail(const Context *c, const char *prefix, int status, const char *code, const char *fmt,
          va_list ap) __attribute__((format(printf, 5, 0)));
int fail_oom(const Context *c);
int fail_bad_reply(const Context *c);
/* A reply that could not be read or shown (r < 0): out of memory for -ENOMEM, else a bad
 * reply. */
int fail_reply(const Context *c, int r);
int broker_call(const Context *c, json_object *request, json_object **ret_reply,
                json_object **ret_result);
/* A stream (watch, wait: common/PROTOCOL.md): sends request and reads the first frame as
 * broker_call() does; then *ret_fd is the connection to read the rest from. */
int broker_stream_open(const Context *c, json_object *request, int *ret_fd, json_object **ret_reply,
                       json_object **ret_result);
/* The next frame of the stream, as long as it takes; a failure (the broker went away, a
 * frame that is not a message) is reported and its exit status returned. */
int broker_stream_next(const Context *c, int fd, json_object **ret_frame);
/* The common end of a command that shows one reply: the JSON document with --json, else
 * print() for people, through the pager when long_listing. request is consumed. */
int call_and_print(Context *c, json_object *request, int (*print)(json_object *result, FILE *f),
                   bool long_listing);

/* Building requests: each adds one member; -ENOMEM when it could not. */
int add_string(json_object *o, const char *key, const char *value);
int add_int(json_object *o, const char *key, int64_t value);
int add_bool(json_object *o, const char *key, bool value);
json_object *request_with_id(const char *op, int64_t id);

/* A decimal integer from 1 to max, without sign, blanks or suffix: 0 or -EINVAL. */
int parse_positive(const char *s, int64_t max, int64_t *ret);

/* Arguments: each returns CONTINUE when fine, else the usage error reported. */
int check_text(const Context *c, const char *option, const char *s, size_t max);
int check_service(const Context *c, const char *s);
int check_duration(const Context *c, const char *s, uint64_t *ret);
int check_no_more_args(const Context *c, int argc, char *argv[], int n);
int parse_id_arg(const Context *c, int argc, char *argv[], int64_t *ret);
int next_option(Context *c, int argc, char *argv[], const struct option *options);
void begin_options(void);
/* The command line of a command that takes only the common options (--json, --help, ...)
 * and no arguments: CONTINUE, or the help printed or the usage error reported. */
int parse_no_arguments(Context *c, int argc, char *argv[]);

/* The commands, with their help (jitctl-requests.c, jitctl-policy-command.c) */

int cmd_request(Context *c, int argc, char *argv[]);
int cmd_list(Context *c, int argc, char *argv[]);
int cmd_show(Context *c, int argc, char *argv[]);
int cmd_approve(Context *c, int argc, char *argv[]);
int cmd_deny(Context *c, int argc, char *argv[]);
int cmd_revoke(Context *c, int argc, char *argv[]);
int cmd_cancel(Context *c, int argc, char *argv[]);
int cmd_status(Context *c, int argc, char *argv[]);
int cmd_break_glass(Context *c, int argc, char *argv[]);
int cmd_ack(Context *c, int argc, char *argv[]);
int cmd_policy(Context *c, int argc, char *argv[]);
int cmd_reload(Context *c, int argc, char *argv[]);
int cmd_watch(Context *c, int argc, char *argv[]);
int cmd_fleet(Context *c, int argc, char *argv[]); /* jitctl-fleet.c */
int cmd_grant(Context *c, int argc, char *argv[]); /* jitctl-grant.c */

/* request --wait: follows request id until it leaves pending (the wait stream), with its
 * progress on stderr; returns like broker_call(), with the decided request. */
int wait_for_decision(const Context *c, int64_t id, json_object **ret_reply,
                      json_object **ret_result);

extern const char request_help[];
extern const char watch_help[];
extern const char list_help[];
extern const char show_help[];
extern const char approve_help[];
extern const char deny_help[];
extern const char revoke_help[];
extern const char cancel_help[];
extern const char status_help[];
extern const char break_glass_help[];
extern const char fleet_help[];
extern const char grant_help[];
extern const char ack_help[];
extern const char policy_help[];
extern const char reload_help[];
