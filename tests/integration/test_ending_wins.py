# SPDX-License-Identifier: MIT
"""Ending a grant wins over recording it. A revoke, deny or expiry the database cannot take
(the disk is full, the file system went read-only, another process holds the lock past the
busy timeout) is enforced at once from the broker's memory: the grant stops working, its
sessions end, the caller is told exactly that, and the broker writes the end when it can,
with its own time and actor: one audit record, the chain intact. Filing, approving and
opening a session on a full disk fail with a clear error and grant nothing."""

import errno
import os
import shutil
import sqlite3
import subprocess
import time
import unittest

import jittest
from jittest import EXIT_FAILURE, EXIT_OK, BrokerTestCase, wait_for

POLICY = """
settings = { disk_reserve = "0"; max_pending_per_user = 100; max_filings_per_hour = 1000; };
rules = (
  { name = "dev"; services = ["sudo"]; requesters = ["%jit-dev"]; approvers = ["%jit-lead"]; }
);
"""

USERS = {
    "jit-alice": ["jit-dev", "jit-test"],
    "jit-bob": ["jit-lead", "jit-test"],
    "jit-carol": ["jit-lead", "jit-test"],
}

RETRY = 5  # the broker writes held ends every 5 s
HANGUP_LIMIT = 2.0  # a session ends by its hangup, well before the SIGKILL 3 s later


def held_message(rid, done, cause, active=True):
    return (f"request {rid} is {done}{' and its access ended' if active else ''} now, but the change "
            f"is not saved yet: {cause} (the broker retries every 5 s)")


class EndingWins(BrokerTestCase):
    """The broker's database on a small file system of its own: a tmpfs the tests fill up,
    or an ext4 image that goes read-only."""

    POLICY = POLICY
    USERS = USERS

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.state_dir = cls.sb.path("state")
        cls.image = cls.sb.path("state.img")
        try:
            cls.use_state("tmpfs")
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        if os.path.ismount(cls.state_dir):
            jittest.run(["umount", cls.state_dir], check=False)

    @classmethod
    def use_state(cls, kind):
        """Restarts the broker on a fresh database on a new file system: "tmpfs" (8 MiB) or
        "ext4" (an image that goes read-only on an error, as errors=remount-ro makes it)."""
        cls.broker.stop()
        if os.path.ismount(cls.state_dir):
            jittest.run(["umount", cls.state_dir])
        os.makedirs(cls.state_dir, exist_ok=True)
        if kind == "tmpfs":
            jittest.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", cls.state_dir])
        else:
            jittest.run(["truncate", "-s", "32M", cls.image])
            jittest.run(["mkfs.ext4", "-q", "-F", cls.image])
            jittest.run(["mount", "-o", "loop,errors=remount-ro", cls.image, cls.state_dir])
        cls.broker.start()

    def grant(self, *args):
        rid = str(self.u["jit-alice"].ok("request", "--reason", "work", *args)["id"])
        self.u["jit-bob"].ok("approve", rid)
        return rid

    def state(self, rid):
        return self.root.ok("show", rid)["state"]

    def events(self, rid):
        reply = self.broker.call({"version": 1, "op": "audit", "request": int(rid), "limit": 2000})
        self.assertTrue(reply["ok"], reply)
        return [(r["event"], r["actor"]) for r in reply["result"]]

    def check(self, user="jit-alice"):
        reply = self.broker.call({"version": 1, "op": "check", "user": user, "service": "sudo"})
        self.assertTrue(reply["ok"], reply)
        return reply["result"]["allowed"]

    def assertVerified(self):
        p = jittest.run([jittest.JITCTL, "audit", "--verify", "--db", self.broker.db], check=False)
        self.assertExit(p, EXIT_OK)

    def assertWritten(self, rid, state, event, actor, timeout=3 * RETRY):
        wait_for(lambda: self.state(rid) == state, timeout=timeout, what=f"request {rid} to be saved {state}")
        self.assertEqual([e for e in self.events(rid) if e[0] == event], [(event, actor)])
        self.assertVerified()

    def held_entry(self, rid, event):
        return wait_for(lambda: [e for e in self.sb.journal(f"JIT_REQUEST_ID={rid}", f"JIT_EVENT={event}")
                                 if "not saved yet" in e.get("MESSAGE", "")], timeout=15,
                        what=f"the journal entry of the held {event}")

    def long_sudo(self, rid=None):
        """A sudo that runs until its session is ended; with rid, waits until it is recorded."""
        alice = self.u["jit-alice"]
        p = subprocess.Popen(alice._as_user(["sudo", "-n", "--", "sleep", "600"]), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait(), p.stderr.close()))
        if rid:
            wait_for(lambda: p.poll() is not None or any(s["running"] for s in alice.ok("show", rid)["sessions"]),
                     what="the sudo session to register")
        return p

    def assertEndsWithin(self, p, start, limit):
        wait_for(lambda: p.poll() is not None, timeout=limit + 10, what="the session to end")
        self.assertLess(time.monotonic() - start, limit, "the session outlived its grant")

    def fill(self):
        """Fills the database's file system to the last byte."""
        path = os.path.join(self.state_dir, "fill")
        self.addCleanup(self.free)
        chunk = b"\0" * 65536
        with open(path, "ab", buffering=0) as f:
            while True:
                try:
                    f.write(chunk)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    chunk = chunk[:len(chunk) // 2]
                    if len(chunk) < 512:
                        break

    def free(self):
        try:
            os.unlink(os.path.join(self.state_dir, "fill"))
        except FileNotFoundError:
            pass

    def test_1_revoke_on_a_full_disk_is_enforced_at_once_and_written_later(self):
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        rid = self.grant("--for", "1h")
        self.assertAllowed(alice)
        session = None if jittest.SANITIZED else self.long_sudo(rid)
        self.fill()
        start = time.monotonic()
        p = bob.jitctl("revoke", rid, "--reason", "leaving")
        self.assertExit(p, EXIT_FAILURE)
        self.assertIn(held_message(rid, "revoked", "the disk is full"), p.stderr)
        # Enforced now: the check, sudo, and the session under the grant.
        self.assertFalse(self.check())
        self.assertRefused(alice)
        if session:
            self.assertEndsWithin(session, start, HANGUP_LIMIT)
        self.assertEqual(self.held_entry(rid, "revoked")[0]["JIT_STATE"], "revoked")
        # Not saved: the row still says active and there is no record; a second revoke
        # makes none either.
        self.assertEqual(self.state(rid), "active")
        self.assertNotIn("revoked", [e for e, _ in self.events(rid)])
        p = self.root.jitctl("revoke", rid)
        self.assertExit(p, EXIT_FAILURE)
        self.assertIn(f"request {rid} is revoked (not saved yet) and cannot be revoked", p.stderr)
        time.sleep(RETRY + 1)  # a retry on the full disk changes nothing
        self.assertEqual(self.state(rid), "active")
        self.assertRefused(alice)

        self.free()
        self.assertWritten(rid, "revoked", "revoked", "jit-bob")
        shown = self.root.ok("show", rid)
        self.assertEqual((shown["ended_by"], shown["end_reason"]), ("jit-bob", "leaving"))
        self.assertRefused(alice)

    def test_2_deny_on_a_full_disk_wins_and_approval_fails_cleanly(self):
        alice, bob, carol = self.u["jit-alice"], self.u["jit-bob"], self.u["jit-carol"]
        rid = str(alice.ok("request", "--reason", "pending")["id"])
        self.fill()
        p = bob.jitctl("approve", rid)
        self.assertExit(p, EXIT_FAILURE)
        self.assertIn("the broker failed while saving the approval: the disk is full; nothing was changed",
                      p.stderr)
        self.assertEqual(self.state(rid), "pending")
        self.assertRefused(alice)

        p = bob.jitctl("deny", rid, "--reason", "not now")
        self.assertExit(p, EXIT_FAILURE)
        self.assertIn(held_message(rid, "denied", "the disk is full", active=False), p.stderr)
        # Denied for every decision, saved or not: no approval turns it into a grant.
        self.free()
        p = carol.jitctl("approve", rid)
        self.assertExit(p, EXIT_FAILURE)
        self.assertIn(f"request {rid} is denied; only pending requests can be approved", p.stderr)
        self.assertWritten(rid, "denied", "denied", "jit-bob")
        self.assertEqual([e for e, _ in self.events(rid)], ["requested", "denied"])
        self.assertRefused(alice)

    def test_3_request_on_a_full_disk_changes_nothing(self):
        alice = self.u["jit-alice"]
        before = len(self.root.ok("list", "--all"))
        self.fill()
        p = alice.jitctl("request", "--reason", "full")
        self.assertExit(p, EXIT_FAILURE)
        self.assertIn("the broker failed while saving the request: the disk is full; nothing was changed", p.stderr)
        self.free()
        self.assertEqual(len(self.root.ok("list", "--all")), before)
        self.assertVerified()

    def test_4_expiry_on_a_full_disk(self):
        alice = self.u["jit-alice"]
        rid = self.grant("--for", "3s")
        self.assertAllowed(alice)
        self.fill()
        self.held_entry(rid, "expired")
        self.assertFalse(self.check())
        self.assertRefused(alice)
        self.assertEqual(self.state(rid), "active")
        self.free()
        self.assertWritten(rid, "expired", "expired", "broker")

    @unittest.skipIf(jittest.SANITIZED, "sessions run through real sudo, which cannot load a sanitized module")
    def test_5_session_open_on_a_full_disk_still_ends_with_its_grant(self):
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        rid = self.grant("--for", "1h")
        self.fill()
        session = self.long_sudo()
        # The account check let alice in; the session could not be recorded, and says so.
        wait_for(lambda: session.poll() is not None or
                 [e for e in self.sb.journal(f"JIT_REQUEST_ID={rid}") if "not recorded" in e.get("MESSAGE", "")],
                 what="the unrecorded session's entry")
        self.assertIsNone(session.poll(), "sudo should run: its grant is valid")
        self.assertEqual(alice.ok("show", rid)["sessions"], [])
        start = time.monotonic()
        p = bob.jitctl("revoke", rid)
        self.assertExit(p, EXIT_FAILURE)
        self.assertIn(held_message(rid, "revoked", "the disk is full"), p.stderr)
        self.assertEndsWithin(session, start, HANGUP_LIMIT)
        self.free()
        self.assertWritten(rid, "revoked", "revoked", "jit-bob")

    def test_6_revoke_while_another_process_holds_the_lock(self):
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        rid = self.grant("--for", "1h")
        self.assertAllowed(alice)
        con = sqlite3.connect(self.broker.db, timeout=0, isolation_level=None)
        con.execute("BEGIN EXCLUSIVE")
        try:
            p = bob.jitctl("revoke", rid)
            self.assertExit(p, EXIT_FAILURE)
            self.assertIn(held_message(rid, "revoked", "the database is locked by another process"), p.stderr)
            self.assertFalse(self.check())  # WAL: the check still reads
            self.assertRefused(alice)
            p = alice.jitctl("request", "--reason", "locked")
            self.assertExit(p, EXIT_FAILURE)
            self.assertIn("the database is locked by another process; nothing was changed", p.stderr)
        finally:
            con.execute("ROLLBACK")
            con.close()
        self.assertWritten(rid, "revoked", "revoked", "jit-bob")
        self.assertRefused(alice)

    def test_7_revoke_on_a_read_only_file_system_survives_a_restart(self):
        for tool in ("mkfs.ext4", "e2fsck"):
            if not shutil.which(tool):
                self.skipTest(f"{tool} not found")
        if not os.path.exists("/dev/loop-control"):
            self.skipTest("no loop devices")
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        self.use_state("ext4")
        dev = os.path.basename(jittest.run(["findmnt", "-no", "SOURCE", self.state_dir]).stdout.strip())
        trigger = f"/sys/fs/ext4/{dev}/trigger_fs_error"
        if not os.path.exists(trigger):
            self.skipTest(f"{trigger} does not exist")
        rid = self.grant("--for", "1h")
        self.assertAllowed(alice)
        # ext4 found an error: with errors=remount-ro it goes read-only under the broker.
        with open(trigger, "w") as f:
            f.write("jit test\n")
        wait_for(lambda: {"ro", "emergency_ro"} & set(
                 jittest.run(["findmnt", "-no", "OPTIONS", self.state_dir]).stdout.strip().split(",")),
                 what="the file system to go read-only")
        p = bob.jitctl("revoke", rid)
        self.assertExit(p, EXIT_FAILURE)
        self.assertIn(held_message(rid, "revoked", "the database is read-only"), p.stderr)
        self.assertFalse(self.check())
        self.assertRefused(alice)
        p = alice.jitctl("request", "--reason", "read-only")
        self.assertExit(p, EXIT_FAILURE)
        self.assertIn("the database is read-only; nothing was changed", p.stderr)

        # The administrator repairs the file system with the broker stopped; the held end
        # waits in the runtime directory meanwhile, and the next broker holds it again
        # before it answers the first check.
        held = self.sb.path("run", "held-ends.json")
        self.broker.stop()
        self.assertTrue(os.path.exists(held))
        jittest.run(["umount", self.state_dir])
        jittest.run(["e2fsck", "-f", "-y", self.image], check=False)
        jittest.run(["mount", "-o", "loop,errors=remount-ro", self.image, self.state_dir])
        self.broker.start()
        self.assertFalse(self.check())
        self.assertRefused(alice)
        self.assertWritten(rid, "revoked", "revoked", "jit-bob")
        wait_for(lambda: not os.path.exists(held), what="the file of held ends to go")
        self.assertRefused(alice)


if __name__ == "__main__":
    jittest.main()
