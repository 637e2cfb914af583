# SPDX-License-Identifier: MIT
"""pam_jit's wait=: real sudo on a pseudo-terminal, and real sshd through keyboard-interactive,
ask a user without a grant for a reason (and a ticket where the rule wants one), file the
request for that user and wait on one connection to the broker until an approver decides,
the wait runs out or the user presses Ctrl-C. Also measures how soon a waiting sudo goes on
after `jitctl approve` returns."""

import fcntl
import os
import re
import select
import statistics
import subprocess
import sys
import termios
import time
import unittest

import jittest
from jittest import BrokerTestCase, wait_for

POLICY = """
settings = { default_duration = "1h"; max_duration = "8h"; max_filings_per_hour = 1000; };
rules = (
  { name = "tickets"; services = ["sudo"]; requesters = ["%jit-tix"];
    approvers = ["%jit-lead"]; approvals = 1; ticket_pattern = "^OPS-[0-9]+$"; },
  { name = "at-once"; services = ["sudo"]; requesters = ["%jit-auto"]; auto_approve = true; },
  { name = "two"; services = ["sudo"]; requesters = ["%jit-two"]; approvers = ["%jit-lead"]; approvals = 2; },
  { name = "dev"; services = ["sudo", "sshd"]; requesters = ["%jit-dev"];
    approvers = ["%jit-lead"]; approvals = 1; }
);
"""

USERS = {
    "jit-alice": ["jit-dev", "jit-wait"],
    "jit-bob": ["jit-lead"],
    "jit-carol": ["jit-tix", "jit-wait"],
    "jit-dave": ["jit-wait"],
    "jit-erin": ["jit-auto", "jit-wait"],
    "jit-frank": ["jit-two", "jit-wait"],
    "jit-gina": ["jit-lead"],
}

# What a user sees (pam_jit/pam-wait.c).
ANNOUNCE = "jit: no active grant for {service}; a request needs 1 approval from %jit-lead."
ANNOUNCE_AUTO = "jit: no active grant for sudo; a request is granted at once."
REASON_PROMPT = "jit: reason (empty cancels): "
TICKET_PROMPT = "jit: ticket matching ^OPS-[0-9]+$ (empty cancels): "
FILED = re.compile(r"jit: request (\d+) filed, waiting for 1 approval from %jit-lead "
                   r"\(((?:\d+m)?(?:\d+s)?) left, Ctrl-C cancels\)")
APPROVED = "jit: approved by jit-bob"
GRANTED = "jit: request {id} granted for 1h."
DENIED = "jit: request {id} denied by jit-bob: {reason}"
RAN_OUT = "jit: no approval within {wait}; request {id} cancelled"
CANCELLED = "jit: request {id} cancelled."
NOTHING_FILED = "jit: no answer; nothing filed."
REFUSED = "jit: jit-dave cannot ask for sudo access: no policy rule lets jit-dave request sudo"
PRESS_ENTER = "jit: press Enter to wait for the decision: "
# sudo's own words after a failed attempt (pam_authenticate() said PAM_AUTH_ERR).
SUDO_AGAIN = "Sorry, try again."


def take_controlling_tty():
    """In the child, after setsid(): its stdin (the pty) becomes its controlling terminal,
    which sudo reads prompts from and ssh reads keyboard-interactive answers from."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """A program on a pseudo-terminal of its own, read and typed at as a person would."""

    def __init__(self, argv, env=None):
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     start_new_session=True, preexec_fn=take_controlling_tty)
        os.close(slave)
        self.out = b""
        self.pos = 0  # what expect() has consumed
        self.eof = False

    def _read(self, timeout):
        if self.eof:
            return
        r, _, _ = select.select([self.master], [], [], max(timeout, 0))
        if not r:
            return
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every holder of the slave side is gone
            data = b""
        if not data:
            self.eof = True
        self.out += data

    def text(self):
        return self.out.decode(errors="replace")

    def expect(self, what, timeout=15.0):
        """Waits for what (a string, or a compiled pattern) to appear after what was consumed
        before; consumes up to its end and returns the match (a string, or the re.Match)."""
        deadline = time.monotonic() + timeout
        while True:
            rest = self.out[self.pos:].decode(errors="replace")
            if isinstance(what, str):
                i = rest.find(what)
                if i >= 0:
                    self.pos += len(rest[:i + len(what)].encode())
                    return what
            else:
                m = what.search(rest)
                if m:
                    self.pos += len(rest[:m.end()].encode())
                    return m
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                raise AssertionError(f"{what!r} not seen{' (the terminal closed)' if self.eof else ''}; "
                                     f"output so far: {self.text()!r}")
            self._read(min(left, 0.5))

    def type(self, text):
        os.write(self.master, text.encode())

    def interrupt(self, tries=3):
        """Ctrl-C, as a person presses it: again when the first is lost. A ^C that lands
        after the client printed its prompt but before it reads (OpenSSH's readpassphrase()
        only looks at the signal once read() returns) leaves the client waiting for input."""
        for _ in range(tries):
            os.write(self.master, b"\x03")
            deadline = time.monotonic() + 2
            while not self.eof and time.monotonic() < deadline:
                self._read(0.2)
            if self.eof or self.proc.poll() is not None:
                return

    def finish(self, timeout=15.0):
        """Reads until the program closed the terminal and exited; returns its exit status."""
        deadline = time.monotonic() + timeout
        while not self.eof and time.monotonic() < deadline:
            self._read(0.5)
        try:
            return self.proc.wait(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.proc.args} did not exit; output: {self.text()!r}") from None

    def close(self):
        if os.environ.get("JIT_TEST_TRANSCRIPT"):
            print(f"--- {self.proc.args[-3:]}:\n{self.text()}", file=sys.stderr)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class KbdInteractiveSshd(jittest.Sshd):
    """The sandbox's sshd, with a second factor after the key: keyboard-interactive, which
    runs the PAM auth stack (and so pam_jit's wait=) with the client at the prompts."""

    def _write_config(self):
        super()._write_config()
        with open(self.config) as f:
            text = f.read()
        for old, new in (("AuthenticationMethods publickey\n", "AuthenticationMethods publickey,keyboard-interactive\n"),
                         ("KbdInteractiveAuthentication no\n", "KbdInteractiveAuthentication yes\n")):
            if text.count(old) != 1:
                raise RuntimeError(f"the sandbox's sshd_config no longer says {old!r}")
            text = text.replace(old, new)
        with open(self.config, "w") as f:
            f.write(text)


def needs_sudo(test):
    return unittest.skipIf(jittest.SANITIZED, "real sudo cannot load a sanitized module")(test)


class WaitPrompt(BrokerTestCase):
    """One sandbox (a test program holds one): sudo on a terminal, and the sandbox's sshd
    with keyboard-interactive after the key."""

    POLICY = POLICY
    USERS = USERS

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.start_sshd()
        except BaseException:
            cls.tearDownClass()  # unittest does not call it when setUpClass fails
            raise
        # The users of this test are not in jit-test, whose sudoers line needs no password:
        # sudo runs the auth stack, and so pam_jit's wait=, only when it authenticates.
        # timestamp_timeout=0: every sudo authenticates, so a grant that ended is asked for
        # again at the next sudo (what pam_jit(8) recommends).
        with open("/etc/sudoers.d/jit-wait", "w") as f:
            f.write("Defaults:%jit-wait timestamp_timeout=0\n%jit-wait ALL=(ALL:ALL) ALL\n")
        os.chmod("/etc/sudoers.d/jit-wait", 0o440)

    @classmethod
    def start_sshd(cls):
        cls.no_sshd = jittest.Sshd.unavailable()
        if cls.no_sshd:
            return
        cls.sshd_pam(wait="20s")
        cls.sshd = cls.sb.sshd = KbdInteractiveSshd(cls.sb)
        cls.sshd.start()

    @classmethod
    def sshd_pam(cls, wait, extra=""):
        """The sshd service: keyboard-interactive runs the auth stack, where pam_jit asks and
        waits and pam_permit.so authenticates (the key did, before it). sshd reads it anew
        for every connection."""
        jit = f"{jittest.PAM_JIT} socket={cls.broker.socket} timeout={jittest.PAM_TIMEOUT_MS}"
        cls.sb.write_pam_service("sshd", f"auth     required {jit} wait={wait} {extra}\n"
                                         f"auth     required pam_permit.so\n"
                                         f"account  required {jit}\n"
                                         f"password required pam_deny.so\n"
                                         f"session  required pam_permit.so\n")

    def setUp(self):
        self.pam(wait="5m")

    def pam(self, wait):
        """The sudo service: pam_jit's auth line with wait=, then a module that authenticates
        (pam_permit.so stands in for the password), then the usual account and session lines."""
        sock = self.broker.socket
        jit = f"{jittest.PAM_JIT} socket={sock} timeout={jittest.PAM_TIMEOUT_MS}"
        self.sb.write_pam_service("sudo", f"auth     required {jit} wait={wait}\n"
                                          f"auth     required pam_permit.so\n"
                                          f"account  required {jit}\n"
                                          f"session  required pam_permit.so\n"
                                          f"session  required {jit}\n")

    def sudo(self, user, *cmd):
        t = Terminal(self.u[user]._as_user(["sudo", "--"] + list(cmd or ["id", "-u"])))
        self.addCleanup(t.close)
        return t

    def show(self, rid):
        return self.root.ok("show", str(rid))

    def file(self, t, reason="restart the payments queue"):
        """Answers the reason prompt and returns the id of the request it filed."""
        t.expect(ANNOUNCE.format(service="sudo"))
        t.expect(REASON_PROMPT)
        t.type(reason + "\n")
        m = t.expect(FILED)
        self.assertIn(m.group(2), ("4m59s", "5m"))
        return int(m.group(1))

    def give_up(self, t):
        """Answers sudo's further reason prompts with nothing until it stops asking
        (passwd_tries, 3); returns its exit status. (Not Ctrl-C: sudo 1.9.13 itself now and
        then loses a Ctrl-C typed the moment it prompts, whatever module asks.)"""
        done = "sudo: 3 incorrect password attempts"
        while t.expect(re.compile(re.escape(REASON_PROMPT) + "|" + done)).group(0) != done:
            t.type("\n")
            t.expect(NOTHING_FILED)
        return t.finish()

    def assertState(self, rid, state):
        wait_for(lambda: self.show(rid)["state"] == state, what=f"request {rid} to be {state}")

    def pending_of(self, user):
        return [r for r in self.root.ok("list", "--pending") if r["requester"] == user]

    @needs_sudo
    def test_sudo_approve_lets_the_same_sudo_go_on(self):
        t = self.sudo("jit-alice", "id", "-u")
        rid = self.file(t)
        req = self.show(rid)
        self.assertEqual((req["state"], req["requester"], req["service"], req["reason"]),
                         ("pending", "jit-alice", "sudo", "restart the payments queue"))
        self.assertEqual(req["rule"], "dev")
        self.u["jit-bob"].ok("approve", str(rid))
        t.expect(APPROVED)
        t.expect(GRANTED.format(id=rid))
        t.expect("\r\n0\r\n")
        self.assertEqual(t.finish(), 0)
        self.assertEqual(self.show(rid)["state"], "active")
        self.u["jit-bob"].ok("revoke", str(rid))

    @needs_sudo
    def test_sudo_deny_refuses_with_the_reason(self):
        t = self.sudo("jit-alice", "id", "-u")
        rid = self.file(t)
        self.u["jit-bob"].ok("deny", str(rid), "--reason", "use the runbook first")
        t.expect(DENIED.format(id=rid, reason="use the runbook first"))
        # sudo counts a failed attempt and asks again (passwd_tries).
        t.expect(SUDO_AGAIN)
        self.assertEqual(self.give_up(t), 1)
        self.assertNotIn("\r\n0\r\n", t.text())
        self.assertEqual(self.show(rid)["state"], "denied")
        self.assertEqual(self.pending_of("jit-alice"), [])

    @needs_sudo
    def test_sudo_ctrl_c_cancels_the_request(self):
        t = self.sudo("jit-alice", "id", "-u")
        rid = self.file(t)
        self.assertEqual(self.show(rid)["state"], "pending")
        t.type("\x03")
        t.expect(CANCELLED.format(id=rid))
        self.assertNotEqual(t.finish(), 0)
        self.assertState(rid, "cancelled")
        self.assertNotIn("\r\n0\r\n", t.text())
        self.assertNotIn(REASON_PROMPT, t.text()[t.text().index(CANCELLED.format(id=rid)):])

    @needs_sudo
    def test_sudo_wait_running_out_cancels_the_request(self):
        self.pam(wait="3s")
        t = self.sudo("jit-alice", "id", "-u")
        t.expect(REASON_PROMPT)
        t.type("look at the disk\n")
        m = t.expect(FILED)
        rid = int(m.group(1))
        self.assertIn(m.group(2), ("2s", "3s"))
        start = time.monotonic()
        t.expect(RAN_OUT.format(wait="3s", id=rid), timeout=10)
        self.assertLess(time.monotonic() - start, 5)
        self.assertState(rid, "cancelled")
        t.expect(SUDO_AGAIN)
        self.assertEqual(self.give_up(t), 1)
        self.assertEqual(self.pending_of("jit-alice"), [])

    @needs_sudo
    def test_sudo_rule_with_a_ticket_asks_for_it(self):
        t = self.sudo("jit-carol", "id", "-u")
        t.expect(ANNOUNCE.format(service="sudo"))
        t.expect(REASON_PROMPT)
        t.type("rotate the certificate\n")
        t.expect(TICKET_PROMPT)
        t.type("OPS-4711\n")
        rid = int(t.expect(FILED).group(1))
        req = self.show(rid)
        self.assertEqual((req["requester"], req["rule"], req["ticket"]), ("jit-carol", "tickets", "OPS-4711"))
        self.u["jit-bob"].ok("approve", str(rid))
        t.expect(GRANTED.format(id=rid))
        t.expect("\r\n0\r\n")
        self.assertEqual(t.finish(), 0)
        self.u["jit-bob"].ok("revoke", str(rid))

    @needs_sudo
    def test_sudo_two_approvals_are_counted(self):
        t = self.sudo("jit-frank", "id", "-u")
        t.expect("jit: no active grant for sudo; a request needs 2 approvals from %jit-lead.")
        t.expect(REASON_PROMPT)
        t.type("move the database\n")
        m = t.expect(re.compile(r"jit: request (\d+) filed, waiting for 2 approvals from %jit-lead \("))
        rid = m.group(1)
        self.u["jit-bob"].ok("approve", rid)
        t.expect("jit: approved by jit-bob; 1 more approval needed.")
        self.assertEqual(self.show(rid)["state"], "pending")
        self.u["jit-gina"].ok("approve", rid)
        t.expect("jit: approved by jit-gina\r\n")
        t.expect(GRANTED.format(id=rid))
        t.expect("\r\n0\r\n")
        self.assertEqual(t.finish(), 0)
        self.root.ok("revoke", rid)

    @needs_sudo
    def test_sudo_ticket_that_does_not_match_files_nothing(self):
        t = self.sudo("jit-carol", "id", "-u")
        t.expect(REASON_PROMPT)
        t.type("rotate the certificate\n")
        t.expect(TICKET_PROMPT)
        t.type("JIRA-1\n")
        t.expect('jit: rule "tickets" needs a ticket matching ^OPS-[0-9]+$; "JIRA-1" does not match')
        t.expect(SUDO_AGAIN)
        self.assertEqual(self.give_up(t), 1)
        self.assertEqual(self.pending_of("jit-carol"), [])

    @needs_sudo
    def test_sudo_empty_reason_files_nothing(self):
        before = self.root.ok("list", "--all")
        t = self.sudo("jit-alice", "id", "-u")
        t.expect(REASON_PROMPT)
        t.type("\n")
        t.expect(NOTHING_FILED)
        t.expect(SUDO_AGAIN)
        t.expect(REASON_PROMPT)
        t.type("   \n")  # only spaces is no answer either
        t.expect(NOTHING_FILED)
        t.expect(REASON_PROMPT)
        t.type("\n")
        t.expect("sudo: 3 incorrect password attempts")
        self.assertEqual(t.finish(), 1)
        self.assertEqual(self.root.ok("list", "--all"), before)

    @needs_sudo
    def test_sudo_grant_holder_is_not_asked(self):
        rid = self.u["jit-alice"].ok("request", "--reason", "already asked")["id"]
        self.u["jit-bob"].ok("approve", str(rid))
        t = self.sudo("jit-alice", "id", "-u")
        self.assertEqual(t.finish(), 0)
        self.assertEqual(t.text(), "0\r\n")
        self.u["jit-bob"].ok("revoke", str(rid))

    @needs_sudo
    def test_sudo_no_rule_refuses_without_asking(self):
        t = self.sudo("jit-dave", "id", "-u")
        t.expect(REFUSED)
        self.assertEqual(t.finish(), 1)
        self.assertNotIn("reason", t.text())
        self.assertEqual(self.pending_of("jit-dave"), [])

    @needs_sudo
    def test_sudo_auto_approving_rule_goes_on_at_once(self):
        t = self.sudo("jit-erin", "id", "-u")
        t.expect(ANNOUNCE_AUTO)
        t.expect(REASON_PROMPT)
        t.type("nightly restart\n")
        m = t.expect(re.compile(r"jit: request (\d+) granted for 1h\."))
        t.expect("\r\n0\r\n")
        self.assertEqual(t.finish(), 0)
        rid = m.group(1)
        self.assertEqual(self.show(rid)["state"], "active")
        self.root.ok("revoke", rid)

    def ssh(self, user, *cmd):
        if self.no_sshd:
            self.skipTest(self.no_sshd)
        # LogLevel INFO, ssh's default: below it ssh drops the server's keyboard-interactive
        # instruction, where sshd puts what PAM said before failing.
        argv = self.u[user].ssh_argv(*cmd, log_level="INFO")
        # Prompts need a person: no BatchMode; the key first, then keyboard-interactive.
        argv[argv.index("BatchMode=yes")] = "BatchMode=no"
        i = argv.index("--")
        argv[i:i] = ["-o", "KbdInteractiveAuthentication=yes",
                     "-o", "PreferredAuthentications=publickey,keyboard-interactive",
                     "-o", "NumberOfPasswordPrompts=1"]
        t = Terminal(argv)
        self.addCleanup(t.close)
        return t

    def file_over_ssh(self, t):
        t.expect(ANNOUNCE.format(service="sshd"))
        t.expect(REASON_PROMPT)
        t.type("look at the payments queue\n")
        m = t.expect(FILED)
        t.expect(PRESS_ENTER)
        return int(m.group(1))

    def test_ssh_approve_lets_the_same_login_go_on(self):
        t = self.ssh("jit-alice", "id", "-un")
        rid = self.file_over_ssh(t)
        req = self.show(rid)
        self.assertEqual((req["state"], req["requester"], req["service"]), ("pending", "jit-alice", "sshd"))
        t.type("\n")
        self.u["jit-bob"].ok("approve", str(rid))
        t.expect("jit-alice\r\n")
        self.assertEqual(t.finish(), 0)
        self.assertEqual(self.show(rid)["state"], "active")
        self.u["jit-bob"].ok("revoke", str(rid))

    def test_ssh_approval_before_enter_goes_on_at_enter(self):
        t = self.ssh("jit-alice", "id", "-un")
        rid = self.file_over_ssh(t)
        self.u["jit-bob"].ok("approve", str(rid))
        t.type("\n")
        t.expect("jit-alice\r\n")
        self.assertEqual(t.finish(), 0)
        self.u["jit-bob"].ok("revoke", str(rid))

    def test_ssh_deny_shows_the_reason(self):
        t = self.ssh("jit-alice", "id", "-un")
        rid = self.file_over_ssh(t)
        t.type("\n")
        self.u["jit-bob"].ok("deny", str(rid), "--reason", "not from home")
        t.expect(DENIED.format(id=rid, reason="not from home"))
        self.assertEqual(t.finish(), 255)
        self.assertNotIn("jit-alice\r\n", t.text())
        self.assertEqual(self.show(rid)["state"], "denied")

    def test_ssh_ctrl_c_while_waiting_cancels_when_the_wait_ends(self):
        """After Enter, sshd's monitor waits on the PAM process and does not see the client
        go: the wait ends when wait= runs out (or LoginGraceTime, whichever comes first),
        and the request is cancelled then, not approved into nobody's hands."""
        self.sshd_pam(wait="3s", extra="debug")
        self.addCleanup(self.sshd_pam, wait="20s")
        t = self.ssh("jit-alice", "id", "-un")
        t.expect(REASON_PROMPT)
        t.type("look at the payments queue\n")
        rid = int(t.expect(FILED).group(1))
        t.expect(PRESS_ENTER)
        filed = time.monotonic()
        t.type("\n")
        # With debug, the module logs that it waits, past the prompt.
        waiting = f" for a decision on request {rid} of user jit-alice"
        wait_for(lambda: any(e.get("MESSAGE", "").startswith("pam_jit(sshd:auth): waiting ")
                             and e["MESSAGE"].endswith(waiting)
                             for e in self.sb.journal("SYSLOG_IDENTIFIER=sshd")),
                 what="the module to wait past the prompt")
        t.type("\x03")
        self.assertNotEqual(t.finish(), 0)
        self.assertEqual(self.show(rid)["state"], "pending")
        wait_for(lambda: self.show(rid)["state"] == "cancelled", what=f"request {rid} to be cancelled")
        self.assertGreaterEqual(time.monotonic() - filed, 2.5)

    def test_ssh_ctrl_c_at_the_status_prompt_cancels_the_request(self):
        t = self.ssh("jit-alice", "id", "-un")
        rid = self.file_over_ssh(t)
        t.interrupt()
        self.assertNotEqual(t.finish(), 0)
        wait_for(lambda: self.show(rid)["state"] == "cancelled", what=f"request {rid} to be cancelled")

    # ---- pam_authenticate() through pam_wrapper (also in the sanitized build) ----

    def pam_auth(self, user, expect, answers=(), lines=None, service="sudo", wait="5m", **env):
        """Starts pamtest_jit: pam_authenticate() for user through libpam and pam_wrapper,
        answering the prompts with answers, expecting the stack's result expect (a PAM code,
        or "allow": PAM_SUCCESS); it checks for leaked fds itself. Returns the Popen."""
        if not jittest.PAMTEST:
            self.skipTest("pamtest_jit was not built (libpamtest0-dev, libpam-wrapper)")
        d = self.sb.path("pam-wrapper", f"auth-{service}-{self._testMethodName}")
        os.makedirs(d, exist_ok=True)
        jit = f"{jittest.PAM_JIT} socket={self.broker.socket} timeout={jittest.PAM_TIMEOUT_MS}"
        self.sb.write_pam_service(service, lines or f"auth required {jit} wait={wait}\n"
                                                    f"auth required pam_permit.so\n", d)
        env = dict(os.environ, PAM_WRAPPER="1", PAM_WRAPPER_SERVICE_DIR=d, LD_PRELOAD=jittest.LIBPAM_WRAPPER,
                   UID_WRAPPER_DISABLE_DEEPBIND="1", PAM_WRAPPER_DISABLE_DEEPBIND="1", PAM_WRAPPER_DEBUGLEVEL="3",
                   JIT_TEST_OP="auth", JIT_TEST_SERVICE=service, JIT_TEST_USER=user, JIT_TEST_EXPECT=str(expect),
                   JIT_TEST_ANSWERS="\n".join(answers),
                   ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0", **env)
        # pam_wrapper's copy of the service directory is not safe against another pamtest_jit
        # at the same time (jittest.User.pam_account): the same lock.
        # Held until the program ends (pam_done(), or the cleanup).
        lock = open(jittest.PAM_WRAPPER_LOCK, "a")
        fcntl.flock(lock, fcntl.LOCK_EX)
        p = subprocess.Popen([jittest.PAMTEST], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        p.lock = lock
        self.addCleanup(self.pam_end, p)
        return p

    def pam_end(self, p, timeout=30):
        if p.poll() is None and not p.lock.closed:
            try:
                p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
        p.lock.close()

    def pam_finish(self, p, timeout=30):
        """pamtest_jit's output once it exited; its exit status is in p.returncode."""
        out, _ = p.communicate(timeout=timeout)
        p.lock.close()
        return out

    def pam_done(self, p, timeout=30):
        out = self.pam_finish(p, timeout)
        self.assertEqual(p.returncode, 0, out)
        return out

    def filed_for(self, user):
        return wait_for(lambda: self.pending_of(user), what=f"a pending request of {user}")[0]["id"]

    def test_pam_approve(self):
        p = self.pam_auth("jit-alice", "allow", answers=["fix the queue"], JIT_TEST_EXPECT_PROMPTS="1")
        rid = self.filed_for("jit-alice")
        self.u["jit-bob"].ok("approve", str(rid))
        out = self.pam_done(p)
        self.assertIn(f"pam-info: jit: request {rid} granted for 1h.", out)
        self.assertEqual(self.show(rid)["state"], "active")
        self.u["jit-bob"].ok("revoke", str(rid))

    def test_pam_silent_still_asks(self):
        """sudo passes PAM_SILENT to every pam_authenticate(): the wait asks all the same."""
        p = self.pam_auth("jit-alice", "allow", answers=["fix the queue"], JIT_TEST_SILENT="1")
        rid = self.filed_for("jit-alice")
        self.u["jit-bob"].ok("approve", str(rid))
        out = self.pam_done(p)
        self.assertIn("pam-prompt: " + REASON_PROMPT, out)
        self.u["jit-bob"].ok("revoke", str(rid))

    def test_pam_sshd_asks_to_press_enter(self):
        p = self.pam_auth("jit-alice", "allow", answers=["fix the queue", ""], service="sshd",
                          JIT_TEST_EXPECT_PROMPTS="2")
        rid = self.filed_for("jit-alice")
        self.u["jit-bob"].ok("deny", str(rid), "--reason", "not now")
        out = self.pam_finish(p)
        self.assertNotEqual(p.returncode, 0)  # expected allow: the denial fails the stack
        self.assertIn("pam-prompt: " + PRESS_ENTER, out)
        self.assertIn(f"pam-error: {DENIED.format(id=rid, reason='not now')}", out)
        self.assertIn("result: 7 (Authentication failure)", out)

    def test_pam_conversation_failing_files_nothing(self):
        before = self.root.ok("list", "--all")
        self.pam_done(self.pam_auth("jit-alice", 7, answers=[]))
        self.assertEqual(self.root.ok("list", "--all"), before)

    def test_pam_wait_running_out_cancels(self):
        p = self.pam_auth("jit-alice", 7, answers=["fix the queue"], wait="1s")
        out = self.pam_done(p)
        rid = int(FILED.search(out).group(1))
        self.assertIn(RAN_OUT.format(wait="1s", id=rid), out)
        wait_for(lambda: self.show(rid)["state"] == "cancelled", what=f"request {rid} to be cancelled")

    def test_pam_never_authenticates(self):
        """A grant holder with pam_jit as "sufficient" before a module that fails: pam_jit
        ignores, so the stack fails. PAM_SUCCESS there would skip the password."""
        rid = self.u["jit-alice"].ok("request", "--reason", "already asked")["id"]
        self.u["jit-bob"].ok("approve", str(rid))
        jit = f"{jittest.PAM_JIT} socket={self.broker.socket} timeout={jittest.PAM_TIMEOUT_MS} wait=5m"
        p = self.pam_auth("jit-alice", 7, lines=f"auth sufficient {jit}\nauth required pam_deny.so\n",
                          JIT_TEST_EXPECT_PROMPTS="0", JIT_TEST_EXPECT_NO_MESSAGE="1")
        self.pam_done(p)
        self.u["jit-bob"].ok("revoke", str(rid))

    def test_pam_without_wait_does_nothing(self):
        missing = self.sb.path("run", "no-broker.sock")
        p = self.pam_auth("jit-alice", "allow", lines=f"auth required {jittest.PAM_JIT} socket={missing}\n"
                                                       f"auth required pam_permit.so\n",
                          JIT_TEST_EXPECT_PROMPTS="0", JIT_TEST_EXPECT_NO_MESSAGE="1")
        self.pam_done(p)

    def test_pam_broker_down_fails(self):
        missing = self.sb.path("run", "no-broker.sock")
        p = self.pam_auth("jit-alice", 7, lines=f"auth required {jittest.PAM_JIT} socket={missing} wait=5m\n"
                                                f"auth required pam_permit.so\n",
                          JIT_TEST_EXPECT_PROMPTS="0",
                          JIT_TEST_EXPECT_MESSAGE="jit: access broker unavailable (No such file or directory); access denied.")
        self.pam_done(p)

    def test_pam_bad_wait_is_a_configuration_error(self):
        for bad in ("2h", "-1", "5x", "3601", "1.5m"):
            p = self.pam_auth("jit-alice", 3, wait=bad, JIT_TEST_EXPECT_PROMPTS="0")  # PAM_SERVICE_ERR
            out = self.pam_done(p)
            self.assertIn("wait= must be 0 or a duration up to 3600s", out)

    @needs_sudo
    def test_zz_time_from_approve_to_sudo_going_on(self):
        """20 rounds: how long after `jitctl approve` returns does the waiting sudo say it
        is granted, and run its command."""
        to_granted, to_command, approve_call = [], [], []
        for i in range(20):
            t = self.sudo("jit-alice", "echo", f"ran-{i}")
            rid = self.file(t, reason=f"round {i}")
            called = time.monotonic()
            self.u["jit-bob"].ok("approve", str(rid))
            start = time.monotonic()
            t.expect(GRANTED.format(id=rid))
            approve_call.append(start - called)
            to_granted.append(time.monotonic() - start)
            t.expect(f"ran-{i}\r\n")
            to_command.append(time.monotonic() - start)
            self.assertEqual(t.finish(), 0)
            self.u["jit-bob"].ok("revoke", str(rid))
        for name, values in (("jitctl approve itself", approve_call),
                             ("approve returned -> granted message", to_granted),
                             ("approve returned -> command running", to_command)):
            print(f"{name}: p50 {statistics.median(values) * 1000:.1f} ms, "
                  f"p99 {percentile(values, 99) * 1000:.1f} ms over {len(values)} runs", file=sys.stderr)
        self.assertLess(percentile(to_command, 99), 1.0)


if __name__ == "__main__":
    jittest.main()
