# SPDX-License-Identifier: MIT
"""Bad input on the socket gets an error, changes nothing, and the broker keeps serving."""

import json
import socket
import struct
import subprocess

import jittest
from jittest import EXIT_USAGE, BrokerTestCase

POLICY = """
rules = (
  { name = "dev"; services = ["sudo"]; requesters = ["%jit-dev"]; approvers = ["%jit-lead"]; }
);
"""


def frame(body):
    return struct.pack(">I", len(body)) + body


class Robustness(BrokerTestCase):
    POLICY = POLICY
    USERS = {"jit-alice": ["jit-dev", "jit-test"], "jit-bob": ["jit-lead", "jit-test"]}
    JOURNALD = False

    def assertBadRequest(self, payload):
        reply = self.broker.call_raw(payload)
        self.assertIsNotNone(reply, "the broker should answer with an error before closing")
        self.assertEqual(reply["ok"], False)
        self.assertEqual(reply["error"], "bad-request")
        return reply

    def assertStillServing(self):
        reply = self.broker.call({"version": 1, "op": "check", "user": "jit-alice", "service": "sudo"})
        self.assertEqual(reply, {"version": 1, "ok": True,
                                 "result": {"allowed": False, "request_id": None, "expires_at": None}})

    def test_check_writes_nothing(self):
        """A grant check is answered from the index: the database files do not change."""
        import os

        def files():
            return {p: (os.stat(p).st_size, os.stat(p).st_mtime_ns)
                    for p in (self.broker.db, self.broker.db + "-wal") if os.path.exists(p)}
        self.assertStillServing()
        before = files()
        for _ in range(50):
            self.assertStillServing()
        self.assertEqual(files(), before)

    def test_oversized_frame(self):
        self.assertBadRequest(struct.pack(">I", 0xFFFFFFFF) + b"x" * 100)
        self.assertBadRequest(struct.pack(">I", 64 * 1024 + 1))
        self.assertStillServing()

    def test_zero_length_frame(self):
        self.assertBadRequest(struct.pack(">I", 0))
        self.assertStillServing()

    def test_garbage(self):
        for body in (b"not json at all", b"[1,2,3]", b'{"version":1,"op":"check"} trailing',
                     b'{"version":1,"op":"check","user":"a\x00b","service":"sudo"}',
                     b'{"version":1,"op":"check","user":"\xff\xfe","service":"sudo"}',
                     b'{"op":"check"}', b'{"version":"1","op":"check"}',
                     b"[" * 50 + b"]" * 50, b'{"version":1,"op":"no-such-op"}',
                     b'{"version":1,"op":"check","user":"jit-alice"}',
                     b'{"version":1,"op":"check","user":"jit-alice","service":"su do"}',
                     b'{"version":1,"op":"check","user":"' + b"a" * 300 + b'","service":"sudo"}'):
            with self.subTest(body=body[:40]):
                self.assertBadRequest(frame(body))
        self.assertStillServing()

    def test_strict_json(self):
        """JSON that json-c alone would take is refused as malformed before any field is
        read: duplicate names (json-c keeps the last), NaN and the infinities, raw control
        characters inside strings, lone surrogate escapes (json-c makes them U+FFFD). Each
        frame is a check that would be answered if read leniently ("note" is a field the
        broker ignores); its well-formed twin is answered."""
        check = b'{"version":1,"op":"check","user":"jit-alice","service":"sudo"'
        cases = [
            (b'{"version":1,"op":"check","user":"jit-bob","service":"sudo","user":"jit-alice"}',
             check + b'}'),
            (b'{"version":1,"op":"check","user":"jit-bob","service":"sudo","\\u0075ser":"jit-alice"}',
             check + b'}'),
            (b'{"version":1,"op":"check","user":"jit-bob","service":"sudo","user\\u0000x":"jit-alice"}',
             check + b'}'),
            (check + b',"note":NaN}', check + b',"note":1}'),
            (check + b',"note":Infinity}', check + b',"note":1e308}'),
            (check + b',"note":-Infinity}', check + b',"note":-1e308}'),
            (check + b',"note":"a\tb"}', check + b',"note":"a\\tb"}'),
            (check + b',"note":"a\x01b"}', check + b',"note":"a\\u0001b"}'),
            (check + b',"note":"\\ud800"}', check + b',"note":"\\ud83d\\ude00"}'),
            (check + b',"note":"\\udc00"}', check + b',"note":"\\ud800\\udc00"}'),
            (check + b',"note":"\\ud800\\u0041"}', check + b',"note":"\\u0041"}'),
        ]
        for bad, good in cases:
            with self.subTest(body=bad[-45:]):
                reply = self.assertBadRequest(frame(bad))
                self.assertTrue(reply["message"].startswith("malformed message"), reply["message"])
                self.assertEqual(self.broker.call_raw(frame(good))["ok"], True)
        self.assertStillServing()

    def test_other_version(self):
        reply = self.assertBadRequest(frame(b'{"version":2,"op":"check"}'))
        self.assertIn("version", reply["message"])

    def test_truncated_frame_then_close(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.broker.socket)
        s.sendall(struct.pack(">I", 100) + b'{"version":1')
        s.close()
        self.assertStillServing()

    def test_bad_fields_change_nothing(self):
        alice = self.u["jit-alice"]
        before = alice.ok("list", "--all")
        bad = [
            {"op": "request", "reason": "x" * 5000},
            {"op": "request", "reason": "line\nbreak"},
            {"op": "request", "reason": "escape \u001b[31m red"},
            {"op": "request", "reason": "c1 \u0085"},
            {"op": "request", "reason": "nul \u0000 inside"},
            {"op": "request", "reason": "ok", "duration": 0},
            {"op": "request", "reason": "ok", "duration": -5},
            {"op": "request", "reason": "ok", "duration": "1h"},
            {"op": "request", "reason": "ok", "duration": 10 ** 12},
            {"op": "request", "reason": "ok", "ticket": "t" * 500},
            {"op": "request"},
            {"op": "approve", "id": -1},
            {"op": "approve", "id": "1"},
        ]
        for obj in bad:
            with self.subTest(obj=json.dumps(obj)[:60]):
                reply = self.broker.call(dict(obj, version=1))
                self.assertEqual(reply["ok"], False)
                self.assertEqual(reply["error"], "bad-request")
        self.assertEqual(alice.ok("list", "--all"), before)

    def test_check_needs_root(self):
        # Run the raw exchange as alice: only root (the PAM stack) may ask about others.
        code = ("import socket,struct,json,sys\n"
                "s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1])\n"
                "b=json.dumps({'version':1,'op':'check','user':'jit-alice','service':'sudo'}).encode()\n"
                "s.sendall(struct.pack('>I',len(b))+b)\n"
                "n=struct.unpack('>I',s.recv(4))[0];d=b''\n"
                "while len(d)<n: d+=s.recv(n-len(d))\n"
                "print(json.loads(d)['error'])\n")
        p = jittest.run(self.u["jit-alice"]._as_user(["python3", "-c", code, self.broker.socket]), check=False)
        self.assertEqual(p.stdout.strip(), "refused")

    def test_cli_bad_input(self):
        alice = self.u["jit-alice"]
        for args in (["request", "--for", "1x", "--reason", "r"], ["request", "--for", "0s", "--reason", "r"],
                     ["request"], ["approve"], ["approve", "12abc"], ["approve", "-3"], ["frobnicate"]):
            with self.subTest(args=args):
                p = alice.jitctl(*args)
                self.assertExit(p, EXIT_USAGE)
                self.assertTrue(p.stderr.startswith("jitctl"), p.stderr)
                self.assertLess(len(p.stderr.splitlines()), 4, "a specific error, not the whole help")

    def test_user_flood_cannot_crowd_out_root(self):
        # A user holds as many connections as they can, each with a request begun (an idle
        # one would be closed after a second); the PAM stack (root) is still answered at
        # once, and the user gets only a few slots.
        code = ("import socket,sys,time\n"
                "held=[]\n"
                "for i in range(300):\n"
                "    s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); held.append(s)\n"
                "    try:\n"
                "        s.send(b'\\0')\n"
                "    except OSError:\n"
                "        pass\n"
                "print('ready', flush=True)\n"
                "sys.stdin.read()\n")
        flood = subprocess.Popen(self.u["jit-alice"]._as_user(["python3", "-c", code, self.broker.socket]),
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(flood.stdout.readline().strip(), "ready")
            self.assertStillServing()
            p = self.u["jit-alice"].jitctl("status")
            self.assertExit(p, 4)  # alice's own slots are taken by her flood
            self.assertExit(self.u["jit-bob"].jitctl("status"), 0)
        finally:
            flood.stdin.close()
            flood.wait()

    def test_many_connections(self):
        socks = []
        try:
            for _ in range(300):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.broker.socket)
                socks.append(s)
        finally:
            for s in socks:
                s.close()

        # Past the limit the broker drops new connections until the flood is gone; then it
        # must serve again.
        def served():
            try:
                self.assertStillServing()
                return True
            except (ConnectionResetError, BrokenPipeError):
                return False
        jittest.wait_for(served, timeout=10, what="the broker to serve again after the flood")


if __name__ == "__main__":
    jittest.main()
