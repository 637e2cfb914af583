#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The fleet's propagation at N = 100, 1,000 and 10,000 hosts (docs/fleet.md, "Propagation").

One PostgreSQL 15 (pgserver.py) behind Debian's pgbouncer in transaction pooling, the schema
applied by `jitctl fleet migrate`, and 10,000 hosts registered: three with
`jitctl fleet add-host`, the rest by the same statements in one transaction (a role per
host, member of jit_fleet_host, and its row in jit_fleet.hosts; one SCRAM verifier computed
here for all of them instead of 10,000 server-side hashings). A shared poll login,
`jit_fleet_poll`, member of jit_fleet_watch only.

For each N, bench-fleet plays N host brokers (two client connections each, through
pgbouncer: the poll login and the host's own role; the poll every 2 s with the broker's
jitter; the broker's fetch when a change concerns the host). Once every host is connected
and has polled a few times, an approver commits, directly on PostgreSQL, one change every
1/RATE s for WINDOW s: the approval and then the revocation of requests whose selectors
pick, in turn, 1 host, 1% of the hosts (owner=oK) and 10% of them (environment=eK).
Propagation is the time from the change's commit (the server's clock_timestamp() in the
statement after COMMIT) to each concerned simulated host having the fetch's answer.

Printed per N: propagation p50/p99 (and the share delivered), PostgreSQL's CPU (all server
processes, from /proc, exited backends included through the postmaster's cutime) and
pgbouncer's in CPU seconds per host-hour, the generator's own CPU, server connections
(pg_stat_activity) and client connections (pgbouncer's SHOW POOLS), the poll's and fetch's
round trips against the baseline: a bare `SELECT 1` through the same pgbouncer, idle.

JIT_BENCH_FLEET_HOSTS (100,1000,10000), JIT_BENCH_FLEET_WINDOW (40 s),
JIT_BENCH_FLEET_SETTLE (6 s), JIT_BENCH_FLEET_RATE (0.5 changes/s) change the sizes.
Run as root (meson test --benchmark bench-fleet).
"""

import base64
import hashlib
import hmac
import json
import os
import pwd
import queue
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time

import pgserver
from jittest import run, wait_for

JITCTL = os.environ.get("JITCTL")
GENERATOR = os.environ.get("JIT_BENCH_FLEET")
SIZES = [int(x) for x in os.environ.get("JIT_BENCH_FLEET_HOSTS", "100,1000,10000").split(",")]
WINDOW = float(os.environ.get("JIT_BENCH_FLEET_WINDOW", "30"))
SETTLE = float(os.environ.get("JIT_BENCH_FLEET_SETTLE", "6"))
RATE = float(os.environ.get("JIT_BENCH_FLEET_RATE", "0.5"))
# The sizes run again with the fetch through the poll login (bench-fleet --fetch-shared: the
# store's jit_fleet.fetch_for_host with each host's fetch key, as the broker sends it when
# fleet.poll_credentials is set).
SHARED_SIZES = [int(x) for x in
                os.environ.get("JIT_BENCH_FLEET_SHARED", str(max(SIZES))).split(",") if x]
# Hosts started a second, in all (brokers start at their own moments, not at once).
RAMP = int(os.environ.get("JIT_BENCH_FLEET_RAMP", "500"))
PERIOD = 2.0  # the broker's poll period P
GOAL_P99 = 5.0
ADMIN = "jit_fleet_admin"
POLL_LOGIN = "jit_fleet_poll"
BOUNCER_ADMIN = "pgbouncer"
BOUNCER_PORT = 6432
# pgbouncer keeps a pool per (database, role). The shared poll login reaches the store
# through a database entry of its own, POLL_DB, with POLL_POOL server connections, so
# that the hosts' own-role pools (one each, one server connection at most: a host has
# one fetch in flight) cannot take the poll's server connections: together at most
# FETCH_CONNECTIONS. docs/fleet.md's sizes, split between the pgbouncers.
POLL_DB = "jit_poll"
POLL_POOL = 20
FETCH_CONNECTIONS = 80
# File descriptors a process may hold here (the hard limit; raising it needs
# CAP_SYS_RESOURCE): 10,000 hosts' 20,000 client connections need two generators and two
# pgbouncers.
HOSTS_PER_GENERATOR = 5000
# The hosts of one size must all be connected within this.
CONNECT_DEADLINE = 120
HOST_PASSWORD = "bench-host-password"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# A few hosts registered by jitctl itself, the rest by the same SQL in one transaction.
BY_JITCTL = 3


def host_name(i):
    return f"h{i:05d}"


def host_labels(i):
    return {"owner": f"o{i % 100}", "environment": f"e{i % 10}"}


def fetch_key_hash(password):
    """hosts.fetch_key_hash for a host role's password (common/fleet-fetch-key.h)."""
    key = hashlib.sha256(("jit-fleet-fetch-key\n" + password).encode()).hexdigest()
    return hashlib.sha256(key.encode()).hexdigest()


def scram_verifier(password):
    """PostgreSQL's SCRAM-SHA-256 verifier of password (RFC 5802, 4096 iterations)."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 4096)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda b: base64.b64encode(b).decode()
    return f"SCRAM-SHA-256$4096:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def proc_cpu(pid):
    """(own, waited-for children's) CPU seconds of pid, or (0, 0) once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    # After the name: state is fields[0], utime fields[11], stime 12, cutime 13, cstime 14.
    own = (int(fields[11]) + int(fields[12])) / CLK_TCK
    children = (int(fields[13]) + int(fields[14])) / CLK_TCK
    return own, children


def children_of(ppid):
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == ppid:
            pids.append(int(entry))
    return pids


class Bench:
    def __init__(self):
        self.pg = pgserver.PgServer(settings={
            "max_connections": 300, "shared_buffers": "128MB",
            # The hosts' fetch backends come and go through pgbouncer: keep the log quiet.
            "log_min_messages": "warning"})
        self.bouncers = []
        self.admin_password = secrets.token_hex(16)
        self.passwords = {}  # role -> password, for pgbouncer's auth_file

    # ---- setup --------------------------------------------------------------------------

    def admin_uri(self):
        return self.pg.uri("jit", ADMIN, self.admin_password)

    def sql(self, text):
        return self.pg.query(self.admin_uri(), text)

    def setup_store(self, n_hosts):
        pg = self.pg
        pg.psql(pg.superuser_uri,
                f"CREATE ROLE {ADMIN} LOGIN CREATEROLE PASSWORD '{self.admin_password}'")
        pg.psql(pg.superuser_uri, f"CREATE DATABASE jit OWNER {ADMIN}")
        run([JITCTL, "fleet", "migrate", "--database", self.admin_uri()])
        for i in range(min(BY_JITCTL, n_hosts)):
            labels = ",".join(f"{k}={v}" for k, v in sorted(host_labels(i).items()))
            p = run([JITCTL, "fleet", "add-host", host_name(i), "--database", self.admin_uri(),
                     "--labels", labels])
            line = p.stdout.strip().splitlines()[-1]
            _, _, _, role, password = line.split(":")
            self.passwords[role] = password
        started = time.monotonic()
        verifier = scram_verifier(HOST_PASSWORD)
        # What `jitctl fleet add-host` does for each of the others, in one transaction.
        self.sql(f"""
            DO $hosts$
            BEGIN
                FOR i IN {BY_JITCTL}..{n_hosts - 1} LOOP
                    EXECUTE format('CREATE ROLE %I LOGIN CONNECTION LIMIT 4 PASSWORD %L '
                                   'IN ROLE jit_fleet_host',
                                   'jit_host_h' || lpad(i::text, 5, '0'), '{verifier}');
                END LOOP;
                INSERT INTO jit_fleet.hosts (name, role_name, labels)
                SELECT 'h' || lpad(i::text, 5, '0'), 'jit_host_h' || lpad(i::text, 5, '0'),
                       jsonb_build_object('owner', 'o' || (i % 100),
                                          'environment', 'e' || (i % 10))
                FROM generate_series({BY_JITCTL}, {n_hosts - 1}) AS i;
            END
            $hosts$""")
        for i in range(BY_JITCTL, n_hosts):
            self.passwords["jit_host_" + host_name(i)] = HOST_PASSWORD
        poll_password = secrets.token_hex(16)
        self.sql(f"CREATE ROLE {POLL_LOGIN} LOGIN PASSWORD '{poll_password}' "
                 "IN ROLE jit_fleet_watch")
        self.passwords[POLL_LOGIN] = poll_password
        # The fetch through the poll login (--fetch-shared): the generator knows one
        # password, HOST_PASSWORD, and derives every host's fetch key from it, so every host
        # gets the hash of that key (those jitctl registered too: pgbouncer trusts the
        # generator's logins here, so their own passwords are never used).
        self.sql(f"UPDATE jit_fleet.hosts SET fetch_key_hash = '{fetch_key_hash(HOST_PASSWORD)}'")
        print(f"registered {n_hosts} hosts ({BY_JITCTL} with jitctl fleet add-host) in "
              f"{time.monotonic() - started:.1f} s", flush=True)

    def start_bouncers(self, count, max_clients):
        """count pgbouncers sharing one TCP port on the loopback (so_reuseport: the kernel
        spreads the connections), each with its own Unix socket for its admin console."""
        pg = self.pg
        self.stop_bouncers()
        self.bouncers, self.bdirs = [], []
        self.bouncer_runs = getattr(self, "bouncer_runs", 0) + 1
        for b in range(count):
            bdir = os.path.join(pg.dir, f"pgbouncer-{self.bouncer_runs}-{b}")
            os.mkdir(bdir, 0o755)
            os.chown(bdir, pg.uid, pg.gid)
            auth = os.path.join(bdir, "userlist.txt")
            with open(auth, "w") as f:
                for role, password in self.passwords.items():
                    f.write(f'"{role}" "{password}"\n')
                f.write(f'"{BOUNCER_ADMIN}" ""\n')
            os.chown(auth, pg.uid, pg.gid)
            os.chmod(auth, 0o600)
            ini = os.path.join(bdir, "pgbouncer.ini")
            with open(ini, "w") as f:
                f.write(f"""[databases]
{POLL_DB} = host={pg.socket_dir} port=5432 dbname=jit pool_size={POLL_POOL // count} max_db_connections={POLL_POOL // count}
jit = host={pg.socket_dir} port=5432 dbname=jit pool_size=1 max_db_connections={FETCH_CONNECTIONS // count}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {BOUNCER_PORT}
so_reuseport = 1
unix_socket_dir = {bdir}
unix_socket_mode = 0777
auth_type = trust
auth_file = {auth}
admin_users = {BOUNCER_ADMIN}
pool_mode = transaction
max_client_conn = {max_clients}
server_idle_timeout = 60
listen_backlog = 4096
logfile = {os.path.join(bdir, "pgbouncer.log")}
log_connections = 0
log_disconnections = 0
""")
            self.bouncers.append(subprocess.Popen(
                ["/usr/sbin/pgbouncer", ini], user=pg.uid, group=pg.gid, extra_groups=[],
                cwd=bdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self.bdirs.append(bdir)
            wait_for(lambda: os.path.exists(os.path.join(bdir, f".s.PGSQL.{BOUNCER_PORT}")),
                     timeout=30, what="pgbouncer's socket")

    def bouncer_conninfo(self, role=None, database="jit"):
        s = f"host=127.0.0.1 port={BOUNCER_PORT} dbname={database}"
        return s + (f" user={role}" if role else "")

    def show_pools(self):
        """(client connections, server connections) of the pgbouncers' pools for jit."""
        clients = servers = 0
        for bdir in self.bdirs:
            p = run([os.path.join(pgserver.PG_BIN, "psql"), "--no-psqlrc", "--no-align",
                     "--field-separator=|", "--dbname",
                     f"host={bdir} port={BOUNCER_PORT} dbname=pgbouncer user={BOUNCER_ADMIN}",
                     "--command", "SHOW POOLS"], env={"PATH": "/usr/bin:/bin"})
            lines = p.stdout.splitlines()
            head = lines[0].split("|")
            for line in lines[1:]:
                row = dict(zip(head, line.split("|")))
                if row.get("database") not in ("jit", POLL_DB):
                    continue
                clients += sum(int(row.get(k, 0)) for k in ("cl_active", "cl_waiting"))
                servers += sum(int(row.get(k, 0)) for k in
                               ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login"))
        return clients, servers

    def server_connections(self):
        """PostgreSQL's client backends: pgbouncer's server connections (the measuring
        sessions of this script left out)."""
        return int(self.pg.query(self.pg.superuser_uri, f"""
            SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'
            AND usename NOT IN ('{ADMIN}', '{pgserver.PG_USER}')""")[0][0])

    # ---- CPU ----------------------------------------------------------------------------

    def postmaster(self):
        with open(os.path.join(self.pg.data, "postmaster.pid")) as f:
            return int(f.readline())

    def pg_cpu(self):
        """CPU seconds of the server: the postmaster, its live children and those it reaped."""
        pm = self.postmaster()
        own, reaped = proc_cpu(pm)
        return own + reaped + sum(proc_cpu(c)[0] for c in children_of(pm))

    def cpu(self, generators):
        return {"pg": self.pg_cpu(), "bouncer": sum(proc_cpu(b.pid)[0] for b in self.bouncers),
                "generator": sum(proc_cpu(g.pid)[0] for g in generators)}

    # ---- one size -----------------------------------------------------------------------

    def make_requests(self, n, count):
        """count pending requests for the first n hosts: selectors picking 1 host, 1% and
        10% in turn. Returns [(id, class, concerned host indices)]."""
        made = []
        for j in range(count):
            cls = ("1 host", "1%", "10%")[j % 3]
            if cls == "1 host":
                target = secrets.randbelow(n)
                selector, sh, labels = host_name(target), f"'{host_name(target)}'", "{}"
                concerned = [target]
            elif cls == "1%":
                k = (j // 3) % 100
                selector, sh, labels = f"owner=o{k}", "NULL", f'{{"owner": "o{k}"}}'
                concerned = [i for i in range(n) if i % 100 == k]
            else:
                k = (j // 3) % 10
                selector, sh, labels = f"environment=e{k}", "NULL", f'{{"environment": "e{k}"}}'
                concerned = [i for i in range(n) if i % 10 == k]
            made.append((selector, sh, labels, cls, concerned))
        values = ",\n".join(
            f"('h00000', (SELECT coalesce(max(origin_id), 0) FROM jit_fleet.requests "
            f"WHERE origin_host = 'h00000') + {j + 1}, 'alice', 'sudo', 'bench', 3600, "
            f"'{sel}', {sh}, '{labels}', 'bench', '{'a' * 64}')"
            for j, (sel, sh, labels, _, _) in enumerate(made))
        ids = self.sql(f"""
            INSERT INTO jit_fleet.requests (origin_host, origin_id, requester, service, reason,
                duration_s, selector, selector_host, selector_labels, rule, policy_version)
            VALUES {values} RETURNING id""")
        return [(int(row[0]), m[3], m[4]) for row, m in zip(ids, made)]

    def approver(self, requests, marks_out, stop_at):
        """Commits the approval and then the revocation of each request, one change every
        1/RATE s, until stop_at; the commit times come from the server's clock."""
        psql = subprocess.Popen(
            [os.path.join(pgserver.PG_BIN, "psql"), "--no-psqlrc", "--quiet", "--no-align",
             "--tuples-only", "--set", "ON_ERROR_STOP=1", "--dbname", self.admin_uri()],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={"PATH": "/usr/bin:/bin"})
        start = time.monotonic()
        k = 0
        while True:
            due = start + k / RATE
            if due >= stop_at:
                break
            time.sleep(max(0.0, due - time.monotonic()))
            rid, cls, concerned = requests[k // 2]
            if k % 2 == 0:
                change = (f"INSERT INTO jit_fleet.approvals (request_id, origin_host, approver, "
                          f"verdict) VALUES ({rid}, 'h00001', 'bob', 'approve');")
            else:
                change = (f"INSERT INTO jit_fleet.revocations (request_id, origin_host, revoker, "
                          f"reason) VALUES ({rid}, 'h00001', 'bob', 'bench');")
            # Only the approver writes: the newest change is this one.
            psql.stdin.write(f"BEGIN; {change} COMMIT;\n"
                             f"SELECT {k}, max(seq), extract(epoch FROM clock_timestamp()) "
                             f"FROM jit_fleet.changes;\n")
            psql.stdin.flush()
            k += 1
        out, err = psql.communicate()
        if psql.returncode != 0:
            raise RuntimeError(f"the approver failed: {err}")
        for line in out.splitlines():
            kk, seq, at = line.split("|")
            kk = int(kk)
            rid, cls, concerned = requests[kk // 2]
            marks_out.append((int(seq), float(at), cls, concerned))

    def run_size(self, n, baseline, shared=False):
        start_cursor = int(self.sql("SELECT coalesce(max(seq), 0) FROM jit_fleet.changes")[0][0])
        changes = int(WINDOW * RATE) + 2
        requests = self.make_requests(n, (changes + 1) // 2)
        cursor = int(self.sql("SELECT coalesce(max(seq), 0) FROM jit_fleet.changes")[0][0])
        started = time.monotonic()
        gens, events, stderr_lines = [], [], []
        for first in range(0, n, HOSTS_PER_GENERATOR):
            count = min(HOSTS_PER_GENERATOR, n - first)
            events.append(os.path.join(self.pg.dir, f"events-{n}-{first}"))
            gen = subprocess.Popen(
                [GENERATOR, "--poll-conninfo", self.bouncer_conninfo(POLL_LOGIN, POLL_DB),
                 "--fetch-conninfo", self.bouncer_conninfo(), "--hosts", str(count),
                 "--first", str(first), "--cursor", str(cursor), "--events", events[-1],
                 "--ramp", str(RAMP // -(-n // HOSTS_PER_GENERATOR))]
                + (["--fetch-shared", HOST_PASSWORD] if shared else []),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            threading.Thread(target=echo_lines, args=(gen.stderr, stderr_lines, first),
                             daemon=True).start()
            gen.lines = queue.Queue()
            threading.Thread(target=lambda g=gen: [g.lines.put(x.strip()) for x in g.stdout],
                             daemon=True).start()
            gens.append(gen)
        try:
            for gen in gens:
                if next_line(gen, started + CONNECT_DEADLINE) != "ready":
                    raise RuntimeError(f"the hosts did not all connect within {CONNECT_DEADLINE} "
                                       f"s: {stderr_lines[-1].strip() if stderr_lines else ''}")
            connect_s = time.monotonic() - started
            time.sleep(SETTLE)
            for gen in gens:
                gen.send_signal(signal.SIGUSR1)
            for gen in gens:
                if next_line(gen, time.monotonic() + 30) != "window":
                    raise RuntimeError("a generator did not start its window")
        except BaseException:
            for gen in gens:
                gen.kill()
            raise
        cpu0, t0 = self.cpu(gens), time.monotonic()
        marks = []
        stop_at = t0 + WINDOW
        approver = threading.Thread(target=self.approver, args=(requests, marks, stop_at))
        approver.start()
        samples = []
        while time.monotonic() < stop_at - 1:
            time.sleep(min(5.0, max(0.0, stop_at - 1 - time.monotonic())))
            samples.append((self.server_connections(), *self.show_pools()))
        approver.join()
        time.sleep(max(0.0, stop_at - time.monotonic()))
        cpu1, t1 = self.cpu(gens), time.monotonic()
        time.sleep(2 * PERIOD + 1)  # the last changes' deliveries
        summaries = []
        for gen in gens:
            gen.send_signal(signal.SIGTERM)
        for gen in gens:
            gen.wait(timeout=60)
            summaries.append(json.loads(next_line(gen, time.monotonic() + 10)))
        summary = {k: sum(x[k] for x in summaries) for k in summaries[0] if not k.endswith("_ms")}
        for k in ("poll_p50_ms", "fetch_p50_ms"):
            summary[k] = sum(x[k] for x in summaries) / len(summaries)
        for k in ("poll_p99_ms", "fetch_p99_ms"):
            summary[k] = max(x[k] for x in summaries)

        first = {}
        for path in events:
            with open(path) as f:
                for line in f:
                    seq, idx, usec = line.split()
                    key = (int(seq), int(idx))
                    if key not in first:
                        first[key] = int(usec) / 1e6
        latencies, by_class, expected, delivered = [], {}, 0, 0
        for seq, at, cls, concerned in marks:
            for idx in concerned:
                expected += 1
                t = first.get((seq, idx))
                if t is None:
                    continue
                delivered += 1
                latencies.append(t - at)
                by_class.setdefault(cls, []).append(t - at)
        window = t1 - t0
        host_hours = n * window / 3600
        conns = [max(s[i] for s in samples) if samples else 0 for i in range(3)]
        return {
            "n": n, "label": f"{n} shared" if shared else str(n), "connect_s": connect_s, "window_s": window, "changes": len(marks),
            "expected": expected, "delivered": delivered,
            "p50": quantile(latencies, 0.5), "p99": quantile(latencies, 0.99),
            "max": max(latencies) if latencies else float("nan"),
            "by_class": {c: (len(v), quantile(v, 0.5), quantile(v, 0.99))
                         for c, v in by_class.items()},
            "pg_cpu": (cpu1["pg"] - cpu0["pg"]) / host_hours,
            "bouncer_cpu": (cpu1["bouncer"] - cpu0["bouncer"]) / host_hours,
            "pg_cores": (cpu1["pg"] - cpu0["pg"]) / window,
            "bouncer_cores": (cpu1["bouncer"] - cpu0["bouncer"]) / window,
            "generator_cores": (cpu1["generator"] - cpu0["generator"]) / window,
            "server_conns": conns[0], "client_conns": conns[1], "bouncer_server_conns": conns[2],
            "summary": summary, "baseline": baseline, "generators": len(gens),
            "errors": stderr_lines[-3:],
        }

    def stop_bouncers(self):
        for b in self.bouncers:
            b.terminate()
            try:
                b.wait(timeout=10)
            except subprocess.TimeoutExpired:
                b.kill()
        self.bouncers = []

    def close(self):
        self.stop_bouncers()
        self.pg.close()


def next_line(gen, deadline):
    """The generator's next line on stdout, or None at the deadline."""
    try:
        return gen.lines.get(timeout=max(0.0, deadline - time.monotonic()))
    except queue.Empty:
        return None


def echo_lines(stream, into, first):
    """Keeps a generator's messages, and shows its progress while it connects."""
    for line in stream:
        into.append(line)
        if line.startswith("connecting:"):
            print(f"    generator of hosts {first}-: {line.strip()}", flush=True)


def quantile(values, q):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def on_sigterm(signum, frame):
    raise SystemExit(f"stopped by signal {signum}")


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    if os.geteuid() != 0:
        print("bench-fleet needs root", file=sys.stderr)
        return 77
    why = pgserver.unavailable()
    if why or not os.access("/usr/sbin/pgbouncer", os.X_OK):
        print(f"SKIP: {why or 'pgbouncer not installed (Debian: pgbouncer)'}", file=sys.stderr)
        return 77
    if not GENERATOR or not JITCTL:
        raise RuntimeError("JIT_BENCH_FLEET and JITCTL must name the built programs")
    top = max(SIZES)
    # Two client connections a host: each generator and each pgbouncer holds those of its
    # share of the hosts.
    bouncers = max(1, -(-2 * top // 16000))
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    need = max(2 * HOSTS_PER_GENERATOR, 2 * top // bouncers) + 1024
    if hard != resource.RLIM_INFINITY and hard < need:
        print(f"SKIP: {need} file descriptors needed, the hard limit is {hard}", file=sys.stderr)
        return 77
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    bench = Bench()
    results, failed = [], []
    try:
        bench.setup_store(top)
        bench.start_bouncers(bouncers, 2 * top + 1000)
        out = run([GENERATOR, "--poll-conninfo", bench.bouncer_conninfo(POLL_LOGIN),
                   "--baseline", "2000"])
        baseline = json.loads(out.stdout)
        print(f"baseline: SELECT 1 through pgbouncer, idle: p50 {baseline['select1_p50_ms']:.3f} "
              f"ms, p99 {baseline['select1_p99_ms']:.3f} ms", flush=True)
        for n, shared in [(n, False) for n in SIZES] + [(n, True) for n in SHARED_SIZES]:
            # Fresh pgbouncers for each size: a pool that collapsed keeps the clients of the
            # last size queued until its query_wait_timeout.
            bench.start_bouncers(bouncers, 2 * top + 1000)
            try:
                r = bench.run_size(n, baseline, shared)
            except RuntimeError as e:
                label = f"{n} shared" if shared else str(n)
                print(f"N={label}: FAILED: {e}", flush=True)
                failed.append((label, str(e)))
                continue
            results.append(r)
            print_one(r)
    finally:
        bench.close()
    print_table(results, failed)
    return 0


def print_one(r):
    s = r["summary"]
    print(f"N={r['label']}: connected in {r['connect_s']:.1f} s; {r['changes']} changes in "
          f"{r['window_s']:.0f} s, {r['delivered']}/{r['expected']} deliveries; "
          f"polls {s['polls']} (round trip p50 {s['poll_p50_ms']:.2f} ms, p99 "
          f"{s['poll_p99_ms']:.2f} ms), fetches {s['fetches']} (p50 {s['fetch_p50_ms']:.2f} ms, "
          f"p99 {s['fetch_p99_ms']:.2f} ms), missing {s['missing']}, errors "
          f"{s['query_errors']}, timeouts {s['timeouts']}, lost {s['connection_losses']}; "
          f"cores: PostgreSQL {r['pg_cores']:.2f}, pgbouncer {r['bouncer_cores']:.2f}, "
          f"generator {r['generator_cores']:.2f}", flush=True)
    print(f"    {r['generators']} generator process(es), {r['bouncer_server_conns']} server "
          f"connections held by pgbouncer (the most seen)", flush=True)
    for cls, (count, p50, p99) in sorted(r["by_class"].items()):
        print(f"    selector {cls:>6}: {count} deliveries, p50 {p50:.2f} s, p99 {p99:.2f} s",
              flush=True)
    for e in r["errors"]:
        print(f"    generator: {e.strip()}", flush=True)


def print_table(results, failed):
    print()
    print(f"Fleet propagation (poll P = {PERIOD:.0f} s ± 0.2 s, {RATE} changes/s: approvals "
          f"and revocations for 1 host, 1% and 10% of the hosts in turn)")
    print(f"{'N':>12} {'p50 s':>6} {'p99 s':>6} {'deliv.':>7} {'PG CPU s/host-h':>16} "
          f"{'pgb CPU s/host-h':>17} {'srv conns':>9} {'pgb clients':>11} "
          f"{'poll p50/floor':>14} {'goal':>5}")
    for r in results:
        floor = r["baseline"]["select1_p50_ms"]
        ratio = r["summary"]["poll_p50_ms"] / floor if floor else float("nan")
        ok = "PASS" if r["p99"] <= GOAL_P99 and r["delivered"] == r["expected"] else "MISS"
        print(f"{r['label']:>12} {r['p50']:>6.2f} {r['p99']:>6.2f} "
              f"{100 * r['delivered'] / max(1, r['expected']):>6.1f}% {r['pg_cpu']:>16.3f} "
              f"{r['bouncer_cpu']:>17.3f} {r['server_conns']:>9} {r['client_conns']:>11} "
              f"{ratio:>13.1f}x {ok:>5}")
    for label, why in failed:
        print(f"{label:>12} not measured: {why}")
    print(f"Latency floor: a bare SELECT 1 through the same pgbouncer, idle: "
          f"{results[0]['baseline']['select1_p50_ms']:.3f} ms p50; the wait for the next poll "
          f"alone is uniform over P: p50 {PERIOD / 2:.2f} s, p99 {0.99 * PERIOD:.2f} s.")
    print("N shared: the fetch through the poll login (jit_fleet.fetch_for_host with the host's "
          "fetch key, as the broker sends it with poll credentials) instead of the host's own role.")
    # From the largest N that delivered everything, the largest N, and the shared fetch.
    own = [r for r in results if r["label"] == str(r["n"])]
    whole = [r for r in own if r["delivered"] == r["expected"]]
    chosen = []
    for r in ([max(whole, key=lambda r: r["n"])] if whole else []) + \
            [max(own, key=lambda r: r["n"])] + [r for r in results if r not in own][-1:]:
        if r not in chosen:
            chosen.append(r)
    for r in chosen:
        print_extrapolation(r)


def print_extrapolation(big):
    scale = 10000 / big["n"]
    print(f"Extrapolation to 10,000 real hosts (from N={big['label']}, server side as measured, "
          f"linear in N): PostgreSQL {big['pg_cores'] * scale:.2f} cores, pgbouncer "
          f"{big['bouncer_cores'] * scale:.2f} cores, {int(big['server_conns'])} server "
          f"connections, {10000 if big['label'] != str(big['n']) else 20000} client "
          f"connections (the poll login's, and the own role's where a host fetched). "
          f"{big['delivered']}/{big['expected']} delivered. Here one machine "
          f"of {os.cpu_count()} cores also ran the {big['n']} hosts' generator "
          f"({big['generator_cores']:.2f} cores), which 10,000 machines would carry "
          f"themselves, with no network between them: add each host's round trip to the "
          f"store twice (poll, then fetch) to the figures above.")


if __name__ == "__main__":
    sys.exit(main())
