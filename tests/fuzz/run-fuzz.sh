#!/bin/bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets (build-fuzz/: clang, -Dfuzz=true, ASan+UBSan) and runs each
# on a scratch copy of its seed corpus (tests/fuzz/corpus/TARGET/; the repository's copy is
# never written). Any crash, leak, UBSan report, timeout or out-of-memory fails the run.
# Prints, per target, the executions, executions per second and coverage.
#
#   tests/fuzz/run-fuzz.sh [--runs N | --time S] [--jobs J] [--keep] [TARGET...]
#
# See tests/fuzz/README.md.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$top/build-fuzz}
all_targets=(fuzz-frame fuzz-message fuzz-policy fuzz-duration fuzz-time fuzz-audit-verify
             fuzz-text fuzz-pam-reply)

usage() {
        cat <<EOF
Usage: $0 [--runs N | --time S] [--jobs J] [--keep] [TARGET...]

Runs the fuzz targets (default: all of ${all_targets[*]}).
  --runs N    executions per target (default 20000)
  --time S    seconds per target instead of a number of executions
  --jobs J    targets run at once (default: the number of CPUs)
  --keep      keep the scratch directory (grown corpora, logs, findings)
  -h, --help  show this help
The build directory is $build (FUZZ_BUILD_DIR overrides it).
EOF
}

runs=20000
seconds=
jobs=$(nproc 2>/dev/null || echo 2)
keep=0
targets=()
while [ $# -gt 0 ]; do
        case "$1" in
        --runs) runs=${2:?--runs needs a number}; seconds=; shift ;;
        --time) seconds=${2:?--time needs seconds}; shift ;;
        --jobs) jobs=${2:?--jobs needs a number}; shift ;;
        --keep) keep=1 ;;
        -h | --help) usage; exit 0 ;;
        -*) echo "run-fuzz: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) targets+=("${1#tests/fuzz/}") ;;
        esac
        shift
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
        [ -d "$here/corpus/$t" ] || { echo "run-fuzz: no target $t (no corpus/$t)" >&2; exit 2; }
done

# ---- the toolchain and the build ----
if ! command -v clang >/dev/null 2>&1 ||
   ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' |
     clang -x c -fsanitize=fuzzer -o /dev/null - >/dev/null 2>&1; then
        if [ "$(id -u)" -eq 0 ]; then
                "$top/packaging/install-deps.sh" --fuzz || exit 1
        else
                echo "run-fuzz: clang with libFuzzer is missing: packaging/install-deps.sh --fuzz (as root)" >&2
                exit 1
        fi
fi
if [ ! -f "$build/build.ninja" ]; then
        echo "=== meson setup $build"
        CC=clang meson setup "$build" "$top" -Dfuzz=true -Db_sanitize=address,undefined \
                -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link >"$build.setup.log" 2>&1 ||
                { cat "$build.setup.log" >&2; rm -f "$build.setup.log"; exit 1; }
        rm -f "$build.setup.log"
fi
echo "=== building the fuzz targets ($build)"
if ! out=$(meson compile -C "$build" fuzz 2>&1); then
        tail -60 <<<"$out" >&2
        exit 1
fi

# ---- the runs ----
work=$(mktemp -d "${TMPDIR:-/tmp}/jit-fuzz.XXXXXX")
[ $keep -eq 1 ] || trap 'rm -rf "$work"' EXIT

dict_for() {
        case "$1" in
        fuzz-policy) echo "$here/dict/policy.dict" ;;
        fuzz-duration | fuzz-time) echo "$here/dict/time.dict" ;;
        fuzz-audit-verify) echo "$here/dict/audit.dict" ;;
        *) echo "$here/dict/json.dict" ;;
        esac
}

# The sanitizers: any report ends the run as a finding; leaks are checked after every input.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1:detect_stack_use_after_return=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:report_error_type=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

# How leaks are looked for. libFuzzer counts mallocs and frees around each input and, when
# they differ, runs it again under a full LeakSanitizer scan (milliseconds). libconfig 1.5
# leaks on most syntax errors (lsan.supp), so for fuzz-policy that scan would run on nearly
# every input, at 250 executions a second instead of 10,000: it fuzzes without the
# per-input check, and then every input of its final corpus (each one that reached new
# code) runs again with it. All other targets check every input.
leaks_for() {
        case "$1" in
        fuzz-policy) echo corpus ;;
        *) echo input ;;
        esac
}

run_one() {
        local t=$1 dir=$work/$1 exe=$build/tests/fuzz/$1
        mkdir -p "$dir/corpus" "$dir/findings"
        cp -R "$here/corpus/$t/." "$dir/corpus/"
        local limit=("-runs=$runs") leaks=1 rc
        [ -z "$seconds" ] || limit=("-max_total_time=$seconds")
        [ "$(leaks_for "$t")" = input ] || leaks=0
        local t0 t1
        t0=$(date +%s%N)
        (cd "$dir" && ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=$leaks" exec "$exe" "${limit[@]}" \
                -detect_leaks=$leaks -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
                -dict="$(dict_for "$t")" -artifact_prefix="$dir/findings/" "$dir/corpus") \
                >"$dir/log" 2>&1
        rc=$?
        t1=$(date +%s%N)
        echo $(( (t1 - t0) / 1000000 )) >"$dir/ms"
        if [ $rc -eq 0 ] && [ $leaks -eq 0 ]; then
                # Every input of the grown corpus, once, with the leak check.
                (cd "$dir" && exec "$exe" -runs=0 -detect_leaks=1 -timeout=10 \
                        -rss_limit_mb=2048 -artifact_prefix="$dir/findings/" "$dir/corpus") \
                        >"$dir/leak-log" 2>&1
                rc=$?
                cat "$dir/leak-log" >>"$dir/log"
        fi
        echo $rc >"$dir/rc"
}

echo "=== fuzzing: ${targets[*]} ($([ -n "$seconds" ] && echo "${seconds}s" || echo "$runs runs") each, $jobs at once)"
start=$(date +%s)
running=0
for t in "${targets[@]}"; do
        if [ "$running" -ge "$jobs" ]; then
                wait -n
                running=$((running - 1))
        fi
        run_one "$t" &
        running=$((running + 1))
done
wait

# ---- the report ----
failed=0
printf '%-18s %-7s %12s %9s %8s %7s %7s %10s %s\n' target result executions exec/s seconds cov ft corpus leaks
for t in "${targets[@]}"; do
        dir=$work/$t
        rc=$(cat "$dir/rc" 2>/dev/null || echo 1)
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | head -1)
        ms=$(cat "$dir/ms" 2>/dev/null || echo 0)
        # libFuzzer's own average is in whole seconds; this one is not.
        rate=$([ -n "$execs" ] && [ "$ms" -gt 0 ] && echo $(( execs * 1000 / ms )))
        last=$(grep -E '^#[0-9]+ +(DONE|pulse|NEW|REDUCE|INITED)' "$dir/log" | grep -m1 DONE ||
               grep -E '^#[0-9]+' "$dir/log" | tail -1)
        cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
        ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
        corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")
        result=ok
        # libFuzzer's exit status is the verdict; a sanitizer line without one is a finding too.
        if [ "$rc" -ne 0 ] || ls "$dir/findings/"* >/dev/null 2>&1 ||
           grep -qE 'runtime error:|ERROR: (Address|Leak|UndefinedBehavior)Sanitizer' "$dir/log"; then
                result=FINDING
                failed=$((failed + 1))
        fi
        printf '%-18s %-7s %12s %9s %8s %7s %7s %10s %s\n' "$t" "$result" "${execs:-?}" "${rate:-?}" \
                "$((ms / 1000)).$(printf %03d $((ms % 1000)))" "${cov:-?}" "${ft:-?}" "${corp:-?}" \
                "$(leaks_for "$t")"
done
echo "fuzz: $(( $(date +%s) - start ))s for ${#targets[@]} targets"

if [ "$failed" -gt 0 ]; then
        for t in "${targets[@]}"; do
                dir=$work/$t
                if [ "$(cat "$dir/rc" 2>/dev/null || echo 1)" -ne 0 ] || ls "$dir/findings/"* >/dev/null 2>&1; then
                        echo "=== $t: finding (log: the last lines)"
                        grep -m1 '^INFO: Seed:' "$dir/log"
                        grep -vE '^#[0-9]+|^INFO:|^stat::' "$dir/log" | tail -60
                        for f in "$dir/findings/"*; do
                                [ -e "$f" ] || continue
                                echo "--- input $f (base64):"
                                base64 -w 0 "$f"
                                echo
                        done
                fi
        done
        if [ $keep -eq 0 ]; then
                # Keep what reproduces it: the scratch directory outlives this run.
                trap - EXIT
                echo "run-fuzz: findings kept in $work (reproduce: $build/tests/fuzz/TARGET FILE)"
        fi
fi
[ $keep -eq 1 ] && echo "run-fuzz: scratch directory kept: $work"
echo "fuzz: ${#targets[@]} targets, $failed with findings"
[ "$failed" -eq 0 ]
