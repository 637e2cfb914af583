/* SPDX-License-Identifier: MIT */
/* common/approval-statement.[ch]: the bytes an approver signs. The golden texts below are
 * the format of docs/signed-approvals.md: a change to them is a new statement version. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "approval-statement.h"
#include "cleanup.h"

#define REASON "restart nginx after the config change"
#define REASON_SHA256 "afedb3f8c83866d1516a1e6332aba9cbaa08a01b15882f0ea1cfaba333bf91ea"
#define TICKET_SHA256 "c4260d56376c9f5190454e38386dec71478b42b0336dfe46cac8b7b48d2fbff6"
#define ARGV_SHA256 "0be58fa61a9cce76d943886a2c0ddbcb502650035b96d08752f5769f8de333fd"

static const char golden_local[] = "jit-approval-v1\n"
                                   "fleet -\n"
                                   "request 42\n"
                                   "requester alice\n"
                                   "requester-uid 1001\n"
                                   "service sudo\n"
                                   "command -\n"
                                   "argv-sha256 -\n"
                                   "run-as -\n"
                                   "cwd -\n"
                                   "hosts web-1\n"
                                   "duration 3600\n"
                                   "not-before 2026-12-07T10:00:00Z\n"
                                   "not-after 2026-12-07T11:10:00Z\n"
                                   "reason-sha256 " REASON_SHA256 "\n"
                                   "ticket-sha256 -\n"
                                   "approver bob\n";

static const char golden_fleet[] = "jit-approval-v1\n"
                                   "fleet prod%20fleet\n"
                                   "request f:7\n"
                                   "requester alice\n"
                                   "requester-uid 1001\n"
                                   "service sudo\n"
                                   "command /usr/bin/systemctl\n"
                                   "argv-sha256 " ARGV_SHA256 "\n"
                                   "run-as root:adm\n"
                                   "cwd /srv/my%25dir\n"
                                   "hosts environment=staging,role=db\n"
                                   "duration 600\n"
                                   "not-before 2026-12-07T10:00:00Z\n"
                                   "not-after 2026-12-07T11:10:00Z\n"
                                   "reason-sha256 " REASON_SHA256 "\n"
                                   "ticket-sha256 " TICKET_SHA256 "\n"
                                   "approver %C3%A9lodie\n";

static ApprovalStatement local_statement(void) {
        ApprovalStatement s = {
                .request = "42",
                .requester = "alice",
                .requester_uid = 1001,
                .service = "sudo",
                .hosts = "web-1",
                .duration = 3600,
                .not_before = 1796637600,
                .not_after = 1796641800,
                .approver = "bob",
        };
        approval_statement_hash_text(REASON, s.reason_sha256);
        return s;
}

static void check_format(const ApprovalStatement *s, const char *expect) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        const char *why = NULL;
        int r = approval_statement_format(s, &text, &len, &why);
        if (r < 0)
                fail_msg("format: %d (%s)", r, why ? why : "?");
        assert_int_equal(len, strlen(expect));
        assert_string_equal(text, expect);
}

static void test_golden_local(void **state) {
        (void) state;
        ApprovalStatement s = local_statement();
        check_format(&s, golden_local);
}

static void test_golden_fleet(void **state) {
        (void) state;
        char *argv[] = { "/usr/bin/systemctl", "restart", "nginx", NULL };
        ApprovalStatement s = local_statement();
        s.fleet = "prod fleet";
        s.request = "f:7";
        s.command = "/usr/bin/systemctl";
        approval_statement_hash_argv(argv, s.argv_sha256);
        s.run_as = "root:adm";
        s.cwd = "/srv/my%dir";
        s.hosts = "environment=staging,role=db";
        s.duration = 600;
        approval_statement_hash_text("OPS-1234", s.ticket_sha256);
        s.approver = "\xc3\xa9lodie"; /* élodie */
        check_format(&s, golden_fleet);
}

/* Newlines, spaces, '%', controls and a lone "-" are encoded: no value makes a line. */
static void test_escapes(void **state) {
        (void) state;
        ApprovalStatement s = local_statement();
        s.requester = "eve\napprover mallory";
        s.cwd = "-";
        s.service = "a\tb\x7f";
        _cleanup_free_ char *text = NULL;
        size_t len;
        const char *why;
        assert_int_equal(approval_statement_format(&s, &text, &len, &why), 0);
        assert_non_null(strstr(text, "\nrequester eve%0Aapprover%20mallory\n"));
        assert_non_null(strstr(text, "\ncwd %2D\n"));
        assert_non_null(strstr(text, "\nservice a%09b%7F\n"));
        /* 17 lines, whatever the values. */
        size_t lines = 0;
        for (const char *p = text; *p; p++)
                lines += *p == '\n';
        assert_int_equal(lines, 17);

        ApprovalStatement back;
        assert_int_equal(approval_statement_parse(text, len, &back, &why), 0);
        assert_string_equal(back.requester, "eve\napprover mallory");
        assert_string_equal(back.cwd, "-");
        assert_string_equal(back.service, "a\tb\x7f");
        assert_null(approval_statement_diff(&s, &back));
        approval_statement_done(&back);
}

static void test_refuses_non_utf8(void **state) {
        (void) state;
        const char *bad[] = { "\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                ApprovalStatement s = local_statement();
                s.approver = bad[i];
                char *text = (char *) 0x1;
                size_t len;
                const char *why = NULL;
                assert_int_equal(approval_statement_format(&s, &text, &len, &why), -EILSEQ);
                assert_string_equal(why, "approver");
                assert_ptr_equal(text, (char *) 0x1);
        }
}

static void test_refuses_missing(void **state) {
        (void) state;
        char *text = NULL;
        size_t len;
        const char *why;
        ApprovalStatement s = local_statement();
        s.approver = "";
        assert_int_equal(approval_statement_format(&s, &text, &len, &why), -EINVAL);
        assert_string_equal(why, "approver");
        s = local_statement();
        s.hosts = NULL;
        assert_int_equal(approval_statement_format(&s, &text, &len, &why), -EINVAL);
        assert_string_equal(why, "hosts");
        s = local_statement();
        s.not_before = s.not_after + 1;
        assert_int_equal(approval_statement_format(&s, &text, &len, &why), -EINVAL);
        s = local_statement();
        strcpy(s.reason_sha256, "xyz");
        assert_int_equal(approval_statement_format(&s, &text, &len, &why), -EINVAL);
        s = local_statement();
        s.run_as = "root"; /* only with a command */
        assert_int_equal(approval_statement_format(&s, &text, &len, &why), -EINVAL);
        assert_null(text);
}

static void test_too_long(void **state) {
        (void) state;
        char path[5000];
        path[0] = '/';
        memset(path + 1, ' ', sizeof(path) - 2); /* each space takes 3 bytes */
        path[sizeof(path) - 1] = 0;
        char *argv[] = { path, NULL };
        ApprovalStatement s = local_statement();
        s.command = path;
        approval_statement_hash_argv(argv, s.argv_sha256);
        _cleanup_free_ char *text = NULL;
        size_t len;
        const char *why;
        assert_int_equal(approval_statement_format(&s, &text, &len, &why), 0);
        s.cwd = path;
        free(TAKE_PTR(text));
        assert_int_equal(approval_statement_format(&s, &text, &len, &why), -E2BIG);
}

static void test_parse_round_trip(void **state) {
        (void) state;
        const char *goldens[] = { golden_local, golden_fleet };
        for (size_t i = 0; i < 2; i++) {
                ApprovalStatement s;
                const char *why = NULL;
                int r = approval_statement_parse(goldens[i], strlen(goldens[i]), &s, &why);
                if (r < 0)
                        fail_msg("parse golden %zu: %s", i, why);
                check_format(&s, goldens[i]);
                approval_statement_done(&s);
        }
        ApprovalStatement s;
        const char *why;
        assert_int_equal(approval_statement_parse(golden_fleet, strlen(golden_fleet), &s, &why), 0);
        assert_string_equal(s.fleet, "prod fleet");
        assert_string_equal(s.cwd, "/srv/my%dir");
        assert_string_equal(s.approver, "\xc3\xa9lodie");
        assert_int_equal(s.not_before, 1796637600);
        approval_statement_done(&s);
}

static void check_parse_refused(const char *text, const char *expect_why) {
        ApprovalStatement s;
        const char *why = NULL;
        int r = approval_statement_parse(text, strlen(text), &s, &why);
        if (r != -EBADMSG)
                fail_msg("parse of a bad statement: %d, expected -EBADMSG (%s)", r, expect_why);
        if (!why || !strstr(why, expect_why))
                fail_msg("reason \"%s\", expected one with \"%s\"", why ? why : "", expect_why);
}

/* Replaces the first occurrence of from in the local golden text by to. */
static void check_variant_refused(const char *from, const char *to, const char *expect_why) {
        char buf[2048];
        const char *at = strstr(golden_local, from);
        assert_non_null(at);
        size_t head = (size_t) (at - golden_local);
        snprintf(buf, sizeof(buf), "%.*s%s%s", (int) head, golden_local, to, at + strlen(from));
        check_parse_refused(buf, expect_why);
}

static void test_parse_refuses(void **state) {
        (void) state;
        check_variant_refused("jit-approval-v1", "jit-approval-v2", "first line");
        check_variant_refused("requester alice\n", "", "out of order");
        check_variant_refused("approver bob\n", "approver bob\nextra x\n", "after the last");
        check_variant_refused("approver bob\n", "approver bob", "newline");
        check_variant_refused("hosts web-1", "hosts web%2D1", "canonical"); /* needless escape */
        check_variant_refused("hosts web-1", "hosts web%2d1", "escape");    /* lowercase hex */
        check_variant_refused("hosts web-1", "hosts web%001", "escape");    /* NUL */
        check_variant_refused("hosts web-1", "hosts web%FF1", "canonical"); /* not UTF-8 */
        check_variant_refused("duration 3600", "duration 03600", "number");
        check_variant_refused("not-before 2026-12-07T10:00:00Z", "not-before 2026-12-07 10:00:00Z",
                              "time");
        check_variant_refused("not-before 2026-12-07T10:00:00Z", "not-before 2026-02-30T10:00:00Z",
                              "canonical");
        check_variant_refused("reason-sha256 a", "reason-sha256 A", "canonical");
        check_variant_refused("service sudo", "service  sudo", "canonical");
        check_variant_refused("hosts web-1\n", "hosts web-1\r\n", "canonical");
        char with_nul[] = "jit-approval-v1\nfleet -\0\n";
        ApprovalStatement s;
        const char *why;
        assert_int_equal(approval_statement_parse(with_nul, sizeof(with_nul) - 1, &s, &why),
                         -EBADMSG);
        assert_string_equal(why, "a NUL byte");
}

static void test_diff(void **state) {
        (void) state;
        ApprovalStatement a = local_statement(), b = local_statement();
        assert_null(approval_statement_diff(&a, &b));
        b.request = "43";
        assert_string_equal(approval_statement_diff(&a, &b), "request");
        b = local_statement();
        b.duration = 7200;
        assert_string_equal(approval_statement_diff(&a, &b), "duration");
        b = local_statement();
        b.hosts = "db-1";
        assert_string_equal(approval_statement_diff(&a, &b), "hosts");
        b = local_statement();
        b.requester = "carol";
        assert_string_equal(approval_statement_diff(&a, &b), "requester");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_golden_local),
                cmocka_unit_test(test_golden_fleet),
                cmocka_unit_test(test_escapes),
                cmocka_unit_test(test_refuses_non_utf8),
                cmocka_unit_test(test_refuses_missing),
                cmocka_unit_test(test_too_long),
                cmocka_unit_test(test_parse_round_trip),
                cmocka_unit_test(test_parse_refuses),
                cmocka_unit_test(test_diff),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
