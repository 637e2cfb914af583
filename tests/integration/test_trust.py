# SPDX-License-Identifier: MIT
"""The trust anchors, each by the scenario that breaks when the guarantee is gone:
clients believe only a broker running as root; who is asking comes from the kernel, never
from the message; a grant past its deadline, or from another boot, opens nothing even
before the expiry runs; only root ends a session; fail=open opens only for an absent
broker; only a boolean "allowed": true allows; a reload that asks for more approvals holds
pending requests to it; an unprintable PAM user is refused and never logged raw; invisible,
reordering and stacked characters are refused in text, escaped for an approver and in
journald's MESSAGE; fail=open is refused where a user could have removed the socket; a
crafted audit archive is refused; the duration cap is judged again at approval."""

import json
import os
import pwd
import signal
import socket
import stat
import subprocess
import time
import unittest

import jittest
from jittest import EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE, SANITIZED, BrokerTestCase, run, wait_for

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

    def root_only_dir(self):
        """A directory whose every component, from / down, is root's and writable by root
        alone: a tmpfs (mode 0755) on a fresh directory of /run, in this test's mount
        namespace — or of this test's private /etc where /run is writable by all (a /run
        tmpfs mounted with its default mode 1777, as in a bare chroot). (The sandbox itself
        is under /tmp, which everyone may write to.)"""
        def root_only(path):
            st = os.lstat(path)
            return st.st_uid == 0 and not stat.S_IMODE(st.st_mode) & 0o022
        parent = "/run" if root_only("/run") else "/etc"
        d = os.path.join(parent, "jit-test-fail-open")
        os.makedirs(d, mode=0o755, exist_ok=True)
        run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", d])
        self.addCleanup(run, ["umount", "-l", d], check=False)
        for part in ("/", parent, d):
            st = os.lstat(part)
            self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode) & 0o022), (0, 0), part)
        return d

    def test_fail_open_allows_only_an_absent_broker(self):
        alice = self.u["jit-alice"]
        d = self.root_only_dir()
        absent = os.path.join(d, "absent", "broker.sock")
        os.makedirs(os.path.dirname(absent), mode=0o755)
        self.assertGate(alice, "deny", absent, "fail=closed")
        self.assertGate(alice, "allow", absent, "fail=open",
                        log="ALLOWING user jit-alice for sudo WITHOUT A GRANT because of fail=open")
        # A dead socket (the broker died and left it): connection refused, root's file.
        dead = os.path.join(d, "dead.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(dead)
        s.close()
        os.chmod(dead, 0o666)  # as systemd's socket unit makes it: the mode says who may connect
        self.assertGate(alice, "allow", dead, "fail=open",
                        log=f"broker at {dead} unusable (Connection refused); ALLOWING user jit-alice")
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

    def test_fail_open_refused_where_a_user_could_remove_the_socket(self):
        """A missing socket, or a dead one, proves nothing when a user may write to a
        directory on its path: they could have deleted it, or bound their own and exited.
        fail=open then denies, and says which component is to blame."""
        alice = self.u["jit-alice"]
        d = self.root_only_dir()
        dave_uid = pwd.getpwnam("jit-dave").pw_uid
        owned = os.path.join(d, "dave")
        os.makedirs(owned, mode=0o755)
        os.chown(owned, dave_uid, -1)
        writable = os.path.join(d, "open")
        os.makedirs(writable)
        os.chmod(writable, 0o777)
        sticky = os.path.join(d, "sticky")
        os.makedirs(sticky)
        os.chmod(sticky, 0o1777)  # like /tmp: a user can still bind the name first
        group = os.path.join(d, "group")
        os.makedirs(group)
        os.chmod(group, 0o775)
        real = os.path.join(d, "real")
        os.makedirs(real, mode=0o755)
        link = os.path.join(d, "link")
        os.symlink(real, link)
        # A dead socket that is not root's, in a directory that is.
        users_sock = os.path.join(real, "users.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(users_sock)
        s.close()
        os.chown(users_sock, dave_uid, -1)
        not_socket = os.path.join(real, "file.sock")
        open(not_socket, "w").close()
        # The sandbox: under /tmp (or wherever tempfile put it), writable by all.
        tmp = next(p for p in self.ancestors(self.sb.root)
                   if os.lstat(p).st_mode & 0o022 or os.lstat(p).st_uid != 0)
        cases = (
            (os.path.join(owned, "broker.sock"), f"{owned} is owned by uid {dave_uid}, not root"),
            (os.path.join(writable, "broker.sock"), f"{writable} is writable by group/others"),
            (os.path.join(sticky, "broker.sock"), f"{sticky} is writable by group/others"),
            (os.path.join(group, "broker.sock"), f"{group} is writable by group/others"),
            (os.path.join(link, "broker.sock"), f"{link} is a symbolic link"),
            (users_sock, f"{users_sock} is owned by uid {dave_uid}, not root"),
            (not_socket, f"{not_socket} is not a socket"),
            (self.sb.path("absent", "broker.sock"), f"{tmp} is writable by group/others"
             if os.lstat(tmp).st_uid == 0 else f"{tmp} is owned by uid {os.lstat(tmp).st_uid}, not root"),
        )
        for sock, why in cases:
            with self.subTest(sock):
                self.assertGate(alice, "deny", sock, "fail=open",
                                log=f"fail=open refused: {why} (a user could remove or replace the "
                                    f"broker socket {sock})")
        # The same paths without fail=open deny as they always did, and say nothing of it.
        before = len(self.sb.journal("SYSLOG_IDENTIFIER=sudo"))
        self.assertGate(alice, "deny", cases[0][0], "fail=closed", log="denying user jit-alice")
        if not SANITIZED:
            self.assertFalse([m for m in self.pam_log(before) if "fail=open refused" in m])

    @staticmethod
    def ancestors(path):
        """path's components from / down: /, /tmp, /tmp/x, ..."""
        parts, out = path.strip("/").split("/"), ["/"]
        for i in range(len(parts)):
            out.append("/" + "/".join(parts[:i + 1]))
        return out

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

    def test_a_kept_answer_is_judged_by_the_clocks_again(self):
        """The check keeps its answers while the database is unchanged (check-cache.h); a
        grant that runs out with nothing written meanwhile (its expiry timer late, or, as
        here, armed for a later deadline than the row now says) is refused all the same."""
        rid = self.grant()
        row = run(["sqlite3", "-cmd", ".timeout 5000", self.broker.db,
                   f"SELECT deadline_boot, expires_at FROM requests WHERE id = {rid}"]).stdout.strip()
        deadline_boot, expires_at = row.split("|")
        cases = (("deadline_boot", time.CLOCK_BOOTTIME, deadline_boot),
                 ("expires_at", time.CLOCK_REALTIME, expires_at))
        for column, clock, good in cases:
            with self.subTest(column):
                soon = time.clock_gettime_ns(clock) // 1000 + 500_000
                self.sql(f"UPDATE requests SET {column} = {soon} WHERE id = {rid}")
                try:
                    self.assertTrue(self.check())  # read, and kept
                    self.assertTrue(self.check())  # answered from what was kept
                    wait_for(lambda: time.clock_gettime_ns(clock) // 1000 > soon + 20_000,
                             what=f"{column} to pass")
                    self.assertFalse(self.check())
                finally:
                    self.sql(f"UPDATE requests SET {column} = {good} WHERE id = {rid}")
                self.assertTrue(self.check())

    def test_another_process_on_the_database_leaves_the_broker_be(self):
        """sqlite's locks on the WAL index belong to the process: a broker that opened and
        closed that file itself would drop them, and the next process to open the database
        would take the index for unused and reset it under the broker (which then died of
        SIGBUS). An administrator's sqlite3 reading the live database changes nothing."""
        rid = self.grant()
        self.assertTrue(self.check())
        shm = self.broker.db + "-shm"
        # sqlite's hold on the index ("still in use" to every other process) is a POSIX lock
        # of the broker's process on the file.
        ino = os.stat(shm).st_ino
        with open("/proc/locks") as f:
            held = [line for line in f if f":{ino} " in line and line.split()[4] == str(self.broker.proc.pid)]
        self.assertTrue(held, "the broker holds no lock on its database's WAL index")
        size = os.path.getsize(shm)
        self.sql("SELECT COUNT(*) FROM requests")
        self.assertEqual(os.path.getsize(shm), size)
        self.assertTrue(self.check())
        self.assertEqual(self.root.ok("show", rid)["state"], "active")
        self.assertIsNone(self.broker.proc.poll())

    def test_grant_from_another_boot_ends_at_start(self):
        rid = self.grant()
        self.broker.stop()
        self.sql(f"UPDATE requests SET boot_id = '{'0' * 32}' WHERE id = {rid}")
        self.broker.start()
        shown = wait_for(lambda: (lambda r: r["state"] != "active" and r)(self.root.ok("show", rid)),
                         what="the grant of another boot to end")
        self.assertEqual((shown["state"], shown["end_reason"]), ("expired", "the host rebooted"))
        self.assertFalse(self.check())

    def test_container_reboot_ends_grants(self):
        """A container that reboots keeps the host's kernel (and its boot id) but starts a
        new PID 1: a broker run as PID 1 of a PID namespace of its own is in a new
        "container boot" each time, and ends the grants of the last one at start."""
        # --propagation unchanged: / may not be a mount point (a chroot), and this program's
        # mount namespace is private already.
        container = ["unshare", "--pid", "--fork", "--mount-proc", "--propagation", "unchanged",
                     "--kill-child=SIGTERM"]

        def restart_in_a_new_container():
            self.broker.stop()
            wait_for(lambda: not os.path.exists(self.broker.socket), what="the last broker to exit")
            self.broker.start(wrap=container)

        def back_to_the_host():
            self.broker.stop()
            wait_for(lambda: not os.path.exists(self.broker.socket), what="the container's broker to exit")
            self.broker.start()
        self.addCleanup(back_to_the_host)
        restart_in_a_new_container()
        rid = self.grant()
        self.assertTrue(self.check())
        restart_in_a_new_container()
        shown = wait_for(lambda: (lambda r: r["state"] != "active" and r)(self.root.ok("show", rid)),
                         what="the grant of the last container boot to end")
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
        for name, raw in (("jit-\x1b[31malice", "\x1b"), ("jit-\u00adalice", "\u00ad"),
                          ("jit-alice\u202e", "\u202e"), ("jit-alice\U000e0041", "\U000e0041")):
            with self.subTest(name=ascii(name)):
                evil = jittest.User(self.sb, self.broker, name)
                p = evil.pam_account("sudo", "deny")
                self.assertEqual(p.returncode, 0, f"{p.stdout!r} {p.stderr!r}")
                out = p.said
                self.assertIn("user name is not printable UTF-8; denying", out)
                self.assertIn("jit: this user name cannot be checked; access denied.", out)
                self.assertNotIn(raw, out)

    def test_invisible_characters_are_refused_and_nothing_filed(self):
        """Text a person will read may not hide or reorder itself: the broker refuses it,
        naming the character, and jitctl says the same before asking."""
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        ids = sorted(r["id"] for r in self.root.ok("list", "--all"))
        base = {"version": 1, "op": "request", "service": "sudo", "reason": "rotate the certificates"}
        cases = (("reason", "rotate the certificates\U000e0041", "U+E0041"),  # a tag: hidden text
                 ("reason", "rotate the\u00adcertificates", "U+00AD"),  # soft hyphen
                 ("reason", "rotate \u202etxt.exe", "U+202E"),  # right-to-left override
                 ("reason", "rotate\u3164the certificates", "U+3164"),  # Hangul filler
                 ("ticket", "OPS-1\u200b", "U+200B"))  # zero width space
        for field, text, cp in cases:
            with self.subTest(field=field, cp=cp):
                reply = alice.call(dict(base, **{field: text}))
                self.assertEqual((reply["ok"], reply["error"], reply["message"]),
                                 (False, "bad-request",
                                  f"{field} contains an invisible or reordering character ({cp}); remove it"))
                args = ("--reason", text) if field == "reason" else ("--reason", "rotate", "--ticket", text)
                p = alice.jitctl("request", *args)
                self.assertExit(p, EXIT_USAGE)
                self.assertIn(f"jitctl: request: --{field} contains an invisible or reordering character ({cp}); "
                              f"remove it\n", p.stderr)
        # Marks stacked on one letter: four are text, five are refused.
        reply = alice.call(dict(base, reason="cafe" + "\u0301" * 5))
        self.assertEqual((reply["ok"], reply["message"]),
                         (False, "reason has more than 4 combining marks in a row (U+0301); remove some"))
        self.assertEqual(sorted(r["id"] for r in self.root.ok("list", "--all")), ids)

        rid = alice.ok("request", "--reason", "cafe" + "\u0301" * 4)["id"]
        self.addCleanup(alice.jitctl, "cancel", str(rid))
        self.assertEqual(alice.ok("show", str(rid))["reason"], "cafe" + "\u0301" * 4)
        # An approval's comment is text an auditor reads: refused, and nothing counted.
        reply = bob.call({"version": 1, "op": "approve", "id": rid, "comment": "fine\U000e0020"})
        self.assertEqual((reply["ok"], reply["error"], reply["message"]),
                         (False, "bad-request",
                          "comment contains an invisible or reordering character (U+E0020); remove it"))
        shown = alice.ok("show", str(rid))
        self.assertEqual((shown["state"], shown["approvals"]), ("pending", []))

    def test_approver_sees_invisible_characters_escaped(self):
        """The broker refuses these characters now, but text stored before (or names from
        NSS) still reaches an approver's terminal escaped."""
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        rid = str(alice.ok("request", "--reason", "placeholder")["id"])
        self.addCleanup(alice.jitctl, "cancel", rid)
        reason = ("update \u202etxt.exe\u202c and \u200bnothing\U000e0041 else\u00ad\u3164 "
                  "e" + "\u0301" * 6)
        self.sql(f"UPDATE requests SET reason = '{reason}' WHERE id = {rid}")
        shown = {"\u202e": "\\u202e", "\u202c": "\\u202c", "\u200b": "\\u200b", "\U000e0041": "\\U000e0041",
                 "\u00ad": "\\u00ad", "\u3164": "\\u3164"}
        p = bob.jitctl("show", rid)
        self.assertExit(p, 0)
        for raw, escaped in shown.items():
            self.assertNotIn(raw, p.stdout)
            self.assertIn(escaped, p.stdout)
        # Four marks shown on the letter, the fifth and sixth escaped.
        self.assertIn("e" + "\u0301" * 4 + "\\u0301\\u0301", p.stdout)
        p = bob.jitctl("list", "--pending")
        self.assertExit(p, 0)
        self.assertIn("update \\u202etxt.exe", p.stdout)
        for raw in shown:
            self.assertNotIn(raw, p.stdout)
        # JSON keeps the exact text (escaped as JSON, which changes nothing).
        self.assertEqual(bob.ok("show", rid)["reason"], reason)
        out = bob.jitctl("show", rid, json_out=True).stdout
        for raw in shown:
            self.assertNotIn(raw, out)
        self.assertIn("\\udb40\\udc41", out)

    def test_journal_message_escapes_what_it_quotes(self):
        """journalctl shows MESSAGE as the line: a name from NSS (which the broker does not
        choose) may carry a right-to-left override, and MESSAGE shows it escaped, on stderr
        too; the JIT_* fields keep the exact text."""
        name = "jit-\u202eevil"
        uid = max(p.pw_uid for p in pwd.getpwall() if p.pw_uid < 60000) + 1
        with open("/etc/passwd", "a") as f:  # the test's private /etc
            f.write(f"{name}:x:{uid}:{pwd.getpwnam('jit-alice').pw_gid}::/nonexistent:/bin/sh\n")
        evil = jittest.User(self.sb, self.broker, name)
        reply = evil.call({"version": 1, "op": "request", "service": "sudo", "reason": "let me in"})
        self.assertFalse(reply["ok"], reply)
        self.assertEqual(reply["error"], "refused")
        entries = wait_for(lambda: [e for e in self.sb.journal("SYSLOG_IDENTIFIER=jit-brokerd")
                                    if e.get("JIT_ACTOR") == name], what="the refusal in the journal")
        for e in entries:
            self.assertIn("jit-\\u202eevil", e["MESSAGE"])
            self.assertNotIn("\u202e", e["MESSAGE"])
        with open(self.sb.path("broker.log"), encoding="utf-8", errors="replace") as f:
            log = f.read()
        self.assertIn("jit-\\u202eevil", log)
        self.assertNotIn("\u202e", log)


    # -- an audit archive is verified with checked arithmetic and a seal that must agree --

    def verify_archive(self, lines):
        path = self.sb.path(f"crafted-{len(os.listdir(self.sb.root))}.jsonl")
        with open(path, "w") as f:
            f.writelines(line if isinstance(line, str) else json.dumps(line) + "\n" for line in lines)
        p = run([jittest.JITCTL, "--json", "audit", "--verify", "--archive", path], check=False)
        self.assertExit(p, 1)
        return json.loads(p.stdout)

    def test_crafted_audit_archive_is_refused(self):
        chain, h = "b" * 32, "a" * 64
        top = 2 ** 63 - 1
        # An empty archive, anchored at INT64_MAX or at the start: the broker writes none.
        for anchor in (top, 0):
            with self.subTest(anchor=anchor):
                v = self.verify_archive([
                    {"jit_audit_archive": 1, "chain_id": chain, "anchor_seq": anchor, "anchor_hash": h},
                    {"seal": {"first_seq": anchor, "last_seq": anchor, "last_hash": h, "records": 0}}])
                self.assertEqual((v["intact"], v["fault"], v["records"], v["anchor_seq"]),
                                 (False, "truncated", 0, anchor))
                self.assertEqual(v["message"], f"the archive holds no records after its anchor (record {anchor}): "
                                               "the broker never writes an empty archive")
        # No anchor at all, or one below the start of the log.
        for anchor in (-1, -(2 ** 63), "1"):
            with self.subTest(anchor=anchor):
                v = self.verify_archive([
                    {"jit_audit_archive": 1, "chain_id": chain, "anchor_seq": anchor, "anchor_hash": h}])
                self.assertEqual(v["error"], "malformed")
                self.assertTrue(v["message"].endswith(": the header's anchor_seq is not an integer from 0 up"),
                                v["message"])

        # A real archive, then its seal and anchor made to disagree. (A request first, so
        # that there is something to archive when this test runs alone.)
        rid = str(self.u["jit-alice"].ok("request", "--reason", "rotate the certificates")["id"])
        self.u["jit-alice"].ok("cancel", rid)
        out = self.sb.path("archive-real.jsonl")
        p = run([jittest.JITCTL, "--socket", self.broker.socket, "--json", "audit", "export", "--until", "tomorrow",
                 out], check=False)  # "now" is whole seconds: it would leave out this second's records
        self.assertExit(p, 0)
        info = json.loads(p.stdout)
        self.assertGreaterEqual(info["records"], 2)
        with open(out) as f:
            header, *records, seal = [json.loads(line) for line in f]
        # The archive is vouched for by the broker's journal entry; journald stores it a
        # moment after the broker sent it.
        def verified():
            p = run([jittest.JITCTL, "--json", "audit", "--verify", "--archive", out], check=False)
            return p if p.returncode == 0 else None
        wait_for(verified, what="journald to store the archive's entry")
        first, last, n = info["first_seq"], info["last_seq"], info["records"]

        def with_seal(**change):
            return [header] + records + [{"seal": dict(seal["seal"], **change)}]
        mismatch = "the seal does not match the anchor and the records: "
        cases = (
            ("records", with_seal(records=n + 1), "edited", last, mismatch),
            ("first_seq", with_seal(first_seq=first + 1), "edited", last, mismatch),
            ("first_seq far", with_seal(first_seq=-(2 ** 63)), "edited", last, mismatch),
            ("last_hash", with_seal(last_hash=h), "edited", last, mismatch),
            ("last_seq beyond", with_seal(last_seq=top), "truncated", last + 1,
             f"the archive was cut short after record {last}: its seal ends at record {top}"),
            ("no seal", [header] + records, "truncated", last + 1, "the archive has no seal: it was cut short"),
            ("anchor INT64_MAX", [dict(header, anchor_seq=top)] + records + [seal], "reordered", first,
             f"record {first} is out of place: it is stored after record {top} (the anchor)"),
        )
        for what, lines, fault, seq, message in cases:
            with self.subTest(what):
                v = self.verify_archive(lines)
                self.assertEqual((v["intact"], v["fault"], v["seq"]), (False, fault, seq))
                self.assertTrue(v["message"].startswith(message), v["message"])

if __name__ == "__main__":
    jittest.main()
