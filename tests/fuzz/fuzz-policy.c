/* SPDX-License-Identifier: MIT */
/* The policy parser (common/policy-parse.c through policy_parse()): the input is the text
 * of /etc/jit/policy.conf. When it parses, the policy is queried as the broker and jitctl
 * query it: policy_decide() (and its JSON) for a few fixed requests, whole-service and
 * single commands under sudo, break-glass, policy_match(), policy_find_rule() and the rule
 * helpers.
 *
 * Identities come from a fixed in-process resolver (users alice, bob, carol and their
 * groups), never from NSS: the same input always takes the same path. Local time is
 * Europe/Berlin (TZ), so windows meet daylight saving time. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy-json.h"
#include "policy.h"
#include "users.h"

#include "fuzz-check.h"

static char *alice_groups[] = { (char *) "alice", (char *) "jit", (char *) "jit-oncall",
                                (char *) "jit-dba" };
static char *bob_groups[] = { (char *) "bob", (char *) "jit-approvers", (char *) "jit-sre" };
static char *carol_groups[] = { (char *) "carol" };
static const Identity users[] = {
        { .name = (char *) "alice", .uid = 1000, .groups = alice_groups, .n_groups = 4 },
        { .name = (char *) "bob", .uid = 1001, .groups = bob_groups, .n_groups = 3 },
        { .name = (char *) "carol", .uid = 1002, .groups = carol_groups, .n_groups = 1 },
};
#define N_USERS (sizeof(users) / sizeof(users[0]))

static const Identity *user_by_name(const char *name) {
        for (size_t i = 0; i < N_USERS; i++)
                if (strcmp(users[i].name, name) == 0)
                        return &users[i];
        return NULL;
}

static int fake_identity_from_uid(uid_t uid, Identity *ret) {
        for (size_t i = 0; i < N_USERS; i++)
                if (users[i].uid == uid)
                        return identity_copy(&users[i], ret);
        return -ENOENT;
}

static int fake_identity_from_name(const char *name, Identity *ret) {
        const Identity *u = user_by_name(name);
        return u ? identity_copy(u, ret) : -ENOENT;
}

static int fake_uid_from_name(const char *name, uid_t *ret) {
        const Identity *u = user_by_name(name);
        if (!u)
                return -ENOENT;
        *ret = u->uid;
        return 0;
}

static int fake_user_exists(const char *name) {
        return user_by_name(name) != NULL;
}

static int fake_group_exists(const char *name) {
        for (size_t i = 0; i < N_USERS; i++)
                if (identity_in_group(&users[i], name))
                        return 1;
        return 0;
}

static const IdentityResolver fake_resolver = {
        .identity_from_uid = fake_identity_from_uid,
        .identity_from_name = fake_identity_from_name,
        .uid_from_name = fake_uid_from_name,
        .user_exists = fake_user_exists,
        .group_exists = fake_group_exists,
};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        setenv("TZ", "Europe/Berlin", 1);
        tzset();
        identity_resolver_set(&fake_resolver);
        return 0;
}

/* Mon 2024-01-01 10:00 UTC, the reference week, and a Sunday night in March on the change
 * to summer time. */
static const time_t instants[] = { 1704103200, 1704150000, 1711846800 };
static const char *const services[] = { "sudo", "sshd", "" };
static const uint64_t durations[] = { 0, 1800, 3600 * 8, 366ULL * 86400 };
static const char *const tickets[] = { NULL, "", "CHG-1234", "OPS-1" };
static const char *const reasons[] = { NULL, "", "rotate the TLS certificate on the vault" };

/* Single commands: literal words, "*", a star inside a word, "**"; run as root, as a user,
 * as a user and group; and one the policy must refuse unread (not a path). */
static const char *const argv_restart[] = { "systemctl", "restart", "nginx", NULL };
static const char *const argv_log[] = { "tail", "-n", "10", "/var/log/nginx/../auth.log", NULL };
static const char *const argv_psql[] = { "psql", "-c", "vacuum", "x y", NULL };
static const char *const argv_bare[] = { "uptime", NULL };
static const JitCommandLine command_lines[] = {
        { .command = "/usr/bin/systemctl", .argv = argv_restart },
        { .command = "/usr/bin/tail", .argv = argv_log, .run_as_user = "www-data" },
        { .command = "/usr/bin/psql",
          .argv = argv_psql,
          .run_as_user = "postgres",
          .run_as_group = "postgres" },
        { .command = "/usr/bin/uptime", .argv = argv_bare, .run_as_group = "adm" },
        { .command = "uptime", .argv = argv_bare },
};

static void check_decision(const Policy *p, const PolicyQuery *q, const PolicyDecision *d) {
        CHECK(d->verdict >= 0 && d->verdict < _POLICY_VERDICT_MAX);
        CHECK(policy_verdict_to_string(d->verdict));
        if (d->verdict == VERDICT_REFUSED)
                CHECK(d->message);
        else {
                CHECK(!d->message);
                CHECK(d->duration > 0 && d->duration <= d->cap);
                CHECK(d->cap <= p->max_duration);
        }
        if (d->rule) {
                CHECK(d->rule >= p->rules && d->rule < p->rules + p->n_rules);
                CHECK(policy_rule_has_service(d->rule, q->service));
                /* A command only under a rule that allows it; all of sudo never under a
                 * rule for single commands. */
                if (q->command)
                        CHECK(strcmp(q->service, "sudo") == 0 &&
                              policy_rule_allows_command(d->rule, q->command));
                else
                        CHECK(d->rule->scope != POLICY_SCOPE_COMMAND);
        }
        if (d->command_pattern) {
                CHECK(q->command && d->rule);
                CHECK(d->command_pattern >= d->rule->commands &&
                      d->command_pattern < d->rule->commands + d->rule->n_commands);
                CHECK(command_pattern_match(d->command_pattern, q->command->command,
                                            q->command->argv));
        } else if (q->command && d->rule)
                CHECK(d->rule->n_commands == 0);
        for (size_t i = 0; i < d->n_skipped; i++)
                CHECK(d->skipped[i]);
}

static void query(const Policy *p) {
        for (size_t u = 0; u < N_USERS; u++)
                for (size_t s = 0; s < sizeof(services) / sizeof(services[0]); s++) {
                        const Identity *id = &users[u];
                        const char *service = services[s];

                        const PolicyRule *m = policy_match(p, id, service);
                        if (m)
                                (void) policy_rule_cap(p, m);
                        for (size_t t = 0; t < sizeof(instants) / sizeof(instants[0]); t++) {
                                const PolicyRule *at = policy_match_at(p, id, service, instants[t]);
                                if (at)
                                        CHECK(policy_rule_in_window(at, instants[t]));
                        }

                        for (size_t k = 0; k < 6; k++) {
                                PolicyQuery q = {
                                        .requester = id,
                                        .service = service,
                                        .duration = durations[(u + s + k) % 4],
                                        .at = instants[k % 3],
                                        .ticket = tickets[(k + u) % 4],
                                        .reason = reasons[(k + s) % 3],
                                };
                                PolicyDecision d;
                                if (policy_decide(p, &q, &d) < 0)
                                        continue;
                                check_decision(p, &q, &d);
                                if (k == 0) {
                                        json_object *o = policy_decision_to_json(p, &q, &d);
                                        if (o)
                                                (void) json_object_to_json_string(o);
                                        json_object_put(o);
                                }
                                policy_decision_done(&d);
                        }

                        for (size_t c = 0; c < sizeof(command_lines) / sizeof(command_lines[0]);
                             c++) {
                                PolicyQuery q = {
                                        .requester = id,
                                        .service = service,
                                        .at = instants[c % 3],
                                        .ticket = tickets[(c + u) % 4],
                                        .command = &command_lines[c],
                                };
                                PolicyDecision d;
                                if (policy_decide(p, &q, &d) < 0)
                                        continue;
                                check_decision(p, &q, &d);
                                if (c == 0) {
                                        json_object *o = policy_decision_to_json(p, &q, &d);
                                        if (o)
                                                (void) json_object_to_json_string(o);
                                        json_object_put(o);
                                }
                                policy_decision_done(&d);
                        }

                        PolicyDecision d;
                        if (policy_break_glass_decide(p, id, service, durations[u % 4], &d) == 0) {
                                CHECK(!d.rule);
                                policy_decision_done(&d);
                        }
                }

        for (size_t i = 0; i < p->n_rules; i++) {
                const PolicyRule *r = &p->rules[i];
                CHECK(r->name);
                CHECK(policy_find_rule(p, r->name));
                CHECK(r->run_as.n > 0);
                CHECK(r->n_commands <= POLICY_COMMANDS_MAX);
                if (r->n_commands > 0 || r->scope == POLICY_SCOPE_COMMAND)
                        CHECK(policy_rule_is_sudo_only(r) && r->scope == POLICY_SCOPE_COMMAND);
                for (size_t u = 0; u < N_USERS; u++)
                        (void) policy_rule_is_approver(r, &users[u]);
        }
        (void) policy_find_rule(p, "break-glass");
        CHECK(strlen(p->hash) == POLICY_HASH_LEN);
        for (size_t i = 0; i < p->n_warnings; i++)
                CHECK(p->warnings[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Policy *p = NULL;
        char *error = NULL;

        /* The broker reads at most POLICY_FILE_MAX bytes of file. */
        if (size > POLICY_FILE_MAX)
                return 0;
        int r = policy_parse((const char *) data, size, "fuzz.conf", &p, &error);
        if (r < 0) {
                CHECK(r == -EINVAL || r == -ENOMEM);
                CHECK(!p);
                free(error);
                return 0;
        }
        CHECK(p && !error);
        query(p);
        policy_free(p);
        return 0;
}
