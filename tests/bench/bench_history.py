# SPDX-License-Identifier: MIT
"""Benchmark: nothing on the way to the first check, nor behind list and status, grows with
history.

  meson test -C BUILD --benchmark --verbose bench-history       (as root)

Databases are written straight into sqlite (synthetic_log.py) with a small, a middle and a
large history: SMALL finished requests (the baseline, 10 by default), MIDDLE (10^4) and
LARGE (10^6), with two audit records each (2·10^6 for the large one). Each also holds a
few open requests of jit-alice (one active grant, two pending), and its history is
jit-alice's and other users' own, all under the rule jit-bob approves.

Printed:
 - start → first answered check: jit-brokerd started on a database until root's check
   (what pam_jit asks) is answered, at the baseline and at LARGE (goal: at most 200 ms);
   the integrity check runs after that, on a thread of its own;
 - list (default, --pending, --active, --mine, --all), status, as the requester (jit-alice)
   and as the approver (jit-bob), and root's list: the operation's round trip at MIDDLE
   and at LARGE and their ratio (goal: at most 1.2). --all is paged (at most 1000
   rows, newest first): its figure is for a full page. Both brokers run at once and the
   runs are interleaved; each figure is the median of REPS.
"""

import json
import os
import pwd
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import jittest  # noqa: E402
import synthetic_log  # noqa: E402  (this directory)

SMALL = int(os.environ.get("JIT_BENCH_SMALL", "10"))
MIDDLE = int(os.environ.get("JIT_BENCH_MIDDLE", "10000"))
LARGE = int(os.environ.get("JIT_BENCH_LARGE", "1000000"))
RECORDS_PER_REQUEST = 2
START_REPS = int(os.environ.get("JIT_BENCH_START_REPS", "7"))
REPS = int(os.environ.get("JIT_BENCH_REPS", "15"))

POLICY = """
settings = { max_pending_per_user = 1000; max_filings_per_hour = 1000; };
rules = (
  { name = "bench"; services = ["sudo"]; requesters = ["%jit-dev"]; approvers = ["%jit-lead"]; }
);
"""

CHECK = {"version": 1, "op": "check", "user": "jit-alice", "service": "sudo"}

# Timed inside one process per user and round: the round trip of each operation, not the
# start of a client.
CLIENT = r"""
import json, socket, struct, sys, time
def call(path, obj):
    body = json.dumps(obj).encode()
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)
    s.connect(path)
    s.sendall(struct.pack(">I", len(body)) + body)
    data = b""
    while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
        c = s.recv(1 << 20)
        if not c:
            break
        data += c
    s.close()
    return json.loads(data[4:])
jobs = json.loads(sys.argv[1])
# One untimed call to each broker first: what a process's first exchange costs (either
# side) must not fall on whichever broker this round asks first.
for path in dict.fromkeys(path for _, path, _ in jobs):
    call(path, {"version": 1, "op": "list", "filter": "pending"})
out = []
for label, path, req in jobs:
    t = time.perf_counter()
    r = call(path, req)
    dt = time.perf_counter() - t
    if not r.get("ok"):
        print(json.dumps({"error": [label, r]}))
        sys.exit(1)
    res = r["result"]
    out.append([label, dt, len(res) if isinstance(res, list) else len(res.get("pending", []))])
print(json.dumps(out))
"""

# (label, user, request): what jitctl sends for each command.
OPS = [
    ("list", "jit-alice", {"op": "list"}),
    ("list --pending", "jit-alice", {"op": "list", "filter": "pending"}),
    ("list --active", "jit-alice", {"op": "list", "filter": "active"}),
    ("list --mine", "jit-alice", {"op": "list", "mine": True}),
    ("list --all", "jit-alice", {"op": "list", "filter": "all"}),
    ("status", "jit-alice", {"op": "status"}),
    ("list", "jit-bob", {"op": "list"}),
    ("list --pending", "jit-bob", {"op": "list", "filter": "pending"}),
    ("list --all", "jit-bob", {"op": "list", "filter": "all"}),
    ("status", "jit-bob", {"op": "status"}),
    ("list", "root", {"op": "list"}),
    ("list --pending", "root", {"op": "list", "filter": "pending"}),
    ("list --all", "root", {"op": "list", "filter": "all"}),
]


def frame(obj):
    body = json.dumps(obj).encode()
    return struct.pack(">I", len(body)) + body


def try_check(path):
    """Root's check, or None while nothing answers on path."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(path)
        s.sendall(frame(CHECK))
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
            chunk = s.recv(65536)
            if not chunk:
                return None
            data += chunk
        return json.loads(data[4:])
    except (FileNotFoundError, ConnectionRefusedError):
        return None
    finally:
        s.close()


class History:
    """One database and the broker on it."""

    def __init__(self, sb, name, requests, owners):
        self.name, self.requests = name, requests
        self.broker = jittest.Broker(sb, POLICY)
        os.makedirs(sb.path(name), mode=0o700, exist_ok=True)
        self.broker.db = sb.path(name, "jit.db")
        self.broker.socket = sb.path("run", name + ".sock")
        self.broker.start()  # the schema
        self.broker.stop()
        t = time.monotonic()
        synthetic_log.populate(self.broker.db, owners, requests * RECORDS_PER_REQUEST, RECORDS_PER_REQUEST)
        self.built = time.monotonic() - t
        # Open requests on top of the history: a grant and two pending.
        self.broker.start()
        alice, bob = jittest.User(sb, self.broker, "jit-alice"), jittest.User(sb, self.broker, "jit-bob")
        bob.ok("approve", str(alice.ok("request", "--reason", "bench")["id"]))
        alice.ok("request", "--reason", "waiting 1")
        alice.ok("request", "--reason", "waiting 2")
        self.broker.stop()

    def time_start(self):
        """ms from the broker's start to root's first answered check."""
        if os.path.exists(self.broker.socket):
            os.unlink(self.broker.socket)
        t = time.perf_counter()
        self.broker.start(expect_ready=False)
        while True:
            reply = try_check(self.broker.socket)
            if reply is not None:
                break
            if self.broker.proc.poll() is not None:
                raise RuntimeError(f"jit-brokerd exited with {self.broker.proc.returncode}")
            time.sleep(0.001)
        elapsed = time.perf_counter() - t
        if not (reply.get("ok") and reply["result"]["allowed"]):
            raise RuntimeError(f"the first check did not allow: {reply}")
        self.broker.stop()
        return elapsed * 1e3


def wait_integrity(sb, broker, since):
    """Until the broker's integrity check passed: it must not share the CPU with the timings."""
    def passed():
        with open(sb.path("broker.log")) as f:
            f.seek(since)
            return "passed its integrity check" in f.read()
    jittest.wait_for(passed, timeout=120, what="the integrity check")


def main():
    sb = jittest.Sandbox()
    try:
        sb.add_user("jit-alice", ["jit-dev", "jit-test"])
        sb.add_user("jit-bob", ["jit-lead", "jit-test"])
        others = [f"jit-hist{i}" for i in range(3)]
        for name in others:
            sb.add_user(name, ["jit-dev"])
        owners = [(n, pwd.getpwnam(n).pw_uid) for n in ["jit-alice"] + others]
        client = sb.path("history_client.py")
        with open(client, "w") as f:
            f.write(CLIENT)
        os.chmod(client, 0o644)

        sizes = {"small": SMALL, "middle": MIDDLE, "large": LARGE}
        dbs = {name: History(sb, name, n, owners) for name, n in sizes.items()}

        # Start → first answered check, interleaved.
        starts = {name: [] for name in ("small", "large")}
        for _ in range(START_REPS):
            for name in starts:
                starts[name].append(dbs[name].time_start())

        # The operations, with both brokers running, interleaved.
        pair = ("middle", "large")
        for name in pair:
            since = os.path.getsize(sb.path("broker.log"))
            dbs[name].broker.start()
            wait_integrity(sb, dbs[name].broker, since)
        samples = {}
        users = sorted({u for _, u, _ in OPS})
        for rnd in range(REPS + 1):  # the first round warms the caches up
            t0 = time.monotonic()
            for user in users:
                jobs = []
                for name in (pair if rnd % 2 == 0 else pair[::-1]):
                    for label, u, req in OPS:
                        if u == user:
                            jobs.append([f"{name}|{u}|{label}", dbs[name].broker.socket, dict(version=1, **req)])
                argv = jittest.User(sb, dbs["large"].broker, user)._as_user(
                    [jittest.SYSTEM_PYTHON, client, json.dumps(jobs)])
                p = subprocess.run(argv, capture_output=True, text=True, timeout=600)
                out = json.loads(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else None
                if p.returncode != 0 or not isinstance(out, list):
                    raise RuntimeError(f"the timing client as {user} failed: {p.stdout} {p.stderr}")
                if rnd > 0:
                    for label, dt, rows in out:
                        samples.setdefault(label, []).append((dt, rows))
            # status and list --all are rate-limited for non-root users: 2 a second.
            time.sleep(max(0.0, 1.1 - (time.monotonic() - t0)))
        for name in pair:
            dbs[name].broker.stop()

        print(f"history: {SMALL} / {MIDDLE} / {LARGE} finished requests, {RECORDS_PER_REQUEST} audit "
              f"records each (large written in {dbs['large'].built:.1f} s); {os.cpu_count()} CPUs")
        s50 = {name: statistics.median(v) for name, v in starts.items()}
        print(f"start -> first answered check (median of {START_REPS}): {SMALL} rows {s50['small']:.1f} ms, "
              f"{LARGE} rows / {LARGE * RECORDS_PER_REQUEST} audit records {s50['large']:.1f} ms "
              f"(ratio {s50['large'] / s50['small']:.2f}; goal <= 200 ms)")
        print(f"{'operation':32} {'rows':>5} {MIDDLE:>10} {LARGE:>10}  ratio   (median of {REPS}, ms)")
        worst = 0.0
        for label, user, _ in OPS:
            mid = samples[f"middle|{user}|{label}"]
            big = samples[f"large|{user}|{label}"]
            m, b = statistics.median(d for d, _ in mid), statistics.median(d for d, _ in big)
            worst = max(worst, b / m)
            print(f"{user + ' ' + label:32} {big[0][1]:>5} {m * 1e3:10.3f} {b * 1e3:10.3f}  {b / m:5.2f}")
        print(f"worst ratio {worst:.2f}; goal: each <= 1.20")
    finally:
        sb.close()


if __name__ == "__main__":
    main()
