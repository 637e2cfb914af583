/* SPDX-License-Identifier: MIT */
/* jitctl: ask jit-brokerd for time-limited access, review requests, end grants.
 * Each command is one request/reply exchange (common/PROTOCOL.md). This file parses the
 * global options, finds the command and runs it, and says how jitctl is used; the
 * commands are in jitctl-requests.c, jitctl-policy-command.c and jitctl-audit.c. */
#include <errno.h>
#include <getopt.h>
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
#include "jitctl-audit.h"
#include "jitctl-command.h"
#include "jitctl-exit.h"
#include "jitctl-pager.h"
#include "jitctl-text.h"

#define TIMEOUT_DEFAULT_SEC 10U
#define TIMEOUT_MAX_SEC 3600U

/* clang-format off */
static const char global_help[] =
        "Usage: jitctl [--socket PATH] [--json] [--timeout SECONDS] COMMAND [ARGS...]\n"
        "\n"
        "Ask for, review and end just-in-time sudo and ssh access on this host.\n"
        "\n"
        "Commands:\n"
        "  request --reason TEXT [--service S] [--for DUR] [--ticket T] [--once] [--wait]\n"
        "          [--command 'CMD ARGS' [--as USER[:GROUP]]]\n"
        "                       Ask for a grant (for sudo unless --service says otherwise;\n"
        "                       with --command, for that one command line under sudo)\n"
        "  list [--pending|--active|--all] [--mine]\n"
        "                       Requests you may see (default: pending and active)\n"
        "  show ID              One request with its approvals and this host's profile\n"
        "  approve ID [--comment TEXT] [--sign] [--key FILE]\n"
        "                       Approve someone else's pending request (signed with your\n"
        "                       SSH key when the rule requires it or with --sign)\n"
        "  deny ID --reason TEXT\n"
        "                       Turn a pending request down\n"
        "  revoke ID [--reason TEXT]\n"
        "                       End an active grant early\n"
        "  cancel ID|f:ID       Withdraw your own pending request\n"
        "  status               What waits for your approval, your active grants and\n"
        "                       pending requests\n"
        "  watch [--since TIME]\n"
        "                       Follow the audit records you may see as they are written\n"
        "  audit [--since TIME] [--until TIME] [--user U] [--request ID] [--limit N]\n"
        "                       The audit log (with --json: JSON lines, one record each)\n"
        "  audit --verify [--db PATH | --archive FILE]\n"
        "                       Check that the audit log, or an archive of it, is intact\n"
        "  audit export --until TIME FILE\n"
        "                       Root: seal older records into an archive file\n"
        "  break-glass --reason TEXT [--service S] [--for DUR]\n"
        "                       Take an emergency grant where the policy allows you to\n"
        "  ack ID               Acknowledge someone else's break-glass grant\n"
        "  policy check [FILE] | policy explain [--policy FILE] --user U ... |\n"
        "  policy test CASES [--policy FILE]\n"
        "                       Validate a policy, dry-run a decision, run expected decisions\n"
        "  reload               Root: make the broker re-read its policy now\n"
        "  fleet migrate --database URI | fleet add-host NAME --database URI ...\n"
        "                       The fleet's store in PostgreSQL, as its administrator\n"
        "  grant export ID [--output FILE] | grant import FILE\n"
        "                       Carry a grant with signed approvals to another host\n"
        "  help [COMMAND]       Show this help, or one command's\n"
        "\n"
        "Options:\n"
        "  --socket PATH        Broker socket (default: $JIT_SOCKET, else " JIT_SOCKET_DEFAULT ")\n"
        "  --json               Print one JSON document on stdout (also after COMMAND)\n"
        "  --timeout SECONDS    Give up on a broker that does not answer (default: 10)\n"
        "  --no-pager           Do not send long listings (list, audit) through a pager\n"
        "  --no-legend          Leave out column headers and \"No requests.\" lines\n"
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
/* clang-format on */

int usage_error(const Context *c, const char *fmt, ...) {
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
        fputc('\n', stderr);
        return option_error(c);
}

int print_help(const Context *c) {
        fputs(c->command ? c->command->help : global_help, stdout);
        return JIT_EXIT_OK;
}

/* getopt_long has printed what was wrong (with argv[0] set to "jitctl: COMMAND"). */
int option_error(const Context *c) {
        fprintf(stderr, "Try 'jitctl%s%s --help'.\n", c->command ? " " : "",
                c->command ? c->command->name : "");
        return JIT_EXIT_USAGE;
}

static int parse_timeout(const char *s, unsigned *ret_ms) {
        int64_t v;

        if (parse_positive(s, TIMEOUT_MAX_SEC, &v) < 0)
                return -EINVAL;
        *ret_ms = (unsigned) v * 1000U;
        return 0;
}

static int cmd_audit(Context *c, int argc, char *argv[]) {
        return jitctl_audit(c->socket_path, c->timeout_ms, c->json, c->no_pager, c->no_legend, argc,
                            argv);
}

static const Command *find_command(const char *name);

/* clang-format off */
static const char help_help[] =
        "Usage: jitctl help [COMMAND]\n"
        "\n"
        "Show jitctl's help, or COMMAND's (the same as 'jitctl COMMAND --help').\n"
        "\n"
        "Options:\n"
        "  -h, --help      Show this help\n";
/* clang-format on */

static int cmd_help(Context *c, int argc, char *argv[]) {
        if (argc > 2)
                return usage_error(c, "one command at most");
        if (argc == 2 && (STREQ(argv[1], "-h") || STREQ(argv[1], "--help")))
                return print_help(c);
        Context shown = *c;
        shown.command = NULL;
        if (argc == 2) {
                shown.command = find_command(argv[1]);
                if (!shown.command || !shown.command->help)
                        return usage_error(c, "unknown command '%s'", argv[1]);
        }
        return print_help(&shown);
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
        { "watch", cmd_watch, watch_help },
        { "ack", cmd_ack, ack_help },
        { "reload", cmd_reload, reload_help },
        { "fleet", cmd_fleet, fleet_help },
        { "grant", cmd_grant, grant_help },
        { "help", cmd_help, help_help },
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
                { "no-pager", no_argument, NULL, ARG_NO_PAGER },
                { "no-legend", no_argument, NULL, ARG_NO_LEGEND },
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
                case ARG_NO_PAGER:
                        c->no_pager = true;
                        break;
                case ARG_NO_LEGEND:
                        c->no_legend = true;
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
        if (!pager_finish() && r == JIT_EXIT_OK) {
                fputs("jitctl: cannot write to standard output\n", stderr);
                r = JIT_EXIT_FAILURE;
        }
        return r;
}
