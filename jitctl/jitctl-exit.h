/* SPDX-License-Identifier: MIT */
/* jitctl's exit status: its contract with scripts, fixed by DESIGN.md. */
#pragma once

/* Until common/protocol.h drops its own copy of these (an enum), it is included first, so
 * that the macros below come after its enum and do not rewrite it. Remove this include
 * together with that copy. */
#include "protocol.h"

#ifndef JIT_EXIT_OK
#define JIT_EXIT_OK 0
#define JIT_EXIT_FAILURE 1
#define JIT_EXIT_USAGE 2
#define JIT_EXIT_REFUSED 3
#define JIT_EXIT_UNREACHABLE 4
#define JIT_EXIT_NOT_FOUND 5
#endif
