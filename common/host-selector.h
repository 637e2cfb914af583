/* SPDX-License-Identifier: MIT */
/* Host selectors of the fleet (docs/fleet.md): which hosts a fleet request is for, and which
 * a policy rule may grant. A selector is either one host name ("db-7") or labels that must
 * all hold ("environment=staging,role=db"); a host's labels are the keys of its policy's
 * profile. Pure: no I/O, no locale. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* A selector as written, in bytes. */
#define HOST_SELECTOR_MAX 512
/* Labels one selector may require. */
#define HOST_SELECTOR_TERMS_MAX 16
/* A label key or value, in bytes. */
#define HOST_LABEL_KEY_MAX 63
#define HOST_LABEL_VALUE_MAX 63
/* A fleet host name, in bytes: its database role is "jit_host_" + the name, and PostgreSQL
 * names have at most 63 bytes. */
#define FLEET_HOST_NAME_MAX 54
#define FLEET_HOST_ROLE_PREFIX "jit_host_"

/* One label of a host: the profile key and its value. */
typedef struct HostLabel {
        const char *key;
        const char *value;
} HostLabel;

typedef struct HostSelectorTerm {
        char *key;
        char *value;
} HostSelectorTerm;

typedef struct HostSelector {
        char *host;              /* a single host by name; NULL for a label selector */
        HostSelectorTerm *terms; /* every one must hold; sorted by key; none when host is set */
        size_t n_terms;
} HostSelector;

/* A fleet host name: 1 to FLEET_HOST_NAME_MAX bytes of lowercase DNS labels ([a-z0-9] and
 * '-', not first or last in a label) separated by single dots. false for NULL. */
bool fleet_host_name_is_valid(const char *s);
/* A label key: 1 to HOST_LABEL_KEY_MAX bytes of [a-z0-9_-], starting with a letter. */
bool host_label_key_is_valid(const char *s);
/* A label value: 1 to HOST_LABEL_VALUE_MAX bytes of [A-Za-z0-9._-]. */
bool host_label_value_is_valid(const char *s);

/* Parses "k=v[,k2=v2...]" or a bare host name. Nothing around or between the parts: no
 * spaces, no empty term, no key twice. Returns 0, -EINVAL (ret_why, when given, then
 * points to a static one-line reason), -E2BIG (longer than HOST_SELECTOR_MAX or more than
 * HOST_SELECTOR_TERMS_MAX terms; ret_why set too) or -ENOMEM. */
int host_selector_parse(const char *s, HostSelector **ret, const char **ret_why);

void host_selector_free(HostSelector *s);

/* Whether the selector picks the host named host with these labels: the same name, or
 * every term's key among the labels with exactly that value. A label whose key or value is
 * not valid never matches. */
bool host_selector_matches(const HostSelector *s, const char *host, const HostLabel *labels,
                           size_t n_labels);

/* The selector in its canonical form (terms sorted by key, as parsed), malloc'd; NULL
 * without memory. Two selectors that pick the same hosts by the same terms read the
 * same. */
char *host_selector_format(const HostSelector *s);
