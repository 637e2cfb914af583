/* SPDX-License-Identifier: MIT */
/* A policy decision as JSON: what `jitctl policy explain --json` prints and what the
 * broker's `explain` op returns, so both read the same. */
#pragma once

#include <json-c/json.h>

#include "policy.h"

/* {"verdict": "auto"|"approval"|"refused", "rule": NAME|null, "message": TEXT|null,
 *  "user": NAME, "service": S, "duration": SECONDS, "cap": SECONDS, "approvers": [...],
 *  "approvals": N, "auto_approve": BOOL, "skipped": [TEXT...], "command": PATH|null,
 *  "argv": [...]|null, "run_as": "USER"|"USER:GROUP"|null, "command_pattern": TEXT|null,
 *  "scope": "any"|"command"|null, "policy_version": HASH, "at": RFC3339}. approvers and
 * approvals are the matched rule's (none and 0 without a rule, 0 for an auto-approving
 * rule); auto_approve is the rule's, or for a decision without a rule (break-glass)
 * whether it was allowed. command, argv and run_as are the query's command line (null for
 * a whole-service request); command_pattern is the matched rule's pattern that matched
 * it (null for a whole-service request or a rule without commands); scope is the matched
 * rule's (null without a rule). Returns NULL on ENOMEM. */
json_object *policy_decision_to_json(const Policy *p, const PolicyQuery *q,
                                     const PolicyDecision *d);
