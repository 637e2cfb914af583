/* SPDX-License-Identifier: MIT */
/* jit-brokerd: holds requests and grants, answers the PAM module, expires grants. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "broker-audit.h"
#include "broker-journal.h"
#include "broker-sessions.h"
#include "broker.h"
#include "cleanup.h"
#include "config.h"
#include "duration.h"
#include "fleet-client.h"
#include "grant.h"
#include "json-lines.h"
#include "notify.h"
#include "store-retention.h"
#include "timeutil.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)

/* How often the audit head goes to journald when it moved. */
#define AUDIT_HEAD_INTERVAL_USEC (60 * USEC_PER_SEC)
/* Ended requests archived per beat of settings.request_retention. */
#define REQUEST_ARCHIVE_BATCH 1000

/* This boot, as grants are bound to it: the kernel's boot id and the start time of PID 1
 * of our PID namespace, "<boot id>/<ticks>". The kernel's id alone is not enough in a
 * container: a container that reboots starts a new PID 1 on the same kernel, and the id a
 * container manager puts over /proc/sys/kernel/random/boot_id (systemd-nspawn does) is
 * hidden from a unit with ProtectKernelTunables=, which shows the kernel's. On a host,
 * PID 1 lives exactly as long as the boot (re-executing keeps its start time). */
static int read_boot_id(char buf[BOOT_ID_MAX]) {
        char kernel_id[40];
        _cleanup_close_ int fd =
                open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, kernel_id, sizeof(kernel_id) - 1);
        if (n < 32)
                return n < 0 ? -errno : -EIO;
        kernel_id[n] = '\0';
        kernel_id[strcspn(kernel_id, "\n")] = '\0';
        uint64_t init_start;
        int r = process_start_time(1, &init_start);
        if (r < 0)
                return r;
        snprintf(buf, BOOT_ID_MAX, "%s/%" PRIu64, kernel_id, init_start);
        return 0;
}

static void update_status(Broker *b) {
        unsigned active = 0, pending = 0;
        if (db_count_open(b->db, (uid_t) -1, &active, &pending) < 0) {
                sd_notify(false, "STATUS=Database unreadable; denying everything");
                return;
        }
        sd_notifyf(false, "STATUS=%u active grant%s, %u pending", active, active == 1 ? "" : "s",
                   pending);
}

/* The last pass over due requests failed to end one: a deadline still in the table after
 * it passed is looked at again in a second, not in a loop. */
static bool ends_failing;

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Broker *b = userdata;
        ends_failing = grant_end_due(&b->grants) < 0;
        effects_changed(&b->effects);
        return 0;
}

/* Ends the core holds in memory (grant.h) are written every GRANT_RETRY_USEC until the
 * database takes them. */
static void arm_retry(Broker *b) {
        int enabled = SD_EVENT_OFF;
        if (b->grants.n_held == 0 ||
            (sd_event_source_get_enabled(b->retry_timer, &enabled) >= 0 && enabled != SD_EVENT_OFF))
                return;
        (void) sd_event_source_set_time_relative(b->retry_timer, GRANT_RETRY_USEC);
        (void) sd_event_source_set_enabled(b->retry_timer, SD_EVENT_ONESHOT);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Broker *b = userdata;
        size_t left = grants_retry_held(&b->grants);
        if (left > 0) {
                const HeldEnd *h = &b->grants.held[0];
                log_warning("%zu end%s still not saved (request %" PRId64 ": %s, %u attempts); "
                            "retrying in %llu s",
                            left, left == 1 ? "" : "s", h->id, grant_store_failure(h->error),
                            h->attempts, (unsigned long long) (GRANT_RETRY_USEC / USEC_PER_SEC));
                arm_retry(b);
        } else
                log_notice("every held end is saved now");
        return 0;
}

/* ---- held ends outlive the process ----
 * What the core holds in memory is also kept in a file beside the socket: /run/jit, kept
 * across restarts of the service (RuntimeDirectoryPreserve=yes) and on another file system
 * than the database. A broker started after one that stopped (or crashed) with ends not
 * saved holds them again, so that a revoke that never reached the disk is not undone by a
 * restart. The file can only end grants, never open one. A reboot clears it; grants do not
 * outlive a reboot anyway. */

#define HELD_FILE "held-ends.json"
/* Session opens answered before their row was written (broker-sessions.c). */
#define SESSIONS_PENDING_FILE "sessions-pending.jsonl"
#define HELD_FILE_MAX (4U * 1024U * 1024U)

/* A file of the runtime directory: the socket's. */
char *broker_runtime_file(const Broker *b, const char *name) {
        char *p = NULL;
        const char *slash = strrchr(b->socket_path, '/');
        if (asprintf(&p, "%.*s/%s", (int) (slash ? slash - b->socket_path : 1),
                     slash ? b->socket_path : ".", name) < 0)
                return NULL;
        return p;
}

static char *held_path(const Broker *b) {
        return broker_runtime_file(b, HELD_FILE);
}

static json_object *held_to_json(const Broker *b, const HeldEnd *h) {
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "id", json_object_new_int64(h->id));
        json_object_object_add(o, "event",
                               json_object_new_string(request_event_to_string(h->event)));
        json_object_object_add(o, "state",
                               json_object_new_string(request_state_to_string(h->state)));
        json_object_object_add(o, "audit_event",
                               json_object_new_string(jit_event_name(h->audit_event)));
        json_object_object_add(o, "at", json_object_new_int64((int64_t) h->at));
        json_object_object_add(o, "ended_by", json_object_new_string(h->ended_by));
        json_object_object_add(o, "reason", h->reason ? json_object_new_string(h->reason) : NULL);
        json_object_object_add(o, "actor", json_object_new_string(h->actor));
        json_object_object_add(o, "actor_uid", json_object_new_int64(h->actor_uid));
        json_object_object_add(o, "message", json_object_new_string(h->message));
        json_object_object_add(o, "error", json_object_new_int(h->error));
        json_object_object_add(o, "attempts", json_object_new_int((int) h->attempts));
        json_object_object_add(o, "boot_id", json_object_new_string(b->boot_id));
        return o;
}

/* Writes the held ends to the file (or removes it when there are none), when they changed. */
static void keep_held(Broker *b) {
        _cleanup_free_ char *path = NULL, *tmp = NULL;
        _cleanup_(json_object_putp) json_object *arr = NULL;
        unsigned changes = b->grants.held_changes;
        int r;

        if (changes == b->held_kept)
                return;
        if (!(path = held_path(b)) || asprintf(&tmp, "%s.tmp", path) < 0) {
                log_error("keeping the held ends: out of memory");
                return;
        }
        if (b->grants.n_held == 0) {
                if (unlink(path) < 0 && errno != ENOENT)
                        log_error_errno(-errno, "removing %s: %m", path);
                b->held_kept = changes;
                return;
        }
        arr = json_object_new_array();
        r = arr ? 0 : -ENOMEM;
        for (size_t i = 0; r >= 0 && i < b->grants.n_held; i++) {
                json_object *o = held_to_json(b, &b->grants.held[i]);
                if (!o || json_object_array_add(arr, o) < 0) {
                        json_object_put(o);
                        r = -ENOMEM;
                }
        }
        _cleanup_close_ int fd = -EBADF;
        if (r >= 0 &&
            (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
                r = -errno;
        if (r >= 0)
                r = json_line_write(fd, arr);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                log_error_errno(r, "keeping the held ends in %s: %m", path);
                if (fd >= 0)
                        (void) unlink(tmp);
                return;
        }
        b->held_kept = changes;
}

/* One entry of the file; its strings point into o. */
static int held_from_json(json_object *o, HeldEnd *h) {
        json_object *id, *event, *state, *audit, *at, *by, *actor, *uid, *message, *v;

#define GET(key, var, type)                                                                        \
        (json_object_object_get_ex(o, key, &var) && json_object_is_type(var, type))
        if (!GET("id", id, json_type_int) || !GET("event", event, json_type_string) ||
            !GET("state", state, json_type_string) ||
            !GET("audit_event", audit, json_type_string) || !GET("at", at, json_type_int) ||
            !GET("ended_by", by, json_type_string) || !GET("actor", actor, json_type_string) ||
            !GET("actor_uid", uid, json_type_int) || !GET("message", message, json_type_string))
                return -EBADMSG;
        *h = (HeldEnd){
                .id = json_object_get_int64(id),
                .event = request_event_from_string(json_object_get_string(event)),
                .state = request_state_from_string(json_object_get_string(state)),
                .audit_event = _JIT_EVENT_MAX,
                .at = (uint64_t) json_object_get_int64(at),
                .ended_by = (char *) json_object_get_string(by),
                .reason = GET("reason", v, json_type_string) ? (char *) json_object_get_string(v)
                                                             : NULL,
                .actor = (char *) json_object_get_string(actor),
                .actor_uid = json_object_get_int64(uid),
                .message = (char *) json_object_get_string(message),
                .error = GET("error", v, json_type_int) ? json_object_get_int(v) : -EIO,
                .attempts =
                        GET("attempts", v, json_type_int) ? (unsigned) json_object_get_int(v) : 1,
        };
#undef GET
        for (int e = 0; e < _JIT_EVENT_MAX; e++)
                if (STREQ(jit_event_name(e), json_object_get_string(audit)))
                        h->audit_event = e;
        /* Only what ends a request; grants_hold_again() checks the move against the stored
         * request through the state machine. */
        static const RequestEvent ends[] = { EVENT_DENY, EVENT_CANCEL, EVENT_PENDING_TIMEOUT,
                                             EVENT_EXPIRE, EVENT_REVOKE };
        bool ok = false;
        for (size_t i = 0; i < ELEMENTSOF(ends); i++)
                ok |= h->event == ends[i];
        return ok && h->id > 0 && h->at > 0 && h->audit_event < _JIT_EVENT_MAX && h->state >= 0 &&
                               request_state_is_final(h->state)
                       ? 0
                       : -EBADMSG;
}

/* At start: holds again what a broker before this one held and never wrote. */
static void restore_held(Broker *b) {
        _cleanup_free_ char *path = held_path(b), *text = NULL;
        _cleanup_(json_object_putp) json_object *arr = NULL;
        size_t n_restored = 0;

        if (!path)
                return;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0) {
                if (errno != ENOENT)
                        log_error_errno(-errno, "reading %s: %m", path);
                return;
        }
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 ||
            st.st_size > HELD_FILE_MAX || !(text = calloc(1, (size_t) st.st_size + 1)) ||
            read(fd, text, (size_t) st.st_size) != st.st_size ||
            !(arr = json_tokener_parse(text)) || !json_object_is_type(arr, json_type_array)) {
                log_error("%s is not a list of held ends written by jit-brokerd; ignored", path);
                return;
        }
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *o = json_object_array_get_idx(arr, i), *boot;
                HeldEnd h = {};
                if (held_from_json(o, &h) < 0) {
                        log_error("%s: entry %zu is not a held end; ignored", path, i + 1);
                        continue;
                }
                if (!json_object_object_get_ex(o, "boot_id", &boot) ||
                    !STREQ(json_object_get_string(boot) ?: "", b->boot_id))
                        continue; /* an earlier boot: its grants ended with it */
                int r = grants_hold_again(&b->grants, &h);
                if (r < 0)
                        log_error_errno(r, "holding the end of request %" PRId64 " again: %m",
                                        h.id);
                n_restored += r > 0;
        }
        if (n_restored > 0)
                log_warning("%zu end%s not saved by the broker before this one %s held again "
                            "from %s",
                            n_restored, n_restored == 1 ? "" : "s", n_restored == 1 ? "is" : "are",
                            path);
        b->held_kept = b->grants.held_changes - 1; /* rewritten (or removed) at the next look */
}

/* The sessions of grants held ended, once sessions_restore() holds them again. */
static void end_sessions_of_held(Broker *b) {
        for (size_t i = 0; i < b->grants.n_held; i++) {
                Request *r = NULL;
                if (db_get_request(b->db, b->grants.held[i].id, &r) < 0)
                        continue;
                if (r->state == REQUEST_ACTIVE) {
                        r->state = b->grants.held[i].state;
                        sessions_grant_ended(b, r);
                }
                request_free(r);
        }
}

/* The summaries of refusals and denied checks held back (effects.h), posted on a beat of
 * their own: the check thread counts without waking the main loop. */
#define LOG_FLUSH_INTERVAL_USEC (LOG_LIMIT_INTERVAL_USEC / 2)

static int on_log_flush(sd_event_source *s, uint64_t usec, void *userdata) {
        Broker *b = userdata;
        (void) effects_flush_suppressed(&b->effects, now_usec(CLOCK_BOOTTIME));
        (void) sd_event_source_set_time_relative(s, LOG_FLUSH_INTERVAL_USEC);
        return 0;
}

/* What follows committed changes, once per loop iteration: their journald entries, the
 * sessions of grants that ended, then the timers and the STATUS line. */
static void run_effects(Broker *b) {
        size_t n;
        Effect *due = effects_take_due(&b->effects, &n);
        for (size_t i = 0; i < n; i++) {
                const Effect *e = &due[i];
                log_event(e->event, e->priority, e->request, e->actor,
                          (const char *const *) e->fields, "%s", e->message);
                if (e->ends_grant && e->request)
                        sessions_grant_ended(b, e->request);
        }
        effects_free(due, n);
        arm_retry(b);
        keep_held(b);
        if (b->effects.state_changed) {
                b->effects.state_changed = false;
                broker_state_changed(b);
        }
        notifier_kick(b->notifier);
}

static int on_effects(sd_event_source *s, void *userdata) {
        run_effects(userdata);
        return 0;
}

static void effects_wakeup(void *userdata) {
        Broker *b = userdata;
        (void) sd_event_source_set_enabled(b->effects_source, SD_EVENT_ONESHOT);
}

/* Grants.before_begin: session records answered before they were written go first. */
static void flush_sessions(Grants *g, void *userdata) {
        (void) sessions_flush(userdata);
}

/* Grants.before_commit: the notifications a change owes go into the outbox with it. */
static int stage_notifications(Grants *g, void *userdata) {
        Broker *b = userdata;
        return notifier_stage(b->notifier, g);
}

static void report_failure(void *userdata, int error, const char *what, int64_t id) {
        Broker *b = userdata;
        if (id > 0)
                log_error_errno(error, "%s %lld: %m (%s)", what, (long long) id, db_error(b->db));
        else
                log_error_errno(error, "%s: %m (%s)", what, db_error(b->db));
}

void broker_state_changed(Broker *b) {
        uint64_t next;
        int r = db_next_deadline(b->db, b->boot_id, &next);

        if (r < 0) {
                log_error_errno(r, "finding the next deadline: %m; retrying in 1 s");
                next = now_usec(CLOCK_BOOTTIME) + USEC_PER_SEC;
        }
        /* A deadline still in the table after it passed, when ends failed or are held, is
         * one of those (the check refuses it by its deadlines anyway): looked at again in a
         * second, not in a loop. */
        uint64_t soonest = now_usec(CLOCK_BOOTTIME);
        if (r > 0 && next <= soonest && (ends_failing || b->grants.n_held > 0))
                next = soonest + USEC_PER_SEC;
        if (r == 0) {
                (void) sd_event_source_set_enabled(b->deadline_timer, SD_EVENT_OFF);
        } else {
                /* CLOCK_BOOTTIME keeps counting through suspend and ignores wall-clock jumps. */
                (void) sd_event_source_set_time(b->deadline_timer, next);
                (void) sd_event_source_set_enabled(b->deadline_timer, SD_EVENT_ONESHOT);
        }

        uint64_t warn_at;
        sessions_warn(b, &warn_at);
        if (warn_at == 0)
                (void) sd_event_source_set_enabled(b->warning_timer, SD_EVENT_OFF);
        else {
                (void) sd_event_source_set_time(b->warning_timer, warn_at);
                (void) sd_event_source_set_enabled(b->warning_timer, SD_EVENT_ONESHOT);
        }
        update_status(b);
}

static int on_warning(sd_event_source *s, uint64_t usec, void *userdata) {
        broker_state_changed(userdata); /* sends what is due, arms the next */
        return 0;
}

/* Policy loads and broker start/stop are events of their own in the audit log. */
static void audit_policy(Broker *b, JitEvent ev, const char *error) {
        json_object *d = json_object_new_object();
        if (d) {
                json_object_object_add(d, "policy", json_object_new_string(b->policy_path));
                if (b->policy)
                        json_object_object_add(d, "policy_version",
                                               json_object_new_string(b->policy->hash));
                if (error)
                        json_object_object_add(d, "error", json_object_new_string(error));
        }
        int r = audit_append(b->db, ev, "broker", -1, 0, d);
        if (r < 0)
                log_error_errno(r, "writing the audit record for %s: %m", jit_event_name(ev));
        audit_log_head(b, false);
}

/* Ended requests that ended before `before` (realtime usec), with their approvals and
 * closed sessions, leave the live tables for an archive file beside the audit archives: the
 * file is written, synced and renamed into place (and the directory synced) before the rows
 * are deleted, in one transaction with a "requests-archived" audit record. Their own audit
 * records stay in the audit log. Returns the number archived. */
static int archive_requests(Broker *b, uint64_t before, json_object **ret_info) {
        _cleanup_(store_tx_release) StoreTx tx = {};
        _cleanup_(json_object_putp) json_object *requests = NULL, *info = NULL;
        _cleanup_free_ int64_t *ids = NULL;
        _cleanup_free_ char *dir = NULL, *tmp = NULL, *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t n = 0;
        int r;

        if ((r = db_begin(b->db)) < 0)
                return r;
        tx.db = b->db;
        if ((r = db_ended_requests(b->db, before, REQUEST_ARCHIVE_BATCH, &requests, &ids, &n)) < 0)
                return r;
        if (n == 0)
                return 0; /* the guard ends the read */

        int64_t first = ids[0], last = ids[n - 1];
        dir = audit_archive_dir(b->db_path);
        if (!dir || asprintf(&tmp, "%s/.requests-%" PRId64 ".tmp", dir, first) < 0 ||
            asprintf(&path, "%s/requests-%08" PRId64 "-%08" PRId64 ".jsonl", dir, first, last) < 0)
                return -ENOMEM;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        (void) unlink(tmp);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;

        info = json_object_new_object();
        json_object *header = json_object_new_object();
        if (!info || !header) {
                json_object_put(header);
                r = -ENOMEM;
                goto fail;
        }
        json_object_object_add(header, "jit_requests_archive", json_object_new_int(1));
        json_object_object_add(header, "archived_at",
                               json_object_new_int64((int64_t) now_usec(CLOCK_REALTIME)));
        json_object_object_add(header, "ended_before", json_object_new_int64((int64_t) before));
        json_object_object_add(header, "requests", json_object_new_int64((int64_t) n));
        r = json_line_write(fd, header);
        json_object_put(header);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = json_line_write(fd, json_object_array_get_idx(requests, i));
        if (r < 0)
                goto fail;
        if (fsync(fd) < 0 || renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0) {
                r = -errno;
                goto fail;
        }
        {
                /* The name must be on disk before the rows leave the database. */
                _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd < 0 || fsync(dfd) < 0) {
                        r = -errno;
                        goto fail_renamed;
                }
        }

        json_object_object_add(info, "file", json_object_new_string(path));
        json_object_object_add(info, "requests", json_object_new_int64((int64_t) n));
        json_object_object_add(info, "first_id", json_object_new_int64(first));
        json_object_object_add(info, "last_id", json_object_new_int64(last));
        if ((r = db_delete_requests(b->db, ids, n)) < 0 ||
            (r = audit_append(b->db, JIT_EVENT_REQUESTS_ARCHIVED, "broker", -1, 0,
                              json_object_get(info))) < 0 ||
            (r = db_commit(b->db)) < 0)
                goto fail_renamed;
        tx.db = NULL;
        *ret_info = TAKE_PTR(info);
        return (int) n;

fail_renamed:
        (void) unlink(path);
        return r;
fail:
        (void) unlink(tmp);
        return r;
}

/* The database passed its integrity check (on_integrity_done()): retention waits for it. */
static bool integrity_passed;

/* settings.request_retention, on the audit head's beat and once the integrity check
 * passed. */
static void apply_request_retention(Broker *b) {
        uint64_t retention = b->policy->request_retention * USEC_PER_SEC,
                 now = now_usec(CLOCK_REALTIME);
        _cleanup_(json_object_putp) json_object *info = NULL;

        if (retention == 0 || retention >= now)
                return;
        int r = archive_requests(b, now - retention, &info);
        if (r < 0) {
                log_error_errno(r, "archiving requests past settings.request_retention: %m (%s)",
                                db_error(b->db));
                return;
        }
        if (r == 0)
                return;
        char file[4200], count[64], first[64], last[64];
        json_object *o;
        const char *path =
                json_object_object_get_ex(info, "file", &o) ? json_object_get_string(o) : "";
        snprintf(file, sizeof(file), "JIT_ARCHIVE_FILE=%s", path);
        snprintf(count, sizeof(count), "JIT_ARCHIVED_REQUESTS=%d", r);
        snprintf(first, sizeof(first), "JIT_ARCHIVE_FIRST_ID=%" PRId64,
                 json_object_object_get_ex(info, "first_id", &o) ? json_object_get_int64(o) : 0);
        snprintf(last, sizeof(last), "JIT_ARCHIVE_LAST_ID=%" PRId64,
                 json_object_object_get_ex(info, "last_id", &o) ? json_object_get_int64(o) : 0);
        const char *fields[] = { file, count, first, last, NULL };
        log_event(JIT_EVENT_REQUESTS_ARCHIVED, LOG_NOTICE, NULL, "broker", fields,
                  "%d ended request%s archived to %s", r, r == 1 ? "" : "s", path);
        audit_log_head(b, false);
        effects_changed(&b->effects);
}

static int on_audit_head_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Broker *b = userdata;
        (void) sessions_flush(b); /* the head vouches for them too */
        audit_log_head(b, false);
        /* Retention is checked on the same beat; a day's records move at most once a minute,
         * and only out of a database that passed its integrity check. */
        if (integrity_passed) {
                audit_apply_retention(b);
                apply_request_retention(b);
        }
        (void) sd_event_source_set_time_relative(s, AUDIT_HEAD_INTERVAL_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

/* Loads the policy file: at start (initial), or in place of the loaded one. A refused file
 * leaves the old policy; *ret_error (if given) gets the parser's file:line message. */
static int load_policy_reporting(Broker *b, bool initial, char **ret_error) {
        Policy *p = NULL;
        _cleanup_free_ char *error = NULL;
        char path_field[4200];
        snprintf(path_field, sizeof(path_field), "JIT_POLICY=%s", b->policy_path);
        const char *fields[] = { path_field, NULL };

        int r = policy_load(b->policy_path, &p, &error);
        if (r < 0) {
                if (error)
                        log_event(JIT_EVENT_POLICY_REJECTED, LOG_ERR, NULL, "broker", fields,
                                  "%s: %s",
                                  initial ? "cannot load the policy"
                                          : "policy rejected, keeping the old one",
                                  error);
                else
                        log_event(JIT_EVENT_POLICY_REJECTED, LOG_ERR, NULL, "broker", fields,
                                  "%s: %s: %s",
                                  initial ? "cannot load the policy"
                                          : "policy rejected, keeping the old one",
                                  b->policy_path, strerror(-r));
                if (b->db)
                        audit_policy(b, JIT_EVENT_POLICY_REJECTED, error);
                if (ret_error) {
                        if (!error && asprintf(&error, "%s: %s", b->policy_path, strerror(-r)) < 0)
                                error = NULL;
                        *ret_error = TAKE_PTR(error);
                }
                return r;
        }
        policy_free(b->policy);
        b->policy = p;
        b->grants.policy = p;
        if (b->notifier)
                notifier_set_policy(b->notifier, p);
        if (b->fleet && fleet_client_set_policy(b->fleet, &p->fleet) < 0)
                log_error("fleet: out of memory taking the new fleet section");
        char version_field[128];
        snprintf(version_field, sizeof(version_field), "JIT_POLICY_VERSION=%s", p->hash);
        const char *loaded_fields[] = { path_field, version_field, NULL };
        log_event(JIT_EVENT_POLICY_LOADED, LOG_INFO, NULL, "broker", loaded_fields,
                  "policy %s loaded: %zu rule%s, version %.12s", b->policy_path, p->n_rules,
                  p->n_rules == 1 ? "" : "s", p->hash);
        for (size_t i = 0; i < p->n_warnings; i++)
                log_warning("policy warning: %s", p->warnings[i]);
        if (b->db)
                audit_policy(b, JIT_EVENT_POLICY_LOADED, NULL);
        if (!initial)
                grant_withdraw_disallowed(&b->grants);
        return 0;
}

static int load_policy(Broker *b, bool initial) {
        return load_policy_reporting(b, initial, NULL);
}

int broker_reload(Broker *b, char **ret_error) {
        (void) sessions_flush(b); /* before the policy records and withdrawals */
        sd_notify(false, "RELOADING=1");
        int r = load_policy_reporting(b, false, ret_error);
        sd_notify(false, "READY=1");
        update_status(b);
        return r;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void) broker_reload(userdata, NULL);
        return 0;
}

/* ---- the database's integrity check ----
 * PRAGMA quick_check reads the whole file: seconds on a database with years of history. It
 * runs once the broker listens, on a thread of its own with a read-only connection of its
 * own, so that a restart does not keep the PAM stack waiting for it and the main loop and
 * the front thread answer meanwhile, from the same database that answered before the
 * restart. A failure ends the broker as it ended the start before (pam_jit then fails
 * closed): logged with its MESSAGE_ID, STATUS, exit status 1. */
typedef struct IntegrityCheck {
        pthread_t thread;
        bool running;
        BrokerDb *reader;
        int efd; /* the thread's "done" */
        sd_event_source *source;
        int result;
        char *error;
} IntegrityCheck;

static IntegrityCheck integrity = { .efd = -EBADF };

/* A failed check is remembered in the runtime directory, with the database file as it was
 * then: a broker restarted on that same file (Restart=on-failure) checks it before it
 * answers anything or writes a record, as a start did before the check moved after the
 * listen, rather than answering from it again until its own check fails. A file that was
 * repaired or restored since (another inode, size or time) takes the quick path again. */
#define INTEGRITY_FAILED_FILE "integrity-failed"

static char *integrity_marker_path(const Broker *b) {
        return broker_runtime_file(b, INTEGRITY_FAILED_FILE);
}

static int db_file_identity(const Broker *b, char *buf, size_t size) {
        struct stat st;
        if (stat(b->db_path, &st) < 0)
                return -errno;
        snprintf(buf, size, "%llu %llu %lld %lld.%09ld\n", (unsigned long long) st.st_dev,
                 (unsigned long long) st.st_ino, (long long) st.st_size,
                 (long long) st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
        return 0;
}

static void integrity_remember_failure(const Broker *b) {
        _cleanup_free_ char *path = integrity_marker_path(b);
        char id[128];
        if (!path || db_file_identity(b, id, sizeof(id)) < 0)
                return;
        _cleanup_close_ int fd =
                open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || write(fd, id, strlen(id)) != (ssize_t) strlen(id))
                log_warning("cannot remember the failed integrity check in %s: %m", path);
}

/* 1 when the database file is the one a check found damaged, 0 when not (the mark, if
 * any, is removed). */
static int integrity_failed_before(const Broker *b) {
        _cleanup_free_ char *path = integrity_marker_path(b);
        char id[128], kept[128] = "";
        if (!path)
                return -ENOMEM;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return 0;
        ssize_t n = read(fd, kept, sizeof(kept) - 1);
        kept[n > 0 ? n : 0] = '\0';
        if (db_file_identity(b, id, sizeof(id)) >= 0 && STREQ(id, kept))
                return 1;
        (void) unlink(path);
        return 0;
}
/* Set when the check failed: nothing more is written to that database on the way out. */
static bool integrity_failed;

static void *integrity_thread(void *userdata) {
        IntegrityCheck *c = userdata;
        /* It can wait: on a small machine it yields to the loops that answer. */
        (void) setpriority(PRIO_PROCESS, (id_t) gettid(), 10);
        c->result = db_quick_check(c->reader, &c->error);
        uint64_t one = 1;
        ssize_t n = write(c->efd, &one, sizeof(one)); /* an eventfd write does not fail */
        (void) n;
        return NULL;
}

/* Joins the thread (interrupting it first when stop), and frees what it used. */
static void integrity_done(bool stop) {
        if (integrity.running) {
                if (stop)
                        db_interrupt(integrity.reader);
                (void) pthread_join(integrity.thread, NULL);
                integrity.running = false;
        }
        integrity.source = sd_event_source_disable_unref(integrity.source);
        db_close(integrity.reader);
        integrity.reader = NULL;
        if (integrity.efd >= 0)
                close(integrity.efd);
        integrity.efd = -EBADF;
}

static int on_integrity_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Broker *b = userdata;

        integrity_done(false); /* the join makes the thread's result ours to read */
        if (integrity.result == 0) {
                log_info("database %s passed its integrity check", b->db_path);
                integrity_passed = true;
                /* Retention moves records out of the database: only out of a sound one. It
                 * may have a backlog (a broker stopped for long, a shorter setting). */
                audit_apply_retention(b);
                apply_request_retention(b);
                return 0;
        }
        integrity_failed = true;
        /* Not even sqlite's checkpoint at close goes into that file. */
        db_no_checkpoint_on_close(b->db);
        char db_field[4200];
        snprintf(db_field, sizeof(db_field), "JIT_DB=%s", b->db_path);
        const char *fields[] = { db_field, NULL };
        sd_notify(false, "STATUS=Database failed its integrity check; exiting");
        if (integrity.error)
                log_event(JIT_EVENT_INTEGRITY_FAILED, LOG_ERR, NULL, "broker", fields,
                          "database integrity check failed: %s; exiting", integrity.error);
        else
                log_event(JIT_EVENT_INTEGRITY_FAILED, LOG_ERR, NULL, "broker", fields,
                          "database integrity check failed: %s: %s; exiting", b->db_path,
                          strerror(-integrity.result));
        free(integrity.error);
        integrity.error = NULL;
        return sd_event_exit(b->event, -EBADMSG);
}

/* Starts the check; a check that cannot even start is a failed one (fail closed). */
static int integrity_start(Broker *b) {
        int r;

        if ((r = db_open_reader(b->db_path, &integrity.reader)) < 0) {
                integrity.result = r;
                return r;
        }
        integrity.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (integrity.efd < 0)
                return -errno;
        if ((r = sd_event_add_io(b->event, &integrity.source, integrity.efd, EPOLLIN,
                                 on_integrity_done, b)) < 0)
                return r;
        if ((r = -pthread_create(&integrity.thread, NULL, integrity_thread, &integrity)) < 0)
                return r;
        integrity.running = true;
        return 0;
}

static void help(void) {
        printf("Usage: jit-brokerd [OPTIONS]\n\n"
               "The jit access broker: holds requests and grants, answers pam_jit.so.\n\n"
               "  -s --socket PATH   listening socket (default %s; ignored under socket activation)\n"
               "  -d --db PATH       state database (default %s)\n"
               "  -p --policy PATH   policy file (default %s)\n"
               "     --log-level LEVEL\n"
               "                     diagnostics up to LEVEL: emerg, alert, crit, err, warning,\n"
               "                     notice, info (default; also $SYSTEMD_LOG_LEVEL), debug, or\n"
               "                     0-7; events (the audit trail) are always logged\n"
               "  -h --help          show this help\n"
               "     --version       show the version\n",
               JIT_SOCKET_PATH, JIT_DB_PATH, JIT_POLICY_PATH);
}

#define LOG_LEVEL_NAMES "emerg, alert, crit, err, warning, notice, info, debug or 0-7"

static int parse_argv(int argc, char *argv[], Broker *b) {
        enum {
                ARG_VERSION = 0x100,
                ARG_LOG_LEVEL,
        };
        static const struct option options[] = {
                { "socket", required_argument, NULL, 's' },
                { "db", required_argument, NULL, 'd' },
                { "policy", required_argument, NULL, 'p' },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        int c, level = -1;

        while ((c = getopt_long(argc, argv, "s:d:p:h", options, NULL)) >= 0)
                switch (c) {
                case 's':
                case 'd':
                case 'p': {
                        if (optarg[0] != '/') {
                                fprintf(stderr,
                                        "jit-brokerd: --%s needs an absolute path, got '%s'\n",
                                        c == 's'   ? "socket"
                                        : c == 'd' ? "db"
                                                   : "policy",
                                        optarg);
                                return -EINVAL;
                        }
                        char **field = c == 's'   ? &b->socket_path
                                       : c == 'd' ? &b->db_path
                                                  : &b->policy_path;
                        free(*field);
                        *field = strdup(optarg);
                        if (!*field)
                                return -ENOMEM;
                        break;
                }
                case ARG_LOG_LEVEL:
                        level = log_level_from_string(optarg);
                        if (level < 0) {
                                fprintf(stderr,
                                        "jit-brokerd: invalid --log-level '%s' (" LOG_LEVEL_NAMES
                                        ")\n",
                                        optarg);
                                return -EINVAL;
                        }
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("jit-brokerd %s\n", JIT_VERSION);
                        return 0;
                default:
                        fprintf(stderr, "Try 'jit-brokerd --help'.\n");
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr,
                        "jit-brokerd: unexpected argument '%s'\nTry 'jit-brokerd --help'.\n",
                        argv[optind]);
                return -EINVAL;
        }
        /* The option wins over the environment, as in systemd's own programs. */
        const char *e = level < 0 ? secure_getenv("SYSTEMD_LOG_LEVEL") : NULL;
        if (e && *e) {
                level = log_level_from_string(e);
                if (level < 0) {
                        fprintf(stderr,
                                "jit-brokerd: invalid log level '%s' in $SYSTEMD_LOG_LEVEL "
                                "(" LOG_LEVEL_NAMES ")\n",
                                e);
                        return -EINVAL;
                }
        }
        if (level >= 0)
                log_set_max_level(level);
        return 1;
}

static int ensure_parent_dir(const char *path) {
        _cleanup_free_ char *dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir)
                return 0;
        *slash = '\0';
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* A start that ends before the event loop: what it holds so far, freed (exit status 1). */
static int start_failed(Broker *b) {
        policy_free(b->policy);
        free(b->socket_path);
        free(b->db_path);
        free(b->policy_path);
        return 1;
}

int main(int argc, char *argv[]) {
        Broker b = { .listen_fd = -EBADF };
        _cleanup_free_ char *db_error_msg = NULL;
        int r;

        umask(0077);
        /* sqlite's memory statistics take a global mutex at every allocation, which both
         * threads make many of; nothing reads them. Before any other sqlite call. */
        (void) sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
        r = parse_argv(argc, argv, &b);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        if (!b.socket_path)
                b.socket_path = strdup(JIT_SOCKET_PATH);
        if (!b.db_path)
                b.db_path = strdup(JIT_DB_PATH);
        if (!b.policy_path)
                b.policy_path = strdup(JIT_POLICY_PATH);
        if (!b.socket_path || !b.db_path || !b.policy_path)
                return start_failed(&b);

        if ((r = read_boot_id(b.boot_id)) < 0) {
                log_error_errno(r, "reading the boot id: %m");
                return start_failed(&b);
        }

        if ((r = load_policy(&b, true)) < 0)
                return start_failed(&b);

        if ((r = ensure_parent_dir(b.db_path)) < 0) {
                log_error_errno(r, "creating the directory of %s: %m", b.db_path);
                return start_failed(&b);
        }
        if (integrity_failed_before(&b) > 0) {
                /* Checked before anything is answered or written, this once. */
                _cleanup_free_ char *error = NULL;
                BrokerDb *reader = NULL;
                r = db_open_reader(b.db_path, &reader);
                if (r >= 0) {
                        /* The only connection: its close must not checkpoint into the file
                         * (that would change it, and the mark would no longer match). */
                        db_no_checkpoint_on_close(reader);
                        r = db_quick_check(reader, &error);
                }
                db_close(reader);
                if (r < 0) {
                        integrity_remember_failure(&b);
                        char db_field[4200];
                        snprintf(db_field, sizeof(db_field), "JIT_DB=%s", b.db_path);
                        const char *fields[] = { db_field, NULL };
                        sd_notify(false, "STATUS=Database failed its integrity check; exiting");
                        log_event(JIT_EVENT_INTEGRITY_FAILED, LOG_ERR, NULL, "broker", fields,
                                  "database integrity check failed again: %s; exiting",
                                  error ?: strerror(-r));
                        return start_failed(&b);
                }
                _cleanup_free_ char *mark = integrity_marker_path(&b);
                if (mark)
                        (void) unlink(mark);
        }
        r = db_open(b.db_path, &b.db, &db_error_msg);
        if (r < 0) {
                log_error_errno(r, "opening the database: %s",
                                db_error_msg ? db_error_msg : strerror(-r));
                return start_failed(&b);
        }

        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGCHLD); /* the notify hooks' exits, through sd-event */
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        if ((r = sd_event_default(&b.event)) < 0 ||
            (r = sd_event_add_signal(b.event, NULL, SIGTERM, NULL, NULL)) < 0 ||
            (r = sd_event_add_signal(b.event, NULL, SIGINT, NULL, NULL)) < 0 ||
            (r = sd_event_add_signal(b.event, NULL, SIGHUP, on_sighup, &b)) < 0 ||
            (r = sd_event_add_time(b.event, &b.deadline_timer, CLOCK_BOOTTIME, UINT64_MAX, 0,
                                   on_deadline, &b)) < 0 ||
            (r = sd_event_add_time(b.event, &b.warning_timer, CLOCK_BOOTTIME, UINT64_MAX, 0,
                                   on_warning, &b)) < 0 ||
            (r = sd_event_add_time_relative(b.event, &b.audit_head_timer, CLOCK_MONOTONIC,
                                            AUDIT_HEAD_INTERVAL_USEC, 0, on_audit_head_timer, &b)) <
                    0 ||
            (r = sd_event_add_time(b.event, &b.retry_timer, CLOCK_MONOTONIC, UINT64_MAX, 0,
                                   on_retry, &b)) < 0 ||
            (r = sd_event_add_time_relative(b.event, &b.log_flush_timer, CLOCK_BOOTTIME,
                                            LOG_FLUSH_INTERVAL_USEC, 0, on_log_flush, &b)) < 0 ||
            (r = sd_event_add_defer(b.event, &b.effects_source, on_effects, &b)) < 0 ||
            (r = sd_event_set_watchdog(b.event, true)) < 0) {
                log_error_errno(r, "setting up the event loop: %m");
                return 1;
        }
        (void) sd_event_source_set_enabled(b.effects_source, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(b.retry_timer, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(b.log_flush_timer, SD_EVENT_ON);
        b.effects = (EffectQueue){ .wakeup = effects_wakeup, .userdata = &b };
        b.grants = (Grants){
                .db = b.db,
                .policy = b.policy,
                .boot_id = b.boot_id,
                .effects = &b.effects,
                .now = now_usec,
                .report = report_failure,
                .report_userdata = &b,
                .before_commit = stage_notifications,
                .before_commit_userdata = &b,
                .before_begin = flush_sessions,
        };
        if ((r = notifier_new(b.event, b.db, &b.notifier)) < 0) {
                log_error_errno(r, "setting up notifications: %m");
                return 1;
        }
        notifier_set_policy(b.notifier, b.policy);
        /* The fleet store is reached from this loop only, never on a check's path. */
        if ((r = fleet_client_new(b.event, b.db, &b.fleet)) >= 0) {
                fleet_client_set_changes_hook(b.fleet, broker_fleet_changes, &b);
                fleet_client_set_sync_hooks(b.fleet, broker_fleet_synced, broker_fleet_connected);
        }
        if (r < 0 || (r = fleet_client_set_policy(b.fleet, &b.policy->fleet)) < 0) {
                log_error_errno(r, "setting up the fleet client: %m");
                return 1;
        }
        /* Deadlines are ours to keep to the second, not the default 250 ms window. */
        (void) sd_event_source_set_time_accuracy(b.deadline_timer, 1);

        /* The start, and the policy it starts with, open this run's part of the audit log. */
        audit_policy(&b, JIT_EVENT_STARTED, NULL);
        audit_policy(&b, JIT_EVENT_POLICY_LOADED, NULL);
        audit_log_head(&b, true);

        /* Ends an earlier broker held and never wrote are held again first; whatever expired
         * while no broker ran ends now, before the first check is answered; then the
         * sessions still running are held again, and those of ended grants end. */
        restore_held(&b);
        (void) grant_end_due(&b.grants);
        run_effects(&b);
        sessions_recover(&b, broker_runtime_file(&b, SESSIONS_PENDING_FILE));
        sessions_restore(&b);
        end_sessions_of_held(&b);

        broker_ops_share(&b); /* before the front thread answers a check */
        if ((r = broker_listen(&b)) < 0)
                return 1;
        /* Nothing below stands between the start and the first check, which the front
         * thread answers from here on: what grows with history comes after listen(). */
        if ((r = integrity_start(&b)) < 0) {
                integrity_done(true);
                sd_notify(false, "STATUS=Database failed its integrity check; exiting");
                log_event(JIT_EVENT_INTEGRITY_FAILED, LOG_ERR, NULL, "broker", NULL,
                          "database integrity check failed: cannot start it on %s: %s; exiting",
                          b.db_path, strerror(-r));
                return 1;
        }
        /* Retention runs once the check has passed (on_integrity_done()). */

        broker_state_changed(&b);
        char sock_field[4200];
        snprintf(sock_field, sizeof(sock_field), "JIT_SOCKET=%s", b.socket_path);
        const char *fields[] = { sock_field, NULL };
        log_event(JIT_EVENT_STARTED, LOG_INFO, NULL, "broker", fields,
                  "jit-brokerd %s started on %s", JIT_VERSION, b.socket_path);
        sd_notify(false, "READY=1");
        update_status(&b);

        r = sd_event_loop(b.event);
        /* Hooks still running are killed; their notifications stay in the outbox. */
        b.notifier = notifier_free(b.notifier);
        b.fleet = fleet_client_free(b.fleet);
        free(b.fleet_verdicts);

        sd_notify(false, "STOPPING=1");
        log_event(JIT_EVENT_STOPPING, LOG_INFO, NULL, "broker", NULL, "jit-brokerd stopping");
        broker_stop_listening(&b);
        integrity_done(true);
        if (!integrity_failed) {
                (void) sessions_flush(&b);
                audit_policy(&b, JIT_EVENT_STOPPING, NULL);
                audit_log_head(&b, true);
        }
        b.audit_head_timer = sd_event_source_disable_unref(b.audit_head_timer);
        b.warning_timer = sd_event_source_disable_unref(b.warning_timer);
        /* A last try for the ends held in memory; what still fails stays in the file for
         * the next start. Not into a database that failed its check: the file keeps them. */
        if (!integrity_failed && grants_retry_held(&b.grants) > 0) {
                _cleanup_free_ char *kept = held_path(&b);
                for (size_t i = 0; i < b.grants.n_held; i++) {
                        const HeldEnd *h = &b.grants.held[i];
                        log_error("request %" PRId64 " was %s by %s but the change is not saved "
                                  "(%s): kept in %s for the next start",
                                  h->id, request_state_to_string(h->state), h->actor,
                                  grant_store_failure(h->error), kept ?: HELD_FILE);
                }
        }
        keep_held(&b);
        sessions_free_all(&b);
        b.deadline_timer = sd_event_source_disable_unref(b.deadline_timer);
        b.retry_timer = sd_event_source_disable_unref(b.retry_timer);
        (void) effects_flush_suppressed(&b.effects, UINT64_MAX);
        b.log_flush_timer = sd_event_source_disable_unref(b.log_flush_timer);
        /* No timer is left to arm: a reload just before the stop left this set. */
        b.effects.state_changed = false;
        run_effects(&b); /* what the last changes owe the journal */
        sd_event_source_disable_unref(b.effects_source);
        effect_queue_done(&b.effects);
        grants_done(&b.grants);
        sd_event_unref(b.event);
        db_close(b.db);
        if (integrity_failed) /* the file as the next start will find it */
                integrity_remember_failure(&b);
        policy_free(b.policy);
        free(b.socket_path);
        free(b.db_path);
        free(b.policy_path);
        return r < 0 ? 1 : 0;
}
