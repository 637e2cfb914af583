# SPDX-License-Identifier: MIT
"""Benchmark: what a grant check costs, as ratios against baselines measured in the same run.

  meson test -C BUILD --benchmark --verbose       (as root)

1. Broker round trip: the `check` op (no grant; with a grant) against an op the broker
   rejects at once (same connect, framing and JSON, no database), over a database that
   holds HISTORY finished requests.
2. Real sudo: `sudo true` through pam_jit.so (with a grant) against the same sudo with
   pam_permit.so in its place: what jit adds to a user's sudo.
Prints medians; the ratios are what to compare across machines and changes.
"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import jittest  # noqa: E402

HISTORY = int(os.environ.get("JIT_BENCH_HISTORY", "2000"))
ROUNDS = int(os.environ.get("JIT_BENCH_ROUNDS", "2000"))
SUDO_ROUNDS = int(os.environ.get("JIT_BENCH_SUDO_ROUNDS", "100"))

POLICY = """
settings = { max_pending_per_user = 1000; };
rules = (
  { name = "bench"; services = ["sudo"]; requesters = ["root", "%jit-dev"]; approvers = ["%jit-lead"]; }
);
"""


def timed(fn, rounds):
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def main():
    sb = jittest.Sandbox()
    try:
        sb.add_user("jit-alice", ["jit-dev", "jit-test"])
        sb.add_user("jit-bob", ["jit-lead", "jit-test"])
        broker = jittest.Broker(sb, POLICY)
        broker.start()
        for i in range(HISTORY):  # finished requests the index must see past
            rid = broker.call({"version": 1, "op": "request", "reason": f"history {i}"})["result"]["id"]
            broker.call({"version": 1, "op": "cancel", "id": rid})
        alice, bob = jittest.User(sb, broker, "jit-alice"), jittest.User(sb, broker, "jit-bob")

        reject = {"version": 1, "op": "no-such-op"}
        check = {"version": 1, "op": "check", "user": "jit-alice", "service": "sudo"}
        base = timed(lambda: broker.call(reject), ROUNDS)
        no_grant = timed(lambda: broker.call(check), ROUNDS)
        rid = str(alice.ok("request", "--reason", "bench")["id"])
        bob.ok("approve", rid)
        assert broker.call(check)["result"]["allowed"] is True
        with_grant = timed(lambda: broker.call(check), ROUNDS)

        sudo_jit = timed(lambda: alice.sudo("true"), SUDO_ROUNDS)
        sb.write_pam_service("sudo", "auth required pam_permit.so\naccount required pam_permit.so\n"
                                     "session required pam_permit.so\n")
        sudo_plain = timed(lambda: alice.sudo("true"), SUDO_ROUNDS)
        broker.stop()

        print(f"history: {HISTORY} finished requests; {ROUNDS} broker rounds, {SUDO_ROUNDS} sudo rounds")
        print(f"baseline (rejected op)   {base * 1e6:8.1f} us")
        print(f"check, no grant          {no_grant * 1e6:8.1f} us   ratio {no_grant / base:5.2f}")
        print(f"check, active grant      {with_grant * 1e6:8.1f} us   ratio {with_grant / base:5.2f}")
        print(f"sudo true, pam_permit    {sudo_plain * 1e3:8.2f} ms")
        print(f"sudo true, pam_jit       {sudo_jit * 1e3:8.2f} ms   ratio {sudo_jit / sudo_plain:5.2f}")
    finally:
        sb.close()


if __name__ == "__main__":
    main()
