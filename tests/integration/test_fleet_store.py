#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The fleet's store on a real PostgreSQL (docs/fleet.md): `jitctl fleet migrate` on an
empty database and from the previous schema version, its refusals, `jitctl fleet
add-host`, and the row-level security that keeps each host's role to its own rows and to
what concerns it. SKIP only when the PostgreSQL server binaries are not installed."""

import hashlib
import os
import re
import sys
import unittest

import jittest
import pgserver
from jittest import BROKERD, EXIT_FAILURE, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, JITCTL, run

ADMIN = "jit_fleet_admin"
ADMIN_PASSWORD = "administrator-of-the-fleet"
ZEROS = "0" * 64
RLS_REFUSED = "new row violates row-level security policy"
POLL = "jit_fleet_poll"
FETCH_REFUSED = "fleet fetch refused: wrong host or fetch key"
SCHEMA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "broker",
                          "fleet-schema")


def jitctl(*args):
    return run([JITCTL, *args], check=False)


class FleetStoreTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = pgserver.PgServer()
        try:
            cls.pg.psql(cls.pg.superuser_uri,
                        f"CREATE ROLE {ADMIN} LOGIN CREATEROLE PASSWORD '{ADMIN_PASSWORD}'")
            for db in ("jit", "jit_empty", "jit_old", "jit_new", "jit_clash", "jit_gap"):
                cls.pg.psql(cls.pg.superuser_uri, f"CREATE DATABASE {db} OWNER {ADMIN}")
            cls.admin_passfile = cls.pg.passfile(ADMIN, ADMIN_PASSWORD)
            p = jitctl("fleet", "migrate", "--database", cls.admin_uri("jit"))
            if p.returncode != 0:
                raise RuntimeError(f"migrate failed: {p.stderr}")
            cls.hosts = {}
            cls.passwords = {}
            for name, labels, extra in (("a", "environment=staging,role=db", ()),
                                         ("b", "environment=production,role=db", ()),
                                         ("c", "environment=staging,role=web", ()),
                                         ("r", "environment=production", ("--review",))):
                cls.hosts[name] = cls.add_host("jit", name, labels, *extra)
            p = jitctl("fleet", "add-poll-login", POLL, "--database", cls.admin_uri("jit"))
            if p.returncode != 0:
                raise RuntimeError(f"add-poll-login failed: {p.stderr}")
            line = p.stdout.strip().splitlines()[-1]
            path = os.path.join(cls.pg.passfiles, POLL)
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write(line + "\n")
            cls.poll_uri = cls.pg.uri("jit", POLL, passfile=path)
        except BaseException:
            cls.pg.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.pg.close()

    @classmethod
    def admin_uri(cls, db):
        return cls.pg.uri(db, ADMIN, passfile=cls.admin_passfile)

    @classmethod
    def add_host(cls, db, name, labels, *extra):
        """Registers host name and returns the URI its broker would use."""
        p = jitctl("fleet", "add-host", name, "--database", cls.admin_uri(db), "--labels", labels,
                   *extra)
        if p.returncode != 0:
            raise RuntimeError(f"add-host {name} failed: {p.stderr}")
        line = p.stdout.strip().splitlines()[-1]
        m = re.fullmatch(r"\*:\*:" + db + r":(jit_host_[a-z0-9.-]+):([0-9a-f]{64})", line)
        if not m:
            raise RuntimeError(f"add-host printed no password line: {p.stdout!r}")
        role, password = m.groups()
        if role != "jit_host_" + name:
            raise RuntimeError(f"unexpected role {role}")
        cls.passwords[name] = password
        path = os.path.join(cls.pg.passfiles, role)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(line + "\n")  # the line exactly as printed, as a sysadmin would paste it
        return cls.pg.uri(db, role, passfile=path)

    # --- helpers -------------------------------------------------------------------------

    def sql_as(self, host, sql, check=True):
        uri = self.admin_uri("jit") if host == "admin" else self.hosts[host]
        return self.pg.psql(uri, sql, check=check)

    def rows_as(self, host, sql):
        uri = self.admin_uri("jit") if host == "admin" else self.hosts[host]
        return self.pg.query(uri, sql)

    def refused(self, host, sql, message):
        p = self.sql_as(host, sql, check=False)
        self.assertNotEqual(p.returncode, 0, f"{host} was allowed: {sql}")
        self.assertIn(message, p.stderr)

    def file_request(self, host, origin_id, selector, selector_host=None, labels="{}"):
        """Files a request as host (its own origin); returns its fleet id."""
        sh = f"'{selector_host}'" if selector_host else "NULL"
        rows = self.rows_as(host, f"""
            INSERT INTO jit_fleet.requests (origin_host, origin_id, requester, service, reason,
                duration_s, selector, selector_host, selector_labels, rule, policy_version)
            VALUES ('{host}', {origin_id}, 'alice', 'sudo', 'rotate the certificate', 3600,
                '{selector}', {sh}, '{labels}', 'staging', '{"a" * 64}')
            RETURNING id""")
        return int(rows[0][0])

    def request_fixture(self, origin_id):
        """a's request for environment=staging and b's for host b itself."""
        staging = self.file_request("a", origin_id, "environment=staging",
                                    labels='{"environment": "staging"}')
        b_only = self.file_request("b", origin_id, "b", selector_host="b")
        return staging, b_only

    def fetch_key(self, host):
        """The fetch key a host's broker derives from its role's password."""
        return hashlib.sha256(("jit-fleet-fetch-key\n" + self.passwords[host]).encode()).hexdigest()

    def shared_fetch(self, host, key, ids, uri=None):
        """jit_fleet.fetch_for_host as the poll login; the CompletedProcess."""
        id_list = "{" + ",".join(str(i) for i in ids) + "}"
        return self.pg.psql(uri or self.poll_uri,
                            f"SELECT * FROM jit_fleet.fetch_for_host('{host}', '{key}', "
                            f"'{id_list}'::bigint[])", check=False)

    # --- migrations ----------------------------------------------------------------------

    def versions(self, db):
        return self.pg.query(self.admin_uri(db),
                             "SELECT version, name FROM jit_fleet.schema_version ORDER BY 1")

    def test_migrate_empty_database(self):
        p = jitctl("fleet", "migrate", "--database", self.admin_uri("jit_empty"))
        self.assertEqual(p.returncode, EXIT_OK, p.stderr)
        self.assertEqual(p.stdout, "fleet schema: version 0 -> 8 (0001-core, 0002-change-feed, "
                                   "0003-host-reads-version, 0004-audit-upload, 0005-request-expiry, "
                                   "0006-fleet-identity, 0007-server-time-covered-hosts, "
                                   "0008-shared-fetch)\n")
        self.assertEqual(self.versions("jit_empty"), [["1", "0001-core"], ["2", "0002-change-feed"],
                                                      ["3", "0003-host-reads-version"],
                                                      ["4", "0004-audit-upload"],
                                                      ["5", "0005-request-expiry"],
                                                      ["6", "0006-fleet-identity"],
                                                      ["7", "0007-server-time-covered-hosts"],
                                                      ["8", "0008-shared-fetch"]])
        # 6: one fleet identity, random, readable by the host roles.
        ident = self.pg.query(self.admin_uri("jit_empty"), "SELECT id FROM jit_fleet.fleet_identity")
        self.assertEqual(len(ident), 1)
        self.assertRegex(ident[0][0], r"^[0-9a-f]{32}$")
        self.assertEqual(self.pg.query(self.admin_uri("jit_empty"),
                                       "SELECT has_table_privilege('jit_fleet_host', "
                                       "'jit_fleet.fleet_identity', 'SELECT'), "
                                       "has_table_privilege('jit_fleet_host', "
                                       "'jit_fleet.fleet_identity', 'UPDATE')"), [["t", "f"]])
        # Again: nothing to do, nothing changed.
        p = jitctl("fleet", "migrate", "--database", self.admin_uri("jit_empty"))
        self.assertEqual(p.returncode, EXIT_OK, p.stderr)
        self.assertEqual(p.stdout, "fleet schema: at version 8, nothing to do\n")
        self.assertEqual(len(self.versions("jit_empty")), 8)

    def test_migrate_applies_a_version_missing_below_the_highest(self):
        # A store migrated by a jitctl built without version 4: it has 5, not 4.
        uri = self.admin_uri("jit_gap")
        p = jitctl("fleet", "migrate", "--database", uri, "--to", "3")
        self.assertEqual(p.returncode, EXIT_OK, p.stderr)
        with open(os.path.join(SCHEMA_DIR, "0005-request-expiry.sql")) as f:
            self.pg.psql(uri, f.read() + "\nINSERT INTO jit_fleet.schema_version (version, name) "
                              "VALUES (5, '0005-request-expiry');")
        # Nothing is registered on such a store.
        p = jitctl("fleet", "add-host", "gap", "--database", uri)
        self.assertEqual(p.returncode, EXIT_FAILURE)
        self.assertEqual(p.stderr, "jitctl: the fleet schema lacks version 4: run jitctl fleet "
                                   "migrate first\n")
        p = jitctl("fleet", "migrate", "--database", uri)
        self.assertEqual(p.returncode, EXIT_OK, p.stderr)
        self.assertEqual(p.stdout, "fleet schema: version 5 -> 8 (0004-audit-upload, "
                                   "0006-fleet-identity, 0007-server-time-covered-hosts, "
                                   "0008-shared-fetch)\n")
        self.assertEqual([v for v, _ in self.versions("jit_gap")],
                         ["1", "2", "3", "4", "5", "6", "7", "8"])
        self.assertEqual(self.pg.query(uri, "SELECT to_regclass('jit_fleet.request_hosts') "
                                            "IS NOT NULL"), [["t"]])
        p = jitctl("fleet", "migrate", "--database", uri)
        self.assertEqual(p.stdout, "fleet schema: at version 8, nothing to do\n")

    def test_upgrade_from_previous_version(self):
        uri = self.admin_uri("jit_old")
        p = jitctl("fleet", "migrate", "--database", uri, "--to", "1")
        self.assertEqual(p.returncode, EXIT_OK, p.stderr)
        self.assertEqual(p.stdout, "fleet schema: version 0 -> 1 (0001-core)\n")
        self.assertEqual(self.pg.query(uri, "SELECT to_regclass('jit_fleet.changes') IS NULL"),
                         [["t"]])
        # Data written at version 1, as the administrator (the table owner).
        self.pg.psql(uri, f"""
            INSERT INTO jit_fleet.hosts (name, role_name, labels) VALUES
                ('old-1', 'jit_host_old-1', '{{"environment": "staging"}}');
            INSERT INTO jit_fleet.requests (origin_host, origin_id, requester, service, reason,
                duration_s, selector, selector_labels, rule, policy_version, state,
                state_changed_at)
            VALUES ('old-1', 7, 'alice', 'sudo', 'before the upgrade', 600,
                'environment=staging', '{{"environment": "staging"}}', 'r', '{"b" * 64}',
                'cancelled', now());
            INSERT INTO jit_fleet.approvals (request_id, origin_host, approver, verdict)
            SELECT id, 'old-1', 'bob', 'approve' FROM jit_fleet.requests;""")
        p = jitctl("fleet", "migrate", "--database", uri, "--to", "2")
        self.assertEqual(p.returncode, EXIT_OK, p.stderr)
        self.assertEqual(p.stdout, "fleet schema: version 1 -> 2 (0002-change-feed)\n")
        self.assertEqual(self.versions("jit_old"), [["1", "0001-core"], ["2", "0002-change-feed"]])
        # The rows are kept, and the change feed starts with what was there.
        self.assertEqual(self.pg.query(uri, "SELECT origin_id, reason, state FROM jit_fleet.requests"),
                         [["7", "before the upgrade", "cancelled"]])
        self.assertEqual(
            self.pg.query(uri, "SELECT kind, selector_labels->>'environment' "
                               "FROM jit_fleet.changes ORDER BY seq"),
            [["request", "staging"], ["state", "staging"], ["approval", "staging"]])
        # New writes are fed by the triggers of version 2.
        self.pg.psql(uri, "INSERT INTO jit_fleet.revocations (request_id, origin_host, revoker) "
                          "SELECT id, 'old-1', 'carol' FROM jit_fleet.requests")
        self.assertEqual(self.pg.query(uri, "SELECT kind FROM jit_fleet.changes "
                                            "ORDER BY seq DESC LIMIT 1"), [["revocation"]])
        # Version 3: the roles that poll may read the schema's version (the broker checks it).
        readable = ("SELECT has_table_privilege('jit_fleet_watch', 'jit_fleet.schema_version', "
                    "'SELECT')")
        self.assertEqual(self.pg.query(uri, readable), [["f"]])
        p = jitctl("fleet", "migrate", "--database", uri, "--to", "3")
        self.assertEqual(p.returncode, EXIT_OK, p.stderr)
        self.assertEqual(p.stdout, "fleet schema: version 2 -> 3 (0003-host-reads-version)\n")
        self.assertEqual(self.pg.query(uri, readable), [["t"]])
        # Versions 4 and 5. 4: audit data kept as sent (json), and the view of the hosts a request covers.
        p = jitctl("fleet", "migrate", "--database", uri)
        self.assertEqual(p.returncode, EXIT_OK, p.stderr)
        self.assertEqual(p.stdout, "fleet schema: version 3 -> 8 (0004-audit-upload, "
                                   "0005-request-expiry, 0006-fleet-identity, "
                                   "0007-server-time-covered-hosts, 0008-shared-fetch)\n")
        self.assertEqual(self.pg.query(uri, "SELECT data_type FROM information_schema.columns "
                                            "WHERE table_schema = 'jit_fleet' AND table_name = "
                                            "'audit' AND column_name = 'data'"), [["json"]])
        self.assertEqual(self.pg.query(uri, "SELECT has_table_privilege('jit_fleet_host', "
                                            "'jit_fleet.request_hosts', 'SELECT')"), [["t"]])
        # 5: the old request has no time, and its settled state stays settled.
        self.assertEqual(self.pg.query(uri, "SELECT expires_at IS NULL FROM jit_fleet.requests"),
                         [["t"]])
        p = self.pg.psql(uri, "UPDATE jit_fleet.requests SET state = 'pending'", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("is cancelled already", p.stderr)

    def test_refuses_newer_schema(self):
        uri = self.admin_uri("jit_new")
        self.assertEqual(jitctl("fleet", "migrate", "--database", uri).returncode, EXIT_OK)
        self.pg.psql(uri, "INSERT INTO jit_fleet.schema_version (version, name) "
                          "VALUES (9, '0009-from-the-future')")
        p = jitctl("fleet", "migrate", "--database", uri)
        self.assertEqual(p.returncode, EXIT_FAILURE)
        self.assertEqual(p.stderr, "jitctl: the fleet schema is at version 9; this jitctl knows "
                                   "versions up to 8: upgrade jit first\n")
        p = jitctl("fleet", "add-host", "late", "--database", uri)
        self.assertEqual(p.returncode, EXIT_FAILURE)
        self.assertIn("at version 9", p.stderr)
        self.assertEqual(self.pg.query(uri, "SELECT count(*) FROM jit_fleet.hosts"), [["0"]])
        self.assertEqual(len(self.versions("jit_new")), 9)

    def test_failed_migration_changes_nothing(self):
        # A table in the way: version 1 fails half-way, and the whole transaction goes.
        uri = self.admin_uri("jit_clash")
        self.pg.psql(uri, "CREATE SCHEMA jit_fleet; CREATE TABLE jit_fleet.audit (x int)")
        p = jitctl("fleet", "migrate", "--database", uri)
        self.assertEqual(p.returncode, EXIT_FAILURE)
        self.assertIn("migration 0001-core failed", p.stderr)
        self.assertIn('relation "audit" already exists', p.stderr)
        self.assertEqual(self.pg.query(uri, "SELECT to_regclass('jit_fleet.schema_version') IS NULL, "
                                            "to_regclass('jit_fleet.hosts') IS NULL"),
                         [["t", "t"]])

    def test_migrate_usage_and_unreachable(self):
        p = jitctl("fleet", "migrate", "--database", self.admin_uri("jit"), "--to", "9")
        self.assertEqual(p.returncode, EXIT_USAGE)
        self.assertIn("--to: expected a version from 1 to 8", p.stderr)
        p = jitctl("fleet", "migrate", "--database", "host=/tmp dbname=jit")
        self.assertEqual(p.returncode, EXIT_USAGE)
        p = jitctl("fleet", "migrate")
        self.assertEqual(p.returncode, EXIT_USAGE)
        self.assertIn("--database URI is required", p.stderr)
        missing = os.path.join(self.pg.dir, "nowhere")
        p = jitctl("fleet", "migrate", "--database", f"postgresql:///jit?host={missing}")
        self.assertEqual(p.returncode, EXIT_UNREACHABLE)
        self.assertIn("cannot connect to the fleet database", p.stderr)
        # A wrong password is refused by the server, not by jitctl.
        wrong = self.pg.uri("jit", ADMIN,
                            passfile=self.pg.passfile(ADMIN, "not-the-password", name="wrong"))
        p = jitctl("fleet", "migrate", "--database", wrong)
        self.assertEqual(p.returncode, EXIT_UNREACHABLE)
        self.assertIn("password authentication failed", p.stderr)

    # --- hosts ---------------------------------------------------------------------------

    def test_add_host_refusals(self):
        uri = self.admin_uri("jit")
        p = jitctl("fleet", "add-host", "a", "--database", uri)
        self.assertEqual(p.returncode, EXIT_FAILURE)
        self.assertIn('role "jit_host_a" already exists', p.stderr)
        for bad in ("A", "a-", "a..b", "a_b", "x" * 55):
            p = jitctl("fleet", "add-host", bad, "--database", uri)
            self.assertEqual(p.returncode, EXIT_USAGE, bad)
            self.assertIn("is not a fleet host name", p.stderr)
        for bad in ("environment", "Environment=x", "a=1,a=2", "k=v v"):
            p = jitctl("fleet", "add-host", "fresh", "--database", uri, "--labels", bad)
            self.assertEqual(p.returncode, EXIT_USAGE, bad)
            self.assertIn("--labels: expected K=V,...", p.stderr)
        self.assertEqual(self.rows_as("admin", "SELECT count(*) FROM jit_fleet.hosts "
                                               "WHERE name = 'fresh'"), [["0"]])

    def test_host_sees_only_its_own_host_row(self):
        self.assertEqual(self.rows_as("a", "SELECT name, labels->>'role', reviews "
                                           "FROM jit_fleet.hosts"), [["a", "db", "f"]])
        self.assertEqual(self.rows_as("a", "SELECT jit_fleet.current_host()"), [["a"]])
        self.refused("a", "UPDATE jit_fleet.hosts SET labels = '{}' WHERE name = 'a'",
                     "permission denied for table hosts")
        self.refused("a", "INSERT INTO jit_fleet.hosts (name, role_name) VALUES ('z', 'z')",
                     "permission denied for table hosts")

    # --- row-level security --------------------------------------------------------------

    def test_host_cannot_insert_for_another_origin(self):
        self.refused("a", f"""
            INSERT INTO jit_fleet.requests (origin_host, origin_id, requester, service, reason,
                duration_s, selector, selector_host, rule, policy_version)
            VALUES ('b', 100, 'mallory', 'sudo', 'forged', 60, 'a', 'a', 'r', '{"a" * 64}')""",
                     RLS_REFUSED)
        staging, _ = self.request_fixture(101)
        self.refused("a", f"INSERT INTO jit_fleet.approvals (request_id, origin_host, approver, "
                          f"verdict) VALUES ({staging}, 'c', 'bob', 'approve')", RLS_REFUSED)
        self.refused("a", f"INSERT INTO jit_fleet.revocations (request_id, origin_host, revoker) "
                          f"VALUES ({staging}, 'c', 'bob')", RLS_REFUSED)
        self.refused("a", f"INSERT INTO jit_fleet.audit (origin_host, seq, at, kind, prev_hash, "
                          f"hash) VALUES ('b', 1, now(), 'filed', '{ZEROS}', '{'1' * 64}')",
                     RLS_REFUSED)
        self.assertEqual(self.rows_as("admin", "SELECT count(*) FROM jit_fleet.requests "
                                               "WHERE requester = 'mallory'"), [["0"]])

    def test_host_cannot_update_another_hosts_rows(self):
        staging, b_only = self.request_fixture(102)
        # Another host's row is not there for a's UPDATE: nothing changes.
        p = self.sql_as("a", f"UPDATE jit_fleet.requests SET state = 'cancelled' "
                             f"WHERE id = {b_only} RETURNING id")
        self.assertEqual(p.stdout.strip(), "")
        # Nor for c, to which a's staging request is visible.
        p = self.sql_as("c", f"UPDATE jit_fleet.requests SET state = 'cancelled' "
                             f"WHERE id = {staging} RETURNING id")
        self.assertEqual(p.stdout.strip(), "")
        self.assertEqual(self.rows_as("admin", f"SELECT state FROM jit_fleet.requests "
                                               f"WHERE id IN ({staging}, {b_only})"),
                         [["pending"], ["pending"]])
        # Its own row: only the state, and never handed to another origin.
        p = self.sql_as("a", f"UPDATE jit_fleet.requests SET state = 'cancelled', "
                             f"state_changed_at = now() WHERE id = {staging} RETURNING state")
        self.assertEqual(p.stdout.strip(), "cancelled")
        self.refused("a", f"UPDATE jit_fleet.requests SET origin_host = 'b' WHERE id = {staging}",
                     "permission denied for table requests")
        self.refused("a", f"UPDATE jit_fleet.requests SET selector = 'role=db' WHERE id = {staging}",
                     "permission denied for table requests")
        self.refused("a", f"DELETE FROM jit_fleet.requests WHERE id = {staging}",
                     "permission denied for table requests")
        self.refused("c", f"DELETE FROM jit_fleet.requests WHERE id = {staging}",
                     "permission denied for table requests")

    def test_host_reads_only_what_concerns_it(self):
        staging, b_only = self.request_fixture(103)
        web = self.file_request("c", 103, "role=web", labels='{"role": "web"}')

        def visible(host):
            ids = {int(r[0]) for r in self.rows_as(host, "SELECT id FROM jit_fleet.requests")}
            return ids & {staging, b_only, web}

        self.assertEqual(visible("a"), {staging})        # its own; b's names b; a is no web host
        self.assertEqual(visible("b"), {b_only})         # b is in production
        self.assertEqual(visible("c"), {staging, web})   # staging, and its own
        self.assertEqual(visible("r"), {staging, b_only, web})  # a review host reads all
        self.assertEqual(visible("admin"), {staging, b_only, web})

        # Approving: only a request the host can read, only as itself.
        self.sql_as("c", f"INSERT INTO jit_fleet.approvals (request_id, origin_host, approver, "
                         f"verdict, comment) VALUES ({staging}, 'c', 'bob', 'approve', 'ok')")
        self.refused("b", f"INSERT INTO jit_fleet.approvals (request_id, origin_host, approver, "
                          f"verdict) VALUES ({staging}, 'b', 'eve', 'approve')", RLS_REFUSED)
        self.refused("b", f"INSERT INTO jit_fleet.revocations (request_id, origin_host, revoker) "
                          f"VALUES ({staging}, 'b', 'eve')", RLS_REFUSED)
        self.sql_as("r", f"INSERT INTO jit_fleet.revocations (request_id, origin_host, revoker, "
                         f"reason) VALUES ({b_only}, 'r', 'carol', 'done')")

        def approvals(host):
            return self.rows_as(host, f"SELECT origin_host, approver FROM jit_fleet.approvals "
                                      f"WHERE request_id = {staging}")

        self.assertEqual(approvals("a"), [["c", "bob"]])  # of its own request
        self.assertEqual(approvals("c"), [["c", "bob"]])
        self.assertEqual(approvals("b"), [])
        revocations = "SELECT revoker FROM jit_fleet.revocations WHERE request_id = " + str(b_only)
        self.assertEqual(self.rows_as("b", revocations), [["carol"]])
        self.assertEqual(self.rows_as("a", revocations), [])
        self.assertEqual(self.rows_as("c", revocations), [])

        # An approval is never changed or withdrawn by a host, not even its own.
        self.refused("c", f"UPDATE jit_fleet.approvals SET verdict = 'deny' "
                          f"WHERE request_id = {staging}", "permission denied for table approvals")
        self.refused("c", f"DELETE FROM jit_fleet.approvals WHERE request_id = {staging}",
                     "permission denied for table approvals")

    def test_covered_hosts_only_own_row_unless_review_host(self):
        # a's request for environment=staging picks a and c; a is no review host.
        staging, _ = self.request_fixture(105)

        def covered(host):
            return [h for h, in self.rows_as(host, "SELECT host FROM jit_fleet.request_hosts "
                                                   f"WHERE request_id = {staging} ORDER BY host")]

        self.assertEqual(covered("a"), ["a"])       # its origin: only itself
        self.assertEqual(covered("c"), ["c"])
        self.assertEqual(covered("b"), [])          # not concerned
        self.assertEqual(covered("r"), ["a", "c"])  # a review host sees every host

    def test_times_are_the_servers(self):
        staging, _ = self.request_fixture(106)
        # A host's clock (or its root) does not choose the times the store keeps.
        rows = self.rows_as("c", f"""
            INSERT INTO jit_fleet.approvals (request_id, origin_host, approver, verdict, created_at)
            VALUES ({staging}, 'c', 'dave', 'approve', now() + interval '1 day')
            RETURNING created_at = now()""")
        self.assertEqual(rows, [["t"]])
        rows = self.rows_as("r", f"""
            INSERT INTO jit_fleet.revocations (request_id, origin_host, revoker, created_at)
            VALUES ({staging}, 'r', 'carol', timestamptz '2000-01-01') RETURNING created_at = now()""")
        self.assertEqual(rows, [["t"]])
        rows = self.rows_as("a", f"""
            INSERT INTO jit_fleet.requests (origin_host, origin_id, requester, service, reason,
                duration_s, selector, selector_host, rule, policy_version, created_at, expires_at)
            VALUES ('a', 107, 'alice', 'sudo', 'r', 60, 'a', 'a', 'r', '{"a" * 64}',
                now() + interval '300 days', now() + interval '366 days')
            RETURNING created_at = now()""")
        self.assertEqual(rows, [["t"]])
        self.assertEqual(self.rows_as("admin", "SELECT created_at > now() FROM jit_fleet.approvals "
                                               f"WHERE request_id = {staging} AND approver = 'dave'"),
                         [["f"]])
        # A time to be answered further than the longest pending_ttl from the server's now.
        self.refused("a", f"""
            INSERT INTO jit_fleet.requests (origin_host, origin_id, requester, service, reason,
                duration_s, selector, selector_host, rule, policy_version, created_at, expires_at)
            VALUES ('a', 108, 'alice', 'sudo', 'r', 60, 'a', 'a', 'r', '{"a" * 64}',
                now() + interval '300 days', now() + interval '400 days')""",
                     "expires_at may be at most 367 days after the server's time")

    def test_audit_chains_per_host(self):
        h1, h2 = "1" * 64, "2" * 64
        self.sql_as("a", f"INSERT INTO jit_fleet.audit (origin_host, seq, at, kind, prev_hash, "
                         f"hash) VALUES ('a', 1, now(), 'filed', '{ZEROS}', '{h1}')")
        # A record that does not continue the chain: a gap, a wrong previous hash.
        self.refused("a", f"INSERT INTO jit_fleet.audit (origin_host, seq, at, kind, prev_hash, "
                          f"hash) VALUES ('a', 3, now(), 'filed', '{h1}', '{h2}')",
                     "does not continue its chain")
        self.refused("a", f"INSERT INTO jit_fleet.audit (origin_host, seq, at, kind, prev_hash, "
                          f"hash) VALUES ('a', 2, now(), 'filed', '{h2}', '{h2}')",
                     "does not continue its chain")
        self.sql_as("a", f"INSERT INTO jit_fleet.audit (origin_host, seq, at, kind, prev_hash, "
                         f"hash) VALUES ('a', 2, now(), 'approved', '{h1}', '{h2}')")
        self.assertEqual(self.rows_as("a", "SELECT seq FROM jit_fleet.audit ORDER BY seq"),
                         [["1"], ["2"]])
        self.assertEqual(self.rows_as("r", "SELECT count(*) FROM jit_fleet.audit"), [["0"]])
        self.refused("a", "UPDATE jit_fleet.audit SET kind = 'x'", "permission denied")
        self.refused("a", "DELETE FROM jit_fleet.audit", "permission denied")
        # The administrator reads every chain, and cannot rewrite one either.
        self.assertEqual(self.rows_as("admin", "SELECT count(*) FROM jit_fleet.audit "
                                               "WHERE origin_host = 'a'"), [["2"]])
        self.refused("admin", "UPDATE jit_fleet.audit SET kind = 'x'",
                     "fleet audit records are never changed or deleted")

    def test_change_feed_names_no_one(self):
        staging, _ = self.request_fixture(104)
        cols = self.rows_as("a", "SELECT column_name FROM information_schema.columns "
                                 "WHERE table_schema = 'jit_fleet' AND table_name = 'changes' "
                                 "ORDER BY ordinal_position")
        self.assertEqual([c[0] for c in cols], ["seq", "txid", "at", "kind", "request_id",
                                                "selector_host", "selector_labels"])
        rows = self.rows_as("b", f"SELECT kind FROM jit_fleet.changes WHERE request_id = {staging}")
        self.assertEqual(rows, [["request"]])
        self.refused("a", "INSERT INTO jit_fleet.changes (kind, request_id, selector_labels) "
                          "VALUES ('request', 1, '{}')", "permission denied for table changes")

    def test_administrator_can(self):
        # The administrator owns the tables: it writes rows of any origin and reads all.
        rid = int(self.rows_as("admin", f"""
            INSERT INTO jit_fleet.requests (origin_host, origin_id, requester, service, reason,
                duration_s, selector, selector_host, rule, policy_version)
            VALUES ('b', 900, 'alice', 'sudo', 'by the administrator', 60, 'c', 'c', 'r',
                '{"c" * 64}') RETURNING id""")[0][0])
        self.sql_as("admin", f"UPDATE jit_fleet.requests SET state = 'withdrawn' WHERE id = {rid}")
        self.assertEqual(self.rows_as("admin", f"SELECT origin_host, state FROM jit_fleet.requests "
                                               f"WHERE id = {rid}"), [["b", "withdrawn"]])
        hosts = self.rows_as("admin", "SELECT name FROM jit_fleet.hosts ORDER BY name")
        self.assertEqual([h[0] for h in hosts], ["a", "b", "c", "r"])

    # --- the fetch through the shared poll login (version 8) ------------------------------

    def test_add_host_stores_the_fetch_keys_hash(self):
        rows = self.rows_as("admin", "SELECT name, fetch_key_hash FROM jit_fleet.hosts "
                                     "WHERE name IN ('a', 'b') ORDER BY name")
        self.assertEqual(rows, [[h, hashlib.sha256(self.fetch_key(h).encode()).hexdigest()]
                                for h in ("a", "b")])

    def test_shared_fetch_refuses_wrong_key_missing_hash_and_other_host(self):
        staging, b_only = self.request_fixture(110)
        ids = [staging, b_only]
        for host, key in (("a", "0" * 64),                # a wrong key
                          ("a", self.fetch_key("b")),     # b's key for a
                          ("b", self.fetch_key("a")),     # a's key for b
                          ("a", ""),
                          ("nobody", self.fetch_key("a"))):
            p = self.shared_fetch(host, key, ids)
            self.assertNotEqual(p.returncode, 0, (host, key))
            self.assertIn(FETCH_REFUSED, p.stderr)
        # SQLSTATE 28000, which the broker falls back on.
        p = run([os.path.join(pgserver.PG_BIN, "psql"), "--no-psqlrc", "--dbname", self.poll_uri,
                 "--set", "VERBOSITY=verbose", "--command",
                 "SELECT * FROM jit_fleet.fetch_for_host('a', 'x', '{1}')"], check=False)
        self.assertIn("ERROR:  28000: " + FETCH_REFUSED, p.stderr)
        # A host without a key hash (registered before version 8) is refused whatever it sends.
        self.sql_as("admin", "UPDATE jit_fleet.hosts SET fetch_key_hash = NULL WHERE name = 'c'")
        try:
            for key in (self.fetch_key("c"), "", "NULL"):
                p = self.shared_fetch("c", key, ids)
                self.assertIn(FETCH_REFUSED, p.stderr)
            p = self.pg.psql(self.poll_uri, "SELECT * FROM jit_fleet.fetch_for_host('c', NULL, "
                                            f"'{{{staging}}}')", check=False)
            self.assertIn(FETCH_REFUSED, p.stderr)
        finally:
            p = run([JITCTL, "fleet", "add-host", "c", "--rekey", "--database",
                     self.admin_uri("jit")], check=False)
        # --rekey gives it a new password and the hash of the key it makes.
        self.assertEqual(p.returncode, EXIT_OK, p.stderr)
        self.assertIn("Host c has a new password and fetch key", p.stdout)
        m = re.fullmatch(r"\*:\*:jit:jit_host_c:([0-9a-f]{64})", p.stdout.strip().splitlines()[-1])
        self.assertIsNotNone(m, p.stdout)
        self.assertNotEqual(m.group(1), self.passwords["c"])
        old_uri = self.hosts["c"]
        self.passwords["c"] = m.group(1)
        self.hosts["c"] = self.add_passfile("jit_host_c", p.stdout.strip().splitlines()[-1])
        self.assertEqual(self.rows_as("c", "SELECT jit_fleet.current_host()"), [["c"]])
        self.assertNotEqual(self.pg.psql(old_uri, "SELECT 1", check=False).returncode, 0)
        p = self.shared_fetch("c", self.fetch_key("c"), ids)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([int(line.split("|")[0]) for line in p.stdout.splitlines()], [staging])
        # --rekey of a host that is not registered changes nothing.
        p = jitctl("fleet", "add-host", "ghost", "--rekey", "--database", self.admin_uri("jit"))
        self.assertEqual(p.returncode, EXIT_FAILURE)
        self.assertIn("host ghost is not registered in the fleet", p.stderr)
        self.assertEqual(self.rows_as("admin", "SELECT count(*) FROM pg_roles WHERE rolname = "
                                               "'jit_host_ghost'"), [["0"]])
        p = jitctl("fleet", "add-host", "a", "--rekey", "--review", "--database",
                   self.admin_uri("jit"))
        self.assertEqual(p.returncode, EXIT_USAGE)

    @classmethod
    def add_passfile(cls, role, line):
        path = os.path.join(cls.pg.passfiles, role + ".rekeyed")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(line + "\n")
        return cls.pg.uri("jit", role, passfile=path)

    def test_shared_fetch_reads_what_the_hosts_role_reads(self):
        staging, b_only = self.request_fixture(111)
        web = self.file_request("c", 111, "role=web", labels='{"role": "web"}')
        self.sql_as("c", f"INSERT INTO jit_fleet.approvals (request_id, origin_host, approver, "
                         f"verdict, comment) VALUES ({staging}, 'c', 'bob', 'approve', 'ok')")
        self.sql_as("r", f"INSERT INTO jit_fleet.revocations (request_id, origin_host, revoker) "
                         f"VALUES ({b_only}, 'r', 'carol')")
        ids = [staging, b_only, web]

        def shared(host):
            p = self.shared_fetch(host, self.fetch_key(host), ids)
            self.assertEqual(p.returncode, 0, p.stderr)
            return p.stdout.splitlines()

        def shared_ids(host):
            return [int(line.split("|")[0]) for line in shared(host)]

        self.assertEqual(shared_ids("a"), [staging])             # not b's request for b
        self.assertEqual(shared_ids("b"), [b_only])
        self.assertEqual(shared_ids("c"), [staging, web])
        self.assertEqual(shared_ids("r"), [staging, b_only, web])  # a review host: all
        # Exactly what the broker's own-role fetch (FLEET_FETCH_SQL, as built into the
        # broker) returns to each host's role under row-level security, column for column.
        with open(BROKERD, "rb") as f:
            found = set(re.findall(rb"SELECT r\.id, r\.origin_host[^\x00]*?'statement'[^\x00]*?"
                                   rb"WHERE r\.id = ANY \(\$1::bigint\[\]\) ORDER BY r\.id\x00",
                                   f.read()))
        self.assertEqual(len(found), 1)
        fetch_sql = found.pop()[:-1].decode()
        id_list = "'{" + ",".join(str(i) for i in ids) + "}'"
        for host in ("a", "b", "c", "r"):
            own = self.sql_as(host, fetch_sql.replace("$1", id_list)).stdout.splitlines()
            self.assertEqual(shared(host), own, host)
        self.assertIn("revoked", shared("b")[0])
        self.assertIn('"approver" : "bob"', shared("a")[0])

    def test_poll_login_reads_no_request_and_at_most_1000_ids(self):
        for table in ("requests", "approvals", "revocations", "hosts"):
            p = self.pg.psql(self.poll_uri, f"SELECT count(*) FROM jit_fleet.{table}", check=False)
            self.assertIn(f"permission denied for table {table}", p.stderr)
        p = self.shared_fetch("a", self.fetch_key("a"), range(1, 1002))
        self.assertIn("fleet fetch refused: 1001 ids, at most 1000", p.stderr)
        p = self.shared_fetch("a", self.fetch_key("a"), range(1, 1001))
        self.assertEqual(p.returncode, 0, p.stderr)
        # Only the poll's role (and the hosts', its members) may call it.
        self.assertEqual(self.rows_as("admin", (
            "SELECT has_function_privilege('public', 'jit_fleet.fetch_for_host(text, text, "
            "bigint[])', 'EXECUTE'), has_function_privilege('jit_fleet_watch', "
            "'jit_fleet.fetch_for_host(text, text, bigint[])', 'EXECUTE')")), [["f", "t"]])


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("integration tests need root", file=sys.stderr)
        sys.exit(jittest.EXIT_SKIP)
    if not JITCTL or not os.path.exists(JITCTL):
        raise RuntimeError(f"JITCTL must name the built jitctl (got {JITCTL!r})")
    why = pgserver.unavailable()
    if why:
        print(f"SKIP: {why}", file=sys.stderr)
        sys.exit(jittest.EXIT_SKIP)
    jittest.main()
