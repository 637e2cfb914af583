/* SPDX-License-Identifier: MIT */
/* What jitctl-policy.c (check, explain) and jitctl-policy-test.c (test) share: reading a
 * policy file as jitctl does, and reporting the failure of a policy subcommand. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"
#include "policy.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(Policy *, policy_free);

/* The text of path, bounded like the broker reads it, in *ret (malloc'd, NUL-terminated).
 * *ret_warning says what of the broker's ownership rules the file breaks, or NULL.
 * -EINVAL when it is not a regular file, -EFBIG, or another -errno. */
int read_policy(const char *path, char **ret, size_t *ret_len, const char **ret_warning);
int load_policy(const char *path, Policy **ret, char **ret_error, const char **ret_warning);
int report(const char *what, bool json, int status, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
