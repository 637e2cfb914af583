/* SPDX-License-Identifier: MIT */
/* common/host-selector.[ch]: the fleet's host selectors ("environment=staging,role=db" or
 * one host name), their limits, matching and canonical form. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cleanup.h"
#include "host-selector.h"

static HostSelector *parse_ok(const char *s) {
        HostSelector *sel = NULL;
        const char *why = "sentinel";
        int r = host_selector_parse(s, &sel, &why);

        if (r != 0)
                fail_msg("host_selector_parse(\"%s\") = %d (%s)", s, r, why ? why : "no reason");
        assert_null(why);
        assert_non_null(sel);
        return sel;
}

/* Refused with expect_r and a reason containing expect_why; ret untouched. */
static void check_refused(const char *s, int expect_r, const char *expect_why) {
        HostSelector *sel = (HostSelector *) 0x1;
        const char *why = NULL;
        int r = host_selector_parse(s, &sel, &why);

        if (r != expect_r)
                fail_msg("host_selector_parse(\"%s\") = %d, expected %d", s ? s : "(null)", r,
                         expect_r);
        assert_ptr_equal(sel, (HostSelector *) 0x1);
        if (!why || !strstr(why, expect_why))
                fail_msg("host_selector_parse(\"%s\"): reason \"%s\", expected one with \"%s\"",
                         s ? s : "(null)", why ? why : "(none)", expect_why);
}

static void check_canonical(const char *s, const char *expect) {
        HostSelector *sel = parse_ok(s);
        _cleanup_free_ char *text = host_selector_format(sel);

        assert_non_null(text);
        if (strcmp(text, expect) != 0)
                fail_msg("\"%s\" formats as \"%s\", expected \"%s\"", s, text, expect);
        /* The canonical form parses to itself. */
        HostSelector *again = parse_ok(text);
        _cleanup_free_ char *text2 = host_selector_format(again);
        assert_string_equal(text2, text);
        host_selector_free(again);
        host_selector_free(sel);
}

static void test_parse_host_name(void **state) {
        HostSelector *sel = parse_ok("db-7");
        assert_string_equal(sel->host, "db-7");
        assert_int_equal(sel->n_terms, 0);
        host_selector_free(sel);

        sel = parse_ok("db-7.staging.example.org");
        assert_string_equal(sel->host, "db-7.staging.example.org");
        host_selector_free(sel);

        char longest[FLEET_HOST_NAME_MAX + 2];
        memset(longest, 'a', FLEET_HOST_NAME_MAX);
        longest[FLEET_HOST_NAME_MAX] = '\0';
        sel = parse_ok(longest);
        host_selector_free(sel);
        longest[FLEET_HOST_NAME_MAX] = 'a';
        longest[FLEET_HOST_NAME_MAX + 1] = '\0';
        check_refused(longest, -EINVAL, "host name");
}

static void test_parse_labels(void **state) {
        HostSelector *sel = parse_ok("environment=staging,role=db");
        assert_null(sel->host);
        assert_int_equal(sel->n_terms, 2);
        assert_string_equal(sel->terms[0].key, "environment");
        assert_string_equal(sel->terms[0].value, "staging");
        assert_string_equal(sel->terms[1].key, "role");
        assert_string_equal(sel->terms[1].value, "db");
        host_selector_free(sel);

        sel = parse_ok("owner=Payments-Team.EU_1");
        assert_string_equal(sel->terms[0].value, "Payments-Team.EU_1");
        host_selector_free(sel);
}

static void test_parse_refused(void **state) {
        check_refused(NULL, -EINVAL, "empty");
        check_refused("", -EINVAL, "empty");
        check_refused(" environment=staging", -EINVAL, "label key");
        check_refused("environment=staging ", -EINVAL, "label value");
        check_refused("environment = staging", -EINVAL, "label");
        check_refused("environment=staging,", -EINVAL, "empty label");
        check_refused(",environment=staging", -EINVAL, "empty label");
        check_refused("a=1,,b=2", -EINVAL, "empty label");
        check_refused("environment=", -EINVAL, "label value");
        check_refused("=staging", -EINVAL, "label key");
        check_refused("environment==staging", -EINVAL, "label value");
        check_refused("environment=staging,db-7", -EINVAL, "key=value");
        check_refused("Environment=staging", -EINVAL, "label key");
        check_refused("1env=staging", -EINVAL, "label key");
        check_refused("env=stag ing", -EINVAL, "label value");
        check_refused("env=stag/ing", -EINVAL, "label value");
        check_refused("env=st\xc3\xa9", -EINVAL, "label value");
        check_refused("env=a\nrole=db", -EINVAL, "label value");
        check_refused("role=db,role=web", -EINVAL, "twice");
        check_refused("role=db,role=db", -EINVAL, "twice");
        /* Host names: lowercase DNS labels only. */
        check_refused("DB-7", -EINVAL, "host name");
        check_refused("-db", -EINVAL, "host name");
        check_refused("db-", -EINVAL, "host name");
        check_refused("db..7", -EINVAL, "host name");
        check_refused(".db", -EINVAL, "host name");
        check_refused("db.", -EINVAL, "host name");
        check_refused("db_7", -EINVAL, "host name");
        check_refused("db 7", -EINVAL, "host name");
        check_refused("*", -EINVAL, "host name");
}

static void test_parse_limits(void **state) {
        char buf[HOST_SELECTOR_MAX + 64];
        size_t len = 0;

        /* 16 terms are fine, 17 are not. */
        buf[0] = '\0';
        for (int i = 0; i < HOST_SELECTOR_TERMS_MAX; i++)
                len += (size_t) snprintf(buf + len, sizeof(buf) - len, "%sk%02d=v", i ? "," : "",
                                         i);
        HostSelector *sel = parse_ok(buf);
        assert_int_equal(sel->n_terms, HOST_SELECTOR_TERMS_MAX);
        host_selector_free(sel);
        snprintf(buf + len, sizeof(buf) - len, ",k99=v");
        check_refused(buf, -E2BIG, "16 labels");

        /* Keys and values of 63 bytes are fine, 64 are not. */
        char key[HOST_LABEL_KEY_MAX + 2], value[HOST_LABEL_VALUE_MAX + 2];
        memset(key, 'k', sizeof(key));
        memset(value, 'v', sizeof(value));
        key[HOST_LABEL_KEY_MAX] = value[HOST_LABEL_VALUE_MAX] = '\0';
        snprintf(buf, sizeof(buf), "%s=%s", key, value);
        sel = parse_ok(buf);
        host_selector_free(sel);
        key[HOST_LABEL_KEY_MAX] = 'k';
        key[HOST_LABEL_KEY_MAX + 1] = '\0';
        snprintf(buf, sizeof(buf), "%s=v", key);
        check_refused(buf, -EINVAL, "label key");
        value[HOST_LABEL_VALUE_MAX] = 'v';
        value[HOST_LABEL_VALUE_MAX + 1] = '\0';
        snprintf(buf, sizeof(buf), "k=%s", value);
        check_refused(buf, -EINVAL, "label value");

        /* The whole selector: at most 512 bytes, whatever it holds. */
        memset(buf, 'a', HOST_SELECTOR_MAX + 1);
        buf[HOST_SELECTOR_MAX + 1] = '\0';
        check_refused(buf, -E2BIG, "512 bytes");
}

static const HostLabel staging_db[] = {
        { "owner", "payments" },
        { "environment", "staging" },
        { "role", "db" },
};

static void test_match_labels(void **state) {
        HostSelector *sel = parse_ok("role=db,environment=staging");
        assert_true(host_selector_matches(sel, "db-7", staging_db, 3));
        /* Every term must hold. */
        assert_false(host_selector_matches(sel, "db-7", staging_db, 2));
        HostLabel production[] = { { "environment", "production" }, { "role", "db" } };
        assert_false(host_selector_matches(sel, "db-7", production, 2));
        /* Values are compared exactly: no case folding, no prefixes. */
        HostLabel upper[] = { { "environment", "Staging" }, { "role", "db" } };
        assert_false(host_selector_matches(sel, "db-7", upper, 2));
        HostLabel prefix[] = { { "environment", "staging2" }, { "role", "db" } };
        assert_false(host_selector_matches(sel, "db-7", prefix, 2));
        /* A host without labels matches no label selector. */
        assert_false(host_selector_matches(sel, "db-7", NULL, 0));
        /* A label the host could not have written never matches. */
        HostLabel bad[] = { { "environment", "staging" }, { "role", "" } };
        assert_false(host_selector_matches(sel, "db-7", bad, 2));
        host_selector_free(sel);

        sel = parse_ok("environment=staging");
        assert_true(host_selector_matches(sel, "anything", staging_db, 3));
        HostLabel null_value[] = { { "environment", NULL } };
        assert_false(host_selector_matches(sel, "db-7", null_value, 1));
        host_selector_free(sel);
}

static void test_match_host(void **state) {
        HostSelector *sel = parse_ok("db-7");
        assert_true(host_selector_matches(sel, "db-7", NULL, 0));
        assert_false(host_selector_matches(sel, "db-70", NULL, 0));
        assert_false(host_selector_matches(sel, "db", NULL, 0));
        assert_false(host_selector_matches(sel, NULL, NULL, 0));
        /* A host name is not a label: a label "db-7" does not make a host db-7. */
        HostLabel named[] = { { "db-7", "db-7" } };
        assert_false(host_selector_matches(sel, "db-8", named, 1));
        host_selector_free(sel);
        assert_false(host_selector_matches(NULL, "db-7", NULL, 0));
}

static void test_canonical(void **state) {
        check_canonical("role=db,environment=staging", "environment=staging,role=db");
        check_canonical("environment=staging,role=db", "environment=staging,role=db");
        check_canonical("b=2,c=3,a=1", "a=1,b=2,c=3");
        check_canonical("db-7", "db-7");
}

static void test_name_checks(void **state) {
        assert_true(fleet_host_name_is_valid("a"));
        assert_true(fleet_host_name_is_valid("0"));
        assert_true(fleet_host_name_is_valid("web-1.eu"));
        assert_false(fleet_host_name_is_valid(NULL));
        assert_false(fleet_host_name_is_valid(""));
        assert_false(fleet_host_name_is_valid("a.-b"));
        assert_true(host_label_key_is_valid("environment"));
        assert_true(host_label_key_is_valid("a_b-c9"));
        assert_false(host_label_key_is_valid("_a"));
        assert_false(host_label_key_is_valid("a.b"));
        assert_false(host_label_key_is_valid(NULL));
        assert_true(host_label_value_is_valid("PCI.v2_x-y"));
        assert_false(host_label_value_is_valid("a,b"));
        assert_false(host_label_value_is_valid("a=b"));
        assert_false(host_label_value_is_valid(NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_host_name), cmocka_unit_test(test_parse_labels),
                cmocka_unit_test(test_parse_refused),   cmocka_unit_test(test_parse_limits),
                cmocka_unit_test(test_match_labels),    cmocka_unit_test(test_match_host),
                cmocka_unit_test(test_canonical),       cmocka_unit_test(test_name_checks),
        };
        return cmocka_run_group_tests_name("host-selector", tests, NULL, NULL);
}
