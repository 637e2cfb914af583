# SPDX-License-Identifier: MIT
"""Pending requests time out after pending_ttl; max_pending_per_user caps open requests."""

import jittest
from jittest import EXIT_REFUSED, BrokerTestCase, wait_for

POLICY = """
settings = { pending_ttl = "2s"; max_pending_per_user = 2; };
rules = (
  { name = "dev"; services = ["sudo"]; requesters = ["%jit-dev"]; approvers = ["%jit-lead"]; }
);
"""


class Pending(BrokerTestCase):
    POLICY = POLICY
    USERS = {"jit-alice": ["jit-dev", "jit-test"], "jit-bob": ["jit-lead", "jit-test"]}
    JOURNALD = False

    def test_pending_cap_and_timeout(self):
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        first = str(alice.ok("request", "--reason", "one")["id"])
        alice.ok("request", "--reason", "two")
        p = alice.jitctl("request", "--reason", "three")
        self.assertExit(p, EXIT_REFUSED)
        self.assertIn("2 pending requests", p.stderr)

        wait_for(lambda: alice.ok("show", first)["state"] == "timed_out", timeout=10, what="pending timeout")
        shown = alice.ok("show", first)
        self.assertEqual(shown["ended_by"], "broker")
        self.assertExit(bob.jitctl("approve", first), 1)  # too late: timed_out is final
        self.assertEqual(alice.ok("list", "--pending", "--mine"), [])
        alice.ok("request", "--reason", "room again")


if __name__ == "__main__":
    jittest.main()
