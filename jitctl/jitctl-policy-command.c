/* SPDX-License-Identifier: MIT */
/* jitctl policy: its command line. check and test read a file (jitctl-policy.c,
 * jitctl-policy-test.c); explain decides from a file with --policy, else asks the broker
 * about its live policy. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

#include "cleanup.h"
#include "client.h"
#include "command-line.h"
#include "jitctl-command.h"
#include "jitctl-exit.h"
#include "jitctl-format.h"
#include "jitctl-policy.h"
#include "policy.h"
#include "protocol.h"
#include "timeutil.h"
#include "users.h"

/* clang-format off */
const char policy_help[] =
        "Usage: jitctl policy check [FILE]\n"
        "       jitctl policy explain [--policy FILE] [--user U] [--service S] [--for DUR]\n"
        "                             [--at TIME] [--ticket T] [--reason TEXT] [--groups G1,G2]\n"
        "                             [--command 'CMD ARGS' [--as USER[:GROUP]]]\n"
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
        "  --at TIME       When: now (default), 2024-05-06T10:00[:SS] or 2024-05-06 10:00\n"
        "                  (local time), the same ending in Z (UTC) or an offset (+02:00),\n"
        "                  today, -1h, +2h 30m (from now), or Mon 10:00 (that weekday in a\n"
        "                  fixed reference week, local time); TIME as jitctl audit reads it\n"
        "  --ticket T      Ticket, for rules with a ticket_pattern\n"
        "  --reason TEXT   Reason, for rules with reason_min_length (unchecked when absent)\n"
        "  --command 'CMD ARGS'\n"
        "                  One command line under sudo instead of all of sudo, split at\n"
        "                  spaces ('two words' in single quotes stay one); CMD must be an\n"
        "                  absolute path\n"
        "  --as USER[:GROUP]\n"
        "                  With --command: the user (and group) it runs as (default root)\n"
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
        "(true: decide as jitctl break-glass would), command (one command line under sudo,\n"
        "as --command) and as (its USER[:GROUP], as --as).\n"
        "\n"
        "Options:\n"
        "  --json          Print the result as JSON (test: an array of case results)\n"
        "  -h, --help      Show this help\n";
/* clang-format on */

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

static void explain_args_done(ExplainArgs *a) {
        jit_words_free(a->argv);
        free(a->run_as_user);
        free(a->run_as_group);
}

/* --command and --as into a->argv and a->run_as_*. CONTINUE or the usage error. */
static int parse_command(const Context *c, const char *command, const char *as, ExplainArgs *a) {
        const char *why = NULL;
        int r;

        if (as && !command)
                return usage_error(c, "--as goes with --command");
        if (!command)
                return CONTINUE;
        if (!STREQ(a->service, "sudo"))
                return usage_error(c, "--command is for sudo (--service sudo)");
        r = policy_command_split(command, &a->argv, &why);
        if (r == -ENOMEM)
                return fail_oom(c);
        if (r < 0)
                return usage_error(c, "--command: %s", why);
        if (as) {
                r = policy_run_as_parse(as, &a->run_as_user, &a->run_as_group);
                if (r == -ENOMEM)
                        return fail_oom(c);
                if (r < 0)
                        return usage_error(c, "--as: '%s' is not USER or USER:GROUP", as);
        }
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
        if (a->argv) {
                /* The fields of jitctl request --command: the broker reads them alike. */
                json_object *argv = json_object_new_array();
                if (!argv || json_object_object_add(o, "argv", argv) < 0) {
                        json_object_put(argv);
                        return NULL;
                }
                for (size_t i = 0; a->argv[i]; i++) {
                        json_object *w = json_object_new_string(a->argv[i]);
                        if (!w || json_object_array_add(argv, w) < 0) {
                                json_object_put(w);
                                return NULL;
                        }
                }
                if (add_string(o, "command", a->argv[0]) < 0 ||
                    (a->run_as_user && add_string(o, "run_as_user", a->run_as_user) < 0) ||
                    (a->run_as_group && add_string(o, "run_as_group", a->run_as_group) < 0))
                        return NULL;
        }
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
        /* A broker that does not read the command explains all of sudo instead: not the
         * question asked. */
        if (a->argv && !json_get_string(result, "command"))
                return fail(c, JIT_EXIT_FAILURE, "bad-reply",
                            "the broker explained a request for all of sudo, not for the "
                            "command: it does not explain single commands (use --policy FILE)");
        return policy_print_explanation(result, c->json);
}

int cmd_policy(Context *c, int argc, char *argv[]) {
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
                { "command", required_argument, NULL, ARG_COMMAND },
                { "as", required_argument, NULL, ARG_AS },
                {},
        };
        _cleanup_free_ char **groups = NULL;
        _cleanup_(explain_args_done) ExplainArgs a = { .service = "sudo" };
        const char *command = NULL, *as = NULL;
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
                case ARG_COMMAND:
                        command = optarg;
                        break;
                case ARG_AS:
                        as = optarg;
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
                if ((r = check_no_more_args(c, argc, argv, 0)) != CONTINUE ||
                    (r = parse_command(c, command, as, &a)) != CONTINUE)
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
