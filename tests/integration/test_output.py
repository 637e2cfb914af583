# SPDX-License-Identifier: MIT
"""What jitctl prints for people: long listings go through a pager only on a terminal and
never with --no-pager or --json; as root on someone else's behalf (sudo) the pager is less
alone, whatever $JIT_PAGER says; --no-legend leaves out the header line; tables show local
time with its zone while --json keeps RFC 3339 UTC."""

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time

import jittest
from jittest import BrokerTestCase

POLICY = """
rules = (
  { name = "dev"; services = ["sudo"]; requesters = ["%jit-dev"]; approvers = ["%jit-lead"]; }
);
"""

# A pager that marks what passed through it.
MARKING_PAGER = "sed 's/^/PAGED: /'"


def on_terminal(argv, env, timeout=20):
    """Runs argv in a session of its own whose controlling terminal is a 50x200
    pseudo-terminal (stdin from /dev/null, stdout the terminal: what a pager such as less
    reads its keys from and sizes its screen by); returns what it wrote there, with the
    terminal's CR LF as LF. Fails after timeout (a pager waiting for a key)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))

    def controlling_terminal():
        fcntl.ioctl(1, termios.TIOCSCTTY, 0)
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.DEVNULL, env=env,
                         start_new_session=True, preexec_fn=controlling_terminal)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([master], [], [], left)[0]:
            p.kill()
            p.wait()
            os.close(master)
            raise AssertionError(f"{argv} did not finish on the terminal within {timeout}s; it wrote {out!r}")
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    p.wait(timeout=30)
    return out.decode(errors="replace").replace("\r\n", "\n")


class Output(BrokerTestCase):
    POLICY = POLICY
    USERS = {"jit-alice": ["jit-dev", "jit-test"], "jit-bob": ["jit-lead", "jit-test"]}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rid = str(cls.u["jit-alice"].ok("request", "--reason", "paged listing")["id"])

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items() if k not in ("PAGER", "JIT_PAGER", "SUDO_UID", "LESS")}
        env["TZ"] = "UTC"
        env["TERM"] = "xterm"  # as on a person's terminal; CI may run with none
        env.update(extra)
        return env

    def list_argv(self, *opts):
        return [jittest.JITCTL, "--socket", self.broker.socket, "list", *opts]

    def test_pager_on_a_terminal_only(self):
        out = on_terminal(self.list_argv(), self.env(JIT_PAGER=MARKING_PAGER))
        self.assertRegex(out, r"(?m)^PAGED: ID +STATE +REQUESTER")
        self.assertRegex(out, rf"(?m)^PAGED: {self.rid} +pending +jit-alice")
        # Not a terminal: straight out.
        p = subprocess.run(self.list_argv(), capture_output=True, text=True, env=self.env(JIT_PAGER=MARKING_PAGER))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("PAGED", p.stdout)
        self.assertRegex(p.stdout, r"^ID +STATE +REQUESTER")

    def test_no_pager_json_and_cat_turn_it_off(self):
        for argv, env in ((self.list_argv("--no-pager"), self.env(JIT_PAGER=MARKING_PAGER)),
                          ([jittest.JITCTL, "--no-pager", "--socket", self.broker.socket, "list"],
                           self.env(JIT_PAGER=MARKING_PAGER)),
                          (self.list_argv(), self.env(JIT_PAGER="cat", PAGER=MARKING_PAGER)),
                          (self.list_argv(), self.env(JIT_PAGER="", PAGER=MARKING_PAGER))):
            with self.subTest(argv=argv[3:], pager=env.get("JIT_PAGER")):
                out = on_terminal(argv, env)
                self.assertNotIn("PAGED", out)
                self.assertRegex(out, rf"(?m)^{self.rid} +pending")
        # A dumb terminal (or none named): a pager could not draw its screen.
        for term in ("dumb", ""):
            with self.subTest(term=term):
                self.assertNotIn("PAGED", on_terminal(self.list_argv(), self.env(JIT_PAGER=MARKING_PAGER, TERM=term)))
        out = on_terminal(self.list_argv("--json"), self.env(JIT_PAGER=MARKING_PAGER))
        self.assertEqual(json.loads(out)[0]["id"], int(self.rid))
        # $PAGER when $JIT_PAGER is unset.
        self.assertIn("PAGED: ", on_terminal(self.list_argv(), self.env(PAGER=MARKING_PAGER)))

    def test_root_for_someone_else_gets_less_alone(self):
        """sudo jitctl list: $JIT_PAGER is not run (it could be a root shell); less is, with
        LESSSECURE=1, or the output comes through as it is where less is missing."""
        out = on_terminal(self.list_argv(), self.env(JIT_PAGER=MARKING_PAGER, SUDO_UID="1000"))
        self.assertNotIn("PAGED", out)
        self.assertRegex(out, rf"{self.rid} +pending +jit-alice")

    def test_no_legend(self):
        p = subprocess.run(self.list_argv("--no-legend"), capture_output=True, text=True, env=self.env())
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("STATE", p.stdout)
        self.assertRegex(p.stdout, rf"^{self.rid} +pending +jit-alice")
        p = subprocess.run(self.list_argv("--active", "--no-legend"), capture_output=True, text=True, env=self.env())
        self.assertEqual((p.returncode, p.stdout), (0, ""))
        p = subprocess.run(self.list_argv("--active"), capture_output=True, text=True, env=self.env())
        self.assertEqual(p.stdout, "No requests.\n")
        p = subprocess.run([jittest.JITCTL, "--socket", self.broker.socket, "audit", "--no-legend", "--no-pager"],
                           capture_output=True, text=True, env=self.env())
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("SEQ", p.stdout)
        self.assertRegex(p.stdout, r"(?m)^\d+ +\w{3} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC +")

    def test_times_local_for_people_utc_in_json(self):
        shown = self.root.ok("show", self.rid)
        self.assertRegex(shown["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        for tz, zone in (("UTC", "UTC"), ("CET-1CEST,M3.5.0,M10.5.0/3", "CES?T")):
            with self.subTest(tz=tz):
                p = subprocess.run([jittest.JITCTL, "--socket", self.broker.socket, "show", self.rid],
                                   capture_output=True, text=True, env=self.env(TZ=tz))
                self.assertEqual(p.returncode, 0, p.stderr)
                m = re.search(r"Created: (\w{3}) (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) (\S+)", p.stdout)
                self.assertIsNotNone(m, p.stdout)
                self.assertRegex(m.group(4), f"^{zone}$")
                utc = shown["created_at"]
                if tz == "UTC":
                    self.assertEqual(f"{m.group(2)}T{m.group(3)}Z", utc)
                else:
                    self.assertNotEqual(m.group(3), utc[11:19])  # an hour or two later


if __name__ == "__main__":
    jittest.main()
