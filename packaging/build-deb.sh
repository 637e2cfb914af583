#!/bin/bash
# SPDX-License-Identifier: MIT
# Builds the Debian packages jit and libpam-jit from this tree and checks them with
# lintian:
#
#   packaging/build-deb.sh [--out DIR] [--nocheck] [--dbgsym] [--keep]
#
# The build runs on a copy of the tree in a scratch directory (the files git tracks, and
# new files it does not ignore; every file but build directories when this is not a git
# checkout), so the tree itself stays clean. The packages, the .buildinfo and the
# .changes go to build-deb/ at the top of the tree (--out), replacing the ones an earlier
# run left there. lintian must report no error and no warning, or the script fails.
# Install them with:
#
#   apt-get install ./build-deb/jit_*.deb ./build-deb/libpam-jit_*.deb
#
# The build needs debhelper, dpkg-dev, fakeroot, lintian and the build dependencies of
# debian/control: packaging/install-deps.sh --package installs them.
set -euo pipefail

SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUTDIR=$SRCDIR/build-deb

opt_nocheck=0
opt_dbgsym=0
opt_keep=0

die() { printf 'build-deb: error: %s\n' "$*" >&2; exit 1; }
say() { printf '==> %s\n' "$*"; }

usage() {
        cat <<EOF
Usage: $0 [--out DIR] [--nocheck] [--dbgsym] [--keep]

Builds the Debian packages jit and libpam-jit from this tree (dpkg-buildpackage -b on a
copy of it) and runs lintian on them.
  --out DIR   put the packages into DIR (default: $OUTDIR)
  --nocheck   do not run the unit tests during the build
  --dbgsym    also build the -dbgsym packages with the debug symbols
  --keep      keep the scratch copy of the tree (its path is printed)
  -h, --help  show this help
EOF
}

while [ $# -gt 0 ]; do
        case "$1" in
        --out)
                [ $# -ge 2 ] || die "--out needs a directory"
                OUTDIR=$2
                shift
                ;;
        --nocheck) opt_nocheck=1 ;;
        --dbgsym) opt_dbgsym=1 ;;
        --keep) opt_keep=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "build-deb: unknown argument: $1" >&2; usage >&2; exit 2 ;;
        esac
        shift
done

if [ ! -f "$SRCDIR/debian/control" ] || [ ! -f "$SRCDIR/meson.build" ]; then
        die "cannot find the jit source tree with debian/ at $SRCDIR"
fi
mkdir -p "$OUTDIR" || die "cannot create $OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
missing=()
for tool in dpkg-buildpackage dpkg-checkbuilddeps dpkg-parsechangelog dh fakeroot lintian tar; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] ||
        die "missing ${missing[*]}: run packaging/install-deps.sh --package (as root)"

profiles=()
build_options=${DEB_BUILD_OPTIONS:-}
if [ $opt_nocheck -eq 1 ]; then
        profiles=(-Pnocheck)
        build_options="$build_options nocheck"
fi
[ $opt_dbgsym -eq 1 ] || build_options="$build_options noautodbgsym"
export DEB_BUILD_OPTIONS="${build_options# }"

# dpkg-checkbuilddeps names what is missing; say how to get it before building anything.
if ! (cd "$SRCDIR" && dpkg-checkbuilddeps "${profiles[@]}"); then
        die "build dependencies are missing (above): run packaging/install-deps.sh --package (as root)"
fi

version=$(cd "$SRCDIR" && dpkg-parsechangelog -S Version)
source=$(cd "$SRCDIR" && dpkg-parsechangelog -S Source)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)

scratch=$(mktemp -d "${TMPDIR:-/tmp}/jit-deb.XXXXXX")
if [ $opt_keep -eq 1 ]; then
        trap 'echo "build-deb: the scratch copy is kept in $scratch"' EXIT
else
        trap 'rm -rf "$scratch"' EXIT
fi
copy=$scratch/$source-$version

say "Copying the tree to $copy"
mkdir -p "$copy"
if git -C "$SRCDIR" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        # Tracked files as they are in the working tree, and new files git does not
        # ignore; a tracked file deleted from the working tree is left out.
        list=$scratch/files
        while IFS= read -r -d '' f; do
                if [ -e "$SRCDIR/$f" ] || [ -L "$SRCDIR/$f" ]; then
                        printf '%s\0' "$f"
                fi
        done < <(git -C "$SRCDIR" ls-files -z --cached --others --exclude-standard) >"$list"
        tar -C "$SRCDIR" --null --no-recursion -T "$list" -cf - | tar -C "$copy" -xf -
else
        tar -C "$SRCDIR" --exclude='./build*' --exclude='./obj-*' --exclude='./.git' \
                --exclude='__pycache__' -cf - . | tar -C "$copy" -xf -
fi

say "Building $source $version ($arch) with dpkg-buildpackage${DEB_BUILD_OPTIONS:+ (DEB_BUILD_OPTIONS=$DEB_BUILD_OPTIONS)}"
(cd "$copy" && dpkg-buildpackage -b -us -uc "${profiles[@]}") ||
        die "dpkg-buildpackage failed (see above); nothing was copied to $OUTDIR"

changes=$scratch/${source}_${version}_${arch}.changes
[ -f "$changes" ] || die "dpkg-buildpackage wrote no $changes"
# The files the .changes lists: the packages and the .buildinfo.
mapfile -t produced < <(sed -n '/^Files:/,/^[^ ]/{s/^ [0-9a-f]\{32\} [0-9]\+ [^ ]\+ [^ ]\+ //p}' "$changes")
[ ${#produced[@]} -gt 0 ] || die "$changes lists no files"

rm -f "$OUTDIR"/*.deb "$OUTDIR"/*.buildinfo "$OUTDIR"/*.changes
for f in "${produced[@]}" "$(basename "$changes")"; do
        mv -f "$scratch/$f" "$OUTDIR/"
done

say "lintian (errors and warnings fail the build)"
lintian_rc=0
lintian --fail-on error,warning --display-info "$OUTDIR/$(basename "$changes")" || lintian_rc=$?

echo
say "Packages in $OUTDIR:"
(cd "$OUTDIR" && ls -l -- *.deb)
if [ $lintian_rc -ne 0 ]; then
        die "lintian reported errors or warnings (above): fix the packaging"
fi
# apt-get takes a package file only as a path with a slash: ./ from the top of the tree.
shown=$OUTDIR
where=""
case "$OUTDIR" in "$SRCDIR"/*) shown=./${OUTDIR#"$SRCDIR"/} where=" from $SRCDIR" ;; esac
cat <<EOF

Install them$where (apt-get fetches their dependencies):
  apt-get install $shown/jit_${version}_${arch}.deb $shown/libpam-jit_${version}_${arch}.deb
EOF
