# SPDX-License-Identifier: MIT
"""Faults injected into a real broker: journald absent, a corrupt database at start, the
broker killed (SIGKILL) at random moments while requests, approvals and revocations
stream, and its wall clock stepped a day either way while grants are active. Each case
asserts that no access is granted that should not be, that nothing acknowledged is lost,
and that the failure says what it is.

(Disk full, a read-only state directory and a locked database: test_ending_wins.py.)"""

import datetime
import json
import os
import random
import shutil
import signal
import sqlite3
import struct
import sys
import threading
import time

import jittest
from jittest import EXIT_OK, EXIT_UNREACHABLE, SANITIZED, BrokerTestCase, run, wait_for

RULES = """
  {{ name = "dev"; services = ["sudo"]; requesters = ["%jit-dev"]; approvers = ["%jit-lead"]; }}
"""
# Requests stream fast here: the per-user limits are out of the way.
SETTINGS = ('settings = { max_pending_per_user = 1000; max_filings_per_hour = 10000;'
            ' pending_ttl = "1h"; };\n')
POLICY = SETTINGS + "rules = (" + RULES.format() + ");\n"

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# An LD_PRELOAD shim that shifts CLOCK_REALTIME (and time(), gettimeofday()) of the broker
# alone by the number of seconds in a file the test rewrites; CLOCK_MONOTONIC and
# CLOCK_BOOTTIME, and timers on them, are left alone: a wall-clock step as the broker would
# see one, without touching the machine's clock. libfaketime cannot stand in for it: it
# rewrites every absolute timerfd as a CLOCK_REALTIME time, and so the broker's timers on
# CLOCK_BOOTTIME and CLOCK_MONOTONIC (grant deadlines, connection limits) would never fire.
CLOCK_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile const int64_t *offset_sec;
static int (*real_clock_gettime)(clockid_t, struct timespec *);

__attribute__((constructor)) static void shim_init(void) {
        const char *path = getenv("JIT_TEST_CLOCK_FILE");
        int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        if (fd >= 0) {
                void *p = mmap(NULL, sizeof(int64_t), PROT_READ, MAP_SHARED, fd, 0);
                if (p != MAP_FAILED)
                        offset_sec = p;
                close(fd);
        }
}

int clock_gettime(clockid_t id, struct timespec *ts) {
        if (!real_clock_gettime)
                real_clock_gettime = (int (*)(clockid_t, struct timespec *)) dlsym(RTLD_NEXT, "clock_gettime");
        int r = real_clock_gettime(id, ts);
        if (r == 0 && offset_sec && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE || id == CLOCK_TAI))
                ts->tv_sec += *offset_sec;
        return r;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
        struct timespec ts;
        (void) tz;
        if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
                return -1;
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
        return 0;
}

time_t time(time_t *t) {
        struct timespec ts;
        if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
                return (time_t) -1;
        if (t)
                *t = ts.tv_sec;
        return ts.tv_sec;
}
"""

KILLS = 20


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Faults(BrokerTestCase):
    POLICY = POLICY
    USERS = {
        "jit-alice": ["jit-dev", "jit-test"],
        "jit-carl": ["jit-dev", "jit-test"],
        "jit-bob": ["jit-lead", "jit-test"],
        "jit-dora": ["jit-lead", "jit-test"],
    }

    # -- helpers --

    def check(self, user):
        """The broker's answer to pam_jit's question, asked as root."""
        reply = self.broker.call({"version": 1, "op": "check", "user": user, "service": "sudo"})
        self.assertTrue(reply["ok"], reply)
        return reply["result"]

    def grant(self, requester, approver, duration):
        rid = str(requester.ok("request", "--for", duration, "--reason", "fault injection")["id"])
        self.assertEqual(approver.ok("approve", rid)["state"], "active")
        return rid

    def log_size(self):
        self.broker.log.flush()
        return os.path.getsize(self.broker.log.name)

    def log_since(self, offset):
        with open(self.broker.log.name, errors="replace") as f:
            f.seek(offset)
            return f.read()

    def verify(self):
        return run([jittest.JITCTL, "--json", "audit", "--verify", "--db", self.broker.db], check=False)

    # -- journald absent: everything works, the audit log records it, stderr says it --

    def stop_journald(self):
        self.sb.journald.terminate()
        self.sb.journald.wait()
        self.sb.journald_log.close()
        self.sb.journald = None
        for name in os.listdir("/run/systemd/journal"):
            path = os.path.join("/run/systemd/journal", name)
            if not os.path.isdir(path):
                os.unlink(path)

    def restart_with_journald(self):
        self.broker.stop()
        self.sb.start_journald()
        self.broker.start()

    def test_1_without_journald(self):
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        self.broker.stop()
        self.stop_journald()
        self.addCleanup(self.restart_with_journald)
        offset = self.log_size()
        self.broker.start()
        self.assertFalse(os.path.exists("/run/systemd/journal/socket"))

        rid = self.grant(alice, bob, "1h")
        self.assertEqual(self.check("jit-alice")["request_id"], int(rid))
        self.assertAllowed(alice)
        bob.ok("revoke", rid, "--reason", "done")
        self.assertFalse(self.check("jit-alice")["allowed"])
        self.assertRefused(alice)
        denied = str(alice.ok("request", "--reason", "to be denied")["id"])
        bob.ok("deny", denied, "--reason", "no")

        # The audit log has every record, journald or not.
        p = self.root.jitctl("audit", "--request", rid, "--json")
        self.assertExit(p, EXIT_OK)
        records = [json.loads(line) for line in p.stdout.splitlines()]
        # (sudo's session, where sudo runs, is recorded too)
        self.assertEqual([(r["event"], r["actor"]) for r in records if not r["event"].startswith("session-")],
                         [("requested", "jit-alice"), ("approval", "jit-bob"), ("granted", "jit-bob"),
                          ("revoked", "jit-bob")])
        p = self.root.jitctl("audit", "--request", denied, "--json")
        self.assertEqual([json.loads(line)["event"] for line in p.stdout.splitlines()], ["requested", "denied"])
        # What would have gone to the journal went to stderr.
        log = self.log_since(offset)
        for line in (f"jit-alice requested sudo for 1h (request {rid}, rule dev): fault injection",
                     f"jit-bob approved request {rid} of jit-alice",
                     f"sudo granted to jit-alice for 1h (request {rid})",
                     "sudo allowed for jit-alice under grant " + rid,
                     f"jit-bob revoked request {rid} of jit-alice: done",
                     f"jit-bob denied request {denied} of jit-alice: no"):
            self.assertIn("jit-brokerd: " + line, log)

    # -- a corrupt database: the broker refuses to start, and PAM fails closed --

    def test_2_corrupt_database_at_start(self):
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        rid = self.grant(alice, bob, "1h")
        self.assertAllowed(alice)
        self.broker.stop()
        db = self.broker.db
        saved = {}
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                with open(db + suffix, "rb") as f:
                    saved[suffix] = f.read()

        def restore():
            for suffix in ("", "-wal", "-shm"):
                if suffix in saved:
                    with open(db + suffix, "wb") as f:
                        f.write(saved[suffix])
                elif os.path.exists(db + suffix):
                    os.unlink(db + suffix)

        # Where the requests table's b-tree starts, read from a copy (never the real file).
        copy = self.sb.path("pages.db")
        shutil.copy(db, copy)
        c = sqlite3.connect(copy)
        page_size = c.execute("PRAGMA page_size").fetchone()[0]
        root = c.execute("SELECT rootpage FROM sqlite_master WHERE name = 'requests'").fetchone()[0]
        c.close()

        def garbage():
            with open(db, "r+b") as f:
                f.write(b"this is not a database\n" * 200)

        def flipped_page():
            # The page's b-tree header: its type byte and cell count turned to nonsense.
            with open(db, "r+b") as f:
                f.seek((root - 1) * page_size + (100 if root == 1 else 0))
                header = bytearray(f.read(8))
                f.seek(-8, os.SEEK_CUR)
                f.write(bytes(b ^ 0xA5 for b in header))

        # A file sqlite cannot open at all stops the start; a damaged page is found by the
        # integrity check, which runs after the broker listens (the first check does not wait
        # for it) and ends the broker with a failure shortly after.
        cases = {"garbage": (garbage, r"jit-brokerd: opening the database: .*jit\.db: .*file is not a database"),
                 "flipped page": (flipped_page, r"jit-brokerd: database integrity check failed: "
                                                r"\S*jit\.db: .*; exiting")}
        damaged = None
        try:
            for name, (corrupt, says) in cases.items():
                with self.subTest(name):
                    restore()
                    corrupt()
                    damaged = name
                    offset = self.log_size()
                    started = time.monotonic()
                    self.broker.start(expect_ready=False)
                    code = self.broker.proc.wait(timeout=30)
                    self.broker.stop()
                    self.assertEqual(code, 1, "the broker must not run on a corrupt database")
                    self.assertLess(time.monotonic() - started, 10)
                    log = self.log_since(offset)
                    self.assertRegex(log, says)
                    if name == "flipped page":
                        # It got as far as listening, then the check ended it.
                        self.assertIn("started on", log)
                        self.assertNotIn("passed its integrity check", log)
                        # Started again on the same file, as Restart=on-failure does, again
                        # and again: checked before it answers or writes anything, and it ends
                        # at once every time.
                        for _ in range(2):
                            offset = self.log_size()
                            self.broker.start(expect_ready=False)
                            code = self.broker.proc.wait(timeout=30)
                            self.broker.stop()
                            self.assertEqual(code, 1)
                            log = self.log_since(offset)
                            self.assertRegex(log, r"jit-brokerd: database integrity check failed again: .*; exiting")
                            self.assertNotIn("started on", log)
                    # No broker: pam_jit denies, jitctl says the broker is unreachable.
                    self.assertRefused(alice)
                    self.assertExit(alice.jitctl("status"), EXIT_UNREACHABLE)
        finally:
            if damaged == "flipped page":
                # That broker wrote audit records (its start) before the check ended it, and
                # sent their heads to the journal: undoing the flip (its own inverse) keeps
                # them, where a restore of the saved file would lose them.
                flipped_page()
            else:
                restore()
            self.broker.start()
        self.assertAllowed(alice)
        bob.ok("revoke", rid)
        self.assertExit(self.verify(), EXIT_OK)

    # -- SIGKILL at random moments while requests, approvals and revocations stream --

    def test_3_sigkill_while_requests_stream(self):
        seed = int(os.environ.get("JIT_TEST_SEED") or random.randrange(1 << 32))
        print(f"\nkill schedule: JIT_TEST_SEED={seed}", file=sys.stderr)
        rng = random.Random(seed)
        ranks = {"pending": 0, "active": 1, "revoked": 2}
        acked = {}  # request id -> the furthest state a jitctl call acknowledged
        lock = threading.Lock()
        done = threading.Event()
        errors = []

        def acknowledge(rid, state):
            with lock:
                if ranks[state] >= ranks.get(acked.get(rid), -1):
                    acked[rid] = state

        def state_of(rid):
            while not done.is_set():
                p = self.root.jitctl("show", rid, json_out=True)
                if p.returncode == 0:
                    return p.json["state"]
                time.sleep(0.02)
            return None

        def step(user, verb, rid, want):
            """verb (approve, revoke) until rid is in state want: True once it is."""
            while not done.is_set():
                p = user.jitctl(verb, rid, json_out=True)
                if p.returncode == 0:
                    acknowledge(rid, p.json["state"])
                    return p.json["state"] == want
                # The broker died before it answered (or refused): whether it committed, only
                # the request itself says.
                state = state_of(rid)
                if state == want:
                    return True
                if state is None or ranks.get(state, 2) > ranks[want]:
                    return False
                time.sleep(0.02)
            return False

        def stream(requester, approver, revoker):
            n = 0
            try:
                while not done.is_set():
                    n += 1
                    p = requester.jitctl("request", "--for", "1h", "--reason", f"stream {n}", json_out=True)
                    if p.returncode != 0:
                        time.sleep(0.02)  # maybe filed, never acknowledged: not counted
                        continue
                    rid = str(p.json["id"])
                    acknowledge(rid, p.json["state"])
                    if step(approver, "approve", rid, "active"):
                        step(revoker, "revoke", rid, "revoked")
            except Exception as e:  # noqa: BLE001 (reported by the main thread)
                errors.append(e)

        alice, carl, bob, dora = (self.u[n] for n in ("jit-alice", "jit-carl", "jit-bob", "jit-dora"))
        first = int(alice.ok("request", "--reason", "before the kills")["id"])
        alice.ok("cancel", str(first))
        workers = [threading.Thread(target=stream, args=(alice, bob, alice)),
                   threading.Thread(target=stream, args=(carl, dora, dora))]
        for w in workers:
            w.start()
        try:
            for _ in range(KILLS):
                time.sleep(rng.uniform(0.05, 0.6))
                self.broker.stop(signal.SIGKILL)
                time.sleep(rng.uniform(0, 0.2))
                self.broker.start()
            time.sleep(0.5)
        finally:
            done.set()
            for w in workers:
                w.join(timeout=60)
        self.assertEqual(errors, [])
        counts = {s: sum(1 for v in acked.values() if v == s) for s in ranks}
        print(f"acknowledged across {KILLS} kills: {counts}", file=sys.stderr)
        self.assertGreater(sum(1 for s in acked.values() if s == "revoked"), 5,
                           f"too little was acknowledged to judge: {acked}")

        # Nothing acknowledged is lost: each request is in its acknowledged state or later.
        db = sqlite3.connect(f"file:{self.broker.db}?mode=ro", uri=True)
        try:
            states = {str(i): s for i, s in db.execute("SELECT id, state FROM requests WHERE id > ?", (first,))}
            events = {}
            for rid, event in db.execute("SELECT request_id, event FROM audit WHERE request_id IS NOT NULL"):
                events.setdefault(str(rid), set()).add(event)
        finally:
            db.close()
        later = {"pending": {"pending", "active", "revoked"}, "active": {"active", "revoked"}, "revoked": {"revoked"}}
        for rid, state in sorted(acked.items(), key=lambda i: int(i[0])):
            with self.subTest(request=rid, acknowledged=state):
                self.assertIn(rid, states, "an acknowledged request is gone")
                self.assertIn(states[rid], later[state])
        # The state and the audit log agree, request by request.
        needs = {"pending": {"requested"}, "active": {"requested", "approval", "granted"},
                 "revoked": {"requested", "approval", "granted", "revoked"}}
        for rid, state in states.items():
            with self.subTest(request=rid, state=state):
                self.assertLessEqual(needs[state], events.get(rid, set()))
                if state != "revoked":
                    self.assertNotIn("revoked", events.get(rid, set()))
        self.assertExit(self.verify(), EXIT_OK)

        # No grant acknowledged revoked opens anything; then nothing is left open at all.
        revoked = {int(rid) for rid, s in acked.items() if s == "revoked"}
        for user in ("jit-alice", "jit-carl"):
            self.assertNotIn(self.check(user)["request_id"], revoked)
        for rid, state in states.items():
            if state in ("pending", "active"):
                self.root.ok("cancel" if state == "pending" else "revoke", rid)
        for user in ("jit-alice", "jit-carl"):
            self.assertFalse(self.check(user)["allowed"])
        self.assertRefused(alice)

    # -- the broker's wall clock stepped a day forward and back while grants are active --

    def set_clock(self, seconds):
        with open(self.clock, "r+b") as f:
            f.write(struct.pack("<q", seconds))

    def start_on_shifted_clock(self, policy):
        cc = shutil.which("cc") or shutil.which("gcc")
        if not cc:
            self.skipTest("no C compiler to build the clock shim")
        src, shim = self.sb.path("clock-shim.c"), self.sb.path("clock-shim.so")
        with open(src, "w") as f:
            f.write(CLOCK_SHIM)
        run([cc, "-shared", "-fPIC", "-O2", "-o", shim, src, "-ldl"])
        os.chmod(shim, 0o755)
        self.clock = self.sb.path("clock-offset")
        with open(self.clock, "wb") as f:
            f.write(struct.pack("<q", 0))
        env = {"LD_PRELOAD": shim, "JIT_TEST_CLOCK_FILE": self.clock}
        if SANITIZED:  # the shim comes before the sanitizer's runtime
            env["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"

        def back_to_normal():
            self.broker.stop()
            self.broker.write_policy(POLICY)
            self.broker.start()
        self.broker.stop()
        self.broker.write_policy(policy)
        self.addCleanup(back_to_normal)
        self.broker.start(env=env)

    def test_4_wall_clock_steps(self):
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        # A rule that matches only on tomorrow's day, by the broker's wall clock.
        tomorrow = (datetime.datetime.now() + datetime.timedelta(days=1)).weekday()
        next_day = ('  { name = "next-day"; services = ["sudo"]; requesters = ["%jit-dev"]; auto_approve = true;'
                    f' max_duration = "1h"; when = ["{DAYS[tomorrow]} 00:00-24:00"]; }},\n')
        self.start_on_shifted_clock(SETTINGS + "rules = (\n" + next_day + RULES.format() + ");\n")
        DAY = 86400

        with self.subTest("a day forward: the grant ends at once, by its wall-clock end"):
            rid = self.grant(alice, bob, "8s")
            before = self.root.ok("show", rid)
            self.assertTrue(self.check("jit-alice")["allowed"])
            self.set_clock(DAY)
            self.assertFalse(self.check("jit-alice")["allowed"])
            self.assertRefused(alice)
            shown = self.root.ok("show", rid)
            self.assertEqual(shown["expires_at"], before["expires_at"])  # stored, not recomputed
            if shown["state"] == "active":  # ended for the check; the row ends at its deadline
                self.assertEqual(shown["seconds_left"], 0)
            wait_for(lambda: self.root.ok("show", rid)["state"] == "expired", timeout=20, what="the expiry")
            self.set_clock(0)
            self.assertFalse(self.check("jit-alice")["allowed"])

        with self.subTest("a day back: the grant does not last longer"):
            start = time.monotonic()
            rid = self.grant(alice, bob, "5s")
            approved = time.monotonic()
            self.set_clock(-DAY)
            self.assertEqual(self.check("jit-alice")["request_id"], int(rid))
            self.assertLessEqual(self.root.ok("show", rid)["seconds_left"], 5)
            wait_for(lambda: not self.check("jit-alice")["allowed"], timeout=20, what="the grant's end")
            ended = time.monotonic()
            self.assertGreaterEqual(ended, start + 5 - 0.05)
            self.assertLess(ended, approved + 5 + 1.5)
            wait_for(lambda: self.root.ok("show", rid)["state"] == "expired", timeout=10, what="the expiry")
            self.assertRefused(alice)
            self.set_clock(0)

        with self.subTest("when windows follow the wall clock at filing"):
            self.set_clock(DAY)
            expect = "next-day" if time.localtime(time.time() + DAY).tm_wday == tomorrow else "dev"
            start = time.monotonic()
            req = alice.ok("request", "--for", "4s", "--reason", "filed on tomorrow's clock")
            self.assertEqual(req["rule"], expect)
            if expect == "next-day":
                self.assertEqual(req["state"], "active")
                # Its times are the stepped clock's: it shows as ending tomorrow.
                self.assertAlmostEqual(parse_time(req["expires_at"]), time.time() + DAY + 4, delta=60)
            self.set_clock(0)
            later = alice.ok("request", "--reason", "filed on today's clock")
            self.assertEqual((later["rule"], later["state"]), ("dev", "pending"))
            alice.ok("cancel", str(later["id"]))
            if expect == "next-day":
                # Back on today's clock its wall-clock end is a day away; its boot-time
                # deadline still ends it on time.
                self.assertEqual(self.check("jit-alice")["request_id"], req["id"])
                wait_for(lambda: not self.check("jit-alice")["allowed"], timeout=20, what="the grant's end")
                self.assertLess(time.monotonic(), start + 4 + 1.5)
            else:
                alice.ok("cancel", str(req["id"]))


if __name__ == "__main__":
    jittest.main()
