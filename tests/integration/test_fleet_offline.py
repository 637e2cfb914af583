#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The fleet's offline rules (docs/fleet.md "When PostgreSQL is away") on a real PostgreSQL,
with the three hosts of test_fleet_requests.py; host a has fleet.max_offline = "6s".

With PostgreSQL stopped, a's fleet grant works until max_offline after a's last successful
poll (a restart of a's broker meanwhile keeps that time), then sudo refuses it and the local
grant is ended (expired, "fleet store unreachable for longer than max_offline", with its
audit record and journal entry); PostgreSQL back, it stays ended. A revocation written
while a cannot log in is applied by a's catch-up at reconnect, before its first poll."""

import datetime
import time

import jittest
from jittest import run, wait_for
from test_fleet_requests import FleetHostsTest, namespaced, policy

MAX_OFFLINE = 6
REASON = "fleet store unreachable for longer than max_offline"


def parse_time(text):
    """jitctl status's times: RFC 3339 in UTC, to the second."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class FleetOfflineTest(FleetHostsTest):
    MAX_OFFLINE = f"{MAX_OFFLINE}s"

    def granted(self):
        """A fleet request for a, approved on b, open on a: (f:ID, a's local grant id)."""
        fid = self.file("a")
        self.on("b", "jit-bob").ok("approve", fid)
        wait_for(lambda: self.allowed("a"), timeout=5, what="sudo on a")
        local = run(["sqlite3", "-cmd", ".timeout 5000", self.broker.db,
                     f"SELECT local_id FROM fleet_grants WHERE fleet_id = {fid[2:]}"]).stdout.strip()
        self.assertRegex(local, r"^[0-9]+$")
        return fid, local

    def test_1_max_offline_ends_fleet_grants(self):
        fid, local = self.granted()
        self.pg.stop()
        try:
            self.await_state("a", "unreachable", timeout=10)
            last_sync = self.fleet("a")["last_sync"]
            self.assertIsNotNone(last_sync)
            # A restart keeps the time of the last successful poll, and the deadline.
            self.broker.stop()
            self.broker.start(wrap=namespaced("a"))
            self.assertEqual(self.fleet("a")["last_sync"], last_sync)
            until = parse_time(last_sync) + MAX_OFFLINE
            # Honoured until max_offline after the last poll (a sixteenth of it earlier at
            # most, the throttle of the deadline's writes; a poll's answer comes after its
            # sending, from which max_offline counts) ...
            if time.time() < until - 1.5:
                self.assertTrue(self.allowed("a"))
            wait_for(lambda: not self.allowed("a"), timeout=MAX_OFFLINE + 10,
                     what="a to refuse the fleet grant after max_offline")
            refused = time.time()
            self.assertGreater(refused, until - MAX_OFFLINE / 16 - 1.0)
            self.assertLess(refused, until + 2.5)
            # ... and then ended as an expired grant is, saying why.
            r = wait_for(lambda: (lambda r: r if r["state"] != "active" else None)(
                self.on("a", "root").ok("show", local)), timeout=5, what="the local grant ended")
            self.assertEqual((r["state"], r["end_reason"]), ("expired", REASON))
            wait_for(lambda: any(REASON in e.get("MESSAGE", "") and local in e.get("MESSAGE", "")
                                 for e in self.sb.journal("SYSLOG_IDENTIFIER=jit-brokerd")),
                     what="the journal entry")
            audit = self.on("a", "root").jitctl("audit", "--json")
            self.assertIn(REASON, audit.stdout)
        finally:
            self.pg.start()
        self.await_state("a", "connected")
        # Back online, an ended grant stays ended.
        self.assertFalse(self.allowed("a"))
        self.assertEqual(self.on("a", "root").ok("show", local)["state"], "expired")

    def test_2_revocation_while_away_applied_first(self):
        # Without max_offline for this test: the grant must outlive the outage.
        self.broker.write_policy(policy(self.pg.socket_dir, "a", self.creds["a"]))
        self.reload("a")

        def restore():
            self.broker.write_policy(self.POLICY)
            self.reload("a")
        self.addCleanup(restore)
        fid, local = self.granted()
        # a cannot log in (its connection is cut); b can.
        self.pg.psql(self.admin, "ALTER ROLE jit_host_a NOLOGIN")
        relogin = lambda: self.pg.psql(self.admin, "ALTER ROLE jit_host_a LOGIN")
        self.addCleanup(relogin)
        self.pg.psql(self.pg.superuser_uri, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE usename = 'jit_host_a'")
        self.await_state("a", "unreachable", timeout=10)
        self.on("b", "jit-bob").ok("revoke", fid, "--reason", "while a was away")
        self.assertTrue(self.allowed("a"))  # a cannot have heard of it
        relogin()
        self.reload("a")  # try again now, not at the end of the backoff
        self.await_state("a", "connected", timeout=10)
        wait_for(lambda: not self.allowed("a"), timeout=3, what="the revocation on a at reconnect")
        r = self.on("a", "root").ok("show", local)
        self.assertEqual(r["state"], "revoked")
        self.assertIn(f"revoked in the fleet by jit-bob (fleet request {fid[2:]})", r["end_reason"])
        # The catch-up ended it, before the first poll's fetch.
        log = self.log_of("a")
        ended = log.rfind(f"request {fid[2:]} revoked by jit-bob: local grant {local} ended")
        caught = log.rfind("caught up on the revocations of")
        self.assertGreaterEqual(ended, 0, log[-2000:])
        self.assertGreater(caught, ended)


if __name__ == "__main__":
    jittest.main()
