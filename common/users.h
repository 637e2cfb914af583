/* SPDX-License-Identifier: MIT */
/* Who a user is, as the policy sees them: a name, a uid, and the names of their groups.
 * Resolved by the broker through NSS (see IdentityResolver); never taken from a client's
 * message. */
#pragma once

#include "names.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define IDENTITY_GROUPS_MAX 1024

typedef struct Identity {
        char *name;
        uid_t uid;
        char **groups; /* names of all groups, the primary one included */
        size_t n_groups;
} Identity;

/* Fills id from the password and group databases. -ENOENT for an unknown user; uid
 * (uid_t)-1 and a name that is not a valid_account_name() are always refused (-EINVAL). */
int identity_from_uid(uid_t uid, Identity *id);
int identity_from_name(const char *name, Identity *id);
void identity_done(Identity *id);

bool identity_in_group(const Identity *id, const char *group);

/* Whether entry ("alice" or "%wheel") names this identity. */
bool identity_matches(const Identity *id, const char *entry);

/* Whether entry ("alice" or "%wheel") names an account NSS knows: 1 yes, 0 no, or a
 * negative errno when the lookup itself failed. */
int account_exists(const char *entry);

/* Just the uid of a user name, for the hot path that needs no groups. */
int user_uid_from_name(const char *name, uid_t *ret);

/* A deep copy of src (name, uid and groups) into ret. */
int identity_copy(const Identity *src, Identity *ret);

/* Where the lookups above get their answers. Each function returns 0 or a negative errno,
 * -ENOENT for an unknown user; the *_exists ones 1 yes, 0 no, or a negative errno. The
 * identity and uid lookups are only asked about valid_account_name() names, never about uid
 * (uid_t)-1. */
typedef struct IdentityResolver {
        int (*identity_from_uid)(uid_t uid, Identity *ret);
        int (*identity_from_name)(const char *name, Identity *ret);
        int (*uid_from_name)(const char *name, uid_t *ret);
        int (*user_exists)(const char *name);
        int (*group_exists)(const char *name);
} IdentityResolver;

/* The password and group databases through NSS: the resolver unless another is set. */
extern const IdentityResolver identity_resolver_nss;

/* Makes all later lookups use r; NULL restores identity_resolver_nss. Not thread-safe: meant
 * to be called once before any lookup, by unit tests that must not depend on the host. */
void identity_resolver_set(const IdentityResolver *r);
