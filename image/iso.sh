#!/bin/bash
# image/iso.sh — make iso: build/images/bastion-VERSION-amd64.iso, the
# appliance's installer. A hybrid ISO (grub-mkrescue: BIOS and UEFI, CD
# and USB stick) holding
#   live/root.squashfs  the system to install: Debian 12 (mmdebstrap from
#                       this host's apt sources) with a kernel, GRUB for
#                       BIOS and UEFI, systemd-networkd and the bastion
#                       package from build/debs/ already installed, and the
#                       appliance's units (appliance/iso/root/)
#   live/vmlinuz, live/initrd.img
#                       that system's kernel and a busybox initrd whose
#                       /init (appliance/iso/init) mounts the root image
#                       and runs its installer (install.sh) from it
# Its default boot entry installs to the first disk and powers off; see
# docs/operator-guide.md ("Installing from the ISO").
#
# The ISO is rebuilt only when its inputs change (packages, this script,
# appliance/iso/): their digest is kept beside it.
# Environment: BUILD (default build), SOURCES (apt sources file; default
# this host's), SQUASHFS_COMP (default zstd).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
export LC_ALL=C TZ=UTC
say() { echo "iso: $*" >&2; }
die() { say "$*"; exit 1; }

for t in mmdebstrap mksquashfs grub-mkrescue xorriso mformat dpkg-deb modprobe cpio sha256sum; do
	command -v $t >/dev/null || [ -x /sbin/$t ] || [ -x /usr/sbin/$t ] ||
	    die "$t is missing (make deps)"
done
[ -e /usr/lib/grub/i386-pc/modinfo.sh ] || die "grub-pc-bin is missing (make deps)"
[ -e /usr/lib/grub/x86_64-efi/modinfo.sh ] || die "grub-efi-amd64-bin is missing (make deps)"
VERSION=$(sed -n 's/^VERSION *:= *//p' Makefile)
DEB=$(ls "$BUILD"/debs/bastion_"$VERSION"-*_amd64.deb 2>/dev/null | tail -1)
[ -n "$DEB" ] || die "no bastion $VERSION package in $BUILD/debs (make deb)"
BUSYBOX=$(ls "$BUILD"/image-cache/busybox-static_*.deb 2>/dev/null | tail -1)
[ -n "$BUSYBOX" ] || die "no busybox-static package in $BUILD/image-cache (make image)"
SOURCES=${SOURCES:-}
if [ -z "$SOURCES" ]; then
	for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list; do
		[ -s "$f" ] && { SOURCES=$f; break; }
	done
fi
[ -n "$SOURCES" ] || die "no apt sources (SOURCES=)"

OUT=$BUILD/images/bastion-$VERSION-amd64.iso
ID=$( (sha256sum "$DEB" "$BUSYBOX" image/iso.sh; cd appliance/iso &&
    find . -type f | sort | xargs sha256sum) | sha256sum | cut -c1-16)
if [ -s "$OUT" ] && [ "$(cat "$OUT.id" 2>/dev/null)" = "$ID" ]; then
	say "$OUT is up to date ($ID)"
	exit 0
fi
WORK=$BUILD/iso-work
rm -rf "$WORK"
mkdir -p "$WORK"/{iso/live,iso/boot/grub,initrd/bin,initrd/lib/modules,debs} "$BUILD/images"
START=$(date +%s)

# --- the system to install --------------------------------------------------
cp "$DEB" "$WORK/debs/"
say "mmdebstrap bookworm (the system to install)"
# Downloaded packages are kept between builds (BUILD/appliance-cache).
ARCHIVES=$BUILD/appliance-cache/iso-archives
mkdir -p "$ARCHIVES"
mmdebstrap --quiet --variant=minbase --format=directory \
    --skip=download/empty \
    --setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
    --setup-hook="sync-in $ARCHIVES /var/cache/apt/archives" \
    --include=systemd-sysv,systemd-timesyncd,udev,linux-image-amd64,grub2-common,grub-pc-bin,grub-efi-amd64-bin,e2fsprogs,dosfstools,fdisk,iproute2,kmod,less,procps,ca-certificates \
    --customize-hook="copy-in $WORK/debs/$(basename "$DEB") /tmp" \
    --customize-hook='chroot "$1" sh -c "DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends /tmp/bastion_*.deb >/dev/null && rm /tmp/bastion_*.deb"' \
    --customize-hook="sync-out /var/cache/apt/archives $ARCHIVES" \
    --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb' \
    --customize-hook="sync-in appliance/iso/root /" \
    --customize-hook='chroot "$1" systemctl enable -q systemd-networkd.service bastion-appliance-setup.service bastion-console.service bastion-diagnose.timer' \
    --customize-hook='echo bastion > "$1/etc/hostname"' \
    --customize-hook='printf "127.0.0.1\tlocalhost\n127.0.1.1\tbastion\n" > "$1/etc/hosts"' \
    --customize-hook='rm -f "$1/etc/resolv.conf"; : > "$1/etc/machine-id"' \
    bookworm "$WORK/rootfs" "$SOURCES"
R=$WORK/rootfs
KVER=$(ls "$R/lib/modules" | sort -V | tail -1)
[ -n "$KVER" ] && [ -s "$R/boot/vmlinuz-$KVER" ] || die "no kernel in the root"
grep -q '^CONFIG_SQUASHFS_ZSTD=y' "$R/boot/config-$KVER" || die "kernel $KVER reads no zstd squashfs"
say "root: $(du -sm "$R" | cut -f1) MiB, kernel $KVER"

# --- the installer's initrd --------------------------------------------------
dpkg-deb --fsys-tarfile "$BUSYBOX" | tar -xf - -C "$WORK/initrd" ./bin/busybox
cp appliance/iso/init "$WORK/initrd/init"
echo "$ID" > "$WORK/initrd/iso-id"
mkdir -p "$WORK/initrd"/{proc,sys,dev,iso,squash}
# The drivers that reach the ISO (CD, disk and USB controllers, the file
# systems) and see the NICs, with what they need, in load order.
MODS="isofs squashfs loop sr_mod sd_mod ata_piix ahci pata_acpi virtio_pci
virtio_blk virtio_scsi nvme usb_storage uas xhci_pci ehci_pci ohci_pci
uhci_hcd vmw_pvscsi hv_storvsc mptsas megaraid_sas mpt3sas
virtio_net e1000 e1000e igb ixgbe i40e ice bnxt_en tg3 bnx2 r8169 mlx5_core
vmxnet3 hv_netvsc"
: > "$WORK/initrd/lib/modules/order"
for m in $MODS; do
	modprobe -d "$R" -S "$KVER" --show-depends "$m" 2>/dev/null || true
done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }' | while read -r ko; do
	rel=${ko#"$R"/lib/modules/}
	mkdir -p "$WORK/initrd/lib/modules/$(dirname "$rel")"
	case $ko in
	*.ko.xz) xz -dc "$ko" > "$WORK/initrd/lib/modules/${rel%.xz}"; rel=${rel%.xz} ;;
	*.ko.zst) zstd -qdc "$ko" > "$WORK/initrd/lib/modules/${rel%.zst}"; rel=${rel%.zst} ;;
	*) cp "$ko" "$WORK/initrd/lib/modules/$rel" ;;
	esac
	echo "$rel" >> "$WORK/initrd/lib/modules/order"
done
grep -q '/isofs.ko$' "$WORK/initrd/lib/modules/order" || die "no isofs module for $KVER"
(cd "$WORK/initrd" && find . | sort | cpio -o -H newc --quiet | zstd -q -19 -T2) \
    > "$WORK/iso/live/initrd.img"
cp "$R/boot/vmlinuz-$KVER" "$WORK/iso/live/vmlinuz"

# --- the ISO ------------------------------------------------------------------
say "squashfs"
mksquashfs "$R" "$WORK/iso/live/root.squashfs" -comp "${SQUASHFS_COMP:-zstd}" \
    -noappend -quiet -no-progress -processors 2 >/dev/null
echo "$ID" > "$WORK/iso/.bastion-iso"
cat > "$WORK/iso/boot/grub/grub.cfg" <<GRUB
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
set timeout=5
set default=0
menuentry "Install Bastion $VERSION to the first disk (then power off)" {
	linux /live/vmlinuz console=tty0 console=ttyS0,115200n8
	initrd /live/initrd.img
}
menuentry "Install Bastion $VERSION, erasing the first disk even if it holds data" {
	linux /live/vmlinuz console=tty0 console=ttyS0,115200n8 bastion.wipe=yes
	initrd /live/initrd.img
}
GRUB
say "grub-mkrescue"
grub-mkrescue -o "$OUT.tmp" "$WORK/iso" -- -volid BASTION_$(echo "$VERSION" | tr . _) \
    >"$WORK/grub-mkrescue.log" 2>&1 || { cat "$WORK/grub-mkrescue.log" >&2; die "grub-mkrescue failed"; }
mv "$OUT.tmp" "$OUT"
echo "$ID" > "$OUT.id"
rm -rf "$R"
say "$OUT: $(du -m "$OUT" | cut -f1) MiB in $(( $(date +%s) - START )) s ($ID)"
