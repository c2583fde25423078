import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pylib"))
from harness import SANITIZER_MARKERS, Bastion  # noqa: E402
from pgfixture import PG_SH, pg  # noqa: E402,F401  (fixture, shared with e2e)
from hostlock import host_exclusive  # noqa: E402


@pytest.fixture(scope="module")
def host_lock():
    """For a module that uses the host's libvirtd, LXC or LVM
    (tests/pylib/hostlock.py): held from its first test to its last."""
    with host_exclusive():
        yield


@pytest.fixture
def bastion():
    b = Bastion().start()
    try:
        yield b
    finally:
        b.cleanup()


@pytest.fixture
def make_bastion():
    made = []

    def make(**kw):
        b = Bastion(**kw)
        made.append(b)
        return b
    yield make
    for b in made:
        b.cleanup()


@pytest.fixture
def agents():
    """Agents (tests/pylib/agents.py) a test started: stopped after it.
    Under the sanitizer build their logs must hold no report either
    (LeakSanitizer runs at their exit)."""
    made = []
    yield made
    for a in made:
        a.stop()
    for a in made:
        for marker in SANITIZER_MARKERS:
            if marker in a.log():
                open("/tmp/agentlogs-%d.log" % os.getpid(), "a").write(a.log())
            assert marker not in a.log(), a.log()[-6000:]


@pytest.fixture
def client_ns(tmp_path):
    """A namespace with one veth end (bt-dhc1) whose other end is a port
    of bastion0, for a real DHCP client (busybox udhcpc); yields
    dhcp(mac, want_ip=None) -> the address bound."""
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
