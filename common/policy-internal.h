/* SPDX-License-Identifier: MIT */
/* What the parts of the policy share: common/policy.c (freeing, small accessors),
 * policy-parse.c (the file into a Policy), policy-when.c (time windows and times) and
 * policy-decide.c (matching rules, decisions). Private: not installed, and included by
 * common/policy*.c only; everyone else uses policy.h. */
#pragma once

#include <stdbool.h>
#include <time.h>

#include "policy.h"

/* policy.c */
void string_list_done(StringList *l);
bool string_list_contains(const StringList *l, const char *s);

/* policy-when.c: whether tm (local time) falls in one of the rule's windows; true for a
 * rule without `when`. */
bool rule_in_window_tm(const PolicyRule *r, const struct tm *tm);
