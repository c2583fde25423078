#!/bin/sh
# bastion-console: once bastion is ready (bastion.service is Type=notify:
# this unit starts after it has started, or failed to), show the panel
# URL on the consoles (screen and serial) and, on the first boot only, a
# fresh one-time password for the user admin (bastion's own start-up
# password went to the journal; this one replaces it and is written only
# to the consoles, never to a log). Every step is bounded in time and
# says on the consoles what it waits for; on a failure the consoles get
# diagnose.sh's report (unit states, journal).
set -u
. /etc/bastion/appliance.env
SHOWN=/var/lib/bastion/.console-password-shown
READY=/run/bastion-console.ready
ttys=""
for t in /dev/tty1 /dev/ttyS0; do
	[ -c "$t" ] && ttys="$ttys $t"
done
show() {
	for t in $ttys; do
		timeout 10 sh -c 'printf "%s\r\n" "$@" > "$0"' "$t" "$@" \
		    2>/dev/null || true
	done
}
fail() {
	show "bastion-console: $*"
	/usr/lib/bastion/appliance/diagnose.sh
	exit 1
}
rm -f "$READY"
systemctl is-active --quiet bastion.service ||
    fail "bastion.service is not running ($(systemctl is-active bastion.service))"
# Ready for systemd means answering: one try, and a few more (up to
# 60 s) only if the admin socket was not there yet.
show "bastion-console: asking bastion on its admin socket (/var/lib/bastion/admin.sock)"
n=0
until out=$(timeout 30 bastionctl settings get 2>&1); do
	n=$((n + 1))
	[ $n -lt 12 ] && systemctl is-active --quiet bastion.service ||
	    fail "bastion does not answer on its admin socket: $out"
	sleep 5
done
show "" "Bastion is ready: https://$PROVISIONING_ADDR:8443/"
if [ ! -e "$SHOWN" ]; then
	show "bastion-console: setting the first admin's one-time password"
	out=$(timeout 120 bastionctl users passwd admin 2>&1) ||
	    fail "bastionctl users passwd admin: $out"
	pw=$(printf '%s\n' "$out" | sed -n 's/^one-time password: //p')
	[ -n "$pw" ] || fail "no password from bastionctl users passwd admin"
	show "user: admin" "password: $pw" "(one-time: change it at the first login)" ""
	: > "$SHOWN"
fi
: > "$READY"
