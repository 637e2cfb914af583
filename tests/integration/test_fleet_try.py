#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The README's three-host fleet on one machine (packaging/fleet/jit-fleet-try): `start`
brings up PostgreSQL and three brokers demo-a, demo-b, demo-c; the commands the README
shows work as it says (a request for environment=staging filed on demo-a, approved on
demo-b, opens demo-a and demo-c and not demo-b; a revoke on demo-c ends it on both); `stop`
leaves nothing behind. Runs in the sandbox's private /etc and /run, so the users and files
the script makes never reach the machine. SKIP only when PostgreSQL's server binaries are
not installed."""

import os
import subprocess
import types
import unittest

import jittest
import pgserver
from jittest import BROKERD, JITCTL, run, wait_for

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "packaging",
                      "fleet", "jit-fleet-try")


class FleetTryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        why = pgserver.unavailable()
        if why:
            raise unittest.SkipTest(why)
        cls.sb = jittest.Sandbox()
        try:
            try:
                run(["id", "postgres"])
            except subprocess.CalledProcessError:  # only the binaries: the user, in our /etc
                run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                     "--shell", "/usr/sbin/nologin", "postgres"])
            cls.dir = cls.sb.path("fleet-try")
            cls.env = dict(os.environ, JIT_FLEET_TRY_DIR=cls.dir, JIT_BROKERD=BROKERD, JITCTL=JITCTL)
            cls.started = run([SCRIPT, "start"], env=cls.env, check=False, timeout=90)
        except BaseException:
            cls.sb.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            run([SCRIPT, "stop"], env=cls.env, check=False, timeout=60)
        finally:
            cls.sb.close()

    def on(self, host, user):
        broker = types.SimpleNamespace(socket=os.path.join(self.dir, host, "broker.sock"))
        return jittest.User(self.sb, broker, user)

    def active(self, host):
        return [r for r in self.on(host, "root").ok("list", "--active") if r["state"] == "active"]

    def test_1_walkthrough(self):
        self.assertEqual(self.started.returncode, 0, self.started.stdout + self.started.stderr)
        self.assertIn("Three hosts are running", self.started.stdout)
        for host in ("demo-a", "demo-b", "demo-c"):
            fleet = self.on(host, "root").ok("status")["broker"]["fleet"]
            self.assertEqual((fleet["host"], fleet["state"]), (host, "connected"))

        filed = self.on("demo-a", "jitdemo-eng").ok("request", "--hosts", "environment=staging",
                                                    "--for", "30m", "--reason", "try the fleet")
        fid = filed["id"]
        self.assertEqual(filed["state"], "pending")
        listed = self.on("demo-b", "jitdemo-lead").jitctl("list", "--pending")
        self.assertIn(f"Fleet request {fid}: jitdemo-eng for sudo on hosts environment=staging",
                      listed.stdout)
        self.on("demo-b", "jitdemo-lead").ok("approve", fid)
        wait_for(lambda: len(self.active("demo-a")) == 1 and len(self.active("demo-c")) == 1,
                 timeout=10, what="the grant on demo-a and demo-c")
        self.assertEqual(self.active("demo-b"), [])
        # What pam_jit.so answers for sudo on each host, through its socket.
        user = self.on("demo-a", "jitdemo-eng")
        for host, expect in (("demo-a", "allow"), ("demo-c", "allow"), ("demo-b", "deny")):
            p = user.pam_account("sudo", expect, socket_path=os.path.join(self.dir, host, "broker.sock"))
            self.assertEqual(p.returncode, 0, f"{host}: {p.stdout}{p.stderr}")

        revoked = self.on("demo-c", "jitdemo-lead").ok("revoke", fid)
        self.assertEqual(revoked["state"], "revoked")
        wait_for(lambda: self.active("demo-a") == [] and self.active("demo-c") == [],
                 timeout=10, what="the grant ended on demo-a and demo-c")

    def test_2_stop_removes_everything(self):
        p = run([SCRIPT, "stop"], env=self.env, check=False, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(self.dir))
        for user in ("jitdemo-eng", "jitdemo-lead"):
            self.assertNotEqual(run(["id", user], check=False).returncode, 0, user)
        self.assertEqual(run(["pgrep", "-f", self.dir], check=False).stdout, "")


if __name__ == "__main__":
    unittest.main(verbosity=2)
