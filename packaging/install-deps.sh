#!/bin/bash
# SPDX-License-Identifier: MIT
# Installs the Debian 12 packages jit needs to build and run; with --tests, also what its
# test suite needs; with --fuzz, that and clang's libFuzzer (tests/fuzz/); with --package,
# what packaging/build-deb.sh needs to build the .deb files (debhelper, dpkg-dev, fakeroot,
# lintian and the Build-Depends of debian/control). Runs apt-get only when something is
# missing, so it is quick to re-run and works offline once everything is there.
#
#   packaging/install-deps.sh [--tests] [--fuzz] [--package]
set -euo pipefail

# openssh-client: ssh-keygen signs and checks signed approvals (docs/signed-approvals.md).
BUILD_PKGS=(meson ninja-build pkg-config gcc libpam0g-dev libsystemd-dev libsqlite3-dev
            libconfig-dev libjson-c-dev libssl-dev libpq-dev sudo scdoc openssh-client)
# The system test (tests/system/) builds the packages (PACKAGE_PKGS, added with --tests)
# and boots a Debian 12 made by mmdebstrap under systemd-nspawn. The fleet's tests start a
# PostgreSQL 15 server of their own (postgresql: its binaries and the postgres user), and
# one (and the fleet's benchmark, bench-fleet) puts Debian's pgbouncer in front of it in
# transaction pooling mode.
TEST_PKGS=(libcmocka-dev libpam-wrapper libpamtest0-dev python3 systemd openssh-server
           openssh-client sqlite3 util-linux mmdebstrap systemd-container postgresql
           pgbouncer)
# libFuzzer and the sanitizer runtimes are in libclang-rt-14-dev, which clang only
# recommends; llvm-symbolizer (llvm-14) puts file:line in the reports.
FUZZ_PKGS=(clang libclang-rt-14-dev llvm-14)
# packaging/build-deb.sh: the tools, and debian/control's Build-Depends (keep them in step).
PACKAGE_PKGS=(build-essential debhelper dpkg-dev fakeroot lintian
              meson ninja-build pkgconf libpam0g-dev libsystemd-dev libsqlite3-dev
              libconfig-dev libjson-c-dev libssl-dev libpq-dev scdoc systemd libcmocka-dev)

usage() {
        cat <<EOF
Usage: $0 [--tests] [--fuzz] [--package]

Installs jit's build and runtime dependencies with apt-get (Debian 12).
  --tests     also install what the test suite needs (with the system test: what
              --package installs, mmdebstrap and systemd-nspawn)
  --fuzz      also install what the test suite and the fuzz targets need (clang, libFuzzer)
  --package   also install what packaging/build-deb.sh needs to build and check the .deb
              files: ${PACKAGE_PKGS[*]:0:4}
              and the build dependencies of debian/control
  -h, --help  show this help
EOF
}

want=("${BUILD_PKGS[@]}")
while [ $# -gt 0 ]; do
        case "$1" in
        --tests) want+=("${TEST_PKGS[@]}" "${PACKAGE_PKGS[@]}") ;;
        --fuzz) want+=("${TEST_PKGS[@]}" "${PACKAGE_PKGS[@]}" "${FUZZ_PKGS[@]}") ;;
        --package) want+=("${PACKAGE_PKGS[@]}") ;;
        -h | --help) usage; exit 0 ;;
        *) echo "install-deps: unknown argument: $1" >&2; usage >&2; exit 2 ;;
        esac
        shift
done

if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: must run as root (it calls apt-get)" >&2
        exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
        echo "install-deps: apt-get not found: this script is for Debian (12, bookworm)." >&2
        echo "install-deps: install these by hand: ${want[*]}" >&2
        exit 1
fi

missing=()
for p in "${want[@]}"; do
        # dpkg-query prints "install ok installed" only for a fully installed package.
        if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]; then
                missing+=("$p")
        fi
done

if [ ${#missing[@]} -eq 0 ]; then
        echo "install-deps: all ${#want[@]} packages already installed"
        exit 0
fi

echo "install-deps: installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
echo "install-deps: done"
