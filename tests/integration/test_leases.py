"""DHCP leases live in bastion's database (DESIGN §16): the real dnsmasq
runs with leasefile-ro, its hook records every lease, and its init gives
them back when dnsmasq starts again. A real DHCP client (busybox udhcpc)
in a network namespace of its own, on a veth port of bastion0 (conftest's
client_ns)."""
import os

from agents import wait_for

CLIENT_MACS = ("52:54:00:dc:00:01", "52:54:00:dc:00:02")


def recorded(bastion, want):
    """Wait until the leases bastion holds are want (dnsmasq runs its
    hook after it answered the client)."""
    return wait_for(lambda: {l["mac"]: l["ip"] for l in bastion.admin(
        "GET", "/api/v1/leases").json()} == want, what="leases %s" % want)


def test_leases_survive_dnsmasq_through_the_database(bastion, client_ns):
    first = client_ns(CLIENT_MACS[0])
    recorded(bastion, {CLIENT_MACS[0]: first})
    # dnsmasq keeps no lease file of its own.
    assert "leasefile-ro" in open(os.path.join(bastion.state, "dnsmasq",
                                               "dnsmasq.conf")).read()
    assert not os.path.exists(os.path.join(bastion.state, "dnsmasq", "leases"))
    r = bastion.ctl("lease-hook", "init")
    assert r.returncode == 0 and r.stdout.split()[1:4] == [CLIENT_MACS[0], first, "*"], r

    # A new dnsmasq (bastion restarted) starts from the database: the
    # address stays the first machine's, even when another asks for it.
    bastion.stop()
    bastion.start()
    second = client_ns(CLIENT_MACS[1], want_ip=first)
    assert second != first
    assert client_ns(CLIENT_MACS[0], want_ip=second) == first
    recorded(bastion, {CLIENT_MACS[0]: first, CLIENT_MACS[1]: second})
