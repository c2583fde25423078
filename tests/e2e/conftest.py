"""End-to-end fixtures: a real bastion (with its dnsmasq) on the bridge
bastion0 and QEMU VMs that network-boot through it.

tests/run.sh runs this suite inside a fresh network namespace whose bridge
bastion0 (10.77.0.1/24, fd77::1/64) has no ports but the taps made here, so
no DHCP, RA or TFTP packet can leave it. Outside such a namespace the suite
refuses to run.

Fixtures for other e2e tests (the discovery image reuses them):
  e2e_bastion(**kw) -> a started harness.Bastion whose state dir dnsmasq
                       (running as nobody) can reach
  make_vm(**kw)     -> a started qemu.VM; every VM and tap is removed at
                       teardown
A failing test's report shows the consoles of the VMs and the logs of
the bastions alive at that moment.
  machines(b)       -> the machine list as bastionctl --json gives it
  wait_machine(b, mac, vm=None, state=None, timeout=60) -> the machine row
"""
import json
import os
import re
import subprocess
import sys
import time

import pytest

PYLIB = os.path.join(os.path.dirname(__file__), "..", "pylib")
sys.path.insert(0, PYLIB)
import qemu  # noqa: E402
from harness import BIN, Bastion  # noqa: E402

BRIDGE = "bastion0"
BRIDGE_ADDR = "10.77.0.1"

# "name: seconds" lines printed at the end of the run (see LAB.md for the
# reference timings these should be compared with).
TIMINGS = []


def record_timing(what, seconds):
    TIMINGS.append((what, seconds))


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.write_line("e2e timings (QEMU start -> event, TCG):")
        for what, s in TIMINGS:
            terminalreporter.write_line("  %-58s %5.1f s" % (what, s))


# Bastions and VMs alive right now: a failing test's report gets their
# consoles and logs (while they still exist, before any teardown).
LIVE_BASTIONS = []
LIVE_VMS = []


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    if rep.failed and rep.when in ("setup", "call"):
        for vm in LIVE_VMS:
            rep.sections.append(("console of %s (%s, %s)" % (vm.name, vm.firmware, vm.mac),
                                 vm.serial_text()[-4000:] or "(empty)"))
            if vm.proc is not None and vm.proc.poll() is not None:
                rep.sections.append(("qemu %s (exited %s)" % (vm.name, vm.proc.returncode),
                                     vm.log_text()[-2000:]))
        for b in LIVE_BASTIONS:
            rep.sections.append(("bastion log %s (tail, without the tests' polling)"
                                 % b.tmp, log_tail(b)))


def _lab_problems():
    """Why this process cannot run the e2e suite, or None."""
    missing = qemu.missing_deps(firmware=("bios", "uefi"))
    for tool in ("/usr/sbin/dnsmasq", "/usr/lib/ipxe/undionly.kpxe",
                 "/usr/lib/ipxe/ipxe.efi"):
        if not os.path.exists(tool):
            missing.append("%s (Debian packages dnsmasq-base, ipxe)" % tool)
    if missing:
        return ("missing: %s.\nRun `make deps` (as root) to install them."
                % ", ".join(missing))
    if not os.environ.get("BASTION_NETNS"):
        return ("the e2e suite runs DHCP and QEMU on a bridge; it must run in "
                "the network namespace that `tests/run.sh e2e` (make e2e) sets up")
    r = subprocess.run(["ip", "-j", "addr", "show", "dev", BRIDGE],
                       capture_output=True, text=True)
    if r.returncode != 0 or BRIDGE_ADDR not in r.stdout:
        return "no bridge %s with %s in this namespace (%s)" % (
            BRIDGE, BRIDGE_ADDR, os.environ.get("BASTION_NETNS"))
    for name in ("bastion", "bastionctl"):
        if not os.access(os.path.join(BIN, name), os.X_OK):
            return "%s/%s is not built: run `make`" % (BIN, name)
    return None


@pytest.fixture(scope="session", autouse=True)
def lab_ready():
    """Fail (never skip) every test when the lab cannot run."""
    why = _lab_problems()
    if why:
        pytest.fail("e2e lab not usable: " + why, pytrace=False)


def new_bastion(**kw):
    """A harness.Bastion (not started) usable for network boots. Pass it
    to drop_bastion() after its cleanup()."""
    kw.setdefault("discovery_dir", None)
    b = Bastion(**kw)
    if kw.get("discovery_dir") is None:
        os.makedirs(b.discovery_dir, exist_ok=True)   # present but empty
    LIVE_BASTIONS.append(b)
    return b


def drop_bastion(b):
    """b.cleanup() (stop, assert a clean exit, remove the temp dir)."""
    try:
        b.cleanup()
    finally:
        if b in LIVE_BASTIONS:
            LIVE_BASTIONS.remove(b)


def log_tail(b, chars=8000):
    """bastion's log without the tests' own polling, last chars of it."""
    lines = [ln for ln in b.log().splitlines()
             if not re.search(r"admin GET /api/v1/(machines|readyz|metrics) from admin", ln)]
    return "\n".join(lines)[-chars:]


@pytest.fixture
def e2e_bastion():
    """Factory: e2e_bastion(**Bastion kwargs) -> started bastion, stopped
    (clean exit asserted) and removed at teardown."""
    made = []

    def make(**kw):
        b = new_bastion(**kw)
        made.append(b)
        return b.start()
    yield make
    for b in made:
        drop_bastion(b)


class VMPool:
    """Starts VMs and always removes them (QEMU by PID, taps by name)."""

    def __init__(self):
        self.vms = []

    def __call__(self, **kw):
        vm = qemu.VM(**kw)
        self.vms.append(vm)
        LIVE_VMS.append(vm)
        return vm.start()

    def cleanup(self):
        while self.vms:
            vm = self.vms.pop()
            try:
                vm.cleanup()
            finally:
                if vm in LIVE_VMS:
                    LIVE_VMS.remove(vm)


@pytest.fixture
def make_vm():
    """Factory: make_vm(**qemu.VM kwargs) -> started VM, removed at teardown."""
    pool = VMPool()
    yield pool
    pool.cleanup()


def machines(b):
    """`bastionctl machines list --json`, parsed (a list of rows)."""
    r = b.ctl("machines", "list", "--json", timeout=10)
    assert r.returncode == 0, "bastionctl machines list --json: exit %d\n%s%s" % (
        r.returncode, r.stdout, r.stderr)
    rows = json.loads(r.stdout)
    assert isinstance(rows, list), "bastionctl --json must print an array: %r" % rows
    return rows


def find_machine(rows, mac):
    for row in rows:
        if row.get("mac") == mac:
            return row
    return None


def wait_machine(b, mac, vm=None, state=None, timeout=60, poll=0.2):
    """Poll the admin API (cheap) until mac is listed (in state, if given);
    fails early when the VM or bastion died. Returns the row."""
    deadline = time.monotonic() + timeout
    row = None
    while time.monotonic() < deadline:
        r = b.admin("GET", "/api/v1/machines")
        assert r.status == 200, r
        row = find_machine(r.json(), mac)
        if row is not None and (state is None or row.get("state") == state):
            return row
        assert b.alive(), "bastion died:\n" + log_tail(b, 4000)
        if vm is not None:
            assert vm.running(), "%s exited (%s) before %s appeared\n%s" % (
                vm.name, vm.proc.returncode, mac, vm.serial_text()[-3000:])
        time.sleep(poll)
    raise AssertionError("%s not listed%s after %ss (last row: %r)\n%s" % (
        mac, " in state " + state if state else "", timeout, row,
        log_tail(b, 4000)))
