#!/bin/sh
# appliance/debroot.sh — a fresh Debian 12 root to install the packages
# into, for tests/integration/test_deb.py (which runs without a network).
#
#   appliance/debroot.sh prepare   (make deb, with the registry reachable)
#       BUILD/appliance-cache/bookworm-apt.tar: mmdebstrap --variant=apt
#       from this host's apt sources, made once; BUILD/appliance-cache/pool/:
#       the .debs that installing build/debs/*.deb into it needs, fetched
#       once per set of dependencies.
#   appliance/debroot.sh unpack DIR
#       DIR: the root, with a local repository (file:/debroot-repo) of the
#       pool and the packages as its only apt source.
set -eu
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
CACHE=$BUILD/appliance-cache
BASE=$CACHE/bookworm-apt.tar
say() { echo "debroot: $*" >&2; }
die() { say "$*"; exit 1; }

sources() {
	for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list; do
		[ -s "$f" ] && { echo "$f"; return 0; }
	done
	die "no apt sources on this host"
}

prepare() {
	mkdir -p "$CACHE/pool"
	if [ ! -s "$BASE" ]; then
		say "mmdebstrap bookworm (once, into $BASE)"
		mmdebstrap --quiet --variant=apt --format=tar bookworm \
		    "$BASE.tmp" "$(sources)"
		mv "$BASE.tmp" "$BASE"
	fi
	work=$(mktemp -d "$CACHE/prep.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	tar -xf "$BASE" -C "$work"
	cp /etc/resolv.conf "$work/etc/resolv.conf"
	mkdir -p "$work/debs" "$work/pool/partial"
	cp "$BUILD"/debs/bastion_*.deb "$BUILD"/debs/bastion-agent_*.deb "$work/debs/"
	cp "$CACHE"/pool/*.deb "$work/pool/" 2>/dev/null || true
	chroot "$work" apt-get -qq update
	chroot "$work" sh -c 'apt-get -qq install --download-only -y \
	    -o Dir::Cache::archives=/pool /debs/*.deb' >/dev/null
	cp -u "$work"/pool/*.deb "$CACHE/pool/"
	say "pool: $(ls "$CACHE"/pool/*.deb | wc -l) packages"
}

unpack() {
	dir=$1
	[ -s "$BASE" ] || die "no $BASE (make deb)"
	tar -xf "$BASE" -C "$dir"
	mkdir -p "$dir/debroot-repo"
	cp "$CACHE"/pool/*.deb "$BUILD"/debs/bastion_*.deb \
	    "$BUILD"/debs/bastion-agent_*.deb "$dir/debroot-repo/"
	(cd "$dir/debroot-repo" && dpkg-scanpackages --multiversion . \
	    2>/dev/null > Packages)
	rm -f "$dir"/etc/apt/sources.list.d/* "$dir/etc/apt/sources.list"
	echo "deb [trusted=yes] file:/debroot-repo ./" \
	    > "$dir/etc/apt/sources.list.d/debroot.list"
}

case ${1:-} in
prepare) prepare ;;
unpack) unpack "${2:?usage: debroot.sh unpack DIR}" ;;
*) echo "usage: appliance/debroot.sh prepare | unpack DIR" >&2; exit 2 ;;
esac
