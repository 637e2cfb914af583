# SPDX-License-Identifier: MIT
"""A large history written straight into a stopped broker's database: finished requests and
their audit records, hash-chained from the broker's last record exactly as
common/audit-record.c hashes them, so that the log stays well-formed. Used by
bench_flood.py and integration/test_starvation.py; far faster than the protocol."""

import hashlib
import json
import sqlite3
import time


def record_hash(prev, at, event, actor, actor_uid, request_id, details):
    """audit_record_hash() of common/audit-record.c."""
    text = f"jit-audit-v1\n{prev}\n{at}\n{event}\n{actor}\n{actor_uid}\n{request_id}\n{details}"
    return hashlib.sha256(text.encode()).hexdigest()


def populate(path, owners, records, per_request=10, rule="bench", service="sudo"):
    """Appends records // per_request cancelled requests, owned in turn by owners [(name,
    uid)], each with per_request audit records, 1 ms apart and ending an hour ago (so that
    the last minutes hold only what the broker writes). The broker must not be running."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = DELETE")  # the broker turns WAL back on at start
    db.execute("PRAGMA synchronous = OFF")
    seq, prev = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    first_id = (db.execute("SELECT MAX(id) FROM requests").fetchone()[0] or 0) + 1
    n_requests = records // per_request
    at = int(time.time() * 1e6) - records * 1000 - 3600 * 10**6

    def requests():
        for i in range(n_requests):
            name, uid = owners[i % len(owners)]
            t = at + i * per_request * 1000
            yield (first_id + i, name, uid, service, 3600, f"history {i}", None, 0, rule, 1,
                   "cancelled", t, None, None, "0" * 32, None, None, t + 1000, name, None,
                   None, 0, None, None)

    def audit():
        nonlocal seq, prev
        for i in range(n_requests):
            name, uid = owners[i % len(owners)]
            rid = first_id + i
            details = json.dumps({"requester": name, "requester_uid": uid, "service": service,
                                  "state": "cancelled", "rule": rule, "duration": 3600,
                                  "reason": f"history {i}"}, separators=(",", ":"))
            for k in range(per_request):
                seq += 1
                t = at + (i * per_request + k) * 1000
                event = "requested" if k == 0 else "cancelled" if k == 1 else "access-allowed"
                h = record_hash(prev, t, event, name, uid, rid, details)
                yield (seq, t, event, name, uid, rid, details, prev, h)
                prev = h

    with db:
        # The first 24 columns; later schemas' columns (a command grant's) stay NULL.
        columns = [r[1] for r in db.execute("PRAGMA table_info(requests)")][:24]
        db.executemany(f"INSERT INTO requests ({', '.join(columns)}) VALUES (" + ", ".join("?" * 24) + ")",
                       requests())
        db.executemany("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", audit())
    db.close()
    return n_requests
