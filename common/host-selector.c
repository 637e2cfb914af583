/* SPDX-License-Identifier: MIT */
#include "host-selector.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

/* Byte classes by hand: isalnum() and friends follow the locale. */
static bool is_lower(char c) {
        return c >= 'a' && c <= 'z';
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

static bool is_upper(char c) {
        return c >= 'A' && c <= 'Z';
}

bool fleet_host_name_is_valid(const char *s) {
        size_t label_len = 0;

        if (!s || !*s || strlen(s) > FLEET_HOST_NAME_MAX)
                return false;
        for (const char *c = s;; c++) {
                if (*c == '.' || *c == '\0') {
                        /* A label is not empty and neither starts nor ends with '-'. */
                        if (label_len == 0 || c[-1] == '-')
                                return false;
                        if (*c == '\0')
                                return true;
                        label_len = 0;
                        continue;
                }
                if (*c == '-' && label_len == 0)
                        return false;
                if (!is_lower(*c) && !is_digit(*c) && *c != '-')
                        return false;
                label_len++;
        }
}

bool host_label_key_is_valid(const char *s) {
        if (!s || !is_lower(s[0]) || strlen(s) > HOST_LABEL_KEY_MAX)
                return false;
        for (const char *c = s; *c; c++)
                if (!is_lower(*c) && !is_digit(*c) && *c != '_' && *c != '-')
                        return false;
        return true;
}

bool host_label_value_is_valid(const char *s) {
        if (!s || !*s || strlen(s) > HOST_LABEL_VALUE_MAX)
                return false;
        for (const char *c = s; *c; c++)
                if (!is_lower(*c) && !is_upper(*c) && !is_digit(*c) && *c != '.' && *c != '_' &&
                    *c != '-')
                        return false;
        return true;
}

void host_selector_free(HostSelector *s) {
        if (!s)
                return;
        free(s->host);
        for (size_t i = 0; i < s->n_terms; i++) {
                free(s->terms[i].key);
                free(s->terms[i].value);
        }
        free(s->terms);
        free(s);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(HostSelector *, host_selector_free);

static int compare_terms(const void *a, const void *b) {
        return strcmp(((const HostSelectorTerm *) a)->key, ((const HostSelectorTerm *) b)->key);
}

static int fail(const char **ret_why, int error, const char *why) {
        if (ret_why)
                *ret_why = why;
        return error;
}

/* One "key=value" of length len at term into t. */
static int parse_term(const char *term, size_t len, HostSelectorTerm *t, const char **ret_why) {
        const char *eq = memchr(term, '=', len);

        if (!eq)
                return fail(ret_why, -EINVAL,
                            "each label is key=value; a host name stands alone, without labels");
        _cleanup_free_ char *key = strndup(term, (size_t) (eq - term));
        _cleanup_free_ char *value = strndup(eq + 1, len - (size_t) (eq - term) - 1);
        if (!key || !value)
                return -ENOMEM;
        if (!host_label_key_is_valid(key))
                return fail(ret_why, -EINVAL,
                            "a label key is 1 to 63 of [a-z0-9_-], starting with a letter");
        if (!host_label_value_is_valid(value))
                return fail(ret_why, -EINVAL, "a label value is 1 to 63 of [A-Za-z0-9._-]");
        t->key = TAKE_PTR(key);
        t->value = TAKE_PTR(value);
        return 0;
}

int host_selector_parse(const char *s, HostSelector **ret, const char **ret_why) {
        _cleanup_(host_selector_freep) HostSelector *sel = NULL;
        int r;

        if (ret_why)
                *ret_why = NULL;
        if (!s || !*s)
                return fail(ret_why, -EINVAL, "empty selector");
        if (strnlen(s, HOST_SELECTOR_MAX + 1) > HOST_SELECTOR_MAX)
                return fail(ret_why, -E2BIG, "longer than 512 bytes");

        sel = calloc(1, sizeof(*sel));
        if (!sel)
                return -ENOMEM;

        if (!strchr(s, '=')) {
                if (!fleet_host_name_is_valid(s))
                        return fail(ret_why, -EINVAL,
                                    "neither key=value labels nor a host name (lowercase DNS "
                                    "labels, at most 54 bytes)");
                sel->host = strdup(s);
                if (!sel->host)
                        return -ENOMEM;
                *ret = TAKE_PTR(sel);
                return 0;
        }

        size_t n = 1;
        for (const char *c = s; *c; c++)
                n += *c == ',';
        if (n > HOST_SELECTOR_TERMS_MAX)
                return fail(ret_why, -E2BIG, "more than 16 labels");
        sel->terms = calloc(n, sizeof(HostSelectorTerm));
        if (!sel->terms)
                return -ENOMEM;

        for (const char *term = s;;) {
                size_t len = strcspn(term, ",");
                if (len == 0)
                        return fail(ret_why, -EINVAL,
                                    "an empty label (two commas, or one at an end)");
                if ((r = parse_term(term, len, &sel->terms[sel->n_terms], ret_why)) < 0)
                        return r;
                sel->n_terms++;
                if (term[len] == '\0')
                        break;
                term += len + 1;
        }

        qsort(sel->terms, sel->n_terms, sizeof(HostSelectorTerm), compare_terms);
        for (size_t i = 1; i < sel->n_terms; i++)
                if (STREQ(sel->terms[i - 1].key, sel->terms[i].key))
                        return fail(ret_why, -EINVAL, "a label key given twice");
        *ret = TAKE_PTR(sel);
        return 0;
}

static const char *label_value(const HostLabel *labels, size_t n_labels, const char *key) {
        for (size_t i = 0; i < n_labels; i++)
                if (labels[i].key && STREQ(labels[i].key, key))
                        return labels[i].value;
        return NULL;
}

bool host_selector_matches(const HostSelector *s, const char *host, const HostLabel *labels,
                           size_t n_labels) {
        if (!s)
                return false;
        if (s->host)
                return host && STREQ(s->host, host);
        if (s->n_terms == 0)
                return false; /* a parsed label selector has terms; match nothing otherwise */
        for (size_t i = 0; i < s->n_terms; i++) {
                const char *v = label_value(labels, n_labels, s->terms[i].key);
                if (!host_label_key_is_valid(s->terms[i].key) || !host_label_value_is_valid(v) ||
                    !STREQ(v, s->terms[i].value))
                        return false;
        }
        return true;
}

char *host_selector_format(const HostSelector *s) {
        size_t len = 1;
        char *ret, *p;

        if (!s)
                return NULL;
        if (s->host)
                return strdup(s->host);
        for (size_t i = 0; i < s->n_terms; i++)
                len += strlen(s->terms[i].key) + strlen(s->terms[i].value) + 2;
        ret = p = malloc(len);
        if (!ret)
                return NULL;
        *p = '\0';
        for (size_t i = 0; i < s->n_terms; i++)
                p = stpcpy(stpcpy(stpcpy(stpcpy(p, i > 0 ? "," : ""), s->terms[i].key), "="),
                           s->terms[i].value);
        return ret;
}
