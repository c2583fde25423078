#!/bin/bash
# tests/analyze.sh — static analysis of lib/, bastion/, bastionctl/,
# agentd/ and bench/ (its load generators parse TLS and HTTP too):
#
#   1. cppcheck --enable=warning,portability,performance, failing on any
#      finding. Suppress only inline, next to the code, with a reason:
#          // cppcheck-suppress nullPointerRedundantCheck ; reason ...
#   2. gcc -fanalyzer on every .c file, with the project's include and
#      pkg-config flags, failing on any -Wanalyzer-* warning (and on any
#      file that does not compile).
#
# Prints each finding as file:line: ... and ends with one line
# "analyze: N findings (cppcheck X, gcc -fanalyzer Y)". Exit 0 only when
# clean. Runs on $(nproc) cores (ANALYZE_JOBS to change); under 30 s on
# 2 cores for the current tree. Logs stay in build/analyze/.
set -u
cd "$(dirname "$0")/.." || exit 2
JOBS=${ANALYZE_JOBS:-$(nproc 2>/dev/null || echo 2)}
PKGS="libmicrohttpd sqlite3 libpq jansson openssl inih libcurl blkid libargon2"
LOGDIR=build/analyze
mkdir -p "$LOGDIR" || exit 2
rm -rf "$LOGDIR"/*.log "$LOGDIR"/gcc "$LOGDIR"/fanalyzer.txt

DIRS=
for d in lib bastion bastionctl agentd bench; do
	ls "$d"/*.c >/dev/null 2>&1 && DIRS="$DIRS $d"
done
if [ -z "$DIRS" ]; then
	echo "analyze: no sources" >&2
	exit 2
fi

# --- cppcheck ---------------------------------------------------------------
# System headers are not parsed (fast, and cppcheck's own library files
# describe libc, OpenSSL, SQLite and curl; posix.cfg is left out on purpose:
# it flags every readdir() and recommends the deprecated readdir_r()).
# jansson has no library file, so its iteration macros are given here.
cat >"$LOGDIR/jansson.cfg" <<'EOF_CFG'
<?xml version="1.0"?>
<def format="2">
  <define name="json_object_foreach(object, key, value)" value="for (key = json_object_iter_key(json_object_iter(object)); key &amp;&amp; (value = json_object_iter_value(json_object_key_to_iter(key))); key = json_object_iter_key(json_object_iter_next(object, json_object_key_to_iter(key))))"/>
  <define name="json_object_foreach_safe(object, n, key, value)" value="for (key = json_object_iter_key(json_object_iter(object)), n = json_object_iter_next(object, json_object_key_to_iter(key)); key &amp;&amp; (value = json_object_iter_value(json_object_key_to_iter(key))); key = json_object_iter_key(n), n = json_object_iter_next(object, json_object_key_to_iter(key)))"/>
  <define name="json_array_foreach(array, index, value)" value="for (index = 0; index &lt; json_array_size(array) &amp;&amp; (value = json_array_get(array, index)); index++)"/>
</def>
EOF_CFG
ncpp=0
if command -v cppcheck >/dev/null; then
	# -D__GNUC__ and the Makefile's -D values: analyse the configuration
	# that is built, not every #ifdef combination (which is slow and
	# reports code that never compiles together).
	# shellcheck disable=SC2086
	cppcheck -q -j "$JOBS" --std=c11 --platform=unix64 \
	    --enable=warning,portability,performance \
	    --error-exitcode=1 --inline-suppr \
	    --library=gnu --library=openssl \
	    --library=sqlite3 --library=libcurl --library="$LOGDIR/jansson.cfg" \
	    -D__GNUC__ -D__linux__ -D__x86_64__ -D__CPPCHECK__ \
	    -DBASTION_VERSION='"0"' -DBASTION_DATADIR='"/usr/share/bastion"' \
	    -I lib -I bastion -I bastionctl -I agentd \
	    --template='{file}:{line}: cppcheck {severity}: {message} [{id}]' \
	    $DIRS 2>"$LOGDIR/cppcheck.log"
	cpprc=$?
	# agentd again as the static node build sees it (client_tls.c).
	# shellcheck disable=SC2086
	cppcheck -q -j "$JOBS" --std=c11 --platform=unix64 \
	    --enable=warning,portability,performance \
	    --error-exitcode=1 --inline-suppr \
	    --library=gnu --library=openssl --library="$LOGDIR/jansson.cfg" \
	    -D__GNUC__ -D__linux__ -D__x86_64__ -D__CPPCHECK__ -DAGENTD_STATIC \
	    -DBASTION_VERSION='"0"' -I lib -I agentd \
	    --template='{file}:{line}: cppcheck {severity}: {message} [{id}]' \
	    agentd 2>>"$LOGDIR/cppcheck.log" || cpprc=1
	ncpp=$(grep -c ': cppcheck ' "$LOGDIR/cppcheck.log")
	if [ "$cpprc" -ne 0 ] && [ "$ncpp" -eq 0 ]; then
		# cppcheck itself failed (bad option, crash): that is a finding.
		cat "$LOGDIR/cppcheck.log"
		ncpp=1
	fi
	grep ': cppcheck ' "$LOGDIR/cppcheck.log"
else
	echo "analyze: cppcheck is not installed (make deps)"
	ncpp=1
fi

# --- gcc -fanalyzer ---------------------------------------------------------
# One compile per file, in parallel; -O0 is what the analyzer models best,
# and it needs a real compile (-fsyntax-only stops before it runs).
# shellcheck disable=SC2086
PKG_CFLAGS=$(pkg-config --cflags $PKGS 2>/dev/null)
mkdir -p "$LOGDIR/gcc"
export PKG_CFLAGS LOGDIR
analyze_one() {
	local f=${1#static:} log def=
	log=$LOGDIR/gcc/$(echo "$1" | tr /: __).log
	# static:agentd/x.c: as the static node build compiles it
	[ "$f" != "$1" ] && def=-DAGENTD_STATIC
	# shellcheck disable=SC2086
	gcc -std=gnu11 -O0 -fanalyzer -fdiagnostics-plain-output \
	    -fno-diagnostics-show-caret -Wno-analyzer-too-complex $def \
	    -Ilib -Ibastion -Ibastionctl -Iagentd $PKG_CFLAGS \
	    -DBASTION_VERSION='"0"' -DBASTION_DATADIR='"/usr/share/bastion"' \
	    -c -o /dev/null "$f" >"$log" 2>&1 || echo "$f: error: does not compile" >>"$log"
}
export -f analyze_one
files=()
for d in $DIRS; do
	files+=("$d"/*.c)
done
for f in agentd/client*.c agentd/main.c agentd/enroll.c agentd/run.c; do
	files+=("static:$f")
done
printf '%s\n' "${files[@]}" |
    xargs -P "$JOBS" -I{} bash -c 'analyze_one "$1"' _ {}
# The first line of each warning names file:line and the check; the event
# path under it is in the log.
cat "$LOGDIR"/gcc/*.log 2>/dev/null | grep -E '\[-Wanalyzer-[a-z-]+\]$|: error: ' |
    sort -u >"$LOGDIR/fanalyzer.txt"
ngcc=$(wc -l <"$LOGDIR/fanalyzer.txt")
cat "$LOGDIR/fanalyzer.txt"

total=$((ncpp + ngcc))
echo "analyze: $total findings (cppcheck $ncpp, gcc -fanalyzer $ngcc); logs in $LOGDIR/"
[ "$total" -eq 0 ]
