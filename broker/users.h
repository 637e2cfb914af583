/* SPDX-License-Identifier: MIT */
/* Who a user is, as the policy sees them: a name, a uid, and the names of their groups.
 * Resolved by the broker through NSS; never taken from a client's message. */
#pragma once

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

/* Fills id from the password and group databases. -ENOENT for an unknown user;
 * uid (uid_t)-1 is always refused (-EINVAL). */
int identity_from_uid(uid_t uid, Identity *id);
int identity_from_name(const char *name, Identity *id);
void identity_done(Identity *id);

bool identity_in_group(const Identity *id, const char *group);

/* Whether entry ("alice" or "%wheel") names this identity. */
bool identity_matches(const Identity *id, const char *entry);

/* A plausible user or group name: portable characters only, at most 256 bytes. */
bool valid_account_name(const char *s);

/* Whether entry ("alice" or "%wheel") names an account NSS knows: 1 yes, 0 no, or a
 * negative errno when the lookup itself failed. */
int account_exists(const char *entry);

/* Just the uid of a user name, for the hot path that needs no groups. */
int user_uid_from_name(const char *name, uid_t *ret);
