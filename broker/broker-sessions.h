/* SPDX-License-Identifier: MIT */
/* Sessions opened under grants (pam_jit's session part): recorded, held by pidfd, and
 * ended with their grant per settings.on_expiry. They never decide access: the account
 * check did that already. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "store.h"

typedef struct Broker Broker;

/* The start time of process pid, in clock ticks since the kernel booted (/proc/PID/stat). */
int process_start_time(pid_t pid, uint64_t *ret);

/* Registers the session of the peer process (held by pidfd, which is consumed) under the
 * active grant request_id. When it cannot be recorded (the disk is full, the database is
 * read-only or locked) it is held all the same, unrecorded, so that it still ends with its
 * grant (and a one-shot grant serves no second one): the store's error is returned with
 * *ret_id 0 and *ret_held true. */
int sessions_open(Broker *b, int pidfd, pid_t pid, const Request *grant, const char *tty,
                  const char *rhost, int64_t *ret_id, bool *ret_held);
/* The session ended (PAM close_session, or its process exited). A one-shot grant is
 * consumed by it. */
int sessions_close(Broker *b, int64_t id, const char *reason);
/* The same, answered before it is written when its grant is not one-shot (PAM's close:
 * sudo waits for it). */
int sessions_close_later(Broker *b, int64_t id, const char *reason);
/* Writes the opens and closes answered before they were written: before anything reads
 * or writes sessions or the audit log. 0, or -errno (logged, the sessions held). */
int sessions_flush(Broker *b);
/* The sudo approval plugin's check allowed process pid a command under the (not one-shot)
 * command grant grant_id: its PAM session, which follows, is held under that grant. */
void sessions_note_command(pid_t pid, int64_t grant_id);
/* The command grant noted for process pid (the same process: pid and start time), taken
 * (one session per check), or 0. Safe from any thread. */
int64_t sessions_command_grant_of(pid_t pid);
/* Root's session-open where root's checks are answered (the front thread): a session under
 * grant (not one-shot) for process pid, held by pidfd, its id taken and its open in the
 * pending file. 1 with *ret (pidfd taken) to hand to the main loop, or 0 when the main loop
 * must open it (pidfd untouched). Safe from that thread: reads and writes nothing else. */
typedef struct SessionEarly SessionEarly;
int sessions_open_early(const Request *grant, int pidfd, pid_t pid, const char *boot_id,
                        const char *tty, const char *rhost, SessionEarly **ret);
int64_t session_early_id(const SessionEarly *e);
SessionEarly *session_early_next(SessionEarly *e);
void session_early_set_next(SessionEarly *e, SessionEarly *next);
void session_early_free(SessionEarly *e);
/* At stop, a session the main loop did not take: let go of, its line kept in the file (the
 * next start holds it), and the file no longer emptied. */
void sessions_early_keep(SessionEarly *e);
/* The main loop takes e (freed): holds the session, queues its row, and ends it at once if
 * its grant ended meanwhile. */
void sessions_attach_early(Broker *b, SessionEarly *e);
/* At start, before sessions_restore(): the rows of sessions a killed broker answered and
 * did not write, from the pending file at path (taken; session-pending.h), which then
 * holds this broker's. NULL: no file, every session written before it is answered. */
void sessions_recover(Broker *b, char *path);
/* The grant r ended (expired, revoked, withdrawn, consumed): act on its open sessions per
 * settings.on_expiry. */
void sessions_grant_ended(Broker *b, const Request *r);
/* Re-attaches the open sessions of this boot after a broker restart; forgets those whose
 * process is gone, and ends those whose grant is no longer active. */
void sessions_restore(Broker *b);
/* Sessions of a request, for show/status. */
json_object *sessions_json(Broker *b, int64_t request_id);
/* Sends "ends in N minutes" to sessions whose grant ends within settings.expiry_warning,
 * and returns (in *ret_next, CLOCK_BOOTTIME usec) when the next warning is due, 0 if none. */
void sessions_warn(Broker *b, uint64_t *ret_next);
void sessions_free_all(Broker *b);
/* Makes the session records committed without a sync durable, before anything outside the
 * database vouches for them (the audit head sent to journald): 0, or -EIO when they could
 * not be, or a sync failed since the broker started (the kernel may have dropped them). */
int sessions_sync_records(Broker *b);
