#!/bin/bash
# image/os-fs.sh — the root filesystem of an OS image as a filesystem
# image (DESIGN §11), beside the tar image/os.sh makes: the installer
# writes it onto the root volume as one sequential stream and grows it,
# instead of creating ~13,000 files one by one under emulation.
#
#   image/os-fs.sh [NAME]     (default debian-12; after image/os.sh NAME)
#
# From the root image/os.sh leaves in build/image-cache/os-NAME-root:
#   root.xfs.zst   an XFS filesystem of the root without /boot's and
#                  /var's contents, as small as it can be (grown in place
#                  at install), systemd-networkd enabled (no per-machine
#                  state: no host keys, empty machine-id)
#   rest.tar.zst   /boot (with GRUB's modules in /boot/grub/PLATFORM) and
#                  /var: unpacked after the role's volumes are mounted,
#                  so a separate /var or /boot gets them
# and "root_image" in manifest.json (sizes, SHA-256, the directories a
# role's other volumes may be mounted on). Images without it are installed
# from rootfs.tar.zst as before. Needs root and a loop device.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
NAME=${1:-debian-12}
OUT=$BUILD/images/os/$NAME
OSROOT=$BUILD/image-cache/os-$NAME-root
export LC_ALL=C TZ=UTC

say() { echo "os-fs: $*" >&2; }
die() { say "$*"; exit 1; }

case $NAME in *[!a-z0-9._-]*) die "NAME must be of [a-z0-9._-]" ;; esac
for t in mkfs.xfs zstd tar sha256sum jq flock mount losetup systemctl; do
	command -v $t >/dev/null || die "$t is missing (make deps)"
done
[ "$(id -u)" -eq 0 ] || die "building a filesystem image needs root (a loop mount)"
[ -f "$OUT/manifest.json" ] && [ -d "$OSROOT/usr" ] ||
    die "$NAME: no image to start from (image/os.sh $NAME first)"
mkdir -p "$BUILD/image-work"
exec 8>"$BUILD/image-work/.os-lock"
flock 8

INPUTS=$( {
	cat "$OUT/.inputs"
	sha256sum image/os-fs.sh | cut -d' ' -f1
	mkfs.xfs -V
} | sha256sum | cut -d' ' -f1)
if [ -z "${REBUILD:-}" ] && [ -f "$OUT/root.xfs.zst" ] &&
    [ -f "$OUT/rest.tar.zst" ] &&
    [ "$(jq -r '.root_image.inputs // ""' "$OUT/manifest.json")" = "$INPUTS" ]; then
	say "$NAME: $OUT/root.xfs.zst is up to date"
	exit 0
fi

WORK=$BUILD/image-work/os-fs-$NAME
MNT=$WORK/mnt
LOOP=
cleanup() {
	mountpoint -q "$MNT" 2>/dev/null && umount "$MNT"
	[ -n "$LOOP" ] && losetup -d "$LOOP"
	rm -rf "$WORK"
}
rm -rf "$WORK"
mkdir -p "$MNT"
trap cleanup EXIT

say "$NAME: /boot and /var"
# GRUB's modules where grub-install would copy them (what it copies: the
# modules, their lists, BIOS's boot.img): the installer then only makes
# each machine's core images (grub-mkimage, grub-bios-setup).
for plat in i386-pc x86_64-efi; do
	mkdir -p "$WORK/grub/boot/grub/$plat"
	cp -p "$OSROOT/usr/lib/grub/$plat/"*.mod "$OSROOT/usr/lib/grub/$plat/"*.lst \
	    "$WORK/grub/boot/grub/$plat/"
done
cp -p "$OSROOT/usr/lib/grub/i386-pc/boot.img" "$WORK/grub/boot/grub/i386-pc/"
tar --sort=name --numeric-owner --xattrs --xattrs-include='*' \
    --one-file-system -C "$OSROOT" -cf - ./boot ./var \
    -C "$WORK/grub" --owner=0 --group=0 ./boot/grub |
    zstd -q -T0 -6 >"$WORK/rest.tar.zst"

# Blocks the files take, plus an inode each, plus XFS's log (64 MiB) and
# 10 % for the allocator: the free space left is written at every install.
blocks=$(( $(du -s -B4096 "$OSROOT" | cut -f1) -
    $(du -s -B4096 "$OSROOT/boot" "$OSROOT/var" | awk '{n += $1} END {print n}') ))
inodes=$(find "$OSROOT" -xdev \( -path "$OSROOT/boot/*" -o -path "$OSROOT/var/*" \) \
    -prune -o -print | wc -l)
blocks=$((blocks + inodes / 8 + 1))
mib=$(( (blocks * 4096 * 11 / 10 >> 20) + 80 ))
[ "$mib" -ge 300 ] || mib=300	# mkfs.xfs's smallest
say "$NAME: XFS root image of $mib MiB"
# Make root.xfs and copy the root into it: 0 when the result checks out.
# (Called in a list, so without errexit: each step says when it failed.)
fill_image() {
	local used
	if [ -n "$LOOP" ]; then		# what a failed first try left
		mountpoint -q "$MNT" && umount "$MNT"
		losetup -d "$LOOP"
		LOOP=
	fi
	rm -f "$WORK/root.xfs"
	truncate -s "${mib}M" "$WORK/root.xfs"
	# Two allocation groups (the fewest) grow into equal ones: 20 GiB
	# is ~50, not the ~100 four would make. No discard: it is a file.
	mkfs.xfs -q -K -d agcount=2 -L root "$WORK/root.xfs" || return 1
	LOOP=$(losetup --find --show "$WORK/root.xfs") || return 1
	mount -t xfs "$LOOP" "$MNT" || return 1
	tar --numeric-owner --xattrs --xattrs-include='*' -C "$OSROOT" \
	    --exclude='./boot/*' --exclude='./var/*' -cf - . |
	    tar --numeric-owner --xattrs --xattrs-include='*' -xpf - -C "$MNT" ||
	    return 1
	# Per-image, not per-machine: the installer has no systemctl.
	systemctl --root="$MNT" enable --quiet systemd-networkd.service ||
	    return 1
	free=$(df -B1M --output=avail "$MNT" | tail -1)
	# Which directories are empty in this image: a role's volume may be
	# mounted on or below one of them (or below /var and /boot, whose
	# contents come from rest.tar.zst) without hiding the image's files.
	empty=$(cd "$MNT" && for d in */; do
		d=${d%/}
		[ -L "$d" ] || [ -n "$(ls -A "$d")" ] || echo "/$d"
	done | jq -R . | jq -s 'sort')
	findmnt -n -o SOURCE,TARGET "$MNT" >"$WORK/mounted" || true
	umount "$MNT" || return 1
	losetup -d "$LOOP"
	LOOP=
	# The loop devices are the host's, shared with whatever else runs:
	# what was copied must be in the file, and the file consistent.
	used=$(xfs_db -r -c "sb 0" -c "p icount ifree" "$WORK/root.xfs" |
	    awk '{v[$1] = $3} END {print v["icount"] - v["ifree"]}')
	if [ "$used" -lt $((inodes * 9 / 10)) ]; then
		say "$NAME: the XFS image holds $used inodes, the root $inodes" \
		    "(mounted before unmounting: $(cat "$WORK/mounted"))"
		return 1
	fi
	xfs_repair -n -f "$WORK/root.xfs" >"$WORK/repair.log" 2>&1 || {
		say "$NAME: xfs_repair -n finds the XFS image inconsistent:"
		tail -5 "$WORK/repair.log" >&2
		return 1
	}
}
# Seen twice on a busy shared host: an image that came out empty (its
# cause not found). The result is checked; a second failure stops.
fill_image || { say "$NAME: building the XFS image again"; fill_image; } ||
    die "$NAME: the XFS root image failed its checks twice"
zstd -q -T0 -6 --rm "$WORK/root.xfs" -o "$WORK/root.xfs.zst"

rsize=$(stat -c %s "$WORK/root.xfs.zst")
rsum=$(sha256sum "$WORK/root.xfs.zst" | cut -d' ' -f1)
tsize=$(stat -c %s "$WORK/rest.tar.zst")
tsum=$(sha256sum "$WORK/rest.tar.zst" | cut -d' ' -f1)
jq --arg in "$INPUTS" --argjson rsize "$rsize" --arg rsum "$rsum" \
    --argjson bytes $((mib << 20)) --argjson tsize "$tsize" --arg tsum "$tsum" \
    --argjson empty "$empty" '.root_image = {
	file: "root.xfs.zst", format: "xfs.zst", fstype: "xfs",
	size: $rsize, sha256: $rsum, bytes: $bytes,
	rest: "rest.tar.zst", rest_size: $tsize, rest_sha256: $tsum,
	mountable: (["/boot", "/var"] + $empty | unique), inputs: $in
    }' "$OUT/manifest.json" >"$WORK/manifest.json"
mv -f "$WORK/root.xfs.zst" "$WORK/rest.tar.zst" "$OUT/"
mv -f "$WORK/manifest.json" "$OUT/manifest.json"
say "$NAME: $OUT/root.xfs.zst $rsize bytes ($mib MiB, $free MiB free)," \
    "rest.tar.zst $tsize bytes"
