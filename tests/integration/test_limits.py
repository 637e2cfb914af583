# SPDX-License-Identifier: MIT
"""The database and the journal stay bounded whatever a user does: filings are limited per
hour (cancelled ones count), new requests are refused below a free-space reserve while
ending grants still works, ended requests are archived after settings.request_retention,
and refusals and denied checks reach the journal at a bounded rate per uid, with a summary
of what was held back."""

import glob
import json
import os
import shutil
import sqlite3
import time

import jittest
from jittest import EXIT_OK, EXIT_REFUSED, BrokerTestCase, wait_for

REFUSED = "e08745bd9e75402a94eb908519266237"
ACCESS_DENIED = "ba8164ca72984b83aa7660c583c41248"
BURST = 10  # LOG_LIMIT_BURST per 10 s window (broker/effects.h)

RULES = """
rules = (
  { name = "dev"; services = ["sudo"]; requesters = ["%jit-dev"]; approvers = ["%jit-lead"]; }
);
"""

USERS = {
    "jit-alice": ["jit-dev", "jit-test"],
    "jit-rita": ["jit-dev", "jit-test"],
    "jit-bob": ["jit-lead", "jit-test"],
    "jit-mallory": ["jit-test"],
}

# One process, many requests: how a script floods the broker.
FLOOD = """
import json, socket, struct, sys
path, n, body = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
codes = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(struct.pack(">I", len(body)) + body)
    head = b""
    while len(head) < 4:
        head += s.recv(4 - len(head))
    want, data = struct.unpack(">I", head)[0], b""
    while len(data) < want:
        data += s.recv(want - len(data))
    s.close()
    reply = json.loads(data)
    codes.append(reply.get("error", "ok"))
print(json.dumps(codes))
"""


class Limits(BrokerTestCase):
    """Each test starts a broker of its own policy on a fresh database, on a tmpfs."""

    POLICY = RULES
    USERS = USERS

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.state_dir = cls.sb.path("state")

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        if os.path.ismount(cls.state_dir):
            jittest.run(["umount", cls.state_dir], check=False)

    def fresh_broker(self, settings, size="64m"):
        self.broker.stop()
        if os.path.ismount(self.state_dir):
            jittest.run(["umount", self.state_dir])
        os.makedirs(self.state_dir, exist_ok=True)
        jittest.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", self.state_dir])
        self.broker.write_policy(f"settings = {{ {settings} }};" + RULES)
        self.broker.start()

    def uid(self, name):
        return int(jittest.run(["id", "-u", name]).stdout)

    def verify(self):
        p = jittest.run([jittest.JITCTL, "audit", "--verify", "--db", self.broker.db], check=False)
        self.assertExit(p, EXIT_OK)

    def test_1_filings_per_hour_count_cancelled_ones(self):
        self.fresh_broker('max_filings_per_hour = 5; disk_reserve = "0";')
        rita = self.u["jit-rita"]
        for i in range(5):
            rid = str(rita.ok("request", "--reason", f"loop {i}")["id"])
            rita.ok("cancel", rid)
        p = rita.jitctl("request", "--reason", "one more")
        self.assertExit(p, EXIT_REFUSED)
        self.assertIn("jit-rita filed 5 requests in the last hour, the most settings.max_filings_per_hour "
                      "allows (cancelled ones count); try again later", p.stderr)
        self.assertEqual(len(rita.ok("list", "--all", "--mine")), 5)
        # Everyone has a budget of their own.
        self.u["jit-alice"].ok("request", "--reason", "mine")

    def test_2_refusals_reach_the_journal_at_a_bounded_rate(self):
        self.fresh_broker('disk_reserve = "0";')
        mallory = self.u["jit-mallory"]
        body = json.dumps({"version": 1, "op": "request", "reason": "x" * 1000, "ticket": "t" * 128})
        p = jittest.run(mallory._as_user([jittest.SYSTEM_PYTHON, "-c", FLOOD, self.broker.socket, "50", body]))
        # Every caller still gets its answer.
        self.assertEqual(json.loads(p.stdout), ["refused"] * 50)
        uid = self.uid("jit-mallory")
        summary = wait_for(lambda: [e for e in self.sb.journal(f"MESSAGE_ID={REFUSED}", f"JIT_UID={uid}")
                                    if "JIT_SUPPRESSED" in e], timeout=30, what="the summary of suppressed refusals")
        logged = self.sb.journal(f"MESSAGE_ID={REFUSED}", "JIT_ACTOR=jit-mallory")
        self.assertLessEqual(len(logged), BURST)
        self.assertEqual(len(summary), 1)
        self.assertEqual(int(summary[0]["JIT_SUPPRESSED"]), 50 - len(logged))
        self.assertEqual(summary[0]["MESSAGE"], f"suppressed {50 - len(logged)} refusals of uid {uid}")

        # The PAM check's denials, likewise, per user asked about.
        check = json.dumps({"version": 1, "op": "check", "user": "jit-mallory", "service": "sudo"})
        p = jittest.run([jittest.SYSTEM_PYTHON, "-c", FLOOD, self.broker.socket, "50", check])
        self.assertEqual(json.loads(p.stdout), ["ok"] * 50)
        summary = wait_for(lambda: [e for e in self.sb.journal(f"MESSAGE_ID={ACCESS_DENIED}", f"JIT_UID={uid}")
                                    if "JIT_SUPPRESSED" in e], timeout=30, what="the summary of denied checks")
        denied = self.sb.journal(f"MESSAGE_ID={ACCESS_DENIED}", "JIT_USER=jit-mallory")
        self.assertLessEqual(len(denied), BURST)
        self.assertEqual(len(summary), 1)
        self.assertEqual(int(summary[0]["JIT_SUPPRESSED"]), 50 - len(denied))

    def test_3_reserve_refuses_new_requests_and_keeps_room_to_end(self):
        self.fresh_broker('disk_reserve = "2M";', size="8m")
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        rid = str(alice.ok("request", "--reason", "before")["id"])
        bob.ok("approve", rid)
        fill = os.path.join(self.state_dir, "fill")
        st = os.statvfs(self.state_dir)
        with open(fill, "wb") as f:
            f.write(b"\0" * (st.f_bavail * st.f_frsize - (1 << 20)))
        p = alice.jitctl("request", "--reason", "after")
        self.assertExit(p, EXIT_REFUSED)
        self.assertIn("disk nearly full: new requests are refused until space is freed; ending grants still works",
                      p.stderr)
        bob.ok("revoke", rid)
        self.assertEqual(alice.ok("show", rid)["state"], "revoked")
        self.assertRefused(alice)
        os.unlink(fill)
        alice.ok("request", "--reason", "space again")
        self.verify()

    def test_4_ended_requests_are_archived_not_deleted(self):
        self.fresh_broker('request_retention = "2s"; disk_reserve = "0";')
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        cancelled = str(alice.ok("request", "--reason", "never mind")["id"])
        alice.ok("cancel", cancelled)
        revoked = str(alice.ok("request", "--reason", "done soon")["id"])
        bob.ok("approve", revoked, "--comment", "ok")
        bob.ok("revoke", revoked)
        pending = str(alice.ok("request", "--reason", "still waiting")["id"])
        active = str(alice.ok("request", "--reason", "still working")["id"])
        bob.ok("approve", active)
        time.sleep(2.5)
        self.broker.stop()

        # Retention moves rows out of the database only once it passed its integrity check:
        # a damaged file (here a page the archive never reads) stays as it is.
        def flip():  # its own inverse
            with open(self.broker.db, "r+b") as f:
                f.seek((root - 1) * page_size)
                header = bytearray(f.read(8))
                f.seek(-8, os.SEEK_CUR)
                f.write(bytes(b ^ 0xA5 for b in header))
        copy = os.path.join(self.state_dir, "pages.db")
        shutil.copy(self.broker.db, copy)
        c = sqlite3.connect(copy)
        page_size = c.execute("PRAGMA page_size").fetchone()[0]
        root = c.execute("SELECT rootpage FROM sqlite_master WHERE name = 'fleet_cursor'").fetchone()[0]
        c.close()
        os.unlink(copy)
        flip()
        self.broker.start(expect_ready=False)
        self.assertEqual(self.broker.proc.wait(timeout=30), 1)
        self.broker.stop()
        self.assertEqual(glob.glob(os.path.join(self.state_dir, "archive", "requests-*.jsonl")), [])
        c = sqlite3.connect(f"file:{self.broker.db}?mode=ro", uri=True)
        self.assertEqual({str(i) for (i,) in c.execute("SELECT id FROM requests")},
                         {cancelled, revoked, pending, active})
        c.close()
        flip()

        # Sound again: retention runs once the check has passed, and then once a minute.
        self.broker.start()
        files = wait_for(lambda: glob.glob(os.path.join(self.state_dir, "archive", "requests-*.jsonl")),
                         what="the archive")
        self.assertEqual(len(files), 1, files)
        with open(files[0]) as f:
            lines = [json.loads(line) for line in f]
        self.assertEqual(lines[0]["jit_requests_archive"], 1)
        self.assertEqual(lines[0]["requests"], 2)
        archived = {str(r["id"]): r for r in lines[1:]}
        self.assertEqual(set(archived), {cancelled, revoked})
        self.assertEqual(archived[revoked]["state"], "revoked")
        self.assertEqual([a["approver"] for a in archived[revoked]["approvals"]], ["jit-bob"])
        self.assertEqual(archived[revoked]["approvals"][0]["comment"], "ok")
        self.assertEqual(archived[cancelled]["reason"], "never mind")

        self.assertEqual({str(r["id"]) for r in self.root.ok("list", "--all")}, {pending, active})
        p = self.root.jitctl("show", revoked)
        self.assertExit(p, jittest.EXIT_NOT_FOUND)
        # Their audit records stay, and say where the rows went.
        audit = self.broker.call({"version": 1, "op": "audit", "request": int(revoked), "limit": 100})["result"]
        self.assertEqual([r["event"] for r in audit], ["requested", "approval", "granted", "revoked"])
        everything = self.broker.call({"version": 1, "op": "audit", "limit": 2000})["result"]
        moved = [r for r in everything if r["event"] == "requests-archived"]
        self.assertEqual(len(moved), 1)
        self.assertEqual(moved[0]["details"]["file"], files[0])
        self.assertEqual(moved[0]["details"]["requests"], 2)
        self.verify()
        wait_for(lambda: self.sb.journal("JIT_EVENT=requests-archived"), what="the journal entry")
        # Nothing more is due: the next start archives nothing.
        self.broker.stop()
        self.broker.log.flush()
        offset = os.path.getsize(self.broker.log.name)
        self.broker.start()

        def checked():
            with open(self.broker.log.name, errors="replace") as f:
                f.seek(offset)
                return "passed its integrity check" in f.read()
        wait_for(checked, what="the integrity check")
        self.assertEqual(len(glob.glob(os.path.join(self.state_dir, "archive", "requests-*.jsonl"))), 1)


if __name__ == "__main__":
    jittest.main()
