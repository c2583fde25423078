#!/bin/sh
# `make lab-vm`: network-boot a QEMU VM on the lab bridge that `make run`
# created, with its serial console on this terminal. Watch iPXE fetch
# /boot.ipxe and /dispatch, and the machine appear in
# `bastionctl machines list`. Quit QEMU with Ctrl-A X; its tap device and
# temporary files are removed on exit.
#
# Settings (make lab-vm FIRMWARE=uefi MAC=52:54:00:12:34:56 ...):
#   FIRMWARE   bios (SeaBIOS + iPXE ROM, default) or uefi (OVMF)
#   MAC        default: random 52:54:00:xx:xx:xx
#   NIC        virtio-net-pci (default), e1000, e1000e, rtl8139
#   PXE        rom (default: the NIC's iPXE option ROM) or firmware (UEFI
#              with virtio-net only: OVMF's own PXE, then TFTP ipxe.efi,
#              then iPXE)
#   MEMORY     MiB, default 2048 (the installer keeps the OS image in RAM)
#              CPUS  default 2
#   DISK       size of a blank (sparse) disk, default 80G: the worker
#              role's volumes need 61G; 0 for none
#   DISK_FILE  keep the disk in this qcow2 file (created if missing)
#              instead of a temporary one
#   BRIDGE     default bastion0           ACCEL default tcg (KVM does not
#              work on the lab machines; try ACCEL=kvm where it does)
set -eu

cd "$(dirname "$0")/.."
FIRMWARE=${FIRMWARE:-bios}
NIC=${NIC:-virtio-net-pci}
PXE=${PXE:-rom}
MEMORY=${MEMORY:-2048}
CPUS=${CPUS:-2}
DISK=${DISK:-80G}
DISK_FILE=${DISK_FILE:-}
BRIDGE=${BRIDGE:-bastion0}
ACCEL=${ACCEL:-tcg}
OVMF_CODE=/usr/share/OVMF/OVMF_CODE.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS.fd

die() { printf 'make lab-vm: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run it as root (it adds a tap device to $BRIDGE): sudo make lab-vm"
command -v qemu-system-x86_64 >/dev/null 2>&1 ||
	die "qemu-system-x86_64 is missing: run sudo make deps"
case "$FIRMWARE" in
bios) machine=pc ;;
uefi)
	machine=q35
	if [ ! -r "$OVMF_CODE" ] || [ ! -r "$OVMF_VARS" ]; then
		die "OVMF is missing ($OVMF_CODE): run sudo make deps"
	fi
	;;
*) die "FIRMWARE must be bios or uefi" ;;
esac
case "$PXE" in
rom) romfile= ;;
firmware)
	[ "$FIRMWARE" = uefi ] || die "PXE=firmware needs FIRMWARE=uefi (SeaBIOS has no PXE of its own)"
	[ "$NIC" = virtio-net-pci ] || die "PXE=firmware needs NIC=virtio-net-pci (OVMF has no driver for $NIC)"
	romfile=",romfile="
	;;
*) die "PXE must be rom or firmware" ;;
esac
ip -d link show dev "$BRIDGE" 2>/dev/null | grep -q ' bridge ' ||
	die "no bridge $BRIDGE: start the appliance first (sudo make run, in another terminal)"

if [ -z "${MAC:-}" ]; then
	MAC=$(od -An -N3 -tx1 /dev/urandom | awk '{ printf "52:54:00:%s:%s:%s", $1, $2, $3 }')
fi
echo "$MAC" | grep -Eqi '^([0-9a-f]{2}:){5}[0-9a-f]{2}$' ||
	die "MAC must look like 52:54:00:12:34:56"
MAC=$(echo "$MAC" | tr 'A-F' 'a-f')

# Linux allows 15 characters; make run treats blab* ports as lab VMs.
TAP=blab$$
TAP=$(printf '%.15s' "$TAP")
WORK=$(mktemp -d /tmp/bastion-lab-vm.XXXXXX)
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	ip link del "$TAP" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

ip tuntap add dev "$TAP" mode tap
ip link set "$TAP" master "$BRIDGE" up

# -nographic: SeaBIOS then copies the BIOS and iPXE screen to the serial
# port; -nodefaults drops the default serial, so it is named again.
set -- -name bastion-lab-vm -nodefaults -nographic -serial mon:stdio \
	-machine "$machine" -accel "$ACCEL" -m "$MEMORY" -smp "$CPUS" \
	-netdev "tap,id=net0,ifname=$TAP,script=no,downscript=no" \
	-device "$NIC,netdev=net0,mac=$MAC,bootindex=1$romfile"
if [ "$FIRMWARE" = uefi ]; then
	cp "$OVMF_VARS" "$WORK/OVMF_VARS.fd"
	set -- "$@" -drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE" \
		-drive "if=pflash,format=raw,unit=1,file=$WORK/OVMF_VARS.fd"
fi
if [ -n "$DISK_FILE" ]; then
	[ "$DISK" = 0 ] && DISK=8G
	[ -e "$DISK_FILE" ] || qemu-img create -q -f qcow2 "$DISK_FILE" "$DISK"
	set -- "$@" -drive "if=none,id=disk0,format=qcow2,file=$DISK_FILE" \
		-device "virtio-blk-pci,drive=disk0,bootindex=2"
elif [ "$DISK" != 0 ]; then
	qemu-img create -q -f qcow2 "$WORK/disk0.qcow2" "$DISK"
	set -- "$@" -drive "if=none,id=disk0,format=qcow2,file=$WORK/disk0.qcow2" \
		-device "virtio-blk-pci,drive=disk0,bootindex=2"
fi

cat <<EOF
make lab-vm: $FIRMWARE VM, MAC $MAC, $NIC on $TAP -> $BRIDGE, ${MEMORY} MiB, $CPUS CPUs, accel $ACCEL
make lab-vm: serial console below. Quit QEMU with Ctrl-A then X.
make lab-vm: in another terminal: sudo build/bin/bastionctl --socket var/state/admin.sock machines list

EOF
# In the background so that a signal to this script reaches QEMU too
# (by its PID) and the tap is removed after it ends. fd 3 keeps the
# terminal as QEMU's stdin (a background job would get /dev/null).
exec 3<&0
qemu-system-x86_64 "$@" 0<&3 3<&- &
QPID=$!
trap 'kill -TERM "$QPID" 2>/dev/null; wait "$QPID"; exit 130' INT TERM HUP
rc=0
wait "$QPID" || rc=$?
exit "$rc"
