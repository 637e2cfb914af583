#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The shared poll login through pgbouncer in transaction pooling mode (docs/fleet.md,
"Propagation"), with the three hosts of test_fleet_requests.py: every host's fleet.database
is a pgbouncer (Debian's) in front of the test PostgreSQL, pool_mode = transaction, and
fleet.poll_credentials names one login made by `jitctl fleet add-poll-login`. Only that login
may read the change feed here (the hosts' roles may not), so a request filed on a, approved
on b, that opens sudo on a proves the polls ran as the poll login, all through pgbouncer; the
server's log of every statement shows the fetch ran as the poll login too (the store's
jit_fleet.fetch_for_host with the host's fetch key) and every other statement (filing,
approval, revocation) as the hosts' roles. A host without a fetch key falls back to the fetch
with its own role. SKIP when PostgreSQL or pgbouncer is not installed."""

import hashlib
import os
import re
import unittest

import jittest
import pgserver
from jittest import JITCTL, run, wait_for
from test_fleet_requests import FleetHostsTest

POLL = "jit_fleet_poll"


FALLBACK = "fleet: the store refused host a's fetch through the shared poll login"


class FleetBouncerTest(FleetHostsTest):
    # Every statement in the server's log, with the role that ran it.
    PG_SETTINGS = {"log_statement": "'all'", "log_line_prefix": "'%u '"}

    @classmethod
    def setUpClass(cls):
        if not os.access(pgserver.PgBouncer.BIN, os.X_OK):
            raise unittest.SkipTest("pgbouncer not installed (Debian: pgbouncer)")
        super().setUpClass()

    @classmethod
    def setup_store(cls):
        p = run([JITCTL, "fleet", "add-poll-login", POLL, "--database", cls.admin])
        cls.poll_line = p.stdout.strip().splitlines()[-1]
        path = os.path.join(cls.pg.passfiles, "poll.pass")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(cls.poll_line + "\n")
        cls.POLL_CREDENTIALS = path
        # Here the change feed is the poll login's alone.
        cls.pg.psql(cls.admin, "REVOKE SELECT ON jit_fleet.changes FROM jit_fleet_watch; "
                               f"GRANT SELECT ON jit_fleet.changes TO {POLL}")
        cls.bouncer = pgserver.PgBouncer(cls.pg, [POLL] + [f"jit_host_{h}" for h in "abc"])
        cls.DATABASE = cls.bouncer.uri()

    def test_1_request_on_a_approved_on_b_through_pgbouncer(self):
        # The login is a member of jit_fleet_watch and of nothing else.
        self.assertRegex(self.poll_line, r"^\*:\*:jit:jit_fleet_poll:[0-9a-f]{64}$")
        self.assertEqual(self.pg.query(self.admin, (
            "SELECT string_agg(g.rolname, ',') FROM pg_auth_members m JOIN pg_roles g ON "
            f"g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = '{POLL}'")),
            [["jit_fleet_watch"]])
        for host in self.hosts:
            f = self.fleet(host)
            self.assertEqual((f["database"], f["poll_role"], f["fetch_role"]),
                             (self.bouncer.uri(), POLL, POLL))
        # A host's own role may not read the feed here: its polls could not have worked.
        p = self.pg.psql(self.bouncer.uri() + f"&user=jit_host_a&passfile={self.creds['a']}",
                         "SELECT count(*) FROM jit_fleet.changes", check=False)
        self.assertIn("permission denied for table changes", p.stderr)

        log_from = len(self.pg.log())
        fid = self.file("a")
        self.on("b", "jit-bob").ok("approve", fid)
        wait_for(lambda: self.allowed("a"), timeout=5, what="sudo on a within 5 s")
        self.assertFalse(self.allowed("b"))
        self.assertFalse(self.allowed("c"))
        self.on("b", "jit-bob").ok("revoke", fid)
        wait_for(lambda: not self.allowed("a"), timeout=5, what="the revocation on a")
        # The fetches after the change ran as the poll login, none as a host's role; the
        # key was sent as a parameter, not in the statement's text.
        statements = self.statements(log_from)
        shared = [(u, t) for u, t in statements if "jit_fleet.fetch_for_host" in t]
        self.assertTrue(shared)
        self.assertEqual({u for u, _ in shared}, {POLL})
        self.assertTrue(all(t.endswith("SELECT * FROM jit_fleet.fetch_for_host($1, $2, "
                                       "$3::bigint[])") for _, t in shared), shared)
        self.assertEqual([(u, t) for u, t in statements if "WHERE r.id = ANY" in t], [])
        self.assertTrue([u for u, t in statements if u == "jit_host_b" and "INSERT INTO "
                         "jit_fleet.approvals" in t])
        self.assertNotIn(FALLBACK, self.log_of("a"))
        # pgbouncer took the poll login and the hosts' roles, and reached the server with
        # them: one pool each.
        log = self.bouncer.log()
        for user in (POLL, "jit_host_a", "jit_host_b"):
            self.assertIn(f"login attempt: db=jit user={user} ", log)
            self.assertIn(f"jit/{user}@unix:{self.pg.port} new connection to server", log)

    def statements(self, log_from):
        """(role, statement) of each statement the server logged after offset log_from."""
        return re.findall(r"^(\S+) LOG:  (?:statement|execute [^:]*): (.*)$",
                          self.pg.log()[log_from:], re.MULTILINE)

    def test_3_host_without_fetch_key_falls_back(self):
        # Registered before version 8: no key hash. Its next fetch tries the shared
        # fetch, is refused (28000), says so once and fetches with its own role.
        self.pg.psql(self.admin, "UPDATE jit_fleet.hosts SET fetch_key_hash = NULL "
                                 "WHERE name = 'a'")
        with open(self.creds["a"]) as f:
            password = f.read().strip().split(":")[-1]
        key = hashlib.sha256(("jit-fleet-fetch-key\n" + password).encode()).hexdigest()
        self.addCleanup(lambda: self.pg.psql(self.admin, (
            "UPDATE jit_fleet.hosts SET fetch_key_hash = "
            f"'{hashlib.sha256(key.encode()).hexdigest()}' WHERE name = 'a'")))
        log_from = len(self.pg.log())
        for _ in range(2):
            fid = self.file("a")
            self.on("b", "jit-bob").ok("approve", fid)
            wait_for(lambda: self.allowed("a"), timeout=5, what="sudo on a within 5 s")
            self.on("b", "jit-bob").ok("revoke", fid)
            wait_for(lambda: not self.allowed("a"), timeout=5, what="the revocation on a")
        self.assertEqual(self.log_of("a").count(FALLBACK), 1)
        self.assertIn("jitctl fleet add-host a --rekey", self.log_of("a"))
        self.assertEqual(self.fleet("a")["fetch_role"], "jit_host_a")
        self.assertNotIn(key, self.log_of("a"))
        statements = self.statements(log_from)
        self.assertTrue([u for u, t in statements if u == "jit_host_a" and "WHERE r.id = ANY" in t])
        # b still fetches through the shared pool.
        self.assertEqual(self.fleet("b")["fetch_role"], POLL)

    def test_2_bad_poll_login_names(self):
        for name in ("jit_host_x", "Poll", "jit_fleet_watch", "1poll", "a" * 64):
            p = run([JITCTL, "fleet", "add-poll-login", name, "--database", self.admin], check=False)
            self.assertEqual(p.returncode, 2, (name, p.stderr))
            self.assertIn(f"'{name}' is not a poll login name", p.stderr)


if __name__ == "__main__":
    jittest.main()
