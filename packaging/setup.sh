#!/bin/bash
# SPDX-License-Identifier: MIT
# Builds and installs jit on Debian 12 and turns it on, safely:
#
#   sudo ./packaging/setup.sh [--tests] [--skip-deps] [--skip-pam]
#
#  1. installs build/runtime packages (packaging/install-deps.sh)
#  2. builds with meson into build/ and installs (prefix /usr, sysconfdir /etc)
#  3. creates the groups "jit" (the gated users) and "jit-approvers"
#  4. creates /etc/jit and /var/lib/jit, installs /etc/jit/policy.conf if there is none
#  5. adds pam_jit to /etc/pam.d/sudo (and sudo-i), between "# jit: begin/end" markers
#  6. with systemd running: enables and starts jit-brokerd.socket and .service
#
# Nobody is gated until you add users to the group "jit", so this cannot lock anyone
# out. Running it again is safe: every step checks what is already there.
# packaging/uninstall.sh undoes it.
set -euo pipefail

SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILDDIR="$SRCDIR/build"
PREFIX=/usr
SYSCONFDIR=/etc
JIT_CONFDIR=/etc/jit
JIT_STATEDIR=/var/lib/jit
JIT_DATADIR=$PREFIX/share/jit
POLICY=$JIT_CONFDIR/policy.conf
BACKUPDIR=/var/backups/jit
SNIPPET=$SRCDIR/packaging/pam.d-sudo.snippet
SYSUSERS=$SRCDIR/packaging/jit.sysusers
MANIFEST=$JIT_DATADIR/installed-files.txt
# Debian's sudo uses the PAM service "sudo", and "sudo-i" for "sudo -i": gate both, or
# "sudo -i" would walk around the gate.
PAM_SERVICES=(sudo sudo-i)
BEGIN_MARK='# jit: begin'
END_MARK='# jit: end'

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

Builds, installs and enables jit (just-in-time sudo access) on Debian 12. Run as root
from the source tree. Safe to run again.

  --tests       also install the test suite's packages and build the tests
  --skip-deps   do not run packaging/install-deps.sh (packages already there)
  --skip-pam    do not touch /etc/pam.d (install only; wire up PAM yourself)
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
if [ ! -f "$SRCDIR/meson.build" ] || [ ! -f "$SNIPPET" ]; then
        die "cannot find the jit source tree at $SRCDIR"
fi
if [ -r /etc/os-release ]; then
        # shellcheck disable=SC1091
        . /etc/os-release
        if [ "${ID:-}" != debian ] || [ "${VERSION_ID:-}" != 12 ]; then
                warn "this script is written for Debian 12; this is ${PRETTY_NAME:-unknown}. Continuing."
        fi
fi

# ---------------------------------------------------------------------------------------
say "1/6 Dependencies"
if [ $opt_deps -eq 1 ]; then
        deps_args=()
        [ $opt_tests -eq 1 ] && deps_args+=(--tests)
        "$SRCDIR/packaging/install-deps.sh" "${deps_args[@]}" || die "installing packages failed (see above)"
else
        info "skipped (--skip-deps)"
fi

# ---------------------------------------------------------------------------------------
say "2/6 Build and install (meson, prefix $PREFIX)"
tests_opt=false
[ $opt_tests -eq 1 ] && tests_opt=true
meson_opts=(--prefix="$PREFIX" --sysconfdir="$SYSCONFDIR" --localstatedir=/var "-Dtests=$tests_opt")
if [ -f "$BUILDDIR/build.ninja" ]; then
        meson setup --reconfigure "${meson_opts[@]}" "$BUILDDIR" "$SRCDIR" >/dev/null ||
                die "meson could not configure $BUILDDIR (remove it and run again)"
else
        meson setup "${meson_opts[@]}" "$BUILDDIR" "$SRCDIR" >/dev/null ||
                die "meson could not configure the build (missing packages? run without --skip-deps)"
fi
meson compile -C "$BUILDDIR" || die "the build failed: nothing was installed"
meson install -C "$BUILDDIR" --no-rebuild --quiet || die "meson install failed"
# Keep the list of installed files next to the data, so uninstall works without build/.
install -m 0644 "$BUILDDIR/meson-logs/install-log.txt" "$MANIFEST"
n_files=0
while IFS= read -r f; do
        [ -f "$f" ] && n_files=$((n_files + 1))
done < <(grep -v '^#' "$MANIFEST")
did "built in $BUILDDIR and installed $n_files files (list: $MANIFEST)"
for f in /usr/sbin/jit-brokerd /usr/bin/jitctl; do
        [ -x "$f" ] || die "$f is missing after install"
done
pam_module=$(grep '/pam_jit\.so$' "$MANIFEST" | head -n1 || true)
if [ -z "$pam_module" ] || [ ! -f "$pam_module" ]; then
        die "pam_jit.so is missing after install"
fi
info "PAM module: $pam_module"
# journalctl -x explains jit's entries from the catalog meson installed, once compiled.
if command -v journalctl >/dev/null 2>&1; then
        if journalctl --update-catalog; then
                did "updated the journal catalog (journalctl -x explains jit's entries)"
        else
                warn "journalctl --update-catalog failed: journalctl -x will not explain jit's entries"
        fi
fi

# ---------------------------------------------------------------------------------------
say "3/6 Groups"
missing_groups=()
for g in jit jit-approvers; do
        if getent group "$g" >/dev/null; then
                info "group $g exists"
        else
                missing_groups+=("$g")
        fi
done
if [ ${#missing_groups[@]} -gt 0 ]; then
        if command -v systemd-sysusers >/dev/null 2>&1; then
                # The same file meson installed as sysusers.d/jit.conf (system groups).
                systemd-sysusers "$SYSUSERS" || die "systemd-sysusers failed"
        else
                for g in "${missing_groups[@]}"; do
                        groupadd --system "$g" || die "groupadd $g failed"
                done
        fi
        for g in "${missing_groups[@]}"; do
                getent group "$g" >/dev/null || die "group $g was not created"
                did "created group $g (gid $(getent group "$g" | cut -d: -f3))"
        done
fi
gated=$(getent group jit | cut -d: -f4)
if [ -n "$gated" ]; then
        info "members of jit (gated): $gated"
else
        info "group jit has no members: nobody is gated yet"
fi

# ---------------------------------------------------------------------------------------
say "4/6 Directories and policy"
install -d -m 0755 -o root -g root "$JIT_CONFDIR"
# The database is the audit trail: root only (the unit's StateDirectoryMode= agrees).
install -d -m 0700 -o root -g root "$JIT_STATEDIR"
if [ -e "$POLICY" ]; then
        info "keeping existing $POLICY"
else
        install -m 0644 -o root -g root "$JIT_DATADIR/policy.conf.example" "$POLICY"
        did "installed $POLICY from $JIT_DATADIR/policy.conf.example"
fi
# Validate with the installed jitctl (the broker refuses to start on an invalid policy).
set +e
check_out=$(/usr/bin/jitctl policy check "$POLICY" 2>&1)
check_rc=$?
set -e
if [ $check_rc -eq 0 ]; then
        info "policy check: OK"
elif [ $check_rc -eq 2 ] || [[ $check_out == *"not supported"* ]]; then
        info "policy check: not available in this jitctl yet, skipped"
else
        warn "jitctl policy check $POLICY failed: $check_out"
fi

# ---------------------------------------------------------------------------------------
say "5/6 PAM"

# Prints the jit block of FILE (begin to end marker), nothing when there is none.
pam_block() { sed -n "/^$BEGIN_MARK/,/^$END_MARK\$/p" "$1"; }

# Inserts the snippet before the first account entry of FILE (so no earlier account line
# can jump over it, and a later "done"/"sufficient" cannot override its failure), or at
# the end when there is none. Writes a temporary file and renames it into place.
pam_insert() {
        local file=$1 tmp
        tmp=$(mktemp "$(dirname "$file")/.$(basename "$file").jit.XXXXXX")
        awk -v snippet="$SNIPPET" '
                function emit(  line) {
                        while ((getline line < snippet) > 0) print line
                        close(snippet); inserted = 1
                }
                !inserted && tolower($0) ~ /^[ \t]*(-?account[ \t]|@include[ \t]+common-account)/ { emit() }
                { print }
                END { if (!inserted) emit() }
        ' "$file" >"$tmp" || { rm -f "$tmp"; return 1; }
        if ! chmod --reference="$file" "$tmp" || ! chown --reference="$file" "$tmp" ||
                ! mv -f "$tmp" "$file"; then
                rm -f "$tmp"
                return 1
        fi
}

if [ $opt_pam -eq 0 ]; then
        info "skipped (--skip-pam); add the lines of $JIT_DATADIR/pam.d-sudo.snippet yourself"
else
        expected=$(cat "$SNIPPET")
        for svc in "${PAM_SERVICES[@]}"; do
                file=/etc/pam.d/$svc
                if [ ! -f "$file" ]; then
                        [ "$svc" = sudo ] && die "$file does not exist: is sudo installed?"
                        info "$file does not exist, skipped"
                        continue
                fi
                current=$(pam_block "$file")
                if [ -n "$current" ]; then
                        if [ "$current" = "$expected" ]; then
                                info "$file already has the jit lines"
                        else
                                warn "$file has a jit block that differs from $SNIPPET: left as it is, check it by hand"
                        fi
                        continue
                fi
                if grep -q 'pam_jit\.so' "$file"; then
                        warn "$file already mentions pam_jit.so outside a jit block: left as it is"
                        continue
                fi
                install -d -m 0700 "$BACKUPDIR"
                backup=$BACKUPDIR/pam.d-$svc.$(date -u +%Y%m%dT%H%M%SZ)
                cp -p "$file" "$backup"
                pam_insert "$file" || die "could not update $file (unchanged; backup in $backup)"
                [ "$(pam_block "$file")" = "$expected" ] || die "$file was not updated as expected; the original is in $backup"
                did "added pam_jit to $file (backup: $backup)"
        done
        # sudo skips the whole account stack under "Defaults !pam_acct_mgmt" (docs/security.md, rule 3).
        acct=$(grep -sHnE '^[[:space:]]*Defaults.*!+[[:space:]]*pam_acct_mgmt' /etc/sudoers /etc/sudoers.d/* || true)
        if [ -n "$acct" ]; then
                warn "sudoers turns off PAM account management, so pam_jit is NEVER asked and gated users keep full sudo:"
                printf '         %s\n' "$acct" >&2
                warn "remove '!pam_acct_mgmt' from those lines (visudo) for jit to have any effect"
        elif ! sudo -V 2>/dev/null | grep -q 'PAM account validation management'; then
                # "sudo -V" run by root prints the effective global Defaults.
                warn "sudo -V does not report 'Perform PAM account validation management': pam_jit may never be asked; check sudoers (and sudoers in LDAP/SSSD)"
        else
                info "sudoers: PAM account management is on (no '!pam_acct_mgmt')"
        fi
fi

# ---------------------------------------------------------------------------------------
say "6/6 Service"
if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        systemctl enable --now jit-brokerd.socket
        # Enabled, not only socket-activated: the broker must run to expire grants on time.
        systemctl enable jit-brokerd.service
        # restart, not start: a re-run must pick up the newly installed binary.
        systemctl restart jit-brokerd.service ||
                die "jit-brokerd did not start: see 'journalctl -u jit-brokerd -n 50'"
        did "enabled jit-brokerd.socket and jit-brokerd.service, (re)started the broker"
        if status_out=$(/usr/bin/jitctl status 2>&1); then
                info "jitctl status: the broker answers"
        else
                printf '%s\n' "$status_out" >&2
                die "jitctl status failed: see 'systemctl status jit-brokerd' and 'journalctl -u jit-brokerd -n 50'"
        fi
        broker_running=1
else
        broker_running=0
        # A container or chroot: enable for the next boot with systemd (systemctl works on
        # the unit files offline) but start nothing.
        if command -v systemctl >/dev/null 2>&1; then
                if systemctl is-enabled --quiet jit-brokerd.socket 2>/dev/null &&
                        systemctl is-enabled --quiet jit-brokerd.service 2>/dev/null; then
                        info "jit-brokerd.socket and .service are enabled for the next boot with systemd"
                elif systemctl enable jit-brokerd.socket jit-brokerd.service >/dev/null 2>&1; then
                        did "enabled jit-brokerd.socket and jit-brokerd.service for the next boot with systemd"
                else
                        warn "could not enable the units; after booting with systemd run: systemctl enable --now jit-brokerd.socket jit-brokerd.service"
                fi
        fi
        # For a broker started by hand: the directory must be traversable by everyone.
        install -d -m 0755 -o root -g root /run/jit
        info "systemd is not running here (container or chroot): nothing was started."
fi

# ---------------------------------------------------------------------------------------
echo
say "Done"
for d in "${done_list[@]}"; do
        info "- $d"
done
[ ${#done_list[@]} -eq 0 ] && info "- nothing to change: everything was already in place"
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
  Uninstall:                $SRCDIR/packaging/uninstall.sh [--purge]
EOF
