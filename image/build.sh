#!/bin/bash
# image/build.sh — builds the RAM-only discovery image from Debian
# packages: build/images/discovery/{vmlinuz,initrd.img}. See README.md.
#
#   image/build.sh                 the discovery image (make image)
#   image/build.sh --reference DIR the bare busybox reference image of
#                                  bench/discovery (same kernel; its /init
#                                  only posts /proc/cpuinfo with wget)
#   image/build.sh --installer     build/images/installer/tools.img: the
#                                  second initrd of an install boot (the
#                                  disk tools `agentd install` runs and
#                                  their libraries, from the OS root that
#                                  image/os.sh leaves in the cache, and
#                                  the storage modules)
#
# Environment: BUILD (default build), COMPRESS=zstd|gzip|xz (default zstd),
# MODULES_CONF (default image/modules.conf),
# SOURCE_DATE_EPOCH (default 0: mtimes in the image), KERNEL_DEB /
# BUSYBOX_DEB (use these .deb files instead of downloading).
# Same inputs (the two .debs, agentd's sources, this directory, the
# compiler) give the same bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
CACHE=$BUILD/image-cache
COMPRESS=${COMPRESS:-zstd}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-0}
export LC_ALL=C TZ=UTC
VARIANT=discovery
MODULES_CONF=${MODULES_CONF:-image/modules.conf}
OUT=$BUILD/images/discovery
if [ "${1:-}" = --reference ]; then
	VARIANT=reference
	OUT=${2:?usage: image/build.sh --reference OUTDIR}
	case $OUT in /*) ;; *) OUT=$ROOT/$OUT ;; esac
elif [ "${1:-}" = --installer ]; then
	VARIANT=installer
	OUT=$BUILD/images/installer
	INSTALLER_OS=${INSTALLER_OS:-debian-12}
	OSROOT=$CACHE/os-$INSTALLER_OS-root
elif [ $# -ne 0 ]; then
	echo "usage: image/build.sh [--reference OUTDIR | --installer]" >&2
	exit 2
fi

say() { echo "image: $*" >&2; }
die() { say "$*"; exit 1; }

for t in apt-get dpkg-deb depmod modprobe cpio strip cc pkg-config flock; do
	command -v $t >/dev/null || [ -x /sbin/$t ] || [ -x /usr/sbin/$t ] ||
	    die "$t is missing (make deps)"
done
case $COMPRESS in
zstd) command -v zstd >/dev/null || die "zstd is missing (make deps)"
      COMPRESSOR="zstd -q -19 -T1 -c" ;;
gzip) COMPRESSOR="gzip -9 -n -c" ;;
xz)   COMPRESSOR="xz -9 --check=crc32 -T1 -c" ;;
*)    die "COMPRESS must be zstd, gzip or xz" ;;
esac
mkdir -p "$CACHE" "$OUT" "$BUILD/image-work"
# One build at a time per build dir (make image, a test fixture, a bench).
exec 9>"$BUILD/image-work/.lock"
flock 9

# --- inputs: two Debian packages, downloaded once into the cache ------------
# fetch PACKAGE -> path of its .deb (the candidate version apt knows of, or
# the newest one already in the cache when apt cannot tell).
fetch() {
	local pkg=$1 ver deb
	ver=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null |
	    sed -n 's/^Version: //p' | head -1)
	if [ -n "$ver" ]; then
		deb=$(ls "$CACHE/${pkg}_${ver//:/%3a}_"*.deb 2>/dev/null | head -1)
		if [ -z "$deb" ]; then
			say "downloading $pkg $ver"
			(cd "$CACHE" && apt-get download -q \
			    -o APT::Sandbox::User=root "$pkg=$ver" >&2) ||
			    die "apt-get download $pkg failed"
			deb=$(ls "$CACHE/${pkg}_"*"${ver#*:}_"*.deb | head -1)
		fi
	else
		deb=$(ls "$CACHE/${pkg}_"*.deb 2>/dev/null | sort -V | tail -1)
	fi
	[ -n "$deb" ] && [ -f "$deb" ] ||
	    die "no .deb for $pkg (apt-get update, or set it by hand)"
	echo "$deb"
}

# apt knows no packages at all on a machine that never ran apt-get update.
if [ -z "${KERNEL_DEB:-}" ] && [ "$(id -u)" -eq 0 ] &&
    ! apt-cache show linux-image-amd64 >/dev/null 2>&1; then
	say "apt has no package lists: apt-get update"
	apt-get update -qq >&2 || say "apt-get update failed; using the cache"
fi

if [ -z "${KERNEL_DEB:-}" ]; then
	# The kernel linux-image-amd64 currently depends on.
	KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null |
	    sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' |
	    head -1)
	if [ -n "$KPKG" ]; then
		KERNEL_DEB=$(fetch "$KPKG")
	else
		KERNEL_DEB=$(ls "$CACHE"/linux-image-[0-9]*-amd64_*.deb \
		    2>/dev/null | sort -V | tail -1)
		[ -n "$KERNEL_DEB" ] ||
		    die "apt knows no linux-image-amd64: run apt-get update"
	fi
fi
BUSYBOX_DEB=${BUSYBOX_DEB:-$(fetch busybox-static)}
KPKG=$(dpkg-deb -f "$KERNEL_DEB" Package)
KVER=${KPKG#linux-image-}
say "kernel $KPKG $(dpkg-deb -f "$KERNEL_DEB" Version), busybox-static" \
    "$(dpkg-deb -f "$BUSYBOX_DEB" Version)"

VERSION=$(sed -n 's/^VERSION *:= *//p' Makefile)

# Up to date? The inputs: the two packages, agentd's sources, image/, the
# settings. Same inputs -> same bytes, so an unchanged set is not rebuilt.
# The lib/ files the image's agentd is built from (with their headers).
AGENT_LIB="lib/log lib/utf8 lib/clock lib/buf lib/mac lib/path lib/hex"
INPUTS=$( {
	echo "$VARIANT $COMPRESS $SOURCE_DATE_EPOCH $VERSION $(cc -dumpfullversion)"
	sha256sum "$KERNEL_DEB" "$BUSYBOX_DEB" image/build.sh image/init \
	    image/udhcpc.script "$MODULES_CONF"
	# shellcheck disable=SC2046
	[ $VARIANT != discovery ] || sha256sum agentd/*.[ch] \
	    $(for f in $AGENT_LIB; do echo "$f.c $f.h"; done)
	[ $VARIANT != installer ] ||
	    cat "$BUILD/images/os/$INSTALLER_OS/.inputs" 2>/dev/null
} | sed "s|$ROOT/||; s|$CACHE/||" | sha256sum | cut -d' ' -f1)
if [ $VARIANT = installer ]; then
	[ -d "$OSROOT/usr" ] ||
	    die "installer: no OS root in $OSROOT (image/os.sh first)"
	if [ -f "$OUT/tools.img" ] &&
	    [ "$(cat "$OUT/.inputs" 2>/dev/null)" = "$INPUTS" ]; then
		say "installer: $OUT is up to date"
		exit 0
	fi
elif [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.img" ] &&
    [ "$(cat "$OUT/.inputs" 2>/dev/null)" = "$INPUTS" ]; then
	say "$VARIANT: $OUT is up to date"
	exit 0
fi

# Extracted (never installed) once per kernel package; depmod writes the
# modules.dep/modules.alias that Debian does not ship.
KROOT=$CACHE/$(basename "$KERNEL_DEB" .deb)
if [ ! -e "$KROOT/.done" ]; then
	say "extracting $(basename "$KERNEL_DEB")"
	rm -rf "$KROOT"
	dpkg-deb -x "$KERNEL_DEB" "$KROOT"
	depmod -b "$KROOT" "$KVER"
	touch "$KROOT/.done"
fi
KMODS=$KROOT/lib/modules/$KVER
[ -f "$KROOT/boot/vmlinuz-$KVER" ] || die "no vmlinuz in $KERNEL_DEB"

# --- the tree ---------------------------------------------------------------
STAGE=$BUILD/image-work/$VARIANT
rm -rf "$STAGE"
mkdir -p "$STAGE"/{bin,dev,etc,lib,proc,sys,run,tmp}
mkdir -p "$STAGE/usr"
ln -s bin "$STAGE/sbin"
ln -s ../bin "$STAGE/usr/bin"
ln -s ../bin "$STAGE/usr/sbin"

dpkg-deb --fsys-tarfile "$BUSYBOX_DEB" | tar -xO ./bin/busybox \
    >"$STAGE/bin/busybox"
chmod 755 "$STAGE/bin/busybox"
APPLETS="sh ash cat cut echo grep ls mkdir mount umount modprobe insmod
    ip udhcpc sort sleep usleep tr awk setsid cttyhack poweroff reboot
    wget uname dmesg ps free head tail sed"
for a in $APPLETS; do
	ln -s busybox "$STAGE/bin/$a"
done

# Modules: every line of modules.conf resolved to module names (a
# modalias via modprobe -R against the kernel's modules.alias), then
# their dependencies from modules.dep.
resolve_modules() {
	local line mods=""
	while read -r line; do
		line=${line%%#*}
		line=$(echo $line)
		[ -n "$line" ] || continue
		case $line in
		*:*)
			m=$(modprobe -d "$KROOT" -S "$KVER" -R "$line" \
			    2>/dev/null) || die "modules.conf: no module for $line"
			mods="$mods $m" ;;
		*)
			modinfo -b "$KROOT" -k "$KVER" -n "$line" >/dev/null \
			    2>&1 || die "modules.conf: no module $line in $KVER"
			mods="$mods $line" ;;
		esac
	done
	echo $mods
}
if [ $VARIANT = discovery ]; then
	MODS=$(resolve_modules <"$MODULES_CONF")
elif [ $VARIANT = installer ]; then
	# The discovery image's modules and the storage ones: this archive's
	# modules.dep replaces the discovery image's, so it names them all.
	MODS="$(resolve_modules <"$MODULES_CONF") dm_mod xfs ext4 vfat nls_cp437 nls_ascii"
else
	MODS="virtio_pci virtio_net virtio_blk e1000"
fi
for m in $MODS; do
	modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" 2>/dev/null |
	    sed -n 's/^insmod \([^ ]*\).*/\1/p'
done | sort -u >"$STAGE/.kos"
while read -r ko; do
	rel=${ko#"$KROOT"/}
	mkdir -p "$STAGE/$(dirname "$rel")"
	cp "$ko" "$STAGE/$rel"
done <"$STAGE/.kos"
rm "$STAGE/.kos"
for f in modules.builtin modules.builtin.modinfo; do
	cp "$KMODS/$f" "$STAGE/lib/modules/$KVER/"
done
# modules.order, only for what ships (depmod orders aliases by it).
(cd "$STAGE/lib/modules/$KVER" && find kernel -name '*.ko' | sort) |
    grep -xF -f - "$KMODS/modules.order" >"$STAGE/lib/modules/$KVER/modules.order"
depmod -b "$STAGE" "$KVER"
# busybox modprobe reads the text files; the rest is dead weight.
rm -f "$STAGE/lib/modules/$KVER/"*.bin "$STAGE/lib/modules/$KVER/modules.symbols" \
    "$STAGE/lib/modules/$KVER/modules.builtin.modinfo" \
    "$STAGE/lib/modules/$KVER/modules.devname"
if [ $VARIANT = installer ]; then
	# The kernel unpacks the discovery initrd and this one into one
	# tree: the discovery image's modules are there already. Only the
	# storage modules travel (iPXE fetches this archive under every
	# install; its modules.dep above still names them all).
	for m in $(resolve_modules <"$MODULES_CONF"); do
		modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" 2>/dev/null |
		    sed -n 's/^insmod \([^ ]*\).*/\1/p'
	done | sort -u | while read -r ko; do
		rm -f "$STAGE/${ko#"$KROOT"/}"
	done
	find "$STAGE/lib/modules" -type d -empty -delete
fi

if [ $VARIANT = discovery ]; then
	# agentd for the image: the same sources, built without libcurl
	# (report.c's own HTTP client talks to the plain-HTTP boot listener)
	# and linked static: no shared library ships at all.
	OBJ=$BUILD/image-work/agentd-obj
	rm -rf "$OBJ"
	mkdir -p "$OBJ"
	# shellcheck disable=SC2046
	for c in agentd/*.c $(for f in $AGENT_LIB; do echo "$f.c"; done); do
		cc -std=gnu11 -O2 -Wall -Wextra -Wformat=2 -Wshadow \
		    -Wmissing-prototypes -Wstrict-prototypes \
		    -Wno-unused-parameter -Werror -D_FORTIFY_SOURCE=2 \
		    -fstack-protector-strong -fPIE -ffile-prefix-map="$ROOT"=. \
		    -Ilib -Iagentd $(pkg-config --cflags blkid jansson libzstd) \
		    -DBASTION_VERSION="\"$VERSION\"" -DAGENTD_NO_CURL \
		    -c -o "$OBJ/$(basename "$c" .c).o" "$c"
	done
	cc -static-pie -Wl,-z,relro,-z,now -Wl,--build-id=none \
	    -o "$STAGE/bin/agentd" "$OBJ"/*.o \
	    $(pkg-config --static --libs blkid jansson nettle libzstd) 2>"$OBJ/link.log" ||
	    { cat "$OBJ/link.log" >&2; die "cannot link agentd"; }
	strip --strip-all "$STAGE/bin/agentd"
	mkdir -p "$STAGE/etc/modprobe.d"
	cat >"$STAGE/etc/modprobe.d/bastion.conf" <<'EOF'
# SCSI hosts scanned before modprobe returns: the disks are there when the
# report is made. USB disks scanned at once instead of after 1 s.
options scsi_mod scan=sync
options usb_storage delay_use=0
EOF
	install -m 755 image/init "$STAGE/init"
	install -m 755 image/udhcpc.script "$STAGE/etc/udhcpc.script"
elif [ $VARIANT = installer ]; then
	# The tools `agentd install` runs, from the OS image's root, with the
	# shared libraries they need (DT_NEEDED, followed). Only files below
	# the stage are touched.
	TOOLS="sfdisk wipefs blkid lvm mkfs.xfs mke2fs mkfs.fat mkswap tar zstd
	    xfs_growfs"
	find "$STAGE/bin" -mindepth 1 -delete	# busybox is the discovery image's
	rm -f "$STAGE/sbin" "$STAGE/usr/bin" "$STAGE/usr/sbin"
	rmdir "$STAGE/usr"
	mkdir -p "$STAGE/lib/x86_64-linux-gnu" "$STAGE/lib64" "$STAGE/etc/lvm"
	find_in_root() {
		local d
		for d in usr/sbin usr/bin sbin bin lib/x86_64-linux-gnu \
		    usr/lib/x86_64-linux-gnu; do
			[ -e "$OSROOT/$d/$1" ] && { echo "$OSROOT/$d/$1"; return 0; }
		done
		return 1
	}
	todo=""
	for t in $TOOLS; do
		f=$(find_in_root "$t") || die "installer: $t is not in $OSROOT"
		cp -L "$f" "$STAGE/bin/$t"
		todo="$todo $STAGE/bin/$t"
	done
	seen=" "
	while [ -n "$todo" ]; do
		next=""
		for f in $todo; do
			for lib in $(readelf -d "$f" |
			    sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
				case $seen in *" $lib "*) continue ;; esac
				seen="$seen$lib "
				src=$(find_in_root "$lib") ||
				    die "installer: $lib (of $f) not found"
				cp -L "$src" "$STAGE/lib/x86_64-linux-gnu/$lib"
				next="$next $STAGE/lib/x86_64-linux-gnu/$lib"
			done
		done
		todo=$next
	done
	cp -L "$OSROOT/usr/lib64/ld-linux-x86-64.so.2" "$STAGE/lib64/"
	cp "$OSROOT/etc/mke2fs.conf" "$STAGE/etc/"
	# No udev in the RAM image: LVM makes its own device nodes.
	printf '%s\n' 'activation {' '	udev_sync = 0' '	udev_rules = 0' \
	    '	monitoring = 0' '}' 'devices {' \
	    '	obtain_device_list_from_udev = 0' '}' >"$STAGE/etc/lvm/lvm.conf"
	for d in dev proc sys run tmp; do rmdir "$STAGE/$d"; done
else
	cat >"$STAGE/init" <<'EOF'
#!/bin/sh
# Reference image of bench/discovery: the least a discovery can do.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for w in $(cat /proc/cmdline); do
	case $w in
	bastion.url=*) url=${w#bastion.url=} ;;
	bastion.mac=*) mac=${w#bastion.mac=} ;;
	esac
done
for m in virtio_pci virtio_net virtio_blk e1000; do modprobe $m; done
for n in /sys/class/net/*; do
	[ "$(cat $n/address)" = "$mac" ] && ifc=${n##*/}
done
ip link set lo up
ip link set "$ifc" up
udhcpc -i "$ifc" -f -q -n -t 8 -T 1 -s /etc/udhcpc.script >/dev/null 2>&1
cpu=$(sed 's/\t/ /g; s/"/ /g' /proc/cpuinfo | tr '\n' '|')
wget -q -O /dev/null --header 'Content-Type: application/json' \
    --post-data "{\"mac\":\"$mac\",\"firmware\":\"bios\",\"cpu\":{\"model\":\"reference\",\"sockets\":1,\"cores\":1,\"threads\":1,\"cpuinfo\":\"$cpu\"},\"memory\":{\"total_bytes\":1}}" \
    "$url/api/v1/discover"
poweroff -f
EOF
	chmod 755 "$STAGE/init"
	install -m 755 image/udhcpc.script "$STAGE/etc/udhcpc.script"
fi

# --- pack -------------------------------------------------------------------
# Sorted names, fixed owner and mtimes, newc: the same tree gives the same
# archive; the compressors are run without names or timestamps.
find "$STAGE" -type d -exec chmod 755 {} +
find "$STAGE" -type f ! -perm -u+x -exec chmod 644 {} +
find "$STAGE" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
TMP_INITRD=$OUT/.initrd.img.$$
TMP_KERNEL=$OUT/.vmlinuz.$$
trap 'rm -f "$TMP_INITRD" "$TMP_KERNEL"' EXIT
(cd "$STAGE" && find . -mindepth 1 -printf '%P\n' | sort |
    cpio -o -H newc -R 0:0 --reproducible --quiet) | $COMPRESSOR >"$TMP_INITRD"
if [ $VARIANT = installer ]; then
	chmod 644 "$TMP_INITRD"
	mv -f "$TMP_INITRD" "$OUT/tools.img"
	echo "$INPUTS" >"$OUT/.inputs"
	trap - EXIT
	say "installer: $OUT/tools.img $(stat -c %s "$OUT/tools.img") bytes" \
	    "($COMPRESS; $(du -sb --apparent-size "$STAGE" | cut -f1) unpacked)"
	exit 0
fi
cp "$KROOT/boot/vmlinuz-$KVER" "$TMP_KERNEL"
chmod 644 "$TMP_INITRD" "$TMP_KERNEL"
mv -f "$TMP_KERNEL" "$OUT/vmlinuz"
mv -f "$TMP_INITRD" "$OUT/initrd.img"
echo "$INPUTS" >"$OUT/.inputs"
trap - EXIT

nmods=$(find "$STAGE/lib/modules" -name '*.ko' | wc -l)
unpacked=$(du -sb --apparent-size "$STAGE" | cut -f1)
say "$VARIANT: $OUT/initrd.img $(stat -c %s "$OUT/initrd.img") bytes" \
    "($COMPRESS; $unpacked unpacked, $nmods modules)," \
    "vmlinuz $(stat -c %s "$OUT/vmlinuz") bytes"
