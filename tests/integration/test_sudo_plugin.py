# SPDX-License-Identifier: MIT
"""The sudo approval plugin jit_approval.so, loaded by the real sudo from sudo.conf: it
asks the broker about the exact command sudo will run, allows on a clear yes, and refuses
with one line and the jitctl command to run otherwise; root, users outside the gated group
and a misconfigured plugin never lock anyone but gated users out."""

import json
import os
import unittest

import jittest
from jittest import BrokerTestCase

JIT_APPROVAL = os.environ.get("JIT_APPROVAL", "")

POLICY = """
rules = (
  { name = "dev"; services = ["sudo"]; requesters = ["%jit-dev"]; approvers = ["%jit-lead"];
    run_as = ["root", "jit-bob"]; },
  { name = "web"; services = ["sudo"]; requesters = ["%jit-web"]; approvers = ["%jit-lead"];
    commands = ["/usr/bin/id -un", "/usr/bin/echo restart *"]; }
);
"""

SUDO_CONF = """Plugin sudoers_policy sudoers.so
Plugin sudoers_io sudoers.so
Plugin sudoers_audit sudoers.so
Plugin jit_approval {plugin} {options}
"""


@unittest.skipIf(jittest.SANITIZED, "a sanitized plugin cannot load into setuid sudo")
@unittest.skipUnless(JIT_APPROVAL, "JIT_APPROVAL names no built jit_approval.so")
class SudoPlugin(BrokerTestCase):
    POLICY = POLICY
    USERS = {
        "jit-alice": ["jit-dev", "jit-test", "jit-gated"],
        "jit-bob": ["jit-lead", "jit-test"],
        "jit-erin": ["jit-test"],  # may sudo, not gated by jit
        "jit-wendy": ["jit-web", "jit-test", "jit-gated"],
    }
    JOURNALD = False

    def setUp(self):
        # Only the plugin gates: the account line permits, so what is refused here is the
        # plugin's doing.
        self.sb.write_pam_service("sudo", "auth required pam_permit.so\naccount required pam_permit.so\n"
                                          "session required pam_permit.so\n")
        self.write_conf()

    def tearDown(self):
        for r in self.u["jit-bob"].ok("list", "--active"):
            self.u["jit-bob"].ok("revoke", str(r["id"]))

    def write_conf(self, options=None):
        if options is None:
            options = f"socket={self.broker.socket} group=jit-gated"
        with open("/etc/sudo.conf", "w") as f:
            f.write(SUDO_CONF.format(plugin=JIT_APPROVAL, options=options))

    def grant(self):
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        rid = alice.ok("request", "--reason", "plugin")["id"]
        bob.ok("approve", str(rid))
        return rid

    def test_no_grant_refused_with_what_to_run(self):
        p = self.u["jit-alice"].sudo("systemctl", "--version")
        self.assertExit(p, 1)
        self.assertEqual(p.stdout, "")
        self.assertIn("jit: no grant covers this command. Ask for one: jitctl request --command "
                      "'systemctl --version' --reason \"...\"", p.stderr)

    def test_whole_sudo_grant_covers_any_command(self):
        self.grant()
        p = self.u["jit-alice"].sudo("id", "-u")
        self.assertExit(p, 0)
        self.assertEqual(p.stdout.strip(), "0")
        p = self.u["jit-alice"].sudo("/bin/sh", "-c", "echo \"it's $((6*7))\"")
        self.assertExit(p, 0)
        self.assertEqual(p.stdout.strip(), "it's 42")

    def test_root_and_ungated_users_pass_untouched(self):
        p = jittest.run(["sudo", "-n", "id", "-u"], check=False)
        self.assertExit(p, 0)
        p = self.u["jit-erin"].sudo("id", "-u")
        self.assertExit(p, 0)
        self.assertEqual(p.stdout.strip(), "0")

    def test_broker_away_refuses_gated_only(self):
        self.write_conf(f"socket={self.sb.path('run', 'nobody-here.sock')} group=jit-gated")
        self.grant()
        p = self.u["jit-alice"].sudo("id", "-u")
        self.assertExit(p, 1)
        self.assertIn("jit: the access broker is unavailable", p.stderr)
        self.assertExit(self.u["jit-erin"].sudo("id", "-u"), 0)

    def test_misconfigured_plugin_refuses_gated_only(self):
        self.write_conf(f"socket={self.broker.socket} group=jit-gated colour=blue")
        p = self.u["jit-alice"].sudo("id", "-u")
        self.assertExit(p, 1)
        self.assertIn("jit_approval is misconfigured in sudo.conf (unknown option in sudo.conf)", p.stderr)
        self.assertExit(self.u["jit-erin"].sudo("id", "-u"), 0)
        self.assertExit(jittest.run(["sudo", "-n", "true"], check=False), 0)

    def test_unreadable_command_line_refused(self):
        self.grant()
        p = self.u["jit-alice"].sudo("echo", "a\u202eb")
        self.assertExit(p, 1)
        self.assertIn("characters an approver could not read", p.stderr)

    def test_exports_only_its_plugin_struct(self):
        p = jittest.run(["nm", "-D", "--defined-only", JIT_APPROVAL])
        names = sorted(line.split()[-1] for line in p.stdout.splitlines() if line.strip())
        self.assertEqual(names, ["jit_approval"])

    def command_grant(self, command, *extra):
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        r = alice.ok("request", "--reason", "one command", "--command", command, *extra)
        self.assertEqual((r["command"], r["state"]), (r["command"], "pending"))
        bob.ok("approve", str(r["id"]))
        return r

    def test_command_grant_covers_that_command_only(self):
        alice = self.u["jit-alice"]
        r = self.command_grant("id -u")
        self.assertEqual((r["command"], r["argv"], r["run_as_user"], r["command_line"]),
                         ("/usr/bin/id", ["id", "-u"], "root", "id -u"))
        # What an approver reads: the command line, the program, who it runs as, where.
        shown = self.u["jit-bob"].jitctl("show", str(r["id"])).stdout
        self.assertRegex(shown, r"\n\s*Command: id -u\n\s*Program: /usr/bin/id\n\s*Run as: root\n\s*In directory: /")
        listed = self.u["jit-bob"].jitctl("list", "--all").stdout
        self.assertRegex(listed, rf"\n\s*{r['id']}\s+\S+\s+jit-alice\s+sudo: id -u\s")
        p = alice.sudo("id", "-u")
        self.assertExit(p, 0)
        self.assertEqual(p.stdout.strip(), "0")
        # Another argument, another program, another user: refused.
        for argv in (["id", "-g"], ["id"], ["whoami"], ["id", "-u", "root"]):
            p = alice.sudo(*argv)
            self.assertExit(p, 1, f"{argv}: {p.stderr!r}")
            self.assertIn("jit: no grant covers this command", p.stderr)
        p = jittest.run(alice._as_user(["sudo", "-n", "-u", "jit-bob", "id", "-u"]), check=False)
        self.assertExit(p, 1)
        # Each use is in the audit log with the command line.
        uses = [rec for rec in map(json.loads, alice.jitctl("--json", "audit", "--request", str(r["id"])).stdout.splitlines())
                if rec["event"] == "command-used"]
        self.assertEqual(len(uses), 1)
        self.assertEqual((uses[0]["details"]["command"], uses[0]["details"]["argv"],
                          uses[0]["details"]["run_as_user"]), ("/usr/bin/id", ["id", "-u"], "root"))

    def test_one_shot_command_grant_runs_once(self):
        alice = self.u["jit-alice"]
        r = self.command_grant("id -un", "--once")
        self.assertExit(alice.sudo("id", "-un"), 0)
        p = alice.sudo("id", "-un")
        self.assertExit(p, 1)
        self.assertIn("no grant covers this command", p.stderr)
        self.assertEqual(alice.ok("show", str(r["id"]))["state"], "consumed")

    def test_run_as_another_user(self):
        alice = self.u["jit-alice"]
        self.command_grant("id -un", "--as", "jit-bob")
        p = jittest.run(alice._as_user(["sudo", "-n", "-u", "jit-bob", "id", "-un"]), check=False)
        self.assertExit(p, 0)
        self.assertEqual(p.stdout.strip(), "jit-bob")
        self.assertExit(alice.sudo("id", "-un"), 1)  # as root: not covered

    def test_both_gates_agree(self):
        """With pam_jit's account line as well: a grant for one command lets sudo's PAM check
        through only where sudo.conf loads the plugin, which then decides on the command; a
        sudo without the plugin gives a command grant nothing."""
        alice = self.u["jit-alice"]
        self.sb.write_pam_service("sudo", self.sb.pam_lines())
        self.command_grant("id -u")
        p = alice.sudo("id", "-u")
        self.assertExit(p, 0)
        self.assertEqual(p.stdout.strip(), "0")
        p = alice.sudo("id", "-g")  # PAM lets it through, the plugin refuses it
        self.assertExit(p, 1)
        self.assertIn("jit: no grant covers this command", p.stderr)
        with open("/etc/sudo.conf", "w") as f:
            f.write("# Plugin jit_approval jit_approval.so  (commented out)\n")
        p = alice.sudo("id", "-u")
        self.assertExit(p, 1)
        self.assertIn("PAM account management error", p.stderr)

    def test_policy_decides_which_commands(self):
        """A rule with commands grants only command lines its patterns match, and never all
        of sudo."""
        wendy, bob = self.u["jit-wendy"], self.u["jit-bob"]
        p = wendy.jitctl("request", "--reason", "all of it")
        self.assertExit(p, jittest.EXIT_REFUSED)
        p = wendy.jitctl("request", "--reason", "not listed", "--command", "id -u")
        self.assertExit(p, jittest.EXIT_REFUSED)
        self.assertIn("no policy rule lets jit-wendy run /usr/bin/id as root", p.stderr)
        r = wendy.ok("request", "--reason", "listed", "--command", "echo restart nginx")
        self.assertEqual((r["rule"], r["state"]), ("web", "pending"))
        bob.ok("approve", str(r["id"]))
        p = wendy.sudo("echo", "restart", "nginx")
        self.assertExit(p, 0)
        self.assertEqual(p.stdout.strip(), "restart nginx")
        self.assertExit(wendy.sudo("echo", "restart", "postgres"), 1)

    def test_only_root_may_check_commands(self):
        r = self.u["jit-bob"].call({"version": 1, "op": "check-command", "user": "jit-alice",
                                    "command": "/usr/bin/id", "argv": ["id"]})
        self.assertEqual((r["ok"], r["error"]), (False, "refused"))


if __name__ == "__main__":
    jittest.main()
