#!/bin/sh
# bastion-console: once bastion answers on its admin socket, show the panel
# URL on the consoles (screen and serial) and, on the first boot only, a
# fresh one-time password for the user admin (bastion's own start-up
# password went to the journal; this one replaces it and is written only
# to the consoles, never to a log).
set -eu
. /etc/bastion/appliance.env
SHOWN=/var/lib/bastion/.console-password-shown
ttys=""
for t in /dev/tty1 /dev/ttyS0; do
	[ -c "$t" ] && ttys="$ttys $t"
done
show() {
	for t in $ttys; do
		printf '%s\r\n' "$@" > "$t" 2>/dev/null || true
	done
}
n=0
until bastionctl settings get >/dev/null 2>&1; do
	n=$((n + 1))
	[ $n -lt 120 ] || { show "bastion: not answering; see journalctl -u bastion"; exit 1; }
	sleep 1
done
show "" "Bastion is ready: https://$PROVISIONING_ADDR:8443/"
if [ ! -e "$SHOWN" ]; then
	out=$(bastionctl users passwd admin 2>&1) || { show "bastion: $out"; exit 1; }
	pw=$(printf '%s\n' "$out" | sed -n 's/^one-time password: //p')
	[ -n "$pw" ] || { show "bastion: no password from bastionctl"; exit 1; }
	show "user: admin" "password: $pw" "(one-time: change it at the first login)" ""
	: > "$SHOWN"
fi
