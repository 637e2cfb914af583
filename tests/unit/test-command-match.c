/* SPDX-License-Identifier: MIT */
/* common/command-match.[ch] (the policy's command patterns) and common/command-line.[ch]
 * (a command line's limits and its shell quoting). */
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

#include "command-line.h"
#include "command-match.h"

/* Whether pattern matches the command line "path arg..." given as a NULL-terminated list
 * (argv[0] is the path's last part, as sudo passes it). */
static bool matches(const char *pattern, const char *path, ...) {
        const char *argv[32] = { "prog" };
        size_t n = 1;
        va_list ap;
        va_start(ap, path);
        for (const char *a; (a = va_arg(ap, const char *)) && n < 31;)
                argv[n++] = a;
        va_end(ap);
        argv[n] = NULL;

        CommandPattern p;
        const char *why;
        int r = command_pattern_parse(pattern, &p, &why);
        if (r < 0)
                fail_msg("pattern \"%s\" refused: %s", pattern, why ?: "?");
        bool m = command_pattern_match(&p, path, argv);
        command_pattern_done(&p);
        return m;
}

static void refused(const char *pattern, const char *why_part) {
        CommandPattern p;
        const char *why = NULL;
        int r = command_pattern_parse(pattern, &p, &why);
        if (r != -EINVAL)
                fail_msg("pattern \"%s\" accepted (r=%d), expected a refusal", pattern, r);
        if (!why || !strstr(why, why_part))
                fail_msg("pattern \"%s\": reason \"%s\" lacks \"%s\"", pattern, why ?: "(none)",
                         why_part);
}

static void test_literal(void **state) {
        assert_true(matches("/usr/bin/systemctl restart nginx", "/usr/bin/systemctl", "restart",
                            "nginx", NULL));
        assert_false(matches("/usr/bin/systemctl restart nginx", "/usr/bin/systemctl", "restart",
                             "nginx", "extra", NULL));
        assert_false(
                matches("/usr/bin/systemctl restart nginx", "/usr/bin/systemctl", "restart", NULL));
        assert_false(matches("/usr/bin/systemctl restart nginx", "/bin/systemctl", "restart",
                             "nginx", NULL));
        /* The path alone: no arguments at all. */
        assert_true(matches("/usr/bin/uptime", "/usr/bin/uptime", NULL));
        assert_false(matches("/usr/bin/uptime", "/usr/bin/uptime", "-p", NULL));
        /* Extra spaces between words do not matter; case does. */
        assert_true(matches("  /usr/bin/systemctl   restart  nginx ", "/usr/bin/systemctl",
                            "restart", "nginx", NULL));
        assert_false(matches("/usr/bin/systemctl restart nginx", "/usr/bin/systemctl", "Restart",
                             "nginx", NULL));
}

static void test_star_is_one_argument(void **state) {
        assert_true(matches("/usr/bin/systemctl restart *", "/usr/bin/systemctl", "restart",
                            "nginx", NULL));
        /* Whatever the argument holds, spaces and slashes too, but only one of them. */
        assert_true(matches("/usr/bin/systemctl restart *", "/usr/bin/systemctl", "restart",
                            "a b/c", NULL));
        assert_false(matches("/usr/bin/systemctl restart *", "/usr/bin/systemctl", "restart",
                             "nginx", "/etc/shadow", NULL));
        assert_false(
                matches("/usr/bin/systemctl restart *", "/usr/bin/systemctl", "restart", NULL));
}

static void test_star_inside_a_word_stays_in_its_directory(void **state) {
        assert_true(matches("/usr/bin/tail /var/log/nginx/*.log", "/usr/bin/tail",
                            "/var/log/nginx/error.log", NULL));
        assert_false(matches("/usr/bin/tail /var/log/nginx/*.log", "/usr/bin/tail",
                             "/var/log/nginx/x/../../../../etc/shadow.log", NULL));
        assert_false(matches("/usr/bin/tail /var/log/nginx/*", "/usr/bin/tail",
                             "/var/log/nginx/../../../etc/shadow", NULL));
        assert_false(matches("/usr/bin/tail /var/log/nginx/*", "/usr/bin/tail", "/var/log/nginx/..",
                             NULL));
        assert_false(matches("/usr/bin/tail /var/log/nginx/*", "/usr/bin/tail",
                             "/var/log/nginx/sub/file", NULL));
        assert_true(matches("/usr/bin/tail /var/log/nginx/*", "/usr/bin/tail",
                            "/var/log/nginx/access.log.1", NULL));
        assert_true(matches("/usr/bin/journalctl -u nginx* --since *", "/usr/bin/journalctl", "-u",
                            "nginx.service", "--since", "1 hour ago", NULL));
        assert_true(matches("/usr/bin/echo a*b*c", "/usr/bin/echo", "aXbYc", NULL));
        assert_true(matches("/usr/bin/echo a*b*c", "/usr/bin/echo", "abbbc", NULL));
        assert_false(matches("/usr/bin/echo a*b*c", "/usr/bin/echo", "abcd", NULL));
}

static void test_rest(void **state) {
        assert_true(matches("/usr/bin/apt-get install **", "/usr/bin/apt-get", "install", NULL));
        assert_true(matches("/usr/bin/apt-get install **", "/usr/bin/apt-get", "install", "vim",
                            "curl", NULL));
        assert_false(
                matches("/usr/bin/apt-get install **", "/usr/bin/apt-get", "remove", "vim", NULL));
        /* A quoted ** is the two characters. */
        assert_true(matches("/usr/bin/echo '**'", "/usr/bin/echo", "**", NULL));
        assert_false(matches("/usr/bin/echo '**'", "/usr/bin/echo", "x", NULL));
}

static void test_quotes(void **state) {
        assert_true(matches("/usr/bin/logger 'deploy done' now", "/usr/bin/logger", "deploy done",
                            "now", NULL));
        assert_false(matches("/usr/bin/logger 'deploy done'", "/usr/bin/logger", "deploy", "done",
                             NULL));
        assert_true(matches("/usr/bin/logger x'y z'", "/usr/bin/logger", "xy z", NULL));
        /* Quoted words are literal: a star is a star. */
        assert_true(matches("/usr/bin/find / -name '*.conf'", "/usr/bin/find", "/", "-name",
                            "*.conf", NULL));
        assert_false(matches("/usr/bin/find / -name '*.conf'", "/usr/bin/find", "/", "-name",
                             "x.conf", NULL));
}

/* Arguments may hold anything but NUL: spaces, quotes, newlines, control and high bytes are
 * matched as bytes, one argument at a time (the plugin refuses unreadable ones before). */
static void test_odd_arguments(void **state) {
        assert_true(matches("/usr/bin/echo *", "/usr/bin/echo", "a b\nc'd\"e\x01\xff", NULL));
        assert_false(matches("/usr/bin/echo a", "/usr/bin/echo", "a\n", NULL));
        assert_false(matches("/usr/bin/echo a", "/usr/bin/echo", "a ", NULL));
        assert_false(matches("/usr/bin/echo 'a b'", "/usr/bin/echo", "a", "b", NULL));
        assert_true(matches("/usr/bin/echo x*", "/usr/bin/echo", "x\n\t\xff", NULL));
        assert_false(matches("/usr/bin/echo x*", "/usr/bin/echo", "x\n/y", NULL));
        /* Two words never match one argument holding a space, nor the other way round. */
        assert_false(matches("/usr/bin/echo * *", "/usr/bin/echo", "a b", NULL));
        assert_false(matches("/usr/bin/echo *", "/usr/bin/echo", "a", "b", NULL));
}

/* Hostile patterns: many stars against long arguments stay quick (no backtracking blowup). */
static void test_hostile_patterns(void **state) {
        char pattern[4096] = "/usr/bin/echo ", arg[4001];
        size_t n = strlen(pattern);
        for (size_t i = 0; i < 1000; i++)
                n += (size_t) snprintf(pattern + n, sizeof(pattern) - n, "a*");
        snprintf(pattern + n, sizeof(pattern) - n, "b");
        memset(arg, 'a', sizeof(arg) - 1);
        arg[sizeof(arg) - 1] = '\0';
        assert_false(matches(pattern, "/usr/bin/echo", arg, NULL));
        arg[sizeof(arg) - 2] = 'b';
        assert_true(matches(pattern, "/usr/bin/echo", arg, NULL));
}

static void test_refused_patterns(void **state) {
        refused("", "empty");
        refused("   ", "empty");
        refused("systemctl restart nginx", "absolute path");
        refused("/usr/bin/*ctl restart", "wildcard in the program's path");
        refused("/usr/sbin/?hutdown", "wildcard in the program's path");
        refused("/usr/bin/../bin/sh", "\"..\"");
        refused("/usr/bin/tail /var/log/*/../secret", "\"..\"");
        refused("/usr/bin/tail ../*", "\"..\"");
        refused("/usr/bin/apt-get ** install", "last word");
        refused("/usr/bin/echo a**", "stands alone");
        refused("/usr/bin/echo 'open", "not closed");
        refused("/usr/bin/echo ''", "empty word");
        refused("/usr/bin/echo a\tb", "control");
        refused("/usr/bin/echo \xe2\x80\xae", "invisible");
}

static void test_long_pattern_refused(void **state) {
        char *p = malloc(JIT_COMMAND_PATTERN_MAX + 10);
        assert_non_null(p);
        memset(p, 'a', JIT_COMMAND_PATTERN_MAX + 9);
        p[0] = '/';
        p[JIT_COMMAND_PATTERN_MAX + 9] = '\0';
        refused(p, "4096");
        free(p);
}

static void test_quote_for_a_shell(void **state) {
        const char *argv[] = { "systemctl", "restart", "my unit", "it's", "", "a=b,c:d/e", NULL };
        char *q = jit_command_line_quote(argv);
        assert_string_equal(q, "systemctl restart 'my unit' 'it'\\''s' '' a=b,c:d/e");
        free(q);
        q = jit_shell_quote("systemctl restart nginx");
        assert_string_equal(q, "'systemctl restart nginx'");
        free(q);
}

static void test_command_line_limits(void **state) {
        const char *ok[] = { "id", "-u", NULL };
        JitCommandLine cl = { .command = "/usr/bin/id", .argv = ok };
        assert_int_equal(jit_command_line_check(&cl), 0);
        cl.command = "id";
        assert_int_equal(jit_command_line_check(&cl), -EINVAL);
        cl.command = "/usr/bin/id";
        const char *invisible[] = { "echo",
                                    "a\xe2\x80\xae"
                                    "b",
                                    NULL };
        cl.argv = invisible;
        assert_int_equal(jit_command_line_check(&cl), -EILSEQ);
        const char *bad_utf8[] = { "echo", "\xff", NULL };
        cl.argv = bad_utf8;
        assert_int_equal(jit_command_line_check(&cl), -EILSEQ);
        const char *many[JIT_COMMAND_ARGS_MAX + 2];
        for (size_t i = 0; i <= JIT_COMMAND_ARGS_MAX; i++)
                many[i] = "x";
        many[JIT_COMMAND_ARGS_MAX + 1] = NULL;
        cl.argv = many;
        assert_int_equal(jit_command_line_check(&cl), -E2BIG);
        cl.argv = ok;
        cl.run_as_user = "www data";
        assert_int_equal(jit_command_line_check(&cl), -EINVAL);
        cl.run_as_user = "www-data";
        cl.cwd = "relative";
        assert_int_equal(jit_command_line_check(&cl), -EILSEQ);
}

static void test_sudo_conf(void **state) {
        const char *yes[] = {
                "Plugin jit_approval jit_approval.so\n",
                "# comment\nPlugin sudoers_policy sudoers.so\n  Plugin\tjit_approval /usr/libexec/sudo/jit_approval.so socket=/run/x\n",
                "Plugin jit_approval jit_approval.so",
        };
        const char *no[] = {
                "",
                "#Plugin jit_approval jit_approval.so\n",
                "# Plugin jit_approval jit_approval.so\n",
                "Plugin jit_approvals jit_approval.so\n",
                "Plugin jit_approval\n",
                "Path jit_approval jit_approval.so\n",
                "Plugins jit_approval jit_approval.so\n",
                "xPlugin jit_approval jit_approval.so\n",
        };
        for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
                if (!jit_sudo_conf_loads_approval(yes[i], strlen(yes[i]), NULL, 0))
                        fail_msg("not seen in \"%s\"", yes[i]);
        for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
                if (jit_sudo_conf_loads_approval(no[i], strlen(no[i]), NULL, 0))
                        fail_msg("seen in \"%s\"", no[i]);
        /* The gated group: group= among the options, else jit. */
        char g[64];
        const char *a = "Plugin jit_approval jit_approval.so socket=/x group=ops-gated timeout=500\n";
        assert_true(jit_sudo_conf_loads_approval(a, strlen(a), g, sizeof(g)));
        assert_string_equal(g, "ops-gated");
        const char *b = "Plugin jit_approval jit_approval.so\n";
        assert_true(jit_sudo_conf_loads_approval(b, strlen(b), g, sizeof(g)));
        assert_string_equal(g, "jit");
        const char *c = "Plugin jit_approval jit_approval.so group=averyveryverylonggroupname\n";
        assert_false(jit_sudo_conf_loads_approval(c, strlen(c), g, 8));
}

/* The file is believed only when root owns it and nobody else may write it. */
static void test_sudo_conf_file_trust(void **state) {
        char path[] = "/tmp/test-sudo-conf-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        const char text[] = "Plugin jit_approval jit_approval.so\n";
        assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t) sizeof(text) - 1);
        close(fd);
        bool root = geteuid() == 0;
        assert_int_equal(chmod(path, 0644), 0);
        assert_int_equal(jit_sudo_conf_file_loads_approval(path, NULL, 0), root ? 1 : 0);
        assert_int_equal(chmod(path, 0664), 0);
        assert_int_equal(jit_sudo_conf_file_loads_approval(path, NULL, 0), 0);
        assert_int_equal(chmod(path, 0646), 0);
        assert_int_equal(jit_sudo_conf_file_loads_approval(path, NULL, 0), 0);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(jit_sudo_conf_file_loads_approval(path, NULL, 0), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_literal),
                cmocka_unit_test(test_star_is_one_argument),
                cmocka_unit_test(test_star_inside_a_word_stays_in_its_directory),
                cmocka_unit_test(test_rest),
                cmocka_unit_test(test_quotes),
                cmocka_unit_test(test_odd_arguments),
                cmocka_unit_test(test_hostile_patterns),
                cmocka_unit_test(test_refused_patterns),
                cmocka_unit_test(test_long_pattern_refused),
                cmocka_unit_test(test_quote_for_a_shell),
                cmocka_unit_test(test_command_line_limits),
                cmocka_unit_test(test_sudo_conf),
                cmocka_unit_test(test_sudo_conf_file_trust),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
