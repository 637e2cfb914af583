/* SPDX-License-Identifier: MIT */
#include "session-pending.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "json-strict.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)

static int write_line(int fd, json_object *o, uint64_t size, uint64_t room);

int session_pending_open(const char *path, uint64_t *ret_size) {
        int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;
        struct stat st;
        int r = 0;
        if (fstat(fd, &st) < 0)
                r = -errno;
        else if (!S_ISREG(st.st_mode) || st.st_uid != geteuid())
                r = -EPERM;
        if (r < 0) {
                close(fd);
                return r;
        }
        *ret_size = (uint64_t) st.st_size;
        return fd;
}

int session_pending_add(int fd, const SessionRow *row, const char *requester, uid_t requester_uid,
                        uint64_t size, uint64_t room) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "id", json_object_new_int64(row->id));
        json_object_object_add(o, "request_id", json_object_new_int64(row->request_id));
        json_object_object_add(o, "service", json_object_new_string(row->service));
        if (row->tty)
                json_object_object_add(o, "tty", json_object_new_string(row->tty));
        if (row->rhost)
                json_object_object_add(o, "rhost", json_object_new_string(row->rhost));
        json_object_object_add(o, "pid", json_object_new_int64(row->pid));
        json_object_object_add(o, "pid_start", json_object_new_int64((int64_t) row->pid_start));
        json_object_object_add(o, "boot_id", json_object_new_string(row->boot_id));
        json_object_object_add(o, "opened_at", json_object_new_int64((int64_t) row->opened_at));
        json_object_object_add(o, "requester", json_object_new_string(requester));
        json_object_object_add(o, "requester_uid", json_object_new_int64(requester_uid));

        return write_line(fd, o, size, room);
}

int session_pending_add_close(int fd, int64_t id, int64_t request_id, uint64_t closed_at,
                              const char *reason, uint64_t size, uint64_t room) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "close", json_object_new_int64(id));
        json_object_object_add(o, "request_id", json_object_new_int64(request_id));
        json_object_object_add(o, "closed_at", json_object_new_int64((int64_t) closed_at));
        json_object_object_add(o, "reason", json_object_new_string(reason));
        return write_line(fd, o, size, room);
}

static int write_line(int fd, json_object *o, uint64_t size, uint64_t room) {
        size_t len;
        const char *s = json_object_to_json_string_length(
                o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        if (!s)
                return -ENOMEM;
        if (len + 1 > SESSION_PENDING_LINE_MAX || len + 1 > room)
                return -E2BIG;
        /* One write with its newline; a write cut short is taken back, so that the next
         * line does not land on a broken one. */
        char line[SESSION_PENDING_LINE_MAX];
        memcpy(line, s, len);
        line[len++] = '\n';
        ssize_t n;
        do
                n = write(fd, line, len);
        while (n < 0 && errno == EINTR);
        if (n >= 0 && (size_t) n == len)
                return (int) len;
        int r = n < 0 ? -errno : -ENOSPC;
        if (ftruncate(fd, (off_t) size) < 0)
                return r; /* a line without its newline, which the reader skips */
        return r;
}

int session_pending_clear(int fd) {
        return ftruncate(fd, 0) < 0 ? -errno : 0;
}

static void session_pending_entries_free_one(SessionPendingEntry *e) {
        free(e->row.service);
        free(e->row.tty);
        free(e->row.rhost);
        free(e->requester);
        free(e->reason);
}

void session_pending_entries_free(SessionPendingEntry *e, size_t n) {
        for (size_t i = 0; i < n; i++)
                session_pending_entries_free_one(&e[i]);
        free(e);
}

static int entry_from_json(json_object *o, SessionPendingEntry *e) {
        json_object *v;
        int64_t n;
        e->close = json_object_object_get_ex(o, "close", NULL);
#define INT_FIELD(name, min, dst)                                                                  \
        do {                                                                                       \
                if (!json_object_object_get_ex(o, name, &v) ||                                     \
                    !json_object_is_type(v, json_type_int) ||                                      \
                    (n = json_object_get_int64(v)) < (min))                                        \
                        return -EBADMSG;                                                           \
                dst = n;                                                                           \
        } while (0)
#define STRING_FIELD(name, required, dst)                                                          \
        do {                                                                                       \
                if (!json_object_object_get_ex(o, name, &v)) {                                     \
                        if (required)                                                              \
                                return -EBADMSG;                                                   \
                        break;                                                                     \
                }                                                                                  \
                if (!json_object_is_type(v, json_type_string) ||                                   \
                    !(dst = strdup(json_object_get_string(v))))                                    \
                        return -EBADMSG;                                                           \
        } while (0)
        if (e->close) {
                INT_FIELD("close", 1, e->row.id);
                INT_FIELD("request_id", 1, e->row.request_id);
                INT_FIELD("closed_at", 0, e->closed_at);
                STRING_FIELD("reason", true, e->reason);
                return 0;
        }
        INT_FIELD("id", 1, e->row.id);
        INT_FIELD("request_id", 1, e->row.request_id);
        INT_FIELD("pid", 1, e->row.pid);
        INT_FIELD("pid_start", 0, e->row.pid_start);
        INT_FIELD("opened_at", 0, e->row.opened_at);
        INT_FIELD("requester_uid", 0, e->requester_uid);
        STRING_FIELD("service", true, e->row.service);
        STRING_FIELD("tty", false, e->row.tty);
        STRING_FIELD("rhost", false, e->row.rhost);
        STRING_FIELD("requester", true, e->requester);
        if (!json_object_object_get_ex(o, "boot_id", &v) ||
            !json_object_is_type(v, json_type_string) ||
            strlen(json_object_get_string(v)) >= sizeof(e->row.boot_id))
                return -EBADMSG;
        snprintf(e->row.boot_id, sizeof(e->row.boot_id), "%s", json_object_get_string(v));
#undef INT_FIELD
#undef STRING_FIELD
        return 0;
}

int session_pending_read(const char *path, SessionPendingEntry **ret, size_t *ret_n,
                         size_t *ret_skipped) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        *ret = NULL;
        *ret_n = 0;
        *ret_skipped = 0;
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_size > SESSION_PENDING_FILE_MAX)
                return -EBADMSG;
        _cleanup_free_ char *text = malloc((size_t) st.st_size + 1);
        if (!text)
                return -ENOMEM;
        ssize_t len = read(fd, text, (size_t) st.st_size);
        if (len < 0)
                return -errno;
        text[len] = '\0';

        SessionPendingEntry *e = NULL;
        size_t n = 0, skipped = 0;
        for (char *line = text, *nl; (nl = memchr(line, '\n', (size_t) (text + len - line)));
             line = nl + 1) {
                *nl = '\0';
                _cleanup_(json_object_putp) json_object *o = NULL;
                SessionPendingEntry entry = {};
                if ((size_t) (nl - line) >= SESSION_PENDING_LINE_MAX ||
                    json_strict_validate(line, (size_t) (nl - line), 2) < 0 ||
                    !(o = json_tokener_parse(line)) || !json_object_is_type(o, json_type_object) ||
                    entry_from_json(o, &entry) < 0) {
                        /* Not a line this broker wrote whole: the others still count. */
                        session_pending_entries_free_one(&entry);
                        skipped++;
                        continue;
                }
                SessionPendingEntry *bigger = realloc(e, (n + 1) * sizeof(*e));
                if (!bigger) {
                        session_pending_entries_free_one(&entry);
                        session_pending_entries_free(e, n);
                        return -ENOMEM;
                }
                e = bigger;
                e[n++] = entry;
        }
        *ret_skipped = skipped;
        *ret = e;
        *ret_n = n;
        return 0;
}
