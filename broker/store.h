/* SPDX-License-Identifier: MIT */
/* The broker's state in sqlite3: requests, their approvals, and the schema's version. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "events.h"
#include "request-state.h"

/* "<kernel boot id>/<start of PID 1 in clock ticks>" (brokerd.c), with its NUL */
#define BOOT_ID_MAX 64
#define DB_LIST_MAX 1000
/* Shorter than pam_jit's default timeout (3 s), so a busy database denies, not hangs. */
#define DB_BUSY_TIMEOUT_MS 1000
/* How often a budgeted statement looks at the clock: some tens of microseconds of work. */
#define DB_PROGRESS_STEPS 2000
/* A budget in CPU time also ends at this many times it in wall time (disk waits). */
#define DB_BUDGET_WALL_FACTOR 10

typedef struct Approval {
        char *approver;
        uid_t approver_uid;
        char *comment;
        uint64_t at;          /* realtime usec */
        bool by_rule;         /* an auto-approval: approver is the rule's name, approver_uid -1 */
        char *policy_version; /* SHA-256 of the policy in force when it was given */
        /* A signed approval (docs/signed-approvals.md): the statement signed, the armored
         * signature, and the key's "SHA256:..." fingerprint; all NULL when unsigned. */
        char *statement;
        char *signature;
        char *signer_fingerprint;
} Approval;

typedef struct Request {
        int64_t id;
        char *requester;
        uid_t requester_uid;
        char *service;
        uint64_t duration; /* seconds */
        char *reason;
        char *ticket;
        bool once;
        char *rule;
        unsigned approvals_required;
        RequestState state;
        uint64_t created_at; /* realtime usec, 0 = unset */
        uint64_t activated_at;
        uint64_t expires_at;
        /* The deadline of an open request (pending: timeout; active: end of grant) on
         * CLOCK_BOOTTIME of boot boot_id, so wall-clock jumps cannot stretch it. */
        char boot_id[BOOT_ID_MAX];
        uint64_t deadline_boot;
        uint64_t deadline_at; /* the same deadline in realtime usec */
        uint64_t ended_at;
        char *ended_by;
        char *end_reason;
        char *policy_version; /* SHA-256 of the policy the request was filed under */
        bool break_glass;
        char *acknowledged_by; /* break-glass: the second person who reviewed it */
        uint64_t acknowledged_at;
        Approval *approvals;
        size_t n_approvals;
        /* A grant for one command line under sudo; command NULL: for the whole service. */
        char *command;     /* absolute path */
        char **argv;       /* NULL-terminated; argv[0] as it was asked for */
        char *run_as_user; /* NULL: root */
        char *run_as_group;
        char *cwd;              /* where it runs; NULL: anywhere */
        char *command_identity; /* jit_program_identity() of command when it was asked for */
} Request;

/* NULL-terminated string vectors (a command grant's argv). */
void strv_free(char **v);
char **strv_copy(char *const *v); /* NULL on ENOMEM */

typedef struct BrokerDb BrokerDb;

/* Opens (creating if needed, mode 0600) and migrates the database. On failure *ret_error
 * (when given) says why. Its integrity is checked apart (db_quick_check()), off the path to
 * the first answered check: the time it takes grows with the database. */
int db_open(const char *path, BrokerDb **ret, char **ret_error);
/* Another connection to the database db_open() made, for reading on another thread: it
 * answers db_find_grant() and writes nothing. */
int db_open_reader(const char *path, BrokerDb **ret);
void db_close(BrokerDb *db);
/* PRAGMA quick_check, on a connection of its own (db_open_reader()): 0 when the database is
 * sound, -EBADMSG with *ret_error saying what is wrong, -EINTR when db_interrupt() cut it
 * short. */
int db_quick_check(BrokerDb *db, char **ret_error);
/* The first bytes of the WAL index (the -shm file) as db's connection maps it, through
 * sqlite's own VFS method: opening and closing the file ourselves would drop the POSIX
 * locks sqlite holds on it (they belong to the process, not the descriptor), and another
 * process would then take the index for unused and reset it under us. Valid while db is
 * open. -ENOTSUP where the VFS has no shared memory. */
int db_wal_index(BrokerDb *db, const volatile void **ret);
/* No checkpoint into the database file when this, the last connection, closes. */
void db_no_checkpoint_on_close(BrokerDb *db);
/* Makes the statement running on db (on another thread) stop and fail: safe from any thread. */
void db_interrupt(BrokerDb *db);
const char *db_error(BrokerDb *db);
/* A statement for sql: a cached one not in use, or a new one (cached while there is room).
 * Give it back with db_release(), which resets it and clears its bindings. For the SQL of
 * broker/store*.c. */
struct sqlite3_stmt;
int db_prepare(BrokerDb *db, const char *sql, struct sqlite3_stmt **ret);
void db_release(BrokerDb *db, struct sqlite3_stmt *st);
/* For the audit log (broker-audit.c), which keeps its own statements. */
struct sqlite3;
struct sqlite3 *db_sqlite(BrokerDb *db);

/* Bounds the statements that follow to usec of CPU time in all (0 lifts the bound): past it
 * sqlite stops the one running, which fails, and db_over_budget() says why. */
void db_set_budget(BrokerDb *db, uint64_t usec);
/* How long a write waits for another process's lock (DB_BUSY_TIMEOUT_MS by default). */
void db_set_busy_timeout(BrokerDb *db, unsigned ms);
bool db_over_budget(const BrokerDb *db);

int db_begin(BrokerDb *db);
int db_commit(BrokerDb *db);
void db_rollback(BrokerDb *db);

/* A transaction that is rolled back when it goes out of scope uncommitted (set db once it
 * is open, NULL once committed). Changes to requests use the core's (grant.h), which also
 * stages their effects. */
typedef struct StoreTx {
        BrokerDb *db;
} StoreTx;
static inline void store_tx_release(StoreTx *t) {
        if (t->db)
                db_rollback(t->db);
}

int db_insert_request(BrokerDb *db, Request *r);
int db_get_request(BrokerDb *db, int64_t id, Request **ret);
/* Newest first, at most DB_LIST_MAX; states NULL means all. uid (uid_t)-1 means anyone. */
/* limit 0: all of them (the broker's own sweeps); clients get at most DB_LIST_MAX. */
int db_list_requests(BrokerDb *db, const RequestState *states, size_t n_states, unsigned limit,
                     bool with_unacknowledged, uid_t uid, Request ***ret, size_t *ret_n);
/* The requests someone other than root may see (grant_may_see()), chosen in SQL before the
 * limit, so that others' requests cannot push theirs out of it. */
typedef struct RequestView {
        uid_t uid;                /* their own */
        const char *const *rules; /* those under rules they approve */
        size_t n_rules;
        bool break_glass; /* every break-glass request: they review them */
} RequestView;
/* As db_list_requests(); view NULL means every request. */
int db_list_visible_requests(BrokerDb *db, const RequestState *states, size_t n_states,
                             unsigned limit, bool with_unacknowledged, const RequestView *view,
                             Request ***ret, size_t *ret_n);
int db_add_approval(BrokerDb *db, int64_t id, const Approval *a);
/* Whether an approval of this host's live tables was signed over this very statement: 1, 0,
 * -errno. The statement, canonical and naming its request, approver and window, identifies
 * a signed approval; its signature does not (the armor's line length is free, and some
 * signature schemes have more than one valid signature for the same message). */
int db_statement_known(BrokerDb *db, const char *statement);
int db_update_request(BrokerDb *db, const Request *r);

/* The active grant of uid for service at this moment (a one-shot grant only while it has
 * had no session), answered from the partial index
 * without writing anything. Returns 1 and fills ret_* when there is one, 0 when not. */
int db_find_grant(BrokerDb *db, uid_t uid, const char *service, const char *boot_id,
                  uint64_t now_boot, uint64_t now_real, int64_t *ret_id, uint64_t *ret_expires_at,
                  uint64_t *ret_deadline_boot);

/* Earliest deadline_boot of an open request of this boot: 1 and *ret, or 0 for none. */
/* The active command grants (sudo) of uid at this moment, longest-lasting first (a one-shot
 * grant is consumed by its command), without their approvals. */
int db_find_command_grants(BrokerDb *db, uid_t uid, const char *boot_id, uint64_t now_boot,
                           uint64_t now_real, Request ***ret, size_t *ret_n);
int db_next_deadline(BrokerDb *db, const char *boot_id, uint64_t *ret);
/* Ids of open requests whose deadline has passed, or that belong to another boot. */
int db_due_requests(BrokerDb *db, const char *boot_id, uint64_t now_boot, uint64_t now_real,
                    int64_t **ret, size_t *ret_n);
int db_count_open(BrokerDb *db, uid_t uid, unsigned *ret_active, unsigned *ret_pending);

void request_free(Request *r);
/* A deep copy, or NULL (ENOMEM). */
Request *request_dup(const Request *r);
void request_free_many(Request **r, size_t n);

/* Sessions opened under grants (store-sessions.c). */
typedef struct SessionRow {
        int64_t id;
        int64_t request_id;
        char *service;
        char *tty;   /* NULL when none */
        char *rhost; /* NULL when none */
        pid_t pid;
        uint64_t pid_start; /* clock ticks since boot: with the pid, names one process */
        char boot_id[BOOT_ID_MAX];
        uint64_t opened_at; /* realtime usec */
        uint64_t closed_at; /* 0 while open */
        char *end_reason;
        bool warned;
        /* Joined from the grant (db_open_sessions, db_sessions_to_warn). */
        bool grant_active;
        uint64_t grant_deadline_boot;
} SessionRow;

/* What a session needs of its grant, and no more (a cheaper read than db_get_request()):
 * id, requester, requester_uid, service and once; the rest zero. -ENOENT when none. */
int db_session_grant(BrokerDb *db, int64_t id, Request **ret);
int db_insert_session(BrokerDb *db, const SessionRow *s, int64_t *ret_id);
/* The id the next session gets: past every id the table has had. */
int db_next_session_id(BrokerDb *db, int64_t *ret);
/* 1 when session id has a row, 0 when not, or -errno. */
int db_session_exists(BrokerDb *db, int64_t id);
/* 1 when it closed now, 0 when it was closed already or unknown. */
int db_close_session(BrokerDb *db, int64_t id, uint64_t at, const char *reason);
int db_mark_session_warned(BrokerDb *db, int64_t id);
/* -ENOENT when there is no such session. */
int db_get_session(BrokerDb *db, int64_t id, SessionRow *ret);
/* The sessions of a request, oldest first; at most DB_LIST_MAX. */
int db_list_sessions(BrokerDb *db, int64_t request_id, SessionRow **ret, size_t *ret_n);
/* Sessions still open (any boot), with whether their grant is active. */
int db_open_sessions(BrokerDb *db, SessionRow **ret, size_t *ret_n);
/* Open sessions of this boot not warned yet, under active grants of this boot. */
int db_sessions_to_warn(BrokerDb *db, const char *boot_id, SessionRow **ret, size_t *ret_n);
void session_row_done(SessionRow *s);
void session_rows_free(SessionRow *rows, size_t n);
/* synchronous=NORMAL (relaxed) or FULL for this connection's next transactions; -EBUSY
 * inside one. */
int db_session_durability(BrokerDb *db, bool relaxed);
/* The path of the write-ahead log (malloc'd), whose fdatasync() makes every commit so far
 * durable against power loss. */
int db_wal_path(BrokerDb *db, char **ret);

/* The audit log (store-audit.c). */
/* Appends one record. Call inside the transaction of the change it records (or alone,
 * for events that change nothing else). details is consumed; may be NULL. */
int audit_append(BrokerDb *db, JitEvent event, const char *actor, int64_t actor_uid,
                 int64_t request_id, json_object *details);

/* A details object describing r, for audit_append. */
json_object *audit_request_details(const Request *r);
