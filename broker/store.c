/* SPDX-License-Identifier: MIT */
#include "store.h"

#include "sqlite-errno.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "command-line.h"
#include "timeutil.h"

/* Statements kept prepared on the main connection: parsing and planning the broker's
 * statements cost more than running them (a quarter of an approval's CPU time). */
#define DB_STATEMENTS_CACHED 48

struct BrokerDb {
        sqlite3 *db;
        sqlite3_stmt *find_grant; /* the PAM hot path keeps its statement prepared */
        struct {
                sqlite3_stmt *st;
                bool in_use; /* handed out by db_prepare(), not given back yet */
        } cache[DB_STATEMENTS_CACHED];
        size_t n_cache;
        /* db_set_budget(): when the statements of one operation must stop (0: never). */
        uint64_t budget_cpu_end;  /* CLOCK_THREAD_CPUTIME_ID usec */
        uint64_t budget_wall_end; /* CLOCK_MONOTONIC usec */
        bool over_budget;
};

/* Each entry migrates the schema from version i to i+1; never edit one that shipped. */
static const char *const migrations[] = {
        /* 0 -> 1 */
        "CREATE TABLE requests ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  requester TEXT NOT NULL,"
        "  requester_uid INTEGER NOT NULL,"
        "  service TEXT NOT NULL,"
        "  duration INTEGER NOT NULL CHECK (duration > 0),"
        "  reason TEXT NOT NULL,"
        "  ticket TEXT,"
        "  once INTEGER NOT NULL DEFAULT 0,"
        "  rule TEXT NOT NULL,"
        "  approvals_required INTEGER NOT NULL,"
        "  state TEXT NOT NULL CHECK (state IN ('pending','active','expired','revoked','consumed',"
        "                                       'denied','cancelled','timed_out')),"
        "  created_at INTEGER NOT NULL,"
        "  activated_at INTEGER,"
        "  expires_at INTEGER,"
        "  boot_id TEXT NOT NULL,"
        "  deadline_boot INTEGER,"
        "  deadline_at INTEGER,"
        "  ended_at INTEGER,"
        "  ended_by TEXT,"
        "  end_reason TEXT"
        ");"
        "CREATE INDEX requests_active ON requests(requester_uid, service) WHERE state = 'active';"
        "CREATE INDEX requests_open ON requests(deadline_boot) WHERE state IN ('pending', 'active');"
        "CREATE TABLE approvals ("
        "  request_id INTEGER NOT NULL REFERENCES requests(id),"
        "  approver TEXT NOT NULL,"
        "  approver_uid INTEGER NOT NULL,"
        "  comment TEXT,"
        "  at INTEGER NOT NULL,"
        "  PRIMARY KEY (request_id, approver_uid)"
        ");",
        /* 1 -> 2: policy version of each decision, auto-approval by a rule, break-glass */
        "ALTER TABLE requests ADD COLUMN policy_version TEXT;"
        "ALTER TABLE requests ADD COLUMN break_glass INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE requests ADD COLUMN acknowledged_by TEXT;"
        "ALTER TABLE requests ADD COLUMN acknowledged_at INTEGER;"
        "ALTER TABLE approvals ADD COLUMN by_rule INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE approvals ADD COLUMN policy_version TEXT;"
        "CREATE INDEX requests_unacknowledged ON requests(id)"
        "  WHERE break_glass = 1 AND acknowledged_by IS NULL;",
        /* 2 -> 3: the append-only, hash-chained audit log (broker-audit.c) */
        "CREATE TABLE audit ("
        "  seq INTEGER PRIMARY KEY,"
        "  at INTEGER NOT NULL,"
        "  event TEXT NOT NULL,"
        "  actor TEXT NOT NULL,"
        "  actor_uid INTEGER NOT NULL,"
        "  request_id INTEGER NOT NULL,"
        "  details TEXT NOT NULL,"
        "  prev_hash TEXT NOT NULL,"
        "  hash TEXT NOT NULL"
        ");"
        "CREATE INDEX audit_request ON audit(request_id);"
        "CREATE INDEX audit_at ON audit(at);"
        "CREATE TABLE audit_anchor ("
        "  id INTEGER PRIMARY KEY CHECK (id = 1),"
        "  chain_id TEXT NOT NULL,"
        "  seq INTEGER NOT NULL,"
        "  hash TEXT NOT NULL"
        ");"
        "INSERT INTO audit_anchor VALUES (1, lower(hex(randomblob(16))), 0,"
        "  '0000000000000000000000000000000000000000000000000000000000000000');"
        "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
        "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
        /* Only records already sealed into an archive (at or before the anchor) may go. */
        "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
        "  WHEN OLD.seq > (SELECT seq FROM audit_anchor WHERE id = 1)"
        "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
        "CREATE TRIGGER audit_anchor_forward BEFORE UPDATE ON audit_anchor"
        "  WHEN NEW.seq < OLD.seq OR NEW.chain_id != OLD.chain_id"
        "  BEGIN SELECT RAISE(ABORT, 'the audit anchor only moves forward'); END;"
        "CREATE TRIGGER audit_anchor_no_delete BEFORE DELETE ON audit_anchor"
        "  BEGIN SELECT RAISE(ABORT, 'the audit anchor stays'); END;",
        /* 3 -> 4: sessions opened under grants (broker-sessions.c) */
        "CREATE TABLE sessions ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  request_id INTEGER NOT NULL REFERENCES requests(id),"
        "  service TEXT NOT NULL,"
        "  tty TEXT,"
        "  rhost TEXT,"
        "  pid INTEGER NOT NULL,"
        "  pid_start INTEGER NOT NULL,"
        "  boot_id TEXT NOT NULL,"
        "  opened_at INTEGER NOT NULL,"
        "  warned INTEGER NOT NULL DEFAULT 0,"
        "  closed_at INTEGER,"
        "  end_reason TEXT"
        ");"
        "CREATE INDEX sessions_request ON sessions(request_id);"
        "CREATE INDEX sessions_open ON sessions(request_id) WHERE closed_at IS NULL;",
        /* 4 -> 5: what the queries of non-root callers filter on, so that none of them walks
         * a table (db_list_visible_requests(), audit_store_foreach()). requester_uid and
         * rule alone also keep each one's rows in id order, for a LIMIT without a sort. */
        "CREATE INDEX requests_uid ON requests(requester_uid);"
        "CREATE INDEX requests_uid_state ON requests(requester_uid, state);"
        "CREATE INDEX requests_rule ON requests(rule);"
        "CREATE INDEX requests_rule_state ON requests(rule, state);"
        "CREATE INDEX requests_state ON requests(state);"
        "CREATE INDEX requests_break_glass ON requests(id) WHERE break_glass = 1;"
        "CREATE INDEX requests_requester ON requests(requester);"
        "CREATE INDEX audit_actor ON audit(actor);",
        /* 5 -> 6: the PAM check's index in the order it wants its answer (the grant that
         * lasts longest first), so that no check sorts. */
        "CREATE INDEX requests_active_by_expiry ON requests(requester_uid, service, expires_at)"
        " WHERE state = 'active';"
        "DROP INDEX requests_active;",
        /* 6 -> 7: notifications owed to the policy's hooks, written with the change they
         * tell of (outbox.c). No reference to requests: retention may archive a request
         * whose notification is still on its way. IF NOT EXISTS: a database set back to an
         * earlier version by hand keeps what it holds. */
        "CREATE TABLE IF NOT EXISTS outbox ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  created_at INTEGER NOT NULL,"
        "  hook TEXT NOT NULL,"
        "  hook_index INTEGER NOT NULL,"
        "  event TEXT NOT NULL,"
        "  request_id INTEGER NOT NULL,"
        "  payload TEXT NOT NULL,"
        "  attempts INTEGER NOT NULL DEFAULT 0,"
        "  next_attempt_at INTEGER NOT NULL,"
        "  last_error TEXT"
        ");"
        "CREATE INDEX IF NOT EXISTS outbox_due ON outbox(next_attempt_at);"
        "CREATE INDEX IF NOT EXISTS outbox_hook ON outbox(hook, id);",
        /* 7 -> 8: grants for one command line under sudo (the approval plugin asks about
         * them): the program's absolute path, the argv as a JSON array, the run-as user and
         * group, the working directory it runs in (relative arguments mean something else
         * elsewhere), and the program's identity when it was asked for (its real path, device,
         * inode, size and mtime: a swapped symlink or a replaced file is not it). command NULL:
         * a grant for the whole service, as every request before. */
        "ALTER TABLE requests ADD COLUMN command TEXT;"
        "ALTER TABLE requests ADD COLUMN argv TEXT;"
        "ALTER TABLE requests ADD COLUMN run_as_user TEXT;"
        "ALTER TABLE requests ADD COLUMN run_as_group TEXT;"
        "ALTER TABLE requests ADD COLUMN cwd TEXT;"
        "ALTER TABLE requests ADD COLUMN command_identity TEXT;",
        /* 8 -> 9: where the fleet client is in the fleet's change feed, per fleet host name
         * (fleet-client.c, docs/fleet.md "Propagation"): the last seq it moved past, how many
         * changes it has seen, when it last polled. */
        "CREATE TABLE fleet_cursor ("
        "  host TEXT PRIMARY KEY,"
        "  seq INTEGER NOT NULL CHECK (seq >= 0),"
        "  changes_seen INTEGER NOT NULL DEFAULT 0 CHECK (changes_seen >= 0),"
        "  updated_at INTEGER NOT NULL"
        ");",
        /* 9 -> 10: the local grants made for fleet requests (broker-fleet.c), so that a
         * fleet request is granted here once and its revocation finds the grant. */
        "CREATE TABLE fleet_grants ("
        "  host TEXT NOT NULL,"
        "  fleet_id INTEGER NOT NULL CHECK (fleet_id > 0),"
        "  local_id INTEGER NOT NULL REFERENCES requests (id),"
        "  PRIMARY KEY (host, fleet_id)"
        ");",
        /* 10 -> 11: fleet.max_offline (docs/fleet.md "When PostgreSQL is away"): a fleet
         * grant's own deadline on the boot it was granted, since the request's deadline_boot
         * is cut to max_offline after the last successful poll and pushed forward by each
         * one; and the time of that poll, kept with the cursor. */
        "ALTER TABLE fleet_grants ADD COLUMN deadline_boot INTEGER;"
        "UPDATE fleet_grants SET deadline_boot ="
        "  (SELECT r.deadline_boot FROM requests AS r WHERE r.id = fleet_grants.local_id);"
        "ALTER TABLE fleet_cursor ADD COLUMN last_sync INTEGER NOT NULL DEFAULT 0;",
        /* 11 -> 12: the fleet audit records made here, one hash chain per fleet host name,
         * kept until the fleet store has them (store-fleet-audit.c, docs/fleet.md "The
         * fleet's audit records"); and when a fleet grant was first used here, so that its
         * first use is recorded once. */
        "CREATE TABLE fleet_audit ("
        "  host TEXT NOT NULL,"
        "  seq INTEGER NOT NULL CHECK (seq > 0),"
        "  at INTEGER NOT NULL,"
        "  kind TEXT NOT NULL,"
        "  request_id INTEGER NOT NULL CHECK (request_id > 0),"
        "  actor TEXT NOT NULL,"
        "  data TEXT NOT NULL,"
        "  prev_hash TEXT NOT NULL,"
        "  hash TEXT NOT NULL,"
        "  uploaded INTEGER NOT NULL DEFAULT 0 CHECK (uploaded IN (0, 1)),"
        "  PRIMARY KEY (host, seq)"
        ");"
        "CREATE INDEX fleet_audit_waiting ON fleet_audit (host, seq) WHERE uploaded = 0;"
        "ALTER TABLE fleet_grants ADD COLUMN first_used_at INTEGER;"
        "CREATE INDEX fleet_grants_local ON fleet_grants (local_id);",
        /* 12 -> 13: signed approvals (docs/signed-approvals.md): the statement the approver
         * signed, the signature, and the signing key's fingerprint. Either all three or none. */
        "ALTER TABLE approvals ADD COLUMN statement TEXT;"
        "ALTER TABLE approvals ADD COLUMN signature TEXT;"
        "ALTER TABLE approvals ADD COLUMN signer_fingerprint TEXT;",
};

sqlite3 *db_sqlite(BrokerDb *db) {
        return db->db;
}

const char *db_error(BrokerDb *db) {
        return db && db->db ? sqlite3_errmsg(db->db) : "no database";
}

int db_prepare(BrokerDb *db, const char *sql, sqlite3_stmt **ret) {
        for (size_t i = 0; i < db->n_cache; i++)
                if (!db->cache[i].in_use && STREQ(sqlite3_sql(db->cache[i].st), sql)) {
                        db->cache[i].in_use = true;
                        *ret = db->cache[i].st;
                        return 0;
                }
        bool keep = db->n_cache < DB_STATEMENTS_CACHED;
        int rc = sqlite3_prepare_v3(db->db, sql, -1, keep ? SQLITE_PREPARE_PERSISTENT : 0, ret,
                                    NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        if (keep) {
                db->cache[db->n_cache].st = *ret;
                db->cache[db->n_cache++].in_use = true;
        }
        return 0;
}

void db_release(BrokerDb *db, sqlite3_stmt *st) {
        if (!st)
                return;
        for (size_t i = 0; i < db->n_cache; i++)
                if (db->cache[i].st == st) {
                        /* Reset: no read transaction stays open, no bound pointer kept. */
                        sqlite3_reset(st);
                        sqlite3_clear_bindings(st);
                        db->cache[i].in_use = false;
                        return;
                }
        sqlite3_finalize(st);
}

static int exec(BrokerDb *db, const char *sql) {
        return sqlite_errno(sqlite3_exec(db->db, sql, NULL, NULL, NULL));
}

static int query_int(BrokerDb *db, const char *sql, int64_t *ret) {
        sqlite3_stmt *st;
        int rc = db_prepare(db, sql, &st);
        if (rc < 0)
                return rc;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = sqlite3_column_int64(st, 0);
        db_release(db, st);
        return rc == SQLITE_ROW ? 0 : (rc == SQLITE_DONE ? -ENODATA : sqlite_errno(rc));
}

static int migrate(BrokerDb *db, char **ret_error) {
        int64_t version = 0;
        int r = query_int(db, "PRAGMA user_version", &version);
        if (r < 0)
                return r;
        if (version > (int64_t) ELEMENTSOF(migrations)) {
                if (asprintf(ret_error,
                             "database schema version %lld is newer than this broker knows (%zu)",
                             (long long) version, ELEMENTSOF(migrations)) < 0)
                        *ret_error = NULL;
                return -EPROTO;
        }
        for (size_t v = (size_t) version; v < ELEMENTSOF(migrations); v++) {
                char pragma[64];
                if ((r = exec(db, "BEGIN IMMEDIATE")) < 0)
                        return r;
                snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %zu", v + 1);
                if ((r = exec(db, migrations[v])) < 0 || (r = exec(db, pragma)) < 0) {
                        if (asprintf(ret_error, "migrating the schema to version %zu: %s", v + 1,
                                     db_error(db)) < 0)
                                *ret_error = NULL;
                        db_rollback(db);
                        return r;
                }
                if ((r = exec(db, "COMMIT")) < 0)
                        return r;
        }
        return 0;
}

static int prepare_find_grant(BrokerDb *db) {
        return sqlite_errno(sqlite3_prepare_v3(
                db->db,
                "SELECT id, expires_at, deadline_boot FROM requests INDEXED BY requests_active_by_expiry"
                " WHERE state = 'active' AND requester_uid = ?1 AND service = ?2"
                /* a grant for one command is not a grant for the service */
                " AND command IS NULL"
                " AND boot_id = ?3 AND deadline_boot > ?4 AND expires_at > ?5"
                /* a one-shot grant opens one session, never a second */
                " AND NOT (once AND EXISTS (SELECT 1 FROM sessions s"
                " WHERE s.request_id = requests.id))"
                " ORDER BY expires_at DESC LIMIT 1",
                -1, SQLITE_PREPARE_PERSISTENT, &db->find_grant, NULL));
}

int db_open(const char *path, BrokerDb **ret, char **ret_error) {
        _cleanup_free_ BrokerDb *db = calloc(1, sizeof(BrokerDb));
        char *error = NULL;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!db)
                return -ENOMEM;

        /* Create the file ourselves so its mode is 0600 whatever the umask. */
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0) {
                r = -errno;
                if (ret_error && asprintf(ret_error, "%s: %s", path, strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        close(fd);

        int rc = sqlite3_open_v2(
                path, &db->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_EXRESCODE,
                NULL);
        if (rc != SQLITE_OK) {
                r = sqlite_errno(rc);
                if (asprintf(&error, "%s: %s", path,
                             db->db ? sqlite3_errmsg(db->db) : sqlite3_errstr(rc)) < 0)
                        error = NULL;
                goto fail;
        }
        sqlite3_extended_result_codes(db->db, 1);
        sqlite3_busy_timeout(db->db, DB_BUSY_TIMEOUT_MS);
        sqlite3_db_config(db->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
        sqlite3_db_config(db->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);

        /* WAL lets the hot check read while a change commits; FULL so that a commit the
         * broker has answered for survives power loss. */
        static const char *const pragmas[] = {
                "PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL",
                "PRAGMA foreign_keys = ON",  "PRAGMA trusted_schema = OFF",
                "PRAGMA secure_delete = ON",
        };
        for (size_t i = 0; i < ELEMENTSOF(pragmas); i++)
                if ((r = exec(db, pragmas[i])) < 0) {
                        if (asprintf(&error, "%s: %s: %s", path, pragmas[i], db_error(db)) < 0)
                                error = NULL;
                        goto fail;
                }

        r = migrate(db, &error);
        if (r < 0) {
                if (!error && asprintf(&error, "%s: %s", path, db_error(db)) < 0)
                        error = NULL;
                goto fail;
        }

        if ((r = prepare_find_grant(db)) < 0) {
                if (asprintf(&error, "%s: %s", path, db_error(db)) < 0)
                        error = NULL;
                goto fail;
        }

        *ret = TAKE_PTR(db);
        return 0;

fail:
        if (ret_error)
                *ret_error = error;
        else
                free(error);
        sqlite3_close_v2(db->db);
        return r < 0 ? r : -EIO;
}

int db_open_reader(const char *path, BrokerDb **ret) {
        _cleanup_free_ BrokerDb *db = calloc(1, sizeof(BrokerDb));
        int r;

        if (!db)
                return -ENOMEM;
        /* Read-write for sqlite (a WAL reader writes the -shm index), query_only for us. One
         * thread uses it: no mutex. No CREATE: db_open() made and migrated the file. */
        int rc = sqlite3_open_v2(path, &db->db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW |
                                         SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_NOMUTEX,
                                 NULL);
        if (rc != SQLITE_OK) {
                r = sqlite_errno(rc) ?: -EIO;
                goto fail;
        }
        sqlite3_extended_result_codes(db->db, 1);
        sqlite3_busy_timeout(db->db, DB_BUSY_TIMEOUT_MS);
        sqlite3_db_config(db->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
        sqlite3_db_config(db->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
        if ((r = exec(db, "PRAGMA query_only = ON")) < 0 ||
            (r = exec(db, "PRAGMA trusted_schema = OFF")) < 0 || (r = prepare_find_grant(db)) < 0)
                goto fail;
        *ret = TAKE_PTR(db);
        return 0;

fail:
        sqlite3_close_v2(db->db);
        return r;
}

int db_quick_check(BrokerDb *db, char **ret_error) {
        sqlite3_stmt *st = NULL;
        const char *res = NULL;

        *ret_error = NULL;
        int rc = sqlite3_prepare_v2(db->db, "PRAGMA quick_check", -1, &st, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
                res = (const char *) sqlite3_column_text(st, 0);
        /* Interrupted (db_interrupt(), at stop) says nothing either way. Any other failure to
         * read the database through is a failed check: it is what the check is for. */
        int r = rc == SQLITE_INTERRUPT ? -EINTR : res && STREQ(res, "ok") ? 0 : -EBADMSG;
        if (r == -EBADMSG &&
            asprintf(ret_error, "%s: %s", sqlite3_db_filename(db->db, "main") ?: "database",
                     res ?: db_error(db)) < 0)
                *ret_error = NULL;
        sqlite3_finalize(st);
        return r;
}

int db_wal_index(BrokerDb *db, const volatile void **ret) {
        sqlite3_file *f = NULL;
        volatile void *p = NULL;

        if (sqlite3_file_control(db->db, "main", SQLITE_FCNTL_FILE_POINTER, &f) != SQLITE_OK ||
            !f || !f->pMethods || f->pMethods->iVersion < 2 || !f->pMethods->xShmMap)
                return -ENOTSUP;
        /* A read maps the index (region 0, 32 KiB as sqlite's WAL code asks for it). */
        int r = exec(db, "SELECT 1 FROM sqlite_master LIMIT 1");
        if (r < 0)
                return r;
        if (f->pMethods->xShmMap(f, 0, 32 * 1024, 0, &p) != SQLITE_OK || !p)
                return -ENOTSUP;
        *ret = p;
        return 0;
}

void db_no_checkpoint_on_close(BrokerDb *db) {
        (void) sqlite3_db_config(db->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
}

void db_interrupt(BrokerDb *db) {
        sqlite3_interrupt(db->db);
}

void db_close(BrokerDb *db) {
        if (!db)
                return;
        sqlite3_finalize(db->find_grant);
        for (size_t i = 0; i < db->n_cache; i++)
                sqlite3_finalize(db->cache[i].st);
        sqlite3_close_v2(db->db);
        free(db);
}

/* Called every DB_PROGRESS_STEPS virtual machine steps of a budgeted statement. CPU time,
 * so that a busy machine does not cut short what would be cheap; wall time as well, for a
 * statement that waits on the disk instead. */
static int on_progress(void *userdata) {
        BrokerDb *db = userdata;

        if (now_usec(CLOCK_THREAD_CPUTIME_ID) < db->budget_cpu_end &&
            now_usec(CLOCK_MONOTONIC) < db->budget_wall_end)
                return 0;
        db->over_budget = true;
        return 1; /* SQLITE_INTERRUPT */
}

void db_set_budget(BrokerDb *db, uint64_t usec) {
        db->over_budget = false;
        if (usec == 0) {
                sqlite3_progress_handler(db->db, 0, NULL, NULL);
                return;
        }
        db->budget_cpu_end = now_usec(CLOCK_THREAD_CPUTIME_ID) + usec;
        db->budget_wall_end = now_usec(CLOCK_MONOTONIC) + usec * DB_BUDGET_WALL_FACTOR;
        sqlite3_progress_handler(db->db, DB_PROGRESS_STEPS, on_progress, db);
}

void db_set_busy_timeout(BrokerDb *db, unsigned ms) {
        sqlite3_busy_timeout(db->db, (int) ms);
}

bool db_over_budget(const BrokerDb *db) {
        return db->over_budget;
}

int db_begin(BrokerDb *db) {
        return exec(db, "BEGIN IMMEDIATE");
}

int db_commit(BrokerDb *db) {
        return exec(db, "COMMIT");
}

void db_rollback(BrokerDb *db) {
        if (!sqlite3_get_autocommit(db->db))
                (void) exec(db, "ROLLBACK");
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s) {
        if (s)
                sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, i);
}

static void bind_time_or_null(sqlite3_stmt *st, int i, uint64_t t) {
        if (t)
                sqlite3_bind_int64(st, i, (sqlite3_int64) t);
        else
                sqlite3_bind_null(st, i);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)

void strv_free(char **v) {
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

char **strv_copy(char *const *v) {
        size_t n = 0;
        while (v[n])
                n++;
        char **c = calloc(n + 1, sizeof(char *));
        for (size_t i = 0; c && i < n; i++)
                if (!(c[i] = strdup(v[i]))) {
                        strv_free(c);
                        return NULL;
                }
        return c;
}

/* A command grant's argv as stored: a JSON array of strings. */
static char *argv_to_json_text(char *const *argv) {
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();
        for (size_t i = 0; a && argv && argv[i]; i++)
                if (json_object_array_add(a, json_object_new_string(argv[i])) < 0)
                        return NULL;
        const char *s = a ? json_object_to_json_string_ext(
                                    a, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
                          : NULL;
        return s ? strdup(s) : NULL;
}

static int argv_from_json_text(const char *text, char ***ret) {
        _cleanup_(json_object_putp) json_object *a = json_tokener_parse(text);
        if (!a || !json_object_is_type(a, json_type_array) || json_object_array_length(a) < 1 ||
            json_object_array_length(a) > JIT_COMMAND_ARGS_MAX)
                return -EBADMSG;
        size_t n = json_object_array_length(a);
        char **argv = calloc(n + 1, sizeof(char *));
        if (!argv)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *v = json_object_array_get_idx(a, i);
                if (!json_object_is_type(v, json_type_string) ||
                    !(argv[i] = strdup(json_object_get_string(v)))) {
                        strv_free(argv);
                        return -EBADMSG;
                }
        }
        *ret = argv;
        return 0;
}

static int step_done(BrokerDb *db, sqlite3_stmt *st) {
        int rc = sqlite3_step(st);
        int r = rc == SQLITE_DONE ? 0 : (sqlite_errno(rc) ?: -EIO);
        db_release(db, st);
        return r;
}

int db_insert_request(BrokerDb *db, Request *r) {
        sqlite3_stmt *st;
        int rc = db_prepare(
                db,
                "INSERT INTO requests (requester, requester_uid, service, duration, reason, ticket, once, rule,"
                " approvals_required, state, created_at, boot_id, deadline_boot, deadline_at,"
                " activated_at, expires_at, policy_version, break_glass, command, argv, run_as_user,"
                " run_as_group, cwd, command_identity)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,"
                " ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
                &st);
        if (rc < 0)
                return rc;
        sqlite3_bind_text(st, 1, r->requester, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, r->requester_uid);
        sqlite3_bind_text(st, 3, r->service, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (sqlite3_int64) r->duration);
        sqlite3_bind_text(st, 5, r->reason, -1, SQLITE_STATIC);
        bind_text_or_null(st, 6, r->ticket);
        sqlite3_bind_int(st, 7, r->once);
        sqlite3_bind_text(st, 8, r->rule, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 9, (int) r->approvals_required);
        sqlite3_bind_text(st, 10, request_state_to_string(r->state), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 11, (sqlite3_int64) r->created_at);
        sqlite3_bind_text(st, 12, r->boot_id, -1, SQLITE_STATIC);
        bind_time_or_null(st, 13, r->deadline_boot);
        bind_time_or_null(st, 14, r->deadline_at);
        bind_time_or_null(st, 15, r->activated_at);
        bind_time_or_null(st, 16, r->expires_at);
        bind_text_or_null(st, 17, r->policy_version);
        sqlite3_bind_int(st, 18, r->break_glass);
        _cleanup_free_ char *argv = NULL;
        if (r->command) {
                if (!(argv = argv_to_json_text(r->argv))) {
                        db_release(db, st);
                        return -ENOMEM;
                }
                sqlite3_bind_text(st, 19, r->command, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 20, argv, -1, SQLITE_STATIC);
                bind_text_or_null(st, 21, r->run_as_user);
                bind_text_or_null(st, 22, r->run_as_group);
                bind_text_or_null(st, 23, r->cwd);
                bind_text_or_null(st, 24, r->command_identity);
        }
        int k = step_done(db, st);
        if (k < 0)
                return k;
        r->id = sqlite3_last_insert_rowid(db->db);
        return 0;
}

int db_update_request(BrokerDb *db, const Request *r) {
        sqlite3_stmt *st;
        int rc = db_prepare(
                db,
                "UPDATE requests SET state = ?2, activated_at = ?3, expires_at = ?4,"
                " boot_id = ?5, deadline_boot = ?6, deadline_at = ?7, ended_at = ?8,"
                " ended_by = ?9, end_reason = ?10, acknowledged_by = ?11, acknowledged_at = ?12"
                " WHERE id = ?1",
                &st);
        if (rc < 0)
                return rc;
        sqlite3_bind_int64(st, 1, r->id);
        sqlite3_bind_text(st, 2, request_state_to_string(r->state), -1, SQLITE_STATIC);
        bind_time_or_null(st, 3, r->activated_at);
        bind_time_or_null(st, 4, r->expires_at);
        sqlite3_bind_text(st, 5, r->boot_id, -1, SQLITE_STATIC);
        bind_time_or_null(st, 6, r->deadline_boot);
        bind_time_or_null(st, 7, r->deadline_at);
        bind_time_or_null(st, 8, r->ended_at);
        bind_text_or_null(st, 9, r->ended_by);
        bind_text_or_null(st, 10, r->end_reason);
        bind_text_or_null(st, 11, r->acknowledged_by);
        bind_time_or_null(st, 12, r->acknowledged_at);
        int k = step_done(db, st);
        if (k < 0)
                return k;
        return sqlite3_changes(db->db) == 1 ? 0 : -ENOENT;
}

int db_add_approval(BrokerDb *db, int64_t id, const Approval *a) {
        sqlite3_stmt *st;
        int rc = db_prepare(
                db,
                "INSERT INTO approvals (request_id, approver, approver_uid, comment, at, by_rule,"
                " policy_version, statement, signature, signer_fingerprint)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                &st);
        if (rc < 0)
                return rc;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, a->approver, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, a->approver_uid);
        bind_text_or_null(st, 4, a->comment);
        sqlite3_bind_int64(st, 5, (sqlite3_int64) a->at);
        sqlite3_bind_int(st, 6, a->by_rule);
        bind_text_or_null(st, 7, a->policy_version);
        bind_text_or_null(st, 8, a->statement);
        bind_text_or_null(st, 9, a->signature);
        bind_text_or_null(st, 10, a->signer_fingerprint);
        return step_done(db, st);
}

int db_statement_known(BrokerDb *db, const char *statement) {
        sqlite3_stmt *st;
        int rc = db_prepare(db, "SELECT 1 FROM approvals WHERE statement = ?1 LIMIT 1", &st);
        if (rc < 0)
                return rc;
        sqlite3_bind_text(st, 1, statement, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        int k = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : (sqlite_errno(rc) ?: -EIO);
        db_release(db, st);
        return k;
}

static char *column_strdup(sqlite3_stmt *st, int i) {
        const unsigned char *s = sqlite3_column_text(st, i);
        return s ? strdup((const char *) s) : NULL;
}

static uint64_t column_time(sqlite3_stmt *st, int i) {
        return sqlite3_column_type(st, i) == SQLITE_NULL ? 0
                                                         : (uint64_t) sqlite3_column_int64(st, i);
}

#define REQUEST_COLUMNS                                                                                    \
        "id, requester, requester_uid, service, duration, reason, ticket, once, rule, approvals_required," \
        " state, created_at, activated_at, expires_at, boot_id, deadline_boot, deadline_at, ended_at,"     \
        " ended_by, end_reason, policy_version, break_glass, acknowledged_by, acknowledged_at,"            \
        " command, argv, run_as_user, run_as_group, cwd, command_identity"

static int request_from_row(sqlite3_stmt *st, Request **ret) {
        Request *r = calloc(1, sizeof(Request));
        if (!r)
                return -ENOMEM;
        r->id = sqlite3_column_int64(st, 0);
        r->requester = column_strdup(st, 1);
        r->requester_uid = (uid_t) sqlite3_column_int64(st, 2);
        r->service = column_strdup(st, 3);
        r->duration = (uint64_t) sqlite3_column_int64(st, 4);
        r->reason = column_strdup(st, 5);
        r->ticket = column_strdup(st, 6);
        r->once = sqlite3_column_int(st, 7) != 0;
        r->rule = column_strdup(st, 8);
        r->approvals_required = (unsigned) sqlite3_column_int(st, 9);
        r->state = request_state_from_string((const char *) sqlite3_column_text(st, 10));
        r->created_at = column_time(st, 11);
        r->activated_at = column_time(st, 12);
        r->expires_at = column_time(st, 13);
        const unsigned char *boot = sqlite3_column_text(st, 14);
        snprintf(r->boot_id, sizeof(r->boot_id), "%s", boot ? (const char *) boot : "");
        r->deadline_boot = column_time(st, 15);
        r->deadline_at = column_time(st, 16);
        r->ended_at = column_time(st, 17);
        r->ended_by = column_strdup(st, 18);
        r->end_reason = column_strdup(st, 19);
        r->policy_version = column_strdup(st, 20);
        r->break_glass = sqlite3_column_int(st, 21) != 0;
        r->acknowledged_by = column_strdup(st, 22);
        r->acknowledged_at = column_time(st, 23);
        r->command = column_strdup(st, 24);
        if (r->command) {
                const char *argv = (const char *) sqlite3_column_text(st, 25);
                if (!argv || argv_from_json_text(argv, &r->argv) < 0) {
                        request_free(r);
                        return -EBADMSG;
                }
                r->run_as_user = column_strdup(st, 26);
                r->run_as_group = column_strdup(st, 27);
                r->cwd = column_strdup(st, 28);
                r->command_identity = column_strdup(st, 29);
        }
        if (!r->requester || !r->service || !r->reason || !r->rule || r->state < 0) {
                request_free(r);
                return -EBADMSG; /* NOT NULL columns came back empty: treat as corrupt */
        }
        *ret = r;
        return 0;
}

#define APPROVALS_SQL                                                                              \
        "SELECT approver, approver_uid, comment, at, by_rule, policy_version, statement,"          \
        " signature, signer_fingerprint FROM approvals"                                            \
        " WHERE request_id = ?1 ORDER BY at, approver_uid"

/* r's approvals through st (APPROVALS_SQL), which is left reset for the next request. */
static int load_approvals_with(sqlite3_stmt *st, Request *r) {
        int rc, k = 0;

        sqlite3_bind_int64(st, 1, r->id);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                Approval *a = reallocarray(r->approvals, r->n_approvals + 1, sizeof(Approval));
                if (!a) {
                        k = -ENOMEM;
                        break;
                }
                r->approvals = a;
                a = &r->approvals[r->n_approvals++];
                *a = (Approval){
                        .approver = column_strdup(st, 0),
                        .approver_uid = (uid_t) sqlite3_column_int64(st, 1),
                        .comment = column_strdup(st, 2),
                        .at = column_time(st, 3),
                        .by_rule = sqlite3_column_int(st, 4) != 0,
                        .policy_version = column_strdup(st, 5),
                        .statement = column_strdup(st, 6),
                        .signature = column_strdup(st, 7),
                        .signer_fingerprint = column_strdup(st, 8),
                };
                if (!a->approver) {
                        k = -ENOMEM;
                        break;
                }
        }
        if (k == 0 && rc != SQLITE_DONE)
                k = sqlite_errno(rc) ?: -EIO;
        sqlite3_reset(st);
        return k;
}

static int load_approvals(BrokerDb *db, Request *r) {
        sqlite3_stmt *st;
        int rc = db_prepare(db, APPROVALS_SQL, &st);
        if (rc < 0)
                return rc;
        int k = load_approvals_with(st, r);
        db_release(db, st);
        return k;
}

int db_get_request(BrokerDb *db, int64_t id, Request **ret) {
        sqlite3_stmt *st;
        Request *r = NULL;
        int rc = db_prepare(db, "SELECT " REQUEST_COLUMNS " FROM requests WHERE id = ?1", &st);
        if (rc < 0)
                return rc;
        sqlite3_bind_int64(st, 1, id);
        rc = sqlite3_step(st);
        int k = rc == SQLITE_ROW ? request_from_row(st, &r)
                                 : (rc == SQLITE_DONE ? -ENOENT : sqlite_errno(rc));
        db_release(db, st);
        if (k < 0)
                return k;
        k = load_approvals(db, r);
        if (k < 0) {
                request_free(r);
                return k;
        }
        *ret = r;
        return 0;
}

/* Rules with an arm of their own in a list of all states; more share one, and a sort. */
#define RULE_ARMS_MAX 8

typedef enum ListWho {
        WHO_ANY,
        WHO_UID,
        WHO_RULE,
        WHO_RULES,
        WHO_BREAK_GLASS
} ListWho;
typedef enum ListWhat {
        WHAT_ALL,
        WHAT_STATES,
        WHAT_UNACKNOWLEDGED
} ListWhat;

/* The index that answers an arm. requester_uid or rule alone keep the rows in id order, so
 * that sqlite merges the arms and stops at the LIMIT; rows in a given state are few (the
 * open ones) and sorted. */
static const char *arm_index(ListWho who, ListWhat what) {
        if (what == WHAT_UNACKNOWLEDGED)
                return "requests_unacknowledged";
        switch (who) {
        case WHO_ANY:
                return what == WHAT_STATES ? "requests_state" : NULL;
        case WHO_UID:
                return what == WHAT_STATES ? "requests_uid_state" : "requests_uid";
        case WHO_RULE:
        case WHO_RULES:
                return what == WHAT_STATES ? "requests_rule_state" : "requests_rule";
        case WHO_BREAK_GLASS:
                return what == WHAT_STATES ? "requests_state" : "requests_break_glass";
        }
        return NULL;
}

/* One SELECT of the UNION. Parameters: ?1 the caller's uid, ?2 the limit, ?3... the rules. */
static void add_arm(FILE *f, bool *first, ListWho who, size_t rule, size_t n_rules, ListWhat what,
                    const char *states) {
        const char *index = arm_index(who, what);

        fprintf(f, "%sSELECT " REQUEST_COLUMNS " FROM requests%s%s WHERE 1",
                *first ? "" : " UNION ", index ? " INDEXED BY " : "", index ?: "");
        *first = false;
        switch (who) {
        case WHO_ANY:
                break;
        case WHO_UID:
                fputs(" AND requester_uid = ?1", f);
                break;
        case WHO_RULE:
                fprintf(f, " AND rule = ?%zu", 3 + rule);
                break;
        case WHO_RULES:
                fputs(" AND rule IN (", f);
                for (size_t i = 0; i < n_rules; i++)
                        fprintf(f, "%s?%zu", i ? ", " : "", 3 + i);
                fputs(")", f);
                break;
        case WHO_BREAK_GLASS:
                fputs(" AND break_glass = 1", f);
                break;
        }
        if (what == WHAT_STATES)
                fprintf(f, " AND state IN (%s)", states);
        else if (what == WHAT_UNACKNOWLEDGED)
                fputs(" AND break_glass = 1 AND acknowledged_by IS NULL", f);
}

/* The whole statement; NULL when out of memory. */
static char *list_sql(const RequestState *states, size_t n_states, bool with_unacknowledged,
                      const RequestView *view) {
        char state_list[256] = "";
        char *sql = NULL;
        size_t len = 0;
        bool first = true;

        for (size_t i = 0; states && i < n_states && i < _REQUEST_STATE_MAX; i++) {
                /* fixed names, never input */
                size_t l = strlen(state_list);
                snprintf(state_list + l, sizeof(state_list) - l, "%s'%s'", i ? ", " : "",
                         request_state_to_string(states[i]));
        }
        bool by_state = states && n_states > 0;

        ListWho whos[3 + RULE_ARMS_MAX];
        size_t n_whos = 0;
        size_t n_rules = view ? view->n_rules : 0;
        if (!view)
                whos[n_whos++] = WHO_ANY;
        else {
                whos[n_whos++] = WHO_UID;
                if (n_rules > 0 && (by_state || n_rules > RULE_ARMS_MAX))
                        whos[n_whos++] = WHO_RULES;
                else
                        for (size_t i = 0; i < n_rules; i++)
                                whos[n_whos++] = WHO_RULE;
                if (view->break_glass)
                        whos[n_whos++] = WHO_BREAK_GLASS;
        }

        FILE *f = open_memstream(&sql, &len);
        if (!f)
                return NULL;
        for (size_t i = 0, rule = 0; i < n_whos; i++) {
                size_t r = whos[i] == WHO_RULE ? rule++ : 0;
                add_arm(f, &first, whos[i], r, n_rules, by_state ? WHAT_STATES : WHAT_ALL,
                        state_list);
                /* Break-glass grants stay in view until someone acknowledges them. */
                if (by_state && with_unacknowledged)
                        add_arm(f, &first, whos[i], r, n_rules, WHAT_UNACKNOWLEDGED, NULL);
        }
        /* LIMIT -1 is sqlite's "no limit", for the broker's own sweeps. */
        fputs(" ORDER BY id DESC LIMIT ?2", f);
        if (fclose(f) != 0) {
                free(sql);
                return NULL;
        }
        return sql;
}

int db_list_visible_requests(BrokerDb *db, const RequestState *states, size_t n_states,
                             unsigned limit, bool with_unacknowledged, const RequestView *view,
                             Request ***ret, size_t *ret_n) {
        _cleanup_free_ char *sql = list_sql(states, n_states, with_unacknowledged, view);
        sqlite3_stmt *st, *approvals = NULL;
        Request **list = NULL;
        size_t n = 0;
        int k = 0;

        if (!sql)
                return -ENOMEM;
        /* Built from what the caller asked for: not kept, so that no caller can fill the
         * cache with variants of it. */
        int rc = sqlite3_prepare_v2(db->db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        if (view) {
                sqlite3_bind_int64(st, 1, (sqlite3_int64) view->uid);
                for (size_t i = 0; i < view->n_rules; i++)
                        sqlite3_bind_text(st, (int) (3 + i), view->rules[i], -1, SQLITE_STATIC);
        }
        sqlite3_bind_int64(st, 2, limit == 0 ? -1 : (sqlite3_int64) limit);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                Request **l = reallocarray(list, n + 1, sizeof(Request *));
                if (!l) {
                        k = -ENOMEM;
                        break;
                }
                list = l;
                k = request_from_row(st, &list[n]);
                if (k < 0)
                        break;
                n++;
        }
        if (k == 0 && rc != SQLITE_DONE)
                k = sqlite_errno(rc) ?: -EIO;
        sqlite3_finalize(st);
        /* One statement for all the approvals: a thousand prepares would cost more than the
         * list. */
        if (k == 0 && n > 0 && (rc = db_prepare(db, APPROVALS_SQL, &approvals)) < 0)
                k = rc;
        for (size_t i = 0; k == 0 && i < n; i++)
                k = load_approvals_with(approvals, list[i]);
        db_release(db, approvals);
        if (k < 0) {
                request_free_many(list, n);
                return k;
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

int db_list_requests(BrokerDb *db, const RequestState *states, size_t n_states, unsigned limit,
                     bool with_unacknowledged, uid_t uid, Request ***ret, size_t *ret_n) {
        RequestView own = { .uid = uid };
        return db_list_visible_requests(db, states, n_states, limit, with_unacknowledged,
                                        uid == (uid_t) -1 ? NULL : &own, ret, ret_n);
}

int db_find_grant(BrokerDb *db, uid_t uid, const char *service, const char *boot_id,
                  uint64_t now_boot, uint64_t now_real, int64_t *ret_id, uint64_t *ret_expires_at,
                  uint64_t *ret_deadline_boot) {
        sqlite3_stmt *st = db->find_grant;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        sqlite3_bind_int64(st, 1, uid);
        sqlite3_bind_text(st, 2, service, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, boot_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (sqlite3_int64) now_boot);
        sqlite3_bind_int64(st, 5, (sqlite3_int64) now_real);
        int rc = sqlite3_step(st);
        int r;
        if (rc == SQLITE_ROW) {
                *ret_id = sqlite3_column_int64(st, 0);
                *ret_expires_at = column_time(st, 1);
                *ret_deadline_boot = column_time(st, 2);
                r = 1;
        } else if (rc == SQLITE_DONE)
                r = 0;
        else
                r = sqlite_errno(rc) ?: -EIO;
        sqlite3_reset(st);
        return r;
}

int db_find_command_grants(BrokerDb *db, uid_t uid, const char *boot_id, uint64_t now_boot,
                           uint64_t now_real, Request ***ret, size_t *ret_n) {
        sqlite3_stmt *st;
        Request **list = NULL;
        size_t n = 0;
        int rc = db_prepare(db,
                            "SELECT " REQUEST_COLUMNS
                            " FROM requests INDEXED BY requests_active_by_expiry"
                            " WHERE state = 'active' AND requester_uid = ?1 AND service = 'sudo'"
                            " AND command IS NOT NULL"
                            " AND boot_id = ?2 AND deadline_boot > ?3 AND expires_at > ?4"
                            /* a one-shot one is consumed by its command: never active after it */
                            " ORDER BY expires_at DESC LIMIT 1000",
                            &st);
        if (rc < 0)
                return rc;
        sqlite3_bind_int64(st, 1, uid);
        sqlite3_bind_text(st, 2, boot_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (sqlite3_int64) now_boot);
        sqlite3_bind_int64(st, 4, (sqlite3_int64) now_real);
        int k = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                Request **l = reallocarray(list, n + 1, sizeof(Request *));
                if (!l) {
                        k = -ENOMEM;
                        break;
                }
                list = l;
                if ((k = request_from_row(st, &list[n])) < 0)
                        break;
                n++;
        }
        if (k == 0 && rc != SQLITE_DONE)
                k = sqlite_errno(rc) ?: -EIO;
        db_release(db, st);
        if (k < 0) {
                request_free_many(list, n);
                return k;
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

int db_next_deadline(BrokerDb *db, const char *boot_id, uint64_t *ret) {
        sqlite3_stmt *st;
        int rc = db_prepare(db,
                            "SELECT MIN(deadline_boot) FROM requests"
                            " WHERE state IN ('pending', 'active') AND boot_id = ?1",
                            &st);
        if (rc < 0)
                return rc;
        sqlite3_bind_text(st, 1, boot_id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        int r;
        if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
                *ret = (uint64_t) sqlite3_column_int64(st, 0);
                r = 1;
        } else
                r = rc == SQLITE_ROW ? 0 : (sqlite_errno(rc) ?: -EIO);
        db_release(db, st);
        return r;
}

int db_due_requests(BrokerDb *db, const char *boot_id, uint64_t now_boot, uint64_t now_real,
                    int64_t **ret, size_t *ret_n) {
        sqlite3_stmt *st;
        int64_t *ids = NULL;
        size_t n = 0;
        int k = 0;
        int rc = db_prepare(db,
                            "SELECT id FROM requests WHERE state IN ('pending', 'active')"
                            " AND (boot_id != ?1 OR deadline_boot <= ?2 OR deadline_at <= ?3)"
                            " ORDER BY deadline_boot",
                            &st);
        if (rc < 0)
                return rc;
        sqlite3_bind_text(st, 1, boot_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64) now_boot);
        sqlite3_bind_int64(st, 3, (sqlite3_int64) now_real);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                int64_t *l = reallocarray(ids, n + 1, sizeof(int64_t));
                if (!l) {
                        k = -ENOMEM;
                        break;
                }
                ids = l;
                ids[n++] = sqlite3_column_int64(st, 0);
        }
        if (k == 0 && rc != SQLITE_DONE)
                k = sqlite_errno(rc) ?: -EIO;
        db_release(db, st);
        if (k < 0) {
                free(ids);
                return k;
        }
        *ret = ids;
        *ret_n = n;
        return 0;
}

int db_count_open(BrokerDb *db, uid_t uid, unsigned *ret_active, unsigned *ret_pending) {
        sqlite3_stmt *st;
        int rc = db_prepare(
                db,
                "SELECT COALESCE(SUM(state = 'active'), 0), COALESCE(SUM(state = 'pending'), 0)"
                " FROM requests WHERE state IN ('pending', 'active')"
                " AND (?1 < 0 OR requester_uid = ?1)",
                &st);
        if (rc < 0)
                return rc;
        sqlite3_bind_int64(st, 1, uid == (uid_t) -1 ? -1 : (sqlite3_int64) uid);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                *ret_active = (unsigned) sqlite3_column_int64(st, 0);
                *ret_pending = (unsigned) sqlite3_column_int64(st, 1);
        }
        db_release(db, st);
        return rc == SQLITE_ROW ? 0 : (sqlite_errno(rc) ?: -EIO);
}

void request_free(Request *r) {
        if (!r)
                return;
        free(r->requester);
        free(r->service);
        free(r->reason);
        free(r->ticket);
        free(r->rule);
        free(r->ended_by);
        free(r->end_reason);
        free(r->policy_version);
        free(r->acknowledged_by);
        for (size_t i = 0; i < r->n_approvals; i++) {
                free(r->approvals[i].approver);
                free(r->approvals[i].comment);
                free(r->approvals[i].policy_version);
                free(r->approvals[i].statement);
                free(r->approvals[i].signature);
                free(r->approvals[i].signer_fingerprint);
        }
        free(r->approvals);
        free(r->command);
        strv_free(r->argv);
        free(r->run_as_user);
        free(r->run_as_group);
        free(r->cwd);
        free(r->command_identity);
        free(r);
}

void request_free_many(Request **r, size_t n) {
        for (size_t i = 0; i < n; i++)
                request_free(r[i]);
        free(r);
}

static bool dup_string(char **s) {
        return !*s || (*s = strdup(*s));
}

Request *request_dup(const Request *src) {
        Request *r = malloc(sizeof(Request));
        if (!r)
                return NULL;
        *r = *src;
        r->approvals = NULL;
        r->n_approvals = 0;
        r->argv = NULL;
        bool ok = dup_string(&r->requester) & dup_string(&r->service) & dup_string(&r->reason) &
                  dup_string(&r->ticket) & dup_string(&r->rule) & dup_string(&r->ended_by) &
                  dup_string(&r->end_reason) & dup_string(&r->policy_version) &
                  dup_string(&r->acknowledged_by) & dup_string(&r->command) &
                  dup_string(&r->run_as_user) & dup_string(&r->run_as_group) & dup_string(&r->cwd) &
                  dup_string(&r->command_identity);
        if (ok && src->argv)
                ok = (r->argv = strv_copy(src->argv));
        if (ok && src->n_approvals > 0) {
                r->approvals = calloc(src->n_approvals, sizeof(Approval));
                ok = r->approvals;
                for (size_t i = 0; ok && i < src->n_approvals; i++) {
                        r->approvals[i] = src->approvals[i];
                        r->n_approvals = i + 1;
                        ok = dup_string(&r->approvals[i].approver) &
                             dup_string(&r->approvals[i].comment) &
                             dup_string(&r->approvals[i].policy_version) &
                             dup_string(&r->approvals[i].statement) &
                             dup_string(&r->approvals[i].signature) &
                             dup_string(&r->approvals[i].signer_fingerprint);
                }
        }
        if (!ok) {
                /* A failed strdup left NULL; the rest are ours to free. */
                request_free(r);
                return NULL;
        }
        return r;
}
