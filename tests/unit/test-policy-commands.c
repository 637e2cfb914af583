/* SPDX-License-Identifier: MIT */
/* Command-scoped rules in common/policy*.c: the keys commands, run_as and scope (values,
 * defaults and every error with its line), deciding one command line under sudo (patterns,
 * run-as, scope, first match across rules, the explanations), the helpers the broker uses,
 * and the decision's JSON for a command. Runs with TZ=UTC. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cleanup.h"
#include "fake-identity-resolver.h"
#include "policy-json.h"
#include "policy.h"

#define NAME "t.conf"

/* The start of a rule that is valid on its own; the test adds keys and closes it. */
#define RULE_HEAD                                                                                  \
        "{ name = \"r\"; services = [\"sudo\"]; requesters = [\"alice\"]; approvers = [\"bob\"];"

static Policy *parse_ok(const char *text) {
        Policy *p = NULL;
        char *err = (char *) "sentinel";
        int r = policy_parse(text, strlen(text), NAME, &p, &err);

        if (r != 0)
                fail_msg("policy_parse failed (%d): %s\n--- text ---\n%s", r,
                         err ? err : "(no message)", text);
        assert_null(err);
        assert_non_null(p);
        return p;
}

static void check_error(const char *text, const char *expect, const char *file, int line) {
        Policy *p = NULL;
        char *err = NULL;
        int r = policy_parse(text, strlen(text), NAME, &p, &err);

        if (r != -EINVAL)
                fail_msg("%s:%d: policy_parse returned %d, expected -EINVAL (%s)", file, line, r,
                         err ? err : "");
        assert_null(p);
        if (!err)
                fail_msg("%s:%d: no error message", file, line);
        if (strcmp(err, expect) != 0)
                fail_msg("%s:%d: error message\n  got:      %s\n  expected: %s", file, line, err,
                         expect);
        free(err);
}
#define assert_policy_error(text, expect) check_error(text, expect, __FILE__, __LINE__)

/* A policy with one rule: RULE_HEAD, then keys, on line 2. */
static char *one_rule(const char *keys) {
        char *s = NULL;
        assert_true(asprintf(&s, "rules = (\n  " RULE_HEAD " %s }\n);\n", keys) > 0);
        return s;
}

static Policy *rule_ok(const char *keys) {
        char *text = one_rule(keys);
        Policy *p = parse_ok(text);
        free(text);
        return p;
}

static void check_rule_error(const char *keys, const char *expect, const char *file, int line) {
        char *text = one_rule(keys);
        check_error(text, expect, file, line);
        free(text);
}
#define assert_rule_error(keys, expect) check_rule_error(keys, expect, __FILE__, __LINE__)

static char *alice_groups[] = { (char *) "alice", (char *) "web", (char *) "jit" };
static char *bob_groups[] = { (char *) "bob", (char *) "dba" };
static char *carol_groups[] = { (char *) "carol", (char *) "ops" };
static char *postgres_groups[] = { (char *) "postgres" };
static char *www_groups[] = { (char *) "www-data" };
static const Identity alice = {
        .name = (char *) "alice", .uid = 1001, .groups = alice_groups, .n_groups = 3
};
static const Identity bob = {
        .name = (char *) "bob", .uid = 1002, .groups = bob_groups, .n_groups = 2
};
static const Identity carol = {
        .name = (char *) "carol", .uid = 1003, .groups = carol_groups, .n_groups = 2
};
static const Identity postgres = {
        .name = (char *) "postgres", .uid = 120, .groups = postgres_groups, .n_groups = 1
};
static const Identity www = {
        .name = (char *) "www-data", .uid = 33, .groups = www_groups, .n_groups = 1
};
static const Identity *const known_users[] = { &alice, &bob, &carol, &postgres, &www, NULL };

/* ---------------------------------------------------------------------------------------
 * Parsing */

static void test_defaults(void **state) {
        Policy *p = rule_ok("");
        const PolicyRule *r = &p->rules[0];

        assert_int_equal(r->n_commands, 0);
        assert_null(r->commands);
        assert_int_equal(r->scope, POLICY_SCOPE_ANY);
        /* No run_as: commands run as root only. */
        assert_int_equal(r->run_as.n, 1);
        assert_string_equal(r->run_as.items[0], "root");
        assert_true(policy_rule_is_sudo_only(r));
        policy_free(p);

        /* Every rule gets the default, whatever its services. */
        p = parse_ok("rules = ( { name = \"s\"; services = [\"sshd\"]; requesters = [\"alice\"]; "
                     "approvers = [\"bob\"]; } );");
        assert_int_equal(p->rules[0].run_as.n, 1);
        assert_string_equal(p->rules[0].run_as.items[0], "root");
        assert_false(policy_rule_is_sudo_only(&p->rules[0]));
        policy_free(p);
}

static void test_keys_parsed(void **state) {
        Policy *p = rule_ok("commands = [\"/usr/bin/systemctl restart *\", "
                            "\"/usr/bin/tail -n * '/var/log/my app/*.log'\", \"/usr/bin/uptime\"]; "
                            "run_as = [\"root\", \"www-data\", \"postgres:postgres\"];");
        const PolicyRule *r = &p->rules[0];

        assert_int_equal(r->n_commands, 3);
        assert_string_equal(r->commands[0].text, "/usr/bin/systemctl restart *");
        assert_string_equal(r->commands[0].path, "/usr/bin/systemctl");
        assert_int_equal(r->commands[0].n_args, 2);
        assert_string_equal(r->commands[1].args[2], "/var/log/my app/*.log");
        assert_true(r->commands[1].literal[2]);
        assert_int_equal(r->commands[2].n_args, 0);
        /* commands without scope: single commands only, so they limit what it grants. */
        assert_int_equal(r->scope, POLICY_SCOPE_COMMAND);
        assert_int_equal(r->run_as.n, 3);
        assert_string_equal(r->run_as.items[2], "postgres:postgres");
        policy_free(p);

        p = rule_ok("commands = [\"/usr/bin/id\"]; scope = \"command\";");
        assert_int_equal(p->rules[0].scope, POLICY_SCOPE_COMMAND);
        policy_free(p);

        /* scope = "command" alone: any one command, never all of sudo. */
        p = rule_ok("scope = \"command\";");
        assert_int_equal(p->rules[0].scope, POLICY_SCOPE_COMMAND);
        assert_int_equal(p->rules[0].n_commands, 0);
        policy_free(p);

        p = rule_ok("scope = \"any\"; run_as = [\"www-data\"];");
        assert_int_equal(p->rules[0].scope, POLICY_SCOPE_ANY);
        assert_int_equal(p->rules[0].run_as.n, 1);
        assert_string_equal(p->rules[0].run_as.items[0], "www-data");
        policy_free(p);

        /* run_as on a rule for sudo and more is fine: sudo may grant single commands. */
        p = parse_ok(
                "rules = ( { name = \"s\"; services = [\"sudo\", \"sshd\"]; "
                "requesters = [\"alice\"]; approvers = [\"bob\"]; run_as = [\"www-data\"]; } );");
        assert_string_equal(p->rules[0].run_as.items[0], "www-data");
        policy_free(p);

        /* The limit is exactly 256 patterns. */
        char *keys = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&keys, &size);
        assert_non_null(f);
        fputs("commands = [", f);
        for (int i = 0; i < POLICY_COMMANDS_MAX; i++)
                fprintf(f, "%s\"/usr/bin/echo %d\"", i ? ", " : "", i);
        fputs("];", f);
        assert_int_equal(fclose(f), 0);
        p = rule_ok(keys);
        assert_int_equal(p->rules[0].n_commands, POLICY_COMMANDS_MAX);
        policy_free(p);
        free(keys);
}

static void test_scope_errors(void **state) {
        assert_rule_error("scope = \"commands\";",
                          NAME ":2: rule \"r\": scope: expected \"any\" or \"command\"");
        assert_rule_error("scope = 1;",
                          NAME ":2: rule \"r\": scope: expected \"any\" or \"command\"");
        assert_rule_error("scope = [\"command\"];",
                          NAME ":2: rule \"r\": scope: expected \"any\" or \"command\"");
        assert_policy_error(
                "rules = (\n  { name = \"r\"; services = [\"sudo\", \"sshd\"]; requesters = "
                "[\"alice\"];\n    approvers = [\"bob\"];\n    scope = \"command\"; }\n);",
                NAME ":4: rule \"r\": scope = \"command\" is only for a rule whose services are "
                     "exactly [\"sudo\"]");
        assert_policy_error("rules = (\n  { name = \"r\"; services = [\"sshd\"]; requesters = "
                            "[\"alice\"]; approvers = [\"bob\"]; scope = \"command\"; }\n);",
                            NAME ":2: rule \"r\": scope = \"command\" is only for a rule whose "
                                 "services are exactly [\"sudo\"]");
        /* Patterns would limit nothing on a rule that grants all of sudo as well. */
        assert_policy_error(
                "rules = (\n  " RULE_HEAD
                "\n    commands = [\"/usr/bin/id\"];\n    scope = \"any\"; }\n);",
                NAME ":4: rule \"r\": scope = \"any\" would grant all of sudo, which its commands "
                     "do not limit; leave scope out or write scope = \"command\"");
}

static void test_commands_errors(void **state) {
        assert_policy_error(
                "rules = (\n  { name = \"r\"; services = [\"sudo\", \"sshd\"]; requesters = "
                "[\"alice\"]; approvers = [\"bob\"];\n    commands = [\"/usr/bin/id\"]; }\n);",
                NAME ":3: rule \"r\": commands: only for a rule whose services are exactly "
                     "[\"sudo\"]");
        assert_policy_error(
                "rules = (\n  { name = \"r\"; services = [\"sshd\"]; requesters = [\"alice\"]; "
                "approvers = [\"bob\"];\n    commands = [\"/usr/bin/id\"]; }\n);",
                NAME ":3: rule \"r\": commands: only for a rule whose services are exactly "
                     "[\"sudo\"]");
        assert_rule_error("commands = \"/usr/bin/id\";",
                          NAME ":2: rule \"r\": commands: expected a list of strings like "
                               "[\"/usr/bin/systemctl restart nginx\"]");
        assert_rule_error("commands = [];", NAME ":2: rule \"r\": commands: must not be empty "
                                                 "(leave commands out to allow every command)");
        assert_rule_error("commands = (\"/usr/bin/id\", 7);",
                          NAME ":2: rule \"r\": command pattern 2: not a string");

        /* Each refusal of the pattern language, at the line of the pattern. */
        static const struct {
                const char *pattern; /* as written in the file */
                const char *why;
        } refused[] = {
                { "", "empty" },
                { "systemctl restart nginx", "the program must be an absolute path" },
                { "/usr/bin/*ctl restart nginx",
                  "a wildcard in the program's path would allow programs nobody named" },
                { "/usr/sbin/?hutdown", "a wildcard in the program's path would allow programs "
                                        "nobody named" },
                { "/usr/bin/../bin/sh", "the program's path holds \"..\"" },
                { "/usr/bin/tail /var/log/*/../secret",
                  "a wildcard next to \"..\" would reach outside the directory it names" },
                { "/usr/bin/apt-get ** install", "\"**\" may only be the last word" },
                { "/usr/bin/echo a**", "\"**\" stands alone, as the last word" },
                { "/usr/bin/echo 'open", "a quote is not closed" },
                { "/usr/bin/echo ''", "an empty word ('')" },
                { "/usr/bin/echo a\\tb", "holds control, invisible or reordering characters" },
        };
        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                char *text = NULL, *expect = NULL;
                assert_true(asprintf(&text,
                                     "rules = (\n  " RULE_HEAD
                                     "\n    commands = [\"/usr/bin/id\",\n"
                                     "      \"%s\" ]; }\n);",
                                     refused[i].pattern) > 0);
                assert_true(asprintf(&expect, NAME ":4: rule \"r\": command pattern 2: %s",
                                     refused[i].why) > 0);
                check_error(text, expect, __FILE__, __LINE__);
                free(text);
                free(expect);
        }

        assert_rule_error(
                "commands = [\"/usr/bin/id -u\", \"/usr/bin/uptime\", \"/usr/bin/id -u\"];",
                NAME ":2: rule \"r\": command pattern 3: the same as pattern 1");

        /* One more than the limit. */
        char *keys = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&keys, &size);
        assert_non_null(f);
        fputs("commands = [", f);
        for (int i = 0; i <= POLICY_COMMANDS_MAX; i++)
                fprintf(f, "%s\"/usr/bin/echo %d\"", i ? ", " : "", i);
        fputs("];", f);
        assert_int_equal(fclose(f), 0);
        assert_rule_error(keys, NAME ":2: rule \"r\": commands: more than 256 patterns");
        free(keys);
}

static void test_run_as_errors(void **state) {
        assert_rule_error("run_as = \"root\";", NAME ":2: rule \"r\": run_as: expected a list of "
                                                     "strings like [\"a\", \"b\"]");
        assert_rule_error("run_as = [];", NAME ":2: rule \"r\": run_as: must not be empty");
        assert_rule_error("run_as = [\"root\", \"www data\"];",
                          NAME ":2: rule \"r\": run_as: \"www data\" is not USER or USER:GROUP");
        assert_rule_error("run_as = [\"a:b:c\"];",
                          NAME ":2: rule \"r\": run_as: \"a:b:c\" is not USER or USER:GROUP");
        assert_rule_error("run_as = [\":postgres\"];",
                          NAME ":2: rule \"r\": run_as: \":postgres\" is not USER or USER:GROUP");
        assert_rule_error("run_as = [\"postgres:\"];",
                          NAME ":2: rule \"r\": run_as: \"postgres:\" is not USER or USER:GROUP");
        assert_rule_error("run_as = [\"%dba\"];",
                          NAME ":2: rule \"r\": run_as: \"%dba\" is not USER or USER:GROUP");
        assert_rule_error("run_as = [\"root\", \"root\"];",
                          NAME ":2: rule \"r\": run_as: \"root\" is listed twice");
        assert_rule_error("run_as = [1];", NAME ":2: rule \"r\": run_as: entry 1 is not a string");
        assert_policy_error("rules = (\n  { name = \"r\"; services = [\"sshd\"]; requesters = "
                            "[\"alice\"]; approvers = [\"bob\"];\n    run_as = [\"root\"]; }\n);",
                            NAME ":3: rule \"r\": run_as: has no effect on a rule that does not "
                                 "cover sudo");
        /* A user or group name longer than names allow. */
        char long_user[300];
        memset(long_user, 'u', sizeof(long_user) - 1);
        long_user[sizeof(long_user) - 1] = '\0';
        char *keys = NULL, *expect = NULL;
        assert_true(asprintf(&keys, "run_as = [\"%s:g\"];", long_user) > 0);
        assert_true(asprintf(&expect,
                             NAME ":2: rule \"r\": run_as: \"%s:g\" is not USER or "
                                  "USER:GROUP",
                             long_user) > 0);
        check_rule_error(keys, expect, __FILE__, __LINE__);
        free(keys);
        free(expect);
}

static void test_run_as_warnings(void **state) {
        Policy *p = rule_ok("run_as = [\"www-data\", \"postgres:postgres\", \"nobody-here\", "
                            "\"postgres:no-such-group\"];");

        /* Known users and groups are quiet; each unknown one is named once. */
        assert_int_equal(p->n_warnings, 2);
        assert_string_equal(p->warnings[0], NAME ":2: user \"nobody-here\" does not exist");
        assert_string_equal(p->warnings[1], NAME ":2: group \"no-such-group\" does not exist");
        policy_free(p);
}

/* ---------------------------------------------------------------------------------------
 * Deciding */

/* clang-format off */
static const char decide_policy[] =
        "rules = (\n"
        "  { name = \"web-restart\"; services = [\"sudo\"]; requesters = [\"%web\"];\n"
        "    auto_approve = true; max_duration = \"15m\";\n"
        "    commands = [\"/usr/bin/systemctl restart nginx\", \"/usr/bin/systemctl reload *\",\n"
        "                \"/usr/bin/tail -n * /var/log/nginx/*.log\"]; },\n"
        "  { name = \"web-as-www\"; services = [\"sudo\"]; requesters = [\"%web\"];\n"
        "    approvers = [\"bob\"]; commands = [\"/usr/bin/systemctl restart *\"];\n"
        "    run_as = [\"www-data\", \"www-data:www-data\"]; },\n"
        "  { name = \"dba-psql\"; services = [\"sudo\"]; requesters = [\"%dba\"];\n"
        "    approvers = [\"alice\"]; commands = [\"/usr/bin/psql **\"];\n"
        "    run_as = [\"postgres:postgres\"]; ticket_pattern = \"^CHG-[0-9]+$\"; },\n"
        "  { name = \"ops-any-command\"; services = [\"sudo\"]; requesters = [\"%ops\"];\n"
        "    approvers = [\"bob\"]; scope = \"command\"; run_as = [\"root\", \"postgres\"]; },\n"
        "  { name = \"jit-all\"; services = [\"sudo\", \"sshd\"]; requesters = [\"%jit\", \"%ops\"];\n"
        "    approvers = [\"bob\"]; }\n"
        ");\n";
/* clang-format on */

static Policy *decide_p;

static int decide_setup(void **state) {
        Policy *p = NULL;
        char *error = NULL;
        int r = policy_parse(decide_policy, strlen(decide_policy), NAME, &p, &error);
        if (r < 0)
                fprintf(stderr, "%s\n", error ?: "?");
        free(error);
        decide_p = p;
        return r;
}

static int decide_teardown(void **state) {
        policy_free(decide_p);
        decide_p = NULL;
        return 0;
}

typedef struct Expect {
        PolicyVerdict verdict;
        const char *rule;
        const char *pattern; /* the text of the pattern that matched, or NULL */
        const char *message;
        const char *const *skipped; /* NULL-terminated; NULL: none */
} Expect;

/* A command line "path arg...": argv[0] is the path's last part, as sudo passes it. */
typedef struct Line {
        const char *argv[16];
        JitCommandLine cl;
} Line;

static const JitCommandLine *line(Line *l, const char *user, const char *group, const char *path,
                                  ...) {
        va_list ap;
        size_t n = 0;

        const char *slash = strrchr(path, '/');
        l->argv[n++] = slash ? slash + 1 : path;
        va_start(ap, path);
        for (const char *a; (a = va_arg(ap, const char *));) {
                assert_true(n < ELEMENTSOF(l->argv) - 1);
                l->argv[n++] = a;
        }
        va_end(ap);
        l->argv[n] = NULL;
        l->cl = (JitCommandLine){
                .command = path, .argv = l->argv, .run_as_user = user, .run_as_group = group
        };
        return &l->cl;
}

static void check_decision(const PolicyQuery *q, const Expect *e, const char *file, int line) {
        PolicyDecision d;

        assert_int_equal(policy_decide(decide_p, q, &d), 0);
        if (d.verdict != e->verdict)
                fail_msg("%s:%d: verdict %s, expected %s (%s)", file, line,
                         policy_verdict_to_string(d.verdict), policy_verdict_to_string(e->verdict),
                         d.message ? d.message : "");
        if (!e->rule != !d.rule || (d.rule && strcmp(d.rule->name, e->rule) != 0))
                fail_msg("%s:%d: rule %s, expected %s", file, line, d.rule ? d.rule->name : "none",
                         e->rule ? e->rule : "none");
        if (!e->pattern != !d.command_pattern ||
            (d.command_pattern && strcmp(d.command_pattern->text, e->pattern) != 0))
                fail_msg("%s:%d: pattern %s, expected %s", file, line,
                         d.command_pattern ? d.command_pattern->text : "none",
                         e->pattern ? e->pattern : "none");
        /* The pattern is the deciding rule's own. */
        if (d.command_pattern)
                assert_true(d.command_pattern >= d.rule->commands &&
                            d.command_pattern < d.rule->commands + d.rule->n_commands);
        if (!e->message != !d.message || (d.message && strcmp(d.message, e->message) != 0))
                fail_msg("%s:%d: message\n  got:      %s\n  expected: %s", file, line,
                         d.message ? d.message : "(none)", e->message ? e->message : "(none)");
        size_t n = 0;
        for (; e->skipped && e->skipped[n]; n++)
                if (n >= d.n_skipped || strcmp(d.skipped[n], e->skipped[n]) != 0)
                        fail_msg("%s:%d: skipped[%zu]\n  got:      %s\n  expected: %s", file, line,
                                 n, n < d.n_skipped ? d.skipped[n] : "(none)", e->skipped[n]);
        if (n != d.n_skipped)
                fail_msg("%s:%d: %zu skipped, expected %zu (the first extra: %s)", file, line,
                         d.n_skipped, n, d.skipped[n]);
        policy_decision_done(&d);
        assert_null(d.command_pattern);
}
#define assert_decision(q, ...) check_decision(q, &(Expect){ __VA_ARGS__ }, __FILE__, __LINE__)
#define SKIPPED(...)                                                                               \
        (const char *const[]) {                                                                    \
                __VA_ARGS__, NULL                                                                  \
        }

#define MON_10 1704103200 /* Monday 2024-01-01 10:00 UTC */

static void test_decide_pattern(void **state) {
        Line l;
        PolicyQuery q = { .requester = &alice, .service = "sudo", .at = MON_10 };

        q.command = line(&l, NULL, NULL, "/usr/bin/systemctl", "restart", "nginx", NULL);
        assert_decision(&q, .verdict = VERDICT_AUTO_APPROVE, .rule = "web-restart",
                        .pattern = "/usr/bin/systemctl restart nginx");
        /* The second pattern of the same rule; "*" is any one argument. */
        q.command = line(&l, NULL, NULL, "/usr/bin/systemctl", "reload", "php8.2-fpm", NULL);
        assert_decision(&q, .verdict = VERDICT_AUTO_APPROVE, .rule = "web-restart",
                        .pattern = "/usr/bin/systemctl reload *");
        q.command = line(&l, NULL, NULL, "/usr/bin/tail", "-n", "100", "/var/log/nginx/error.log",
                         NULL);
        assert_decision(&q, .verdict = VERDICT_AUTO_APPROVE, .rule = "web-restart",
                        .pattern = "/usr/bin/tail -n * /var/log/nginx/*.log");

        /* No pattern of web-restart: web-as-www has a pattern but not root; jit-all, a rule
         * without commands, grants the one command with approval. */
        static const char *const no_web_pattern =
                "rule \"web-restart\": the command matches none of its patterns";
        q.command = line(&l, NULL, NULL, "/usr/bin/systemctl", "stop", "nginx", NULL);
        assert_decision(&q, .verdict = VERDICT_NEEDS_APPROVAL, .rule = "jit-all",
                        .skipped = SKIPPED(no_web_pattern,
                                           "rule \"web-as-www\": the command matches none of its "
                                           "patterns",
                                           "rule \"dba-psql\": alice is not in its requesters",
                                           "rule \"ops-any-command\": alice is not in its "
                                           "requesters"));
        /* One argument too many, or a log file outside the directory. */
        q.command = line(&l, NULL, NULL, "/usr/bin/systemctl", "restart", "nginx", "sshd", NULL);
        assert_decision(&q, .verdict = VERDICT_NEEDS_APPROVAL, .rule = "jit-all",
                        .skipped = SKIPPED(no_web_pattern,
                                           "rule \"web-as-www\": the command matches none of its "
                                           "patterns",
                                           "rule \"dba-psql\": alice is not in its requesters",
                                           "rule \"ops-any-command\": alice is not in its "
                                           "requesters"));
        q.command = line(&l, NULL, NULL, "/usr/bin/tail", "-n", "1", "/var/log/nginx/../auth.log",
                         NULL);
        assert_decision(&q, .verdict = VERDICT_NEEDS_APPROVAL, .rule = "jit-all",
                        .skipped = SKIPPED(no_web_pattern,
                                           "rule \"web-as-www\": the command matches none of its "
                                           "patterns",
                                           "rule \"dba-psql\": alice is not in its requesters",
                                           "rule \"ops-any-command\": alice is not in its "
                                           "requesters"));
        /* The same program by another path is another program. */
        q.command = line(&l, NULL, NULL, "/bin/systemctl", "restart", "nginx", NULL);
        assert_decision(&q, .verdict = VERDICT_NEEDS_APPROVAL, .rule = "jit-all",
                        .skipped = SKIPPED(no_web_pattern,
                                           "rule \"web-as-www\": the command matches none of its "
                                           "patterns",
                                           "rule \"dba-psql\": alice is not in its requesters",
                                           "rule \"ops-any-command\": alice is not in its "
                                           "requesters"));
}

static void test_decide_first_match_wins(void **state) {
        Line l;
        PolicyQuery q = { .requester = &alice, .service = "sudo", .at = MON_10 };

        /* Both web rules have a pattern for it; as root only the first allows it. */
        q.command = line(&l, NULL, NULL, "/usr/bin/systemctl", "restart", "nginx", NULL);
        assert_decision(&q, .verdict = VERDICT_AUTO_APPROVE, .rule = "web-restart",
                        .pattern = "/usr/bin/systemctl restart nginx");
        /* As www-data the first one may not run it: the second decides, with its pattern. */
        q.command = line(&l, "www-data", NULL, "/usr/bin/systemctl", "restart", "nginx", NULL);
        assert_decision(&q, .verdict = VERDICT_NEEDS_APPROVAL, .rule = "web-as-www",
                        .pattern = "/usr/bin/systemctl restart *",
                        .skipped = SKIPPED("rule \"web-restart\": may not run commands as "
                                           "www-data"));
        /* The first matching rule decides even when it then refuses: no fall-through. */
        PolicyQuery long_q = q;
        long_q.command = line(&l, NULL, NULL, "/usr/bin/systemctl", "restart", "nginx", NULL);
        long_q.duration = 3600;
        assert_decision(&long_q, .verdict = VERDICT_REFUSED, .rule = "web-restart",
                        .pattern = "/usr/bin/systemctl restart nginx",
                        .message = "requested 1h is longer than the 15m that rule \"web-restart\" "
                                   "allows");
}

static void test_decide_run_as(void **state) {
        Line l;
        PolicyQuery q = { .requester = &bob, .service = "sudo", .at = MON_10, .ticket = "CHG-7" };

        /* Exactly "postgres:postgres": the user alone, or another group, is not in run_as. */
        q.command = line(&l, "postgres", "postgres", "/usr/bin/psql", "-c", "vacuum", NULL);
        assert_decision(&q, .verdict = VERDICT_NEEDS_APPROVAL, .rule = "dba-psql",
                        .pattern = "/usr/bin/psql **",
                        .skipped = SKIPPED("rule \"web-restart\": bob is not in its requesters",
                                           "rule \"web-as-www\": bob is not in its requesters"));
        static const char *const not_web[] = {
                "rule \"web-restart\": bob is not in its requesters",
                "rule \"web-as-www\": bob is not in its requesters"
        };
        q.command = line(&l, "postgres", NULL, "/usr/bin/psql", NULL);
        assert_decision(&q, .verdict = VERDICT_REFUSED,
                        .message =
                                "no policy rule lets bob run /usr/bin/psql as postgres with sudo",
                        .skipped = SKIPPED(not_web[0], not_web[1],
                                           "rule \"dba-psql\": may not run commands as postgres",
                                           "rule \"ops-any-command\": bob is not in its requesters",
                                           "rule \"jit-all\": bob is not in its requesters"));
        q.command = line(&l, "postgres", "wheel", "/usr/bin/psql", NULL);
        assert_decision(&q, .verdict = VERDICT_REFUSED,
                        .message = "no policy rule lets bob run /usr/bin/psql as postgres:wheel "
                                   "with sudo",
                        .skipped = SKIPPED(not_web[0], not_web[1],
                                           "rule \"dba-psql\": may not run commands as "
                                           "postgres:wheel",
                                           "rule \"ops-any-command\": bob is not in its requesters",
                                           "rule \"jit-all\": bob is not in its requesters"));
        /* Not given: root, which dba-psql does not list. */
        q.command = line(&l, NULL, NULL, "/usr/bin/psql", NULL);
        assert_decision(&q, .verdict = VERDICT_REFUSED,
                        .message = "no policy rule lets bob run /usr/bin/psql as root with sudo",
                        .skipped = SKIPPED(not_web[0], not_web[1],
                                           "rule \"dba-psql\": may not run commands as root",
                                           "rule \"ops-any-command\": bob is not in its requesters",
                                           "rule \"jit-all\": bob is not in its requesters"));
        /* A group given with root is "root:GROUP", which the default ["root"] does not list. */
        q.requester = &carol;
        q.command = line(&l, NULL, "adm", "/usr/bin/id", NULL);
        assert_decision(
                &q, .verdict = VERDICT_REFUSED,
                .message = "no policy rule lets carol run /usr/bin/id as root:adm with sudo",
                .skipped = SKIPPED("rule \"web-restart\": carol is not in its requesters",
                                   "rule \"web-as-www\": carol is not in its requesters",
                                   "rule \"dba-psql\": carol is not in its requesters",
                                   "rule \"ops-any-command\": may not run commands as root:adm",
                                   "rule \"jit-all\": may not run commands as root:adm"));
        /* The rule's other ticket and time checks still apply to a command. */
        q.requester = &bob;
        q.ticket = NULL;
        q.command = line(&l, "postgres", "postgres", "/usr/bin/psql", NULL);
        assert_decision(&q, .verdict = VERDICT_REFUSED, .rule = "dba-psql",
                        .pattern = "/usr/bin/psql **",
                        .message = "rule \"dba-psql\" needs a ticket matching ^CHG-[0-9]+$",
                        .skipped = SKIPPED(not_web[0], not_web[1]));
}

static void test_decide_scope(void **state) {
        Line l;
        PolicyQuery q = { .requester = &carol, .service = "sudo", .at = MON_10 };

        /* A whole-sudo request skips the rules for single commands, patterns or not. */
        assert_decision(&q, .verdict = VERDICT_NEEDS_APPROVAL, .rule = "jit-all",
                        .skipped = SKIPPED("rule \"web-restart\": grants single commands only "
                                           "(scope = \"command\")",
                                           "rule \"web-as-www\": grants single commands only "
                                           "(scope = \"command\")",
                                           "rule \"dba-psql\": grants single commands only "
                                           "(scope = \"command\")",
                                           "rule \"ops-any-command\": grants single commands "
                                           "only (scope = \"command\")"));
        /* For bob, who is only in dba-psql's requesters, nothing is left. */
        q.requester = &bob;
        assert_decision(&q, .verdict = VERDICT_REFUSED,
                        .message = "no policy rule lets bob request sudo",
                        .skipped = SKIPPED("rule \"web-restart\": grants single commands only "
                                           "(scope = \"command\")",
                                           "rule \"web-as-www\": grants single commands only "
                                           "(scope = \"command\")",
                                           "rule \"dba-psql\": grants single commands only "
                                           "(scope = \"command\")",
                                           "rule \"ops-any-command\": grants single commands "
                                           "only (scope = \"command\")",
                                           "rule \"jit-all\": bob is not in its requesters"));
        /* sshd is not covered by the command rules at all. */
        q.requester = &carol;
        q.service = "sshd";
        assert_decision(&q, .verdict = VERDICT_NEEDS_APPROVAL, .rule = "jit-all",
                        .skipped = SKIPPED("rule \"web-restart\": does not cover sshd",
                                           "rule \"web-as-www\": does not cover sshd",
                                           "rule \"dba-psql\": does not cover sshd",
                                           "rule \"ops-any-command\": does not cover sshd"));

        /* scope = "command" without commands: any one command, as its run_as allows. */
        q.service = "sudo";
        q.command = line(&l, "postgres", NULL, "/usr/bin/vacuumdb", "--all", NULL);
        assert_decision(&q, .verdict = VERDICT_NEEDS_APPROVAL, .rule = "ops-any-command",
                        .skipped = SKIPPED("rule \"web-restart\": carol is not in its requesters",
                                           "rule \"web-as-www\": carol is not in its requesters",
                                           "rule \"dba-psql\": carol is not in its requesters"));
}

static void test_decide_rule_without_commands(void **state) {
        Policy *p = parse_ok("rules = ( { name = \"all\"; services = [\"sudo\"]; "
                             "requesters = [\"alice\"]; auto_approve = true; } );");
        Line l;
        PolicyQuery q = { .requester = &alice,
                          .service = "sudo",
                          .at = MON_10,
                          .command = line(&l, NULL, NULL, "/usr/bin/apt-get", "upgrade", NULL) };
        PolicyDecision d;

        /* A rule that may grant all of sudo may grant one command of it, as root. */
        assert_int_equal(policy_decide(p, &q, &d), 0);
        assert_int_equal(d.verdict, VERDICT_AUTO_APPROVE);
        assert_string_equal(d.rule->name, "all");
        assert_null(d.command_pattern);
        assert_int_equal(d.n_skipped, 0);
        policy_decision_done(&d);

        q.command = line(&l, "www-data", NULL, "/usr/bin/apt-get", "upgrade", NULL);
        assert_int_equal(policy_decide(p, &q, &d), 0);
        assert_int_equal(d.verdict, VERDICT_REFUSED);
        assert_null(d.rule);
        assert_string_equal(d.message,
                            "no policy rule lets alice run /usr/bin/apt-get as www-data with sudo");
        assert_int_equal(d.n_skipped, 1);
        assert_string_equal(d.skipped[0], "rule \"all\": may not run commands as www-data");
        policy_decision_done(&d);
        policy_free(p);
}

static void test_decide_bad_command(void **state) {
        Line l;
        PolicyQuery q = { .requester = &alice, .service = "sshd", .at = MON_10 };

        /* Single commands exist for sudo only: refused before any rule is tried. */
        q.command = line(&l, NULL, NULL, "/usr/bin/id", NULL);
        assert_decision(&q, .verdict = VERDICT_REFUSED,
                        .message = "a single command can be granted for sudo only, not for sshd");

        /* What the patterns could not read as it is never reaches them. */
        q.service = "sudo";
        q.command = line(&l, NULL, NULL, "usr/bin/id", NULL);
        assert_decision(&q, .verdict = VERDICT_REFUSED, .message = jit_command_line_error(-EINVAL));
        q.command = line(&l, NULL, NULL, "/usr/bin/systemctl", "restart",
                         "nginx\xe2\x80\xae"
                         "x",
                         NULL);
        assert_decision(&q, .verdict = VERDICT_REFUSED, .message = jit_command_line_error(-EILSEQ));
        q.command = line(&l, "www data", NULL, "/usr/bin/id", NULL);
        assert_decision(&q, .verdict = VERDICT_REFUSED, .message = jit_command_line_error(-EINVAL));
        JitCommandLine no_argv = { .command = "/usr/bin/id" };
        q.command = &no_argv;
        assert_decision(&q, .verdict = VERDICT_REFUSED, .message = jit_command_line_error(-EINVAL));
}

/* ---------------------------------------------------------------------------------------
 * Helpers the broker uses */

static void test_helpers(void **state) {
        const PolicyRule *web = policy_find_rule(decide_p, "web-as-www");
        const PolicyRule *ops = policy_find_rule(decide_p, "ops-any-command");
        const PolicyRule *all = policy_find_rule(decide_p, "jit-all");
        Line l;

        assert_non_null(web);
        assert_non_null(ops);
        assert_non_null(all);
        assert_true(policy_rule_allows_run_as(web, "www-data", NULL));
        assert_true(policy_rule_allows_run_as(web, "www-data", "www-data"));
        assert_false(policy_rule_allows_run_as(web, "www-data", "www"));
        assert_false(policy_rule_allows_run_as(web, "www", NULL));
        assert_false(policy_rule_allows_run_as(web, "www-data-x", NULL));
        assert_false(policy_rule_allows_run_as(web, NULL, NULL));
        assert_true(policy_rule_allows_run_as(all, NULL, NULL));
        assert_true(policy_rule_allows_run_as(all, "root", NULL));
        assert_false(policy_rule_allows_run_as(all, NULL, "root"));
        assert_true(policy_rule_allows_run_as(ops, "postgres", NULL));

        const JitCommandLine *cl =
                line(&l, "www-data", NULL, "/usr/bin/systemctl", "restart", "php", NULL);
        assert_ptr_equal(policy_rule_find_pattern(web, cl), &web->commands[0]);
        assert_true(policy_rule_allows_command(web, cl));
        assert_null(policy_rule_find_pattern(all, cl));    /* no commands: no pattern */
        assert_false(policy_rule_allows_command(all, cl)); /* not as www-data */
        cl = line(&l, NULL, NULL, "/usr/bin/systemctl", "restart", "php", NULL);
        assert_false(policy_rule_allows_command(web, cl)); /* not as root */
        assert_true(policy_rule_allows_command(all, cl));
        cl = line(&l, "www-data", NULL, "/usr/bin/systemctl", "stop", "php", NULL);
        assert_false(policy_rule_allows_command(web, cl));

        assert_string_equal(policy_scope_to_string(POLICY_SCOPE_ANY), "any");
        assert_string_equal(policy_scope_to_string(POLICY_SCOPE_COMMAND), "command");
        assert_null(policy_scope_to_string(_POLICY_SCOPE_MAX));
        assert_int_equal(policy_scope_from_string("command"), POLICY_SCOPE_COMMAND);
        assert_int_equal(policy_scope_from_string("Command"), _POLICY_SCOPE_INVALID);
        assert_int_equal(policy_scope_from_string(NULL), _POLICY_SCOPE_INVALID);

        /* policy_match() answers for whole-service requests: rules for single commands never
         * do. */
        assert_ptr_equal(policy_match(decide_p, &alice, "sudo"), all);
        assert_null(policy_match(decide_p, &bob, "sudo"));
        assert_ptr_equal(policy_match_at(decide_p, &carol, "sudo", MON_10), all);
}

/* ---------------------------------------------------------------------------------------
 * JSON */

static void test_decision_json(void **state) {
        Line l;
        PolicyQuery q = { .requester = &alice,
                          .service = "sudo",
                          .at = MON_10,
                          .command = line(&l, "www-data", "www-data", "/usr/bin/systemctl",
                                          "restart", "my unit", NULL) };
        PolicyDecision d;
        char expect[2048];

        assert_int_equal(policy_decide(decide_p, &q, &d), 0);
        json_object *o = policy_decision_to_json(decide_p, &q, &d);
        assert_non_null(o);
        snprintf(expect, sizeof(expect),
                 "{\"verdict\":\"approval\",\"rule\":\"web-as-www\",\"message\":null,"
                 "\"user\":\"alice\",\"service\":\"sudo\",\"duration\":3600,\"cap\":28800,"
                 "\"approvers\":[\"bob\"],\"approvals\":1,\"auto_approve\":false,"
                 "\"skipped\":[\"rule \\\"web-restart\\\": the command matches none of its "
                 "patterns\"],"
                 "\"command\":\"/usr/bin/systemctl\",\"argv\":[\"systemctl\",\"restart\","
                 "\"my unit\"],\"run_as\":\"www-data:www-data\","
                 "\"command_pattern\":\"/usr/bin/systemctl restart *\",\"scope\":\"command\","
                 "\"policy_version\":\"%s\",\"at\":\"2024-01-01T10:00:00Z\"}",
                 decide_p->hash);
        assert_string_equal(json_object_to_json_string_ext(
                                    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                            expect);
        json_object_put(o);
        policy_decision_done(&d);

        /* A rule without commands: no pattern; scope "any". */
        json_object *v;
        q.command = line(&l, NULL, NULL, "/usr/bin/id", NULL);
        assert_int_equal(policy_decide(decide_p, &q, &d), 0);
        o = policy_decision_to_json(decide_p, &q, &d);
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "rule", &v));
        assert_string_equal(json_object_get_string(v), "jit-all");
        assert_true(json_object_object_get_ex(o, "command_pattern", &v));
        assert_null(v);
        assert_true(json_object_object_get_ex(o, "scope", &v));
        assert_string_equal(json_object_get_string(v), "any");
        assert_true(json_object_object_get_ex(o, "run_as", &v));
        assert_string_equal(json_object_get_string(v), "root");
        json_object_put(o);
        policy_decision_done(&d);

        /* No rule: scope is null too. */
        q.requester = &bob;
        assert_int_equal(policy_decide(decide_p, &q, &d), 0);
        o = policy_decision_to_json(decide_p, &q, &d);
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "scope", &v));
        assert_null(v);
        assert_true(json_object_object_get_ex(o, "command", &v));
        assert_string_equal(json_object_get_string(v), "/usr/bin/id");
        json_object_put(o);
        policy_decision_done(&d);

        /* A command refused before any rule, without argv: still a document. */
        JitCommandLine no_argv = { .command = "/usr/bin/id" };
        q.command = &no_argv;
        assert_int_equal(policy_decide(decide_p, &q, &d), 0);
        o = policy_decision_to_json(decide_p, &q, &d);
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "argv", &v));
        assert_int_equal(json_object_array_length(v), 0);
        json_object_put(o);
        policy_decision_done(&d);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_keys_parsed),
                cmocka_unit_test(test_scope_errors),
                cmocka_unit_test(test_commands_errors),
                cmocka_unit_test(test_run_as_errors),
                cmocka_unit_test(test_run_as_warnings),
                cmocka_unit_test_setup_teardown(test_decide_pattern, decide_setup, decide_teardown),
                cmocka_unit_test_setup_teardown(test_decide_first_match_wins, decide_setup,
                                                decide_teardown),
                cmocka_unit_test_setup_teardown(test_decide_run_as, decide_setup, decide_teardown),
                cmocka_unit_test_setup_teardown(test_decide_scope, decide_setup, decide_teardown),
                cmocka_unit_test(test_decide_rule_without_commands),
                cmocka_unit_test_setup_teardown(test_decide_bad_command, decide_setup,
                                                decide_teardown),
                cmocka_unit_test_setup_teardown(test_helpers, decide_setup, decide_teardown),
                cmocka_unit_test_setup_teardown(test_decision_json, decide_setup, decide_teardown),
        };

        /* Reference times are UTC. */
        if (setenv("TZ", "UTC", 1) < 0)
                return 1;
        tzset();
        fake_resolver_install(known_users);
        return cmocka_run_group_tests_name("policy-commands", tests, NULL, NULL);
}
