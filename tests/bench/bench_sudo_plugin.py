# SPDX-License-Identifier: MIT
"""Benchmark: what the sudo approval plugin jit_approval.so adds to a real `sudo -n true`.

  meson test -C BUILD --benchmark --verbose bench-sudo-plugin      (as root)

The same sudo, PAM stack and user (pam_jit.so in the account line, as packaged), with
/etc/sudo.conf switched between runs, interleaved (A B C A B C ...):

  A  no plugin line (the baseline)
  B  the plugin, the user holding a grant for all of sudo
  C  the plugin, the user holding a grant for exactly `true`

Prints medians, p90 and the ratios to A. The ratio is what to compare across machines; no
assertion is made.
"""

import os
import pwd
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import jittest  # noqa: E402

RUNS = int(os.environ.get("JIT_BENCH_SUDO_RUNS", "300"))
WARMUP = int(os.environ.get("JIT_BENCH_SUDO_WARMUP", "10"))
PLUGIN = os.environ.get("JIT_APPROVAL", "")

POLICY = """
rules = (
  { name = "bench"; services = ["sudo"]; requesters = ["%jit-dev"]; approvers = ["%jit-lead"]; }
);
"""


def sudo_conf(sb, plugin):
    text = ""
    if plugin:
        text = (f"Plugin jit_approval {PLUGIN} socket={sb.path('run', 'broker.sock')} "
                f"group=jit-dev\n")
    with open("/etc/sudo.conf", "w") as f:
        f.write(text)


def p90(samples):
    s = sorted(samples)
    return s[min(len(s) - 1, int(0.9 * len(s)))]


def main():
    if not PLUGIN:
        print("JIT_APPROVAL names no built jit_approval.so", file=sys.stderr)
        sys.exit(77)
    sb = jittest.Sandbox()
    try:
        sb.add_user("jit-alice", ["jit-dev", "jit-test"])
        sb.add_user("jit-bob", ["jit-lead", "jit-test"])
        sb.add_user("jit-carol", ["jit-dev", "jit-test"])
        broker = jittest.Broker(sb, POLICY)
        broker.start()
        alice, bob, carol = (jittest.User(sb, broker, n) for n in ("jit-alice", "jit-bob", "jit-carol"))
        bob.ok("approve", str(alice.ok("request", "--for", "8h", "--reason", "bench")["id"]))
        sudo_conf(sb, True)
        bob.ok("approve", str(carol.ok("request", "--for", "8h", "--reason", "bench",
                                       "--command", "true")["id"]))

        def runner(user):
            pw = pwd.getpwnam(user)
            groups = os.getgrouplist(user, pw.pw_gid)

            def once():
                t = time.perf_counter()
                p = subprocess.run(["sudo", "-n", "--", "true"], user=pw.pw_uid, group=pw.pw_gid,
                                   extra_groups=groups, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   env={"PATH": "/usr/bin:/bin"})
                dt = time.perf_counter() - t
                if p.returncode != 0:
                    raise RuntimeError(f"sudo failed ({p.returncode}): {p.stderr.decode().strip()}")
                return dt
            return once

        variants = [("no plugin", False, runner("jit-alice")),
                    ("plugin, sudo grant", True, runner("jit-alice")),
                    ("plugin, command grant", True, runner("jit-carol"))]
        samples = {name: [] for name, _, _ in variants}
        for i in range(WARMUP + RUNS):
            for name, plugin, once in variants:
                sudo_conf(sb, plugin)
                dt = once()
                if i >= WARMUP:
                    samples[name].append(dt)
        broker.stop()

        base_med, base_p90 = statistics.median(samples["no plugin"]), p90(samples["no plugin"])
        print(f"sudo -n true, {RUNS} runs per variant, interleaved (after {WARMUP} warm-up rounds)")
        print(f"{'variant':<24} {'median':>9} {'p90':>9}   {'ratio':>6} {'p90 ratio':>9}")
        for name, _, _ in variants:
            med, q = statistics.median(samples[name]), p90(samples[name])
            print(f"{name:<24} {med * 1e3:7.2f}ms {q * 1e3:7.2f}ms   {med / base_med:6.3f} {q / base_p90:9.3f}")
    finally:
        sb.close()


if __name__ == "__main__":
    main()
