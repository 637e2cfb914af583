# SPDX-License-Identifier: MIT
"""Real sshd (public keys, UsePAM) gated by pam_jit.so's account stack, PAM service sshd."""

import sys
import time

import jittest
from jittest import EXIT_OK, EXIT_REFUSED, BrokerTestCase, wait_for

POLICY = """
settings = { default_duration = "1h"; max_duration = "8h"; };
rules = (
  { name = "dev-sshd"; services = ["sshd"]; requesters = ["%jit-dev"];
    approvers = ["%jit-lead"]; approvals = 1; max_duration = "2h"; },
  { name = "dev-sudo"; services = ["sudo"]; requesters = ["%jit-dev"];
    approvers = ["%jit-lead"]; approvals = 1; max_duration = "2h"; }
);
"""

# What sshd (OpenSSH 9.2, sshd -e, LogLevel VERBOSE) logs when the account stack fails after
# a good key: the key itself is logged as "Failed publickey", never "Accepted publickey".
REFUSED = "Access denied for user {user} by PAM account configuration [preauth]"
ACCEPTED = "Accepted publickey for {user} from 127.0.0.1"
# What pam_jit.so tells the user during the account check; sshd sends it as the banner.
NO_GRANT_MESSAGE = ('jit: {user} has no active grant for sshd. Ask for one: '
                    'jitctl request --service sshd --for 1h --reason "..."')


class SshdAccount(BrokerTestCase):
    POLICY = POLICY
    SSHD = True
    USERS = {
        "jit-alice": ["jit-dev", "jit-test"],
        "jit-bob": ["jit-lead", "jit-test"],
        "jit-dave": ["jit-test"],
    }

    def grant(self, service, duration="30m"):
        """An approved grant for jit-alice; revoked after the test if still active."""
        req = self.u["jit-alice"].ok("request", "--service", service, "--for", duration,
                                     "--reason", "look at the payments queue")
        self.assertEqual(req["service"], service)
        rid = str(req["id"])
        self.addCleanup(self.u["jit-bob"].jitctl, "revoke", rid, "--reason", "test over")
        self.assertEqual(self.u["jit-bob"].ok("approve", rid)["state"], "active")
        return rid

    def assertSshAllowed(self, user):
        offset = self.sshd.log_size()
        p = user.ssh("id", "-un")
        self.assertExit(p, 0, f"{user.name} should log in over ssh: {p.stderr!r}\n"
                              f"sshd: {self.sshd.log_since(offset)}")
        self.assertEqual(p.stdout, user.name + "\n")
        self.sshd.wait_log(offset, ACCEPTED.format(user=user.name))
        return p

    def assertSshRefused(self, user):
        """The key is good, and the account stack (pam_jit.so) refuses the login."""
        offset = self.sshd.log_size()
        p = user.ssh("id", "-un", log_level="INFO")
        self.assertExit(p, 255, f"{user.name} should be refused by sshd")
        self.assertEqual(p.stdout, "")
        self.assertIn(NO_GRANT_MESSAGE.format(user=user.name), p.stderr)
        log = self.sshd.wait_log(offset, REFUSED.format(user=user.name))
        self.assertNotIn(ACCEPTED.format(user=user.name), log)
        return p

    def test_01_no_grant_refused(self):
        alice = self.u["jit-alice"]
        self.assertSshRefused(alice)
        # The refusal is pam_jit.so's, about PAM service sshd: its syslog line is in the journal.
        line = "pam_jit(sshd:account): user jit-alice has no active grant for sshd; denying"
        wait_for(lambda: any(e.get("MESSAGE") == line for e in self.sb.journal("SYSLOG_IDENTIFIER=sshd")),
                 what="pam_jit's refusal in the journal")
        # A pending request opens nothing.
        req = alice.ok("request", "--service", "sshd", "--reason", "look at the payments queue")
        self.assertEqual(req["state"], "pending")
        self.assertSshRefused(alice)
        alice.ok("cancel", str(req["id"]))
        # No rule lets jit-dave ask for sshd.
        self.assertExit(self.u["jit-dave"].jitctl("request", "--service", "sshd", "--reason", "curious"),
                        EXIT_REFUSED)
        self.assertSshRefused(self.u["jit-dave"])

    def test_02_grant_opens_ssh_for_its_user_only(self):
        alice = self.u["jit-alice"]
        rid = self.grant("sshd")
        self.assertEqual([g["id"] for g in alice.ok("status")["grants"]], [int(rid)])
        self.assertSshAllowed(alice)
        self.assertSshAllowed(alice)  # as often as wanted while the grant lasts
        self.assertSshRefused(self.u["jit-dave"])
        # The grant is for sshd: sudo stays shut.
        self.assertRefused(alice)

    def test_03_refused_after_expiry(self):
        alice = self.u["jit-alice"]
        rid = self.grant("sshd", "2s")
        self.assertSshAllowed(alice)
        wait_for(lambda: alice.ok("show", rid)["state"] == "expired", timeout=10, what="expiry")
        self.assertEqual(alice.ok("show", rid)["ended_by"], "broker")
        self.assertSshRefused(alice)

    def test_04_refused_after_revoke(self):
        alice = self.u["jit-alice"]
        rid = self.grant("sshd")
        self.assertSshAllowed(alice)
        # A session open while the grant is revoked (what becomes of it is the session
        # stack's business, not checked here): new logins are refused at once.
        session = alice.ssh_popen("echo ready; exec sleep 60")
        self.assertEqual(session.stdout.readline(), "ready\n")
        revoked = self.u["jit-bob"].ok("revoke", rid, "--reason", "done")
        self.assertEqual(revoked["state"], "revoked")
        self.assertSshRefused(alice)
        session.terminate()
        session.communicate(timeout=10)

    def test_05_sudo_grant_does_not_open_ssh(self):
        alice = self.u["jit-alice"]
        self.grant("sudo")
        self.assertAllowed(alice)
        self.assertSshRefused(alice)
        self.assertExit(alice.jitctl("status"), EXIT_OK)


if __name__ == "__main__":
    jittest.main()
