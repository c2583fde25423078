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
for t in mkfs.xfs xfs_db xfs_repair zstd tar sha256sum jq flock mount losetup \
    unshare systemctl; do
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
	sha256sum image/os-fs.sh image/os-fs-fill.sh | cut -d' ' -f1
	mkfs.xfs -V
} | sha256sum | cut -d' ' -f1)
if [ -z "${REBUILD:-}" ] && [ -f "$OUT/root.xfs.zst" ] &&
    [ -f "$OUT/rest.tar.zst" ] &&
    [ "$(jq -r '.root_image.inputs // ""' "$OUT/manifest.json")" = "$INPUTS" ]; then
	say "$NAME: $OUT/root.xfs.zst is up to date"
	exit 0
fi

WORK=$BUILD/image-work/os-fs-$NAME
rm -rf "$WORK"
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT

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
truncate -s "${mib}M" "$WORK/root.xfs"
# Two allocation groups (the fewest) grow into equal ones: 20 GiB
# is ~50, not the ~100 four would make. No discard: it is a file.
mkfs.xfs -q -K -d agcount=2 -L root "$WORK/root.xfs"
# Filled in a mount namespace of its own (image/os-fs-fill.sh). Mounted
# in the host's, any process that made a namespace meanwhile (every
# `ip netns exec`, unshare, a container) took a copy of the mount along:
# the umount then only removed ours, the filesystem stayed alive in that
# copy, and the file kept the empty superblock mkfs wrote. CI made
# images with 3 inodes that way (docs/benchmarks.md, "os-fs").
unshare --mount --propagation private -- \
    "$ROOT/image/os-fs-fill.sh" "$OSROOT" "$WORK" ||
    die "$NAME: the XFS root image was not made (above)"
free=$(cat "$WORK/free")
empty=$(jq -R . <"$WORK/empty" | jq -s 'sort')

# The file, as the installer reads it: its superblock's inode count (what
# the CI's empty images showed first) and xfs_repair's reading of it.
# os-fs-fill.sh compared the tree and the contents (mounted norecovery).
want=$(cat "$WORK/inodes")
used=$(xfs_db -r -c "sb 0" -c "p icount ifree" "$WORK/root.xfs" |
    awk '{v[$1] = $3} END {print v["icount"] - v["ifree"]}')
[ "$used" -ge "$want" ] && [ "$used" -le $((want + 64)) ] ||
    die "$NAME: the XFS image's superblock counts $used inodes in use, the tree copied $want"
xfs_repair -n -f "$WORK/root.xfs" >"$WORK/repair.log" 2>&1 || {
	tail -5 "$WORK/repair.log" >&2
	die "$NAME: xfs_repair -n finds the XFS image inconsistent (above)"
}
say "$NAME: XFS image checked: $used inodes, the tree and contents as copied"
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
