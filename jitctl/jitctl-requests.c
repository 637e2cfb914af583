/* SPDX-License-Identifier: MIT */
/* The commands on requests: request, list, show, approve, deny, revoke, cancel, status,
 * break-glass and ack. Each is one exchange with the broker (common/PROTOCOL.md), but
 * request --wait, which then follows the request's stream (jitctl-watch.c). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "client.h"
#include "command-line.h"
#include "jitctl-command.h"
#include "jitctl-exit.h"
#include "jitctl-fleet-requests.h"
#include "jitctl-format.h"
#include "jitctl-pager.h"
#include "jitctl-text.h"
#include "names.h"
#include "protocol.h"

/* clang-format off */
const char request_help[] =
        "Usage: jitctl request --reason TEXT [--service S] [--for DUR] [--ticket T]\n"
        "                      [--command 'CMD ARGS' [--as USER[:GROUP]]] [--once] [--wait]\n"
        "       jitctl request --hosts SELECTOR --reason TEXT [--service S] [--for DUR]\n"
        "                      [--ticket T]\n"
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
        "  --hosts SELECTOR\n"
        "                  A fleet request for the hosts SELECTOR picks: one host name, or\n"
        "                  labels such as environment=staging,role=db; its id is f:ID\n"
        "  --command 'CMD ARGS'\n"
        "                  A grant for this one command line under sudo, not all of sudo:\n"
        "                  CMD is found as sudo finds it (secure_path), words are split at\n"
        "                  spaces, 'quoted parts' kept together\n"
        "  --as USER[:GROUP]\n"
        "                  With --command: the user (and group) sudo runs it as (default root)\n"
        "  --once          One-shot: the grant ends when its first session closes\n"
        "  --wait          Wait until the request is decided; exit 0 when it is approved,\n"
        "                  3 when it is denied, cancelled or times out, 1 when the grant\n"
        "                  ended already\n"
        "  --json          Print the request as JSON\n"
        "  -h, --help      Show this help\n";

const char list_help[] =
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
        "  --fleet         Only the fleet's pending requests this host may see (f:ID);\n"
        "                  --pending lists them after the host's own, in text\n"
        "  --json          Print a JSON array of requests\n"
        "  --no-pager      Do not send the table through a pager ($JIT_PAGER, $PAGER, less)\n"
        "  --no-legend     Leave out the header line (and \"No requests.\")\n"
        "  -h, --help      Show this help\n";

const char show_help[] =
        "Usage: jitctl show ID\n"
        "\n"
        "Show one request: every field, its approvals, the rule's approvers and this host's\n"
        "resource profile.\n"
        "\n"
        "Options:\n"
        "  --json          Print the request as JSON\n"
        "  -h, --help      Show this help\n";

const char deny_help[] =
        "Usage: jitctl deny ID --reason TEXT\n"
        "\n"
        "Turn a pending request down.\n"
        "\n"
        "Options:\n"
        "  --reason TEXT   Why, for the requester and the audit log (required)\n"
        "  --json          Print the request as JSON\n"
        "  -h, --help      Show this help\n";

const char revoke_help[] =
        "Usage: jitctl revoke ID [--reason TEXT]\n"
        "\n"
        "End a grant before it expires; the broker ends its sessions as the policy says.\n"
        "\n"
        "Options:\n"
        "  --reason TEXT   Why, for the audit log\n"
        "  --json          Print the request as JSON\n"
        "  -h, --help      Show this help\n";

const char cancel_help[] =
        "Usage: jitctl cancel ID\n"
        "\n"
        "Withdraw your own pending request. A fleet request (f:ID) is withdrawn on the host\n"
        "where it was filed.\n"
        "\n"
        "Options:\n"
        "  --json          Print the request as JSON\n"
        "  -h, --help      Show this help\n";

const char status_help[] =
        "Usage: jitctl status\n"
        "\n"
        "Show your active grants with the time they have left, your pending requests, and\n"
        "the broker's version and counts.\n"
        "\n"
        "Options:\n"
        "  --json          Print the status as JSON\n"
        "  -h, --help      Show this help\n";
/* clang-format on */

const char break_glass_help[] =
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

const char ack_help[] =
        "Usage: jitctl ack ID [--json]\n"
        "\n"
        "Acknowledges a break-glass grant after reviewing it: root or another member of the\n"
        "policy's break_glass requesters, never the person who took it.\n"
        "\n"
        "Options:\n"
        "  --json          Print the request as JSON\n"
        "  -h, --help      Show this help\n";

typedef struct RequestArgs {
        const char *service;
        const char *reason;
        const char *ticket;
        uint64_t duration; /* 0: the policy's default */
        bool once;
        bool wait;
        const char *hosts;        /* --hosts: a fleet request */
        const char *command_text; /* --command as typed */
        const char *as;           /* --as USER[:GROUP] */
        char **argv;              /* --command split into words */
        char *command;            /* argv[0] resolved as sudo would */
        char *run_as_user, *run_as_group;
        char *cwd; /* where the command will run: relative arguments depend on it */
} RequestArgs;

static void request_args_done(RequestArgs *a) {
        jit_words_free(a->argv);
        free(a->command);
        free(a->run_as_user);
        free(a->run_as_group);
        free(a->cwd);
}

/* name as sudo resolves it: with a '/', the path itself (made absolute from the current
 * directory); else the first executable regular file of that name in JIT_SUDO_SECURE_PATH.
 * The path is not resolved further: sudo runs, and its plugin sees, what it found. */
static int resolve_command(const char *name, char **ret) {
        if (strchr(name, '/')) {
                _cleanup_free_ char *abs = NULL;
                if (name[0] == '/')
                        abs = strdup(name);
                else {
                        _cleanup_free_ char *cwd = getcwd(NULL, 0);
                        if (!cwd)
                                return -errno;
                        if (asprintf(&abs, "%s/%s", cwd, name) < 0)
                                abs = NULL;
                }
                if (!abs)
                        return -ENOMEM;
                if (access(abs, X_OK) < 0)
                        return -errno;
                *ret = TAKE_PTR(abs);
                return 0;
        }
        const char *p = JIT_SUDO_SECURE_PATH;
        while (*p) {
                size_t n = strcspn(p, ":");
                _cleanup_free_ char *cand = NULL;
                struct stat st;
                if (asprintf(&cand, "%.*s/%s", (int) n, p, name) < 0)
                        return -ENOMEM;
                if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0) {
                        *ret = TAKE_PTR(cand);
                        return 0;
                }
                p += n + (p[n] == ':');
        }
        return -ENOENT;
}

/* --command and --as into a->argv, a->command, a->run_as_*. CONTINUE or the usage error. */
static int parse_command(Context *c, RequestArgs *a) {
        const char *why;
        size_t n;
        int r;

        if (a->as && !a->command_text)
                return usage_error(c, "--as goes with --command");
        if (!a->command_text)
                return CONTINUE;
        if ((r = jit_words_split(a->command_text, JIT_COMMAND_ARGS_MAX, &a->argv, NULL, &n,
                                 &why)) == -ENOMEM)
                return fail_oom(c);
        if (r < 0)
                return usage_error(c, "--command: %s", why);
        if (n == 0)
                return usage_error(c, "--command: no command given");
        if ((r = resolve_command(a->argv[0], &a->command)) == -ENOMEM)
                return fail_oom(c);
        if (r < 0)
                return usage_error(c, "--command: %s: %s", a->argv[0],
                                   r == -ENOENT && !strchr(a->argv[0], '/')
                                           ? "not found in sudo's path (" JIT_SUDO_SECURE_PATH ")"
                                           : strerror(-r));
        if (a->as) {
                const char *colon = strchr(a->as, ':');
                a->run_as_user = colon ? strndup(a->as, (size_t) (colon - a->as)) : strdup(a->as);
                a->run_as_group = colon ? strdup(colon + 1) : NULL;
                if (!a->run_as_user || (colon && !a->run_as_group))
                        return fail_oom(c);
                if (!valid_account_name(a->run_as_user) ||
                    (a->run_as_group && !valid_account_name(a->run_as_group)))
                        return usage_error(c, "--as: '%s' is not USER or USER:GROUP", a->as);
        }
        if (!(a->cwd = getcwd(NULL, 0)))
                return fail(c, JIT_EXIT_FAILURE, "internal",
                            "cannot tell the current directory: %s", strerror(errno));
        JitCommandLine cl = {
                .command = a->command,
                .argv = (const char *const *) a->argv,
                .run_as_user = a->run_as_user,
                .run_as_group = a->run_as_group,
                .cwd = a->cwd,
        };
        if ((r = jit_command_line_check(&cl)) < 0)
                return usage_error(c, "--command: %s", jit_command_line_error(r));
        return CONTINUE;
}

static int parse_request_args(Context *c, int argc, char *argv[], RequestArgs *a) {
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "service", required_argument, NULL, ARG_SERVICE },
                { "for", required_argument, NULL, ARG_FOR },
                { "reason", required_argument, NULL, ARG_REASON },
                { "ticket", required_argument, NULL, ARG_TICKET },
                { "once", no_argument, NULL, ARG_ONCE },
                { "wait", no_argument, NULL, ARG_WAIT },
                { "command", required_argument, NULL, ARG_COMMAND },
                { "as", required_argument, NULL, ARG_AS },
                { "hosts", required_argument, NULL, ARG_HOSTS },
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
                case ARG_COMMAND:
                        a->command_text = optarg;
                        break;
                case ARG_AS:
                        a->as = optarg;
                        break;
                case ARG_HOSTS:
                        a->hosts = optarg;
                        break;
                default:
                        return option_error(c);
                }

        if (a->hosts && (a->once || a->wait || a->command_text))
                return usage_error(c, "--hosts takes neither --once, --wait nor --command");
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
        if (a->command_text && !STREQ(a->service, "sudo"))
                return usage_error(c, "--command is for sudo grants (--service sudo)");
        return parse_command(c, a);
}

/* op "request", or "break-glass", which takes neither a ticket nor --once. */
static json_object *build_request(const char *op, const RequestArgs *a) {
        _cleanup_(json_object_putp) json_object *o = jit_request_new(op);

        if (!o || add_string(o, "service", a->service) < 0 ||
            add_string(o, "reason", a->reason) < 0 ||
            (a->duration > 0 && add_int(o, "duration", (int64_t) a->duration) < 0) ||
            (a->ticket && add_string(o, "ticket", a->ticket) < 0) ||
            (a->once && add_bool(o, "once", true) < 0))
                return NULL;
        if (a->command) {
                _cleanup_(json_object_putp) json_object *argv = json_object_new_array();
                for (size_t i = 0; argv && a->argv[i]; i++)
                        if (json_object_array_add(argv, json_object_new_string(a->argv[i])) < 0)
                                return NULL;
                if (!argv || add_string(o, "command", a->command) < 0 ||
                    json_object_object_add(o, "argv", TAKE_PTR(argv)) < 0 ||
                    (a->run_as_user && add_string(o, "run_as_user", a->run_as_user) < 0) ||
                    (a->run_as_group && add_string(o, "run_as_group", a->run_as_group) < 0) ||
                    add_string(o, "cwd", a->cwd) < 0)
                        return NULL;
        }
        return TAKE_PTR(o);
}

/* Exit status of request --wait: approved, turned down, or approved but over already. */
static int decision_exit_status(const char *state) {
        if (STREQ(state, "active"))
                return JIT_EXIT_OK;
        if (STREQ(state, "denied") || STREQ(state, "cancelled") || STREQ(state, "timed_out"))
                return JIT_EXIT_REFUSED;
        return JIT_EXIT_FAILURE;
}

int cmd_request(Context *c, int argc, char *argv[]) {
        _cleanup_(json_object_putp) json_object *request = NULL, *reply = NULL;
        _cleanup_(request_view_done) RequestView v = {};
        _cleanup_(request_args_done) RequestArgs a = {};
        json_object *result;
        int r;

        r = parse_request_args(c, argc, argv, &a);
        if (r != CONTINUE)
                return r;
        if (a.hosts)
                return fleet_request_file(c, a.hosts, a.service, a.reason, a.ticket, a.duration);
        request = build_request("request", &a);
        if (!request)
                return fail_oom(c);
        r = broker_call(c, request, &reply, &result);
        if (r != JIT_EXIT_OK)
                return r;
        r = request_view_init(&v, result);
        if (r < 0)
                return fail_reply(c, r);

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
                if (r < 0)
                        return fail_reply(c, r);
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
        bool fleet;
} ListArgs;

static int parse_list_args(Context *c, int argc, char *argv[], ListArgs *a) {
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "pending", no_argument, NULL, ARG_PENDING },
                { "active", no_argument, NULL, ARG_ACTIVE },
                { "all", no_argument, NULL, ARG_ALL },
                { "mine", no_argument, NULL, ARG_MINE },
                { "fleet", no_argument, NULL, ARG_HOSTS },
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
                case ARG_HOSTS:
                        a->fleet = true;
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

int cmd_list(Context *c, int argc, char *argv[]) {
        _cleanup_(json_object_putp) json_object *request = NULL;
        ListArgs a;
        int r;

        r = parse_list_args(c, argc, argv, &a);
        if (r != CONTINUE)
                return r;
        if (a.fleet)
                return fleet_request_list(c, false);
        request = jit_request_new("list");
        if (!request || add_string(request, "filter", a.filter) < 0 ||
            (a.mine && add_bool(request, "mine", true) < 0))
                return fail_oom(c);
        format_set_legend(!c->no_legend);
        r = call_and_print(c, TAKE_PTR(request), print_request_table, !STREQ(a.filter, "pending"));
        /* The fleet's pending requests follow the host's own, in text. */
        if (r == JIT_EXIT_OK && STREQ(a.filter, "pending") && !c->json && !a.mine)
                r = fleet_request_list(c, true);
        return r;
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

        if (optind < argc && strncmp(argv[optind], "f:", 2) == 0) {
                /* A fleet request: its id in the fleet, negated here to tell it apart. */
                int64_t fid;
                if (!fleet_id_parse(argv[optind], &fid))
                        return usage_error(c,
                                           "invalid fleet request id '%s' (f: and a positive "
                                           "integer)",
                                           argv[optind]);
                *ret_id = -fid;
                r = check_no_more_args(c, argc, argv, 1);
        } else
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
        if (id < 0) {
                if (!STREQ(op, "show") && !STREQ(op, "approve") && !STREQ(op, "deny") &&
                    !STREQ(op, "revoke") && !STREQ(op, "cancel"))
                        return usage_error(c, "%s does not act on fleet requests", op);
                return fleet_request_act(c, op, -id, text_option, text);
        }
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
        return r < 0 ? fail_reply(c, r) : JIT_EXIT_OK;
}

int cmd_show(Context *c, int argc, char *argv[]) {
        return run_id_command(c, argc, argv, NULL, false);
}

int cmd_deny(Context *c, int argc, char *argv[]) {
        return run_id_command(c, argc, argv, "reason", true);
}

int cmd_revoke(Context *c, int argc, char *argv[]) {
        return run_id_command(c, argc, argv, "reason", false);
}

int cmd_ack(Context *c, int argc, char *argv[]) {
        return run_id_command(c, argc, argv, NULL, false);
}

int cmd_break_glass(Context *c, int argc, char *argv[]) {
        _cleanup_(json_object_putp) json_object *request = NULL, *reply = NULL;
        _cleanup_(request_view_done) RequestView v = {};
        _cleanup_(request_args_done) RequestArgs a = {};
        json_object *result;
        int r;

        r = parse_request_args(c, argc, argv, &a);
        if (r != CONTINUE)
                return r;
        if (a.ticket || a.once || a.wait || a.command_text)
                return usage_error(c, "--ticket, --once, --wait and --command do not apply to "
                                      "break-glass");
        request = build_request("break-glass", &a);
        if (!request)
                return fail_oom(c);
        r = broker_call(c, request, &reply, &result);
        if (r != JIT_EXIT_OK)
                return r;
        if (c->json)
                return print_json(result, stdout) < 0 ? fail_oom(c) : JIT_EXIT_OK;
        r = request_view_init(&v, result);
        if (r < 0)
                return fail_reply(c, r);
        print_outcome(&v, stdout);
        printf("This break-glass grant is logged as an alert and must be acknowledged by a second "
               "person: jitctl ack %" PRIi64 "\n",
               v.id);
        return JIT_EXIT_OK;
}

int cmd_cancel(Context *c, int argc, char *argv[]) {
        return run_id_command(c, argc, argv, NULL, false);
}

int cmd_status(Context *c, int argc, char *argv[]) {
        int r = parse_no_arguments(c, argc, argv);
        if (r != CONTINUE)
                return r;

        return call_and_print(c, jit_request_new("status"), print_status, false);
}
