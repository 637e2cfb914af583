#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The broker's connection to the fleet store (docs/fleet.md, broker/fleet-client.c) on a
real PostgreSQL: it connects and says so in `jitctl status`, moves its change cursor by the
cursor rule and keeps it in its database, refuses a schema it does not know and a
credentials file others could read, and while PostgreSQL is stopped or hung it goes on
answering checks and local requests, then reconnects. SKIP only when the PostgreSQL server
binaries are not installed."""

import os
import re
import signal
import socket
import subprocess
import time
import unittest

import jittest
import pgserver
from jittest import JITCTL, BrokerTestCase, run, wait_for

ADMIN = "jit_fleet_admin"
ADMIN_PASSWORD = "administrator-of-the-fleet"
CONNECTED_ID = "5327a86991fb424eb6e56673db36dfe8"
UNREACHABLE_ID = "6cd970a4a7924585b622241e98293095"
MISMATCH_ID = "598aea4b1aab40988baed396a4b6d01c"

RULES = """
settings = { audit_group = "jit-audit"; };
profile = { owner = "payments"; environment = "staging"; };
rules = (
  { name = "dev-sudo"; services = ["sudo"]; requesters = ["jit-alice"]; approvers = ["jit-bob"];
    approvals = 1; max_duration = "2h"; }
);
"""


def fleet_section(socket_dir, credentials, port=5432, database=None):
    database = database or f"postgresql:///jit?host={socket_dir}&port={port}"
    return (f'fleet = {{ database = "{database}"; '
            f'host = "a"; credentials = "{credentials}"; }};\n')


class FleetClientTest(BrokerTestCase):
    USERS = {"jit-alice": ["jit-test"], "jit-bob": [], "jit-audra": ["jit-audit"]}

    @classmethod
    def setUpClass(cls):
        why = pgserver.unavailable()
        if why:
            raise unittest.SkipTest(why)
        # TCP on 127.0.0.1 too, for a URI that names localhost.
        cls.pg = pgserver.PgServer(tcp=True)
        try:
            cls.pg.psql(cls.pg.superuser_uri,
                        f"CREATE ROLE {ADMIN} LOGIN CREATEROLE PASSWORD '{ADMIN_PASSWORD}'")
            cls.pg.psql(cls.pg.superuser_uri, f"CREATE DATABASE jit OWNER {ADMIN}")
            cls.admin = cls.pg.uri("jit", ADMIN, ADMIN_PASSWORD)
            run([JITCTL, "fleet", "migrate", "--database", cls.admin])
            p = run([JITCTL, "fleet", "add-host", "a", "--database", cls.admin,
                     "--labels", "environment=staging"])
            cls.cred_line = p.stdout.strip().splitlines()[-1]
            cls.creds = cls.write_creds("a.pass", cls.cred_line)
            cls.POLICY = RULES + fleet_section(cls.pg.socket_dir, cls.creds, cls.pg.port)
            super().setUpClass()
        except BaseException:
            cls.pg.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.pg.close()

    @classmethod
    def write_creds(cls, name, text, mode=0o600, uid=0):
        path = os.path.join(cls.pg.passfiles, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
        os.chmod(path, mode)
        os.chown(path, uid, 0)
        return path

    # --- helpers -------------------------------------------------------------------------

    def fleet(self, user=None):
        return (user or self.root).ok("status")["broker"]["fleet"]

    def await_state(self, state, timeout=20):
        return wait_for(lambda: (lambda f: f if f and f["state"] == state else None)(self.fleet()),
                        timeout=timeout, what=f"fleet state {state}")

    def entries(self, message_id):
        return self.sb.journal(f"MESSAGE_ID={message_id}")

    def file_request(self, origin_id):
        """A fleet request row written by the administrator: one change in the feed."""
        self.pg.psql(self.admin, f"""
            INSERT INTO jit_fleet.requests (origin_host, origin_id, requester, service, reason,
                duration_s, selector, selector_labels, rule, policy_version)
            VALUES ('a', {origin_id}, 'alice', 'sudo', 'rotate the certificate', 3600,
                'environment=staging', '{{"environment": "staging"}}', 'dev-sudo',
                '{"a" * 64}')""")
        return int(self.pg.query(self.admin, "SELECT max(seq) FROM jit_fleet.changes")[0][0])

    def local_cursor(self):
        out = run(["sqlite3", "-cmd", ".timeout 5000", self.broker.db,
                   "SELECT seq, changes_seen FROM fleet_cursor WHERE host = 'a'"]).stdout.strip()
        return tuple(int(x) for x in out.split("|")) if out else None

    def polls_after(self, count=2):
        """Waits until the broker has polled count more times."""
        seen = []

        def polled():
            t = self.fleet()["last_poll"]
            if t and (not seen or seen[-1] != t):
                seen.append(t)
            return len(seen) > count
        wait_for(polled, timeout=20, what=f"{count} more polls")

    def local_flow_works(self):
        """Checks, requests and approvals on this host, each answered at once."""
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        start = time.monotonic()
        rid = str(alice.ok("request", "--reason", "fleet store away", "--for", "10m")["id"])
        bob.ok("approve", rid)
        self.assertAllowed(alice)
        bob.ok("revoke", rid, "--reason", "done")
        self.assertRefused(alice)
        self.assertLess(time.monotonic() - start, 10)

    def drop_brokers_session(self):
        """Ends the broker's session on the server, as a restart or a failover would."""
        self.pg.psql(self.pg.superuser_uri, "SELECT pg_terminate_backend(pid) FROM "
                                            "pg_stat_activity WHERE application_name = 'jit-brokerd'")

    def postgres_pids(self):
        with open(os.path.join(self.pg.data, "postmaster.pid")) as f:
            postmaster = int(f.readline())
        return [postmaster] + jittest.descendants(postmaster)

    # --- tests ---------------------------------------------------------------------------

    def test_01_connects_and_says_so(self):
        f = self.await_state("connected")
        self.assertEqual(f["host"], "a")
        self.assertEqual(f["schema_version"], 8)
        self.assertIn(f"host={self.pg.socket_dir}", f["database"])
        # The first poll follows the connection (the state says connected just before it).
        wait_for(lambda: self.fleet()["last_poll"], timeout=5, what="the first poll")
        entries = self.entries(CONNECTED_ID)
        self.assertGreaterEqual(len(entries), 1)
        self.assertEqual(entries[0]["JIT_FLEET_HOST"], "a")
        self.assertEqual(entries[0]["JIT_EVENT"], "fleet-connected")
        # The text form, for root and for the audit group; nothing for anyone else.
        p = self.root.jitctl("status")
        self.assertRegex(p.stdout, r"\nFleet: host a, connected since .*; last poll .*; "
                                   r"\d+ changes? seen\.\n")
        self.assertEqual(self.fleet(self.u["jit-audra"])["host"], "a")
        self.assertNotIn("fleet", self.u["jit-alice"].ok("status")["broker"])
        self.assertNotIn("Fleet:", self.u["jit-alice"].jitctl("status").stdout)
        # libpq is loaded because a fleet is named (broker/fleet-libpq.c).
        with open(f"/proc/{self.broker.proc.pid}/maps") as m:
            self.assertIn("libpq.so.5", m.read())

    def test_02_cursor_advances_with_a_change(self):
        self.await_state("connected")
        before = self.fleet()["changes_seen"]
        seq = self.file_request(201)
        f = wait_for(lambda: (lambda f: f if f["cursor"] == seq else None)(self.fleet()),
                     what="the cursor past the new change")
        self.assertEqual(f["changes_seen"], before + 1)
        self.assertEqual(self.local_cursor(), (seq, before + 1))

    def test_03_cursor_waits_for_an_older_transaction(self):
        """A change committed after a later one (its seq is lower) is not skipped: the
        cursor stops before the open transaction's row until it commits."""
        self.await_state("connected")
        start = self.fleet()
        held = subprocess.Popen([os.path.join(pgserver.PG_BIN, "psql"), "--no-psqlrc", "--quiet",
                                 "--set", "ON_ERROR_STOP=1", "--dbname", self.admin],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env={"PATH": "/usr/bin:/bin"})
        try:
            held.stdin.write("BEGIN;\nINSERT INTO jit_fleet.requests (origin_host, origin_id, "
                             "requester, service, reason, duration_s, selector, selector_host, "
                             "selector_labels, rule, policy_version) VALUES ('a', 301, 'alice', "
                             "'sudo', 'held open', 600, 'a', 'a', '{}', 'dev-sudo', '"
                             + "b" * 64 + "');\n")
            held.stdin.flush()
            wait_for(lambda: self.pg.query(self.admin, "SELECT count(*) FROM pg_stat_activity "
                                           "WHERE state = 'idle in transaction'")[0] == ["1"],
                     what="the transaction held open")
            later = self.file_request(302)
            self.polls_after(2)
            f = self.fleet()
            self.assertLess(f["cursor"], later - 1, "the cursor passed a row still being written")
            self.assertEqual(f["changes_seen"], start["changes_seen"])
            _, err = held.communicate("COMMIT;\n", timeout=30)
            self.assertEqual(held.returncode, 0, err)
            f = wait_for(lambda: (lambda f: f if f["cursor"] == later else None)(self.fleet()),
                         what="the cursor past both rows")
            self.assertEqual(f["changes_seen"], start["changes_seen"] + 2)
        finally:
            if held.poll() is None:
                held.kill()
                held.communicate()

    def test_04_postgres_stopped_then_started(self):
        self.await_state("connected")
        before = len(self.entries(UNREACHABLE_ID))
        connected_before = len(self.entries(CONNECTED_ID))
        self.pg.stop()
        try:
            f = self.await_state("unreachable")
            self.assertTrue(f["last_error"])
            self.local_flow_works()
            # Logged once for the outage, however many attempts fail meanwhile.
            wait_for(lambda: len(self.entries(UNREACHABLE_ID)) > before,
                     what="the unreachable entry")
            e = self.entries(UNREACHABLE_ID)[-1]
            self.assertEqual(e["JIT_FLEET_HOST"], "a")
            self.assertEqual(e["PRIORITY"], "4")
            self.assertTrue(e["JIT_FLEET_ERROR"])
            p = self.root.jitctl("status")
            self.assertRegex(p.stdout, r"\nFleet: host a, unreachable since .* \(.+\); last poll ")
        finally:
            self.pg.start()
        self.await_state("connected", timeout=45)
        self.assertEqual(len(self.entries(UNREACHABLE_ID)), before + 1)
        self.assertEqual(len(self.entries(CONNECTED_ID)), connected_before + 1)

    def test_05_postgres_hung(self):
        """A server that takes connections and never answers: the poll's timeout notices,
        and nothing else waits for it."""
        self.await_state("connected")
        pids = self.postgres_pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            f = self.await_state("unreachable")
            self.assertRegex(f["last_error"], r"no (answer|connection) within \d+ s")
            self.local_flow_works()
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        self.await_state("connected", timeout=45)

    def test_06_schema_newer_than_the_broker_is_refused(self):
        self.await_state("connected")
        self.pg.psql(self.admin, "INSERT INTO jit_fleet.schema_version (version, name) "
                                 "VALUES (9, '0009-future')")
        try:
            self.drop_brokers_session()
            f = self.await_state("schema-mismatch")
            self.assertEqual(f["last_error"], "the fleet schema is at version 9; this broker "
                                              "knows versions up to 8: upgrade jit on this host")
            e = self.entries(MISMATCH_ID)
            self.assertEqual(len(e), 1)
            self.assertEqual(e[0]["PRIORITY"], "3")
            self.assertIn("fleet store refused for host a: the fleet schema is at version 9",
                          e[0]["MESSAGE"])
        finally:
            self.pg.psql(self.admin, "DELETE FROM jit_fleet.schema_version WHERE version = 9")
        # A reload of the same policy tries again at once.
        self.broker.reload()
        self.await_state("connected")

    def test_06b_schema_missing_a_version_is_refused(self):
        # The highest version is there, one below it is not (a store migrated by a jitctl
        # built without it).
        self.await_state("connected")
        self.pg.psql(self.admin, "DELETE FROM jit_fleet.schema_version WHERE version = 4")
        try:
            self.drop_brokers_session()
            f = self.await_state("schema-mismatch")
            self.assertEqual(f["last_error"], "the fleet schema lacks version 4; this broker "
                                              "needs every version up to 8: run jitctl fleet "
                                              "migrate")
        finally:
            self.pg.psql(self.admin, "INSERT INTO jit_fleet.schema_version (version, name) "
                                     "VALUES (4, '0004-audit-upload')")
        self.broker.reload()
        self.await_state("connected")

    def test_07_schema_older_than_the_broker_is_refused(self):
        self.await_state("connected")
        self.pg.psql(self.admin, "REVOKE SELECT ON jit_fleet.schema_version FROM jit_fleet_watch")
        try:
            self.drop_brokers_session()
            f = self.await_state("schema-mismatch")
            self.assertIn("the fleet schema is older than version 3", f["last_error"])
            self.assertIn("run jitctl fleet migrate", f["last_error"])
        finally:
            self.pg.psql(self.admin, "GRANT SELECT ON jit_fleet.schema_version TO jit_fleet_watch")
        self.broker.reload()
        self.await_state("connected")

    def test_08_bad_credentials_files(self):
        self.await_state("connected")
        readable = self.write_creds("readable.pass", self.cred_line, mode=0o644)
        foreign = self.write_creds("foreign.pass", self.cred_line, mode=0o600, uid=1)
        wrong = self.write_creds("wrong.pass", re.sub(r":[0-9a-f]{64}$", ":" + "0" * 64,
                                                      self.cred_line))
        try:
            for path, error in (
                    (readable, f"credentials file {readable}: mode 0644 gives group or others "
                               "access, must be 0600 or stricter"),
                    (foreign, f"credentials file {foreign}: owned by uid 1, must be owned by root"),
                    (wrong, "password authentication failed for user \"jit_host_a\"")):
                self.broker.write_policy(RULES + fleet_section(self.pg.socket_dir, path,
                                                               self.pg.port))
                self.broker.reload()
                f = self.await_state("unreachable")
                self.assertIn(error, f["last_error"])
                self.local_flow_works()
        finally:
            self.broker.write_policy(self.POLICY)
            self.broker.reload()
        self.await_state("connected")

    def test_09_reload_without_fleet_disconnects(self):
        self.await_state("connected")
        self.broker.write_policy(RULES)
        self.broker.reload()
        try:
            wait_for(lambda: self.root.ok("status")["broker"]["fleet"] is None,
                     what="the fleet section gone")
            wait_for(lambda: self.pg.query(self.admin, "SELECT count(*) FROM pg_stat_activity "
                                           "WHERE application_name = 'jit-brokerd'")[0] == ["0"],
                     what="the broker's connection closed")
            self.assertNotIn("Fleet:", self.root.jitctl("status").stdout)
        finally:
            self.broker.write_policy(self.POLICY)
            self.broker.reload()
        self.await_state("connected")

    def test_10_local_database_migrated_from_version_8(self):
        """A database of schema 8 (no fleet_cursor, no fleet_grants) is migrated at start, and
        the cursor starts from the beginning of the feed."""
        self.await_state("connected")
        self.broker.stop()
        run(["sqlite3", self.broker.db, "DROP TABLE fleet_audit; DROP TABLE fleet_grants; DROP TABLE fleet_cursor;"
             " ALTER TABLE approvals DROP COLUMN statement; ALTER TABLE approvals DROP COLUMN signature;"
             " ALTER TABLE approvals DROP COLUMN signer_fingerprint; PRAGMA user_version = 8;"])
        self.broker.start()
        self.assertEqual(run(["sqlite3", self.broker.db, "PRAGMA user_version"]).stdout.strip(), "13")
        last = int(self.pg.query(self.admin, "SELECT max(seq) FROM jit_fleet.changes")[0][0])
        f = wait_for(lambda: (lambda f: f if f["cursor"] == last else None)(self.fleet()),
                     what="the cursor read from the start")
        self.assertEqual(f["changes_seen"],
                         int(self.pg.query(self.admin, "SELECT count(*) FROM jit_fleet.changes")[0][0]))
        self.assertEqual(self.local_cursor(), (last, f["changes_seen"]))

    def with_database(self, database):
        self.broker.write_policy(RULES + fleet_section(self.pg.socket_dir, self.creds,
                                                       database=database))
        self.broker.reload()

    def test_11_host_names_resolved_off_the_loop(self):
        self.await_state("connected")
        self.addCleanup(lambda: (self.broker.write_policy(self.POLICY), self.broker.reload(),
                                 self.await_state("connected")))
        # A name, over TCP: resolved, then reached by its address (and still named).
        uri = f"postgresql://localhost:{self.pg.port}/jit"
        self.with_database(uri)
        wait_for(lambda: (lambda f: f if f["database"] == uri and f["state"] == "connected"
                          else None)(self.fleet()), what="connected through localhost")
        self.assertEqual(self.pg.query(self.pg.superuser_uri, "SELECT client_addr FROM pg_stat_activity "
                                       "WHERE application_name = 'jit-brokerd'"), [["127.0.0.1"]])
        # A name nobody knows: a connect failure like any other, which says so.
        self.with_database(f"postgresql://jit-no-such-host.invalid:{self.pg.port}/jit")
        f = self.await_state("unreachable")
        self.assertTrue(f["last_error"].startswith("cannot resolve jit-no-such-host.invalid: "),
                        f["last_error"])
        # A resolver that never answers (a DNS server that reads and says nothing): the
        # broker goes on answering meanwhile, and gives the name up after 5 s.
        dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(dns.close)
        dns.bind(("127.0.0.77", 53))
        conf = self.sb.path("resolv.conf")
        with open(conf, "w") as out:
            out.write("nameserver 127.0.0.77\noptions timeout:8 attempts:1\n")
        run(["mount", "--bind", conf, "/etc/resolv.conf"])
        self.addCleanup(lambda: run(["umount", "/etc/resolv.conf"]))
        self.with_database(f"postgresql://jit-slow.example:{self.pg.port}/jit")
        wait_for(lambda: self.fleet()["database"].startswith("postgresql://jit-slow"),
                 what="the new section")
        start = time.monotonic()
        answers = []
        while time.monotonic() - start < 3:
            t = time.monotonic()
            self.root.ok("status")
            answers.append(time.monotonic() - t)
        self.assertLess(max(answers), 1.0, answers)
        f = self.await_state("unreachable", timeout=10)
        self.assertEqual(f["last_error"], "cannot resolve jit-slow.example: no answer within 5 s")
        self.assertGreater(time.monotonic() - start, 4.0)
        self.local_flow_works()


if __name__ == "__main__":
    jittest.main()
