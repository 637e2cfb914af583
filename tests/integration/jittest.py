# SPDX-License-Identifier: MIT
"""Harness for jit's integration tests.

Each test program runs as root inside its own mount namespace (meson starts it under
`unshare --mount --propagation private`). There it binds a private copy of /etc over
/etc, so the Unix users and groups it creates, the sudoers entry and the PAM service
file it writes exist only for this test and the machine's own /etc is never touched.
It starts a private systemd-journald on tmpfs, a real jit-brokerd on a temporary
socket, database and policy, and acts as real users through setpriv(1). A test class
with SSHD = True also gets a real sshd on 127.0.0.1 (class Sshd), logged into with each
user's own key (User.ssh).
"""

import fcntl
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

BROKERD = os.environ.get("JIT_BROKERD", "")
JITCTL = os.environ.get("JITCTL", "")
PAM_JIT = os.environ.get("PAM_JIT", "")
PAMTEST = os.environ.get("PAMTEST_JIT", "")
LIBPAM_WRAPPER = os.environ.get("LIBPAM_WRAPPER", "libpam_wrapper.so")
PAM_WRAPPER_LOCK = "/tmp/jit-tests-pam-wrapper.lock"

# A hangup is how the broker ends a session, and an ignored signal stays ignored across
# fork and exec: a suite started under nohup (or by a runner that ignores SIGHUP) would hand
# that to sudo's command, which then outlives its grant until the SIGKILL after the grace.
# The processes the tests start get the default, as a login session's have.
signal.signal(signal.SIGHUP, signal.SIG_DFL)
SANITIZED = os.environ.get("JIT_SANITIZED", "0") == "1"
SSHD_BIN = os.environ.get("JIT_TEST_SSHD", "/usr/sbin/sshd")  # absolute: sshd re-executes itself
SSH_BIN = shutil.which("ssh") or "/usr/bin/ssh"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
# Helpers that run as test users need an interpreter they may execute (not one under /root).
SYSTEM_PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable

# Exit codes of jitctl (README.md, "jitctl").
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_NOT_FOUND = range(6)

PAM_TIMEOUT_MS = 1500


def wait_for(predicate, timeout=10.0, what="condition"):
    """Polls predicate until it returns a true value; fails the test after timeout."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def run(argv, check=True, **kw):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f"{argv} failed ({p.returncode}): {p.stderr.strip()}")
    return p


class Sandbox:
    """The private world of one test program: /etc copy, users, journald, sudo config."""

    def __init__(self):
        if os.geteuid() != 0:
            print("integration tests need root", file=sys.stderr)
            sys.exit(77)
        for path, what in ((BROKERD, "JIT_BROKERD"), (JITCTL, "JITCTL"), (PAM_JIT, "PAM_JIT")):
            if not path or not os.path.exists(path):
                raise RuntimeError(f"{what} must name the built binary (got {path!r})")
        self.root = tempfile.mkdtemp(prefix="jit-test-")
        os.chmod(self.root, 0o755)  # test users must reach the socket inside
        self.journald = None
        self.sshd = None  # an Sshd, when the test class sets SSHD = True
        self._private_etc()
        self._private_run()
        self._private_dev()

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def script(self, name):
        """A helper script of this directory, copied where every test user can read it."""
        dest = self.path("scripts", name)
        if not os.path.exists(dest):
            os.makedirs(self.path("scripts"), mode=0o755, exist_ok=True)
            shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), name), dest)
            os.chmod(dest, 0o644)
        return dest

    MOUNT_TARGETS = ("/etc", "/run", "/dev", "/var/log", "/sys/fs/cgroup")

    def _mount_check(self):
        # We must be in our own mount namespace, or binding over /etc would change the host.
        if os.readlink("/proc/self/ns/mnt") == os.readlink(f"/proc/{os.getppid()}/ns/mnt"):
            raise RuntimeError("not in a private mount namespace: run under `unshare --mount`")
        # ... and nothing we mount may propagate back. In a chroot "/" is not a mount point
        # and cannot be made private; then every mount we touch must already be unshared.
        if run(["mount", "--make-rprivate", "/"], check=False).returncode == 0:
            return
        for target in self.MOUNT_TARGETS:
            prop = run(["findmnt", "-no", "PROPAGATION", "-T", target], check=False).stdout
            if "shared" in prop:
                raise RuntimeError(f"{target} is on a shared mount that cannot be made private here; "
                                   "mounts would leak to the host")

    def _private_etc(self):
        self._mount_check()
        etc = self.path("etc")
        run(["cp", "-a", "/etc", etc])
        run(["mount", "--bind", etc, "/etc"])
        # The system user the broker checks signatures as (packaging/jit.sysusers), as the
        # package would create it.
        self.add_system_user("jit-verify")
        # sudo: our test group may run anything without a password; the account stack
        # (pam_jit) still runs, which is what the tests are about.
        with open("/etc/sudoers.d/jit-test", "w") as f:
            f.write("Defaults !lecture\n%jit-test ALL=(ALL:ALL) NOPASSWD: ALL\n")
        os.chmod("/etc/sudoers.d/jit-test", 0o440)
        # sudo looks up this host's name and says "unable to resolve host" on the terminal
        # when it cannot (a container or a fresh root without it in /etc/hosts): the
        # tests read the terminal, so the private /etc/hosts names it.
        host = socket.gethostname()
        hosts = ""
        if os.path.exists("/etc/hosts"):
            with open("/etc/hosts") as f:
                hosts = f.read()
        if not any(host in line.split()[1:] for line in hosts.splitlines()
                   if line.strip() and not line.lstrip().startswith("#")):
            with open("/etc/hosts", "a") as f:
                f.write(f"{'' if not hosts or hosts.endswith(chr(10)) else chr(10)}127.0.1.1 {host}\n")
        os.makedirs("/etc/systemd", exist_ok=True)
        with open("/etc/systemd/journald.conf", "w") as f:
            f.write("[Journal]\nStorage=volatile\nRateLimitBurst=0\nRateLimitIntervalSec=0\n")
        self.write_pam_service("sudo", self.pam_lines())
        # Debian's "sudo -i" runs the PAM service sudo-i; service= asks about sudo grants.
        self.write_pam_service("sudo-i", self.pam_lines(extra="service=sudo"))

    def _private_dev(self):
        """A private /dev whose "log" is this test's journald. syslog(3) — and so every PAM
        module's pam_syslog() inside sudo and sshd — writes to /dev/log, which a machine may
        lack (a container, a chroot) or point at its own syslog daemon. The copy holds the
        same device nodes, with /dev's own mounts (pts, shm, ...) bound into it, and replaces
        /dev in this mount namespace only."""
        dev = self.path("dev")
        os.makedirs(dev)
        run(["mount", "-t", "tmpfs", "-o", "mode=0755,nosuid", "tmpfs", dev])
        run(["cp", "-a", "--one-file-system", "/dev/.", dev])  # mount points come empty
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
        for point in sorted({p for p in points if p.startswith("/dev/") and p.count("/") == 2}):
            run(["mount", "--rbind", point, dev + point[len("/dev"):]])
        log = os.path.join(dev, "log")
        if os.path.lexists(log):
            os.unlink(log)
        os.symlink("/run/systemd/journal/dev-log", log)
        run(["mount", "--move", dev, "/dev"])

    def _private_run(self):
        for d in ("/run/sudo", "/run/systemd/journal", "/run/log/journal"):
            os.makedirs(d, exist_ok=True)
            run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", d])
        if os.path.isdir("/var/log/journal"):
            run(["mount", "-t", "tmpfs", "tmpfs", "/var/log/journal"])

    def pam_lines(self, socket_path=None, extra=""):
        sock = socket_path or self.path("run", "broker.sock")
        # The session line registers sudo's session with the broker, so that the broker
        # can end it with its grant (not in the sanitized build: pam_wrapper runs only
        # the account stack there).
        return (f"auth     required pam_permit.so\n"
                f"account  required {PAM_JIT} socket={sock} timeout={PAM_TIMEOUT_MS} {extra}\n"
                f"session  required pam_permit.so\n"  # as Debian's common-session stands there
                f"session  required {PAM_JIT} socket={sock} timeout={PAM_TIMEOUT_MS} {extra}\n")

    def write_pam_service(self, name, text, directory="/etc/pam.d"):
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, name), "w") as f:
            f.write(text)

    def write_sshd_pam(self, session_jit=False, socket_path=None, extra=""):
        """Writes the private /etc/pam.d/sshd. sshd's public-key login never runs the auth
        stack, and pam_deny.so there keeps any other way in shut; the account stack is
        pam_jit.so, asking about PAM service "sshd". With session_jit, pam_jit.so also runs
        in the session stack (same arguments); otherwise the session stack only permits.
        sshd starts PAM anew for every connection, so a rewrite applies to the next login."""
        sock = socket_path or self.path("run", "broker.sock")
        jit = f"{PAM_JIT} socket={sock} timeout={PAM_TIMEOUT_MS} {extra}".rstrip()
        session = jit if session_jit else "pam_permit.so"
        self.write_pam_service("sshd", f"auth     required pam_deny.so\n"
                                       f"account  required {jit}\n"
                                       f"password required pam_deny.so\n"
                                       f"session  required {session}\n")

    def add_group(self, name):
        run(["groupadd", "-f", name])

    def add_system_user(self, name):
        """A system user with its own group, no home and no shell, as sysusers.d makes one;
        kept when it is there already."""
        if run(["getent", "passwd", name], check=False).returncode != 0:
            run(["useradd", "--system", "-U", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", name])

    def add_user(self, name, groups=()):
        for g in groups:
            self.add_group(g)
        argv = ["useradd", "-M", "-N", "-g", "users", "-s", "/bin/sh", "-d", "/nonexistent"]
        if groups:
            argv += ["-G", ",".join(groups)]
        run(argv + [name])

    def start_journald(self):
        binary = next((p for p in ("/lib/systemd/systemd-journald", "/usr/lib/systemd/systemd-journald")
                       if os.path.exists(p)), None)
        if not binary:
            raise RuntimeError("systemd-journald not found (install the systemd package)")
        # journald needs a machine id; a fresh chroot or container may have none. This is
        # the private /etc copy, so writing one changes nothing on the machine.
        try:
            with open("/etc/machine-id") as f:
                machine_id = f.read().strip()
        except FileNotFoundError:
            machine_id = ""
        if len(machine_id) != 32 or machine_id == "uninitialized":
            with open("/etc/machine-id", "w") as f:
                f.write(os.urandom(16).hex() + "\n")
        # journald needs the cgroup file system, which a chroot may lack: mount it here,
        # inside this test's own mount namespace.
        if run(["mountpoint", "-q", "/sys/fs/cgroup"], check=False).returncode != 0:
            run(["mount", "-t", "cgroup2", "cgroup2", "/sys/fs/cgroup"])
        self.journald_log = open(self.path("journald.log"), "w")
        self.journald = subprocess.Popen([binary], stdout=self.journald_log, stderr=self.journald_log)
        wait_for(lambda: os.path.exists("/run/systemd/journal/socket") or self.journald.poll() is not None,
                 what="journald's socket")
        # Ready means a message sent now can be read back.
        marker = "jit-test-ready-" + os.urandom(8).hex()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(f"MESSAGE={marker}\nSYSLOG_IDENTIFIER=jit-test\n".encode(), "/run/systemd/journal/socket")
        s.close()

        def seen():
            if self.journald.poll() is not None:
                raise RuntimeError(f"systemd-journald exited with {self.journald.returncode}; "
                                   f"see {self.journald_log.name}")
            return any(e.get("MESSAGE") == marker for e in self.journal("SYSLOG_IDENTIFIER=jit-test"))
        wait_for(seen, what="journald to store a first message")

    def journal(self, *matches):
        p = run(["journalctl", "--no-pager", "-o", "json", "--all"] + list(matches), check=False)
        return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]

    def close(self):
        if self.sshd:
            self.sshd.stop()
        if self.journald:
            self.journald.terminate()
            self.journald.wait()
            self.journald_log.close()
        if not os.environ.get("JIT_TEST_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)


class Broker:
    """A real jit-brokerd on the sandbox's socket, database and policy."""

    def __init__(self, sandbox, policy):
        self.sb = sandbox
        os.makedirs(sandbox.path("run"), exist_ok=True)
        os.chmod(sandbox.path("run"), 0o755)
        self.socket = sandbox.path("run", "broker.sock")
        self.db = sandbox.path("state", "jit.db")
        self.policy = sandbox.path("policy.conf")
        self.log = open(sandbox.path("broker.log"), "a")
        self.proc = None
        self.write_policy(policy)

    def write_policy(self, text):
        tmp = self.policy + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.rename(tmp, self.policy)

    def start(self, expect_ready=True, args=(), env=None, wrap=()):
        """Starts jit-brokerd with the sandbox's paths, and args and env (a dict) added;
        under the command wrap (an argv prefix, e.g. unshare) when given."""
        notify_path = self.sb.path("notify.sock")
        if os.path.exists(notify_path):
            os.unlink(notify_path)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        env = dict(os.environ, NOTIFY_SOCKET=notify_path, **(env or {}))
        env.pop("JOURNAL_STREAM", None)
        self.wrapped = bool(wrap)
        self.proc = subprocess.Popen([*wrap, BROKERD, "--socket", self.socket, "--db", self.db, "--policy", self.policy,
                                      *args], stdout=self.log, stderr=self.log, env=env)
        if not expect_ready:
            notify.close()
            return
        # Wait for READY=1 rather than for the socket file: READY comes after listen().
        notify.settimeout(0.2)
        deadline = time.monotonic() + 15
        try:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"jit-brokerd exited with {self.proc.returncode}; see {self.log.name}")
                if time.monotonic() > deadline:
                    raise RuntimeError("jit-brokerd did not become ready in 15 s")
                try:
                    data = notify.recv(4096).decode()
                except socket.timeout:
                    continue
                if "READY=1" in data.split("\n"):
                    return
        finally:
            notify.close()

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            if self.wrapped:  # the broker is the wrapper's child (unshare --fork ignores SIGTERM)
                with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                    for child in f.read().split():
                        os.kill(int(child), sig)
            else:
                self.proc.send_signal(sig)
            self.proc.wait(timeout=15)
        code = self.proc.returncode if self.proc else None
        self.proc = None
        return code

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def call_raw(self, payload, timeout=5.0):
        """Sends raw bytes as root and returns the reply frame's JSON (or None on close)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.socket)
        try:
            s.sendall(payload)
            header = b""
            while len(header) < 4:
                chunk = s.recv(4 - len(header))
                if not chunk:
                    return None
                header += chunk
            n = struct.unpack(">I", header)[0]
            body = b""
            while len(body) < n:
                chunk = s.recv(n - len(body))
                if not chunk:
                    break
                body += chunk
            return json.loads(body)
        finally:
            s.close()

    def call(self, obj):
        body = json.dumps(obj).encode()
        return self.call_raw(struct.pack(">I", len(body)) + body)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid):
    """The pids of pid's living descendants (children first), read from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces and ")"
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(0), []):
            found.append(child)
            todo.append(child)
    return found


def start_time(pid):
    """pid's start time (clock ticks since boot), or None when no such process is running
    (a zombie counts as gone): with the pid, it names one process even if the pid is reused."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return None if fields[0] in ("Z", "X") else int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def signal_if_same(pid, started, sig):
    if started is not None and start_time(pid) == started:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


class Sshd:
    """A real OpenSSH sshd (sshd -D -e) on 127.0.0.1 and a free port, with its own host key
    and configuration under the sandbox, and the PAM service file the sandbox wrote in its
    private /etc/pam.d/sshd. Public keys only: AuthorizedKeysFile is <tmp>/keys/%u.pub
    (User.ssh_key() puts one there). Its stderr, which -e makes its log, is <tmp>/sshd.log."""

    def __init__(self, sandbox):
        self.sb = sandbox
        self.config = sandbox.path("sshd_config")
        self.host_key = sandbox.path("ssh_host_ed25519_key")
        self.keys = sandbox.path("keys")
        self.pidfile = sandbox.path("sshd.pid")
        self.log_path = sandbox.path("sshd.log")
        self.port = None
        self.proc = None
        self.clients = []  # ssh clients started with User.ssh_popen(), ended by stop()

    @staticmethod
    def unavailable():
        """Why sshd tests cannot run here, or None."""
        for path in (SSHD_BIN, SSH_BIN, SSH_KEYGEN):
            if not os.access(path, os.X_OK):
                return f"{path} not found (install openssh-server and openssh-client)"
        if SANITIZED and Sshd.sanitizer_env() is None:
            return "the sanitized pam_jit.so links no libasan.so that sshd could preload"
        return None

    @staticmethod
    def sanitizer_env():
        """The environment sshd needs to load a sanitized pam_jit.so, or None if it cannot.

        An ASan-built module can only be loaded by a process whose first library is the ASan
        runtime, so sshd (started by root, not setuid) gets the runtime pam_jit.so links
        against in LD_PRELOAD; sshd re-executes itself for each connection with the same
        environment and gives the user's session a fresh one. LeakSanitizer stays off in
        sshd: its report at exit would be about sshd's own allocations, and its
        stop-the-world ptrace is killed by sshd's seccomp sandbox in the pre-auth child.
        pam_jit.so's leaks are checked through pam_wrapper (User.pam_account)."""
        p = run(["ldd", PAM_JIT], check=False)
        runtime = next((line.split("=>")[1].split()[0] for line in p.stdout.splitlines()
                        if "=>" in line and line.split()[0].startswith("libasan.so")), None)
        if not runtime or not os.path.exists(runtime):
            return None
        asan = ":".join(o for o in os.environ.get("ASAN_OPTIONS", "").split(":")
                        if o and not o.startswith("detect_leaks="))
        return dict(os.environ, LD_PRELOAD=runtime, ASAN_OPTIONS=asan + ":detect_leaks=0")

    def _setup(self):
        # sshd's privilege separation directory is compiled in (/run/sshd). The machine's
        # /run is shared with it, so a tmpfs is mounted over it in this mount namespace:
        # the machine's sshd and its /run/sshd are never touched. (Only an empty directory
        # is created on the machine if it has none, as for /run/sudo.)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run/sshd"])
        run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "jit-test-host", "-f", self.host_key])
        # sshd reads authorized keys as the user: the directory and the .pub files must be
        # readable by all. The private keys beside them are 0600 and used by root's ssh.
        os.makedirs(self.keys, exist_ok=True)
        os.chmod(self.keys, 0o755)

    def _write_config(self):
        # StrictModes no: StrictModes refuses an AuthorizedKeysFile below a group- or
        # world-writable directory, and the sandbox lives under /tmp (mode 1777).
        text = f"""\
ListenAddress 127.0.0.1:{self.port}
AddressFamily inet
HostKey {self.host_key}
PidFile {self.pidfile}
UsePAM yes
PubkeyAuthentication yes
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
HostbasedAuthentication no
GSSAPIAuthentication no
AuthorizedKeysFile {self.keys}/%u.pub
AuthorizedPrincipalsFile none
StrictModes no
PermitRootLogin no
PermitUserEnvironment no
UseDNS no
LogLevel VERBOSE
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowAgentForwarding no
AllowTcpForwarding no
LoginGraceTime 30
MaxStartups 50:30:100
"""
        with open(self.config, "w") as f:
            f.write(text)

    def start(self, timeout=15):
        if self.proc is None and not os.path.exists(self.host_key):
            self._setup()
        # The port is free when picked but could be taken before sshd binds it: try again.
        for attempt in range(3):
            self.port = free_port()
            self._write_config()
            offset = self.log_size()
            log = open(self.log_path, "a")
            try:
                env = self.sanitizer_env() if SANITIZED else None
                self.proc = subprocess.Popen([SSHD_BIN, "-D", "-e", "-f", self.config], stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=log, env=env)
            finally:
                log.close()
            if wait_for(self._ready, timeout=timeout, what=f"sshd to accept connections on port {self.port}") == "up":
                return
            self.proc = None
            if "Address already in use" not in self.log_since(offset):
                break
        raise RuntimeError(f"sshd exited at start; see {self.log_path}:\n{self.log_since(offset)}")

    def _ready(self):
        """ "up" once sshd answers with its SSH banner, "exited" if it died, else None."""
        if self.proc.poll() is not None:
            return "exited"
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.settimeout(2)
                return "up" if s.recv(64).startswith(b"SSH-2.0-") else None
        except OSError:
            return None

    def stop(self):
        """Ends the ssh clients first, so that sshd closes their sessions (and their PAM
        sessions) the ordinary way, then sshd and whatever it still has running."""
        for p in self.clients:
            if p.poll() is None:
                p.terminate()
            try:
                p.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
        self.clients = []
        if self.proc is None:
            return None
        try:
            wait_for(lambda: not descendants(self.proc.pid), timeout=5, what="sshd's sessions to end")
        except AssertionError:
            pass  # ended below
        # Connection processes outlive the listener: end them by pid as well.
        procs = [(pid, start_time(pid)) for pid in [self.proc.pid] + descendants(self.proc.pid)]
        for pid, started in procs:
            signal_if_same(pid, started, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        try:
            wait_for(lambda: all(start_time(pid) != started for pid, started in procs[1:]), timeout=5,
                     what="sshd's connection processes to exit")
        except AssertionError:
            for pid, started in procs[1:]:
                signal_if_same(pid, started, signal.SIGKILL)
        code, self.proc = self.proc.returncode, None
        return code

    SANITIZER_REPORTS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                         "ASan runtime does not come first")

    def sanitizer_reports(self):
        """Lines of sshd's log that are sanitizer reports (from pam_jit.so, in the sanitized build)."""
        return [line for line in self.log_since(0).splitlines()
                if any(r in line for r in self.SANITIZER_REPORTS)]

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def log_since(self, offset):
        """sshd's log from byte offset on (take the offset with log_size() beforehand)."""
        try:
            with open(self.log_path, errors="replace") as f:
                f.seek(offset)
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, offset, text, timeout=10.0):
        """Waits until sshd has logged text after offset, and returns the log from there.
        sshd's monitor may write a line just after the client has seen the connection end."""
        return wait_for(lambda: text in self.log_since(offset) and self.log_since(offset), timeout=timeout,
                        what=f"sshd to log {text!r} (log: {self.log_path})")


class User:
    def __init__(self, sandbox, broker, name):
        self.sb, self.broker, self.name = sandbox, broker, name

    def _as_user(self, argv):
        if self.name == "root":
            return argv
        return ["setpriv", f"--reuid={self.name}", f"--regid=users", "--init-groups", "--"] + argv

    def jitctl(self, *args, json_out=False):
        argv = [JITCTL, "--socket", self.broker.socket] + (["--json"] if json_out else []) + list(args)
        p = run(self._as_user(argv), check=False, timeout=30)
        if json_out and p.returncode == 0:
            p.json = json.loads(p.stdout)
        return p

    def call(self, obj):
        """Sends obj as one raw protocol frame as this user (not through jitctl) and returns
        the reply (None when the broker closed without one)."""
        argv = [SYSTEM_PYTHON, self.sb.script("rawclient.py"), self.broker.socket, json.dumps(obj)]
        p = run(self._as_user(argv), check=True, timeout=30)
        return json.loads(p.stdout)

    def ok(self, *args):
        """jitctl --json ARGS, which must succeed; returns the parsed document."""
        p = self.jitctl(*args, json_out=True)
        if p.returncode != 0:
            raise AssertionError(f"jitctl {' '.join(args)} as {self.name} exited {p.returncode}: {p.stderr.strip()}")
        return p.json

    def sudo(self, *cmd):
        """Runs a command through real sudo (and so through pam_jit.so's account stack)."""
        return run(self._as_user(["sudo", "-n", "--"] + list(cmd or ["id", "-u"])), check=False, timeout=30)

    def sudo_login(self):
        """sudo -i: the PAM service sudo-i, gated by the same sudo grant."""
        return run(self._as_user(["sudo", "-n", "-i", "id", "-u"]), check=False, timeout=30)

    def ssh_key(self):
        """This user's key pair, <tmp>/keys/USER (private, root's) and <tmp>/keys/USER.pub
        (what sshd's AuthorizedKeysFile names); made on first use. Returns the private key."""
        key = self.sb.path("keys", self.name)
        if not os.path.exists(key):
            os.makedirs(self.sb.path("keys"), mode=0o755, exist_ok=True)
            run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", f"{self.name}@jit-test", "-f", key])
            os.chmod(key + ".pub", 0o644)
        return key

    def ssh_argv(self, *cmd, log_level="ERROR", tty=False):
        """The ssh command line that logs in as this user to the sandbox's sshd with the
        user's key (run as root: the private keys are root's) and runs cmd there."""
        if not self.sb.sshd or not self.sb.sshd.port:
            raise RuntimeError("no sshd running: set SSHD = True in the test class")
        return [SSH_BIN, "-F", "/dev/null", "-i", self.ssh_key(), "-p", str(self.sb.sshd.port),
                "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                "-o", "ConnectTimeout=10", "-o", f"LogLevel={log_level}"] + (["-tt"] if tty else []) + [
                "--", f"{self.name}@127.0.0.1"] + list(cmd or ["id", "-un"])

    def ssh(self, *cmd, timeout=30, log_level="ERROR"):
        """Logs in over ssh and runs cmd; returns the CompletedProcess (ssh exits 255 when
        the login is refused, else with cmd's status). log_level="INFO" shows sshd's banner,
        where sshd puts what PAM said during the account check."""
        return run(self.ssh_argv(*cmd, log_level=log_level), check=False, timeout=timeout,
                   stdin=subprocess.DEVNULL)

    def ssh_popen(self, *cmd, log_level="ERROR", tty=False, **kw):
        """Starts a long-running ssh session (subprocess.Popen, text pipes); the test ends it,
        or Sshd.stop() does."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        p = subprocess.Popen(self.ssh_argv(*cmd, log_level=log_level, tty=tty), text=True, **kw)
        self.sb.sshd.clients.append(p)
        return p

    def pam_account(self, service, expect, socket_path=None, extra="", **extra_env):
        """Runs service's account stack for this user through pam_wrapper and asserts, in
        pamtest_jit, that the module answers exactly expect ("allow" or "deny"). Used by the
        sanitizer build, whose pam_jit.so cannot be loaded into setuid sudo, and for PAM
        users sudo cannot produce. pam_jit's syslog lines are in the output (pam_wrapper
        writes them to stderr as "... SYSLOG(N): line")."""
        d = self.sb.path("pam-wrapper", service)
        os.makedirs(d, exist_ok=True)
        self.sb.write_pam_service(service, self.sb.pam_lines(socket_path or self.broker.socket, extra), d)
        extra_env.setdefault("PAM_WRAPPER_DEBUGLEVEL", "3")
        env = dict(os.environ, PAM_WRAPPER="1", PAM_WRAPPER_SERVICE_DIR=d, LD_PRELOAD=LIBPAM_WRAPPER,
                   # Debian's pam_wrapper reads the UID_ spelling; ASan cannot live with RTLD_DEEPBIND.
                   UID_WRAPPER_DISABLE_DEEPBIND="1", PAM_WRAPPER_DISABLE_DEEPBIND="1",
                   JIT_TEST_SERVICE=service, JIT_TEST_USER=self.name, JIT_TEST_EXPECT=expect,
                   ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0", **extra_env)
        # pam_wrapper copies the service files into a directory /tmp/pam.X that it picks with
        # a check-then-create race: two test programs running pamtest_jit at once could run
        # each other's stack (seen: a test's "deny" answered by another test's config). /tmp
        # is shared by the programs, so a lock there lets one pamtest_jit run at a time.
        with open(PAM_WRAPPER_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            p = run([PAMTEST], check=False, env=env, timeout=30)
        # What the module said: its syslog lines (pam_wrapper's own traces left out) and
        # its conversation messages.
        p.said = "\n".join(line for line in (p.stdout + p.stderr).splitlines()
                           if "SYSLOG(" in line or line.startswith(("pam-error: ", "pam-info: ")))
        return p


class BrokerTestCase(unittest.TestCase):
    """One sandbox and broker per test class; users created in setUpClass."""

    POLICY = ""
    USERS = {}  # name -> groups
    JOURNALD = True
    SSHD = False  # True: a real sshd (cls.sshd), PAM service sshd gated by pam_jit.so
    SSHD_SESSION_JIT = False  # True: pam_jit.so in sshd's session stack as well

    @classmethod
    def setUpClass(cls):
        if cls.SSHD:
            why = Sshd.unavailable()
            if why:
                raise unittest.SkipTest(why)
        cls.sb = Sandbox()
        if cls.JOURNALD:
            cls.sb.start_journald()
        for name, groups in cls.USERS.items():
            cls.sb.add_user(name, groups)
        cls.broker = Broker(cls.sb, cls.POLICY)
        cls.broker.start()
        cls.u = {name: User(cls.sb, cls.broker, name) for name in cls.USERS}
        cls.root = User(cls.sb, cls.broker, "root")
        cls.sshd = None
        if cls.SSHD:
            try:
                cls.sb.write_sshd_pam(session_jit=cls.SSHD_SESSION_JIT)
                cls.sshd = cls.sb.sshd = Sshd(cls.sb)
                cls.sshd.start()
            except BaseException:
                cls.tearDownClass()  # unittest does not call it when setUpClass fails
                raise

    @classmethod
    def tearDownClass(cls):
        reports = []
        if cls.sb.sshd:
            cls.sb.sshd.stop()
            reports = cls.sb.sshd.sanitizer_reports()
            if reports:
                shutil.copy(cls.sb.sshd.log_path, cls.sb.root + "-sshd.log")
        cls.broker.stop()
        cls.broker.log.close()
        if os.environ.get("JIT_TEST_KEEP"):
            print(f"kept {cls.sb.root}", file=sys.stderr)
        cls.sb.close()
        if reports:
            raise AssertionError(f"sanitizer reports in sshd's log ({cls.sb.root}-sshd.log):\n" + "\n".join(reports))

    def assertExit(self, p, code, msg=None):
        self.assertEqual(p.returncode, code, msg or f"stdout={p.stdout!r} stderr={p.stderr!r}")

    def assertAllowed(self, user):
        if SANITIZED:
            p = user.pam_account("sudo", "allow")
            self.assertEqual(p.returncode, 0, f"{user.name} should be allowed: {p.stdout!r} {p.stderr!r}")
            return p
        p = user.sudo("id", "-u")
        self.assertEqual(p.returncode, 0, f"{user.name} should pass sudo: {p.stderr!r}")
        self.assertEqual(p.stdout.strip(), "0")
        return p

    def assertRefused(self, user):
        if SANITIZED:
            p = user.pam_account("sudo", "deny")
            self.assertEqual(p.returncode, 0, f"{user.name} should be denied: {p.stdout!r} {p.stderr!r}")
            return p
        p = user.sudo("id", "-u")
        self.assertEqual(p.returncode, 1, f"{user.name} should be refused by sudo: {p.stdout!r}")
        self.assertEqual(p.stdout, "")
        self.assertIn("sudo: PAM account management error: Permission denied", p.stderr)
        return p


EXIT_SKIP = 77  # what meson reports as SKIP


def unrun_test_classes(module):
    """Names of the test classes module's source defines that are not in the module when
    its runner starts (defined after main() is called: they would never run)."""
    import ast
    try:
        tree = ast.parse(open(module.__file__).read())
    except (OSError, TypeError, SyntaxError):
        return []
    def is_test_base(base):
        return (getattr(base, "id", None) or getattr(base, "attr", None) or "").endswith("TestCase")
    names = [node.name for node in ast.walk(tree)
             if isinstance(node, ast.ClassDef) and any(is_test_base(b) for b in node.bases)]
    return [n for n in names if not isinstance(getattr(module, n, None), type)]


def main():
    """Runs the calling module's tests. Exits 77 (meson: SKIP) when every test was skipped,
    so that a program that proved nothing is never counted as passed; fails when the module
    defines a test class its runner would not run."""
    module = sys.modules["__main__"]
    missing = unrun_test_classes(module)
    if missing:
        print(f"test classes defined after jittest.main() would never run: {', '.join(missing)}",
              file=sys.stderr)
        sys.exit(1)
    prog = unittest.main(verbosity=2, exit=False)
    result = prog.result
    if not result.wasSuccessful():
        sys.exit(1)
    if result.testsRun == 0 or len(result.skipped) == result.testsRun:
        print(f"all {result.testsRun} tests skipped", file=sys.stderr)
        sys.exit(EXIT_SKIP)
    sys.exit(0)
