/* SPDX-License-Identifier: MIT */
#include "jitctl-policy.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "duration.h"
#include "jitctl-text.h"
#include "policy.h"
#include "protocol.h"

/* Reads the file without the broker's ownership rules (a checkout in git is not owned by
 * root), bounded like the broker reads it; those rules are reported as a warning instead. */
static int read_policy(const char *path, char **ret, size_t *ret_len, const char **ret_warning) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        struct stat st;

        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if ((uint64_t) st.st_size > POLICY_FILE_MAX)
                return -EFBIG;
        *ret_warning = st.st_uid != 0 ? "not owned by root: the broker will refuse it"
                       : (st.st_mode & (S_IWGRP | S_IWOTH))
                               ? "writable by group or others: the broker will refuse it"
                               : NULL;
        _cleanup_free_ char *buf = malloc((size_t) st.st_size + 1);
        size_t got = 0;
        if (!buf)
                return -ENOMEM;
        while (got < (size_t) st.st_size) {
                ssize_t n = read(fd, buf + got, (size_t) st.st_size - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                got += (size_t) n;
        }
        buf[got] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_len = got;
        return 0;
}

static json_object *list_json(const StringList *l) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; a && i < l->n; i++)
                json_object_array_add(a, json_object_new_string(l->items[i]));
        return a;
}

static void print_list(const StringList *l) {
        for (size_t i = 0; i < l->n; i++) {
                fputs(i ? ", " : "", stdout);
                fputs_escaped(l->items[i], stdout);
        }
}

int policy_check_file(const char *path, bool json) {
        _cleanup_free_ char *text = NULL, *error = NULL;
        const char *warning = NULL;
        size_t len = 0;
        Policy *p = NULL;
        char d1[DURATION_BUF_MAX], d2[DURATION_BUF_MAX];

        int r = read_policy(path, &text, &len, &warning);
        if (r < 0) {
                if (asprintf(&error, "%s: %s", path,
                             r == -EINVAL ? "not a regular file" : strerror(-r)) < 0)
                        error = NULL;
        } else
                r = policy_parse(text, len, path, &p, &error);

        if (json) {
                json_object *o = json_object_new_object();
                if (!o)
                        return JIT_EXIT_FAILURE;
                json_object_object_add(o, "path", json_object_new_string(path));
                json_object_object_add(o, "valid", json_object_new_boolean(r >= 0));
                json_object_object_add(o, "error", error ? json_object_new_string(error) : NULL);
                json_object_object_add(o, "warning",
                                       warning ? json_object_new_string(warning) : NULL);
                if (p) {
                        json_object *rules = json_object_new_array();
                        for (size_t i = 0; rules && i < p->n_rules; i++) {
                                const PolicyRule *rule = &p->rules[i];
                                json_object *ro = json_object_new_object();
                                if (!ro)
                                        break;
                                json_object_object_add(ro, "name",
                                                       json_object_new_string(rule->name));
                                json_object_object_add(ro, "line",
                                                       json_object_new_int((int) rule->line));
                                json_object_object_add(ro, "services", list_json(&rule->services));
                                json_object_object_add(ro, "requesters",
                                                       list_json(&rule->requesters));
                                json_object_object_add(ro, "approvers",
                                                       list_json(&rule->approvers));
                                json_object_object_add(ro, "approvals",
                                                       json_object_new_int((int) rule->approvals));
                                json_object_object_add(
                                        ro, "max_duration",
                                        json_object_new_int64((int64_t) policy_rule_cap(p, rule)));
                                json_object_array_add(rules, ro);
                        }
                        json_object_object_add(o, "rules", rules);
                }
                print_json(o, stdout);
                json_object_put(o);
        } else if (r < 0) {
                fputs("jitctl: policy check: ", stderr);
                fputs_escaped(error ? error : strerror(-r), stderr);
                fputc('\n', stderr);
        } else {
                printf("%s: valid, %zu rule%s; grants %s by default, at most %s.\n", path,
                       p->n_rules, p->n_rules == 1 ? "" : "s",
                       duration_format(p->default_duration, d1, sizeof(d1)),
                       duration_format(p->max_duration, d2, sizeof(d2)));
                for (size_t i = 0; i < p->n_rules; i++) {
                        const PolicyRule *rule = &p->rules[i];
                        printf("  %zu. ", i + 1);
                        fputs_escaped(rule->name, stdout);
                        printf(" (line %u): ", rule->line);
                        print_list(&rule->services);
                        fputs(" for ", stdout);
                        print_list(&rule->requesters);
                        printf(", %u approval%s from ", rule->approvals,
                               rule->approvals == 1 ? "" : "s");
                        print_list(&rule->approvers);
                        printf(", up to %s\n",
                               duration_format(policy_rule_cap(p, rule), d1, sizeof(d1)));
                }
                if (p->n_rules == 0)
                        puts("  No rules: every request is refused.");
        }
        if (warning && !json)
                fprintf(stderr, "jitctl: policy check: warning: %s is %s\n", path, warning);
        policy_free(p);
        return r < 0 ? JIT_EXIT_FAILURE : JIT_EXIT_OK;
}
