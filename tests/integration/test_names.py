# SPDX-License-Identifier: MIT
"""Renamed accounts and reused names: a request is bound to its requester's uid, not to the
name stored with it. After jit-alice is renamed and a new account takes the name, the new
jit-alice neither sees nor ends the old requests, the grant follows the uid, and whoever
looks at the request is told that the stored name no longer names its uid."""

import os

import jittest
from jittest import EXIT_REFUSED, BrokerTestCase, User, run

POLICY = """
settings = { max_pending_per_user = 100; };
rules = (
  { name = "dev"; services = ["sudo"]; requesters = ["%jit-dev"]; approvers = ["%jit-lead"]; }
);
"""


def uid_of(name):
    return int(run(["id", "-u", name]).stdout)


def rename_user(old, new):
    """What usermod -l does to this test's private /etc, without usermod's look for the
    user's processes: other test programs run as the same uids in their own /etc."""
    def rename(path, name_fields, list_fields):
        if not os.path.exists(path):
            return
        with open(path) as f:
            lines = f.read().splitlines()
        out = []
        for line in lines:
            fields = line.split(":")
            for i in name_fields:
                if len(fields) > i and fields[i] == old:
                    fields[i] = new
            for i in list_fields:
                if len(fields) > i:
                    fields[i] = ",".join(new if m == old else m for m in fields[i].split(",") if m)
            out.append(":".join(fields))
        st = os.stat(path)
        with open(path + ".jit-tmp", "w") as f:
            f.write("\n".join(out) + "\n")
        os.chown(path + ".jit-tmp", st.st_uid, st.st_gid)
        os.chmod(path + ".jit-tmp", st.st_mode & 0o7777)
        os.rename(path + ".jit-tmp", path)
    rename("/etc/passwd", [0], [])
    rename("/etc/shadow", [0], [])
    rename("/etc/group", [], [3])
    rename("/etc/gshadow", [], [2, 3])


class Names(BrokerTestCase):
    POLICY = POLICY
    USERS = {"jit-alice": ["jit-dev", "jit-test"], "jit-bob": ["jit-lead", "jit-test"]}

    def user(self, name):
        return User(self.sb, self.broker, name)

    def check(self, user):
        reply = self.broker.call({"version": 1, "op": "check", "user": user, "service": "sudo"})
        self.assertTrue(reply["ok"], reply)
        return reply["result"]

    def test_1_renamed_requester_and_reused_name(self):
        alice, bob = self.u["jit-alice"], self.u["jit-bob"]
        old_uid = uid_of("jit-alice")
        pending = str(alice.ok("request", "--reason", "before the rename")["id"])
        granted = str(alice.ok("request", "--for", "1h", "--reason", "granted before the rename")["id"])
        self.assertEqual(bob.ok("approve", granted)["state"], "active")
        shown = self.root.ok("show", pending)
        self.assertEqual((shown["requester"], shown["requester_uid"]), ("jit-alice", old_uid))
        self.assertIs(shown["requester_renamed"], False)
        self.assertEqual(shown["requester_now"], "jit-alice")
        self.assertNotIn("uid", self.row_of(self.root.jitctl("list").stdout, pending))

        # Checked once before, so that whatever the broker keeps of the name is warm.
        self.assertEqual(self.check("jit-alice")["request_id"], int(granted))

        # The account is renamed, and a new account takes the old name (another uid).
        rename_user("jit-alice", "jit-alice-old")
        self.sb.add_user("jit-alice", ["jit-dev", "jit-test"])
        new_uid = uid_of("jit-alice")
        self.assertNotEqual(new_uid, old_uid)
        newcomer, renamed = self.u["jit-alice"], self.user("jit-alice-old")

        # The newcomer gains nothing by the name: not the requests, not the grant.
        listed = newcomer.ok("list", "--all")
        self.assertNotIn(int(pending), [r["id"] for r in listed])
        self.assertNotIn(int(granted), [r["id"] for r in listed])
        for args in (("show", pending), ("cancel", pending), ("revoke", granted), ("show", granted)):
            with self.subTest(args=args):
                self.assertExit(newcomer.jitctl(*args), EXIT_REFUSED)
        self.assertEqual(self.check("jit-alice"), {"allowed": False, "request_id": None, "expires_at": None})
        # The grant stays with the uid, under its new name.
        self.assertEqual(self.check("jit-alice-old")["request_id"], int(granted))

        # Root's view (and the renamed owner's): the stored name, its uid, and the flag.
        for viewer in (self.root, renamed):
            with self.subTest(viewer=viewer.name):
                shown = viewer.ok("show", pending)
                self.assertEqual((shown["requester"], shown["requester_uid"]), ("jit-alice", old_uid))
                self.assertIs(shown["requester_renamed"], True)
                self.assertEqual(shown["requester_now"], "jit-alice-old")
        text = self.root.jitctl("show", pending)
        self.assertExit(text, 0)
        self.assertIn(f"Requester: jit-alice (uid {old_uid}, renamed: now jit-alice-old)", text.stdout)
        table = self.root.jitctl("list").stdout
        self.assertIn(f"jit-alice (uid {old_uid}, renamed: now jit-alice-old)", self.row_of(table, pending))
        self.assertIn(f"jit-alice (uid {old_uid}, renamed: now jit-alice-old)", self.row_of(table, granted))

        # The newcomer's own request is theirs, and is not flagged.
        own = newcomer.ok("request", "--reason", "my own")
        self.assertEqual((own["requester_uid"], own["requester_renamed"], own["requester_now"]),
                         (new_uid, False, "jit-alice"))
        self.assertNotIn("uid", self.row_of(self.root.jitctl("list").stdout, str(own["id"])))
        self.assertIn(f"Requester: jit-alice (uid {new_uid})\n", self.root.jitctl("show", str(own["id"])).stdout)
        newcomer.ok("cancel", str(own["id"]))

        # The renamed owner still ends their own request and grant.
        renamed.ok("cancel", pending)
        renamed.ok("revoke", granted)
        self.assertEqual(self.check("jit-alice-old"), {"allowed": False, "request_id": None, "expires_at": None})

    def test_2_renamed_and_removed_approver(self):
        carol = self.user("jit-carol")
        self.sb.add_user("jit-carol", ["jit-dev", "jit-test"])
        self.sb.add_user("jit-dan", ["jit-lead", "jit-test"])
        dan_uid = uid_of("jit-dan")
        rid = str(carol.ok("request", "--reason", "approved, then the approver is renamed")["id"])
        approved = self.user("jit-dan").ok("approve", rid, "--comment", "fine")
        self.assertEqual(approved["approvals"][0]["approver_uid"], dan_uid)
        self.assertIs(approved["approvals"][0]["approver_renamed"], False)
        # Every approver is shown with their uid in the detail view.
        self.assertIn(f"jit-dan (uid {dan_uid}) at ", self.root.jitctl("show", rid).stdout)

        rename_user("jit-dan", "jit-dan-old")
        approval = self.root.ok("show", rid)["approvals"][0]
        self.assertEqual((approval["approver"], approval["approver_uid"]), ("jit-dan", dan_uid))
        self.assertIs(approval["approver_renamed"], True)
        self.assertEqual(approval["approver_now"], "jit-dan-old")
        self.assertIn(f"jit-dan (uid {dan_uid}, renamed: now jit-dan-old) at ", self.root.jitctl("show", rid).stdout)

        run(["userdel", "-f", "jit-dan-old"])
        approval = self.root.ok("show", rid)["approvals"][0]
        self.assertIs(approval["approver_renamed"], True)
        self.assertIsNone(approval["approver_now"])
        self.assertIn(f"jit-dan (uid {dan_uid}, account removed) at ", self.root.jitctl("show", rid).stdout)
        carol.ok("revoke", rid)

    def row_of(self, table, rid):
        """The line of a jitctl list table for request rid."""
        rows = [line for line in table.splitlines() if line.split()[:1] == [rid]]
        self.assertEqual(len(rows), 1, table)
        return rows[0]


if __name__ == "__main__":
    jittest.main()
