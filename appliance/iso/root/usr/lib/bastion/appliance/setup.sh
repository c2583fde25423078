#!/bin/sh
# bastion-appliance-setup: before bastion starts, name the provisioning
# interface in bastion.conf ([boot] interface) after the MAC address the
# installer recorded: the installed system's names (enp1s0 ...) are only
# known once udev has named the NIC.
set -eu
. /etc/bastion/appliance.env
[ -n "${PROVISIONING_MAC:-}" ] || exit 0
n=0
while :; do
	for dev in /sys/class/net/*; do
		if [ "$(cat "$dev/address" 2>/dev/null)" = "$PROVISIONING_MAC" ]; then
			name=${dev##*/}
			conf=/etc/bastion/bastion.conf
			if ! grep -qx "interface = $name" "$conf"; then
				sed -i "/^\[boot\]/,/^\[/s|^interface = .*|interface = $name|" "$conf"
				echo "provisioning interface: $name ($PROVISIONING_MAC)"
			fi
			exit 0
		fi
	done
	n=$((n + 1))
	if [ $n -ge 60 ]; then
		echo "no network interface has the address $PROVISIONING_MAC" >&2
		exit 1
	fi
	sleep 1
done
