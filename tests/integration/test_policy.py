# SPDX-License-Identifier: MIT
"""The policy language at work in the broker: auto-approval windows, tickets, self-approval,
break-glass and its acknowledgement, policy versions, reload withdrawing pending requests."""

import datetime
import hashlib
import json

import jittest
from jittest import EXIT_OK, EXIT_REFUSED, BrokerTestCase, wait_for

DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def window(start_offset_min, end_offset_min):
    """A `when` window relative to the current local time (never changing the clock)."""
    now = datetime.datetime.now()
    start = now + datetime.timedelta(minutes=start_offset_min)
    end = now + datetime.timedelta(minutes=end_offset_min)
    if start.date() != end.date() or start.date() != now.date():
        # Near midnight a relative window would cross days; use the whole of today.
        return f"{DAYS[now.weekday()]} 00:00-23:59"
    return f"{DAYS[now.weekday()]} {start:%H:%M}-{end:%H:%M}"


def policy():
    inside = window(-30, 30)
    other_day = DAYS[(datetime.datetime.now().weekday() + 3) % 7]
    return f"""
settings = {{ default_duration = "1h"; max_duration = "8h"; }};
profile = {{ owner = "payments-team"; environment = "production"; classification = "restricted"; }};
rules = (
  {{ name = "web-restart"; services = ["sudo"]; requesters = ["%jit-web"]; auto_approve = true;
     max_duration = "15m"; run_as = ["root", "www-data"];
     commands = ["/usr/bin/systemctl restart nginx", "/usr/bin/tail -n * /var/log/nginx/*.log"]; }},
  {{ name = "oncall-now"; services = ["sudo"]; requesters = ["%jit-oncall"];
     auto_approve = true; when = ["{inside}"]; max_duration = "30m"; }},
  {{ name = "oncall-other-day"; services = ["sudo"]; requesters = ["%jit-night"];
     auto_approve = true; when = ["{other_day} 00:00-23:59"]; }},
  {{ name = "night-fallback"; services = ["sudo"]; requesters = ["%jit-night"];
     approvers = ["%jit-lead"]; }},
  {{ name = "ticketed"; services = ["sudo"]; requesters = ["%jit-dev"]; approvers = ["%jit-lead"];
     ticket_pattern = "^OPS-[0-9]+$"; reason_min_length = 10; }},
  {{ name = "self-serve"; services = ["sudo"]; requesters = ["%jit-lead"]; approvers = ["%jit-lead"];
     allow_self_approval = true; }}
);
break_glass = {{ requesters = ["%jit-sre"]; services = ["sudo"]; max_duration = "15m"; }};
"""


class Policy(BrokerTestCase):
    POLICY = policy()
    USERS = {
        "jit-olga": ["jit-oncall", "jit-test"],
        "jit-nick": ["jit-night", "jit-test"],
        "jit-alice": ["jit-dev", "jit-test"],
        "jit-bob": ["jit-lead", "jit-test"],
        "jit-sara": ["jit-sre", "jit-test"],
        "jit-sam": ["jit-sre", "jit-test"],
        "jit-wendy": ["jit-web", "jit-test"],
    }

    def test_auto_approve_inside_window(self):
        olga = self.u["jit-olga"]
        req = olga.ok("request", "--for", "10m", "--reason", "pager: disk full")
        self.assertEqual(req["state"], "active")
        self.assertEqual(req["rule"], "oncall-now")
        self.assertEqual(len(req["approvals"]), 1)
        self.assertEqual(req["approvals"][0]["kind"], "rule")
        self.assertEqual(req["approvals"][0]["approver"], "oncall-now")
        self.assertIsNone(req["approvals"][0]["approver_uid"])
        self.assertAllowed(olga)
        self.assertExit(olga.jitctl("request", "--for", "1h", "--reason", "too long"), EXIT_REFUSED)
        olga.ok("revoke", str(req["id"]))
        self.assertRefused(olga)

    def test_outside_window_falls_through_to_approval(self):
        nick = self.u["jit-nick"]
        req = nick.ok("request", "--reason", "deploy after hours")
        self.assertEqual(req["state"], "pending")
        self.assertEqual(req["rule"], "night-fallback")
        self.assertRefused(nick)
        nick.ok("cancel", str(req["id"]))

    def test_ticket_pattern_and_reason_length(self):
        alice = self.u["jit-alice"]
        p = alice.jitctl("request", "--reason", "restart the queue")
        self.assertExit(p, EXIT_REFUSED)
        self.assertIn("ticket", p.stderr)
        self.assertExit(alice.jitctl("request", "--reason", "restart the queue", "--ticket", "JIRA-1"),
                        EXIT_REFUSED)
        self.assertExit(alice.jitctl("request", "--reason", "short", "--ticket", "OPS-12"), EXIT_REFUSED)
        req = alice.ok("request", "--reason", "restart the queue", "--ticket", "OPS-12")
        self.assertEqual(req["ticket"], "OPS-12")
        self.assertEqual(req["rule"], "ticketed")
        alice.ok("cancel", str(req["id"]))

    def test_self_approval_only_where_the_rule_allows(self):
        bob = self.u["jit-bob"]
        req = bob.ok("request", "--reason", "rotate keys myself")
        done = bob.ok("approve", str(req["id"]))
        self.assertEqual(done["state"], "active")
        self.assertEqual(done["approvals"][0]["approver"], "jit-bob")
        bob.ok("revoke", str(req["id"]))

    def test_break_glass_and_acknowledgement(self):
        sara, sam, alice = self.u["jit-sara"], self.u["jit-sam"], self.u["jit-alice"]
        self.assertExit(alice.jitctl("break-glass", "--service", "sudo", "--reason", "me too"), EXIT_REFUSED)
        self.assertExit(sara.jitctl("break-glass", "--service", "sudo", "--for", "1h", "--reason", "db down"),
                        EXIT_REFUSED)
        bg = sara.ok("break-glass", "--service", "sudo", "--reason", "database down, no approver awake")
        self.assertEqual(bg["state"], "active")
        self.assertTrue(bg["break_glass"])
        self.assertLessEqual(bg["duration"], 900)
        self.assertAllowed(sara)
        rid = str(bg["id"])
        entries = wait_for(lambda: [e for e in self.sb.journal(f"JIT_REQUEST_ID={rid}")
                                    if e.get("MESSAGE_ID") == "0dfd07d236b245869b5cd60186ba73da"],
                           what="the break-glass journal entry")
        self.assertEqual(entries[0]["PRIORITY"], "1")  # alert

        sara.ok("revoke", rid)  # ended, but still listed until reviewed
        self.assertIn(int(rid), [r["id"] for r in sam.ok("list")])
        self.assertExit(sara.jitctl("ack", rid), EXIT_REFUSED)  # not one's own
        self.assertExit(alice.jitctl("ack", rid), EXIT_REFUSED)
        acked = sam.ok("ack", rid)
        self.assertEqual(acked["acknowledged_by"], "jit-sam")
        self.assertNotIn(int(rid), [r["id"] for r in sam.ok("list")])
        self.assertExit(sam.jitctl("ack", rid), 1)

    def test_policy_version_recorded_and_shown(self):
        alice = self.u["jit-alice"]
        with open(self.broker.policy, "rb") as f:
            version = hashlib.sha256(f.read()).hexdigest()
        req = alice.ok("request", "--reason", "check the version", "--ticket", "OPS-7")
        shown = self.u["jit-bob"].ok("show", str(req["id"]))
        self.assertEqual(shown["policy_version"], version)
        self.assertEqual(shown["current_policy_version"], version)
        self.assertEqual(shown["profile"]["environment"], "production")
        p = self.u["jit-bob"].jitctl("show", str(req["id"]))
        self.assertIn(version[:12], p.stdout)
        entry = wait_for(lambda: self.sb.journal(f"JIT_REQUEST_ID={req['id']}"), what="journal entries")
        self.assertEqual(entry[0]["JIT_POLICY_VERSION"], version)
        alice.ok("cancel", str(req["id"]))

    def test_explain_live_policy(self):
        p = self.u["jit-alice"].jitctl("policy", "explain", "--user", "jit-nick", "--service", "sudo", json_out=True)
        self.assertExit(p, EXIT_OK)
        self.assertEqual(p.json["rule"], "night-fallback")
        self.assertEqual(p.json["verdict"], "approval")
        self.assertTrue(any("oncall-other-day" in s for s in p.json["skipped"]))

    def test_explain_command_from_file(self):
        # The policy file as the broker reads it, decided by jitctl itself (--policy); the
        # requester's groups come from this host.
        def explain(*args):
            p = self.root.jitctl("policy", "explain", "--policy", self.broker.policy,
                                 "--user", "jit-wendy", *args, json_out=True)
            if p.returncode == EXIT_REFUSED:  # a refusal is a decision too
                p.json = json.loads(p.stdout)
            return p

        p = explain("--command", "/usr/bin/systemctl restart nginx")
        self.assertExit(p, EXIT_OK)
        self.assertEqual(p.json["verdict"], "auto")
        self.assertEqual(p.json["rule"], "web-restart")
        self.assertEqual(p.json["scope"], "command")
        self.assertEqual(p.json["command_pattern"], "/usr/bin/systemctl restart nginx")
        self.assertEqual(p.json["command"], "/usr/bin/systemctl")
        self.assertEqual(p.json["argv"], ["/usr/bin/systemctl", "restart", "nginx"])
        self.assertEqual(p.json["run_as"], "root")
        self.assertEqual(p.json["duration"], 900)
        self.assertEqual(p.json["skipped"], [])

        p = explain("--command", "/usr/bin/tail -n 20 /var/log/nginx/error.log", "--as", "www-data")
        self.assertExit(p, EXIT_OK)
        self.assertEqual(p.json["command_pattern"], "/usr/bin/tail -n * /var/log/nginx/*.log")
        self.assertEqual(p.json["run_as"], "www-data")

        # Not a listed command, a log outside the directory, nor a run-as the rule lists;
        # and the rule never grants all of sudo. No other rule is wendy's.
        for args, why in (
                (("--command", "/usr/bin/systemctl stop nginx"), "the command matches none of its patterns"),
                (("--command", "/usr/bin/tail -n 1 /var/log/nginx/../auth.log"),
                 "the command matches none of its patterns"),
                (("--command", "/usr/bin/systemctl restart nginx", "--as", "www-data:adm"),
                 "may not run commands as www-data:adm"),
                ((), 'grants single commands only (scope = "command")')):
            p = explain(*args)
            self.assertExit(p, EXIT_REFUSED, args)
            self.assertEqual(p.json["verdict"], "refused")
            self.assertIsNone(p.json["rule"])
            self.assertEqual(p.json["skipped"][0], f'rule "web-restart": {why}', args)

        # For people: the command line and the pattern that matched.
        p = self.root.jitctl("policy", "explain", "--policy", self.broker.policy, "--user", "jit-wendy",
                             "--command", "/usr/bin/systemctl restart nginx")
        self.assertExit(p, EXIT_OK)
        self.assertIn("Command:  /usr/bin/systemctl restart nginx (as root)\n", p.stdout)
        self.assertIn("Rule:     web-restart (single commands only)\n", p.stdout)
        self.assertIn("Pattern:  /usr/bin/systemctl restart nginx\n", p.stdout)

        # Nothing is looked up: a bare name is a usage error, and so is --as alone.
        p = explain("--command", "systemctl restart nginx")
        self.assertExit(p, 2)
        self.assertIn("--command: the command must be an absolute path", p.stderr)
        self.assertExit(explain("--as", "www-data"), 2)
        self.assertExit(explain("--command", "/usr/bin/id", "--service", "sshd"), 2)

    def test_cases_with_commands(self):
        cases = self.sb.path("command-cases.conf")
        with open(cases, "w") as f:
            f.write(f"""
policy = "{self.broker.policy}";
cases = (
  {{ name = "restart"; user = "wendy"; groups = ["jit-web"];
     command = "/usr/bin/systemctl restart nginx"; expect = "auto"; rule = "web-restart"; }},
  {{ name = "as www-data"; user = "wendy"; groups = ["jit-web"];
     command = "/usr/bin/systemctl restart nginx"; as = "www-data"; expect = "auto"; }},
  {{ name = "stop"; user = "wendy"; groups = ["jit-web"];
     command = "/usr/bin/systemctl stop nginx"; expect = "refused"; message = "no policy rule"; }}
);
""")
        p = self.root.jitctl("policy", "test", cases)
        self.assertExit(p, EXIT_OK)
        self.assertIn("3 passed, 0 failed", p.stdout)
        # A case the policy does not meet fails, and says why.
        with open(cases) as f:
            text = f.read()
        with open(cases, "w") as f:
            f.write(text.replace('as = "www-data"; expect = "auto"', 'as = "www-data:adm"; expect = "auto"'))
        p = self.root.jitctl("policy", "test", cases)
        self.assertExit(p, 1)
        self.assertIn("may not run commands as www-data:adm", p.stdout)
        # A command that is not an absolute path makes the file malformed.
        with open(cases, "w") as f:
            f.write(text.replace("/usr/bin/systemctl stop", "systemctl stop"))
        p = self.root.jitctl("policy", "test", cases)
        self.assertExit(p, 2)
        self.assertIn("command: the command must be an absolute path", p.stderr)

    def test_zz_reload_withdraws_pending_no_longer_allowed(self):
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        kept = bob.ok("request", "--reason", "stays pending")
        dropped = alice.ok("request", "--reason", "will be withdrawn", "--ticket", "OPS-9")
        before = len(self.sb.journal("MESSAGE_ID=75a441a5980f4537ab21fa8ff4958a12"))
        self.broker.write_policy(self.POLICY.replace('requesters = ["%jit-dev"]', 'requesters = ["%jit-nobody"]'))
        self.broker.reload()
        wait_for(lambda: len(self.sb.journal("MESSAGE_ID=75a441a5980f4537ab21fa8ff4958a12")) > before,
                 what="the withdrawal entry")
        shown = alice.ok("show", str(dropped["id"]))
        self.assertEqual(shown["state"], "denied")
        self.assertEqual(shown["ended_by"], "broker")
        self.assertIn("no longer lists jit-alice", shown["end_reason"])
        self.assertEqual(bob.ok("show", str(kept["id"]))["state"], "pending")
        bob.ok("cancel", str(kept["id"]))


    def test_explain_command_live_policy(self):
        wendy = self.u["jit-wendy"]
        p = wendy.jitctl("policy", "explain", "--command", "/usr/bin/systemctl restart nginx", json_out=True)
        self.assertExit(p, EXIT_OK)
        self.assertEqual(p.json["rule"], "web-restart")
        self.assertEqual(p.json["command_pattern"], "/usr/bin/systemctl restart nginx")
        self.assertEqual(p.json["scope"], "command")
        p = wendy.jitctl("policy", "explain", "--command", "/usr/bin/systemctl restart nginx", "--as", "www-data:adm")
        self.assertExit(p, EXIT_REFUSED)
        self.assertIn("may not run commands as www-data:adm", p.stdout)

if __name__ == "__main__":
    jittest.main()
