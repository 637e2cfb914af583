/* SPDX-License-Identifier: MIT */
/* Reading the policy file (libconfig) into a Policy: every setting checked, the first
 * error as "FILE:LINE: what was expected", warnings for what is valid but probably not
 * meant (unknown users and groups, unanchored ticket patterns). */
#include "policy.h"

#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <openssl/evp.h>
#include <search.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "duration.h"
#include "names.h"
#include "policy-internal.h"

/* Warnings kept, and names looked up in NSS, per policy: a huge generated policy must not
 * turn a reload into thousands of directory lookups or a wall of text. */
#define POLICY_WARNINGS_MAX 100
#define POLICY_NSS_CHECKS_MAX 1000

typedef struct Parser {
        const char *name;
        char *error; /* first error only: later ones are often consequences */
        Policy *p;   /* warnings go here */
        void *seen;  /* tsearch tree of user and %group entries already looked up */
        size_t n_seen;
        size_t n_warnings_dropped;
} Parser;

static int fail(Parser *ps, const config_setting_t *s, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

char *config_message_at(const char *file, const config_setting_t *s, const char *fmt, va_list ap) {
        _cleanup_free_ char *msg = NULL;
        char *ret = NULL;

        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        unsigned line = s ? config_setting_source_line(s) : 0;
        int k = line > 0 ? asprintf(&ret, "%s:%u: %s", file, line, msg ?: "out of memory")
                         : asprintf(&ret, "%s: %s", file, msg ?: "out of memory");
        return k < 0 ? NULL : ret;
}

static int fail(Parser *ps, const config_setting_t *s, const char *fmt, ...) {
        va_list ap;

        if (ps->error)
                return -EINVAL; /* the first error only: later ones are often consequences */
        va_start(ap, fmt);
        ps->error = config_message_at(ps->name, s, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

static void warn(Parser *ps, const config_setting_t *s, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Adds "FILE:LINE: text" to the policy's warnings. Warnings are advice: running out of
 * memory for one drops it rather than failing the policy. */
static void warn(Parser *ps, const config_setting_t *s, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL, *line = NULL;
        va_list ap;

        if (ps->p->n_warnings >= POLICY_WARNINGS_MAX) {
                ps->n_warnings_dropped++;
                return;
        }
        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        if (!msg)
                return;
        unsigned n = s ? config_setting_source_line(s) : 0;
        if ((n > 0 ? asprintf(&line, "%s:%u: %s", ps->name, n, msg)
                   : asprintf(&line, "%s: %s", ps->name, msg)) < 0)
                return;
        char **w = reallocarray(ps->p->warnings, ps->p->n_warnings + 1, sizeof(char *));
        if (!w)
                return;
        ps->p->warnings = w;
        w[ps->p->n_warnings++] = TAKE_PTR(line);
}

static int compare_strings(const void *a, const void *b) {
        return strcmp(a, b);
}

/* Warns once per name about a user or %group that NSS does not know: a typo in a group
 * name is otherwise a rule that silently never matches. e is where the name is written. */
static int check_principal(Parser *ps, const config_setting_t *e, const char *v) {
        if (ps->n_seen >= POLICY_NSS_CHECKS_MAX) {
                if (ps->n_seen++ == POLICY_NSS_CHECKS_MAX)
                        warn(ps, e,
                             "more than %u distinct users and groups: "
                             "the rest were not checked against the system",
                             POLICY_NSS_CHECKS_MAX);
                return 0;
        }
        char *copy = strdup(v);
        if (!copy)
                return -ENOMEM;
        void **node = tsearch(copy, &ps->seen, compare_strings);
        if (!node) {
                free(copy);
                return -ENOMEM;
        }
        if (*node != copy) { /* looked up already */
                free(copy);
                return 0;
        }
        ps->n_seen++;

        bool group = v[0] == '%';
        int r = account_exists(v);
        if (r == -ENOMEM)
                return r;
        if (r == 0)
                warn(ps, e, "%s \"%s\" does not exist", group ? "group" : "user",
                     group ? v + 1 : v);
        else if (r < 0)
                warn(ps, e, "cannot look up %s \"%s\": %s", group ? "group" : "user",
                     group ? v + 1 : v, strerror(-r));
        return 0;
}

/* check_principal() for each string of a list of requesters or approvers. */
static int check_principals(Parser *ps, const config_setting_t *list) {
        for (int i = 0; i < config_setting_length(list); i++) {
                const config_setting_t *e = config_setting_get_elem(list, (unsigned) i);
                const char *v = config_setting_get_string(e);
                int r;

                if (v && (r = check_principal(ps, e, v)) < 0)
                        return r;
                if (ps->n_seen > POLICY_NSS_CHECKS_MAX)
                        return 0;
        }
        return 0;
}

static bool valid_short_text(const char *s) {
        return strlen(s) <= POLICY_TEXT_MAX;
}

static bool valid_principal(const char *s) {
        return s[0] == '%' ? valid_account_name(s + 1) : valid_account_name(s);
}

/* An entry of run_as: "user" or "user:group". */
static bool valid_run_as(const char *s) {
        const char *colon = strchr(s, ':');
        char user[POLICY_TEXT_MAX + 1];

        if (!colon)
                return valid_account_name(s);
        if ((size_t) (colon - s) >= sizeof(user))
                return false;
        memcpy(user, s, (size_t) (colon - s));
        user[colon - s] = '\0';
        return valid_account_name(user) && valid_account_name(colon + 1);
}

/* Checks that every member of group s is one of the known keys. */
static int check_keys(Parser *ps, const config_setting_t *s, const char *what,
                      const char *const *known) {
        for (int i = 0; i < config_setting_length(s); i++) {
                const config_setting_t *m = config_setting_get_elem(s, (unsigned) i);
                const char *key = config_setting_name(m);
                bool ok = false;

                for (const char *const *k = known; *k; k++)
                        if (STREQ(*k, key))
                                ok = true;
                if (ok)
                        continue;

                char expected[512] = "";
                for (const char *const *k = known; *k; k++) {
                        if (expected[0])
                                strncat(expected, ", ", sizeof(expected) - strlen(expected) - 1);
                        strncat(expected, *k, sizeof(expected) - strlen(expected) - 1);
                }
                return fail(ps, m, "%s: unknown key '%s' (expected one of: %s)", what, key,
                            expected);
        }
        return 0;
}

static int get_string(Parser *ps, const config_setting_t *s, const char *what, char **ret) {
        if (config_setting_type(s) != CONFIG_TYPE_STRING)
                return fail(ps, s, "%s: expected a string", what);
        const char *v = config_setting_get_string(s);
        if (strlen(v) > POLICY_TEXT_MAX)
                return fail(ps, s, "%s: longer than %u bytes", what, POLICY_TEXT_MAX);
        free(*ret);
        *ret = strdup(v);
        return *ret ? 0 : -ENOMEM;
}

static int get_duration(Parser *ps, const config_setting_t *s, const char *what, uint64_t *ret) {
        if (config_setting_type(s) != CONFIG_TYPE_STRING)
                return fail(ps, s, "%s: expected a duration string such as \"30m\" or \"1h30m\"",
                            what);
        const char *v = config_setting_get_string(s);
        int r = duration_parse(v, ret);
        if (r == -ERANGE)
                return fail(ps, s, "%s: \"%s\" is longer than the maximum of 366d", what, v);
        if (r < 0)
                return fail(
                        ps, s,
                        "%s: \"%s\" is not a duration (expected e.g. \"90s\", \"30m\", \"1h30m\", \"2h\", \"1d\")",
                        what, v);
        return 0;
}

static int get_uint(Parser *ps, const config_setting_t *s, const char *what, unsigned min,
                    unsigned max, unsigned *ret) {
        if (config_setting_type(s) != CONFIG_TYPE_INT &&
            config_setting_type(s) != CONFIG_TYPE_INT64)
                return fail(ps, s, "%s: expected an integer", what);
        long long v = config_setting_get_int64(s);
        if (config_setting_type(s) == CONFIG_TYPE_INT)
                v = config_setting_get_int(s);
        if (v < (long long) min || v > (long long) max)
                return fail(ps, s, "%s: %lld is out of range (expected %u..%u)", what, v, min, max);
        *ret = (unsigned) v;
        return 0;
}

/* settings.disk_reserve: "0" (none), a size with a binary unit ("512K", "64M", "1G",
 * "1T") or a share of the file system ("5%", 1-50). */
static int get_disk_reserve(Parser *ps, const config_setting_t *s, const char *what,
                            uint64_t *ret_bytes, unsigned *ret_percent) {
        static const struct {
                char unit;
                unsigned shift;
        } units[] = { { 'K', 10 }, { 'M', 20 }, { 'G', 30 }, { 'T', 40 } };
        const char *v =
                config_setting_type(s) == CONFIG_TYPE_STRING ? config_setting_get_string(s) : NULL;
        char *end;

        if (!v)
                return fail(ps, s, "%s: expected a size string such as \"64M\", \"1G\" or \"5%%\"",
                            what);
        if (STREQ(v, "0")) {
                *ret_bytes = 0;
                *ret_percent = 0;
                return 0;
        }
        errno = 0;
        unsigned long long n = v[0] >= '0' && v[0] <= '9' ? strtoull(v, &end, 10) : 0;
        if (n == 0 || errno != 0 || end[0] == '\0' || end[1] != '\0')
                return fail(ps, s,
                            "%s: \"%s\" is not a size (expected \"0\", a whole number with K, M, G "
                            "or T, e.g. \"64M\", or a percentage such as \"5%%\")",
                            what, v);
        if (end[0] == '%') {
                if (n > 50)
                        return fail(ps, s, "%s: \"%s\" is more than 50%% of the file system", what,
                                    v);
                *ret_bytes = 0;
                *ret_percent = (unsigned) n;
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                if (end[0] != units[i].unit)
                        continue;
                if (n > (16ULL << 40) >> units[i].shift)
                        return fail(ps, s, "%s: \"%s\" is larger than the maximum of 16T", what, v);
                *ret_bytes = (uint64_t) n << units[i].shift;
                *ret_percent = 0;
                return 0;
        }
        return fail(ps, s,
                    "%s: \"%s\" is not a size (expected \"0\", a whole number with K, M, G or T, "
                    "e.g. \"64M\", or a percentage such as \"5%%\")",
                    what, v);
}

static int get_bool(Parser *ps, const config_setting_t *s, const char *what, bool *ret) {
        if (config_setting_type(s) != CONFIG_TYPE_BOOL)
                return fail(ps, s, "%s: expected true or false", what);
        *ret = config_setting_get_bool(s);
        return 0;
}

static int get_string_list(Parser *ps, const config_setting_t *s, const char *what,
                           bool (*valid)(const char *), const char *valid_desc, StringList *ret) {
        if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
            config_setting_type(s) != CONFIG_TYPE_LIST)
                return fail(ps, s, "%s: expected a list of strings like [\"a\", \"b\"]", what);
        int n = config_setting_length(s);
        if (n == 0)
                return fail(ps, s, "%s: must not be empty", what);
        if (n > POLICY_LIST_MAX)
                return fail(ps, s, "%s: more than %u entries", what, POLICY_LIST_MAX);

        string_list_done(ret);
        ret->items = calloc((size_t) n, sizeof(char *));
        if (!ret->items)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                const config_setting_t *e = config_setting_get_elem(s, (unsigned) i);
                if (config_setting_type(e) != CONFIG_TYPE_STRING)
                        return fail(ps, e, "%s: entry %d is not a string", what, i + 1);
                const char *v = config_setting_get_string(e);
                if (!valid(v))
                        return fail(ps, e, "%s: \"%s\" is not %s", what, v, valid_desc);
                if (string_list_contains(ret, v))
                        return fail(ps, e, "%s: \"%s\" is listed twice", what, v);
                ret->items[ret->n] = strdup(v);
                if (!ret->items[ret->n])
                        return -ENOMEM;
                ret->n++;
        }
        return 0;
}

static const char *const settings_keys[] = {
        "default_duration",
        "max_duration",
        "pending_ttl",
        "max_pending_per_user",
        "on_expiry",
        "audit_retention",
        "audit_group",
        "expiry_warning",
        "max_filings_per_hour",
        "disk_reserve",
        "request_retention",
        "allowed_signers",
        NULL,
};
static const char *const profile_keys[] = { "owner",       "environment", "classification",
                                            "description", "labels",      NULL };
static const char *const rule_keys[] = {
        "name",
        "services",
        "requesters",
        "approvers",
        "approvals",
        "max_duration",
        "auto_approve",
        "when",
        "ticket_pattern",
        "reason_min_length",
        "allow_self_approval",
        "signed",
        "commands",
        "run_as",
        "scope",
        "hosts",
        NULL,
};
static const char *const break_glass_keys[] = { "requesters", "services", "max_duration", NULL };
static const char *const notify_keys[] = { "command", "args", "events", "timeout",
                                           "retry",   "user", "groups", NULL };
static const char *const fleet_keys[] = { "database",         "host", "credentials", "max_offline",
                                          "poll_credentials", NULL };
static const char *const top_keys[] = { "settings", "profile", "rules", "break_glass",
                                        "notify",   "fleet",   NULL };

static bool has_space_or_control(const char *s);

static int parse_settings(Parser *ps, const config_setting_t *s, Policy *p) {
        const config_setting_t *m;
        int r;

        if (!config_setting_is_group(s))
                return fail(ps, s, "settings: expected a group { ... }");
        r = check_keys(ps, s, "settings", settings_keys);
        if (r < 0)
                return r;
        if ((m = config_setting_get_member(s, "default_duration")) &&
            (r = get_duration(ps, m, "settings.default_duration", &p->default_duration)) < 0)
                return r;
        if ((m = config_setting_get_member(s, "max_duration")) &&
            (r = get_duration(ps, m, "settings.max_duration", &p->max_duration)) < 0)
                return r;
        if ((m = config_setting_get_member(s, "pending_ttl")) &&
            (r = get_duration(ps, m, "settings.pending_ttl", &p->pending_ttl)) < 0)
                return r;
        if ((m = config_setting_get_member(s, "max_pending_per_user")) &&
            (r = get_uint(ps, m, "settings.max_pending_per_user", 1, 1000,
                          &p->max_pending_per_user)) < 0)
                return r;
        if ((m = config_setting_get_member(s, "expiry_warning")) &&
            (r = get_duration(ps, m, "settings.expiry_warning", &p->expiry_warning)) < 0)
                return r;
        if ((m = config_setting_get_member(s, "audit_retention")) &&
            (r = get_duration(ps, m, "settings.audit_retention", &p->audit_retention)) < 0)
                return r;
        if ((m = config_setting_get_member(s, "max_filings_per_hour")) &&
            (r = get_uint(ps, m, "settings.max_filings_per_hour", 1, 10000,
                          &p->max_filings_per_hour)) < 0)
                return r;
        if ((m = config_setting_get_member(s, "disk_reserve")) &&
            (r = get_disk_reserve(ps, m, "settings.disk_reserve", &p->disk_reserve,
                                  &p->disk_reserve_percent)) < 0)
                return r;
        if ((m = config_setting_get_member(s, "request_retention"))) {
                /* A duration, or "forever": ended requests stay in the live tables. */
                const char *v = config_setting_type(m) == CONFIG_TYPE_STRING
                                        ? config_setting_get_string(m)
                                        : NULL;
                if (v && STREQ(v, "forever"))
                        p->request_retention = 0;
                else if (!v || duration_parse(v, &p->request_retention) < 0)
                        return fail(ps, m,
                                    "settings.request_retention: expected a duration such as "
                                    "\"30d\" or \"90d\" (at most 366d), or \"forever\"");
        }
        if ((m = config_setting_get_member(s, "allowed_signers"))) {
                if ((r = get_string(ps, m, "settings.allowed_signers", &p->allowed_signers)) < 0)
                        return r;
                if (p->allowed_signers[0] != '/' || has_space_or_control(p->allowed_signers))
                        return fail(ps, m,
                                    "settings.allowed_signers: expected an absolute path without "
                                    "spaces");
        }
        if ((m = config_setting_get_member(s, "audit_group"))) {
                if ((r = get_string(ps, m, "settings.audit_group", &p->audit_group)) < 0)
                        return r;
                if (!valid_account_name(p->audit_group))
                        return fail(ps, m, "settings.audit_group: \"%s\" is not a group name",
                                    p->audit_group);
        }
        if ((m = config_setting_get_member(s, "on_expiry"))) {
                const char *v = config_setting_type(m) == CONFIG_TYPE_STRING
                                        ? config_setting_get_string(m)
                                        : NULL;
                p->on_expiry = on_expiry_from_string(v);
                if (p->on_expiry == _ON_EXPIRY_INVALID)
                        return fail(
                                ps, m,
                                "settings.on_expiry: expected \"terminate\", \"warn\" or \"none\"");
        }
        if (p->default_duration > p->max_duration)
                return fail(ps, s, "settings: default_duration is longer than max_duration");
        return 0;
}

/* profile.labels = { role = "db"; rack = "r7"; }: the host's free-form fleet labels, beside
 * the three fixed ones; keys and values as host selectors allow. */
static int parse_profile_labels(Parser *ps, const config_setting_t *s, Policy *p) {
        const char *const fixed[] = { p->profile.owner, p->profile.environment,
                                      p->profile.classification };
        static const char *const fixed_keys[] = { "owner", "environment", "classification" };

        if (!config_setting_is_group(s))
                return fail(ps, s,
                            "profile.labels: expected a group of labels { role = \"db\"; ... }");
        int n = config_setting_length(s);
        if (n > POLICY_PROFILE_LABELS_MAX)
                return fail(ps, s, "profile.labels: %d labels, at most %d", n,
                            POLICY_PROFILE_LABELS_MAX);
        p->profile.labels = calloc((size_t) n + 1, sizeof(PolicyLabel));
        if (!p->profile.labels)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                const config_setting_t *m = config_setting_get_elem(s, (unsigned) i);
                const char *key = config_setting_name(m);
                if (!host_label_key_is_valid(key))
                        return fail(ps, m,
                                    "profile.labels: \"%.64s\" is not a label key (1 to 63 of "
                                    "[a-z0-9_-], starting with a letter)",
                                    key ?: "");
                for (size_t k = 0; k < ELEMENTSOF(fixed_keys); k++)
                        if (STREQ(key, fixed_keys[k]) && fixed[k])
                                return fail(ps, m,
                                            "profile.labels.%s: the label is profile.%s already",
                                            key, key);
                if (config_setting_type(m) != CONFIG_TYPE_STRING)
                        return fail(ps, m, "profile.labels.%s: expected a string", key);
                const char *value = config_setting_get_string(m);
                if (!host_label_value_is_valid(value))
                        return fail(ps, m,
                                    "profile.labels.%s: \"%.64s\" is not a label value (1 to 63 "
                                    "of [A-Za-z0-9._-])",
                                    key, value);
                PolicyLabel *l = &p->profile.labels[p->profile.n_labels];
                l->key = strdup(key);
                l->value = strdup(value);
                p->profile.n_labels++;
                if (!l->key || !l->value)
                        return -ENOMEM;
        }
        return 0;
}

static int parse_profile(Parser *ps, const config_setting_t *s, Policy *p) {
        const config_setting_t *m;
        int r;

        if (!config_setting_is_group(s))
                return fail(ps, s, "profile: expected a group { ... }");
        r = check_keys(ps, s, "profile", profile_keys);
        if (r < 0)
                return r;
        struct {
                const char *key;
                char **field;
        } fields[] = {
                { "owner", &p->profile.owner },
                { "environment", &p->profile.environment },
                { "classification", &p->profile.classification },
                { "description", &p->profile.description },
        };
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                if ((m = config_setting_get_member(s, fields[i].key))) {
                        char what[64];
                        snprintf(what, sizeof(what), "profile.%s", fields[i].key);
                        if ((r = get_string(ps, m, what, fields[i].field)) < 0)
                                return r;
                }
        if ((m = config_setting_get_member(s, "labels")))
                return parse_profile_labels(ps, m, p);
        return 0;
}

static bool valid_rule_name(const char *s) {
        return jit_service_name_is_valid(s); /* same shape: short, portable, no spaces */
}

static int parse_when(Parser *ps, const config_setting_t *s, PolicyRule *rule) {
        char what[128];
        int r;

        snprintf(what, sizeof(what), "rule \"%s\": when", rule->name);
        if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
            config_setting_type(s) != CONFIG_TYPE_LIST)
                return fail(ps, s, "%s: expected a list of strings like [\"Mon-Fri 08:00-20:00\"]",
                            what);
        if (config_setting_length(s) > POLICY_WINDOWS_MAX)
                return fail(ps, s, "%s: more than %u entries", what, POLICY_WINDOWS_MAX);
        /* Entry syntax is checked below, with a message that says what is wrong. */
        r = get_string_list(ps, s, what, valid_short_text, "at most 256 bytes", &rule->when);
        if (r < 0)
                return r;
        rule->windows = calloc(rule->when.n, sizeof(PolicyWindow));
        if (!rule->windows)
                return -ENOMEM;
        for (size_t i = 0; i < rule->when.n; i++) {
                _cleanup_free_ char *error = NULL;
                if (policy_window_parse(rule->when.items[i], &rule->windows[i], &error) < 0)
                        return error ? fail(ps, config_setting_get_elem(s, (unsigned) i),
                                            "%s: \"%s\": %s", what, rule->when.items[i], error)
                                     : -ENOMEM;
        }
        return 0;
}

/* glibc's regcomp() doubles its work and memory for each repetition stacked on another
 * ("a++++..." took 11 GB and a minute at 29 characters): a ticket pattern is small, so
 * it may not stack repetitions, nor hold many of them or large bounds. NULL when it is
 * within bounds, else why not. */
#define TICKET_PATTERN_MAX 128
#define TICKET_PATTERN_REPEATS_MAX 16
#define TICKET_PATTERN_BOUND_MAX 64
static const char *ticket_pattern_too_complex(const char *p) {
        unsigned repeats = 0;
        bool after_repeat = false; /* the previous token was a repetition */

        if (strlen(p) > TICKET_PATTERN_MAX)
                return "longer than 128 characters";
        for (size_t i = 0; p[i];) {
                char c = p[i];
                bool repeat = c == '*' || c == '+' || c == '?' || c == '{';
                if (repeat) {
                        if (after_repeat)
                                return "a repetition stacked on another (as in \"++\")";
                        if (++repeats > TICKET_PATTERN_REPEATS_MAX)
                                return "more than 16 repetition operators";
                        if (c == '{') {
                                char *end;
                                for (size_t j = i + 1; p[j] && p[j] != '}'; j = end - p) {
                                        unsigned long v = strtoul(p + j, &end, 10);
                                        if (end == p + j) {
                                                end = (char *) p + j + 1;
                                                continue;
                                        }
                                        if (v > TICKET_PATTERN_BOUND_MAX)
                                                return "a repetition bound above 64";
                                }
                                const char *close = strchr(p + i, '}');
                                i = close ? (size_t) (close - p) + 1 : strlen(p);
                        } else
                                i++;
                        after_repeat = true;
                        continue;
                }
                after_repeat = false;
                if (c == '\\' && p[i + 1])
                        i += 2;
                else if (c == '[') {
                        /* A bracket expression: "]" first is a member, not the end. */
                        size_t j = i + 1;
                        if (p[j] == '^')
                                j++;
                        if (p[j] == ']')
                                j++;
                        while (p[j] && p[j] != ']')
                                j++;
                        i = p[j] ? j + 1 : j;
                } else
                        i++;
        }
        return NULL;
}

static int parse_ticket_pattern(Parser *ps, const config_setting_t *s, PolicyRule *rule) {
        char what[128];
        int r;

        snprintf(what, sizeof(what), "rule \"%s\": ticket_pattern", rule->name);
        if ((r = get_string(ps, s, what, &rule->ticket_pattern)) < 0)
                return r;
        if (!*rule->ticket_pattern)
                return fail(ps, s, "%s: must not be empty", what);
        const char *why = ticket_pattern_too_complex(rule->ticket_pattern);
        if (why)
                return fail(ps, s, "%s: \"%s\" is too complex for a ticket pattern: %s", what,
                            rule->ticket_pattern, why);
        rule->ticket_regex = calloc(1, sizeof(regex_t));
        if (!rule->ticket_regex)
                return -ENOMEM;
        r = regcomp(rule->ticket_regex, rule->ticket_pattern, REG_EXTENDED | REG_NOSUB);
        if (r != 0) {
                char error[256];
                regerror(r, rule->ticket_regex, error, sizeof(error));
                free(rule->ticket_regex); /* regcomp failed: nothing to regfree */
                rule->ticket_regex = NULL;
                if (r == REG_ESPACE)
                        return -ENOMEM;
                return fail(ps, s, "%s: \"%s\" is not a valid extended regular expression: %s",
                            what, rule->ticket_pattern, error);
        }
        size_t n = strlen(rule->ticket_pattern);
        if (rule->ticket_pattern[0] != '^' || rule->ticket_pattern[n - 1] != '$')
                warn(ps, s,
                     "%s \"%s\" is not anchored: it accepts any ticket that merely contains a "
                     "match; write \"^...$\" to match the whole ticket",
                     what, rule->ticket_pattern);
        return 0;
}

/* commands: each pattern parsed now, so that a pattern that would allow more than it seems
 * to never reaches a decision. */
static int parse_commands(Parser *ps, const config_setting_t *s, PolicyRule *rule) {
        char what[128];

        snprintf(what, sizeof(what), "rule \"%s\": commands", rule->name);
        if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
            config_setting_type(s) != CONFIG_TYPE_LIST)
                return fail(ps, s,
                            "%s: expected a list of strings like "
                            "[\"/usr/bin/systemctl restart nginx\"]",
                            what);
        int n = config_setting_length(s);
        if (n == 0)
                return fail(ps, s,
                            "%s: must not be empty (leave commands out to allow every command)",
                            what);
        if (n > POLICY_COMMANDS_MAX)
                return fail(ps, s, "%s: more than %u patterns", what, POLICY_COMMANDS_MAX);
        rule->commands = calloc((size_t) n, sizeof(CommandPattern));
        if (!rule->commands)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                const config_setting_t *e = config_setting_get_elem(s, (unsigned) i);
                const char *why = NULL;

                if (config_setting_type(e) != CONFIG_TYPE_STRING)
                        return fail(ps, e, "rule \"%s\": command pattern %d: not a string",
                                    rule->name, i + 1);
                const char *v = config_setting_get_string(e);
                int r = command_pattern_parse(v, &rule->commands[i], &why);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return fail(ps, e, "rule \"%s\": command pattern %d: %s", rule->name, i + 1,
                                    why ?: "not a valid pattern");
                rule->n_commands++;
                for (int j = 0; j < i; j++)
                        if (STREQ(rule->commands[j].text, v))
                                return fail(ps, e,
                                            "rule \"%s\": command pattern %d: the same as "
                                            "pattern %d",
                                            rule->name, i + 1, j + 1);
        }
        return 0;
}

/* run_as: who a command may run as. Users and groups that do not exist get a warning, as
 * requesters do. */
static int parse_run_as(Parser *ps, const config_setting_t *s, PolicyRule *rule) {
        char what[128];
        int r;

        snprintf(what, sizeof(what), "rule \"%s\": run_as", rule->name);
        if ((r = get_string_list(ps, s, what, valid_run_as, "USER or USER:GROUP", &rule->run_as)) <
            0)
                return r;
        for (size_t i = 0; i < rule->run_as.n; i++) {
                const config_setting_t *e = config_setting_get_elem(s, (unsigned) i);
                const char *v = rule->run_as.items[i], *colon = strchr(v, ':');
                _cleanup_free_ char *user = colon ? strndup(v, (size_t) (colon - v)) : NULL;
                _cleanup_free_ char *group = NULL;

                if (colon && (!user || asprintf(&group, "%%%s", colon + 1) < 0))
                        return -ENOMEM;
                if ((r = check_principal(ps, e, user ?: v)) < 0 ||
                    (group && (r = check_principal(ps, e, group)) < 0))
                        return r;
        }
        return 0;
}

/* scope, commands and run_as: what a rule grants of sudo. */
static int parse_command_keys(Parser *ps, const config_setting_t *s, PolicyRule *rule) {
        const config_setting_t *scope = config_setting_get_member(s, "scope");
        const config_setting_t *commands = config_setting_get_member(s, "commands");
        const config_setting_t *run_as = config_setting_get_member(s, "run_as");
        int r;

        if (scope) {
                const char *v = config_setting_type(scope) == CONFIG_TYPE_STRING
                                        ? config_setting_get_string(scope)
                                        : NULL;
                rule->scope = policy_scope_from_string(v);
                if (rule->scope == _POLICY_SCOPE_INVALID)
                        return fail(ps, scope,
                                    "rule \"%s\": scope: expected \"any\" or \"command\"",
                                    rule->name);
                if (rule->scope == POLICY_SCOPE_COMMAND && !policy_rule_is_sudo_only(rule))
                        return fail(ps, scope,
                                    "rule \"%s\": scope = \"command\" is only for a rule whose "
                                    "services are exactly [\"sudo\"]",
                                    rule->name);
        }
        if (commands) {
                if (!policy_rule_is_sudo_only(rule))
                        return fail(ps, commands,
                                    "rule \"%s\": commands: only for a rule whose services are "
                                    "exactly [\"sudo\"]",
                                    rule->name);
                /* Patterns limit what the rule grants only if it grants nothing whole. */
                if (scope && rule->scope == POLICY_SCOPE_ANY)
                        return fail(ps, scope,
                                    "rule \"%s\": scope = \"any\" would grant all of sudo, "
                                    "which its commands do not limit; leave scope out or write "
                                    "scope = \"command\"",
                                    rule->name);
                rule->scope = POLICY_SCOPE_COMMAND;
                if ((r = parse_commands(ps, commands, rule)) < 0)
                        return r;
        }
        if (run_as) {
                if (!policy_rule_has_service(rule, "sudo"))
                        return fail(ps, run_as,
                                    "rule \"%s\": run_as: has no effect on a rule that does not "
                                    "cover sudo",
                                    rule->name);
                return parse_run_as(ps, run_as, rule);
        }
        rule->run_as.items = calloc(1, sizeof(char *));
        if (!rule->run_as.items || !(rule->run_as.items[0] = strdup("root")))
                return -ENOMEM;
        rule->run_as.n = 1;
        return 0;
}

/* A rule's `hosts`: the fleet selector it may grant. */
static int parse_rule_hosts(Parser *ps, const config_setting_t *s, PolicyRule *rule) {
        const char *why = NULL;

        if (config_setting_type(s) != CONFIG_TYPE_STRING)
                return fail(ps, s,
                            "rule \"%s\": hosts: expected a string such as "
                            "\"environment=staging,role=db\" or a host name",
                            rule->name);
        const char *v = config_setting_get_string(s);
        int r = host_selector_parse(v, &rule->hosts, &why);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return fail(ps, s, "rule \"%s\": hosts: \"%.64s\": %s", rule->name, v,
                            why ?: "not a host selector");
        rule->hosts_text = host_selector_format(rule->hosts);
        return rule->hosts_text ? 0 : -ENOMEM;
}

static int parse_rule(Parser *ps, const config_setting_t *s, size_t index, const Policy *p,
                      PolicyRule *rule) {
        const config_setting_t *m, *approvals = NULL;
        char what[128];
        int r;

        if (!config_setting_is_group(s))
                return fail(ps, s, "rules: entry %zu: expected a group { name = ...; ... }",
                            index + 1);
        rule->line = config_setting_source_line(s);
        rule->approvals = 1;

        m = config_setting_get_member(s, "name");
        if (!m)
                return fail(ps, s, "rules: entry %zu has no name", index + 1);
        if ((r = get_string(ps, m, "rule name", &rule->name)) < 0)
                return r;
        if (STREQ(rule->name, "break-glass"))
                return fail(ps, m, "rule name \"break-glass\" is reserved for break_glass grants");
        if (!valid_rule_name(rule->name))
                return fail(
                        ps, m,
                        "rule name \"%s\": use letters, digits, '.', '_' and '-' only (at most 64)",
                        rule->name);
        for (size_t i = 0; i < index; i++)
                if (STREQ(p->rules[i].name, rule->name))
                        return fail(ps, m, "rule \"%s\" is defined twice (first at line %u)",
                                    rule->name, p->rules[i].line);

        snprintf(what, sizeof(what), "rule \"%s\"", rule->name);
        if ((r = check_keys(ps, s, what, rule_keys)) < 0)
                return r;

        /* First: it decides whether approvers are needed. */
        if ((m = config_setting_get_member(s, "auto_approve"))) {
                snprintf(what, sizeof(what), "rule \"%s\": auto_approve", rule->name);
                if ((r = get_bool(ps, m, what, &rule->auto_approve)) < 0)
                        return r;
        }

        static const struct {
                const char *key;
                size_t offset;
                bool (*valid)(const char *);
                const char *desc;
        } lists[] = {
                { "services", offsetof(PolicyRule, services), jit_service_name_is_valid,
                  "a PAM service name" },
                { "requesters", offsetof(PolicyRule, requesters), valid_principal,
                  "a user or %group" },
                { "approvers", offsetof(PolicyRule, approvers), valid_principal,
                  "a user or %group" },
        };
        for (size_t i = 0; i < ELEMENTSOF(lists); i++) {
                bool optional = rule->auto_approve && STREQ(lists[i].key, "approvers");

                snprintf(what, sizeof(what), "rule \"%s\": %s", rule->name, lists[i].key);
                m = config_setting_get_member(s, lists[i].key);
                if (!m && optional)
                        continue;
                if (!m)
                        return fail(ps, s, "rule \"%s\": missing '%s'%s", rule->name, lists[i].key,
                                    STREQ(lists[i].key, "approvers") ? " (or auto_approve = true)"
                                                                     : "");
                if ((r = get_string_list(ps, m, what, lists[i].valid, lists[i].desc,
                                         (StringList *) ((char *) rule + lists[i].offset))) < 0)
                        return r;
                if (lists[i].valid == valid_principal && (r = check_principals(ps, m)) < 0)
                        return r;
        }

        if ((approvals = config_setting_get_member(s, "approvals"))) {
                snprintf(what, sizeof(what), "rule \"%s\": approvals", rule->name);
                if (rule->auto_approve)
                        return fail(ps, approvals,
                                    "%s: has no effect with auto_approve = true (nobody approves)",
                                    what);
                if ((r = get_uint(ps, approvals, what, 1, POLICY_APPROVALS_MAX, &rule->approvals)) <
                    0)
                        return r;
        }
        if ((m = config_setting_get_member(s, "max_duration"))) {
                snprintf(what, sizeof(what), "rule \"%s\": max_duration", rule->name);
                if ((r = get_duration(ps, m, what, &rule->max_duration)) < 0)
                        return r;
        }
        if ((m = config_setting_get_member(s, "when")) && (r = parse_when(ps, m, rule)) < 0)
                return r;
        if ((m = config_setting_get_member(s, "ticket_pattern")) &&
            (r = parse_ticket_pattern(ps, m, rule)) < 0)
                return r;
        if ((m = config_setting_get_member(s, "reason_min_length"))) {
                snprintf(what, sizeof(what), "rule \"%s\": reason_min_length", rule->name);
                if ((r = get_uint(ps, m, what, 0, POLICY_REASON_MIN_MAX,
                                  &rule->reason_min_length)) < 0)
                        return r;
        }
        if ((m = config_setting_get_member(s, "allow_self_approval"))) {
                snprintf(what, sizeof(what), "rule \"%s\": allow_self_approval", rule->name);
                if ((r = get_bool(ps, m, what, &rule->allow_self_approval)) < 0)
                        return r;
                if (rule->allow_self_approval && rule->auto_approve)
                        return fail(ps, m,
                                    "%s: has no effect with auto_approve = true (nobody approves)",
                                    what);
        }
        if ((m = config_setting_get_member(s, "signed"))) {
                bool v = false;
                snprintf(what, sizeof(what), "rule \"%s\": signed", rule->name);
                if ((r = get_bool(ps, m, what, &v)) < 0)
                        return r;
                if (v && rule->auto_approve)
                        return fail(ps, m,
                                    "%s: has no effect with auto_approve = true (nobody approves)",
                                    what);
                rule->signed_approvals = v ? POLICY_SIGNED_YES : POLICY_SIGNED_NO;
        }

        if ((r = parse_command_keys(ps, s, rule)) < 0)
                return r;
        if ((m = config_setting_get_member(s, "hosts")) && (r = parse_rule_hosts(ps, m, rule)) < 0)
                return r;

        /* Only named users can be counted ahead; a group may have any number of members. */
        bool any_group = false;
        for (size_t i = 0; i < rule->approvers.n; i++)
                any_group = any_group || rule->approvers.items[i][0] == '%';
        if (!rule->auto_approve && !any_group && rule->approvals > rule->approvers.n)
                warn(ps, approvals ?: s,
                     "rule \"%s\": approvals = %u can never be met: only %zu approver%s listed",
                     rule->name, rule->approvals, rule->approvers.n,
                     rule->approvers.n == 1 ? " is" : "s are");
        return 0;
}

static int parse_break_glass(Parser *ps, const config_setting_t *s, Policy *p) {
        PolicyBreakGlass *bg = &p->break_glass;
        const config_setting_t *m;
        int r;

        if (!config_setting_is_group(s))
                return fail(ps, s, "break_glass: expected a group { ... }");
        if ((r = check_keys(ps, s, "break_glass", break_glass_keys)) < 0)
                return r;
        bg->line = config_setting_source_line(s);
        for (const char *const *k = break_glass_keys; *k; k++)
                if (!config_setting_get_member(s, *k))
                        return fail(ps, s, "break_glass: missing '%s'", *k);

        m = config_setting_get_member(s, "requesters");
        if ((r = get_string_list(ps, m, "break_glass: requesters", valid_principal,
                                 "a user or %group", &bg->requesters)) < 0 ||
            (r = check_principals(ps, m)) < 0)
                return r;
        m = config_setting_get_member(s, "services");
        if ((r = get_string_list(ps, m, "break_glass: services", jit_service_name_is_valid,
                                 "a PAM service name", &bg->services)) < 0)
                return r;
        m = config_setting_get_member(s, "max_duration");
        if ((r = get_duration(ps, m, "break_glass: max_duration", &bg->max_duration)) < 0)
                return r;
        if (bg->max_duration > p->max_duration)
                return fail(ps, m,
                            "break_glass: max_duration is longer than settings.max_duration");
        bg->enabled = true;
        return 0;
}

/* ---- notify: the hooks the broker runs on events (docs/notify.md) ---- */

static bool has_control(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

/* A list of strings that may be empty, each at most max bytes, without control
 * characters. */
static int get_text_list(Parser *ps, const config_setting_t *s, const char *what, unsigned max_n,
                         size_t max_len, StringList *ret) {
        if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
            config_setting_type(s) != CONFIG_TYPE_LIST)
                return fail(ps, s, "%s: expected a list of strings like [\"a\", \"b\"]", what);
        int n = config_setting_length(s);
        if (n > (int) max_n)
                return fail(ps, s, "%s: more than %u entries", what, max_n);
        string_list_done(ret);
        ret->items = calloc((size_t) n + 1, sizeof(char *));
        if (!ret->items)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                const config_setting_t *e = config_setting_get_elem(s, (unsigned) i);
                if (config_setting_type(e) != CONFIG_TYPE_STRING)
                        return fail(ps, e, "%s: entry %d is not a string", what, i + 1);
                const char *v = config_setting_get_string(e);
                if (strlen(v) > max_len)
                        return fail(ps, e, "%s: entry %d is longer than %zu bytes", what, i + 1,
                                    max_len);
                if (has_control(v))
                        return fail(ps, e, "%s: entry %d contains a control character", what,
                                    i + 1);
                if (!(ret->items[ret->n] = strdup(v)))
                        return -ENOMEM;
                ret->n++;
        }
        return 0;
}

static int parse_notify_events(Parser *ps, const config_setting_t *s, const char *what,
                               PolicyNotifyHook *h) {
        if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
            config_setting_type(s) != CONFIG_TYPE_LIST)
                return fail(ps, s,
                            "%s: expected a list of event names like [\"filed\", \"approved\"]",
                            what);
        int n = config_setting_length(s);
        if (n == 0)
                return fail(ps, s, "%s: must not be empty", what);
        for (int i = 0; i < n; i++) {
                const config_setting_t *e = config_setting_get_elem(s, (unsigned) i);
                if (config_setting_type(e) != CONFIG_TYPE_STRING)
                        return fail(ps, e, "%s: entry %d is not a string", what, i + 1);
                const char *v = config_setting_get_string(e);
                NotifyEvent ev = notify_event_from_string(v);
                if (ev == _NOTIFY_EVENT_INVALID) {
                        char expected[512] = "";
                        for (NotifyEvent k = 0; k < _NOTIFY_EVENT_MAX; k++) {
                                if (expected[0])
                                        strncat(expected, ", ",
                                                sizeof(expected) - strlen(expected) - 1);
                                strncat(expected, notify_event_to_string(k),
                                        sizeof(expected) - strlen(expected) - 1);
                        }
                        return fail(ps, e, "%s: unknown event \"%.64s\" (expected one of: %s)",
                                    what, v, expected);
                }
                if (h->events & (1U << ev))
                        return fail(ps, e, "%s: \"%s\" is listed twice", what, v);
                h->events |= 1U << ev;
        }
        return 0;
}

static int parse_notify_hook(Parser *ps, const config_setting_t *s, size_t index, Policy *p,
                             PolicyNotifyHook *h) {
        const config_setting_t *m;
        char what[96], where[64];
        int r;

        snprintf(where, sizeof(where), "notify hook %zu", index + 1);
        if (!config_setting_is_group(s))
                return fail(ps, s, "%s: expected a group { command = ...; events = [...]; }",
                            where);
        h->line = config_setting_source_line(s);
        h->timeout = POLICY_NOTIFY_TIMEOUT_DEFAULT;
        h->retry = POLICY_NOTIFY_RETRY_DEFAULT;
        if ((r = check_keys(ps, s, where, notify_keys)) < 0)
                return r;

        if (!(m = config_setting_get_member(s, "command")))
                return fail(ps, s, "%s: missing 'command'", where);
        snprintf(what, sizeof(what), "%s: command", where);
        if (config_setting_type(m) != CONFIG_TYPE_STRING)
                return fail(ps, m, "%s: expected a string", what);
        const char *command = config_setting_get_string(m);
        if (strlen(command) > POLICY_NOTIFY_ARG_MAX)
                return fail(ps, m, "%s: longer than %u bytes", what, POLICY_NOTIFY_ARG_MAX);
        if (has_control(command))
                return fail(ps, m, "%s: contains a control character", what);
        if (command[0] != '/')
                return fail(ps, m, "%s: \"%s\" is not an absolute path", what, command);
        if (!(h->command = strdup(command)))
                return -ENOMEM;
        /* Valid, but probably not meant: the broker would fail every delivery. */
        struct stat st;
        if (stat(h->command, &st) < 0)
                warn(ps, m, "%s: \"%s\" %s", what, h->command,
                     errno == ENOENT ? "does not exist" : strerror(errno));
        else if (!S_ISREG(st.st_mode) || !(st.st_mode & S_IXOTH))
                warn(ps, m, "%s: \"%s\" is not a file every user may execute", what, h->command);

        if ((m = config_setting_get_member(s, "args"))) {
                snprintf(what, sizeof(what), "%s: args", where);
                if ((r = get_text_list(ps, m, what, POLICY_NOTIFY_ARGS_MAX, POLICY_NOTIFY_ARG_MAX,
                                       &h->args)) < 0)
                        return r;
        }

        if (!(m = config_setting_get_member(s, "events")))
                return fail(ps, s, "%s: missing 'events'", where);
        snprintf(what, sizeof(what), "%s: events", where);
        if ((r = parse_notify_events(ps, m, what, h)) < 0)
                return r;

        static const struct {
                const char *key;
                size_t offset;
                uint64_t max;
                const char *max_text;
        } durations[] = {
                { "timeout", offsetof(PolicyNotifyHook, timeout), POLICY_NOTIFY_TIMEOUT_MAX, "5m" },
                { "retry", offsetof(PolicyNotifyHook, retry), POLICY_NOTIFY_RETRY_MAX, "1h" },
        };
        for (size_t i = 0; i < ELEMENTSOF(durations); i++) {
                if (!(m = config_setting_get_member(s, durations[i].key)))
                        continue;
                snprintf(what, sizeof(what), "%s: %s", where, durations[i].key);
                uint64_t *field = (uint64_t *) ((char *) h + durations[i].offset);
                if ((r = get_duration(ps, m, what, field)) < 0)
                        return r;
                if (*field > durations[i].max)
                        return fail(ps, m, "%s: \"%s\" is longer than the maximum of %s", what,
                                    config_setting_get_string(m), durations[i].max_text);
        }

        if ((m = config_setting_get_member(s, "user"))) {
                snprintf(what, sizeof(what), "%s: user", where);
                if ((r = get_string(ps, m, what, &h->user)) < 0)
                        return r;
                if (!valid_account_name(h->user))
                        return fail(ps, m, "%s: \"%s\" is not a user name", what, h->user);
        } else if (!(h->user = strdup(POLICY_NOTIFY_USER_DEFAULT)))
                return -ENOMEM;
        if (STREQ(h->user, "root"))
                return fail(ps, m ?: s, "%s: user: a hook never runs as root", where);
        r = account_exists(h->user);
        if (r == -ENOMEM)
                return r;
        if (r == 0)
                warn(ps, m ?: s, "%s: user \"%s\" does not exist", where, h->user);

        if ((m = config_setting_get_member(s, "groups"))) {
                snprintf(what, sizeof(what), "%s: groups", where);
                if ((r = get_text_list(ps, m, what, POLICY_NOTIFY_GROUPS_MAX, POLICY_TEXT_MAX,
                                       &h->groups)) < 0)
                        return r;
                for (size_t i = 0; i < h->groups.n; i++) {
                        const char *g = h->groups.items[i];
                        const config_setting_t *e = config_setting_get_elem(m, (unsigned) i);
                        char entry[POLICY_TEXT_MAX + 2];
                        if (!valid_account_name(g))
                                return fail(ps, e, "%s: \"%s\" is not a group name", what, g);
                        if (STREQ(g, "root"))
                                return fail(ps, e, "%s: a hook never runs with group root", what);
                        for (size_t j = 0; j < i; j++)
                                if (STREQ(h->groups.items[j], g))
                                        return fail(ps, e, "%s: \"%s\" is listed twice", what, g);
                        snprintf(entry, sizeof(entry), "%%%s", g);
                        r = account_exists(entry);
                        if (r == -ENOMEM)
                                return r;
                        if (r == 0)
                                warn(ps, e, "%s: group \"%s\" does not exist", what, g);
                }
        }

        /* A hook is known by its command and arguments: what it has not delivered yet stays
         * with it across a reload (docs/notify.md). Two alike could not be told apart. */
        for (size_t i = 0; i < index; i++) {
                const PolicyNotifyHook *o = &p->notify[i];
                bool same = STREQ(o->command, h->command) && o->args.n == h->args.n;
                for (size_t j = 0; same && j < h->args.n; j++)
                        same = STREQ(o->args.items[j], h->args.items[j]);
                if (same)
                        return fail(ps, s, "%s: the same command and args as hook %zu (line %u)",
                                    where, i + 1, o->line);
        }
        return 0;
}

static int parse_notify(Parser *ps, const config_setting_t *s, Policy *p) {
        if (config_setting_type(s) != CONFIG_TYPE_LIST)
                return fail(ps, s, "notify: expected a list of hooks ( { ... }, { ... } )");
        int n = config_setting_length(s);
        if (n > POLICY_NOTIFY_HOOKS_MAX)
                return fail(ps, s, "notify: more than %d hooks", POLICY_NOTIFY_HOOKS_MAX);
        p->notify = calloc((size_t) n + 1, sizeof(PolicyNotifyHook));
        if (!p->notify)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                p->n_notify = (size_t) i + 1;
                int r = parse_notify_hook(ps, config_setting_get_elem(s, (unsigned) i), (size_t) i,
                                          p, &p->notify[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The policy version: what the audit log and approvals name, so that "which policy said
 * yes" has an answer that survives edits of the file. */
static bool has_space_or_control(const char *s) {
        for (const unsigned char *c = (const unsigned char *) s; *c; c++)
                if (*c <= ' ' || *c == 0x7f)
                        return true;
        return false;
}

/* Whether a libpq URI carries a password: "user:secret@" before the host, or a password
 * parameter. The policy is readable by more than root; the secret belongs in the root-only
 * credentials file. */
static bool uri_has_password(const char *uri) {
        const char *authority = strstr(uri, "://");
        if (authority) {
                authority += 3;
                size_t len = strcspn(authority, "/?");
                const char *at = memrchr(authority, '@', len);
                if (at && memchr(authority, ':', (size_t) (at - authority)))
                        return true;
        }
        const char *q = strchr(uri, '?');
        for (; q; q = strchr(q + 1, '&'))
                if (strncmp(q + 1, "password=", 9) == 0)
                        return true;
        return false;
}

static int parse_fleet(Parser *ps, const config_setting_t *s, Policy *p) {
        PolicyFleet *f = &p->fleet;
        const config_setting_t *m;
        int r;

        if (!config_setting_is_group(s))
                return fail(ps, s, "fleet: expected a group { ... }");
        if ((r = check_keys(ps, s, "fleet", fleet_keys)) < 0)
                return r;
        f->enabled = true;
        f->line = config_setting_source_line(s);
        for (const char *const *k = fleet_keys; *k; k++)
                if (!STREQ(*k, "max_offline") && !STREQ(*k, "poll_credentials") &&
                    !config_setting_get_member(s, *k))
                        return fail(ps, s, "fleet: missing '%s'", *k);

        m = config_setting_get_member(s, "database");
        if (config_setting_type(m) != CONFIG_TYPE_STRING)
                return fail(ps, m, "fleet.database: expected a string \"postgresql://...\"");
        const char *v = config_setting_get_string(m);
        if (strlen(v) > POLICY_FLEET_DATABASE_MAX)
                return fail(ps, m, "fleet.database: longer than %u bytes",
                            POLICY_FLEET_DATABASE_MAX);
        if ((strncmp(v, "postgresql://", 13) != 0 && strncmp(v, "postgres://", 11) != 0) ||
            has_space_or_control(v))
                return fail(ps, m,
                            "fleet.database: expected a PostgreSQL connection URI "
                            "(\"postgresql://...\", without spaces)");
        if (uri_has_password(v))
                return fail(ps, m,
                            "fleet.database: holds a password; put it in the credentials file");
        if (!(f->database = strdup(v)))
                return -ENOMEM;

        m = config_setting_get_member(s, "host");
        if ((r = get_string(ps, m, "fleet.host", &f->host)) < 0)
                return r;
        if (!fleet_host_name_is_valid(f->host))
                return fail(ps, m,
                            "fleet.host: \"%.64s\" is not a fleet host name (lowercase letters, "
                            "digits, '-' and '.', at most %u bytes)",
                            f->host, FLEET_HOST_NAME_MAX);

        m = config_setting_get_member(s, "credentials");
        if ((r = get_string(ps, m, "fleet.credentials", &f->credentials)) < 0)
                return r;
        if (f->credentials[0] != '/' || has_space_or_control(f->credentials))
                return fail(ps, m, "fleet.credentials: expected an absolute path without spaces");

        /* The shared poll login's (docs/fleet.md, "Propagation"): the same rules. */
        if ((m = config_setting_get_member(s, "poll_credentials"))) {
                if ((r = get_string(ps, m, "fleet.poll_credentials", &f->poll_credentials)) < 0)
                        return r;
                if (f->poll_credentials[0] != '/' || has_space_or_control(f->poll_credentials))
                        return fail(ps, m,
                                    "fleet.poll_credentials: expected an absolute path without "
                                    "spaces");
        }

        if ((m = config_setting_get_member(s, "max_offline")) &&
            (r = get_duration(ps, m, "fleet.max_offline", &f->max_offline)) < 0)
                return r;

        /* Labels come from the profile: a value a selector cannot name selects nothing. */
        static const char *const label_keys[] = { "owner", "environment", "classification" };
        const char *values[] = { p->profile.owner, p->profile.environment,
                                 p->profile.classification };
        for (size_t i = 0; i < ELEMENTSOF(label_keys); i++)
                if (values[i] && !host_label_value_is_valid(values[i]))
                        warn(ps, s,
                             "profile.%s \"%.64s\" is not a fleet label: no host selector can "
                             "name it (1 to 63 of [A-Za-z0-9._-])",
                             label_keys[i], values[i]);
        return 0;
}

static int policy_hash(const char *text, size_t len, char ret[static POLICY_HASH_LEN + 1]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n = 0;

        if (EVP_Digest(text, len, md, &n, EVP_sha256(), NULL) != 1 || n * 2 != POLICY_HASH_LEN)
                return -EIO;
        for (unsigned i = 0; i < n; i++)
                snprintf(ret + 2 * i, 3, "%02x", md[i]);
        return 0;
}

/* The last warning says how many did not fit. */
static void warn_dropped(Parser *ps) {
        char *line = NULL;
        char **w = reallocarray(ps->p->warnings, ps->p->n_warnings + 1, sizeof(char *));

        if (!w)
                return;
        ps->p->warnings = w;
        if (asprintf(&line, "%s: %zu more warnings not shown", ps->name, ps->n_warnings_dropped) <
            0)
                return;
        w[ps->p->n_warnings++] = line;
}

int policy_parse(const char *text, size_t len, const char *name, Policy **ret, char **ret_error) {
        Parser ps = { .name = name };
        _cleanup_free_ char *copy = NULL;
        config_t cfg;
        const config_setting_t *root, *m;
        Policy *p = NULL;
        const char *original = text;
        int r = 0;

        if (ret_error)
                *ret_error = NULL;
        if (memchr(text, '\0', len)) {
                fail(&ps, NULL, "the file contains a NUL byte");
                r = -EINVAL;
                goto out;
        }
        /* libconfig reads up to a NUL, not up to len. */
        copy = strndup(text, len);
        if (!copy) {
                r = -ENOMEM;
                goto out;
        }
        text = copy;

        /* @include would let the policy pull in files nobody reviews with it. */
        unsigned line = 1;
        for (const char *l = text; l && *l; line++) {
                const char *c = l + strspn(l, " \t");
                if (strncmp(c, "@include", 8) == 0) {
                        if (asprintf(&ps.error, "%s:%u: @include is not allowed in a policy file",
                                     name, line) < 0)
                                ps.error = NULL;
                        r = -EINVAL;
                        goto out;
                }
                l = strchr(l, '\n');
                if (l)
                        l++;
        }

        config_init(&cfg);
        if (config_read_string(&cfg, text) != CONFIG_TRUE) {
                if (asprintf(&ps.error, "%s:%d: %s", name, config_error_line(&cfg),
                             config_error_text(&cfg)) < 0)
                        ps.error = NULL;
                config_destroy(&cfg);
                r = -EINVAL;
                goto out;
        }

        p = calloc(1, sizeof(*p));
        if (!p) {
                r = -ENOMEM;
                goto done;
        }
        p->default_duration = 3600;
        p->max_duration = 8 * 3600;
        p->pending_ttl = 3600;
        p->expiry_warning = 300; /* "your grant ends in 5m" */
        p->max_pending_per_user = 5;
        p->max_filings_per_hour = 30;
        p->disk_reserve = 64ULL << 20;     /* room to end every grant when the disk fills */
        p->request_retention = 90 * 86400; /* ended requests move to an archive */
        p->on_expiry = ON_EXPIRY_TERMINATE;
        ps.p = p;
        p->path = strdup(name);
        if (!p->path) {
                r = -ENOMEM;
                goto done;
        }
        if ((r = policy_hash(original, len, p->hash)) < 0) {
                if (asprintf(&ps.error,
                             "%s: cannot compute the policy's SHA-256 (libcrypto failed)",
                             name) < 0)
                        ps.error = NULL;
                goto done;
        }

        root = config_root_setting(&cfg);
        if ((r = check_keys(&ps, root, "policy", top_keys)) < 0)
                goto done;
        if ((m = config_setting_get_member(root, "settings")) &&
            (r = parse_settings(&ps, m, p)) < 0)
                goto done;
        if ((m = config_setting_get_member(root, "profile")) && (r = parse_profile(&ps, m, p)) < 0)
                goto done;
        if ((m = config_setting_get_member(root, "fleet")) && (r = parse_fleet(&ps, m, p)) < 0)
                goto done;

        m = config_setting_get_member(root, "rules");
        if (!m) {
                r = fail(&ps, NULL,
                         "no 'rules' list: a policy without rules refuses every request; "
                         "write rules = ( ); to say so");
                goto done;
        }
        if (config_setting_type(m) != CONFIG_TYPE_LIST) {
                r = fail(&ps, m, "rules: expected a list ( { ... }, { ... } )");
                goto done;
        }
        int n = config_setting_length(m);
        if (n > POLICY_RULES_MAX) {
                r = fail(&ps, m, "rules: more than %d rules", POLICY_RULES_MAX);
                goto done;
        }
        p->rules = calloc((size_t) n + 1, sizeof(PolicyRule));
        if (!p->rules) {
                r = -ENOMEM;
                goto done;
        }
        for (int i = 0; i < n; i++) {
                p->n_rules = (size_t) i + 1;
                r = parse_rule(&ps, config_setting_get_elem(m, (unsigned) i), (size_t) i, p,
                               &p->rules[i]);
                if (r < 0)
                        goto done;
                if (p->rules[i].max_duration > p->max_duration) {
                        r = fail(&ps, config_setting_get_elem(m, (unsigned) i),
                                 "rule \"%s\": max_duration is longer than settings.max_duration",
                                 p->rules[i].name);
                        goto done;
                }
        }
        for (size_t i = 0; !p->fleet.enabled && i < p->n_rules; i++)
                if (p->rules[i].hosts)
                        warn(&ps,
                             config_setting_get_member(config_setting_get_elem(m, (unsigned) i),
                                                       "hosts"),
                             "rule \"%s\": hosts has no effect without a fleet section",
                             p->rules[i].name);
        if ((m = config_setting_get_member(root, "break_glass")) &&
            (r = parse_break_glass(&ps, m, p)) < 0)
                goto done;
        if ((m = config_setting_get_member(root, "notify")) && (r = parse_notify(&ps, m, p)) < 0)
                goto done;
        if (ps.n_warnings_dropped > 0)
                warn_dropped(&ps);

done:
        config_destroy(&cfg);
out:
        tdestroy(ps.seen, free);
        if (r < 0) {
                policy_free(p);
                if (ret_error)
                        *ret_error = TAKE_PTR(ps.error);
                free(ps.error);
                return r;
        }
        *ret = p;
        return 0;
}

int policy_load(const char *path, Policy **ret, char **ret_error) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t got = 0;

        if (ret_error)
                *ret_error = NULL;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0 || fstat(fd, &st) < 0) {
                int e = errno;
                if (ret_error && asprintf(ret_error, "%s: %s", path, strerror(e)) < 0)
                        *ret_error = NULL;
                return -e;
        }
        const char *problem = NULL;
        if (!S_ISREG(st.st_mode))
                problem = "not a regular file";
        else if (st.st_uid != 0)
                problem = "not owned by root";
        else if (st.st_mode & (S_IWGRP | S_IWOTH))
                problem = "writable by group or others";
        else if ((uint64_t) st.st_size > POLICY_FILE_MAX)
                problem = "larger than 4 MiB";
        if (problem) {
                if (ret_error &&
                    asprintf(ret_error, "%s: refusing a policy file that is %s", path, problem) < 0)
                        *ret_error = NULL;
                return -EPERM;
        }

        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        /* Read at most the size fstat saw: a file growing under us is not read past it. */
        while (got < (size_t) st.st_size) {
                ssize_t n = read(fd, buf + got, (size_t) st.st_size - got);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                got += (size_t) n;
        }
        buf[got] = '\0';
        return policy_parse(buf, got, path, ret, ret_error);
}
