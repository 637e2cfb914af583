/* SPDX-License-Identifier: MIT */
/* Notifications without a daemon: the outbox rows the lifecycle core writes in the
 * transaction of each change (broker/outbox.c, through Grants.before_commit), with their
 * documents, gone with a rolled-back change, bounded; and the environment a hook is given
 * (broker/notify-spawn.c): every variable, escaped and cut. A real database in a temporary
 * directory, users from a table, clocks the test sets. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <sqlite3.h>

#include "effects.h"
#include "fake-identity-resolver.h"
#include "grant.h"
#include "notify-spawn.h"
#include "outbox.h"
#include "timeutil.h"

#define BOOT "11111111-1111-1111-1111-111111111111"

static char *alice_groups[] = { (char *) "alice", (char *) "dev" };
static char *bob_groups[] = { (char *) "bob", (char *) "lead" };
static char *carol_groups[] = { (char *) "carol", (char *) "lead" };
static const Identity alice = {
        .name = (char *) "alice", .uid = 1001, .groups = alice_groups, .n_groups = 2
};
static const Identity bob = {
        .name = (char *) "bob", .uid = 1002, .groups = bob_groups, .n_groups = 2
};
static const Identity carol = {
        .name = (char *) "carol", .uid = 1003, .groups = carol_groups, .n_groups = 2
};
static const Identity *const users[] = { &alice, &bob, &carol, NULL };

/* Hook 1 wants what a requester's approvers act on; hook 2 the ends. */
static const char POLICY[] =
        "profile = { owner = \"payments\"; environment = \"prod\"; };\n"
        "rules = (\n"
        "  { name = \"one\"; services = [\"sudo\"]; requesters = [\"%dev\"]; approvers = [\"%lead\"]; },\n"
        "  { name = \"two\"; services = [\"sshd\"]; requesters = [\"%dev\"];\n"
        "    approvers = [\"bob\", \"carol\"]; approvals = 2; }\n"
        ");\n"
        "notify = (\n"
        "  { command = \"/usr/lib/jit/notify/webhook\"; args = [\"https://chat.example/x\"];\n"
        "    events = [\"filed\", \"approval\", \"approved\"]; },\n"
        "  { command = \"/usr/lib/jit/notify/mail\"; args = [\"ops@example.org\"];\n"
        "    events = [\"denied\", \"revoked\"]; }\n"
        ");\n";

static uint64_t clock_real = 1767225600ULL * USEC_PER_SEC, clock_boot = 1000 * USEC_PER_SEC;

static uint64_t fake_now(clockid_t clock) {
        return clock == CLOCK_REALTIME ? clock_real : clock_boot;
}

typedef struct World {
        char dir[64], path[96];
        BrokerDb *db;
        Policy *policy;
        EffectQueue effects;
        Grants g;
        int fail_with; /* the outbox callback fails so after writing its rows */
} World;

static int stage(Grants *g, void *userdata) {
        World *w = userdata;
        int r = outbox_stage(g->db, g->policy, g->effects, g->now(CLOCK_REALTIME));
        if (r < 0)
                return r;
        return w->fail_with;
}

static int setup(void **state) {
        World *w = calloc(1, sizeof(World));
        char *error = NULL;
        assert_non_null(w);
        fake_resolver_install(users);
        snprintf(w->dir, sizeof(w->dir), "/tmp/jit-notify-XXXXXX");
        assert_non_null(mkdtemp(w->dir));
        snprintf(w->path, sizeof(w->path), "%s/jit.db", w->dir);
        assert_int_equal(db_open(w->path, &w->db, &error), 0);
        assert_int_equal(policy_parse(POLICY, strlen(POLICY), "policy.conf", &w->policy, &error),
                         0);
        w->g = (Grants){
                .db = w->db,
                .policy = w->policy,
                .boot_id = BOOT,
                .effects = &w->effects,
                .now = fake_now,
                .before_commit = stage,
                .before_commit_userdata = w,
        };
        *state = w;
        return 0;
}

static int teardown(void **state) {
        World *w = *state;
        char p[160];
        assert_int_equal(w->g.tx_depth, 0);
        grants_done(&w->g);
        effect_queue_done(&w->effects);
        db_close(w->db);
        policy_free(w->policy);
        for (const char *suffix = ""; suffix; suffix = *suffix ? NULL : "-wal") {
                snprintf(p, sizeof(p), "%s%s", w->path, suffix);
                unlink(p);
        }
        snprintf(p, sizeof(p), "%s-shm", w->path);
        unlink(p);
        rmdir(w->dir);
        free(w);
        return 0;
}

static int64_t file(World *w, const char *service) {
        GrantAsk ask = {
                .service = service, .duration = 1800, .reason = "rotate the cert", .ticket = "OPS-1"
        };
        GrantError e = {};
        int64_t id = 0;
        int r = grant_file(&w->g, &alice, &ask, &id, &e);
        if (r < 0)
                fail_msg("grant_file: %d %s", r, e.message);
        return id;
}

static int64_t count(World *w, const char *where) {
        char sql[256];
        sqlite3_stmt *st;
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM outbox%s%s", where ? " WHERE " : "",
                 where ?: "");
        assert_int_equal(sqlite3_prepare_v2(db_sqlite(w->db), sql, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        int64_t n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return n;
}

/* The newest row, its document parsed. */
static json_object *newest(World *w, OutboxRow *row) {
        sqlite3_stmt *st;
        assert_int_equal(
                sqlite3_prepare_v2(db_sqlite(w->db), "SELECT max(id) FROM outbox", -1, &st, NULL),
                SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        int64_t id = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        assert_int_equal(outbox_get(w->db, id, row), 0);
        json_object *doc = json_tokener_parse(row->payload);
        assert_non_null(doc);
        return doc;
}

static const char *str(json_object *o, const char *path) {
        char key[64];
        const char *dot = strchr(path, '.');
        json_object *v = NULL;
        snprintf(key, sizeof(key), "%.*s", (int) (dot ? dot - path : (long) strlen(path)), path);
        if (!json_object_object_get_ex(o, key, &v))
                return NULL;
        return dot ? str(v, dot + 1) : json_object_get_string(v);
}

static void test_filed_writes_one_row_per_hook_that_wants_it(void **state) {
        World *w = *state;
        int64_t id = file(w, "sudo");
        char where[64];

        /* Hook 1 wants "filed", hook 2 does not. */
        assert_int_equal(count(w, NULL), 1);
        OutboxRow row = {};
        json_object *doc = newest(w, &row);
        assert_string_equal(row.hook,
                            "[\"/usr/lib/jit/notify/webhook\",\"https://chat.example/x\"]");
        assert_int_equal(row.hook_index, 0);
        assert_string_equal(row.event, "filed");
        assert_int_equal(row.request_id, id);
        assert_int_equal(row.attempts, 0);
        assert_int_equal(row.next_attempt_at, clock_real);
        assert_int_equal(row.created_at, clock_real);
        assert_null(row.last_error);
        assert_string_equal(str(doc, "event"), "filed");
        assert_string_equal(str(doc, "broker_event"), "requested");
        assert_string_equal(str(doc, "time"), "2026-01-01T00:00:00Z");
        assert_string_equal(str(doc, "actor"), "alice");
        assert_string_equal(str(doc, "command"), "jitctl approve 1");
        assert_string_equal(str(doc, "profile.owner"), "payments");
        assert_null(str(doc, "profile.classification"));
        assert_string_equal(str(doc, "request.requester"), "alice");
        assert_string_equal(str(doc, "request.state"), "pending");
        assert_string_equal(str(doc, "request.reason"), "rotate the cert");
        assert_string_equal(str(doc, "request.ticket"), "OPS-1");
        assert_string_equal(str(doc, "request.duration"), "1800");
        assert_string_equal(str(doc, "request.duration_text"), "30m");
        assert_string_equal(str(doc, "request.rule"), "one");
        assert_string_equal(str(doc, "request.approvals_required"), "1");
        assert_string_equal(str(doc, "approvers"), "[ \"%lead\" ]");
        assert_non_null(str(doc, "host"));
        assert_null(str(doc, "id")); /* added at delivery, with the row's id */
        json_object_put(doc);
        outbox_row_done(&row);

        /* Deny: hook 2's event, the end's reason in it. */
        GrantError e = {};
        assert_int_equal(grant_end(&w->g, &bob, id, EVENT_DENY, "not now", &e), 0);
        snprintf(where, sizeof(where), "event = 'denied' AND hook_index = 1");
        assert_int_equal(count(w, where), 1);
        doc = newest(w, &row);
        assert_string_equal(str(doc, "request.state"), "denied");
        assert_string_equal(str(doc, "request.end_reason"), "not now");
        assert_string_equal(str(doc, "command"), "jitctl show 1");
        json_object_put(doc);
        outbox_row_done(&row);
}

static void test_approvals_as_saved(void **state) {
        World *w = *state;
        int64_t id = file(w, "sshd");
        GrantError e = {};
        OutboxRow row = {};

        /* One of two approvals: "approval", with the approval it tells of. */
        assert_int_equal(grant_approve(&w->g, &bob, id, "fine", &e), 0);
        assert_int_equal(count(w, NULL), 2);
        json_object *doc = newest(w, &row);
        assert_string_equal(row.event, "approval");
        assert_string_equal(str(doc, "request.state"), "pending");
        json_object *approvals = NULL, *req = NULL;
        assert_true(json_object_object_get_ex(doc, "request", &req));
        assert_true(json_object_object_get_ex(req, "approvals", &approvals));
        assert_int_equal(json_object_array_length(approvals), 1);
        assert_string_equal(str(json_object_array_get_idx(approvals, 0), "approver"), "bob");
        assert_string_equal(str(json_object_array_get_idx(approvals, 0), "comment"), "fine");
        assert_string_equal(str(doc, "request.approvals_count"), "1");
        assert_string_equal(str(doc, "command"), "jitctl approve 1");
        assert_string_equal(str(doc, "approvers"), "[ \"bob\", \"carol\" ]");
        json_object_put(doc);
        outbox_row_done(&row);

        /* The last one: told once, as "approved", with both approvals. */
        assert_int_equal(grant_approve(&w->g, &carol, id, NULL, &e), 0);
        assert_int_equal(count(w, NULL), 3);
        assert_int_equal(count(w, "event = 'approval'"), 1);
        doc = newest(w, &row);
        assert_string_equal(row.event, "approved");
        assert_string_equal(str(doc, "broker_event"), "granted");
        assert_string_equal(str(doc, "request.state"), "active");
        assert_string_equal(str(doc, "request.approvals_count"), "2");
        assert_non_null(str(doc, "request.expires_at"));
        assert_string_equal(str(doc, "command"), "jitctl show 1");
        json_object_put(doc);
        outbox_row_done(&row);
}

static void test_rows_share_the_fate_of_their_change(void **state) {
        World *w = *state;
        GrantAsk ask = { .service = "sudo", .duration = 600, .reason = "r" };
        GrantError e = {};
        int64_t id = 0;

        /* The outbox write fails: the change fails, nothing of it stays, nothing is due. */
        w->fail_with = -ENOSPC;
        assert_int_equal(grant_file(&w->g, &alice, &ask, &id, &e), -ENOSPC);
        assert_int_equal(count(w, NULL), 0);
        Request *r = NULL;
        assert_int_equal(db_get_request(w->db, 1, &r), -ENOENT);
        size_t n = 0;
        Effect *due = effects_take_due(&w->effects, &n);
        assert_int_equal(n, 0);
        effects_free(due, n);

        /* It works again: row and change together; the effect is due. */
        w->fail_with = 0;
        assert_int_equal(grant_file(&w->g, &alice, &ask, &id, &e), 0);
        assert_int_equal(count(w, NULL), 1);
        due = effects_take_due(&w->effects, &n);
        assert_int_equal(n, 1);
        assert_int_equal(due[0].event, JIT_EVENT_REQUESTED);
        effects_free(due, n);

        /* Without hooks nothing is written. */
        const Policy *keep = w->g.policy;
        Policy *none = NULL;
        char *error = NULL;
        const char *text =
                "rules = ( { name = \"one\"; services = [\"sudo\"]; requesters = [\"%dev\"];"
                " approvers = [\"%lead\"]; } );";
        assert_int_equal(policy_parse(text, strlen(text), "p", &none, &error), 0);
        w->g.policy = none;
        file(w, "sudo");
        assert_int_equal(count(w, NULL), 1);
        w->g.policy = keep;
        policy_free(none);
}

static void test_outbox_is_bounded(void **state) {
        World *w = *state;
        char *error = NULL;
        /* Full with rows of an earlier time. */
        assert_int_equal(
                sqlite3_exec(db_sqlite(w->db),
                             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                             " WHERE i < 10000) INSERT INTO outbox (created_at, hook,"
                             " hook_index, event, request_id, payload, next_attempt_at)"
                             " SELECT 1, 'old', 0, 'filed', 0, '{}', 1 FROM n",
                             NULL, NULL, &error),
                SQLITE_OK);
        assert_int_equal(count(w, NULL), OUTBOX_ROWS_MAX);
        size_t n = 0;
        effects_free(effects_take_due(&w->effects, &n), n);

        /* The change goes through; the oldest row makes room, and it is said. */
        file(w, "sudo");
        assert_int_equal(count(w, NULL), OUTBOX_ROWS_MAX);
        assert_int_equal(count(w, "id = 1"), 0);
        assert_int_equal(count(w, "id = 2"), 1);
        assert_int_equal(count(w, "hook != 'old'"), 1);
        Effect *due = effects_take_due(&w->effects, &n);
        assert_int_equal(n, 2);
        assert_int_equal(due[0].event, JIT_EVENT_REQUESTED);
        assert_int_equal(due[1].event, JIT_EVENT_NOTIFY_DROPPED);
        assert_string_equal(due[1].message, "notification outbox full (10000 rows): the 1 oldest "
                                            "undelivered notification was dropped");
        effects_free(due, n);
}

static void test_table_operations(void **state) {
        World *w = *state;
        int64_t *ids = NULL;
        size_t n = 0;
        uint64_t next = 0;
        OutboxRow row = {};

        file(w, "sudo");
        file(w, "sudo");
        assert_int_equal(outbox_due_per_hook(w->db, clock_real, &ids, &n), 0);
        assert_int_equal(n, 1); /* the oldest of the one hook */
        assert_int_equal(ids[0], 1);
        free(ids);
        assert_int_equal(outbox_next_due(w->db, clock_real, &next), 0);

        /* A failed attempt moves it back; the next row is the hook's oldest due one. */
        assert_int_equal(outbox_failed(w->db, 1, 1, clock_real + 5 * USEC_PER_SEC, "exit 1"), 0);
        assert_int_equal(outbox_due_per_hook(w->db, clock_real, &ids, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(ids[0], 2);
        free(ids);
        assert_int_equal(outbox_next_due(w->db, clock_real, &next), 1);
        assert_int_equal(next, clock_real + 5 * USEC_PER_SEC);
        assert_int_equal(outbox_get(w->db, 1, &row), 0);
        assert_int_equal(row.attempts, 1);
        assert_string_equal(row.last_error, "exit 1");
        outbox_row_done(&row);

        assert_int_equal(outbox_delete(w->db, 2), 0);
        assert_int_equal(outbox_delete(w->db, 2), 0);
        assert_int_equal(outbox_get(w->db, 2, &row), -ENOENT);
        assert_int_equal(outbox_failed(w->db, 2, 1, clock_real, NULL), -ENOENT);

        char **hooks = NULL;
        int64_t *counts = NULL;
        assert_int_equal(outbox_hooks(w->db, &hooks, &counts, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(counts[0], 1);
        assert_int_equal(outbox_drop_hook(w->db, hooks[0]), 1);
        outbox_hooks_free(hooks, counts, n);
        assert_int_equal(count(w, NULL), 0);
}

static void test_event_of(void **state) {
        Request pending = { .state = REQUEST_PENDING }, active = { .state = REQUEST_ACTIVE };
        assert_int_equal(outbox_event_of(JIT_EVENT_REQUESTED, &pending), NOTIFY_FILED);
        assert_int_equal(outbox_event_of(JIT_EVENT_APPROVAL, &pending), NOTIFY_APPROVAL);
        assert_int_equal(outbox_event_of(JIT_EVENT_APPROVAL, &active), _NOTIFY_EVENT_INVALID);
        assert_int_equal(outbox_event_of(JIT_EVENT_GRANTED, &active), NOTIFY_APPROVED);
        assert_int_equal(outbox_event_of(JIT_EVENT_AUTO_APPROVED, &active), NOTIFY_APPROVED);
        assert_int_equal(outbox_event_of(JIT_EVENT_DENIED, &active), NOTIFY_DENIED);
        assert_int_equal(outbox_event_of(JIT_EVENT_CANCELLED, &active), NOTIFY_CANCELLED);
        assert_int_equal(outbox_event_of(JIT_EVENT_EXPIRED, &active), NOTIFY_EXPIRED);
        assert_int_equal(outbox_event_of(JIT_EVENT_REVOKED, &active), NOTIFY_REVOKED);
        assert_int_equal(outbox_event_of(JIT_EVENT_TIMED_OUT, &active), NOTIFY_TIMED_OUT);
        assert_int_equal(outbox_event_of(JIT_EVENT_BREAK_GLASS, &active), NOTIFY_BREAK_GLASS);
        assert_int_equal(outbox_event_of(JIT_EVENT_ACKNOWLEDGED, &active), NOTIFY_ACKNOWLEDGED);
        assert_int_equal(outbox_event_of(JIT_EVENT_WITHDRAWN, &active), NOTIFY_WITHDRAWN);
        assert_int_equal(outbox_event_of(JIT_EVENT_CONSUMED, &active), NOTIFY_CONSUMED);
        assert_int_equal(outbox_event_of(JIT_EVENT_REFUSED, &active), _NOTIFY_EVENT_INVALID);
        assert_int_equal(outbox_event_of(JIT_EVENT_SESSION_OPENED, &active), _NOTIFY_EVENT_INVALID);
        assert_int_equal(outbox_event_of(JIT_EVENT_NOTIFY_DROPPED, &active), _NOTIFY_EVENT_INVALID);
        assert_int_equal(outbox_event_of(JIT_EVENT_REQUESTED, NULL), _NOTIFY_EVENT_INVALID);

        char buf[64];
        Request bg = { .id = 7, .state = REQUEST_ACTIVE, .break_glass = true };
        outbox_next_command(NOTIFY_BREAK_GLASS, &bg, buf, sizeof(buf));
        assert_string_equal(buf, "jitctl ack 7");
        bg.acknowledged_by = (char *) "root";
        outbox_next_command(NOTIFY_ACKNOWLEDGED, &bg, buf, sizeof(buf));
        assert_string_equal(buf, "jitctl show 7");
}

/* ---- the environment of a hook ---- */

static const char *env_get(char **env, const char *key) {
        size_t len = strlen(key);
        const char *found = NULL;
        for (size_t i = 0; env[i]; i++)
                if (strncmp(env[i], key, len) == 0 && env[i][len] == '=') {
                        assert_null(found); /* each once */
                        found = env[i] + len + 1;
                }
        return found;
}

static void test_environment(void **state) {
        char reason[3000];
        memset(reason, 'x', sizeof(reason) - 1);
        reason[sizeof(reason) - 1] = '\0';
        memcpy(reason, "a\033[2Jb\nc\xe2\x80\xae", 11); /* ESC, a newline, RIGHT-TO-LEFT OVERRIDE */
        json_object *doc = json_object_new_object(), *req = json_object_new_object(),
                    *prof = json_object_new_object(), *approvers = json_object_new_array();
        json_object_object_add(doc, "event", json_object_new_string("filed"));
        json_object_object_add(doc, "id", json_object_new_string("abc-12"));
        json_object_object_add(doc, "attempt", json_object_new_int(3));
        json_object_object_add(doc, "command", json_object_new_string("jitctl approve 12"));
        json_object_object_add(doc, "host", json_object_new_string("web1"));
        json_object_array_add(approvers, json_object_new_string("%lead"));
        json_object_array_add(approvers, json_object_new_string("bob"));
        json_object_object_add(doc, "approvers", approvers);
        json_object_object_add(req, "id", json_object_new_int(12));
        json_object_object_add(req, "reason", json_object_new_string(reason));
        json_object_object_add(req, "ticket", NULL);
        json_object_object_add(req, "break_glass", json_object_new_boolean(false));
        json_object_object_add(req, "duration", json_object_new_int(1800));
        json_object_object_add(doc, "request", req);
        json_object_object_add(prof, "owner", json_object_new_string("payments"));
        json_object_object_add(doc, "profile", prof);

        char **env = NULL;
        assert_int_equal(notify_environment(doc, "jit-notify", &env), 0);
        assert_string_equal(env_get(env, "PATH"), NOTIFY_PATH);
        assert_string_equal(env_get(env, "HOME"), "/");
        assert_string_equal(env_get(env, "USER"), "jit-notify");
        assert_string_equal(env_get(env, "LOGNAME"), "jit-notify");
        assert_string_equal(env_get(env, "LANG"), "C.UTF-8");
        assert_string_equal(env_get(env, "JIT_EVENT"), "filed");
        assert_string_equal(env_get(env, "JIT_EVENT_ID"), "abc-12");
        assert_string_equal(env_get(env, "JIT_ATTEMPT"), "3");
        assert_string_equal(env_get(env, "JIT_REQUEST_ID"), "12");
        assert_string_equal(env_get(env, "JIT_DURATION"), "1800");
        assert_string_equal(env_get(env, "JIT_TICKET"), "");
        assert_string_equal(env_get(env, "JIT_BREAK_GLASS"), "0");
        assert_string_equal(env_get(env, "JIT_APPROVERS"), "%lead bob");
        assert_string_equal(env_get(env, "JIT_PROFILE_OWNER"), "payments");
        assert_string_equal(env_get(env, "JIT_PROFILE_CLASSIFICATION"), "");
        assert_string_equal(env_get(env, "JIT_STATE"), ""); /* not in this document */
        assert_string_equal(env_get(env, "JIT_COMMAND"), "jitctl approve 12");
        assert_string_equal(env_get(env, "JIT_APPROVE_COMMAND"), "jitctl approve 12");
        const char *r = env_get(env, "JIT_REASON");
        assert_int_equal(strlen(r), NOTIFY_ENV_VALUE_MAX);
        assert_memory_equal(r, "a\\x1b[2Jb\\x0ac\\u202exxx", 23);
        for (size_t i = 0; env[i]; i++)
                for (const char *c = env[i]; *c; c++)
                        assert_false((unsigned char) *c < 0x20 || *c == 0x7f);
        notify_environment_free(env);

        /* Nothing to approve: no approve command. */
        json_object_object_add(doc, "command", json_object_new_string("jitctl show 12"));
        assert_int_equal(notify_environment(doc, "jit-notify", &env), 0);
        assert_string_equal(env_get(env, "JIT_APPROVE_COMMAND"), "");
        assert_string_equal(env_get(env, "JIT_COMMAND"), "jitctl show 12");
        notify_environment_free(env);
        json_object_put(doc);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_filed_writes_one_row_per_hook_that_wants_it,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_approvals_as_saved, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rows_share_the_fate_of_their_change, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_outbox_is_bounded, setup, teardown),
                cmocka_unit_test_setup_teardown(test_table_operations, setup, teardown),
                cmocka_unit_test(test_event_of),
                cmocka_unit_test(test_environment),
        };
        return cmocka_run_group_tests_name("notify", tests, NULL, NULL);
}
