/* SPDX-License-Identifier: MIT */
/* jitctl fleet: the fleet administrator's commands (docs/fleet.md). They speak to the
 * fleet's PostgreSQL database directly, with libpq's blocking calls and the administrator's
 * role, and never to the broker: migrate brings the schema (broker/fleet-schema/) to the
 * version this jitctl was built with, add-host registers a host and creates its role. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cleanup.h"
#include "fleet-fetch-key.h"
#include "fleet-schema.h"
#include "host-selector.h"
#include "jitctl-command.h"
#include "jitctl-exit.h"
#include "jitctl-format.h"

/* A password of 32 random bytes, in hex: nothing a password file would need to escape. */
#define HOST_PASSWORD_BYTES 32
/* Connections one host role may hold: the broker's, and room for a restart's overlap. */
#define HOST_CONNECTION_LIMIT 4
/* Keys of the lock that serialises migrations of one database ("jit fleet"). */
#define MIGRATION_LOCK_KEY INT64_C(0x6a6974666c656574)

/* clang-format off */
const char fleet_help[] =
        "Usage: jitctl fleet migrate --database URI [--to VERSION]\n"
        "       jitctl fleet add-host NAME --database URI [--labels K=V,...] [--review]\n"
        "       jitctl fleet add-host NAME --rekey --database URI\n"
        "       jitctl fleet add-poll-login NAME --database URI\n"
        "\n"
        "The fleet's store in PostgreSQL (docs/fleet.md), run as its administrator role.\n"
        "\n"
        "migrate   Brings the fleet schema to the newest version this jitctl knows (or to\n"
        "          VERSION), in one transaction, applying every version it lacks; does\n"
        "          nothing when it has them, and refuses a database whose schema is newer\n"
        "          than this jitctl\n"
        "add-host  Registers host NAME with its labels and creates its database role;\n"
        "          prints the line for the host's credentials file; with --rekey, gives\n"
        "          a registered host a new password and fetch key instead\n"
        "add-poll-login  Creates the login every host may share for the poll of the change\n"
        "          feed (a member of jit_fleet_watch only); prints the line for the\n"
        "          file fleet.poll_credentials names\n"
        "\n"
        "Options:\n"
        "  --database URI   The fleet database, a libpq URI: postgresql://...\n"
        "  --to VERSION     migrate: stop at this version\n"
        "  --labels K=V,... add-host: the host's labels, as the profile of its policy has them\n"
        "  --review         add-host: approvers act from this host (its role reads every request)\n"
        "  --rekey          add-host: a new password (and fetch key) for a registered host\n"
        "  -h, --help       Show this help\n"
        "\n"
        "Exit status: 0 success, 1 failure, 2 usage error, 4 database unreachable.\n";
/* clang-format on */

DEFINE_TRIVIAL_CLEANUP_FUNC(PGconn *, PQfinish);
DEFINE_TRIVIAL_CLEANUP_FUNC(PGresult *, PQclear);
static inline void pq_freemem_p(char **p) {
        PQfreemem(*p);
}

/* PostgreSQL's message, on one line, without its trailing newline. */
static const char *pg_message(const PGconn *conn, char *buf, size_t len) {
        snprintf(buf, len, "%s", PQerrorMessage(conn));
        for (char *c = buf; *c; c++)
                if (*c == '\n')
                        *c = c[1] ? ' ' : '\0';
        return buf;
}

static int fail_pg(const Context *c, const PGconn *conn, const char *what) {
        char buf[1024];
        return fail(c, JIT_EXIT_FAILURE, "database", "%s: %s", what,
                    pg_message(conn, buf, sizeof(buf)));
}

static int connect_database(const Context *c, const char *uri, PGconn **ret) {
        char buf[1024];

        if (strncmp(uri, "postgresql://", 13) != 0 && strncmp(uri, "postgres://", 11) != 0)
                return usage_error(c, "--database: expected a URI postgresql://...");
        _cleanup_(PQfinishp) PGconn *conn = PQconnectdb(uri);
        if (!conn)
                return fail_oom(c);
        if (PQstatus(conn) != CONNECTION_OK)
                return fail(c, JIT_EXIT_UNREACHABLE, "unreachable",
                            "cannot connect to the fleet database: %s",
                            pg_message(conn, buf, sizeof(buf)));
        /* "already exists, skipping" is what an idempotent step is expected to meet. */
        _cleanup_(PQclearp) PGresult *res = PQexec(conn, "SET client_min_messages = warning");
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
                return fail_pg(c, conn, "cannot set up the session");
        *ret = TAKE_PTR(conn);
        return CONTINUE;
}

/* Runs sql (one or more statements, no parameters); CONTINUE or the failure reported. */
static int exec_ok(const Context *c, PGconn *conn, const char *sql, const char *what) {
        _cleanup_(PQclearp) PGresult *res = PQexec(conn, sql);
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
                return fail_pg(c, conn, what);
        return CONTINUE;
}

/* Inside a transaction: creates the schema and its version table when missing, then
 * reads which versions it holds: *ret the highest (0 for a database the fleet never used),
 * missing[i] whether fleet_migrations[i] was never applied (missing may be NULL). A version
 * may be missing below the highest: a store migrated by a jitctl built without it. */
static int schema_version(const Context *c, PGconn *conn, bool create, int *ret, bool *missing) {
        int r;

        if (create && (r = exec_ok(c, conn,
                                   "CREATE SCHEMA IF NOT EXISTS jit_fleet;"
                                   "CREATE TABLE IF NOT EXISTS jit_fleet.schema_version ("
                                   " version integer PRIMARY KEY CHECK (version > 0),"
                                   " name text NOT NULL,"
                                   " applied_at timestamptz NOT NULL DEFAULT now())",
                                   "cannot create the schema jit_fleet")) != CONTINUE)
                return r;
        _cleanup_(PQclearp) PGresult *res =
                PQexec(conn, "SELECT version FROM jit_fleet.schema_version ORDER BY version");
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
                return fail_pg(c, conn, "cannot read the fleet schema's version");
        for (size_t i = 0; missing && i < fleet_migrations_n; i++)
                missing[i] = true;
        *ret = 0;
        for (int row = 0; row < PQntuples(res); row++) {
                int v = atoi(PQgetvalue(res, row, 0));
                if (v > *ret)
                        *ret = v;
                for (size_t i = 0; missing && i < fleet_migrations_n; i++)
                        if (fleet_migrations[i].version == v)
                                missing[i] = false;
        }
        return CONTINUE;
}

/* The first built-in version the store lacks, or 0 when it has them all. */
static int first_missing(const bool *missing) {
        for (size_t i = 0; i < fleet_migrations_n; i++)
                if (missing[i])
                        return fleet_migrations[i].version;
        return 0;
}

static int refuse_older(const Context *c, int lacking) {
        return fail(c, JIT_EXIT_FAILURE, "schema-too-old",
                    "the fleet schema lacks version %d: run jitctl fleet migrate first", lacking);
}

static int refuse_newer(const Context *c, int version) {
        return fail(c, JIT_EXIT_FAILURE, "schema-too-new",
                    "the fleet schema is at version %d; this jitctl knows versions up to %d: "
                    "upgrade jit first",
                    version, fleet_schema_newest());
}

static int migrate(const Context *c, const char *uri, int target) {
        _cleanup_(PQfinishp) PGconn *conn = NULL;
        _cleanup_free_ bool *missing = calloc(fleet_migrations_n, sizeof(bool));
        int r, from, to;

        if (!missing)
                return fail_oom(c);
        if ((r = connect_database(c, uri, &conn)) != CONTINUE)
                return r;
        /* One transaction for every step: a failure leaves the database as it was. The lock
         * makes a second migrate wait, then find nothing to do. */
        if ((r = exec_ok(c, conn, "BEGIN", "cannot begin")) != CONTINUE)
                return r;
        char lock[128];
        snprintf(lock, sizeof(lock), "SELECT pg_advisory_xact_lock(%lld)",
                 (long long) MIGRATION_LOCK_KEY);
        if ((r = exec_ok(c, conn, lock, "cannot lock the fleet schema")) != CONTINUE ||
            (r = schema_version(c, conn, true, &from, missing)) != CONTINUE)
                return r;
        if (from > fleet_schema_newest())
                return refuse_newer(c, from);
        /* Every version up to the target that the store lacks, in order, those below its
         * highest too: each migration is written to be applied after later ones. */
        size_t n = 0;
        to = from;
        for (size_t i = 0; i < fleet_migrations_n; i++) {
                missing[i] = missing[i] && fleet_migrations[i].version <= target;
                if (missing[i]) {
                        n++;
                        if (fleet_migrations[i].version > to)
                                to = fleet_migrations[i].version;
                }
        }
        if (n == 0) {
                if ((r = exec_ok(c, conn, "COMMIT", "cannot commit")) != CONTINUE)
                        return r;
                printf("fleet schema: at version %d, nothing to do\n", from);
                return JIT_EXIT_OK;
        }
        for (size_t i = 0; i < fleet_migrations_n; i++) {
                const FleetMigration *m = &fleet_migrations[i];
                char what[128], version[16];

                if (!missing[i])
                        continue;
                snprintf(what, sizeof(what), "migration %s failed", m->name);
                if ((r = exec_ok(c, conn, m->sql, what)) != CONTINUE)
                        return r;
                snprintf(version, sizeof(version), "%d", m->version);
                const char *params[] = { version, m->name };
                _cleanup_(PQclearp) PGresult *res = PQexecParams(
                        conn,
                        "INSERT INTO jit_fleet.schema_version (version, name) VALUES ($1, $2)", 2,
                        NULL, params, NULL, NULL, 0);
                if (PQresultStatus(res) != PGRES_COMMAND_OK)
                        return fail_pg(c, conn, "cannot record the schema's version");
        }
        if ((r = exec_ok(c, conn, "COMMIT", "cannot commit the migration")) != CONTINUE)
                return r;
        printf("fleet schema: version %d -> %d (", from, to);
        bool first = true;
        for (size_t i = 0; i < fleet_migrations_n; i++)
                if (missing[i]) {
                        printf("%s%s", first ? "" : ", ", fleet_migrations[i].name);
                        first = false;
                }
        puts(")");
        return JIT_EXIT_OK;
}

/* --labels as a JSON object, for the hosts table. */
static int labels_json(const Context *c, const char *labels, char **ret) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        HostSelector *sel = NULL;
        const char *why = NULL;

        if (!o)
                return fail_oom(c);
        if (labels) {
                int r = host_selector_parse(labels, &sel, &why);
                if (r == -ENOMEM)
                        return fail_oom(c);
                if (r < 0 || sel->host) {
                        host_selector_free(sel);
                        return usage_error(c, "--labels: expected K=V,...: %s",
                                           r < 0 ? why : "a host name is no label");
                }
                for (size_t i = 0; i < sel->n_terms; i++)
                        json_object_object_add(o, sel->terms[i].key,
                                               json_object_new_string(sel->terms[i].value));
                host_selector_free(sel);
        }
        *ret = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        return *ret ? CONTINUE : fail_oom(c);
}

/* Registers host name with a new role, or with rekey gives its role a new password; either
 * way the store keeps the hash of the fetch key derived from the password (schema version
 * 8), which the shared poll login's fetch for this host must present. */
/* A new role password: HOST_PASSWORD_BYTES random bytes as hex. */
static int random_password(const Context *c, char password[static 2 * HOST_PASSWORD_BYTES + 1]) {
        uint8_t random[HOST_PASSWORD_BYTES];
        if (getrandom(random, sizeof(random), 0) != (ssize_t) sizeof(random))
                return fail(c, JIT_EXIT_FAILURE, "internal", "getrandom: %m");
        for (size_t i = 0; i < sizeof(random); i++)
                snprintf(password + 2 * i, 3, "%02x", random[i]);
        explicit_bzero(random, sizeof(random));
        return CONTINUE;
}

/* Connects and begins a transaction on a store that has every version this jitctl knows
 * and no newer one (registering needs the schema it was written for). */
static int begin_at_known_schema(const Context *c, const char *uri, PGconn **ret) {
        _cleanup_free_ bool *missing = calloc(fleet_migrations_n, sizeof(bool));
        int r, version;

        if (!missing)
                return fail_oom(c);
        if ((r = connect_database(c, uri, ret)) != CONTINUE)
                return r;
        if ((r = exec_ok(c, *ret, "BEGIN", "cannot begin")) != CONTINUE ||
            (r = schema_version(c, *ret, false, &version, missing)) != CONTINUE)
                return r;
        if (version > fleet_schema_newest())
                return refuse_newer(c, version);
        if (first_missing(missing) > 0)
                return refuse_older(c, first_missing(missing));
        return CONTINUE;
}

/* The role's name as an identifier and its password's SCRAM verifier as a literal. The
 * server stores only the verifier: the password never crosses the wire and never lands in
 * a server log. */
static int role_literals(const Context *c, PGconn *conn, const char *role, const char *password,
                         const char *what, char **ret_role_id, char **ret_verifier_lit) {
        _cleanup_(pq_freemem_p) char *verifier =
                PQencryptPasswordConn(conn, password, role, "scram-sha-256");
        *ret_role_id = PQescapeIdentifier(conn, role, strlen(role));
        *ret_verifier_lit = verifier ? PQescapeLiteral(conn, verifier, strlen(verifier)) : NULL;
        if (!verifier || !*ret_role_id || !*ret_verifier_lit)
                return fail_pg(c, conn, what);
        return CONTINUE;
}

/* add-host --rekey: a registered host's role gets a new password and the host the hash of
 * the fetch key derived from it, in one transaction (the caller's BEGIN). */
static int rekey_host(const Context *c, PGconn *conn, const char *name, const char *role,
                      const char *role_id, const char *verifier_lit, const char *key_hash,
                      char *password) {
        const char *params[] = { name, role, key_hash };
        _cleanup_(PQclearp) PGresult *res = PQexecParams(
                conn,
                "UPDATE jit_fleet.hosts SET fetch_key_hash = $3 WHERE name = $1 AND role_name = $2",
                3, NULL, params, NULL, NULL, 0);
        int r;

        if (PQresultStatus(res) != PGRES_COMMAND_OK)
                return fail_pg(c, conn, "cannot set the host's fetch key");
        if (!STREQ(PQcmdTuples(res), "1"))
                return fail(c, JIT_EXIT_FAILURE, "not-found",
                            "host %s is not registered in the fleet with role %s (jitctl fleet "
                            "add-host %s)",
                            name, role, name);
        _cleanup_free_ char *alter = NULL;
        if (asprintf(&alter, "ALTER ROLE %s PASSWORD %s", role_id, verifier_lit) < 0)
                return fail_oom(c);
        if ((r = exec_ok(c, conn, alter, "cannot set the host's password")) != CONTINUE ||
            (r = exec_ok(c, conn, "COMMIT", "cannot commit")) != CONTINUE)
                return r;
        printf("Host %s has a new password and fetch key: the old password no longer logs in.\n"
               "Replace the line in the host's credentials file (fleet.credentials in its\n"
               "policy; owner root, mode 0600) with this one and restart its broker:\n",
               name);
        printf("*:*:%s:%s:%s\n", PQdb(conn), role, password);
        explicit_bzero(password, 2 * HOST_PASSWORD_BYTES + 1);
        return JIT_EXIT_OK;
}

static int add_host(const Context *c, const char *uri, const char *name, const char *labels,
                    bool review, bool rekey) {
        _cleanup_(PQfinishp) PGconn *conn = NULL;
        _cleanup_free_ char *labels_text = NULL;
        char password[2 * HOST_PASSWORD_BYTES + 1];
        char key[FLEET_FETCH_KEY_HEX_LEN + 1], key_hash[FLEET_FETCH_KEY_HEX_LEN + 1];
        char role[sizeof(FLEET_HOST_ROLE_PREFIX) + FLEET_HOST_NAME_MAX];
        int r;

        if (!fleet_host_name_is_valid(name))
                return usage_error(c,
                                   "'%s' is not a fleet host name (lowercase letters, digits, "
                                   "'-' and '.', at most %u bytes)",
                                   name, FLEET_HOST_NAME_MAX);
        if ((r = labels_json(c, labels, &labels_text)) != CONTINUE)
                return r;
        snprintf(role, sizeof(role), FLEET_HOST_ROLE_PREFIX "%s", name);

        if ((r = random_password(c, password)) != CONTINUE)
                return r;
        /* Only the key's hash leaves this process: the key is derived again by the host's
         * broker from the password it already has. */
        r = fleet_fetch_key_derive(password, key);
        if (r >= 0)
                r = fleet_fetch_key_hash(key, key_hash);
        explicit_bzero(key, sizeof(key));
        if (r < 0)
                return fail(c, JIT_EXIT_FAILURE, "internal", "cannot hash the fetch key");

        _cleanup_(pq_freemem_p) char *role_id = NULL, *verifier_lit = NULL;
        if ((r = begin_at_known_schema(c, uri, &conn)) != CONTINUE ||
            (r = role_literals(c, conn, role, password, "cannot prepare the host's role", &role_id,
                               &verifier_lit)) != CONTINUE)
                return r;
        if (rekey)
                return rekey_host(c, conn, name, role, role_id, verifier_lit, key_hash, password);
        _cleanup_free_ char *create = NULL;
        if (asprintf(&create,
                     "CREATE ROLE %s LOGIN CONNECTION LIMIT %d PASSWORD %s "
                     "IN ROLE jit_fleet_host",
                     role_id, HOST_CONNECTION_LIMIT, verifier_lit) < 0)
                return fail_oom(c);
        if ((r = exec_ok(c, conn, create, "cannot create the host's role")) != CONTINUE)
                return r;
        const char *params[] = { name, role, labels_text, review ? "true" : "false", key_hash };
        _cleanup_(PQclearp) PGresult *res = PQexecParams(
                conn,
                "INSERT INTO jit_fleet.hosts (name, role_name, labels, reviews, fetch_key_hash) "
                "VALUES ($1, $2, $3::jsonb, $4::boolean, $5)",
                5, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
                return fail_pg(c, conn, "cannot register the host");
        if ((r = exec_ok(c, conn, "COMMIT", "cannot commit")) != CONTINUE)
                return r;

        printf("Host %s added to the fleet: role %s, labels %s%s.\n", name, role, labels_text,
               review ? ", a review host" : "");
        printf("Put this line in the host's credentials file (fleet.credentials in its policy;\n"
               "owner root, mode 0600):\n");
        printf("*:*:%s:%s:%s\n", PQdb(conn), role, password);
        explicit_bzero(password, sizeof(password));
        return JIT_EXIT_OK;
}

/* The shared poll login's name: 1 to 63 of [a-z0-9_], a letter first, and none of the
 * fleet's own roles. */
static bool poll_login_name_is_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 63 || !(s[0] >= 'a' && s[0] <= 'z') ||
            strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)
                return false;
        return strncmp(s, FLEET_HOST_ROLE_PREFIX, strlen(FLEET_HOST_ROLE_PREFIX)) != 0 &&
               !STREQ(s, "jit_fleet_host") && !STREQ(s, "jit_fleet_watch");
}

/* The login every host may share for the cheap poll (docs/fleet.md, "Propagation"): a
 * member of jit_fleet_watch and nothing else, so it reads the change feed (and the schema's
 * version) only. No connection limit: its connections are pgbouncer's clients. */
static int add_poll_login(const Context *c, const char *uri, const char *name) {
        _cleanup_(PQfinishp) PGconn *conn = NULL;
        char password[2 * HOST_PASSWORD_BYTES + 1];
        int r;

        if (!poll_login_name_is_valid(name))
                return usage_error(c,
                                   "'%s' is not a poll login name (1 to 63 of lowercase letters, "
                                   "digits and '_', a letter first; not jit_host_*, "
                                   "jit_fleet_host or jit_fleet_watch)",
                                   name);
        if ((r = random_password(c, password)) != CONTINUE)
                return r;

        _cleanup_(pq_freemem_p) char *role_id = NULL, *verifier_lit = NULL;
        if ((r = begin_at_known_schema(c, uri, &conn)) != CONTINUE ||
            (r = role_literals(c, conn, name, password, "cannot prepare the poll login", &role_id,
                               &verifier_lit)) != CONTINUE)
                return r;
        _cleanup_free_ char *create = NULL;
        if (asprintf(&create, "CREATE ROLE %s LOGIN PASSWORD %s IN ROLE jit_fleet_watch", role_id,
                     verifier_lit) < 0)
                return fail_oom(c);
        if ((r = exec_ok(c, conn, create, "cannot create the poll login")) != CONTINUE ||
            (r = exec_ok(c, conn, "COMMIT", "cannot commit")) != CONTINUE)
                return r;

        printf("Poll login %s created: a member of jit_fleet_watch only.\n", name);
        printf("Put this line in the file fleet.poll_credentials names on every host (owner\n"
               "root, mode 0600):\n");
        printf("*:*:%s:%s:%s\n", PQdb(conn), name, password);
        explicit_bzero(password, sizeof(password));
        return JIT_EXIT_OK;
}

int cmd_fleet(Context *c, int argc, char *argv[]) {
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "database", required_argument, NULL, ARG_DATABASE },
                { "to", required_argument, NULL, ARG_TO },
                { "labels", required_argument, NULL, ARG_LABELS },
                { "review", no_argument, NULL, ARG_REVIEW },
                { "rekey", no_argument, NULL, ARG_REKEY },
                {},
        };
        const char *database = NULL, *labels = NULL;
        int64_t to = fleet_schema_newest();
        bool have_to = false, review = false, rekey = false;
        int opt, r;

        begin_options();
        while ((opt = next_option(c, argc, argv, options)) >= 0)
                switch (opt) {
                case 'h':
                        return print_help(c);
                case ARG_DATABASE:
                        if ((r = check_text(c, "--database", optarg, 1024)) != CONTINUE)
                                return r;
                        database = optarg;
                        break;
                case ARG_TO:
                        if (parse_positive(optarg, fleet_schema_newest(), &to) < 0)
                                return usage_error(c, "--to: expected a version from 1 to %d",
                                                   fleet_schema_newest());
                        have_to = true;
                        break;
                case ARG_LABELS:
                        labels = optarg;
                        break;
                case ARG_REVIEW:
                        review = true;
                        break;
                case ARG_REKEY:
                        rekey = true;
                        break;
                default:
                        return option_error(c);
                }
        if (c->json)
                return usage_error(c, "--json is not supported by fleet");
        if (optind >= argc)
                return usage_error(c, "missing subcommand (migrate, add-host or add-poll-login)");
        const char *sub = argv[optind++];
        if (!database)
                return usage_error(c, "%s: --database URI is required", sub);
        if (STREQ(sub, "migrate")) {
                if (labels || review || rekey)
                        return usage_error(c, "migrate: --labels, --review and --rekey are for "
                                              "add-host");
                if ((r = check_no_more_args(c, argc, argv, 0)) != CONTINUE)
                        return r;
                return migrate(c, database, (int) to);
        }
        if (STREQ(sub, "add-host")) {
                if (have_to)
                        return usage_error(c, "add-host: --to is for migrate");
                if (rekey && (labels || review))
                        return usage_error(c, "add-host --rekey: takes only --database (the "
                                              "host's labels stay)");
                if (optind >= argc)
                        return usage_error(c, "add-host: missing the host's name");
                if ((r = check_no_more_args(c, argc, argv, 1)) != CONTINUE)
                        return r;
                return add_host(c, database, argv[optind], labels, review, rekey);
        }
        if (STREQ(sub, "add-poll-login")) {
                if (have_to || labels || review || rekey)
                        return usage_error(c, "add-poll-login: takes only --database");
                if (optind >= argc)
                        return usage_error(c, "add-poll-login: missing the login's name");
                if ((r = check_no_more_args(c, argc, argv, 1)) != CONTINUE)
                        return r;
                return add_poll_login(c, database, argv[optind]);
        }
        return usage_error(c,
                           "unknown subcommand '%s' (expected migrate, add-host or "
                           "add-poll-login)",
                           sub);
}
