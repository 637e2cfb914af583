# SPDX-License-Identifier: MIT
"""The trust anchors, each by the scenario that breaks when the guarantee is gone:
clients believe only a broker running as root; who is asking comes from the kernel, never
from the message; a grant past its deadline, or from another boot, opens nothing even
before the expiry runs; only root ends a session; fail=open opens only for an absent
broker; only a boolean "allowed": true allows; a reload that asks for more approvals holds
pending requests to it; an unprintable PAM user is refused and never logged raw; an
approver sees invisible characters escaped; the duration cap is judged again at approval."""

import os
import pwd
import signal
import subprocess
import time
import unittest

import jittest
from jittest import EXIT_REFUSED, EXIT_UNREACHABLE, SANITIZED, BrokerTestCase, run, wait_for

RULES = """
rules = (
  {{ name = "dev-sudo"; services = ["sudo"]; requesters = ["%jit-dev"];
     approvers = ["%jit-lead"]; approvals = {approvals}; max_duration = "{cap}"; }}
);
"""
SETTINGS = 'settings = { default_duration = "1h"; max_duration = "8h"; };\n'
POLICY = SETTINGS + RULES.format(approvals=1, cap="2h")

POLICY_LOADED = "9ff86b74c8a54bbb8fd39af3e363fa4a"


class FakeBroker:
    """fakebroker.py on its own socket, as root or as a test user."""

    def __init__(self, sb, mode, user=None):
        d = sb.path("fake-" + (user or "root") + "-" + mode.replace("=", "-").replace('"', ""))
        os.makedirs(d, mode=0o755, exist_ok=True)
        if user:
            os.chown(d, pwd.getpwnam(user).pw_uid, -1)
        self.socket = os.path.join(d, "broker.sock")
        argv = [jittest.SYSTEM_PYTHON, sb.script("fakebroker.py"), self.socket, mode]
        if user:
            argv = ["setpriv", f"--reuid={user}", "--regid=users", "--init-groups", "--"] + argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line != "ready\n":
            raise RuntimeError(f"fake broker did not start: {line!r} {self.proc.stderr.read()!r}")

    def stop(self):
        self.proc.terminate()
        self.proc.communicate(timeout=10)


class Trust(BrokerTestCase):
    POLICY = POLICY
    USERS = {
        "jit-alice": ["jit-dev", "jit-test"],
        "jit-bob": ["jit-lead", "jit-test"],
        "jit-carol": ["jit-lead", "jit-test"],
        "jit-dave": ["jit-test"],
        "jit-erin": ["jit-dev", "jit-lead", "jit-test"],  # both asks and approves
    }

    def fake(self, mode, user=None):
        f = FakeBroker(self.sb, mode, user)
        self.addCleanup(f.stop)
        return f.socket

    def grant(self, duration="30m"):
        req = self.u["jit-alice"].ok("request", "--for", duration, "--reason", "rotate the certificates")
        rid = str(req["id"])
        self.addCleanup(self.root.jitctl, "revoke", rid, "--reason", "test over")
        self.assertEqual(self.u["jit-bob"].ok("approve", rid)["state"], "active")
        return rid

    def check(self, user="jit-alice"):
        """The broker's raw answer to pam_jit's question, asked as root."""
        reply = self.broker.call({"version": 1, "op": "check", "user": user, "service": "sudo"})
        self.assertTrue(reply["ok"], reply)
        return reply["result"]["allowed"]

    def pam_log(self, before):
        """pam_jit's syslog lines from sudo since the journal held `before` of them."""
        entries = self.sb.journal("SYSLOG_IDENTIFIER=sudo")[before:]
        return [e["MESSAGE"] for e in entries if isinstance(e.get("MESSAGE"), str) and "pam_jit" in e["MESSAGE"]]

    def assertGate(self, user, expect, socket_path=None, extra="", log=None):
        """Asks the account stack (real sudo; pam_wrapper in the sanitized build) with
        pam_jit pointed at socket_path and extra arguments; asserts the decision, and that
        pam_jit logged a line containing `log`."""
        if SANITIZED:
            p = user.pam_account("sudo", expect, socket_path=socket_path or self.broker.socket, extra=extra)
            self.assertEqual(p.returncode, 0, f"expected {expect}: {p.stdout!r} {p.stderr!r}")
            if log:
                self.assertIn(log, p.said)
            return
        before = len(self.sb.journal("SYSLOG_IDENTIFIER=sudo"))
        self.sb.write_pam_service("sudo", self.sb.pam_lines(socket_path, extra))
        try:
            p = user.sudo("id", "-u")
        finally:
            self.sb.write_pam_service("sudo", self.sb.pam_lines())
        if expect == "allow":
            self.assertExit(p, 0)
            self.assertEqual(p.stdout.strip(), "0")
        else:
            self.assertExit(p, 1)
            self.assertIn("sudo: PAM account management error: Permission denied", p.stderr)
        if log:
            wait_for(lambda: any(log in m for m in self.pam_log(before)), what=f"pam_jit to log {log!r}")

    # -- clients believe only a broker that runs as root --

    def test_fake_broker_of_a_user_is_not_believed(self):
        alice = self.u["jit-alice"]
        # The same fake, run by root, is believed: the refusal below is about who holds it.
        self.assertGate(alice, "allow", self.fake("allow"))
        fake = self.fake("allow", user="jit-dave")
        self.assertGate(alice, "deny", fake, log="the broker socket is not held by root")
        p = run(alice._as_user([jittest.JITCTL, "--socket", fake, "status"]), check=False, timeout=30)
        self.assertExit(p, EXIT_UNREACHABLE)
        self.assertIn(f"cannot trust the broker at {fake}: the socket is not owned by a root process", p.stderr)
        self.assertEqual(p.stdout, "")

    def test_allowed_must_be_the_boolean_true(self):
        alice = self.u["jit-alice"]
        for value in ('"true"', '"false"', "1", "null", "{}"):
            with self.subTest(allowed=value):
                self.assertGate(alice, "deny", self.fake("allowed=" + value), log="unusable")
        # An error reply denies, whatever else it holds.
        self.assertGate(alice, "deny", self.fake("error"), log="broker refused the check for user jit-alice")

    # -- fail=open: only an absent broker lets users in --

    def test_fail_open_allows_only_an_absent_broker(self):
        alice = self.u["jit-alice"]
        absent = self.sb.path("absent", "broker.sock")
        os.makedirs(os.path.dirname(absent), mode=0o755, exist_ok=True)
        self.assertGate(alice, "deny", absent, "fail=closed")
        self.assertGate(alice, "allow", absent, "fail=open",
                        log="ALLOWING user jit-alice for sudo WITHOUT A GRANT because of fail=open")
        for what, sock in (("dropped connection", self.fake("close")),
                           ("garbage", self.fake("garbage")),
                           ("socket held by a user", self.fake("allow", user="jit-dave"))):
            with self.subTest(what):
                self.assertGate(alice, "deny", sock, "fail=open", log="denying user jit-alice")
        # A hung broker (its slots taken, or stopped) runs into the timeout: denied.
        self.broker.proc.send_signal(signal.SIGSTOP)
        try:
            self.assertGate(alice, "deny", None, "fail=open", log="denying user jit-alice")
        finally:
            self.broker.proc.send_signal(signal.SIGCONT)

    # -- identity from SO_PEERCRED only --

    def test_identity_never_comes_from_the_message(self):
        alice, dave = self.u["jit-alice"], self.u["jit-dave"]
        uid = pwd.getpwnam("jit-alice").pw_uid
        reply = alice.call({"version": 1, "op": "request", "service": "sudo", "reason": "as bob, please",
                            "user": "jit-bob", "uid": pwd.getpwnam("jit-bob").pw_uid})
        if reply["ok"]:
            self.assertEqual((reply["result"]["requester"], reply["result"]["requester_uid"]), ("jit-alice", uid))
            self.addCleanup(alice.jitctl, "cancel", str(reply["result"]["id"]))
        everything = self.root.ok("list", "--all")
        self.assertEqual([r["id"] for r in everything if r["requester"] != "jit-alice"], [])
        # dave, no approver, names bob (an approver) in the message: refused, nothing counted.
        rid = alice.ok("request", "--reason", "rotate the certificates")["id"]
        self.addCleanup(alice.jitctl, "cancel", str(rid))
        reply = dave.call({"version": 1, "op": "approve", "id": rid, "user": "jit-bob",
                           "uid": pwd.getpwnam("jit-bob").pw_uid})
        self.assertFalse(reply["ok"], reply)
        self.assertEqual(reply["error"], "refused")
        shown = alice.ok("show", str(rid))
        self.assertEqual((shown["state"], shown["approvals"]), ("pending", []))

    # -- a grant is judged by its deadlines, not by whether the expiry has run --

    def sql(self, statement):
        run(["sqlite3", "-cmd", ".timeout 5000", self.broker.db, statement])

    def test_check_refuses_a_grant_past_its_deadline_before_expiry_runs(self):
        rid = self.grant()
        self.assertTrue(self.check())
        row = run(["sqlite3", "-cmd", ".timeout 5000", self.broker.db,
                   f"SELECT deadline_boot, expires_at, boot_id FROM requests WHERE id = {rid}"]).stdout.strip()
        deadline_boot, expires_at, boot_id = row.split("|")
        # The broker's expiry timer is armed for 30 minutes from now: these rows are what a
        # late timer, or a broker stopped across the deadline, leaves behind.
        cases = (("deadline_boot", "1", deadline_boot),  # boot-time deadline passed
                 ("expires_at", "1", expires_at),  # wall-clock end passed
                 ("boot_id", "'" + "0" * 32 + "'", f"'{boot_id}'"))  # granted in another boot
        for column, stale, good in cases:
            with self.subTest(column):
                self.sql(f"UPDATE requests SET {column} = {stale} WHERE id = {rid}")
                try:
                    self.assertFalse(self.check())
                    self.assertRefused(self.u["jit-alice"])
                    self.assertEqual(self.u["jit-alice"].ok("show", rid)["state"], "active")
                finally:
                    self.sql(f"UPDATE requests SET {column} = {good} WHERE id = {rid}")
                self.assertTrue(self.check())

    def test_grant_from_another_boot_ends_at_start(self):
        rid = self.grant()
        self.broker.stop()
        self.sql(f"UPDATE requests SET boot_id = '{'0' * 32}' WHERE id = {rid}")
        self.broker.start()
        shown = wait_for(lambda: (lambda r: r["state"] != "active" and r)(self.root.ok("show", rid)),
                         what="the grant of another boot to end")
        self.assertEqual((shown["state"], shown["end_reason"]), ("expired", "the host rebooted"))
        self.assertFalse(self.check())

    # -- nobody reviews their own request --

    def test_requester_never_reviews_their_own_request(self):
        erin = self.u["jit-erin"]
        rid = str(erin.ok("request", "--reason", "rotate the certificates")["id"])
        self.addCleanup(erin.jitctl, "cancel", rid)
        p = erin.jitctl("deny", rid, "--reason", "changed my mind")
        self.assertExit(p, EXIT_REFUSED)
        self.assertIn(f"jit-erin may not deny request {rid}", p.stderr)
        p = erin.jitctl("approve", rid)
        self.assertExit(p, EXIT_REFUSED)
        self.assertIn(f"jit-erin cannot approve their own request {rid}", p.stderr)
        shown = erin.ok("show", rid)
        self.assertEqual((shown["state"], shown["approvals"]), ("pending", []))

    # -- only root (the PAM stack) ends a session --

    @unittest.skipIf(SANITIZED, "sessions run through real sudo, which cannot load a sanitized module")
    def test_user_cannot_close_their_own_session(self):
        alice = self.u["jit-alice"]
        rid = self.grant()
        p = subprocess.Popen(alice._as_user(["sudo", "-n", "--", "sleep", "600"]),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        sessions = wait_for(lambda: [s for s in alice.ok("show", rid)["sessions"] if s["running"]],
                            what="the sudo session to register")
        reply = alice.call({"version": 1, "op": "session-close", "session": sessions[0]["session"]})
        self.assertFalse(reply["ok"], reply)
        self.assertEqual(reply["error"], "refused")
        self.assertIn("only root may close sessions", reply["message"])
        self.assertTrue(alice.ok("show", rid)["sessions"][0]["running"])
        # ... so the revoke still finds it and ends it.
        self.u["jit-bob"].ok("revoke", rid, "--reason", "enough")
        wait_for(lambda: p.poll() is not None, what="the sudo session to end at revoke")

    # -- policy changes reach requests already filed --

    def reload(self, text):
        before = len(self.sb.journal(f"MESSAGE_ID={POLICY_LOADED}"))
        self.broker.write_policy(text)
        self.broker.reload()
        wait_for(lambda: len(self.sb.journal(f"MESSAGE_ID={POLICY_LOADED}")) > before, what="the reload")

    def test_reload_that_raises_approvals_holds_pending_requests_to_it(self):
        alice = self.u["jit-alice"]
        rid = str(alice.ok("request", "--reason", "rotate the certificates")["id"])
        self.addCleanup(self.root.jitctl, "revoke", rid)
        self.addCleanup(self.root.jitctl, "cancel", rid)
        self.addCleanup(self.reload, POLICY)
        self.reload(SETTINGS + RULES.format(approvals=2, cap="2h"))
        shown = self.u["jit-bob"].ok("approve", rid)
        self.assertEqual(shown["state"], "pending")
        self.assertEqual(len(shown["approvals"]), 1)
        self.assertFalse(self.check())
        self.assertRefused(alice)
        self.assertEqual(self.u["jit-carol"].ok("approve", rid)["state"], "active")
        self.assertTrue(self.check())

    def test_cap_is_judged_again_at_approval(self):
        # A policy changed while the broker was down is loaded at start, without the sweep
        # a reload runs: the approval itself must refuse what the cap no longer allows.
        alice = self.u["jit-alice"]
        rid = str(alice.ok("request", "--for", "2h", "--reason", "rotate the certificates")["id"])
        self.addCleanup(alice.jitctl, "cancel", rid)
        self.broker.stop()
        self.broker.write_policy(SETTINGS + RULES.format(approvals=1, cap="1h"))
        self.broker.start()

        def restore():
            self.broker.stop()
            self.broker.write_policy(POLICY)
            self.broker.start()
        self.addCleanup(restore)
        p = self.u["jit-bob"].jitctl("approve", rid)
        self.assertExit(p, EXIT_REFUSED)
        self.assertIn(f"request {rid} asks for 2h, longer than the 1h rule \"dev-sudo\" now allows", p.stderr)
        self.assertEqual(alice.ok("show", rid)["state"], "pending")
        self.assertFalse(self.check())

    # -- text from users reaches logs and approvers harmless --

    def test_unprintable_pam_user_is_refused_and_never_logged_raw(self):
        evil = jittest.User(self.sb, self.broker, "jit-\x1b[31malice")
        p = evil.pam_account("sudo", "deny")
        self.assertEqual(p.returncode, 0, f"{p.stdout!r} {p.stderr!r}")
        out = p.said
        self.assertIn("user name is not printable UTF-8; denying", out)
        self.assertIn("jit: this user name cannot be checked; access denied.", out)
        self.assertNotIn("\x1b", out)

    def test_approver_sees_invisible_characters_escaped(self):
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        reason = "update \u202etxt.exe\u202c and \u200bnothing else"
        rid = str(alice.ok("request", "--reason", reason)["id"])
        self.addCleanup(alice.jitctl, "cancel", rid)
        for args in (("show", rid), ("list", "--pending")):
            with self.subTest(args[0]):
                p = bob.jitctl(*args)
                self.assertExit(p, 0)
                for raw, shown in (("\u202e", "\\u202e"), ("\u202c", "\\u202c"), ("\u200b", "\\u200b")):
                    self.assertNotIn(raw, p.stdout)
                    self.assertIn(shown, p.stdout)
        # JSON keeps the exact text (escaped as JSON, which changes nothing).
        self.assertEqual(bob.ok("show", rid)["reason"], reason)
        self.assertNotIn("\u202e", bob.jitctl("show", rid, json_out=True).stdout)


if __name__ == "__main__":
    jittest.main()
