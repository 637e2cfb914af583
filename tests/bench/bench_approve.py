# SPDX-License-Identifier: MIT
"""Benchmark: what an approval costs against a bare durable sqlite commit, measured in the
same run, alternating, on the same disk and with the broker's settings (WAL,
synchronous = FULL).

  meson test -C BUILD --benchmark --verbose bench-approve      (as root)

Root files a request (untimed), an approver (a real user, connecting as itself) approves it
over the protocol, timed: the approval makes a grant (1 of 1: an approval record, the grant,
two audit records, in one transaction), and the queue stays as short as on a real host.
Between two approvals, the baseline: one INSERT of a row the size of an audit record and its
COMMIT, in a database of its own in the same directory. N rounds.
Prints p50 and p99 of each and their ratios (goals: p99 <= 1.3x, p50 <= 2x).

Then the floor under that ratio: an approval is an exchange over the socket with another
process as well as a commit, which the bare commit is not. In each round the approver also
sends the same frame to a server that does nothing else (raw-server.c) and reads its
answer; that exchange plus the round's bare commit is what any broker design costs at the
least, printed with its ratio to the bare commit and the approval's ratio to it.
"""

import json
import os
import pwd
import socket
import sqlite3
import statistics
import subprocess
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import jittest  # noqa: E402

N = int(os.environ.get("JIT_BENCH_APPROVALS", "400"))
RAW_SERVER = os.environ.get("JIT_BENCH_RAW_SERVER")

POLICY = """
settings = { max_pending_per_user = 1000; max_filings_per_hour = 10000; };
rules = (
  { name = "bench"; services = ["sudo"]; requesters = ["root", "%jit-dev"]; approvers = ["%jit-lead"]; }
);
"""


def call(path, obj):
    body = json.dumps(obj).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        s.sendall(struct.pack(">I", len(body)) + body)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data[4:])


def pct(samples, q):
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * q))]


def approver(sock, ids_fd, done_fd, base_path, out_fd, raw_sock=None):
    """Runs as the approver: approves each id root hands it, then one baseline commit, then
    (with raw_sock) the same frame to the raw server."""
    db = sqlite3.connect(base_path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("CREATE TABLE IF NOT EXISTS t (seq INTEGER PRIMARY KEY, at INTEGER, event TEXT, "
               "details TEXT, prev TEXT, hash TEXT)")
    row = ("x" * 200, "0" * 64, "1" * 64)
    approve, bare, raw = [], [], []
    ids = os.fdopen(ids_fd)
    for line in ids:
        rid = int(line)
        t = time.perf_counter()
        reply = call(sock, {"version": 1, "op": "approve", "id": rid})
        approve.append(time.perf_counter() - t)
        if not reply.get("ok"):
            raise SystemExit(f"approve {rid}: {reply}")
        t = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (at, event, details, prev, hash) VALUES (?, 'approval', ?, ?, ?)",
                   (time.time_ns(),) + row)
        db.execute("COMMIT")
        bare.append(time.perf_counter() - t)
        if raw_sock:
            t = time.perf_counter()
            call(raw_sock, {"version": 1, "op": "approve", "id": rid})
            raw.append(time.perf_counter() - t)
        os.write(done_fd, b".")
    os.write(out_fd, json.dumps({"approve": approve, "bare": bare, "raw": raw}).encode())


def main():
    sb = jittest.Sandbox()
    try:
        sb.add_user("jit-bob", ["jit-lead", "jit-test"])
        broker = jittest.Broker(sb, POLICY)
        broker.start()
        base_path = os.path.join(os.path.dirname(broker.db), "baseline.db")
        bob = pwd.getpwnam("jit-bob")
        os.chown(os.path.dirname(broker.db), 0, 0)
        os.chmod(os.path.dirname(broker.db), 0o1777)  # the baseline's database, beside the broker's
        raw_sock, raw = None, None
        if RAW_SERVER:
            raw_sock = os.path.join(os.path.dirname(broker.db), "raw.sock")
            raw = subprocess.Popen([RAW_SERVER, raw_sock], stdout=subprocess.PIPE, text=True)
            assert raw.stdout.readline().strip() == "ready"
            os.chmod(raw_sock, 0o666)
        ids_r, ids_w = os.pipe()
        done_r, done_w = os.pipe()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                for fd in (r, ids_w, done_r):
                    os.close(fd)
                os.setgroups([])
                os.setgid(bob.pw_gid)
                os.setuid(bob.pw_uid)
                approver(broker.socket, ids_r, done_w, base_path, w, raw_sock)
                os._exit(0)
            except BaseException as e:  # noqa: BLE001
                print(f"approver: {e}", file=sys.stderr)
                os._exit(1)
        for fd in (w, ids_r, done_w):
            os.close(fd)
        for i in range(N):
            reply = broker.call({"version": 1, "op": "request", "reason": f"bench {i}"})
            os.write(ids_w, f"{reply['result']['id']}\n".encode())
            if os.read(done_r, 1) != b".":
                raise SystemExit("the approver stopped")
            if i % 50 == 49:  # ended grants, as on a host where they expire
                for rid in range(reply["result"]["id"] - 49, reply["result"]["id"] + 1):
                    broker.call({"version": 1, "op": "revoke", "id": rid})
        os.close(ids_w)
        data = b""
        while chunk := os.read(r, 1 << 20):
            data += chunk
        _, status = os.waitpid(pid, 0)
        if status != 0:
            raise SystemExit("the approver failed")
        res = json.loads(data)
        broker.stop()
        if raw:
            raw.kill()
            raw.wait()
        a50, a99 = pct(res["approve"], 0.5), pct(res["approve"], 0.99)
        b50, b99 = pct(res["bare"], 0.5), pct(res["bare"], 0.99)
        print(f"approve vs a bare durable sqlite commit, {N} each, alternating")
        print(f"   {'':20} {'p50':>9} {'p99':>9}")
        print(f"   {'approve':20} {a50 * 1e3:7.2f}ms {a99 * 1e3:7.2f}ms")
        print(f"   {'INSERT + COMMIT':20} {b50 * 1e3:7.2f}ms {b99 * 1e3:7.2f}ms")
        print(f"   {'ratio':20} {a50 / b50:9.2f} {a99 / b99:9.2f}")
        print(f"   goal: p99 <= 1.3x: {a99 / b99:.2f} {'PASS' if a99 / b99 <= 1.3 else 'MISS'}; "
              f"p50 <= 2x: {a50 / b50:.2f} {'PASS' if a50 / b50 <= 2 else 'MISS'}")
        if res["raw"]:
            floor = [r + b for r, b in zip(res["raw"], res["bare"])]
            f50, f99 = pct(floor, 0.5), pct(floor, 0.99)
            print(f"   the floor: one exchange with a server that does nothing + the bare commit: "
                  f"p50 {f50 * 1e3:.2f}ms p99 {f99 * 1e3:.2f}ms, {f50 / b50:.2f} / {f99 / b99:.2f} x the bare "
                  f"commit; approve {a50 / f50:.2f} / {a99 / f99:.2f} x the floor")
    finally:
        sb.close()


if __name__ == "__main__":
    main()
