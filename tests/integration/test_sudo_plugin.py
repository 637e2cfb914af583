# SPDX-License-Identifier: MIT
"""The sudo approval plugin jit_approval.so, loaded by the real sudo from sudo.conf: it
asks the broker about the exact command sudo will run, allows on a clear yes, and refuses
with one line and the jitctl command to run otherwise; root, users outside the gated group
and a misconfigured plugin never lock anyone but gated users out."""

import json
import os
import shutil
import socket
import subprocess
import time
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


needs_sudo = unittest.skipIf(jittest.SANITIZED or not JIT_APPROVAL,
                             "sudo cannot load a sanitized plugin (or none was built)")


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

    @needs_sudo
    def test_no_grant_refused_with_what_to_run(self):
        p = self.u["jit-alice"].sudo("systemctl", "--version")
        self.assertExit(p, 1)
        self.assertEqual(p.stdout, "")
        self.assertIn("jit: no grant covers this command. Ask for one: jitctl request --command "
                      "'systemctl --version' --reason \"...\"", p.stderr)

    @needs_sudo
    def test_whole_sudo_grant_covers_any_command(self):
        self.grant()
        p = self.u["jit-alice"].sudo("id", "-u")
        self.assertExit(p, 0)
        self.assertEqual(p.stdout.strip(), "0")
        p = self.u["jit-alice"].sudo("/bin/sh", "-c", "echo \"it's $((6*7))\"")
        self.assertExit(p, 0)
        self.assertEqual(p.stdout.strip(), "it's 42")

    @needs_sudo
    def test_root_and_ungated_users_pass_untouched(self):
        p = jittest.run(["sudo", "-n", "id", "-u"], check=False)
        self.assertExit(p, 0)
        p = self.u["jit-erin"].sudo("id", "-u")
        self.assertExit(p, 0)
        self.assertEqual(p.stdout.strip(), "0")

    @needs_sudo
    def test_broker_away_refuses_gated_only(self):
        self.write_conf(f"socket={self.sb.path('run', 'nobody-here.sock')} group=jit-gated")
        self.grant()
        p = self.u["jit-alice"].sudo("id", "-u")
        self.assertExit(p, 1)
        self.assertIn("jit: the access broker is unavailable", p.stderr)
        self.assertExit(self.u["jit-erin"].sudo("id", "-u"), 0)

    @needs_sudo
    def test_misconfigured_plugin_refuses_gated_only(self):
        self.write_conf(f"socket={self.broker.socket} group=jit-gated colour=blue")
        p = self.u["jit-alice"].sudo("id", "-u")
        self.assertExit(p, 1)
        self.assertIn("jit_approval is misconfigured in sudo.conf (unknown option in sudo.conf)", p.stderr)
        self.assertExit(self.u["jit-erin"].sudo("id", "-u"), 0)
        self.assertExit(jittest.run(["sudo", "-n", "true"], check=False), 0)

    @needs_sudo
    def test_unreadable_command_line_refused(self):
        self.grant()
        p = self.u["jit-alice"].sudo("echo", "a\u202eb")
        self.assertExit(p, 1)
        self.assertIn("characters an approver could not read", p.stderr)

    @unittest.skipUnless(JIT_APPROVAL, "JIT_APPROVAL names no built jit_approval.so")
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

    @needs_sudo
    def test_command_ends_with_its_command_grant(self):
        """With pam_jit's session line, a command run under a command grant is a session of
        that grant: a revoke ends it, as it ends a session under a grant for all of sudo.
        A one-shot command grant is spent when its command starts; that run is left alone."""
        jit = f"{jittest.PAM_JIT} socket={self.broker.socket}"
        self.sb.write_pam_service("sudo", f"auth required pam_permit.so\naccount required {jit}\n"
                                          f"session required {jit}\n")
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        r = self.command_grant("/usr/bin/sleep 600", "--for", "1h")
        rid = str(r["id"])
        p = subprocess.Popen(alice._as_user(["sudo", "-n", "--", "/usr/bin/sleep", "600"]),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.addCleanup(p.stderr.close)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        jittest.wait_for(lambda: p.poll() is not None or
                         any(x["running"] for x in alice.ok("show", rid)["sessions"]),
                         what="the command's session to register")
        self.assertIsNone(p.poll(), p.stderr.read() if p.poll() is not None else "")
        self.assertEqual([x["pid"] for x in alice.ok("show", rid)["sessions"]], [p.pid])
        start = time.monotonic()
        bob.ok("revoke", rid)
        jittest.wait_for(lambda: p.poll() is not None, timeout=12, what="the command to end")
        self.assertLess(time.monotonic() - start, 2.0, "the command outlived its grant's revoke")
        self.assertIn("revoked", alice.ok("show", rid)["sessions"][0]["end_reason"])

        # One-shot: spent as the command starts, its run goes on; nothing is held.
        r = self.command_grant("/usr/bin/true", "--once")
        self.assertExit(alice.sudo("/usr/bin/true"), 0)
        shown = alice.ok("show", str(r["id"]))
        self.assertEqual((shown["state"], shown["sessions"]), ("consumed", []))

    @needs_sudo
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

    @needs_sudo
    def test_one_shot_command_grant_runs_once(self):
        alice = self.u["jit-alice"]
        r = self.command_grant("id -un", "--once")
        self.assertExit(alice.sudo("id", "-un"), 0)
        p = alice.sudo("id", "-un")
        self.assertExit(p, 1)
        self.assertIn("no grant covers this command", p.stderr)
        self.assertEqual(alice.ok("show", str(r["id"]))["state"], "consumed")

    @needs_sudo
    def test_run_as_another_user(self):
        alice = self.u["jit-alice"]
        self.command_grant("id -un", "--as", "jit-bob")
        p = jittest.run(alice._as_user(["sudo", "-n", "-u", "jit-bob", "id", "-un"]), check=False)
        self.assertExit(p, 0)
        self.assertEqual(p.stdout.strip(), "jit-bob")
        self.assertExit(alice.sudo("id", "-un"), 1)  # as root: not covered

    @needs_sudo
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
        # Another PAM service that asks about sudo grants (service=sudo) runs no plugin: a
        # command grant opens nothing there (pam_wrapper's pamtest, as su or polkit would).
        if jittest.PAMTEST:
            p = alice.pam_account("jit-other", "deny", extra="service=sudo")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # A plugin gating another group: its users' command grants only, not alice's.
        self.write_conf(f"socket={self.broker.socket} group=jit-web")
        p = alice.sudo("id", "-u")
        self.assertExit(p, 1)
        self.assertIn("PAM account management error", p.stderr)
        with open("/etc/sudo.conf", "w") as f:
            f.write("# Plugin jit_approval jit_approval.so  (commented out)\n")
        p = alice.sudo("id", "-u")
        self.assertExit(p, 1)
        self.assertIn("PAM account management error", p.stderr)

    @needs_sudo
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

    @needs_sudo
    def test_swapped_symlink_or_replaced_program_refused(self):
        """The grant is for the program as it was when asked for: a symlink pointed
        elsewhere, or another file put in its place, is not it."""
        alice = self.u["jit-alice"]
        tool = "/usr/local/bin/jit-test-tool"
        os.makedirs("/usr/local/bin", exist_ok=True)
        if os.path.lexists(tool):
            os.unlink(tool)
        os.symlink("/usr/bin/id", tool)
        self.addCleanup(lambda: os.path.lexists(tool) and os.unlink(tool))
        self.command_grant("jit-test-tool -u")
        p = alice.sudo("jit-test-tool", "-u")
        self.assertExit(p, 0)
        self.assertEqual(p.stdout.strip(), "0")
        os.unlink(tool)
        os.symlink("/usr/bin/whoami", tool)
        p = alice.sudo("jit-test-tool", "-u")
        self.assertExit(p, 1, p.stdout)
        self.assertIn("jit: no grant covers this command", p.stderr)
        # Back where it pointed: the same program again.
        os.unlink(tool)
        os.symlink("/usr/bin/id", tool)
        self.assertExit(alice.sudo("jit-test-tool", "-u"), 0)
        # Another file in the approved path (a copy: same content, another file).
        os.unlink(tool)
        shutil.copy2("/usr/bin/id", tool)
        self.assertExit(alice.sudo("jit-test-tool", "-u"), 1)

    @needs_sudo
    def test_other_programs_and_shells_refused(self):
        alice = self.u["jit-alice"]
        self.command_grant("id -u")
        # A program of the same name elsewhere.
        d = self.sb.path("bin")
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        shutil.copy2("/usr/bin/id", os.path.join(d, "id"))
        p = alice.sudo(os.path.join(d, "id"), "-u")
        self.assertExit(p, 1)
        self.assertIn("jit: no grant covers this command", p.stderr)
        # A shell, a login shell, an editor.
        for argv in (["sudo", "-n", "-s", "id", "-u"], ["sudo", "-n", "-i", "id", "-u"],
                     ["sudo", "-n", "-e", "/etc/hostname"]):
            p = jittest.run(alice._as_user(argv), check=False, env={"PATH": "/usr/bin:/bin", "EDITOR": "true"})
            self.assertNotEqual(p.returncode, 0, f"{argv}: {p.stdout!r} {p.stderr!r}")
        # A grant for a program anyone may change is not filed.
        os.chmod(d, 0o777)
        p = alice.jitctl("request", "--reason", "x", "--command", f"{d}/id -u")
        self.assertExit(p, jittest.EXIT_REFUSED)
        self.assertIn("jit cannot vouch for", p.stderr)
        os.chmod(d, 0o755)

    @needs_sudo
    def test_environment_chroot_and_sudoedit_not_covered(self):
        """A grant for one command covers it as sudo runs it by default: the caller's
        LD_PRELOAD (sudoers' ALL implies SETENV), a kept environment (-E), another PATH or
        HOME would run other code under the approved name."""
        alice = self.u["jit-alice"]
        self.command_grant("id -u")
        p = alice.sudo("id", "-u")
        self.assertExit(p, 0, p.stderr)
        for argv, var in ((["sudo", "-n", "LD_PRELOAD=/nonexistent/evil.so", "id", "-u"], "LD_PRELOAD"),
                          (["sudo", "-n", "PATH=/tmp:/usr/bin", "id", "-u"], "PATH"),
                          (["sudo", "-n", "HOME=/tmp", "id", "-u"], "HOME"),
                          (["sudo", "-n", "-E", "id", "-u"], "")):
            p = jittest.run(alice._as_user(argv), check=False,
                            env={"PATH": "/usr/bin:/bin", "JIT_TEST_KEPT": "kept by -E"})
            self.assertExit(p, 1, f"{argv}: {p.stdout!r}")
            self.assertIn("a grant for one command covers it only as sudo runs it by default (the "
                          f"environment sets {var}", p.stderr)
        # A grant for all of sudo is not bound to that.
        self.grant()
        p = jittest.run(alice._as_user(["sudo", "-n", "FOO=bar", "id", "-u"]), check=False)
        self.assertExit(p, 0, p.stderr)

    @needs_sudo
    def test_hung_broker_refuses_within_the_timeout(self):
        path = self.sb.path("run", "hung.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(16)  # never accepted, never answered
        os.chmod(path, 0o666)
        self.addCleanup(s.close)
        self.write_conf(f"socket={path} group=jit-gated timeout=500")
        t = time.monotonic()
        p = self.u["jit-alice"].sudo("id", "-u")
        took = time.monotonic() - t
        self.assertExit(p, 1)
        self.assertIn("jit: the access broker is unavailable", p.stderr)
        self.assertGreaterEqual(took, 0.45)
        self.assertLess(took, 5)

    @needs_sudo
    def test_message_reaches_the_terminal(self):
        """On a terminal, as a person runs sudo: the plugin's line is there."""
        p = jittest.run(self.u["jit-alice"]._as_user(["script", "-qec", "sudo -n whoami", "/dev/null"]),
                        check=False, stdin=subprocess.DEVNULL)
        text = p.stdout  # script(1) copies what the terminal showed
        self.assertIn("jit: no grant covers this command. Ask for one: jitctl request --command 'whoami' --reason", text)

    def test_only_root_may_check_commands(self):
        r = self.u["jit-bob"].call({"version": 1, "op": "check-command", "user": "jit-alice",
                                    "command": "/usr/bin/id", "argv": ["id"]})
        self.assertEqual((r["ok"], r["error"]), (False, "refused"))



    def ask(self, *argv, command="/usr/bin/id", run_as=None, cwd="/", env_plain=True, chroot=False):
        msg = {"version": 1, "op": "check-command", "user": "jit-alice", "command": command,
               "argv": list(argv), "cwd": cwd, "env_plain": env_plain}
        if chroot:
            msg["chroot"] = True
        if run_as:
            msg["run_as_user"] = run_as
        r = Stream_call(self.broker.socket, msg)
        self.assertTrue(r["ok"], r)
        return r["result"]

    def test_exact_command_line_once(self):
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        self.assertFalse(self.ask("id", "-u")["allowed"])
        # jitctl runs in the test's directory; the grant is for that directory.
        cwd = os.getcwd()
        r = alice.ok("request", "--reason", "once", "--command", "id -u", "--once")
        bob.ok("approve", str(r["id"]))
        self.assertFalse(self.ask("id", "-g", cwd=cwd)["allowed"])
        self.assertFalse(self.ask("id", "-u", run_as="jit-bob", cwd=cwd)["allowed"])
        self.assertFalse(self.ask("id", "-u", cwd="/elsewhere")["allowed"])
        self.assertFalse(self.ask("id", "-u", command="/usr/bin/whoami", cwd=cwd)["allowed"])
        self.assertFalse(self.ask("id", "-u", cwd=cwd, env_plain=False)["allowed"])
        self.assertFalse(self.ask("id", "-u", cwd=cwd, chroot=True)["allowed"])
        got = self.ask("id", "-u", cwd=cwd)
        self.assertEqual((got["allowed"], got["request_id"], got["scope"]), (True, r["id"], "command"))
        self.assertFalse(self.ask("id", "-u", cwd=cwd)["allowed"])  # spent
        self.assertEqual(alice.ok("show", str(r["id"]))["state"], "consumed")

    def test_bad_command_lines(self):
        for msg, why in (({"command": "id", "argv": ["id"]}, "absolute path"),
                         ({"command": "/usr/bin/id", "argv": []}, "argv must be"),
                         ({"command": "/usr/bin/id", "argv": ["id", "a\u202eb"]}, "could not read"),
                         ({"command": "/usr/bin/id", "argv": ["id"] * 300}, "argv must be"),
                         ({"command": "/usr/bin/id", "argv": ["id", 5]}, "array of strings")):
            r = Stream_call(self.broker.socket, {"version": 1, "op": "check-command", "user": "jit-alice", **msg})
            self.assertEqual((r["ok"], r["error"]), (False, "bad-request"), msg)
            self.assertIn(why, r["message"])

def Stream_call(path, obj):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    try:
        data = json.dumps(obj).encode()
        s.sendall(len(data).to_bytes(4, "big") + data)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "big"):
            chunk = s.recv(65536)
            if not chunk:
                return None
            buf += chunk
        return json.loads(buf[4:4 + int.from_bytes(buf[:4], "big")])
    finally:
        s.close()

if __name__ == "__main__":
    jittest.main()
