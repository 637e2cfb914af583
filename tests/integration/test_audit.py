# SPDX-License-Identifier: MIT
"""The audit log: every event recorded with its actor in the transaction of its change,
append-only, hash-chained, anchored in journald; tampering is found by jitctl audit --verify."""

import json
import os
import signal
import socket
import sqlite3
import struct
import threading

import jittest
from jittest import EXIT_OK, BrokerTestCase, wait_for

POLICY = """
settings = { pending_ttl = "2s"; max_pending_per_user = 1000; };
rules = (
  { name = "auto"; services = ["sudo"]; requesters = ["jit-olga"]; auto_approve = true; max_duration = "5m"; },
  { name = "dev"; services = ["sudo"]; requesters = ["%jit-dev", "root"]; approvers = ["%jit-lead"]; }
);
break_glass = { requesters = ["%jit-sre"]; services = ["sudo"]; max_duration = "15m"; };
"""

AUDIT_HEAD = "a6af73a831954c12a35fddcbc2882456"


class Audit(BrokerTestCase):
    POLICY = POLICY
    USERS = {
        "jit-alice": ["jit-dev", "jit-test"],
        "jit-bob": ["jit-lead", "jit-test"],
        "jit-dave": ["jit-test"],
        "jit-olga": ["jit-test"],
        "jit-sara": ["jit-sre", "jit-test"],
        "jit-sam": ["jit-sre", "jit-test"],
        "jit-audrey": ["jit-auditors"],
    }

    def records(self, **filters):
        reply = self.broker.call(dict({"version": 1, "op": "audit", "limit": 2000}, **filters))
        self.assertTrue(reply["ok"], reply)
        return reply["result"]

    def events_of(self, rid):
        return [(r["event"], r["actor"]) for r in self.records(request=int(rid))]

    def verify(self):
        return jittest.run([jittest.JITCTL, "--json", "audit", "--verify", "--db", self.broker.db], check=False)

    def test_01_every_event_kind_with_its_actor(self):
        alice, bob, olga, sara, sam = (self.u[n] for n in ("jit-alice", "jit-bob", "jit-olga", "jit-sara", "jit-sam"))
        rid = str(alice.ok("request", "--reason", "audit me")["id"])
        bob.ok("approve", rid, "--comment", "fine")
        bob.ok("revoke", rid)
        self.assertEqual(self.events_of(rid), [("requested", "jit-alice"), ("approval", "jit-bob"),
                                               ("granted", "jit-bob"), ("revoked", "jit-bob")])
        approval = self.records(request=int(rid))[1]
        self.assertEqual(approval["details"]["comment"], "fine")
        self.assertEqual(approval["actor_uid"], int(jittest.run(["id", "-u", "jit-bob"]).stdout))

        rid = str(alice.ok("request", "--reason", "deny me")["id"])
        bob.ok("deny", rid, "--reason", "no")
        self.assertEqual(self.events_of(rid)[-1], ("denied", "jit-bob"))
        rid = str(alice.ok("request", "--reason", "cancel me")["id"])
        alice.ok("cancel", rid)
        self.assertEqual(self.events_of(rid)[-1], ("cancelled", "jit-alice"))
        rid = str(alice.ok("request", "--reason", "let me time out")["id"])
        wait_for(lambda: self.events_of(rid)[-1] == ("timed-out", "broker"), what="timed-out record")

        rid = str(olga.ok("request", "--for", "1s", "--reason", "auto")["id"])
        self.assertEqual(self.events_of(rid)[:2], [("requested", "jit-olga"), ("auto-approved", "rule:auto")])
        wait_for(lambda: self.events_of(rid)[-1] == ("expired", "broker"), what="expired record")

        rid = str(sara.ok("break-glass", "--service", "sudo", "--reason", "fire")["id"])
        sam.ok("ack", rid)
        self.assertEqual(self.events_of(rid), [("break-glass", "jit-sara"), ("break-glass-acknowledged", "jit-sam")])

        before = len(self.records())
        self.broker.reload()
        wait_for(lambda: len(self.records()) > before, what="the reload record")
        self.assertEqual(self.records()[-1]["event"], "policy-loaded")
        self.broker.stop()
        self.broker.start()
        events = [r["event"] for r in self.records()]
        self.assertIn("broker-stopping", events)
        self.assertEqual(events[-2:], ["broker-started", "policy-loaded"])
        self.assertExit(self.verify(), EXIT_OK)

    def test_02_append_only(self):
        db = sqlite3.connect(self.broker.db)
        try:
            for sql in ("UPDATE audit SET actor = 'mallory' WHERE seq = 1", "DELETE FROM audit WHERE seq = 1"):
                with self.subTest(sql=sql):
                    with self.assertRaisesRegex(sqlite3.DatabaseError, "append-only"):
                        db.execute(sql)
        finally:
            db.close()

    def test_03_who_may_read(self):
        alice, dave, audrey = self.u["jit-alice"], self.u["jit-dave"], self.u["jit-audrey"]
        rid = alice.ok("request", "--reason", "visible to me")["id"]
        alice.ok("cancel", str(rid))
        mine = self.read_as(alice)
        self.assertTrue(mine)
        self.assertTrue(all(r["request_id"] is not None for r in mine))
        self.assertIn(rid, {r["request_id"] for r in mine})
        self.assertEqual({r["details"].get("requester") for r in mine}, {"jit-alice"})
        self.assertEqual(self.read_as(dave), [])
        everything = self.read_as(audrey)
        self.assertIn("broker-started", {r["event"] for r in everything})

    def read_as(self, user):
        p = user.jitctl("audit", "--json")
        self.assertExit(p, EXIT_OK)
        return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]

    def test_limit_is_the_brokers(self):
        """jitctl's --limit has the broker's maximum (one constant, JIT_AUDIT_LIMIT_MAX):
        what jitctl accepts the broker answers, and more is refused before it is sent."""
        audrey = self.u["jit-audrey"]
        p = audrey.jitctl("audit", "--limit", "5000")
        self.assertExit(p, jittest.EXIT_USAGE)
        self.assertIn("invalid limit '5000' (1 to 2000)", p.stderr)
        self.assertEqual(p.stdout, "")
        self.assertExit(audrey.jitctl("audit", "--json", "--limit", "2000"), EXIT_OK)
        self.assertIn("at most 2000", audrey.jitctl("audit", "--help").stdout)

    def test_04_crash_keeps_state_and_audit_consistent(self):
        alice = self.u["jit-alice"]

        def flood():
            for i in range(200):
                try:
                    body = json.dumps({"version": 1, "op": "request", "reason": f"crash {i}"}).encode()
                    s = socket.socket(socket.AF_UNIX)
                    s.connect(self.broker.socket)
                    s.sendall(struct.pack(">I", len(body)) + body)
                    s.recv(4)
                    s.close()
                except OSError:
                    return
        t = threading.Thread(target=flood)
        t.start()
        wait_for(lambda: len(self.records(user="root")) > 5, what="some requests")
        self.broker.stop(signal.SIGKILL)
        t.join()
        self.broker.start()
        db = sqlite3.connect(self.broker.db)
        try:
            ids = {r[0] for r in db.execute("SELECT id FROM requests")}
            audited = {r[0] for r in db.execute("SELECT request_id FROM audit WHERE event IN ('requested', 'break-glass')")}
        finally:
            db.close()
        self.assertEqual(ids, audited)
        self.assertExit(self.verify(), EXIT_OK)
        alice.ok("list")

    def test_05_export_and_verify_archive(self):
        out = self.sb.path("archive-1.jsonl")
        p = jittest.run([jittest.JITCTL, "--socket", self.broker.socket, "--json", "audit", "export", "--until", "now",
                         out], check=False)
        self.assertExit(p, EXIT_OK)
        info = json.loads(p.stdout)
        self.assertGreater(info["records"], 5)
        self.assertEqual(info["first_seq"], 1)
        # The archive verifies on its own, the live log goes on from its head, and the
        # export itself is a record of the live log.
        p = jittest.run([jittest.JITCTL, "--json", "audit", "--verify", "--archive", out], check=False)
        self.assertExit(p, EXIT_OK)
        self.assertEqual(json.loads(p.stdout)["head"], info["last_hash"])
        self.assertExit(self.verify(), EXIT_OK)
        live = self.records()
        self.assertEqual(live[0]["seq"], info["last_seq"] + 1)
        self.assertEqual(live[0]["prev_hash"], info["last_hash"])
        archived = [r for r in live if r["event"] == "audit-archived"]
        self.assertEqual(len(archived), 1)
        self.assertEqual(archived[0]["actor"], "root")
        self.assertEqual(archived[0]["details"]["last_hash"], info["last_hash"])
        # Exporting again does not overwrite a file.
        self.assertExit(jittest.run([jittest.JITCTL, "--socket", self.broker.socket, "audit", "export", "--until",
                                     "now", out], check=False), 1)

        # An archive edited or cut short no longer verifies.
        with open(out) as f:
            lines = f.readlines()
        edited = self.sb.path("archive-edited.jsonl")
        with open(edited, "w") as f:
            f.writelines(lines[:2] + [lines[2].replace("broker", "mallory", 1)] + lines[3:])
        p = jittest.run([jittest.JITCTL, "--json", "audit", "--verify", "--archive", edited], check=False)
        self.assertExit(p, 1)
        cut = self.sb.path("archive-cut.jsonl")
        with open(cut, "w") as f:
            f.writelines(lines[:-2])
        p = jittest.run([jittest.JITCTL, "--json", "audit", "--verify", "--archive", cut], check=False)
        self.assertExit(p, 1)
        self.assertEqual(json.loads(p.stdout)["fault"], "truncated")

    def test_06_heads_shipped_off_the_host(self):
        shipped = self.sb.path("heads.jsonl")
        p = jittest.run(["journalctl", "--no-pager", "-o", "json", f"MESSAGE_ID={AUDIT_HEAD}"])
        with open(shipped, "w") as f:
            f.write(p.stdout)
        self.assertExit(jittest.run([jittest.JITCTL, "audit", "--verify", "--db", self.broker.db, "--heads",
                                     shipped], check=False), EXIT_OK)
        # A head the host no longer has (its journal and database cut alike) still counts.
        last = json.loads(p.stdout.splitlines()[-1])
        later = dict(last, JIT_AUDIT_SEQ=str(int(last["JIT_AUDIT_SEQ"]) + 50))
        with open(shipped, "a") as f:
            f.write(json.dumps(later) + "\n")
        r = jittest.run([jittest.JITCTL, "--json", "audit", "--verify", "--db", self.broker.db, "--heads", shipped],
                        check=False)
        self.assertExit(r, 1)
        self.assertEqual(json.loads(r.stdout)["fault"], "truncated")

    def tamper(self, *statements):
        self.broker.stop()
        db = sqlite3.connect(self.broker.db)
        try:
            db.execute("DROP TRIGGER audit_no_update")
            db.execute("DROP TRIGGER audit_no_delete")
            for sql in statements:
                db.execute(sql)
            db.commit()
        finally:
            db.close()

    def last_seq(self):
        return self.records()[-1]["seq"]

    def test_zz_tampering_is_detected(self):
        # Each case works on a copy of the database, so one tampering does not hide another.
        import shutil
        alice = self.u["jit-alice"]
        for i in range(4):  # enough live records to tamper with
            alice.ok("cancel", str(alice.ok("request", "--reason", f"tamper target {i}")["id"]))
        last = self.last_seq()
        self.broker.stop()  # its head, with the stop record, is now in the journal
        pristine = self.broker.db + ".pristine"
        shutil.copy(self.broker.db, pristine)
        db = sqlite3.connect(pristine)
        first = db.execute("SELECT MIN(seq) FROM audit").fetchone()[0]
        reason_seq = db.execute("SELECT MIN(seq) FROM audit WHERE details LIKE '%tamper target 0%'").fetchone()[0]
        db.close()
        cases = {
            # A record's reason rewritten.
            "edited": ("UPDATE audit SET details = replace(details, 'tamper target 0', 'routine check') "
                       f"WHERE seq = {reason_seq}", reason_seq),
            "deleted": (f"DELETE FROM audit WHERE seq = {first + 2}", first + 2),
            "truncated": (f"DELETE FROM audit WHERE seq > {last - 3}", last - 2),
            "reordered": (f"UPDATE audit SET seq = CASE seq WHEN {first + 4} THEN -{first + 5} "
                          f"WHEN {first + 5} THEN -{first + 4} END WHERE seq IN ({first + 4}, {first + 5});"
                          "UPDATE audit SET seq = -seq WHERE seq < 0", first + 4),
            # The start cut off and the anchor moved to hide it, with no archive in the journal.
            "deleted-start": ("DROP TRIGGER audit_anchor_forward;"
                              "UPDATE audit_anchor SET seq = (SELECT MAX(seq) FROM audit) - 2,"
                              " hash = (SELECT hash FROM audit WHERE seq = (SELECT MAX(seq) FROM audit) - 2);"
                              "DELETE FROM audit WHERE seq <= (SELECT seq FROM audit_anchor)", 1),
        }
        for fault, (sql, seq) in cases.items():
            with self.subTest(fault=fault):
                shutil.copy(pristine, self.broker.db)
                for suffix in ("-wal", "-shm"):
                    if os.path.exists(self.broker.db + suffix):
                        os.unlink(self.broker.db + suffix)
                db = sqlite3.connect(self.broker.db)
                db.execute("DROP TRIGGER audit_no_update")
                db.execute("DROP TRIGGER audit_no_delete")
                db.executescript(sql)
                db.commit()
                db.close()
                p = self.verify()
                self.assertExit(p, 1)
                result = json.loads(p.stdout)
                self.assertEqual(result["intact"], False)
                self.assertEqual(result["fault"], fault.split("-")[0], result["message"])
                self.assertEqual(result["seq"], seq, result["message"])
        shutil.copy(pristine, self.broker.db)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(self.broker.db + suffix):
                os.unlink(self.broker.db + suffix)
        self.broker.start()

    def test_journal_has_heads(self):
        heads = wait_for(lambda: self.sb.journal(f"MESSAGE_ID={AUDIT_HEAD}"), what="audit heads in the journal")
        self.assertEqual(len(heads[-1]["JIT_AUDIT_HASH"]), 64)
        self.assertGreater(int(heads[-1]["JIT_AUDIT_SEQ"]), 0)


if __name__ == "__main__":
    jittest.main()
