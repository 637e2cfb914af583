/* SPDX-License-Identifier: MIT */
/* What every fuzz target shares: libFuzzer's entry points and CHECK, an invariant whose
 * failure aborts (libFuzzer keeps the input as a crash). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where CHECK says what failed; a target that silences stderr defines its own first. */
#ifndef CHECK_REPORT
#define CHECK_REPORT stderr
#endif

#define CHECK(x)                                                                                   \
        do {                                                                                       \
                if (!(x)) {                                                                        \
                        fprintf(CHECK_REPORT, "%s:%d: check failed: %s\n", __FILE__, __LINE__,     \
                                #x);                                                               \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)
