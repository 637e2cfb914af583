# SPDX-License-Identifier: MIT
"""Sessions over real sshd: a long-running ssh session ends with its grant (revoke, expiry,
also across a broker restart), and a terminal is warned before and told at the end. Its own
program: one sandbox (private /etc, journald, sshd) per process."""

import sys
import time

import jittest
from jittest import BrokerTestCase, wait_for

POLICY = """
settings = { default_duration = "1h"; max_duration = "8h"; };
rules = (
  { name = "dev-sshd"; services = ["sshd"]; requesters = ["%jit-dev"];
    approvers = ["%jit-lead"]; approvals = 1; max_duration = "2h"; }
);
"""

# A session ends by its hangup (SIGHUP), well before the SIGKILL that follows 3 s later.
HANGUP_LIMIT = 2.0


class SshdSessions(BrokerTestCase):
    """A long-running ssh session ends within seconds of its grant's revoke or expiry, also
    when the broker restarted in between."""

    POLICY = POLICY
    SSHD = True
    SSHD_SESSION_JIT = True
    USERS = {"jit-alice": ["jit-dev", "jit-test"], "jit-bob": ["jit-lead", "jit-test"]}

    def session(self, duration, tty=False):
        alice = self.u["jit-alice"]
        rid = str(alice.ok("request", "--service", "sshd", "--for", duration, "--reason", "tail the logs")["id"])
        self.u["jit-bob"].ok("approve", rid)
        p = alice.ssh_popen("sleep", "600", tty=tty)
        wait_for(lambda: p.poll() is not None or any(s["running"] for s in alice.ok("show", rid)["sessions"]),
                 what="the ssh session to register")
        self.assertIsNone(p.poll(), "ssh ended before its grant did")
        session = alice.ok("show", rid)["sessions"][0]
        self.assertEqual(session["service"], "sshd")
        self.assertEqual(session["rhost"], "127.0.0.1")
        return rid, p

    def assertEndsWithin(self, p, start, limit):
        wait_for(lambda: p.poll() is not None, timeout=limit + 10, what="the ssh session to end")
        elapsed = time.monotonic() - start
        print(f"ssh session ended {elapsed:.3f}s after its grant", file=sys.stderr)
        self.assertLess(elapsed, limit)

    def test_revoke_ends_the_ssh_session(self):
        rid, p = self.session("1h")
        start = time.monotonic()
        self.u["jit-bob"].ok("revoke", rid)
        self.assertEndsWithin(p, start, HANGUP_LIMIT)

    def test_expiry_ends_the_ssh_session_across_a_broker_restart(self):
        rid, p = self.session("4s")
        self.broker.stop()
        self.broker.start()
        wait_for(lambda: self.u["jit-alice"].ok("show", rid)["state"] == "expired", timeout=15, what="expiry")
        self.assertEndsWithin(p, time.monotonic(), HANGUP_LIMIT)

    def test_terminal_is_warned_then_told(self):
        # With a terminal, the session is warned before its grant ends (expiry_warning,
        # 5m by default, so at once for a 3s grant) and told when it ends.
        rid, p = self.session("3s", tty=True)
        wait_for(lambda: self.u["jit-alice"].ok("show", rid)["state"] == "expired", timeout=15, what="expiry")
        self.assertEndsWithin(p, time.monotonic(), HANGUP_LIMIT)
        out = p.stdout.read()
        self.assertIn(f"jit: your sshd grant {rid} ends in", out)
        self.assertIn(f"jit: your sshd grant {rid} has expired; this session is being closed.", out)


if __name__ == "__main__":
    jittest.main()
