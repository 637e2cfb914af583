#!/bin/bash
# SPDX-License-Identifier: MIT
# Builds jit's Debian packages from this tree and installs them with apt, on Debian 12:
#
#   sudo ./packaging/setup.sh [--tests] [--skip-deps] [--skip-pam]
#
#  1. installs what the build needs (packaging/install-deps.sh --package)
#  2. builds the packages jit and libpam-jit into build-deb/ (packaging/build-deb.sh:
#     dpkg-buildpackage on a copy of the tree, then lintian)
#  3. installs them: apt-get install ./build-deb/jit_*.deb ./build-deb/libpam-jit_*.deb.
#     The packages create the groups jit, jit-approvers and jit-auditors and the system
#     users jit-notify and jit-verify, install
#     /etc/jit/policy.conf (an existing one is kept), add pam_jit to
#     /etc/pam.d/common-account and common-session with pam-auth-update, and enable
#     jit-brokerd.socket and jit-brokerd.service (and start them when systemd runs)
#  4. checks the result: the PAM profile, sudoers, the broker
#
# Nobody is gated until you add users to the group "jit", so this cannot lock anyone
# out. Running it again rebuilds and reinstalls; apt keeps your policy. Undo it with
# "apt-get remove jit libpam-jit" (packaging/uninstall.sh).
set -euo pipefail

SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUTDIR=build-deb
POLICY=/etc/jit/policy.conf
SNIPPET=/usr/share/jit/pam.d-sudo.snippet
# What an earlier setup.sh (before the packages) left: its list of the files meson
# installed.
OLD_MANIFEST=/usr/share/jit/installed-files.txt

opt_tests=0
opt_deps=1
opt_pam=1

done_list=()
warnings=()

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
info() { printf '    %s\n' "$*"; }
did() { done_list+=("$*"); info "$*"; }
warn() { warnings+=("$*"); printf '\033[1;33mWARNING:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31mERROR:\033[0m %s\n' "$*" >&2; exit 1; }

usage() {
        cat <<EOF
Usage: $0 [OPTIONS]

Builds jit's Debian packages (jit, libpam-jit) from this tree, installs them with apt
and checks that PAM and the broker are in place. Debian 12, as root. Safe to run again.

  --tests       also install the packages the test suite needs
  --skip-deps   do not run packaging/install-deps.sh (packages already there)
  --skip-pam    leave pam_jit out of /etc/pam.d/common-* (pam-auth-update --disable jit),
                to wire it up by hand from $SNIPPET
  -h, --help    show this help
EOF
}

while [ $# -gt 0 ]; do
        case "$1" in
        --tests) opt_tests=1 ;;
        --skip-deps) opt_deps=0 ;;
        --skip-pam) opt_pam=0 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "setup: unknown argument: $1" >&2; usage >&2; exit 2 ;;
        esac
        shift
done

[ "$(id -u)" -eq 0 ] || die "run as root: sudo $0 $*"
if [ ! -f "$SRCDIR/meson.build" ] || [ ! -f "$SRCDIR/debian/control" ]; then
        die "cannot find the jit source tree (with debian/) at $SRCDIR"
fi
if [ -r /etc/os-release ]; then
        # shellcheck disable=SC1091
        . /etc/os-release
        if [ "${ID:-}" != debian ] || [ "${VERSION_ID:-}" != 12 ]; then
                warn "this script is written for Debian 12; this is ${PRETTY_NAME:-unknown}. Continuing."
        fi
fi

# The module lines of the primary block of common-account (pam-auth-update's markers).
primary_account_lines() {
        sed -n '/^# here are the per-package modules (the "Primary" block)$/,/^# here.s the fallback if no module succeeds$/p' \
                /etc/pam.d/common-account 2>/dev/null | grep -v '^[[:space:]]*#' || true
}

# PAM files outside common-* that name pam_jit.so: lines added by hand, or the block an
# earlier setup.sh put into /etc/pam.d/sudo and sudo-i.
hand_written=()
for f in /etc/pam.d/*; do
        case "$f" in /etc/pam.d/common-*) continue ;; esac
        [ -f "$f" ] && grep -qE '^[^#]*pam_jit\.so' "$f" && hand_written+=("$f")
done
if [ ${#hand_written[@]} -gt 0 ] && [ $opt_pam -eq 1 ]; then
        die "PAM files name pam_jit.so (added by hand, or by an earlier setup.sh): ${hand_written[*]}
       The package's PAM profile would ask pam_jit a second time, and an unguarded line
       there denies everyone once the module is removed. Take those lines out, e.g. the
       marked block: sed -i '/^# jit: begin/,/^# jit: end\$/d' FILE
       or keep them and run: $0 --skip-pam"
fi

# ---------------------------------------------------------------------------------------
say "1/4 Dependencies"
if [ $opt_deps -eq 1 ]; then
        deps_args=(--package)
        [ $opt_tests -eq 1 ] && deps_args+=(--tests)
        "$SRCDIR/packaging/install-deps.sh" "${deps_args[@]}" || die "installing packages failed (see above)"
else
        info "skipped (--skip-deps)"
fi

# ---------------------------------------------------------------------------------------
say "2/4 Build the packages"
"$SRCDIR/packaging/build-deb.sh" --out "$SRCDIR/$OUTDIR" ||
        die "building the packages failed (see above): nothing was installed"
shopt -s nullglob
cd "$SRCDIR"
debs=("./$OUTDIR"/jit_*.deb "./$OUTDIR"/libpam-jit_*.deb)
shopt -u nullglob
[ ${#debs[@]} -eq 2 ] || die "expected one jit and one libpam-jit package in $SRCDIR/$OUTDIR, found: ${debs[*]:-none}"

# ---------------------------------------------------------------------------------------
say "3/4 Install with apt"
# apt-get fetches the dependencies. --reinstall: a re-run installs the new build even
# when its version is the one installed. An existing /etc/jit/policy.conf is kept
# (confold), including one an earlier setup.sh wrote.
DEBIAN_FRONTEND=noninteractive apt-get install -y --reinstall \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${debs[@]}" ||
        die "apt-get install failed (see above)"
for p in jit libpam-jit; do
        [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] ||
                die "package $p is not installed after apt-get install"
done
did "installed $(dpkg-query -W -f='${Package} ${Version}' jit) and $(dpkg-query -W -f='${Package} ${Version}' libpam-jit)"

# Files an earlier setup.sh installed that no package owns now (the packages took over the
# rest, at the same paths).
if [ -f "$OLD_MANIFEST" ] && ! dpkg -S "$OLD_MANIFEST" >/dev/null 2>&1; then
        n=0
        while IFS= read -r f; do
                case "$f" in "$OLD_MANIFEST") continue ;; /*) ;; *) continue ;; esac
                if { [ -f "$f" ] || [ -L "$f" ]; } && ! dpkg -S "$f" >/dev/null 2>&1; then
                        rm -f -- "$f"
                        info "removed $f (left by an earlier setup.sh, not in the packages)"
                        n=$((n + 1))
                fi
        done < <(grep -v '^#' "$OLD_MANIFEST")
        rm -f -- "$OLD_MANIFEST"
        did "cleaned up after an earlier setup.sh: $n leftover files and $OLD_MANIFEST"
fi

for g in jit jit-approvers jit-auditors; do
        getent group "$g" >/dev/null || die "group $g is missing after the install (systemd-sysusers jit.conf)"
done
for u in jit-notify jit-verify; do
        getent passwd "$u" >/dev/null || die "user $u is missing after the install (systemd-sysusers jit.conf)"
done
gated=$(getent group jit | cut -d: -f4)
if [ -n "$gated" ]; then
        info "members of jit (gated): $gated"
else
        info "group jit has no members: nobody is gated yet"
fi

# ---------------------------------------------------------------------------------------
say "4/4 Check"
set +e
check_out=$(/usr/bin/jitctl policy check "$POLICY" 2>&1)
check_rc=$?
set -e
if [ $check_rc -eq 0 ]; then
        info "policy check $POLICY: OK"
else
        warn "jitctl policy check $POLICY failed: $check_out"
fi

if [ $opt_pam -eq 0 ]; then
        if grep -q 'pam_jit\.so' /etc/pam.d/common-account; then
                pam-auth-update --package --disable jit
                did "took pam_jit out of /etc/pam.d/common-* (--skip-pam: pam-auth-update --disable jit)"
        fi
        info "PAM: add the lines of $SNIPPET yourself (pam_jit(8))"
else
        if ! grep -q 'pam_jit\.so' /etc/pam.d/common-account; then
                # The profile was turned off earlier (pam-auth-update, or --skip-pam). Turn it
                # on, unless pam_jit would be the only primary account module: its lines hand
                # users it does not gate on to the next one, and without one they would reach
                # pam_deny.so.
                others=$(primary_account_lines | grep -v -e 'pam_succeed_if\.so' -e 'pam_jit\.so' -e 'pam_permit\.so' |
                        grep -c '[^[:space:]]' || true)
                if [ "$others" -gt 0 ]; then
                        pam-auth-update --package --enable jit
                        grep -q 'pam_jit\.so' /etc/pam.d/common-account &&
                                did "enabled the PAM profile again (pam-auth-update --enable jit)"
                fi
        fi
        if grep -q 'pam_jit\.so' /etc/pam.d/common-account && grep -q 'pam_jit\.so' /etc/pam.d/common-session; then
                info "PAM: pam_jit is in /etc/pam.d/common-account and common-session (profile \"jit\")"
        else
                warn "pam_jit is NOT in /etc/pam.d/common-account and common-session, so nobody is gated:
         pam-auth-update did not add the profile \"jit\" (local changes to those files, or no
         other primary account module such as pam_unix). Run pam-auth-update, or add the lines
         of $SNIPPET to /etc/pam.d/sudo and sudo-i"
        fi
fi

# sudo skips the whole account stack under "Defaults !pam_acct_mgmt" (docs/security.md, rule 3).
acct=$(grep -sHnE '^[[:space:]]*Defaults.*!+[[:space:]]*pam_acct_mgmt' /etc/sudoers /etc/sudoers.d/* || true)
if [ -n "$acct" ]; then
        warn "sudoers turns off PAM account management, so pam_jit is NEVER asked and gated users keep full sudo:"
        printf '         %s\n' "$acct" >&2
        warn "remove '!pam_acct_mgmt' from those lines (visudo) for jit to have any effect"
elif ! command -v sudo >/dev/null 2>&1; then
        info "sudo is not installed: only what libpam-jit gates besides (sshd) applies"
elif ! sudo -V 2>/dev/null | grep -q 'PAM account validation management'; then
        # "sudo -V" run by root prints the effective global Defaults.
        warn "sudo -V does not report 'Perform PAM account validation management': pam_jit may never be asked; check sudoers (and sudoers in LDAP/SSSD)"
else
        info "sudoers: PAM account management is on (no '!pam_acct_mgmt')"
fi

broker_running=0
if [ -d /run/systemd/system ]; then
        # The packages' postinst enabled and started both units (and restarted the service
        # on a re-run); make sure they run.
        systemctl start jit-brokerd.socket jit-brokerd.service ||
                die "jit-brokerd did not start: see 'journalctl -u jit-brokerd -n 50'"
        if status_out=$(/usr/bin/jitctl status 2>&1); then
                did "jit-brokerd.socket and jit-brokerd.service are enabled and running; jitctl status answers"
        else
                printf '%s\n' "$status_out" >&2
                die "jitctl status failed: see 'systemctl status jit-brokerd' and 'journalctl -u jit-brokerd -n 50'"
        fi
        broker_running=1
else
        info "systemd is not running here (container or chroot): the units are enabled for the next"
        info "boot with systemd, and nothing was started"
fi

# ---------------------------------------------------------------------------------------
echo
say "Done"
for d in "${done_list[@]}"; do
        info "- $d"
done
if [ ${#warnings[@]} -gt 0 ]; then
        echo
        say "Warnings"
        for w in "${warnings[@]}"; do
                info "- $w"
        done
fi

gated=$(getent group jit | cut -d: -f4)
echo
echo "Next steps"
if [ -n "$gated" ]; then
        echo "  Gated now (members of jit): $gated. They are DENIED sudo without a grant, and"
        echo "  whenever the broker is not running (fail closed)."
else
        echo "  Nobody is gated yet (the group jit is empty). Once you add someone, they are DENIED"
        echo "  sudo without a grant and whenever the broker is not running (fail closed)."
fi
echo "  Keep a root shell open while you try it out."
if [ $broker_running -eq 0 ]; then
        cat <<EOF

  Start the broker by hand (it runs in the foreground, logs to stderr, and creates
  /run/jit/broker.sock itself when not socket-activated):
      /usr/sbin/jit-brokerd &
      jitctl status
EOF
fi
cat <<EOF

  1. Review the policy:     \$EDITOR $POLICY
                            jitctl policy check $POLICY && systemctl reload jit-brokerd
  2. Add approvers:         usermod -aG jit-approvers BOB
  3. Gate a user:           usermod -aG jit ALICE     (sudo now needs a grant for ALICE)
  4. ALICE asks:            jitctl request --for 30m --reason "rotate TLS cert" [--ticket OPS-1]
     BOB reviews:           jitctl list --pending ; jitctl approve ID   (or: jitctl deny ID --reason ...)
     ALICE checks:          jitctl status      then uses sudo until the grant expires
  Audit trail:              jitctl audit ; journalctl -u jit-brokerd
  More hosts:               apt install ./jit_*.deb ./libpam-jit_*.deb   (from $SRCDIR/$OUTDIR)
  Uninstall:                apt-get remove jit libpam-jit    (purge: also the policy and the audit log)
EOF
