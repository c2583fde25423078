#!/bin/sh
# appliance/deb.sh — make deb: the Debian packages bastion and
# bastion-agent into build/debs/, built with debhelper (debian/) in a copy
# of the tree so that the checkout's build/ is left alone. The discovery
# image (make image) goes into the packages as it is.
#
# Environment: BUILD (default build), LINTIAN=no to skip lintian.
set -eu
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
say() { echo "deb: $*" >&2; }
die() { say "$*"; exit 1; }

for t in dpkg-buildpackage dh lintian git; do
	command -v $t >/dev/null || die "$t is missing (make deps)"
done
DISC=$BUILD/images/discovery
[ -s "$DISC/vmlinuz" ] && [ -s "$DISC/initrd.img" ] ||
    die "no discovery image in $DISC (make image)"
VERSION=$(dpkg-parsechangelog -S Version)

# The copy: every file git knows of or would add, as it is in the work tree.
STAGE=$BUILD/deb
SRC=$STAGE/bastion-${VERSION%-*}
rm -rf "$STAGE"
mkdir -p "$SRC/debian/discovery" "$BUILD/debs"
git ls-files -z --cached --others --exclude-standard |
    (cd "$ROOT" && xargs -0 tar -cf - --no-recursion) | tar -xf - -C "$SRC"
cp "$DISC/vmlinuz" "$DISC/initrd.img" "$SRC/debian/discovery/"
# The panel's vendored modules (make panel-deps; git ignores them): the
# package is built without the registry.
[ -s "$ROOT/webroot/vendor/xterm.js" ] || die "no webroot/vendor (make panel-deps)"
mkdir -p "$SRC/webroot/vendor"
cp "$ROOT"/webroot/vendor/* "$SRC/webroot/vendor/"

say "building $VERSION"
(cd "$SRC" && dpkg-buildpackage -b -uc -us -j2 >"$STAGE/build.log" 2>&1) || {
	tail -40 "$STAGE/build.log" >&2
	die "dpkg-buildpackage failed (whole log: $STAGE/build.log)"
}
rm -f "$BUILD"/debs/*.deb
for f in "$STAGE"/*.deb; do
	mv "$f" "$BUILD/debs/"
done
mv "$STAGE"/*.changes "$STAGE"/*.buildinfo "$BUILD/debs/" 2>/dev/null || true
ls -l "$BUILD"/debs/*.deb >&2

if [ "${LINTIAN:-yes}" != no ]; then
	# Errors fail the build; warnings are printed.
	lintian --fail-on error --suppress-tags-from-file /dev/null \
	    "$BUILD"/debs/*.deb >&2 || die "lintian reported errors"
fi

# The root and the dependencies tests/integration/test_deb.py installs
# them with, while the registry is reachable (cached under build/).
if [ "${DEBROOT:-yes}" != no ]; then
	./appliance/debroot.sh prepare
fi
