# SPDX-License-Identifier: MIT
"""The core flow: request, review, real sudo gated by pam_jit.so, revoke, expiry."""

import time

import jittest
from jittest import EXIT_NOT_FOUND, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, BrokerTestCase, wait_for

POLICY = """
settings = { default_duration = "1h"; max_duration = "8h"; };
profile = { owner = "payments-team"; environment = "test"; classification = "restricted"; };
rules = (
  { name = "two-leads"; services = ["sudo"]; requesters = ["jit-erin"];
    approvers = ["%jit-lead"]; approvals = 2; max_duration = "2h"; },
  { name = "dev-sudo"; services = ["sudo"]; requesters = ["%jit-dev"];
    approvers = ["%jit-lead", "jit-alice"]; approvals = 1; max_duration = "2h"; }
);
"""


class CoreFlow(BrokerTestCase):
    POLICY = POLICY
    USERS = {
        "jit-alice": ["jit-dev", "jit-test"],
        "jit-bob": ["jit-lead", "jit-test"],
        "jit-carol": ["jit-lead", "jit-test"],
        "jit-dave": ["jit-test"],
        "jit-erin": ["jit-test"],
    }

    def request(self, user, *args):
        return self.u[user].ok("request", "--reason", "fix the payments queue", *args)

    def test_01_no_grant_refused_with_the_command_to_run(self):
        alice = self.u["jit-alice"]
        self.assertRefused(alice)
        # sudo calls the account stack with PAM_SILENT, so the explanation is checked
        # through libpam directly: once with a conversation, once silenced.
        p = alice.pam_account("sudo", "deny", JIT_TEST_EXPECT_MESSAGE=(
            'jit: jit-alice has no active grant for sudo. Ask for one: '
            'jitctl request --service sudo --for 1h --reason "..."'))
        self.assertExit(p, 0)
        p = alice.pam_account("sudo", "deny", JIT_TEST_SILENT="1", JIT_TEST_EXPECT_NO_MESSAGE="1")
        self.assertExit(p, 0)

    def test_02_request_approve_sudo_revoke(self):
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        req = self.request("jit-alice", "--for", "30m")
        self.assertEqual(req["state"], "pending")
        self.assertEqual(req["requester"], "jit-alice")
        self.assertEqual(req["service"], "sudo")
        self.assertEqual(req["rule"], "dev-sudo")
        self.assertEqual(req["duration"], 1800)
        self.assertIsNone(req["expires_at"])
        rid = str(req["id"])
        self.assertRefused(alice)

        # Self-approval: alice is listed as an approver of this rule, and is still refused.
        p = alice.jitctl("approve", rid)
        self.assertExit(p, EXIT_REFUSED)
        self.assertIn("own request", p.stderr)
        # Someone who is not an approver.
        self.assertExit(self.u["jit-dave"].jitctl("approve", rid), EXIT_REFUSED)
        self.assertEqual(alice.ok("show", rid)["state"], "pending")

        granted = bob.ok("approve", rid, "--comment", "go ahead")
        self.assertEqual(granted["state"], "active")
        self.assertEqual(granted["approvals"][0]["approver"], "jit-bob")
        self.assertEqual(granted["approvals"][0]["comment"], "go ahead")
        self.assertTrue(granted["expires_at"].endswith("Z"))
        self.assertGreater(granted["seconds_left"], 1790)
        self.assertAllowed(alice)
        if not jittest.SANITIZED:
            login = alice.sudo_login()
            self.assertExit(login, 0)
            self.assertEqual(login.stdout.strip(), "0")
        # Another user is still refused.
        self.assertRefused(self.u["jit-dave"])
        # Approving again is a conflict, not a second grant.
        self.assertExit(self.u["jit-carol"].jitctl("approve", rid), 1)

        status = alice.ok("status")
        self.assertEqual([g["id"] for g in status["grants"]], [int(rid)])

        revoked = bob.ok("revoke", rid, "--reason", "done")
        self.assertEqual(revoked["state"], "revoked")
        self.assertEqual(revoked["ended_by"], "jit-bob")
        self.assertRefused(alice)
        if not jittest.SANITIZED:
            self.assertExit(alice.sudo_login(), 1)

    def test_03_expiry(self):
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        rid = str(self.request("jit-alice", "--for", "2s")["id"])
        bob.ok("approve", rid)
        self.assertAllowed(alice)
        wait_for(lambda: alice.ok("show", rid)["state"] == "expired", timeout=10, what="expiry")
        shown = alice.ok("show", rid)
        self.assertEqual(shown["ended_by"], "broker")
        self.assertRefused(alice)

    @staticmethod
    def as_stored(user, rid):
        """show's document without what show adds to a request's: the request as stored."""
        shown = user.ok("show", rid)
        for key in ("profile", "sessions", "current_policy_version", "approvers"):
            shown.pop(key)
        return shown

    def test_04_two_of_n(self):
        erin, bob, carol = self.u["jit-erin"], self.u["jit-bob"], self.u["jit-carol"]
        req = self.request("jit-erin")
        self.assertEqual(req["rule"], "two-leads")
        self.assertEqual(req["approvals_required"], 2)
        self.assertEqual(req["duration"], 3600)  # the default
        rid = str(req["id"])
        first = bob.ok("approve", rid)
        self.assertEqual(first["state"], "pending")
        self.assertEqual(first, self.as_stored(erin, rid))  # the reply is the saved request
        self.assertRefused(erin)
        p = bob.jitctl("approve", rid)  # an approver counts once
        self.assertExit(p, EXIT_REFUSED)
        self.assertEqual(erin.ok("show", rid)["state"], "pending")
        done = carol.ok("approve", rid, "--comment", "second")
        self.assertEqual(done["state"], "active")
        self.assertEqual(sorted(a["approver"] for a in done["approvals"]), ["jit-bob", "jit-carol"])
        self.assertEqual(done["approvals"][1]["comment"], "second")
        stored = self.as_stored(erin, rid)
        self.assertLessEqual(stored.pop("seconds_left"), done.pop("seconds_left"))
        self.assertEqual(done, stored)
        self.assertAllowed(erin)
        erin.ok("revoke", rid)  # the requester may end their own grant
        self.assertRefused(erin)

    def test_05_over_cap_refused_naming_the_cap(self):
        p = self.u["jit-alice"].jitctl("request", "--for", "3h", "--reason", "long job")
        self.assertExit(p, EXIT_REFUSED)
        self.assertIn("2h", p.stderr)
        self.assertIn("dev-sudo", p.stderr)
        self.assertEqual(self.u["jit-alice"].ok("list", "--pending", "--mine"), [])

    def test_06_no_rule_refused(self):
        p = self.u["jit-dave"].jitctl("request", "--reason", "curious")
        self.assertExit(p, EXIT_REFUSED)

    def test_07_deny_cancel_and_missing(self):
        alice, bob, dave = self.u["jit-alice"], self.u["jit-bob"], self.u["jit-dave"]
        rid = str(self.request("jit-alice")["id"])
        self.assertExit(dave.jitctl("deny", rid, "--reason", "no"), EXIT_REFUSED)
        self.assertExit(bob.jitctl("deny", rid), EXIT_USAGE)  # a denial needs a reason
        denied = bob.ok("deny", rid, "--reason", "use the runbook")
        self.assertEqual(denied["state"], "denied")
        self.assertEqual(denied["end_reason"], "use the runbook")
        self.assertExit(bob.jitctl("approve", rid), 1)  # denied is final

        rid = str(self.request("jit-alice")["id"])
        self.assertExit(bob.jitctl("cancel", rid), EXIT_REFUSED)  # only the requester cancels
        self.assertEqual(alice.ok("cancel", rid)["state"], "cancelled")
        self.assertRefused(alice)

        self.assertExit(alice.jitctl("show", "999999"), EXIT_NOT_FOUND)
        self.assertExit(bob.jitctl("approve", "999999"), EXIT_NOT_FOUND)

    def test_08_visibility(self):
        rid = self.request("jit-alice")["id"]
        # An approver of the rule sees it; an unrelated user does not.
        self.assertIn(rid, [r["id"] for r in self.u["jit-bob"].ok("list", "--pending")])
        self.assertNotIn(rid, [r["id"] for r in self.u["jit-dave"].ok("list", "--all")])
        self.assertExit(self.u["jit-dave"].jitctl("show", str(rid)), EXIT_REFUSED)
        shown = self.u["jit-bob"].ok("show", str(rid))
        self.assertEqual(shown["profile"]["classification"], "restricted")
        self.assertEqual(shown["approvers"], ["%jit-lead", "jit-alice"])
        self.u["jit-alice"].ok("cancel", str(rid))

    def test_09_human_output(self):
        alice = self.u["jit-alice"]
        rid = str(self.request("jit-alice")["id"])
        p = alice.jitctl("list")
        self.assertExit(p, EXIT_OK)
        self.assertIn(rid, p.stdout)
        self.assertIn("pending", p.stdout)
        p = alice.jitctl("show", rid)
        self.assertExit(p, EXIT_OK)
        self.assertIn("payments-team", p.stdout)
        alice.ok("cancel", rid)

    def test_11_no_fleet_no_libpq(self):
        """A broker whose policy names no fleet store does not load libpq (nor the libraries
        behind it): it is loaded only for a fleet."""
        with open(f"/proc/{self.broker.proc.pid}/maps") as m:
            maps = m.read()
        self.assertNotIn("libpq.so", maps)
        self.assertNotIn("libkrb5.so", maps)

    def test_10_sudo_i_asks_about_the_sudo_grant(self):
        # The pam-auth-update profile runs pam_jit.so from common-account without
        # arguments, so for the PAM service sudo-i ("sudo -i") the module itself must ask
        # about the sudo grant, with no service= in the stack.
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        self.assertExit(alice.pam_account("sudo-i", "deny", JIT_TEST_EXPECT_MESSAGE=(
            "jit: jit-alice has no active grant for sudo. Ask for one: "
            "jitctl request --service sudo ")), 0)
        rid = str(self.request("jit-alice")["id"])
        bob.ok("approve", rid)
        self.assertExit(alice.pam_account("sudo-i", "allow"), 0)
        self.assertExit(self.u["jit-dave"].pam_account("sudo-i", "deny"), 0)
        bob.ok("revoke", rid)
        self.assertExit(alice.pam_account("sudo-i", "deny"), 0)


if __name__ == "__main__":
    jittest.main()
