# SPDX-License-Identifier: MIT
"""A raw protocol client: sends the JSON document given as argv[2] as one frame to the
socket argv[1] and prints the reply frame's JSON (or "null" when the connection closed
without one). Run as a test user (setpriv) to speak to the broker as that user, bypassing
jitctl's own checks."""

import json
import socket
import struct
import sys


def call(path, payload, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    try:
        s.sendall(struct.pack(">I", len(payload)) + payload)
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
            chunk = s.recv(65536)
            if not chunk:
                return None
            data += chunk
        return json.loads(data[4:4 + struct.unpack(">I", data[:4])[0]])
    finally:
        s.close()


if __name__ == "__main__":
    print(json.dumps(call(sys.argv[1], sys.argv[2].encode())))
