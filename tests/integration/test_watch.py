# SPDX-License-Identifier: MIT
"""The broker's streams: jitctl watch (what each caller may see, in order, replay with
--since, a slow reader dropped while the broker keeps serving, the per-uid limit), request
--wait (progress, exit codes) and the wait stream's cancel_on_close, which pam_jit's prompt
relies on; a request filed for a user by root, and by nobody else."""

import json
import os
import socket
import statistics
import struct
import subprocess
import time

import jittest
from jittest import EXIT_REFUSED, BrokerTestCase, wait_for

POLICY = """
settings = { max_pending_per_user = 1000; max_filings_per_hour = 10000; };
rules = (
  { name = "dev"; services = ["sudo"]; requesters = ["%jit-dev"]; approvers = ["%jit-lead"]; },
  { name = "ops"; services = ["sshd"]; requesters = ["%jit-dev"]; approvers = ["%jit-ops"];
    approvals = 2; }
);
"""


def frame(obj):
    data = json.dumps(obj).encode()
    return struct.pack(">I", len(data)) + data


class Stream:
    """A raw stream connection (as root: the test runs as root)."""

    def __init__(self, path, obj, timeout=10.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.s.sendall(frame(obj))
        self.buf = b""

    def next(self):
        """The next frame's JSON, or None at the end of the stream."""
        while len(self.buf) < 4 or len(self.buf) < 4 + struct.unpack(">I", self.buf[:4])[0]:
            chunk = self.s.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        n = struct.unpack(">I", self.buf[:4])[0]
        body, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
        return json.loads(body)

    def close(self):
        self.s.close()


def call(path, obj):
    st = Stream(path, obj)
    try:
        return st.next()
    finally:
        st.close()


class Watch(BrokerTestCase):
    POLICY = POLICY
    USERS = {
        "jit-alice": ["jit-dev", "jit-test"],
        "jit-bob": ["jit-lead", "jit-test"],
        "jit-carol": ["jit-ops", "jit-test"],
        "jit-dave": ["jit-auditors", "jit-test"],
    }
    JOURNALD = False

    def watch(self, user, *args):
        argv = user._as_user([jittest.JITCTL, "--socket", self.broker.socket, "watch", *args])
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def read_lines(self, p, n, timeout=10.0):
        """The next n lines of p's stdout (JSON lines), or fails after timeout. Reads the
        pipe itself (p.buffered keeps what came after the last line asked for)."""
        import select
        fd = p.stdout.fileno()
        buf = getattr(p, "buffered", b"")
        deadline = time.monotonic() + timeout
        while buf.count(b"\n") < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.fail(f"only {buf.count(chr(10).encode())} of {n} lines from watch: {buf!r}")
            chunk = os.read(fd, 65536)
            if not chunk:
                self.fail(f"watch ended after {buf!r}: {p.stderr.read()!r}")
            buf += chunk
        lines = buf.split(b"\n")
        p.buffered = b"\n".join(lines[n:])
        return [json.loads(l) for l in lines[:n]]

    def read_text_line(self, p, timeout=10.0):
        import select
        self.assertTrue(select.select([p.stdout.fileno()], [], [], timeout)[0], "no line from watch")
        return p.stdout.readline()

    def stop(self, p):
        """Ends a watch; returns what it printed that was not read yet."""
        if p.returncode is None:
            p.terminate()
            p.wait(timeout=10)
        if p.stdout.closed:
            return b""
        rest = getattr(p, "buffered", b"") + p.stdout.buffer.read()
        p.stdout.close()
        p.stderr.close()
        p.rest = rest
        return rest

    def test_watch_sees_what_each_may_see_in_order(self):
        alice, bob, carol, dave = (self.u[n] for n in ("jit-alice", "jit-bob", "jit-carol", "jit-dave"))
        watchers = {n: self.watch(self.u[n], "--json") for n in ("jit-alice", "jit-bob", "jit-carol", "jit-dave")}
        try:
            self.wait_streams(4)
            sudo_id = alice.ok("request", "--reason", "deploy")["id"]
            bob.ok("approve", str(sudo_id))
            sshd_id = alice.ok("request", "--service", "sshd", "--reason", "logs")["id"]
            carol.ok("deny", str(sshd_id), "--reason", "not today")

            # bob approves sudo: its three records, in order, nothing of the sshd request.
            recs = self.read_lines(watchers["jit-bob"], 3)
            self.assertEqual([(r["event"], r["request_id"]) for r in recs],
                             [("requested", sudo_id), ("approval", sudo_id), ("granted", sudo_id)])
            self.assertEqual(recs[1]["actor"], "jit-bob")
            self.assertTrue(recs[0]["seq"] < recs[1]["seq"] < recs[2]["seq"])
            # carol approves sshd: its two records only.
            recs = self.read_lines(watchers["jit-carol"], 2)
            self.assertEqual([(r["event"], r["request_id"]) for r in recs],
                             [("requested", sshd_id), ("denied", sshd_id)])
            # alice sees all five of her own; the auditor the same five, in the same order.
            mine = self.read_lines(watchers["jit-alice"], 5)
            audited = self.read_lines(watchers["jit-dave"], 5)
            self.assertEqual([r["seq"] for r in mine], [r["seq"] for r in audited])
            self.assertEqual([r["event"] for r in mine],
                             ["requested", "approval", "granted", "requested", "denied"])
            # The records are the audit log's own.
            p = dave.jitctl("--json", "audit", "--request", str(sudo_id))
            logged = {r["seq"]: r for r in map(json.loads, p.stdout.splitlines())}
            for r in mine[:3]:
                self.assertEqual(logged[r["seq"]]["hash"], r["hash"])
        finally:
            for p in watchers.values():
                self.stop(p)
        # bob saw nothing more than those three: a sixth line would be a leak.
        for name in ("jit-bob", "jit-carol"):
            self.assertEqual(watchers[name].rest, b"", f"{name} saw more")

    def streams(self):
        return call(self.broker.socket, {"version": 1, "op": "status"})["result"]["broker"]["streams"]

    def wait_streams(self, n):
        """Waits until n streams are open (the broker's status counts them)."""
        wait_for(lambda: self.streams() >= n, timeout=10, what=f"{n} streams")

    def setUp(self):
        # Streams of the tests before have gone: the count starts from nothing.
        wait_for(lambda: self.streams() == 0, timeout=15, what="no streams left open")

    def test_replay_since_then_live(self):
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        rid = alice.ok("request", "--reason", "before the watch")["id"]
        p = self.watch(bob, "--json", "--since", "-1h")
        try:
            # Earlier tests' records come first: read up to this request's, the newest.
            replayed = []
            while not replayed:
                replayed = [r for r in self.read_lines(p, 1) if r["request_id"] == rid]
            self.assertEqual(replayed[0]["event"], "requested")
            self.wait_streams(1)
            bob.ok("approve", str(rid))
            live = self.read_lines(p, 2)
            self.assertEqual([r["event"] for r in live], ["approval", "granted"])
            self.assertGreater(live[0]["seq"], replayed[0]["seq"])
        finally:
            self.stop(p)

    def test_text_output(self):
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        p = self.watch(bob)
        try:
            self.wait_streams(1)
            rid = alice.ok("request", "--reason", "text view")["id"]
            line = self.read_text_line(p)
            self.assertRegex(line, rf"^\S+Z  requested\s+#{rid}\s+jit-alice\s+reason=\"text view\"")
        finally:
            self.stop(p)

    def test_slow_watcher_is_dropped_and_broker_serves_on(self):
        sock = self.broker.socket
        alice = self.u["jit-alice"]
        slow = Stream(sock, {"version": 1, "op": "watch"})
        first = slow.next()
        self.assertTrue(first["ok"], first)
        # jitctl watch whose own reader stops: its pipe fills, then its socket.
        stuck = self.watch(self.u["jit-bob"], "--json")
        self.wait_streams(2)
        # Never read again; make well over 256 KiB plus the socket's buffer of records.
        reason = "x" * 1000
        for _ in range(400):
            r = call(sock, {"version": 1, "op": "request", "reason": reason, "requester": "jit-alice"})
            self.assertTrue(r["ok"], r)
            c = call(sock, {"version": 1, "op": "cancel", "id": r["result"]["id"]})
            self.assertTrue(c["ok"], c)
        # The broker answers on: a check, and a new watch that gets the next record.
        self.assertEqual(call(sock, {"version": 1, "op": "check", "user": "jit-alice", "service": "sudo"})["ok"], True)
        fresh = Stream(sock, {"version": 1, "op": "watch"})
        self.assertTrue(fresh.next()["ok"])
        rid = alice.ok("request", "--reason", "after the flood")["id"]
        rec = fresh.next()
        self.assertEqual((rec["record"]["event"], rec["record"]["request_id"]), ("requested", rid))
        fresh.close()
        # The slow one: whole frames, then the last word, then the end.
        frames = 0
        last = None
        while True:
            f = slow.next()
            if f is None:
                break
            last = f
            frames += 1
        slow.close()
        self.assertEqual(last, {"version": 1, "ok": False, "error": "lost-events",
                                "message": "lost events, reconnect"})
        self.assertLess(frames, 801)

        # jitctl reads on once its reader does, then says so and exits 1.
        out, err = stuck.communicate(timeout=30)
        self.assertEqual(stuck.returncode, 1, err)
        self.assertIn("the broker dropped this watch because it read too slowly", err)
        self.assertGreater(len(out.splitlines()), 10)

    def test_stream_limit_per_uid(self):
        bob = self.u["jit-bob"]
        argv = [jittest.SYSTEM_PYTHON, "-c", HOLD_STREAMS, self.broker.socket, "5"]
        p = jittest.run(bob._as_user(argv), check=False, timeout=30)
        out = [json.loads(l) for l in p.stdout.splitlines()]
        self.assertEqual([o["ok"] for o in out], [True, True, True, True, False], out)
        self.assertEqual(out[4]["error"], "refused")
        self.assertIn("too many open streams", out[4]["message"])

    def test_request_for_a_user_only_from_root(self):
        bob = self.u["jit-bob"]
        r = bob.call({"version": 1, "op": "request", "reason": "x", "requester": "jit-alice"})
        self.assertEqual((r["ok"], r["error"]), (False, "refused"))
        self.assertIn("only root", r["message"])
        r = call(self.broker.socket, {"version": 1, "op": "request", "reason": "at the prompt",
                                      "requester": "jit-alice"})
        self.assertTrue(r["ok"], r)
        self.assertEqual((r["result"]["requester"], r["result"]["state"]), ("jit-alice", "pending"))
        r = call(self.broker.socket, {"version": 1, "op": "request", "reason": "x", "requester": "no-such-user"})
        self.assertEqual(r["error"], "not-found")
        r = call(self.broker.socket, {"version": 1, "op": "request", "reason": "x", "requester": "root"})
        self.assertEqual(r["error"], "refused")

    def test_explain_says_whether_a_ticket_is_needed(self):
        r = call(self.broker.socket, {"version": 1, "op": "explain", "user": "jit-alice", "service": "sudo"})
        self.assertEqual((r["result"]["ticket_required"], r["result"]["ticket_pattern"]), (False, None))

    def test_wait_cancel_on_close(self):
        sock = self.broker.socket
        r = call(sock, {"version": 1, "op": "request", "reason": "prompt", "requester": "jit-alice"})
        rid = r["result"]["id"]
        w = Stream(sock, {"version": 1, "op": "wait", "id": rid, "cancel_on_close": True})
        first = w.next()
        self.assertEqual((first["ok"], first["result"]["id"], first["result"]["state"]), (True, rid, "pending"))
        self.assertEqual(first["result"]["approvers"], ["%jit-lead"])
        w.close()  # Ctrl-C at the prompt, or its wait= running out
        alice = self.u["jit-alice"]
        wait_for(lambda: alice.ok("show", str(rid))["state"] == "cancelled", what="cancelled on close")
        shown = alice.ok("show", str(rid))
        self.assertEqual(shown["ended_by"], "root")

        # Without cancel_on_close the request stays pending.
        rid = call(sock, {"version": 1, "op": "request", "reason": "p", "requester": "jit-alice"})["result"]["id"]
        w = Stream(sock, {"version": 1, "op": "wait", "id": rid})
        w.next()
        w.close()
        self.assertEqual(call(sock, {"version": 1, "op": "show", "id": rid})["result"]["state"], "pending")
        # Someone else's request cannot be cancelled by closing a wait on it.
        r = self.u["jit-bob"].call({"version": 1, "op": "wait", "id": rid, "cancel_on_close": True})
        self.assertEqual(r["error"], "refused")

    def test_wait_ends_with_the_decision(self):
        sock = self.broker.socket
        bob = self.u["jit-bob"]
        rid = call(sock, {"version": 1, "op": "request", "reason": "w", "requester": "jit-alice"})["result"]["id"]
        w = Stream(sock, {"version": 1, "op": "wait", "id": rid, "cancel_on_close": True})
        self.assertEqual(w.next()["result"]["state"], "pending")
        bob.ok("approve", str(rid))
        frames = []
        while True:
            f = w.next()
            if f is None:
                break
            frames.append(f)
        w.close()
        self.assertEqual([f["record"]["event"] for f in frames[:-1]], ["approval", "granted"])
        self.assertEqual((frames[-1]["done"], frames[-1]["request"]["state"]), (True, "active"))
        # Closed after done: nothing was cancelled.
        self.assertEqual(call(sock, {"version": 1, "op": "show", "id": rid})["result"]["state"], "active")
        # A wait on a request already decided: the first frame and done at once.
        w = Stream(sock, {"version": 1, "op": "wait", "id": rid})
        self.assertEqual(w.next()["result"]["state"], "active")
        self.assertEqual(w.next()["request"]["state"], "active")
        self.assertIsNone(w.next())
        w.close()

    def test_request_wait(self):
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        argv = alice._as_user([jittest.JITCTL, "--socket", self.broker.socket, "request",
                               "--reason", "waiting", "--wait"])
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        rid = wait_for(lambda: next((r["id"] for r in alice.ok("list", "--pending", "--mine")
                                     if r["reason"] == "waiting"), None), what="filed")
        self.wait_streams(1)
        t0 = time.monotonic()
        bob.ok("approve", str(rid))
        out, err = p.communicate(timeout=10)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(p.returncode, 0, err)
        self.assertIn(f"Waiting for approval of request {rid} from %jit-lead", err)
        self.assertIn("Approved by jit-bob (1 of 1).", err)
        self.assertIn(f"Request {rid} approved", out)

        # Denied: exit 3, with --json the decided request.
        argv = alice._as_user([jittest.JITCTL, "--socket", self.broker.socket, "--json", "request",
                               "--reason", "no", "--wait"])
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        rid = wait_for(lambda: next((r["id"] for r in alice.ok("list", "--pending", "--mine")
                                     if r["reason"] == "no"), None), what="filed")
        self.wait_streams(1)
        bob.ok("deny", str(rid), "--reason", "not now")
        out, err = p.communicate(timeout=10)
        self.assertEqual(p.returncode, EXIT_REFUSED, err)
        doc = json.loads(out)
        self.assertEqual((doc["id"], doc["state"], doc["end_reason"]), (rid, "denied", "not now"))

    def test_status_lists_what_waits_for_the_approver_first(self):
        alice, carol = self.u["jit-alice"], self.u["jit-carol"]
        rid = alice.ok("request", "--service", "sshd", "--reason", "needs two")["id"]
        queue = [r["id"] for r in carol.ok("status")["to_approve"]]
        self.assertIn(rid, queue)
        self.assertEqual(alice.ok("status")["to_approve"], [])
        p = carol.jitctl("status")
        self.assertExit(p, 0)
        self.assertTrue(p.stdout.startswith("Waiting for your approval (jitctl approve ID):\n"), p.stdout)
        self.assertRegex(p.stdout, rf"\n\s*{rid}\s+jit-alice\s+sshd")
        carol.ok("approve", str(rid))  # 1 of 2: still pending, but no longer carol's to do
        self.assertNotIn(rid, [r["id"] for r in carol.ok("status")["to_approve"]])
        self.assertFalse(carol.jitctl("status").stdout.startswith("Waiting"))

    def test_fifty_waiting_users_do_not_slow_checks(self):
        """50 users wait at the prompt (root's wait streams with cancel_on_close, as pam_jit
        holds them) while root's checks run: every check is answered right, and the checks'
        p99 is printed with and without them. The bound is loose on purpose (a check never
        waits for a stream; a timed test must not fail on a busy machine): a stream that
        held up the loop would show as tens of milliseconds."""
        sock = self.broker.socket
        names = [f"jit-w{i:02d}" for i in range(50)]
        for n in names:
            if n not in self.u:
                self.sb.add_user(n, ["jit-dev", "jit-test"])
                self.u[n] = jittest.User(self.sb, self.broker, n)

        def checks(count):
            times = []
            for i in range(count):
                t = time.perf_counter()
                r = call(sock, {"version": 1, "op": "check", "user": names[i % 50], "service": "sudo"})
                times.append(time.perf_counter() - t)
                self.assertEqual((r["ok"], r["result"]["allowed"]), (True, False))
            times.sort()
            return times[len(times) // 2], times[int(len(times) * 0.99)]

        base = checks(1000)
        waits = []
        for n in names:
            r = call(sock, {"version": 1, "op": "request", "reason": "at the prompt", "requester": n})
            w = Stream(sock, {"version": 1, "op": "wait", "id": r["result"]["id"], "cancel_on_close": True})
            self.assertEqual(w.next()["result"]["state"], "pending")
            waits.append((r["result"]["id"], w))
        self.assertEqual(self.streams(), 50)
        loaded = checks(1000)
        print(f"\ncheck p50/p99 without waiting users: {base[0] * 1e3:.3f}/{base[1] * 1e3:.3f} ms, "
              f"with 50 waiting: {loaded[0] * 1e3:.3f}/{loaded[1] * 1e3:.3f} ms", flush=True)
        self.assertLess(loaded[1], max(0.05, 5 * base[1]))
        # Each wait still ends with its own decision.
        bob = self.u["jit-bob"]
        for rid, w in waits[:5]:
            bob.ok("approve", str(rid))
        for rid, w in waits[:5]:
            frames = []
            while (f := w.next()) is not None:
                frames.append(f)
            self.assertEqual((frames[-1]["done"], frames[-1]["request"]["id"], frames[-1]["request"]["state"]),
                             (True, rid, "active"))
        for rid, w in waits:
            w.close()
        # The other 45 were cancelled by their closing; the 5 approved stay active.
        wait_for(lambda: self.streams() == 0, what="streams closed")
        states = [call(sock, {"version": 1, "op": "show", "id": rid})["result"]["state"] for rid, _ in waits]
        self.assertEqual(states, ["active"] * 5 + ["cancelled"] * 45)


HOLD_STREAMS = r"""
import json, socket, struct, sys
path, n = sys.argv[1], int(sys.argv[2])
held = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    d = json.dumps({"version": 1, "op": "watch"}).encode()
    s.sendall(struct.pack(">I", len(d)) + d)
    buf = b""
    while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
        buf += s.recv(65536)
    print(buf[4:4 + struct.unpack(">I", buf[:4])[0]].decode(), flush=True)
    held.append(s)
"""


if __name__ == "__main__":
    jittest.main()
