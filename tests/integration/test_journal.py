# SPDX-License-Identifier: MIT
"""journald (a real systemd-journald) receives every transition as a structured entry."""

import os

import jittest
from jittest import BrokerTestCase, wait_for

POLICY = """
rules = (
  { name = "dev"; services = ["sudo"]; requesters = ["%jit-dev"]; approvers = ["%jit-lead"]; }
);
"""

MESSAGE_IDS = {
    "requested": "3d17c5d99a2240d8b53de7d674165a31",
    "approval": "c89f341f83b94090a7b8186e98daba90",
    "granted": "7af6f08ed8994a94b326de3f3640d76a",
    "revoked": "243cf7456e2c41659c59a21e6a2b5e60",
    "expired": "be63582eef1c48be9b30e34cccc79dd7",
    "access-allowed": "6251860edf7f4864b90ddd40287520e0",
    "access-denied": "ba8164ca72984b83aa7660c583c41248",
    "refused": "e08745bd9e75402a94eb908519266237",
}


class Journal(BrokerTestCase):
    POLICY = POLICY
    USERS = {"jit-alice": ["jit-dev", "jit-test"], "jit-bob": ["jit-lead", "jit-test"]}

    def entries(self, rid):
        return self.sb.journal(f"JIT_REQUEST_ID={rid}")

    def test_transitions_reach_the_journal(self):
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        rid = str(alice.ok("request", "--for", "10m", "--reason", "rotate certificates")["id"])
        self.assertExit(alice.jitctl("approve", rid), jittest.EXIT_REFUSED)
        bob.ok("approve", rid, "--comment", "ok")
        self.assertAllowed(alice)
        bob.ok("revoke", rid, "--reason", "finished")
        self.assertRefused(alice)

        want = ["requested", "refused", "approval", "granted", "access-allowed", "revoked"]
        got = wait_for(lambda: (lambda e: e if all(MESSAGE_IDS[k] in {x.get("MESSAGE_ID") for x in e}
                                                   for k in want) else None)(self.entries(rid)),
                       timeout=10, what="journal entries")
        by_id = {e["MESSAGE_ID"]: e for e in got}
        req = by_id[MESSAGE_IDS["requested"]]
        self.assertEqual(req["JIT_REQUESTER"], "jit-alice")
        self.assertEqual(req["JIT_SERVICE"], "sudo")
        self.assertEqual(req["JIT_STATE"], "pending")
        self.assertEqual(req["JIT_REASON"], "rotate certificates")
        self.assertEqual(req["SYSLOG_IDENTIFIER"], "jit-brokerd")
        self.assertEqual(by_id[MESSAGE_IDS["approval"]]["JIT_APPROVER"], "jit-bob")
        self.assertEqual(by_id[MESSAGE_IDS["granted"]]["JIT_STATE"], "active")
        self.assertEqual(by_id[MESSAGE_IDS["revoked"]]["JIT_STATE"], "revoked")
        self.assertEqual(by_id[MESSAGE_IDS["revoked"]]["JIT_ACTOR"], "jit-bob")
        self.assertEqual(by_id[MESSAGE_IDS["access-allowed"]]["JIT_USER"], "jit-alice")

    def test_a_grant_used_again_and_again_is_logged_at_first_use(self):
        # Every sudo asks the broker; an entry per check would flood journald. The first use
        # of a grant is logged at once, later ones at most once a minute with their count
        # (unit test test-access-log), each session by the session line.
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        rid = str(alice.ok("request", "--for", "10m", "--reason", "many uses")["id"])
        bob.ok("approve", rid)
        denied_before = len(self.sb.journal(f"MESSAGE_ID={MESSAGE_IDS['access-denied']}", "JIT_USER=jit-alice"))
        for _ in range(5):
            self.assertAllowed(alice)
        bob.ok("revoke", rid, "--reason", "finished")
        got = wait_for(lambda: (lambda e: e if MESSAGE_IDS["revoked"] in {x.get("MESSAGE_ID") for x in e}
                                else None)(self.entries(rid)),
                       timeout=10, what="the revoked entry")
        allowed = [e for e in got if e.get("MESSAGE_ID") == MESSAGE_IDS["access-allowed"]]
        self.assertEqual(len(allowed), 1, allowed)
        self.assertEqual(allowed[0]["JIT_USES"], "1")
        self.assertEqual(allowed[0]["MESSAGE"], f"sudo allowed for jit-alice under grant {rid}")
        # An allowed check that is not logged is not logged as something else either.
        self.assertEqual(len(self.sb.journal(f"MESSAGE_ID={MESSAGE_IDS['access-denied']}", "JIT_USER=jit-alice")),
                         denied_before)

    def test_expiry_and_denied_access_reach_the_journal(self):
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        rid = str(alice.ok("request", "--for", "1s", "--reason", "quick look")["id"])
        bob.ok("approve", rid)
        wait_for(lambda: any(e.get("MESSAGE_ID") == MESSAGE_IDS["expired"] for e in self.entries(rid)),
                 timeout=10, what="the expiry entry")
        self.assertRefused(alice)
        denied = wait_for(lambda: [e for e in self.sb.journal(f"MESSAGE_ID={MESSAGE_IDS['access-denied']}",
                                                             "JIT_USER=jit-alice")],
                          timeout=10, what="the access-denied entry")
        self.assertEqual(denied[-1]["JIT_SERVICE"], "sudo")

    # ---- --log-level (or SYSTEMD_LOG_LEVEL) sets how much of the broker's plain
    # diagnostics is logged; its events are the audit trail and reach the journal at every
    # level.

    # The approvers' group does not exist: the policy loads, with a warning (a diagnostic).
    WARNING_POLICY = POLICY.replace("}\n);", """},
  { name = "odd"; services = ["sudo"]; requesters = ["%jit-dev"]; approvers = ["%jit-no-such-group"]; }
);""")
    LOADED = "9ff86b74c8a54bbb8fd39af3e363fa4a"  # policy loaded
    STARTED = "7f1180e72bce4309bd17104ef7537ddc"

    def run_broker(self, *args, **env):
        """Restarts the broker with args and env; returns its journal entries up to its
        start event, and what it wrote on stderr meanwhile."""
        self.broker.stop()
        self.broker.log.flush()
        offset = os.path.getsize(self.broker.log.name)
        self.broker.start(args=args, env=env)
        pid = str(self.broker.proc.pid)
        entries = wait_for(lambda: (lambda e: e if any(x.get("MESSAGE_ID") == self.STARTED for x in e) else None)(
            self.sb.journal(f"_PID={pid}")), timeout=10, what="the broker's start in the journal")
        with open(self.broker.log.name) as f:
            f.seek(offset)
            stderr = f.read()
        return entries, stderr

    def warned(self, entries, stderr):
        in_journal = any("policy warning:" in str(e.get("MESSAGE")) and "jit-no-such-group" in str(e.get("MESSAGE"))
                         for e in entries)
        self.assertEqual(in_journal, "policy warning:" in stderr, stderr)
        return in_journal

    def test_level_filters_diagnostics_not_events(self):
        self.assertNotEqual(self.WARNING_POLICY, POLICY)
        self.broker.write_policy(self.WARNING_POLICY)
        try:
            entries, stderr = self.run_broker()
            self.assertTrue(self.warned(entries, stderr), "info, the default, logs warnings")
            for args, env in ((["--log-level", "err"], {}), ([], {"SYSTEMD_LOG_LEVEL": "3"}),
                              (["--log-level", "0"], {"SYSTEMD_LOG_LEVEL": "debug"})):
                entries, stderr = self.run_broker(*args, **env)
                self.assertFalse(self.warned(entries, stderr), f"{args} {env}")
                # Events are never filtered: the policy load is there at every level.
                self.assertIn(self.LOADED, {e.get("MESSAGE_ID") for e in entries}, f"{args} {env}")
                self.assertIn("policy " + self.broker.policy + " loaded", stderr)
            # The option wins over the environment.
            entries, stderr = self.run_broker("--log-level", "warning", SYSTEMD_LOG_LEVEL="err")
            self.assertTrue(self.warned(entries, stderr))
        finally:
            self.broker.stop()
            self.broker.write_policy(POLICY)
            self.broker.start()

    def test_bad_level_is_a_usage_error(self):
        levels = "(emerg, alert, crit, err, warning, notice, info, debug or 0-7)"
        p = jittest.run([jittest.BROKERD, "--log-level", "nonsense"], check=False, timeout=10)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(p.stderr, f"jit-brokerd: invalid --log-level 'nonsense' {levels}\n")
        self.assertEqual(p.stdout, "")
        for bad in ("8", "-1", "INFO", "warn", ""):
            p = jittest.run([jittest.BROKERD, f"--log-level={bad}"], check=False, timeout=10)
            self.assertEqual(p.returncode, 2, f"{bad!r}: {p.stderr}")
        p = jittest.run([jittest.BROKERD], check=False, timeout=10, env=dict(os.environ, SYSTEMD_LOG_LEVEL="loud"))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(p.stderr, f"jit-brokerd: invalid log level 'loud' in $SYSTEMD_LOG_LEVEL {levels}\n")

    def test_help_lists_log_level(self):
        p = jittest.run([jittest.BROKERD, "--help"], timeout=10)
        self.assertIn("--log-level LEVEL", p.stdout)
        self.assertIn("SYSTEMD_LOG_LEVEL", p.stdout)


if __name__ == "__main__":
    jittest.main()
