/* SPDX-License-Identifier: MIT */
/* An IdentityResolver for unit tests: it knows exactly the users of a table, and the groups
 * those users are in, and never asks the host (NSS). Include once, after <cmocka.h>; then
 * fake_resolver_install() the users the test file declares. */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "users.h"

static const Identity *const *fake_users; /* NULL-terminated */
static int fake_failure;                  /* when negative, every lookup fails with it */

static const Identity *fake_user_by_uid(uid_t uid) {
        for (const Identity *const *u = fake_users; u && *u; u++)
                if ((*u)->uid == uid)
                        return *u;
        return NULL;
}

static const Identity *fake_user_by_name(const char *name) {
        for (const Identity *const *u = fake_users; u && *u; u++)
                if (strcmp((*u)->name, name) == 0)
                        return *u;
        return NULL;
}

/* users.c promises to ask only about valid names and uids: hold it to that. */
static int fake_identity_from_uid(uid_t uid, Identity *ret) {
        assert_int_not_equal(uid, (uid_t) -1);
        if (fake_failure < 0)
                return fake_failure;
        const Identity *u = fake_user_by_uid(uid);
        return u ? identity_copy(u, ret) : -ENOENT;
}

static int fake_identity_from_name(const char *name, Identity *ret) {
        assert_true(valid_account_name(name));
        if (fake_failure < 0)
                return fake_failure;
        const Identity *u = fake_user_by_name(name);
        return u ? identity_copy(u, ret) : -ENOENT;
}

static int fake_uid_from_name(const char *name, uid_t *ret) {
        assert_true(valid_account_name(name));
        if (fake_failure < 0)
                return fake_failure;
        const Identity *u = fake_user_by_name(name);
        if (!u)
                return -ENOENT;
        *ret = u->uid;
        return 0;
}

static int fake_user_exists(const char *name) {
        if (fake_failure < 0)
                return fake_failure;
        return fake_user_by_name(name) != NULL;
}

static int fake_group_exists(const char *name) {
        if (fake_failure < 0)
                return fake_failure;
        for (const Identity *const *u = fake_users; u && *u; u++)
                if (identity_in_group(*u, name))
                        return 1;
        return 0;
}

static const IdentityResolver fake_resolver = {
        .identity_from_uid = fake_identity_from_uid,
        .identity_from_name = fake_identity_from_name,
        .uid_from_name = fake_uid_from_name,
        .user_exists = fake_user_exists,
        .group_exists = fake_group_exists,
};

/* From now on the users that exist are users (NULL-terminated), and the groups that exist are
 * theirs; lookups succeed again. */
static inline void fake_resolver_install(const Identity *const *users) {
        fake_users = users;
        fake_failure = 0;
        identity_resolver_set(&fake_resolver);
}

/* Every lookup fails with error (a negative errno) until 0 is given. */
static inline void fake_resolver_fail_with(int error) {
        fake_failure = error;
}
