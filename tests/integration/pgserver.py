# SPDX-License-Identifier: MIT
"""A real PostgreSQL server for the fleet's tests (docs/fleet.md).

Debian's server binaries (package postgresql-15) run as the unprivileged system user
`postgres` (which the package creates; when only the binaries are there, the helper creates
it in a private copy of /etc, as jittest.Sandbox does for its users) from a fresh cluster in a temporary directory. The server listens on a Unix socket
in that directory only: no TCP, nothing another program on the machine would find, unless
PgServer(tcp=True) asks for 127.0.0.1 too (on a free port, self.port, which then names the
socket as well). Every role logs in with a SCRAM password from a password file, as a host
broker will.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile

from jittest import run, wait_for

PG_BIN = os.environ.get("JIT_PG_BIN", "/usr/lib/postgresql/15/bin")
PG_USER = "postgres"
SUPERUSER_PASSWORD = "superuser-of-the-test-cluster"


def unavailable():
    """Why no server can be started here, or None."""
    for tool in ("initdb", "pg_ctl", "postgres", "psql"):
        if not os.access(os.path.join(PG_BIN, tool), os.X_OK):
            return f"PostgreSQL server binaries not installed ({PG_BIN}/{tool}; Debian: postgresql-15)"
    return None


def free_tcp_port():
    """A TCP port of 127.0.0.1 nobody listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self, tcp=False, settings=None):
        """tcp: listen on 127.0.0.1 too; settings: server settings that override the
        defaults below (name: value)."""
        self.settings = dict(settings or {})
        self.etc_copy = None
        self.tcp = tcp
        self.port = free_tcp_port() if tcp else 5432
        self.bouncers = []  # closed before the server
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            self._private_etc()
            run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                 "--shell", "/usr/sbin/nologin", PG_USER])
        pw = pwd.getpwnam(PG_USER)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.dir = tempfile.mkdtemp(prefix="jit-pg-")
        os.chmod(self.dir, 0o755)  # root's clients reach the socket; only postgres writes
        os.chown(self.dir, self.uid, self.gid)
        self.data = os.path.join(self.dir, "data")
        self.socket_dir = self.dir
        self.passfiles = os.path.join(self.dir, "pass")  # root's: one password file per role
        os.mkdir(self.passfiles, 0o700)
        self.started = False
        self._initdb()
        self.start()
        self.superuser_uri = self.uri("postgres", PG_USER, SUPERUSER_PASSWORD)

    def _private_etc(self):
        """A copy of /etc bound over /etc in this mount namespace only, so that the user
        added to it never reaches the machine's own."""
        if os.readlink("/proc/self/ns/mnt") == os.readlink(f"/proc/{os.getppid()}/ns/mnt"):
            raise RuntimeError("not in a private mount namespace: run under `unshare --mount`")
        run(["mount", "--make-rprivate", "/"])
        self.etc_copy = tempfile.mkdtemp(prefix="jit-pg-etc-")
        run(["cp", "-a", "/etc/.", self.etc_copy])
        run(["mount", "--bind", self.etc_copy, "/etc"])

    def _as_postgres(self, argv, check=True):
        return run(argv, check=check, user=self.uid, group=self.gid, extra_groups=[],
                   cwd=self.dir, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"})

    def _initdb(self):
        pwfile = os.path.join(self.dir, "superuser.pw")
        with open(pwfile, "w") as f:
            f.write(SUPERUSER_PASSWORD + "\n")
        os.chown(pwfile, self.uid, self.gid)
        os.chmod(pwfile, 0o600)
        self._as_postgres([os.path.join(PG_BIN, "initdb"), "--pgdata", self.data,
                           "--username", PG_USER, "--pwfile", pwfile,
                           "--auth-local=scram-sha-256", "--auth-host=reject",
                           "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
                           "--no-instructions"])
        os.unlink(pwfile)
        if self.tcp:
            # Before initdb's "reject" lines: the first line that matches decides.
            hba = os.path.join(self.data, "pg_hba.conf")
            with open(hba) as f:
                text = f.read()
            with open(hba, "w") as f:
                f.write("host all all 127.0.0.1/32 scram-sha-256\n" + text)

    def start(self):
        options = " ".join([
            "-c listen_addresses='127.0.0.1'" if self.tcp else "-c listen_addresses=''",
            f"-c unix_socket_directories='{self.socket_dir}'",
            "-c unix_socket_permissions=0777",
            f"-c port={self.port}",
            "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
            "-c shared_buffers=16MB", "-c max_connections=40",
            "-c log_min_messages=warning",
        ] + [f"-c {name}={value}" for name, value in self.settings.items()])
        self._as_postgres([os.path.join(PG_BIN, "pg_ctl"), "start", "--pgdata", self.data,
                           "--wait", "--timeout=60", "--log", os.path.join(self.dir, "server.log"),
                           "--options", options])
        self.started = True
        wait_for(lambda: os.path.exists(os.path.join(self.socket_dir, f".s.PGSQL.{self.port}")),
                 timeout=30, what="the PostgreSQL socket")

    def stop(self):
        if self.started:
            self._as_postgres([os.path.join(PG_BIN, "pg_ctl"), "stop", "--pgdata", self.data,
                               "--mode=fast", "--wait", "--timeout=60"], check=False)
            self.started = False

    def close(self):
        for b in self.bouncers:
            b.close()
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.etc_copy:
            run(["umount", "/etc"], check=False)
            shutil.rmtree(self.etc_copy, ignore_errors=True)

    def log(self):
        try:
            with open(os.path.join(self.dir, "server.log")) as f:
                return f.read()
        except OSError:
            return ""

    def passfile(self, role, password, name=None):
        """A libpq password file (mode 0600, as libpq demands) holding role's password; named
        after the role unless name is given."""
        path = os.path.join(self.passfiles, name or role)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"*:*:*:{role}:{password}\n")
        return path

    def uri(self, database, role, password=None, passfile=None):
        """The libpq URI of database as role, through the private socket."""
        if passfile is None:
            passfile = self.passfile(role, password)
        return (f"postgresql:///{database}?host={self.socket_dir}&port={self.port}"
                f"&user={role}&passfile={passfile}")

    def psql(self, uri, sql, check=True):
        """Runs sql as the URI's role; the CompletedProcess (stdout: unaligned rows)."""
        return run([os.path.join(PG_BIN, "psql"), "--no-psqlrc", "--quiet", "--no-align",
                    "--tuples-only", "--set", "ON_ERROR_STOP=1", "--dbname", uri,
                    "--command", sql], check=check, env={"PATH": "/usr/bin:/bin"})

    def query(self, uri, sql):
        """The rows sql returns, each a list of column texts."""
        out = self.psql(uri, sql).stdout
        return [line.split("|") for line in out.splitlines() if line]


class PgBouncer:
    """Debian's pgbouncer in front of a PgServer, in transaction pooling mode, on a Unix
    socket of its own (self.socket_dir, self.port): no TCP. It authenticates the roles
    given with their SCRAM secrets (read from the server by its superuser) and logs into
    the server with them."""

    BIN = "/usr/sbin/pgbouncer"

    def __init__(self, pg, roles, database="jit"):
        self.pg = pg
        self.dir = os.path.join(pg.dir, "bouncer")
        os.makedirs(self.dir, exist_ok=True)
        os.chown(self.dir, pg.uid, pg.gid)
        self.socket_dir = self.dir
        self.port = free_tcp_port()  # only names the socket
        self.write_auth_file(roles)
        conf = os.path.join(self.dir, "pgbouncer.ini")
        with open(conf, "w") as f:
            f.write(f"""[databases]
{database} = host={pg.socket_dir} port={pg.port} dbname={database}

[pgbouncer]
listen_addr =
listen_port = {self.port}
unix_socket_dir = {self.dir}
unix_socket_mode = 0777
auth_type = scram-sha-256
auth_file = {self.dir}/userlist.txt
pool_mode = transaction
max_client_conn = 100
default_pool_size = 4
server_reset_query =
logfile = {self.dir}/pgbouncer.log
pidfile = {self.dir}/pgbouncer.pid
log_connections = 1
""")
        self.conf = conf
        pg.bouncers.append(self)
        self.proc = subprocess.Popen([self.BIN, conf], user=pg.uid, group=pg.gid,
                                     extra_groups=[], cwd=self.dir,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(os.path.join(self.dir, f".s.PGSQL.{self.port}")),
                 timeout=15, what="pgbouncer's socket")

    def write_auth_file(self, roles):
        names = ",".join("'" + r + "'" for r in roles)
        rows = self.pg.query(self.pg.superuser_uri,
                             f"SELECT rolname, rolpassword FROM pg_authid WHERE rolname IN ({names})")
        path = os.path.join(self.dir, "userlist.txt")
        with open(path, "w") as f:
            for name, secret in rows:
                f.write(f'"{name}" "{secret}"\n')
        os.chown(path, self.pg.uid, self.pg.gid)
        os.chmod(path, 0o600)

    def reload(self, roles):
        """The auth file again (new roles), then SIGHUP."""
        self.write_auth_file(roles)
        self.proc.send_signal(signal.SIGHUP)

    def log(self):
        try:
            with open(os.path.join(self.dir, "pgbouncer.log")) as f:
                return f.read()
        except OSError:
            return ""

    def uri(self, database="jit"):
        return f"postgresql:///{database}?host={self.socket_dir}&port={self.port}"

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
        self.proc = None
