"""DHCP leases live in bastion's database (DESIGN §16): the real dnsmasq
runs with leasefile-ro, its hook records every lease, and its init gives
them back when dnsmasq starts again. A real DHCP client (busybox udhcpc)
in a network namespace of its own, on a veth port of bastion0."""
import os
import subprocess

import pytest

from agents import wait_for

CLIENT_MACS = ("52:54:00:dc:00:01", "52:54:00:dc:00:02")


def recorded(bastion, want):
    """Wait until the leases bastion holds are want (dnsmasq runs its
    hook after it answered the client)."""
    return wait_for(lambda: {l["mac"]: l["ip"] for l in bastion.admin(
        "GET", "/api/v1/leases").json()} == want, what="leases %s" % want)


@pytest.fixture
def client_ns(tmp_path):
    """A namespace with one veth end (bt-dhc1) whose other end is a port
    of bastion0; yields dhcp(mac, want_ip=None) -> the address bound."""
    ns = "bt-dhc-%d" % os.getpid()
    script = tmp_path / "udhcpc.sh"
    script.write_text('#!/bin/sh\n[ "$1" = bound ] && echo "$ip" > %s\nexit 0\n'
                      % (tmp_path / "bound"))
    script.chmod(0o755)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "link", "add", "bt-dhc0", "type", "veth", "peer",
                        "name", "bt-dhc1", "netns", ns], check=True)
        subprocess.run(["ip", "link", "set", "bt-dhc0", "master", "bastion0", "up"],
                       check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)

        def dhcp(mac, want_ip=None):
            (tmp_path / "bound").unlink(missing_ok=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "bt-dhc1", "down"], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "bt-dhc1", "address", mac],
                           check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "bt-dhc1", "up"], check=True)
            cmd = ["ip", "netns", "exec", ns, "busybox", "udhcpc", "-i", "bt-dhc1",
                   "-f", "-q", "-n", "-t", "10", "-T", "1", "-s", str(script)]
            if want_ip:
                cmd += ["-r", want_ip]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r
            return (tmp_path / "bound").read_text().strip()

        yield dhcp
    finally:
        subprocess.run(["ip", "link", "del", "bt-dhc0"], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


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
