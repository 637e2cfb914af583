/* SPDX-License-Identifier: MIT */
#include "policy.h"

#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "duration.h"

typedef struct Parser {
        const char *name;
        char *error; /* first error only: later ones are often consequences */
} Parser;

static int fail(Parser *ps, const config_setting_t *s, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int fail(Parser *ps, const config_setting_t *s, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        if (ps->error)
                return -EINVAL;
        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        unsigned line = s ? config_setting_source_line(s) : 0;
        int k = line > 0 ? asprintf(&ps->error, "%s:%u: %s", ps->name, line,
                                    msg ? msg : "out of memory")
                         : asprintf(&ps->error, "%s: %s", ps->name, msg ? msg : "out of memory");
        if (k < 0)
                ps->error = NULL;
        return -EINVAL;
}

static void string_list_done(StringList *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->items[i]);
        free(l->items);
        *l = (StringList){};
}

static bool string_list_contains(const StringList *l, const char *s) {
        for (size_t i = 0; i < l->n; i++)
                if (STREQ(l->items[i], s))
                        return true;
        return false;
}

bool valid_service_name(const char *s) {
        size_t n = 0;

        if (!s || !*s)
                return false;
        for (; *s; s++)
                if (++n > 64 || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                                  (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
                        return false;
        return true;
}

static bool valid_principal(const char *s) {
        return s[0] == '%' ? valid_account_name(s + 1) : valid_account_name(s);
}

/* Checks that every member of group s is one of the known keys. */
static int check_keys(Parser *ps, const config_setting_t *s, const char *what,
                      const char *const *known, const char *const *unsupported) {
        for (int i = 0; i < config_setting_length(s); i++) {
                const config_setting_t *m = config_setting_get_elem(s, (unsigned) i);
                const char *key = config_setting_name(m);
                bool ok = false;

                for (const char *const *k = known; *k; k++)
                        if (STREQ(*k, key))
                                ok = true;
                if (ok)
                        continue;
                for (const char *const *k = unsupported; k && *k; k++)
                        if (STREQ(*k, key))
                                return fail(ps, m,
                                            "%s: '%s' is not supported by this version of jit",
                                            what, key);

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
        "default_duration",     "max_duration", "pending_ttl",
        "max_pending_per_user", "on_expiry",    NULL,
};
static const char *const profile_keys[] = { "owner", "environment", "classification", "description",
                                            NULL };
static const char *const rule_keys[] = {
        "name", "services", "requesters", "approvers", "approvals", "max_duration", NULL,
};
static const char *const rule_keys_unsupported[] = {
        "auto_approve", "when", "ticket_pattern", "reason_min_length", "allow_self_approval", NULL,
};
static const char *const top_keys[] = { "settings", "profile", "rules", NULL };
static const char *const top_keys_unsupported[] = { "break_glass", NULL };

static int parse_settings(Parser *ps, const config_setting_t *s, Policy *p) {
        const config_setting_t *m;
        int r;

        if (!config_setting_is_group(s))
                return fail(ps, s, "settings: expected a group { ... }");
        r = check_keys(ps, s, "settings", settings_keys, NULL);
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
        if ((m = config_setting_get_member(s, "on_expiry"))) {
                const char *v = config_setting_type(m) == CONFIG_TYPE_STRING
                                        ? config_setting_get_string(m)
                                        : NULL;
                if (v && STREQ(v, "terminate"))
                        p->on_expiry = ON_EXPIRY_TERMINATE;
                else if (v && STREQ(v, "warn"))
                        p->on_expiry = ON_EXPIRY_WARN;
                else if (v && STREQ(v, "none"))
                        p->on_expiry = ON_EXPIRY_NONE;
                else
                        return fail(
                                ps, m,
                                "settings.on_expiry: expected \"terminate\", \"warn\" or \"none\"");
        }
        if (p->default_duration > p->max_duration)
                return fail(ps, s, "settings: default_duration is longer than max_duration");
        return 0;
}

static int parse_profile(Parser *ps, const config_setting_t *s, Policy *p) {
        const config_setting_t *m;
        int r;

        if (!config_setting_is_group(s))
                return fail(ps, s, "profile: expected a group { ... }");
        r = check_keys(ps, s, "profile", profile_keys, NULL);
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
        return 0;
}

static bool valid_rule_name(const char *s) {
        return valid_service_name(s); /* same shape: short, portable, no spaces */
}

static int parse_rule(Parser *ps, const config_setting_t *s, size_t index, const Policy *p,
                      PolicyRule *rule) {
        const config_setting_t *m;
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
        if ((r = check_keys(ps, s, what, rule_keys, rule_keys_unsupported)) < 0)
                return r;

        static const struct {
                const char *key;
                size_t offset;
                bool (*valid)(const char *);
                const char *desc;
        } lists[] = {
                { "services", offsetof(PolicyRule, services), valid_service_name,
                  "a PAM service name" },
                { "requesters", offsetof(PolicyRule, requesters), valid_principal,
                  "a user or %group" },
                { "approvers", offsetof(PolicyRule, approvers), valid_principal,
                  "a user or %group" },
        };
        for (size_t i = 0; i < ELEMENTSOF(lists); i++) {
                snprintf(what, sizeof(what), "rule \"%s\": %s", rule->name, lists[i].key);
                m = config_setting_get_member(s, lists[i].key);
                if (!m)
                        return fail(ps, s, "rule \"%s\": missing '%s'", rule->name, lists[i].key);
                if ((r = get_string_list(ps, m, what, lists[i].valid, lists[i].desc,
                                         (StringList *) ((char *) rule + lists[i].offset))) < 0)
                        return r;
        }

        if ((m = config_setting_get_member(s, "approvals"))) {
                snprintf(what, sizeof(what), "rule \"%s\": approvals", rule->name);
                if ((r = get_uint(ps, m, what, 1, POLICY_APPROVALS_MAX, &rule->approvals)) < 0)
                        return r;
        }
        if ((m = config_setting_get_member(s, "max_duration"))) {
                snprintf(what, sizeof(what), "rule \"%s\": max_duration", rule->name);
                if ((r = get_duration(ps, m, what, &rule->max_duration)) < 0)
                        return r;
        }
        return 0;
}

int policy_parse(const char *text, size_t len, const char *name, Policy **ret, char **ret_error) {
        Parser ps = { .name = name };
        _cleanup_free_ char *copy = NULL;
        config_t cfg;
        const config_setting_t *root, *m;
        Policy *p = NULL;
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
        p->max_pending_per_user = 5;
        p->on_expiry = ON_EXPIRY_TERMINATE;
        p->path = strdup(name);
        if (!p->path) {
                r = -ENOMEM;
                goto done;
        }

        root = config_root_setting(&cfg);
        if ((r = check_keys(&ps, root, "policy", top_keys, top_keys_unsupported)) < 0)
                goto done;
        if ((m = config_setting_get_member(root, "settings")) &&
            (r = parse_settings(&ps, m, p)) < 0)
                goto done;
        if ((m = config_setting_get_member(root, "profile")) && (r = parse_profile(&ps, m, p)) < 0)
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

done:
        config_destroy(&cfg);
out:
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

void policy_free(Policy *p) {
        if (!p)
                return;
        for (size_t i = 0; i < p->n_rules; i++) {
                free(p->rules[i].name);
                string_list_done(&p->rules[i].services);
                string_list_done(&p->rules[i].requesters);
                string_list_done(&p->rules[i].approvers);
        }
        free(p->rules);
        free(p->profile.owner);
        free(p->profile.environment);
        free(p->profile.classification);
        free(p->profile.description);
        free(p->path);
        free(p);
}

bool policy_rule_has_service(const PolicyRule *r, const char *service) {
        return string_list_contains(&r->services, service);
}

static bool list_matches(const StringList *l, const Identity *id) {
        for (size_t i = 0; i < l->n; i++)
                if (identity_matches(id, l->items[i]))
                        return true;
        return false;
}

const PolicyRule *policy_match(const Policy *p, const Identity *requester, const char *service) {
        for (size_t i = 0; i < p->n_rules; i++)
                if (policy_rule_has_service(&p->rules[i], service) &&
                    list_matches(&p->rules[i].requesters, requester))
                        return &p->rules[i];
        return NULL;
}

const PolicyRule *policy_find_rule(const Policy *p, const char *name) {
        for (size_t i = 0; i < p->n_rules; i++)
                if (STREQ(p->rules[i].name, name))
                        return &p->rules[i];
        return NULL;
}

bool policy_rule_is_approver(const PolicyRule *r, const Identity *id) {
        return list_matches(&r->approvers, id);
}

uint64_t policy_rule_cap(const Policy *p, const PolicyRule *r) {
        if (r->max_duration > 0 && r->max_duration < p->max_duration)
                return r->max_duration;
        return p->max_duration;
}

const char *on_expiry_to_string(OnExpiry e) {
        switch (e) {
        case ON_EXPIRY_TERMINATE:
                return "terminate";
        case ON_EXPIRY_WARN:
                return "warn";
        case ON_EXPIRY_NONE:
                return "none";
        }
        return "terminate";
}
