#!/bin/bash
# SPDX-License-Identifier: MIT
# Runs jit's whole test suite on Debian 12, as root: installs what the tests need, builds,
# and runs unit tests (cmocka) and integration tests (a real broker, real users, real sudo
# and journald, each test in a private mount namespace: the machine's /etc is not touched).
#
#   sudo ./packaging/run-tests.sh [--sanitize] [MESON TEST ARGS...]
#
#   --sanitize   build with -Db_sanitize=address,undefined (build-asan/) and run the suite
#                there; pam_jit.so is then driven through pam_wrapper instead of setuid sudo
set -euo pipefail

SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
builddir="$SRCDIR/build-tests"
setup_args=()
if [ "${1:-}" = "--sanitize" ]; then
        shift
        builddir="$SRCDIR/build-asan"
        setup_args+=(-Db_sanitize=address,undefined -Db_lundef=false)
fi

if [ "$(id -u)" -ne 0 ]; then
        echo "run-tests: run as root: the tests create users and run sudo in a private namespace" >&2
        exit 1
fi

"$SRCDIR/packaging/install-deps.sh" --tests

if [ ! -f "$builddir/build.ninja" ]; then
        meson setup "$builddir" "$SRCDIR" "${setup_args[@]}"
fi
ninja -C "$builddir"
# Two cores: run two test programs at a time; each has its own namespace, broker and users.
exec meson test -C "$builddir" --print-errorlogs --num-processes 2 "$@"
