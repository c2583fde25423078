#!/bin/sh
# diagnose.sh [--if-not-ready] — why the appliance is not ready, on the
# consoles (screen and serial port): the state of its units, their last
# journal lines and the addresses. Run by bastion-console when bastion
# does not answer, and by bastion-diagnose.timer some minutes after boot
# (--if-not-ready: only if the console has not shown the panel URL by
# then), which does not wait for bastion-console: a console stuck for
# any reason cannot hide this. Every command is bounded in time and
# lines. Also by hand: /usr/lib/bastion/appliance/diagnose.sh | less
set -u
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C SYSTEMD_COLORS=0
READY=/run/bastion-console.ready
if [ "${1:-}" = --if-not-ready ] && [ -e "$READY" ] &&
    systemctl is-active --quiet bastion.service; then
	exit 0
fi
ttys=""
for t in /dev/tty1 /dev/ttyS0; do
	[ -c "$t" ] && ttys="$ttys $t"
done
[ -n "$ttys" ] || ttys=/dev/stdout
{
	echo "bastion-diagnose: the appliance is not ready; what systemd knows:"
	timeout 20 systemctl status --no-pager --lines=0 bastion.service \
	    bastion-console.service bastion-appliance-setup.service \
	    systemd-networkd.service 2>&1
	echo "bastion-diagnose: journalctl -u bastion -u bastion-console -u bastion-appliance-setup -b"
	timeout 20 journalctl -b --no-pager --lines=60 -o short-monotonic \
	    -u bastion.service -u bastion-console.service \
	    -u bastion-appliance-setup.service 2>&1
	echo "bastion-diagnose: addresses"
	timeout 10 ip -br addr 2>&1
	echo "bastion-diagnose: end"
} | head -c 65536 | sed 's/$/\r/' > /run/bastion-diagnose.txt
for t in $ttys; do
	timeout 30 cat /run/bastion-diagnose.txt > "$t" 2>/dev/null || true
done
exit 0
