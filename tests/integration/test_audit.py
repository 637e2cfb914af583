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
        reply = self.broker.call(dict({"version": 1, "op": "audit", "limit": 10000}, **filters))
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
        last = self.last_seq()
        self.broker.stop()  # its head, with the stop record, is now in the journal
        pristine = self.broker.db + ".pristine"
        shutil.copy(self.broker.db, pristine)
        cases = {
            "edited": ("UPDATE audit SET details = replace(details, 'audit me', 'nothing to see') "
                       "WHERE seq = (SELECT MIN(seq) FROM audit WHERE details LIKE '%audit me%')", None),
            "deleted": ("DELETE FROM audit WHERE seq = 5", 5),
            "truncated": (f"DELETE FROM audit WHERE seq > {last - 3}", last - 2),
            "reordered": ("UPDATE audit SET seq = CASE seq WHEN 7 THEN -8 WHEN 8 THEN -7 END WHERE seq IN (7, 8);"
                          "UPDATE audit SET seq = -seq WHERE seq < 0", 7),
        }
        for fault, (sql, seq) in cases.items():
            with self.subTest(fault=fault):
                shutil.copy(pristine, self.broker.db)
                for suffix in ("-wal", "-shm"):
                    if os.path.exists(self.broker.db + suffix):
                        os.unlink(self.broker.db + suffix)
                db = sqlite3.connect(self.broker.db)
                if fault == "edited":
                    seq = db.execute("SELECT MIN(seq) FROM audit WHERE details LIKE '%audit me%'").fetchone()[0]
                db.execute("DROP TRIGGER audit_no_update")
                db.execute("DROP TRIGGER audit_no_delete")
                db.executescript(sql)
                db.commit()
                db.close()
                p = self.verify()
                self.assertExit(p, 1)
                result = json.loads(p.stdout)
                self.assertEqual(result["intact"], False)
                self.assertEqual(result["fault"], fault, result["message"])
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
