/* SPDX-License-Identifier: MIT */
#include "command-line.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "client.h"
#include "names.h"
#include "protocol.h"

static bool readable(const char *s, size_t max) {
        size_t n = strnlen(s, max + 1);
        return n <= max && jit_text_is_safe(s, n);
}

int jit_command_line_check(const JitCommandLine *cl) {
        size_t total = 0, n = 0;

        if (!cl->command || cl->command[0] != '/')
                return -EINVAL;
        if (strnlen(cl->command, JIT_COMMAND_PATH_MAX + 1) > JIT_COMMAND_PATH_MAX)
                return -ENAMETOOLONG;
        if (!readable(cl->command, JIT_COMMAND_PATH_MAX))
                return -EILSEQ;
        if (!cl->argv || !cl->argv[0])
                return -EINVAL;
        for (; cl->argv[n]; n++) {
                size_t len = strnlen(cl->argv[n], JIT_COMMAND_ARG_MAX + 1);
                if (n >= JIT_COMMAND_ARGS_MAX || len > JIT_COMMAND_ARG_MAX)
                        return -E2BIG;
                total += len + 1;
                if (total > JIT_COMMAND_LINE_MAX)
                        return -E2BIG;
                if (!jit_text_is_safe(cl->argv[n], len))
                        return -EILSEQ;
        }
        if (cl->run_as_user && !valid_account_name(cl->run_as_user))
                return -EINVAL;
        if (cl->run_as_group && !valid_account_name(cl->run_as_group))
                return -EINVAL;
        if (cl->cwd && (cl->cwd[0] != '/' || !readable(cl->cwd, JIT_COMMAND_PATH_MAX)))
                return -EILSEQ;
        return 0;
}

const char *jit_command_line_error(int r) {
        switch (r) {
        case -ENAMETOOLONG:
                return "the command's path is longer than 4096 bytes";
        case -E2BIG:
                return "the command line is too long for jit (256 arguments of 4096 bytes, "
                       "32 KiB in all)";
        case -EILSEQ:
                return "the command line holds characters an approver could not read as they "
                       "are (controls, invisible or reordering characters, or bytes that are "
                       "not UTF-8)";
        case -EINVAL:
                return "the command is not an absolute path with its arguments, or the run-as "
                       "user or group is not a name";
        default:
                return "the command line cannot be checked";
        }
}

void jit_words_free(char **words) {
        for (size_t i = 0; words && words[i]; i++)
                free(words[i]);
        free(words);
}

int jit_words_split(const char *text, size_t max, char ***ret_words, bool **ret_quoted,
                    size_t *ret_n, const char **ret_why) {
        char **words = calloc(1, sizeof(char *));
        bool *quoted = calloc(1, sizeof(bool));
        size_t n = 0;
        const char *p = text;

        *ret_why = NULL;
        if (!words || !quoted)
                goto nomem;
        for (;;) {
                while (*p == ' ')
                        p++;
                if (!*p)
                        break;
                if (n >= max) {
                        *ret_why = "too many words";
                        goto invalid;
                }
                char *w = malloc(strlen(p) + 1), *o = w;
                bool q = false;
                if (!w)
                        goto nomem;
                while (*p && *p != ' ') {
                        if (*p != '\'') {
                                *o++ = *p++;
                                continue;
                        }
                        const char *end = strchr(p + 1, '\'');
                        if (!end) {
                                free(w);
                                *ret_why = "a quote is not closed";
                                goto invalid;
                        }
                        memcpy(o, p + 1, (size_t) (end - p - 1));
                        o += end - p - 1;
                        p = end + 1;
                        q = true;
                }
                *o = '\0';
                if (!*w) {
                        free(w);
                        *ret_why = "an empty word ('')";
                        goto invalid;
                }
                char **nw = realloc(words, (n + 2) * sizeof(char *));
                if (nw)
                        words = nw;
                bool *nq = nw ? realloc(quoted, (n + 1) * sizeof(bool)) : NULL;
                if (!nq) {
                        free(w);
                        goto nomem;
                }
                quoted = nq;
                quoted[n] = q;
                words[n++] = w;
                words[n] = NULL;
        }
        *ret_words = words;
        if (ret_quoted)
                *ret_quoted = quoted;
        else
                free(quoted);
        *ret_n = n;
        return 0;
nomem:
        jit_words_free(words);
        free(quoted);
        return -ENOMEM;
invalid:
        jit_words_free(words);
        free(quoted);
        return -EINVAL;
}

/* Whether a shell reads s back as one word without quotes. */
static bool plain_word(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                            "@%+=:,./-_",
                            *s) &&
                    (unsigned char) *s < 0x80)
                        return false;
        return true;
}

static int put_quoted(FILE *f, const char *s) {
        if (plain_word(s))
                return fputs(s, f) < 0 ? -EIO : 0;
        fputc('\'', f);
        for (; *s; s++)
                if (*s == '\'')
                        fputs("'\\''", f);
                else
                        fputc(*s, f);
        fputc('\'', f);
        return 0;
}

char *jit_command_line_quote(const char *const *argv) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return NULL;
        for (size_t i = 0; argv && argv[i]; i++) {
                if (i > 0)
                        fputc(' ', f);
                (void) put_quoted(f, argv[i]);
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

char *jit_shell_quote(const char *s) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return NULL;
        fputc('\'', f);
        for (; *s; s++)
                if (*s == '\'')
                        fputs("'\\''", f);
                else
                        fputc(*s, f);
        fputc('\'', f);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

static int add(json_object *o, const char *key, json_object *v) {
        if (!v || json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

json_object *jit_command_request_new(const JitCommandLine *cl, const char *user) {
        json_object *o = jit_request_new("check-command");
        json_object *argv = json_object_new_array();

        if (!o || !argv)
                goto fail;
        for (size_t i = 0; cl->argv[i]; i++) {
                json_object *s = json_object_new_string(cl->argv[i]);
                if (!s || json_object_array_add(argv, s) < 0) {
                        json_object_put(s);
                        goto fail;
                }
        }
        if (add(o, "argv", argv) < 0) {
                argv = NULL;
                goto fail;
        }
        argv = NULL;
        if (add(o, "user", json_object_new_string(user)) < 0 ||
            add(o, "command", json_object_new_string(cl->command)) < 0 ||
            (cl->run_as_user &&
             add(o, "run_as_user", json_object_new_string(cl->run_as_user)) < 0) ||
            (cl->run_as_group &&
             add(o, "run_as_group", json_object_new_string(cl->run_as_group)) < 0) ||
            (cl->cwd && add(o, "cwd", json_object_new_string(cl->cwd)) < 0) ||
            add(o, "env_plain", json_object_new_boolean(cl->env_plain)) < 0 ||
            (cl->chroot && add(o, "chroot", json_object_new_boolean(true)) < 0) ||
            (cl->sudoedit && add(o, "sudoedit", json_object_new_boolean(true)) < 0))
                goto fail;
        return o;
fail:
        json_object_put(argv);
        json_object_put(o);
        return NULL;
}

bool jit_sudo_conf_loads_approval(const char *text, size_t len, char *ret_group, size_t size) {
        const char *end = text + len;
        for (const char *line = text; line < end;) {
                const char *nl = memchr(line, '\n', (size_t) (end - line));
                const char *stop = nl ?: end, *p = line;
                while (p < stop && (*p == ' ' || *p == '\t'))
                        p++;
                /* "Plugin", blanks, "jit_approval", a blank */
                static const char kw[] = "Plugin", name[] = "jit_approval";
                if ((size_t) (stop - p) > sizeof(kw) && memcmp(p, kw, sizeof(kw) - 1) == 0 &&
                    (p[sizeof(kw) - 1] == ' ' || p[sizeof(kw) - 1] == '\t')) {
                        p += sizeof(kw) - 1;
                        while (p < stop && (*p == ' ' || *p == '\t'))
                                p++;
                        if ((size_t) (stop - p) > sizeof(name) - 1 &&
                            memcmp(p, name, sizeof(name) - 1) == 0 &&
                            (p[sizeof(name) - 1] == ' ' || p[sizeof(name) - 1] == '\t')) {
                                if (!ret_group)
                                        return true;
                                /* The gated group: group=NAME among the options, else jit. */
                                const char *g = "jit";
                                size_t glen = 3;
                                for (const char *q = p; q < stop; q++)
                                        if ((q[-1] == ' ' || q[-1] == '\t') &&
                                            (size_t) (stop - q) > 6 &&
                                            memcmp(q, "group=", 6) == 0) {
                                                g = q + 6;
                                                glen = strcspn(g, " \t\n");
                                                if (g + glen > stop)
                                                        glen = (size_t) (stop - g);
                                        }
                                if (glen == 0 || glen >= size)
                                        return false;
                                memcpy(ret_group, g, glen);
                                ret_group[glen] = '\0';
                                return true;
                        }
                }
                line = nl ? nl + 1 : end;
        }
        return false;
}

int jit_sudo_conf_file_loads_approval(const char *path, char *ret_group, size_t size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        struct stat st;
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 0022) ||
            (size_t) st.st_size > JIT_SUDO_CONF_MAX)
                return 0;
        _cleanup_free_ char *buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        size_t got = 0;
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
        return jit_sudo_conf_loads_approval(buf, got, ret_group, size);
}

int jit_user_in_group(const char *user, const char *group) {
        struct group gbuf, *gr = NULL;
        struct passwd pbuf, *pw = NULL;
        char buf[16384];
        int r;

        if ((r = getgrnam_r(group, &gbuf, buf, sizeof(buf), &gr)) != 0)
                return r == ENOENT || r == ESRCH ? 0 : -r;
        if (!gr)
                return 0;
        gid_t target = gr->gr_gid;
        for (char **m = gr->gr_mem; m && *m; m++)
                if (STREQ(*m, user))
                        return 1;
        if ((r = getpwnam_r(user, &pbuf, buf, sizeof(buf), &pw)) != 0)
                return -r;
        if (!pw)
                return -ENOENT;
        if (pw->pw_gid == target)
                return 1;
        int n = 64;
        for (unsigned tries = 0; tries < 8; tries++) {
                _cleanup_free_ gid_t *list = calloc((size_t) n, sizeof(gid_t));
                if (!list)
                        return -ENOMEM;
                int want = n;
                if (getgrouplist(user, pw->pw_gid, list, &want) >= 0) {
                        for (int i = 0; i < want; i++)
                                if (list[i] == target)
                                        return 1;
                        return 0;
                }
                if (want <= n || want > 65536)
                        return -EIO;
                n = want;
        }
        return -EIO;
}

/* Every directory above path (not path itself): root's, writable by nobody else. */
static int dirs_trusted(const char *path, const char **why) {
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        for (char *slash = strrchr(copy, '/'); slash; slash = strrchr(copy, '/')) {
                *slash = '\0';
                const char *dir = *copy ? copy : "/";
                struct stat st;
                if (lstat(dir, &st) < 0)
                        return -errno;
                /* A symlink on the way is judged where it leads (realpath's side); its own
                 * directory is the next one up, checked in this loop. */
                if (S_ISLNK(st.st_mode) && stat(dir, &st) < 0)
                        return -errno;
                if (st.st_uid != 0 || (st.st_mode & 0022)) {
                        *why = "a directory on the way to it is not root's alone";
                        return -EPERM;
                }
                if (!*copy)
                        break;
        }
        return 0;
}

int jit_program_identity(const char *path, char **ret, const char **ret_why) {
        const char *why = NULL;
        struct stat st;
        int r;

        *ret_why = NULL;
        if (path[0] != '/')
                return -EINVAL;
        _cleanup_free_ char *real = realpath(path, NULL);
        if (!real)
                return -errno;
        if ((r = dirs_trusted(path, &why)) < 0 || (r = dirs_trusted(real, &why)) < 0) {
                *ret_why = why;
                return r;
        }
        if (stat(real, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111))
                return -ENOEXEC;
        if (st.st_uid != 0 || (st.st_mode & 0022)) {
                *ret_why = "the file is not root's alone";
                return -EPERM;
        }
        if (asprintf(ret, "%s\n%llu:%llu:%lld:%lld.%09ld", real, (unsigned long long) st.st_dev,
                     (unsigned long long) st.st_ino, (long long) st.st_size,
                     (long long) st.st_mtim.tv_sec, st.st_mtim.tv_nsec) < 0)
                return -ENOMEM;
        return 0;
}

/* Whether the variable at v (NAME=value) is called name. */
static bool var_is(const char *v, size_t n, const char *name) {
        return strlen(name) == n && strncmp(v, name, n) == 0;
}

const char *jit_environment_problem(char *const envp[], const char *pw_name, const char *pw_dir,
                                    const char *pw_shell, size_t *ret_len) {
        /* Set by sudo itself, whatever the caller had. */
        static const char *const by_sudo[] = {
                "SUDO_COMMAND", "SUDO_USER", "SUDO_UID", "SUDO_GID", "SUDO_HOME", NULL,
        };
        /* Kept from the caller by sudoers' defaults, when the value holds no '/' or '%'
         * (its env_check). */
        static const char *const checked[] = {
                "TERM",    "LANG",     "LANGUAGE", "LINGUAS",   "COLORTERM", "TZ",
                "DISPLAY", "HOSTNAME", "COLORS",   "LS_COLORS", NULL,
        };
        for (size_t i = 0; envp && envp[i]; i++) {
                const char *v = envp[i], *eq = strchr(v, '=');
                size_t n = eq ? (size_t) (eq - v) : strlen(v);
                *ret_len = n;
                if (!eq)
                        return v;
                const char *value = eq + 1;
                bool ok = false;
                if (var_is(v, n, "PATH"))
                        ok = STREQ(value, JIT_SUDO_SECURE_PATH);
                else if (var_is(v, n, "HOME"))
                        ok = pw_dir && STREQ(value, pw_dir);
                else if (var_is(v, n, "SHELL"))
                        ok = pw_shell && STREQ(value, pw_shell);
                else if (var_is(v, n, "USER") || var_is(v, n, "LOGNAME") ||
                         var_is(v, n, "USERNAME"))
                        ok = pw_name && STREQ(value, pw_name);
                else if (var_is(v, n, "MAIL"))
                        ok = pw_name && strncmp(value, "/var/mail/", 10) == 0 &&
                             STREQ(value + 10, pw_name);
                for (size_t k = 0; !ok && by_sudo[k]; k++)
                        ok = var_is(v, n, by_sudo[k]);
                for (size_t k = 0; !ok && checked[k]; k++)
                        ok = var_is(v, n, checked[k]) && !strpbrk(value, "/%");
                if (!ok && n > 3 && strncmp(v, "LC_", 3) == 0)
                        ok = !strpbrk(value, "/%");
                if (!ok)
                        return v;
        }
        return NULL;
}
