#!/bin/sh
# Install every Debian package that the build, the tests and `make run`
# need. Idempotent and non-interactive; run as root (or via sudo).
set -eu

PACKAGES="
build-essential pkg-config clang libclang-rt-14-dev
libmicrohttpd-dev libsqlite3-dev libpq-dev postgresql-15 libjansson-dev libssl-dev libblkid-dev
libinih-dev libcurl4-openssl-dev libargon2-dev libcmocka-dev libgnutls28-dev libmbedtls-dev nettle-dev
libzstd-dev
dnsmasq-base ipxe qemu-system-x86 qemu-utils ovmf
iproute2 curl openssl sqlite3 jq busybox-static lvm2 kmod cpio systemd
fdisk dosfstools e2fsprogs zstd binutils mmdebstrap xfsprogs
python3 python3-pytest chromium
python3-aiosmtpd smartmontools
debhelper lintian squashfs-tools xorriso grub-pc-bin grub-efi-amd64-bin mtools
cppcheck wrk nginx-light prometheus-node-exporter
docker.io
lxc lxc-dev rsync systemd-container libvirt-dev libvirt-daemon-system libvirt-clients libtirpc-dev
"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
# The browser test's driver (playwright-core, pinned by tests/browser's
# package-lock.json) into tests/browser/node_modules; needs node and npm.
browser_deps() {
	if ! command -v npm >/dev/null 2>&1; then
		$SUDO apt-get install -y -qq --no-install-recommends nodejs npm
	fi
	(cd "$(dirname "$0")/../tests/browser" &&
	    npm ci --no-audit --no-fund --loglevel=error)
}
# The panel's vendored modules (xterm.js, pinned by panel/package-lock.json)
# into panel/node_modules; make panel-deps copies them into webroot/vendor.
panel_deps() {
	(cd "$(dirname "$0")/../panel" &&
	    npm ci --no-audit --no-fund --loglevel=error)
}
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi
# The user bastion's HTTP worker runs as ([bastion] user): it parses the
# network and must not be root nor able to read the CA's keys.
bastion_user() {
	if ! getent passwd bastion >/dev/null; then
		$SUDO adduser --system --group --no-create-home \
		    --home /var/lib/bastion --quiet bastion
	fi
}
bastion_user
if [ -z "$missing" ]; then
	echo "deps: all packages present"
	browser_deps
	panel_deps
	exit 0
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
# nginx-light and prometheus-node-exporter are only benchmark references
# (bench/dispatch, bench/agents start their own): never leave them running
# (node-exporter's unit would listen on every address). docker.io is the
# engine tests/integration/test_containers.py and bench/containers start
# in a temporary data root: the host's own engine stays off.
for svc in nginx prometheus-node-exporter docker.socket docker containerd; do
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet $svc 2>/dev/null; then
		$SUDO systemctl stop $svc || true
	fi
	if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled --quiet $svc 2>/dev/null; then
		$SUDO systemctl disable $svc >/dev/null 2>&1 || true
	fi
done
browser_deps
panel_deps
