/* SPDX-License-Identifier: MIT */
/* broker/grant.[ch], the lifecycle core, against a real sqlite database in a temporary
 * directory, with users from a table and clocks the test steps: every transition and every
 * refusal of the lifecycle, the audit chain verified after each test, approvals racing on
 * two connections, expiry racing a revoke, and effects that exist only once committed; the
 * limits on filings, free space and refusal logging; and ends that cannot be saved (a VFS
 * that fails writes on demand, sqlite's query_only, a second connection holding the lock)
 * enforced at once and written later. No root, no journald, no daemon. */

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "audit-verify.h"
#include "effects.h"
#include "fake-identity-resolver.h"
#include "grant.h"
#include "timeutil.h"

#define BOOT_A "11111111-1111-1111-1111-111111111111"
#define BOOT_B "22222222-2222-2222-2222-222222222222"

static char *root_groups[] = { (char *) "root" };
static char *alice_groups[] = { (char *) "alice", (char *) "dev" };
static char *bob_groups[] = { (char *) "bob", (char *) "lead" };
static char *carol_groups[] = { (char *) "carol", (char *) "lead" };
static char *erin_groups[] = { (char *) "erin", (char *) "dev", (char *) "lead" };
static const Identity root = {
        .name = (char *) "root", .uid = 0, .groups = root_groups, .n_groups = 1
};
static const Identity alice = {
        .name = (char *) "alice", .uid = 1001, .groups = alice_groups, .n_groups = 2
};
static const Identity bob = {
        .name = (char *) "bob", .uid = 1002, .groups = bob_groups, .n_groups = 2
};
static const Identity carol = {
        .name = (char *) "carol", .uid = 1003, .groups = carol_groups, .n_groups = 2
};
static const Identity erin = {
        .name = (char *) "erin", .uid = 1005, .groups = erin_groups, .n_groups = 3
};
static const Identity *const users[] = { &root, &alice, &bob, &carol, &erin, NULL };

static const char POLICY[] =
        "settings = { default_duration = \"1h\"; max_duration = \"8h\"; pending_ttl = \"1h\";\n"
        "             max_pending_per_user = 3; };\n"
        "rules = (\n"
        "  { name = \"one\"; services = [\"sudo\"]; requesters = [\"%dev\"]; approvers = [\"%lead\"];\n"
        "    approvals = 1; max_duration = \"2h\"; },\n"
        "  { name = \"two\"; services = [\"sshd\"]; requesters = [\"%dev\"]; approvers = [\"%lead\"];\n"
        "    approvals = 2; },\n"
        "  { name = \"auto\"; services = [\"db\"]; requesters = [\"%dev\"]; auto_approve = true; }\n"
        ");\n"
        "break_glass = { requesters = [\"%lead\"]; services = [\"sudo\"]; max_duration = \"15m\"; };\n";

/* ---- a store that fails on demand ----
 * A VFS over sqlite's default one, registered as the default before the database opens:
 * while fault_errno is set its writes and syncs fail as a full disk (SQLITE_FULL) or a file
 * system gone read-only (an I/O error whose errno is EROFS) make them fail, between two
 * calls of the core. Reads always work, as they do on a full disk. */
static int fault_errno;
static sqlite3_vfs fault_vfs, *base_vfs;

typedef struct FaultFile {
        sqlite3_file base;
        sqlite3_file *real; /* the default VFS's file, right after this struct */
} FaultFile;

static sqlite3_file *real_of(sqlite3_file *f) {
        return ((FaultFile *) f)->real;
}

static int fault_now(void) {
        return fault_errno == ENOSPC ? SQLITE_FULL : fault_errno ? SQLITE_IOERR_WRITE : SQLITE_OK;
}

static int fault_close(sqlite3_file *f) {
        return real_of(f)->pMethods->xClose(real_of(f));
}
static int fault_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off) {
        return real_of(f)->pMethods->xRead(real_of(f), buf, n, off);
}
static int fault_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off) {
        return fault_now() ?: real_of(f)->pMethods->xWrite(real_of(f), buf, n, off);
}
static int fault_truncate(sqlite3_file *f, sqlite3_int64 size) {
        return fault_now() ?: real_of(f)->pMethods->xTruncate(real_of(f), size);
}
static int fault_sync(sqlite3_file *f, int flags) {
        return fault_now() ?: real_of(f)->pMethods->xSync(real_of(f), flags);
}
static int fault_file_size(sqlite3_file *f, sqlite3_int64 *ret) {
        return real_of(f)->pMethods->xFileSize(real_of(f), ret);
}
static int fault_lock(sqlite3_file *f, int l) {
        return real_of(f)->pMethods->xLock(real_of(f), l);
}
static int fault_unlock(sqlite3_file *f, int l) {
        return real_of(f)->pMethods->xUnlock(real_of(f), l);
}
static int fault_check_reserved(sqlite3_file *f, int *ret) {
        return real_of(f)->pMethods->xCheckReservedLock(real_of(f), ret);
}
static int fault_file_control(sqlite3_file *f, int op, void *arg) {
        if (op == SQLITE_FCNTL_LAST_ERRNO && fault_errno) {
                *(int *) arg = fault_errno; /* as the unix VFS keeps it of a failed write */
                return SQLITE_OK;
        }
        return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}
static int fault_sector_size(sqlite3_file *f) {
        return real_of(f)->pMethods->xSectorSize(real_of(f));
}
static int fault_device(sqlite3_file *f) {
        return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}
static int fault_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **ret) {
        return real_of(f)->pMethods->xShmMap(real_of(f), region, size, extend, ret);
}
static int fault_shm_lock(sqlite3_file *f, int offset, int n, int flags) {
        return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}
static void fault_shm_barrier(sqlite3_file *f) {
        real_of(f)->pMethods->xShmBarrier(real_of(f));
}
static int fault_shm_unmap(sqlite3_file *f, int delete_flag) {
        return real_of(f)->pMethods->xShmUnmap(real_of(f), delete_flag);
}

static const sqlite3_io_methods fault_io = {
        .iVersion = 2, /* WAL's shared memory; no memory-mapped I/O */
        .xClose = fault_close,
        .xRead = fault_read,
        .xWrite = fault_write,
        .xTruncate = fault_truncate,
        .xSync = fault_sync,
        .xFileSize = fault_file_size,
        .xLock = fault_lock,
        .xUnlock = fault_unlock,
        .xCheckReservedLock = fault_check_reserved,
        .xFileControl = fault_file_control,
        .xSectorSize = fault_sector_size,
        .xDeviceCharacteristics = fault_device,
        .xShmMap = fault_shm_map,
        .xShmLock = fault_shm_lock,
        .xShmBarrier = fault_shm_barrier,
        .xShmUnmap = fault_shm_unmap,
};

static int fault_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
                      int *ret_flags) {
        FaultFile *ff = (FaultFile *) f;
        ff->real = (sqlite3_file *) &ff[1];
        int rc = base_vfs->xOpen(base_vfs, name, ff->real, flags, ret_flags);
        ff->base.pMethods = rc == SQLITE_OK ? &fault_io : NULL;
        return rc;
}

/* What sqlite3_system_errno() reports after a failed write. */
static int fault_last_error(sqlite3_vfs *vfs, int n, char *buf) {
        return fault_errno ?: base_vfs->xGetLastError(base_vfs, n, buf);
}

static void fault_vfs_install(void) {
        if (base_vfs)
                return;
        base_vfs = sqlite3_vfs_find(NULL);
        assert_non_null(base_vfs);
        fault_vfs = *base_vfs;
        fault_vfs.zName = "jit-fault";
        fault_vfs.szOsFile = (int) sizeof(FaultFile) + base_vfs->szOsFile;
        fault_vfs.xOpen = fault_open;
        fault_vfs.xGetLastError = fault_last_error;
        assert_int_equal(sqlite3_vfs_register(&fault_vfs, 1), SQLITE_OK);
}

/* The clocks the core reads: stepped by the tests. */
static uint64_t clock_real, clock_boot;

static uint64_t fake_now(clockid_t clock) {
        return clock == CLOCK_REALTIME ? clock_real : clock_boot;
}

static void step(uint64_t usec) {
        clock_real += usec;
        clock_boot += usec;
}

typedef struct World {
        char dir[64], path[96];
        BrokerDb *db;
        Policy *policy;
        EffectQueue effects;
        Grants g;
        unsigned reported;
        uint64_t space_available, space_total; /* the file system, as the core sees it */
} World;

static int fake_disk_space(void *userdata, uint64_t *ret_available, uint64_t *ret_total) {
        World *w = userdata;
        *ret_available = w->space_available;
        *ret_total = w->space_total;
        return 0;
}

static void count_report(void *userdata, int error, const char *what, int64_t id) {
        print_message("reported: %s %lld: %s\n", what, (long long) id, strerror(-error));
        ((World *) userdata)->reported++;
}

static int setup(void **state) {
        World *w = calloc(1, sizeof(World));
        char *error = NULL;

        assert_non_null(w);
        fault_vfs_install();
        fault_errno = 0;
        fake_resolver_install(users);
        clock_real = 1767225600ULL * USEC_PER_SEC; /* 2026-01-01 00:00 UTC */
        clock_boot = 1000 * USEC_PER_SEC;
        snprintf(w->dir, sizeof(w->dir), "/tmp/jit-lifecycle-XXXXXX");
        assert_non_null(mkdtemp(w->dir));
        snprintf(w->path, sizeof(w->path), "%s/jit.db", w->dir);
        assert_int_equal(db_open(w->path, &w->db, &error), 0);
        assert_int_equal(policy_parse(POLICY, strlen(POLICY), "policy.conf", &w->policy, &error),
                         0);
        w->g = (Grants){
                .db = w->db,
                .policy = w->policy,
                .boot_id = BOOT_A,
                .effects = &w->effects,
                .now = fake_now,
                .report = count_report,
                .report_userdata = w,
                .disk_space = fake_disk_space,
                .disk_space_userdata = w,
        };
        w->space_available = 10ULL << 30;
        w->space_total = 100ULL << 30;
        *state = w;
        return 0;
}

/* Reads the whole audit log and its anchor and verifies the chain. */
static void assert_audit_intact(BrokerDb *db) {
        sqlite3 *s = db_sqlite(db);
        sqlite3_stmt *st;
        AuditRecord records[512];
        size_t n = 0;
        AuditHead anchor = {};

        assert_int_equal(sqlite3_prepare_v2(s, "SELECT seq, hash FROM audit_anchor WHERE id = 1",
                                            -1, &st, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        anchor.seq = sqlite3_column_int64(st, 0);
        snprintf(anchor.hash, sizeof(anchor.hash), "%s", (const char *) sqlite3_column_text(st, 1));
        sqlite3_finalize(st);

        assert_int_equal(sqlite3_prepare_v2(s,
                                            "SELECT seq, at, event, actor, actor_uid, request_id,"
                                            " details, prev_hash, hash FROM audit ORDER BY seq",
                                            -1, &st, NULL),
                         SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW) {
                assert_true(n < 512);
                AuditRecord *r = &records[n++];
                r->seq = sqlite3_column_int64(st, 0);
                r->at = (uint64_t) sqlite3_column_int64(st, 1);
                r->event = strdup((const char *) sqlite3_column_text(st, 2));
                r->actor = strdup((const char *) sqlite3_column_text(st, 3));
                r->actor_uid = sqlite3_column_int64(st, 4);
                r->request_id = sqlite3_column_int64(st, 5);
                r->details = strdup((const char *) sqlite3_column_text(st, 6));
                snprintf(r->prev_hash, sizeof(r->prev_hash), "%s",
                         (const char *) sqlite3_column_text(st, 7));
                snprintf(r->hash, sizeof(r->hash), "%s", (const char *) sqlite3_column_text(st, 8));
        }
        sqlite3_finalize(st);
        AuditVerdict v;
        assert_int_equal(audit_verify(records, n, &anchor, NULL, 0, &v), 0);
        if (v.fault != AUDIT_INTACT)
                fail_msg("audit log not intact: %s", v.message);
        for (size_t i = 0; i < n; i++) {
                free(records[i].event);
                free(records[i].actor);
                free(records[i].details);
        }
}

/* How many audit records of this event the request has. */
static int audit_count(BrokerDb *db, int64_t id, const char *event) {
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(
                                 db_sqlite(db),
                                 "SELECT count(*) FROM audit WHERE request_id = ?1 AND event = ?2",
                                 -1, &st, NULL),
                         SQLITE_OK);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, event, -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        int n = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        return n;
}

static int teardown(void **state) {
        World *w = *state;
        fault_errno = 0;
        assert_audit_intact(w->db);
        assert_int_equal(w->g.tx_depth, 0);
        grants_done(&w->g);
        effect_queue_done(&w->effects);
        db_close(w->db);
        policy_free(w->policy);
        unlink(w->path);
        char wal[128];
        snprintf(wal, sizeof(wal), "%s-wal", w->path);
        unlink(wal);
        snprintf(wal, sizeof(wal), "%s-shm", w->path);
        unlink(wal);
        rmdir(w->dir);
        free(w);
        return 0;
}

static RequestState state_of(World *w, int64_t id) {
        Request *r = NULL;
        assert_int_equal(db_get_request(w->db, id, &r), 0);
        RequestState s = r->state;
        request_free(r);
        return s;
}

static bool has_grant(World *w, const Identity *u, const char *service) {
        int64_t id;
        uint64_t expires, deadline;
        int k = db_find_grant(w->db, u->uid, service, w->g.boot_id, clock_boot, clock_real, &id,
                              &expires, &deadline);
        assert_true(k >= 0);
        return k > 0;
}

/* The due effects, taken; the last one's event is what the test asks about. */
static JitEvent last_effect(World *w, bool *ret_ends_grant) {
        size_t n;
        Effect *due = effects_take_due(&w->effects, &n);
        assert_true(n > 0);
        JitEvent e = due[n - 1].event;
        if (ret_ends_grant)
                *ret_ends_grant = due[n - 1].ends_grant;
        effects_free(due, n);
        return e;
}

static int64_t file(World *w, const Identity *u, const char *service, uint64_t duration) {
        GrantAsk ask = { .service = service, .duration = duration, .reason = "rotate the certs" };
        GrantError e;
        int64_t id = 0;
        int k = grant_file(&w->g, u, &ask, &id, &e);
        if (k < 0)
                fail_msg("filing failed: %d %s", k, e.message);
        assert_true(id > 0);
        return id;
}

static void test_file_approve_revoke(void **state) {
        World *w = *state;
        GrantError e;
        int64_t id = file(w, &alice, "sudo", 0);

        assert_int_equal(state_of(w, id), REQUEST_PENDING);
        assert_int_equal(last_effect(w, NULL), JIT_EVENT_REQUESTED);
        assert_false(has_grant(w, &alice, "sudo"));

        assert_int_equal(grant_approve(&w->g, &alice, id, NULL, &e), -EPERM);
        assert_string_equal(e.message, "alice cannot approve their own request 1");
        assert_int_equal(e.code, JIT_ERROR_REFUSED);
        assert_int_equal(last_effect(w, NULL), JIT_EVENT_REFUSED);
        assert_int_equal(grant_approve(&w->g, &carol, 99, NULL, &e), -ENOENT);
        assert_string_equal(e.message, "no request 99");

        assert_int_equal(grant_approve(&w->g, &bob, id, "ok", &e), 0);
        assert_int_equal(state_of(w, id), REQUEST_ACTIVE);
        assert_int_equal(last_effect(w, NULL), JIT_EVENT_GRANTED);
        assert_true(has_grant(w, &alice, "sudo"));
        assert_false(has_grant(w, &alice, "sshd"));
        assert_false(has_grant(w, &bob, "sudo"));

        assert_int_equal(grant_approve(&w->g, &carol, id, NULL, &e), -EBUSY);
        assert_string_equal(e.message,
                            "request 1 is active; only pending requests can be approved");
        assert_int_equal(grant_end(&w->g, &carol, id, EVENT_DENY, "late", &e), -EBUSY);
        assert_string_equal(e.message, "request 1 is active and cannot be denied");

        bool ends;
        assert_int_equal(grant_end(&w->g, &bob, id, EVENT_REVOKE, "done", &e), 0);
        assert_int_equal(state_of(w, id), REQUEST_REVOKED);
        assert_int_equal(last_effect(w, &ends), JIT_EVENT_REVOKED);
        assert_true(ends);
        assert_false(has_grant(w, &alice, "sudo"));
        assert_int_equal(audit_count(w->db, id, "revoked"), 1);
}

static void test_refusals_change_nothing(void **state) {
        World *w = *state;
        GrantError e;
        int64_t id = file(w, &alice, "sudo", 0);

        /* alice is no approver; carol (lead) may not cancel alice's request. */
        assert_int_equal(grant_approve(&w->g, &root, id, NULL, &e), -EPERM);
        assert_string_equal(e.message, "root is not an approver for rule \"one\"");
        assert_int_equal(grant_end(&w->g, &carol, id, EVENT_CANCEL, NULL, &e), -EPERM);
        assert_string_equal(e.message, "carol may not cancel request 1");
        assert_int_equal(grant_end(&w->g, &alice, id, EVENT_DENY, "no", &e), -EPERM);
        assert_string_equal(e.message, "alice may not deny request 1");
        /* No rule for bob; over the cap. */
        GrantAsk ask = { .service = "sudo", .reason = "x" };
        int64_t other;
        assert_int_equal(grant_file(&w->g, &bob, &ask, &other, &e), -EPERM);
        ask.duration = 3 * 3600;
        assert_int_equal(grant_file(&w->g, &alice, &ask, &other, &e), -EPERM);
        assert_non_null(strstr(e.message, "2h"));
        /* The pending cap (3). */
        file(w, &alice, "sudo", 0);
        file(w, &alice, "sudo", 0);
        ask.duration = 0;
        assert_int_equal(grant_file(&w->g, &alice, &ask, &other, &e), -EPERM);
        assert_string_equal(
                e.message,
                "alice already has 3 pending requests (the limit is 3); cancel one first");

        assert_int_equal(state_of(w, id), REQUEST_PENDING);
        assert_int_equal(audit_count(w->db, id, "approval"), 0);
        /* A requester who is also an approver reviews nothing of their own. */
        int64_t mine = file(w, &erin, "sudo", 0);
        assert_int_equal(grant_end(&w->g, &erin, mine, EVENT_DENY, "no", &e), -EPERM);
        assert_int_equal(grant_approve(&w->g, &erin, mine, NULL, &e), -EPERM);
        assert_int_equal(grant_end(&w->g, &erin, mine, EVENT_CANCEL, NULL, &e), 0);
        assert_int_equal(state_of(w, mine), REQUEST_CANCELLED);
        assert_int_equal(grant_end(&w->g, &bob, id, EVENT_DENY, "not now", &e), 0);
        assert_int_equal(state_of(w, id), REQUEST_DENIED);
}

static void test_two_of_n_counts_each_approver_once(void **state) {
        World *w = *state;
        GrantError e;
        int64_t id = file(w, &alice, "sshd", 0);

        assert_int_equal(grant_approve(&w->g, &bob, id, NULL, &e), 0);
        assert_int_equal(state_of(w, id), REQUEST_PENDING);
        assert_int_equal(grant_approve(&w->g, &bob, id, NULL, &e), -EPERM);
        assert_string_equal(e.message,
                            "bob has already approved request 1; an approver counts once");
        assert_false(has_grant(w, &alice, "sshd"));
        assert_int_equal(grant_approve(&w->g, &carol, id, NULL, &e), 0);
        assert_int_equal(state_of(w, id), REQUEST_ACTIVE);
        assert_int_equal(audit_count(w->db, id, "approval"), 2);
        assert_int_equal(audit_count(w->db, id, "granted"), 1);
}

static void assert_same_request(const Request *a, const Request *b) {
        assert_int_equal(a->id, b->id);
        assert_int_equal(a->state, b->state);
        assert_int_equal(a->activated_at, b->activated_at);
        assert_int_equal(a->expires_at, b->expires_at);
        assert_string_equal(a->boot_id, b->boot_id);
        assert_int_equal(a->deadline_boot, b->deadline_boot);
        assert_int_equal(a->deadline_at, b->deadline_at);
        assert_int_equal(a->approvals_required, b->approvals_required);
        assert_int_equal(a->n_approvals, b->n_approvals);
        for (size_t i = 0; i < a->n_approvals; i++) {
                const Approval *x = &a->approvals[i], *y = &b->approvals[i];
                assert_string_equal(x->approver, y->approver);
                assert_int_equal(x->approver_uid, y->approver_uid);
                assert_int_equal(x->at, y->at);
                assert_int_equal(x->by_rule, y->by_rule);
                assert_true((x->comment == NULL) == (y->comment == NULL));
                if (x->comment)
                        assert_string_equal(x->comment, y->comment);
                assert_string_equal(x->policy_version, y->policy_version);
        }
}

/* What an approval hands back for its reply is what reading the request would give, the
 * approvals in the store's order (time, then uid) even when the clock stepped back. */
static void test_approve_saved_is_the_stored_request(void **state) {
        World *w = *state;
        GrantError e;
        int64_t id = file(w, &alice, "sshd", 0);
        Request *saved = NULL, *read = NULL;

        assert_int_equal(grant_approve_saved(&w->g, &bob, id, "first", &saved, &e), 0);
        assert_non_null(saved);
        assert_int_equal(db_get_request(w->db, id, &read), 0);
        assert_int_equal(saved->state, REQUEST_PENDING);
        assert_same_request(saved, read);
        request_free(saved);
        request_free(read);

        clock_real -= 10 * USEC_PER_SEC; /* the wall clock stepped back */
        saved = read = NULL;
        assert_int_equal(grant_approve_saved(&w->g, &carol, id, NULL, &saved, &e), 0);
        assert_non_null(saved);
        assert_int_equal(db_get_request(w->db, id, &read), 0);
        assert_int_equal(saved->state, REQUEST_ACTIVE);
        assert_string_equal(saved->approvals[0].approver, "carol");
        assert_same_request(saved, read);
        request_free(saved);
        request_free(read);

        /* A refusal hands back nothing. */
        saved = NULL;
        assert_int_equal(grant_approve_saved(&w->g, &bob, id, NULL, &saved, &e), -EBUSY);
        assert_null(saved);
}

static void test_auto_approval_and_break_glass(void **state) {
        World *w = *state;
        GrantError e;
        int64_t id = file(w, &alice, "db", 0);
        assert_int_equal(state_of(w, id), REQUEST_ACTIVE);
        assert_int_equal(audit_count(w->db, id, "auto-approved"), 1);

        GrantAsk ask = { .service = "sudo", .reason = "outage" };
        int64_t bg;
        assert_int_equal(grant_break_glass(&w->g, &alice, &ask, &bg, &e), -EPERM);
        assert_int_equal(grant_break_glass(&w->g, &bob, &ask, &bg, &e), 0);
        assert_int_equal(state_of(w, bg), REQUEST_ACTIVE);
        assert_true(has_grant(w, &bob, "sudo"));
        assert_int_equal(grant_acknowledge(&w->g, &bob, bg, &e), -EPERM);
        assert_int_equal(grant_acknowledge(&w->g, &alice, bg, &e), -EPERM);
        assert_int_equal(grant_acknowledge(&w->g, &carol, bg, &e), 0);
        assert_int_equal(grant_acknowledge(&w->g, &root, bg, &e), -EBUSY);
        assert_int_equal(grant_acknowledge(&w->g, &carol, id, &e), -EBUSY);
}

static void test_expiry_and_pending_timeout(void **state) {
        World *w = *state;
        GrantError e;
        int64_t granted = file(w, &alice, "sudo", 600), waiting = file(w, &alice, "sshd", 0);
        assert_int_equal(grant_approve(&w->g, &bob, granted, NULL, &e), 0);

        step(599 * USEC_PER_SEC);
        assert_int_equal(grant_end_due(&w->g), 0);
        assert_true(has_grant(w, &alice, "sudo"));
        step(USEC_PER_SEC);
        /* Past its deadline, the lookup refuses it before the expiry has run. */
        assert_false(has_grant(w, &alice, "sudo"));
        assert_int_equal(state_of(w, granted), REQUEST_ACTIVE);
        assert_int_equal(grant_end_due(&w->g), 0);
        assert_int_equal(state_of(w, granted), REQUEST_EXPIRED);
        bool ends;
        assert_int_equal(last_effect(w, &ends), JIT_EVENT_EXPIRED);
        assert_true(ends);
        assert_int_equal(state_of(w, waiting), REQUEST_PENDING);

        step(3600 * USEC_PER_SEC);
        assert_int_equal(grant_end_due(&w->g), 0);
        assert_int_equal(state_of(w, waiting), REQUEST_TIMED_OUT);
        assert_int_equal(grant_approve(&w->g, &bob, waiting, NULL, &e), -EBUSY);
        /* Nothing left to end: no second record. */
        assert_int_equal(grant_end_due(&w->g), 0);
        assert_int_equal(audit_count(w->db, granted, "expired"), 1);
        assert_int_equal(audit_count(w->db, waiting, "timed-out"), 1);
}

static void test_expiry_racing_a_revoke(void **state) {
        World *w = *state;
        GrantError e;
        int64_t first = file(w, &alice, "sudo", 60), second = file(w, &alice, "sudo", 60);
        assert_int_equal(grant_approve(&w->g, &bob, first, NULL, &e), 0);
        assert_int_equal(grant_approve(&w->g, &bob, second, NULL, &e), 0);
        step(61 * USEC_PER_SEC);

        /* The revoke arrives before the timer: it wins, and the expiry finds nothing. */
        assert_int_equal(grant_end(&w->g, &bob, first, EVENT_REVOKE, NULL, &e), 0);
        /* The timer first: the revoke comes too late. */
        assert_int_equal(grant_end_due(&w->g), 0);
        assert_int_equal(grant_end(&w->g, &bob, second, EVENT_REVOKE, NULL, &e), -EBUSY);
        assert_string_equal(e.message, "request 2 is expired and cannot be revoked");

        assert_int_equal(state_of(w, first), REQUEST_REVOKED);
        assert_int_equal(state_of(w, second), REQUEST_EXPIRED);
        assert_int_equal(
                audit_count(w->db, first, "expired") + audit_count(w->db, first, "revoked"), 1);
        assert_int_equal(
                audit_count(w->db, second, "expired") + audit_count(w->db, second, "revoked"), 1);
}

static void test_reboot(void **state) {
        World *w = *state;
        GrantError e;
        int64_t granted = file(w, &alice, "sudo", 0), waiting = file(w, &alice, "sshd", 0);
        assert_int_equal(grant_approve(&w->g, &bob, granted, NULL, &e), 0);

        /* The next boot: boot-time starts again. */
        w->g.boot_id = BOOT_B;
        clock_boot = 5 * USEC_PER_SEC;
        assert_false(has_grant(w, &alice, "sudo"));
        assert_int_equal(grant_end_due(&w->g), 0);
        Request *r = NULL;
        assert_int_equal(db_get_request(w->db, granted, &r), 0);
        assert_int_equal(r->state, REQUEST_EXPIRED);
        assert_string_equal(r->end_reason, "the host rebooted");
        request_free(r);
        /* A pending request waits out its time, re-based on this boot's clock. */
        assert_int_equal(db_get_request(w->db, waiting, &r), 0);
        assert_int_equal(r->state, REQUEST_PENDING);
        assert_string_equal(r->boot_id, BOOT_B);
        assert_int_equal(r->deadline_boot, clock_boot + 3600 * USEC_PER_SEC);
        request_free(r);
}

static void test_reload_withdraws_and_raises(void **state) {
        World *w = *state;
        GrantError e;
        int64_t granted = file(w, &alice, "sudo", 0), waiting = file(w, &alice, "sshd", 0),
                capped = file(w, &alice, "sudo", 7200);
        assert_int_equal(grant_approve(&w->g, &bob, granted, NULL, &e), 0);

        /* sudo's cap falls to 1h, sshd now needs 3 approvals. */
        static const char tighter[] =
                "rules = (\n"
                "  { name = \"one\"; services = [\"sudo\"]; requesters = [\"%dev\"];\n"
                "    approvers = [\"%lead\"]; max_duration = \"1h\"; },\n"
                "  { name = \"two\"; services = [\"sshd\"]; requesters = [\"%dev\"];\n"
                "    approvers = [\"%lead\", \"root\"]; approvals = 3; }\n"
                ");\n";
        Policy *p = NULL;
        char *error = NULL;
        assert_int_equal(policy_parse(tighter, strlen(tighter), "policy.conf", &p, &error), 0);
        w->g.policy = p;
        grant_withdraw_disallowed(&w->g);
        assert_int_equal(state_of(w, granted), REQUEST_ACTIVE); /* 1h default: still allowed */
        assert_int_equal(state_of(w, capped), REQUEST_DENIED);
        assert_int_equal(audit_count(w->db, capped, "withdrawn-by-policy"), 1);

        assert_int_equal(grant_approve(&w->g, &bob, waiting, NULL, &e), 0);
        assert_int_equal(grant_approve(&w->g, &carol, waiting, NULL, &e), 0);
        assert_int_equal(state_of(w, waiting), REQUEST_PENDING);
        assert_int_equal(grant_approve(&w->g, &root, waiting, NULL, &e), 0);
        assert_int_equal(state_of(w, waiting), REQUEST_ACTIVE);
        w->g.policy = w->policy;
        policy_free(p);
        assert_int_equal(w->reported, 0);
}

static void test_one_shot_consumed_once(void **state) {
        World *w = *state;
        GrantError e;
        GrantAsk ask = { .service = "sudo", .reason = "one command", .once = true };
        int64_t id;
        assert_int_equal(grant_file(&w->g, &alice, &ask, &id, &e), 0);
        assert_int_equal(grant_approve(&w->g, &bob, id, NULL, &e), 0);

        /* Joined to an outer transaction, as the session close does. */
        assert_int_equal(grants_begin(&w->g), 0);
        assert_int_equal(grant_consume(&w->g, id, &e), 0);
        size_t n;
        Effect *due = effects_take_due(&w->effects, &n);
        effects_free(due, n);
        assert_null(effects_take_due(&w->effects, &n)); /* staged, not due */
        assert_int_equal(grants_commit(&w->g), 0);
        assert_int_equal(last_effect(w, NULL), JIT_EVENT_CONSUMED);
        assert_int_equal(state_of(w, id), REQUEST_CONSUMED);
        assert_int_equal(grant_consume(&w->g, id, &e), 0); /* nothing more to use up */
        assert_int_equal(audit_count(w->db, id, "consumed"), 1);
}

static void test_rollback_drops_effects(void **state) {
        World *w = *state;
        GrantError e;
        int64_t id = file(w, &alice, "sudo", 0);
        size_t n;
        Effect *due = effects_take_due(&w->effects, &n);
        effects_free(due, n);

        assert_int_equal(grants_begin(&w->g), 0);
        assert_int_equal(grant_approve(&w->g, &bob, id, NULL, &e), 0); /* joins, not committed */
        grants_rollback(&w->g);
        assert_null(effects_take_due(&w->effects, &n));
        assert_int_equal(state_of(w, id), REQUEST_PENDING);
        assert_int_equal(audit_count(w->db, id, "approval"), 0);

        /* A change that fails inside a joined transaction undoes all of it: what the outer
         * transaction did before is not committed by its caller's commit. */
        assert_int_equal(grants_begin(&w->g), 0);
        assert_int_equal(grant_approve(&w->g, &bob, id, NULL, &e), 0);
        assert_int_equal(grant_approve(&w->g, &bob, id + 100, NULL, &e), -ENOENT);
        assert_int_equal(grants_commit(&w->g), -EINVAL);
        assert_int_equal(w->g.tx_depth, 0);
        assert_int_equal(state_of(w, id), REQUEST_PENDING);
        assert_null(effects_take_due(&w->effects, &n));
}

/* Two approvers of a 2-of-n rule approve at the same moment, each through a connection of
 * its own: the grant is active once, with two approvals and one "granted" record. */
typedef struct Racer {
        const char *path;
        const Identity *who;
        int64_t id;
        int result;
        pthread_barrier_t *start;
} Racer;

static void *race(void *userdata) {
        Racer *r = userdata;
        BrokerDb *db = NULL;
        char *error = NULL;
        Policy *p = NULL;
        EffectQueue q = {};
        GrantError e;

        if (db_open(r->path, &db, &error) < 0 ||
            policy_parse(POLICY, strlen(POLICY), "policy.conf", &p, &error) < 0) {
                r->result = -EIO;
                return NULL;
        }
        Grants g = { .db = db, .policy = p, .boot_id = BOOT_A, .effects = &q, .now = fake_now };
        pthread_barrier_wait(r->start);
        r->result = grant_approve(&g, r->who, r->id, NULL, &e);
        effect_queue_done(&q);
        policy_free(p);
        db_close(db);
        return NULL;
}

static void test_concurrent_approvals(void **state) {
        World *w = *state;
        int64_t id = file(w, &alice, "sshd", 0);
        pthread_barrier_t start;
        pthread_t t[2];
        Racer racers[2] = {
                { .path = w->path, .who = &bob, .id = id, .start = &start },
                { .path = w->path, .who = &carol, .id = id, .start = &start },
        };

        assert_int_equal(pthread_barrier_init(&start, NULL, 2), 0);
        for (int i = 0; i < 2; i++)
                assert_int_equal(pthread_create(&t[i], NULL, race, &racers[i]), 0);
        for (int i = 0; i < 2; i++)
                pthread_join(t[i], NULL);
        pthread_barrier_destroy(&start);

        assert_int_equal(racers[0].result, 0);
        assert_int_equal(racers[1].result, 0);
        assert_int_equal(state_of(w, id), REQUEST_ACTIVE);
        assert_int_equal(audit_count(w->db, id, "approval"), 2);
        assert_int_equal(audit_count(w->db, id, "granted"), 1);
}

/* Drops the due effects; returns how many of them were of event (and the last one's
 * ends_grant). */
static size_t drain(World *w, JitEvent event, bool *ret_ends_grant) {
        size_t n, found = 0;
        Effect *due = effects_take_due(&w->effects, &n);
        for (size_t i = 0; i < n; i++)
                if (due[i].event == event) {
                        found++;
                        if (ret_ends_grant)
                                *ret_ends_grant = due[i].ends_grant;
                }
        effects_free(due, n);
        return found;
}

static size_t count_requests(World *w) {
        Request **list = NULL;
        size_t n = 0;
        assert_int_equal(db_list_requests(w->db, NULL, 0, 0, false, (uid_t) -1, &list, &n), 0);
        request_free_many(list, n);
        return n;
}

/* The details of the request's only audit record of event, as stored. */
static char *audit_details(BrokerDb *db, int64_t id, const char *event) {
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(db_sqlite(db),
                                            "SELECT details FROM audit WHERE request_id = ?1"
                                            " AND event = ?2",
                                            -1, &st, NULL),
                         SQLITE_OK);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, event, -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        char *d = strdup((const char *) sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        return d;
}

static void test_filing_rate_counts_cancelled(void **state) {
        World *w = *state;
        GrantError e;
        GrantAsk ask = { .service = "sudo", .reason = "again" };
        int64_t id;

        w->policy->max_filings_per_hour = 3;
        for (int i = 0; i < 3; i++) {
                id = file(w, &alice, "sudo", 0);
                assert_int_equal(grant_end(&w->g, &alice, id, EVENT_CANCEL, NULL, &e), 0);
                step(60 * USEC_PER_SEC);
        }
        /* Cancelled ones count: nothing is pending, yet the fourth is refused. */
        assert_int_equal(grant_file(&w->g, &alice, &ask, &id, &e), -EPERM);
        assert_int_equal(e.code, JIT_ERROR_REFUSED);
        assert_string_equal(e.message,
                            "alice filed 3 requests in the last hour, the most "
                            "settings.max_filings_per_hour allows (cancelled ones count); try "
                            "again later");
        assert_int_equal(count_requests(w), 3);
        /* Another user has a count of their own; break-glass is neither counted nor limited. */
        id = file(w, &erin, "sudo", 0);
        for (int i = 0; i < 4; i++)
                assert_int_equal(grant_break_glass(&w->g, &bob, &ask, &id, &e), 0);
        /* An hour after the first filing, one is free again. */
        step(3600 * USEC_PER_SEC - 3 * 60 * USEC_PER_SEC);
        assert_int_equal(grant_file(&w->g, &alice, &ask, &id, &e), -EPERM);
        step(USEC_PER_SEC);
        assert_int_equal(grant_file(&w->g, &alice, &ask, &id, &e), 0);
        assert_int_equal(grant_file(&w->g, &alice, &ask, &id, &e), -EPERM);
}

static void test_disk_reserve_refuses_filing_not_ending(void **state) {
        World *w = *state;
        GrantError e;
        GrantAsk ask = { .service = "sudo", .reason = "more" };
        int64_t granted = file(w, &alice, "sudo", 0), waiting = file(w, &alice, "sshd", 0), id;
        assert_int_equal(grant_approve(&w->g, &bob, granted, NULL, &e), 0);

        /* The default reserve is 64M. */
        w->space_available = 1 << 20;
        assert_int_equal(grant_file(&w->g, &alice, &ask, &id, &e), -EPERM);
        assert_int_equal(e.code, JIT_ERROR_REFUSED);
        assert_string_equal(e.message,
                            "disk nearly full: new requests are refused until space is freed; "
                            "ending grants still works (1.0M free, settings.disk_reserve keeps "
                            "64.0M)");
        assert_int_equal(count_requests(w), 2);
        /* What is under way goes on: an approval, a revoke, a deny; and break-glass. */
        assert_int_equal(grant_approve(&w->g, &bob, waiting, NULL, &e), 0);
        assert_int_equal(grant_end(&w->g, &bob, granted, EVENT_REVOKE, "disk", &e), 0);
        assert_int_equal(grant_break_glass(&w->g, &bob, &ask, &id, &e), 0);

        /* A share of the file system: 5% of 100G is 5G. */
        w->policy->disk_reserve_percent = 5;
        w->space_available = 4ULL << 30;
        assert_int_equal(grant_file(&w->g, &alice, &ask, &id, &e), -EPERM);
        assert_non_null(strstr(e.message, "(4.0G free, settings.disk_reserve keeps 5.0G)"));
        w->space_available = 6ULL << 30;
        assert_int_equal(grant_file(&w->g, &alice, &ask, &id, &e), 0);
        /* No reserve at all. */
        w->policy->disk_reserve_percent = 0;
        w->policy->disk_reserve = 0;
        w->space_available = 0;
        assert_int_equal(grant_file(&w->g, &alice, &ask, &id, &e), 0);
}

static void test_revoke_held_while_the_disk_is_full(void **state) {
        World *w = *state;
        GrantError e;
        int64_t id = file(w, &alice, "sudo", 0);
        assert_int_equal(grant_approve(&w->g, &bob, id, NULL, &e), 0);
        (void) drain(w, JIT_EVENT_GRANTED, NULL);
        uint64_t ended_at = clock_real;

        fault_errno = ENOSPC;
        assert_int_equal(grant_end(&w->g, &bob, id, EVENT_REVOKE, "leaving", &e), -ENOSPC);
        assert_true(e.held);
        assert_int_equal(e.code, JIT_ERROR_INTERNAL);
        assert_string_equal(e.message,
                            "request 1 is revoked and its access ended now, but the change is "
                            "not saved yet: the disk is full (the broker retries every 5 s)");
        /* Enforced: held, and the grant's sessions are acted on at once. */
        assert_true(grants_ended_in_memory(&w->g, id));
        assert_int_equal(grants_held_find(&w->g, id)->state, REQUEST_REVOKED);
        bool ends = false;
        assert_int_equal(drain(w, JIT_EVENT_REVOKED, &ends), 1);
        assert_true(ends);
        /* Not saved: the row still says active, and no record was written. */
        assert_int_equal(state_of(w, id), REQUEST_ACTIVE);
        assert_int_equal(audit_count(w->db, id, "revoked"), 0);
        /* It is ended all the same for every change of the core. */
        assert_int_equal(grant_end(&w->g, &root, id, EVENT_REVOKE, NULL, &e), -EBUSY);
        assert_string_equal(e.message,
                            "request 1 is revoked (not saved yet) and cannot be revoked");
        assert_false(e.held);

        /* Still full: nothing written, tried again later. */
        step(5 * USEC_PER_SEC);
        assert_int_equal(grants_retry_held(&w->g), 1);
        assert_int_equal(grants_held_find(&w->g, id)->attempts, 2);
        assert_int_equal(state_of(w, id), REQUEST_ACTIVE);

        /* Space again: written once, with its own time and actor. */
        fault_errno = 0;
        step(5 * USEC_PER_SEC);
        assert_int_equal(grants_retry_held(&w->g), 0);
        assert_false(grants_ended_in_memory(&w->g, id));
        Request *r = NULL;
        assert_int_equal(db_get_request(w->db, id, &r), 0);
        assert_int_equal(r->state, REQUEST_REVOKED);
        assert_int_equal(r->ended_at, ended_at);
        assert_string_equal(r->ended_by, "bob");
        assert_string_equal(r->end_reason, "leaving");
        request_free(r);
        assert_int_equal(audit_count(w->db, id, "revoked"), 1);
        char *details = audit_details(w->db, id, "revoked");
        assert_non_null(strstr(details, "\"held\":{\"ended_at\":\"2026-01-01T00:00:00Z\""));
        assert_non_null(strstr(details, "\"attempts\":2,\"error\":\"the disk is full\""));
        free(details);
        ends = true;
        assert_int_equal(drain(w, JIT_EVENT_REVOKED, &ends), 1);
        assert_false(ends); /* the sessions were ended when it was held */
        assert_int_equal(grants_retry_held(&w->g), 0);
        assert_int_equal(audit_count(w->db, id, "revoked"), 1);
}

static void test_filing_and_approval_fail_cleanly_when_full(void **state) {
        World *w = *state;
        GrantError e;
        GrantAsk ask = { .service = "sudo", .reason = "full" };
        int64_t id = file(w, &alice, "sudo", 0), other;

        fault_errno = ENOSPC;
        assert_int_equal(grant_file(&w->g, &alice, &ask, &other, &e), -ENOSPC);
        assert_int_equal(e.code, JIT_ERROR_INTERNAL);
        assert_false(e.held);
        assert_string_equal(e.message, "the broker failed while saving the request: the disk is "
                                       "full; nothing was changed");
        assert_int_equal(grant_approve(&w->g, &bob, id, NULL, &e), -ENOSPC);
        assert_string_equal(e.message, "the broker failed while saving the approval: the disk "
                                       "is full; nothing was changed");
        assert_int_equal(drain(w, JIT_EVENT_GRANTED, NULL), 0);
        fault_errno = 0;
        assert_int_equal(count_requests(w), 1);
        assert_int_equal(state_of(w, id), REQUEST_PENDING);
        assert_false(has_grant(w, &alice, "sudo"));
        assert_int_equal(audit_count(w->db, id, "approval"), 0);

        /* A file system gone read-only says so. */
        fault_errno = EROFS;
        assert_int_equal(grant_approve(&w->g, &bob, id, NULL, &e), -EROFS);
        assert_string_equal(e.message, "the broker failed while saving the approval: the "
                                       "database is read-only; nothing was changed");
        fault_errno = 0;
        assert_int_equal(state_of(w, id), REQUEST_PENDING);
}

static void test_deny_held_when_read_only(void **state) {
        World *w = *state;
        GrantError e;
        int64_t id = file(w, &alice, "sudo", 0);

        /* sqlite's own read-only state: not even the transaction starts. */
        assert_int_equal(sqlite3_exec(db_sqlite(w->db), "PRAGMA query_only = 1", NULL, NULL, NULL),
                         SQLITE_OK);
        assert_int_equal(grant_end(&w->g, &bob, id, EVENT_DENY, "no", &e), -EROFS);
        assert_true(e.held);
        assert_string_equal(e.message, "request 1 is denied now, but the change is not saved "
                                       "yet: the database is read-only (the broker retries "
                                       "every 5 s)");
        /* Nothing else is written meanwhile, and says why. */
        assert_int_equal(grant_approve(&w->g, &carol, id, NULL, &e), -EROFS);
        assert_string_equal(e.message, "the broker failed while starting a transaction: the "
                                       "database is read-only; nothing was changed");
        assert_int_equal(grant_end(&w->g, &alice, id, EVENT_CANCEL, NULL, &e), -EBUSY);
        assert_string_equal(e.message,
                            "request 1 is denied (not saved yet) and cannot be cancelled");
        step(2 * 3600 * USEC_PER_SEC);
        (void) grant_end_due(&w->g);
        assert_int_equal(state_of(w, id), REQUEST_PENDING);

        /* Writable again, before the retry came: denied for every decision all the same. */
        assert_int_equal(sqlite3_exec(db_sqlite(w->db), "PRAGMA query_only = 0", NULL, NULL, NULL),
                         SQLITE_OK);
        assert_int_equal(grant_approve(&w->g, &carol, id, NULL, &e), -EBUSY);
        assert_string_equal(e.message,
                            "request 1 is denied; only pending requests can be approved");
        assert_int_equal(state_of(w, id), REQUEST_PENDING);
        assert_int_equal(grant_end_due(&w->g), 0);
        assert_int_equal(state_of(w, id), REQUEST_PENDING);
        assert_int_equal(grants_retry_held(&w->g), 0);
        assert_int_equal(state_of(w, id), REQUEST_DENIED);
        assert_int_equal(audit_count(w->db, id, "denied"), 1);
        assert_int_equal(audit_count(w->db, id, "timed-out"), 0);
        assert_int_equal(grant_end_due(&w->g), 0);
        assert_int_equal(audit_count(w->db, id, "timed-out"), 0);
}

static void test_revoke_held_when_locked(void **state) {
        World *w = *state;
        GrantError e;
        GrantAsk ask = { .service = "sudo", .reason = "locked" };
        int64_t id = file(w, &alice, "sudo", 0), other;
        assert_int_equal(grant_approve(&w->g, &bob, id, NULL, &e), 0);

        /* Another process holds the write lock past the busy timeout. */
        sqlite3 *holder = NULL;
        assert_int_equal(sqlite3_open(w->path, &holder), SQLITE_OK);
        assert_int_equal(sqlite3_exec(holder, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(grant_end(&w->g, &alice, id, EVENT_REVOKE, NULL, &e), -EBUSY);
        assert_true(e.held);
        assert_string_equal(e.message,
                            "request 1 is revoked and its access ended now, but the change is "
                            "not saved yet: the database is locked by another process (the "
                            "broker retries every 5 s)");
        assert_true(grants_ended_in_memory(&w->g, id));
        assert_int_equal(grant_file(&w->g, &alice, &ask, &other, &e), -EBUSY);
        assert_int_equal(e.code, JIT_ERROR_INTERNAL);
        assert_string_equal(e.message, "the broker failed while starting a transaction: the "
                                       "database is locked by another process; nothing was "
                                       "changed");
        assert_int_equal(grants_retry_held(&w->g), 1);

        assert_int_equal(sqlite3_exec(holder, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(holder);
        assert_int_equal(grants_retry_held(&w->g), 0);
        assert_int_equal(state_of(w, id), REQUEST_REVOKED);
        assert_int_equal(audit_count(w->db, id, "revoked"), 1);
}

static void test_expiry_and_withdrawal_held(void **state) {
        World *w = *state;
        GrantError e;
        int64_t expiring = file(w, &alice, "sudo", 600), withdrawn = file(w, &alice, "sudo", 7200);
        assert_int_equal(grant_approve(&w->g, &bob, expiring, NULL, &e), 0);
        assert_int_equal(grant_approve(&w->g, &bob, withdrawn, NULL, &e), 0);
        (void) drain(w, JIT_EVENT_GRANTED, NULL);

        fault_errno = ENOSPC;
        step(601 * USEC_PER_SEC);
        assert_int_equal(grant_end_due(&w->g), 0); /* held is not a failure */
        assert_true(grants_ended_in_memory(&w->g, expiring));
        bool ends = false;
        assert_int_equal(drain(w, JIT_EVENT_EXPIRED, &ends), 1);
        assert_true(ends);
        /* The timer finds it due again: it is held already, nothing more happens. */
        assert_int_equal(grant_end_due(&w->g), 0);
        assert_int_equal(drain(w, JIT_EVENT_EXPIRED, NULL), 0);

        /* A reload that no longer allows the other grant: withdrawn, held as well. */
        static const char tighter[] =
                "rules = ( { name = \"one\"; services = [\"sudo\"]; requesters = [\"%dev\"];\n"
                "    approvers = [\"%lead\"]; max_duration = \"1h\"; } );\n";
        Policy *p = NULL;
        char *error = NULL;
        assert_int_equal(policy_parse(tighter, strlen(tighter), "policy.conf", &p, &error), 0);
        w->g.policy = p;
        grant_withdraw_disallowed(&w->g);
        assert_true(grants_ended_in_memory(&w->g, withdrawn));
        assert_int_equal(drain(w, JIT_EVENT_WITHDRAWN, &ends), 1);
        assert_true(ends);
        /* Again: held already, not withdrawn twice. */
        grant_withdraw_disallowed(&w->g);
        assert_int_equal(drain(w, JIT_EVENT_WITHDRAWN, NULL), 0);

        fault_errno = 0;
        assert_int_equal(grants_retry_held(&w->g), 0);
        assert_int_equal(state_of(w, expiring), REQUEST_EXPIRED);
        assert_int_equal(state_of(w, withdrawn), REQUEST_REVOKED);
        assert_int_equal(audit_count(w->db, expiring, "expired"), 1);
        assert_int_equal(audit_count(w->db, withdrawn, "withdrawn-by-policy"), 1);
        assert_int_equal(grant_end_due(&w->g), 0);
        assert_int_equal(audit_count(w->db, expiring, "expired"), 1);
        w->g.policy = w->policy;
        policy_free(p);
}

static void test_refusals_logged_at_a_bounded_rate(void **state) {
        World *w = *state;
        GrantError e;
        int64_t id = file(w, &alice, "sudo", 0);
        (void) drain(w, JIT_EVENT_REQUESTED, NULL);

        for (int i = 0; i < 50; i++)
                assert_int_equal(grant_approve(&w->g, &alice, id, NULL, &e), -EPERM);
        /* The reply is the same every time; the journal gets the first LOG_LIMIT_BURST. */
        assert_string_equal(e.message, "alice cannot approve their own request 1");
        assert_int_equal(drain(w, JIT_EVENT_REFUSED, NULL), LOG_LIMIT_BURST);
        /* Someone else is not held back by alice. */
        assert_int_equal(grant_approve(&w->g, &root, id, NULL, &e), -EPERM);
        assert_int_equal(drain(w, JIT_EVENT_REFUSED, NULL), 1);

        /* The window ends: one summary of what was held back. */
        uint64_t next = effects_flush_suppressed(&w->effects, clock_boot);
        assert_int_equal(next, clock_boot + LOG_LIMIT_INTERVAL_USEC);
        step(LOG_LIMIT_INTERVAL_USEC);
        assert_int_equal(effects_flush_suppressed(&w->effects, clock_boot), 0);
        size_t n;
        Effect *due = effects_take_due(&w->effects, &n);
        assert_int_equal(n, 1);
        assert_int_equal(due[0].event, JIT_EVENT_REFUSED);
        assert_string_equal(due[0].message, "suppressed 40 refusals of uid 1001");
        assert_string_equal(due[0].fields[0], "JIT_SUPPRESSED=40");
        assert_string_equal(due[0].fields[1], "JIT_UID=1001");
        assert_null(due[0].fields[2]);
        effects_free(due, n);
        /* A new window logs again. */
        assert_int_equal(grant_approve(&w->g, &alice, id, NULL, &e), -EPERM);
        assert_int_equal(drain(w, JIT_EVENT_REFUSED, NULL), 1);
}

static void test_effect_queue(void **state) {
        EffectQueue q = {};
        Request r = { .id = 7, .requester = (char *) "alice", .service = (char *) "sudo" };
        size_t n;

        assert_int_equal(
                effect_stage(&q, JIT_EVENT_REVOKED, 5, &r, "bob", "JIT_X=1", "revoked %d", 7), 0);
        effect_ends_grant(&q);
        assert_int_equal(effect_post(&q, JIT_EVENT_REFUSED, 5, NULL, "carol", "refused"), 0);
        Effect *due = effects_take_due(&q, &n);
        assert_int_equal(n, 1); /* only the posted refusal is due before the commit */
        assert_int_equal(due[0].event, JIT_EVENT_REFUSED);
        effects_free(due, n);
        effects_commit(&q);
        due = effects_take_due(&q, &n);
        assert_int_equal(n, 1);
        assert_int_equal(due[0].event, JIT_EVENT_REVOKED);
        assert_true(due[0].ends_grant);
        assert_string_equal(due[0].message, "revoked 7");
        assert_string_equal(due[0].field, "JIT_X=1");
        assert_int_equal(due[0].request->id, 7);
        assert_true(due[0].request->requester != r.requester); /* a copy */
        effects_free(due, n);
        assert_true(q.state_changed);
        effect_queue_done(&q);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_file_approve_revoke, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refusals_change_nothing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_two_of_n_counts_each_approver_once, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_approve_saved_is_the_stored_request, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_auto_approval_and_break_glass, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_expiry_and_pending_timeout, setup, teardown),
                cmocka_unit_test_setup_teardown(test_expiry_racing_a_revoke, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reboot, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reload_withdraws_and_raises, setup, teardown),
                cmocka_unit_test_setup_teardown(test_one_shot_consumed_once, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rollback_drops_effects, setup, teardown),
                cmocka_unit_test_setup_teardown(test_concurrent_approvals, setup, teardown),
                cmocka_unit_test_setup_teardown(test_filing_rate_counts_cancelled, setup, teardown),
                cmocka_unit_test_setup_teardown(test_disk_reserve_refuses_filing_not_ending, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_revoke_held_while_the_disk_is_full, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_filing_and_approval_fail_cleanly_when_full,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_deny_held_when_read_only, setup, teardown),
                cmocka_unit_test_setup_teardown(test_revoke_held_when_locked, setup, teardown),
                cmocka_unit_test_setup_teardown(test_expiry_and_withdrawal_held, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refusals_logged_at_a_bounded_rate, setup,
                                                teardown),
                cmocka_unit_test(test_effect_queue),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
