#!/bin/bash
# SPDX-License-Identifier: MIT
# Removes jit's packages with apt, after checking that no PAM file would be left naming
# pam_jit.so:
#
#   sudo ./packaging/uninstall.sh           # apt-get remove jit libpam-jit
#   sudo ./packaging/uninstall.sh --purge   # apt-get purge jit libpam-jit
#
# remove: libpam-jit's prerm takes pam_jit out of /etc/pam.d/common-* (pam-auth-update
# --remove jit) before the module goes; the units are stopped; /etc/jit (the policy),
# /var/lib/jit (the database and audit log) and the groups stay.
# purge: also deletes /etc/jit, /var/lib/jit (with the audit archives in
# /var/lib/jit/archive/) and /run/jit, and says what it deleted. The groups jit,
# jit-approvers and jit-auditors stay.
set -euo pipefail

opt_purge=0

die() { printf '\033[1;31mERROR:\033[0m %s\n' "$*" >&2; exit 1; }

usage() {
        cat <<EOF
Usage: $0 [--purge]

Removes the packages jit and libpam-jit (apt-get remove).
  --purge     apt-get purge: also delete the policy (/etc/jit), the database and audit
              log with its archives (/var/lib/jit) and /run/jit; the groups stay
  -h, --help  show this help
EOF
}

while [ $# -gt 0 ]; do
        case "$1" in
        --purge) opt_purge=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "uninstall: unknown argument: $1" >&2; usage >&2; exit 2 ;;
        esac
        shift
done

[ "$(id -u)" -eq 0 ] || die "run as root: sudo $0 $*"

# pam-auth-update takes care of common-*; lines added by hand elsewhere (from
# /usr/share/jit/pam.d-sudo.snippet, or by an earlier setup.sh) would name a module that
# no longer exists: their members of jit would be denied, and an unguarded line denies
# everyone.
hand_written=()
for f in /etc/pam.d/*; do
        case "$f" in /etc/pam.d/common-*) continue ;; esac
        [ -f "$f" ] && grep -qE '^[^#]*pam_jit\.so' "$f" && hand_written+=("$f")
done
if [ ${#hand_written[@]} -gt 0 ]; then
        die "PAM files name pam_jit.so (added by hand): ${hand_written[*]}
       Take those lines out first (the marked block: sed -i '/^# jit: begin/,/^# jit: end\$/d' FILE).
       Nothing was changed."
fi

installed=()
for p in jit libpam-jit; do
        if [ $opt_purge -eq 1 ]; then
                # "rc": removed, its configuration still there; purge handles that too.
                dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^[ir]' && installed+=("$p")
        else
                [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] && installed+=("$p")
        fi
done
if [ ${#installed[@]} -eq 0 ]; then
        echo "uninstall: jit and libpam-jit are not installed: nothing to do"
        exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if [ $opt_purge -eq 1 ]; then
        apt-get purge -y "${installed[@]}"
else
        apt-get remove -y "${installed[@]}"
        echo "uninstall: kept /etc/jit, /var/lib/jit and the groups (purge: $0 --purge)"
fi
