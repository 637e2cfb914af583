/* SPDX-License-Identifier: MIT */
#include "users.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

/* getpw*_r and getgr*_r want caller buffers; grow them on ERANGE up to a sane cap. */
#define NSS_BUF_MAX (1024 * 1024)

static int lookup_passwd(const char *name, uid_t uid, struct passwd *pw, char **ret_buf) {
        size_t size = 1024;

        for (;;) {
                _cleanup_free_ char *buf = malloc(size);
                struct passwd *result = NULL;
                int r;

                if (!buf)
                        return -ENOMEM;
                r = name ? getpwnam_r(name, pw, buf, size, &result)
                         : getpwuid_r(uid, pw, buf, size, &result);
                if (r == ERANGE && size < NSS_BUF_MAX) {
                        size *= 2;
                        continue;
                }
                if (r != 0)
                        return -r;
                if (!result)
                        return -ENOENT;
                *ret_buf = TAKE_PTR(buf);
                return 0;
        }
}

static char *group_name(gid_t gid) {
        size_t size = 1024;

        for (;;) {
                _cleanup_free_ char *buf = malloc(size);
                struct group gr, *result = NULL;
                int r;

                if (!buf)
                        return NULL;
                r = getgrgid_r(gid, &gr, buf, size, &result);
                if (r == ERANGE && size < NSS_BUF_MAX) {
                        size *= 2;
                        continue;
                }
                if (r != 0 || !result)
                        return NULL;
                return strdup(gr.gr_name);
        }
}

static int identity_fill(const struct passwd *pw, Identity *id) {
        int n = 64;
        _cleanup_free_ gid_t *gids = NULL;

        if (pw->pw_uid == (uid_t) -1)
                return -EINVAL;

        for (;;) {
                gid_t *g = realloc(gids, sizeof(gid_t) * (size_t) n);
                if (!g)
                        return -ENOMEM;
                gids = g;
                int want = n;
                if (getgrouplist(pw->pw_name, pw->pw_gid, gids, &want) >= 0) {
                        n = want;
                        break;
                }
                if (want <= n || want > IDENTITY_GROUPS_MAX)
                        return -E2BIG;
                n = want;
        }

        *id = (Identity){ .uid = pw->pw_uid };
        id->name = strdup(pw->pw_name);
        id->groups = calloc((size_t) n, sizeof(char *));
        if (!id->name || !id->groups) {
                identity_done(id);
                return -ENOMEM;
        }
        for (int i = 0; i < n; i++) {
                char *g = group_name(gids[i]);
                if (g) /* a gid without a name cannot match a %name entry */
                        id->groups[id->n_groups++] = g;
        }
        return 0;
}

static int nss_identity_from_uid(uid_t uid, Identity *id) {
        struct passwd pw;
        _cleanup_free_ char *buf = NULL;

        int r = lookup_passwd(NULL, uid, &pw, &buf);
        if (r < 0)
                return r;
        return identity_fill(&pw, id);
}

static int nss_identity_from_name(const char *name, Identity *id) {
        struct passwd pw;
        _cleanup_free_ char *buf = NULL;

        int r = lookup_passwd(name, 0, &pw, &buf);
        if (r < 0)
                return r;
        return identity_fill(&pw, id);
}

static int nss_uid_from_name(const char *name, uid_t *ret) {
        struct passwd pw;
        _cleanup_free_ char *buf = NULL;

        int r = lookup_passwd(name, 0, &pw, &buf);
        if (r < 0)
                return r;
        if (pw.pw_uid == (uid_t) -1)
                return -EINVAL;
        *ret = pw.pw_uid;
        return 0;
}

/* getpwnam_r(3): these mean "no such name" from some NSS modules rather than a failure. */
static bool errno_is_not_found(int e) {
        return e == 0 || e == ENOENT || e == ESRCH || e == EBADF || e == EPERM;
}

static int nss_account_exists(const char *name, bool group) {
        size_t size = 1024;

        for (;;) {
                _cleanup_free_ char *buf = malloc(size);
                bool found;
                int r;

                if (!buf)
                        return -ENOMEM;
                if (group) {
                        struct group gr, *result = NULL;
                        r = getgrnam_r(name, &gr, buf, size, &result);
                        found = result;
                } else {
                        struct passwd pw, *result = NULL;
                        r = getpwnam_r(name, &pw, buf, size, &result);
                        found = result;
                }
                if (r == ERANGE && size < NSS_BUF_MAX) {
                        size *= 2;
                        continue;
                }
                if (found)
                        return 1;
                return errno_is_not_found(r) ? 0 : -r;
        }
}

static int nss_user_exists(const char *name) {
        return nss_account_exists(name, false);
}

static int nss_group_exists(const char *name) {
        return nss_account_exists(name, true);
}

const IdentityResolver identity_resolver_nss = {
        .identity_from_uid = nss_identity_from_uid,
        .identity_from_name = nss_identity_from_name,
        .uid_from_name = nss_uid_from_name,
        .user_exists = nss_user_exists,
        .group_exists = nss_group_exists,
};

static const IdentityResolver *resolver = &identity_resolver_nss;

void identity_resolver_set(const IdentityResolver *r) {
        resolver = r ?: &identity_resolver_nss;
}

int identity_from_uid(uid_t uid, Identity *id) {
        if (uid == (uid_t) -1)
                return -EINVAL;
        return resolver->identity_from_uid(uid, id);
}

int identity_from_name(const char *name, Identity *id) {
        if (!valid_account_name(name))
                return -EINVAL;
        return resolver->identity_from_name(name, id);
}

int identity_copy(const Identity *src, Identity *ret) {
        Identity id = { .uid = src->uid };

        if (src->name && !(id.name = strdup(src->name)))
                return -ENOMEM;
        if (src->n_groups > 0 && !(id.groups = calloc(src->n_groups, sizeof(char *)))) {
                identity_done(&id);
                return -ENOMEM;
        }
        for (; id.n_groups < src->n_groups; id.n_groups++)
                if (!(id.groups[id.n_groups] = strdup(src->groups[id.n_groups]))) {
                        identity_done(&id);
                        return -ENOMEM;
                }
        *ret = id;
        return 0;
}

void identity_done(Identity *id) {
        free(id->name);
        for (size_t i = 0; i < id->n_groups; i++)
                free(id->groups[i]);
        free(id->groups);
        *id = (Identity){ .uid = (uid_t) -1 };
}

bool identity_in_group(const Identity *id, const char *group) {
        for (size_t i = 0; i < id->n_groups; i++)
                if (STREQ(id->groups[i], group))
                        return true;
        return false;
}

bool identity_matches(const Identity *id, const char *entry) {
        if (entry[0] == '%')
                return identity_in_group(id, entry + 1);
        return id->name && STREQ(id->name, entry);
}

int account_exists(const char *entry) {
        if (entry[0] == '%')
                return resolver->group_exists(entry + 1);
        return resolver->user_exists(entry);
}

int user_uid_from_name(const char *name, uid_t *ret) {
        if (!valid_account_name(name))
                return -EINVAL;
        return resolver->uid_from_name(name, ret);
}
