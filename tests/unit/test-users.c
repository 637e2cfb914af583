/* SPDX-License-Identifier: MIT */
/* common/users.[ch]: policy entries against identities, account-name syntax, the lookups
 * through a fake resolver that knows only the users declared here, and the NSS lookups for
 * the one account every system has (root) and for a random name no system has. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <cmocka.h>

#include "fake-identity-resolver.h"
#include "users.h"

static char *alice_groups[] = { (char *) "alice", (char *) "dev", (char *) "sre-leads" };
static const Identity alice = {
        .name = (char *) "alice", .uid = 1001, .groups = alice_groups, .n_groups = 3
};
static const Identity *const known_users[] = { &alice, NULL };

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

/* ---------------------------------------------------------------------------------------
 * Lookups through a resolver: the fake one, so that only alice exists. */

static int use_fake_resolver(void **state) {
        fake_resolver_install(known_users);
        return 0;
}

static int use_nss(void **state) {
        identity_resolver_set(NULL);
        return 0;
}

static void assert_identity_is_alice(const Identity *id) {
        assert_string_equal(id->name, "alice");
        assert_ptr_not_equal(id->name, alice.name); /* a copy the caller owns */
        assert_int_equal(id->uid, 1001);
        assert_int_equal(id->n_groups, 3);
        for (size_t i = 0; i < 3; i++) {
                assert_string_equal(id->groups[i], alice_groups[i]);
                assert_ptr_not_equal(id->groups[i], alice_groups[i]);
        }
}

static void test_lookups_use_resolver(void **state) {
        Identity id;
        uid_t uid = 12345;

        assert_int_equal(identity_from_uid(1001, &id), 0);
        assert_identity_is_alice(&id);
        identity_done(&id);
        assert_int_equal(identity_from_name("alice", &id), 0);
        assert_identity_is_alice(&id);
        identity_done(&id);
        assert_int_equal(user_uid_from_name("alice", &uid), 0);
        assert_int_equal(uid, 1001);

        uid = 12345;
        assert_int_equal(identity_from_uid(0, &id), -ENOENT); /* not even root */
        assert_int_equal(identity_from_name("root", &id), -ENOENT);
        assert_int_equal(identity_from_name("bob", &id), -ENOENT);
        assert_int_equal(user_uid_from_name("root", &uid), -ENOENT);
        assert_int_equal(uid, 12345);

        assert_int_equal(account_exists("alice"), 1);
        assert_int_equal(account_exists("%alice"), 1);
        assert_int_equal(account_exists("%dev"), 1);
        assert_int_equal(account_exists("%sre-leads"), 1);
        assert_int_equal(account_exists("dev"), 0); /* a group, not a user */
        assert_int_equal(account_exists("%sre"), 0);
        assert_int_equal(account_exists("root"), 0);
        assert_int_equal(account_exists("%root"), 0);
}

static void test_lookups_refuse_bad_input(void **state) {
        /* Refused before the resolver is asked (the fake fails the test if it is). */
        Identity id;
        uid_t uid = 12345;

        assert_int_equal(identity_from_uid((uid_t) -1, &id), -EINVAL);
        assert_int_equal(identity_from_name("-alice", &id), -EINVAL);
        assert_int_equal(identity_from_name("", &id), -EINVAL);
        assert_int_equal(identity_from_name("alice:x", &id), -EINVAL);
        assert_int_equal(identity_from_name(NULL, &id), -EINVAL);
        assert_int_equal(user_uid_from_name("ali ce", &uid), -EINVAL);
        assert_int_equal(user_uid_from_name(NULL, &uid), -EINVAL);
        assert_int_equal(uid, 12345);
}

static void test_lookup_failures_pass_through(void **state) {
        Identity id;
        uid_t uid = 12345;

        fake_resolver_fail_with(-EIO);
        assert_int_equal(identity_from_uid(1001, &id), -EIO);
        assert_int_equal(identity_from_name("alice", &id), -EIO);
        assert_int_equal(user_uid_from_name("alice", &uid), -EIO);
        assert_int_equal(uid, 12345);
        assert_int_equal(account_exists("alice"), -EIO);
        assert_int_equal(account_exists("%dev"), -EIO);
}

static void test_identity_copy(void **state) {
        Identity id;

        assert_int_equal(identity_copy(&alice, &id), 0);
        assert_identity_is_alice(&id);
        identity_done(&id);

        Identity none = { .name = NULL, .uid = (uid_t) -1, .groups = NULL, .n_groups = 0 };
        assert_int_equal(identity_copy(&none, &id), 0);
        assert_null(id.name);
        assert_null(id.groups);
        assert_int_equal(id.n_groups, 0);
        assert_int_equal(id.uid, (uid_t) -1);
        identity_done(&id);
}

/* ---------------------------------------------------------------------------------------
 * NSS itself: only root, which every system has, and a name no system has. */

/* "jit-test-" and 16 random hex digits: a user or group that does not exist. */
static void random_account_name(char *buf, size_t size) {
        uint64_t x;

        assert_int_equal(getrandom(&x, sizeof(x), 0), (ssize_t) sizeof(x));
        assert_true(snprintf(buf, size, "jit-test-%016llx", (unsigned long long) x) < (int) size);
}

static void test_nss_root(void **state) {
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

        assert_int_equal(account_exists("root"), 1);
        assert_int_equal(account_exists("%root"), 1);
}

static void test_nss_unknown(void **state) {
        char name[64], group[65];
        Identity id;
        uid_t uid = 12345;

        random_account_name(name, sizeof(name));
        snprintf(group, sizeof(group), "%%%s", name);

        /* uids of 2^31 and more are handed out by no allocation scheme */
        assert_int_equal(identity_from_uid(3999999999U, &id), -ENOENT);
        assert_int_equal(identity_from_name(name, &id), -ENOENT);
        assert_int_equal(user_uid_from_name(name, &uid), -ENOENT);
        assert_int_equal(uid, 12345);
        assert_int_equal(account_exists(name), 0);
        assert_int_equal(account_exists(group), 0);

        assert_int_equal(identity_from_uid((uid_t) -1, &id), -EINVAL);
        assert_int_equal(identity_from_name("-root", &id), -EINVAL);
        assert_int_equal(user_uid_from_name("ro ot", &uid), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_identity_matches_user),
                cmocka_unit_test(test_identity_matches_group),
                cmocka_unit_test(test_identity_matches_empty),
                cmocka_unit_test(test_valid_account_name),
                cmocka_unit_test_setup_teardown(test_lookups_use_resolver, use_fake_resolver,
                                                use_nss),
                cmocka_unit_test_setup_teardown(test_lookups_refuse_bad_input, use_fake_resolver,
                                                use_nss),
                cmocka_unit_test_setup_teardown(test_lookup_failures_pass_through,
                                                use_fake_resolver, use_nss),
                cmocka_unit_test(test_identity_copy),
                cmocka_unit_test(test_nss_root),
                cmocka_unit_test(test_nss_unknown),
        };
        return cmocka_run_group_tests_name("users", tests, NULL, NULL);
}
