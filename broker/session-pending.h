/* SPDX-License-Identifier: MIT */
/* The runtime directory's file of session opens and closes answered before their row was
 * written (broker-sessions.c): one JSON line each, appended before the answer, emptied once
 * the rows are committed. A broker killed in between leaves it for the next start, which
 * writes the rows it names that the database lacks. A reboot clears it, and the sessions
 * with it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store.h"

/* Where an entry is larger than this, or the file, it is not ours. */
#define SESSION_PENDING_LINE_MAX 4096U
#define SESSION_PENDING_FILE_MAX (4U * 1024U * 1024U)

typedef struct SessionPendingEntry {
        bool close;     /* a close: row.id, row.request_id, closed_at and reason */
        SessionRow row; /* an open: id set; owned service, tty, rhost */
        char *requester;
        uid_t requester_uid;
        uint64_t closed_at; /* realtime usec */
        char *reason;
} SessionPendingEntry;

/* Opens (creates, root's, 0600) the file for appending: an fd and its size, or -errno. */
int session_pending_open(const char *path, uint64_t *ret_size);
/* Appends the open of row (with its id) in one write to the file of size bytes: the bytes
 * written, -E2BIG when the line does not fit in room (or in a line), or -errno with the
 * file as it was. */
int session_pending_add(int fd, const SessionRow *row, const char *requester, uid_t requester_uid,
                        uint64_t size, uint64_t room);
/* The same for the close of session id. */
int session_pending_add_close(int fd, int64_t id, int64_t request_id, uint64_t closed_at,
                              const char *reason, uint64_t size, uint64_t room);
/* Empties it: every entry is in the database. */
int session_pending_clear(int fd);
/* The entries of the file at path (none when it does not exist); a line that is not one
 * this broker wrote whole (a last line without its newline, one that does not parse) is
 * skipped and counted in *ret_skipped. -EBADMSG when the file is not one this broker
 * wrote (not a regular file of root's, larger than SESSION_PENDING_FILE_MAX). */
int session_pending_read(const char *path, SessionPendingEntry **ret, size_t *ret_n,
                         size_t *ret_skipped);
void session_pending_entries_free(SessionPendingEntry *e, size_t n);
