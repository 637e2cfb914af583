/* SPDX-License-Identifier: MIT */
/* broker/users.[ch]: policy entries against identities, account-name syntax, and the NSS
 * lookups for the one account every system has (root). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "users.h"

static char *alice_groups[] = { (char *) "alice", (char *) "dev", (char *) "sre-leads" };
static const Identity alice = {
        .name = (char *) "alice", .uid = 1001, .groups = alice_groups, .n_groups = 3
};

static void test_identity_matches_user(void **state) {
        assert_true(identity_matches(&alice, "alice"));
        assert_false(identity_matches(&alice, "bob"));
        assert_false(identity_matches(&alice, "Alice"));
        assert_false(identity_matches(&alice, "alic"));
        assert_false(identity_matches(&alice, "alice "));
        assert_false(identity_matches(&alice, ""));
        /* A bare name is a user, never a group. */
        assert_false(identity_matches(&alice, "dev"));
        assert_false(identity_matches(&alice, "sre-leads"));
}

static void test_identity_matches_group(void **state) {
        assert_true(identity_matches(&alice, "%dev"));
        assert_true(identity_matches(&alice, "%sre-leads"));
        assert_true(identity_matches(&alice, "%alice")); /* the primary group is a group too */
        assert_false(identity_matches(&alice, "%ops"));
        assert_false(identity_matches(&alice, "%Dev"));
        assert_false(identity_matches(&alice, "%de"));
        assert_false(identity_matches(&alice, "%sre"));
        assert_false(identity_matches(&alice, "%"));
        assert_false(identity_matches(&alice, "%%dev"));

        assert_true(identity_in_group(&alice, "dev"));
        assert_false(identity_in_group(&alice, "%dev"));
        assert_false(identity_in_group(&alice, ""));
}

static void test_identity_matches_empty(void **state) {
        /* No groups, and an identity without a name (cleared by identity_done). */
        Identity lonely = { .name = (char *) "lonely", .uid = 5, .groups = NULL, .n_groups = 0 };
        assert_true(identity_matches(&lonely, "lonely"));
        assert_false(identity_matches(&lonely, "%lonely"));

        Identity none = { .name = NULL, .uid = (uid_t) -1, .groups = NULL, .n_groups = 0 };
        assert_false(identity_matches(&none, "alice"));
        assert_false(identity_matches(&none, "%dev"));
}

static void test_valid_account_name(void **state) {
        char s[300];

        assert_true(valid_account_name("alice"));
        assert_true(valid_account_name("a"));
        assert_true(valid_account_name("root"));
        assert_true(valid_account_name("_apt"));
        assert_true(valid_account_name("systemd-network"));
        assert_true(valid_account_name("first.last"));
        assert_true(valid_account_name("Bob_2"));
        assert_true(valid_account_name("machine$")); /* Samba machine accounts */
        assert_true(valid_account_name("a-"));

        assert_false(valid_account_name(NULL));
        assert_false(valid_account_name(""));
        assert_false(valid_account_name("-alice")); /* would look like an option */
        assert_false(valid_account_name("al ice"));
        assert_false(valid_account_name("al:ice"));
        assert_false(valid_account_name("al/ice"));
        assert_false(valid_account_name("al,ice"));
        assert_false(valid_account_name("alice\n"));
        assert_false(valid_account_name("al\tice"));
        assert_false(valid_account_name("%dev"));
        assert_false(valid_account_name("a$b")); /* '$' only at the end */
        assert_false(valid_account_name("a$$"));
        assert_false(valid_account_name("\xc3\xa9t\xc3\xa9"));
        assert_false(valid_account_name("al*"));

        /* At most 256 bytes. */
        memset(s, 'u', 256);
        s[256] = '\0';
        assert_true(valid_account_name(s));
        s[255] = '$';
        assert_true(valid_account_name(s));
        s[255] = 'u';
        s[256] = 'u';
        s[257] = '\0';
        assert_false(valid_account_name(s));
}

static void test_identity_root(void **state) {
        Identity id;
        uid_t uid = 12345;

        assert_int_equal(identity_from_uid(0, &id), 0);
        assert_string_equal(id.name, "root");
        assert_int_equal(id.uid, 0);
        assert_true(id.n_groups >= 1);
        assert_true(identity_in_group(&id, "root"));
        assert_true(identity_matches(&id, "root"));
        assert_true(identity_matches(&id, "%root"));
        identity_done(&id);
        assert_null(id.name);
        assert_null(id.groups);
        assert_int_equal(id.n_groups, 0);
        assert_int_equal(id.uid, (uid_t) -1);
        identity_done(&id); /* idempotent */

        assert_int_equal(identity_from_name("root", &id), 0);
        assert_int_equal(id.uid, 0);
        assert_string_equal(id.name, "root");
        identity_done(&id);

        assert_int_equal(user_uid_from_name("root", &uid), 0);
        assert_int_equal(uid, 0);
}

static void test_identity_lookup_errors(void **state) {
        Identity id;
        uid_t uid = 12345;

        assert_int_equal(identity_from_uid((uid_t) -1, &id), -EINVAL);
        assert_int_equal(identity_from_uid(3999999999U, &id), -ENOENT);
        assert_int_equal(identity_from_name("jit-test-no-such-user", &id), -ENOENT);
        assert_int_equal(identity_from_name("-root", &id), -EINVAL);
        assert_int_equal(identity_from_name("", &id), -EINVAL);
        assert_int_equal(identity_from_name("root:x", &id), -EINVAL);
        assert_int_equal(user_uid_from_name("jit-test-no-such-user", &uid), -ENOENT);
        assert_int_equal(user_uid_from_name("ro ot", &uid), -EINVAL);
        assert_int_equal(user_uid_from_name(NULL, &uid), -EINVAL);
        assert_int_equal(uid, 12345);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_identity_matches_user),
                cmocka_unit_test(test_identity_matches_group),
                cmocka_unit_test(test_identity_matches_empty),
                cmocka_unit_test(test_valid_account_name),
                cmocka_unit_test(test_identity_root),
                cmocka_unit_test(test_identity_lookup_errors),
        };
        return cmocka_run_group_tests_name("users", tests, NULL, NULL);
}
