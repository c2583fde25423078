#!/bin/sh
# `make run`: the embedded default appliance (a lab bridge, full DHCP on it, a
# config of its own), in the foreground.
#
# As root: installs missing packages (appliance/deps.sh), creates the
# isolated lab bridge bastion0 (10.77.0.1/24 + fd77::1/64, no uplink, so
# its DHCP reaches nothing real) if it is absent, writes ./var/bastion.conf
# (first run only: later edits, e.g. by `bastionctl config set`, are kept)
# and runs build/bin/bastion in the foreground. Ctrl-C stops it cleanly.
# The bridge stays for the next run and for `make lab-vm`;
# `ip link del bastion0` removes it.
#
# Environment: BRIDGE (bastion0), CONF (./var/bastion.conf), STATE
# (./var/state: the state dir written into a new CONF; an existing CONF
# keeps its own state_dir). dnsmasq runs as nobody and must reach
# STATE/tftp, so every directory above STATE must be searchable by others
# (o+x): not a checkout under a 0700 home or a mktemp -d directory. If the
# checkout is in one, choose another, e.g. STATE=/var/lib/bastion-lab.
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd -P)
BRIDGE=${BRIDGE:-bastion0}
ADDR4=10.77.0.1
ADDR6=fd77::1
CONF=${CONF:-$ROOT/var/bastion.conf}
STATE=${STATE:-$ROOT/var/state}
DISCOVERY=$ROOT/build/images/discovery
BASTION=$ROOT/build/bin/bastion

say() { printf 'make run: %s\n' "$*"; }
die() { printf 'make run: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run it as root (it creates a bridge and serves DHCP): sudo make run"

# Packages: deps.sh is idempotent and quick when nothing is missing.
./appliance/deps.sh || die "installing packages failed; see above (or run: sudo make deps)"
[ -x "$BASTION" ] || die "$BASTION is not built: run make"

# --- the lab bridge ---------------------------------------------------------
if ! ip link show dev "$BRIDGE" >/dev/null 2>&1; then
	say "creating bridge $BRIDGE ($ADDR4/24, $ADDR6/64, no uplink)"
	ip link add "$BRIDGE" type bridge
elif ! ip -d link show dev "$BRIDGE" | grep -q ' bridge '; then
	die "$BRIDGE exists and is not a bridge; remove it or set BRIDGE=name"
fi
ip -4 addr show dev "$BRIDGE" | grep -q "inet $ADDR4/" ||
	ip addr add "$ADDR4/24" dev "$BRIDGE"
# The ULA lets dnsmasq send router advertisements: iPXE then does not
# wait ~13 s for IPv6 (LAB.md). nodad: usable at once.
ip -6 addr show dev "$BRIDGE" 2>/dev/null | grep -q "inet6 $ADDR6/" ||
	ip addr add "$ADDR6/64" dev "$BRIDGE" nodad 2>/dev/null ||
	say "warning: could not add $ADDR6/64 (IPv6 disabled?): iPXE will wait for IPv6"
ip link set "$BRIDGE" up
# Ports that are not lab VMs' taps mean the DHCP server can reach them.
ports=$(ip -o link show master "$BRIDGE" 2>/dev/null |
	awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | grep -v '^blab' |
	tr '\n' ' ' || true)
if [ -n "$ports" ]; then
	say "WARNING: $BRIDGE has ports other than lab VMs: $ports"
	say "WARNING: bastion's DHCP server answers everything on them"
fi

# --- config and state dir -----------------------------------------------------
mkdir -p "$ROOT/var" "$STATE" "$DISCOVERY"
# dnsmasq drops to nobody and serves STATE/tftp: the state dir and every
# directory above it must be searchable by others (0711 hides the names).
# bastion -n below checks the directories above and says what to do.
chmod 0711 "$ROOT/var" "$STATE"

if [ ! -e "$CONF" ]; then
	umask 022
	cat >"$CONF" <<EOF
; bastion.conf for the lab appliance, written by \`make run\` on $(date -u +%Y-%m-%d).
; Kept across runs; delete it to get these defaults back.
; Every key: man docs/man/bastion.conf.5 (or appliance/bastion.conf).

[bastion]
state_dir = $STATE
; Templates (ipxe/, kickstart/) straight from this source tree.
share_dir = $ROOT

[boot]
; The isolated lab bridge: full DHCP, nothing else is on it.
listen = $ADDR4:8080
interface = $BRIDGE
dhcp_mode = full
dhcp_range = 10.77.0.100,10.77.0.200,12h
discovery_dir = $DISCOVERY
; The installer's tools (a second initrd beside the discovery image's).
installer_dir = $ROOT/build/images/installer

[control]
; Every request needs a login or an API token. On the lab address, so the
; nodes' agents reach it too (the lab bridge has no uplink).
listen = $ADDR4:8443
names = localhost,127.0.0.1,$ADDR4

[install]
; Debian 12 from bastion's own image (make image; no mirror needed).
; Fedora/RHEL by kickstart: set repo = and install with --os fedora-40.
os = debian-12
EOF
	say "wrote $CONF"
else
	say "using $CONF (delete it to get the defaults back)"
fi
"$BASTION" -n -f "$CONF" >/dev/null ||
	die "$CONF has errors (above); for a state dir elsewhere: rm $CONF and run again with STATE=/var/lib/bastion-lab (any directory whose parents all have o+x)"

# --- the discovery image: built once, rebuilt when its inputs change ----------
if [ ! -f "$DISCOVERY/vmlinuz" ] || [ ! -f "$DISCOVERY/initrd.img" ]; then
	say "building the discovery image (first run only, about a minute)"
	./image/build.sh || say "building the discovery image failed (above); new machines will be told it is missing"
fi

# --- the OS image and the installer (make image): found in STATE/images/os ----
if [ ! -f "$ROOT/build/images/os/debian-12/manifest.json" ] ||
    [ ! -f "$ROOT/build/images/os/debian-12/root.xfs.zst" ] ||
    [ ! -f "$ROOT/build/images/installer/tools.img" ]; then
	say "building the debian-12 image and the installer (first run only, a few minutes)"
	{ ./image/os.sh debian-12 && ./image/os-fs.sh debian-12 &&
	    ./image/build.sh --installer; } ||
	    say "building the OS image failed (above); installs of debian-12 are refused until make image works"
fi
mkdir -p "$STATE/images/os"
if [ -d "$ROOT/build/images/os/debian-12" ] && [ ! -e "$STATE/images/os/debian-12" ]; then
	ln -s "$ROOT/build/images/os/debian-12" "$STATE/images/os/debian-12"
fi

# --- what to do next ------------------------------------------------------------
rel_sock=${STATE#"$ROOT"/}/admin.sock
if [ -f "$DISCOVERY/vmlinuz" ] && [ -f "$DISCOVERY/initrd.img" ]; then
	image="discovery image: $DISCOVERY"
else
	image="discovery image: NOT BUILT YET (make image). Until then new machines are
                   registered and their console says the image is not installed."
fi
cat <<EOF

  Bastion lab appliance
  ---------------------
  lab network:     $BRIDGE $ADDR4/24 (DHCP 10.77.0.100-200), no uplink
  boot listener:   http://$ADDR4:8080/boot.ipxe
  control API:     https://$ADDR4:8443/api/v1/ (HTTPS, CA: $STATE/ca/ca.pem)
                   Log in as 'admin' (POST /api/v1/session) or use an API
                   token. The first start prints admin's one-time password
                   below ("one-time password ..."); a new one any time:
                   sudo build/bin/bastionctl --socket $rel_sock users passwd admin
  admin socket:    $STATE/admin.sock (root only, no token needed)
  $image

  In another terminal:
    sudo make lab-vm                     network-boot a QEMU VM on $BRIDGE
    sudo build/bin/bastionctl --socket $rel_sock machines list
    sudo build/bin/bastionctl --socket $rel_sock machines watch

  Ctrl-C stops bastion (and its dnsmasq). The bridge stays; remove it
  with: sudo ip link del $BRIDGE

EOF
exec "$BASTION" -F -f "$CONF"
