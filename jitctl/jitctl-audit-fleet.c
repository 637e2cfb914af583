/* SPDX-License-Identifier: MIT */
/* jitctl audit --verify --fleet: checks the fleet's audit chains in PostgreSQL (docs/fleet.md,
 * "The fleet's audit records"), one per origin host: each record's hash recomputed as the
 * host computed it (common/audit-record.c, event = kind, actor_uid = -1, details = data as
 * kept), seqs from 1 without gaps, each prev_hash the hash before it. Read through a cursor
 * in batches, so memory does not grow with the chains. */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#include "audit-record.h"
#include "cleanup.h"
#include "jitctl-audit-internal.h"
#include "jitctl-format.h"
#include "jitctl-text.h"
#include "policy.h"

/* Records one FETCH reads. */
#define FLEET_VERIFY_BATCH 1000
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

DEFINE_TRIVIAL_CLEANUP_FUNC(PGconn *, PQfinish);
DEFINE_TRIVIAL_CLEANUP_FUNC(PGresult *, PQclear);
DEFINE_TRIVIAL_CLEANUP_FUNC(Policy *, policy_free);

/* One origin host's chain as it is walked. */
typedef struct FleetChain {
        char host[64];
        int64_t records, last_seq;
        char last_hash[AUDIT_HASH_LEN + 1];
        int64_t broken_seq; /* 0: intact so far */
        char reason[160];
} FleetChain;

static const char *pg_line(const char *msg, char *buf, size_t len) {
        snprintf(buf, len, "%s", msg ?: "");
        for (char *c = buf; *c; c++)
                if (*c == '\n')
                        *c = c[1] ? ' ' : '\0';
        return buf;
}

/* The user of the first entry of a libpq password file (host:port:db:user:password). */
static int credentials_user(const char *path, char **ret) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        _cleanup_free_ char *line = NULL;
        size_t n = 0;
        if (!f)
                return -errno;
        while (getline(&line, &n, f) > 0) {
                if (line[0] == '#' || line[0] == '\n')
                        continue;
                char *p = line;
                for (int field = 0; field < 3 && p; field++) {
                        p = strchr(p, ':');
                        p = p ? p + 1 : NULL;
                }
                char *end = p ? strchr(p, ':') : NULL;
                if (!end || end == p)
                        return -EBADMSG;
                *ret = strndup(p, (size_t) (end - p));
                return *ret ? 0 : -ENOMEM;
        }
        return -EBADMSG;
}

static int connect_fleet(AuditArgs *a, PGconn **ret, bool *ret_as_host) {
        char buf[512];
        _cleanup_(policy_freep) Policy *policy = NULL;
        _cleanup_free_ char *error = NULL, *user = NULL;
        PGconn *conn;

        *ret_as_host = false;
        if (a->database) {
                if (strncmp(a->database, "postgresql://", 13) != 0 &&
                    strncmp(a->database, "postgres://", 11) != 0)
                        return audit_usage_error("--database: expected a URI postgresql://...");
                conn = PQconnectdb(a->database);
        } else {
                const char *path = a->policy ?: JIT_POLICY_PATH;
                int r = policy_load(path, &policy, &error);
                if (r < 0)
                        return audit_fail(a, JIT_EXIT_FAILURE, "policy", "%s: %s", path,
                                          error ?: strerror(-r));
                if (!policy->fleet.enabled)
                        return audit_fail(a, JIT_EXIT_FAILURE, "policy",
                                          "%s has no fleet section: name the database with "
                                          "--database",
                                          path);
                if ((r = credentials_user(policy->fleet.credentials, &user)) < 0)
                        return audit_fail(a, JIT_EXIT_FAILURE, "credentials",
                                          "cannot read the user from %s: %s",
                                          policy->fleet.credentials, strerror(-r));
                const char *const keys[] = { "dbname", "user", "passfile", NULL };
                const char *const values[] = { policy->fleet.database, user,
                                               policy->fleet.credentials, NULL };
                conn = PQconnectdbParams(keys, values, 1);
                *ret_as_host = true;
        }
        if (!conn)
                return audit_fail_oom(a);
        if (PQstatus(conn) != CONNECTION_OK) {
                int k = audit_fail(a, JIT_EXIT_UNREACHABLE, "unreachable",
                                   "cannot connect to the fleet database: %s",
                                   pg_line(PQerrorMessage(conn), buf, sizeof(buf)));
                PQfinish(conn);
                return k;
        }
        *ret = conn;
        return CONTINUE;
}

static void chain_break(FleetChain *c, int64_t seq, const char *reason) {
        c->broken_seq = seq;
        snprintf(c->reason, sizeof(c->reason), "%s", reason);
}

/* One record of the walk, in (origin_host, seq) order. */
static int check_row(AuditHasher *hasher, FleetChain *c, PGresult *res, int i) {
        AuditRecord rec = {
                .seq = strtoll(PQgetvalue(res, i, 1), NULL, 10),
                .at = strtoull(PQgetvalue(res, i, 2), NULL, 10),
                .event = PQgetvalue(res, i, 3),
                .request_id = PQgetisnull(res, i, 4) ? 0 : strtoll(PQgetvalue(res, i, 4), NULL, 10),
                .actor = PQgetvalue(res, i, 5), /* "" for NULL, as a host never writes */
                .actor_uid = -1,
                .details = PQgetvalue(res, i, 6),
        };
        const char *prev = PQgetvalue(res, i, 7), *hash = PQgetvalue(res, i, 8);
        char computed[AUDIT_HASH_LEN + 1];

        c->records++;
        if (c->broken_seq == 0) {
                int64_t want = c->last_seq + 1;
                if (rec.seq != want) {
                        char buf[96];
                        snprintf(buf, sizeof(buf), "a gap: record %" PRId64 " is missing", want);
                        chain_break(c, rec.seq, buf);
                } else if (!STREQ(prev, c->last_seq ? c->last_hash : AUDIT_GENESIS_HASH))
                        chain_break(c, rec.seq,
                                    "its prev_hash is not the hash of the record before");
                else {
                        snprintf(rec.prev_hash, sizeof(rec.prev_hash), "%s", prev);
                        int r = audit_hasher_hash(hasher, &rec, computed);
                        if (r < 0)
                                return r;
                        if (!STREQ(computed, hash))
                                chain_break(c, rec.seq,
                                            "its hash does not match its content (the record "
                                            "was changed)");
                }
        }
        c->last_seq = rec.seq;
        snprintf(c->last_hash, sizeof(c->last_hash), "%s", hash);
        return 0;
}

static int chain_report(const AuditArgs *a, const FleetChain *c, json_object *hosts) {
        if (!a->json) {
                printf("host ");
                fputs_escaped(c->host, stdout);
                if (c->broken_seq == 0)
                        printf(": %" PRId64 " record%s, last seq %" PRId64 ", intact\n", c->records,
                               c->records == 1 ? "" : "s", c->last_seq);
                else {
                        printf(": %" PRId64 " record%s, last seq %" PRId64
                               ", NOT intact at seq %" PRId64 ": ",
                               c->records, c->records == 1 ? "" : "s", c->last_seq, c->broken_seq);
                        fputs_escaped(c->reason, stdout);
                        putchar('\n');
                }
                return 0;
        }
        json_object *o = json_object_new_object();
        if (!o || json_object_array_add(hosts, o) < 0) {
                json_object_put(o);
                return -ENOMEM;
        }
        if (audit_add(o, "host", json_object_new_string(c->host)) < 0 ||
            audit_add(o, "records", json_object_new_int64(c->records)) < 0 ||
            audit_add(o, "last_seq", json_object_new_int64(c->last_seq)) < 0 ||
            audit_add(o, "intact", json_object_new_boolean(c->broken_seq == 0)) < 0 ||
            json_object_object_add(
                    o, "seq", c->broken_seq ? json_object_new_int64(c->broken_seq) : NULL) < 0 ||
            json_object_object_add(o, "reason",
                                   c->broken_seq ? json_object_new_string(c->reason) : NULL) < 0)
                return -ENOMEM;
        return 0;
}

int audit_verify_fleet(AuditArgs *a) {
        _cleanup_(PQfinishp) PGconn *conn = NULL;
        _cleanup_(audit_hasher_freep) AuditHasher *hasher = NULL;
        _cleanup_(json_object_putp) json_object *hosts = a->json ? json_object_new_array() : NULL;
        bool as_host;
        char buf[512];
        int r;

        if ((r = connect_fleet(a, &conn, &as_host)) != CONTINUE)
                return r;
        if ((a->json && !hosts) || audit_hasher_new(&hasher) < 0)
                return audit_fail_oom(a);
        if (as_host)
                fputs("jitctl: note: connected with this host's fleet credentials: only the "
                      "chains its role may read are verified (its own)\n",
                      stderr);

        /* A read-only snapshot: the chains as they stood at one instant. The cursor keeps
         * memory to one batch whatever the chains' length. at in microseconds, exactly
         * (extract gives a numeric). */
        _cleanup_(PQclearp) PGresult *begin = PQexec(
                conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
                      "DECLARE chains NO SCROLL CURSOR FOR SELECT origin_host, seq, "
                      "(extract(epoch FROM at) * 1000000)::bigint, kind, request_id, actor, "
                      "data::text, prev_hash, hash FROM jit_fleet.audit ORDER BY origin_host, seq");
        if (PQresultStatus(begin) != PGRES_COMMAND_OK)
                return audit_fail(a, JIT_EXIT_FAILURE, "database",
                                  "cannot read the fleet's audit records: %s",
                                  pg_line(PQerrorMessage(conn), buf, sizeof(buf)));

        FleetChain c = {};
        size_t n_hosts = 0, n_broken = 0;
        int64_t total = 0;
        for (;;) {
                _cleanup_(PQclearp) PGresult *res =
                        PQexec(conn, "FETCH " STRINGIFY(FLEET_VERIFY_BATCH) " FROM chains");
                if (PQresultStatus(res) != PGRES_TUPLES_OK)
                        return audit_fail(a, JIT_EXIT_FAILURE, "database",
                                          "cannot read the fleet's audit records: %s",
                                          pg_line(PQerrorMessage(conn), buf, sizeof(buf)));
                int n = PQntuples(res);
                for (int i = 0; i < n; i++) {
                        const char *host = PQgetvalue(res, i, 0);
                        if (n_hosts == 0 || !STREQ(host, c.host)) {
                                if (n_hosts > 0 && chain_report(a, &c, hosts) < 0)
                                        return audit_fail_oom(a);
                                n_broken += n_hosts > 0 && c.broken_seq != 0;
                                c = (FleetChain){};
                                snprintf(c.host, sizeof(c.host), "%s", host);
                                n_hosts++;
                        }
                        if ((r = check_row(hasher, &c, res, i)) < 0)
                                return audit_fail(a, JIT_EXIT_FAILURE, "internal",
                                                  "cannot compute a hash: %s", strerror(-r));
                        total++;
                }
                if (n < FLEET_VERIFY_BATCH)
                        break;
        }
        if (n_hosts > 0) {
                if (chain_report(a, &c, hosts) < 0)
                        return audit_fail_oom(a);
                n_broken += c.broken_seq != 0;
        }
        bool intact = n_broken == 0;
        if (!a->json) {
                if (intact)
                        printf("fleet audit intact: %zu host%s, %" PRId64 " record%s\n", n_hosts,
                               n_hosts == 1 ? "" : "s", total, total == 1 ? "" : "s");
                else
                        printf("fleet audit NOT intact: %zu of %zu host%s broken\n", n_broken,
                               n_hosts, n_hosts == 1 ? "" : "s");
                return intact ? JIT_EXIT_OK : JIT_EXIT_FAILURE;
        }
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        if (!o || audit_add(o, "intact", json_object_new_boolean(intact)) < 0 ||
            audit_add(o, "records", json_object_new_int64(total)) < 0 ||
            audit_add(o, "scope", json_object_new_string(as_host ? "own" : "all")) < 0 ||
            json_object_object_add(o, "hosts", TAKE_PTR(hosts)) < 0)
                return audit_fail_oom(a);
        if (print_json(o, stdout) < 0)
                return audit_fail_oom(a);
        return intact ? JIT_EXIT_OK : JIT_EXIT_FAILURE;
}
