/* SPDX-License-Identifier: MIT */
#include "passwd-cache.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"

/* A password file larger than this is not held: NSS answers as it would without a cache. */
#define PASSWD_CACHE_ENTRIES_MAX 100000U
#define PASSWD_CACHE_BYTES_MAX (32U * 1024U * 1024U)

typedef struct FileStamp {
        bool present;
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtime, ctime;
} FileStamp;

typedef struct PasswdEntry {
        char *name;
        uid_t uid;
        size_t line; /* its place in the file */
} PasswdEntry;

struct PasswdCache {
        char *passwd_path, *nsswitch_path;
        /* Watches the directories of both files: while it reports nothing about them, they
         * are as they were, and a lookup costs one read() instead of two path walks. -1:
         * stat() both at every lookup. */
        int inotify_fd;
        bool changed; /* reported since the last refresh */
        bool racy;    /* stat mode: a file was changed within the clock's resolution of its read */
        FileStamp passwd_stamp, nsswitch_stamp;
        bool loaded;
        bool usable;          /* files first, file read whole */
        PasswdEntry *entries; /* sorted by name; the first of duplicates, as NSS finds */
        size_t n_entries;
};

static void stamp_of(const struct stat *st, FileStamp *ret) {
        *ret = (FileStamp){ .present = true,
                            .dev = st->st_dev,
                            .ino = st->st_ino,
                            .size = st->st_size,
                            .mtime = st->st_mtim,
                            .ctime = st->st_ctim };
}

static void stamp_of_path(const char *path, FileStamp *ret) {
        struct stat st;
        if (stat(path, &st) < 0)
                *ret = (FileStamp){ .present = false };
        else
                stamp_of(&st, ret);
}

static bool stamp_equal(const FileStamp *a, const FileStamp *b) {
        if (a->present != b->present)
                return false;
        return !a->present ||
               (a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
                a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
                a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec);
}

static void entries_free(PasswdCache *c) {
        for (size_t i = 0; i < c->n_entries; i++)
                free(c->entries[i].name);
        free(c->entries);
        c->entries = NULL;
        c->n_entries = 0;
}

bool nsswitch_passwd_files_first(const char *text) {
        const char *line = text;
        while (line && *line) {
                const char *end = strchrnul(line, '\n');
                const char *p = line;
                while (*p == ' ' || *p == '\t')
                        p++;
                if (strncmp(p, "passwd:", 7) == 0) {
                        p += 7;
                        while (p < end && (*p == ' ' || *p == '\t'))
                                p++;
                        size_t n = 0;
                        while (p + n < end && p[n] != ' ' && p[n] != '\t' && p[n] != '#')
                                n++;
                        /* The first source decides: "files" answers before anything else. */
                        return n == 5 && strncmp(p, "files", 5) == 0;
                }
                line = *end ? end + 1 : NULL;
        }
        return false; /* no passwd line: glibc's default order, not ours to assume */
}

static int entry_compare(const void *a, const void *b) {
        const PasswdEntry *x = a, *y = b;
        int k = strcmp(x->name, y->name);
        /* Keep the file's order among duplicates: the first is what NSS returns. */
        return k ?: (x->line < y->line ? -1 : x->line > y->line);
}

static bool nsswitch_allows(PasswdCache *c) {
        _cleanup_fclose_ FILE *f = fopen(c->nsswitch_path, "re");
        char buf[16384];
        if (!f)
                return false;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        if (ferror(f) || !feof(f))
                return false; /* unreadable, or larger than any real one */
        buf[n] = '\0';
        return nsswitch_passwd_files_first(buf);
}

static int load_passwd(PasswdCache *c) {
        _cleanup_fclose_ FILE *f = fopen(c->passwd_path, "re");
        struct stat st;
        if (!f)
                return -errno;
        if (fstat(fileno(f), &st) < 0)
                return -errno;
        /* What was read is what the stamp says: a change after this is seen next time. */
        stamp_of(&st, &c->passwd_stamp);
        if (st.st_size > (off_t) PASSWD_CACHE_BYTES_MAX)
                return -EFBIG;

        size_t cap = 0;
        struct passwd pw, *res;
        char buf[4096];
        for (;;) {
                int r = fgetpwent_r(f, &pw, buf, sizeof(buf), &res);
                if (r == ENOENT)
                        break;
                if (r != 0)
                        return -r; /* ERANGE: a line longer than any account's */
                /* NIS markers of the compat syntax are not accounts. */
                if (pw.pw_name[0] == '+' || pw.pw_name[0] == '-' || pw.pw_name[0] == '\0')
                        continue;
                if (c->n_entries == PASSWD_CACHE_ENTRIES_MAX)
                        return -EFBIG;
                if (c->n_entries == cap) {
                        size_t ncap = cap ? cap * 2 : 64;
                        PasswdEntry *e = reallocarray(c->entries, ncap, sizeof(PasswdEntry));
                        if (!e)
                                return -ENOMEM;
                        c->entries = e;
                        cap = ncap;
                }
                c->entries[c->n_entries].name = strdup(pw.pw_name);
                if (!c->entries[c->n_entries].name)
                        return -ENOMEM;
                c->entries[c->n_entries].line = c->n_entries;
                c->entries[c->n_entries++].uid = pw.pw_uid;
        }
        qsort(c->entries, c->n_entries, sizeof(PasswdEntry), entry_compare);
        return 0;
}

static bool is_one_of_ours(const PasswdCache *c, const char *name) {
        const char *p = strrchr(c->passwd_path, '/'), *n = strrchr(c->nsswitch_path, '/');
        return STREQ(name, p ? p + 1 : c->passwd_path) || STREQ(name, n ? n + 1 : c->nsswitch_path);
}

/* Reads what the watch reported: whether either file (or its directory) may have changed. */
static void drain_events(PasswdCache *c) {
        _Alignas(struct inotify_event) char buf[4096];
        for (;;) {
                ssize_t n = read(c->inotify_fd, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        if (n < 0 && errno != EAGAIN) /* cannot tell any more: stat() from now on */
                                c->inotify_fd = safe_close(c->inotify_fd);
                        return;
                }
                bool dead = false;
                for (char *p = buf; p < buf + n;) {
                        const struct inotify_event *e = (const struct inotify_event *) p;
                        /* Events were lost, or the directory itself went (the watch with it):
                         * read again, and stat() from now on. */
                        if (e->mask & (IN_Q_OVERFLOW | IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF |
                                       IN_UNMOUNT))
                                c->changed = dead = true;
                        else if (e->len > 0 && is_one_of_ours(c, e->name))
                                c->changed = true;
                        p += sizeof(struct inotify_event) + e->len;
                }
                if (dead) {
                        c->inotify_fd = safe_close(c->inotify_fd);
                        return;
                }
        }
}

/* The directory of path (malloc'd), or NULL. */
static char *directory_of(const char *path) {
        char *dir = strdup(path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (!slash) {
                free(dir);
                return NULL;
        }
        if (slash == dir)
                slash[1] = '\0';
        else
                *slash = '\0';
        return dir;
}

/* Whether a change of path shows in a watch of its directory: not when the file is a
 * symlink (its target changes elsewhere), a mount of its own (a bind-mounted file reports
 * to its source's directory) or on another file system than the directory. */
static bool watchable(const char *path) {
        _cleanup_free_ char *dir = directory_of(path);
        struct statx sx;
        struct stat st;
        if (!dir || statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_TYPE, &sx) < 0 ||
            S_ISLNK(sx.stx_mode) || stat(dir, &st) < 0)
                return false;
        if ((sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
            (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
                return false;
        return makedev(sx.stx_dev_major, sx.stx_dev_minor) == st.st_dev;
}

static int watch_directory_of(int fd, const char *path) {
        _cleanup_free_ char *dir = directory_of(path);
        if (!dir)
                return -ENOMEM;
        if (!watchable(path))
                return -ENOTSUP;
        if (inotify_add_watch(fd, dir,
                              IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_MODIFY |
                                      IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF |
                                      IN_ONLYDIR | IN_DONT_FOLLOW) < 0)
                return -errno;
        return 0;
}

/* Changed within 2 s of now: a rewrite in the same clock tick, of the same size, would
 * leave the stamp as it is. */
static bool stamp_is_recent(const FileStamp *s, time_t now) {
        return s->present && (s->mtime.tv_sec >= now - 2 || s->ctime.tv_sec >= now - 2);
}

static void refresh(PasswdCache *c) {
        FileStamp p, n;
        bool reported = false;

        if (c->inotify_fd >= 0) {
                drain_events(c);
                if (c->loaded && !c->changed && c->inotify_fd >= 0)
                        return;
                /* Reported: read again whatever the stamps say. */
                reported = c->changed;
                c->changed = false;
                /* A file that became a symlink or a mount is out of the watch's sight. */
                if (c->inotify_fd >= 0 &&
                    (!watchable(c->passwd_path) || !watchable(c->nsswitch_path)))
                        c->inotify_fd = safe_close(c->inotify_fd);
        }
        stamp_of_path(c->passwd_path, &p);
        stamp_of_path(c->nsswitch_path, &n);
        if (c->loaded && !reported && !c->racy && stamp_equal(&p, &c->passwd_stamp) &&
            stamp_equal(&n, &c->nsswitch_stamp))
                return;
        entries_free(c);
        c->loaded = true;
        c->nsswitch_stamp = n;
        c->passwd_stamp = p;
        c->usable = nsswitch_allows(c) && load_passwd(c) >= 0;
        if (!c->usable)
                entries_free(c);
        time_t now = time(NULL);
        c->racy = stamp_is_recent(&c->passwd_stamp, now) || stamp_is_recent(&n, now);
}

int passwd_cache_lookup(PasswdCache *c, const char *name, uid_t *ret_uid) {
        refresh(c);
        if (!c->usable)
                return 0;
        size_t lo = 0, hi = c->n_entries;
        while (lo < hi) { /* the first entry not less than name */
                size_t mid = lo + (hi - lo) / 2;
                if (strcmp(c->entries[mid].name, name) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (lo == c->n_entries || strcmp(c->entries[lo].name, name) != 0)
                return 0;
        *ret_uid = c->entries[lo].uid;
        return 1;
}

int passwd_cache_new(const char *passwd_path, const char *nsswitch_path, PasswdCache **ret) {
        _cleanup_free_ PasswdCache *c = calloc(1, sizeof(PasswdCache));
        if (!c)
                return -ENOMEM;
        c->passwd_path = strdup(passwd_path ?: "/etc/passwd");
        c->nsswitch_path = strdup(nsswitch_path ?: "/etc/nsswitch.conf");
        if (!c->passwd_path || !c->nsswitch_path) {
                free(c->passwd_path);
                free(c->nsswitch_path);
                return -ENOMEM;
        }
        /* Set up before the first read, so that no change after it goes unseen. Without it
         * (no inotify, a symlinked file) every lookup stat()s both files. */
        c->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (c->inotify_fd >= 0 && (watch_directory_of(c->inotify_fd, c->passwd_path) < 0 ||
                                   watch_directory_of(c->inotify_fd, c->nsswitch_path) < 0))
                c->inotify_fd = safe_close(c->inotify_fd);
        *ret = TAKE_PTR(c);
        return 0;
}

void passwd_cache_free(PasswdCache *c) {
        if (!c)
                return;
        entries_free(c);
        safe_close(c->inotify_fd);
        free(c->passwd_path);
        free(c->nsswitch_path);
        free(c);
}
