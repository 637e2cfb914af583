/* SPDX-License-Identifier: MIT */
/* The policy's notify section (common/policy-parse.c): every key, its defaults and limits,
 * and every kind of bad input refused with FILE:LINE and what was expected. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cleanup.h"
#include "fake-identity-resolver.h"
#include "policy.h"

#define NAME "t.conf"
/* A command that exists and every user may run: no warning about it. */
#define CMD "/bin/true"
#define RULES "rules = ();\n"

static char *tty_groups[] = { (char *) "tty" };
static char *notify_groups[] = { (char *) "jit-notify", (char *) "mail" };
static const Identity notifier = {
        .name = (char *) "jit-notify", .uid = 990, .groups = notify_groups, .n_groups = 2
};
static const Identity hooker = {
        .name = (char *) "hooker", .uid = 991, .groups = tty_groups, .n_groups = 1
};
static const Identity *const known_users[] = { &notifier, &hooker, NULL };

static Policy *parse_ok(const char *text) {
        Policy *p = NULL;
        char *err = NULL;
        int r = policy_parse(text, strlen(text), NAME, &p, &err);
        if (r != 0)
                fail_msg("policy_parse failed (%d): %s\n--- text ---\n%s", r, err ?: "(no message)",
                         text);
        assert_non_null(p);
        return p;
}

static void check_error(const char *text, const char *expect, const char *file, int line) {
        Policy *p = NULL;
        char *err = NULL;
        int r = policy_parse(text, strlen(text), NAME, &p, &err);
        if (r != -EINVAL)
                fail_msg("%s:%d: policy_parse returned %d, expected -EINVAL (%s)", file, line, r,
                         err ?: "");
        assert_null(p);
        if (!err)
                fail_msg("%s:%d: no error message", file, line);
        if (strcmp(err, expect) != 0)
                fail_msg("%s:%d: error message\n  got:      %s\n  expected: %s", file, line, err,
                         expect);
        free(err);
}
#define assert_notify_error(text, expect) check_error(RULES text, expect, __FILE__, __LINE__)

/* Line 2 holds the hook (RULES is line 1). */
#define HOOK(body) "notify = ( { " body " } );\n"
#define GOOD "command = \"" CMD "\"; events = [\"filed\"];"

static void test_full_hook(void **state) {
        Policy *p = parse_ok(
                RULES
                "notify = (\n"
                "  { command = \"" CMD
                "\"; args = [\"https://chat.example/hook\", \"--format\", \"slack\"];\n"
                "    events = [\"filed\", \"approved\", \"break_glass\"]; timeout = \"30s\";\n"
                "    retry = \"1m\"; user = \"hooker\"; groups = [\"tty\"]; },\n"
                "  { command = \"/bin/false\"; events = [\"denied\"]; }\n"
                ");\n");
        assert_int_equal(p->n_notify, 2);
        const PolicyNotifyHook *h = &p->notify[0];
        assert_string_equal(h->command, CMD);
        assert_int_equal(h->args.n, 3);
        assert_string_equal(h->args.items[0], "https://chat.example/hook");
        assert_string_equal(h->args.items[2], "slack");
        assert_int_equal(h->events, (1U << NOTIFY_FILED) | (1U << NOTIFY_APPROVED) |
                                            (1U << NOTIFY_BREAK_GLASS));
        assert_true(policy_notify_hook_wants(h, NOTIFY_APPROVED));
        assert_false(policy_notify_hook_wants(h, NOTIFY_APPROVAL));
        assert_false(policy_notify_hook_wants(h, _NOTIFY_EVENT_INVALID));
        assert_false(policy_notify_hook_wants(h, _NOTIFY_EVENT_MAX));
        assert_int_equal(h->timeout, 30);
        assert_int_equal(h->retry, 60);
        assert_string_equal(h->user, "hooker");
        assert_int_equal(h->groups.n, 1);
        assert_string_equal(h->groups.items[0], "tty");
        assert_int_equal(h->line, 3);
        assert_int_equal(p->n_warnings, 0);

        /* The defaults. */
        h = &p->notify[1];
        assert_int_equal(h->args.n, 0);
        assert_int_equal(h->events, 1U << NOTIFY_DENIED);
        assert_int_equal(h->timeout, POLICY_NOTIFY_TIMEOUT_DEFAULT);
        assert_int_equal(h->timeout, 10);
        assert_int_equal(h->retry, 5);
        assert_string_equal(h->user, "jit-notify");
        assert_int_equal(h->groups.n, 0);
        assert_int_equal(h->line, 6);
        policy_free(p);

        /* No section, or an empty one: no hooks. */
        p = parse_ok(RULES);
        assert_int_equal(p->n_notify, 0);
        policy_free(p);
        p = parse_ok(RULES "notify = ();\n");
        assert_int_equal(p->n_notify, 0);
        policy_free(p);
        p = parse_ok(RULES HOOK(GOOD " args = []; groups = [];"));
        assert_int_equal(p->notify[0].args.n, 0);
        assert_int_equal(p->notify[0].groups.n, 0);
        policy_free(p);
}

static void test_every_event_name(void **state) {
        static const char *const names[] = { "filed",        "approval",  "approved",
                                             "denied",       "cancelled", "expired",
                                             "revoked",      "timed_out", "break_glass",
                                             "acknowledged", "withdrawn", "consumed" };
        assert_int_equal(ELEMENTSOF(names), _NOTIFY_EVENT_MAX);
        char text[1024] = RULES "notify = ( { command = \"" CMD "\"; events = [";
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                assert_int_equal(notify_event_from_string(names[i]), (NotifyEvent) i);
                assert_string_equal(notify_event_to_string((NotifyEvent) i), names[i]);
                snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s\"%s\"",
                         i ? ", " : "", names[i]);
        }
        strcat(text, "]; } );\n");
        Policy *p = parse_ok(text);
        assert_int_equal(p->notify[0].events, (1U << _NOTIFY_EVENT_MAX) - 1);
        policy_free(p);
        assert_int_equal(notify_event_from_string("requested"), _NOTIFY_EVENT_INVALID);
        assert_int_equal(notify_event_from_string("Filed"), _NOTIFY_EVENT_INVALID);
        assert_int_equal(notify_event_from_string(NULL), _NOTIFY_EVENT_INVALID);
        assert_null(notify_event_to_string(_NOTIFY_EVENT_MAX));
        assert_null(notify_event_to_string(_NOTIFY_EVENT_INVALID));
}

static void test_section_shape(void **state) {
        assert_notify_error("notify = { command = \"" CMD "\"; };\n",
                            NAME ":2: notify: expected a list of hooks ( { ... }, { ... } )");
        assert_notify_error("notify = [\"" CMD "\"];\n",
                            NAME ":2: notify: expected a list of hooks ( { ... }, { ... } )");
        assert_notify_error(
                "notify = ( \"" CMD "\" );\n",
                NAME ":2: notify hook 1: expected a group { command = ...; events = [...]; }");
        assert_notify_error(HOOK(GOOD " colour = \"red\";"), NAME
                            ":2: notify hook 1: unknown key 'colour' (expected one of: command, "
                            "args, events, timeout, retry, user, groups)");
        assert_notify_error(HOOK("events = [\"filed\"];"),
                            NAME ":2: notify hook 1: missing 'command'");
        assert_notify_error(HOOK("command = \"" CMD "\";"),
                            NAME ":2: notify hook 1: missing 'events'");
        /* The second hook is named as such, on its own line. */
        assert_notify_error("notify = (\n { " GOOD " },\n { command = \"/bin/false\"; }\n);\n",
                            NAME ":4: notify hook 2: missing 'events'");
        /* The same command and args twice could not be told apart. */
        assert_notify_error("notify = (\n { " GOOD " args = [\"x\"]; },\n"
                            " { command = \"" CMD
                            "\"; args = [\"x\"]; events = [\"denied\"]; }\n);\n",
                            NAME ":4: notify hook 2: the same command and args as hook 1 (line 3)");
        /* ... but other args make another hook. */
        policy_free(parse_ok(RULES "notify = (\n { " GOOD " args = [\"x\"]; },\n"
                                   " { " GOOD " args = [\"y\"]; },\n { " GOOD " }\n);\n"));
}

static void test_command(void **state) {
        assert_notify_error(HOOK("command = 42; events = [\"filed\"];"),
                            NAME ":2: notify hook 1: command: expected a string");
        assert_notify_error(HOOK("command = \"webhook\"; events = [\"filed\"];"),
                            NAME ":2: notify hook 1: command: \"webhook\" is not an absolute path");
        assert_notify_error(HOOK("command = \"\"; events = [\"filed\"];"),
                            NAME ":2: notify hook 1: command: \"\" is not an absolute path");
        assert_notify_error(
                HOOK("command = \"/usr/lib/jit/notify/web\\nhook\"; events = [\"filed\"];"),
                NAME ":2: notify hook 1: command: contains a control character");
        char text[4096];
        snprintf(text, sizeof(text),
                 RULES "notify = ( { command = \"/%01024d\"; events = [\"filed\"]; } );\n", 0);
        check_error(text, NAME ":2: notify hook 1: command: longer than 1024 bytes", __FILE__,
                    __LINE__);
        snprintf(text, sizeof(text),
                 RULES "notify = ( { command = \"/%01023d\"; events = [\"filed\"]; } );\n", 0);
        Policy *p = parse_ok(text);
        assert_int_equal(strlen(p->notify[0].command), 1024);
        policy_free(p);

        /* Valid but not runnable here: a warning, as for unknown users. */
        p = parse_ok(RULES HOOK("command = \"/nonexistent/hook\"; events = [\"filed\"];"));
        assert_int_equal(p->n_warnings, 1);
        assert_string_equal(p->warnings[0], NAME
                            ":2: notify hook 1: command: \"/nonexistent/hook\" does not exist");
        policy_free(p);
        char plain[] = "/tmp/jit-notify-test-XXXXXX", expect[256];
        int fd = mkstemp(plain);
        assert_true(fd >= 0);
        assert_int_equal(fchmod(fd, 0644), 0);
        close(fd);
        snprintf(text, sizeof(text), RULES HOOK("command = \"%s\"; events = [\"filed\"];"), plain);
        p = parse_ok(text);
        unlink(plain);
        assert_int_equal(p->n_warnings, 1);
        snprintf(expect, sizeof(expect),
                 NAME ":2: notify hook 1: command: \"%s\" is not a file every user may execute",
                 plain);
        assert_string_equal(p->warnings[0], expect);
        policy_free(p);
}

static void test_args(void **state) {
        assert_notify_error(
                HOOK(GOOD " args = \"https://x\";"),
                NAME ":2: notify hook 1: args: expected a list of strings like [\"a\", \"b\"]");
        assert_notify_error(HOOK(GOOD " args = (\"a\", 2);"),
                            NAME ":2: notify hook 1: args: entry 2 is not a string");
        assert_notify_error(HOOK(GOOD " args = [\"a\\tb\"];"),
                            NAME ":2: notify hook 1: args: entry 1 contains a control character");

        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        assert_non_null(f);
        fprintf(f, RULES "notify = ( { " GOOD " args = [");
        for (int i = 0; i <= POLICY_NOTIFY_ARGS_MAX; i++)
                fprintf(f, "%s\"a%d\"", i ? ", " : "", i);
        fprintf(f, "]; } );\n");
        assert_int_equal(fclose(f), 0);
        check_error(text, NAME ":2: notify hook 1: args: more than 32 entries", __FILE__, __LINE__);
        /* 32 are fine. */
        char *last = strstr(text, ", \"a32\"");
        assert_non_null(last);
        memmove(last, last + strlen(", \"a32\""), strlen(last + strlen(", \"a32\"")) + 1);
        Policy *p = parse_ok(text);
        assert_int_equal(p->notify[0].args.n, 32);
        policy_free(p);
        free(text);

        char buf[4096];
        snprintf(buf, sizeof(buf), RULES HOOK(GOOD " args = [\"x\", \"%01025d\"];"), 0);
        check_error(buf, NAME ":2: notify hook 1: args: entry 2 is longer than 1024 bytes",
                    __FILE__, __LINE__);
        snprintf(buf, sizeof(buf), RULES HOOK(GOOD " args = [\"%01024d\"];"), 0);
        policy_free(parse_ok(buf));
}

static void test_events(void **state) {
        assert_notify_error(HOOK("command = \"" CMD "\"; events = [];"),
                            NAME ":2: notify hook 1: events: must not be empty");
        assert_notify_error(HOOK("command = \"" CMD "\"; events = \"filed\";"),
                            NAME ":2: notify hook 1: events: expected a list of event names like "
                                 "[\"filed\", \"approved\"]");
        assert_notify_error(HOOK("command = \"" CMD "\"; events = (\"filed\", 3);"),
                            NAME ":2: notify hook 1: events: entry 2 is not a string");
        assert_notify_error(HOOK("command = \"" CMD "\"; events = [\"filed\", \"requested\"];"),
                            NAME
                            ":2: notify hook 1: events: unknown event \"requested\" (expected "
                            "one of: filed, approval, approved, denied, cancelled, expired, "
                            "revoked, timed_out, break_glass, acknowledged, withdrawn, consumed)");
        assert_notify_error(
                HOOK("command = \"" CMD "\"; events = [\"denied\", \"filed\", \"denied\"];"),
                NAME ":2: notify hook 1: events: \"denied\" is listed twice");
}

static void test_durations(void **state) {
        assert_notify_error(HOOK(GOOD " timeout = 10;"),
                            NAME ":2: notify hook 1: timeout: expected a duration string such as "
                                 "\"30m\" or \"1h30m\"");
        assert_notify_error(HOOK(GOOD " timeout = \"10 s\";"),
                            NAME ":2: notify hook 1: timeout: \"10 s\" is not a duration (expected "
                                 "e.g. \"90s\", \"30m\", \"1h30m\", \"2h\", \"1d\")");
        assert_notify_error(
                HOOK(GOOD " timeout = \"5m1s\";"),
                NAME ":2: notify hook 1: timeout: \"5m1s\" is longer than the maximum of 5m");
        assert_notify_error(HOOK(GOOD " retry = \"1h1s\";"), NAME
                            ":2: notify hook 1: retry: \"1h1s\" is longer than the maximum of 1h");
        assert_notify_error(HOOK(GOOD " retry = \"0s\";"), NAME
                            ":2: notify hook 1: retry: \"0s\" is not a duration (expected e.g. "
                            "\"90s\", \"30m\", \"1h30m\", \"2h\", \"1d\")");
        Policy *p = parse_ok(RULES HOOK(GOOD " timeout = \"5m\"; retry = \"1h\";"));
        assert_int_equal(p->notify[0].timeout, 300);
        assert_int_equal(p->notify[0].retry, 3600);
        policy_free(p);
        p = parse_ok(RULES HOOK(GOOD " timeout = \"1s\"; retry = \"1s\";"));
        assert_int_equal(p->notify[0].timeout, 1);
        assert_int_equal(p->notify[0].retry, 1);
        policy_free(p);
}

static void test_user_and_groups(void **state) {
        assert_notify_error(HOOK(GOOD " user = \"root\";"),
                            NAME ":2: notify hook 1: user: a hook never runs as root");
        assert_notify_error(HOOK(GOOD " user = 0;"),
                            NAME ":2: notify hook 1: user: expected a string");
        assert_notify_error(HOOK(GOOD " user = \"-x\";"),
                            NAME ":2: notify hook 1: user: \"-x\" is not a user name");
        assert_notify_error(HOOK(GOOD " groups = [\"root\"];"),
                            NAME ":2: notify hook 1: groups: a hook never runs with group root");
        assert_notify_error(HOOK(GOOD " groups = [\"tty\", \"tty\"];"),
                            NAME ":2: notify hook 1: groups: \"tty\" is listed twice");
        assert_notify_error(HOOK(GOOD " groups = [\"%tty\"];"),
                            NAME ":2: notify hook 1: groups: \"%tty\" is not a group name");
        assert_notify_error(
                HOOK(GOOD " groups = \"tty\";"),
                NAME ":2: notify hook 1: groups: expected a list of strings like [\"a\", \"b\"]");
        assert_notify_error(HOOK(GOOD
                                 " groups = [\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\","
                                 "\"j\",\"k\",\"l\",\"m\",\"n\",\"o\",\"p\",\"q\"];"),
                            NAME ":2: notify hook 1: groups: more than 16 entries");

        /* Unknown accounts are warnings: the policy may be checked on another host. */
        Policy *p = parse_ok(
                RULES HOOK(GOOD " user = \"nobody-here\"; groups = [\"tty\", \"nogroup-here\"];"));
        assert_int_equal(p->n_warnings, 2);
        assert_string_equal(p->warnings[0],
                            NAME ":2: notify hook 1: user \"nobody-here\" does not exist");
        assert_string_equal(p->warnings[1], NAME
                            ":2: notify hook 1: groups: group \"nogroup-here\" does not exist");
        policy_free(p);
}

static void test_hook_limit(void **state) {
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        assert_non_null(f);
        fprintf(f, RULES "notify = (\n");
        for (int i = 0; i <= POLICY_NOTIFY_HOOKS_MAX; i++)
                fprintf(f, "%s{ " GOOD " args = [\"%d\"]; }\n", i ? "," : "", i);
        fprintf(f, ");\n");
        assert_int_equal(fclose(f), 0);
        check_error(text, NAME ":2: notify: more than 16 hooks", __FILE__, __LINE__);
        /* Without the last one: 16 hooks. */
        char *last = strrchr(text, ',');
        assert_non_null(last);
        strcpy(last, ");\n");
        Policy *p = parse_ok(text);
        assert_int_equal(p->n_notify, POLICY_NOTIFY_HOOKS_MAX);
        policy_free(p);
        free(text);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_full_hook),     cmocka_unit_test(test_every_event_name),
                cmocka_unit_test(test_section_shape), cmocka_unit_test(test_command),
                cmocka_unit_test(test_args),          cmocka_unit_test(test_events),
                cmocka_unit_test(test_durations),     cmocka_unit_test(test_user_and_groups),
                cmocka_unit_test(test_hook_limit),
        };
        fake_resolver_install(known_users);
        return cmocka_run_group_tests_name("policy-notify", tests, NULL, NULL);
}
