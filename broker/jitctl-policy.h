/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>

/* jitctl policy check: parses path as the broker would and prints a summary of its rules
 * (or, with json, one JSON document). Returns a jitctl exit status: 0 valid, 1 invalid. */
int policy_check_file(const char *path, bool json);
