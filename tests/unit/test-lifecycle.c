/* SPDX-License-Identifier: MIT */
/* broker/grant.[ch], the lifecycle core, against a real sqlite database in a temporary
 * directory, with users from a table and clocks the test steps: every transition and every
 * refusal of the lifecycle, the audit chain verified after each test, approvals racing on
 * two connections, expiry racing a revoke, and effects that exist only once committed. No
 * root, no journald, no daemon. */

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
} World;

static void count_report(void *userdata, int error, const char *what, int64_t id) {
        print_message("reported: %s %lld: %s\n", what, (long long) id, strerror(-error));
        ((World *) userdata)->reported++;
}

static int setup(void **state) {
        World *w = calloc(1, sizeof(World));
        char *error = NULL;

        assert_non_null(w);
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
        };
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
        assert_audit_intact(w->db);
        assert_int_equal(w->g.tx_depth, 0);
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
        uint64_t expires;
        int k = db_find_grant(w->db, u->uid, service, w->g.boot_id, clock_boot, clock_real, &id,
                              &expires);
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
                cmocka_unit_test_setup_teardown(test_auto_approval_and_break_glass, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_expiry_and_pending_timeout, setup, teardown),
                cmocka_unit_test_setup_teardown(test_expiry_racing_a_revoke, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reboot, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reload_withdraws_and_raises, setup, teardown),
                cmocka_unit_test_setup_teardown(test_one_shot_consumed_once, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rollback_drops_effects, setup, teardown),
                cmocka_unit_test_setup_teardown(test_concurrent_approvals, setup, teardown),
                cmocka_unit_test(test_effect_queue),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
