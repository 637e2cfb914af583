/* SPDX-License-Identifier: MIT */
/* The policy file (/etc/jit/policy.conf, libconfig): who may ask for what, who approves,
 * for how long. First matching rule wins; no matching rule means refused. */
#pragma once

#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "command-line.h"
#include "command-match.h"
#include "host-selector.h"
#include "users.h"

#define POLICY_FILE_MAX (4U * 1024U * 1024U)
#define POLICY_RULES_MAX 10000
#define POLICY_LIST_MAX 1000
#define POLICY_APPROVALS_MAX 16
#define POLICY_TEXT_MAX 256
#define POLICY_WINDOWS_MAX 64
#define POLICY_REASON_MIN_MAX 1024
#define POLICY_HASH_LEN 64      /* hex digits of a SHA-256 */
#define POLICY_COMMANDS_MAX 256 /* command patterns per rule */

typedef enum OnExpiry {
        ON_EXPIRY_TERMINATE,
        ON_EXPIRY_WARN,
        ON_EXPIRY_NONE,
        _ON_EXPIRY_MAX,
        _ON_EXPIRY_INVALID = -1,
} OnExpiry;

/* What a rule grants: all of a service, or (for sudo) single commands only. */
typedef enum PolicyScope {
        POLICY_SCOPE_ANY,     /* whole-service requests and, for sudo, single commands */
        POLICY_SCOPE_COMMAND, /* single commands under sudo only */
        _POLICY_SCOPE_MAX,
        _POLICY_SCOPE_INVALID = -1,
} PolicyScope;

typedef enum PolicySigned {
        POLICY_SIGNED_DEFAULT = 0,
        POLICY_SIGNED_NO,
        POLICY_SIGNED_YES,
} PolicySigned;

/* Where approvers' SSH keys are listed, in OpenSSH's allowed_signers format. */
#define POLICY_ALLOWED_SIGNERS_DEFAULT "/etc/jit/allowed_signers"

typedef struct StringList {
        char **items;
        size_t n;
} StringList;

/* One entry of a rule's `when`, e.g. "Mon-Fri 08:00-20:00". A window starts on each of
 * its days at start and ends at end; when end <= start it runs past midnight and ends on
 * the next day ("Mon 22:00-06:00" is Monday 22:00 to Tuesday 06:00). */
typedef struct PolicyWindow {
        uint8_t days;   /* bit 0 Monday .. bit 6 Sunday */
        uint16_t start; /* minutes after midnight, 0..1439 */
        uint16_t end;   /* minutes after midnight, 1..1440 (24:00) */
} PolicyWindow;

typedef struct PolicyRule {
        char *name;
        StringList services;
        StringList requesters; /* "user" or "%group" */
        StringList approvers;  /* empty only when auto_approve */
        unsigned approvals;    /* distinct approvers needed */
        uint64_t max_duration; /* seconds; 0 means settings.max_duration */
        unsigned line;
        bool auto_approve;
        bool allow_self_approval; /* a listed approver may approve their own request */
        /* `signed`: approvals must carry a valid SSH signature (docs/signed-approvals.md).
         * POLICY_SIGNED_DEFAULT: required for fleet requests, not for this host's own. */
        PolicySigned signed_approvals;
        unsigned reason_min_length; /* bytes; 0 = any */
        char *ticket_pattern;       /* POSIX ERE as written; NULL = no ticket needed */
        regex_t *ticket_regex;      /* compiled ticket_pattern */
        StringList when;            /* windows as written, for messages; empty = always */
        PolicyWindow *windows;      /* when, parsed */
        /* Single commands under sudo (command-match.h): without commands any command a
         * rule covering sudo allows; with them, only those one of the patterns matches. */
        CommandPattern *commands;
        size_t n_commands;
        StringList run_as; /* "user" or "user:group" a command may run as; never empty
                              (["root"] when the file says nothing) */
        PolicyScope scope; /* POLICY_SCOPE_COMMAND when the file says so or the rule has
                              commands */
        /* The fleet hosts this rule may grant (docs/fleet.md); NULL without `hosts`. Read
         * and checked; no decision looks at it yet. */
        HostSelector *hosts;
        char *hosts_text; /* canonical form (host_selector_format()) */
} PolicyRule;

/* The top-level break_glass group: who may take an emergency grant without approval. */
typedef struct PolicyBreakGlass {
        bool enabled; /* the policy has a break_glass group */
        StringList requesters;
        StringList services;
        uint64_t max_duration;
        unsigned line;
} PolicyBreakGlass;

/* The policy's notify section: programs the broker runs when something happens to a request
 * (docs/notify.md). */
#define POLICY_NOTIFY_HOOKS_MAX 16
#define POLICY_NOTIFY_ARGS_MAX 32
#define POLICY_NOTIFY_ARG_MAX 1024 /* bytes, each argument and the command */
#define POLICY_NOTIFY_GROUPS_MAX 16
#define POLICY_NOTIFY_TIMEOUT_DEFAULT 10 /* seconds */
#define POLICY_NOTIFY_TIMEOUT_MAX 300
#define POLICY_NOTIFY_RETRY_DEFAULT 5 /* seconds: the first wait after a failure */
#define POLICY_NOTIFY_RETRY_MAX 3600
#define POLICY_NOTIFY_USER_DEFAULT "jit-notify"

/* What a hook can be told about, by the names the policy uses. */
typedef enum NotifyEvent {
        NOTIFY_FILED,        /* a request was filed (pending, or active at once by its rule) */
        NOTIFY_APPROVAL,     /* one approval of several; more are needed */
        NOTIFY_APPROVED,     /* the grant became active (the last approval, or auto_approve) */
        NOTIFY_DENIED,       /* an approver or root refused it */
        NOTIFY_CANCELLED,    /* its requester withdrew it */
        NOTIFY_EXPIRED,      /* the grant ran out */
        NOTIFY_REVOKED,      /* the grant was ended early */
        NOTIFY_TIMED_OUT,    /* it waited longer than pending_ttl */
        NOTIFY_BREAK_GLASS,  /* an emergency grant was taken */
        NOTIFY_ACKNOWLEDGED, /* a break-glass grant was reviewed */
        NOTIFY_WITHDRAWN,    /* a reload no longer allows it */
        NOTIFY_CONSUMED,     /* a one-shot grant's session closed */
        _NOTIFY_EVENT_MAX,
        _NOTIFY_EVENT_INVALID = -1,
} NotifyEvent;

typedef struct PolicyNotifyHook {
        char *command;     /* absolute path */
        StringList args;   /* may be empty */
        uint32_t events;   /* 1 << NotifyEvent for each event it wants */
        uint64_t timeout;  /* seconds */
        uint64_t retry;    /* seconds before the first retry; doubled after each failure */
        char *user;        /* runs as this user (never root) */
        StringList groups; /* its supplementary groups, by name; may be empty */
        unsigned line;
} PolicyNotifyHook;

/* The policy's fleet section (docs/fleet.md): this host as one of a fleet whose requests,
 * approvals and revocations live in PostgreSQL. Read and checked; the broker does nothing
 * with it yet. */
#define POLICY_FLEET_DATABASE_MAX 1024 /* bytes of the connection URI */
typedef struct PolicyFleet {
        bool enabled;      /* the policy has a fleet section */
        char *database;    /* libpq connection URI, "postgresql://..."; never a password */
        char *host;        /* this host's fleet name (fleet_host_name_is_valid()) */
        char *credentials; /* absolute path of the host's libpq password file */
        /* absolute path of the shared poll login's password file; NULL: the poll runs on
         * the host's own connection */
        char *poll_credentials;
        uint64_t max_offline; /* seconds without the store after which fleet grants are no
                                 longer honoured; 0: until they end */
        unsigned line;
} PolicyFleet;

/* Free-form labels of profile.labels, at most this many. */
#define POLICY_PROFILE_LABELS_MAX 16

typedef struct PolicyLabel {
        char *key;   /* host_label_key_is_valid() */
        char *value; /* host_label_value_is_valid() */
} PolicyLabel;

typedef struct PolicyProfile {
        char *owner;
        char *environment;
        char *classification;
        char *description;
        PolicyLabel *labels; /* profile.labels, in file order */
        size_t n_labels;
} PolicyProfile;

typedef struct Policy {
        char *path;
        uint64_t default_duration; /* seconds */
        uint64_t max_duration;
        uint64_t pending_ttl;
        uint64_t audit_retention; /* seconds; 0 keeps audit records in the live log forever */
        uint64_t expiry_warning; /* seconds before a grant ends that its sessions are told; 0: never
                                  */
        char *audit_group;       /* may read the whole audit log; NULL: "jit-auditors" */
        char *allowed_signers; /* settings.allowed_signers; NULL: POLICY_ALLOWED_SIGNERS_DEFAULT */
        unsigned max_pending_per_user;
        /* Requests one user may file in any hour, cancelled ones included (root and
         * break-glass are not counted). */
        unsigned max_filings_per_hour;
        /* Free space kept on the database's file system for ending grants: new requests are
         * refused below it. Bytes, or (when disk_reserve_percent > 0) that share of the file
         * system; both 0: no reserve. */
        uint64_t disk_reserve;
        unsigned disk_reserve_percent;
        /* Seconds after which ended requests are archived and leave the live tables; 0 keeps
         * them forever. */
        uint64_t request_retention;
        OnExpiry on_expiry;
        PolicyProfile profile;
        PolicyRule *rules;
        size_t n_rules;
        PolicyBreakGlass break_glass;
        PolicyFleet fleet;
        PolicyNotifyHook *notify; /* the notify section, in file order */
        size_t n_notify;
        /* Things that are valid but probably not meant ("FILE:LINE: group \"x\" does not
         * exist"), in file order. */
        char **warnings;
        size_t n_warnings;
        /* The policy version: lowercase hex SHA-256 of the exact file bytes. */
        char hash[POLICY_HASH_LEN + 1];
} Policy;

/* Parses policy text. On failure returns -EINVAL (or -ENOMEM) and, when ret_error is
 * given, a malloc'd "FILE:LINE: what was expected" message. name is used in messages. */
int policy_parse(const char *text, size_t len, const char *name, Policy **ret, char **ret_error);

/* Reads and parses path. The file must be a regular file owned by root and not writable by
 * group or others (like sshd's StrictModes): a policy anyone can edit is no policy. */
int policy_load(const char *path, Policy **ret, char **ret_error);

void policy_free(Policy *p);

/* "FILE:LINE: message" for a libconfig setting ("FILE: message" without one), as every
 * error of a policy or cases file reads. Returns a malloc'd string or NULL. */
struct config_setting_t;
char *config_message_at(const char *file, const struct config_setting_t *s, const char *fmt,
                        va_list ap) __attribute__((format(printf, 3, 0)));

/* The first rule whose services and requesters match, ignoring `when`: the rule that would
 * decide a whole-service request at some time of the week (rules with scope = "command"
 * never do). policy_decide() is what decides a request. */
/* Whether approvals under rule must be signed: its `signed` when the file says, else only for
 * fleet requests. */
bool policy_rule_requires_signature(const PolicyRule *rule, bool fleet_request);
/* settings.allowed_signers, or its default. */
const char *policy_allowed_signers(const Policy *p);

const PolicyRule *policy_match(const Policy *p, const Identity *requester, const char *service);
/* The first rule that matches a whole-service request at the instant at, `when`
 * included. */
const PolicyRule *policy_match_at(const Policy *p, const Identity *requester, const char *service,
                                  time_t at);
/* Whether at falls in one of the rule's windows (always true for a rule without `when`),
 * in the host's local time. */
bool policy_rule_in_window(const PolicyRule *r, time_t at);
const PolicyRule *policy_find_rule(const Policy *p, const char *name);
bool policy_rule_is_approver(const PolicyRule *r, const Identity *id);
bool policy_rule_has_service(const PolicyRule *r, const char *service);
/* Whether the rule's services are exactly ["sudo"]: only such a rule may have commands or
 * scope = "command". */
bool policy_rule_is_sudo_only(const PolicyRule *r);
/* The rule's first pattern that matches the command line (command_pattern_match()), or
 * NULL. A rule without commands has none: see policy_rule_allows_command(). */
const CommandPattern *policy_rule_find_pattern(const PolicyRule *r, const JitCommandLine *cl);
/* Whether the rule's run_as lists "user" (NULL: root), or "user:group" when group is
 * given. */
bool policy_rule_allows_run_as(const PolicyRule *r, const char *user, const char *group);
/* Whether the rule may grant the command line: its commands are empty or one matches, and
 * its run-as is allowed. Services, requesters and when are not looked at. */
bool policy_rule_allows_command(const PolicyRule *r, const JitCommandLine *cl);
/* The longest grant the rule allows, in seconds. */
uint64_t policy_rule_cap(const Policy *p, const PolicyRule *r);

/* The host's fleet labels: the profile's owner, environment and classification, those that
 * are set and valid label values (host_label_value_is_valid()), in that order, then the
 * profile's labels group in file order. Points into p. Returns how many were written to
 * ret. */
#define POLICY_HOST_LABELS_MAX (3 + POLICY_PROFILE_LABELS_MAX)
size_t policy_host_labels(const Policy *p, HostLabel ret[static POLICY_HOST_LABELS_MAX]);

/* "any", "command"; NULL out of range. And back: _POLICY_SCOPE_INVALID for anything else. */
const char *policy_scope_to_string(PolicyScope s);
PolicyScope policy_scope_from_string(const char *s);

/* "terminate", "warn", "none"; NULL out of range. And back: _ON_EXPIRY_INVALID for
 * anything else. */
const char *on_expiry_to_string(OnExpiry e);
OnExpiry on_expiry_from_string(const char *s);

/* Parses one `when` entry. On failure returns -EINVAL and, when ret_error is given, a
 * malloc'd explanation naming the bad part. */
int policy_window_parse(const char *s, PolicyWindow *ret, char **ret_error);
/* Whether at falls in w, in local time. */
bool policy_window_contains(const PolicyWindow *w, time_t at);

/* A point in time as written in `jitctl policy explain --at` and in case files: a
 * timestamp as timestamp_parse() in timeutil.h reads it ("now", "2024-05-06 10:00" in
 * local time, "2024-05-06T10:00:00Z", "today", "-1h", ...), or "Mon 10:00": that weekday
 * and time in the reference week that starts on Monday 2024-01-01, local time (so that
 * case files mean the same every week). now is used for "now" and relative times. -EINVAL
 * (or -ERANGE, as timestamp_parse()) when s is none of these or names a time that does
 * not exist. */
int policy_time_parse(const char *s, time_t now, time_t *ret);

/* Deciding a request. */

typedef struct PolicyQuery {
        const Identity *requester;
        const char *service;
        uint64_t duration;  /* seconds; 0 = not given: default_duration, clamped to the cap */
        time_t at;          /* windows are evaluated in local time at this instant */
        const char *ticket; /* NULL (or "") = none given */
        const char *reason; /* NULL = not checked */
        /* One command line under sudo (service "sudo"); NULL: the whole service. */
        const JitCommandLine *command;
} PolicyQuery;

typedef enum PolicyVerdict {
        VERDICT_REFUSED,
        VERDICT_NEEDS_APPROVAL,
        VERDICT_AUTO_APPROVE,
        _POLICY_VERDICT_MAX,
        _POLICY_VERDICT_INVALID = -1,
} PolicyVerdict;

typedef struct PolicyDecision {
        PolicyVerdict verdict;
        const PolicyRule *rule; /* first matching rule, NULL when none matched */
        uint64_t duration;      /* effective duration */
        uint64_t cap;           /* longest grant the rule allows; 0 without a rule */
        char *message;          /* malloc'd one-line reason when refused, else NULL */
        char **skipped;         /* why each rule before `rule` (all rules when none matched)
                                   did not match, e.g. "rule \"x\": alice is not in its
                                   requesters" */
        size_t n_skipped;
        /* The pattern of `rule` that matched the query's command; NULL for a whole-service
         * request and for a rule without commands. */
        const CommandPattern *command_pattern;
} PolicyDecision;

/* First matching rule wins (services, scope, requesters, when and, for a command request,
 * commands and run_as); no match refuses. A command request for another service than sudo,
 * or with a command line jit_command_line_check() refuses, is refused without a rule. On
 * the matched rule there is no fall-through: a missing or non-matching ticket, a reason
 * shorter than reason_min_length (when q->reason is given) or a duration over the cap
 * refuses. Otherwise auto-approve or needs approval, as the rule says. Returns 0 or
 * -ENOMEM; on failure ret needs no cleanup. */
int policy_decide(const Policy *p, const PolicyQuery *q, PolicyDecision *ret);

/* Break-glass: allowed (VERDICT_AUTO_APPROVE) when requester and service match
 * break_glass; duration 0 means its max_duration, a longer one is refused naming it. rule
 * stays NULL. Returns 0 or -ENOMEM. */
int policy_break_glass_decide(const Policy *p, const Identity *requester, const char *service,
                              uint64_t duration, PolicyDecision *ret);

void policy_decision_done(PolicyDecision *d);

/* "filed", "approval", "approved", ...: the names of the notify section's events; NULL out
 * of range. And back: _NOTIFY_EVENT_INVALID for anything else. */
const char *notify_event_to_string(NotifyEvent e);
NotifyEvent notify_event_from_string(const char *s);
/* Whether hook h wants event e. */
bool policy_notify_hook_wants(const PolicyNotifyHook *h, NotifyEvent e);

/* "refused", "approval", "auto"; NULL out of range. And back: _POLICY_VERDICT_INVALID for
 * anything else. */
const char *policy_verdict_to_string(PolicyVerdict v);
PolicyVerdict policy_verdict_from_string(const char *s);
