# SPDX-License-Identifier: MIT
"""The broker going away: sudo fails closed, and grants survive a restart and still end."""

import signal
import time

import jittest
from jittest import EXIT_UNREACHABLE, PAM_TIMEOUT_MS, BrokerTestCase, wait_for

POLICY = """
rules = (
  { name = "dev"; services = ["sudo"]; requesters = ["%jit-dev"]; approvers = ["%jit-lead"]; }
);
"""


class Restart(BrokerTestCase):
    POLICY = POLICY
    USERS = {"jit-alice": ["jit-dev", "jit-test"], "jit-bob": ["jit-lead", "jit-test"]}

    def grant(self, duration):
        rid = str(self.u["jit-alice"].ok("request", "--for", duration, "--reason", "deploy")["id"])
        self.u["jit-bob"].ok("approve", rid)
        return rid

    def test_01_broker_down_fails_closed(self):
        alice = self.u["jit-alice"]
        rid = self.grant("1h")
        self.assertAllowed(alice)
        self.broker.stop()
        try:
            self.assertRefused(alice)
            self.assertEqual(alice.jitctl("status").returncode, EXIT_UNREACHABLE)
        finally:
            self.broker.start()
        self.assertAllowed(alice)  # the grant outlived the restart
        self.u["jit-bob"].ok("revoke", rid)

    def test_02_hung_broker_denies_within_the_timeout(self):
        alice = self.u["jit-alice"]
        rid = self.grant("1h")
        self.broker.proc.send_signal(signal.SIGSTOP)
        try:
            start = time.monotonic()
            self.assertRefused(alice)
            elapsed = time.monotonic() - start
        finally:
            self.broker.proc.send_signal(signal.SIGCONT)
        # The module gives up after its timeout; sudo adds its own start-up time.
        self.assertGreaterEqual(elapsed, PAM_TIMEOUT_MS / 1000 * 0.9)
        self.assertLess(elapsed, PAM_TIMEOUT_MS / 1000 + 3)
        self.assertAllowed(alice)
        self.u["jit-bob"].ok("revoke", rid)

    def test_03_grant_expires_on_time_across_a_restart(self):
        alice = self.u["jit-alice"]
        rid = self.grant("4s")
        self.broker.stop()
        self.broker.start()
        self.assertAllowed(alice)
        wait_for(lambda: alice.ok("show", rid)["state"] == "expired", timeout=15, what="expiry after restart")
        self.assertRefused(alice)

    def test_05_schema_5_database_is_migrated(self):
        """A database of the last release (schema 5: the check's index without expires_at)
        is migrated at start, and its active grant keeps working."""
        alice = self.u["jit-alice"]
        rid = self.grant("1h")
        self.broker.stop()

        def sql(statement):
            return jittest.run(["sqlite3", "-cmd", ".timeout 5000", self.broker.db, statement]).stdout.strip()
        # What schemas 6 to 13 added goes, so the file is what the older broker left.
        sql("DROP INDEX requests_active_by_expiry;"
            "CREATE INDEX requests_active ON requests(requester_uid, service) WHERE state = 'active';"
            "DROP TABLE outbox;"
            "ALTER TABLE requests DROP COLUMN command; ALTER TABLE requests DROP COLUMN argv;"
            "ALTER TABLE requests DROP COLUMN run_as_user; ALTER TABLE requests DROP COLUMN run_as_group;"
            "ALTER TABLE requests DROP COLUMN cwd; ALTER TABLE requests DROP COLUMN command_identity;"
            "DROP TABLE fleet_audit; DROP TABLE fleet_grants; DROP TABLE fleet_cursor;"
            "ALTER TABLE approvals DROP COLUMN statement; ALTER TABLE approvals DROP COLUMN signature;"
            "ALTER TABLE approvals DROP COLUMN signer_fingerprint;"
            "PRAGMA user_version = 5;")
        self.broker.start()
        self.assertEqual(sql("PRAGMA user_version"), "13")
        # Version 9: the fleet client's change cursor (empty without a fleet section).
        self.assertEqual(sql("SELECT count(*) FROM fleet_cursor"), "0")
        self.assertEqual(sql("SELECT name FROM sqlite_master WHERE name LIKE 'requests_active%'"),
                         "requests_active_by_expiry")
        self.assertAllowed(alice)
        self.u["jit-bob"].ok("revoke", rid)
        self.assertRefused(alice)

    def test_04_grant_that_expired_while_the_broker_was_down(self):
        alice = self.u["jit-alice"]
        rid = self.grant("2s")
        self.broker.stop(signal.SIGKILL)
        expires = time.monotonic() + 2.5
        # Waiting out the grant's own clock is the condition under test.
        time.sleep(max(0, expires - time.monotonic()))
        self.broker.start()
        self.assertEqual(alice.ok("show", rid)["state"], "expired")
        self.assertRefused(alice)


if __name__ == "__main__":
    jittest.main()
