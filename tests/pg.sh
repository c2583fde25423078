#!/bin/sh
# tests/pg.sh start DIR | stop DIR — a throwaway PostgreSQL 15 cluster in
# DIR (initdb + pg_ctl from Debian's postgresql-15), run as an unprivileged
# user (nobody when started as root), listening only on a unix socket in
# DIR (its parents must let that user pass). start prints the url of its
# database bastion_test (a DIR that holds a cluster already is started
# again); any failure is
# an exit status other than 0 (tests/run.sh fails the run with it).
set -eu
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
cmd=${1:?usage: pg.sh start|stop DIR}
dir=${2:?usage: pg.sh start|stop DIR}

as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u nobody -- "$@"
	else
		"$@"
	fi
}

case $cmd in
start)
	if [ -d "$dir/data" ]; then	# started again: the same cluster
		as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" \
		    -w -o "-k $dir -c listen_addresses= -c fsync=off" start \
		    >>"$dir/pg_ctl.log" 2>&1
		echo "postgresql:///bastion_test?host=$dir&user=postgres"
		exit 0
	fi
	mkdir -p "$dir"
	chmod 755 "$dir"
	[ "$(id -u)" -eq 0 ] && chown nobody "$dir"
	as_owner "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust \
	    -E UTF8 --no-locale >"$dir/initdb.log" 2>&1
	as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w \
	    -o "-k $dir -c listen_addresses= -c fsync=off" start \
	    >"$dir/pg_ctl.log" 2>&1
	"$PGBIN/createdb" -h "$dir" -U postgres bastion_test
	echo "postgresql:///bastion_test?host=$dir&user=postgres"
	;;
stop)
	as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop \
	    >>"$dir/pg_ctl.log" 2>&1
	;;
*)
	echo "usage: pg.sh start|stop DIR" >&2
	exit 2
	;;
esac
