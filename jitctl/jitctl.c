/* SPDX-License-Identifier: MIT */
/* jitctl: ask jit-brokerd for time-limited access, review requests, end grants.
 * Each command is one request/reply exchange (common/PROTOCOL.md); this file parses the
 * command line and maps replies to output and exit status (DESIGN.md). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <locale.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#include "cleanup.h"
#include "client.h"
#include "duration.h"
#include "jitctl-audit.h"
#include "jitctl-format.h"
#include "jitctl-policy.h"
#include "jitctl-text.h"
#include "policy.h"
#include "protocol.h"
#include "timeutil.h"
#include "users.h"

#define TIMEOUT_DEFAULT_SEC 10U
#define TIMEOUT_MAX_SEC 3600U

/* Returned by argument parsers when the command should go on. */
#define CONTINUE (-1)

typedef struct Command Command;

/* Options that apply to every command. The only mutable state of the program. */
typedef struct Context {
        const char *socket_path;
        unsigned timeout_ms;
        bool json;
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
};

/* clang-format off */
static const char global_help[] =
        "Usage: jitctl [--socket PATH] [--json] [--timeout SECONDS] COMMAND [ARGS...]\n"
        "\n"
        "Ask for, review and end just-in-time sudo and ssh access on this host.\n"
        "\n"
        "Commands:\n"
        "  request --reason TEXT [--service S] [--for DUR] [--ticket T] [--once] [--wait]\n"
        "                       Ask for a grant (for sudo unless --service says otherwise)\n"
        "  list [--pending|--active|--all] [--mine]\n"
        "                       Requests you may see (default: pending and active)\n"
        "  show ID              One request with its approvals and this host's profile\n"
        "  approve ID [--comment TEXT]\n"
        "                       Approve someone else's pending request\n"
        "  deny ID --reason TEXT\n"
        "                       Turn a pending request down\n"
        "  revoke ID [--reason TEXT]\n"
        "                       End an active grant early\n"
        "  cancel ID            Withdraw your own pending request\n"
        "  status               Your active grants and pending requests\n"
        "  audit [--since TIME] [--until TIME] [--user U] [--request ID] [--limit N]\n"
        "                       The audit log (with --json: JSON lines, one record each)\n"
        "  audit --verify [--db PATH]\n"
        "                       Check that the audit log is intact (as root, without the broker)\n"
        "  policy check [FILE] | policy explain [--policy FILE] --user U ... |\n"
        "  policy test CASES [--policy FILE]\n"
        "                       Validate a policy, dry-run a decision, run expected decisions\n"
        "\n"
        "Options:\n"
        "  --socket PATH        Broker socket (default: $JIT_SOCKET, else " JIT_SOCKET_DEFAULT ")\n"
        "  --json               Print one JSON document on stdout (also after COMMAND)\n"
        "  --timeout SECONDS    Give up on a broker that does not answer (default: 10)\n"
        "  -h, --help           Show this help; 'jitctl COMMAND --help' for one command\n"
        "  --version            Show the version\n"
        "\n"
        "Durations are written 90s, 30m, 1h30m, 2h, 1d.\n"
        "\n"
        "With --json, stdout holds exactly one JSON document: the broker's result (an array\n"
        "of requests for list, an object otherwise) or, on failure, {\"error\": CODE,\n"
        "\"message\": TEXT}, with the message on stderr too. CODE is the broker's (bad-request,\n"
        "refused, not-found, conflict, internal) or jitctl's own (unreachable, bad-reply).\n"
        "Usage errors write to stderr only.\n"
        "\n"
        "Exit status: 0 success, 1 failure, 2 usage error, 3 refused by policy or permission\n"
        "(for request --wait: denied, cancelled or timed out), 4 broker unreachable, 5 no such\n"
        "request.\n";

static const char request_help[] =
        "Usage: jitctl request --reason TEXT [--service S] [--for DUR] [--ticket T]\n"
        "                      [--once] [--wait]\n"
        "\n"
        "Ask for a time-limited grant for yourself. The broker's policy decides who has to\n"
        "approve it and how long it may last.\n"
        "\n"
        "Options:\n"
        "  --reason TEXT   Why you need access; approvers read it (required)\n"
        "  --service S     PAM service the grant is for: sudo (default), sshd, ...\n"
        "  --for DUR       How long the grant lasts once approved: 30m, 2h, 1h30m, ...\n"
        "                  (default: the policy's)\n"
        "  --ticket T      Ticket or change id, where the policy asks for one\n"
        "  --once          One-shot: the grant ends when its first session closes\n"
        "  --wait          Wait until the request is decided; exit 0 when it is approved,\n"
        "                  3 when it is denied, cancelled or times out, 1 when the grant\n"
        "                  ended already\n"
        "  --json          Print the request as JSON\n"
        "  -h, --help      Show this help\n";

static const char list_help[] =
        "Usage: jitctl list [--pending|--active|--all] [--mine]\n"
        "\n"
        "List the requests you may see: your own, those you may approve, all for root.\n"
        "\n"
        "Options:\n"
        "  --pending       Only requests waiting for approval\n"
        "  --active        Only active grants\n"
        "  --all           Also requests that have ended\n"
        "                  (default: pending requests and active grants)\n"
        "  --mine          Only your own requests\n"
        "  --json          Print a JSON array of requests\n"
        "  -h, --help      Show this help\n";

static const char show_help[] =
        "Usage: jitctl show ID\n"
        "\n"
        "Show one request: every field, its approvals, the rule's approvers and this host's\n"
        "resource profile.\n"
        "\n"
        "Options:\n"
        "  --json          Print the request as JSON\n"
        "  -h, --help      Show this help\n";

static const char approve_help[] =
        "Usage: jitctl approve ID [--comment TEXT]\n"
        "\n"
        "Approve a pending request. You must be an approver of its rule, and you cannot\n"
        "approve your own request.\n"
        "\n"
        "Options:\n"
        "  --comment TEXT  A note kept with your approval\n"
        "  --json          Print the request as JSON\n"
        "  -h, --help      Show this help\n";

static const char deny_help[] =
        "Usage: jitctl deny ID --reason TEXT\n"
        "\n"
        "Turn a pending request down.\n"
        "\n"
        "Options:\n"
        "  --reason TEXT   Why, for the requester and the audit log (required)\n"
        "  --json          Print the request as JSON\n"
        "  -h, --help      Show this help\n";

static const char revoke_help[] =
        "Usage: jitctl revoke ID [--reason TEXT]\n"
        "\n"
        "End a grant before it expires; the broker ends its sessions as the policy says.\n"
        "\n"
        "Options:\n"
        "  --reason TEXT   Why, for the audit log\n"
        "  --json          Print the request as JSON\n"
        "  -h, --help      Show this help\n";

static const char cancel_help[] =
        "Usage: jitctl cancel ID\n"
        "\n"
        "Withdraw your own pending request.\n"
        "\n"
        "Options:\n"
        "  --json          Print the request as JSON\n"
        "  -h, --help      Show this help\n";

static const char status_help[] =
        "Usage: jitctl status\n"
        "\n"
        "Show your active grants with the time they have left, your pending requests, and\n"
        "the broker's version and counts.\n"
        "\n"
        "Options:\n"
        "  --json          Print the status as JSON\n"
        "  -h, --help      Show this help\n";
/* clang-format on */

/* clang-format off */
static const char policy_help[] =
        "Usage: jitctl policy check [FILE]\n"
        "       jitctl policy explain [--policy FILE] [--user U] [--service S] [--for DUR]\n"
        "                             [--at TIME] [--ticket T] [--reason TEXT] [--groups G1,G2]\n"
        "       jitctl policy test CASES [--policy FILE]\n"
        "\n"
        "check    Validates a policy file (default " JIT_POLICY_PATH ") the way jit-brokerd\n"
        "         reads it and prints its rules in the order they are tried, its warnings\n"
        "         (on stderr: unknown users and groups, approvals that can never be met) and\n"
        "         its version. Exit status 0 when valid, 1 when not; errors name FILE:LINE.\n"
        "explain  Dry-runs a request: which rule matches, whether it is approved\n"
        "         automatically or by whom, the duration it would get, and why each earlier\n"
        "         rule did not match. Asks the broker about its live policy, or decides from\n"
        "         FILE with --policy. Exit status 0 when the request would be approved\n"
        "         (automatically or by approvers), 3 when it would be refused.\n"
        "test     Runs a file of expected decisions (CASES, libconfig) against a policy: the\n"
        "         --policy FILE, else the file's own policy = \"...\" (relative to CASES),\n"
        "         else " JIT_POLICY_PATH ". Prints PASS or FAIL per case. Exit status 0 when\n"
        "         all pass, 1 when one fails, 2 when CASES is malformed.\n"
        "\n"
        "Options of explain:\n"
        "  --policy FILE   Decide from FILE instead of asking the broker\n"
        "  --user U        The requester (default: you); with --policy looked up on this host\n"
        "  --groups G1,G2  The requester's groups, exactly (no lookup: U need not exist;\n"
        "                  --groups '' means none)\n"
        "  --service S     PAM service (default: sudo)\n"
        "  --for DUR       Requested duration (default: the policy's)\n"
        "  --at TIME       When: now (default), 2024-05-06T10:00[:SS] (local time), the same\n"
        "                  ending in Z (UTC), or Mon 10:00 (that weekday in a fixed reference\n"
        "                  week, local time)\n"
        "  --ticket T      Ticket, for rules with a ticket_pattern\n"
        "  --reason TEXT   Reason, for rules with reason_min_length (unchecked when absent)\n"
        "\n"
        "A cases file:\n"
        "  policy = \"policy.conf\";\n"
        "  cases = (\n"
        "    { name = \"a developer needs a lead\"; user = \"alice\"; groups = [\"developers\"];\n"
        "      service = \"sudo\"; for = \"1h\"; at = \"Mon 10:00\"; ticket = \"OPS-12\";\n"
        "      expect = \"approval\"; rule = \"sudo-one-lead\"; },\n"
        "    { name = \"no ticket, no grant\"; user = \"alice\"; groups = [\"developers\"];\n"
        "      expect = \"refused\"; message = \"needs a ticket\"; }\n"
        "  );\n"
        "Keys: name, user and expect (auto, approval or refused) are required; groups (never\n"
        "looked up), service (default sudo), for, at (default Mon 12:00), ticket, reason,\n"
        "rule (the rule that must decide), message (a substring of the refusal), break_glass\n"
        "(true: decide as jitctl break-glass would).\n"
        "\n"
        "Options:\n"
        "  --json          Print the result as JSON (test: an array of case results)\n"
        "  -h, --help      Show this help\n";
/* clang-format on */

static const char break_glass_help[] =
        "Usage: jitctl break-glass [--service S] [--for DUR] --reason TEXT [--json]\n"
        "\n"
        "Takes an emergency grant at once, without approval, where the policy's break_glass\n"
        "group lists you. It is logged at journald priority alert and stays in every\n"
        "reviewer's 'jitctl list' until a second person acknowledges it (jitctl ack ID).\n"
        "\n"
        "Options:\n"
        "  --service S     PAM service (default sudo)\n"
        "  --for DUR       at most break_glass.max_duration (the default)\n"
        "  --reason TEXT   what is on fire (required)\n"
        "  --json          Print the grant as JSON\n"
        "  -h, --help      Show this help\n";

static const char ack_help[] =
        "Usage: jitctl ack ID [--json]\n"
        "\n"
        "Acknowledges a break-glass grant after reviewing it: root or another member of the\n"
        "policy's break_glass requesters, never the person who took it.\n"
        "\n"
        "Options:\n"
        "  --json          Print the request as JSON\n"
        "  -h, --help      Show this help\n";

static int usage_error(const Context *c, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static int usage_error(const Context *c, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL; /* undefined after a failure */
        va_end(ap);

        fputs("jitctl: ", stderr);
        if (c->command)
                fprintf(stderr, "%s: ", c->command->name);
        /* The message may quote what was typed; show it as harmlessly as broker text. */
        fputs_escaped(msg ?: "invalid usage", stderr);
        fprintf(stderr, "\nTry 'jitctl%s%s --help'.\n", c->command ? " " : "",
                c->command ? c->command->name : "");
        return JIT_EXIT_USAGE;
}

/* Reports a failure after the command line was accepted: on stderr, and in JSON mode as
 * the one document on stdout. Returns status. */
static int fail(const Context *c, int status, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static int fail(const Context *c, int status, const char *code, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL; /* undefined after a failure */
        va_end(ap);

        fputs("jitctl: ", stderr);
        fputs_escaped(msg ?: "out of memory", stderr);
        fputc('\n', stderr);

        if (c->json) {
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();
                if (o) {
                        json_object_object_add(o, "error", json_object_new_string(code));
                        json_object_object_add(o, "message",
                                               json_object_new_string(msg ?: "out of memory"));
                        (void) print_json(o, stdout);
                }
        }
        return status;
}

static int fail_oom(const Context *c) {
        return fail(c, JIT_EXIT_FAILURE, "internal", "out of memory");
}

static int fail_bad_reply(const Context *c) {
        return fail(c, JIT_EXIT_FAILURE, "bad-reply", "unexpected reply from the broker at %s",
                    c->socket_path);
}

static int print_help(const Context *c) {
        fputs(c->command ? c->command->help : global_help, stdout);
        return JIT_EXIT_OK;
}

/* getopt_long has printed what was wrong (with argv[0] set to "jitctl: COMMAND"). */
static int option_error(const Context *c) {
        fprintf(stderr, "Try 'jitctl%s%s --help'.\n", c->command ? " " : "",
                c->command ? c->command->name : "");
        return JIT_EXIT_USAGE;
}

/* Maps what jit_client_call() returned to a message and an exit status. */
static int report_client_error(const Context *c, int r) {
        switch (r) {
        case -EBADMSG:
                return fail(c, JIT_EXIT_FAILURE, "bad-reply", "garbage reply from the broker at %s",
                            c->socket_path);
        case -ENOMEM:
                return fail_oom(c);
        case -EMSGSIZE:
                return fail(c, JIT_EXIT_FAILURE, "bad-request",
                            "request too large for the protocol");
        case -EPERM:
                return fail(
                        c, JIT_EXIT_UNREACHABLE, "unreachable",
                        "cannot trust the broker at %s: the socket is not owned by a root process",
                        c->socket_path);
        case -ETIMEDOUT:
                /* The broker may have acted on a request it received but never answered. */
                return fail(c, JIT_EXIT_UNREACHABLE, "unreachable",
                            "no answer from the broker at %s within %u s (see --timeout)",
                            c->socket_path, c->timeout_ms / 1000);
        default:
                errno = -r;
                return fail(c, JIT_EXIT_UNREACHABLE, "unreachable",
                            "cannot reach the broker at %s: %m", c->socket_path);
        }
}

/* A reply with "ok": false, as the broker meant it. */
static int report_broker_error(const Context *c, json_object *reply) {
        const char *code = json_get_string(reply, "error");
        const char *message = json_get_string(reply, "message");
        JitError e = jit_error_from_string(code);

        if (!code)
                return fail_bad_reply(c);
        /* An error code from a newer broker still fails, just without a finer status. */
        int status = e == _JIT_ERROR_INVALID ? JIT_EXIT_FAILURE : jit_error_to_exit_status(e);
        return fail(c, status, code, "%s", message ?: code);
}

/* One exchange with the broker. Returns JIT_EXIT_OK with the reply in *ret_reply and its
 * "result" (borrowed from it, NULL when absent) in *ret_result; otherwise reports the
 * failure and returns the exit status. */
static int broker_call(const Context *c, json_object *request, json_object **ret_reply,
                       json_object **ret_result) {
        _cleanup_(json_object_putp) json_object *reply = NULL;
        json_object *ok, *result = NULL;

        int r = jit_client_call(c->socket_path, c->timeout_ms, request, &reply);
        if (r < 0)
                return report_client_error(c, r);

        if (!json_object_object_get_ex(reply, "ok", &ok) || !json_object_get_boolean(ok))
                return report_broker_error(c, reply);
        (void) json_object_object_get_ex(reply, "result", &result);
        *ret_result = result;
        *ret_reply = TAKE_PTR(reply);
        return JIT_EXIT_OK;
}

/* Adds v (consumed) under key; -ENOMEM when v could not be made or added. */
static int add_value(json_object *o, const char *key, json_object *v) {
        if (!v || json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int add_string(json_object *o, const char *key, const char *value) {
        return add_value(o, key, json_object_new_string(value));
}

static int add_int(json_object *o, const char *key, int64_t value) {
        return add_value(o, key, json_object_new_int64(value));
}

static int add_bool(json_object *o, const char *key, bool value) {
        return add_value(o, key, json_object_new_boolean(value));
}

/* {"version": 1, "op": op, "id": id}, or NULL on ENOMEM. */
static json_object *request_with_id(const char *op, int64_t id) {
        _cleanup_(json_object_putp) json_object *o = jit_request_new(op);
        if (!o || add_int(o, "id", id) < 0)
                return NULL;
        return TAKE_PTR(o);
}

/* Ids are positive 63-bit integers written in decimal: no sign, no blanks, no suffix. */
static int parse_id(const char *s, int64_t *ret) {
        char *end;

        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno != 0 || *end != '\0' || v == 0 || v > INT64_MAX)
                return -EINVAL;
        *ret = (int64_t) v;
        return 0;
}

static int parse_timeout(const char *s, unsigned *ret_ms) {
        char *end;

        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno != 0 || *end != '\0' || v == 0 || v > TIMEOUT_MAX_SEC)
                return -EINVAL;
        *ret_ms = (unsigned) v * 1000U;
        return 0;
}

/* Text a person types (reason, comment, ticket) is checked here so that a mistake gets a
 * usage error naming the option, rather than a bad-request from the broker. */
static int check_text(const Context *c, const char *option, const char *s, size_t max) {
        size_t len = strlen(s);

        if (strspn(s, " ") == len)
                return usage_error(c, "%s must not be empty", option);
        if (len > max)
                return usage_error(c, "%s is too long (%zu bytes, at most %zu)", option, len, max);
        if (!jit_text_is_safe(s, len))
                return usage_error(
                        c, "%s must be UTF-8 text without control characters (no newlines or tabs)",
                        option);
        return CONTINUE;
}

static int check_service(const Context *c, const char *s) {
        size_t len = strlen(s);

        if (len == 0 || len > JIT_SERVICE_MAX ||
            strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != len)
                return usage_error(
                        c, "invalid service '%s' (letters, digits, '.', '_', '-'; at most %d)", s,
                        JIT_SERVICE_MAX);
        return CONTINUE;
}

static int check_duration(const Context *c, const char *s, uint64_t *ret) {
        char max[DURATION_BUF_MAX];

        int r = duration_parse(s, ret);
        if (r == -ERANGE)
                return usage_error(c, "duration '%s' is too long (at most %s)", s,
                                   duration_format(JIT_DURATION_MAX_SEC, max, sizeof(max)));
        if (r < 0)
                return usage_error(c, "invalid duration '%s' (write e.g. 90s, 30m, 1h30m, 2h, 1d)",
                                   s);
        return CONTINUE;
}

/* Rejects positional arguments beyond the n expected. */
static int check_no_more_args(const Context *c, int argc, char *argv[], int n) {
        if (argc - optind > n)
                return usage_error(c, "unexpected argument '%s'", argv[optind + n]);
        return CONTINUE;
}

/* The one positional ID of show, approve, deny, revoke and cancel. */
static int parse_id_arg(const Context *c, int argc, char *argv[], int64_t *ret) {
        if (optind >= argc)
                return usage_error(c, "missing request id");
        if (parse_id(argv[optind], ret) < 0)
                return usage_error(c, "invalid request id '%s' (a positive integer)", argv[optind]);
        return check_no_more_args(c, argc, argv, 1);
}

/* Runs getopt_long over a command's arguments and takes --json, which every command has.
 * Returns the next option, or -1 at the end. */
static int next_option(Context *c, int argc, char *argv[], const struct option *options) {
        for (;;) {
                int opt = getopt_long(argc, argv, "h", options, NULL);
                if (opt != ARG_JSON)
                        return opt;
                c->json = true;
        }
}

static void begin_options(void) {
        optind = 0; /* fully reinitialise getopt for a new argument vector */
}

/* clang-format off */
#define COMMON_OPTIONS                                                                            \
        { "help", no_argument, NULL, 'h' }, { "json", no_argument, NULL, ARG_JSON }
/* clang-format on */

typedef struct RequestArgs {
        const char *service;
        const char *reason;
        const char *ticket;
        uint64_t duration; /* 0: the policy's default */
        bool once;
        bool wait;
} RequestArgs;

static int parse_request_args(Context *c, int argc, char *argv[], RequestArgs *a) {
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "service", required_argument, NULL, ARG_SERVICE },
                { "for", required_argument, NULL, ARG_FOR },
                { "reason", required_argument, NULL, ARG_REASON },
                { "ticket", required_argument, NULL, ARG_TICKET },
                { "once", no_argument, NULL, ARG_ONCE },
                { "wait", no_argument, NULL, ARG_WAIT },
                {},
        };
        const char *duration = NULL;
        int opt, r;

        *a = (RequestArgs){ .service = "sudo" };
        begin_options();
        while ((opt = next_option(c, argc, argv, options)) >= 0)
                switch (opt) {
                case 'h':
                        return print_help(c);
                case ARG_SERVICE:
                        a->service = optarg;
                        break;
                case ARG_FOR:
                        duration = optarg;
                        break;
                case ARG_REASON:
                        a->reason = optarg;
                        break;
                case ARG_TICKET:
                        a->ticket = optarg;
                        break;
                case ARG_ONCE:
                        a->once = true;
                        break;
                case ARG_WAIT:
                        a->wait = true;
                        break;
                default:
                        return option_error(c);
                }

        if ((r = check_no_more_args(c, argc, argv, 0)) != CONTINUE ||
            (r = check_service(c, a->service)) != CONTINUE)
                return r;
        if (duration && (r = check_duration(c, duration, &a->duration)) != CONTINUE)
                return r;
        if (!a->reason)
                return usage_error(c, "missing --reason (say why you need access)");
        if ((r = check_text(c, "--reason", a->reason, JIT_REASON_MAX)) != CONTINUE)
                return r;
        if (a->ticket && (r = check_text(c, "--ticket", a->ticket, JIT_TICKET_MAX)) != CONTINUE)
                return r;
        return CONTINUE;
}

static json_object *build_request(const RequestArgs *a) {
        _cleanup_(json_object_putp) json_object *o = jit_request_new("request");

        if (!o || add_string(o, "service", a->service) < 0 ||
            add_string(o, "reason", a->reason) < 0 ||
            (a->duration > 0 && add_int(o, "duration", (int64_t) a->duration) < 0) ||
            (a->ticket && add_string(o, "ticket", a->ticket) < 0) ||
            (a->once && add_bool(o, "once", true) < 0))
                return NULL;
        return TAKE_PTR(o);
}

/* Polls `show` once a second until the request is no longer pending. Returns like
 * broker_call(), with the decided request. */
static int wait_for_decision(const Context *c, int64_t id, json_object **ret_reply,
                             json_object **ret_result) {
        if (!c->json)
                fprintf(stderr,
                        "Waiting for approval of request %" PRIi64 "%s "
                        "(Ctrl+C stops waiting; the request stays pending)\n",
                        id, glyph_ellipsis());
        for (;;) {
                _cleanup_(json_object_putp) json_object *request = NULL, *reply = NULL;
                json_object *result;

                (void) sleep(1);
                request = request_with_id("show", id);
                if (!request)
                        return fail_oom(c);
                int r = broker_call(c, request, &reply, &result);
                if (r != JIT_EXIT_OK)
                        return r;
                const char *state = json_get_string(result, "state");
                if (!state)
                        return fail_bad_reply(c);
                if (!STREQ(state, "pending")) {
                        *ret_result = result;
                        *ret_reply = TAKE_PTR(reply);
                        return JIT_EXIT_OK;
                }
        }
}

/* Exit status of request --wait: approved, turned down, or approved but over already. */
static int decision_exit_status(const char *state) {
        if (STREQ(state, "active"))
                return JIT_EXIT_OK;
        if (STREQ(state, "denied") || STREQ(state, "cancelled") || STREQ(state, "timed_out"))
                return JIT_EXIT_REFUSED;
        return JIT_EXIT_FAILURE;
}

static int cmd_request(Context *c, int argc, char *argv[]) {
        _cleanup_(json_object_putp) json_object *request = NULL, *reply = NULL;
        _cleanup_(request_view_done) RequestView v = {};
        json_object *result;
        RequestArgs a;
        int r;

        r = parse_request_args(c, argc, argv, &a);
        if (r != CONTINUE)
                return r;
        request = build_request(&a);
        if (!request)
                return fail_oom(c);
        r = broker_call(c, request, &reply, &result);
        if (r != JIT_EXIT_OK)
                return r;
        r = request_view_init(&v, result);
        if (r == -ENOMEM)
                return fail_oom(c);
        if (r < 0)
                return fail_bad_reply(c);

        /* With --json and --wait, the one document is the request as it was decided. */
        if (!(c->json && a.wait)) {
                if (c->json)
                        return print_json(result, stdout) < 0 ? fail_oom(c) : JIT_EXIT_OK;
                print_filed(&v, stdout);
        }
        if (!a.wait)
                return JIT_EXIT_OK;
        if (STREQ(v.state, "pending")) {
                fflush(stdout);
                int64_t id = v.id;
                request_view_done(&v);
                json_object_put(TAKE_PTR(reply));
                r = wait_for_decision(c, id, &reply, &result);
                if (r != JIT_EXIT_OK)
                        return r;
                r = request_view_init(&v, result);
                if (r == -ENOMEM)
                        return fail_oom(c);
                if (r < 0)
                        return fail_bad_reply(c);
                if (!c->json)
                        print_outcome(&v, stdout);
        }
        if (c->json && print_json(result, stdout) < 0)
                return fail_oom(c);
        return decision_exit_status(v.state);
}

typedef struct ListArgs {
        const char *filter;
        bool mine;
} ListArgs;

static int parse_list_args(Context *c, int argc, char *argv[], ListArgs *a) {
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "pending", no_argument, NULL, ARG_PENDING },
                { "active", no_argument, NULL, ARG_ACTIVE },
                { "all", no_argument, NULL, ARG_ALL },
                { "mine", no_argument, NULL, ARG_MINE },
                {},
        };
        int opt;

        *a = (ListArgs){};
        begin_options();
        while ((opt = next_option(c, argc, argv, options)) >= 0) {
                const char *filter = NULL;

                switch (opt) {
                case 'h':
                        return print_help(c);
                case ARG_PENDING:
                        filter = "pending";
                        break;
                case ARG_ACTIVE:
                        filter = "active";
                        break;
                case ARG_ALL:
                        filter = "all";
                        break;
                case ARG_MINE:
                        a->mine = true;
                        break;
                default:
                        return option_error(c);
                }
                if (filter && a->filter && !STREQ(filter, a->filter))
                        return usage_error(c, "--pending, --active and --all exclude each other");
                if (filter)
                        a->filter = filter;
        }
        if (!a->filter)
                a->filter = "open";
        return check_no_more_args(c, argc, argv, 0);
}

/* The common end of a command that shows one reply: the JSON document with --json,
 * else print() for people. request is consumed. */
static int call_and_print(Context *c, json_object *request,
                          int (*print)(json_object *result, FILE *f)) {
        _cleanup_(json_object_putp) json_object *owned = request;
        _cleanup_(json_object_putp) json_object *reply = NULL;
        json_object *result;

        if (!request)
                return fail_oom(c);
        int r = broker_call(c, request, &reply, &result);
        if (r != JIT_EXIT_OK)
                return r;
        if (c->json)
                return print_json(result, stdout) < 0 ? fail_oom(c) : JIT_EXIT_OK;
        r = print(result, stdout);
        if (r == -ENOMEM)
                return fail_oom(c);
        if (r < 0)
                return fail_bad_reply(c);
        return JIT_EXIT_OK;
}

static int cmd_list(Context *c, int argc, char *argv[]) {
        _cleanup_(json_object_putp) json_object *request = NULL;
        ListArgs a;
        int r;

        r = parse_list_args(c, argc, argv, &a);
        if (r != CONTINUE)
                return r;
        request = jit_request_new("list");
        if (!request || add_string(request, "filter", a.filter) < 0 ||
            (a.mine && add_bool(request, "mine", true) < 0))
                return fail_oom(c);
        return call_and_print(c, TAKE_PTR(request), print_request_table);
}

/* Options and the ID of a command that names one request. text_option is the name of
 * its optional or required text option ("comment", "reason"), or NULL. */
static int parse_id_command_args(Context *c, int argc, char *argv[], const char *text_option,
                                 bool text_required, int64_t *ret_id, const char **ret_text) {
        const struct option options[] = {
                COMMON_OPTIONS,
                { text_option, required_argument, NULL, ARG_TEXT }, /* the end when NULL */
                {},
        };
        char option_name[32];
        int opt, r;

        *ret_text = NULL;
        begin_options();
        while ((opt = next_option(c, argc, argv, options)) >= 0)
                switch (opt) {
                case 'h':
                        return print_help(c);
                case ARG_TEXT:
                        *ret_text = optarg;
                        break;
                default:
                        return option_error(c);
                }

        r = parse_id_arg(c, argc, argv, ret_id);
        if (r != CONTINUE || !text_option)
                return r;
        snprintf(option_name, sizeof(option_name), "--%s", text_option);
        if (!*ret_text)
                return text_required ? usage_error(c, "missing %s", option_name) : CONTINUE;
        return check_text(c, option_name, *ret_text, JIT_REASON_MAX);
}

/* show, approve, deny, revoke, cancel: op with the request id and maybe a text field,
 * which has the same name in the protocol as the option. */
static int run_id_command(Context *c, int argc, char *argv[], const char *text_option,
                          bool text_required) {
        _cleanup_(json_object_putp) json_object *request = NULL, *reply = NULL;
        _cleanup_(request_view_done) RequestView v = {};
        const char *op = c->command->name, *text;
        json_object *result;
        int64_t id = 0;
        int r;

        r = parse_id_command_args(c, argc, argv, text_option, text_required, &id, &text);
        if (r != CONTINUE)
                return r;
        request = request_with_id(op, id);
        if (!request || (text && add_string(request, text_option, text) < 0))
                return fail_oom(c);
        r = broker_call(c, request, &reply, &result);
        if (r != JIT_EXIT_OK)
                return r;
        if (c->json)
                return print_json(result, stdout) < 0 ? fail_oom(c) : JIT_EXIT_OK;

        if (STREQ(op, "show"))
                r = print_request_details(result, stdout);
        else if (STREQ(op, "ack"))
                printf("Break-glass grant %" PRIi64 " acknowledged.\n", id);
        else {
                r = request_view_init(&v, result);
                if (r >= 0 && STREQ(op, "approve"))
                        print_approval(&v, stdout);
                else if (r >= 0)
                        print_outcome(&v, stdout);
        }
        if (r == -ENOMEM)
                return fail_oom(c);
        if (r < 0)
                return fail_bad_reply(c);
        return JIT_EXIT_OK;
}

static int cmd_show(Context *c, int argc, char *argv[]) {
        return run_id_command(c, argc, argv, NULL, false);
}

static int cmd_approve(Context *c, int argc, char *argv[]) {
        return run_id_command(c, argc, argv, "comment", false);
}

static int cmd_deny(Context *c, int argc, char *argv[]) {
        return run_id_command(c, argc, argv, "reason", true);
}

static int cmd_revoke(Context *c, int argc, char *argv[]) {
        return run_id_command(c, argc, argv, "reason", false);
}

static int cmd_ack(Context *c, int argc, char *argv[]) {
        return run_id_command(c, argc, argv, NULL, false);
}

static int cmd_break_glass(Context *c, int argc, char *argv[]) {
        _cleanup_(json_object_putp) json_object *request = NULL, *reply = NULL;
        _cleanup_(request_view_done) RequestView v = {};
        json_object *result;
        RequestArgs a;
        int r;

        r = parse_request_args(c, argc, argv, &a);
        if (r != CONTINUE)
                return r;
        if (a.ticket || a.once || a.wait)
                return usage_error(c, "--ticket, --once and --wait do not apply to break-glass");
        request = jit_request_new("break-glass");
        if (!request || add_string(request, "service", a.service) < 0 ||
            add_string(request, "reason", a.reason) < 0 ||
            (a.duration > 0 && add_int(request, "duration", (int64_t) a.duration) < 0))
                return fail_oom(c);
        r = broker_call(c, request, &reply, &result);
        if (r != JIT_EXIT_OK)
                return r;
        if (c->json)
                return print_json(result, stdout) < 0 ? fail_oom(c) : JIT_EXIT_OK;
        r = request_view_init(&v, result);
        if (r == -ENOMEM)
                return fail_oom(c);
        if (r < 0)
                return fail_bad_reply(c);
        print_outcome(&v, stdout);
        printf("This break-glass grant is logged as an alert and must be acknowledged by a second "
               "person: jitctl ack %" PRIi64 "\n",
               v.id);
        return JIT_EXIT_OK;
}

static int cmd_cancel(Context *c, int argc, char *argv[]) {
        return run_id_command(c, argc, argv, NULL, false);
}

static int cmd_status(Context *c, int argc, char *argv[]) {
        static const struct option options[] = {
                COMMON_OPTIONS,
                {},
        };
        int opt, r;

        begin_options();
        while ((opt = next_option(c, argc, argv, options)) >= 0)
                switch (opt) {
                case 'h':
                        return print_help(c);
                default:
                        return option_error(c);
                }
        r = check_no_more_args(c, argc, argv, 0);
        if (r != CONTINUE)
                return r;

        return call_and_print(c, jit_request_new("status"), print_status);
}

/* --groups G1,G2: names separated by commas, "%" allowed as in policy entries. */
static int parse_groups(const Context *c, char *s, ExplainArgs *a) {
        size_t n = 0;

        a->have_groups = true;
        if (!*s)
                return CONTINUE; /* explicitly none */
        for (const char *p = s; *p; p++)
                n += *p == ',';
        if (n + 1 > IDENTITY_GROUPS_MAX)
                return usage_error(c, "--groups: more than %d groups", IDENTITY_GROUPS_MAX);
        a->groups = calloc(n + 1, sizeof(char *));
        if (!a->groups)
                return fail_oom(c);
        for (char *save = NULL, *g = strtok_r(s, ",", &save); g; g = strtok_r(NULL, ",", &save)) {
                if (*g == '%')
                        g++;
                if (!valid_account_name(g))
                        return usage_error(c, "--groups: '%s' is not a group name", g);
                a->groups[a->n_groups++] = g;
        }
        if (a->n_groups != n + 1)
                return usage_error(c, "--groups: a group name is empty");
        return CONTINUE;
}

static json_object *build_explain_request(const ExplainArgs *a) {
        _cleanup_(json_object_putp) json_object *o = jit_request_new("explain");
        char at[RFC3339_BUF_MAX];

        if (!o || add_string(o, "user", a->user) < 0 || add_string(o, "service", a->service) < 0 ||
            (a->duration > 0 && add_int(o, "duration", (int64_t) a->duration) < 0) ||
            (a->have_at &&
             add_string(o, "at",
                        format_rfc3339((uint64_t) (a->at > 0 ? a->at : 0) * USEC_PER_SEC, at,
                                       sizeof(at))) < 0) ||
            (a->ticket && add_string(o, "ticket", a->ticket) < 0) ||
            (a->reason && add_string(o, "reason", a->reason) < 0))
                return NULL;
        if (a->have_groups) {
                json_object *groups = json_object_new_array();
                if (!groups || json_object_object_add(o, "groups", groups) < 0) {
                        json_object_put(groups);
                        return NULL;
                }
                for (size_t i = 0; i < a->n_groups; i++) {
                        json_object *g = json_object_new_string(a->groups[i]);
                        if (!g || json_object_array_add(groups, g) < 0) {
                                json_object_put(g);
                                return NULL;
                        }
                }
        }
        return TAKE_PTR(o);
}

static int policy_explain(Context *c, ExplainArgs *a) {
        _cleanup_(json_object_putp) json_object *request = NULL, *reply = NULL;
        _cleanup_(identity_done) Identity me = { .uid = (uid_t) -1 };
        json_object *result;
        int r;

        if (!a->user) {
                r = identity_from_uid(getuid(), &me);
                if (r < 0) {
                        errno = -r;
                        return fail(c, JIT_EXIT_FAILURE, "internal",
                                    "cannot find your user name (uid %u): %m; use --user",
                                    (unsigned) getuid());
                }
                a->user = me.name;
        }
        if (a->policy)
                return policy_explain_file(a, c->json);

        request = build_explain_request(a);
        if (!request)
                return fail_oom(c);
        r = broker_call(c, request, &reply, &result);
        if (r != JIT_EXIT_OK)
                return r;
        return policy_print_explanation(result, c->json);
}

static int cmd_policy(Context *c, int argc, char *argv[]) {
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "policy", required_argument, NULL, ARG_POLICY },
                { "user", required_argument, NULL, ARG_USER },
                { "groups", required_argument, NULL, ARG_GROUPS },
                { "service", required_argument, NULL, ARG_SERVICE },
                { "for", required_argument, NULL, ARG_FOR },
                { "at", required_argument, NULL, ARG_AT },
                { "ticket", required_argument, NULL, ARG_TICKET },
                { "reason", required_argument, NULL, ARG_REASON },
                {},
        };
        _cleanup_free_ char **groups = NULL;
        ExplainArgs a = { .service = "sudo" };
        const char *explain_only = NULL; /* the first option only explain takes */
        const char *duration = NULL;
        int opt, r;

        begin_options();
        while ((opt = next_option(c, argc, argv, options)) >= 0) {
                switch (opt) {
                case 'h':
                        return print_help(c);
                case ARG_POLICY:
                        if (!*optarg)
                                return usage_error(c, "--policy needs a file");
                        a.policy = optarg;
                        continue;
                case ARG_USER:
                        if (!valid_account_name(optarg))
                                return usage_error(c, "--user: '%s' is not a user name", optarg);
                        a.user = optarg;
                        break;
                case ARG_GROUPS:
                        if (a.have_groups)
                                return usage_error(c, "--groups given twice");
                        r = parse_groups(c, optarg, &a);
                        groups = a.groups;
                        if (r != CONTINUE)
                                return r;
                        break;
                case ARG_SERVICE:
                        if ((r = check_service(c, optarg)) != CONTINUE)
                                return r;
                        a.service = optarg;
                        break;
                case ARG_FOR:
                        duration = optarg;
                        break;
                case ARG_AT:
                        if (policy_time_parse(optarg, time(NULL), &a.at) < 0)
                                return usage_error(
                                        c,
                                        "invalid time '%s' (write now, 2024-05-06T10:00, "
                                        "2024-05-06T10:00:00Z or Mon 10:00)",
                                        optarg);
                        a.have_at = true;
                        break;
                case ARG_TICKET:
                        if ((r = check_text(c, "--ticket", optarg, JIT_TICKET_MAX)) != CONTINUE)
                                return r;
                        a.ticket = optarg;
                        break;
                case ARG_REASON:
                        if ((r = check_text(c, "--reason", optarg, JIT_REASON_MAX)) != CONTINUE)
                                return r;
                        a.reason = optarg;
                        break;
                default:
                        return option_error(c);
                }
                for (size_t i = 0; !explain_only && options[i].name; i++)
                        if (options[i].val == opt)
                                explain_only = options[i].name;
        }
        if (duration && (r = check_duration(c, duration, &a.duration)) != CONTINUE)
                return r;

        if (optind >= argc)
                return usage_error(c, "missing subcommand (check, explain or test)");
        const char *sub = argv[optind++];
        bool explain = STREQ(sub, "explain"), test = STREQ(sub, "test");
        if (!explain && !test && !STREQ(sub, "check"))
                return usage_error(c, "unknown subcommand '%s' (expected check, explain or test)",
                                   sub);
        if (!explain && explain_only)
                return usage_error(c, "%s: only policy explain takes --%s", sub, explain_only);
        if (!explain && !test && a.policy)
                return usage_error(c, "check: name the file without --policy");

        if (explain) {
                if ((r = check_no_more_args(c, argc, argv, 0)) != CONTINUE)
                        return r;
                return policy_explain(c, &a);
        }
        if (test) {
                if (optind >= argc)
                        return usage_error(c, "test: missing the cases file");
                const char *cases = argv[optind];
                if ((r = check_no_more_args(c, argc, argv, 1)) != CONTINUE)
                        return r;
                return policy_test_file(cases, a.policy, c->json);
        }
        const char *path = optind < argc ? argv[optind++] : JIT_POLICY_PATH;
        r = check_no_more_args(c, argc, argv, 0);
        if (r != CONTINUE)
                return r;
        return policy_check_file(path, c->json);
}

static int cmd_audit(Context *c, int argc, char *argv[]) {
        return jitctl_audit(c->socket_path, c->timeout_ms, c->json, argc, argv);
}

static const Command commands[] = {
        { "request", cmd_request, request_help },
        { "list", cmd_list, list_help },
        { "show", cmd_show, show_help },
        { "approve", cmd_approve, approve_help },
        { "deny", cmd_deny, deny_help },
        { "revoke", cmd_revoke, revoke_help },
        { "cancel", cmd_cancel, cancel_help },
        { "status", cmd_status, status_help },
        { "policy", cmd_policy, policy_help },
        { "audit", cmd_audit, jitctl_audit_help },
        { "break-glass", cmd_break_glass, break_glass_help },
        /* Named by DESIGN.md, not served by the broker yet. */
        { "watch", NULL, NULL },
        { "ack", cmd_ack, ack_help },
};

static const Command *find_command(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (STREQ(commands[i].name, name))
                        return &commands[i];
        return NULL;
}

/* Options before the command. "+" stops at the first non-option, the command, whose own
 * options are parsed by it. */
static int parse_global_args(Context *c, int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "json", no_argument, NULL, ARG_JSON },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                {},
        };
        int opt;

        argv[0] = (char *) "jitctl";
        while ((opt = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (opt) {
                case 'h':
                        return print_help(c);
                case ARG_VERSION:
                        puts("jitctl " JIT_VERSION);
                        return JIT_EXIT_OK;
                case ARG_SOCKET:
                        if (!*optarg)
                                return usage_error(c, "--socket needs a path");
                        c->socket_path = optarg;
                        break;
                case ARG_JSON:
                        c->json = true;
                        break;
                case ARG_TIMEOUT:
                        if (parse_timeout(optarg, &c->timeout_ms) < 0)
                                return usage_error(c,
                                                   "invalid timeout '%s' (whole seconds, 1 to %u)",
                                                   optarg, TIMEOUT_MAX_SEC);
                        break;
                default:
                        return option_error(c);
                }

        if (optind >= argc)
                return usage_error(c, "missing command");
        c->command = find_command(argv[optind]);
        if (!c->command)
                return usage_error(c, "unknown command '%s'", argv[optind]);
        return CONTINUE;
}

int main(int argc, char *argv[]) {
        Context c = {
                .socket_path = JIT_SOCKET_DEFAULT,
                .timeout_ms = TIMEOUT_DEFAULT_SEC * 1000U,
        };
        int r;

        /* Only the character type: column widths of names and reasons, the ellipsis. */
        setlocale(LC_CTYPE, "");

        /* secure_getenv: never follow the environment when running setuid. */
        const char *e = secure_getenv("JIT_SOCKET");
        if (e && *e)
                c.socket_path = e;

        if (argc < 1)
                return usage_error(&c, "missing command");
        r = parse_global_args(&c, argc, argv);
        if (r == CONTINUE && !c.command->run) {
                fprintf(stderr, "jitctl: %s: not supported by this version yet\n", c.command->name);
                r = JIT_EXIT_FAILURE;
        } else if (r == CONTINUE) {
                /* getopt_long prefixes its messages with argv[0]: make them read
                 * "jitctl: COMMAND: ...", like ours. */
                char prog[64];
                snprintf(prog, sizeof(prog), "jitctl: %s", c.command->name);
                argv[optind] = prog;
                r = c.command->run(&c, argc - optind, argv + optind);
        }

        /* Output that did not reach its destination is a failure, not a success. */
        if ((fflush(stdout) != 0 || ferror(stdout)) && r == JIT_EXIT_OK) {
                fputs("jitctl: cannot write to standard output\n", stderr);
                r = JIT_EXIT_FAILURE;
        }
        return r;
}
