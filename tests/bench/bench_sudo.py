# SPDX-License-Identifier: MIT
"""Benchmark: what pam_jit adds to a real `sudo -n true`, account line and session line.

  meson test -C BUILD --benchmark --verbose bench-sudo      (as root)

Three PAM stacks for service "sudo", of the same shape, run interleaved in rounds
(A B C A B C ...) so that drift of the machine falls on all three alike:

  A  permit:          pam_permit.so in both of pam_jit's places (the baseline)
  B  jit account:     pam_jit.so in the account line, pam_permit.so in the session line
  C  jit acct+session: pam_jit.so in both (the session is registered with the broker,
                      held by pidfd and closed when sudo's command returns)

sudo runs directly as the grant holder (uid, gid, groups set by the spawning process, no
setpriv in between). Prints medians and p90 of each, their ratios to A, and the goal line:
C ≤ GOAL × A. The ratio is what to compare across machines; no assertion is made.
Then, what is met already and must stay so: a session ends when its grant does (the time
from short grants' deadlines to the end of a sudo running under each).

Last, the floor under these ratios: one exchange of pam_jit's check frame with a server
that does nothing else (raw-server.c, bench-load.c), and with the broker, made at sudo's
pace (one exchange, then as long idle as a whole `sudo -n true` with pam_permit takes), as
a share of that sudo. Each PAM line that waits for an answer pays at least the raw share
(the waiting side and the server both wake from idle), so no design with one answered
exchange per line gets below 1 + 2 x that share.
"""

import os
import pwd
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import jittest  # noqa: E402

RAW_SERVER = os.environ.get("JIT_BENCH_RAW_SERVER")
LOAD = os.environ.get("JIT_BENCH_LOAD")
RUNS = int(os.environ.get("JIT_BENCH_SUDO_RUNS", "300"))  # per variant
WARMUP = int(os.environ.get("JIT_BENCH_SUDO_WARMUP", "10"))
GOAL = 1.05

POLICY = """
rules = (
  { name = "bench"; services = ["sudo"]; requesters = ["%jit-dev"]; approvers = ["%jit-lead"]; }
);
"""


def stacks(sb):
    jit = f"{jittest.PAM_JIT} socket={sb.path('run', 'broker.sock')} timeout={jittest.PAM_TIMEOUT_MS}"

    def stack(account, session):
        return (f"auth     required pam_permit.so\n"
                f"account  required {account}\n"
                f"session  required pam_permit.so\n"  # as Debian's common-session stands there
                f"session  required {session}\n")

    return [("permit", stack("pam_permit.so", "pam_permit.so")),
            ("jit account", stack(jit, "pam_permit.so")),
            ("jit account+session", stack(jit, jit))]


def sudo_runner(user):
    pw = pwd.getpwnam(user)
    groups = os.getgrouplist(user, pw.pw_gid)
    argv = ["sudo", "-n", "--", "true"]

    def once():
        t = time.perf_counter()
        p = subprocess.run(argv, user=pw.pw_uid, group=pw.pw_gid, extra_groups=groups,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, env={"PATH": "/usr/bin:/bin"})
        dt = time.perf_counter() - t
        if p.returncode != 0:
            raise RuntimeError(f"sudo failed ({p.returncode}): {p.stderr.decode().strip()}")
        return dt

    return once


END_ROUNDS = int(os.environ.get("JIT_BENCH_SUDO_END_ROUNDS", "5"))
END_GRANT = "2s"


def session_end_delays(sb, broker, alice, bob, variants):
    """For END_ROUNDS short grants: sudo -n sleep runs under each (account and session
    lines); the time from the grant's deadline (expires_at, read from the database) to the
    end of sudo, which the broker ends when the grant does."""
    import sqlite3
    sb.write_pam_service("sudo", dict(variants)["jit account+session"])
    pw = pwd.getpwnam(alice.name)
    groups = os.getgrouplist(alice.name, pw.pw_gid)
    delays = []
    for _ in range(END_ROUNDS):
        rid = alice.ok("request", "--for", END_GRANT, "--reason", "session end")["id"]
        bob.ok("approve", str(rid))
        p = subprocess.Popen(["sudo", "-n", "--", "sleep", "30"], user=pw.pw_uid, group=pw.pw_gid,
                             extra_groups=groups, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={"PATH": "/usr/bin:/bin"})
        p.wait(timeout=30)
        ended = time.time()
        db = sqlite3.connect(f"file:{broker.db}?mode=ro", uri=True, timeout=5)
        expires_at = db.execute("SELECT expires_at FROM requests WHERE id = ?", (rid,)).fetchone()[0]
        db.close()
        delays.append(ended - expires_at / 1e6)
    return delays


def exchange_at_pace(path, gap_us, seconds=3):
    """p50 (us) of single check exchanges with path, one every gap_us."""
    check = '{"version":1,"op":"check","user":"jit-alice","service":"sudo"}'
    out = subprocess.run([LOAD, path, "1", str(seconds), check, str(int(gap_us))],
                         capture_output=True, text=True, check=True).stdout.split()
    if int(out[4]) != 0:
        raise RuntimeError(f"{out[4]} exchanges with {path} failed")
    return int(out[2])


def floor(sb, broker, sudo_us):
    """The raw server's and the broker's exchange at sudo's pace, alternating rounds."""
    raw_path = sb.path("run", "raw.sock")
    raw = subprocess.Popen([RAW_SERVER, raw_path], stdout=subprocess.PIPE, text=True)
    try:
        assert raw.stdout.readline().strip() == "ready"
        raws, jits = [], []
        for _ in range(3):
            raws.append(exchange_at_pace(raw_path, sudo_us))
            jits.append(exchange_at_pace(broker.socket, sudo_us))
        return statistics.median(raws), statistics.median(jits)
    finally:
        raw.kill()
        raw.wait()


def p90(samples):
    s = sorted(samples)
    return s[min(len(s) - 1, int(0.9 * len(s)))]


def main():
    sb = jittest.Sandbox()
    try:
        sb.add_user("jit-alice", ["jit-dev", "jit-test"])
        sb.add_user("jit-bob", ["jit-lead", "jit-test"])
        broker = jittest.Broker(sb, POLICY)
        broker.start()
        alice, bob = jittest.User(sb, broker, "jit-alice"), jittest.User(sb, broker, "jit-bob")
        rid = str(alice.ok("request", "--for", "8h", "--reason", "bench")["id"])
        bob.ok("approve", rid)

        variants = stacks(sb)
        once = sudo_runner("jit-alice")
        samples = {name: [] for name, _ in variants}
        for i in range(WARMUP + RUNS):
            for name, text in variants:
                sb.write_pam_service("sudo", text)
                dt = once()
                if i >= WARMUP:
                    samples[name].append(dt)

        # Every session the benchmark opened was recorded and closed.
        shown = alice.ok("show", rid)
        sessions = shown.get("sessions", [])
        running = [s for s in sessions if s.get("running")]
        pace = None
        if RAW_SERVER and LOAD:
            pace = floor(sb, broker, statistics.median(samples["permit"]) * 1e6)
        bob.ok("revoke", rid)  # the short grants below must be the ones sudo runs under
        ends = session_end_delays(sb, broker, alice, bob, variants)
        broker.stop()

        base_med = statistics.median(samples["permit"])
        base_p90 = p90(samples["permit"])
        print(f"sudo -n true, {RUNS} runs per stack, interleaved (after {WARMUP} warm-up rounds)")
        print(f"{'stack':<22} {'median':>9} {'p90':>9}   {'ratio':>6} {'p90 ratio':>9}")
        for name, _ in variants:
            med, q = statistics.median(samples[name]), p90(samples[name])
            print(f"{name:<22} {med * 1e3:7.2f}ms {q * 1e3:7.2f}ms   {med / base_med:6.3f} {q / base_p90:9.3f}")
        ratio = statistics.median(samples["jit account+session"]) / base_med
        print(f"sessions recorded: {len(sessions)}, still open: {len(running)}")
        print(f"a session's end after its grant's deadline ({len(ends)} grants of {END_GRANT}, "
              f"sudo -n sleep under each): median {statistics.median(ends) * 1e3:.1f} ms, "
              f"worst {max(ends) * 1e3:.1f} ms")
        print(f"goal: jit account+session <= {GOAL:.2f} x permit: {ratio:.3f} "
              f"{'PASS' if ratio <= GOAL else 'MISS'}")
        if pace:
            raw_us, jit_us = pace
            share, jit_share = raw_us / (base_med * 1e6), jit_us / (base_med * 1e6)
            print(f"the floor: one check exchange at sudo's pace (one every {base_med * 1e3:.2f} ms): "
                  f"raw server p50 {raw_us} us = {share:.3f} of sudo -n true, "
                  f"the broker p50 {jit_us} us = {jit_share:.3f}")
            print(f"   one answered exchange per line: account >= {1 + share:.3f}, "
                  f"account+session >= {1 + 2 * share:.3f} x permit")
    finally:
        sb.close()


if __name__ == "__main__":
    main()
