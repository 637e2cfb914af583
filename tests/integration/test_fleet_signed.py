#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Signed fleet approvals (docs/signed-approvals.md, "The fleet") on a real PostgreSQL with
the three hosts of test_fleet_requests.py (a and c in environment=staging, b in production),
each with its own allowed_signers file. The rules say nothing of `signed`, which for fleet
requests means signatures are required, except jit-frank's (signed = false).

jitctl approve f:ID signs through the approver's ssh-agent and opens the target host. Each
host verifies every approval before it counts it, and refuses, saying why once: an approval
row written straight into PostgreSQL without a signature (by b's role, or by the
administrator); the signature of another request copied into a row; a statement signed for
host a alone, on c; a key host a's allowed_signers does not list (c lists it: c opens, a
does not); one key signing for two approvers (counted once: 2 of n needs two keys). Prints
the time from the approval's commit to the grant being active on a, signed and unsigned."""

import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time

import jittest
from jittest import JITCTL, run, wait_for
from test_fleet_requests import GRANTED_ID, FleetHostsTest, HostBroker, policy

NAMESPACE = "jit-approval"
APPROVERS = '["jit-bob", "jit-carol", "jit-dave"]'
RULES = """rules = (
  { name = "fleet-sudo"; services = ["sudo"]; requesters = ["jit-alice"]; approvers = %(a)s;
    approvals = 1; max_duration = "2h"; hosts = "%(h)s"; },
  { name = "fleet-two"; services = ["sudo"]; requesters = ["jit-erin"]; approvers = %(a)s;
    approvals = 2; max_duration = "2h"; hosts = "%(h)s"; },
  { name = "fleet-plain"; services = ["sudo"]; requesters = ["jit-frank"]; approvers = %(a)s;
    approvals = 1; max_duration = "2h"; hosts = "%(h)s"; signed = false; }
);
"""
# Each approver's keys (all in their agent), and the hosts whose allowed_signers list each,
# for whom. "team" is one key in both bob's and carol's agents, listed for both.
KEYS = {
    "jit-bob": {"ed25519": ("jit-bob", "abc"), "team": ("jit-bob,jit-carol", "abc")},
    "jit-carol": {"ed25519": ("jit-carol", "bc"), "team": None},
    "jit-dave": {"ed25519": ("jit-dave", "abc")},
}


class FleetSigned(FleetHostsTest):
    USERS = {**FleetHostsTest.USERS, "jit-dave": ["jit-test"], "jit-erin": ["jit-test"],
             "jit-frank": ["jit-test"]}
    SIGNED = None  # unsaid: required for fleet requests

    @classmethod
    def host_policy(cls, host):
        text = policy(cls.pg.socket_dir, host, cls.creds[host], signed=None)
        start, end = text.index("rules = ("), text.index("\n);\n") + 4
        hosts = "environment=production" if host == "b" else "environment=staging"
        signers = os.path.join(cls.keydir, f"allowed_signers.{host}")
        return (text[:start] + RULES % {"a": APPROVERS, "h": hosts} +
                f'settings = {{ allowed_signers = "{signers}"; }};\n' + text[end:])

    @classmethod
    def setUpClass(cls):
        cls.agents = []
        # The policies name the allowed_signers files; they are read when an approval is
        # verified, so they are written once the users exist.
        cls.keydir = tempfile.mkdtemp(prefix="jit-fleet-signed-")
        os.chmod(cls.keydir, 0o755)
        super().setUpClass()
        try:
            cls._make_keys()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for agent in getattr(cls, "agents", []):
            agent.terminate()
            agent.wait()
        super().tearDownClass()
        shutil.rmtree(cls.keydir, ignore_errors=True)

    @classmethod
    def as_user(cls, name, argv, **kw):
        env = {"PATH": "/usr/bin:/bin", "HOME": os.path.join(cls.keydir, name),
               "SSH_AUTH_SOCK": cls.sock(name)}
        return run(["setpriv", f"--reuid={name}", "--regid=users", "--init-groups", "--"] + argv,
                   check=False, env=env, timeout=30, **kw)

    @classmethod
    def sock(cls, name):
        return os.path.join(cls.keydir, name, "agent.sock")

    @classmethod
    def key(cls, name, kind):
        return os.path.join(cls.keydir, name, kind)

    @classmethod
    def _make_keys(cls):
        lines = {h: [] for h in "abc"}
        team = None
        for name, keys in KEYS.items():
            d = os.path.join(cls.keydir, name)
            os.makedirs(d, mode=0o700)
            run(["chown", f"{name}:users", d])
            agent = subprocess.Popen(["setpriv", f"--reuid={name}", "--regid=users", "--init-groups",
                                      "--", "ssh-agent", "-D", "-a", cls.sock(name)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cls.agents.append(agent)
            wait_for(lambda: os.path.exists(cls.sock(name)), what=f"{name}'s ssh-agent")
            for kind, listed in keys.items():
                path = cls.key(name, kind)
                if kind == "team" and team:
                    run(["cp", team, path])
                    run(["cp", team + ".pub", path + ".pub"])
                    run(["chown", f"{name}:users", path, path + ".pub"])
                else:
                    p = cls.as_user(name, ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                                           f"{name}-{kind}", "-f", path])
                    assert p.returncode == 0, p.stderr
                    team = team or (path if kind == "team" else None)
                p = cls.as_user(name, ["ssh-add", "-q", path])
                assert p.returncode == 0, p.stderr
                if listed:
                    principals, hosts = listed
                    with open(path + ".pub") as f:
                        pub = f.read().strip()
                    for h in hosts:
                        lines[h].append(f"{principals} {pub}")
        for h, entries in lines.items():
            path = os.path.join(cls.keydir, f"allowed_signers.{h}")
            with open(path, "w") as f:
                f.write("\n".join(entries) + "\n")
            os.chmod(path, 0o644)

    # --- helpers -------------------------------------------------------------------------

    def fingerprint(self, name, kind):
        return run(["ssh-keygen", "-lf", self.key(name, kind) + ".pub"]).stdout.split()[1]

    def approve(self, host, name, fid, *args):
        return self.as_user(name, [JITCTL, "--socket", self.hosts[host].socket, "approve", fid] +
                            list(args))

    def file_as(self, user, hosts, host="a"):
        p = self.on(host, user).jitctl("request", "--hosts", hosts, "--reason", "fix the replica",
                                        "--for", "1h", json_out=True)
        self.assertExit(p, 0)
        fid = p.json["id"]
        self.addCleanup(lambda: self.on(host, "root").jitctl("revoke", fid))
        return fid

    def granted(self, host, user):
        """The active local grant of user on host, or None."""
        for r in self.on(host, "root").ok("list", "--all"):
            if r["requester"] == user and r["state"] == "active":
                return r
        return None

    def polls_pass(self, host, n=3):
        polls = []
        wait_for(lambda: polls.append(self.fleet(host)["last_poll"]) or len(set(polls)) > n,
                 timeout=20, what=f"{n} polls of {host}")

    def statement(self, host, name, fid):
        reply = self.on(host, name).call({"version": 1, "op": "fleet-approval-statement",
                                          "id": int(fid[2:])})
        self.assertTrue(reply["ok"], reply)
        return reply["result"]["statement"]

    def sign(self, name, kind, text):
        return run(["ssh-keygen", "-Y", "sign", "-n", NAMESPACE, "-f", self.key(name, kind)],
                   input=text).stdout

    def insert_approval(self, uri, fid, origin, approver, statement=None, signature=None):
        def lit(v):
            return "NULL" if v is None else "'" + v.replace("'", "''") + "'"
        self.pg.psql(uri, "INSERT INTO jit_fleet.approvals (request_id, origin_host, approver, "
                          f"verdict, statement, signature) VALUES ({fid[2:]}, '{origin}', "
                          f"'{approver}', 'approve', {lit(statement)}, {lit(signature)})")

    def host_uri(self, host):
        return self.pg.uri("jit", f"jit_host_{host}", passfile=self.creds[host])

    @staticmethod
    def replace(text, key, value):
        lines = text.split("\n")
        for i, line in enumerate(lines):
            if line.startswith(key + " "):
                lines[i] = f"{key} {value}"
                return "\n".join(lines)
        raise AssertionError(f"no {key} line")

    # --- tests ---------------------------------------------------------------------------

    def test_1_signed_approval_on_b_opens_a(self):
        fid = self.file_as("jit-alice", "a")
        text = self.statement("b", "jit-bob", fid)
        fleet_id = self.pg.query(self.admin, "SELECT id FROM jit_fleet.fleet_identity")[0][0]
        self.assertIn(f"\nfleet {fleet_id}\nrequest {fid}\n", text)
        self.assertIn("\nhosts a\n", text)
        p = self.approve("b", "jit-bob", fid, "--key", self.key("jit-bob", "ed25519") + ".pub")
        self.assertEqual(p.returncode, 0, p.stderr)
        stored = self.pg.query(self.admin, "SELECT statement IS NOT NULL, signature LIKE "
                                           "'-----BEGIN SSH SIGNATURE-----%' FROM "
                                           f"jit_fleet.approvals WHERE request_id = {fid[2:]}")
        self.assertEqual(stored, [["t", "t"]])
        wait_for(lambda: self.granted("a", "jit-alice"), timeout=10, what="the grant on a")
        self.assertTrue(self.allowed("a"))
        fp = self.fingerprint("jit-bob", "ed25519")
        grant = self.granted("a", "jit-alice")
        shown = self.on("a", "root").ok("show", str(grant["id"]))
        self.assertEqual(shown["approvals"][0]["signer_fingerprint"], fp)
        self.assertIn(f"signed by key {fp}", self.on("a", "root").jitctl("show", str(grant["id"])).stdout)
        # The fleet-granted journal entry and audit record name the key.
        wait_for(lambda: [e for e in self.sb.journal(f"MESSAGE_ID={GRANTED_ID}")
                          if e.get("JIT_SIGNER_FINGERPRINT") == fp],
                 what="the fleet-granted entry with the key")
        p = self.on("a", "root").jitctl("audit", "--json", "--request", str(grant["id"]))
        self.assertExit(p, 0)
        records = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
        self.assertIn([fp], [r["details"].get("signers") for r in records
                             if r["event"] == "fleet-granted"], records)
        self.assertRegex(self.log_of("a"), f"fleet: request {fid[2:]}: jit-bob's signed approval "
                                           f"verified, key {re.escape(fp)} \\(\\d+ ms\\)")
        # A denial needs no signature (it only withholds): jitctl deny f:ID as ever.
        other = self.file_as("jit-alice", "c")
        self.assertEqual(self.on("b", "jit-bob").jitctl("deny", other, "--reason", "no").returncode, 0)

    def test_2_unsigned_rows_are_not_counted(self):
        fid = self.file_as("jit-alice", "a")
        # As b's own role (a host that approves without a signature), then as the
        # administrator, who may write anything.
        self.insert_approval(self.host_uri("b"), fid, "b", "jit-bob")
        self.insert_approval(self.admin, fid, "c", "jit-carol")
        self.polls_pass("a")
        self.assertIsNone(self.granted("a", "jit-alice"))
        self.assertFalse(self.allowed("a"))
        log = self.log_of("a")
        for who in ("jit-bob", "jit-carol"):
            line = (f"fleet: request {fid[2:]}: {who}'s approval is not signed, and rule "
                    "fleet-sudo requires signed approvals here: not counted")
            self.assertEqual(log.count(line), 1, log[-3000:])
        # The forged row under bob's name takes his place (one approval per approver and
        # request); dave's, signed through jitctl with his agent's first key, counts.
        p = self.as_user("jit-dave", [JITCTL, "--socket", self.hosts["b"].socket, "approve", fid])
        self.assertEqual(p.returncode, 0, p.stderr)
        wait_for(lambda: self.granted("a", "jit-alice"), timeout=10, what="the signed one counts")

    def test_3_replayed_signatures_are_refused(self):
        # bob's signature for one request, copied into an approval row of another.
        first = self.file_as("jit-alice", "a")
        text = self.statement("b", "jit-bob", first)
        sig = self.sign("jit-bob", "ed25519", text)
        staging = self.file_as("jit-alice", "environment=staging")
        self.insert_approval(self.admin, staging, "b", "jit-bob", text, sig)
        self.polls_pass("a")
        self.polls_pass("c")
        for host in ("a", "c"):
            self.assertIsNone(self.granted(host, "jit-alice"))
            self.assertEqual(self.log_of(host).count(
                f"fleet: request {staging[2:]}: jit-bob's signed approval"), 1)
            self.assertIn("the signed statement does not match the request: its request differs",
                          self.log_of(host))
        # A statement of the staging request signed for host a alone: a counts it, c not.
        narrow = self.replace(self.statement("b", "jit-dave", staging), "hosts", "a")
        self.insert_approval(self.admin, staging, "b", "jit-dave", narrow,
                             self.sign("jit-dave", "ed25519", narrow))
        wait_for(lambda: self.granted("a", "jit-alice"), timeout=10, what="a's grant")
        self.polls_pass("c")
        self.assertIsNone(self.granted("c", "jit-alice"))
        self.assertIn(f"fleet: request {staging[2:]}: jit-dave's signed approval (approval ",
                      self.log_of("c"))
        self.assertIn("is refused here: it is for hosts a, not this host (c)", self.log_of("c"))
        self.assertFalse(self.allowed("c"))

    def test_4_key_not_in_a_allowed_signers(self):
        fid = self.file_as("jit-alice", "environment=staging")
        p = self.approve("b", "jit-carol", fid, "--key", self.key("jit-carol", "ed25519") + ".pub")
        self.assertEqual(p.returncode, 0, p.stderr)
        wait_for(lambda: self.granted("c", "jit-alice"), timeout=10, what="c's grant")
        self.polls_pass("a")
        self.assertIsNone(self.granted("a", "jit-alice"))
        fp = self.fingerprint("jit-carol", "ed25519")
        signers = os.path.join(self.keydir, "allowed_signers.a")
        self.assertIn(f"is refused here: the signature is refused: key {fp} (ssh-ed25519) is not "
                      f"in {signers}", self.log_of("a"))

    def test_5_two_of_n_counts_distinct_keys(self):
        fid = self.file_as("jit-erin", "a")
        for who in ("jit-bob", "jit-carol"):
            p = self.approve("b", who, fid, "--key", self.key(who, "team") + ".pub")
            self.assertEqual(p.returncode, 0, p.stderr)
        self.polls_pass("a")
        self.assertIsNone(self.granted("a", "jit-erin"))
        fp = self.fingerprint("jit-bob", "team")
        self.assertIn(f"fleet: request {fid[2:]}: jit-carol's approval is signed by key {fp}, "
                      "which signed jit-bob's already: a key counts once", self.log_of("a"))
        p = self.approve("b", "jit-dave", fid)
        self.assertEqual(p.returncode, 0, p.stderr)
        wait_for(lambda: self.granted("a", "jit-erin"), timeout=10, what="the grant with two keys")
        grant = self.granted("a", "jit-erin")
        shown = self.on("a", "root").ok("show", str(grant["id"]))
        self.assertEqual(sorted(a["signer_fingerprint"] for a in shown["approvals"]),
                         sorted([fp, self.fingerprint("jit-dave", "ed25519")]))

    def test_6_time_verification_adds(self):
        """Approval committed -> grant active on a: signed (rule fleet-sudo) and unsigned
        (fleet-plain), three runs each; printed, and bounded loosely."""
        figures, verify_ms = {}, []
        for user, signed in (("jit-alice", True), ("jit-frank", False)):
            runs = []
            for _ in range(3):
                fid = self.file_as(user, "a")
                p = self.approve("b", "jit-bob", fid, *(["--key", self.key("jit-bob", "ed25519") +
                                                          ".pub"] if signed else []))
                start = time.monotonic()
                self.assertEqual(p.returncode, 0, p.stderr)
                wait_for(lambda: self.granted("a", user), timeout=10, what="the grant")
                runs.append(time.monotonic() - start)
                if signed:
                    verify_ms.append(int(re.search(
                        f"request {fid[2:]}: jit-bob's signed approval verified, key \\S+ "
                        "\\((\\d+) ms\\)", self.log_of("a")).group(1)))
                self.on("a", "root").jitctl("revoke", fid)
                wait_for(lambda: not self.granted("a", user), timeout=10, what="the revocation")
            figures[signed] = runs
        print("approval -> grant on a, signed: " +
              ", ".join(f"{t * 1000:.0f} ms" for t in figures[True]) +
              f" (median {statistics.median(figures[True]) * 1000:.0f} ms); unsigned: " +
              ", ".join(f"{t * 1000:.0f} ms" for t in figures[False]) +
              f" (median {statistics.median(figures[False]) * 1000:.0f} ms); the verification "
              "itself on a: " + ", ".join(f"{t} ms" for t in verify_ms))
        self.assertLess(max(figures[True]), 10)

    def test_7_fleet_grant_carried_to_a_host_without_store(self):
        """jitctl grant export of a's fleet grant, imported on d (no fleet section, labels
        environment=staging); refused on c, which is in the fleet, and a second time on d."""
        fid = self.file_as("jit-alice", "environment=staging")
        p = self.approve("b", "jit-bob", fid, "--key", self.key("jit-bob", "ed25519") + ".pub")
        self.assertEqual(p.returncode, 0, p.stderr)
        wait_for(lambda: self.granted("a", "jit-alice"), timeout=10, what="a's grant")
        local = self.granted("a", "jit-alice")["id"]
        path = os.path.join(self.keydir, f"bundle-{fid[2:]}.json")
        p = self.on("a", "root").jitctl("grant", "export", str(local), "--output", path)
        self.assertExit(p, 0)
        with open(path) as f:
            bundle = json.load(f)
        fleet_id = self.pg.query(self.admin, "SELECT id FROM jit_fleet.fleet_identity")[0][0]
        self.assertEqual((bundle["request"]["request"], bundle["request"]["fleet"]), (fid, fleet_id))
        os.chmod(path, 0o644)

        d = HostBroker(self.sb, "d", (
            'profile = { owner = "payments"; environment = "staging"; };\n'
            'rules = ({ name = "fleet-sudo"; services = ["sudo"]; requesters = ["jit-alice"]; '
            f'approvers = {APPROVERS}; approvals = 1; max_duration = "2h"; }});\n'
            f'settings = {{ allowed_signers = "{self.keydir}/allowed_signers.a"; }};\n'))
        d.start()
        self.addCleanup(lambda: (d.stop(), d.log.close()))
        root_d = jittest.User(self.sb, d, "root")
        p = root_d.jitctl("grant", "import", path)
        self.assertExit(p, 0)
        grants = [r for r in root_d.ok("list", "--all") if r["state"] == "active"]
        self.assertEqual([g["requester"] for g in grants], ["jit-alice"])
        shown = root_d.ok("show", str(grants[0]["id"]))
        self.assertEqual(shown["approvals"][0]["signer_fingerprint"],
                         self.fingerprint("jit-bob", "ed25519"))
        p = root_d.jitctl("grant", "import", path)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("approval 1 was used here already: a bundle is imported once", p.stderr)
        # c is in the fleet: it takes the grant from its store, never from a file.
        p = self.on("c", "root").jitctl("grant", "import", path)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(f"the bundle holds a grant of fleet {fleet_id}, and this host is in a fleet",
                      p.stderr)


if __name__ == "__main__":
    jittest.main()
