# SPDX-License-Identifier: MIT
"""journald (a real systemd-journald) receives every transition as a structured entry."""

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


if __name__ == "__main__":
    jittest.main()
