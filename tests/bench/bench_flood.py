# SPDX-License-Identifier: MIT
"""Benchmark: root's grant check while unprivileged users flood the broker.

  meson test -C BUILD --benchmark --verbose bench-flood       (as root)

The broker runs on a database holding AUDIT_RECORDS audit records (10^6 by default) and a
tenth as many finished requests, all of them the flooding users' own: a well-formed hash
chain, written straight into sqlite before the broker starts (it reads only the newest
record at start). Root's check (what pam_jit asks inside sudo, for a user holding a grant)
is timed with no flood, then while 1 and while FLOOD_UIDS users each keep every connection
slot they may have busy with the most expensive operations they may call (audit, list
--all, status, explain; they approve the rule every request is under, so list --all gives
them full pages) and more connections open that send nothing (flood_client.py). Each run
takes CHECKS checks and MIN_SECONDS at least, after a second of flood.

Printed: p50 and p99 of each run and the ratio of its p99 to the p99 without a flood (the
goal: at most 2.0). Two controls separate what the broker adds from what the machine does:
 - echo: a minimal Unix-socket server (one Python process, accept, read, answer) timed in
   turn with the checks, under the same flood: what the flood's CPU load costs any server;
 - the same floods with the flooding processes at nice 19: they send as much as the broker
   will take, but yield the CPU to everyone else, so what is left is the broker's doing.
"""

import json
import os
import pwd
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import jittest  # noqa: E402
import synthetic_log  # noqa: E402  (this directory)

AUDIT_RECORDS = int(os.environ.get("JIT_BENCH_AUDIT_RECORDS", "1000000"))
CHECKS = int(os.environ.get("JIT_BENCH_CHECKS", "2000"))
# Each run lasts at least this long (s), after a warm-up: the flood's first burst, then its
# steady state, rate limits and all.
MIN_SECONDS = float(os.environ.get("JIT_BENCH_MIN_SECONDS", "5"))
WARMUP = 1.0
FLOOD_UIDS = int(os.environ.get("JIT_BENCH_FLOOD_UIDS", "16"))
NICE_RUNS = os.environ.get("JIT_BENCH_NICE_RUNS", "1") != "0"  # the nice 19 controls
WORKERS = 8  # BROKER_CONNECTIONS_PER_UID: every slot a user may hold
IDLE = 2     # and a few more connections that send nothing
RECORDS_PER_REQUEST = 10

POLICY = """
settings = { max_pending_per_user = 1000; };
rules = (
  { name = "bench"; services = ["sudo"]; requesters = ["%jit-dev"]; approvers = ["%jit-lead"]; }
);
"""

CHECK = {"version": 1, "op": "check", "user": "jit-alice", "service": "sudo"}


def frame(obj):
    body = json.dumps(obj).encode()
    return struct.pack(">I", len(body)) + body


def call(path, payload):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(path)
        s.sendall(payload)
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("the broker closed the connection without a reply")
            data += chunk
        return json.loads(data[4:])
    finally:
        s.close()


# The control: a server that does nothing but answer, as a root process of its own.
ECHO = """
import socket, struct, sys
srv = socket.socket(socket.AF_UNIX)
srv.bind(sys.argv[1])
srv.listen(128)
body = b'{"version":1,"ok":true,"result":{"allowed":true,"request_id":1,"expires_at":null}}'
reply = struct.pack(">I", len(body)) + body
print("ready", flush=True)
while True:
    c, _ = srv.accept()
    n = struct.unpack(">I", c.recv(4))[0]
    got = 0
    while got < n:
        got += len(c.recv(n - got))
    c.sendall(reply)
    c.close()
"""


def percentiles(samples):
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def time_checks(path, echo_path):
    """(p50, p99) of root's check and of the echo server, timed in turn at least CHECKS
    times each and for MIN_SECONDS."""
    payload = frame(CHECK)
    checks, echoes = [], []
    end = time.monotonic() + MIN_SECONDS
    while len(checks) < CHECKS or time.monotonic() < end:
        t = time.perf_counter()
        reply = call(path, payload)
        checks.append(time.perf_counter() - t)
        if not (reply.get("ok") and reply["result"]["allowed"]):
            raise RuntimeError(f"the check did not allow: {reply}")
        t = time.perf_counter()
        call(echo_path, payload)
        echoes.append(time.perf_counter() - t)
    return percentiles(checks), percentiles(echoes)


class Flood:
    def __init__(self, sb, broker, users, nice=0):
        script = sb.path("flood_client.py")
        if not os.path.exists(script):
            shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), "flood_client.py"), script)
            os.chmod(script, 0o644)
        self.procs = []
        for name in users:
            argv = jittest.User(sb, broker, name)._as_user(
                [jittest.SYSTEM_PYTHON, script, broker.socket, str(WORKERS), str(IDLE)])
            if nice:
                argv = ["nice", "-n", str(nice)] + argv
            self.procs.append(subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        for p in self.procs:
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError("a flood client did not start")
        time.sleep(WARMUP)

    def stop(self):
        totals = {}
        for p in self.procs:
            p.stdin.close()
        for p in self.procs:
            out = p.stdout.read()
            p.wait(timeout=30)
            for k, v in json.loads(out.strip().splitlines()[-1]).items():
                totals[k] = max(totals.get(k, 0), v) if k == "idle_held_max" else totals.get(k, 0) + v
        return totals


def main():
    sb = jittest.Sandbox()
    try:
        sb.add_user("jit-alice", ["jit-dev", "jit-test"])
        sb.add_user("jit-bob", ["jit-lead", "jit-test"])
        flooders = [f"jit-flood{i:02d}" for i in range(FLOOD_UIDS)]
        for name in flooders:
            sb.add_user(name, ["jit-dev", "jit-lead"])
        broker = jittest.Broker(sb, POLICY)
        broker.start()  # creates the schema
        broker.stop()
        t = time.monotonic()
        synthetic_log.populate(broker.db, [(n, pwd.getpwnam(n).pw_uid) for n in flooders],
                               AUDIT_RECORDS, RECORDS_PER_REQUEST)
        built = time.monotonic() - t
        t = time.monotonic()
        broker.start()
        started = time.monotonic() - t
        alice, bob = jittest.User(sb, broker, "jit-alice"), jittest.User(sb, broker, "jit-bob")
        bob.ok("approve", str(alice.ok("request", "--reason", "bench")["id"]))

        echo_path = sb.path("echo.sock")
        echo = subprocess.Popen([sys.executable, "-c", ECHO, echo_path], stdout=subprocess.PIPE, text=True)
        try:
            if echo.stdout.readline().strip() != "ready":
                raise RuntimeError("the echo server did not start")
            time_checks(broker.socket, echo_path)  # warm-up: the database's pages, caches
            rows = [("no flood", *time_checks(broker.socket, echo_path), None)]
            for nice in (0, 19) if NICE_RUNS else (0,):
                for n in sorted({1, FLOOD_UIDS}):
                    flood = Flood(sb, broker, flooders[:n], nice)
                    try:
                        check, control = time_checks(broker.socket, echo_path)
                    finally:
                        stats = flood.stop()
                    what = f"flood, {n} uid{'s' if n > 1 else ''}" + (f", nice {nice}" if nice else "")
                    rows.append((what, check, control, stats))
        finally:
            echo.kill()
            echo.wait()
        broker.stop()

        print(f"audit log: {AUDIT_RECORDS} records, {AUDIT_RECORDS // RECORDS_PER_REQUEST} requests "
              f"(written in {built:.1f} s; broker ready in {started:.1f} s); at least {CHECKS} checks "
              f"and {MIN_SECONDS:.0f} s per run; each flooding uid: {WORKERS} busy + {IDLE} idle "
              f"connections; {os.cpu_count()} CPUs")
        print(f"{'':24} {'root check p50 / p99':>23}  {'ratio':>5}   {'echo control p50 / p99':>23}  {'ratio':>5}")
        (_, base), (_, echo_base) = rows[0][1], rows[0][2]
        for what, (p50, p99), (e50, e99), stats in rows:
            print(f"{what:24} {p50 * 1e3:9.3f} / {p99 * 1e3:7.3f} ms  {p99 / base:5.2f}   "
                  f"{e50 * 1e3:9.3f} / {e99 * 1e3:7.3f} ms  {e99 / echo_base:5.2f}")
            if stats:
                print(f"{'':24} flood replies: " + ", ".join(
                    f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in sorted(stats.items())))
        print("goal: root check p99 ratio <= 2.00 under each flood")
    finally:
        sb.close()


if __name__ == "__main__":
    main()
