# SPDX-License-Identifier: MIT
"""No unprivileged user can starve the PAM check or lock other users out: a read of theirs
is bounded (a budget of sqlite time, a rate limit per uid), root's check is answered
meanwhile, a uid with no connection always gets one, idle connections are closed, and
list --all selects what the caller may see before its limit. These tests assert behaviour,
not speed; bench/bench_flood.py measures."""

import json
import os
import pwd
import re
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
import jittest  # noqa: E402
import synthetic_log  # noqa: E402
from jittest import EXIT_REFUSED, BrokerTestCase  # noqa: E402

POLICY = """
settings = { max_pending_per_user = 100; };
rules = (
  { name = "dev"; services = ["sudo"]; requesters = ["%jit-dev"]; approvers = ["%jit-lead"]; }
);
"""

CAROL_RECORDS = 600_000  # carol's own history: twice what one read may walk, or more
RATE_BURST = 20          # BROKER_RATE_BURST
PER_UID = 8              # BROKER_CONNECTIONS_PER_UID
SHARED = 256             # BROKER_CONNECTIONS_MAX
TOO_BROAD = "the query is too broad"

# Run as a user: sends each JSON document of argv[2:] in turn, one connection each, and
# prints one line per reply: seconds taken and the reply (null when closed without one).
CALLS = """
import json, socket, struct, sys, time
for doc in sys.argv[2:]:
    t = time.monotonic()
    s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(sys.argv[1])
    body = doc.encode(); s.sendall(struct.pack(">I", len(body)) + body)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    reply = json.loads(data[4:]) if len(data) >= 4 else None
    if reply and reply.get("ok") and isinstance(reply.get("result"), list):
        reply["result"] = len(reply["result"])  # the size of a list, not the list
    print(json.dumps([time.monotonic() - t, reply]), flush=True)
"""

# Run as a user: keeps PER connections open, each having sent one byte of a frame (so not
# idle), opening a new one whenever the broker closes one; "ready" once it has tried to
# hold them all for a while; ends when stdin closes.
HOLD = """
import select, socket, sys, time
path, per = sys.argv[1], int(sys.argv[2])
held = []
def fill():
    while len(held) < per:
        s = socket.socket(socket.AF_UNIX); s.connect(path)
        try:
            s.send(b"\\0")
        except OSError:
            pass
        held.append(s)
start = time.monotonic(); ready = False
while True:
    fill()
    r, _, _ = select.select(held + [sys.stdin], [], [], 0.05)
    if sys.stdin in r:
        break
    for s in r:
        held.remove(s); s.close()  # closed by the broker: refused, or past its deadline
    if not ready and time.monotonic() - start > 0.5:
        print("ready", flush=True); ready = True
"""


class Starvation(BrokerTestCase):
    POLICY = POLICY
    USERS = {"jit-alice": ["jit-dev", "jit-test"], "jit-bob": ["jit-lead", "jit-test"],
             "jit-carol": ["jit-dev"], "jit-dave": [], "jit-erin": []}
    JOURNALD = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.broker.stop()
            synthetic_log.populate(cls.broker.db, [("jit-carol", pwd.getpwnam("jit-carol").pw_uid)],
                                   CAROL_RECORDS, rule="dev")
            cls.broker.start()
        except BaseException:
            cls.tearDownClass()
            raise

    def calls(self, user, *docs):
        """[(seconds, reply)] of user's raw calls, made one after the other."""
        argv = self.u[user]._as_user([jittest.SYSTEM_PYTHON, "-c", CALLS, self.broker.socket] +
                                     [json.dumps(dict(d, version=1)) for d in docs])
        p = jittest.run(argv, timeout=120)
        return [json.loads(line) for line in p.stdout.splitlines()]

    def root_check(self):
        s_time = time.monotonic()
        reply = self.broker.call({"version": 1, "op": "check", "user": "jit-alice", "service": "sudo"})
        return time.monotonic() - s_time, reply

    def test_broad_reads_are_bounded_while_root_checks(self):
        """carol's own history is far more than a read may walk: each of her reads is
        answered or refused with the budget error within the PAM timeout (her whole audit
        log always refused, her lists answered), root's checks are answered all along, and
        a narrower query is answered."""
        rid = self.u["jit-alice"].ok("request", "--reason", "bounded")["id"]
        self.u["jit-bob"].ok("approve", str(rid))
        checks, stop = [], threading.Event()

        def check_loop():
            while not stop.is_set() or len(checks) < 20:
                checks.append(self.root_check())
        t = threading.Thread(target=check_loop)
        t.start()
        try:
            replies = self.calls("jit-carol", *[{"op": "audit", "limit": 2000}, {"op": "list", "filter": "all"},
                                                {"op": "status"}] * 3)
        finally:
            stop.set()
            t.join()
        self.u["jit-alice"].ok("revoke", str(rid))

        timeout = jittest.PAM_TIMEOUT_MS / 1000
        for seconds, reply in replies:
            self.assertLess(seconds, timeout, reply)
            self.assertIsNotNone(reply)
            self.assertTrue(reply["ok"] or reply["message"].startswith(TOO_BROAD), reply)
        audits = [r for _, r in replies[0::3]]
        for reply in audits:
            self.assertFalse(reply["ok"], "a read past the budget was answered")
            self.assertEqual(reply["error"], "refused")
            self.assertEqual(reply["message"],
                             "the query is too broad; narrow it with --since/--until/--limit")
        if not jittest.SANITIZED:  # a sanitized broker may take the budget for them
            self.assertEqual([r["result"] for _, r in replies[1::3]], [1000] * 3)
        for seconds, reply in checks:
            self.assertEqual(reply["result"]["allowed"], True)
            self.assertLess(seconds, timeout)
        # Through jitctl, the user reads why.
        p = self.u["jit-carol"].jitctl("audit", "--limit", "2000")
        self.assertExit(p, EXIT_REFUSED)
        self.assertIn(TOO_BROAD, p.stderr)
        # Her history is an hour old: the last minutes are a narrow read.
        (_, reply), = self.calls("jit-carol", {"op": "audit", "since": "-10min"})
        self.assertTrue(reply["ok"], reply)

    def test_rate_limit(self):
        """dave's status calls: the first burst is answered, then the rate limit's error;
        root is never limited."""
        replies = [r for _, r in self.calls("jit-dave", *[{"op": "status"}] * (RATE_BURST + 10))]
        first = next((i for i, r in enumerate(replies) if not r["ok"]), None)
        self.assertIsNotNone(first, f"{len(replies)} calls in a row were all answered")
        self.assertGreaterEqual(first, RATE_BURST)
        self.assertLessEqual(first, RATE_BURST + 5)  # a few tokens may come back meanwhile
        self.assertEqual(replies[first]["error"], "refused")
        self.assertRegex(replies[first]["message"], r"^too many requests, retry in [0-9]+ s$")
        p = self.u["jit-dave"].jitctl("status")
        self.assertExit(p, EXIT_REFUSED)
        self.assertIn("too many requests", p.stderr)
        # Cheap operations are not limited.
        self.assertTrue(all(r["ok"] for _, r in self.calls("jit-dave", *[{"op": "list"}] * 5)))
        for _ in range(RATE_BURST + 10):
            self.assertTrue(self.broker.call({"version": 1, "op": "status"})["ok"])

    def test_first_connection_is_always_served(self):
        """33 users hold every connection they may (more than the shared slots): a user with
        none open still gets one (but only one), and is answered on it."""
        holders = [f"jit-hold{i:02d}" for i in range(SHARED // PER_UID + 1)]
        for name in holders + ["jit-frank"]:
            self.sb.add_user(name)
        procs = []
        try:
            for name in holders:
                argv = jittest.User(self.sb, self.broker, name)._as_user(
                    [jittest.SYSTEM_PYTHON, "-c", HOLD, self.broker.socket, str(PER_UID)])
                procs.append(subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
            for p in procs:
                self.assertEqual(p.stdout.readline().strip(), "ready")
            # frank's first connection is held (half a frame header); his second is refused:
            # closed without a reply, as every shared slot is taken.
            code = ("import socket,struct,sys,json\n"
                    "body=json.dumps({'version':1,'op':'list'}).encode()\n"
                    "frame=struct.pack('>I',len(body))+body\n"
                    "a=socket.socket(socket.AF_UNIX);a.connect(sys.argv[1]);a.send(frame[:2])\n"
                    "b=socket.socket(socket.AF_UNIX);b.settimeout(10);b.connect(sys.argv[1])\n"
                    "try:\n"
                    "    b.sendall(frame);second=b.recv(65536)\n"
                    "except (ConnectionResetError,BrokenPipeError):\n"
                    "    second=b''\n"
                    "a.sendall(frame[2:]);a.settimeout(10)\n"
                    "data=b''\n"
                    "while True:\n"
                    "    c=a.recv(65536)\n"
                    "    if not c: break\n"
                    "    data+=c\n"
                    "print(json.dumps([second.hex(), json.loads(data[4:])['ok']]))\n")
            p = jittest.run(jittest.User(self.sb, self.broker, "jit-frank")._as_user(
                [jittest.SYSTEM_PYTHON, "-c", code, self.broker.socket]), timeout=30)
            self.assertEqual(json.loads(p.stdout), ["", True])
            # bob, with no connection open either, is answered too; so is root.
            self.assertEqual(self.u["jit-bob"].call({"version": 1, "op": "list"})["ok"], True)
            self.assertEqual(self.root_check()[1]["ok"], True)
        finally:
            for p in procs:
                p.stdin.close()
            for p in procs:
                p.wait(timeout=30)

    def test_idle_connection_is_closed(self):
        """A connection that sends nothing is closed after about a second; one that has
        started its request keeps the whole deadline."""
        code = ("import socket,sys,time\n"
                "def held(first):\n"
                "    s=socket.socket(socket.AF_UNIX);s.settimeout(30);s.connect(sys.argv[1])\n"
                "    s.send(first) if first else None\n"
                "    t=time.monotonic();s.recv(1);return time.monotonic()-t\n"
                "print(held(b''), held(b'\\0'))\n")
        p = jittest.run(self.u["jit-erin"]._as_user([jittest.SYSTEM_PYTHON, "-c", code, self.broker.socket]),
                        timeout=60)
        idle, started = map(float, p.stdout.split())
        self.assertGreater(idle, 0.5)
        self.assertLess(idle, 3.0)
        self.assertGreater(started, 3.0)

    def test_list_all_keeps_own_requests(self):
        """alice's request stays in her list --all after carol filed 1,500 newer ones (and
        after carol's 30,000 older ones): what she may not see never takes her rows' place."""
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        rid = alice.ok("request", "--reason", "mine")["id"]
        carol = pwd.getpwnam("jit-carol").pw_uid
        now = int(time.time() * 1e6)
        db = sqlite3.connect(self.broker.db, timeout=10)
        with db:
            db.executemany(
                "INSERT INTO requests (requester, requester_uid, service, duration, reason, rule,"
                " approvals_required, state, created_at, boot_id, ended_at, ended_by)"
                " VALUES ('jit-carol', ?, 'sudo', 60, ?, 'dev', 1, 'cancelled', ?, ?, ?, 'jit-carol')",
                [(carol, f"flood {i}", now + i, "0" * 32, now + i) for i in range(1500)])
        db.close()
        try:
            for args in (["list", "--all"], ["list"]):
                self.assertIn(rid, [r["id"] for r in alice.ok(*args)], args)
            self.assertIn(rid, [r["id"] for r in alice.ok("status")["pending"]])
            # bob approves rule dev: his pending list has it, and his page of all states is
            # full (a sanitized broker may take the budget for a whole page).
            self.assertIn(rid, [r["id"] for r in bob.ok("list", "--pending")])
            for user, args in (("jit-bob", ["list", "--all"]), ("jit-carol", ["list", "--all", "--mine"])):
                p = self.u[user].jitctl(*args, json_out=True)
                if jittest.SANITIZED and p.returncode == EXIT_REFUSED and TOO_BROAD in p.stderr:
                    continue
                self.assertExit(p, 0)
                self.assertEqual(len(p.json), 1000)
                if user == "jit-carol":
                    self.assertTrue(all(r["requester"] == "jit-carol" for r in p.json))
            # erin sees none of it.
            self.assertEqual(self.u["jit-erin"].ok("list", "--all"), [])
        finally:
            alice.ok("cancel", str(rid))


if __name__ == "__main__":
    jittest.main()
