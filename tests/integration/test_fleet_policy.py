#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`jitctl policy check` on a policy with a fleet section and a rule's hosts
(docs/fleet.md): what it shows, as text and JSON, and the file:line of a bad value. Needs
no broker and no PostgreSQL."""

import json
import os
import sys
import tempfile
import unittest

import jittest
from jittest import EXIT_FAILURE, EXIT_OK, JITCTL, run

POLICY = """\
profile = { owner = "payments"; environment = "staging"; description = "Card vault"; };
fleet = { database = "postgresql:///jit?host=/run/postgresql"; host = "db-7";
          credentials = "/etc/jit/fleet.pass"; max_offline = "4h"; };
rules = (
  { name = "staging-db"; services = ["sudo"]; requesters = ["root"]; approvers = ["root"];
    hosts = "role=db,environment=staging"; }
);
"""


class FleetPolicyCheckTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="jit-fleet-policy-")
        self.addCleanup(lambda: run(["rm", "-rf", self.dir]))

    def write(self, text):
        path = os.path.join(self.dir, "policy.conf")
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        return path

    def test_check_shows_fleet_and_hosts(self):
        path = self.write(POLICY)
        p = run([JITCTL, "policy", "check", path], check=False)
        self.assertEqual(p.returncode, EXIT_OK, p.stderr)
        lines = p.stdout.splitlines()
        self.assertIn("  1. staging-db (line 5): sudo for root, 1 approval from root, up to 8h; "
                      "fleet hosts environment=staging,role=db", lines)
        self.assertIn("  Fleet (line 2): this host is db-7, labels owner=payments,"
                      "environment=staging; store postgresql:///jit?host=/run/postgresql, "
                      "credentials /etc/jit/fleet.pass; grants honoured offline for at most 4h "
                      "(not in use yet)", lines)

        p = run([JITCTL, "--json", "policy", "check", path], check=False)
        self.assertEqual(p.returncode, EXIT_OK, p.stderr)
        doc = json.loads(p.stdout)
        self.assertEqual(doc["fleet"], {
            "line": 2, "database": "postgresql:///jit?host=/run/postgresql", "host": "db-7",
            "credentials": "/etc/jit/fleet.pass", "max_offline": 14400,
            "labels": {"owner": "payments", "environment": "staging"}})
        self.assertEqual(doc["rules"][0]["hosts"], "environment=staging,role=db")

    def test_no_fleet_section(self):
        path = self.write('rules = ( { name = "r"; services = ["sudo"]; requesters = ["root"]; '
                          'approvers = ["root"]; } );\n')
        p = run([JITCTL, "--json", "policy", "check", path], check=False)
        self.assertEqual(p.returncode, EXIT_OK, p.stderr)
        doc = json.loads(p.stdout)
        self.assertIsNone(doc["fleet"])
        self.assertIsNone(doc["rules"][0]["hosts"])
        p = run([JITCTL, "policy", "check", path], check=False)
        self.assertNotIn("Fleet", p.stdout)

    def test_bad_values_name_file_and_line(self):
        path = self.write(POLICY.replace('host = "db-7"', 'host = "DB_7"'))
        p = run([JITCTL, "policy", "check", path], check=False)
        self.assertEqual(p.returncode, EXIT_FAILURE)
        self.assertIn(f"{path}:2: fleet.host: \"DB_7\" is not a fleet host name", p.stderr)
        path = self.write(POLICY.replace('"role=db,environment=staging"', '"role=db,"'))
        p = run([JITCTL, "policy", "check", path], check=False)
        self.assertEqual(p.returncode, EXIT_FAILURE)
        self.assertIn(f"{path}:6: rule \"staging-db\": hosts: \"role=db,\": an empty label",
                      p.stderr)


if __name__ == "__main__":
    if not JITCTL or not os.path.exists(JITCTL):
        raise RuntimeError(f"JITCTL must name the built jitctl (got {JITCTL!r})")
    jittest.main()
