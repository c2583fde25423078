#!/bin/bash
# The test driver behind `make test`: runs the suites, counts, and ends
# with one line "total: N passed, M failed, K skipped". Exit status 0 only
# if nothing failed.
#   tests/run.sh all | unit | integration | e2e | sanitize | fuzz | analyze
#   tests/run.sh integration|e2e [PYTEST ARGS] (one file or -k EXPR)
#
# Skips are counted and listed. Under CI (CI set, as .ci/run runs) a skip
# is a failure: every dependency a test may skip without (dnsmasq's
# --test, LVM tools and loop devices, root) is installed by `make deps`,
# and CI runs as root, so a skip there can only hide a missing install
# step. A failing test's whole report is printed, never a tail of it.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=/usr/bin/python3
PASSED=0
FAILED=0
SKIPPED=0
SUITES_FAILED=""

# Each suite says when it starts and how long the run has taken so far
# (the CI budget is 45 minutes: where it goes is printed, not guessed).
note() { printf '\n=== %s === (at %dm%02ds)\n' "$*" $((SECONDS / 60)) $((SECONDS % 60)); }

count() {	# count SUITE PASSED FAILED [SKIPPED]
	local skipped=${4:-0} failed=$3
	if [ -n "${CI:-}" ] && [ "$skipped" -ne 0 ]; then
		echo "$1: $skipped skipped under CI: a dependency that make deps installs is missing (see above)"
		failed=$((failed + skipped))
	fi
	PASSED=$((PASSED + $2))
	FAILED=$((FAILED + failed))
	SKIPPED=$((SKIPPED + skipped))
	if [ "$failed" -ne 0 ]; then SUITES_FAILED="$SUITES_FAILED $1"; fi
	printf -- '--- %s: %d passed, %d failed, %d skipped\n' "$1" "$2" "$failed" \
	    "$skipped"
}

# The sum of N in every line of $1 that matches "PREFIX N test".
cmocka_sum() {
	printf '%s\n' "$1" | sed -n "s/^\[  $2 *\] \([0-9]*\) test.*/\1/p" |
	    awk '{s+=$1} END {print s+0}'
}

# cmocka binaries in $1/tests
run_unit() {
	local dir=$1 name=$2 p=0 f=0 k=0 out t n rc
	note "$name"
	for t in "$dir"/tests/test_*; do
		[ -x "$t" ] || continue
		out=$("$t" 2>&1); rc=$?
		printf '%s\n' "$out" | grep -E '^\[ +(PASSED|FAILED|SKIPPED) +\]|^\[  (FAILED|ERROR) ' || true
		p=$((p + $(cmocka_sum "$out" PASSED)))
		k=$((k + $(cmocka_sum "$out" SKIPPED)))
		n=$(cmocka_sum "$out" FAILED)
		if [ "$rc" -ne 0 ] && [ "$n" -eq 0 ]; then n=1; fi
		if [ "$n" -ne 0 ]; then
			printf '\n### %s failed; its whole output:\n%s\n###\n' \
			    "$(basename "$t")" "$out"
		fi
		f=$((f + n))
	done
	count "$name" "$p" "$f" "$k"
}

# The unit tests that use the database (those with tests/unit/dbfx.h)
# once more on PostgreSQL: a throwaway cluster (tests/pg.sh) in a temp dir,
# stopped and removed after. Not starting it is a failure, never a skip.
run_unit_pg() {
	local dir=$1 name=$2 pg url t p=0 f=0 out rc n
	note "$name"
	pg=$(mktemp -d /tmp/bastion-pg.XXXXXX)
	chmod 711 "$pg"	# the cluster runs as nobody
	if ! url=$(tests/pg.sh start "$pg/cluster"); then
		cat "$pg"/cluster/*.log 2>/dev/null
		rm -rf "$pg"
		count "$name" 0 1
		return
	fi
	for t in $(grep -l '"dbfx.h"' tests/unit/test_*.c); do
		t=$dir/tests/$(basename "$t" .c)
		[ -x "$t" ] || { f=$((f + 1)); continue; }
		out=$(BASTION_TEST_DB_URL=$url "$t" 2>&1); rc=$?
		printf '%s\n' "$out" | grep -E '^\[ +(PASSED|FAILED|SKIPPED) +\]|^\[  (FAILED|ERROR) ' || true
		p=$((p + $(cmocka_sum "$out" PASSED)))
		n=$(cmocka_sum "$out" FAILED)
		if [ "$rc" -ne 0 ] && [ "$n" -eq 0 ]; then n=1; fi
		if [ "$n" -ne 0 ]; then
			printf '\n### %s failed on PostgreSQL; its whole output:\n%s\n###\n' \
			    "$(basename "$t")" "$out"
		fi
		f=$((f + n))
	done
	tests/pg.sh stop "$pg/cluster" || f=$((f + 1))
	rm -rf "$pg"
	count "$name" "$p" "$f"
}

# pytest inside a fresh network namespace: bastion, dnsmasq and every
# client run there, on a bridge with no ports, so nothing leaves it.
run_pytest() {
	local name=$1 build=$2; shift 2
	local ns="bst-$name-$$" out rc p f k last
	note "$name"
	ip netns add "$ns" || { count "$name" 0 1; return; }
	ip -n "$ns" link set lo up
	ip -n "$ns" link add bastion0 type bridge
	ip -n "$ns" addr add 10.77.0.1/24 dev bastion0
	# A ULA lets dnsmasq send router advertisements, so iPXE does not
	# wait ~13 s for IPv6 (LAB.md).
	ip -n "$ns" addr add fd77::1/64 dev bastion0 nodad
	ip -n "$ns" link set bastion0 up
	out=$(ip netns exec "$ns" env BASTION_BUILD="$build" BASTION_NETNS="$ns" \
	    PYTHONDONTWRITEBYTECODE=1 "$PY" -m pytest -p no:cacheprovider -q -rfEs "$@" 2>&1)
	rc=$?
	ip netns del "$ns" 2>/dev/null
	if [ "$rc" -ne 0 ]; then
		# Every failure in full: from pytest's FAILURES/ERRORS sections
		# (or, if it never got that far, all it said) to its summary.
		if printf '%s\n' "$out" | grep -qE '^=+ (FAILURES|ERRORS) =+$'; then
			printf '%s\n' "$out" | sed -n '/^=\+ \(FAILURES\|ERRORS\) =\+$/,$p'
		else
			printf '%s\n' "$out"
		fi
	else
		printf '%s\n' "$out" | grep -vE '^[.sxEF]+ *(\[ *[0-9]+%\])?$' | tail -15
	fi
	last=$(printf '%s\n' "$out" | tail -1)
	p=$(printf '%s\n' "$last" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || true)
	f=$(printf '%s\n' "$last" | grep -oE '[0-9]+ (failed|errors?)' | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}')
	k=$(printf '%s\n' "$last" | grep -oE '[0-9]+ skipped' | grep -oE '[0-9]+' || true)
	p=${p:-0}
	k=${k:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then f=1; echo "$name: no test ran"; fi
	count "$name" "$p" "$f" "$k"
}

# The appliance ISO (for its e2e test): image/iso.sh rebuilds it only
# when its inputs change. build_iso_wait PID takes a build started in the
# background (make -s iso >LOG; echo $? >RC) instead.
build_iso() {
	note "build (ISO)"
	make -s iso >/tmp/bastion-iso-build.$$ 2>&1
	iso_built $? /tmp/bastion-iso-build.$$
}

build_iso_wait() {	# PID LOG RC
	note "build (ISO, started at the beginning)"
	wait "$1"
	iso_built "$(cat "$3" 2>/dev/null || echo 1)" "$2"
}

iso_built() {	# STATUS LOG
	if [ "$1" -ne 0 ]; then
		tail -30 "$2"
		count "iso-build" 0 1
	fi
	rm -f "$2"
	[ "$1" -eq 0 ]
}

# The e2e suite, the appliance ISO's test among them.
run_e2e() {
	build_iso || return
	run_pytest e2e "$ROOT/build" tests/e2e
}

run_sanitize() {
	note "build (ASan+UBSan)"
	if ! make -s sanitize >/tmp/bastion-asan-build.$$ 2>&1; then
		tail -30 /tmp/bastion-asan-build.$$
		rm -f /tmp/bastion-asan-build.$$
		count "asan-build" 0 1
		return
	fi
	rm -f /tmp/bastion-asan-build.$$
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	run_unit build/asan "unit (ASan+UBSan)"
	run_unit_pg build/asan "unit (ASan+UBSan, PostgreSQL)"
	run_pytest integration-asan "$ROOT/build/asan" tests/integration
	unset ASAN_OPTIONS UBSAN_OPTIONS
}

run_fuzz() {
	note "fuzz (short)"
	if ! make -s fuzz-build >/tmp/bastion-fuzz-build.$$ 2>&1; then
		tail -30 /tmp/bastion-fuzz-build.$$
		rm -f /tmp/bastion-fuzz-build.$$
		count fuzz 0 1
		return
	fi
	rm -f /tmp/bastion-fuzz-build.$$
	local p=0 f=0 t
	for t in build/fuzz/bin/fuzz_*; do
		[ -x "$t" ] || continue
		if tests/fuzz/run.sh "$(basename "$t" | sed 's/^fuzz_//')" "${FUZZ_SECONDS:-10}"; then
			p=$((p + 1))
		else
			f=$((f + 1))
		fi
	done
	count fuzz "$p" "$f"
}

run_analyze() {
	note "static analysis"
	if tests/analyze.sh; then count analyze 1 0; else count analyze 0 1; fi
}

what=${1:-all}
case "$what" in
unit) run_unit build unit; run_unit_pg build "unit (PostgreSQL)" ;;
integration) shift; run_pytest integration "$ROOT/build" "${@:-tests/integration}" ;;
e2e) shift
	if [ $# -eq 0 ]; then run_e2e; else run_pytest e2e "$ROOT/build" "$@"; fi ;;
sanitize) run_sanitize ;;
fuzz) run_fuzz ;;
analyze) run_analyze ;;
all)
	# Three at once: the ISO build (from the start), the integration and
	# e2e suites, and the sanitizer arm beside them. The integration
	# suite mostly waits on daemons and the e2e suite on one emulated
	# CPU, so two cores serve all three. What the host has only once
	# (libvirtd, LXC, the LVM group) is taken in turn
	# (tests/pylib/hostlock.py). The second arm's report is printed whole
	# after the first's, and counted.
	arm=$(mktemp -d /tmp/bastion-arm.XXXXXX)
	( make -s iso >"$arm/iso.log" 2>&1; echo $? >"$arm/iso.rc" ) &
	isopid=$!
	run_unit build unit
	run_unit_pg build "unit (PostgreSQL)"
	(
		PASSED=0 FAILED=0 SKIPPED=0 SUITES_FAILED=""
		run_sanitize
		run_fuzz
		run_analyze
		echo "$PASSED $FAILED $SKIPPED $SUITES_FAILED" >"$arm/counts"
	) >"$arm/log" 2>&1 &
	armpid=$!
	run_pytest integration "$ROOT/build" tests/integration
	if build_iso_wait "$isopid" "$arm/iso.log" "$arm/iso.rc"; then
		run_pytest e2e "$ROOT/build" tests/e2e
	fi
	wait "$armpid"
	note "sanitizer, fuzz and analysis arm (ran beside the above)"
	cat "$arm/log"
	if read -r p f k sf <"$arm/counts"; then
		PASSED=$((PASSED + p)) FAILED=$((FAILED + f)) SKIPPED=$((SKIPPED + k))
		[ -n "$sf" ] && SUITES_FAILED="$SUITES_FAILED $sf"
	else
		count "sanitizer arm" 0 1	# it died before counting
	fi
	rm -rf "$arm"
	;;
*) echo "usage: $0 all|unit|integration|e2e|sanitize|fuzz|analyze" >&2; exit 2 ;;
esac

echo
[ -n "$SUITES_FAILED" ] && echo "failing suites:$SUITES_FAILED"
echo "total: $PASSED passed, $FAILED failed, $SKIPPED skipped ($((SECONDS / 60))m$((SECONDS % 60))s)"
[ "$FAILED" -eq 0 ]
