/* SPDX-License-Identifier: MIT */
/* jitctl policy check / explain / test: the policy read from a file, without the broker
 * (explain also asks the live broker: jitctl-policy-command.c sends that request, this
 * prints it). */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* jitctl policy check: parses path as the broker would and prints a summary of its rules
 * and its warnings (or, with json, one JSON document). Returns a jitctl exit status: 0
 * valid (warnings or not), 1 invalid. */
int policy_check_file(const char *path, bool json);

/* What `policy explain` asks. */
typedef struct ExplainArgs {
        const char *policy; /* decide from this file; NULL: ask the broker */
        const char *user;   /* never NULL once parsed (the caller by default) */
        char **groups;      /* with have_groups: exactly these groups, no NSS */
        size_t n_groups;
        bool have_groups;
        const char *service;
        uint64_t duration; /* 0: the policy's default */
        time_t at;
        bool have_at; /* otherwise now */
        const char *ticket;
        const char *reason;
} ExplainArgs;

/* explain --policy FILE: decides from the file and prints like policy_print_explanation().
 * Returns a jitctl exit status. */
int policy_explain_file(const ExplainArgs *a, bool json);

/* Prints an explain result (the shape of policy_decision_to_json()) for people, or as the
 * one JSON document. Returns 0 when the verdict is auto or approval, 3 when refused, 1
 * when result does not look like a decision. */
int policy_print_explanation(json_object *result, bool json);

/* jitctl policy test CASES [--policy FILE]: runs the cases file against the policy.
 * Returns 0 when every case passes, 1 when one fails or the policy is invalid, 2 when the
 * cases file is malformed. */
int policy_test_file(const char *cases_path, const char *policy_path, bool json);
