#!/bin/bash
# tests/fuzz/run.sh NAME [SECONDS]
#
# Runs the libFuzzer target build/fuzz/bin/fuzz_NAME (from `make fuzz-build`)
# for SECONDS (default 60) over a COPY of tests/fuzz/corpus/NAME, so a run
# never writes into the repository, and prints one line:
#   fuzz NAME: ok, 1234567 runs in 60 s, corpus 5 -> 87 inputs
#   fuzz NAME: CRASH (deadly signal) after 12 s; input: build/fuzz/artifacts/NAME/crash-…
# Exit 0 when clean, 1 on a crash/leak/timeout/OOM/UB report, 2 on misuse.
#
# NAME may be "all": every target in build/fuzz/bin, one after the other.
# A bare number is SECONDS for all targets (a bare `make fuzz` runs
# "run.sh 600" since T is empty).
#
# Crash inputs and the full log stay in build/fuzz/artifacts/NAME/
# (outside the tree's sources). Reproduce with
#   build/fuzz/bin/fuzz_NAME build/fuzz/artifacts/NAME/crash-…
#
# Corpus: by default nothing is written back. With FUZZ_MERGE=1 in the
# environment (`make fuzz T=mac SECONDS=600 FUZZ_MERGE=1`), inputs that add
# coverage are merged (libFuzzer -merge=1, so only new coverage) into
# tests/fuzz/corpus/NAME after a clean run, for the lead to review and
# commit. CI (tests/run.sh fuzz) never sets it.
#
# Environment: FUZZ_BIN (default build/fuzz/bin), FUZZ_ARTIFACTS (default
# build/fuzz/artifacts), FUZZ_MERGE (see above), ASAN_OPTIONS and
# UBSAN_OPTIONS (defaults: leak checks on, UB is fatal).
set -u
cd "$(dirname "$0")/../.." || exit 2
ROOT=$PWD
BIN_DIR=${FUZZ_BIN:-$ROOT/build/fuzz/bin}
ART_DIR=${FUZZ_ARTIFACTS:-$ROOT/build/fuzz/artifacts}

usage() {
	echo "usage: $0 NAME|all [SECONDS]" >&2
	exit 2
}

name=${1:-all}
secs=${2:-60}
case "$name" in
*[!0-9]*) ;;
*) [ $# -eq 1 ] && { secs=$name; name=all; } ;;
esac
case "$secs" in
''|*[!0-9]*) usage ;;
esac
[ "$secs" -ge 1 ] || usage

if [ "$name" = all ]; then
	rc=0 any=0
	for t in "$BIN_DIR"/fuzz_*; do
		[ -x "$t" ] || continue
		any=1
		"$0" "$(basename "$t" | sed 's/^fuzz_//')" "$secs" || rc=1
	done
	if [ "$any" -eq 0 ]; then
		echo "fuzz: no targets in $BIN_DIR (run make fuzz-build)" >&2
		exit 2
	fi
	exit "$rc"
fi

case "$name" in
*[!A-Za-z0-9_-]*) usage ;;
esac
bin=$BIN_DIR/fuzz_$name
if [ ! -x "$bin" ]; then
	echo "fuzz $name: FAILED, no binary $bin (run make fuzz-build)"
	exit 1
fi

seed=$ROOT/tests/fuzz/corpus/$name
art=$ART_DIR/$name
mkdir -p "$art" || exit 2
work=$(mktemp -d "${TMPDIR:-/tmp}/bastion-fuzz-$name.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
nseed=0
if [ -d "$seed" ]; then
	cp -R "$seed"/. "$work/corpus/" 2>/dev/null
	nseed=$(find "$work/corpus" -type f | wc -l)
fi
log=$art/last.log

# UBSan reports must fail the run, not scroll by; ASan leak checking on.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}

dict=
[ -f "$ROOT/tests/fuzz/$name.dict" ] && dict=-dict=$ROOT/tests/fuzz/$name.dict

start=$(date +%s)
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$art/" $dict \
    "$work/corpus" >"$log" 2>&1
rc=$?
elapsed=$(( $(date +%s) - start ))
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
ncorp=$(find "$work/corpus" -type f | wc -l)

if [ "$rc" -ne 0 ]; then
	kind=$(grep -m1 -oE 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer): [a-zA-Z -]+|runtime error: .*|SUMMARY: .*|ALARM: .*|out-of-memory.*' "$log" | head -1)
	input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
	echo "fuzz $name: CRASH (${kind:-exit $rc}) after $elapsed s;" \
	    "input: ${input:-none}; log: $log"
	# The stack, for whoever reads CI output.
	grep -E '^ *#[0-9]+ |ERROR:|SUMMARY:|runtime error' "$log" | head -40 >&2
	exit 1
fi

if [ "${FUZZ_MERGE:-0}" = 1 ]; then
	mkdir -p "$seed"
	before=$(find "$seed" -type f | wc -l)
	if "$bin" -merge=1 -timeout=10 -rss_limit_mb=2048 "$seed" \
	    "$work/corpus" >"$art/merge.log" 2>&1; then
		after=$(find "$seed" -type f | wc -l)
		merged=", merged $((after - before)) new inputs into tests/fuzz/corpus/$name"
	else
		merged=", merge FAILED (see $art/merge.log)"
	fi
else
	merged=
fi
echo "fuzz $name: ok, ${runs:-?} runs in $elapsed s, corpus $nseed -> $ncorp inputs$merged"
exit 0
