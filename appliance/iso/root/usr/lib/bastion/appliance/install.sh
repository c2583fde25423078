#!/bin/bash
# install.sh ISO_DEVICE — the appliance installer, run by the ISO's /init
# in its root image (read-only; /mnt is where the new system goes).
#
# Kernel command line:
#   bastion.disk=DEV     the disk to install to (default: the first disk by
#                        name that is not the installation medium)
#   bastion.wipe=yes     install even if the disk holds partitions or data
#   bastion.net=IFACE:ADDR/PREFIX
#                        the provisioning interface and its address
#                        (default: the first NIC, 10.77.0.1/24); IFACE is
#                        a name the installer sees (eth0), a MAC address,
#                        or the name the installed system gives it (enp1s0)
# The provisioning network gets full DHCP from bastion's dnsmasq.
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C
ISO_DEV=$1
START=$(date +%s)
# Every console the kernel writes to (screen and serial port).
say() {
	local t
	for t in $(cat /sys/class/tty/console/active 2>/dev/null || echo console); do
		echo "bastion-installer: $*" > "/dev/$t" 2>/dev/null || true
	done
}
die() { say "$*"; exit 1; }

arg() {
	local a
	for a in $(cat /proc/cmdline); do
		case $a in "$1"=*) echo "${a#*=}"; return 0 ;; esac
	done
	echo "${2:-}"
}
DISK=$(arg bastion.disk)
WIPE=$(arg bastion.wipe no)
NET=$(arg bastion.net)

# --- the disk ---------------------------------------------------------------
iso_disk=$(lsblk -ndo PKNAME "$ISO_DEV" 2>/dev/null || true)
[ -n "$iso_disk" ] || iso_disk=${ISO_DEV#/dev/}
if [ -z "$DISK" ]; then
	for d in $(ls /sys/block | sort); do
		case $d in loop*|ram*|sr*|zram*|fd*) continue ;; esac
		[ "$d" = "$iso_disk" ] && continue
		[ "$(cat /sys/block/$d/size)" -gt 0 ] || continue
		DISK=/dev/$d
		break
	done
	[ -n "$DISK" ] || die "no disk to install to (bastion.disk=)"
fi
case $DISK in /dev/*) ;; *) DISK=/dev/$DISK ;; esac
[ -b "$DISK" ] || die "$DISK is not a block device"
[ "${DISK#/dev/}" != "$iso_disk" ] || die "$DISK is the installation medium"
if [ "$(lsblk -nlo NAME "$DISK" | wc -l)" -gt 1 ] ||
    [ -n "$(blkid -p -o value -s PTTYPE "$DISK" 2>/dev/null)" ] ||
    [ -n "$(blkid -p -o value -s TYPE "$DISK" 2>/dev/null)" ]; then
	[ "$WIPE" = yes ] ||
	    die "$DISK holds partitions or a file system: refusing to erase it (add bastion.wipe=yes to the kernel command line, or choose another with bastion.disk=)"
	say "erasing $DISK (bastion.wipe=yes)"
fi
size=$(( $(cat /sys/block/${DISK#/dev/}/size) / 2048 ))
[ "$size" -ge 3072 ] || die "$DISK is too small (${size} MiB, at least 3072)"

# --- the provisioning interface ---------------------------------------------
if [ -n "$NET" ]; then
	# IFACE may be a MAC address (colons): ADDR/PREFIX follows the last one.
	iface=${NET%:*}
	cidr=${NET##*:}
	[ "$cidr" != "$NET" ] || die "bastion.net=$NET: expected IFACE:ADDR/PREFIX"
else
	iface=
	cidr=10.77.0.1/24
fi
addr=${cidr%/*}
prefix=${cidr#*/}
[[ $prefix =~ ^[0-9]+$ ]] && [ "$prefix" -ge 8 ] && [ "$prefix" -le 30 ] &&
    [[ $addr =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] ||
    die "bastion.net: $cidr is not ADDR/PREFIX (IPv4, prefix 8-30)"
ip=0
for o in 1 2 3 4; do
	[ "${BASH_REMATCH[$o]}" -le 255 ] || die "bastion.net: bad address $addr"
	ip=$(( (ip << 8) | BASH_REMATCH[$o] ))
done
mac=
name=
if [ -z "$iface" ]; then
	for n in $(ls /sys/class/net | sort); do
		[ "$n" = lo ] && continue
		[ -e /sys/class/net/$n/device ] || continue
		iface=$n
		break
	done
	[ -n "$iface" ] || die "no network interface found (bastion.net=)"
fi
if [[ $iface =~ ^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$ ]]; then
	mac=${iface,,}
elif [ -e "/sys/class/net/$iface/address" ]; then
	mac=$(cat "/sys/class/net/$iface/address")
else
	name=$iface
fi
# The DHCP range: the upper part of the network, without the address.
hosts=$(( 1 << (32 - prefix) ))
net=$(( ip & ~(hosts - 1) & 0xffffffff ))
if [ $hosts -ge 256 ]; then lo=$(( net + 100 )); hi=$(( net + 200 ))
else lo=$(( net + hosts / 2 )); hi=$(( net + hosts - 2 )); fi
if [ $ip -ge $lo ] && [ $ip -le $hi ]; then
	if [ $(( ip - lo )) -gt $(( hi - ip )) ]; then hi=$(( ip - 1 )); else lo=$(( ip + 1 )); fi
fi
dotted() { echo "$(( $1 >> 24 & 255 )).$(( $1 >> 16 & 255 )).$(( $1 >> 8 & 255 )).$(( $1 & 255 ))"; }
range="$(dotted $lo),$(dotted $hi),12h"
say "installing to $DISK; provisioning interface ${mac:-$name} $addr/$prefix, DHCP $range"

# --- partitions and file systems --------------------------------------------
wipefs -qa "$DISK"
sfdisk -q --wipe always --label gpt "$DISK" <<PARTS
size=1MiB, type=21686148-6449-6E6F-744E-656564454649, name=bios
size=128MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=efi
type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root
PARTS
parts=($(lsblk -nlpo NAME "$DISK" | tail -n +2))
[ ${#parts[@]} -eq 3 ] || { sleep 1; parts=($(lsblk -nlpo NAME "$DISK" | tail -n +2)); }
[ ${#parts[@]} -eq 3 ] || die "the new partitions of $DISK did not appear"
for p in "${parts[@]}"; do
	n=0
	while [ ! -b "$p" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
done
# ext4 and vfat are modules: the root image's own (same kernel).
modprobe -a ext4 vfat nls_cp437 nls_utf8 nls_ascii ||
    die "cannot load the ext4 and vfat drivers"
mkfs.vfat -F 32 -n EFI "${parts[1]}" >/dev/null
mkfs.ext4 -q -F -L bastion-root "${parts[2]}"
mount "${parts[2]}" /mnt
say "copying the system"
# From a plain bind of / (without the /dev, /proc, /sys and /run mounted
# on it, which tar would see change as it reads them). A squashfs without
# any extended attribute answers "not supported" to listing them: there
# is nothing to copy then, and a warning per file would only slow the
# serial console down, so those are left out of what is shown (from a
# file: the initramfs's /dev has no /dev/fd for a process substitution).
mkdir -p /run/bastion-source
mount --bind / /run/bastion-source
tar --xattrs --xattrs-include='*' -C /run/bastion-source -cf - . \
    2>/run/bastion-copy.err | tar --xattrs --xattrs-include='*' -C /mnt -xpf -
grep -v 'listxattr.*: Operation not supported' /run/bastion-copy.err >&2 || :
umount /run/bastion-source
mkdir -p /mnt/boot/efi
mount "${parts[1]}" /mnt/boot/efi

uuid() { blkid -o value -s UUID "$1"; }
cat > /mnt/etc/fstab <<FSTAB
UUID=$(uuid "${parts[2]}") / ext4 errors=remount-ro 0 1
UUID=$(uuid "${parts[1]}") /boot/efi vfat umask=0077 0 1
FSTAB
: > /mnt/etc/machine-id
rm -f /mnt/var/lib/dbus/machine-id

# --- network and bastion.conf -------------------------------------------------
if [ -n "$mac" ]; then match="MACAddress=$mac"; else match="Name=$name"; fi
cat > /mnt/etc/systemd/network/10-bastion-provisioning.network <<NETWORK
# The provisioning interface (bastion.net= at installation).
[Match]
$match

[Network]
Address=$addr/$prefix
ConfigureWithoutCarrier=yes
LinkLocalAddressing=ipv6
IPv6AcceptRA=no
NETWORK
cat > /mnt/etc/bastion/appliance.env <<ENV
# Written by the ISO installer; read by bastion-appliance-setup at boot.
PROVISIONING_MAC=$mac
PROVISIONING_NAME=$name
PROVISIONING_ADDR=$addr
ENV
conf=/mnt/etc/bastion/bastion.conf
sed -i -e "/^\[boot\]/,/^\[/{s|^listen = .*|listen = $addr:8080|;s|^dhcp_range = .*|dhcp_range = $range|}" \
    -e "/^\[control\]/,/^\[/{s|^listen = .*|listen = $addr:8443|;s|^names = .*|names = $addr,bastion.lan|}" \
    "$conf"
grep -q "^listen = $addr:8443" "$conf" || die "cannot configure $conf"

# --- boot loader ----------------------------------------------------------------
for m in dev proc sys run; do mount --bind /$m /mnt/$m; done
say "installing the boot loader (BIOS and UEFI)"
chroot /mnt grub-install --target=i386-pc "$DISK" 2>&1 | grep -v '^Installing\|^Installation finished' || true
chroot /mnt grub-install --target=x86_64-efi --efi-directory=/boot/efi \
    --removable --no-nvram "$DISK" 2>&1 | grep -v '^Installing\|^Installation finished' || true
[ -s /mnt/boot/efi/EFI/BOOT/BOOTX64.EFI ] || die "grub-install (UEFI) failed"
[ -s /mnt/boot/grub/i386-pc/core.img ] || die "grub-install (BIOS) failed"
chroot /mnt update-grub 2>/dev/null
[ -s /mnt/boot/grub/grub.cfg ] || die "update-grub failed"
for m in run sys proc dev; do umount /mnt/$m; done
umount /mnt/boot/efi
umount /mnt
sync
say "installed to $DISK in $(( $(date +%s) - START )) s"
