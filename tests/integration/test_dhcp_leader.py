"""A DHCP leader per provisioning interface (issue 17, DESIGN §16): two
bastions on one PostgreSQL database, both in full DHCP mode on bastion0,
and only the one whose listening connection holds the interface's
advisory lock runs dnsmasq. Killed with SIGKILL, its dnsmasq ends with it
and the other runs dnsmasq within 5 s, giving a real DHCP client (busybox
udhcpc, conftest's client_ns) its old address; PostgreSQL stopped, the
leader stops dnsmasq at once; back, one of them runs it again."""
import json
import os
import shutil
import subprocess
import time

from agents import wait_for
from conftest import PG_SH

IFACE = "bastion0"
MACS = ("52:54:00:dd:00:01", "52:54:00:dd:00:02")
FAILOVER_S = 5


def dnsmasq_pids(b):
    """The running dnsmasq processes started for b's state dir (found by
    their --conf-file argument; a zombie has ended), without the helper
    each forks for its lease hook."""
    arg = b"--conf-file=" + os.path.join(b.state, "dnsmasq", "dnsmasq.conf").encode()
    pids = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                argv = f.read().split(b"\0")
            with open("/proc/%s/stat" % p) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if arg in argv and b"--test" not in argv and fields[0] != "Z":
            pids[int(p)] = int(fields[1])
    return sorted(p for p, ppid in pids.items() if ppid not in pids)


def cluster(b):
    r = b.ctl("cluster", "status", "--json")
    assert r.returncode == 0, r
    return {x["url"]: x for x in json.loads(r.stdout)["bastions"]}


def url(b):
    return "https://10.77.0.1:%d" % b.control_port


def leaders(b):
    return sorted(u for u, x in cluster(b).items() if x["dhcp_leader"])


def ready(b):
    assert b.proc.poll() is None, b.log()[-4000:]
    try:
        return b.admin("GET", "/api/v1/readyz").status == 200
    except OSError:
        return False


def two_bastions(make_bastion, db_url):
    """A leads (it starts first, alone); B, with a copy of A's ca/,
    stands by. Both in full DHCP mode on bastion0."""
    conf = "[database]\nurl = %s\n" % db_url
    a = make_bastion(extra_conf=conf)
    a.start()
    b = make_bastion(extra_conf=conf)
    shutil.copytree(os.path.join(a.state, "ca"), os.path.join(b.state, "ca"))
    # Ready without dnsmasq's lease init (the harness waits for it in full
    # mode): B serves HTTP and stands by.
    b.start(wait=False)
    wait_for(lambda: ready(b), timeout=60, what="B to be ready")
    return a, b


def test_one_leader_and_failover_keeps_the_address(make_bastion, pg, client_ns):
    cluster_dir, db_url = pg
    a, b = two_bastions(make_bastion, db_url)

    # Only A runs dnsmasq; B serves HTTP and stands by.
    st = a.dnsmasq_state()
    assert st["running"] and not st["standby"], st
    assert dnsmasq_pids(a) == [st["pid"]]
    st = b.dnsmasq_state()
    assert not st["running"] and st["standby"] and st["last_error"] is None, st
    assert dnsmasq_pids(b) == []
    # Both say so, per interface (B's session is recorded within a second
    # or so of its start).
    wait_for(lambda: leaders(a) == [url(a)] and leaders(b) == [url(a)] and
             all(x["dhcp_interface"] == IFACE and x["up"]
                 for x in cluster(b).values()) and len(cluster(b)) == 2,
             what="cluster status to name A the DHCP leader")
    out = b.ctl("cluster", "status").stdout
    assert "leader %s" % IFACE in out and "standby %s" % IFACE in out, out
    assert "dhcp: leading on %s" % IFACE in a.log()
    assert "dhcp: leading" not in b.log()
    assert dnsmasq_pids(b) == [] and b.dnsmasq_state()["standby"]

    # A client leases an address from A's dnsmasq.
    first = client_ns(MACS[0])
    wait_for(lambda: {x["mac"]: x["ip"] for x in b.admin(
        "GET", "/api/v1/leases").json()} == {MACS[0]: first},
        what="the lease in the database")

    # kill -9 A: its dnsmasq ends with it (it runs as nobody, out of reach
    # of a parent-death signal: a watcher ends it), and B runs dnsmasq
    # within FAILOVER_S.
    old = dnsmasq_pids(a)
    t0 = time.time()
    a.kill9()
    wait_for(lambda: b.dnsmasq_state()["running"], timeout=FAILOVER_S,
             what="B to run dnsmasq")
    took = time.time() - t0
    assert took < FAILOVER_S, took
    wait_for(lambda: not any(p in dnsmasq_pids(a) for p in old), timeout=10,
             what="A's dnsmasq to end")
    assert dnsmasq_pids(a) == []
    assert dnsmasq_pids(b) == [b.dnsmasq_state()["pid"]]
    assert "dhcp: leading on %s" % IFACE in b.log()
    wait_for(lambda: leaders(b) == [url(b)], what="cluster status to name B")
    print("failover: B ran dnsmasq %.2f s after A was killed" % took)

    # B's dnsmasq took the leases from the database: the address stays the
    # first client's, even when another asks for it, and the first gets
    # it back.
    second = client_ns(MACS[1], want_ip=first)
    assert second != first
    assert client_ns(MACS[0]) == first
    assert b.alive()


def test_database_outage_stops_dnsmasq_and_one_leads_again(make_bastion, pg):
    cluster_dir, db_url = pg
    a, b = two_bastions(make_bastion, db_url)
    assert dnsmasq_pids(a) and not dnsmasq_pids(b)
    for x in (a, b):
        x.admin_token()     # made while the database is there

    # PostgreSQL stops: A loses its session and its lock, and stops
    # dnsmasq at once; the API answers 503; nothing crashes.
    subprocess.run([PG_SH, "stop", cluster_dir], check=True)
    t0 = time.time()
    wait_for(lambda: not dnsmasq_pids(a), timeout=10,
             what="A to stop dnsmasq")
    print("A stopped dnsmasq %.2f s after PostgreSQL stopped" % (time.time() - t0))
    st = a.dnsmasq_state()
    assert not st["running"] and st["standby"], st
    assert "dhcp: lost the lead on %s" % IFACE in a.log()
    for x in (a, b):
        wait_for(lambda: x.control("GET", "/api/v1/machines").status == 503,
                 what="503 while the database is away")
        r = x.control("GET", "/api/v1/machines")
        assert r.status == 503 and r.json()["error"]["code"] == "unavailable", r
    assert not dnsmasq_pids(a) and not dnsmasq_pids(b)
    assert a.alive() and b.alive()

    # Back: one of them (whichever reconnects first) runs dnsmasq again,
    # the other stands by, and status names that one.
    subprocess.run([PG_SH, "start", cluster_dir], check=True, capture_output=True)

    def one_leads():
        running = [x for x in (a, b) if x.dnsmasq_state()["running"]]
        standby = [x for x in (a, b) if x.dnsmasq_state()["standby"]]
        if len(running) == 1 and len(standby) == 1 and \
                dnsmasq_pids(running[0]) and not dnsmasq_pids(standby[0]):
            return running[0], standby[0]
        return None
    leader, other = wait_for(one_leads, timeout=30,
                             what="one bastion to run dnsmasq again")
    wait_for(lambda: leaders(other) == [url(leader)] and
             leaders(leader) == [url(leader)],
             what="cluster status to name the new leader")
    assert a.alive() and b.alive()


def test_sqlite_bastion_always_leads(bastion):
    st = bastion.dnsmasq_state()
    assert st["running"] and not st["standby"], st
    x = json.loads(bastion.ctl("cluster", "status", "--json").stdout)["bastions"]
    assert [(b["dhcp_interface"], b["dhcp_leader"]) for b in x] == [(IFACE, True)]
    assert "leader %s" % IFACE in bastion.ctl("cluster", "status").stdout
