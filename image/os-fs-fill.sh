#!/bin/bash
# image/os-fs-fill.sh — copies an OS root into the empty XFS image
# image/os-fs.sh made, and checks what reached the file. Run by os-fs.sh
# in a mount namespace of its own (unshare --mount --propagation private):
# nothing outside sees the mount, so no other namespace can hold a copy
# of it that keeps the filesystem alive past our umount.
#
#   image/os-fs-fill.sh OSROOT WORK
#
# WORK/root.xfs is filled; written beside it: inodes (inodes in use after
# the copy), free (MiB left), empty (the image's empty top directories).
# Exits non-zero, saying why, if the image read back (mounted again,
# norecovery: what the file holds, not what memory held) differs from the
# tree in names, types, modes, owners, sizes, links or contents.
set -euo pipefail
export LC_ALL=C
OSROOT=$1
WORK=$2
MNT=$WORK/mnt
say() { echo "os-fs: $*" >&2; }
die() { say "$*"; exit 1; }

# Our own namespace, not the caller's, and nothing propagating out of it.
[ "$(readlink /proc/self/ns/mnt)" != "$(readlink /proc/$PPID/ns/mnt)" ] &&
    [ "$(findmnt -n -o PROPAGATION /)" = private ] ||
    die "not in a private mount namespace of its own (run by image/os-fs.sh)"

LOOP=
cleanup() {
	mountpoint -q "$MNT" 2>/dev/null && umount "$MNT"
	[ -z "$LOOP" ] || losetup -d "$LOOP"
}
trap cleanup EXIT
mkdir -p "$MNT"
LOOP=$(losetup --find --show "$WORK/root.xfs")
mount -t xfs "$LOOP" "$MNT"
tar --numeric-owner --xattrs --xattrs-include='*' -C "$OSROOT" \
    --exclude='./boot/*' --exclude='./var/*' -cf - . |
    tar --numeric-owner --xattrs --xattrs-include='*' -xpf - -C "$MNT"
# Per-image, not per-machine: the installer has no systemctl.
systemctl --root="$MNT" enable --quiet systemd-networkd.service
df -B1M --output=avail "$MNT" | tail -1 | tr -d ' ' >"$WORK/free"
find "$MNT" -xdev -printf '%i\n' | sort -u | wc -l >"$WORK/inodes"
# Which directories are empty in this image: a role's volume may be
# mounted on or below one of them (or below /var and /boot, whose
# contents come from rest.tar.zst) without hiding the image's files.
(cd "$MNT" && for d in */; do
	d=${d%/}
	[ -L "$d" ] || [ -n "$(ls -A "$d")" ] || echo "/$d"
done) >"$WORK/empty"
umount "$MNT"

# Read back from the file. norecovery: a log left to replay (a filesystem
# not really unmounted) shows as missing files here, not as a good image.
mount -t xfs -o ro,norecovery "$LOOP" "$MNT" ||
    die "the XFS image cannot be read back: the filesystem outlived its umount"
# One line per file: name, type, mode, owner, size (not a directory's:
# ext4's and XFS's differ), link count and target, mtime.
tree() {
	(cd "$1" && find . -xdev \( -path ./boot/\* -o -path ./var/\* -o \
	    -path ./etc/systemd/system/\* \) -prune -o \
	    \( -type d -printf '%p d %m %U:%G %T@\n' \) -o \
	    -printf '%p %y %m %U:%G %s %n %T@ %l\n' | sort)
}
sums() {
	(cd "$1" && find . -xdev \( -path ./boot/\* -o -path ./var/\* -o \
	    -path ./etc/systemd/system/\* \) -prune -o -type f -print0 |
	    sort -z | xargs -0r sha256sum | sha256sum)
}
tree "$OSROOT" >"$WORK/tree.src"
tree "$MNT" >"$WORK/tree.img"
# etc/systemd/system changed (the unit enabled): its mtime is left out.
if ! diff -q <(grep -v '^\./etc/systemd/system d ' "$WORK/tree.src") \
    <(grep -v '^\./etc/systemd/system d ' "$WORK/tree.img") >/dev/null; then
	say "the XFS image read back differs from the tree (< tree, > image):"
	diff <(grep -v '^\./etc/systemd/system d ' "$WORK/tree.src") \
	    <(grep -v '^\./etc/systemd/system d ' "$WORK/tree.img") | head -10 >&2
	die "$(wc -l <"$WORK/tree.src") entries in the tree, $(wc -l <"$WORK/tree.img") in the image"
fi
[ "$(sums "$OSROOT")" = "$(sums "$MNT")" ] ||
    die "the XFS image read back has the tree's files, not their contents"
[ -L "$MNT/etc/systemd/system/multi-user.target.wants/systemd-networkd.service" ] ||
    die "the XFS image read back has systemd-networkd not enabled"
umount "$MNT"
losetup -d "$LOOP"
LOOP=
