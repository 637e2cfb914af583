#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The fleet's audit records (docs/fleet.md "The fleet's audit records") on a real
PostgreSQL, with the three hosts of test_fleet_requests.py.

A request filed on a, approved on b, granted and used on a and revoked on b leaves its
records in jit_fleet.audit under the host where each happened, and `jitctl audit --verify
--fleet` finds every chain intact; `show` lists the hosts the request covers and what each
recorded. With PostgreSQL stopped, a's grant is used and revoked locally; the records wait
in a's database and are uploaded once, in order, when the store is back. Records a broker
could not upload before it was stopped are uploaded after its restart; a record sent again
is taken as the same, one the store holds with another hash is logged once. With 10,000
records waiting, a host takes no new fleet operation and grants no new fleet request, and
drops nothing. A record
changed in the store (its trigger disabled by the superuser) makes the verification fail,
naming the host and the seq. Real sudo on a when the sandbox allows it (the first use is
its session)."""

import json

import jittest
import pgserver
from jittest import JITCTL, run, wait_for
from test_fleet_requests import FleetHostsTest, namespaced

EXIT_OK, EXIT_FAILURE = 0, 1


class FleetUploadTest(FleetHostsTest):
    def store(self, fid):
        """The store's records of fleet request fid: [(origin_host, kind)] in chain order."""
        rows = self.pg.query(self.admin, "SELECT origin_host, kind FROM jit_fleet.audit WHERE "
                             f"request_id = {fid[2:]} ORDER BY origin_host, seq")
        return [tuple(r) for r in rows]

    def sqlite(self, host, sql):
        return run(["sqlite3", "-cmd", ".timeout 5000", self.hosts[host].db, sql]).stdout.strip()

    def waiting(self, host):
        return int(self.sqlite(host, "SELECT count(*) FROM fleet_audit WHERE uploaded = 0"))

    def verify(self, *extra):
        return run([JITCTL, "audit", "--verify", "--fleet", "--database", self.admin, *extra],
                   check=False)

    def use(self, host="a"):
        """Uses the grant on a: real sudo (a session) when the sandbox allows it."""
        self.assertTrue(self.allowed(host))
        return not jittest.SANITIZED

    def granted_on_a(self):
        fid = self.file("a")
        self.on("b", "jit-bob").ok("approve", fid)
        wait_for(lambda: self.allowed("a"), timeout=5, what="sudo on a")
        return fid

    def test_1_records_show_and_verify(self):
        fid = self.granted_on_a()
        used = self.use()
        self.on("b", "jit-bob").ok("revoke", fid, "--reason", "done")
        wait_for(lambda: not self.allowed("a"), timeout=5, what="the revocation on a")
        want = [("a", "requested"), ("a", "granted")] + ([("a", "used")] if used else []) + \
            [("a", "ended"), ("b", "approval"), ("b", "revocation")]
        wait_for(lambda: self.store(fid) == want, timeout=10,
                 what=f"the records of {fid} in the store")
        # The data a's end carries: the local state and why.
        end = self.pg.query(self.admin, "SELECT data->>'state', data->>'end_reason', actor FROM "
                            f"jit_fleet.audit WHERE request_id = {fid[2:]} AND kind = 'ended'")
        self.assertEqual(end[0][0], "revoked")
        self.assertIn(f"revoked in the fleet by jit-bob (fleet request {fid[2:]})", end[0][1])
        for host in self.hosts:
            wait_for(lambda: self.waiting(host) == 0, what=f"host {host}'s records uploaded")

        p = self.verify()
        self.assertEqual(p.returncode, EXIT_OK, p.stdout + p.stderr)
        lines = p.stdout.splitlines()
        # c has recorded nothing yet: no chain.
        self.assertRegex(p.stdout, r"^host a: [0-9]+ records?, last seq [0-9]+, intact\n"
                                   r"host b: [0-9]+ records?, last seq [0-9]+, intact\n")
        self.assertRegex(lines[-1], r"^fleet audit intact: 2 hosts, [0-9]+ records$")
        j = json.loads(self.verify("--json").stdout)
        self.assertTrue(j["intact"])
        self.assertEqual(j["scope"], "all")
        self.assertEqual([h["host"] for h in j["hosts"]], ["a", "b"])
        self.assertTrue(all(h["intact"] and h["seq"] is None for h in j["hosts"]))

        # With a host's credentials (its policy's fleet section): its own chain only.
        p = run([JITCTL, "audit", "--verify", "--fleet", "--policy", self.broker.policy, "--json"],
                check=False)
        self.assertEqual(p.returncode, EXIT_OK, p.stderr)
        j = json.loads(p.stdout)
        self.assertEqual((j["scope"], [h["host"] for h in j["hosts"]]), ("own", ["a"]))
        self.assertIn("only the chains its role may read are verified", p.stderr)
        self.assertEqual(run([JITCTL, "audit", "--fleet"], check=False).returncode, 2)
        self.assertEqual(run([JITCTL, "audit", "--verify", "--fleet", "--database", self.admin,
                              "--db", "/x"], check=False).returncode, 2)

        # The view of covered hosts shows a host's role only requests it may read.
        def covered_as(host):
            uri = self.pg.uri("jit", f"jit_host_{host}", passfile=self.creds[host])
            return self.pg.query(uri, "SELECT host FROM jit_fleet.request_hosts WHERE "
                                 f"request_id = {fid[2:]}")
        self.assertEqual(covered_as("a"), [["a"]])
        self.assertEqual(covered_as("b"), [["a"]])  # a review host
        self.assertEqual(covered_as("c"), [])

        # show: the hosts the request covers (a, by name) and what a recorded.
        shown = self.on("b", "jit-bob").ok("show", fid)
        self.assertEqual([h["host"] for h in shown["covered_hosts"]], ["a"])
        self.assertEqual(shown["covered_hosts_total"], 1)
        a = shown["covered_hosts"][0]
        self.assertIsNotNone(a["granted_at"])
        self.assertIsNotNone(a["ended_at"])
        self.assertEqual(a["end_state"], "revoked")
        if used:
            self.assertIsNotNone(a["first_used_at"])
        text = self.on("b", "jit-bob").jitctl("show", fid).stdout
        self.assertIn("  covers 1 host\n", text)
        self.assertRegex(text, r"(?m)^  a +[0-9-]+T[0-9:]+Z  .* \(revoked\)$")

    def test_2_staging_covers_a_and_c(self):
        fid = self.file("environment=staging")
        self.on("c", "jit-bob").ok("approve", fid)
        wait_for(lambda: self.allowed("a") and self.allowed("c"), timeout=5, what="a and c")
        wait_for(lambda: ("a", "granted") in self.store(fid) and ("c", "granted") in self.store(fid),
                 timeout=10, what="the grants in the store")
        # a, its origin and no review host, sees only its own row; b, a review host, both.
        shown = self.on("a", "jit-alice").ok("show", fid)
        self.assertEqual([h["host"] for h in shown["covered_hosts"]], ["a"])
        self.assertEqual(shown["covered_hosts_total"], 1)
        shown = self.on("b", "jit-bob").ok("show", fid)
        hosts = {h["host"]: h for h in shown["covered_hosts"]}
        self.assertEqual(sorted(hosts), ["a", "c"])
        self.assertTrue(all(h["granted_at"] and not h["ended_at"] for h in hosts.values()))

    def test_3_outage_records_wait_then_upload_once(self):
        fid = self.granted_on_a()
        wait_for(lambda: ("a", "granted") in self.store(fid), timeout=10, what="the grant uploaded")
        local = self.sqlite("a", f"SELECT local_id FROM fleet_grants WHERE fleet_id = {fid[2:]}")
        before = int(self.pg.query(self.admin, "SELECT max(seq) FROM jit_fleet.audit WHERE "
                                   "origin_host = 'a'")[0][0])
        self.pg.stop()
        try:
            self.await_state("a", "unreachable", timeout=10)
            used = self.use()
            self.on("a", "root").ok("revoke", local, "--reason", "ended while the store was away")
            self.assertFalse(self.allowed("a"))
            expected = 2 if used else 1
            wait_for(lambda: self.waiting("a") == expected, what="the records kept on a")
            # A restart keeps them.
            self.broker.stop()
            self.broker.start(wrap=namespaced("a"))
            self.assertEqual(self.waiting("a"), expected)
        finally:
            self.pg.start()
        self.await_state("a", "connected")
        wait_for(lambda: self.waiting("a") == 0, timeout=15, what="a's records uploaded")
        rows = self.pg.query(self.admin, "SELECT seq, kind FROM jit_fleet.audit WHERE "
                             f"origin_host = 'a' AND seq > {before} ORDER BY seq")
        kinds = [k for _, k in rows]
        self.assertEqual(kinds, (["used"] if used else []) + ["ended"])
        self.assertEqual([int(s) for s, _ in rows], list(range(before + 1, before + 1 + len(rows))))
        self.assertEqual(self.verify().returncode, EXIT_OK)

    def test_4_stopped_broker_uploads_after_restart(self):
        # The store refuses a's records for a while: they wait, and a broker stopped then
        # uploads them when it starts again.
        self.pg.psql(self.admin, "REVOKE INSERT ON jit_fleet.audit FROM jit_fleet_host")
        regrant = lambda: self.pg.psql(self.admin, "GRANT INSERT ON jit_fleet.audit TO jit_fleet_host")
        self.addCleanup(regrant)
        fid = self.granted_on_a()
        wait_for(lambda: self.waiting("a") >= 2, what="the filing and the grant waiting on a")
        wait_for(lambda: "the upload of this host's fleet audit records failed: the store "
                         "refused it" in self.log_of("a"), what="the refusal logged")
        self.assertEqual(self.store(fid), [])
        self.broker.stop()
        regrant()
        self.broker.start(wrap=namespaced("a"))
        self.await_state("a", "connected")
        wait_for(lambda: self.waiting("a") == 0, timeout=10, what="a's records uploaded")
        # b, still running, tries again 10 s after its refusal.
        wait_for(lambda: self.waiting("b") == 0, timeout=15, what="b's records uploaded")
        self.assertEqual(self.store(fid), [("a", "requested"), ("a", "granted")] +
                         ([("a", "used")] if not jittest.SANITIZED else []) + [("b", "approval")])
        self.assertEqual(self.verify().returncode, EXIT_OK)

    def test_5_resent_record_same_or_other_hash(self):
        fid = self.granted_on_a()
        last = ("a", "used") if self.use() else ("a", "granted")
        wait_for(lambda: last in self.store(fid), timeout=10, what="a's last record in the store")
        wait_for(lambda: self.waiting("a") == 0, timeout=10, what="a's records uploaded")
        seq, hash_ = self.sqlite("a", "SELECT seq, hash FROM fleet_audit ORDER BY seq DESC "
                                 "LIMIT 1").split("|")
        # Sent again with the same hash: taken as uploaded.
        self.sqlite("a", f"UPDATE fleet_audit SET uploaded = 0 WHERE seq = {seq}")
        wait_for(lambda: self.waiting("a") == 0, timeout=10, what="the record taken again")
        # With another hash: refused, logged once, kept waiting.
        self.sqlite("a", f"UPDATE fleet_audit SET uploaded = 0, hash = '{'f' * 64}' WHERE seq = {seq}")
        message = f"the store holds record {seq} of a with another hash"
        try:
            wait_for(lambda: message in self.log_of("a"), timeout=10, what="the mismatch logged")
        except AssertionError:
            print(self.log_of("a")[-5000:])
            print("OUTBOX", self.sqlite("a", "SELECT host, seq, kind, uploaded FROM fleet_audit"))
            print("STORE", self.pg.query(self.admin, "SELECT origin_host, seq, kind FROM jit_fleet.audit"))
            raise
        polls = []
        wait_for(lambda: polls.append(self.fleet("a")["last_poll"]) or len(set(polls)) >= 3,
                 timeout=15, what="two more polls of a")
        self.assertEqual(self.log_of("a").count(message), 1)
        self.assertEqual(self.waiting("a"), 1)
        self.sqlite("a", f"UPDATE fleet_audit SET hash = '{hash_}' WHERE seq = {seq}")
        wait_for(lambda: self.waiting("a") == 0, timeout=10, what="the record taken at last")

    def test_6_bound_refuses_new_operations_drops_nothing(self):
        # 10,000 records waiting on a (the store refuses them meanwhile): a takes no new
        # fleet operation and grants no new fleet request; nothing is dropped. Once they
        # are gone (here: taken out by hand), both work again.
        self.pg.psql(self.admin, "REVOKE INSERT ON jit_fleet.audit FROM jit_fleet_host")
        regrant = lambda: self.pg.psql(self.admin, "GRANT INSERT ON jit_fleet.audit TO jit_fleet_host")
        self.addCleanup(regrant)
        first = int(self.sqlite("a", "SELECT coalesce(max(seq), 0) + 1 FROM fleet_audit"))
        self.sqlite("a", "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE "
                    "i < 9999) INSERT INTO fleet_audit (host, seq, at, kind, request_id, actor, "
                    f"data, prev_hash, hash) SELECT 'a', {first} + i, 1, 'used', 1, 'x', '{{}}', "
                    "printf('%064d', i), printf('%064d', i + 1) FROM n")
        self.assertEqual(self.waiting("a"), 10000)
        p = self.on("a", "jit-alice").jitctl("request", "--hosts", "a", "--reason", "full")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("10000 fleet audit records of this host wait for the upload to the fleet "
                      "store: no new fleet operation here until it has them", p.stderr)
        fid = self.file("a", host="b")
        self.on("b", "jit-bob").ok("approve", fid)
        wait_for(lambda: f"request {fid[2:]} not granted here yet: too many fleet audit records "
                         "wait for the upload" in self.log_of("a"), what="the grant put off")
        self.assertFalse(self.allowed("a"))
        self.assertEqual(self.waiting("a"), 10000)
        self.sqlite("a", f"DELETE FROM fleet_audit WHERE seq >= {first}")
        regrant()
        wait_for(lambda: self.allowed("a"), timeout=5, what="the grant made once below the bound")
        wait_for(lambda: ("a", "granted") in self.store(fid), timeout=15, what="its record uploaded")
        self.assertEqual(self.verify().returncode, EXIT_OK)

    def test_7_commit_refused_after_the_rows_keeps_the_records(self):
        # The store sends the upload's rows, then refuses its commit (a deferred trigger):
        # nothing is in the store, so nothing is marked uploaded here.
        su = self.pg.uri("jit", pgserver.PG_USER, pgserver.SUPERUSER_PASSWORD)
        self.pg.psql(su, "CREATE FUNCTION jit_fleet.refuse_at_commit() RETURNS trigger "
                         "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$; "
                         "CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON "
                         "jit_fleet.audit DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                         "WHEN (NEW.origin_host = 'a') EXECUTE FUNCTION jit_fleet.refuse_at_commit()")
        drop = lambda: self.pg.psql(su, "DROP TRIGGER IF EXISTS refuse_at_commit ON jit_fleet.audit; "
                                        "DROP FUNCTION IF EXISTS jit_fleet.refuse_at_commit()")
        self.addCleanup(drop)
        fid = self.file("a")
        wait_for(lambda: "refused at commit" in self.log_of("a"), timeout=10,
                 what="the refused commit logged")
        filed = f"SELECT uploaded FROM fleet_audit WHERE kind = 'requested' AND request_id = {fid[2:]}"
        self.assertEqual(self.sqlite("a", filed), "0")
        self.assertEqual(self.store(fid), [])
        drop()
        wait_for(lambda: self.waiting("a") == 0, timeout=15, what="a's record uploaded")
        self.assertEqual(self.store(fid), [("a", "requested")])
        self.assertEqual(self.verify().returncode, EXIT_OK)

    def test_9_tampered_record_fails_verification(self):
        fid = self.file("a")
        self.on("b", "jit-bob").ok("approve", fid)
        wait_for(lambda: ("b", "approval") in self.store(fid), timeout=10, what="b's approval record")
        seq = self.pg.query(self.admin, "SELECT seq FROM jit_fleet.audit WHERE origin_host = 'b' "
                            f"AND request_id = {fid[2:]} AND kind = 'approval'")[0][0]
        self.assertEqual(self.verify().returncode, EXIT_OK)
        self.pg.psql(self.pg.uri("jit", pgserver.PG_USER, pgserver.SUPERUSER_PASSWORD),
                     "ALTER TABLE jit_fleet.audit DISABLE TRIGGER audit_chain; "
                     "UPDATE jit_fleet.audit SET data = '{\"verdict\":\"deny\"}' "
                     f"WHERE origin_host = 'b' AND seq = {seq}; "
                     "ALTER TABLE jit_fleet.audit ENABLE TRIGGER audit_chain")
        p = self.verify()
        self.assertEqual(p.returncode, EXIT_FAILURE, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"(?m)^host b: [0-9]+ records?, last seq [0-9]+, NOT intact at "
                                   rf"seq {seq}: its hash does not match its content \(the record "
                                   r"was changed\)$")
        self.assertRegex(p.stdout, r"(?m)^host a: .*, intact$")
        self.assertRegex(p.stdout, r"fleet audit NOT intact: 1 of [23] hosts broken")
        j = json.loads(self.verify("--json").stdout)
        self.assertFalse(j["intact"])
        b = [h for h in j["hosts"] if h["host"] == "b"][0]
        self.assertEqual((b["intact"], b["seq"]), (False, int(seq)))

if __name__ == "__main__":
    jittest.main()
