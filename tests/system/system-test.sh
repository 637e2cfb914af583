#!/bin/bash
# SPDX-License-Identifier: MIT
# The system test: jit's packages installed with apt on a fresh Debian 12 that is booted
# with systemd as PID 1 (systemd-nspawn), the README walked through under the real units
# (tests/system/walkthrough.py), the container rebooted, and the packages purged.
#
#   tests/system/system-test.sh [DEBS_DIR]      (as root)
#
# Without DEBS_DIR it builds the packages (packaging/build-deb.sh, lintian included: a
# failed build or a lintian error or warning fails the test). The root file system is
# made once with mmdebstrap from the machine's Debian mirror and cached as a tarball under
# $JIT_SYSTEM_CACHE (default /var/tmp/jit-system-test), keyed by the packages it holds.
# The container has a network of its own (loopback only): its sshd cannot clash with the
# host's, and apt installs from the local packages alone.
#
# Exit status: 0 passed, 1 failed, 77 (skipped) when this machine cannot boot a container
# (no systemd-nspawn, no mmdebstrap or no mirror, a boot that fails for want of cgroups or
# privileges, not root) — never a pass.
set -uo pipefail

SKIP=77
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
cache=${JIT_SYSTEM_CACHE:-/var/tmp/jit-system-test}

skip() { echo "system-test: SKIP: $*"; exit $SKIP; }
die() { echo "system-test: FAIL: $*" >&2; exit 1; }
step() { printf 'system-test: %s (%ds)\n' "$*" $((SECONDS - t0)); }
t0=$SECONDS

[ "$(id -u)" -eq 0 ] || skip "not root"

# ---- the packages ----
debs=${1:-}
if [ -z "$debs" ]; then
        debs=$(mktemp -d /var/tmp/jit-system-debs.XXXXXX)
        trap 'rm -rf "$debs"' EXIT
        # lintian runs there too: an error or a warning fails the build, and this test.
        "$top/packaging/build-deb.sh" --nocheck --out "$debs" >"$debs/build.log" 2>&1 ||
                { tail -30 "$debs/build.log" >&2; die "building the packages failed"; }
        grep -E '^(E|W|I): ' "$debs/build.log" || true
        step "packages built, lintian clean"
fi
for tool in systemd-nspawn mmdebstrap nsenter dpkg-deb; do
        command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed"
done
# systemd-nspawn needs the machine's cgroup hierarchy (unified, or v1 with systemd's own);
# a bare chroot has none mounted.
[ -e /sys/fs/cgroup/cgroup.controllers ] || [ -d /sys/fs/cgroup/systemd ] ||
        skip "no cgroup hierarchy at /sys/fs/cgroup: systemd-nspawn cannot boot a container here"
shopt -s nullglob
pkgs=("$debs"/*.deb)
[ ${#pkgs[@]} -ge 2 ] || die "no packages in $debs"

# ---- the root file system: Debian 12, booting, with what the packages depend on ----
# Their dependencies, first alternative, without versions and without the packages
# themselves, so that apt in the container installs from the local files alone.
own=$(for p in "${pkgs[@]}"; do dpkg-deb -f "$p" Package; done | sort -u)
deps=$(for p in "${pkgs[@]}"; do dpkg-deb -f "$p" Depends Pre-Depends; done |
        sed 's/^[A-Za-z-]*: //' | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/:any//; s/[[:space:]]//g' |
        grep -v '^$' | grep -vxF -f <(echo "$own") | sort -u | tr '\n' ',')
include="systemd,systemd-sysv,dbus,sudo,openssh-server,openssh-client,procps,python3,libpam-runtime,${deps%,}"
key=$(echo "$include" | sha256sum | cut -c1-16)
image=$cache/bookworm-$key.tar
mkdir -p "$cache"
if [ ! -s "$image" ]; then
        mirror=$(sed -n 's/^URIs: //p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
        [ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
        [ -n "$mirror" ] || skip "no Debian mirror in the apt sources"
        # mmdebstrap makes a tarball of a target whose name ends in .tar.
        partial=$cache/bookworm-$key.partial.tar
        if ! mmdebstrap --variant=minbase --include="$include" bookworm "$partial" "$mirror" \
                >"$cache/mmdebstrap.log" 2>&1; then
                tail -5 "$cache/mmdebstrap.log" >&2
                rm -rf "$partial"
                skip "mmdebstrap could not build a Debian 12 root from $mirror"
        fi
        mv "$partial" "$image"
        step "root file system built ($include)"
fi

root=$(mktemp -d /var/tmp/jit-system-root.XXXXXX)
name=jitsys$$
nspawn_pid=
init_pid() { pgrep -P "$nspawn_pid" 2>/dev/null | head -1; }
enter() {
        nsenter -t "$(init_pid)" -m -u -i -n -p -- /usr/bin/env -i \
                PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
                LANG=C.UTF-8 TERM=xterm "$@"
}
stop_container() {
        if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
                enter systemctl poweroff >/dev/null 2>&1 || true
                for _ in $(seq 150); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
                kill "$nspawn_pid" 2>/dev/null || true
                wait "$nspawn_pid" 2>/dev/null || true
        fi
        nspawn_pid=
}
cleanup() {
        stop_container
        [ -n "${KEEP_ROOT:-}" ] || rm -rf --one-file-system "$root" "$root.console"
        [ -z "${1:-}" ] || rm -rf "$debs"
}
if [ -z "${1:-}" ]; then trap 'cleanup built' EXIT; else trap 'cleanup' EXIT; fi

tar -xf "$image" -C "$root" || die "unpacking $image"
echo "$name" >"$root/etc/hostname"
printf '127.0.1.1 %s\n' "$name" >>"$root/etc/hosts"
mkdir -p "$root/root/debs" "$root/root/walkthrough"
cp "${pkgs[@]}" "$root/root/debs/"
cp "$here/walkthrough.py" "$root/root/walkthrough/"

# Boots the container; returns once systemd says it is up (or fails).
boot() {
        setsid systemd-nspawn --boot --register=no --keep-unit --private-network \
                -D "$root" -M "$name" >>"$root.console" 2>&1 </dev/null &
        nspawn_pid=$!
        local state=
        for _ in $(seq 600); do
                if [ -n "$(init_pid)" ]; then
                        state=$(enter systemctl is-system-running 2>/dev/null)
                        case "$state" in running | degraded) return 0 ;; esac
                fi
                kill -0 "$nspawn_pid" 2>/dev/null || break
                sleep 0.1
        done
        tail -20 "$root.console" >&2
        return 1
}

if ! boot; then
        # The first boot tells whether this machine can boot a container at all.
        grep -qiE "cgroup|Operation not permitted|not supported|Failed to mount" "$root.console" &&
                skip "systemd-nspawn cannot boot a container on this machine"
        die "the container did not boot"
fi
step "booted"
enter python3 /root/walkthrough/walkthrough.py install /root/debs || die "the walkthrough failed (phase 1)"
step "phase 1 passed"

# A reboot of the container: systemd-nspawn returns when the container asks for one.
enter systemctl reboot >/dev/null 2>&1 || true
for _ in $(seq 300); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$nspawn_pid" 2>/dev/null && die "the container did not go down for its reboot"
wait "$nspawn_pid" 2>/dev/null
nspawn_pid=
boot || die "the container did not come back after its reboot"
step "rebooted"
enter python3 /root/walkthrough/walkthrough.py after-reboot || die "the walkthrough failed (phase 2)"
step "passed"
exit 0
