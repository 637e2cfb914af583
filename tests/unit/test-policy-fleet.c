/* SPDX-License-Identifier: MIT */
/* common/policy-parse.c: the fleet section and a rule's `hosts` (docs/fleet.md), every
 * error with its line, and the host's labels taken from its profile. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cleanup.h"
#include "policy.h"

#define NAME "t.conf"
#define FLEET                                                                                      \
        "fleet = { database = \"postgresql:///jit?host=/run/postgresql\"; host = \"db-7\";\n"      \
        "          credentials = \"/etc/jit/fleet.pass\"; max_offline = \"4h\"; };\n"
#define RULE_HEAD                                                                                  \
        "{ name = \"a\"; services = [\"sudo\"]; requesters = [\"root\"]; approvers = [\"root\"]; "

static Policy *parse_ok(const char *text) {
        Policy *p = NULL;
        char *err = NULL;
        int r = policy_parse(text, strlen(text), NAME, &p, &err);

        if (r != 0)
                fail_msg("policy_parse failed (%d): %s\n--- text ---\n%s", r,
                         err ? err : "(no message)", text);
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
        if (!err || strcmp(err, expect) != 0)
                fail_msg("%s:%d: error message\n  got:      %s\n  expected: %s", file, line,
                         err ? err : "(none)", expect);
        free(err);
}
#define assert_policy_error(text, expect) check_error(text, expect, __FILE__, __LINE__)

/* A fleet section whose key k is v (written as is), the others valid. */
static void fleet_with(char *buf, size_t len, const char *k, const char *v) {
        const char *keys[] = { "database", "host", "credentials", "max_offline" };
        const char *vals[] = { "\"postgresql:///jit?host=/run/postgresql\"", "\"db-7\"",
                               "\"/etc/jit/fleet.pass\"", "\"4h\"" };
        size_t n = (size_t) snprintf(buf, len, "rules = ();\nfleet = {\n");
        for (size_t i = 0; i < 4; i++)
                n += (size_t) snprintf(buf + n, len - n, "  %s = %s;\n", keys[i],
                                       strcmp(keys[i], k) == 0 ? v : vals[i]);
        snprintf(buf + n, len - n, "};\n");
}

static void test_fleet_section(void **state) {
        Policy *p = parse_ok("rules = ();\n" FLEET);
        assert_true(p->fleet.enabled);
        assert_int_equal(p->fleet.line, 2);
        assert_string_equal(p->fleet.database, "postgresql:///jit?host=/run/postgresql");
        assert_string_equal(p->fleet.host, "db-7");
        assert_string_equal(p->fleet.credentials, "/etc/jit/fleet.pass");
        assert_int_equal(p->fleet.max_offline, 4 * 3600);
        assert_int_equal(p->n_warnings, 0);
        policy_free(p);

        /* max_offline is optional: grants stay until they end. */
        p = parse_ok(
                "rules = ();\nfleet = { database = \"postgres://db.example.org/jit?sslmode=verify-full\";"
                " host = \"a.b\"; credentials = \"/etc/jit/fleet.pass\"; };");
        assert_int_equal(p->fleet.max_offline, 0);
        assert_null(p->fleet.poll_credentials);
        policy_free(p);

        /* The shared poll login's file, optional, under the same rules. */
        p = parse_ok("rules = ();\nfleet = { database = \"postgresql:///jit\"; host = \"a\";"
                     " credentials = \"/etc/jit/fleet.pass\";\n"
                     " poll_credentials = \"/etc/jit/fleet-poll.pass\"; };");
        assert_string_equal(p->fleet.poll_credentials, "/etc/jit/fleet-poll.pass");
        policy_free(p);
        assert_policy_error("rules = ();\nfleet = { database = \"postgresql:///jit\"; host = \"a\";"
                            " credentials = \"/etc/jit/fleet.pass\";\n"
                            " poll_credentials = \"poll.pass\"; };",
                            NAME ":3: fleet.poll_credentials: expected an absolute path without "
                                 "spaces");

        /* Without the section: not a fleet host. */
        p = parse_ok("rules = ();");
        assert_false(p->fleet.enabled);
        assert_null(p->fleet.database);
        policy_free(p);
}

static void test_fleet_errors(void **state) {
        char buf[1024];

        assert_policy_error("rules = ();\nfleet = \"db\";",
                            NAME ":2: fleet: expected a group { ... }");
        assert_policy_error(
                "rules = ();\nfleet = {\n database = \"postgresql:///jit\"; host = \"a\";\n"
                " credentials = \"/x\"; port = 5432; };",
                NAME ":4: fleet: unknown key 'port' (expected one of: database, host, "
                     "credentials, max_offline, poll_credentials)");
        assert_policy_error("rules = ();\nfleet = { host = \"a\"; credentials = \"/x\"; };",
                            NAME ":2: fleet: missing 'database'");
        assert_policy_error(
                "rules = ();\nfleet = { database = \"postgresql:///jit\"; credentials = \"/x\"; };",
                NAME ":2: fleet: missing 'host'");
        assert_policy_error(
                "rules = ();\nfleet = { database = \"postgresql:///jit\"; host = \"a\"; };",
                NAME ":2: fleet: missing 'credentials'");

        fleet_with(buf, sizeof(buf), "database", "\"host=/run/postgresql dbname=jit\"");
        assert_policy_error(buf, NAME ":3: fleet.database: expected a PostgreSQL connection URI "
                                      "(\"postgresql://...\", without spaces)");
        fleet_with(buf, sizeof(buf), "database", "\"postgresql:///jit?application_name=a b\"");
        assert_policy_error(buf, NAME ":3: fleet.database: expected a PostgreSQL connection URI "
                                      "(\"postgresql://...\", without spaces)");
        fleet_with(buf, sizeof(buf), "database", "5432");
        assert_policy_error(buf, NAME ":3: fleet.database: expected a string \"postgresql://...\"");
        fleet_with(buf, sizeof(buf), "database", "\"postgresql://jit_host_db-7:secret@db/jit\"");
        assert_policy_error(buf, NAME ":3: fleet.database: holds a password; put it in the "
                                      "credentials file");
        fleet_with(buf, sizeof(buf), "database",
                   "\"postgresql:///jit?host=/run/postgresql&password=x\"");
        assert_policy_error(buf, NAME ":3: fleet.database: holds a password; put it in the "
                                      "credentials file");
        fleet_with(buf, sizeof(buf), "database", "\"postgresql:///jit?password=x\"");
        assert_policy_error(buf, NAME ":3: fleet.database: holds a password; put it in the "
                                      "credentials file");
        /* A user name alone is no secret. */
        fleet_with(buf, sizeof(buf), "database",
                   "\"postgresql://jit_host_db-7@db.example.org/jit\"");
        policy_free(parse_ok(buf));

        fleet_with(buf, sizeof(buf), "host", "\"DB-7\"");
        assert_policy_error(buf,
                            NAME ":4: fleet.host: \"DB-7\" is not a fleet host name (lowercase "
                                 "letters, digits, '-' and '.', at most 54 bytes)");
        fleet_with(buf, sizeof(buf), "host", "\"\"");
        assert_policy_error(buf, NAME ":4: fleet.host: \"\" is not a fleet host name (lowercase "
                                      "letters, digits, '-' and '.', at most 54 bytes)");
        fleet_with(buf, sizeof(buf), "host", "7");
        assert_policy_error(buf, NAME ":4: fleet.host: expected a string");

        fleet_with(buf, sizeof(buf), "credentials", "\"fleet.pass\"");
        assert_policy_error(buf,
                            NAME ":5: fleet.credentials: expected an absolute path without spaces");
        fleet_with(buf, sizeof(buf), "credentials", "\"/etc/jit/fleet pass\"");
        assert_policy_error(buf,
                            NAME ":5: fleet.credentials: expected an absolute path without spaces");

        fleet_with(buf, sizeof(buf), "max_offline", "\"4 h\"");
        assert_policy_error(buf, NAME ":6: fleet.max_offline: \"4 h\" is not a duration (expected "
                                      "e.g. \"90s\", \"30m\", \"1h30m\", \"2h\", \"1d\")");
        fleet_with(buf, sizeof(buf), "max_offline", "\"400d\"");
        assert_policy_error(buf, NAME
                            ":6: fleet.max_offline: \"400d\" is longer than the maximum of 366d");
        fleet_with(buf, sizeof(buf), "max_offline", "14400");
        assert_policy_error(buf, NAME ":6: fleet.max_offline: expected a duration string such as "
                                      "\"30m\" or \"1h30m\"");
}

static void test_fleet_database_limit(void **state) {
        size_t len = POLICY_FLEET_DATABASE_MAX + 1;
        _cleanup_free_ char *uri = malloc(len + 1);
        _cleanup_free_ char *text = malloc(len + 256);

        assert_non_null(uri);
        assert_non_null(text);
        memset(uri, 'a', len);
        memcpy(uri, "postgresql:///", 14);
        uri[len] = '\0';
        snprintf(
                text, len + 256,
                "rules = ();\nfleet = {\n database = \"%s\"; host = \"a\"; credentials = \"/x\"; };",
                uri);
        assert_policy_error(text, NAME ":3: fleet.database: longer than 1024 bytes");
        uri[len - 1] = '\0'; /* exactly the limit */
        snprintf(
                text, len + 256,
                "rules = ();\nfleet = {\n database = \"%s\"; host = \"a\"; credentials = \"/x\"; };",
                uri);
        policy_free(parse_ok(text));
}

static void test_rule_hosts(void **state) {
        Policy *p = parse_ok("rules = ( " RULE_HEAD
                             "hosts = \"role=db,environment=staging\"; } );\n" FLEET);
        assert_non_null(p->rules[0].hosts);
        assert_string_equal(p->rules[0].hosts_text, "environment=staging,role=db");
        assert_int_equal(p->n_warnings, 0);
        policy_free(p);

        p = parse_ok("rules = ( " RULE_HEAD "hosts = \"db-7\"; } );\n" FLEET);
        assert_string_equal(p->rules[0].hosts->host, "db-7");
        policy_free(p);

        p = parse_ok("rules = ( " RULE_HEAD "} );\n" FLEET);
        assert_null(p->rules[0].hosts);
        assert_null(p->rules[0].hosts_text);
        policy_free(p);

        assert_policy_error("rules = (\n " RULE_HEAD "\n hosts = \"environment = staging\"; } );",
                            NAME
                            ":3: rule \"a\": hosts: \"environment = staging\": a label key is 1 "
                            "to 63 of [a-z0-9_-], starting with a letter");
        assert_policy_error("rules = (\n " RULE_HEAD "\n hosts = \"role=db,role=web\"; } );", NAME
                            ":3: rule \"a\": hosts: \"role=db,role=web\": a label key given twice");
        assert_policy_error("rules = (\n " RULE_HEAD "\n hosts = [\"role=db\"]; } );",
                            NAME ":3: rule \"a\": hosts: expected a string such as "
                                 "\"environment=staging,role=db\" or a host name");
        assert_policy_error("rules = (\n " RULE_HEAD "\n hosts = \"\"; } );",
                            NAME ":3: rule \"a\": hosts: \"\": empty selector");
}

static void test_rule_hosts_without_fleet_warns(void **state) {
        Policy *p = parse_ok("rules = (\n " RULE_HEAD "\n hosts = \"environment=staging\"; } );");
        assert_int_equal(p->n_warnings, 1);
        assert_string_equal(p->warnings[0],
                            NAME ":3: rule \"a\": hosts has no effect without a fleet section");
        policy_free(p);
}

static void test_labels_from_profile(void **state) {
        HostLabel labels[POLICY_HOST_LABELS_MAX];
        Policy *p = parse_ok(
                "rules = ();\nprofile = { owner = \"payments\"; environment = \"staging\";\n"
                " classification = \"restricted\"; description = \"Card vault\"; };\n" FLEET);

        assert_int_equal(policy_host_labels(p, labels), 3);
        assert_string_equal(labels[0].key, "owner");
        assert_string_equal(labels[0].value, "payments");
        assert_string_equal(labels[1].key, "environment");
        assert_string_equal(labels[1].value, "staging");
        assert_string_equal(labels[2].key, "classification");
        assert_string_equal(labels[2].value, "restricted");
        HostSelector *sel = NULL;
        assert_int_equal(host_selector_parse("environment=staging,owner=payments", &sel, NULL), 0);
        assert_true(host_selector_matches(sel, p->fleet.host, labels, 3));
        host_selector_free(sel);
        /* The description is free text, never a label. */
        assert_int_equal(host_selector_parse("description=Card", &sel, NULL), 0);
        assert_false(host_selector_matches(sel, p->fleet.host, labels, 3));
        host_selector_free(sel);
        policy_free(p);

        /* A value no selector can name is left out, and said so. */
        p = parse_ok(
                "rules = ();\nprofile = { owner = \"payments team\"; environment = \"staging\"; };\n"
                "fleet = { database = \"postgresql:///jit\"; host = \"a\"; credentials = \"/x\"; };");
        assert_int_equal(policy_host_labels(p, labels), 1);
        assert_string_equal(labels[0].key, "environment");
        assert_int_equal(p->n_warnings, 1);
        assert_string_equal(p->warnings[0], NAME
                            ":3: profile.owner \"payments team\" is not a fleet label: no host "
                            "selector can name it (1 to 63 of [A-Za-z0-9._-])");
        policy_free(p);
}

static void test_free_form_labels(void **state) {
        HostLabel labels[POLICY_HOST_LABELS_MAX];
        Policy *p = parse_ok("rules = ();\nprofile = { environment = \"staging\";\n"
                             " labels = { role = \"db\"; rack = \"r7\"; }; };\n" FLEET);

        assert_int_equal(policy_host_labels(p, labels), 3);
        assert_string_equal(labels[0].key, "environment");
        assert_string_equal(labels[1].key, "role");
        assert_string_equal(labels[1].value, "db");
        assert_string_equal(labels[2].key, "rack");
        assert_string_equal(labels[2].value, "r7");
        HostSelector *sel = NULL;
        assert_int_equal(host_selector_parse("environment=staging,role=db", &sel, NULL), 0);
        assert_true(host_selector_matches(sel, p->fleet.host, labels, 3));
        host_selector_free(sel);
        assert_int_equal(host_selector_parse("role=web", &sel, NULL), 0);
        assert_false(host_selector_matches(sel, p->fleet.host, labels, 3));
        host_selector_free(sel);
        policy_free(p);

        /* A fixed key in labels is a label when the profile does not set it. */
        p = parse_ok("rules = ();\nprofile = { labels = { owner = \"dba\"; }; };\n" FLEET);
        assert_int_equal(policy_host_labels(p, labels), 1);
        assert_string_equal(labels[0].key, "owner");
        assert_string_equal(labels[0].value, "dba");
        policy_free(p);

        /* Sixteen at most, all kept. */
        char buf[2048];
        size_t n = (size_t) snprintf(buf, sizeof(buf), "rules = ();\nprofile = { labels = {");
        for (int i = 0; i < POLICY_PROFILE_LABELS_MAX; i++)
                n += (size_t) snprintf(buf + n, sizeof(buf) - n, " k%d = \"v\";", i);
        snprintf(buf + n, sizeof(buf) - n, " }; };\n" FLEET);
        p = parse_ok(buf);
        assert_int_equal(policy_host_labels(p, labels), POLICY_PROFILE_LABELS_MAX);
        policy_free(p);
        buf[n] = '\0';
        snprintf(buf + n, sizeof(buf) - n, " k16 = \"v\"; }; };\n");
        assert_policy_error(buf, NAME ":2: profile.labels: 17 labels, at most 16");

        assert_policy_error("rules = ();\nprofile = {\n environment = \"staging\";\n"
                            " labels = { environment = \"production\"; }; };",
                            NAME ":4: profile.labels.environment: the label is "
                                 "profile.environment already");
        assert_policy_error("rules = ();\nprofile = { labels = {\n Role = \"db\"; }; };",
                            NAME ":3: profile.labels: \"Role\" is not a label key (1 to 63 of "
                                 "[a-z0-9_-], starting with a letter)");
        assert_policy_error("rules = ();\nprofile = { labels = {\n role = \"data base\"; }; };",
                            NAME ":3: profile.labels.role: \"data base\" is not a label value (1 "
                                 "to 63 of [A-Za-z0-9._-])");
        assert_policy_error("rules = ();\nprofile = { labels = {\n role = \"\"; }; };",
                            NAME ":3: profile.labels.role: \"\" is not a label value (1 to 63 of "
                                 "[A-Za-z0-9._-])");
        assert_policy_error("rules = ();\nprofile = { labels = {\n rack = 7; }; };",
                            NAME ":3: profile.labels.rack: expected a string");
        assert_policy_error("rules = ();\nprofile = {\n labels = [\"db\"]; };",
                            NAME ":3: profile.labels: expected a group of labels { role = \"db\"; "
                                 "... }");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fleet_section),
                cmocka_unit_test(test_fleet_errors),
                cmocka_unit_test(test_fleet_database_limit),
                cmocka_unit_test(test_rule_hosts),
                cmocka_unit_test(test_rule_hosts_without_fleet_warns),
                cmocka_unit_test(test_labels_from_profile),
                cmocka_unit_test(test_free_form_labels),
        };
        return cmocka_run_group_tests_name("policy-fleet", tests, NULL, NULL);
}
