/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* User names to uids from the password file, held while the file and nsswitch.conf stay as
 * they were: the PAM check asks for a name at every sudo, and NSS reads and parses the
 * whole file each time. Owned by one thread. */
typedef struct PasswdCache PasswdCache;

/* The system's files (NULL for /etc/passwd and /etc/nsswitch.conf), or others (tests). */
int passwd_cache_new(const char *passwd_path, const char *nsswitch_path, PasswdCache **ret);
void passwd_cache_free(PasswdCache *c);

/* 1 with *ret_uid when name is in the password file and NSS would answer from that file
 * first; 0 when the cache cannot say (not in the file, NSS asks another source first, the
 * file is too large or unreadable: ask NSS); never an error. Both files are stat()ed at
 * every call and read again when either changed (inode, size, mtime or ctime). */
int passwd_cache_lookup(PasswdCache *c, const char *name, uid_t *ret_uid);

/* Whether nsswitch.conf's passwd line (text of the file) consults "files" before any
 * other source; exposed for the unit test. */
bool nsswitch_passwd_files_first(const char *text);
