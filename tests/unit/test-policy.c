/* SPDX-License-Identifier: MIT */
/* common/policy.[ch]: parsing policy text (every key, every error with its line), matching,
 * approvers, caps, and the ownership/mode checks of policy_load. */
#include <errno.h>
#include <fcntl.h>
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
#include "names.h"
#include "policy.h"
#include "protocol.h"

#define NAME "t.conf"

/* A rule that is valid on its own, for tests about something else. */
#define RULE_A                                                                                     \
        "{ name = \"a\"; services = [\"sudo\"]; requesters = [\"alice\"]; approvers = [\"bob\"]; }"

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

/* Identities built by hand, as the broker would resolve them through NSS. They are also the
 * only users (and their groups the only groups) that the checks of policy_parse find: the
 * host's accounts play no part. */
static char *alice_groups[] = { (char *) "alice", (char *) "dev" };
static char *bob_groups[] = { (char *) "bob", (char *) "dev", (char *) "oncall" };
static char *carol_groups[] = { (char *) "carol", (char *) "sre-leads" };
static char *dave_groups[] = { (char *) "users" };
static const Identity alice = {
        .name = (char *) "alice", .uid = 1001, .groups = alice_groups, .n_groups = 2
};
static const Identity bob = {
        .name = (char *) "bob", .uid = 1002, .groups = bob_groups, .n_groups = 3
};
static const Identity carol = {
        .name = (char *) "carol", .uid = 1003, .groups = carol_groups, .n_groups = 2
};
static const Identity dave = {
        .name = (char *) "dave", .uid = 1004, .groups = dave_groups, .n_groups = 1
};
static const Identity *const known_users[] = { &alice, &bob, &carol, &dave, NULL };

/* ---------------------------------------------------------------------------------------
 * Parsing: values */

/* Found by the policy fuzz target: glibc's regcomp() doubles its work for every stacked
 * repetition; such patterns are refused before regcomp() sees them. */
static void test_ticket_pattern_complexity_bounded(void **state) {
#define RULE(pat)                                                                                  \
        "rules = ( { name = \"r\"; services = [\"sudo\"]; requesters = [\"alice\"];\n"             \
        "approvers = [\"bob\"]; ticket_pattern = \"" pat "\"; } );\n"
        assert_policy_error(
                RULE("^INC-++++++++++++++++++++++++$"),
                "t.conf:2: rule \"r\": ticket_pattern: \"^INC-++++++++++++++++++++++++$\" "
                "is too complex for a ticket pattern: a repetition stacked on another "
                "(as in \"++\")");
        assert_policy_error(
                RULE("^a*{2}$"),
                "t.conf:2: rule \"r\": ticket_pattern: \"^a*{2}$\" is too complex for a "
                "ticket pattern: a repetition stacked on another (as in \"++\")");
        assert_policy_error(
                RULE("^[0-9]{1,100}$"),
                "t.conf:2: rule \"r\": ticket_pattern: \"^[0-9]{1,100}$\" is too complex "
                "for a ticket pattern: a repetition bound above 64");
        /* Escaped and bracketed "+" are literals, not repetitions. */
        policy_free(parse_ok(RULE("^OPS-[0-9+*]{1,12}\\\\+x?$")));
        policy_free(parse_ok(RULE("^(CHG|INC)-[0-9]+$")));
#undef RULE
}

static void test_minimal_policy_defaults(void **state) {
        Policy *p = parse_ok("rules = ();");

        assert_string_equal(p->path, NAME);
        assert_int_equal(p->default_duration, 3600);
        assert_int_equal(p->max_duration, 8 * 3600);
        assert_int_equal(p->pending_ttl, 3600);
        assert_int_equal(p->max_pending_per_user, 5);
        assert_int_equal(p->max_filings_per_hour, 30);
        assert_int_equal(p->disk_reserve, 64 << 20);
        assert_int_equal(p->disk_reserve_percent, 0);
        assert_int_equal(p->request_retention, 90 * 86400);
        assert_int_equal(p->on_expiry, ON_EXPIRY_TERMINATE);
        assert_null(p->profile.owner);
        assert_null(p->profile.environment);
        assert_null(p->profile.classification);
        assert_null(p->profile.description);
        assert_int_equal(p->n_rules, 0);
        /* No rule: everything is refused. */
        assert_null(policy_match(p, &alice, "sudo"));
        policy_free(p);

        policy_free(NULL);
}

static void test_full_policy(void **state) {
        /* clang-format off */
        static const char text[] =
                "# jit policy\n"                                                          /* 1 */
                "settings = {\n"                                                          /* 2 */
                "  default_duration = \"30m\";\n"                                         /* 3 */
                "  max_duration = \"12h\";\n"                                             /* 4 */
                "  pending_ttl = \"2h\";\n"                                               /* 5 */
                "  max_pending_per_user = 3;\n"                                           /* 6 */
                "  on_expiry = \"warn\";\n"                                               /* 7 */
                "};\n"                                                                    /* 8 */
                "profile = {\n"                                                           /* 9 */
                "  owner = \"payments-team\";\n"                                          /* 10 */
                "  environment = \"production\";\n"                                       /* 11 */
                "  classification = \"restricted\";\n"                                    /* 12 */
                "  description = \"Card vault, PCI scope\";\n"                            /* 13 */
                "};\n"                                                                    /* 14 */
                "rules = (\n"                                                             /* 15 */
                "  { name = \"sudo-one-lead\"; services = [\"sudo\"];\n"                  /* 16 */
                "    requesters = [\"%developers\", \"alice\"];\n"                        /* 17 */
                "    approvers = [\"%sre-leads\"]; approvals = 2; max_duration = \"2h\"; },\n" /* 18 */
                "  { name = \"ssh.any_1\"; services = (\"sudo\", \"sshd\");\n"             /* 19 */
                "    requesters = (\"%oncall\"); approvers = (\"carol\", \"%sre\"); }\n"     /* 20 */
                ");\n";                                                                   /* 21 */
        /* clang-format on */
        Policy *p = parse_ok(text);

        assert_int_equal(p->default_duration, 1800);
        assert_int_equal(p->max_duration, 12 * 3600);
        assert_int_equal(p->pending_ttl, 7200);
        assert_int_equal(p->max_pending_per_user, 3);
        assert_int_equal(p->on_expiry, ON_EXPIRY_WARN);
        assert_string_equal(p->profile.owner, "payments-team");
        assert_string_equal(p->profile.environment, "production");
        assert_string_equal(p->profile.classification, "restricted");
        assert_string_equal(p->profile.description, "Card vault, PCI scope");

        assert_int_equal(p->n_rules, 2);
        const PolicyRule *r = &p->rules[0];
        assert_string_equal(r->name, "sudo-one-lead");
        assert_int_equal(r->line, 16);
        assert_int_equal(r->services.n, 1);
        assert_string_equal(r->services.items[0], "sudo");
        assert_int_equal(r->requesters.n, 2);
        assert_string_equal(r->requesters.items[0], "%developers");
        assert_string_equal(r->requesters.items[1], "alice");
        assert_int_equal(r->approvers.n, 1);
        assert_string_equal(r->approvers.items[0], "%sre-leads");
        assert_int_equal(r->approvals, 2);
        assert_int_equal(r->max_duration, 7200);

        r = &p->rules[1];
        assert_string_equal(r->name, "ssh.any_1");
        assert_int_equal(r->line, 19);
        assert_int_equal(r->services.n, 2);
        assert_string_equal(r->services.items[0], "sudo");
        assert_string_equal(r->services.items[1], "sshd");
        assert_int_equal(r->requesters.n, 1);
        assert_string_equal(r->requesters.items[0], "%oncall");
        assert_int_equal(r->approvers.n, 2);
        assert_string_equal(r->approvers.items[0], "carol");
        assert_string_equal(r->approvers.items[1], "%sre");
        assert_int_equal(r->approvals, 1);    /* default */
        assert_int_equal(r->max_duration, 0); /* default: the settings' cap */
        policy_free(p);
}

static void test_settings_values(void **state) {
        static const struct {
                const char *on_expiry;
                OnExpiry value;
        } modes[] = {
                { "terminate", ON_EXPIRY_TERMINATE },
                { "warn", ON_EXPIRY_WARN },
                { "none", ON_EXPIRY_NONE },
        };
        char text[256];
        Policy *p;

        for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
                snprintf(text, sizeof(text), "settings = { on_expiry = \"%s\"; };\nrules = ();",
                         modes[i].on_expiry);
                p = parse_ok(text);
                assert_int_equal(p->on_expiry, modes[i].value);
                assert_string_equal(on_expiry_to_string(p->on_expiry), modes[i].on_expiry);
                policy_free(p);
        }

        /* Bounds of max_pending_per_user, and libconfig's 64-bit integer form. */
        p = parse_ok("settings = { max_pending_per_user = 1; }; rules = ();");
        assert_int_equal(p->max_pending_per_user, 1);
        policy_free(p);
        p = parse_ok("settings = { max_pending_per_user = 1000; }; rules = ();");
        assert_int_equal(p->max_pending_per_user, 1000);
        policy_free(p);
        p = parse_ok("settings = { max_pending_per_user = 7L; }; rules = ();");
        assert_int_equal(p->max_pending_per_user, 7);
        policy_free(p);
        p = parse_ok("settings = { max_pending_per_user = 0x10; }; rules = ();");
        assert_int_equal(p->max_pending_per_user, 16);
        policy_free(p);

        /* Durations up to the 366-day maximum; default may equal max. */
        p = parse_ok(
                "settings = { default_duration = \"366d\"; max_duration = \"366d\"; pending_ttl = \"90s\"; };"
                "rules = ();");
        assert_int_equal(p->default_duration, 366ULL * 86400);
        assert_int_equal(p->max_duration, 366ULL * 86400);
        assert_int_equal(p->pending_ttl, 90);
        policy_free(p);

        /* An empty settings group keeps every default; the order of top-level keys is free. */
        p = parse_ok("rules = ();\nsettings = { };\nprofile = { };");
        assert_int_equal(p->default_duration, 3600);
        assert_int_equal(p->max_duration, 8 * 3600);
        assert_null(p->profile.owner);
        policy_free(p);
}

static void test_audit_settings(void **state) {
        (void) state;
        Policy *p = NULL;
        char *err = NULL;
        const char *text =
                "settings = { audit_retention = \"90d\"; audit_group = \"sec-audit\"; };\nrules = ();";
        assert_int_equal(policy_parse(text, strlen(text), NAME, &p, &err), 0);
        assert_int_equal(p->audit_retention, 90 * 86400);
        assert_string_equal(p->audit_group, "sec-audit");
        policy_free(p);
        assert_policy_error(
                "settings = { audit_retention = \"forever\"; };\nrules = ();",
                NAME ":1: settings.audit_retention: \"forever\" is not a duration (expected e.g. "
                     "\"90s\", \"30m\", \"1h30m\", \"2h\", \"1d\")");
        assert_policy_error("settings = { audit_group = \"no such group!\"; };\nrules = ();", NAME
                            ":1: settings.audit_group: \"no such group!\" is not a group name");
}

/* What keeps the database bounded: filings per hour, the free-space reserve, how long
 * ended requests stay live. */
static void test_bounds_settings(void **state) {
        Policy *p = parse_ok("settings = { max_filings_per_hour = 1; disk_reserve = \"512K\";\n"
                             "  request_retention = \"30d\"; };\nrules = ();");
        assert_int_equal(p->max_filings_per_hour, 1);
        assert_int_equal(p->disk_reserve, 512 * 1024);
        assert_int_equal(p->disk_reserve_percent, 0);
        assert_int_equal(p->request_retention, 30 * 86400);
        policy_free(p);

        p = parse_ok("settings = { max_filings_per_hour = 10000; disk_reserve = \"5%\";\n"
                     "  request_retention = \"forever\"; };\nrules = ();");
        assert_int_equal(p->max_filings_per_hour, 10000);
        assert_int_equal(p->disk_reserve, 0);
        assert_int_equal(p->disk_reserve_percent, 5);
        assert_int_equal(p->request_retention, 0);
        policy_free(p);

        static const struct {
                const char *value;
                uint64_t bytes;
        } sizes[] = { { "0", 0 },
                      { "64M", 64ULL << 20 },
                      { "1G", 1ULL << 30 },
                      { "2T", 2ULL << 40 },
                      { "16T", 16ULL << 40 } };
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                char text[128];
                snprintf(text, sizeof(text), "settings = { disk_reserve = \"%s\"; };\nrules = ();",
                         sizes[i].value);
                p = parse_ok(text);
                assert_int_equal(p->disk_reserve, sizes[i].bytes);
                assert_int_equal(p->disk_reserve_percent, 0);
                policy_free(p);
        }

        assert_policy_error("settings = {\n  max_filings_per_hour = 0; };\nrules = ();",
                            NAME ":2: settings.max_filings_per_hour: 0 is out of range (expected "
                                 "1..10000)");
        assert_policy_error("settings = { max_filings_per_hour = 10001; };\nrules = ();",
                            NAME ":1: settings.max_filings_per_hour: 10001 is out of range "
                                 "(expected 1..10000)");
        assert_policy_error("settings = { max_filings_per_hour = \"30\"; };\nrules = ();",
                            NAME ":1: settings.max_filings_per_hour: expected an integer");

        static const char *const bad_sizes[] = { "64MB", "64m",  "64", "M", "-1M",
                                                 "1.5G", " 64M", "0M", "" };
        for (size_t i = 0; i < ELEMENTSOF(bad_sizes); i++) {
                char text[128], want[512];
                snprintf(text, sizeof(text),
                         "settings = {\n  disk_reserve = \"%s\"; };\nrules = ();", bad_sizes[i]);
                snprintf(want, sizeof(want),
                         NAME ":2: settings.disk_reserve: \"%s\" is not a size (expected \"0\", a "
                              "whole number with K, M, G or T, e.g. \"64M\", or a percentage "
                              "such as \"5%%\")",
                         bad_sizes[i]);
                assert_policy_error(text, want);
        }
        assert_policy_error("settings = { disk_reserve = \"51%\"; };\nrules = ();",
                            NAME ":1: settings.disk_reserve: \"51%\" is more than 50% of the "
                                 "file system");
        assert_policy_error("settings = { disk_reserve = \"17T\"; };\nrules = ();",
                            NAME ":1: settings.disk_reserve: \"17T\" is larger than the maximum "
                                 "of 16T");
        assert_policy_error("settings = { disk_reserve = 64; };\nrules = ();",
                            NAME ":1: settings.disk_reserve: expected a size string such as "
                                 "\"64M\", \"1G\" or \"5%\"");

        static const char *const bad_retention[] = { "\"never\"", "\"0s\"", "\"367d\"", "90" };
        for (size_t i = 0; i < ELEMENTSOF(bad_retention); i++) {
                char text[128];
                snprintf(text, sizeof(text),
                         "settings = {\n\n  request_retention = %s; };\nrules = ();",
                         bad_retention[i]);
                assert_policy_error(text, NAME ":3: settings.request_retention: expected a "
                                               "duration such as \"30d\" or \"90d\" (at most "
                                               "366d), or \"forever\"");
        }
}

static void test_settings_errors(void **state) {
        assert_policy_error("settings = 5;\nrules = ();",
                            NAME ":1: settings: expected a group { ... }");
        assert_policy_error("settings = ( );\nrules = ();",
                            NAME ":1: settings: expected a group { ... }");
        assert_policy_error(
                "settings = {\n  max_durration = \"1h\";\n};\nrules = ();", NAME
                ":2: settings: unknown key 'max_durration' (expected one of: default_duration, "
                "max_duration, pending_ttl, max_pending_per_user, on_expiry, audit_retention, "
                "audit_group, expiry_warning, max_filings_per_hour, disk_reserve, "
                "request_retention, allowed_signers)");

        assert_policy_error(
                "settings = {\n  default_duration = \"1x\";\n};\nrules = ();", NAME
                ":2: settings.default_duration: \"1x\" is not a duration (expected e.g. \"90s\", "
                "\"30m\", \"1h30m\", \"2h\", \"1d\")");
        assert_policy_error(
                "settings = {\n\n  max_duration = \"0s\";\n};\nrules = ();",
                NAME ":3: settings.max_duration: \"0s\" is not a duration (expected e.g. \"90s\", "
                     "\"30m\", \"1h30m\", \"2h\", \"1d\")");
        assert_policy_error(
                "settings = { pending_ttl = \"1h \"; };\nrules = ();",
                NAME ":1: settings.pending_ttl: \"1h \" is not a duration (expected e.g. \"90s\", "
                     "\"30m\", \"1h30m\", \"2h\", \"1d\")");
        assert_policy_error(
                "settings = { pending_ttl = 3600; };\nrules = ();", NAME
                ":1: settings.pending_ttl: expected a duration string such as \"30m\" or \"1h30m\"");
        assert_policy_error(
                "settings = { max_duration = \"367d\"; };\nrules = ();",
                NAME ":1: settings.max_duration: \"367d\" is longer than the maximum of 366d");

        assert_policy_error(
                "settings = { max_pending_per_user = 0; };\nrules = ();",
                NAME ":1: settings.max_pending_per_user: 0 is out of range (expected 1..1000)");
        assert_policy_error(
                "settings = { max_pending_per_user = 1001; };\nrules = ();",
                NAME ":1: settings.max_pending_per_user: 1001 is out of range (expected 1..1000)");
        assert_policy_error(
                "settings = { max_pending_per_user = -1; };\nrules = ();",
                NAME ":1: settings.max_pending_per_user: -1 is out of range (expected 1..1000)");
        assert_policy_error(
                "settings = { max_pending_per_user = 4294967301L; };\nrules = ();", NAME
                ":1: settings.max_pending_per_user: 4294967301 is out of range (expected 1..1000)");
        assert_policy_error("settings = { max_pending_per_user = \"5\"; };\nrules = ();",
                            NAME ":1: settings.max_pending_per_user: expected an integer");
        assert_policy_error("settings = { max_pending_per_user = 5.0; };\nrules = ();",
                            NAME ":1: settings.max_pending_per_user: expected an integer");
        assert_policy_error("settings = { max_pending_per_user = true; };\nrules = ();",
                            NAME ":1: settings.max_pending_per_user: expected an integer");

        assert_policy_error("settings = { on_expiry = \"kill\"; };\nrules = ();", NAME
                            ":1: settings.on_expiry: expected \"terminate\", \"warn\" or \"none\"");
        assert_policy_error("settings = { on_expiry = \"Terminate\"; };\nrules = ();", NAME
                            ":1: settings.on_expiry: expected \"terminate\", \"warn\" or \"none\"");
        assert_policy_error("settings = { on_expiry = 1; };\nrules = ();", NAME
                            ":1: settings.on_expiry: expected \"terminate\", \"warn\" or \"none\"");

        /* The relation between the two, reported at the settings group. */
        assert_policy_error(
                "\nsettings = {\n  default_duration = \"2h\";\n  max_duration = \"1h\";\n};\nrules = ();",
                NAME ":2: settings: default_duration is longer than max_duration");
        /* Lowering max_duration below the default default (1h) needs default_duration too. */
        assert_policy_error("settings = { max_duration = \"30m\"; };\nrules = ();",
                            NAME ":1: settings: default_duration is longer than max_duration");
        assert_policy_error("settings = { default_duration = \"9h\"; };\nrules = ();",
                            NAME ":1: settings: default_duration is longer than max_duration");
}

static void test_profile(void **state) {
        char text[1024];
        char long_value[POLICY_TEXT_MAX + 2];
        Policy *p;

        p = parse_ok("profile = { owner = \"team\"; };\nrules = ();");
        assert_string_equal(p->profile.owner, "team");
        assert_null(p->profile.environment);
        policy_free(p);

        /* At the length limit, then one byte over. */
        memset(long_value, 'x', POLICY_TEXT_MAX);
        long_value[POLICY_TEXT_MAX] = '\0';
        snprintf(text, sizeof(text), "profile = { description = \"%s\"; };\nrules = ();",
                 long_value);
        p = parse_ok(text);
        assert_int_equal(strlen(p->profile.description), POLICY_TEXT_MAX);
        policy_free(p);
        long_value[POLICY_TEXT_MAX] = 'x';
        long_value[POLICY_TEXT_MAX + 1] = '\0';
        snprintf(text, sizeof(text), "profile = {\n  description = \"%s\";\n};\nrules = ();",
                 long_value);
        assert_policy_error(text, NAME ":2: profile.description: longer than 256 bytes");

        assert_policy_error("profile = \"prod\";\nrules = ();",
                            NAME ":1: profile: expected a group { ... }");
        assert_policy_error("profile = {\n  team = \"x\";\n};\nrules = ();", NAME
                            ":2: profile: unknown key 'team' (expected one of: owner, environment, "
                            "classification, description, labels)");
        assert_policy_error("profile = { owner = 5; };\nrules = ();",
                            NAME ":1: profile.owner: expected a string");
        assert_policy_error("profile = { environment = [\"prod\"]; };\nrules = ();",
                            NAME ":1: profile.environment: expected a string");
        assert_policy_error("profile = { classification = { level = 1; }; };\nrules = ();",
                            NAME ":1: profile.classification: expected a string");
}

/* ---------------------------------------------------------------------------------------
 * Parsing: errors outside settings and profile */

static void test_syntax_errors(void **state) {
        assert_policy_error("rules = (", NAME ":1: syntax error");
        assert_policy_error("rules = ();\n\nsettings = {\n  max_duration = \"1h\"\n  x = ;\n};",
                            NAME ":5: syntax error");
        assert_policy_error("rules = ();\nrules = ();", NAME ":2: duplicate setting name");
        assert_policy_error("rules = ( " RULE_A
                            " );\nsettings = { pending_ttl = \"1h\"; pending_ttl = \"2h\"; };",
                            NAME ":2: duplicate setting name");
        assert_policy_error("rules = (\n  { name = \"a\"; services = [\"sudo\", 5]; }\n);",
                            NAME ":2: mismatched element type in array");
}

static void test_top_level_errors(void **state) {
        assert_policy_error("",
                            NAME ": no 'rules' list: a policy without rules refuses every request; "
                                 "write rules = ( ); to say so");
        assert_policy_error("settings = { };",
                            NAME ": no 'rules' list: a policy without rules refuses every request; "
                                 "write rules = ( ); to say so");
        assert_policy_error("rules = ();\n\nfoo = 1;",
                            NAME ":3: policy: unknown key 'foo' (expected one of: settings, "
                                 "profile, rules, break_glass, notify, fleet)");
        assert_policy_error("Rules = ();",
                            NAME ":1: policy: unknown key 'Rules' (expected one of: settings, "
                                 "profile, rules, break_glass, notify, fleet)");
        assert_policy_error("rules = ();\nbreak_glass = { requesters = [\"%sre\"]; };",
                            NAME ":2: break_glass: missing 'services'");
        assert_policy_error("rules = 5;", NAME ":1: rules: expected a list ( { ... }, { ... } )");
        assert_policy_error("rules = [];", NAME ":1: rules: expected a list ( { ... }, { ... } )");
        assert_policy_error("\nrules = { };",
                            NAME ":2: rules: expected a list ( { ... }, { ... } )");
        assert_policy_error("rules = \"none\";",
                            NAME ":1: rules: expected a list ( { ... }, { ... } )");
}

static void test_nul_byte(void **state) {
        static const char text[] = "rules = ();\0# hidden";
        Policy *p = NULL;
        char *err = NULL;

        assert_int_equal(policy_parse(text, sizeof(text) - 1, NAME, &p, &err), -EINVAL);
        assert_null(p);
        assert_string_equal(err, NAME ": the file contains a NUL byte");
        free(err);
}

static void test_include_refused(void **state) {
        assert_policy_error("@include \"/etc/jit/more.conf\"\nrules = ();",
                            NAME ":1: @include is not allowed in a policy file");
        assert_policy_error("rules = ();\n\n  @include \"/etc/passwd\"\n",
                            NAME ":3: @include is not allowed in a policy file");
        assert_policy_error("rules = ();\n\t @include \"x\"",
                            NAME ":2: @include is not allowed in a policy file");
        /* Refused before libconfig sees it, even when the file would be a syntax error. */
        assert_policy_error("rules = (\n@include \"x\"",
                            NAME ":2: @include is not allowed in a policy file");
        /* Text that merely mentions it is fine. */
        Policy *p = parse_ok("profile = { description = \"no @include here\"; };\nrules = ();");
        assert_string_equal(p->profile.description, "no @include here");
        policy_free(p);
}

static void test_rule_structure_errors(void **state) {
        assert_policy_error("rules = ( 5 );",
                            NAME ":1: rules: entry 1: expected a group { name = ...; ... }");
        /* (libconfig dates a list element by the token after it, so keep ");" on its line.) */
        assert_policy_error("rules = (\n  " RULE_A ",\n  \"b\" );",
                            NAME ":3: rules: entry 2: expected a group { name = ...; ... }");
        assert_policy_error("rules = (\n  " RULE_A ",\n  { services = [\"sudo\"]; }\n);",
                            NAME ":3: rules: entry 2 has no name");
        assert_policy_error("rules = ( { name = 5; } );", NAME ":1: rule name: expected a string");
        assert_policy_error(
                "rules = ( { name = \"two words\"; } );", NAME
                ":1: rule name \"two words\": use letters, digits, '.', '_' and '-' only (at most 64)");
        assert_policy_error(
                "rules = ( { name = \"\"; } );",
                NAME ":1: rule name \"\": use letters, digits, '.', '_' and '-' only (at most 64)");
        assert_policy_error(
                "rules = ( { name = \"r\\n\"; } );", NAME
                ":1: rule name \"r\n\": use letters, digits, '.', '_' and '-' only (at most 64)");
        assert_policy_error("rules = (\n  " RULE_A ",\n\n  { name = \"a\"; }\n);",
                            NAME ":4: rule \"a\" is defined twice (first at line 2)");
        assert_policy_error(
                "rules = ( { name = \"r\"; color = \"red\"; } );", NAME
                ":1: rule \"r\": unknown key 'color' (expected one of: name, services, requesters, "
                "approvers, approvals, max_duration, auto_approve, when, ticket_pattern, "
                "reason_min_length, allow_self_approval, signed, commands, run_as, scope, hosts)");
}

/* signed = true|false; settings.allowed_signers. */
static void test_signed_approvals(void **state) {
        (void) state;
        Policy *p =
                parse_ok("rules = ( { name = \"r\"; services = [\"sudo\"]; requesters = [\"a\"];\n"
                         "  approvers = [\"b\"]; signed = false; } );\n");
        assert_int_equal(p->rules[0].signed_approvals, POLICY_SIGNED_NO);
        assert_false(policy_rule_requires_signature(&p->rules[0], true));
        assert_string_equal(policy_allowed_signers(p), "/etc/jit/allowed_signers");
        policy_free(p);
        p = parse_ok("settings = { allowed_signers = \"/etc/jit/approvers.keys\"; };\nrules = ();");
        assert_string_equal(policy_allowed_signers(p), "/etc/jit/approvers.keys");
        policy_free(p);
        assert_policy_error(
                "settings = { allowed_signers = \"keys\"; };\nrules = ();",
                NAME ":1: settings.allowed_signers: expected an absolute path without spaces");
        assert_policy_error(
                "rules = ( { name = \"r\"; services = [\"sudo\"]; requesters = [\"a\"];\n"
                "  auto_approve = true; signed = true; } );",
                NAME ":2: rule \"r\": signed: has no effect with auto_approve = true "
                     "(nobody approves)");
        assert_policy_error(
                "rules = ( { name = \"r\"; services = [\"sudo\"]; requesters = [\"a\"];\n"
                "  approvers = [\"b\"]; signed = \"yes\"; } );",
                NAME ":2: rule \"r\": signed: expected true or false");
}

static void test_rule_name_length(void **state) {
        char name[POLICY_TEXT_MAX + 2];
        char text[1024], expect[1024];
        Policy *p;

        memset(name, 'n', 64);
        name[64] = '\0';
        snprintf(
                text, sizeof(text),
                "rules = ( { name = \"%s\"; services = [\"sudo\"]; requesters = [\"a\"]; approvers = [\"b\"]; } );",
                name);
        p = parse_ok(text);
        assert_string_equal(p->rules[0].name, name);
        assert_ptr_equal(policy_find_rule(p, name), &p->rules[0]);
        policy_free(p);

        name[64] = 'n';
        name[65] = '\0';
        snprintf(text, sizeof(text), "rules = ( { name = \"%s\"; } );", name);
        snprintf(expect, sizeof(expect),
                 NAME
                 ":1: rule name \"%s\": use letters, digits, '.', '_' and '-' only (at most 64)",
                 name);
        assert_policy_error(text, expect);

        memset(name, 'n', POLICY_TEXT_MAX + 1);
        name[POLICY_TEXT_MAX + 1] = '\0';
        snprintf(text, sizeof(text), "rules = ( { name = \"%s\"; } );", name);
        assert_policy_error(text, NAME ":1: rule name: longer than 256 bytes");
}

/* Every rule key listed in docs/policy.md is accepted (each one's values and errors are in
 * test-policy-decide.c). */
static void test_rule_all_keys(void **state) {
        static const char text[] =
                "rules = (\n"
                "  { name = \"r\"; services = [\"sudo\"]; requesters = [\"a\"];\n"
                "    approvers = [\"b\", \"c\"]; approvals = 2; max_duration = \"2h\";\n"
                "    auto_approve = false; when = [\"Mon-Fri 08:00-20:00\"];\n"
                "    ticket_pattern = \"^OPS-[0-9]+$\"; reason_min_length = 10;\n"
                "    allow_self_approval = true; signed = true; },\n"
                "  { name = \"auto\"; services = [\"sudo\"]; requesters = [\"a\"];\n"
                "    auto_approve = true; }\n"
                ");\n"
                "break_glass = { requesters = [\"%sre\"]; services = [\"sudo\"]; max_duration = \"15m\"; };\n";
        Policy *p = parse_ok(text);
        const PolicyRule *r = &p->rules[0];

        assert_false(r->auto_approve);
        assert_int_equal(r->when.n, 1);
        assert_string_equal(r->when.items[0], "Mon-Fri 08:00-20:00");
        assert_string_equal(r->ticket_pattern, "^OPS-[0-9]+$");
        assert_non_null(r->ticket_regex);
        assert_int_equal(r->reason_min_length, 10);
        assert_true(r->allow_self_approval);
        assert_int_equal(r->signed_approvals, POLICY_SIGNED_YES);
        assert_true(policy_rule_requires_signature(r, false));
        r = &p->rules[1];
        assert_true(r->auto_approve);
        assert_int_equal(r->approvers.n, 0);
        assert_int_equal(r->when.n, 0);
        assert_null(r->ticket_pattern);
        assert_null(r->ticket_regex);
        assert_int_equal(r->reason_min_length, 0);
        assert_false(r->allow_self_approval);
        assert_int_equal(r->signed_approvals, POLICY_SIGNED_DEFAULT);
        /* Unsaid: required for fleet requests only. */
        assert_false(policy_rule_requires_signature(r, false));
        assert_true(policy_rule_requires_signature(r, true));
        assert_true(p->break_glass.enabled);
        assert_int_equal(p->break_glass.max_duration, 900);
        policy_free(p);
}

static void test_rule_list_errors(void **state) {
        static const char *const lists[] = { "services", "requesters", "approvers" };
        char text[512], expect[256];

        /* Each list is required, must be a non-empty list of strings. */
        for (size_t i = 0; i < 3; i++) {
                const char *others[3] = { "services = [\"sudo\"];", "requesters = [\"alice\"];",
                                          "approvers = [\"bob\"];" };
                others[i] = "";
                snprintf(text, sizeof(text), "rules = (\n  { name = \"r\"; %s %s %s }\n);",
                         others[0], others[1], others[2]);
                snprintf(expect, sizeof(expect), NAME ":2: rule \"r\": missing '%s'%s", lists[i],
                         i == 2 ? " (or auto_approve = true)" : "");
                assert_policy_error(text, expect);

                const char *base[3] = { "services = [\"sudo\"];", "requesters = [\"alice\"];",
                                        "approvers = [\"bob\"];" };
                static const struct {
                        const char *value;
                        const char *message;
                } bad[] = {
                        { "\"sudo\"", "expected a list of strings like [\"a\", \"b\"]" },
                        { "{ x = 1; }", "expected a list of strings like [\"a\", \"b\"]" },
                        { "[]", "must not be empty" },
                        { "()", "must not be empty" },
                        { "(\"sudo\", 5)", "entry 2 is not a string" },
                        { "([\"sudo\"])", "entry 1 is not a string" },
                };
                for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
                        char field[64];
                        snprintf(field, sizeof(field), "%s = %s;", lists[i], bad[j].value);
                        const char *f[3] = { base[0], base[1], base[2] };
                        f[i] = field;
                        snprintf(text, sizeof(text), "rules = (\n  { name = \"r\"; %s %s %s }\n);",
                                 f[0], f[1], f[2]);
                        snprintf(expect, sizeof(expect), NAME ":2: rule \"r\": %s: %s", lists[i],
                                 bad[j].message);
                        assert_policy_error(text, expect);
                }
        }

        /* Entry validity, reported at the entry's line. */
        assert_policy_error(
                "rules = ( { name = \"r\";\n  services = [\"sudo\",\n  \"su do\"]; } );",
                NAME ":3: rule \"r\": services: \"su do\" is not a PAM service name");
        assert_policy_error("rules = ( { name = \"r\"; services = [\"sudo/x\"]; } );",
                            NAME ":1: rule \"r\": services: \"sudo/x\" is not a PAM service name");
        assert_policy_error(
                "rules = ( { name = \"r\"; services = [\"sudo\"]; requesters = [\"%\"]; } );",
                NAME ":1: rule \"r\": requesters: \"%\" is not a user or %group");
        assert_policy_error(
                "rules = ( { name = \"r\"; services = [\"sudo\"]; requesters = [\"-alice\"]; } );",
                NAME ":1: rule \"r\": requesters: \"-alice\" is not a user or %group");
        assert_policy_error(
                "rules = ( { name = \"r\"; services = [\"sudo\"]; requesters = [\"%%dev\"]; } );",
                NAME ":1: rule \"r\": requesters: \"%%dev\" is not a user or %group");
        assert_policy_error(
                "rules = ( { name = \"r\"; services = [\"sudo\"]; requesters = [\"al ice\"]; } );",
                NAME ":1: rule \"r\": requesters: \"al ice\" is not a user or %group");
        assert_policy_error(
                "rules = ( { name = \"r\"; services = [\"sudo\"]; requesters = [\"a\"];\n"
                "  approvers = [\"%sre\", \"root:x\"]; } );",
                NAME ":2: rule \"r\": approvers: \"root:x\" is not a user or %group");
        assert_policy_error(
                "rules = ( { name = \"r\"; services = [\"sudo\"]; requesters = [\"a\"];\n"
                "  approvers = [\"\"]; } );",
                NAME ":2: rule \"r\": approvers: \"\" is not a user or %group");

        /* One entry per line, as people write long lists. */
        assert_policy_error(
                "rules = ( { name = \"r\"; services = [\"sudo\"]; approvers = [\"b\"];\n"
                "  requesters = [\n"
                "    \"%developers\",\n"
                "    \"al ice\",\n"
                "    \"bob\"\n"
                "  ]; } );",
                NAME ":4: rule \"r\": requesters: \"al ice\" is not a user or %group");

        /* Duplicates. */
        assert_policy_error(
                "rules = ( { name = \"r\"; services = [\"sudo\", \"sshd\", \"sudo\"]; } );",
                NAME ":1: rule \"r\": services: \"sudo\" is listed twice");
        assert_policy_error(
                "rules = ( { name = \"r\"; services = [\"sudo\"]; requesters = [\"a\"];\n"
                "  approvers = [\"%ops\",\n \"%ops\"]; } );",
                NAME ":3: rule \"r\": approvers: \"%ops\" is listed twice");
}

static void test_rule_approvals_and_duration(void **state) {
        Policy *p;

        p = parse_ok(
                "rules = ( { name = \"r\"; services = [\"sudo\"]; requesters = [\"a\"]; approvers = [\"%b\"];"
                " approvals = 16; max_duration = \"8h\"; } );");
        assert_int_equal(p->rules[0].approvals, 16);
        assert_int_equal(p->rules[0].max_duration, 8 * 3600);
        policy_free(p);

        assert_policy_error(
                "rules = ( { name = \"r\"; services = [\"sudo\"]; requesters = [\"a\"]; approvers = [\"b\"];\n"
                "  approvals = 0; } );",
                NAME ":2: rule \"r\": approvals: 0 is out of range (expected 1..16)");
        assert_policy_error(
                "rules = ( { name = \"r\"; services = [\"sudo\"]; requesters = [\"a\"]; approvers = [\"b\"];\n"
                "  approvals = 17; } );",
                NAME ":2: rule \"r\": approvals: 17 is out of range (expected 1..16)");
        assert_policy_error(
                "rules = ( { name = \"r\"; services = [\"sudo\"]; requesters = [\"a\"]; approvers = [\"b\"];\n"
                "  approvals = \"2\"; } );",
                NAME ":2: rule \"r\": approvals: expected an integer");
        assert_policy_error(
                "rules = ( { name = \"r\"; services = [\"sudo\"]; requesters = [\"a\"]; approvers = [\"b\"];\n"
                "  max_duration = \"2 h\"; } );",
                NAME
                ":2: rule \"r\": max_duration: \"2 h\" is not a duration (expected e.g. \"90s\", "
                "\"30m\", \"1h30m\", \"2h\", \"1d\")");
        assert_policy_error(
                "rules = ( { name = \"r\"; services = [\"sudo\"]; requesters = [\"a\"]; approvers = [\"b\"];\n"
                "  max_duration = 7200; } );",
                NAME ":2: rule \"r\": max_duration: expected a duration string such as \"30m\" or "
                     "\"1h30m\"");
        assert_policy_error(
                "rules = ( { name = \"r\"; services = [\"sudo\"]; requesters = [\"a\"]; approvers = [\"b\"];\n"
                "  max_duration = \"1000d\"; } );",
                NAME ":2: rule \"r\": max_duration: \"1000d\" is longer than the maximum of 366d");
        /* Longer than the settings' cap: reported at the rule. */
        assert_policy_error("rules = (\n  " RULE_A
                            ",\n  { name = \"r\"; services = [\"sudo\"]; requesters = [\"a\"];\n"
                            "    approvers = [\"b\"]; max_duration = \"8h1s\"; }\n);",
                            NAME
                            ":3: rule \"r\": max_duration is longer than settings.max_duration");
        assert_policy_error(
                "settings = { default_duration = \"10m\"; max_duration = \"30m\"; };\n"
                "rules = ( { name = \"r\"; services = [\"sudo\"]; requesters = [\"a\"];\n"
                "    approvers = [\"b\"]; max_duration = \"31m\"; } );",
                NAME ":2: rule \"r\": max_duration is longer than settings.max_duration");
}

static void test_first_error_wins(void **state) {
        /* Several mistakes: the first one in parse order is reported, with its own line. */
        assert_policy_error(
                "settings = {\n  on_expiry = \"x\";\n};\nprofile = { owner = 1; };\nrules = ( 5 );",
                NAME ":2: settings.on_expiry: expected \"terminate\", \"warn\" or \"none\"");
        assert_policy_error(
                "rules = (\n  { name = \"a b\"; },\n  { name = \"c d\"; }\n);", NAME
                ":2: rule name \"a b\": use letters, digits, '.', '_' and '-' only (at most 64)");
}

static void test_error_message_optional(void **state) {
        Policy *p = NULL;

        assert_int_equal(policy_parse("rules = 5;", 10, NAME, &p, NULL), -EINVAL);
        assert_null(p);
        assert_int_equal(policy_parse("rules = (", 9, NAME, &p, NULL), -EINVAL);
        assert_int_equal(policy_parse("@include \"x\"", 12, NAME, &p, NULL), -EINVAL);
        assert_int_equal(policy_parse("rules = ();", 11, NAME, &p, NULL), 0);
        assert_non_null(p);
        policy_free(p);
}

/* Writes a rules list with n entries in the given list, or n rules. */
static char *policy_with_list(const char *list, size_t n) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert_non_null(f);
        fprintf(f,
                "rules = ( { name = \"r\"; services = [\"sudo\"]; approvers = [\"root\"]; %s = [",
                list);
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%s\"u%zu\"", i ? ", " : "", i);
        fprintf(f, "]; } );\n");
        assert_int_equal(fclose(f), 0);
        return buf;
}

static void test_limits(void **state) {
        char *text;
        Policy *p;

        text = policy_with_list("requesters", POLICY_LIST_MAX);
        p = parse_ok(text);
        assert_int_equal(p->rules[0].requesters.n, POLICY_LIST_MAX);
        assert_string_equal(p->rules[0].requesters.items[POLICY_LIST_MAX - 1], "u999");
        policy_free(p);
        free(text);

        text = policy_with_list("requesters", POLICY_LIST_MAX + 1);
        assert_policy_error(text, NAME ":1: rule \"r\": requesters: more than 1000 entries");
        free(text);

        /* More rules than allowed: refused before looking at any of them. */
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        assert_non_null(f);
        fprintf(f, "rules = (\n");
        for (size_t i = 0; i <= POLICY_RULES_MAX; i++)
                fprintf(f, "%s{}", i ? "," : "");
        fprintf(f, ");\n");
        assert_int_equal(fclose(f), 0);
        assert_policy_error(buf, NAME ":1: rules: more than 10000 rules");
        free(buf);
}

/* ---------------------------------------------------------------------------------------
 * Matching */

static const char match_policy[] =
        "settings = { max_duration = \"8h\"; };\n"
        "rules = (\n"
        "  { name = \"alice-sudo\"; services = [\"sudo\"]; requesters = [\"alice\"]; approvers = [\"carol\"];\n"
        "    max_duration = \"2h\"; },\n"
        "  { name = \"dev\"; services = [\"sudo\", \"sshd\"]; requesters = [\"%dev\"];\n"
        "    approvers = [\"%sre-leads\", \"bob\"]; approvals = 2; },\n"
        "  { name = \"oncall-su\"; services = [\"su\"]; requesters = [\"%oncall\", \"dave\"];\n"
        "    approvers = [\"%sre-leads\"]; max_duration = \"8h\"; },\n"
        "  { name = \"group-named-like-user\"; services = [\"login\"]; requesters = [\"%alice\", \"users\"];\n"
        "    approvers = [\"carol\"]; }\n"
        ");\n";

static void test_match_first_rule_wins(void **state) {
        Policy *p = parse_ok(match_policy);

        /* alice matches both "alice-sudo" and "dev" for sudo: the first one wins. */
        assert_ptr_equal(policy_match(p, &alice, "sudo"), policy_find_rule(p, "alice-sudo"));
        /* For sshd the first rule does not list the service. */
        assert_ptr_equal(policy_match(p, &alice, "sshd"), policy_find_rule(p, "dev"));
        assert_ptr_equal(policy_match(p, &bob, "sudo"), policy_find_rule(p, "dev"));
        assert_ptr_equal(policy_match(p, &bob, "su"), policy_find_rule(p, "oncall-su"));
        assert_ptr_equal(policy_match(p, &dave, "su"), policy_find_rule(p, "oncall-su"));
        /* No matching rule: refused. */
        assert_null(policy_match(p, &carol, "sudo"));
        assert_null(policy_match(p, &dave, "sudo"));
        assert_null(policy_match(p, &alice, "su"));
        assert_null(policy_match(p, &alice, "SUDO"));
        assert_null(policy_match(p, &alice, ""));
        policy_free(p);
}

static void test_match_users_and_groups(void **state) {
        Policy *p = parse_ok(match_policy);

        /* "%alice" is alice's own primary group; "users" is a user entry, not the group. */
        assert_ptr_equal(policy_match(p, &alice, "login"),
                         policy_find_rule(p, "group-named-like-user"));
        assert_null(policy_match(p, &dave, "login")); /* dave is in group users, not user "users" */

        Identity users_user = {
                .name = (char *) "users", .uid = 2000, .groups = NULL, .n_groups = 0
        };
        assert_ptr_equal(policy_match(p, &users_user, "login"),
                         policy_find_rule(p, "group-named-like-user"));

        /* A user named like a group does not match a %group entry. */
        Identity dev_user = { .name = (char *) "dev", .uid = 2001, .groups = NULL, .n_groups = 0 };
        assert_null(policy_match(p, &dev_user, "sudo"));

        /* Group names are compared exactly. */
        char *g[] = { (char *) "Dev", (char *) "dev2", (char *) "de" };
        Identity near = { .name = (char *) "near", .uid = 2002, .groups = g, .n_groups = 3 };
        assert_null(policy_match(p, &near, "sudo"));
        policy_free(p);
}

static void test_approvers(void **state) {
        Policy *p = parse_ok(match_policy);
        const PolicyRule *r;

        r = policy_find_rule(p, "alice-sudo");
        assert_non_null(r);
        assert_true(policy_rule_is_approver(r, &carol));
        assert_false(policy_rule_is_approver(r, &alice));
        assert_false(policy_rule_is_approver(r, &bob));

        r = policy_find_rule(p, "dev");
        assert_true(policy_rule_is_approver(r, &carol)); /* via %sre-leads */
        assert_true(policy_rule_is_approver(r, &bob));   /* by name */
        assert_false(policy_rule_is_approver(r, &alice));
        assert_false(policy_rule_is_approver(r, &dave));
        assert_int_equal(r->approvals, 2);

        /* Being an approver does not depend on being a requester, and vice versa. */
        r = policy_find_rule(p, "oncall-su");
        assert_false(policy_rule_is_approver(r, &bob));
        assert_true(policy_rule_is_approver(r, &carol));
        policy_free(p);
}

static void test_find_rule_and_services(void **state) {
        Policy *p = parse_ok(match_policy);
        const PolicyRule *r;

        assert_int_equal(p->n_rules, 4);
        assert_ptr_equal(policy_find_rule(p, "alice-sudo"), &p->rules[0]);
        assert_ptr_equal(policy_find_rule(p, "dev"), &p->rules[1]);
        assert_ptr_equal(policy_find_rule(p, "group-named-like-user"), &p->rules[3]);
        assert_null(policy_find_rule(p, "Dev"));
        assert_null(policy_find_rule(p, "de"));
        assert_null(policy_find_rule(p, ""));

        r = policy_find_rule(p, "dev");
        assert_true(policy_rule_has_service(r, "sudo"));
        assert_true(policy_rule_has_service(r, "sshd"));
        assert_false(policy_rule_has_service(r, "su"));
        assert_false(policy_rule_has_service(r, "sud"));
        policy_free(p);
}

static void test_rule_cap(void **state) {
        Policy *p = parse_ok(match_policy);

        assert_int_equal(policy_rule_cap(p, policy_find_rule(p, "alice-sudo")),
                         2 * 3600); /* the rule's own */
        assert_int_equal(policy_rule_cap(p, policy_find_rule(p, "dev")),
                         8 * 3600); /* unset: settings */
        assert_int_equal(policy_rule_cap(p, policy_find_rule(p, "oncall-su")),
                         8 * 3600); /* equal to settings */
        policy_free(p);

        p = parse_ok(
                "settings = { default_duration = \"5m\"; max_duration = \"15m\"; };\n"
                "rules = ( { name = \"r\"; services = [\"sudo\"]; requesters = [\"a\"]; approvers = [\"b\"]; },\n"
                "          { name = \"s\"; services = [\"sudo\"]; requesters = [\"a\"]; approvers = [\"b\"];"
                " max_duration = \"90s\"; } );");
        assert_int_equal(policy_rule_cap(p, &p->rules[0]), 900);
        assert_int_equal(policy_rule_cap(p, &p->rules[1]), 90);
        policy_free(p);
}

static void test_on_expiry_to_string(void **state) {
        assert_string_equal(on_expiry_to_string(ON_EXPIRY_TERMINATE), "terminate");
        assert_string_equal(on_expiry_to_string(ON_EXPIRY_WARN), "warn");
        assert_string_equal(on_expiry_to_string(ON_EXPIRY_NONE), "none");
        /* Out of range has no name (common/string-table.h). */
        assert_null(on_expiry_to_string((OnExpiry) 99));
        assert_null(on_expiry_to_string(_ON_EXPIRY_MAX));
        assert_null(on_expiry_to_string(_ON_EXPIRY_INVALID));
        assert_int_equal(on_expiry_from_string("terminate"), ON_EXPIRY_TERMINATE);
        assert_int_equal(on_expiry_from_string("warn"), ON_EXPIRY_WARN);
        assert_int_equal(on_expiry_from_string("none"), ON_EXPIRY_NONE);
        assert_int_equal(on_expiry_from_string("Warn"), _ON_EXPIRY_INVALID);
        assert_int_equal(on_expiry_from_string(""), _ON_EXPIRY_INVALID);
        assert_int_equal(on_expiry_from_string(NULL), _ON_EXPIRY_INVALID);
}

static void test_valid_service_name(void **state) {
        char s[80];

        assert_true(jit_service_name_is_valid("sudo"));
        assert_true(jit_service_name_is_valid("sshd"));
        assert_true(jit_service_name_is_valid("su-l"));
        assert_true(jit_service_name_is_valid("sudo-i"));
        assert_true(jit_service_name_is_valid("a.b_c-D9"));
        memset(s, 's', 64);
        s[64] = '\0';
        assert_true(jit_service_name_is_valid(s));
        s[64] = 's';
        s[65] = '\0';
        assert_false(jit_service_name_is_valid(s));

        assert_false(jit_service_name_is_valid(NULL));
        assert_false(jit_service_name_is_valid(""));
        assert_false(jit_service_name_is_valid("su do"));
        assert_false(jit_service_name_is_valid("sudo/../x"));
        assert_false(jit_service_name_is_valid("sudo\n"));
        assert_false(jit_service_name_is_valid("s\xc3\xbc"));
        assert_false(jit_service_name_is_valid("%sudo"));
        assert_false(jit_service_name_is_valid("sudo;"));
        assert_false(jit_service_name_is_valid("sudo\x7f"));
        assert_false(jit_service_name_is_valid("\tsudo"));
        assert_false(jit_service_name_is_valid("sudo:x"));
        assert_true(jit_service_name_is_valid("."));
        assert_true(jit_service_name_is_valid("-"));
        assert_true(jit_service_name_is_valid("_"));

        /* The one rule for pam_jit's service=, the policy's services and rule names, the
         * broker and jitctl: the wire's limit. */
        assert_int_equal(JIT_SERVICE_MAX, 64);
}

/* ---------------------------------------------------------------------------------------
 * policy_load: what the file must look like on disk */

typedef struct LoadDir {
        char dir[64];
        char path[128];
} LoadDir;

static int load_setup(void **state) {
        LoadDir *d = calloc(1, sizeof(*d));

        if (!d)
                return -1;
        snprintf(d->dir, sizeof(d->dir), "/tmp/jit-test-policy-XXXXXX");
        if (!mkdtemp(d->dir)) {
                free(d);
                return -1;
        }
        snprintf(d->path, sizeof(d->path), "%s/policy.conf", d->dir);
        *state = d;
        return 0;
}

static int load_teardown(void **state) {
        LoadDir *d = *state;
        char sub[160];

        unlink(d->path);
        snprintf(sub, sizeof(sub), "%s/fifo", d->dir);
        unlink(sub);
        snprintf(sub, sizeof(sub), "%s/subdir", d->dir);
        rmdir(sub);
        rmdir(d->dir);
        free(d);
        return 0;
}

static void write_file(const char *path, const char *text, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        assert_int_equal(close(fd), 0);
        assert_int_equal(chown(path, 0, 0), 0);
        assert_int_equal(chmod(path, mode), 0); /* explicit: the umask plays no part */
}

static void assert_load_refused(const char *path, int expect_r, const char *expect_msg) {
        Policy *p = NULL;
        char *err = NULL;
        int r = policy_load(path, &p, &err);

        if (r != expect_r)
                fail_msg("policy_load(%s) = %d, expected %d (%s)", path, r, expect_r,
                         err ? err : "");
        assert_null(p);
        assert_non_null(err);
        assert_string_equal(err, expect_msg);
        free(err);
}

static void test_load_ok(void **state) {
        LoadDir *d = *state;
        static const mode_t good[] = { 0644, 0600, 0400, 0444, 0640, 0755 };

        if (geteuid() != 0)
                skip();
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                Policy *p = NULL;
                char *err = (char *) "sentinel";

                write_file(d->path, "profile = { owner = \"ops\"; };\nrules = ( " RULE_A " );\n",
                           good[i]);
                assert_int_equal(policy_load(d->path, &p, &err), 0);
                assert_null(err);
                assert_string_equal(p->path, d->path);
                assert_string_equal(p->profile.owner, "ops");
                assert_int_equal(p->n_rules, 1);
                policy_free(p);
        }
        /* ret_error is optional. */
        Policy *p = NULL;
        assert_int_equal(policy_load(d->path, &p, NULL), 0);
        policy_free(p);
}

static void test_load_parse_error_names_file(void **state) {
        LoadDir *d = *state;
        char expect[512];

        if (geteuid() != 0)
                skip();
        write_file(d->path, "rules = (\n  { name = \"x\"; oops = 1; }\n);\n", 0644);
        snprintf(
                expect, sizeof(expect),
                "%s:2: rule \"x\": unknown key 'oops' (expected one of: name, services, requesters, approvers, "
                "approvals, max_duration, auto_approve, when, ticket_pattern, reason_min_length, "
                "allow_self_approval, signed, commands, run_as, scope, hosts)",
                d->path);
        assert_load_refused(d->path, -EINVAL, expect);
}

static void test_load_refuses_writable(void **state) {
        LoadDir *d = *state;
        static const mode_t bad[] = { 0664, 0646, 0620, 0602, 0666, 0777, 0660 };
        char expect[256];

        if (geteuid() != 0)
                skip();
        snprintf(expect, sizeof(expect),
                 "%s: refusing a policy file that is writable by group or others", d->path);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                write_file(d->path, "rules = ();\n", bad[i]);
                assert_load_refused(d->path, -EPERM, expect);
        }
}

static void test_load_refuses_not_root(void **state) {
        LoadDir *d = *state;
        char expect[256];

        if (geteuid() != 0)
                skip();
        write_file(d->path, "rules = ();\n", 0644);
        assert_int_equal(chown(d->path, 65534, 0), 0);
        snprintf(expect, sizeof(expect), "%s: refusing a policy file that is not owned by root",
                 d->path);
        assert_load_refused(d->path, -EPERM, expect);

        /* Owned by root but a non-root group: fine as long as the group cannot write. */
        write_file(d->path, "rules = ();\n", 0640);
        assert_int_equal(chown(d->path, 0, 65534), 0);
        Policy *p = NULL;
        assert_int_equal(policy_load(d->path, &p, NULL), 0);
        policy_free(p);
}

static void test_load_refuses_not_regular(void **state) {
        LoadDir *d = *state;
        char path[160], expect[256];

        if (geteuid() != 0)
                skip();
        snprintf(path, sizeof(path), "%s/subdir", d->dir);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(expect, sizeof(expect), "%s: refusing a policy file that is not a regular file",
                 path);
        assert_load_refused(path, -EPERM, expect);

        /* A FIFO must not block the broker on open. */
        snprintf(path, sizeof(path), "%s/fifo", d->dir);
        assert_int_equal(mkfifo(path, 0600), 0);
        snprintf(expect, sizeof(expect), "%s: refusing a policy file that is not a regular file",
                 path);
        assert_load_refused(path, -EPERM, expect);

        assert_load_refused("/dev/null", -EPERM,
                            "/dev/null: refusing a policy file that is not a regular file");
}

static void test_load_missing(void **state) {
        LoadDir *d = *state;
        char expect[256];

        snprintf(expect, sizeof(expect), "%s: No such file or directory", d->path);
        assert_load_refused(d->path, -ENOENT, expect);
}

static void test_load_size_limit(void **state) {
        LoadDir *d = *state;
        char expect[256];
        int fd;

        if (geteuid() != 0)
                skip();
        write_file(d->path, "", 0644);
        fd = open(d->path, O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, POLICY_FILE_MAX + 1), 0);
        snprintf(expect, sizeof(expect), "%s: refusing a policy file that is larger than 4 MiB",
                 d->path);
        assert_load_refused(d->path, -EPERM, expect);

        /* At the limit it is read (and then refused for its content: all NUL bytes). */
        assert_int_equal(ftruncate(fd, POLICY_FILE_MAX), 0);
        assert_int_equal(close(fd), 0);
        snprintf(expect, sizeof(expect), "%s: the file contains a NUL byte", d->path);
        assert_load_refused(d->path, -EINVAL, expect);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_minimal_policy_defaults),
                cmocka_unit_test(test_ticket_pattern_complexity_bounded),
                cmocka_unit_test(test_full_policy),
                cmocka_unit_test(test_settings_values),
                cmocka_unit_test(test_settings_errors),
                cmocka_unit_test(test_audit_settings),
                cmocka_unit_test(test_bounds_settings),
                cmocka_unit_test(test_profile),
                cmocka_unit_test(test_syntax_errors),
                cmocka_unit_test(test_top_level_errors),
                cmocka_unit_test(test_nul_byte),
                cmocka_unit_test(test_include_refused),
                cmocka_unit_test(test_rule_structure_errors),
                cmocka_unit_test(test_rule_name_length),
                cmocka_unit_test(test_rule_all_keys),
                cmocka_unit_test(test_signed_approvals),
                cmocka_unit_test(test_rule_list_errors),
                cmocka_unit_test(test_rule_approvals_and_duration),
                cmocka_unit_test(test_first_error_wins),
                cmocka_unit_test(test_error_message_optional),
                cmocka_unit_test(test_limits),
                cmocka_unit_test(test_match_first_rule_wins),
                cmocka_unit_test(test_match_users_and_groups),
                cmocka_unit_test(test_approvers),
                cmocka_unit_test(test_find_rule_and_services),
                cmocka_unit_test(test_rule_cap),
                cmocka_unit_test(test_on_expiry_to_string),
                cmocka_unit_test(test_valid_service_name),
                cmocka_unit_test_setup_teardown(test_load_ok, load_setup, load_teardown),
                cmocka_unit_test_setup_teardown(test_load_parse_error_names_file, load_setup,
                                                load_teardown),
                cmocka_unit_test_setup_teardown(test_load_refuses_writable, load_setup,
                                                load_teardown),
                cmocka_unit_test_setup_teardown(test_load_refuses_not_root, load_setup,
                                                load_teardown),
                cmocka_unit_test_setup_teardown(test_load_refuses_not_regular, load_setup,
                                                load_teardown),
                cmocka_unit_test_setup_teardown(test_load_missing, load_setup, load_teardown),
                cmocka_unit_test_setup_teardown(test_load_size_limit, load_setup, load_teardown),
        };

        fake_resolver_install(known_users);
        return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
