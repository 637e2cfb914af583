/* SPDX-License-Identifier: MIT */
/* jitctl's exit status: its contract with scripts (README.md, "jitctl"). Defined here
 * only; the wire protocol (common/protocol.h) knows nothing of it. */
#pragma once

#include "protocol.h" /* JitError, for jit_error_to_exit_status() */

enum {
        JIT_EXIT_OK = 0,
        JIT_EXIT_FAILURE = 1,
        JIT_EXIT_USAGE = 2,
        JIT_EXIT_REFUSED = 3,
        JIT_EXIT_UNREACHABLE = 4,
        JIT_EXIT_NOT_FOUND = 5,
};

/* The exit status for an error code in a broker's reply: refused 3, not-found 5, any
 * other (_JIT_ERROR_INVALID too: a code from a newer broker) 1 (jitctl-exit.c). */
int jit_error_to_exit_status(JitError e);
