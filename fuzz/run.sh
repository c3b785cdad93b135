#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of untrusted input (see fuzz/README.md).
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]   default 60 s, every target
#   fuzz/run.sh --ci [TARGET...]                   20 s each, for CI
#   FUZZ_RUNS=N fuzz/run.sh ...                    also stop a target after N executions
#
# Builds once, runs each target in turn for the given time, prints a table and exits non-zero
# if any target crashed (a panic, a failed property, a timeout or running out of memory); the
# input that did it is written under fuzz/artifacts/<target>/ and its path printed.
#
# New inputs go to fuzz/work/corpus/<target>/ (not committed); the seeds in fuzz/corpus/<target>/
# are read, never written. Nothing is written outside fuzz/.
set -euo pipefail
cd "$(dirname "$0")"

seconds=60
if [ "${1:-}" = "--ci" ]; then
    seconds=20
    shift
elif [[ "${1:-}" =~ ^[0-9]+$ ]]; then
    seconds=$1
    shift
fi
all_targets=(github_webhook gitlab_webhook policy commands postmortem_ref action_inputs)
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=("${all_targets[@]}")

# libFuzzer needs unstable compiler flags; the machine has only the stable toolchain, which
# accepts them with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

# No sanitizer (`-s none`): every parser here is safe Rust, so what fuzzing can find is a panic,
# an arithmetic overflow (caught with debug assertions, `-a`), a failed property, runaway time
# or memory; none of those needs AddressSanitizer, which would roughly halve the executions per
# second on a two-core machine and instrument every dependency a second time.
triple=$(rustc -vV | sed -n 's/^host: //p')
log=work/build.log
mkdir -p work
echo "building the fuzz targets (log: fuzz/$log)"
if ! cargo fuzz build -O -a -s none >"$log" 2>&1; then
    tail -n 30 "$log"
    exit 1
fi

rows=()
failed=0
for target in "${targets[@]}"; do
    bin=target/$triple/release/$target
    work=work/corpus/$target
    artifacts=artifacts/$target
    mkdir -p "$work" "$artifacts" "corpus/$target"
    out=work/$target.log
    extra=()
    [ -f "dict/$target.dict" ] && extra=(-dict="dict/$target.dict")
    [ -n "${FUZZ_RUNS:-}" ] && extra+=(-runs="$FUZZ_RUNS")
    echo "fuzzing $target for ${seconds}s (log: fuzz/$out)"
    set +e
    "$bin" "$work" "corpus/$target" "${extra[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 >"$out" 2>&1
    rc=$?
    set -e
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out" | tail -n 1)
    corpus=$(grep -oE 'corp: [0-9]+' "$out" | tail -n 1 | cut -d' ' -f2)
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$out" | tail -n 1)
    crashes=0
    if [ "$rc" -ne 0 ] || [ -n "$crash" ]; then
        crashes=1
        failed=1
        echo "CRASH in $target: ${crash:-see fuzz/$out} (exit $rc)"
        grep -m 5 -E 'panicked at|ERROR: libFuzzer|SUMMARY' "$out" || tail -n 20 "$out"
        [ -n "$crash" ] && echo "reproduce: fuzz/$bin fuzz/$crash"
    fi
    rows+=("$(printf '%-16s %12s %8s %8s %8s' "$target" "${runs:-?}" "${rate:-?}" "${corpus:-?}" "$crashes")")
done

echo
printf '%-16s %12s %8s %8s %8s\n' target executions exec/s corpus crashes
printf '%s\n' "${rows[@]}"
exit "$failed"
