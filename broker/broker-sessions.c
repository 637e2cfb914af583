/* SPDX-License-Identifier: MIT */
#include "broker-sessions.h"
#include "wal-sync.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-login.h>
#include <unistd.h>

#include "broker-audit.h"
#include "broker-journal.h"
#include "broker.h"
#include "cleanup.h"
#include "duration.h"
#include "session-pending.h"
#include "store-retention.h"
#include "timeutil.h"

/* After SIGHUP, a session has this long to go by itself before SIGKILL. */
#define TERMINATE_GRACE_USEC (3 * USEC_PER_SEC)
/* How long a new session's terminal is looked for before its expiry warning goes without. */
#define TERMINAL_WAIT_USEC (10 * USEC_PER_SEC)
#define TERMINAL_RETRY_USEC (USEC_PER_SEC / 4)
/* Between the last line on a session's terminal and its SIGHUP. */
#define TERMINAL_FLUSH_USEC (USEC_PER_SEC / 5)

typedef struct HeldProcess {
        int pidfd;
        pid_t pid;
} HeldProcess;

typedef struct Session {
        struct Session *next;
        Broker *broker;
        int64_t id;
        int64_t request_id;
        pid_t pid;
        int pidfd;
        char tty[64];
        uint64_t attached_at; /* CLOCK_BOOTTIME */
        sd_event_source *exit_watch;
        sd_event_source *kill_timer; /* SIGHUP after a line was written, then SIGKILL */
        bool hung_up;
        bool reusable; /* its grant is known not to be one-shot: its close consumes nothing */
        /* Its descendants by pidfd, taken at the hangup (session_hold_tree()). */
        struct HeldProcess *held;
        size_t n_held;
} Session;

/* What the broker reads of /proc/PID/stat: the parent (field 4), the controlling terminal
 * (field 7, a dev_t) and the start time in clock ticks since boot (field 22), which with
 * the pid tells this process from a later one that reuses the pid. */
typedef struct ProcessStat {
        pid_t ppid;
        unsigned tty;
        uint64_t start;
} ProcessStat;

static int process_stat(pid_t pid, ProcessStat *ret) {
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return n < 0 ? -errno : -EIO;
        buf[n] = '\0';
        /* The command name may hold spaces and parentheses: fields start after the last ')'. */
        const char *p = strrchr(buf, ')');
        int ppid;
        unsigned long long start;
        if (!p || sscanf(p + 1,
                         " %*c %d %*d %*d %u %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d"
                         " %*d %llu",
                         &ppid, &ret->tty, &start) != 3)
                return -EIO;
        ret->ppid = ppid;
        ret->start = start;
        return 0;
}

int process_start_time(pid_t pid, uint64_t *ret) {
        ProcessStat st;
        int r = process_stat(pid, &st);
        if (r >= 0)
                *ret = st.start;
        return r;
}

/* Session open and close are on the path of every sudo and ssh login (PAM waits for the
 * reply), so their transactions commit with synchronous=NORMAL: in WAL mode the commit is in
 * the WAL when the broker answers, which a crash or restart of the broker does not lose
 * (sessions_restore() finds the session, and a one-shot grant stays consumed), and the
 * fdatasync() follows at once, on a thread of its own (wal-sync.c). Only a power loss in
 * between can take it, and then only as the newest tail of the WAL (never a record that a
 * later, synced one chains on), along with sessions that a power loss ends anyway under
 * grants bound to that boot. Nested in a caller's transaction, or after the sync failed,
 * the transaction keeps the connection's FULL. */
static WalSync *wal_sync; /* started with the first relaxed commit */
static bool wal_sync_unavailable, wal_sync_lost;

/* The sync of what was committed, off the main loop: the next sudo's session is answered
 * while the disk works. */
static void session_sync_wal(Broker *b) {
        if (!wal_sync) {
                _cleanup_free_ char *path = NULL;
                int r = db_wal_path(b->db, &path);
                if (r >= 0)
                        r = wal_sync_start(path, &wal_sync);
                if (r < 0) {
                        /* No thread: the commit is synced here and now (the transaction was
                         * NORMAL), and the next ones stay FULL. */
                        log_error_errno(r, "starting the thread that syncs session records: %m");
                        _cleanup_close_ int fd =
                                path ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -EBADF;
                        /* No WAL file: checkpointed into the database, nothing to sync. */
                        if (fd < 0 ? !path || errno != ENOENT : fdatasync(fd) < 0) {
                                wal_sync_lost = true;
                                log_error("syncing session records to disk: %m; those since the "
                                          "last sync may not survive a power loss");
                        }
                        wal_sync_unavailable = true;
                        return;
                }
        }
        wal_sync_request(wal_sync);
}

/* true when this session transaction commits with synchronous=NORMAL. */
static bool session_tx_relax(Broker *b) {
        if (wal_sync_unavailable || (wal_sync && wal_sync_failed(wal_sync)) ||
            b->grants.tx_depth > 0)
                return false;
        return db_session_durability(b->db, true) >= 0;
}

static void session_tx_done(Broker *b, bool relaxed, bool committed) {
        if (!relaxed)
                return;
        int r = db_session_durability(b->db, false);
        if (r < 0)
                log_error_errno(r, "restoring synchronous=FULL after a session record: %m (%s)",
                                db_error(b->db));
        if (committed || r < 0)
                session_sync_wal(b);
}

int sessions_sync_records(Broker *b) {
        if (wal_sync_lost)
                return -EIO; /* the sync without a thread failed */
        if (!wal_sync)
                return 0; /* nothing committed without a sync (or synced at once) */
        bool idle, failed;
        wal_sync_state(wal_sync, &idle, &failed);
        if (failed)
                return -EIO; /* what the failed sync held may be gone from the page cache */
        if (idle)
                return 0;
        return wal_sync_now(wal_sync);
}

typedef struct SessionRecord {
        struct SessionRecord *next;
        bool open;
        SessionRow row; /* open: owned service, tty, rhost; close: id and request_id */
        char *requester;
        uid_t requester_uid;
        uint64_t closed_at;
        char reason[64];
        bool written;        /* a close: the row was open, and is closed now */
        bool failure_logged; /* its first failed write was logged; it is retried */
} SessionRecord;

static struct {
        /* The main loop's. */
        SessionRecord *head, **tail;
        size_t n;
        sd_event_source *flush; /* the timer that writes them */
        uint64_t retry_at;      /* CLOCK_MONOTONIC usec: after a failure, no try before */
        uint64_t backoff;
        char *path; /* the pending file (sessions_recover()); NULL: none */
        /* Shared with the front thread, which answers root's opens (sessions_open_early()). */
        pthread_mutex_t lock;
        int fd;             /* the pending file, -1 when not usable */
        uint64_t size;      /* its size: past SESSION_PENDING_FILE_MAX, answers wait again */
        int64_t next_id;    /* 0 until read from the database */
        unsigned in_flight; /* in the file, not yet in the queue: the file is kept */
} pending = { .tail = &pending.head, .lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1 };

static void record_free(SessionRecord *x) {
        if (!x)
                return;
        free(x->row.service);
        free(x->row.tty);
        free(x->row.rhost);
        free(x->requester);
        free(x);
}

static Session *session_find(Broker *b, int64_t id) {
        for (Session *s = b->sessions; s; s = s->next)
                if (s->id == id)
                        return s;
        return NULL;
}

static void grant_ended_in(Broker *b, const Request *r, Session *only);

/* How far the broker looks below a session's process: the /proc entries it reads, and the
 * processes of one session it follows (its terminal, its descendants at the end). */
#define PROCESSES_MAX 65536
#define SESSION_TREE_MAX 256
/* pidfds held below all sessions being ended at once: the broker's descriptors are
 * limited (1024 under systemd's default soft limit) and connections need theirs. */
#define SESSION_HELD_TOTAL_MAX 256
static size_t held_total;

/* SIGKILL to everything held below the session's process. */
static void session_kill_held(Session *s) {
        for (size_t i = 0; i < s->n_held; i++)
                if (pidfd_send_signal(s->held[i].pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
                        log_error("sending SIGKILL to a process of session %" PRId64 ": %m", s->id);
}

static void session_forget(Broker *b, Session *s) {
        for (Session **p = (Session **) &b->sessions; *p; p = &(*p)->next)
                if (*p == s) {
                        *p = s->next;
                        break;
                }
        sd_event_source_disable_unref(s->exit_watch);
        sd_event_source_disable_unref(s->kill_timer);
        if (s->pidfd >= 0)
                close(s->pidfd);
        /* Ended with its grant, and its process went before the SIGKILL (sudo, say, on the
         * SIGHUP): what was below it gets the SIGKILL now. */
        if (s->hung_up)
                session_kill_held(s);
        for (size_t i = 0; i < s->n_held; i++)
                close(s->held[i].pidfd);
        held_total -= s->n_held;
        free(s->held);
        free(s);
}

void sessions_free_all(Broker *b) {
        /* What was not written (the database failed its check) stays in the pending file. */
        for (SessionRecord *x = pending.head, *next; x; x = next) {
                next = x->next;
                record_free(x);
        }
        pending.head = NULL;
        pending.tail = &pending.head;
        pending.n = 0;
        pending.flush = sd_event_source_disable_unref(pending.flush);
        if (pending.fd >= 0)
                close(pending.fd);
        pending.fd = -1;
        free(pending.path);
        pending.path = NULL;
        wal_sync_stop(wal_sync); /* after the syncs asked for */
        wal_sync = NULL;
        while (b->sessions)
                session_forget(b, b->sessions);
        b->bus = sd_bus_flush_close_unref(b->bus);
}

/* A recorded PAM_TTY that names a terminal device: "pts/N" or "ttyN", never a path. */
static bool tty_is_device(const char *tty) {
        return tty && *tty && !strstr(tty, "..") &&
               (strncmp(tty, "pts/", 4) == 0 || (strncmp(tty, "tty", 3) == 0 && !strchr(tty, '/')));
}

/* The session's process and its descendants, as far as /proc shows them now: tree[0] is
 * leader, then each descendant after its parent. Returns how many (at most max). */
static size_t process_tree(pid_t leader, pid_t *tree, size_t max) {
        size_t n = 0, seen = 0;
        bool grew = true;

        tree[n++] = leader;
        /* Descendants usually have higher pids than their parents, but pids wrap: rescan
         * until a pass adds nobody. */
        for (unsigned pass = 0; grew && pass < 4; pass++) {
                _cleanup_(closedirp) DIR *d = opendir("/proc");
                if (!d)
                        break;
                grew = false;
                for (struct dirent *e; (e = readdir(d)) && seen < PROCESSES_MAX && n < max;) {
                        char *end;
                        long pid = strtol(e->d_name, &end, 10);
                        ProcessStat st;
                        if (*end || pid <= 0)
                                continue;
                        seen++;
                        if (process_stat((pid_t) pid, &st) < 0)
                                continue;
                        bool in_tree = false, parent_in_tree = false;
                        for (size_t i = 0; i < n; i++) {
                                in_tree |= tree[i] == pid;
                                parent_in_tree |= tree[i] == st.ppid;
                        }
                        if (!in_tree && parent_in_tree) {
                                tree[n++] = (pid_t) pid;
                                grew = true;
                        }
                }
        }
        return n;
}

/* The controlling terminal of the session's process or of one of its descendants, as
 * "pts/N" or "ttyN". sshd opens the PAM session before it allocates the pty, so its PAM_TTY
 * is "ssh"; the user's shell below it holds the pty. */
static bool session_find_terminal(pid_t leader, char *buf, size_t size) {
        _cleanup_free_ pid_t *tree = malloc(SESSION_TREE_MAX * sizeof(pid_t));
        if (!tree)
                return false;
        size_t n = process_tree(leader, tree, SESSION_TREE_MAX);
        for (size_t i = 0; i < n; i++) {
                ProcessStat st;
                if (process_stat(tree[i], &st) < 0)
                        continue;
                unsigned major = (st.tty >> 8) & 0xfff,
                         minor = (st.tty & 0xff) | ((st.tty >> 12) & 0xfff00);
                if (major >= 136 && major <= 143) {
                        snprintf(buf, size, "pts/%u", (major - 136) * 256 + minor);
                        return true;
                }
                if (major == 4 && minor > 0 && minor < 64) {
                        snprintf(buf, size, "tty%u", minor);
                        return true;
                }
        }
        return false;
}

/* Holds by pidfd what the session's process has below it now, while the tree still hangs
 * together: sudo's command that ignores SIGHUP outlives sudo's SIGKILL, and once sudo is
 * gone it has another parent and no /proc walk finds it again. Each pidfd is taken first
 * and the parent checked after, so a pid reused meanwhile is never held (a held process
 * that exits can only make its signal fail). */
static void session_hold_tree(Session *s) {
        if (s->pidfd < 0 || pidfd_send_signal(s->pidfd, 0, NULL, 0) < 0)
                return; /* the process is gone: its pid may be another's now */
        _cleanup_free_ pid_t *tree = malloc(SESSION_TREE_MAX * sizeof(pid_t));
        if (!tree)
                return;
        size_t n = process_tree(s->pid, tree, SESSION_TREE_MAX);
        for (size_t i = 1;
             i < n && s->n_held < SESSION_TREE_MAX && held_total < SESSION_HELD_TOTAL_MAX; i++) {
                /* Held already (at the hangup): while that process lives its pid is its own. */
                bool held = false;
                for (size_t j = 0; j < s->n_held && !held; j++)
                        held = s->held[j].pid == tree[i] &&
                               pidfd_send_signal(s->held[j].pidfd, 0, NULL, 0) >= 0;
                if (held)
                        continue;
                int fd = pidfd_open(tree[i], 0);
                ProcessStat st;
                bool parent_in_tree = false;
                if (fd < 0)
                        continue;
                if (process_stat(tree[i], &st) >= 0)
                        for (size_t j = 0; j < n; j++)
                                parent_in_tree |= tree[j] == st.ppid;
                if (!parent_in_tree) {
                        close(fd);
                        continue;
                }
                if (!s->held && !(s->held = calloc(SESSION_TREE_MAX, sizeof(HeldProcess)))) {
                        close(fd);
                        return;
                }
                /* pidfd_open() sets close-on-exec itself. */
                s->held[s->n_held++] = (HeldProcess){ .pidfd = fd, .pid = tree[i] };
                held_total++;
        }
}

/* The session's terminal, or false when it has none (yet). */
static bool session_terminal(const Session *s, char *buf, size_t size) {
        if (tty_is_device(s->tty)) {
                snprintf(buf, size, "%s", s->tty);
                return true;
        }
        return session_find_terminal(s->pid, buf, size);
}

/* A line on the session's terminal, if it has one; true when it was written. */
static bool tell_tty(const Session *s, const char *text) {
        char tty[sizeof(s->tty)], path[sizeof(s->tty) + 8];
        if (!session_terminal(s, tty, sizeof(tty)))
                return false;
        snprintf(path, sizeof(path), "/dev/%s", tty);
        _cleanup_close_ int fd =
                open(path, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
                log_warning("cannot write to %s, the terminal of session %" PRId64 ": %m", path,
                            s->id);
                return false;
        }
        char line[512];
        int n = snprintf(line, sizeof(line), "\r\n%s\r\n", text);
        return n > 0 && write(fd, line, (size_t) n) == n;
}

static json_object *session_row_to_json(const SessionRow *row) {
        json_object *o = json_object_new_object();
        char t[RFC3339_BUF_MAX];
        if (!o)
                return NULL;
        json_object_object_add(o, "session", json_object_new_int64(row->id));
        json_object_object_add(o, "request_id", json_object_new_int64(row->request_id));
        json_object_object_add(o, "service", json_object_new_string(row->service));
        if (row->tty)
                json_object_object_add(o, "tty", json_object_new_string(row->tty));
        if (row->rhost)
                json_object_object_add(o, "rhost", json_object_new_string(row->rhost));
        json_object_object_add(o, "pid", json_object_new_int64(row->pid));
        json_object_object_add(
                o, "opened_at",
                json_object_new_string(format_rfc3339(row->opened_at, t, sizeof(t))));
        bool open = row->closed_at == 0;
        json_object_object_add(o, "running", json_object_new_boolean(open));
        if (!open) {
                json_object_object_add(
                        o, "closed_at",
                        json_object_new_string(format_rfc3339(row->closed_at, t, sizeof(t))));
                json_object_object_add(o, "end_reason",
                                       json_object_new_string(row->end_reason ?: ""));
        }
        return o;
}

/* The session as its audit records and show/status describe it. */
static json_object *session_details(Broker *b, int64_t id) {
        SessionRow row;
        if (db_get_session(b->db, id, &row) < 0)
                return json_object_new_object();
        json_object *o = session_row_to_json(&row);
        session_row_done(&row);
        return o;
}

/* The same for a row just inserted as id, without reading it back. */
static json_object *session_row_details(const SessionRow *row, int64_t id) {
        SessionRow r = *row;
        r.id = id;
        return session_row_to_json(&r) ?: json_object_new_object();
}

/* "session 7 under grant 42 <what>", with the ids as fields of their own. */
static void log_session(Broker *b, JitEvent ev, int priority, int64_t id, int64_t request_id,
                        const char *what) {
        char sid[48], rid[48];
        snprintf(sid, sizeof(sid), "JIT_SESSION_ID=%" PRId64, id);
        snprintf(rid, sizeof(rid), "JIT_REQUEST_ID=%" PRId64, request_id);
        const char *fields[] = { sid, rid, NULL };
        log_event(ev, priority, NULL, "broker", fields,
                  "session %" PRId64 " under grant %" PRId64 " %s", id, request_id, what);
}

/* The logind session of the process, terminated through logind: what a login's children
 * (a shell, its jobs) belong to. Nothing to do where logind does not run, or the process
 * is in no session (sudo's stack has no pam_systemd); the signals below still go. */
static int on_terminate_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(m);
        if (e)
                log_warning("logind refused to terminate a session: %s",
                            e->message ?: e->name ?: "unknown error");
        return 0;
}

/* The system bus, attached to the event loop on first use: logind calls never block the
 * loop (and so never a PAM check). */
static sd_bus *system_bus(Broker *b) {
        if (b->bus)
                return b->bus;
        sd_bus *bus = NULL;
        int r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = sd_bus_attach_event(bus, b->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0) {
                log_warning_errno(r, "connecting to the system bus: %m");
                sd_bus_flush_close_unref(bus);
                return NULL;
        }
        return b->bus = bus;
}

static void terminate_logind_session(Broker *b, const Session *s) {
        _cleanup_free_ char *session = NULL;

        /* Only while the pidfd still names the process (its /proc entry could be reused). */
        if (sd_booted() <= 0 || pidfd_send_signal(s->pidfd, 0, NULL, 0) < 0 ||
            sd_pid_get_session(s->pid, &session) < 0)
                return;
        sd_bus *bus = system_bus(b);
        if (!bus)
                return;
        int r = sd_bus_call_method_async(bus, NULL, "org.freedesktop.login1",
                                         "/org/freedesktop/login1",
                                         "org.freedesktop.login1.Manager", "TerminateSession",
                                         on_terminate_reply, NULL, "s", session);
        if (r < 0)
                log_warning_errno(r, "terminating logind session %s of session %" PRId64 ": %m",
                                  session, s->id);
}

static void session_hangup(Session *s) {
        session_hold_tree(s);
        /* pidfd: the signal reaches this process, never a later one with its pid. */
        if (pidfd_send_signal(s->pidfd, SIGHUP, NULL, 0) < 0 && errno != ESRCH)
                log_error("sending SIGHUP to session %" PRId64 " (pid %d): %m", s->id,
                          (int) s->pid);
        s->hung_up = true;
}

static int on_kill_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Session *s = userdata;
        if (!s->hung_up) {
                /* The terminal line had its moment to reach the user: now the hangup. */
                session_hangup(s);
                return sd_event_source_set_time_relative(src, TERMINATE_GRACE_USEC) < 0 ||
                                       sd_event_source_set_enabled(src, SD_EVENT_ONESHOT) < 0
                               ? on_kill_timer(src, usec, userdata)
                               : 0;
        }
        /* Still there after the grace: the process is ended for good, and what runs below
         * it (held at the hangup, and anything started since). */
        session_hold_tree(s);
        session_kill_held(s);
        if (s->pidfd >= 0 && pidfd_send_signal(s->pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
                log_error("sending SIGKILL to session %" PRId64 " (pid %d): %m", s->id,
                          (int) s->pid);
        /* Nothing watches for its exit any more (its close came while it was being ended,
         * or its exit could not be written): nothing else would let it and its pidfds go. */
        if (!s->exit_watch)
                session_forget(s->broker, s);
        return 0;
}

static int on_session_exit(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Session *s = userdata;
        Broker *b = s->broker;
        int64_t id = s->id;
        int r = sessions_close(b, id, "process exited");
        if (r < 0 && (s = session_find(b, id))) {
                /* Not written (the disk is full, say), but the process is gone: the pidfd stays
                 * readable, so it is let go rather than looked at in a loop. Its row stays open
                 * until the broker next starts (sessions_restore() closes it then). */
                log_warning_errno(r, "recording the end of session %" PRId64 ": %m", id);
                if (!s->kill_timer)
                        session_forget(b, s);
                else
                        s->exit_watch = sd_event_source_disable_unref(s->exit_watch);
        }
        return 0;
}

static int session_attach(Broker *b, int64_t id, int64_t request_id, pid_t pid, int pidfd,
                          const char *tty, bool reusable) {
        Session *s = calloc(1, sizeof(Session));
        if (!s) {
                close(pidfd);
                return -ENOMEM;
        }
        *s = (Session){
                .broker = b,
                .id = id,
                .request_id = request_id,
                .pid = pid,
                .pidfd = pidfd,
                .attached_at = now_usec(CLOCK_BOOTTIME),
                .reusable = reusable,
        };
        snprintf(s->tty, sizeof(s->tty), "%s", tty ?: "");
        /* A pidfd becomes readable when its process exits. */
        int r = sd_event_add_io(b->event, &s->exit_watch, pidfd, EPOLLIN, on_session_exit, s);
        if (r < 0) {
                session_forget(b, s);
                return r;
        }
        s->next = b->sessions;
        b->sessions = s;
        return 0;
}

/* The session could not be recorded (error): it is held by pidfd all the same, under an id
 * of its own below 0 that no table has, so that it ends with its grant. Ending it writes
 * nothing of it; its exit forgets it. */
static int session_hold_unrecorded(Broker *b, int pidfd, pid_t pid, const Request *grant,
                                   const char *tty, int error, bool *ret_held) {
        static int64_t unrecorded;
        int64_t id = --unrecorded;

        if (session_attach(b, id, grant->id, pid, pidfd, tty, !grant->once) < 0)
                return error; /* session_attach() closed the pidfd */
        if (grant->once)
                (void) grants_mark_used(&b->grants, grant->id);
        *ret_held = true;
        char what[160];
        snprintf(what, sizeof(what),
                 "opened (%s) but not recorded (%s): held, and ended with its grant",
                 tty ?: "no tty", grant_store_failure(error));
        log_session(b, JIT_EVENT_SESSION_OPENED, LOG_WARNING, id, grant->id, what);
        return error;
}

/* ---- recorded after the answer ----
 * sudo waits for its session's open, so a transaction there is on every sudo's path. For a
 * grant that is not one-shot the broker answers once it holds the process by pidfd and the
 * open is a line of the runtime directory's pending file (session-pending.h), which
 * outlives a broker killed before the row is written. Closes (a notice from pam_jit) get a
 * line too. The rows and their audit records follow within SESSION_FLUSH_USEC, all that
 * came meanwhile in one transaction: a short sudo's open and close are one commit, made
 * while nobody waits. Whatever reads or writes sessions or the audit log writes them first
 * (sessions_flush()). A one-shot grant keeps the transaction before the answer: its one
 * session must be on record before a second check. */

#define SESSION_FLUSH_USEC (100 * USEC_PER_MSEC)
#define SESSION_FLUSH_BATCH 256
/* A write that failed (a locked or full database) is tried again later, backing off from
 * 1 s to 30 s, and meanwhile not on every operation; the records wait in memory and in the
 * file, the oldest dropped (logged) past the limit. A try waits at most SESSION_BUSY_MS
 * for another process's lock: the main loop is not held up for long. */
#define SESSION_RETRY_USEC (1 * USEC_PER_SEC)
#define SESSION_RETRY_MAX_USEC (30 * USEC_PER_SEC)
#define SESSION_BUSY_MS 100
#define SESSION_QUEUE_MAX 4096

/* The id of the next session: every session gets its id here, answered early or not, so
 * that a row written late never meets an id taken meanwhile. */
static int session_new_id(Broker *b, int64_t *ret) {
        int r = 0;
        pthread_mutex_lock(&pending.lock);
        if (pending.next_id == 0)
                r = db_next_session_id(b->db, &pending.next_id);
        if (r >= 0)
                *ret = pending.next_id++;
        pthread_mutex_unlock(&pending.lock);
        return r;
}

/* Adds the open of row to the pending file (its id taken here when row->id is 0): 0, or
 * -errno when it must be written before it is answered. */
static int pending_add(SessionRow *row, const char *requester, uid_t requester_uid,
                       bool in_flight) {
        int r = -ENOENT;
        pthread_mutex_lock(&pending.lock);
        if (pending.fd >= 0 && (row->id > 0 || pending.next_id > 0)) {
                int64_t id = row->id > 0 ? row->id : pending.next_id;
                row->id = id;
                r = session_pending_add(pending.fd, row, requester, requester_uid, pending.size,
                                        SESSION_PENDING_FILE_MAX - pending.size);
                if (r > 0) {
                        pending.size += (uint64_t) r;
                        if (id == pending.next_id)
                                pending.next_id++;
                        if (in_flight)
                                pending.in_flight++;
                }
        }
        pthread_mutex_unlock(&pending.lock);
        return r < 0 ? r : 0;
}

static int flush_now(Broker *b);

static int on_flush(sd_event_source *src, uint64_t usec, void *userdata) {
        (void) flush_now(userdata);
        return 0;
}

static int arm_flush(Broker *b, uint64_t usec) {
        int r, enabled = SD_EVENT_OFF;

        if (!pending.flush)
                return sd_event_add_time_relative(b->event, &pending.flush, CLOCK_MONOTONIC, usec,
                                                  0, on_flush, b);
        if ((r = sd_event_source_get_enabled(pending.flush, &enabled)) < 0 ||
            enabled != SD_EVENT_OFF)
                return r; /* armed already: it keeps its time */
        if ((r = sd_event_source_set_time_relative(pending.flush, usec)) < 0)
                return r;
        return sd_event_source_set_enabled(pending.flush, SD_EVENT_ONESHOT);
}

static int record_queue(Broker *b, SessionRecord *x) {
        int r = arm_flush(b, SESSION_FLUSH_USEC);
        if (r < 0)
                return r;
        *pending.tail = x;
        pending.tail = &x->next;
        if (++pending.n >= SESSION_FLUSH_BATCH)
                (void) sessions_flush(b);
        return 0;
}

static int record_write(Broker *b, SessionRecord *x) {
        int r;
        if (x->open) {
                int64_t id;
                if ((r = db_insert_session(b->db, &x->row, &id)) < 0)
                        return r;
                return audit_append(b->db, JIT_EVENT_SESSION_OPENED, x->requester, x->requester_uid,
                                    x->row.request_id, session_row_details(&x->row, x->row.id));
        }
        r = db_close_session(b->db, x->row.id, x->closed_at, x->reason);
        if (r <= 0) /* never recorded, or closed already */
                return r;
        if ((r = audit_append(b->db, JIT_EVENT_SESSION_CLOSED, "broker", -1, x->row.request_id,
                              session_details(b, x->row.id))) < 0)
                return r;
        x->written = true;
        return 0;
}

/* What could not be written goes back to the head of the queue, to be tried again; past
 * SESSION_QUEUE_MAX the oldest are dropped (they stay in the file until it is emptied). */
static void requeue(Broker *b, SessionRecord *list, size_t n) {
        SessionRecord **end = &list;
        while (*end)
                end = &(*end)->next;
        *end = pending.head;
        if (!pending.head)
                pending.tail = end;
        pending.head = list;
        pending.n += n;
        while (pending.n > SESSION_QUEUE_MAX) {
                SessionRecord *x = pending.head;
                pending.head = x->next;
                if (!pending.head)
                        pending.tail = &pending.head;
                pending.n--;
                log_session(b, x->open ? JIT_EVENT_SESSION_OPENED : JIT_EVENT_SESSION_CLOSED,
                            LOG_ERR, x->row.id, x->row.request_id,
                            "not recorded: too many session records wait for the database");
                record_free(x);
        }
        pending.backoff = pending.backoff ? pending.backoff * 2 : SESSION_RETRY_USEC;
        if (pending.backoff > SESSION_RETRY_MAX_USEC)
                pending.backoff = SESSION_RETRY_MAX_USEC;
        pending.retry_at = now_usec(CLOCK_MONOTONIC) + pending.backoff;
        (void) arm_flush(b, pending.backoff);
}

int sessions_flush(Broker *b) {
        /* After a failure only the timer tries again, not every operation. */
        if (pending.head && pending.retry_at > now_usec(CLOCK_MONOTONIC))
                return -EAGAIN;
        return flush_now(b);
}

static int flush_now(Broker *b) {
        if (!pending.head || b->grants.tx_depth > 0)
                return 0; /* never into a caller's transaction, which may yet roll back */
        SessionRecord *list = pending.head;
        size_t n = pending.n;
        pending.head = NULL;
        pending.tail = &pending.head;
        pending.n = 0;
        if (pending.flush)
                (void) sd_event_source_set_enabled(pending.flush, SD_EVENT_OFF);
        bool opens = false;

        bool relaxed = session_tx_relax(b);
        db_set_busy_timeout(b->db, SESSION_BUSY_MS);
        int r = grants_begin(&b->grants);
        if (r < 0)
                r = db_failure_errno(b->db, r);
        for (SessionRecord *x = list; r >= 0 && x; x = x->next)
                r = record_write(b, x);
        if (r >= 0)
                r = grants_commit(&b->grants);
        if (r < 0) {
                r = db_failure_errno(b->db, r); /* before the rollback resets it */
                grants_rollback(&b->grants);
        }
        db_set_busy_timeout(b->db, DB_BUSY_TIMEOUT_MS);
        session_tx_done(b, relaxed, r >= 0);

        if (r < 0) {
                /* Held all the same (they end with their grants); said once, tried again. */
                for (SessionRecord *x = list; x; x = x->next) {
                        x->written = false;
                        if (x->failure_logged)
                                continue;
                        x->failure_logged = true;
                        char what[160];
                        snprintf(what, sizeof(what),
                                 "%s (%s) not recorded yet (%s): held, tried again",
                                 x->open ? "opened" : "closed",
                                 x->open ? x->row.tty ?: "no tty" : x->reason,
                                 grant_store_failure(r));
                        log_session(b,
                                    x->open ? JIT_EVENT_SESSION_OPENED : JIT_EVENT_SESSION_CLOSED,
                                    LOG_WARNING, x->row.id, x->row.request_id, what);
                }
                requeue(b, list, n);
                return r;
        }

        pending.backoff = 0;
        pending.retry_at = 0;
        for (SessionRecord *x = list, *next; x; x = next) {
                next = x->next;
                char what[160];
                opens = opens || x->open;
                if (x->open) {
                        snprintf(what, sizeof(what), "opened (%s)", x->row.tty ?: "no tty");
                        log_session(b, JIT_EVENT_SESSION_OPENED, LOG_NOTICE, x->row.id,
                                    x->row.request_id, what);
                } else {
                        snprintf(what, sizeof(what), "closed: %s%s", x->reason,
                                 x->written ? "" : " (never recorded)");
                        log_session(b, JIT_EVENT_SESSION_CLOSED, LOG_INFO, x->row.id,
                                    x->row.request_id, what);
                }
                record_free(x);
        }
        /* Every line of the file is in the database now, unless the front thread wrote one
         * whose session the main loop has not taken yet (in_flight). */
        if (!pending.head) {
                int k = 0;
                pthread_mutex_lock(&pending.lock);
                if (pending.fd >= 0 && pending.in_flight == 0 && pending.size > 0) {
                        k = session_pending_clear(pending.fd);
                        if (k >= 0)
                                pending.size = 0;
                }
                pthread_mutex_unlock(&pending.lock);
                if (k < 0)
                        log_warning_errno(k, "emptying %s: %m", pending.path);
        }
        if (opens)
                effects_changed(&b->effects); /* their expiry warnings, from their rows */
        return 0;
}

/* The open written before the answer: a one-shot grant, or no pending file. */
static int session_open_now(Broker *b, int pidfd, const Request *grant, SessionRow *row,
                            bool *ret_held) {
        int r;

        (void) sessions_flush(b); /* the rows in the order of their ids */
        bool relaxed = session_tx_relax(b);
        int64_t id = row->id;
        if ((r = grants_begin(&b->grants)) < 0)
                r = db_failure_errno(b->db, r);
        else if ((r = db_insert_session(b->db, row, &id)) < 0 ||
                 (r = audit_append(b->db, JIT_EVENT_SESSION_OPENED, grant->requester,
                                   grant->requester_uid, grant->id, session_row_details(row, id))) <
                         0 ||
                 (r = grants_commit(&b->grants)) < 0) {
                r = db_failure_errno(b->db, r); /* before the rollback resets it */
                grants_rollback(&b->grants);
        }
        session_tx_done(b, relaxed, r >= 0);
        if (r < 0)
                return session_hold_unrecorded(b, pidfd, row->pid, grant, row->tty, r, ret_held);
        char what[96];
        snprintf(what, sizeof(what), "opened (%s)", row->tty ?: "no tty");
        log_session(b, JIT_EVENT_SESSION_OPENED, LOG_NOTICE, id, grant->id, what);
        row->id = id;
        effects_changed(&b->effects); /* its expiry warning, from its row */
        return session_attach(b, id, grant->id, row->pid, pidfd, row->tty, !grant->once);
}

/* The open answered first; its row follows (sessions_flush()). 1 when taken, 0 when it
 * must be written now, or -errno (the pidfd then closed). */
static int session_open_later(Broker *b, int pidfd, const Request *grant, SessionRow *row) {
        if (grant->once || row->id <= 0)
                return 0;
        SessionRecord *x = calloc(1, sizeof(SessionRecord));
        if (!x)
                return 0;
        x->open = true;
        x->row = *row;
        x->row.service = strdup(row->service);
        x->row.tty = row->tty ? strdup(row->tty) : NULL;
        x->row.rhost = row->rhost ? strdup(row->rhost) : NULL;
        x->requester = strdup(grant->requester);
        x->requester_uid = grant->requester_uid;
        if (!x->row.service || (row->tty && !x->row.tty) || (row->rhost && !x->row.rhost) ||
            !x->requester) {
                record_free(x);
                return 0;
        }
        int r = pending_add(row, grant->requester, grant->requester_uid, false);
        if (r < 0) {
                if (r != -ENOENT)
                        log_warning_errno(r,
                                          "adding session %" PRId64 " to %s: %m; recorded "
                                          "before it is answered",
                                          row->id, pending.path);
                record_free(x);
                return 0;
        }
        if ((r = session_attach(b, row->id, grant->id, row->pid, pidfd, row->tty, true)) < 0) {
                record_free(x);
                return r;
        }
        if ((r = record_queue(b, x)) < 0) {
                /* Held already: the row goes now, with whatever else waits. */
                *pending.tail = x;
                pending.tail = &x->next;
                (void) sessions_flush(b);
        }
        return 1;
}

/* ---- commands run under a command grant ----
 * The sudo approval plugin asks check-command, then sudo opens its PAM session, from the
 * same process. A command grant has no service grant for the session to find: the process
 * the plugin's check allowed is remembered here, briefly, so that its session is held
 * under that command grant and ends with it. One-shot command grants are spent when the
 * command starts: their one run is not cut short, and is not remembered. */

#define COMMAND_USES_MAX 64
#define COMMAND_USE_USEC (60 * USEC_PER_SEC)

static struct {
        pthread_mutex_t lock;
        struct {
                pid_t pid;
                uint64_t pid_start;
                int64_t grant_id;
                uint64_t at; /* CLOCK_MONOTONIC usec; 0: free */
        } uses[COMMAND_USES_MAX];
} commands = { .lock = PTHREAD_MUTEX_INITIALIZER };

void sessions_note_command(pid_t pid, int64_t grant_id) {
        uint64_t start, now = now_usec(CLOCK_MONOTONIC);
        if (process_start_time(pid, &start) < 0)
                return;
        pthread_mutex_lock(&commands.lock);
        size_t slot = 0;
        for (size_t i = 0; i < COMMAND_USES_MAX; i++) {
                if (commands.uses[i].at && commands.uses[i].pid == pid) {
                        slot = i; /* the same process asks again: its latest command */
                        break;
                }
                if (commands.uses[i].at < commands.uses[slot].at)
                        slot = i; /* else the free or oldest one */
        }
        commands.uses[slot].pid = pid;
        commands.uses[slot].pid_start = start;
        commands.uses[slot].grant_id = grant_id;
        commands.uses[slot].at = now;
        pthread_mutex_unlock(&commands.lock);
}

int64_t sessions_command_grant_of(pid_t pid) {
        uint64_t start, now = now_usec(CLOCK_MONOTONIC);
        int64_t id = 0;
        if (process_start_time(pid, &start) < 0)
                return 0;
        pthread_mutex_lock(&commands.lock);
        for (size_t i = 0; i < COMMAND_USES_MAX; i++)
                if (commands.uses[i].at && commands.uses[i].pid == pid &&
                    commands.uses[i].pid_start == start &&
                    now - commands.uses[i].at < COMMAND_USE_USEC) {
                        id = commands.uses[i].grant_id;
                        commands.uses[i].at = 0; /* one session per check */
                        break;
                }
        pthread_mutex_unlock(&commands.lock);
        return id;
}

/* ---- root's opens, answered where root's checks are (the front thread) ---- */

struct SessionEarly {
        struct SessionEarly *next;
        int pidfd;
        SessionRecord *record; /* its open, row and all */
};

void session_early_free(SessionEarly *e) {
        if (!e)
                return;
        if (e->pidfd >= 0)
                close(e->pidfd);
        if (e->record) {
                /* Never handed over: its line stays in the file (the next start writes its
                 * row and looks for its process), but the file may be emptied again. */
                pthread_mutex_lock(&pending.lock);
                pending.in_flight--;
                pthread_mutex_unlock(&pending.lock);
                record_free(e->record);
        }
        free(e);
}

SessionEarly *session_early_next(SessionEarly *e) {
        return e->next;
}

void session_early_set_next(SessionEarly *e, SessionEarly *next) {
        e->next = next;
}

int sessions_open_early(const Request *grant, int pidfd, pid_t pid, const char *boot_id,
                        const char *tty, const char *rhost, SessionEarly **ret) {
        uint64_t start;
        int r;

        if (grant->once || process_start_time(pid, &start) < 0)
                return 0;
        _cleanup_free_ SessionEarly *e = calloc(1, sizeof(SessionEarly));
        SessionRecord *x = calloc(1, sizeof(SessionRecord));
        if (!e || !x) {
                free(x);
                return 0;
        }
        x->open = true;
        x->row = (SessionRow){
                .request_id = grant->id,
                .service = strdup(grant->service),
                .tty = tty ? strdup(tty) : NULL,
                .rhost = rhost ? strdup(rhost) : NULL,
                .pid = pid,
                .pid_start = start,
                .opened_at = now_usec(CLOCK_REALTIME),
        };
        snprintf(x->row.boot_id, sizeof(x->row.boot_id), "%s", boot_id);
        x->requester = strdup(grant->requester);
        x->requester_uid = grant->requester_uid;
        if (!x->row.service || (tty && !x->row.tty) || (rhost && !x->row.rhost) || !x->requester ||
            (r = pending_add(&x->row, grant->requester, grant->requester_uid, true)) < 0) {
                record_free(x);
                return 0;
        }
        e->pidfd = pidfd;
        e->record = x;
        *ret = TAKE_PTR(e);
        return 1;
}

void sessions_early_keep(SessionEarly *e) {
        /* Its line stays, and stays counted in flight: this broker never empties the file
         * again, and the next start holds the session from it. */
        if (e->pidfd >= 0)
                close(e->pidfd);
        record_free(e->record);
        free(e);
}

int64_t session_early_id(const SessionEarly *e) {
        return e->record->row.id;
}

void sessions_attach_early(Broker *b, SessionEarly *e) {
        SessionRecord *x = TAKE_PTR(e->record);
        int pidfd = e->pidfd, r;

        e->pidfd = -1;
        free(e);
        pthread_mutex_lock(&pending.lock);
        pending.in_flight--;
        pthread_mutex_unlock(&pending.lock);
        int64_t id = x->row.id, request_id = x->row.request_id;
        r = session_attach(b, id, request_id, x->row.pid, pidfd, x->row.tty, true);
        if (r < 0)
                /* Answered, in the pending file, not held: written all the same, so that its
                 * next start holds it again. */
                log_error_errno(r, "holding session %" PRId64 ": %m", id);
        if (record_queue(b, x) < 0) {
                *pending.tail = x;
                pending.tail = &x->next;
                (void) sessions_flush(b);
        }
        /* The grant may have ended between the front thread's look and now. */
        Request *grant = NULL;
        r = db_get_request(b->db, request_id, &grant);
        if (r < 0)
                log_error_errno(r, "reading grant %" PRId64 " of session %" PRId64 ": %m",
                                request_id, id);
        else {
                if (grant->state != REQUEST_ACTIVE ||
                    grants_ended_in_memory(&b->grants, request_id))
                        grant_ended_in(b, grant, session_find(b, id));
                request_free(grant);
        }
}

int sessions_open(Broker *b, int pidfd, pid_t pid, const Request *grant, const char *tty,
                  const char *rhost, int64_t *ret_id, bool *ret_held) {
        uint64_t start;
        int r;

        *ret_held = false;
        if ((r = process_start_time(pid, &start)) < 0) {
                close(pidfd);
                return r;
        }
        SessionRow row = {
                .request_id = grant->id,
                .service = grant->service,
                .tty = (char *) tty,
                .rhost = (char *) rhost,
                .pid = pid,
                .pid_start = start,
                .opened_at = now_usec(CLOCK_REALTIME),
        };
        snprintf(row.boot_id, sizeof(row.boot_id), "%s", b->boot_id);
        if (session_new_id(b, &row.id) < 0)
                row.id = 0; /* the table's next: nothing was answered early without an id */
        r = session_open_later(b, pidfd, grant, &row);
        if (r == 0)
                r = session_open_now(b, pidfd, grant, &row, ret_held);
        if (r < 0)
                return r;
        *ret_id = row.id;
        return 0;
}

static int session_close(Broker *b, int64_t id, const char *reason, bool *ret_committed) {
        Session *s = session_find(b, id);
        int64_t request_id = s ? s->request_id : 0;
        int r;

        if (id < 0) {
                /* Held unrecorded (session_hold_unrecorded()): nothing to write. */
                char what[128];
                snprintf(what, sizeof(what), "closed: %s (never recorded)", reason);
                log_session(b, JIT_EVENT_SESSION_CLOSED, LOG_INFO, id, request_id, what);
                if (s && !s->kill_timer)
                        session_forget(b, s);
                else if (s)
                        s->exit_watch = sd_event_source_disable_unref(s->exit_watch);
                return 0;
        }

        if (!request_id) {
                SessionRow row;
                if (db_get_session(b->db, id, &row) >= 0) {
                        request_id = row.request_id;
                        session_row_done(&row);
                }
        }
        if ((r = grants_begin(&b->grants)) < 0)
                return r;
        r = db_close_session(b->db, id, now_usec(CLOCK_REALTIME), reason);
        if (r <= 0) { /* unknown, or closed already (PAM close after the exit, or the reverse) */
                grants_rollback(&b->grants);
                if (s)
                        session_forget(b, s);
                return r < 0 ? r : 0;
        }

        /* A one-shot grant is used up by its session, in the same transaction (looked up
         * unless the session is known to be under a grant that is not one-shot). */
        GrantError e;
        bool reusable = s && s->reusable;
        if ((!reusable && (r = grant_consume(&b->grants, request_id, &e)) < 0 && r != -ENOENT) ||
            (r = audit_append(b->db, JIT_EVENT_SESSION_CLOSED, "broker", -1, request_id,
                              session_details(b, id))) < 0 ||
            (r = grants_commit(&b->grants)) < 0) {
                grants_rollback(&b->grants);
                return r;
        }
        *ret_committed = true;
        char what[128];
        snprintf(what, sizeof(what), "closed: %s", reason);
        log_session(b, JIT_EVENT_SESSION_CLOSED, LOG_INFO, id, request_id, what);
        /* The kill timer, if any, must not outlive the session's record. */
        if (s && !s->kill_timer)
                session_forget(b, s);
        else if (s) {
                sd_event_source_disable_unref(s->exit_watch);
                s->exit_watch = NULL;
        }
        return 0;
}

int sessions_close(Broker *b, int64_t id, const char *reason) {
        (void) sessions_flush(b);
        bool committed = false, relaxed = id > 0 && session_tx_relax(b);
        int r = session_close(b, id, reason, &committed);
        session_tx_done(b, relaxed, committed);
        return r;
}

int sessions_close_later(Broker *b, int64_t id, const char *reason) {
        Session *s = session_find(b, id);
        /* One-shot grants, sessions restored after a restart (their grant not looked at),
         * and those being ended: written now. */
        if (id <= 0 || !s || !s->reusable || s->kill_timer)
                return sessions_close(b, id, reason);
        SessionRecord *x = calloc(1, sizeof(SessionRecord));
        if (!x)
                return sessions_close(b, id, reason);
        x->row.id = id;
        x->row.request_id = s->request_id;
        x->closed_at = now_usec(CLOCK_REALTIME);
        snprintf(x->reason, sizeof(x->reason), "%s", reason);
        /* Without its line a killed broker's next start closes the row all the same (the
         * process is gone), only later and for another reason. */
        pthread_mutex_lock(&pending.lock);
        if (pending.fd >= 0) {
                int k = session_pending_add_close(pending.fd, id, x->row.request_id, x->closed_at,
                                                  reason, pending.size,
                                                  SESSION_PENDING_FILE_MAX - pending.size);
                if (k > 0)
                        pending.size += (uint64_t) k;
        }
        pthread_mutex_unlock(&pending.lock);
        if (record_queue(b, x) < 0) {
                free(x);
                return sessions_close(b, id, reason);
        }
        session_forget(b, s);
        return 0;
}

/* Rows the pending file names and the database lacks: opens answered by a broker that was
 * killed before it wrote them, and their closes. *ret_max_id: the highest session id the
 * file names, which no new session may take. 0 when the file is written and may be used
 * again, or -errno (logged) when it stays as it is for the next start. */
static int recover_file(Broker *b, const char *path, int64_t *ret_max_id) {
        _cleanup_free_ bool *written = NULL;
        SessionPendingEntry *e = NULL;
        size_t n = 0, n_written = 0, skipped = 0;
        int r = session_pending_read(path, &e, &n, &skipped);

        *ret_max_id = 0;
        if (r == -EBADMSG) {
                /* Not a file this broker wrote: set aside for whoever looks, and a new one. */
                _cleanup_free_ char *aside = NULL;
                if (asprintf(&aside, "%s.broken", path) >= 0 && rename(path, aside) >= 0)
                        log_error("%s is not a file of session records written by jit-brokerd; "
                                  "moved to %s",
                                  path, aside);
                else
                        log_error("%s is not a file of session records written by jit-brokerd "
                                  "and cannot be moved aside: %m",
                                  path);
                return r;
        }
        if (r < 0) {
                log_error_errno(r,
                                "reading %s: %m; sessions answered before they were "
                                "recorded may not be held",
                                path);
                return r;
        }
        if (skipped > 0)
                log_warning("%s: %zu line%s not written whole, skipped", path, skipped,
                            skipped == 1 ? "" : "s");
        for (size_t i = 0; i < n; i++)
                if (e[i].row.id > *ret_max_id)
                        *ret_max_id = e[i].row.id;
        if (n == 0)
                goto done;
        if (!(written = calloc(n, sizeof(bool)))) {
                session_pending_entries_free(e, n);
                return -ENOMEM;
        }
        if ((r = grants_begin(&b->grants)) < 0)
                r = db_failure_errno(b->db, r);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                SessionRow row;
                int64_t id;
                int k = db_get_session(b->db, e[i].row.id, &row);
                if (k < 0 && k != -ENOENT) {
                        r = k;
                        break;
                }
                /* The row of that id must be this process's: pid, start time and boot. */
                bool same = k >= 0 && row.pid == e[i].row.pid &&
                            row.pid_start == e[i].row.pid_start &&
                            STREQ(row.boot_id, e[i].row.boot_id);
                if (k >= 0)
                        session_row_done(&row);
                if (e[i].close) {
                        /* Closed after its open was written (or in this file): once. */
                        if (k >= 0 &&
                            (r = db_close_session(b->db, e[i].row.id, e[i].closed_at,
                                                  e[i].reason)) > 0 &&
                            (r = audit_append(b->db, JIT_EVENT_SESSION_CLOSED, "broker", -1,
                                              e[i].row.request_id,
                                              session_details(b, e[i].row.id))) >= 0)
                                written[i] = true;
                        continue;
                }
                if (k >= 0) {
                        if (!same)
                                log_error("%s: session %" PRId64 " names pid %d, its row another "
                                          "process; left as it is",
                                          path, e[i].row.id, (int) e[i].row.pid);
                        continue;
                }
                if ((r = db_insert_session(b->db, &e[i].row, &id)) < 0 ||
                    (r = audit_append(b->db, JIT_EVENT_SESSION_OPENED, e[i].requester,
                                      e[i].requester_uid, e[i].row.request_id,
                                      session_row_details(&e[i].row, id))) < 0)
                        break;
                written[i] = true;
                n_written++;
        }
        if (r >= 0)
                r = grants_commit(&b->grants);
        if (r < 0) {
                r = db_failure_errno(b->db, r);
                grants_rollback(&b->grants);
                log_error_errno(r, "recording the sessions of %s: %m (%s); kept for the next start",
                                path, grant_store_failure(r));
                session_pending_entries_free(e, n);
                return r;
        }
        for (size_t i = 0; i < n; i++)
                if (written[i] && e[i].close) {
                        char what[128];
                        snprintf(what, sizeof(what),
                                 "closed: %s, before the broker stopped; recorded at its start",
                                 e[i].reason);
                        log_session(b, JIT_EVENT_SESSION_CLOSED, LOG_INFO, e[i].row.id,
                                    e[i].row.request_id, what);
                } else if (written[i])
                        log_session(b, JIT_EVENT_SESSION_OPENED, LOG_NOTICE, e[i].row.id,
                                    e[i].row.request_id,
                                    "opened before the broker stopped; recorded at its start");
        if (n_written > 0)
                log_notice("recorded %zu session%s answered before the broker stopped", n_written,
                           n_written == 1 ? "" : "s");
done:
        session_pending_entries_free(e, n);
        if (truncate(path, 0) < 0 && errno != ENOENT)
                return log_warning_errno(-errno, "emptying %s: %m", path);
        return 0;
}

void sessions_recover(Broker *b, char *path) {
        int64_t next = 0, max_id = 0;
        uint64_t size = 0;
        int r;

        free(pending.path);
        pending.path = path;
        /* Ids are taken past the database's and past the file's, even when the file could
         * not be written: its sessions keep theirs for the next start. */
        r = path ? recover_file(b, path, &max_id) : 0;
        int k = db_next_session_id(b->db, &next);
        pthread_mutex_lock(&pending.lock);
        pending.next_id = k < 0 ? 0 : next > max_id ? next : max_id + 1;
        pthread_mutex_unlock(&pending.lock);
        if (!path || r < 0 || k < 0) {
                if (k < 0)
                        log_warning_errno(k, "reading the next session id: %m; sessions are "
                                             "recorded before they are answered");
                return; /* every session written before it is answered */
        }
        /* From now on this broker's: the opens it answers early go there. */
        int fd = session_pending_open(path, &size);
        if (fd < 0) {
                log_warning_errno(fd,
                                  "opening %s: %m; sessions are recorded before they are "
                                  "answered",
                                  path);
                return;
        }
        pthread_mutex_lock(&pending.lock);
        pending.fd = fd;
        pending.size = size;
        pthread_mutex_unlock(&pending.lock);
}

void sessions_grant_ended(Broker *b, const Request *r) {
        grant_ended_in(b, r, NULL);
}

/* The grant r ended: its sessions (only that one, when given) end or are warned. */
static void grant_ended_in(Broker *b, const Request *r, Session *only) {
        (void) sessions_flush(b);
        OnExpiry mode = b->policy->on_expiry;
        char text[256];
        const char *why = r->state == REQUEST_REVOKED   ? "was revoked"
                          : r->state == REQUEST_EXPIRED ? "has expired"
                                                        : "has ended";

        snprintf(text, sizeof(text), "jit: your %s grant %" PRId64 " %s%s", r->service, r->id, why,
                 mode == ON_EXPIRY_TERMINATE ? "; this session is being closed." : ".");
        for (Session *s = b->sessions, *next; s; s = next) {
                next = s->next;
                if (s->request_id != r->id || s->kill_timer || (only && s != only))
                        continue;
                bool told = tell_tty(s, text);
                if (mode != ON_EXPIRY_TERMINATE) {
                        char reason[64];
                        snprintf(reason, sizeof(reason),
                                 "grant %s; session left running (on_expiry=%s)", why,
                                 on_expiry_to_string(mode));
                        if (s->id > 0)
                                (void) audit_append(b->db, JIT_EVENT_SESSION_TERMINATED, "broker",
                                                    -1, r->id, session_details(b, s->id));
                        log_session(b, JIT_EVENT_SESSION_TERMINATED, LOG_NOTICE, s->id, r->id,
                                    reason);
                        continue;
                }
                /* Where logind runs, ending its session takes the whole process tree with it. */
                terminate_logind_session(b, s);
                /* A line just written to the terminal is still on its way through the
                 * pty to the user (sshd relays it): it gets a moment before the hangup. */
                if (!told)
                        session_hangup(s);
                if (sd_event_add_time_relative(b->event, &s->kill_timer, CLOCK_MONOTONIC,
                                               told ? TERMINAL_FLUSH_USEC : TERMINATE_GRACE_USEC, 0,
                                               on_kill_timer, s) < 0 &&
                    !s->hung_up)
                        session_hangup(s);
                char reason[64];
                snprintf(reason, sizeof(reason), "terminated: the grant %s", why);
                if (s->id > 0 && grants_begin(&b->grants) >= 0) {
                        if (db_close_session(b->db, s->id, now_usec(CLOCK_REALTIME), reason) < 0 ||
                            audit_append(b->db, JIT_EVENT_SESSION_TERMINATED, "broker", -1, r->id,
                                         session_details(b, s->id)) < 0 ||
                            grants_commit(&b->grants) < 0)
                                grants_rollback(&b->grants);
                }
                log_session(b, JIT_EVENT_SESSION_TERMINATED, LOG_NOTICE, s->id, r->id, reason);
        }
}

json_object *sessions_json(Broker *b, int64_t request_id) {
        (void) sessions_flush(b);
        json_object *arr = json_object_new_array();
        SessionRow *rows = NULL;
        size_t n = 0;
        if (!arr || db_list_sessions(b->db, request_id, &rows, &n) < 0)
                return arr;
        for (size_t i = 0; i < n; i++) {
                json_object *o = session_row_to_json(&rows[i]);
                if (o)
                        json_object_array_add(arr, o);
        }
        session_rows_free(rows, n);
        return arr;
}

void sessions_restore(Broker *b) {
        SessionRow *rows = NULL;
        size_t n = 0;
        int r = db_open_sessions(b->db, &rows, &n);
        if (r < 0) {
                log_error_errno(r, "reading the open sessions: %m (%s)", db_error(b->db));
                return;
        }
        int64_t gone[256], ended[256];
        size_t n_gone = 0, n_ended = 0;
        for (size_t i = 0; i < n; i++) {
                const SessionRow *row = &rows[i];
                uint64_t now_start;
                bool same_boot = STREQ(row->boot_id, b->boot_id);
                /* pidfd first, then the start time: if they match, the pidfd is that process. */
                int pidfd = same_boot ? pidfd_open(row->pid, 0) : -1;
                if (pidfd < 0 || process_start_time(row->pid, &now_start) < 0 ||
                    now_start != row->pid_start) {
                        if (pidfd >= 0)
                                close(pidfd);
                        if (n_gone < ELEMENTSOF(gone))
                                gone[n_gone++] = row->id;
                        continue;
                }
                if (session_attach(b, row->id, row->request_id, row->pid, pidfd, row->tty, false) <
                    0)
                        continue;
                if (!row->grant_active && n_ended < ELEMENTSOF(ended))
                        ended[n_ended++] = row->request_id;
        }
        session_rows_free(rows, n);
        for (size_t i = 0; i < n_gone; i++)
                (void) sessions_close(b, gone[i], "process gone while the broker was down");
        /* A broker restart must not let a session outlive its grant. */
        for (size_t i = 0; i < n_ended; i++) {
                Request *grant = NULL;
                if (db_get_request(b->db, ended[i], &grant) >= 0) {
                        sessions_grant_ended(b, grant);
                        request_free(grant);
                }
        }
}

void sessions_warn(Broker *b, uint64_t *ret_next) {
        uint64_t warning = b->policy->expiry_warning * USEC_PER_SEC, now = now_usec(CLOCK_BOOTTIME),
                 next = 0;

        *ret_next = 0;
        if (warning == 0 || !b->sessions)
                return;
        (void) sessions_flush(b);
        SessionRow *rows = NULL;
        size_t n_rows = 0;
        if (db_sessions_to_warn(b->db, b->boot_id, &rows, &n_rows) < 0)
                return;
        for (size_t i = 0; i < n_rows; i++) {
                const SessionRow *row = &rows[i];
                uint64_t deadline = row->grant_deadline_boot;
                uint64_t due = deadline > warning ? deadline - warning : 0;
                if (due > now) {
                        if (!next || due < next)
                                next = due;
                        continue;
                }
                const Session *s = session_find(b, row->id);
                char tty[sizeof(s->tty)];
                if (s && !session_terminal(s, tty, sizeof(tty)) &&
                    now < s->attached_at + TERMINAL_WAIT_USEC) {
                        /* Just opened: its terminal may not exist yet (sshd allocates the pty
                         * after the PAM session opens). Look again shortly. */
                        uint64_t again = now + TERMINAL_RETRY_USEC;
                        if (!next || again < next)
                                next = again;
                        continue;
                }
                char left[DURATION_BUF_MAX], text[256];
                uint64_t secs =
                        deadline > now ? (deadline - now + USEC_PER_SEC - 1) / USEC_PER_SEC : 0;
                snprintf(text, sizeof(text), "jit: your %s grant %" PRId64 " ends in %s",
                         row->service, row->request_id, duration_format(secs, left, sizeof(left)));
                if (s)
                        tell_tty(s, text);
                (void) db_mark_session_warned(b->db, row->id);
        }
        session_rows_free(rows, n_rows);
        *ret_next = next;
}
