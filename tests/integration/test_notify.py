# SPDX-License-Identifier: MIT
"""Notifications: the policy's notify hooks get every event they want exactly once in a
normal run, at least once across a broker killed mid-delivery, are killed at their timeout
and retried, never hold up a check or a change, and run as their user with no_new_privs,
limits, a clean environment and nothing but stdin, stdout and stderr open. The shipped hooks
(packaging/notify/): webhook (both formats) against an HTTP server on 127.0.0.1, mail through
a sendmail the test provides, terminal onto ptys of test approvers."""

import collections
import http.server
import json
import os
import pty
import pwd
import grp
import shutil
import signal
import struct
import subprocess
import threading
import time

import jittest
from jittest import BrokerTestCase, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
SHIPPED = os.path.join(HERE, "..", "..", "packaging", "notify")

FAILED = "076a05fc8240404a846f70f8ee799951"
DELIVERED = "019e80befb34438e9fd77dd2eb32be23"
DROPPED = "3bdc17a56d714de5bdddc930b918af53"

ALL_EVENTS = ["filed", "approval", "approved", "denied", "cancelled", "expired", "revoked",
              "timed_out", "break_glass", "acknowledged", "withdrawn", "consumed"]

# The recording hook: what it was given and how it runs, one file per run; then what the
# control file of its directory says (hang, sleep N, fail).
RECORDER = r'''#!/usr/bin/python3
import json, os, subprocess, sys, time
out = sys.argv[1]
raw = sys.stdin.read()
doc = json.loads(raw)
rec = {
    "doc": doc, "raw": raw, "argv": sys.argv, "env": dict(os.environ),
    "ids": list(os.getresuid()) + list(os.getresgid()), "groups": sorted(os.getgroups()),
    "status": open("/proc/self/status").read(), "limits": open("/proc/self/limits").read(),
    "cwd": os.getcwd(), "fds": sorted(int(f) for f in os.listdir("/proc/self/fd")),
    "pid": os.getpid(), "pgid": os.getpgid(0), "sid": os.getsid(0),
}
name = "%s.%s.%d" % (doc["id"], doc["attempt"], os.getpid())
with open(os.path.join(out, "." + name), "w") as f:
    json.dump(rec, f)
os.rename(os.path.join(out, "." + name), os.path.join(out, name + ".json"))
try:
    mode = open(os.path.join(out, "control")).read().split()
except FileNotFoundError:
    mode = []
if mode[:1] == ["hang"]:
    child = subprocess.Popen(["sleep", "1000"])
    with open(os.path.join(out, "child.%d" % os.getpid()), "w") as f:
        f.write(str(child.pid))
    time.sleep(1000)
elif mode[:1] == ["sleep"]:
    time.sleep(float(mode[1]))
elif mode[:1] == ["fail"]:
    print("told to fail")
    sys.exit(3)
'''


def outbox(broker, sql="SELECT count(*) FROM outbox"):
    p = jittest.run(["sqlite3", "-cmd", ".timeout 5000", broker.db, sql])
    return p.stdout.strip()


def read_file(path):
    with open(path) as f:
        return f.read()


def alive(pid):
    return jittest.start_time(pid) is not None


class Recorder:
    """A recording hook and its directory (owned by the hook's user)."""

    def __init__(self, sb, name, user):
        self.dir = sb.path("hooks", name)
        os.makedirs(self.dir)
        os.chmod(sb.path("hooks"), 0o755)
        pw = pwd.getpwnam(user)
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.command = sb.path("hooks", name + ".hook")
        with open(self.command, "w") as f:
            f.write(RECORDER)
        os.chmod(self.command, 0o755)

    def control(self, text):
        path = os.path.join(self.dir, "control")
        if text:
            with open(path + ".tmp", "w") as f:
                f.write(text)
            os.chmod(path + ".tmp", 0o644)
            os.rename(path + ".tmp", path)
        elif os.path.exists(path):
            os.unlink(path)

    def records(self):
        found = []
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".json") and not name.startswith("."):
                with open(os.path.join(self.dir, name)) as f:
                    found.append(json.load(f))
        return found

    def of(self, event, rid):
        return [r for r in self.records() if r["doc"]["event"] == event and r["doc"]["request"]["id"] == int(rid)]

    def wait(self, event, rid, count=1, timeout=20):
        return wait_for(lambda: len(self.of(event, rid)) >= count and self.of(event, rid), timeout=timeout,
                        what=f"{count} run(s) of the hook for {event} of request {rid}")


POLICY = """
settings = { default_duration = "1h"; max_duration = "8h"; pending_ttl = "6s"; };
profile = { owner = "payments-team"; environment = "test"; classification = "restricted";
            description = "the card vault"; };
rules = (
  { name = "one"; services = ["sudo"]; requesters = ["%jit-dev"]; approvers = ["%jit-lead"];
    approvals = 1; max_duration = "2h"; },
  { name = "two"; services = ["sshd"]; requesters = ["%jit-dev"]; approvers = ["jit-bob", "jit-carol"];
    approvals = 2; }
);
break_glass = { requesters = ["jit-erin"]; services = ["sudo"]; max_duration = "15m"; };
"""


def hook_entry(command, args, events, **kw):
    text = f'{{ command = "{command}"; args = [{", ".join(json.dumps(a) for a in args)}]; '
    text += f'events = [{", ".join(json.dumps(e) for e in events)}];'
    for k, v in kw.items():
        text += f" {k} = {json.dumps(v)};"
    return text + " }"


class WebhookServer(http.server.BaseHTTPRequestHandler):
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        WebhookServer.received.append((self.path, dict(self.headers), body))
        self.send_response(200 if self.path != "/broken" else 500)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


UTMP_RECORD = struct.Struct("=hxxi32s4s32s256shhi2i4i20s")


class Notify(BrokerTestCase):
    """Recording hooks: A wants every event; B only break-glass, with a 1 s timeout; R is
    changed by reloads. The shipped hooks (webhook twice, mail, terminal) want "filed"."""
    POLICY = POLICY
    USERS = {
        "jit-alice": ["jit-dev", "jit-test"],
        "jit-bob": ["jit-lead", "jit-test"],
        "jit-carol": ["jit-lead", "jit-test"],
        "jit-dave": ["jit-test"],
        "jit-erin": ["jit-test"],
        "jit-hook": [],
    }

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.setup_hooks()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def setup_hooks(cls):
        sb = cls.sb
        # A second name for uid 0, which a hook must refuse like root itself.
        jittest.run(["useradd", "-M", "-N", "-o", "-u", "0", "-g", "users", "-s", "/bin/sh", "jit-toor"])
        cls.a = Recorder(sb, "a", "jit-hook")
        cls.b = Recorder(sb, "b", "jit-hook")
        cls.r = Recorder(sb, "r", "jit-hook")
        cls.lib = sb.path("lib-jit-notify")
        os.makedirs(cls.lib)
        for name in ("webhook", "mail", "terminal", "jitnotify.py"):
            shutil.copy(os.path.join(SHIPPED, name), os.path.join(cls.lib, name))
            os.chmod(os.path.join(cls.lib, name), 0o644 if name.endswith(".py") else 0o755)
        cls.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), WebhookServer)
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{cls.server.server_address[1]}"
        # A sendmail that keeps what it is given, in a directory the hook's user may write.
        cls.mails = sb.path("mails")
        os.makedirs(cls.mails)
        pw = pwd.getpwnam("jit-hook")
        os.chown(cls.mails, pw.pw_uid, pw.pw_gid)
        cls.sendmail = sb.path("fake-sendmail")
        with open(cls.sendmail, "w") as f:
            f.write(f"#!/bin/sh\nn=$$\nprintf '%s\\n' \"$@\" > {cls.mails}/$n.args\ncat > {cls.mails}/$n.mail\n")
        os.chmod(cls.sendmail, 0o755)
        cls.utmp = sb.path("utmp")
        open(cls.utmp, "wb").close()
        os.chmod(cls.utmp, 0o644)
        cls.hooks = [
            hook_entry(cls.a.command, [cls.a.dir], ALL_EVENTS, user="jit-hook", timeout="5s", retry="1s"),
            hook_entry(cls.b.command, [cls.b.dir], ["break_glass"], user="jit-hook", timeout="1s", retry="1s"),
            hook_entry(f"{cls.lib}/webhook", [url + "/json"], ["filed"], user="jit-hook"),
            hook_entry(f"{cls.lib}/webhook", [url + "/slack", "--format", "slack"], ["filed"], user="jit-hook"),
            hook_entry(f"{cls.lib}/mail", ["--sendmail", cls.sendmail, "ops@example.org", "lead@example.org"],
                       ["filed"], user="jit-hook"),
            hook_entry(f"{cls.lib}/terminal", ["--utmp", cls.utmp], ["filed"], user="jit-hook", groups=["tty"]),
        ]
        cls.broker.write_policy(cls.policy_text())
        cls.broker.stop()
        cls.broker.start()

    @classmethod
    def policy_text(cls, *extra):
        return POLICY + "notify = (\n  " + ",\n  ".join(cls.hooks + list(extra)) + "\n);\n"

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "server", None):
            cls.server.shutdown()
            cls.server.server_close()
        super().tearDownClass()

    def request(self, *args):
        return str(self.u["jit-alice"].ok("request", "--reason", "rotate the TLS certificate", *args)["id"])

    def wait_outbox_empty(self, timeout=30):
        wait_for(lambda: outbox(self.broker) == "0", timeout=timeout, what="the outbox to empty")

    def test_01_every_event_exactly_once(self):
        alice, bob, carol, erin = (self.u[n] for n in ("jit-alice", "jit-bob", "jit-carol", "jit-erin"))
        expected = []
        r1 = self.request("--for", "30m", "--ticket", "OPS-1234")
        expected.append(("filed", r1))
        bob.ok("approve", r1)
        expected.append(("approved", r1))
        bob.ok("revoke", r1, "--reason", "done")
        expected.append(("revoked", r1))
        r2 = self.request("--service", "sshd")
        bob.ok("approve", r2)
        carol.ok("approve", r2)
        expected += [("filed", r2), ("approval", r2), ("approved", r2)]
        r3 = self.request()
        bob.ok("deny", r3, "--reason", "not now")
        expected += [("filed", r3), ("denied", r3)]
        r4 = self.request()
        alice.ok("cancel", r4)
        expected += [("filed", r4), ("cancelled", r4)]
        r5 = self.request("--for", "2s")
        bob.ok("approve", r5)
        expected += [("filed", r5), ("approved", r5), ("expired", r5)]
        r6 = str(erin.ok("break-glass", "--service", "sudo", "--for", "1m", "--reason", "database down")["id"])
        self.root.ok("ack", r6)
        expected += [("break_glass", r6), ("acknowledged", r6)]
        r7 = self.request()
        expected += [("filed", r7), ("timed_out", r7)]
        erin.ok("revoke", r6)
        expected.append(("revoked", r6))

        for event, rid in expected:
            self.a.wait(event, rid)
        self.b.wait("break_glass", r6)
        self.wait_outbox_empty()
        got = collections.Counter((r["doc"]["event"], str(r["doc"]["request"]["id"])) for r in self.a.records())
        self.assertEqual(got, collections.Counter(expected))
        ids = [r["doc"]["id"] for r in self.a.records()]
        self.assertEqual(len(ids), len(set(ids)), "one dedup id per event")
        self.assertEqual([r["doc"]["event"] for r in self.b.records()], ["break_glass"])
        self.assertEqual(len(self.sb.journal(f"MESSAGE_ID={FAILED}")), 0)
        self.assertGreaterEqual(len(self.sb.journal(f"MESSAGE_ID={DELIVERED}")), len(expected) + 1)

        # What the hook is given: the document on stdin and the same in its environment.
        rec = self.a.of("filed", r1)[0]
        doc, env = rec["doc"], rec["env"]
        self.assertEqual(rec["argv"][1:], [self.a.dir])
        self.assertTrue(rec["raw"].endswith("}\n"))
        self.assertRegex(doc["id"], r"^[0-9a-f]{32}-[0-9]+$")
        self.assertEqual(doc["attempt"], 1)
        self.assertEqual(doc["event"], "filed")
        self.assertEqual(doc["broker_event"], "requested")
        self.assertEqual(doc["actor"], "jit-alice")
        self.assertEqual(doc["command"], f"jitctl approve {r1}")
        self.assertEqual(doc["host"], os.uname().nodename)
        self.assertEqual(doc["profile"], {"owner": "payments-team", "environment": "test",
                                          "classification": "restricted", "description": "the card vault"})
        self.assertEqual(doc["approvers"], ["%jit-lead"])
        req = doc["request"]
        self.assertEqual((req["id"], req["requester"], req["service"], req["state"], req["duration"],
                          req["duration_text"], req["reason"], req["ticket"], req["rule"],
                          req["approvals_required"], req["approvals"], req["expires_at"]),
                         (int(r1), "jit-alice", "sudo", "pending", 1800, "30m", "rotate the TLS certificate",
                          "OPS-1234", "one", 1, [], None))
        self.assertTrue(doc["time"].endswith("Z"))
        self.assertEqual({k: env[k] for k in ("JIT_EVENT", "JIT_EVENT_ID", "JIT_REQUEST_ID", "JIT_REQUESTER",
                                              "JIT_SERVICE", "JIT_REASON", "JIT_TICKET", "JIT_DURATION",
                                              "JIT_DURATION_TEXT", "JIT_STATE", "JIT_ACTOR",
                                              "JIT_APPROVE_COMMAND", "JIT_COMMAND", "JIT_HOST", "JIT_RULE",
                                              "JIT_APPROVERS", "JIT_PROFILE_OWNER", "JIT_ATTEMPT")},
                         {"JIT_EVENT": "filed", "JIT_EVENT_ID": doc["id"], "JIT_REQUEST_ID": r1,
                          "JIT_REQUESTER": "jit-alice", "JIT_SERVICE": "sudo",
                          "JIT_REASON": "rotate the TLS certificate", "JIT_TICKET": "OPS-1234",
                          "JIT_DURATION": "1800", "JIT_DURATION_TEXT": "30m", "JIT_STATE": "pending",
                          "JIT_ACTOR": "jit-alice", "JIT_APPROVE_COMMAND": f"jitctl approve {r1}",
                          "JIT_COMMAND": f"jitctl approve {r1}", "JIT_HOST": os.uname().nodename,
                          "JIT_RULE": "one", "JIT_APPROVERS": "%jit-lead", "JIT_PROFILE_OWNER": "payments-team",
                          "JIT_ATTEMPT": "1"})
        # A clean environment: nothing of the broker's (NOTIFY_SOCKET, PYTHONPATH, ...).
        self.assertEqual({k for k in env if not k.startswith("JIT_")}, {"PATH", "HOME", "LANG", "USER", "LOGNAME"})
        self.assertEqual((env["HOME"], env["USER"]), ("/", "jit-hook"))

        # Approvals as they stand after the change, and who is asked next.
        approval = self.a.of("approval", r2)[0]["doc"]
        self.assertEqual([a["approver"] for a in approval["request"]["approvals"]], ["jit-bob"])
        self.assertEqual((approval["actor"], approval["command"]), ("jit-bob", f"jitctl approve {r2}"))
        self.assertEqual(approval["approvers"], ["jit-bob", "jit-carol"])
        approved = self.a.of("approved", r2)[0]
        self.assertEqual([a["approver"] for a in approved["doc"]["request"]["approvals"]], ["jit-bob", "jit-carol"])
        self.assertEqual(approved["doc"]["request"]["state"], "active")
        self.assertTrue(approved["doc"]["request"]["expires_at"].endswith("Z"))
        self.assertEqual(approved["env"]["JIT_APPROVE_COMMAND"], "")
        bg = self.a.of("break_glass", r6)[0]["doc"]
        self.assertEqual((bg["command"], bg["approvers"]), (f"jitctl ack {r6}", ["jit-erin"]))
        self.assertEqual(self.a.of("denied", r3)[0]["doc"]["request"]["end_reason"], "not now")

    def test_02_runs_as_its_user_with_no_new_privs_and_limits(self):
        rid = self.request()
        rec = self.a.wait("filed", rid)[0]
        pw = pwd.getpwnam("jit-hook")
        self.assertEqual(rec["ids"], [pw.pw_uid] * 3 + [pw.pw_gid] * 3)
        self.assertNotEqual(pw.pw_uid, 0)
        self.assertEqual(rec["groups"], [])  # only the groups the policy gives it: none
        status = dict(line.split(":\t", 1) for line in rec["status"].splitlines() if ":\t" in line)
        self.assertEqual(status["NoNewPrivs"].strip(), "1")
        self.assertEqual(status["CapEff"].strip(), "0000000000000000")
        self.assertEqual(status["CapPrm"].strip(), "0000000000000000")
        limits = {line[:26].strip(): line[26:].split()[:2] for line in rec["limits"].splitlines()[1:]}
        self.assertEqual(limits["Max open files"], ["64", "64"])
        self.assertEqual(limits["Max processes"], ["64", "64"])
        self.assertEqual(limits["Max address space"], [str(1 << 30)] * 2)
        self.assertEqual(limits["Max cpu time"], ["6", "6"])  # its timeout (5s) and 1
        self.assertEqual(limits["Max core file size"], ["0", "0"])
        self.assertEqual(rec["cwd"], "/")
        self.assertEqual(rec["fds"], [0, 1, 2, 3])  # 3: the listing of /proc/self/fd itself
        self.assertEqual((rec["pgid"], rec["sid"]), (rec["pid"], rec["pid"]))
        self.u["jit-alice"].ok("cancel", rid)
        self.a.wait("cancelled", rid)
        self.wait_outbox_empty()

    def test_03_at_least_once_across_a_killed_broker(self):
        self.a.control("sleep 30")
        try:
            rid = self.request()
            first = self.a.wait("filed", rid)[0]
            self.assertTrue(alive(first["pid"]))
            self.broker.stop(signal.SIGKILL)
            # The hook dies with the broker (PR_SET_PDEATHSIG); its row (hook A: index 0) stays.
            wait_for(lambda: not alive(first["pid"]), timeout=10, what="the hook to die with the broker")
            self.assertEqual(outbox(self.broker, "SELECT count(*) FROM outbox WHERE hook_index = 0 "
                                                 f"AND request_id = {rid}"), "1")
        finally:
            self.a.control("")
            if not self.broker.proc:
                self.broker.start()
        runs = self.a.wait("filed", rid, count=2)
        self.assertEqual({r["doc"]["id"] for r in runs}, {first["doc"]["id"]}, "the same dedup id both times")
        self.wait_outbox_empty()
        self.u["jit-alice"].ok("cancel", rid)
        self.a.wait("cancelled", rid)
        self.wait_outbox_empty()
        self.assertEqual(len(self.a.of("filed", rid)), 2)

    def test_04_hanging_hook_is_killed_at_its_timeout_and_retried(self):
        self.b.control("hang")
        try:
            rid = str(self.u["jit-erin"].ok("break-glass", "--service", "sudo", "--for", "1m",
                                            "--reason", "disk full")["id"])
            first = self.b.wait("break_glass", rid)[0]
            child_file = os.path.join(self.b.dir, f"child.{first['pid']}")
            child = int(wait_for(lambda: os.path.exists(child_file) and read_file(child_file),
                                 what="the hook's child"))
            # Killed at 1 s, with what it started (its process group).
            wait_for(lambda: not alive(first["pid"]) and not alive(child), timeout=10,
                     what="the hook and its child to be killed")
            row = wait_for(lambda: [v for v in [outbox(self.broker, "SELECT attempts || '|' || last_error "
                                                            f"FROM outbox WHERE request_id = {rid}").split("|", 1)]
                                    if v[0] == "1"], what="the failed attempt recorded")[0]
            self.assertEqual(row, ["1", "killed after its timeout of 1s"])
            entry = wait_for(lambda: [e for e in self.sb.journal(f"MESSAGE_ID={FAILED}")
                                      if e.get("JIT_NOTIFY_EVENT_ID") == first["doc"]["id"]], what="notify-failed")[0]
            self.assertEqual(entry["PRIORITY"], "4")
            self.assertEqual(entry["JIT_NOTIFY_HOOK"], self.b.command)
            self.assertEqual(entry["JIT_REQUEST_ID"], rid)
            self.assertIn("killed after its timeout of 1s; retrying in 1s", entry["MESSAGE"])
        finally:
            self.b.control("")
        runs = self.b.wait("break_glass", rid, count=2)
        self.assertEqual([r["doc"]["attempt"] for r in runs], [1, 2])
        self.assertEqual({r["doc"]["id"] for r in runs}, {first["doc"]["id"]})
        self.u["jit-erin"].ok("revoke", rid)
        self.a.wait("revoked", rid)
        self.wait_outbox_empty()

    def test_05_checks_and_changes_go_on_while_a_hook_hangs(self):
        self.a.control("hang")
        try:
            rid = self.request("--for", "10m")
            hung = self.a.wait("filed", rid)[0]
            self.assertTrue(alive(hung["pid"]))
            # The PAM stack's question, answered at once while the hook hangs.
            for _ in range(20):
                start = time.monotonic()
                reply = self.broker.call({"version": 1, "op": "check", "user": "jit-alice", "service": "sudo"})
                self.assertLess(time.monotonic() - start, 1.0)
                self.assertIs(reply["result"]["allowed"], False)
            # So is a change, on the main loop.
            start = time.monotonic()
            self.u["jit-bob"].ok("approve", rid)
            self.assertLess(time.monotonic() - start, 2.0)
            reply = self.broker.call({"version": 1, "op": "check", "user": "jit-alice", "service": "sudo"})
            self.assertIs(reply["result"]["allowed"], True)
            self.assertTrue(alive(hung["pid"]), "the hook still hangs meanwhile")
        finally:
            self.a.control("")
        # Killed at its 5 s, then both events are delivered.
        self.a.wait("filed", rid, count=2)
        self.a.wait("approved", rid)
        self.u["jit-bob"].ok("revoke", rid)
        self.a.wait("revoked", rid)
        self.wait_outbox_empty()

    def terminal(self, owner, mode=0o620):
        """A pty whose slave belongs to owner, group tty, with mode; its utmp record."""
        master, slave = pty.openpty()
        name = os.ttyname(slave)
        os.chown(name, pwd.getpwnam(owner).pw_uid, grp.getgrnam("tty").gr_gid)
        os.chmod(name, mode)
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        os.set_blocking(master, False)
        return master, name

    def write_utmp(self, entries):
        with open(self.utmp, "wb") as f:
            for user, tty in entries:
                f.write(UTMP_RECORD.pack(7, os.getpid(), tty[len("/dev/"):].encode(), b"ts/0", user.encode(),
                                         b"", 0, 0, 0, 0, 0, 0, 0, 0, 0, b""))

    @staticmethod
    def read_pty(master):
        data = b""
        try:
            while True:
                chunk = os.read(master, 65536)
                if not chunk:
                    break
                data += chunk
        except (BlockingIOError, OSError):
            pass
        return data.decode(errors="replace")

    def test_06_webhook_mail_and_terminal(self):
        bob_tty = self.terminal("jit-bob")
        carol_off = self.terminal("jit-carol", 0o600)  # mesg n
        dave_tty = self.terminal("jit-dave")            # not an approver
        spoof = self.terminal("jit-dave")               # utmp says bob, the terminal is dave's
        self.write_utmp([("jit-bob", bob_tty[1]), ("jit-carol", carol_off[1]), ("jit-dave", dave_tty[1]),
                         ("jit-bob", spoof[1])])
        WebhookServer.received.clear()
        rid = str(self.u["jit-alice"].ok("request", "--reason", "renew <the> cert & key", "--ticket", "OPS-77",
                                         "--for", "45m")["id"])
        wait_for(lambda: len(WebhookServer.received) == 2, what="two web hook posts")
        wait_for(lambda: outbox(self.broker) == "0", what="every hook to deliver")
        posts = {path: (headers, body) for path, headers, body in WebhookServer.received}

        headers, body = posts["/json"]
        doc = json.loads(body)
        self.assertEqual((doc["event"], doc["request"]["id"], doc["command"]), ("filed", int(rid), f"jitctl approve {rid}"))
        self.assertEqual(headers["Content-Type"], "application/json; charset=utf-8")
        self.assertEqual(headers["X-Jit-Event-Id"], doc["id"])

        headers, body = posts["/slack"]
        text = json.loads(body)["text"]
        self.assertEqual(set(json.loads(body)), {"text"})
        self.assertIn(f"jit-alice requests sudo for 45m (request {rid}), waiting for approval (0 of 1)", text)
        self.assertIn(f"Run:      jitctl approve {rid}", text)
        self.assertIn("Reason:   renew &lt;the&gt; cert &amp; key", text)
        self.assertIn("Ticket:   OPS-77", text)
        self.assertIn("Duration: 45m", text)
        self.assertIn("(owner payments-team, environment test, classification restricted) - the card vault", text)

        mails = [n for n in os.listdir(self.mails) if n.endswith(".mail")
                 and f"(request {rid})" in read_file(os.path.join(self.mails, n))]
        self.assertEqual(len(mails), 1)
        with open(os.path.join(self.mails, mails[0])) as f:
            mail = f.read()
        with open(os.path.join(self.mails, mails[0][:-5] + ".args")) as f:
            self.assertEqual(f.read().split("\n")[:-1], ["-i", "--", "ops@example.org", "lead@example.org"])
        self.assertIn("To: ops@example.org, lead@example.org\n", mail)
        self.assertIn(f"Subject: [jit] jit-alice requests sudo for 45m (request {rid})", mail)
        self.assertIn(f"Run:      jitctl approve {rid}", mail)
        self.assertIn("Reason:   renew <the> cert & key", mail)
        self.assertRegex(mail, r"\nX-Jit-Event-Id: [0-9a-f]{32}-[0-9]+\n")  # its own: one per event and hook

        said = self.read_pty(bob_tty[0])
        self.assertIn(f"*** jit on {os.uname().nodename}: jit-alice requests sudo for 45m (request {rid})", said)
        self.assertIn(f"Run:      jitctl approve {rid}", said)
        self.assertIn("Ticket:   OPS-77", said)
        self.assertEqual(self.read_pty(carol_off[0]), "", "mesg n is respected")
        self.assertEqual(self.read_pty(dave_tty[0]), "", "only approvers are told")
        self.assertEqual(self.read_pty(spoof[0]), "", "only the approver's own terminal")
        self.u["jit-alice"].ok("cancel", rid)

    def test_07_webhook_failure_is_retried_and_mail_without_sendmail_fails_clearly(self):
        doc = {"event": "filed", "id": "x-1", "host": "h", "command": "jitctl approve 1",
               "request": {"id": 1, "requester": "a", "service": "sudo", "state": "pending", "reason": "r\x1b[2J",
                           "duration_text": "1h", "approvals_count": 0, "approvals_required": 1}}
        env = {"PATH": "/usr/bin:/bin"}
        url = f"http://127.0.0.1:{self.server.server_address[1]}/broken"
        p = subprocess.run([f"{self.lib}/webhook", url], input=json.dumps(doc), text=True, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(p.returncode, 1)
        self.assertIn("webhook: the server answered 500", p.stderr)
        p = subprocess.run([f"{self.lib}/mail", "--sendmail", "/nonexistent/sendmail", "ops@example.org"],
                           input=json.dumps(doc), text=True, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(p.returncode, 1)
        self.assertIn("mail: /nonexistent/sendmail not found or not executable", p.stderr)
        # Text from users is escaped: no escape sequence reaches a terminal or a chat.
        p = subprocess.run([f"{self.lib}/webhook", url.replace("broken", "slack"), "--format", "slack"],
                           input=json.dumps(doc), text=True, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Reason:   r\\x1b[2J", json.loads(WebhookServer.received[-1][2])["text"])

    def policy(self, *hooks):
        self.broker.write_policy(self.policy_text(*hooks))
        before = len(self.sb.journal("MESSAGE_ID=9ff86b74c8a54bbb8fd39af3e363fa4a"))
        self.broker.reload()
        wait_for(lambda: len(self.sb.journal("MESSAGE_ID=9ff86b74c8a54bbb8fd39af3e363fa4a")) > before,
                 what="the policy to load")

    def test_08_uid_0_is_refused_and_a_reload_drops_the_hook(self):
        self.policy(hook_entry(self.r.command, [self.r.dir, "token=s3cr3t"], ["filed"], user="jit-toor",
                               retry="1s"))
        rid = str(self.u["jit-alice"].ok("request", "--reason", "as root?")["id"])
        entry = wait_for(lambda: self.sb.journal(f"MESSAGE_ID={FAILED}", f"JIT_REQUEST_ID={rid}"),
                         what="notify-failed")[0]
        self.assertIn("user jit-toor is root (uid or group 0): a hook never runs as root", entry["MESSAGE"])
        self.assertEqual(self.r.records(), [])
        wait_for(lambda: outbox(self.broker) == "1", what="the other hooks to deliver")

        # The same command and args: the same hook, its row kept and delivered as jit-hook.
        self.policy(hook_entry(self.r.command, [self.r.dir, "token=s3cr3t"], ["filed"], user="jit-hook",
                               retry="1s"))
        rec = self.r.wait("filed", rid)[0]
        self.assertEqual(rec["ids"][0], pwd.getpwnam("jit-hook").pw_uid)
        wait_for(lambda: outbox(self.broker) == "0", what="the outbox to empty")

        # Other args: another hook. What the old one owed is dropped, and said so.
        self.r.control("fail")
        rid2 = str(self.u["jit-alice"].ok("request", "--reason", "again")["id"])
        wait_for(lambda: self.sb.journal(f"MESSAGE_ID={FAILED}", f"JIT_REQUEST_ID={rid2}"), what="a failure")
        wait_for(lambda: outbox(self.broker) == "1", what="the other hooks to deliver")
        self.policy(hook_entry(self.r.command, [self.r.dir, "token=other"], ["denied"], user="jit-hook"))
        self.assertEqual(outbox(self.broker), "0")
        dropped = self.sb.journal(f"MESSAGE_ID={DROPPED}")[-1]
        self.assertEqual((dropped["JIT_NOTIFY_HOOK"], dropped["JIT_NOTIFY_DROPPED"]), (self.r.command, "1"))
        # Arguments (a web hook's token) stay out of the journal.
        self.assertFalse([e for e in self.sb.journal("SYSLOG_IDENTIFIER=jit-brokerd") if "s3cr3t" in json.dumps(e)])
        self.r.control("")

        # A command others could rewrite is never run.
        writable = self.sb.path("hooks", "writable.hook")
        shutil.copy(self.r.command, writable)
        os.chmod(writable, 0o775)
        self.policy(hook_entry(writable, [self.r.dir], ["filed"], user="jit-hook"))
        rid3 = str(self.u["jit-alice"].ok("request", "--reason", "rewritten?")["id"])
        entry = wait_for(lambda: self.sb.journal(f"MESSAGE_ID={FAILED}", f"JIT_REQUEST_ID={rid3}"),
                         what="notify-failed")[0]
        self.assertIn(f"{writable} is writable by group or others", entry["MESSAGE"])
        self.assertEqual(self.r.of("filed", rid3), [])
        self.policy()
        wait_for(lambda: outbox(self.broker) == "0", what="the outbox to empty")


    def test_09_a_stop_kills_running_hooks_and_keeps_their_rows(self):
        self.a.control("hang")
        try:
            rid = self.request()
            hung = self.a.wait("filed", rid)[0]
            self.assertEqual(self.broker.stop(), 0)
            self.assertFalse(alive(hung["pid"]))
            with open(self.broker.log.name) as f:
                self.assertNotIn("Sanitizer", f.read())
            self.assertEqual(outbox(self.broker, "SELECT count(*) FROM outbox WHERE hook_index = 0 "
                                                 f"AND request_id = {rid}"), "1")
        finally:
            self.a.control("")
            if not self.broker.proc:
                self.broker.start()
        self.assertEqual({r["doc"]["id"] for r in self.a.wait("filed", rid, count=2)}, {hung["doc"]["id"]})
        self.u["jit-alice"].ok("cancel", rid)
        self.a.wait("cancelled", rid)
        self.wait_outbox_empty()

if __name__ == "__main__":
    jittest.main()
