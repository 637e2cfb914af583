#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The man pages and the bash completion say what the programs do.

Run by meson (tests/meson.build, suite 'packaging') with the built pages and programs;
it builds nothing itself:

  check-man-pages.py --source-root DIR --jitctl PATH --jit-brokerd PATH
                     --completion FILE (--man PAGE... | --skip REASON)

Man pages (packaging/man/*.scd, built by scdoc):
  - jitctl(1): every long option that `jitctl --help` and `jitctl COMMAND --help` print
    is in the page, each command's in that command's subsection (COMMANDS); every
    command in jitctl's command table has a subsection and every subsection is a
    command; every --option the page names is in some --help.
  - jit-brokerd(8): every option of `jit-brokerd --help` (long and short) is in the
    page, and every --option in the page is in the help.
  - pam_jit(8): the module arguments parse_options() in pam_jit/pam_jit.c accepts are
    exactly the ones OPTIONS defines; the module types (pam_jit.sym) are exactly the
    ones MODULE TYPES defines.
  - jit-policy.conf(5): the keys of each section in common/policy-parse.c are exactly
    the ones that section of the page defines; the same for the cases file
    (jitctl/jitctl-policy-test.c) and CASES FILE.
  - any page: every --option it names is an option of jitctl or jit-brokerd (a few
    options of other programs are listed in FOREIGN below);
  - `groff -t -ww -man -Tutf8` prints no warning for any page (skipped without groff).
Bash completion (packaging/completion/jitctl), with a scratch broker when run as root:
  - `jitctl ap<TAB>` gives approve; the commands are jitctl's; each command's options
    are the ones its --help prints; service names; request ids from `jitctl list --json`.

Exit status 0 when all hold, 1 when one does not, 77 (SKIP) when the pages were not
built (--skip); the completion is checked even then, and a failure there fails.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77

# Options of other programs that a page may name: {page: {option: why}}.
FOREIGN = {
    "jit-brokerd.8": {"--now": "systemctl enable --now"},
}

LONG_OPT = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")

failures = []


def fail(msg):
    failures.append(msg)
    print(f"FAIL: {msg}")


def ok(msg):
    print(f"ok: {msg}")


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)


def help_text(cmd):
    r = run(cmd)
    if r.returncode != 0:
        fail(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def long_options(text):
    return set(LONG_OPT.findall(text))


def defined_options(help_out):
    """The long options a --help defines: those on its usage lines ("Usage: ..." and the
    indented lines that continue it) and those that start an option line ("  --json ...",
    "  -h, --help ..."), not those its prose mentions."""
    opts, usage = set(), False
    for line in help_out.splitlines():
        if line.startswith("Usage:"):
            usage = True
        elif not line.startswith(" "):
            usage = False
        if usage:
            opts |= long_options(line)
        m = re.match(r"^\s+(?:-[a-zA-Z],?\s+)?(--[a-z][a-z0-9-]*)", line)
        if m:
            opts.add(m.group(1))
    return opts


def global_options(main_help):
    """The options of jitctl itself: the option lines of the "Options:" block."""
    block = re.split(r"^Options:\n", main_help, flags=re.M)[-1].split("\n\n")[0]
    return defined_options(block)


def short_options(help_out):
    """Short options from the option lines of a --help ("  -s --socket", "  -h, --help")."""
    return set(re.findall(r"^\s+(-[a-zA-Z])[ ,]", help_out, re.M))


# --- roff as scdoc writes it ------------------------------------------------------------


def roff_text(line):
    """A roff line as text: font escapes and zero-width marks gone."""
    line = re.sub(r"\\f[BIRP]", "", line)
    line = line.replace("\\&", "").replace("\\(aq", "'").replace("\\-", "-").replace("\\e", "\\")
    return line


def roff_sections(path):
    """{SECTION: [lines]} and {SECTION: {SUBSECTION: [lines]}} of a page; lines raw."""
    sections, subsections = {}, {}
    sh = ss = None
    with open(path, encoding="utf-8") as f:
        for line in f.read().splitlines():
            m = re.match(r'^\.SH\s+"?(.*?)"?\s*$', line)
            if m:
                sh, ss = m.group(1), None
                sections.setdefault(sh, [])
                subsections.setdefault(sh, {})
                continue
            m = re.match(r'^\.SS\s+"?(.*?)"?\s*$', line)
            if m and sh:
                ss = m.group(1)
                subsections[sh].setdefault(ss, [])
                continue
            if sh is None:
                continue
            if ss is None:
                sections[sh].append(line)
            else:
                subsections[sh][ss].append(line)
                sections[sh].append(line)
    return sections, subsections


def page_text(path):
    with open(path, encoding="utf-8") as f:
        return "\n".join(roff_text(l) for l in f.read().splitlines() if not l.startswith(".\\\""))


def defined_items(lines, pattern):
    """Names a definition list defines: the head of each item (the line before an
    indented block, .RS) that matches pattern (a regex on the raw roff line); group 1."""
    names = []
    for line, nxt in zip(lines, lines[1:] + [""]):
        if nxt.startswith(".RS"):
            m = re.match(pattern, line)
            if m:
                names.append(m.group(1))
    return names


def compare(what, documented, actual):
    documented, actual = set(documented), set(actual)
    missing = sorted(actual - documented)
    extra = sorted(documented - actual)
    if missing:
        fail(f"{what}: not documented: {' '.join(missing)}")
    if extra:
        fail(f"{what}: documented but not in the program: {' '.join(extra)}")
    if not missing and not extra:
        ok(f"{what}: {len(actual)} documented")


# --- sources -------------------------------------------------------------------------


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def c_string_array(source, name):
    """The strings of `static const char *const NAME[] = { "a", "b", NULL };`."""
    m = re.search(r"\b" + re.escape(name) + r"\[\]\s*=\s*\{(.*?)\};", source, re.S)
    if not m:
        raise SystemExit(f"check-man-pages: cannot find the array {name} in the source")
    return re.findall(r'"([^"]*)"', m.group(1))


def jitctl_commands(root):
    """Commands of jitctl's command table that run something (watch does not yet)."""
    src = read(os.path.join(root, "jitctl", "jitctl.c"))
    return [
        m.group(1)
        for m in re.finditer(r'\{\s*"([a-z-]+)",\s*(\w+)\s*,\s*(\w+)\s*\}', src)
        if m.group(2) != "NULL"
    ]


# --- the pages -----------------------------------------------------------------------


def check_jitctl(page, jitctl, root, all_help_opts):
    main_help = help_text([jitctl, "--help"])
    commands = jitctl_commands(root)
    if not commands:
        fail("no commands found in jitctl/jitctl.c")
        return
    sections, subsections = roff_sections(page)
    text = page_text(page)

    # Everything jitctl --help prints is in the page; its own options in OPTIONS.
    missing = sorted(long_options(main_help) - long_options(text))
    if missing:
        fail(f"jitctl(1): options 'jitctl --help' prints are not in the page: {' '.join(missing)}")
    opts_section = "\n".join(roff_text(l) for l in sections.get("OPTIONS", []))
    global_opts = global_options(main_help)
    compare("jitctl(1) OPTIONS vs jitctl --help options", long_options(opts_section), global_opts)
    for s in short_options(main_help):
        if not re.search(r"(?<![\w-])" + re.escape(s) + r"(?![\w-])", opts_section):
            fail(f"jitctl(1) OPTIONS: short option {s} of jitctl --help missing")

    # Commands: one subsection each.
    subs = subsections.get("COMMANDS", {})
    compare("jitctl(1) COMMANDS subsections vs jitctl's command table", subs.keys(), commands)
    listed = set(re.findall(r"^  ([a-z][a-z-]*)\b", main_help.split("Options:")[0], re.M))
    not_in_help = [c for c in commands if c not in listed]
    if not_in_help:
        # Not a failure of the pages: jitctl --help itself does not list them.
        print(f"note: jitctl --help does not list the commands: {' '.join(not_in_help)}")

    # What the COMMANDS introduction says every command takes (--json, --help).
    n = len(sections.get("COMMANDS", [])) - sum(len(v) for v in subs.values())
    common = long_options("\n".join(roff_text(l) for l in sections.get("COMMANDS", [])[:n]))

    for c in commands:
        h = help_text([jitctl, c, "--help"])
        all_help_opts |= long_options(h)
        # Everything the help prints is somewhere in the page ...
        missing = sorted(long_options(h) - long_options(text))
        if missing:
            fail(f"jitctl(1): options 'jitctl {c} --help' prints are not in the page: {' '.join(missing)}")
        # ... and the options the command has are in its own subsection, and back.
        block = "\n".join(roff_text(l) for l in subs.get(c, []))
        in_block = long_options(block)
        want = defined_options(h) - common
        missing = sorted(want - in_block)
        extra = sorted(in_block - defined_options(h) - global_opts)
        if missing:
            fail(f"jitctl(1) {c}: options of 'jitctl {c} --help' not in its subsection: {' '.join(missing)}")
        if extra:
            fail(f"jitctl(1) {c}: options in its subsection that 'jitctl {c} --help' does not have: {' '.join(extra)}")
        if c in subs and not missing and not extra:
            ok(f"jitctl(1) {c}: {len(want)} options match 'jitctl {c} --help'")
    return text


def check_brokerd(page, brokerd):
    h = help_text([brokerd, "--help"])
    text = page_text(page)
    sections, _ = roff_sections(page)
    options = "\n".join(roff_text(l) for l in sections.get("OPTIONS", []))
    # What the help prints is in the page; the OPTIONS section is exactly the help's.
    missing = sorted(long_options(h) - long_options(text))
    if missing:
        fail(f"jit-brokerd(8): options 'jit-brokerd --help' prints are not in the page: {' '.join(missing)}")
    compare("jit-brokerd(8) OPTIONS vs jit-brokerd --help", long_options(options), defined_options(h))
    for s in sorted(short_options(h)):
        if not re.search(r"(?<![\w-])" + re.escape(s) + r"(?![\w-])", options):
            fail(f"jit-brokerd(8) OPTIONS: short option {s} of jit-brokerd --help missing")
    return long_options(h)


def check_pam(page, root):
    src = read(os.path.join(root, "pam_jit", "pam_jit.c"))
    m = re.search(r"static int parse_options\(.*?\n}\n", src, re.S)
    if not m:
        fail("cannot find parse_options() in pam_jit/pam_jit.c")
        return
    body = m.group(0)
    args = set(re.findall(r'startswith\(a, "([a-z_]+=)"\)', body))
    args |= set(re.findall(r'STREQ\(a, "([a-z_]+)"\)', body))
    sections, _ = roff_sections(page)
    # The defined items of OPTIONS: the name, with '=' when it takes a value.
    documented = [
        d.replace("\\fB", "")
        for d in defined_items(sections.get("OPTIONS", []), r"^(\\fB[a-z_]+=?)")
    ]
    compare("pam_jit(8) OPTIONS vs parse_options()", documented, args)

    sym = read(os.path.join(root, "pam_jit", "pam_jit.sym"))
    kinds = {
        "pam_sm_acct_mgmt": "account",
        "pam_sm_open_session": "session",
        "pam_sm_close_session": "session",
        "pam_sm_authenticate": "auth",
        "pam_sm_setcred": "auth",
        "pam_sm_chauthtok": "password",
    }
    types = {kinds[s] for s in re.findall(r"\b(pam_sm_\w+);", sym) if s in kinds}
    documented = defined_items(sections.get("MODULE TYPES", []), r"^\\fB(account|session|auth|password)\\fR\s*$")
    compare("pam_jit(8) MODULE TYPES vs pam_jit.sym", documented, types)


def check_policy(page, root):
    src = read(os.path.join(root, "common", "policy-parse.c"))
    sections, _ = roff_sections(page)
    key = r"^\\fB([a-z_]+)\\fR ="
    for array, section in [
        ("settings_keys", "SETTINGS"),
        ("profile_keys", "PROFILE"),
        ("rule_keys", "RULES"),
        ("break_glass_keys", "BREAK GLASS"),
        ("notify_keys", "NOTIFY"),
        ("fleet_keys", "FLEET"),
    ]:
        compare(f"jit-policy.conf(5) {section} vs {array} in common/policy-parse.c",
                defined_items(sections.get(section, []), key), c_string_array(src, array))
    top = c_string_array(src, "top_keys")
    desc = "\n".join(roff_text(l) for l in sections.get("DESCRIPTION", []))
    missing = [k for k in top if not re.search(r"\b" + k + r"\b", desc)]
    if missing:
        fail(f"jit-policy.conf(5) DESCRIPTION: top-level keys not named: {' '.join(missing)}")
    else:
        ok(f"jit-policy.conf(5) DESCRIPTION names the {len(top)} top-level keys")

    cases_src = read(os.path.join(root, "jitctl", "jitctl-policy-test.c"))
    case_keys = c_string_array(cases_src, "case_keys")
    m = re.search(r'"cases file",\s*\(const char \*const\[\]\)\s*\{([^}]*)\}', cases_src)
    top_cases = re.findall(r'"([^"]*)"', m.group(1)) if m else []
    if not top_cases:
        fail("cannot find the top-level keys of the cases file in jitctl/jitctl-policy-test.c")
    compare("jit-policy.conf(5) CASES FILE vs the cases file's keys",
            defined_items(sections.get("CASES FILE", []), key), case_keys + top_cases)


def check_groff(pages):
    groff = shutil.which("groff")
    if not groff:
        print("note: groff not found: the groff -ww check is skipped")
        return
    for p in pages:
        r = run([groff, "-t", "-ww", "-man", "-Tutf8", "-z", p])
        if r.returncode != 0 or r.stderr.strip():
            fail(f"groff -ww {os.path.basename(p)}: exit {r.returncode}: {r.stderr.strip()}")
        else:
            ok(f"groff -t -ww -man -Tutf8 {os.path.basename(p)}: no warnings")


# --- bash completion --------------------------------------------------------------------


def complete(completion, jitctl, words, env):
    """COMPREPLY for COMP_WORDS=words, COMP_CWORD=the last word."""
    script = (
        'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _jitctl; '
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    words = [jitctl] + words
    r = run(["bash", "-c", script, "bash", completion] + words, env=env)
    if r.returncode != 0 or r.stderr.strip():
        fail(f"completion of {' '.join(words[1:])!r}: exit {r.returncode}: {r.stderr.strip()}")
    return [w for w in r.stdout.splitlines() if w]


def expect_completion(completion, jitctl, words, want, env, exact=True):
    got = complete(completion, jitctl, words, env)
    shown = " ".join(words[:-1] + [words[-1] + "<TAB>"])
    if (sorted(got) == sorted(want)) if exact else set(want) <= set(got):
        ok(f"completion: jitctl {shown} -> {' '.join(got)}")
    else:
        fail(f"completion: jitctl {shown} gave {got}, expected {'' if exact else 'at least '}{sorted(want)}")


class ScratchBroker:
    """A jit-brokerd on a private socket, database and policy (root only), holding one
    active and one pending request of root's."""

    POLICY = """rules = (
  { name = "auto"; services = ["sudo"]; requesters = ["root"]; auto_approve = true; },
  { name = "wait"; services = ["sshd"]; requesters = ["root"]; approvers = ["nobody"]; }
);
"""

    def __init__(self, brokerd, jitctl):
        self.dir = tempfile.mkdtemp(prefix="jit-man-")
        os.chmod(self.dir, 0o755)
        self.socket = os.path.join(self.dir, "run", "broker.sock")
        policy = os.path.join(self.dir, "policy.conf")
        with open(policy, "w") as f:
            f.write(self.POLICY)
        os.chmod(policy, 0o600)
        self.log = open(os.path.join(self.dir, "broker.log"), "w")
        # In a mount namespace of its own with an empty /run/systemd/journal, so that its
        # entries (a request filed, a grant) never reach the host's journal.
        # Where no journald listens (a bare chroot, whose / may not even be a mount point
        # that unshare could make private), there is nothing to keep it from.
        script = 'mount -t tmpfs -o mode=0755 tmpfs /run/systemd/journal || exit 90; exec "$@"'
        isolate = (["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
                   if os.path.exists("/run/systemd/journal/socket") else [])
        self.proc = subprocess.Popen(
            [*isolate, brokerd, "--socket", self.socket, "--db", os.path.join(self.dir, "db", "jit.db"),
             "--policy", policy],
            stdout=self.log, stderr=subprocess.STDOUT)
        env = dict(os.environ, JIT_SOCKET=self.socket)
        for _ in range(100):
            if os.path.exists(self.socket):
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"jit-brokerd exited {self.proc.returncode}: {self.read_log()}")
            time.sleep(0.05)
        self.ids = []
        for args in (["--service", "sudo", "--for", "10m"], ["--service", "sshd"]):
            r = run([jitctl, "--json", "request", "--reason", "completion test"] + args, env=env)
            m = re.search(r'^  "id": (\d+)', r.stdout, re.M)
            if r.returncode != 0 or not m:
                raise RuntimeError(f"jitctl request failed ({r.returncode}): {r.stderr}")
            self.ids.append(m.group(1))

    def read_log(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def check_completion(completion, jitctl, brokerd, root):
    if not shutil.which("bash"):
        print("note: bash not found: the completion is not checked")
        return
    # Never a real broker: a socket that does not exist gives no ids and no noise.
    env = dict(os.environ, JIT_SOCKET="/nonexistent/jit-man-test.sock")
    env["PATH"] = os.path.dirname(os.path.abspath(jitctl)) + os.pathsep + env.get("PATH", "")

    expect_completion(completion, jitctl, ["ap"], ["approve"], env)
    commands = jitctl_commands(root)
    expect_completion(completion, jitctl, [""], commands, env)
    main_help = help_text([jitctl, "--help"])
    global_opts = global_options(main_help)
    expect_completion(completion, jitctl, ["--"], global_opts, env)
    for c in commands:
        h = help_text([jitctl, c, "--help"])
        opts = defined_options(h)
        if c == "policy":
            # Each subcommand offers its own; together they are the help's.
            got = set()
            for sub in ("check", "explain", "test"):
                got |= set(complete(completion, jitctl, [c, sub, "--"], env))
        elif c == "audit":
            got = set(complete(completion, jitctl, [c, "--"], env))
            got |= set(complete(completion, jitctl, [c, "export", "--"], env))
        else:
            got = set(complete(completion, jitctl, [c, "--"], env))
        compare(f"completion of 'jitctl {c} --' vs 'jitctl {c} --help'", got, opts)
    expect_completion(completion, jitctl, ["policy", ""], ["check", "explain", "test"], env)
    expect_completion(completion, jitctl, ["request", "--service", ""], ["sudo", "sshd"], env)
    expect_completion(completion, jitctl, ["--socket", "/nonexistent/x", "approve", ""], [], env)

    if os.geteuid() != 0 or not shutil.which("unshare"):
        print("note: not root or no unshare: request ids are not checked against a scratch broker")
        return
    try:
        broker = ScratchBroker(brokerd, jitctl)
    except Exception as e:  # noqa: BLE001 - any failure to start is a failure here
        fail(f"scratch broker for the completion: {e}")
        return
    try:
        active, pending = broker.ids
        env_b = dict(env, JIT_SOCKET=broker.socket)
        expect_completion(completion, jitctl, ["show", ""], [active, pending], env_b)
        expect_completion(completion, jitctl, ["approve", ""], [pending], env_b)
        expect_completion(completion, jitctl, ["revoke", ""], [active], env_b)
        expect_completion(completion, jitctl, ["audit", "--request", ""], [active, pending], env_b)
        # --socket on the line wins over the environment.
        expect_completion(completion, jitctl, ["--socket", broker.socket, "cancel", ""], [pending], env)
        expect_completion(completion, jitctl, ["--socket=" + broker.socket, "revoke", ""], [active], env)
        expect_completion(completion, jitctl, ["show", active, ""], [], env_b)
    finally:
        broker.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source-root", required=True)
    ap.add_argument("--jitctl", required=True)
    ap.add_argument("--jit-brokerd", required=True)
    ap.add_argument("--completion", required=True)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--man", nargs="+", metavar="PAGE")
    g.add_argument("--skip", metavar="REASON")
    a = ap.parse_args()

    print("# bash completion")
    check_completion(a.completion, a.jitctl, a.jit_brokerd, a.source_root)

    if a.skip is not None:
        if failures:
            print(f"{len(failures)} failure(s)")
            return 1
        print(f"SKIP: {a.skip}")
        return SKIP

    pages = {os.path.basename(p): p for p in a.man}
    expected = ["jitctl.1", "jit-brokerd.8", "pam_jit.8", "jit-policy.conf.5"]
    missing = [name for name in expected if name not in pages]
    if missing:
        fail(f"pages not given: {' '.join(missing)}")
        return 1

    print("# man pages")
    all_help_opts = set()
    check_jitctl(pages["jitctl.1"], a.jitctl, a.source_root, all_help_opts)
    all_help_opts |= long_options(help_text([a.jitctl, "--help"]))
    all_help_opts |= check_brokerd(pages["jit-brokerd.8"], a.jit_brokerd)
    check_pam(pages["pam_jit.8"], a.source_root)
    check_policy(pages["jit-policy.conf.5"], a.source_root)

    # Every --option any page names is one of the programs' (or listed in FOREIGN).
    for name, path in sorted(pages.items()):
        named = long_options(page_text(path))
        unknown = sorted(named - all_help_opts - set(FOREIGN.get(name, {})))
        if unknown:
            fail(f"{name} names options no --help has: {' '.join(unknown)}")
        else:
            ok(f"{name}: the {len(named)} --options it names exist")

    check_groff(list(pages.values()))

    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
