/* SPDX-License-Identifier: MIT */
/* The broker's error codes as jitctl's exit status (jitctl-exit.h). */
#include "jitctl-exit.h"

int jit_error_to_exit_status(JitError e) {
        switch (e) {
        case JIT_ERROR_REFUSED:
                return JIT_EXIT_REFUSED;
        case JIT_ERROR_NOT_FOUND:
                return JIT_EXIT_NOT_FOUND;
        default:
                return JIT_EXIT_FAILURE;
        }
}
