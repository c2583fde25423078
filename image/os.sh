#!/bin/bash
# image/os.sh — builds an OS image that bastion's installer writes to disk
# (DESIGN §11): build/images/os/NAME/{rootfs.tar.zst,vmlinuz,initrd.img,
# manifest.json}, with mmdebstrap from the Debian packages the build host
# reaches (its own apt sources), so an install needs no mirror.
#
#   image/os.sh [NAME]        NAME has a package list image/os/NAME.packages
#                             (default debian-12)
#
# Environment: BUILD (default build), SUITE (default bookworm),
# OS_SOURCES (an apt sources file; default the host's), REBUILD=1.
# Inputs (the package list, the exclusions, this script, the sources, mmdebstrap's
# version) name the cache entry: an unchanged set is not rebuilt, and a
# registry that cannot be reached is an error only when nothing is cached.
# The unpacked root stays in build/image-cache/os-NAME-root for the
# installer's tools (image/build.sh --installer).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
NAME=${1:-debian-12}
SUITE=${SUITE:-bookworm}
LIST=image/os/$NAME.packages
OUT=$BUILD/images/os/$NAME
CACHE=$BUILD/image-cache
OSROOT=$CACHE/os-$NAME-root
export LC_ALL=C TZ=UTC

say() { echo "os-image: $*" >&2; }
die() { say "$*"; exit 1; }

[ -f "$LIST" ] || die "no package list $LIST"
case $NAME in *[!a-z0-9._-]*) die "NAME must be of [a-z0-9._-]" ;; esac
for t in mmdebstrap zstd tar sha256sum dpkg-query jq flock; do
	command -v $t >/dev/null || die "$t is missing (make deps)"
done
[ "$(id -u)" -eq 0 ] || die "building an OS image needs root (mmdebstrap's root mode)"
if [ -z "${OS_SOURCES:-}" ]; then
	for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
		[ -s "$f" ] && { OS_SOURCES=$f; break; }
	done
fi
[ -n "${OS_SOURCES:-}" ] && [ -s "$OS_SOURCES" ] ||
    die "no apt sources file (set OS_SOURCES)"
mkdir -p "$CACHE" "$OUT" "$BUILD/image-work"
exec 8>"$BUILD/image-work/.os-lock"
flock 8

PACKAGES=$(sed 's/#.*//' "$LIST" | tr -s ' \t\n' '\n' | sed '/^$/d' | sort -u)
# Paths dpkg leaves out (image/os/NAME.exclude, optional): "PATTERN" is a
# path-exclude, "+PATTERN" a path-include.
EXCLUDE=image/os/$NAME.exclude
DPKGOPTS=()
if [ -f "$EXCLUDE" ]; then
	while read -r pat; do
		case $pat in
		'' | '#'*) ;;
		+/*) DPKGOPTS+=("--dpkgopt=path-include=${pat#+}") ;;
		/*) DPKGOPTS+=("--dpkgopt=path-exclude=$pat") ;;
		*) die "$EXCLUDE: '$pat' is not an absolute pattern" ;;
		esac
	done <"$EXCLUDE"
fi
INPUTS=$( {
	echo "$NAME $SUITE $(mmdebstrap --version)"
	echo "$PACKAGES"
	printf '%s\n' "${DPKGOPTS[@]}"
	sha256sum image/os.sh "$OS_SOURCES" | cut -d' ' -f1
} | sha256sum | cut -d' ' -f1)
if [ -z "${REBUILD:-}" ] && [ -f "$OUT/manifest.json" ] &&
    [ -d "$OSROOT" ] && [ "$(cat "$OUT/.inputs" 2>/dev/null)" = "$INPUTS" ]; then
	say "$NAME: $OUT is up to date"
	exit 0
fi

say "$NAME: mmdebstrap $SUITE ($(echo "$PACKAGES" | wc -l) packages from $OS_SOURCES)"
WORK=$BUILD/image-work/os-$NAME
rm -rf "$WORK"
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
# The image is the same for every machine: no SSH host keys (the installer
# makes each node's own), an empty machine-id (systemd makes one at first
# boot), no apt lists (the node has no mirror), a console on ttyS0 and tty0.
if ! mmdebstrap --quiet --mode=root --variant=apt --format=directory \
    --include="$(echo "$PACKAGES" | paste -sd, -)" "${DPKGOPTS[@]}" \
    --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
    --customize-hook=': >"$1"/etc/machine-id; rm -f "$1"/var/lib/dbus/machine-id' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    --customize-hook='echo "GRUB_TIMEOUT=1
GRUB_CMDLINE_LINUX=\"console=tty0 console=ttyS0,115200n8\"
GRUB_TERMINAL=\"console serial\"
GRUB_SERIAL_COMMAND=\"serial --unit=0 --speed=115200\"
GRUB_DISABLE_OS_PROBER=true" >"$1"/etc/default/grub' \
    "$SUITE" "$WORK/root" "$OS_SOURCES" 2>"$WORK/mmdebstrap.log"; then
	tail -20 "$WORK/mmdebstrap.log" >&2
	if grep -qiE "could not resolve|failed to fetch|unable to connect|temporary failure|network is unreachable" \
	    "$WORK/mmdebstrap.log"; then
		die "$NAME: the Debian registry in $OS_SOURCES cannot be reached; an OS image is built once where it can (then cached in $OUT)"
	fi
	die "$NAME: mmdebstrap failed (log above)"
fi
R=$WORK/root
KVER=$(cd "$R/lib/modules" && ls | sort -V | tail -1)
[ -n "$KVER" ] && [ -f "$R/boot/vmlinuz-$KVER" ] && [ -f "$R/boot/initrd.img-$KVER" ] ||
    die "$NAME: no kernel and initrd in the root"

say "$NAME: packing the root filesystem (kernel $KVER)"
# Sorted, numeric owners, extended attributes (file capabilities) kept.
tar --sort=name --numeric-owner --xattrs --xattrs-include='*' \
    --one-file-system -C "$R" -cf - . | zstd -q -T0 -6 >"$WORK/rootfs.tar.zst"
cp "$R/boot/vmlinuz-$KVER" "$WORK/vmlinuz"
cp "$R/boot/initrd.img-$KVER" "$WORK/initrd.img"
dpkg-query --admindir="$R/var/lib/dpkg" -W -f '${Package}\t${Version}\n' |
    sort >"$WORK/packages.tsv"
size=$(stat -c %s "$WORK/rootfs.tar.zst")
sum=$(sha256sum "$WORK/rootfs.tar.zst" | cut -d' ' -f1)
unpacked=$(du -sb --apparent-size "$R" | cut -f1)
jq -n --arg name "$NAME" --arg suite "$SUITE" --arg kver "$KVER" \
    --argjson size "$size" --arg sum "$sum" --argjson unpacked "$unpacked" \
    --arg built "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --rawfile pk "$WORK/packages.tsv" '{
	name: $name, method: "image",
	description: ("Debian 12 (" + $suite + ")"),
	arch: "amd64", format: "tar.zst", image: "rootfs.tar.zst",
	size: $size, sha256: $sum, unpacked_size: $unpacked,
	kernel: "vmlinuz", initrd: "initrd.img", kernel_version: $kver,
	built: $built,
	packages: [$pk | split("\n")[] | select(length > 0) | split("\t") |
	    {name: .[0], version: .[1]}]
    }' >"$WORK/manifest.json"

# Swap the new build in: the files, then the manifest that names them.
rm -f "$OUT/manifest.json" "$OUT/.inputs"
for f in rootfs.tar.zst vmlinuz initrd.img; do
	mv -f "$WORK/$f" "$OUT/$f"
done
mv -f "$WORK/manifest.json" "$OUT/manifest.json"
rm -rf "$OSROOT"
mv "$R" "$OSROOT"
echo "$INPUTS" >"$OUT/.inputs"
say "$NAME: $OUT/rootfs.tar.zst $size bytes ($unpacked unpacked), $(wc -l <"$WORK/packages.tsv") packages"
