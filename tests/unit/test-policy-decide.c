/* SPDX-License-Identifier: MIT */
/* common/policy.[ch] beyond the basics of test-policy.c: the keys auto_approve, when,
 * ticket_pattern, reason_min_length, allow_self_approval and break_glass (values and every
 * error with its line), time windows, times as explain and case files write them,
 * policy_decide() and its explanations, break-glass decisions, warnings, the policy
 * version, and the decision's JSON. Runs with TZ=UTC unless a test says otherwise. */
#include <errno.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

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

static void check_rule_error(const char *keys, const char *expect, const char *file, int line) {
        char *text = one_rule(keys);
        check_error(text, expect, file, line);
        free(text);
}
#define assert_rule_error(keys, expect) check_rule_error(keys, expect, __FILE__, __LINE__)

/* Identities built by hand, as the broker would resolve them through NSS. With root they are
 * the only users (and their groups the only groups) that the checks of policy_parse find: the
 * host's accounts play no part. */
static char *root_groups[] = { (char *) "root" };
static char *alice_groups[] = { (char *) "alice", (char *) "dev" };
static char *bob_groups[] = { (char *) "bob", (char *) "oncall" };
static char *carol_groups[] = { (char *) "carol", (char *) "sre" };
static const Identity alice = {
        .name = (char *) "alice", .uid = 1001, .groups = alice_groups, .n_groups = 2
};
static const Identity bob = {
        .name = (char *) "bob", .uid = 1002, .groups = bob_groups, .n_groups = 2
};
static const Identity carol = {
        .name = (char *) "carol", .uid = 1003, .groups = carol_groups, .n_groups = 2
};
static const Identity root = {
        .name = (char *) "root", .uid = 0, .groups = root_groups, .n_groups = 1
};
static const Identity *const known_users[] = { &root, &alice, &bob, &carol, NULL };

/* A time in the reference week (Monday 2024-01-01 is day 0), in the current zone. */
static time_t week(int day, int hour, int min, int sec) {
        struct tm tm = { .tm_year = 124,
                         .tm_mon = 0,
                         .tm_mday = 1 + day,
                         .tm_hour = hour,
                         .tm_min = min,
                         .tm_sec = sec,
                         .tm_isdst = -1 };
        time_t t = mktime(&tm);
        assert_true(t != (time_t) -1);
        return t;
}
enum {
        MON,
        TUE,
        WED,
        THU,
        FRI,
        SAT,
        SUN
};

static void use_tz(const char *tz) {
        assert_int_equal(setenv("TZ", tz, 1), 0);
        tzset();
}

/* ---------------------------------------------------------------------------------------
 * auto_approve, allow_self_approval, reason_min_length */

static void test_auto_approve(void **state) {
        Policy *p = parse_ok("rules = (\n"
                             "  { name = \"a\"; services = [\"sudo\"]; requesters = [\"alice\"];\n"
                             "    auto_approve = true; },\n"
                             "  { name = \"b\"; services = [\"sudo\"]; requesters = [\"alice\"];\n"
                             "    auto_approve = true; approvers = [\"%sre\"]; },\n"
                             "  " RULE_HEAD " auto_approve = false; }\n"
                             ");");

        assert_true(p->rules[0].auto_approve);
        assert_int_equal(p->rules[0].approvers.n, 0);
        assert_true(p->rules[1].auto_approve);
        assert_int_equal(p->rules[1].approvers.n, 1); /* listed approvers may still revoke */
        assert_false(p->rules[2].auto_approve);
        assert_int_equal(p->rules[2].approvals, 1);
        policy_free(p);

        assert_rule_error("auto_approve = \"yes\";",
                          NAME ":2: rule \"r\": auto_approve: expected true or false");
        assert_rule_error("auto_approve = 1;",
                          NAME ":2: rule \"r\": auto_approve: expected true or false");
        /* Without auto_approve, approvers are required, and the message says the way out. */
        assert_policy_error(
                "rules = (\n  { name = \"r\"; services = [\"sudo\"]; requesters = [\"a\"];\n"
                "    auto_approve = false; }\n);",
                NAME ":2: rule \"r\": missing 'approvers' (or auto_approve = true)");
        /* Keys that would do nothing on an auto-approving rule are errors, not decoration. */
        assert_policy_error(
                "rules = (\n  { name = \"r\"; services = [\"sudo\"]; requesters = [\"a\"];\n"
                "    auto_approve = true;\n    approvals = 2; }\n);",
                NAME ":4: rule \"r\": approvals: has no effect with auto_approve = true (nobody "
                     "approves)");
        assert_policy_error(
                "rules = (\n  { name = \"r\"; services = [\"sudo\"]; requesters = [\"a\"];\n"
                "    auto_approve = true;\n\n    allow_self_approval = true; }\n);",
                NAME ":5: rule \"r\": allow_self_approval: has no effect with auto_approve = true "
                     "(nobody approves)");
        /* Saying the default out loud is fine. */
        p = parse_ok("rules = ( { name = \"r\"; services = [\"sudo\"]; requesters = [\"a\"];"
                     " auto_approve = true; allow_self_approval = false; } );");
        assert_false(p->rules[0].allow_self_approval);
        policy_free(p);
}

static void test_allow_self_approval(void **state) {
        char *text = one_rule("allow_self_approval = true;");
        Policy *p = parse_ok(text);
        assert_true(p->rules[0].allow_self_approval);
        policy_free(p);
        free(text);

        text = one_rule("");
        p = parse_ok(text);
        assert_false(p->rules[0].allow_self_approval); /* the default: never your own */
        policy_free(p);
        free(text);

        assert_rule_error("allow_self_approval = \"true\";",
                          NAME ":2: rule \"r\": allow_self_approval: expected true or false");
        assert_rule_error("allow_self_approval = 0;",
                          NAME ":2: rule \"r\": allow_self_approval: expected true or false");
}

static void test_reason_min_length(void **state) {
        static const unsigned ok[] = { 0, 1, 20, 1024 };
        char keys[64];

        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                snprintf(keys, sizeof(keys), "reason_min_length = %u;", ok[i]);
                char *text = one_rule(keys);
                Policy *p = parse_ok(text);
                assert_int_equal(p->rules[0].reason_min_length, ok[i]);
                policy_free(p);
                free(text);
        }
        assert_rule_error("reason_min_length = 1025;",
                          NAME ":2: rule \"r\": reason_min_length: 1025 is out of range (expected "
                               "0..1024)");
        assert_rule_error("reason_min_length = -1;",
                          NAME ":2: rule \"r\": reason_min_length: -1 is out of range (expected "
                               "0..1024)");
        assert_rule_error("reason_min_length = \"10\";",
                          NAME ":2: rule \"r\": reason_min_length: expected an integer");
        assert_rule_error("reason_min_length = 1.5;",
                          NAME ":2: rule \"r\": reason_min_length: expected an integer");
}

/* ---------------------------------------------------------------------------------------
 * ticket_pattern */

static void test_ticket_pattern(void **state) {
        char *text = one_rule("ticket_pattern = \"^(OPS|CHG)-[0-9]{1,6}$\";");
        Policy *p = parse_ok(text);
        assert_string_equal(p->rules[0].ticket_pattern, "^(OPS|CHG)-[0-9]{1,6}$");
        assert_non_null(p->rules[0].ticket_regex);
        assert_int_equal(p->n_warnings, 0); /* alice and bob exist */
        policy_free(p);
        free(text);

        /* A bad expression: file:line and regerror's own words. */
        regex_t re;
        char what[256], expect[512];
        int k = regcomp(&re, "^OPS-[0-9+$", REG_EXTENDED | REG_NOSUB);
        assert_int_not_equal(k, 0);
        regerror(k, &re, what, sizeof(what));
        snprintf(expect, sizeof(expect),
                 NAME ":2: rule \"r\": ticket_pattern: \"^OPS-[0-9+$\" is not a valid extended "
                      "regular expression: %s",
                 what);
        assert_rule_error("ticket_pattern = \"^OPS-[0-9+$\";", expect);

        k = regcomp(&re, "(OPS", REG_EXTENDED | REG_NOSUB);
        assert_int_not_equal(k, 0);
        regerror(k, &re, what, sizeof(what));
        snprintf(expect, sizeof(expect),
                 NAME ":2: rule \"r\": ticket_pattern: \"(OPS\" is not a valid extended regular "
                      "expression: %s",
                 what);
        assert_rule_error("ticket_pattern = \"(OPS\";", expect);

        assert_rule_error("ticket_pattern = \"\";",
                          NAME ":2: rule \"r\": ticket_pattern: must not be empty");
        assert_rule_error("ticket_pattern = [\"^OPS$\"];",
                          NAME ":2: rule \"r\": ticket_pattern: expected a string");
        assert_rule_error("ticket_pattern = 5;",
                          NAME ":2: rule \"r\": ticket_pattern: expected a string");
}

/* ---------------------------------------------------------------------------------------
 * when: syntax */

static void assert_window(const char *s, uint8_t days, unsigned start, unsigned end) {
        PolicyWindow w;
        char *err = (char *) "sentinel";

        if (policy_window_parse(s, &w, &err) != 0)
                fail_msg("\"%s\" refused: %s", s, err ? err : "?");
        assert_null(err);
        if (w.days != days || w.start != start || w.end != end)
                fail_msg("\"%s\": days %#x %u-%u, expected %#x %u-%u", s, w.days, w.start, w.end,
                         days, start, end);
}

static void assert_window_error(const char *s, const char *expect) {
        PolicyWindow w;
        char *err = NULL;

        assert_int_equal(policy_window_parse(s, &w, &err), -EINVAL);
        if (!err || strcmp(err, expect) != 0)
                fail_msg("\"%s\"\n  got:      %s\n  expected: %s", s, err ? err : "(none)", expect);
        free(err);
        assert_int_equal(policy_window_parse(s, &w, NULL), -EINVAL); /* message optional */
}

static void test_window_syntax(void **state) {
        assert_window("Mon-Fri 08:00-20:00", 0x1f, 480, 1200);
        assert_window("Sat,Sun 10:00-12:00", 0x60, 600, 720);
        assert_window("Mon 22:00-06:00", 0x01, 1320, 360);
        assert_window("Mon,Wed-Fri 09:30-17:45", 0x1d, 570, 1065);
        assert_window("Fri-Mon 00:00-24:00", 0x71, 0, 1440); /* wraps around the week */
        assert_window("Sun 23:59-00:00", 0x40, 1439, 0);
        assert_window("mon-FRI 8:00-20:00", 0x1f, 480, 1200); /* any case, H:MM */
        assert_window("Tue\t 07:05-07:06", 0x02, 425, 426);
        assert_window("00:00-24:00", 0x7f, 0, 1440); /* no days: every day */
        assert_window("Mon-Sun 12:00-11:59", 0x7f, 720, 719);

        static const char example[] =
                "expected days and a time range such as \"Mon-Fri 08:00-20:00\", \"Sat,Sun "
                "10:00-12:00\" or \"Mon 22:00-06:00\"";
        static const char unknown_fmt[] =
                "unknown day \"%s\" (expected Mon, Tue, Wed, Thu, Fri, Sat or Sun)";
        static const char range_fmt[] = "\"%s\" is not a time range (expected HH:MM-HH:MM, from "
                                        "00:00 to 23:59, or 24:00 as the end)";
        char expect[256];

        snprintf(expect, sizeof(expect), unknown_fmt, "Fry");
        assert_window_error("Mon-Fry 08:00-20:00", expect);
        snprintf(expect, sizeof(expect), unknown_fmt, "Monday");
        assert_window_error("Monday 08:00-20:00", expect);
        snprintf(expect, sizeof(expect), unknown_fmt, "Mo");
        assert_window_error("Mo 08:00-20:00", expect);
        assert_window_error("Mon, 08:00-20:00", example);
        assert_window_error("Mon- 08:00-20:00", example);
        assert_window_error(" Mon 08:00-20:00", example);
        assert_window_error("Mon,Mon 10:00-11:00", "Mon is named twice");
        assert_window_error("Mon-Sun,Wed 10:00-11:00", "Wed is named twice");
        assert_window_error("Fri-Tue,Mon 10:00-11:00", "Mon is named twice");

        assert_window_error("", example);
        assert_window_error("Mon", example);
        assert_window_error("Mon-Fri", example);
        assert_window_error("Mon08:00-20:00", example);
        assert_window_error("Mon weekdays", example);

        snprintf(expect, sizeof(expect), range_fmt, "8-20");
        assert_window_error("Mon 8-20", expect);
        snprintf(expect, sizeof(expect), range_fmt, "25:00-26:00");
        assert_window_error("Mon 25:00-26:00", expect);
        snprintf(expect, sizeof(expect), range_fmt, "24:00-06:00");
        assert_window_error("Mon 24:00-06:00", expect);
        snprintf(expect, sizeof(expect), range_fmt, "08:60-09:00");
        assert_window_error("Mon 08:60-09:00", expect);
        snprintf(expect, sizeof(expect), range_fmt, "08:00-24:01");
        assert_window_error("Mon 08:00-24:01", expect);
        snprintf(expect, sizeof(expect), range_fmt, "08:00 - 09:00");
        assert_window_error("Mon 08:00 - 09:00", expect);
        snprintf(expect, sizeof(expect), range_fmt, "108:00-109:00");
        assert_window_error("Mon 108:00-109:00", expect);
        snprintf(expect, sizeof(expect), range_fmt, "8:0-9:00");
        assert_window_error("8:0-9:00", expect);

        assert_window_error("Mon 10:00-11:00 UTC", "unexpected \" UTC\" after the time range");
        assert_window_error("Mon 10:00-11:00,Tue", "unexpected \",Tue\" after the time range");
        assert_window_error("Mon 10:00-10:00", "the window is empty (it starts and ends at 10:00)");
        assert_window_error("00:00-0:00", "the window is empty (it starts and ends at 0:00)");
}

static void test_when_in_policy(void **state) {
        Policy *p = parse_ok("rules = ( " RULE_HEAD
                             " when = [\"Mon-Fri 08:00-20:00\", \"Sat 10:00-12:00\"]; } );");
        const PolicyRule *r = &p->rules[0];

        assert_int_equal(r->when.n, 2);
        assert_string_equal(r->when.items[1], "Sat 10:00-12:00");
        assert_int_equal(r->windows[0].days, 0x1f);
        assert_int_equal(r->windows[1].days, 0x20);
        assert_int_equal(r->windows[1].start, 600);
        policy_free(p);

        /* Each entry's error at its own line, naming the entry. */
        assert_policy_error(
                "rules = ( " RULE_HEAD "\n  when = [\"Mon-Fri 08:00-20:00\",\n"
                "    \"Sun 25:00-26:00\"]; } );",
                NAME ":3: rule \"r\": when: \"Sun 25:00-26:00\": \"25:00-26:00\" is not a time "
                     "range (expected HH:MM-HH:MM, from 00:00 to 23:59, or 24:00 as the end)");
        assert_rule_error("when = [\"Mon-Fry 08:00-20:00\"];",
                          NAME ":2: rule \"r\": when: \"Mon-Fry 08:00-20:00\": unknown day \"Fry\" "
                               "(expected Mon, Tue, Wed, Thu, Fri, Sat or Sun)");
        assert_rule_error("when = \"Mon-Fri 08:00-20:00\";",
                          NAME ":2: rule \"r\": when: expected a list of strings like "
                               "[\"Mon-Fri 08:00-20:00\"]");
        assert_rule_error("when = [];", NAME ":2: rule \"r\": when: must not be empty");
        assert_rule_error("when = ( 5 );", NAME ":2: rule \"r\": when: entry 1 is not a string");
        assert_rule_error("when = [\"Mon 10:00-11:00\", \"Mon 10:00-11:00\"];",
                          NAME ":2: rule \"r\": when: \"Mon 10:00-11:00\" is listed twice");

        /* At most 64 windows. */
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        assert_non_null(f);
        fputs("when = [", f);
        for (int i = 0; i <= POLICY_WINDOWS_MAX; i++)
                fprintf(f, "%s\"%02d:00-%02d:30\"", i ? ", " : "", i % 24, i % 24 + (i >= 24));
        fputs("];", f);
        assert_int_equal(fclose(f), 0);
        assert_rule_error(buf, NAME ":2: rule \"r\": when: more than 64 entries");
        free(buf);
}

/* ---------------------------------------------------------------------------------------
 * when: evaluation */

static bool window_at(const char *s, time_t t) {
        PolicyWindow w;
        assert_int_equal(policy_window_parse(s, &w, NULL), 0);
        return policy_window_contains(&w, t);
}

static void test_window_contains(void **state) {
        static const char *work = "Mon-Fri 08:00-20:00";

        assert_false(window_at(work, week(MON, 7, 59, 59)));
        assert_true(window_at(work, week(MON, 8, 0, 0)));
        assert_true(window_at(work, week(WED, 12, 0, 0)));
        assert_true(window_at(work, week(FRI, 19, 59, 59)));
        assert_false(window_at(work, week(FRI, 20, 0, 0))); /* the end is exclusive */
        assert_false(window_at(work, week(SAT, 10, 0, 0)));
        assert_false(window_at(work, week(SUN, 12, 0, 0)));

        /* Past midnight into the next day, and only after a listed day. */
        static const char *night = "Mon 22:00-06:00";
        assert_false(window_at(night, week(MON, 21, 59, 59)));
        assert_true(window_at(night, week(MON, 22, 0, 0)));
        assert_true(window_at(night, week(MON, 23, 59, 59)));
        assert_true(window_at(night, week(TUE, 0, 0, 0)));
        assert_true(window_at(night, week(TUE, 5, 59, 59)));
        assert_false(window_at(night, week(TUE, 6, 0, 0)));
        assert_false(window_at(night, week(MON, 3, 0, 0))); /* Sunday night is not listed */
        assert_false(window_at(night, week(TUE, 22, 0, 0)));
        assert_false(window_at(night, week(WED, 1, 0, 0)));

        /* Sunday night runs into Monday: across the week's end. */
        assert_true(window_at("Sun 22:00-06:00", week(MON, 1, 0, 0)));
        assert_true(window_at("Sun 22:00-06:00", week(SUN, 23, 0, 0)));
        assert_false(window_at("Sun 22:00-06:00", week(SUN, 1, 0, 0)));

        /* Day lists and whole days. */
        assert_true(window_at("Sat,Sun 10:00-12:00", week(SAT, 11, 0, 0)));
        assert_true(window_at("Sat,Sun 10:00-12:00", week(SUN, 10, 0, 0)));
        assert_false(window_at("Sat,Sun 10:00-12:00", week(SUN, 12, 0, 0)));
        assert_false(window_at("Sat,Sun 10:00-12:00", week(MON, 11, 0, 0)));
        assert_true(window_at("Fri-Mon 00:00-24:00", week(SUN, 23, 59, 59)));
        assert_true(window_at("Fri-Mon 00:00-24:00", week(FRI, 0, 0, 0)));
        assert_true(window_at("Fri-Mon 00:00-24:00", week(MON, 12, 0, 0)));
        assert_false(window_at("Fri-Mon 00:00-24:00", week(TUE, 0, 0, 0)));
        assert_false(window_at("Fri-Mon 00:00-24:00", week(THU, 23, 59, 59)));
        assert_true(window_at("00:00-24:00", week(THU, 3, 0, 0)));
        /* "Mon 00:00-24:00" is the whole day and nothing of Tuesday. */
        assert_true(window_at("Mon 00:00-24:00", week(MON, 23, 59, 59)));
        assert_false(window_at("Mon 00:00-24:00", week(TUE, 0, 0, 0)));

        /* Any week, not just the reference one: 2026-11-23 is a Monday. */
        struct tm tm = {
                .tm_year = 126, .tm_mon = 10, .tm_mday = 23, .tm_hour = 9, .tm_isdst = -1
        };
        assert_true(window_at(work, mktime(&tm)));
        tm = (struct tm){
                .tm_year = 126, .tm_mon = 10, .tm_mday = 22, .tm_hour = 9, .tm_isdst = -1
        };
        assert_false(window_at(work, mktime(&tm)));

        /* The host's local time decides, not UTC: 07:30 UTC is 09:30 at UTC+2. */
        time_t t = 1704094200; /* 2024-01-01T07:30:00Z, a Monday */
        assert_false(window_at(work, t));
        use_tz("XST-2");
        assert_true(window_at(work, t));
        assert_true(window_at(work, week(MON, 8, 0, 0)));
        use_tz("UTC");
}

static void test_rule_in_window(void **state) {
        Policy *p = parse_ok(
                "rules = (\n"
                "  { name = \"office\"; services = [\"sudo\"]; requesters = [\"%oncall\"];\n"
                "    auto_approve = true; when = [\"Mon-Fri 08:00-20:00\", \"Sat 10:00-12:00\"]; },\n"
                "  { name = \"always\"; services = [\"sudo\"]; requesters = [\"%oncall\"];\n"
                "    approvers = [\"carol\"]; }\n"
                ");");
        const PolicyRule *office = &p->rules[0], *always = &p->rules[1];

        assert_true(policy_rule_in_window(office, week(TUE, 9, 0, 0)));
        assert_true(policy_rule_in_window(office, week(SAT, 11, 59, 59)));
        assert_false(policy_rule_in_window(office, week(SAT, 12, 0, 0)));
        assert_false(policy_rule_in_window(office, week(SUN, 11, 0, 0)));
        assert_true(policy_rule_in_window(always, week(SUN, 3, 0, 0)));

        /* policy_match ignores when; policy_match_at honours it. */
        assert_ptr_equal(policy_match(p, &bob, "sudo"), office);
        assert_ptr_equal(policy_match_at(p, &bob, "sudo", week(TUE, 9, 0, 0)), office);
        assert_ptr_equal(policy_match_at(p, &bob, "sudo", week(SUN, 9, 0, 0)), always);
        assert_null(policy_match_at(p, &alice, "sudo", week(TUE, 9, 0, 0)));
        assert_null(policy_match_at(p, &bob, "sshd", week(TUE, 9, 0, 0)));
        policy_free(p);
}

/* ---------------------------------------------------------------------------------------
 * Times as --at and case files write them */

static void test_time_parse(void **state) {
        time_t t;

        assert_int_equal(policy_time_parse("now", 12345, &t), 0);
        assert_int_equal(t, 12345);
        assert_int_equal(policy_time_parse("Mon 10:00", 0, &t), 0);
        assert_int_equal(t, 1704103200); /* 2024-01-01T10:00:00Z */
        assert_int_equal(policy_time_parse("mon 9:05", 0, &t), 0);
        assert_int_equal(t, 1704099900);
        assert_int_equal(policy_time_parse("Sun 23:59:59", 0, &t), 0);
        assert_int_equal(t, 1704671999); /* 2024-01-07T23:59:59Z */
        assert_int_equal(policy_time_parse("Wed  12:00", 0, &t), 0);
        assert_int_equal(t, week(WED, 12, 0, 0));
        assert_int_equal(policy_time_parse("2026-11-23T13:28", 0, &t), 0);
        assert_int_equal(t, 1795440480);
        assert_int_equal(policy_time_parse("2026-11-23T13:28:51Z", 0, &t), 0);
        assert_int_equal(t, 1795440531);
        assert_int_equal(policy_time_parse("2024-02-29T00:00:00", 0, &t), 0);
        assert_int_equal(t, 1709164800);
        /* The rest of the timestamps of timeutil.h, as --since reads them. */
        assert_int_equal(policy_time_parse("2024-01-01 10:00", 0, &t), 0);
        assert_int_equal(t, 1704103200);
        assert_int_equal(policy_time_parse("2024-01-01T10:00+01:00", 0, &t), 0);
        assert_int_equal(t, 1704099600);
        assert_int_equal(policy_time_parse("2024-01-01T10:00z", 0, &t), 0);
        assert_int_equal(t, 1704103200);
        assert_int_equal(policy_time_parse("2024-01-01T10:00:60", 0, &t), 0);
        assert_int_equal(t, 1704103260); /* a leap second: the next second */
        assert_int_equal(policy_time_parse("2024-01-01", 0, &t), 0);
        assert_int_equal(t, 1704067200);
        assert_int_equal(policy_time_parse("today", 1795440531, &t), 0);
        assert_int_equal(t, 1795392000); /* 2026-11-23T00:00:00Z */
        assert_int_equal(policy_time_parse("-1h 30m", 1795440531, &t), 0);
        assert_int_equal(t, 1795440531 - 5400);
        assert_int_equal(policy_time_parse("+2d", 1795440531, &t), 0);
        assert_int_equal(t, 1795440531 + 2 * 86400);
        assert_int_equal(policy_time_parse("-2d", 86400, &t), -ERANGE);

        static const char *const bad[] = {
                "",
                "Now",
                "Mon",
                "Mon10:00",
                "Monday 10:00",
                "Mon 24:00",
                "Mon 10:60",
                "Mon 10:00 ",
                "Mon 10",
                "2024-02-30T10:00",
                "2023-02-29T10:00",
                "2024-13-01T00:00",
                "2024-00-10T00:00",
                "2024-1-01T10:00",
                "1969-12-31T23:59:59Z",
                "10:00",
                "Mon 10:00Z",
                "Mon 2024-01-01",
                "-Mon 10:00",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                if (policy_time_parse(bad[i], 0, &t) != -EINVAL)
                        fail_msg("\"%s\" was accepted", bad[i]);
        assert_int_equal(policy_time_parse(NULL, 0, &t), -EINVAL);

        /* Local forms follow TZ; "Z" does not. */
        use_tz("XST-2");
        assert_int_equal(policy_time_parse("Mon 10:00", 0, &t), 0);
        assert_int_equal(t, 1704103200 - 7200);
        assert_int_equal(policy_time_parse("2026-11-23T13:28:51Z", 0, &t), 0);
        assert_int_equal(t, 1795440531);
        /* A local time a DST change skips does not exist. */
        use_tz("CET-1CEST,M3.5.0,M10.5.0/3");
        assert_int_equal(policy_time_parse("2024-03-31T02:30", 0, &t), -EINVAL);
        assert_int_equal(policy_time_parse("2024-03-31T03:30", 0, &t), 0);
        assert_int_equal(t, 1711848600); /* 01:30Z */
        use_tz("UTC");
}

/* ---------------------------------------------------------------------------------------
 * break_glass: parsing */

static void test_break_glass_parse(void **state) {
        Policy *p = parse_ok("rules = ();\n");
        assert_false(p->break_glass.enabled);
        policy_free(p);

        p = parse_ok("break_glass = {\n"
                     "  requesters = [\"%sre\", \"carol\"];\n"
                     "  services = [\"sudo\", \"sshd\"];\n"
                     "  max_duration = \"15m\";\n"
                     "};\n"
                     "rules = ();\n"
                     "settings = { max_duration = \"1h\"; default_duration = \"10m\"; };\n");
        assert_true(p->break_glass.enabled);
        assert_int_equal(p->break_glass.line, 1);
        assert_int_equal(p->break_glass.requesters.n, 2);
        assert_string_equal(p->break_glass.requesters.items[1], "carol");
        assert_int_equal(p->break_glass.services.n, 2);
        assert_int_equal(p->break_glass.max_duration, 900);
        policy_free(p);

        assert_policy_error("rules = ();\nbreak_glass = [\"%sre\"];",
                            NAME ":2: break_glass: expected a group { ... }");
        assert_policy_error("rules = ();\nbreak_glass = {\n  requesters = [\"%sre\"]; services = "
                            "[\"sudo\"]; max_duration = \"15m\";\n  reason_min_length = 5;\n};",
                            NAME ":4: break_glass: unknown key 'reason_min_length' (expected one "
                                 "of: requesters, services, max_duration)");
        assert_policy_error("rules = ();\nbreak_glass = { services = [\"sudo\"]; max_duration = "
                            "\"15m\"; };",
                            NAME ":2: break_glass: missing 'requesters'");
        assert_policy_error("rules = ();\nbreak_glass = { requesters = [\"%sre\"]; services = "
                            "[\"sudo\"]; };",
                            NAME ":2: break_glass: missing 'max_duration'");
        assert_policy_error("rules = ();\nbreak_glass = { };",
                            NAME ":2: break_glass: missing 'requesters'");
        assert_policy_error("rules = ();\nbreak_glass = { requesters = []; services = [\"sudo\"]; "
                            "max_duration = \"15m\"; };",
                            NAME ":2: break_glass: requesters: must not be empty");
        assert_policy_error("rules = ();\nbreak_glass = { requesters = [\"%sre\"];\n  services = "
                            "[\"su do\"]; max_duration = \"15m\"; };",
                            NAME ":3: break_glass: services: \"su do\" is not a PAM service name");
        assert_policy_error("rules = ();\nbreak_glass = { requesters = [\"%\"]; services = "
                            "[\"sudo\"]; max_duration = \"15m\"; };",
                            NAME ":2: break_glass: requesters: \"%\" is not a user or %group");
        assert_policy_error(
                "rules = ();\nbreak_glass = { requesters = [\"%sre\"]; services = [\"sudo\"];\n"
                "  max_duration = \"15 m\"; };",
                NAME ":3: break_glass: max_duration: \"15 m\" is not a duration (expected e.g. "
                     "\"90s\", \"30m\", \"1h30m\", \"2h\", \"1d\")");
        assert_policy_error("settings = { max_duration = \"1h\"; };\nrules = ();\n"
                            "break_glass = { requesters = [\"%sre\"]; services = [\"sudo\"];\n"
                            "  max_duration = \"2h\"; };",
                            NAME
                            ":4: break_glass: max_duration is longer than settings.max_duration");
}

/* ---------------------------------------------------------------------------------------
 * Deciding */

static const char decide_policy[] =
        "settings = { default_duration = \"1h\"; max_duration = \"8h\"; };\n"
        "rules = (\n"
        "  { name = \"oncall-auto\"; services = [\"sudo\", \"sshd\"]; requesters = [\"%oncall\"];\n"
        "    auto_approve = true; when = [\"Mon-Fri 08:00-20:00\"]; max_duration = \"30m\"; },\n"
        "  { name = \"sudo-one-lead\"; services = [\"sudo\"]; requesters = [\"%dev\"];\n"
        "    approvers = [\"%sre\"]; approvals = 1; max_duration = \"2h\";\n"
        "    ticket_pattern = \"^OPS-[0-9]+$\"; reason_min_length = 10; },\n"
        "  { name = \"dev-lax\"; services = [\"sudo\"]; requesters = [\"%dev\"];\n"
        "    approvers = [\"%sre\"]; auto_approve = false; },\n"
        "  { name = \"ssh-two\"; services = [\"sshd\"]; requesters = [\"%dev\", \"%oncall\"];\n"
        "    approvers = [\"%sre\", \"dave\", \"erin\"]; approvals = 2;\n"
        "    allow_self_approval = true; }\n"
        ");\n"
        "break_glass = { requesters = [\"%sre\"]; services = [\"sudo\"]; max_duration = \"15m\"; };\n";

static Policy *decide_p;

static int decide_setup(void **state) {
        Policy *p = NULL;
        int r = policy_parse(decide_policy, strlen(decide_policy), NAME, &p, NULL);
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
        uint64_t duration;
        uint64_t cap;
        const char *message;
        const char *const *skipped; /* NULL-terminated; NULL: none */
} Expect;

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
        if (d.duration != e->duration || d.cap != e->cap)
                fail_msg("%s:%d: duration %llu cap %llu, expected %llu %llu", file, line,
                         (unsigned long long) d.duration, (unsigned long long) d.cap,
                         (unsigned long long) e->duration, (unsigned long long) e->cap);
        if (!e->message != !d.message || (d.message && strcmp(d.message, e->message) != 0))
                fail_msg("%s:%d: message\n  got:      %s\n  expected: %s", file, line,
                         d.message ? d.message : "(none)", e->message ? e->message : "(none)");
        size_t n = 0;
        for (; e->skipped && e->skipped[n]; n++)
                if (n >= d.n_skipped || strcmp(d.skipped[n], e->skipped[n]) != 0)
                        fail_msg("%s:%d: skipped[%zu]\n  got:      %s\n  expected: %s", file, line,
                                 n, n < d.n_skipped ? d.skipped[n] : "(none)", e->skipped[n]);
        if (n != d.n_skipped)
                fail_msg("%s:%d: %zu skipped, expected %zu", file, line, d.n_skipped, n);
        policy_decision_done(&d);
        assert_null(d.message);
        assert_null(d.skipped);
        assert_int_equal(d.n_skipped, 0);
}
#define assert_decision(q, ...) check_decision(q, &(Expect){ __VA_ARGS__ }, __FILE__, __LINE__)
#define SKIPPED(...)                                                                               \
        (const char *const[]) {                                                                    \
                __VA_ARGS__, NULL                                                                  \
        }

static void test_decide_matching(void **state) {
        PolicyQuery q = { .requester = &bob, .service = "sudo", .at = week(MON, 10, 0, 0) };

        /* In the window: the first rule, automatically, its cap cutting the default. */
        assert_decision(&q, .verdict = VERDICT_AUTO_APPROVE, .rule = "oncall-auto",
                        .duration = 1800, .cap = 1800);
        q.duration = 1800;
        assert_decision(&q, .verdict = VERDICT_AUTO_APPROVE, .rule = "oncall-auto",
                        .duration = 1800, .cap = 1800);

        /* Outside it: nothing else for bob on sudo. */
        q.at = week(SAT, 10, 0, 0);
        assert_decision(&q, .verdict = VERDICT_REFUSED, .duration = 1800,
                        .message = "no policy rule lets bob request sudo",
                        .skipped = SKIPPED("rule \"oncall-auto\": outside its when windows "
                                           "(Mon-Fri 08:00-20:00)",
                                           "rule \"sudo-one-lead\": bob is not in its requesters",
                                           "rule \"dev-lax\": bob is not in its requesters",
                                           "rule \"ssh-two\": does not cover sudo"));
        /* sshd outside the window: on to ssh-two, which needs two approvals. */
        q.service = "sshd";
        q.duration = 0;
        assert_decision(&q, .verdict = VERDICT_NEEDS_APPROVAL, .rule = "ssh-two", .duration = 3600,
                        .cap = 8 * 3600,
                        .skipped = SKIPPED("rule \"oncall-auto\": outside its when windows "
                                           "(Mon-Fri 08:00-20:00)",
                                           "rule \"sudo-one-lead\": does not cover sshd",
                                           "rule \"dev-lax\": does not cover sshd"));

        /* Nobody's rule: every rule explains itself. */
        q = (PolicyQuery){ .requester = &carol, .service = "sudo", .at = week(MON, 10, 0, 0) };
        assert_decision(&q, .verdict = VERDICT_REFUSED,
                        .message = "no policy rule lets carol request sudo",
                        .skipped = SKIPPED("rule \"oncall-auto\": carol is not in its requesters",
                                           "rule \"sudo-one-lead\": carol is not in its requesters",
                                           "rule \"dev-lax\": carol is not in its requesters",
                                           "rule \"ssh-two\": does not cover sudo"));
        q.service = "su";
        assert_decision(&q, .verdict = VERDICT_REFUSED,
                        .message = "no policy rule lets carol request su",
                        .skipped = SKIPPED("rule \"oncall-auto\": does not cover su",
                                           "rule \"sudo-one-lead\": does not cover su",
                                           "rule \"dev-lax\": does not cover su",
                                           "rule \"ssh-two\": does not cover su"));

        /* An empty policy refuses everything, explaining nothing. */
        Policy *empty = parse_ok("rules = ();");
        PolicyDecision d;
        assert_int_equal(policy_decide(empty, &q, &d), 0);
        assert_int_equal(d.verdict, VERDICT_REFUSED);
        assert_null(d.rule);
        assert_int_equal(d.n_skipped, 0);
        assert_string_equal(d.message, "no policy rule lets carol request su");
        policy_decision_done(&d);
        policy_free(empty);
}

static void test_decide_ticket(void **state) {
        static const char *const first = "rule \"oncall-auto\": alice is not in its requesters";
        PolicyQuery q = { .requester = &alice,
                          .service = "sudo",
                          .at = week(MON, 10, 0, 0),
                          .ticket = "OPS-12",
                          .reason = "rotate the TLS certificate" };

        assert_decision(&q, .verdict = VERDICT_NEEDS_APPROVAL, .rule = "sudo-one-lead",
                        .duration = 3600, .cap = 7200, .skipped = SKIPPED(first));

        /* No fall-through to dev-lax, which asks for no ticket. */
        q.ticket = NULL;
        assert_decision(&q, .verdict = VERDICT_REFUSED, .rule = "sudo-one-lead", .duration = 3600,
                        .cap = 7200,
                        .message = "rule \"sudo-one-lead\" needs a ticket matching ^OPS-[0-9]+$",
                        .skipped = SKIPPED(first));
        q.ticket = "";
        assert_decision(&q, .verdict = VERDICT_REFUSED, .rule = "sudo-one-lead", .duration = 3600,
                        .cap = 7200,
                        .message = "rule \"sudo-one-lead\" needs a ticket matching ^OPS-[0-9]+$",
                        .skipped = SKIPPED(first));
        static const char *const wrong[] = { "OPS-",    "ops-12", "OPS-12 ",
                                             "xOPS-12", "OPS-1a", "CHG-12" };
        for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
                char msg[256];
                snprintf(msg, sizeof(msg),
                         "rule \"sudo-one-lead\" needs a ticket matching ^OPS-[0-9]+$; \"%s\" does "
                         "not match",
                         wrong[i]);
                q.ticket = wrong[i];
                assert_decision(&q, .verdict = VERDICT_REFUSED, .rule = "sudo-one-lead",
                                .duration = 3600, .cap = 7200, .message = msg,
                                .skipped = SKIPPED(first));
        }
        q.ticket = "OPS-0123456789";
        assert_decision(&q, .verdict = VERDICT_NEEDS_APPROVAL, .rule = "sudo-one-lead",
                        .duration = 3600, .cap = 7200, .skipped = SKIPPED(first));

        /* A rule without a pattern takes any ticket, or none. */
        q = (PolicyQuery){ .requester = &bob,
                           .service = "sudo",
                           .at = week(MON, 10, 0, 0),
                           .ticket = "anything" };
        assert_decision(&q, .verdict = VERDICT_AUTO_APPROVE, .rule = "oncall-auto",
                        .duration = 1800, .cap = 1800);

        /* An unanchored pattern matches inside a ticket (and the policy is warned about). */
        Policy *p = parse_ok(
                "rules = ( { name = \"u\"; services = [\"sudo\"]; requesters = "
                "[\"alice\"]; approvers = [\"bob\"]; ticket_pattern = \"OPS-[0-9]+\"; } );");
        PolicyDecision d;
        q = (PolicyQuery){ .requester = &alice, .service = "sudo", .ticket = "see OPS-7 here" };
        assert_int_equal(policy_decide(p, &q, &d), 0);
        assert_int_equal(d.verdict, VERDICT_NEEDS_APPROVAL);
        policy_decision_done(&d);
        policy_free(p);
}

static void test_decide_reason(void **state) {
        PolicyQuery q = { .requester = &alice,
                          .service = "sudo",
                          .at = week(MON, 10, 0, 0),
                          .ticket = "OPS-1",
                          .reason = "too short" };

        assert_decision(&q, .verdict = VERDICT_REFUSED, .rule = "sudo-one-lead", .duration = 3600,
                        .cap = 7200,
                        .message = "rule \"sudo-one-lead\" needs a reason of at least 10 bytes "
                                   "(this one has 9)",
                        .skipped = SKIPPED("rule \"oncall-auto\": alice is not in its requesters"));
        q.reason = "ten bytes!";
        assert_decision(&q, .verdict = VERDICT_NEEDS_APPROVAL, .rule = "sudo-one-lead",
                        .duration = 3600, .cap = 7200,
                        .skipped = SKIPPED("rule \"oncall-auto\": alice is not in its requesters"));
        q.reason = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"; /* 5 characters, 10 bytes */
        assert_decision(&q, .verdict = VERDICT_NEEDS_APPROVAL, .rule = "sudo-one-lead",
                        .duration = 3600, .cap = 7200,
                        .skipped = SKIPPED("rule \"oncall-auto\": alice is not in its requesters"));
        q.reason = NULL; /* not checked */
        assert_decision(&q, .verdict = VERDICT_NEEDS_APPROVAL, .rule = "sudo-one-lead",
                        .duration = 3600, .cap = 7200,
                        .skipped = SKIPPED("rule \"oncall-auto\": alice is not in its requesters"));
        /* The ticket is checked first. */
        q.ticket = NULL;
        q.reason = "x";
        assert_decision(&q, .verdict = VERDICT_REFUSED, .rule = "sudo-one-lead", .duration = 3600,
                        .cap = 7200,
                        .message = "rule \"sudo-one-lead\" needs a ticket matching ^OPS-[0-9]+$",
                        .skipped = SKIPPED("rule \"oncall-auto\": alice is not in its requesters"));
}

static void test_decide_duration(void **state) {
        static const char *const first = "rule \"oncall-auto\": alice is not in its requesters";
        PolicyQuery q = { .requester = &alice,
                          .service = "sudo",
                          .at = week(MON, 10, 0, 0),
                          .ticket = "OPS-1",
                          .duration = 7200 };

        assert_decision(&q, .verdict = VERDICT_NEEDS_APPROVAL, .rule = "sudo-one-lead",
                        .duration = 7200, .cap = 7200, .skipped = SKIPPED(first));
        q.duration = 3 * 3600;
        assert_decision(&q, .verdict = VERDICT_REFUSED, .rule = "sudo-one-lead",
                        .duration = 3 * 3600, .cap = 7200,
                        .message = "requested 3h is longer than the 2h that rule \"sudo-one-lead\" "
                                   "allows",
                        .skipped = SKIPPED(first));
        q.duration = 7201;
        assert_decision(&q, .verdict = VERDICT_REFUSED, .rule = "sudo-one-lead", .duration = 7201,
                        .cap = 7200,
                        .message = "requested 2h1s is longer than the 2h that rule "
                                   "\"sudo-one-lead\" allows",
                        .skipped = SKIPPED(first));
        q.duration = 90;
        assert_decision(&q, .verdict = VERDICT_NEEDS_APPROVAL, .rule = "sudo-one-lead",
                        .duration = 90, .cap = 7200, .skipped = SKIPPED(first));

        /* A default longer than the cap is cut to it, never refused. */
        Policy *p = parse_ok("settings = { default_duration = \"4h\"; };\n"
                             "rules = ( { name = \"r\"; services = [\"sudo\"]; requesters = "
                             "[\"alice\"]; approvers = [\"bob\"]; max_duration = \"1h\"; },\n"
                             "          { name = \"s\"; services = [\"sshd\"]; requesters = "
                             "[\"alice\"]; approvers = [\"bob\"]; } );");
        PolicyDecision d;
        q = (PolicyQuery){ .requester = &alice, .service = "sudo" };
        assert_int_equal(policy_decide(p, &q, &d), 0);
        assert_int_equal(d.verdict, VERDICT_NEEDS_APPROVAL);
        assert_int_equal(d.duration, 3600);
        assert_int_equal(d.cap, 3600);
        policy_decision_done(&d);
        q.service = "sshd";
        assert_int_equal(policy_decide(p, &q, &d), 0);
        assert_int_equal(d.duration, 4 * 3600);
        assert_int_equal(d.cap, 8 * 3600);
        policy_decision_done(&d);
        policy_free(p);
}

static void test_decide_flags(void **state) {
        const PolicyRule *r = policy_find_rule(decide_p, "ssh-two");
        assert_true(r->allow_self_approval);
        assert_int_equal(r->approvals, 2);
        assert_false(policy_find_rule(decide_p, "sudo-one-lead")->allow_self_approval);

        assert_string_equal(policy_verdict_to_string(VERDICT_REFUSED), "refused");
        assert_string_equal(policy_verdict_to_string(VERDICT_NEEDS_APPROVAL), "approval");
        assert_string_equal(policy_verdict_to_string(VERDICT_AUTO_APPROVE), "auto");
        /* Out of range has no name (common/string-table.h). */
        assert_null(policy_verdict_to_string((PolicyVerdict) 42));
        assert_null(policy_verdict_to_string(_POLICY_VERDICT_MAX));
        assert_null(policy_verdict_to_string(_POLICY_VERDICT_INVALID));
        assert_int_equal(policy_verdict_from_string("auto"), VERDICT_AUTO_APPROVE);
        assert_int_equal(policy_verdict_from_string("approval"), VERDICT_NEEDS_APPROVAL);
        assert_int_equal(policy_verdict_from_string("refused"), VERDICT_REFUSED);
        assert_int_equal(policy_verdict_from_string("Auto"), _POLICY_VERDICT_INVALID);
        assert_int_equal(policy_verdict_from_string("auto "), _POLICY_VERDICT_INVALID);
        assert_int_equal(policy_verdict_from_string(""), _POLICY_VERDICT_INVALID);
        assert_int_equal(policy_verdict_from_string(NULL), _POLICY_VERDICT_INVALID);

        /* Done twice is harmless. */
        PolicyDecision d = {};
        policy_decision_done(&d);
        policy_decision_done(&d);
}

static void test_break_glass_decide(void **state) {
        PolicyDecision d;

        assert_int_equal(policy_break_glass_decide(decide_p, &carol, "sudo", 0, &d), 0);
        assert_int_equal(d.verdict, VERDICT_AUTO_APPROVE);
        assert_null(d.rule);
        assert_null(d.message);
        assert_int_equal(d.duration, 900);
        assert_int_equal(d.cap, 900);
        policy_decision_done(&d);

        assert_int_equal(policy_break_glass_decide(decide_p, &carol, "sudo", 600, &d), 0);
        assert_int_equal(d.verdict, VERDICT_AUTO_APPROVE);
        assert_int_equal(d.duration, 600);
        policy_decision_done(&d);
        assert_int_equal(policy_break_glass_decide(decide_p, &carol, "sudo", 900, &d), 0);
        assert_int_equal(d.verdict, VERDICT_AUTO_APPROVE);
        policy_decision_done(&d);

        assert_int_equal(policy_break_glass_decide(decide_p, &carol, "sudo", 901, &d), 0);
        assert_int_equal(d.verdict, VERDICT_REFUSED);
        assert_null(d.rule);
        assert_string_equal(d.message,
                            "requested 15m1s is longer than the 15m that break_glass allows");
        policy_decision_done(&d);

        assert_int_equal(policy_break_glass_decide(decide_p, &alice, "sudo", 0, &d), 0);
        assert_int_equal(d.verdict, VERDICT_REFUSED);
        assert_string_equal(d.message, "alice is not in break_glass.requesters");
        policy_decision_done(&d);

        assert_int_equal(policy_break_glass_decide(decide_p, &carol, "sshd", 0, &d), 0);
        assert_int_equal(d.verdict, VERDICT_REFUSED);
        assert_string_equal(d.message, "break_glass does not cover sshd");
        policy_decision_done(&d);

        Policy *p = parse_ok("rules = ();");
        assert_int_equal(policy_break_glass_decide(p, &carol, "sudo", 0, &d), 0);
        assert_int_equal(d.verdict, VERDICT_REFUSED);
        assert_string_equal(d.message, "break-glass is not enabled: the policy has no break_glass");
        policy_decision_done(&d);
        policy_free(p);
}

/* ---------------------------------------------------------------------------------------
 * Warnings and the version */

static void assert_warnings(const Policy *p, const char *const *expect) {
        size_t n = 0;
        for (; expect[n]; n++)
                if (n >= p->n_warnings || strcmp(p->warnings[n], expect[n]) != 0)
                        fail_msg("warning %zu\n  got:      %s\n  expected: %s", n,
                                 n < p->n_warnings ? p->warnings[n] : "(none)", expect[n]);
        if (n != p->n_warnings)
                fail_msg("%zu warnings, expected %zu; the first extra: %s", p->n_warnings, n,
                         p->warnings[n]);
}

static void test_warnings(void **state) {
        /* root and group root exist; the jit-test-* names do not. */
        Policy *p = parse_ok(
                "rules = (\n"
                "  { name = \"a\"; services = [\"sudo\"];\n"
                "    requesters = [\"%jit-test-nogroup\", \"root\", \"%root\"];\n"
                "    approvers = [\"jit-test-nouser\"]; },\n"
                "  { name = \"b\"; services = [\"sudo\"]; requesters = [\"%jit-test-nogroup\"];\n"
                "    approvers = [\"root\", \"jit-test-nouser\"];\n"
                "    approvals = 3; },\n"
                "  { name = \"c\"; services = [\"sudo\"]; requesters = [\"root\"];\n"
                "    approvers = [\"%root\"]; approvals = 16;\n"
                "    ticket_pattern = \"OPS-[0-9]+$\"; },\n"
                "  { name = \"d\"; services = [\"sudo\"]; requesters = [\"root\"]; approvers = [\"root\"];\n"
                "    ticket_pattern = \"^OPS\"; }\n"
                ");\n"
                "break_glass = { requesters = [\"%jit-test-sre\"]; services = [\"sudo\"]; max_duration = \"5m\"; };\n");
        assert_warnings(
                p,
                (const char *const[]){
                        NAME ":3: group \"jit-test-nogroup\" does not exist",
                        NAME ":4: user \"jit-test-nouser\" does not exist",
                        NAME ":7: rule \"b\": approvals = 3 can never be met: only 2 approvers "
                             "are listed",
                        NAME ":10: rule \"c\": ticket_pattern \"OPS-[0-9]+$\" is not anchored: it "
                             "accepts any ticket that merely contains a match; write \"^...$\" "
                             "to match the whole ticket",
                        NAME ":12: rule \"d\": ticket_pattern \"^OPS\" is not anchored: it "
                             "accepts any ticket that merely contains a match; write \"^...$\" "
                             "to match the whole ticket",
                        NAME ":14: group \"jit-test-sre\" does not exist", NULL });
        policy_free(p);

        /* One approver named, approvals by default: fine. Two needed of one: never. */
        p = parse_ok("rules = ( { name = \"a\"; services = [\"sudo\"]; requesters = [\"root\"];"
                     " approvers = [\"root\"]; } );");
        assert_int_equal(p->n_warnings, 0);
        assert_null(p->warnings);
        policy_free(p);
        p = parse_ok("rules = ( { name = \"a\"; services = [\"sudo\"]; requesters = [\"root\"];\n"
                     " approvers = [\"root\"]; } );\n"
                     "settings = { };");
        assert_int_equal(p->n_warnings, 0);
        policy_free(p);

        /* Many unknown names: warnings are capped, and say so. */
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        assert_non_null(f);
        fputs("rules = ( { name = \"a\"; services = [\"sudo\"]; approvers = [\"root\"]; requesters = [",
              f);
        for (int i = 0; i < 150; i++)
                fprintf(f, "%s\"%%jit-test-g%d\"", i ? ", " : "", i);
        fputs("]; } );", f);
        assert_int_equal(fclose(f), 0);
        p = parse_ok(buf);
        assert_int_equal(p->n_warnings, 101);
        assert_string_equal(p->warnings[99], NAME ":1: group \"jit-test-g99\" does not exist");
        assert_string_equal(p->warnings[100], NAME ": 50 more warnings not shown");
        policy_free(p);
        free(buf);
}

/* A lookup that fails is not an unknown name: the warning says why; out of memory fails. */
static void test_warnings_lookup_failure(void **state) {
        const char *text = "rules = ( { name = \"a\"; services = [\"sudo\"];\n"
                           "  requesters = [\"%dev\"];\n"
                           "  approvers = [\"root\"]; } );";
        Policy *p = NULL;
        char *err = NULL;

        fake_resolver_fail_with(-EIO);
        p = parse_ok(text);
        assert_warnings(p, (const char *const[]){
                                   NAME ":2: cannot look up group \"dev\": Input/output error",
                                   NAME ":3: cannot look up user \"root\": Input/output error",
                                   NULL });
        policy_free(p);
        p = NULL;

        fake_resolver_fail_with(-ENOMEM);
        assert_int_equal(policy_parse(text, strlen(text), NAME, &p, &err), -ENOMEM);
        assert_null(p);
        free(err);
}

static int lookups_succeed(void **state) {
        fake_resolver_fail_with(0);
        return 0;
}

static void test_hash(void **state) {
        Policy *p = parse_ok("rules = ();\n");
        /* sha256sum of the 12 bytes "rules = ();\n" */
        assert_string_equal(p->hash,
                            "6a900e3a3bf0217b38b04275666fb7de487d8b616a2bf9c18cd42d54ab74d7e6");
        policy_free(p);

        /* The exact bytes: a comment or a blank changes the version; only len bytes count. */
        p = parse_ok("rules = ();\n ");
        assert_string_not_equal(p->hash,
                                "6a900e3a3bf0217b38b04275666fb7de487d8b616a2bf9c18cd42d54ab74d7e6");
        assert_int_equal(strlen(p->hash), 64);
        assert_int_equal(strspn(p->hash, "0123456789abcdef"), 64);
        policy_free(p);
        static const char text[] = "rules = ();\n# trailing bytes not given";
        assert_int_equal(policy_parse(text, 12, NAME, &p, NULL), 0);
        assert_string_equal(p->hash,
                            "6a900e3a3bf0217b38b04275666fb7de487d8b616a2bf9c18cd42d54ab74d7e6");
        policy_free(p);
}

/* ---------------------------------------------------------------------------------------
 * JSON */

static void test_decision_json(void **state) {
        PolicyQuery q = { .requester = &alice,
                          .service = "sudo",
                          .at = 1704103200,
                          .ticket = "OPS-1",
                          .duration = 1800 };
        PolicyDecision d;

        assert_int_equal(policy_decide(decide_p, &q, &d), 0);
        json_object *o = policy_decision_to_json(decide_p, &q, &d);
        char expect[1024];
        assert_non_null(o);
        snprintf(expect, sizeof(expect),
                 "{\"verdict\":\"approval\",\"rule\":\"sudo-one-lead\",\"message\":null,"
                 "\"user\":\"alice\",\"service\":\"sudo\",\"duration\":1800,\"cap\":7200,"
                 "\"approvers\":[\"%%sre\"],\"approvals\":1,\"auto_approve\":false,"
                 "\"skipped\":[\"rule \\\"oncall-auto\\\": alice is not in its requesters\"],"
                 "\"command\":null,\"argv\":null,\"run_as\":null,\"command_pattern\":null,"
                 "\"scope\":\"any\","
                 "\"policy_version\":\"%s\",\"at\":\"2024-01-01T10:00:00Z\"}",
                 decide_p->hash);
        assert_string_equal(json_object_to_json_string_ext(
                                    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                            expect);
        json_object_put(o);
        policy_decision_done(&d);
}

static void test_decision_json_shapes(void **state) {
        PolicyQuery q = { .requester = &carol, .service = "sudo", .at = 1704103200 };
        PolicyDecision d;
        json_object *o, *v;

        assert_int_equal(policy_decide(decide_p, &q, &d), 0);
        o = policy_decision_to_json(decide_p, &q, &d);
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "verdict", &v));
        assert_string_equal(json_object_get_string(v), "refused");
        assert_true(json_object_object_get_ex(o, "rule", &v));
        assert_null(v);
        assert_true(json_object_object_get_ex(o, "message", &v));
        assert_string_equal(json_object_get_string(v), "no policy rule lets carol request sudo");
        assert_true(json_object_object_get_ex(o, "approvers", &v));
        assert_int_equal(json_object_array_length(v), 0);
        assert_true(json_object_object_get_ex(o, "approvals", &v));
        assert_int_equal(json_object_get_int(v), 0);
        assert_true(json_object_object_get_ex(o, "skipped", &v));
        assert_int_equal(json_object_array_length(v), 4);
        assert_true(json_object_object_get_ex(o, "cap", &v));
        assert_int_equal(json_object_get_int64(v), 0);
        assert_true(json_object_object_get_ex(o, "policy_version", &v));
        assert_string_equal(json_object_get_string(v), decide_p->hash);
        assert_true(json_object_object_get_ex(o, "at", &v));
        assert_string_equal(json_object_get_string(v), "2024-01-01T10:00:00Z");
        json_object_put(o);
        policy_decision_done(&d);

        /* Auto-approval: no approvals needed. */
        q.requester = &bob;
        assert_int_equal(policy_decide(decide_p, &q, &d), 0);
        o = policy_decision_to_json(decide_p, &q, &d);
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "verdict", &v));
        assert_string_equal(json_object_get_string(v), "auto");
        assert_true(json_object_object_get_ex(o, "auto_approve", &v));
        assert_true(json_object_get_boolean(v));
        assert_true(json_object_object_get_ex(o, "approvals", &v));
        assert_int_equal(json_object_get_int(v), 0);
        assert_true(json_object_object_get_ex(o, "duration", &v));
        assert_int_equal(json_object_get_int64(v), 1800);
        json_object_put(o);
        policy_decision_done(&d);

        /* Break-glass: no rule, allowed without approval. */
        q.requester = &carol;
        assert_int_equal(policy_break_glass_decide(decide_p, &carol, "sudo", 0, &d), 0);
        o = policy_decision_to_json(decide_p, &q, &d);
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "verdict", &v));
        assert_string_equal(json_object_get_string(v), "auto");
        assert_true(json_object_object_get_ex(o, "rule", &v));
        assert_null(v);
        assert_true(json_object_object_get_ex(o, "auto_approve", &v));
        assert_true(json_object_get_boolean(v));
        assert_true(json_object_object_get_ex(o, "cap", &v));
        assert_int_equal(json_object_get_int64(v), 900);
        json_object_put(o);
        policy_decision_done(&d);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_auto_approve),
                cmocka_unit_test(test_allow_self_approval),
                cmocka_unit_test(test_reason_min_length),
                cmocka_unit_test(test_ticket_pattern),
                cmocka_unit_test(test_window_syntax),
                cmocka_unit_test(test_when_in_policy),
                cmocka_unit_test(test_window_contains),
                cmocka_unit_test(test_rule_in_window),
                cmocka_unit_test(test_time_parse),
                cmocka_unit_test(test_break_glass_parse),
                cmocka_unit_test_setup_teardown(test_decide_matching, decide_setup,
                                                decide_teardown),
                cmocka_unit_test_setup_teardown(test_decide_ticket, decide_setup, decide_teardown),
                cmocka_unit_test_setup_teardown(test_decide_reason, decide_setup, decide_teardown),
                cmocka_unit_test_setup_teardown(test_decide_duration, decide_setup,
                                                decide_teardown),
                cmocka_unit_test_setup_teardown(test_decide_flags, decide_setup, decide_teardown),
                cmocka_unit_test_setup_teardown(test_break_glass_decide, decide_setup,
                                                decide_teardown),
                cmocka_unit_test(test_warnings),
                cmocka_unit_test_teardown(test_warnings_lookup_failure, lookups_succeed),
                cmocka_unit_test(test_hash),
                cmocka_unit_test_setup_teardown(test_decision_json, decide_setup, decide_teardown),
                cmocka_unit_test_setup_teardown(test_decision_json_shapes, decide_setup,
                                                decide_teardown),
        };

        /* Windows and reference-week times are local: pin the zone. */
        use_tz("UTC");
        fake_resolver_install(known_users);
        return cmocka_run_group_tests_name("policy-decide", tests, NULL, NULL);
}
