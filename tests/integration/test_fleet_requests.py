#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fleet requests end to end (docs/fleet.md) on a real PostgreSQL, with three brokers as
three hosts: a (environment=staging), b (environment=production, a review host) and c
(environment=staging), each in mount and UTS namespaces of its own with its own host name.
A request filed on a and approved on b opens sudo on a, not on b or c; a request for
environment=staging opens a and c, not b; a revoke typed on c ends the grant and its running
sudo session on a; with PostgreSQL stopped, a's grant still works, a new fleet request fails
at once with "fleet store unreachable", a local request and break-glass work; PostgreSQL back, a reconnects.

Host a's broker is on the sandbox's own socket, so real sudo (whose PAM stack the sandbox
points there) shows a's answer; b's and c's answers are read through pam_jit.so run by
pam_wrapper against their sockets. SKIP only when the PostgreSQL server binaries are not
installed."""

import os
import signal
import subprocess
import time
import unittest

import jittest
import pgserver
from jittest import JITCTL, BrokerTestCase, run, wait_for

ADMIN = "jit_fleet_admin"
ADMIN_PASSWORD = "administrator-of-the-fleet"
GRANTED_ID = "853293422d7e457ab68194a24791f5d2"

RULES = """
profile = { owner = "payments"; environment = "%s";%s };
rules = (
  { name = "fleet-sudo"; services = ["sudo"]; requesters = ["jit-alice"]; approvers = ["jit-bob"];
    approvals = 1; max_duration = "2h"; hosts = "%s";%s }
);
break_glass = { requesters = ["jit-carol"]; services = ["sudo"]; max_duration = "15m"; };
"""

# host -> (environment, the rule's hosts)
HOSTS = {"a": ("staging", "environment=staging"), "b": ("production", "environment=production"),
         "c": ("staging", "environment=staging")}


def policy(socket_dir, host, credentials, max_offline=None, pending_ttl=None, labels=None,
           database=None, poll_credentials=None, signed="false", approvals=1, extra_rule=""):
    env, rule_hosts = HOSTS[host]
    extra = f' max_offline = "{max_offline}";' if max_offline else ""
    extra += f' poll_credentials = "{poll_credentials}";' if poll_credentials else ""
    database = database or f"postgresql:///jit?host={socket_dir}&port=5432"
    settings = f'settings = {{ pending_ttl = "{pending_ttl}"; }};\n' if pending_ttl else ""
    free = (" labels = { " + "".join(f'{k} = "{v}"; ' for k, v in labels.items()) + "};"
            if labels else "")
    rule_extra = (f" signed = {signed};" if signed else "") + extra_rule
    rules = RULES % (env, free, rule_hosts, rule_extra)
    rules = rules.replace("approvals = 1;", f"approvals = {approvals};")
    return (rules + settings +
            f'fleet = {{ database = "{database}"; '
            f'host = "{host}"; credentials = "{credentials}";{extra} }};\n')


def namespaced(host):
    """Runs the broker in new mount and UTS namespaces whose host name is host."""
    return ["unshare", "--mount", "--uts", "--propagation", "unchanged", "--fork",
            "sh", "-c", 'hostname "$0" && exec "$@"', host]


class HostBroker(jittest.Broker):
    """Another host's broker in the same sandbox: its own socket, database and policy."""

    def __init__(self, sandbox, name, text):
        self.sb = sandbox
        d = sandbox.path(name)
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        self.socket = os.path.join(d, "broker.sock")
        self.db = os.path.join(d, "jit.db")
        self.policy = os.path.join(d, "policy.conf")
        self.log = open(os.path.join(d, "broker.log"), "a")
        self.proc = None
        self.write_policy(text)


class FleetHostsTest(BrokerTestCase):
    """Three hosts a, b, c on one PostgreSQL (test_fleet_offline.py shares this)."""
    USERS = {"jit-alice": ["jit-test"], "jit-bob": ["jit-test"], "jit-carol": ["jit-test"],
             "jit-audrey": ["jit-test", "jit-auditors"]}
    MAX_OFFLINE = None  # host a's fleet.max_offline
    PENDING_TTL = {}  # host -> its settings.pending_ttl
    LABELS = {}  # host -> its profile.labels (and registered labels), a dict
    DATABASE = None  # the hosts' fleet.database (set by setup_store); None: the server's socket
    POLL_CREDENTIALS = None  # the hosts' fleet.poll_credentials
    PG_SETTINGS = None  # the test server's settings beyond pgserver's defaults
    # The rule's signed: fleet approvals unsigned here (test_fleet_signed.py signs them);
    # None: unsaid, which requires signatures for fleet requests.
    SIGNED = "false"
    APPROVALS = 1  # the rule's approvals
    RULE_EXTRA = ""  # more of the rule's settings, as written

    @classmethod
    def host_policy(cls, host):
        return policy(cls.pg.socket_dir, host, cls.creds[host],
                      cls.MAX_OFFLINE if host == "a" else None, cls.PENDING_TTL.get(host),
                      cls.LABELS.get(host), cls.DATABASE, cls.POLL_CREDENTIALS, cls.SIGNED,
                      cls.APPROVALS, cls.RULE_EXTRA)

    @classmethod
    def setup_store(cls):
        """After the hosts are registered, before their brokers start."""

    @classmethod
    def setUpClass(cls):
        why = pgserver.unavailable()
        if why:
            raise unittest.SkipTest(why)
        cls.pg = pgserver.PgServer(settings=cls.PG_SETTINGS)
        cls.others = {}
        try:
            cls.pg.psql(cls.pg.superuser_uri,
                        f"CREATE ROLE {ADMIN} LOGIN CREATEROLE PASSWORD '{ADMIN_PASSWORD}'")
            cls.pg.psql(cls.pg.superuser_uri, f"CREATE DATABASE jit OWNER {ADMIN}")
            cls.admin = cls.pg.uri("jit", ADMIN, ADMIN_PASSWORD)
            run([JITCTL, "fleet", "migrate", "--database", cls.admin])
            cls.creds = {}
            for host, (env, _) in HOSTS.items():
                p = run([JITCTL, "fleet", "add-host", host, "--database", cls.admin,
                         "--labels", ",".join([f"environment={env}"] + [
                             f"{k}={v}" for k, v in cls.LABELS.get(host, {}).items()])] +
                        (["--review"] if host == "b" else []))
                path = os.path.join(cls.pg.passfiles, f"{host}.pass")
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(p.stdout.strip().splitlines()[-1] + "\n")
                cls.creds[host] = path
            cls.setup_store()
            cls.POLICY = cls.host_policy("a")
            super().setUpClass()
            # a: the class's broker, restarted in namespaces of its own.
            cls.broker.stop()
            cls.broker.start(wrap=namespaced("a"))
            for host in ("b", "c"):
                hb = HostBroker(cls.sb, host, cls.host_policy(host))
                cls.others[host] = hb
                hb.start(wrap=namespaced(host))
            cls.hosts = {"a": cls.broker, **cls.others}
        except BaseException:
            for hb in cls.others.values():
                hb.stop()
            cls.pg.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            for hb in cls.others.values():
                hb.stop()
                hb.log.close()
            super().tearDownClass()
        finally:
            cls.pg.close()

    def setUp(self):
        for host in self.hosts:
            self.await_state(host, "connected")

    # --- helpers -------------------------------------------------------------------------

    def on(self, host, user):
        """user acting on host's broker."""
        return jittest.User(self.sb, self.hosts[host], user)

    def fleet(self, host):
        return self.on(host, "root").ok("status")["broker"]["fleet"]

    def await_state(self, host, state, timeout=45):
        return wait_for(lambda: (self.fleet(host) or {}).get("state") == state, timeout=timeout,
                        what=f"host {host}: fleet state {state}")

    def allowed(self, host, user="jit-alice"):
        """What pam_jit.so answers for sudo on host: True (allow) or False (deny)."""
        u = self.on(host, user)
        if host == "a" and not jittest.SANITIZED:
            p = u.sudo("id", "-u")
            return p.returncode == 0 and p.stdout.strip() == "0"
        allow = u.pam_account("sudo", "allow", socket_path=self.hosts[host].socket)
        return allow.returncode == 0

    def file(self, hosts, host="a"):
        p = self.on(host, "jit-alice").jitctl("request", "--hosts", hosts, "--reason",
                                               "fix the replica", "--for", "1h", json_out=True)
        self.assertExit(p, 0)
        self.assertTrue(p.json["id"].startswith("f:"), p.json)
        self.assertEqual(p.json["state"], "pending")
        # Whatever a test leaves, the next one starts without this grant.
        self.addCleanup(lambda: self.on(host, "root").jitctl("revoke", p.json["id"]))
        return p.json["id"]

    def log_of(self, host):
        with open(self.hosts[host].log.name) as f:
            return f.read()

    def local_grant(self, host, fleet_id):
        """The local grant host made for fleet_id, or None."""
        for r in self.on(host, "root").ok("list", "--all"):
            if r["requester"] == "jit-alice" and r["state"] == "active":
                return r
        return None

    def reload(self, host):
        """SIGHUP to host's broker, under its namespace wrapper."""
        hb = self.hosts[host]
        with open(f"/proc/{hb.proc.pid}/task/{hb.proc.pid}/children") as f:
            for child in f.read().split():
                os.kill(int(child), signal.SIGHUP)


class FleetRequestsTest(FleetHostsTest):
    def test_1_request_on_a_approved_on_b_opens_a_only(self):
        fid = self.file("a")
        # Every host of the fleet may list and show it (b reviews every request).
        listed = self.on("b", "jit-bob").ok("list", "--fleet")["requests"]
        self.assertIn(fid, [r["id"] for r in listed])
        text = self.on("b", "jit-bob").jitctl("list", "--pending")
        self.assertIn(f"Fleet request {fid}: jit-alice for sudo on hosts a", text.stdout)
        # The requester cannot approve it herself, on any host.
        self.assertNotEqual(self.on("b", "jit-alice").jitctl("approve", fid).returncode, 0)
        approved = self.on("b", "jit-bob").ok("approve", fid)
        self.assertEqual(approved["approvals"][0]["approver"], "jit-bob")
        self.assertEqual(approved["approvals"][0]["host"], "b")
        start = time.monotonic()
        wait_for(lambda: self.allowed("a"), timeout=5, what="sudo on a within 5 s")
        print(f"granted on a {time.monotonic() - start:.2f}s after the approval")
        self.assertFalse(self.allowed("b"))
        self.assertFalse(self.allowed("c"))
        # a's audit log and journal say it was a fleet grant.
        wait_for(lambda: self.sb.journal(f"MESSAGE_ID={GRANTED_ID}"), what="the fleet-granted entry")
        grant = self.local_grant("a", fid)
        self.assertEqual(grant["approvals"][0]["approver"], "jit-bob")
        # Revoked from a; gone on a.
        self.on("a", "jit-bob").ok("revoke", fid)
        wait_for(lambda: not self.allowed("a"), timeout=5, what="the revocation on a")

    def test_2_staging_group_opens_a_and_c_not_b(self):
        fid = self.file("environment=staging")
        self.on("c", "jit-bob").ok("approve", fid)
        wait_for(lambda: self.allowed("a") and self.allowed("c"), timeout=5,
                 what="sudo on a and c within 5 s")
        self.assertFalse(self.allowed("b"))
        shown = self.on("c", "jit-bob").ok("show", fid)
        self.assertEqual(shown["hosts"], "environment=staging")
        # Seen as a local request is: not by a user who neither asked nor approves.
        p = self.on("c", "jit-carol").jitctl("show", fid)
        self.assertEqual((p.returncode, p.stderr.strip()),
                         (5, f"jitctl: no fleet request {fid} that this host may see"))
        self.assertNotIn(fid, [r["id"] for r in self.on("c", "jit-carol").ok("list", "--fleet")["requests"]])

        # Revoke on c: the grant ends on a, and its running sudo session with it.
        alice = self.on("a", "jit-alice")
        sess = None
        if not jittest.SANITIZED:
            sess = subprocess.Popen(alice._as_user(["sudo", "-n", "--", "sleep", "600"]),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            self.addCleanup(sess.stderr.close)
            local = self.local_grant("a", fid)
            wait_for(lambda: sess.poll() is not None or any(
                s["running"] for s in self.on("a", "root").ok("show", str(local["id"]))["sessions"]),
                what="the sudo session on a")
            self.assertIsNone(sess.poll())
        # Who may not see it cannot revoke it; an auditor sees it, and her revocation is
        # written to the store, but no host counts it (she neither asked nor approves).
        p = self.on("c", "jit-carol").jitctl("revoke", fid, "--reason", "not mine to end")
        self.assertEqual(p.returncode, 5, p.stderr)
        self.on("c", "jit-audrey").ok("revoke", fid, "--reason", "not mine to end")
        wait_for(lambda: "the revocation by jit-audrey does not count here" in self.log_of("a"),
                 what="a to refuse the auditor's revocation")
        self.assertTrue(self.allowed("a"))
        self.on("c", "jit-bob").ok("revoke", fid, "--reason", "done")
        wait_for(lambda: not self.allowed("a") and not self.allowed("c"), timeout=5,
                 what="the revocation on a and c")
        if sess:
            wait_for(lambda: sess.poll() is not None, timeout=10, what="the session on a to end")

    def test_4_changes_not_applied_are_read_again(self):
        # The cursor kept in a host's database moves only past changes it has applied: a
        # fetch that fails (here the hosts may not read requests for a moment) leaves it
        # where it was, and the approval is applied once the fetch works again.
        self.pg.psql(self.admin, "REVOKE SELECT ON jit_fleet.requests FROM jit_fleet_host")
        regrant = lambda: self.pg.psql(self.admin, "GRANT SELECT ON jit_fleet.requests TO jit_fleet_host")
        self.addCleanup(regrant)
        kept = self.fleet("a")["cursor"]
        rows = self.pg.query(self.admin, (
            "WITH r AS (INSERT INTO jit_fleet.requests (origin_host, origin_id, requester, service, "
            "reason, duration_s, selector, selector_host, rule, policy_version) VALUES ('b', 9999, "
            "'jit-alice', 'sudo', 'fix the replica', 3600, 'a', 'a', 'fleet-sudo', repeat('0', 64)) "
            "RETURNING id), v AS (INSERT INTO jit_fleet.approvals (request_id, origin_host, approver, "
            "verdict) SELECT id, 'c', 'jit-bob', 'approve' FROM r RETURNING request_id) "
            "SELECT request_id FROM v"))
        fid = f"f:{rows[0][0]}"
        self.addCleanup(lambda: self.on("a", "root").jitctl("revoke", fid))
        polls = []
        wait_for(lambda: polls.append(self.fleet("a")["last_poll"]) or len(set(polls)) >= 3,
                 timeout=15, what="two polls of a after the change")
        self.assertEqual(self.fleet("a")["cursor"], kept)
        self.assertFalse(self.allowed("a"))
        regrant()
        wait_for(lambda: self.allowed("a"), timeout=5, what="the approval applied on a")
        self.assertGreater(self.fleet("a")["cursor"], kept)

    def test_3_store_away(self):
        fid = self.file("a")
        self.on("b", "jit-bob").ok("approve", fid)
        wait_for(lambda: self.allowed("a"), timeout=5, what="sudo on a")
        self.pg.stop()
        try:
            self.await_state("a", "unreachable")
            self.assertTrue(self.allowed("a"))
            start = time.monotonic()
            p = self.on("a", "jit-alice").jitctl("request", "--hosts", "a", "--reason", "again")
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("fleet store unreachable", p.stderr)
            self.assertLess(time.monotonic() - start, 1.5)
            # A local request works as without a fleet.
            rid = str(self.on("a", "jit-alice").ok("request", "--reason", "local")["id"])
            self.assertEqual(self.on("a", "jit-bob").ok("show", rid)["state"], "pending")
            self.on("a", "jit-alice").ok("cancel", rid)
            # So does break-glass: granted at once, by this host's policy alone.
            bg = self.on("a", "jit-carol").ok("break-glass", "--service", "sudo", "--for", "5m",
                                              "--reason", "store down")
            self.assertEqual(bg["state"], "active")
            self.assertTrue(self.allowed("a", user="jit-carol"))
            self.on("a", "root").ok("revoke", str(bg["id"]))
            self.assertFalse(self.allowed("a", user="jit-carol"))
        finally:
            self.pg.start()
        self.await_state("a", "connected")
        self.on("a", "jit-bob").ok("revoke", fid)
        wait_for(lambda: not self.allowed("a"), timeout=5, what="the revocation on a")


if __name__ == "__main__":
    jittest.main()
