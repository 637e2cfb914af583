/* SPDX-License-Identifier: MIT */
/* The policy file (/etc/jit/policy.conf, libconfig): who may ask for what, who approves,
 * for how long. First matching rule wins; no matching rule means refused. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "users.h"

#define POLICY_FILE_MAX (4U * 1024U * 1024U)
#define POLICY_RULES_MAX 10000
#define POLICY_LIST_MAX 1000
#define POLICY_APPROVALS_MAX 16
#define POLICY_TEXT_MAX 256

typedef enum OnExpiry {
        ON_EXPIRY_TERMINATE,
        ON_EXPIRY_WARN,
        ON_EXPIRY_NONE,
} OnExpiry;

typedef struct StringList {
        char **items;
        size_t n;
} StringList;

typedef struct PolicyRule {
        char *name;
        StringList services;
        StringList requesters; /* "user" or "%group" */
        StringList approvers;
        unsigned approvals;    /* distinct approvers needed */
        uint64_t max_duration; /* seconds; 0 means settings.max_duration */
        unsigned line;
} PolicyRule;

typedef struct PolicyProfile {
        char *owner;
        char *environment;
        char *classification;
        char *description;
} PolicyProfile;

typedef struct Policy {
        char *path;
        uint64_t default_duration; /* seconds */
        uint64_t max_duration;
        uint64_t pending_ttl;
        unsigned max_pending_per_user;
        OnExpiry on_expiry;
        PolicyProfile profile;
        PolicyRule *rules;
        size_t n_rules;
} Policy;

/* Parses policy text. On failure returns -EINVAL (or -ENOMEM) and, when ret_error is
 * given, a malloc'd "FILE:LINE: what was expected" message. name is used in messages. */
int policy_parse(const char *text, size_t len, const char *name, Policy **ret, char **ret_error);

/* Reads and parses path. The file must be a regular file owned by root and not writable by
 * group or others (like sshd's StrictModes): a policy anyone can edit is no policy. */
int policy_load(const char *path, Policy **ret, char **ret_error);

void policy_free(Policy *p);

const PolicyRule *policy_match(const Policy *p, const Identity *requester, const char *service);
const PolicyRule *policy_find_rule(const Policy *p, const char *name);
bool policy_rule_is_approver(const PolicyRule *r, const Identity *id);
bool policy_rule_has_service(const PolicyRule *r, const char *service);
/* The longest grant the rule allows, in seconds. */
uint64_t policy_rule_cap(const Policy *p, const PolicyRule *r);

const char *on_expiry_to_string(OnExpiry e);

bool valid_service_name(const char *s);
