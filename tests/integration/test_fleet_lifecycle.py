#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A fleet request's time and its withdrawal (docs/fleet.md, "A fleet request's time"), on a
real PostgreSQL with the three hosts of test_fleet_requests.py; host c files with
pending_ttl = "4s". A request filed on c and not answered in time shows as timed_out, cannot
be approved, and c marks it timed_out in the store; an approval written into the store after
its time, while c is down, is not granted by a (its own clock decides). The requester
withdraws a request on c (not on a: the error names c; not another user); it shows as
withdrawn and no host grants it. Host a also has the free-form labels role=db and rack=r7
(profile.labels): environment=staging,role=db picks a, not c."""

import datetime
import json
import time

import jittest
import pgserver
from jittest import wait_for
from test_fleet_requests import FleetHostsTest, namespaced

TTL = 4


class FleetLifecycleTest(FleetHostsTest):
    PENDING_TTL = {"c": f"{TTL}s"}
    LABELS = {"a": {"role": "db", "rack": "r7"}}

    def file_on_c(self):
        p = self.on("c", "jit-alice").jitctl("request", "--hosts", "a", "--reason",
                                               "fix the replica", "--for", "1h", json_out=True)
        self.assertExit(p, 0)
        self.assertEqual(p.json["state"], "pending")
        self.addCleanup(lambda: self.on("b", "root").jitctl("revoke", p.json["id"]))
        return p.json

    def stored_state(self, fid):
        return self.pg.query(self.admin, f"SELECT state FROM jit_fleet.requests WHERE id = {fid[2:]}")[0][0]

    def approve_in_store(self, fid):
        """An approval written straight into the store (as the administrator), whatever the
        request's state: what a host decides with it is the host's own check."""
        self.pg.psql(self.admin, "INSERT INTO jit_fleet.approvals (request_id, origin_host, approver, "
                                 f"verdict) VALUES ({fid[2:]}, 'b', 'jit-bob', 'approve')")

    def polls_of_a(self, n):
        polls = []
        wait_for(lambda: polls.append(self.fleet("a")["last_poll"]) or len(set(polls)) >= n,
                 timeout=15, what=f"{n - 1} polls of a")

    def test_1_times_out(self):
        filed_at = time.monotonic()
        req = self.file_on_c()
        fid = req["id"]
        self.assertIsNotNone(req["expires_at"])
        self.assertEqual(self.on("b", "root").ok("show", fid)["state"], "pending")
        wait_for(lambda: self.on("b", "root").ok("show", fid)["state"] == "timed_out",
                 timeout=TTL + 3, what="timed_out on b")
        self.assertGreaterEqual(time.monotonic() - filed_at, TTL - 1.5)
        # Too late to approve, and no longer listed for approval.
        p = self.on("b", "jit-bob").jitctl("approve", fid)
        self.assertEqual((p.returncode, p.stderr.strip()),
                         (3, f"jitctl: {fid} is not pending, or is your own (nobody approves or "
                             "denies their own request)"))
        self.assertNotIn(fid, [r["id"] for r in self.on("b", "jit-bob").ok("list", "--fleet")["requests"]])
        # The origin host marks it in the store.
        wait_for(lambda: self.stored_state(fid) == "timed_out", timeout=5,
                 what="c to mark it timed_out")
        self.assertIn("(filed on c, timed_out)", self.on("a", "jit-alice").jitctl("show", fid).stdout)
        self.assertFalse(self.allowed("a"))

    def test_2_target_refuses_by_its_own_clock_with_the_origin_down(self):
        fid = self.file_on_c()["id"]
        c = self.hosts["c"]
        c.stop()
        try:
            wait_for(lambda: self.on("b", "root").ok("show", fid)["state"] == "timed_out",
                     timeout=TTL + 3, what="the time to pass")
            self.assertEqual(self.stored_state(fid), "pending")  # c is down: not marked
            self.approve_in_store(fid)
            wait_for(lambda: f"request {fid[2:]}: its time to be answered is over, not granted here"
                     in self.log_of("a"), timeout=6, what="a to refuse it")
            self.assertFalse(self.allowed("a"))
        finally:
            c.start(wrap=namespaced("c"))
        self.await_state("c", "connected")
        wait_for(lambda: self.stored_state(fid) == "timed_out", timeout=6,
                 what="c to mark it timed_out once back")
        self.assertFalse(self.allowed("a"))

    def test_3_withdrawn_by_its_requester_on_its_origin_host(self):
        fid = self.file_on_c()["id"]
        # Only the origin host changes its state: elsewhere the error names it.
        p = self.on("a", "jit-alice").jitctl("cancel", fid)
        self.assertEqual((p.returncode, p.stderr.strip()),
                         (3, f"jitctl: {fid} was filed on host c: only there can it be withdrawn "
                             f"(jitctl cancel {fid} on c)"))
        p = self.on("c", "jit-bob").jitctl("cancel", fid)
        self.assertEqual((p.returncode, p.stderr.strip()),
                         (3, f"jitctl: only its requester withdraws fleet request {fid}"))
        self.assertEqual(self.stored_state(fid), "pending")
        p = self.on("c", "jit-alice").jitctl("cancel", fid)
        self.assertExit(p, 0)
        self.assertIn(f"Fleet request {fid} withdrawn.", p.stdout)
        self.assertEqual(self.stored_state(fid), "withdrawn")
        self.assertEqual(self.on("b", "root").ok("show", fid)["state"], "withdrawn")
        # c's fleet audit chain records a withdrawal, by its requester.
        withdrawal = lambda: self.pg.query(
            self.admin, "SELECT kind, data->>'state', actor FROM jit_fleet.audit WHERE "
            f"origin_host = 'c' AND request_id = {fid[2:]} AND kind <> 'requested' ORDER BY seq")
        wait_for(lambda: withdrawal() != [], timeout=10, what="c's record uploaded")
        self.assertEqual(withdrawal(), [["withdrawal", "withdrawn", "jit-alice"]])
        p = self.on("c", "jit-alice").jitctl("cancel", fid)
        self.assertEqual((p.returncode, p.stderr.strip()),
                         (1, f"jitctl: {fid} is not pending: it cannot be withdrawn"))
        # Approved in the store anyway: no host grants a withdrawn request.
        self.approve_in_store(fid)
        self.polls_of_a(3)
        self.assertFalse(self.allowed("a"))
        self.assertIsNone(self.local_grant("a", fid))
        # Its state never goes back, whoever tries.
        p = self.pg.psql(self.admin, f"UPDATE jit_fleet.requests SET state = 'pending' WHERE id = {fid[2:]}",
                         check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("is withdrawn already", p.stderr)

    def test_4_free_form_label_selects(self):
        # a has profile.labels role = "db" (and is registered with it); c is staging too,
        # without it: environment=staging,role=db picks a only.
        p = jittest.run([jittest.JITCTL, "--json", "policy", "check", self.hosts["a"].policy])
        self.assertEqual(json.loads(p.stdout)["fleet"]["labels"],
                         {"owner": "payments", "environment": "staging", "role": "db", "rack": "r7"})
        fid = self.file("environment=staging,role=db")
        self.on("b", "jit-bob").ok("approve", fid)
        wait_for(lambda: self.allowed("a"), timeout=5, what="sudo on a within 5 s")
        self.polls_of_a(2)
        self.assertFalse(self.allowed("c"))
        self.assertFalse(self.allowed("b"))
        self.on("b", "jit-bob").ok("revoke", fid)
        wait_for(lambda: not self.allowed("a"), timeout=5, what="the revocation on a")

    def test_5_approval_time_from_a_skewed_clock_does_not_lengthen_a_grant(self):
        # An approval whose time is a day ahead (written past the store's own stamp, as the
        # superuser): a counts its grant's hour from its own now at the latest.
        fid = self.file("a", host="b")
        su = self.pg.uri("jit", pgserver.PG_USER, pgserver.SUPERUSER_PASSWORD)
        self.pg.psql(su, "ALTER TABLE jit_fleet.approvals DISABLE TRIGGER stamp_created_at; "
                         "INSERT INTO jit_fleet.approvals (request_id, origin_host, approver, "
                         f"verdict, created_at) VALUES ({fid[2:]}, 'b', 'jit-bob', 'approve', "
                         "now() + interval '1 day'); "
                         "ALTER TABLE jit_fleet.approvals ENABLE TRIGGER stamp_created_at")
        wait_for(lambda: self.allowed("a"), timeout=5, what="the grant on a")
        grant = self.local_grant("a", fid)
        expires = datetime.datetime.fromisoformat(grant["expires_at"].replace("Z", "+00:00"))
        left = (expires - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
        self.assertLessEqual(left, 3600)
        self.assertGreater(left, 3600 - 30)

    def test_6_request_without_expiry_times_out_by_the_targets_pending_ttl(self):
        # A row filed before version 5 has no expires_at: a (pending_ttl 1 h) takes its
        # filing time plus that, and a request filed two hours ago is not granted.
        fid = self.file("a", host="b")
        self.pg.psql(self.admin, "UPDATE jit_fleet.requests SET expires_at = NULL, created_at = "
                                 f"now() - interval '2 hours' WHERE id = {fid[2:]}")
        self.approve_in_store(fid)
        wait_for(lambda: f"request {fid[2:]}: its time to be answered is over, not granted here"
                 in self.log_of("a"), timeout=6, what="a to refuse it")
        self.assertFalse(self.allowed("a"))


if __name__ == "__main__":
    jittest.main()
