"""DHCP failover with a real network boot (issue 17, DESIGN §16): two
bastions on one PostgreSQL database, both in full DHCP mode on bastion0.
A QEMU VM PXE-boots through the leader (A) and is discovered. A is killed
with SIGKILL; B runs dnsmasq within 5 s; the machine is forgotten through
B, and the same VM PXE-boots again: B's dnsmasq gives it its old address
(the leases are in the database) and B's dispatch and discovery take it to
`discovered` again."""
import os
import shutil
import time

import qemu
from agents import wait_for
from conftest import drop_bastion, new_bastion, wait_machine
from pgfixture import pg  # noqa: F401  (fixture)
from test_discovery import discovery_image  # noqa: F401  (fixture)

FAILOVER_S = 5


def standing_by(b):
    assert b.alive(), b.log()[-4000:]
    try:
        return b.admin("GET", "/api/v1/readyz").status == 200 and \
            b.dnsmasq_state()["standby"]
    except OSError:     # not listening yet
        return False


def lease(b, mac):
    for x in b.admin("GET", "/api/v1/leases").json():
        if x["mac"] == mac:
            return x
    return None


def discovered(b, make_vm, mac):
    """A BIOS VM with one NIC (mac) network-boots, is discovered and
    powers itself off; returns its lease as b lists it."""
    vm = make_vm(name="failover", firmware="bios", memory=1024, cpus=1,
                 macs=[mac], disks=[qemu.Disk("2G")])
    wait_machine(b, mac, vm=vm, state="discovered", timeout=180, poll=0.2)
    assert vm.wait_exit(timeout=60) == 0
    return wait_for(lambda: lease(b, mac), what="the lease of %s" % mac)


def test_killed_leader_a_vm_boots_from_the_other_with_its_address(
        pg, make_vm, discovery_image):  # noqa: F811
    _, db_url = pg
    conf = "[database]\nurl = %s\n" % db_url
    a = new_bastion(discovery_dir=discovery_image, extra_conf=conf)
    b = new_bastion(discovery_dir=discovery_image, extra_conf=conf)
    try:
        a.start()
        shutil.copytree(os.path.join(a.state, "ca"), os.path.join(b.state, "ca"))
        b.start(wait=False)     # stands by: no lease init to wait for
        wait_for(lambda: standing_by(b), timeout=60, what="B standing by")
        assert a.dnsmasq_state()["running"] and not b.dnsmasq_state()["running"]

        mac = qemu.random_mac()
        first = discovered(a, make_vm, mac)
        print("through A: %s got %s" % (mac, first["ip"]))

        t0 = time.time()
        a.kill9()
        wait_for(lambda: b.dnsmasq_state()["running"], timeout=FAILOVER_S,
                 what="B to run dnsmasq")
        print("B ran dnsmasq %.2f s after A was killed" % (time.time() - t0))

        r = b.ctl("machines", "forget", mac)
        assert r.returncode == 0, r
        assert lease(b, mac)["ip"] == first["ip"]
        again = discovered(b, make_vm, mac)
        assert again["ip"] == first["ip"], (first, again)
        assert again["expires"] > first["expires"], (first, again)
        assert "dhcp: leading on bastion0" in b.log()
    finally:
        for x in (a, b):
            drop_bastion(x)
