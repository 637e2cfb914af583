/* SPDX-License-Identifier: MIT */
#include "fleet-credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"

void fleet_credentials_done(FleetCredentials *c) {
        if (c->password)
                explicit_bzero(c->password, strlen(c->password));
        free(c->password);
        free(c->role);
        *c = (FleetCredentials){};
}

static int set_error(char **ret_error, int error, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int set_error(char **ret_error, int error, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(ret_error, fmt, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
        return error;
}

/* Splits one line into its five fields, unescaping in place; false when it has not five. */
static bool split_fields(char *line, char *fields[5]) {
        size_t n = 0;
        char *out = line;

        fields[n++] = out;
        for (char *in = line; *in; in++) {
                if (*in == '\\' && in[1]) {
                        *out++ = *++in;
                        continue;
                }
                if (*in == ':' && n < 5) {
                        *out++ = '\0';
                        fields[n++] = out;
                        continue;
                }
                *out++ = *in;
        }
        *out = '\0';
        return n == 5;
}

int fleet_credentials_parse(const char *text, size_t len, FleetCredentials *ret, char **ret_error) {
        *ret_error = NULL;
        if (len > FLEET_CREDENTIALS_FILE_MAX)
                return set_error(ret_error, -EINVAL, "longer than %d bytes",
                                 FLEET_CREDENTIALS_FILE_MAX);
        if (memchr(text, '\0', len))
                return set_error(ret_error, -EINVAL, "holds a NUL byte");
        _cleanup_free_ char *copy = strndup(text, len);
        if (!copy)
                return -ENOMEM;

        unsigned lineno = 0;
        for (char *line = copy, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                lineno++;
                size_t l = strlen(line);
                if (l > 0 && line[l - 1] == '\r')
                        line[--l] = '\0';
                if (l == 0 || line[0] == '#')
                        continue;
                char *f[5];
                int r = -EINVAL;
                if (!split_fields(line, f))
                        r = set_error(ret_error, -EINVAL,
                                      "line %u: expected host:port:database:role:password", lineno);
                else if (f[3][0] == '\0' || strlen(f[3]) > FLEET_ROLE_MAX || STREQ(f[3], "*"))
                        r = set_error(ret_error, -EINVAL,
                                      "line %u: the role must be a name of 1 to %d bytes", lineno,
                                      FLEET_ROLE_MAX);
                else if (f[4][0] == '\0' || strlen(f[4]) > FLEET_PASSWORD_MAX)
                        r = set_error(ret_error, -EINVAL,
                                      "line %u: the password must have 1 to %d bytes", lineno,
                                      FLEET_PASSWORD_MAX);
                else {
                        FleetCredentials c = { .role = strdup(f[3]), .password = strdup(f[4]) };
                        r = c.role && c.password ? 0 : -ENOMEM;
                        if (r == 0)
                                *ret = c;
                        else
                                fleet_credentials_done(&c);
                }
                explicit_bzero(copy, len);
                return r;
        }
        explicit_bzero(copy, len);
        return set_error(ret_error, -EINVAL,
                         "no entry (expected the line jitctl fleet add-host "
                         "prints)");
}

int fleet_credentials_read(const char *path, FleetCredentials *ret, char **ret_error) {
        char buf[FLEET_CREDENTIALS_FILE_MAX + 1];
        struct stat st;
        _cleanup_free_ char *why = NULL;
        int r;

        *ret_error = NULL;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0) {
                r = -errno;
                return set_error(ret_error, r, "credentials file %s: %s", path, strerror(-r));
        }
        if (fstat(fd, &st) < 0) {
                r = -errno;
                return set_error(ret_error, r, "credentials file %s: %s", path, strerror(-r));
        }
        if (!S_ISREG(st.st_mode))
                return set_error(ret_error, -EINVAL, "credentials file %s: not a regular file",
                                 path);
        if (st.st_uid != 0)
                return set_error(ret_error, -EPERM,
                                 "credentials file %s: owned by uid %u, must be owned by root",
                                 path, (unsigned) st.st_uid);
        if (st.st_mode & 0077)
                return set_error(ret_error, -EPERM,
                                 "credentials file %s: mode %04o gives group or others access, "
                                 "must be 0600 or stricter",
                                 path, (unsigned) (st.st_mode & 07777));

        size_t len = 0;
        for (;;) {
                ssize_t k = read(fd, buf + len, sizeof(buf) - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = -errno;
                        explicit_bzero(buf, sizeof(buf));
                        return set_error(ret_error, r, "credentials file %s: %s", path,
                                         strerror(-r));
                }
                if (k == 0 || (len += (size_t) k) == sizeof(buf))
                        break;
        }
        r = fleet_credentials_parse(buf, len, ret, &why);
        explicit_bzero(buf, sizeof(buf));
        if (r < 0)
                return set_error(ret_error, r, "credentials file %s: %s", path,
                                 why ?: strerror(-r));
        return 0;
}
