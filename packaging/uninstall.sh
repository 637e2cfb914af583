#!/bin/bash
# SPDX-License-Identifier: MIT
# Undoes packaging/setup.sh:
#
#   sudo ./packaging/uninstall.sh [--purge]
#
#  1. removes the "# jit: begin" ... "# jit: end" blocks from /etc/pam.d (sudo, sudo-i),
#     after checking that no PAM file names pam_jit.so anywhere else: removing the
#     module under a "required" line would lock everyone out (then nothing is changed)
#  2. stops and disables jit-brokerd.socket and jit-brokerd.service
#  3. removes the installed files (the list meson wrote at install time)
#  4. with --purge only: removes /etc/jit (policy), /var/lib/jit (database and audit
#     trail), /run/jit, the groups jit and jit-approvers, and the PAM backups
set -euo pipefail

SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JIT_DATADIR=/usr/share/jit
MANIFEST=$JIT_DATADIR/installed-files.txt
BUILD_LOG=$SRCDIR/build/meson-logs/install-log.txt
BACKUPDIR=/var/backups/jit
BEGIN_MARK='# jit: begin'
END_MARK='# jit: end'
# The only lines setup.sh ever puts between the markers (comments aside).
KNOWN_LINES=(
        'account [success=1 default=ignore] pam_succeed_if.so quiet user notingroup jit'
        'account required pam_jit.so service=sudo'
        'session required pam_jit.so service=sudo'
)

opt_purge=0
done_list=()

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
info() { printf '    %s\n' "$*"; }
did() { done_list+=("$*"); info "$*"; }
warn() { printf '\033[1;33mWARNING:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31mERROR:\033[0m %s\n' "$*" >&2; exit 1; }

usage() {
        cat <<EOF
Usage: $0 [--purge]

Removes jit: its PAM lines, its systemd units and its installed files.
  --purge     also delete the policy (/etc/jit), the database and audit trail
              (/var/lib/jit), the groups jit and jit-approvers, and the PAM backups
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

# ---------------------------------------------------------------------------------------
say "1/4 PAM"
# Checks that the jit block of FILE holds only comments and the lines setup.sh writes.
block_is_ours() {
        local line known ok
        while IFS= read -r line; do
                case "$line" in '' | '#'*) continue ;; esac
                ok=0
                for known in "${KNOWN_LINES[@]}"; do
                        [ "$line" = "$known" ] && ok=1
                done
                [ $ok -eq 1 ] || return 1
        done < <(sed -n "/^$BEGIN_MARK/,/^$END_MARK\$/p" "$1")
}

# Check everything before changing anything: uninstall must never leave a PAM file that
# names pam_jit.so once the module is gone ("required" + missing module = nobody gets in).
jit_files=()
for file in /etc/pam.d/*; do
        [ -f "$file" ] || continue
        if grep -q "^$BEGIN_MARK" "$file"; then
                if [ "$(grep -c "^$BEGIN_MARK" "$file")" -ne 1 ] ||
                        [ "$(grep -c "^$END_MARK\$" "$file")" -ne 1 ]; then
                        die "$file has a damaged jit block (begin/end markers unpaired): fix it by hand, then run again. Nothing was changed."
                fi
                block_is_ours "$file" ||
                        die "the jit block in $file holds lines setup.sh did not write: edit it by hand, then run again. Nothing was changed."
                jit_files+=("$file")
        fi
        if sed "/^$BEGIN_MARK/,/^$END_MARK\$/d" "$file" | grep -qE '^[^#]*pam_jit\.so'; then
                die "$file uses pam_jit.so outside a jit block: remove those lines first, then run again. Nothing was changed."
        fi
done

if [ ${#jit_files[@]} -eq 0 ]; then
        info "no PAM file has jit lines"
fi
for file in "${jit_files[@]}"; do
        name=$(basename "$file")
        install -d -m 0700 "$BACKUPDIR"
        backup=$BACKUPDIR/pam.d-$name.$(date -u +%Y%m%dT%H%M%SZ).before-uninstall
        cp -p "$file" "$backup"
        tmp=$(mktemp "/etc/pam.d/.$name.jit.XXXXXX")
        sed "/^$BEGIN_MARK/,/^$END_MARK\$/d" "$file" >"$tmp"
        chmod --reference="$file" "$tmp"
        chown --reference="$file" "$tmp"
        mv -f "$tmp" "$file"
        did "removed the jit lines from $file (copy before: $backup)"
done

# ---------------------------------------------------------------------------------------
say "2/4 Service"
units=(jit-brokerd.service jit-brokerd.socket)
if [ -d /run/systemd/system ]; then
        for u in "${units[@]}"; do
                if systemctl cat "$u" >/dev/null 2>&1; then
                        systemctl disable --now "$u" >/dev/null 2>&1 || warn "could not stop/disable $u"
                        did "stopped and disabled $u"
                fi
        done
        systemctl reset-failed "${units[@]}" >/dev/null 2>&1 || true
elif command -v systemctl >/dev/null 2>&1; then
        # No systemd running (container/chroot): just drop the enablement symlinks.
        for u in "${units[@]}"; do
                if systemctl is-enabled --quiet "$u" 2>/dev/null &&
                        systemctl disable "$u" >/dev/null 2>&1; then
                        did "disabled $u"
                fi
        done
        info "systemd is not running: if you started jit-brokerd by hand, stop it yourself"
fi

# ---------------------------------------------------------------------------------------
say "3/4 Installed files"
list=
if [ -f "$MANIFEST" ]; then
        list=$MANIFEST
elif [ -f "$BUILD_LOG" ]; then
        list=$BUILD_LOG
fi
if [ -z "$list" ]; then
        warn "no install list ($MANIFEST or $BUILD_LOG): remove jit's files by hand, or run 'ninja -C build uninstall'"
else
        # Copy first: the list itself is one of the installed files.
        files=$(grep -v '^#' "$list")
        n=0
        while IFS= read -r f; do
                case "$f" in
                /*) ;;
                *) continue ;; # only absolute paths, as meson writes them
                esac
                if [ -f "$f" ] || [ -L "$f" ]; then
                        rm -f -- "$f"
                        n=$((n + 1))
                fi
        done <<<"$files"
        rm -f -- "$MANIFEST"
        # Directories meson created (it lists them on the first install only), deepest
        # first, and our own ones; each only when empty.
        dirs=$( (grep '^/' <<<"$files"; printf '%s\n' "$JIT_DATADIR" /usr/share/doc/jit) |
                sort -ru)
        while IFS= read -r d; do
                if [ -d "$d" ] && [ ! -L "$d" ]; then
                        rmdir --ignore-fail-on-non-empty -- "$d"
                fi
        done <<<"$dirs"
        if [ $n -gt 0 ]; then
                did "removed $n installed files (list: $list)"
        else
                info "no installed files left"
        fi
fi
if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
fi
# The runtime directory holds nothing worth keeping once no broker runs.
if [ -d /run/jit ] && [ -z "$(ls -A /run/jit)" ]; then
        rmdir /run/jit
fi

# ---------------------------------------------------------------------------------------
say "4/4 Data"
if [ $opt_purge -eq 1 ]; then
        for d in /etc/jit /var/lib/jit /run/jit "$BACKUPDIR"; do
                if [ -e "$d" ]; then
                        rm -rf -- "$d"
                        did "deleted $d"
                fi
        done
        for g in jit jit-approvers; do
                if getent group "$g" >/dev/null; then
                        if groupdel "$g"; then
                                did "deleted group $g"
                        else
                                warn "could not delete group $g"
                        fi
                fi
        done
else
        for d in /etc/jit /var/lib/jit; do
                [ -e "$d" ] && info "kept $d (use --purge to delete it)"
        done
        getent group jit >/dev/null && info "kept groups jit and jit-approvers (use --purge to delete them)"
fi

echo
say "Done"
for d in "${done_list[@]}"; do
        info "- $d"
done
[ ${#done_list[@]} -eq 0 ] && info "- nothing to remove"
exit 0
