#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The README, walked through on a booted Debian 12: run as root INSIDE the container that
tests/system/system-test.sh boots (systemd is PID 1), with the built packages in DEBS.

  walkthrough.py install DEBS     install with apt, then everything up to an active grant
  walkthrough.py after-reboot     the grant ended by the reboot; apt purge restores /etc/pam.d

Each step prints "ok: STEP" or fails with what it saw (exit 1). The host side reboots the
container between the two phases. Uses only the Python standard library."""

import glob
import json
import os
import re
import subprocess
import sys
import time

STATE = "/root/walkthrough-state.json"
PAM_BEFORE = "/root/pam.d-before-install"
SUDO_CONF_BEFORE = "/root/sudo.conf-before-install"
# A notify hook that tells the journal what it got and as whom: it runs under the broker's
# unit (sandbox, capabilities, seccomp), as the package's user jit-notify.
HOOK = "/usr/local/lib/jit-walkthrough-hook"
HOOK_SCRIPT = """#!/bin/sh
logger -t jit-walkthrough-hook "event=$JIT_EVENT request=$JIT_REQUEST_ID uid=$(id -u) user=$(id -un) approve=$JIT_APPROVE_COMMAND"
"""
POLICY = "/etc/jit/policy.conf"
# A short warning lead and short grants keep the walk quick; the rules are the shipped
# example's own "jit-with-approval" shape.
TEST_POLICY = """
settings = { default_duration = "1h"; max_duration = "8h"; expiry_warning = "8s"; on_expiry = "terminate"; };
rules = (
  { name = "jit-with-approval"; services = ["sudo", "sshd"]; requesters = ["%jit"];
    approvers = ["%jit-approvers"]; max_duration = "2h"; }
);
notify = ( { command = "/usr/local/lib/jit-walkthrough-hook"; events = ["filed", "approved"]; timeout = "10s"; } );
"""


def run(argv, check=True, timeout=60, **kw):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        fail(f"{' '.join(argv)} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def ok(step):
    print(f"ok: {step}", flush=True)


def expect(cond, step, detail=""):
    if not cond:
        fail(f"{step}: {detail}")
    ok(step)


def wait_for(pred, what, timeout=30, detail=None):
    """Polls pred; fails after timeout, with what detail() returns, if given."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            fail(f"timed out after {timeout}s waiting for {what}" + (f"\n{detail()}" if detail else ""))
        time.sleep(0.2)


def diagnostics(typescript=None):
    """What to look at when a session step fails: the pty's record and the logs."""
    out = []
    if typescript and os.path.exists(typescript):
        out.append(f"--- {typescript}:\n" + open(typescript, errors="replace").read()[-1500:])
    for argv in (["journalctl", "--no-pager", "-u", "jit-brokerd.service", "-n", "25"],
                 ["journalctl", "--no-pager", "-t", "sudo", "-t", "sshd", "-n", "15"],
                 ["ps", "-ef"]):
        out.append(f"--- {' '.join(argv)}:\n" + run(argv, check=False).stdout[-3000:])
    return "\n".join(out)


def as_user(user, *argv, **kw):
    return run(["runuser", "-u", user, "--", *argv], **kw)


def jitctl(user, *args, check=True):
    p = as_user(user, "jitctl", "--json", *args, check=False)
    if check and p.returncode != 0:
        fail(f"jitctl {' '.join(args)} as {user} exited {p.returncode}: {p.stderr.strip()}")
    return json.loads(p.stdout) if p.returncode == 0 else p


def grant(service, duration, reason):
    rid = str(jitctl("alice", "request", "--service", service, "--for", duration, "--reason", reason)["id"])
    expect(jitctl("bob", "approve", rid)["state"] == "active", f"bob approves {service} request {rid}")
    return rid


def session_ends(session, typescript, timeout):
    """Waits for the session (script(1) around sudo or ssh) to be ended by the broker; returns
    what its terminal showed."""
    try:
        session.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        session.kill()
        fail(f"the session was not ended within {timeout}s\n{diagnostics(typescript)}")
    return open(typescript, errors="replace").read()


def journal(*matches):
    p = run(["journalctl", "--no-pager", "-o", "json", *matches], check=False)
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def snapshot_pam(dest):
    run(["rm", "-rf", dest])
    run(["cp", "-a", "/etc/pam.d", dest])


# ---- phase 1 ----

def install(debs_dir):
    snapshot_pam(PAM_BEFORE)
    run(["cp", "-a", "/etc/sudo.conf", SUDO_CONF_BEFORE])
    with open(HOOK, "w") as f:
        f.write(HOOK_SCRIPT)
    os.chmod(HOOK, 0o755)
    debs = sorted(glob.glob(os.path.join(debs_dir, "*.deb")))
    expect(len(debs) >= 2, "the built packages are there", debs)
    run(["apt-get", "install", "-y", "--no-install-recommends", *debs], timeout=300,
        env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    ok("apt-get install ./jit_*.deb ./libpam-jit_*.deb")

    # The PAM profile: guarded lines in common-account and common-session.
    for f in ("common-account", "common-session"):
        text = open(f"/etc/pam.d/{f}").read()
        expect("pam_jit.so" in text and "notingroup jit" in text, f"pam-auth-update put guarded pam_jit lines in {f}",
               text)

    # The sudo approval plugin: one marked line in sudo.conf.
    conf = open("/etc/sudo.conf").read()
    expect("# BEGIN jit:" in conf and "\nPlugin jit_approval jit_approval.so\n# END jit" in conf,
           "the package put the approval plugin's line in /etc/sudo.conf", conf[-400:])

    # Socket activation: the socket listens, the service starts on the first connection.
    expect(run(["systemctl", "is-enabled", "jit-brokerd.socket"], check=False).stdout.strip() == "enabled",
           "jit-brokerd.socket is enabled")
    expect(run(["systemctl", "is-active", "jit-brokerd.socket"], check=False).stdout.strip() == "active",
           "jit-brokerd.socket is listening")
    status = json.loads(run(["jitctl", "--json", "status"]).stdout)
    expect(isinstance(status, dict), "root's jitctl status answers through the socket")
    expect(run(["systemctl", "is-active", "jit-brokerd.service"], check=False).stdout.strip() == "active",
           "jit-brokerd.service runs (socket-activated)")
    text = run(["systemctl", "show", "-p", "StatusText", "--value", "jit-brokerd.service"]).stdout.strip()
    expect(re.fullmatch(r"\d+ active grants?, \d+ pending", text), "systemctl status shows the STATUS line", text)

    # Users, as a sysadmin would make them; sudo rights through sudoers, the gate through jit.
    run(["useradd", "-m", "-s", "/bin/bash", "-G", "jit", "alice"])
    run(["useradd", "-m", "-s", "/bin/bash", "-G", "jit-approvers", "bob"])
    with open("/etc/sudoers.d/walkthrough", "w") as f:
        f.write("alice ALL=(ALL) NOPASSWD: ALL\n")
    os.chmod("/etc/sudoers.d/walkthrough", 0o440)

    # A policy the broker refuses: systemctl reload fails and the old one stays.
    shipped = open(POLICY).read()
    with open(POLICY, "w") as f:
        f.write(shipped.replace('max_duration = "2h";', 'max_duration = "2 hours";', 1))
    p = run(["systemctl", "reload", "jit-brokerd.service"], check=False)
    expect(p.returncode != 0, "systemctl reload fails on a refused policy", p.stdout + p.stderr)
    log = run(["journalctl", "--no-pager", "-u", "jit-brokerd.service", "-n", "40"]).stdout
    expect(re.search(r"policy refused, the old one stays: /etc/jit/policy.conf:\d+", log),
           "the reload's error names the file and line", log[-2000:])
    with open(POLICY, "w") as f:
        f.write(TEST_POLICY)
    run(["systemctl", "reload", "jit-brokerd.service"])
    ok("systemctl reload takes a good policy")

    # Refused without a grant; the message says what to do.
    p = as_user("alice", "sudo", "-n", "true", check=False)
    expect(p.returncode != 0 and "PAM account management error" in p.stderr, "sudo is refused without a grant",
           p.stderr)
    # sudo silences the account stack (PAM_SILENT): the reason is in the auth log.
    wait_for(lambda: "has no active grant for sudo" in run(["journalctl", "--no-pager", "-t", "sudo", "-n", "20"],
                                                           check=False).stdout,
             "pam_jit's reason in the journal (journalctl -t sudo)")
    ok("the refusal's reason is in journalctl -t sudo")
    expect(as_user("bob", "jitctl", "status", check=False).returncode == 0, "an ungated user is untouched")
    expect(run(["sudo", "-n", "true"], check=False).returncode == 0, "root's own sudo is untouched")

    # Request, approve, sudo; the journal and its catalog say what happened.
    rid = grant("sudo", "1h", "walkthrough: rotate the certificates")
    # The notify hook ran under the unit, as jit-notify, for the filing and the grant.
    for event, extra in (("filed", f" approve=jitctl approve {rid}"), ("approved", " approve=")):
        want = f"event={event} request={rid} uid="
        seen = wait_for(lambda: [e for e in journal("SYSLOG_IDENTIFIER=jit-walkthrough-hook")
                                 if e.get("MESSAGE", "").startswith(want)],
                        f"the notify hook's {event} line in the journal",
                        detail=lambda: run(["journalctl", "--no-pager", "-u", "jit-brokerd.service", "-n", "30"],
                                           check=False).stdout)
        msg = seen[-1]["MESSAGE"]
        expect(" user=jit-notify " in msg and msg.endswith(extra) and " uid=0 " not in msg,
               f"the notify hook got the {event} event as jit-notify", msg)
    p = as_user("alice", "sudo", "-n", "id", "-u", check=False)
    expect(p.returncode == 0 and p.stdout.strip() == "0", "alice's sudo works under the grant", p.stderr)
    granted = wait_for(lambda: journal("MESSAGE_ID=7af6f08ed8994a94b326de3f3640d76a", f"JIT_REQUEST_ID={rid}"),
                       "the granted entry in the journal")
    expect(granted[-1].get("_SYSTEMD_UNIT") == "jit-brokerd.service", "the granted entry is the unit's")
    explained = run(["journalctl", "--no-pager", "-x", "MESSAGE_ID=7af6f08ed8994a94b326de3f3640d76a"]).stdout
    expect("Subject: Access granted" in explained or "-- Subject: Access granted" in explained,
           "journalctl -x shows the catalog text", explained[-1500:])

    # Revoke: the sudo session running under the grant hears it on its pty and is ended.
    typescript = "/tmp/revoke.typescript"  # written by alice's script(1)
    session = subprocess.Popen(["runuser", "-u", "alice", "--", "script", "-qfec", "sudo -n sleep 600",
                                typescript], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    wait_for(lambda: any(s["running"] for s in jitctl("root", "show", rid)["sessions"]),
             "the sudo session to be registered", detail=lambda: diagnostics(typescript))
    jitctl("bob", "revoke", rid, "--reason", "walkthrough over")
    text = session_ends(session, typescript, 30)
    expect(f"grant {rid} was revoked; this session is being closed." in text,
           "the revoked sudo session's pty got the last line", repr(text[-500:]))
    p = as_user("alice", "sudo", "-n", "true", check=False)
    expect(p.returncode != 0, "sudo is refused after the revoke")

    # Expiry: the warning, then the last line, on the pty of a real sudo session.
    rid = grant("sudo", "15s", "walkthrough: expiry")
    typescript = "/tmp/expiry.typescript"
    session = subprocess.Popen(["runuser", "-u", "alice", "--", "script", "-qfec", "sudo -n sleep 600",
                                typescript], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    text = session_ends(session, typescript, 60)
    expect(re.search(rf"jit: your sudo grant {rid} ends in \d+s", text), "the sudo pty got the expiry warning",
           repr(text[-500:]))
    expect(f"grant {rid} has expired; this session is being closed." in text,
           "the sudo pty got the last line at expiry", repr(text[-500:]))
    expect(jitctl("root", "show", rid)["state"] == "expired", "the grant expired")

    # ssh: the same through sshd, whose PAM_TTY is "ssh" (the pty comes later).
    run(["mkdir", "-p", "/home/alice/.ssh"])
    if not os.path.exists("/root/.ssh/id_ed25519"):
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", "/root/.ssh/id_ed25519"])
    run(["cp", "/root/.ssh/id_ed25519.pub", "/home/alice/.ssh/authorized_keys"])
    run(["chown", "-R", "alice:alice", "/home/alice/.ssh"])
    run(["chmod", "700", "/home/alice/.ssh"])
    ssh = ["ssh", "-tt", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
           "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "alice@127.0.0.1"]
    run(["systemctl", "start", "ssh.service"])
    p = run(ssh + ["true"], check=False, stdin=subprocess.DEVNULL)
    expect(p.returncode != 0, "alice's ssh login is refused without a grant", p.stdout + p.stderr)
    rid = grant("sshd", "15s", "walkthrough: ssh expiry")
    typescript = "/tmp/ssh.typescript"
    session = subprocess.Popen(["script", "-qfec", " ".join(ssh + ["sleep", "600"]), typescript],
                               stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    text = session_ends(session, typescript, 60)
    expect(re.search(rf"jit: your sshd grant {rid} ends in \d+s", text), "the ssh pty got the expiry warning",
           repr(text[-500:]))
    expect(f"grant {rid} has expired; this session is being closed." in text,
           "the ssh pty got the last line at expiry", repr(text[-500:]))

    # The thread that answers the checks at the unit's nice -10, the main loop back at 0
    # (the seccomp filter lets the broker lower its threads' priority).
    pid = run(["systemctl", "show", "-P", "MainPID", "jit-brokerd.service"]).stdout.strip()
    nices = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            nices[int(tid)] = int(f.read().rsplit(")", 1)[1].split()[16])
    expect(nices.get(int(pid)) == 0 and -10 in nices.values(),
           "the broker's main thread runs at nice 0 and its check thread at -10", repr(nices))

    # The sandbox, as systemd scores it.
    out = run(["systemd-analyze", "security", "--no-pager", "jit-brokerd.service"], check=False).stdout
    m = re.search(r"Overall exposure level for jit-brokerd.service: ([0-9.]+)", out)
    expect(m and float(m.group(1)) <= 2.0, f"systemd-analyze security: exposure {m.group(1) if m else '?'} <= 2.0",
           out[-800:])

    # An active grant to see the reboot end.
    rid = grant("sudo", "2h", "walkthrough: the reboot ends this")
    with open(STATE, "w") as f:
        json.dump({"reboot_grant": rid}, f)
    ok("phase 1 done; an active grant waits for the reboot")


# ---- phase 2 ----

def after_reboot():
    with open(STATE) as f:
        state = json.load(f)
    rid = state["reboot_grant"]
    shown = json.loads(run(["jitctl", "--json", "show", rid]).stdout)
    expect((shown["state"], shown.get("end_reason")) == ("expired", "the host rebooted"),
           "the container's reboot ended the active grant", shown)
    p = as_user("alice", "sudo", "-n", "true", check=False)
    expect(p.returncode != 0, "sudo is refused after the reboot")

    run(["apt-get", "purge", "-y", "jit", "libpam-jit"], timeout=300,
        env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    ok("apt-get purge jit libpam-jit")
    p = run(["diff", "-r", PAM_BEFORE, "/etc/pam.d"], check=False)
    expect(p.returncode == 0, "/etc/pam.d is byte-identical to before the install", p.stdout)
    p = run(["diff", SUDO_CONF_BEFORE, "/etc/sudo.conf"], check=False)
    expect(p.returncode == 0, "/etc/sudo.conf is byte-identical to before the install", p.stdout)
    expect(not os.path.exists("/etc/jit"), "purge removed /etc/jit")
    p = as_user("alice", "sudo", "-n", "true", check=False)
    expect(p.returncode == 0, "with jit purged, sudo is back to sudoers alone", p.stderr)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "install":
        install(sys.argv[2])
    elif len(sys.argv) == 2 and sys.argv[1] == "after-reboot":
        after_reboot()
    else:
        fail(f"usage: {sys.argv[0]} install DEBS | after-reboot")
