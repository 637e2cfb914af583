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
        /* --command and --as: one command line under sudo; argv NULL for all of sudo. */
        char **argv;        /* --command split into words; argv[0] an absolute path */
        char *run_as_user;  /* NULL: root */
        char *run_as_group; /* NULL: none given */
} ExplainArgs;

/* explain --command TEXT and the command key of a case: the words of text, split as
 * jitctl request splits them (jit_words_split(), no shell), in *ret_argv. The first word
 * must be an absolute path: nothing is searched for, so that the answer does not depend
 * on this host's files. 0, -ENOMEM, or -EINVAL with *ret_why (static text). */
int policy_command_split(const char *text, char ***ret_argv, const char **ret_why);
/* explain --as and the as key of a case: "USER" or "USER:GROUP" into *ret_user and
 * *ret_group (NULL without a group), both malloc'd. 0, -ENOMEM, or -EINVAL. */
int policy_run_as_parse(const char *as, char **ret_user, char **ret_group);

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
