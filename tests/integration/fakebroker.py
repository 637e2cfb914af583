# SPDX-License-Identifier: MIT
"""A fake broker for tests of the clients' trust checks: listens on argv[1] and answers
every frame as argv[2] says, until killed. Modes:
  allow      a well-formed reply granting access ("allowed": true)
  close      accepts and closes without a reply (a dropped connection)
  garbage    a frame that is not JSON
  allowed=X  a well-formed reply whose "allowed" is the JSON value X ("false", 1, null)
  error      a well-formed error reply ("ok": false)
It prints "ready" once it listens. Run as a test user it is a socket held by a non-root
process; run as root it is a broker that answers wrongly."""

import json
import os
import socket
import struct
import sys


def reply(mode):
    if mode == "garbage":
        body = b"this is not json"
    elif mode == "error":
        body = json.dumps({"version": 1, "ok": False, "error": "refused", "message": "not you"}).encode()
    else:
        allowed = True if mode == "allow" else json.loads(mode.split("=", 1)[1])
        body = json.dumps({"version": 1, "ok": True,
                           "result": {"allowed": allowed, "request_id": 1, "session": 1,
                                      "expires_at": "2099-01-01T00:00:00Z"}}).encode()
    return struct.pack(">I", len(body)) + body


def read_frame(c):
    """Reads one whole frame (4-byte big-endian length, then the body), or what arrives."""
    data = b""
    try:
        while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return data


def serve(path, mode):
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    os.chmod(path, 0o666)
    s.listen(64)
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        try:
            if mode != "close":
                c.settimeout(2)
                read_frame(c)  # all of it: a reply before the client finished sending is EPIPE
                c.sendall(reply(mode))
        except OSError:
            pass
        finally:
            c.close()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
