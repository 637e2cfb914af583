# SPDX-License-Identifier: MIT
"""One flooding user for bench_flood.py: run as that user (setpriv), it keeps WORKERS
connections busy with the most expensive operations a non-root user may call (audit,
list --all, status, explain), and IDLE more connections open that send nothing, until
stdin closes. Then it prints what it got as one JSON line.

  flood_client.py SOCKET WORKERS IDLE

Replies are read whole but parsed only when small (the errors): the flood should cost the
broker, not this process."""

import asyncio
import json
import struct
import sys
import time

OPS = [
    {"version": 1, "op": "audit", "limit": 2000},
    {"version": 1, "op": "list", "filter": "all"},
    {"version": 1, "op": "status"},
    {"version": 1, "op": "explain", "user": "root", "service": "sudo"},
]


def frame(obj):
    body = json.dumps(obj).encode()
    return struct.pack(">I", len(body)) + body


FRAMES = [frame(o) for o in OPS]


async def worker(path, i, stats, stop):
    n = i
    while not stop.is_set():
        try:
            r, w = await asyncio.open_unix_connection(path)
        except OSError:
            stats["refused"] += 1
            await asyncio.sleep(0.001)
            continue
        try:
            w.write(FRAMES[n % len(FRAMES)])
            n += 1
            header = await r.readexactly(4)
            body = await r.readexactly(struct.unpack(">I", header)[0])
            if len(body) < 4096:
                reply = json.loads(body)
                if reply.get("ok"):
                    stats["ok"] += 1
                else:
                    msg = reply.get("message", "")
                    kind = ("rate-limited" if msg.startswith("too many requests")
                            else "too-broad" if msg.startswith("the query is too broad")
                            else reply.get("error", "?"))
                    stats[kind] = stats.get(kind, 0) + 1
            else:
                stats["ok"] += 1
        except (OSError, asyncio.IncompleteReadError):
            stats["dropped"] += 1  # over the slot limit: closed without a reply
        finally:
            w.close()


async def idler(path, stats, stop):
    while not stop.is_set():
        try:
            r, w = await asyncio.open_unix_connection(path)
        except OSError:
            await asyncio.sleep(0.01)
            continue
        t = time.monotonic()
        try:
            await r.read()  # until the broker closes it
        except OSError:
            pass
        held = time.monotonic() - t
        stats["idle_held_max"] = max(stats["idle_held_max"], held)
        stats["idle_closed"] += 1
        w.close()
        if held < 0.01:
            await asyncio.sleep(0.01)  # refused at once: no slot


async def main(path, workers, idle):
    stats = {"ok": 0, "refused": 0, "dropped": 0, "idle_closed": 0, "idle_held_max": 0.0}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda loop, context: None)  # writes to a peer that hung up
    loop.add_reader(sys.stdin.fileno(), stop.set)
    tasks = [asyncio.create_task(worker(path, i, stats, stop)) for i in range(workers)]
    tasks += [asyncio.create_task(idler(path, stats, stop)) for _ in range(idle)]
    print("ready", flush=True)
    await stop.wait()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
