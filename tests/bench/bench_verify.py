# SPDX-License-Identifier: MIT
"""Benchmark: jitctl audit --verify over a large audit log, time and peak memory.

  meson test -C BUILD --benchmark --verbose bench-verify       (as root)

A broker creates the schema once and stops; synthetic_log.py then writes a well-formed
hash chain straight into its database. jitctl audit --verify --db (as root, reading the
database and this sandbox's journal itself) is timed at SIZES records (2*10^5 and 2*10^6 by
default), REPEAT times each (the fastest run counts, and the largest peak); its peak
resident memory is ru_maxrss from wait4(), taken by a small C parent (bench_verify.c).

The baseline, in the same run and on the same file: the sqlite3 command-line shell reading
the same columns in the same order to /dev/null (reading the log and printing it, no
hashing: about what reading alone costs). Printed: records/s, peak RSS (MiB), the time ratio to the baseline, and
the goals (peak RSS <= 64 MiB and >= 500k records/s at the largest size) with PASS/MISS;
memory at each size shows that it does not grow with the log.
"""

import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import jittest  # noqa: E402
import synthetic_log  # noqa: E402  (this directory)

SIZES = [int(s) for s in os.environ.get("JIT_BENCH_VERIFY_SIZES", "200000,2000000").split(",")]
REPEAT = int(os.environ.get("JIT_BENCH_VERIFY_REPEAT", "3"))
# Keep a copy of the largest database here (for profiling by hand).
KEEP = os.environ.get("JIT_BENCH_VERIFY_KEEP", "")
GOAL_RSS_MIB = 64
GOAL_RATE = 500_000

POLICY = """
rules = (
  { name = "bench"; services = ["sudo"]; requesters = ["%jit-dev"]; approvers = ["%jit-lead"]; }
);
"""

COLUMNS = "seq, at, event, actor, actor_uid, request_id, details, prev_hash, hash"


STOPWATCH = None


def timed(argv, capture):
    """(seconds, peak RSS in MiB, exit status, stdout or b"") of argv run to completion,
    measured by the small C helper (bench_verify.c): a child forked by this Python process
    would report Python's own size as its peak."""
    p = subprocess.run([STOPWATCH, *argv], stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                       stderr=subprocess.PIPE, check=True)
    seconds, maxrss_kib, code = p.stderr.decode().split()[-3:]
    return float(seconds), int(maxrss_kib) / 1024, int(code), p.stdout or b""


def best(argv, check, capture=False):
    runs = [timed(argv, capture) for _ in range(REPEAT)]
    for _, _, code, out in runs:
        check(code, out)
    return min(r[0] for r in runs), max(r[1] for r in runs)


def main():
    global STOPWATCH
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} BENCH-VERIFY-RUN (the built tests/bench/bench_verify.c)")
        sys.exit(2)
    STOPWATCH = sys.argv[1]
    sqlite3_cli = shutil.which("sqlite3")
    if not sqlite3_cli:
        print("the sqlite3 command-line shell is missing (apt install sqlite3): no baseline")
        sys.exit(77)
    sb = jittest.Sandbox()
    try:
        sb.start_journald()  # the broker's heads: --verify checks the end against them
        broker = jittest.Broker(sb, POLICY)
        broker.start()  # creates the schema
        broker.stop()
        owners = [("jit-bench", 60000)]
        verify = [jittest.JITCTL, "--json", "audit", "--verify", "--db", broker.db]
        baseline = [sqlite3_cli, "-readonly", broker.db,
                    f"SELECT {COLUMNS} FROM audit ORDER BY seq"]

        def verified(code, out):
            if code != 0 or json.loads(out).get("intact") is not True:
                raise RuntimeError(f"jitctl audit --verify failed ({code}): {out[:500]!r}")

        def read(code, out):
            if code != 0:
                raise RuntimeError(f"sqlite3 failed ({code})")

        rows = []
        have = 0
        for size in sorted(SIZES):
            synthetic_log.populate(broker.db, owners, size - have)
            have = size
            # The page cache warm for both, as it is after the first run.
            timed(baseline, False)
            base_s, base_rss = best(baseline, read)
            ver_s, ver_rss = best(verify, verified, capture=True)
            db_mib = os.path.getsize(broker.db) / 2**20
            rows.append((size, db_mib, base_s, base_rss, ver_s, ver_rss))
        if KEEP:
            shutil.copy(broker.db, KEEP)

        print(f"jitctl audit --verify (best of {REPEAT}); baseline: sqlite3 shell reading "
              f"the same columns in seq order to /dev/null; {os.cpu_count()} CPUs")
        print(f"{'records':>9} {'db MiB':>7}   {'verify rec/s':>12} {'peak RSS':>9}   "
              f"{'sqlite3 rec/s':>13} {'peak RSS':>9}   {'time ratio':>10}")
        for size, db_mib, base_s, base_rss, ver_s, ver_rss in rows:
            print(f"{size:9d} {db_mib:7.0f}   {size / ver_s:12,.0f} {ver_rss:6.1f} MiB   "
                  f"{size / base_s:13,.0f} {base_rss:6.1f} MiB   {ver_s / base_s:10.2f}")
        size, _, _, _, ver_s, ver_rss = rows[-1]
        grow = rows[-1][5] / rows[0][5] if len(rows) > 1 else 1.0
        print(f"peak RSS at {rows[-1][0]} / at {rows[0][0]} records: {grow:.2f}")
        print(f"goal: peak RSS <= {GOAL_RSS_MIB} MiB at {size} records: {ver_rss:.1f} MiB "
              f"{'PASS' if ver_rss <= GOAL_RSS_MIB else 'MISS'}")
        print(f"goal: >= {GOAL_RATE:,} records/s at {size} records: {size / ver_s:,.0f} "
              f"{'PASS' if size / ver_s >= GOAL_RATE else 'MISS'}")
    finally:
        sb.close()


if __name__ == "__main__":
    main()
