# SPDX-License-Identifier: MIT
"""SIGHUP and `jitctl reload` reload the policy; a broken file keeps the old policy and says why."""

import json

import jittest
from jittest import EXIT_FAILURE, EXIT_OK, EXIT_REFUSED, BrokerTestCase, wait_for

POLICY = """
settings = { default_duration = "1h"; max_duration = "8h"; };
rules = (
  { name = "dev"; services = ["sudo"]; requesters = ["%jit-dev"]; approvers = ["%jit-lead"]; max_duration = "2h"; }
);
"""

LOADED = "9ff86b74c8a54bbb8fd39af3e363fa4a"
REJECTED = "64b30d5d4a61498aa296295af4f32452"


class Reload(BrokerTestCase):
    POLICY = POLICY
    USERS = {"jit-alice": ["jit-dev", "jit-test"], "jit-bob": ["jit-lead", "jit-test"]}

    def count(self, message_id):
        return len(self.sb.journal(f"MESSAGE_ID={message_id}"))

    def reload_and_wait(self, message_id):
        before = self.count(message_id)
        self.broker.reload()
        wait_for(lambda: self.count(message_id) > before, timeout=10, what=f"journal entry {message_id}")
        return self.sb.journal(f"MESSAGE_ID={message_id}")[-1]

    def test_01_broken_policy_keeps_the_old_one(self):
        self.broker.write_policy(POLICY.replace('max_duration = "2h";', 'max_duration = "2 hours";'))
        entry = self.reload_and_wait(REJECTED)
        self.assertIn("policy.conf:4: rule \"dev\": max_duration", entry["MESSAGE"])
        self.assertIn("keeping the old one", entry["MESSAGE"])
        self.assertIn('"2 hours" is not a duration', entry["MESSAGE"])
        self.assertEqual(entry["PRIORITY"], "3")
        # The old rule still decides.
        rid = str(self.u["jit-alice"].ok("request", "--for", "1h", "--reason", "still works")["id"])
        self.u["jit-bob"].ok("approve", rid)
        self.assertAllowed(self.u["jit-alice"])
        self.u["jit-bob"].ok("revoke", rid)

        for broken in ("rules = ( { name = \"x\"; services = [\"sudo\"]; requesters = [\"a\"]; "
                       "approvers = [\"b\"]; colour = \"red\"; } );",
                       "rules = ( ;",
                       "rules = ( { name = \"x\"; services = [\"sudo\"]; requesters = [\"a\"]; } );",
                       "@include \"/etc/shadow\"\nrules = ( );"):
            with self.subTest(policy=broken):
                self.broker.write_policy(broken)
                self.reload_and_wait(REJECTED)
        self.u["jit-alice"].ok("cancel", str(self.u["jit-alice"].ok("request", "--reason", "old policy")["id"]))

    def test_02_new_policy_applies(self):
        self.broker.write_policy('rules = ( { name = "other"; services = ["sshd"]; requesters = ["%jit-dev"]; '
                                 'approvers = ["%jit-lead"]; } );')
        entry = self.reload_and_wait(LOADED)
        self.assertIn("1 rule", entry["MESSAGE"])
        p = self.u["jit-alice"].jitctl("request", "--reason", "sudo is gone")
        self.assertExit(p, EXIT_REFUSED)
        self.broker.write_policy(POLICY)
        self.reload_and_wait(LOADED)

    def test_03_policy_writable_by_others_is_refused(self):
        import os
        os.chmod(self.broker.policy, 0o666)
        try:
            entry = self.reload_and_wait(REJECTED)
            self.assertIn("writable by group or others", entry["MESSAGE"])
        finally:
            os.chmod(self.broker.policy, 0o644)

    def test_04_jitctl_reload_answers_for_the_reload(self):
        """`jitctl reload` (ExecReload=): exit 0 with what was loaded; a refused policy
        exits 1 with the parser's file:line and changes nothing; only root may."""
        p = self.u["jit-alice"].jitctl("reload")
        self.assertExit(p, EXIT_REFUSED)
        self.assertEqual(p.stderr, "jitctl: only root may reload the policy\n")

        self.broker.write_policy(POLICY.replace('max_duration = "2h";', 'max_duration = "3h";'))
        before = self.count(LOADED)
        loaded = self.root.ok("reload")
        self.assertEqual((loaded["policy"], loaded["rules"], loaded["warnings"]), (self.broker.policy, 1, []))
        self.assertRegex(loaded["version"], "^[0-9a-f]{64}$")
        self.assertEqual(self.count(LOADED), before + 1)  # the reply comes after the load
        p = self.root.jitctl("reload")
        self.assertExit(p, EXIT_OK)
        self.assertEqual(p.stdout, f"policy {self.broker.policy} loaded: 1 rule, version {loaded['version'][:12]}\n")

        self.broker.write_policy(POLICY.replace('max_duration = "2h";', 'max_duration = "2 hours";'))
        p = self.root.jitctl("reload")
        self.assertExit(p, EXIT_FAILURE)
        self.assertEqual(p.stdout, "")
        self.assertRegex(p.stderr, r'^jitctl: policy refused, the old one stays: \S*policy.conf:4: rule "dev": '
                                   r'max_duration: "2 hours" is not a duration \(expected')
        p = self.root.jitctl("reload", json_out=True)
        self.assertExit(p, EXIT_FAILURE)
        self.assertEqual(json.loads(p.stdout)["error"], "bad-request")
        # The last policy taken (3h) still decides.
        p = self.u["jit-alice"].jitctl("request", "--for", "3h", "--reason", "the 3h cap stays", json_out=True)
        self.assertExit(p, EXIT_OK)
        self.u["jit-alice"].ok("cancel", str(p.json["id"]))
        self.broker.write_policy(POLICY)
        self.root.ok("reload")


if __name__ == "__main__":
    jittest.main()
