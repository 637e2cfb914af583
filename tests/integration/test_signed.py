# SPDX-License-Identifier: MIT
"""Signed approvals on one host (docs/signed-approvals.md): jitctl approve signs through the
approver's own ssh-agent, the broker checks the signature with ssh-keygen against
/etc/jit/allowed_signers, and refuses, each with its reason, what is not a good signature
by the approver over exactly this request."""

import datetime
import hashlib
import json
import os
import socket
import subprocess
import time

import jittest
from jittest import EXIT_FAILURE, EXIT_REFUSED, BrokerTestCase, run, wait_for

POLICY = """
settings = { max_pending_per_user = 100; };
rules = (
  { name = "two-signed"; services = ["sudo"]; requesters = ["jit-erin"];
    approvers = ["%jit-lead"]; approvals = 2; max_duration = "2h"; signed = true; },
  { name = "signed"; services = ["sudo"]; requesters = ["%jit-dev"];
    approvers = ["%jit-lead"]; max_duration = "2h"; signed = true; },
  { name = "plain"; services = ["sudo"]; requesters = ["jit-frank"];
    approvers = ["%jit-lead"]; max_duration = "2h"; },
  { name = "signed-cmd"; services = ["sudo"]; requesters = ["jit-wendy"]; approvers = ["%jit-lead"];
    commands = ["/usr/bin/echo restart *"]; run_as = ["root", "jit-bob"]; signed = true; }
);
"""

ALLOWED_SIGNERS = "/etc/jit/allowed_signers"  # the default; /etc is the sandbox's own copy
NAMESPACE = "jit-approval"


class HostBroker(jittest.Broker):
    """Another host's broker in the same sandbox, without a fleet store: its own socket,
    database and policy (the same rules, the same /etc/jit/allowed_signers)."""

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


def utc(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Signed(BrokerTestCase):
    POLICY = POLICY
    USERS = {
        "jit-alice": ["jit-dev", "jit-test"],
        "jit-erin": ["jit-test"],
        "jit-frank": ["jit-test"],
        "jit-wendy": ["jit-test"],
        "jit-bob": ["jit-lead", "jit-test"],
        "jit-carol": ["jit-lead", "jit-test"],
        "jit-dave": ["jit-lead", "jit-test"],
    }
    # Each user's keys, in their agent; who allowed_signers lists each key for (None: no one).
    KEYS = {
        # pattern: alice's key under a principal pattern that names her and the approvers;
        # twice: listed on two lines, for jit-carol first and then for her.
        "jit-alice": {"ed25519": "jit-alice", "shared": "jit-alice,jit-bob", "pattern": "jit-*",
                      "twice": ["jit-carol", "jit-alice"]},
        "jit-bob": {"ed25519": "jit-bob", "ecdsa": "jit-bob", "team": "jit-bob,jit-carol"},
        "jit-carol": {"ed25519": "jit-carol", "team": None},  # team: bob's key, also listed for carol
        "jit-dave": {"ed25519": None, "carols": "jit-carol"},
    }

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.agents = []
        cls.others = []
        cls.keydir = cls.sb.path("signing-keys")
        os.makedirs(cls.keydir, mode=0o755)
        try:
            cls._make_keys()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for other in getattr(cls, "others", []):
            other.stop()
            other.log.close()
        for agent in getattr(cls, "agents", []):
            agent.terminate()
            agent.wait()
        super().tearDownClass()

    @classmethod
    def as_user(cls, name, argv, **kw):
        env = {"PATH": "/usr/bin:/bin", "HOME": cls.sb.path("signing-keys", name),
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
        lines = []
        made = {}
        for name, keys in cls.KEYS.items():
            d = os.path.join(cls.keydir, name)
            os.makedirs(d, mode=0o700)
            run(["chown", f"{name}:users", d])
            # The agent runs as the approver, as theirs would.
            agent = subprocess.Popen(["setpriv", f"--reuid={name}", "--regid=users", "--init-groups", "--",
                                      "ssh-agent", "-D", "-a", cls.sock(name)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cls.agents.append(agent)
            wait_for(lambda: os.path.exists(cls.sock(name)), what=f"{name}'s ssh-agent")
            for kind, principals in keys.items():
                path = cls.key(name, kind)
                if kind == "team" and "team" in made:  # the same key in a second agent
                    run(["cp", made["team"], path])
                    run(["cp", made["team"] + ".pub", path + ".pub"])
                    run(["chown", f"{name}:users", path, path + ".pub"])
                else:
                    t = "ecdsa" if kind == "ecdsa" else "ed25519"
                    p = cls.as_user(name, ["ssh-keygen", "-q", "-t", t, "-N", "", "-C", f"{name}-{kind}", "-f", path])
                    assert p.returncode == 0, p.stderr
                    made.setdefault(kind, path)
                p = cls.as_user(name, ["ssh-add", "-q", path])
                assert p.returncode == 0, p.stderr
                with open(path + ".pub") as f:
                    public = f.read().strip()
                for line in principals if isinstance(principals, list) else [principals] if principals else []:
                    lines.append(f"{line} {public}")
        os.makedirs("/etc/jit", exist_ok=True)
        with open(ALLOWED_SIGNERS, "w") as f:
            f.write("# approvers' keys\n" + "\n".join(lines) + "\n")
        os.chmod(ALLOWED_SIGNERS, 0o644)

    def fingerprint(self, name, kind):
        out = run(["ssh-keygen", "-lf", self.key(name, kind) + ".pub"]).stdout
        return out.split()[1]

    def approve(self, name, *args, env_extra=None):
        argv = [jittest.JITCTL, "--socket", self.broker.socket, "approve"] + list(args)
        return self.as_user(name, argv)

    def file(self, user, service="sudo", reason="rotate the payment keys"):
        return self.u[user].ok("request", "--reason", reason, "--for", "30m")

    def statement(self, approver, rid):
        reply = self.u[approver].call({"version": 1, "op": "approval-statement", "id": rid})
        self.assertTrue(reply["ok"], reply)
        return reply["result"]["statement"]

    def sign(self, name, kind, text, namespace=NAMESPACE):
        """A signature made from the key file (as root), for statements no jitctl would sign."""
        p = run(["ssh-keygen", "-Y", "sign", "-n", namespace, "-f", self.key(name, kind)], input=text)
        return p.stdout

    def raw_approve(self, approver, rid, statement, signature):
        return self.u[approver].call({"version": 1, "op": "approve", "id": rid,
                                      "statement": statement, "signature": signature})

    def assertRefusedWith(self, reply, text):
        self.assertFalse(reply["ok"], reply)
        self.assertEqual(reply["error"], "refused", reply)
        self.assertIn(text, reply["message"])

    def assertStillPending(self, rid):
        self.assertEqual(self.root.ok("show", str(rid))["state"], "pending")
        self.assertEqual(self.root.ok("show", str(rid))["approvals"], [])

    @staticmethod
    def replace(text, key, value):
        lines = text.split("\n")
        for i, line in enumerate(lines):
            if line.startswith(key + " "):
                lines[i] = f"{key} {value}"
                return "\n".join(lines)
        raise AssertionError(f"no {key} line in {text!r}")

    # --- accepted ---

    def test_01_ed25519_through_the_agent(self):
        rid = self.file("jit-alice")["id"]
        p = self.approve("jit-bob", str(rid), "--comment", "signed off")
        self.assertExit(p, 0)
        shown = self.root.ok("show", str(rid))
        self.assertEqual(shown["state"], "active")
        fp = self.fingerprint("jit-bob", "ed25519")
        self.assertEqual(shown["approvals"][0]["signer_fingerprint"], fp)
        self.assertIn(f"signed by key {fp}", self.root.jitctl("show", str(rid)).stdout)
        records = self.broker.call({"version": 1, "op": "audit", "request": rid})["result"]
        approval = [r for r in records if r["event"] == "approval"]
        self.assertEqual(len(approval), 1)
        self.assertEqual(approval[0]["details"]["signer_fingerprint"], fp)
        wait_for(lambda: any(e.get("JIT_SIGNER_FINGERPRINT") == fp
                             for e in self.sb.journal(f"JIT_REQUEST_ID={rid}")),
                 what="the signer's fingerprint in the journal")
        # The signature and the statement are kept as signed.
        sql = run(["sqlite3", self.broker.db,
                   f"SELECT statement, signature FROM approvals WHERE request_id = {rid}"]).stdout
        self.assertIn(f"request {rid}\n", sql)
        self.assertIn("-----BEGIN SSH SIGNATURE-----", sql)
        self.assertAllowed(self.u["jit-alice"])
        self.u["jit-bob"].ok("revoke", str(rid))

    def test_02_ecdsa_chosen_with_key(self):
        rid = self.file("jit-alice")["id"]
        p = self.approve("jit-bob", str(rid), "--key", self.key("jit-bob", "ecdsa") + ".pub")
        self.assertExit(p, 0)
        shown = self.root.ok("show", str(rid))
        self.assertEqual(shown["state"], "active")
        self.assertEqual(shown["approvals"][0]["signer_fingerprint"], self.fingerprint("jit-bob", "ecdsa"))
        self.u["jit-bob"].ok("revoke", str(rid))

    def test_03_plain_rule_unsigned_unless_asked(self):
        rid = self.file("jit-frank")["id"]
        granted = self.u["jit-bob"].ok("approve", str(rid))  # no agent in this environment
        self.assertEqual(granted["state"], "active")
        self.assertIsNone(granted["approvals"][0]["signer_fingerprint"])
        self.u["jit-bob"].ok("revoke", str(rid))
        rid = self.file("jit-frank")["id"]
        self.assertExit(self.approve("jit-carol", str(rid), "--sign"), 0)
        self.assertEqual(self.root.ok("show", str(rid))["approvals"][0]["signer_fingerprint"],
                         self.fingerprint("jit-carol", "ed25519"))
        self.u["jit-bob"].ok("revoke", str(rid))

    def test_04_command_grant(self):
        """A command grant's statement names the program, its arguments (by hash) and run-as."""
        r = self.u["jit-wendy"].ok("request", "--reason", "restart it", "--for", "30m",
                                   "--command", "echo restart nginx", "--as", "jit-bob")
        rid = r["id"]
        text = self.statement("jit-bob", rid)
        argv_hash = hashlib.sha256(b"".join(a.encode() + b"\0" for a in r["argv"])).hexdigest()
        self.assertIn(f"\ncommand /usr/bin/echo\nargv-sha256 {argv_hash}\nrun-as jit-bob\n", text)
        other = self.replace(text, "argv-sha256", hashlib.sha256(b"echo\0restart\0postgres\0").hexdigest())
        reply = self.raw_approve("jit-bob", rid, other, self.sign("jit-bob", "ed25519", other))
        self.assertRefusedWith(reply, "its argv-sha256 differs")
        self.assertExit(self.approve("jit-bob", str(rid)), 0)
        self.assertEqual(self.root.ok("show", str(rid))["state"], "active")
        self.u["jit-bob"].ok("revoke", str(rid))

    # --- refused, each with its reason ---

    def test_10_unsigned_refused(self):
        rid = self.file("jit-alice")["id"]
        reply = self.u["jit-bob"].call({"version": 1, "op": "approve", "id": rid})
        self.assertRefusedWith(reply, 'rule "signed" requires signed approvals')
        # jitctl without an agent says so, and approves nothing.
        p = run(["setpriv", "--reuid=jit-bob", "--regid=users", "--init-groups", "--", jittest.JITCTL,
                 "--socket", self.broker.socket, "approve", str(rid)],
                check=False, env={"PATH": "/usr/bin:/bin"})
        self.assertExit(p, EXIT_FAILURE)
        self.assertIn("no ssh-agent: SSH_AUTH_SOCK is not set", p.stderr)
        # An agent without keys.
        empty = self.sb.path("signing-keys", "jit-carol", "empty.sock")
        agent = subprocess.Popen(["setpriv", "--reuid=jit-carol", "--regid=users", "--init-groups", "--",
                                  "ssh-agent", "-D", "-a", empty],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: os.path.exists(empty), what="an empty agent")
            p = run(["setpriv", "--reuid=jit-carol", "--regid=users", "--init-groups", "--", jittest.JITCTL,
                     "--socket", self.broker.socket, "approve", str(rid)],
                    check=False, env={"PATH": "/usr/bin:/bin", "SSH_AUTH_SOCK": empty})
            self.assertExit(p, EXIT_FAILURE)
            self.assertIn("your ssh-agent holds no key", p.stderr)
        finally:
            agent.terminate()
            agent.wait()
        self.assertStillPending(rid)

    def test_11_statement_of_another_request_requester_duration_host(self):
        rid = self.file("jit-alice")["id"]
        good = self.statement("jit-bob", rid)
        cases = [
            ("request", str(rid + 1000), "its request differs"),
            ("requester", "jit-erin", "its requester differs"),
            ("duration", "7200", "its duration differs"),
            ("hosts", "another-host", f"it is for hosts another-host, not this host ({socket.gethostname()})"),
            ("approver", "jit-carol", "its approver differs"),
        ]
        for key, value, why in cases:
            with self.subTest(key=key):
                text = self.replace(good, key, value)
                reply = self.raw_approve("jit-bob", rid, text, self.sign("jit-bob", "ed25519", text))
                self.assertRefusedWith(reply, why)
        # The right statement, with a signature over another one.
        other = self.replace(good, "duration", "7200")
        reply = self.raw_approve("jit-bob", rid, good, self.sign("jit-bob", "ed25519", other))
        self.assertRefusedWith(reply, "does not verify over this request's statement")
        # The statement names this host.
        self.assertIn(f"\nhosts {socket.gethostname()}\n", good)
        self.assertStillPending(rid)

    def test_12_wrong_namespace(self):
        rid = self.file("jit-alice")["id"]
        text = self.statement("jit-bob", rid)
        reply = self.raw_approve("jit-bob", rid, text, self.sign("jit-bob", "ed25519", text, namespace="file"))
        self.assertRefusedWith(reply, 'the signature is for namespace "file", not "jit-approval"')
        self.assertStillPending(rid)

    def test_13_key_not_in_allowed_signers(self):
        rid = self.file("jit-alice")["id"]
        p = self.approve("jit-dave", str(rid), "--key", self.key("jit-dave", "ed25519") + ".pub")
        self.assertExit(p, EXIT_REFUSED)
        self.assertIn(f"key {self.fingerprint('jit-dave', 'ed25519')} (ssh-ed25519) is not in {ALLOWED_SIGNERS}",
                      p.stderr)
        self.assertStillPending(rid)

    def test_14_key_listed_for_another_principal(self):
        rid = self.file("jit-alice")["id"]
        p = self.approve("jit-dave", str(rid), "--key", self.key("jit-dave", "carols") + ".pub")
        self.assertExit(p, EXIT_REFUSED)
        self.assertIn(f"key {self.fingerprint('jit-dave', 'carols')} is listed for jit-carol, not for jit-dave",
                      p.stderr)
        self.assertStillPending(rid)

    def test_15_expired_and_future_windows(self):
        rid = self.file("jit-alice")["id"]
        good = self.statement("jit-bob", rid)
        now = int(time.time())
        expired = self.replace(self.replace(good, "not-before", utc(now - 7200)), "not-after", utc(now - 3600))
        reply = self.raw_approve("jit-bob", rid, expired, self.sign("jit-bob", "ed25519", expired))
        self.assertRefusedWith(reply, f"the signed approval has expired: it holds only for a grant ending by "
                                      f"{utc(now - 3600)}")
        # A window too short for the 30 minutes asked for is expired as well.
        short = self.replace(self.replace(good, "not-before", utc(now - 60)), "not-after", utc(now + 600))
        reply = self.raw_approve("jit-bob", rid, short, self.sign("jit-bob", "ed25519", short))
        self.assertRefusedWith(reply, "the signed approval has expired")
        future = self.replace(self.replace(good, "not-before", utc(now + 3600)), "not-after", utc(now + 9000))
        reply = self.raw_approve("jit-bob", rid, future, self.sign("jit-bob", "ed25519", future))
        self.assertRefusedWith(reply, f"the signed approval is not valid before {utc(now + 3600)}")
        self.assertStillPending(rid)

    def test_16_signature_by_the_requester(self):
        rid = self.file("jit-alice")["id"]
        text = self.statement("jit-bob", rid)  # approver jit-bob, signed with alice's key
        reply = self.raw_approve("jit-bob", rid, text, self.sign("jit-alice", "ed25519", text))
        self.assertRefusedWith(reply, f"key {self.fingerprint('jit-alice', 'ed25519')} is listed for jit-alice, "
                                      "the requester")
        # A key listed for the approver too is still the requester's.
        reply = self.raw_approve("jit-bob", rid, text, self.sign("jit-alice", "shared", text))
        self.assertRefusedWith(reply, f"key {self.fingerprint('jit-alice', 'shared')} is listed for jit-alice, "
                                      "the requester")
        self.assertStillPending(rid)

    def test_16b_requester_key_under_a_pattern_or_a_second_line(self):
        """The requester's key is the requester's however allowed_signers lists it: under a
        pattern that matches their name, or on a later line than one naming the approver."""
        for kind in ("pattern", "twice"):
            with self.subTest(kind=kind):
                rid = self.file("jit-alice")["id"]
                text = self.statement("jit-carol", rid)
                reply = self.raw_approve("jit-carol", rid, text, self.sign("jit-alice", kind, text))
                self.assertRefusedWith(reply, f"key {self.fingerprint('jit-alice', kind)} is listed for "
                                              "jit-alice, the requester")
                self.assertStillPending(rid)

    def test_16c_without_the_verify_user_refused(self):
        """ssh-keygen runs as the system user jit-verify; without it, nothing is verified."""
        rid = self.file("jit-alice")["id"]
        text = self.statement("jit-carol", rid)
        signature = self.sign("jit-carol", "ed25519", text)
        run(["userdel", "jit-verify"])  # in the sandbox's own /etc
        try:
            reply = self.raw_approve("jit-carol", rid, text, signature)
        finally:
            self.sb.add_system_user("jit-verify")
        self.assertFalse(reply["ok"], reply)
        self.assertEqual(reply["error"], "internal", reply)
        self.assertIn("the system user jit-verify, which checks signatures, does not exist", reply["message"])
        self.assertStillPending(rid)
        # With it back, the same approval holds.
        reply = self.raw_approve("jit-carol", rid, text, signature)
        self.assertTrue(reply["ok"], reply)
        self.assertEqual(self.root.ok("show", str(rid))["state"], "active")
        self.u["jit-bob"].ok("revoke", str(rid))

    def test_17_malformed(self):
        rid = self.file("jit-alice")["id"]
        text = self.statement("jit-bob", rid)
        sig = self.sign("jit-bob", "ed25519", text)
        reply = self.raw_approve("jit-bob", rid, text.replace("jit-approval-v1", "jit-approval-v9"), sig)
        self.assertEqual(reply["error"], "bad-request", reply)
        self.assertIn("the signed statement is malformed", reply["message"])
        reply = self.raw_approve("jit-bob", rid, text, "not a signature")
        self.assertRefusedWith(reply, "not an SSH signature")
        reply = self.u["jit-bob"].call({"version": 1, "op": "approve", "id": rid, "signature": sig})
        self.assertEqual(reply["error"], "bad-request", reply)
        self.assertStillPending(rid)

    # --- k of n ---

    def test_20_two_distinct_signers(self):
        rid = self.file("jit-erin")["id"]
        self.assertExit(self.approve("jit-bob", str(rid)), 0)
        self.assertEqual(self.root.ok("show", str(rid))["state"], "pending")
        # The same approver again, with another key of theirs: still one approver.
        p = self.approve("jit-bob", str(rid), "--key", self.key("jit-bob", "ecdsa") + ".pub")
        self.assertExit(p, EXIT_REFUSED)
        self.assertIn(f"jit-bob has already approved request {rid}; an approver counts once", p.stderr)
        self.assertExit(self.approve("jit-carol", str(rid)), 0)
        shown = self.root.ok("show", str(rid))
        self.assertEqual(shown["state"], "active")
        self.assertEqual(sorted(a["signer_fingerprint"] for a in shown["approvals"]),
                         sorted([self.fingerprint("jit-bob", "ed25519"), self.fingerprint("jit-carol", "ed25519")]))
        self.u["jit-bob"].ok("revoke", str(rid))

    def test_21_one_key_signing_twice_counts_once(self):
        rid = self.file("jit-erin")["id"]
        team = self.key("jit-bob", "team") + ".pub"
        self.assertExit(self.approve("jit-bob", str(rid), "--key", team), 0)
        p = self.approve("jit-carol", str(rid), "--key", self.key("jit-carol", "team") + ".pub")
        self.assertExit(p, EXIT_REFUSED)
        self.assertIn(f"key {self.fingerprint('jit-bob', 'team')} already signed jit-bob's approval of "
                      f"request {rid}; a key counts once", p.stderr)
        shown = self.root.ok("show", str(rid))
        self.assertEqual(shown["state"], "pending")
        self.assertEqual(len(shown["approvals"]), 1)
        # Carol's own key still counts.
        self.assertExit(self.approve("jit-carol", str(rid)), 0)
        self.assertEqual(self.root.ok("show", str(rid))["state"], "active")
        self.u["jit-bob"].ok("revoke", str(rid))


    # --- grant bundles: export here, import on a host without a fleet store ---

    def other_host(self, name, hostname=None, policy=POLICY):
        """A second broker; with hostname, in a UTS namespace of its own named so."""
        b = HostBroker(self.sb, name, policy)
        wrap = ["unshare", "--uts", "--", "sh", "-c", f'hostname {hostname} && exec "$@"', "sh"] if hostname else ()
        b.start(wrap=wrap)
        b.wrapped = False  # unshare and sh exec the broker: the process is the broker itself
        self.others.append(b)
        return b

    def export(self, user, rid):
        path = os.path.join(self.keydir, user, f"bundle-{rid}-{os.urandom(4).hex()}.json")
        p = self.u[user].jitctl("grant", "export", str(rid), "--output", path)
        self.assertExit(p, 0)
        with open(path) as f:
            return path, json.load(f)

    def import_on(self, broker, path, user=None):
        argv = [jittest.JITCTL, "--socket", broker.socket, "--json", "grant", "import", path]
        if user:
            argv = ["setpriv", f"--reuid={user}", "--regid=users", "--init-groups", "--"] + argv
        return run(argv, check=False)

    def write_bundle(self, bundle):
        path = self.sb.path(f"tampered-{os.urandom(4).hex()}.json")
        with open(path, "w") as f:
            json.dump(bundle, f)
        os.chmod(path, 0o644)
        return path

    def test_30_bundle_imported_on_a_host_without_fleet(self):
        rid = self.file("jit-alice")["id"]
        self.assertExit(self.approve("jit-bob", str(rid)), 0)
        path, bundle = self.export("jit-bob", rid)
        self.assertEqual(bundle["format"], "jit-grant-bundle-v1")
        self.assertEqual(bundle["request"]["requester"], "jit-alice")
        self.assertEqual([a["approver"] for a in bundle["approvals"]], ["jit-bob"])
        other = self.other_host("airgap")

        # Not root: refused.
        p = self.import_on(other, path, user="jit-bob")
        self.assertExit(p, EXIT_REFUSED)
        self.assertIn("only root may import a grant", p.stderr)
        # Tampered: a longer grant than was signed.
        longer = json.loads(json.dumps(bundle))
        longer["request"]["duration"] = 7200
        p = self.import_on(other, self.write_bundle(longer))
        self.assertExit(p, EXIT_REFUSED)
        self.assertIn("approval 1: the signed statement does not match the request: its duration differs",
                      p.stderr)
        # Another requester.
        erin = json.loads(json.dumps(bundle))
        erin["request"]["requester"] = "jit-erin"
        erin["request"]["requester_uid"] = int(run(["id", "-u", "jit-erin"]).stdout)
        p = self.import_on(other, self.write_bundle(erin))
        self.assertExit(p, EXIT_REFUSED)

        p = self.import_on(other, path)
        self.assertExit(p, 0)
        installed = json.loads(p.stdout)
        self.assertEqual(installed["state"], "active")
        self.assertEqual(installed["requester"], "jit-alice")
        self.assertEqual(installed["duration"], 1800)
        self.assertEqual(installed["approvals"][0]["approver"], "jit-bob")
        self.assertEqual(installed["approvals"][0]["signer_fingerprint"], self.fingerprint("jit-bob", "ed25519"))
        check = other.call({"version": 1, "op": "check", "user": "jit-alice", "service": "sudo"})
        self.assertTrue(check["result"]["allowed"], check)
        self.assertEqual(check["result"]["request_id"], installed["id"])
        records = other.call({"version": 1, "op": "audit", "request": installed["id"]})["result"]
        granted = [r for r in records if r["event"] == "granted"]
        self.assertEqual(granted[0]["details"]["origin_request"], str(rid))
        self.assertEqual(granted[0]["details"]["signers"], [self.fingerprint("jit-bob", "ed25519")])
        # Once only.
        p = self.import_on(other, path)
        self.assertExit(p, EXIT_REFUSED)
        self.assertIn("approval 1 was used here already", p.stderr)

        # A host of another name is not the one the approvals name.
        named = self.other_host("elsewhere", hostname="elsewhere-7")
        p = self.import_on(named, path)
        self.assertExit(p, EXIT_REFUSED)
        self.assertIn(f"approval 1: it is for hosts {socket.gethostname()}, not this host (elsewhere-7)",
                      p.stderr)
        self.u["jit-bob"].ok("revoke", str(rid))

    def test_31_bundle_two_of_n(self):
        rid = self.file("jit-erin")["id"]
        self.assertExit(self.approve("jit-bob", str(rid)), 0)
        self.assertExit(self.approve("jit-carol", str(rid)), 0)
        path, bundle = self.export("jit-carol", rid)
        self.assertEqual(len(bundle["approvals"]), 2)
        other = self.other_host("airgap-2")
        one = json.loads(json.dumps(bundle))
        one["approvals"] = one["approvals"][:1]
        p = self.import_on(other, self.write_bundle(one))
        self.assertExit(p, EXIT_REFUSED)
        self.assertIn('1 signed approval, rule "two-signed" needs 2 here', p.stderr)
        twice = json.loads(json.dumps(bundle))
        twice["approvals"][1] = twice["approvals"][0]
        p = self.import_on(other, self.write_bundle(twice))
        self.assertExit(p, EXIT_REFUSED)
        self.assertIn("approval 2: jit-bob approved twice", p.stderr)
        p = self.import_on(other, path)
        self.assertExit(p, 0)
        self.assertEqual(json.loads(p.stdout)["state"], "active")
        self.u["jit-bob"].ok("revoke", str(rid))
        # Only an active grant with signed approvals is exported.
        p = self.u["jit-bob"].jitctl("grant", "export", str(rid))
        self.assertExit(p, 1)
        self.assertIn("only an active grant can be exported", p.stderr)

    @staticmethod
    def rewrap(signature, width):
        """The same signature with its base64 in lines of width, and no final newline."""
        lines = signature.strip().split("\n")
        data = "".join(lines[1:-1])
        return "\n".join([lines[0]] + [data[i:i + width] for i in range(0, len(data), width)] + [lines[-1]])

    def test_32_bundle_rewrapped_is_imported_once(self):
        rid = self.file("jit-alice")["id"]
        self.assertExit(self.approve("jit-carol", str(rid)), 0)
        path, bundle = self.export("jit-bob", rid)
        self.u["jit-bob"].ok("revoke", str(rid))
        other = self.other_host("airgap-3")

        def wrapped(width):
            copy = json.loads(json.dumps(bundle))
            copy["approvals"][0]["signature"] = self.rewrap(copy["approvals"][0]["signature"], width)
            self.assertNotEqual(copy["approvals"][0]["signature"], bundle["approvals"][0]["signature"])
            return self.write_bundle(copy)

        # A re-wrapped signature is still a good one: it imports, once.
        p = self.import_on(other, wrapped(60))
        self.assertExit(p, 0)
        imported = json.loads(p.stdout)["id"]
        for again in (path, wrapped(64), wrapped(76)):
            p = self.import_on(other, again)
            self.assertExit(p, EXIT_REFUSED)
            self.assertIn("approval 1 was used here already: a bundle is imported once", p.stderr)
        # Revoked, the grant's approvals still count as used.
        self.assertExit(run([jittest.JITCTL, "--socket", other.socket, "revoke", str(imported)], check=False), 0)
        self.assertEqual(other.call({"version": 1, "op": "show", "id": imported})["result"]["state"], "revoked")
        for again in (path, wrapped(60), wrapped(48)):
            p = self.import_on(other, again)
            self.assertExit(p, EXIT_REFUSED)
            self.assertIn("approval 1 was used here already", p.stderr)
        check = other.call({"version": 1, "op": "check", "user": "jit-alice", "service": "sudo"})
        self.assertFalse(check["result"]["allowed"], check)

    def test_33_bundle_meets_the_rule_here(self):
        """The importing host's rule applies as to a request filed there: its ticket pattern
        and its shortest reason."""
        rule = 'name = "signed"; services = ["sudo"]; requesters = ["%jit-dev"];'
        self.assertIn(rule, POLICY)
        strict = POLICY.replace(rule, rule + ' ticket_pattern = "^OPS-[0-9]+$"; reason_min_length = 30;')
        other = self.other_host("airgap-4", policy=strict)
        long_reason = "rotate the payment keys and the others too"
        cases = [
            ((), long_reason, 'rule "signed" needs a ticket matching ^OPS-[0-9]+$ here'),
            (("--ticket", "JIRA-7"), long_reason,
             'rule "signed" needs a ticket matching ^OPS-[0-9]+$; "JIRA-7" does not match here'),
            (("--ticket", "OPS-7"), "rotate the payment keys",
             'rule "signed" needs a reason of at least 30 bytes (this one has 23) here'),
            (("--ticket", "OPS-7"), long_reason, None),
        ]
        for extra, reason, why in cases:
            with self.subTest(extra=extra, reason=reason):
                rid = self.u["jit-alice"].ok("request", "--reason", reason, "--for", "30m", *extra)["id"]
                self.assertExit(self.approve("jit-carol", str(rid)), 0)
                path, _ = self.export("jit-bob", rid)
                self.u["jit-bob"].ok("revoke", str(rid))
                p = self.import_on(other, path)
                if why:
                    self.assertExit(p, EXIT_REFUSED)
                    self.assertIn(why, p.stderr)
                    check = other.call({"version": 1, "op": "check", "user": "jit-alice", "service": "sudo"})
                    self.assertFalse(check["result"]["allowed"], check)
                else:
                    self.assertExit(p, 0)
                    self.assertEqual(json.loads(p.stdout)["state"], "active")


if __name__ == "__main__":
    import unittest
    unittest.main(verbosity=2)
