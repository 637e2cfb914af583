#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The mutation check: puts each security-critical fault of faults.py into a scratch copy
of the tree, one at a time, rebuilds, runs only the tests named to catch it, and reports
caught / MISSED. Every fault must be caught: a fault the tests miss is a guarantee nothing
proves. A fault whose text no longer matches the code exactly once is STALE: the code
moved, and the list must move with it.

  sudo tests/mutation/run-mutations.py [--only ID ...] [--list] [--check] [--keep]

Needs root (the integration tests create users and run sudo in private namespaces) and the
test dependencies (packaging/install-deps.sh --tests). The tree is copied as it stands in
the working directory, uncommitted changes included; nothing in it is modified."""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
from faults import FAULTS  # noqa: E402


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def copy_tree(dest):
    files = run(["git", "-C", SRC, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                check=True).stdout.split("\0")
    for f in filter(None, files):
        src = os.path.join(SRC, f)
        if not os.path.isfile(src):
            continue  # deleted in the working tree
        os.makedirs(os.path.dirname(os.path.join(dest, f)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, f))


def first_failure(output):
    """The line of a failed run that says what failed (a unittest FAIL:, an assertion, a
    cmocka failure, a timeout), to show that the fault was caught by an assertion."""
    for marker in ("AssertionError", "FAIL:", "ERROR:", "[  FAILED  ]", "TIMEOUT"):
        for line in output.splitlines():
            if marker in line:
                return line.strip()[:160]
    return "failed"


def run_tests(build, tests):
    """Runs each named test ("NAME" or "NAME:ARGS" for the test program's own arguments);
    returns (the first that failed, what it said), or None when all passed."""
    for spec in tests:
        name, _, args = spec.partition(":")
        argv = ["meson", "test", "-C", build, "--no-rebuild", "--print-errorlogs",
                "--timeout-multiplier", "0.3", name]
        if args:
            argv += ["--test-args", args]
        p = run(argv)
        if p.returncode != 0:
            return spec, first_failure(p.stdout)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", metavar="ID", help="run only these faults")
    ap.add_argument("--list", action="store_true", help="list the faults and exit")
    ap.add_argument("--keep", action="store_true", help="keep the scratch copy")
    ap.add_argument("--check", action="store_true",
                    help="only check that every fault still matches the code exactly once (no build)")
    opts = ap.parse_args()

    ids = [f["id"] for f in FAULTS]
    if len(set(ids)) != len(ids):
        sys.exit("faults.py: duplicate fault ids")
    faults = FAULTS
    if opts.only:
        unknown = set(opts.only) - set(ids)
        if unknown:
            print(f"run-mutations: no such fault: {', '.join(sorted(unknown))}", file=sys.stderr)
            sys.exit(2)
        faults = [f for f in FAULTS if f["id"] in opts.only]
    if opts.list:
        for f in faults:
            print(f"{f['id']:32} {f['file']:28} {f['why']}")
        return 0
    def matches(f):
        try:
            with open(os.path.join(SRC, f["file"])) as fh:
                return fh.read().count(f["find"])
        except FileNotFoundError:
            return 0
    stale = [(f["id"], n) for f in faults for n in [matches(f)] if n != 1]
    for fid, n in stale:
        print(f"run-mutations: fault {fid} is STALE: its text occurs {n} times in the code", file=sys.stderr)
    if opts.check:
        print(f"{len(faults) - len(stale)} of {len(faults)} faults match the code")
        return 1 if stale else 0
    if os.geteuid() != 0:
        print("run-mutations: run as root (the integration tests need it)", file=sys.stderr)
        return 2

    started = time.monotonic()
    scratch = tempfile.mkdtemp(prefix="jit-mutation-")
    tree, build = os.path.join(scratch, "src"), os.path.join(scratch, "build")
    try:
        copy_tree(tree)
        p = run(["meson", "setup", build, tree])
        if p.returncode != 0:
            print(p.stdout)
            return 1
        p = run(["ninja", "-C", build])
        if p.returncode != 0:
            print(p.stdout)
            return 1
        # The tests must pass on the unmodified code, or nothing they report means anything.
        baseline = sorted({t for f in faults for t in f["tests"]})
        failed = run_tests(build, baseline)
        if failed:
            print(f"run-mutations: {failed[0]} fails without any fault ({failed[1]}); fix it first",
                  file=sys.stderr)
            return 1
        print(f"baseline: {len(baseline)} test runs pass ({time.monotonic() - started:.0f} s)")

        results = []
        for f in faults:
            t0 = time.monotonic()
            path = os.path.join(tree, f["file"])
            try:
                with open(path) as fh:
                    original = fh.read()
            except FileNotFoundError:
                original = ""
            count = original.count(f["find"])
            if count != 1:
                results.append((f, "STALE", f"its text occurs {count} times in {f['file']}"))
                print(f"{f['id']:32} STALE ({count} matches)", flush=True)
                continue
            with open(path, "w") as fh:
                fh.write(original.replace(f["find"], f["replace"]))
            try:
                p = run(["ninja", "-C", build])
                if p.returncode != 0:
                    verdict, detail = "NO-BUILD", p.stdout.strip().splitlines()[-1]
                else:
                    by = run_tests(build, f["tests"])
                    verdict, detail = (("caught", f"{by[0]}: {by[1]}") if by else
                                       ("MISSED", "by none of " + ", ".join(f["tests"])))
            finally:
                with open(path, "w") as fh:
                    fh.write(original)
            results.append((f, verdict, detail))
            print(f"{f['id']:32} {verdict:8} {detail} ({time.monotonic() - t0:.1f} s)", flush=True)
        run(["ninja", "-C", build])

        bad = [r for r in results if r[1] != "caught"]
        print(f"\n{len(results) - len(bad)} of {len(results)} faults caught in {time.monotonic() - started:.0f} s")
        for f, verdict, detail in bad:
            print(f"  {verdict}: {f['id']} ({f['file']}): {f['why']} - {detail}")
        return 1 if bad else 0
    finally:
        if opts.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
