/* SPDX-License-Identifier: MIT */
/* The host's fleet credentials: the file the policy's fleet.credentials names, in libpq's
 * password-file format, one line host:port:database:role:password as `jitctl fleet
 * add-host` prints it (docs/fleet.md). */
#pragma once

#include <stddef.h>

#define FLEET_CREDENTIALS_FILE_MAX 4096 /* bytes */
#define FLEET_ROLE_MAX 63               /* bytes: PostgreSQL's longest name */
#define FLEET_PASSWORD_MAX 1024         /* bytes */

typedef struct FleetCredentials {
        char *role;
        char *password; /* wiped when freed */
} FleetCredentials;

/* The first entry of text (len bytes; '#' lines and blank lines skipped, "\:" and "\\"
 * unescaped): 0, or -EINVAL with *ret_error saying what is wrong (never the password). */
int fleet_credentials_parse(const char *text, size_t len, FleetCredentials *ret, char **ret_error);

/* Reads path: a regular file owned by root with no access for group or others (libpq
 * would ignore it otherwise, and the password is the host's identity in the fleet). 0, or
 * -errno with *ret_error the reason, naming the file. */
int fleet_credentials_read(const char *path, FleetCredentials *ret, char **ret_error);

void fleet_credentials_done(FleetCredentials *c);
