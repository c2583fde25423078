"""Network boot end to end: QEMU firmware -> bastion's dnsmasq (DHCP,
TFTP) -> iPXE -> bastion's boot listener (/boot.ipxe, /dispatch).

With no discovery image installed, a new machine must be recorded as
`discovering` and its console must say that the image is missing.
Timings to expect with TCG are in /work/shared/LAB.md: BIOS ~2.3 s,
UEFI ~6.3 s, OVMF's own PXE -> TFTP ipxe.efi -> iPXE ~14.4 s from QEMU
start to /dispatch.
"""
import calendar
import os
import re
import signal
import threading
import time

import pytest

import qemu
from conftest import (VMPool, drop_bastion, find_machine, log_tail, machines,
                      new_bastion, record_timing, wait_machine)

MISSING = "THE DISCOVERY IMAGE IS NOT INSTALLED ON THE SERVER"
BOOT_TIMEOUT = 60


def iso_to_epoch(s):
    """'2026-01-02T03:04:05.678Z' -> seconds since the epoch."""
    base, ms = s.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + int(ms) / 1000


class Watch:
    """Waits in the background for the VM's MAC to be listed by bastion,
    so VMs booting in parallel each get an exact start -> visible time."""

    def __init__(self, b, vm):
        self.b = b
        self.vm = vm
        self.row = None
        self.error = None
        self.seen_after = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.row = wait_machine(self.b, self.vm.mac, vm=self.vm,
                                    timeout=BOOT_TIMEOUT, poll=0.1)
            self.seen_after = self.vm.elapsed()
        except BaseException as e:   # re-raised by result()
            self.error = e

    def result(self):
        self.thread.join(BOOT_TIMEOUT + 10)
        if self.error is not None:
            raise self.error
        assert self.row is not None, "watcher for %s did not finish" % self.vm.mac
        return self.row


def dispatch_lines(log, mac):
    """Log lines for /dispatch answers to mac ("req ID: MAC is STATE -> ACTION")."""
    return re.findall(r"req \S+: %s is (\S+) -> (\S+)" % re.escape(mac), log)


def dhcp_ip(log, mac):
    """The address dnsmasq acked for mac (from its relayed log)."""
    m = re.findall(r"DHCPACK\(\S+\) (\d+\.\d+\.\d+\.\d+) %s" % re.escape(mac), log)
    return m[-1] if m else None


def check_discovering(b, vm, watch, platform, arch, label):
    """The assertions every first network boot of a new VM must pass."""
    row = watch.result()
    mac = vm.mac
    dispatch_after = iso_to_epoch(row["created_at"]) - vm.started_wall
    record_timing("%s: /dispatch (created_at)" % label, dispatch_after)
    record_timing("%s: listed by bastion" % label, watch.seen_after)

    # bastionctl shows it, discovering, with what iPXE said about itself.
    ctl_row = find_machine(machines(b), mac)
    assert ctl_row is not None, "bastionctl machines list does not show %s" % mac
    assert ctl_row["state"] == "discovering", ctl_row
    assert ctl_row["platform"] == platform, ctl_row
    assert ctl_row["arch"] == arch, ctl_row
    assert ctl_row["ip"].startswith("10.77.0."), ctl_row

    # The console says why nothing more happens, naming the machine.
    vm.wait_serial(MISSING, timeout=BOOT_TIMEOUT)
    console = vm.serial_text()
    assert mac in console, console[-2000:]

    # The log shows the boot, with the VM's MAC, and one /dispatch only:
    # the missing-image script waits for a key, it never loops.
    log = b.log()
    assert re.search(r"new machine %s \(%s, %s\) from 10\.77\.0\.\d+" % (
        re.escape(mac), platform, arch), log), log_tail(b, 4000)
    assert dispatch_lines(log, mac) == [("discovering", "discovery-missing")], \
        log_tail(b, 4000)
    assert b.admin("GET", "/api/v1/machines/" + mac).json()["boots"] == 1
    return row


class TestNetworkBoot:
    """BIOS and UEFI boots against one bastion, started one after the
    other's DHCP answer and then booting in parallel; each test checks
    one of them."""

    @pytest.fixture(scope="class")
    def lab(self):
        b = new_bastion()
        pool = VMPool()
        try:
            b.start()
            kinds = [
                # SeaBIOS + iPXE option ROM (virtio-net, ipxe-qemu).
                ("bios", dict(name="bios-ipxe-rom", firmware="bios")),
                # OVMF + iPXE EFI option ROM.
                ("uefi", dict(name="uefi-ipxe-rom", firmware="uefi")),
                # OVMF's own PXE (no option ROM) -> TFTP ipxe.efi -> iPXE.
                ("uefi-pxe", dict(name="uefi-ovmf-pxe", firmware="uefi",
                                  nics=[qemu.Nic(romfile="")])),
            ]
            vms, watches = {}, {}
            for k, kw in kinds:
                # One at a time into DHCP: two firmwares that ask at the
                # same moment can be offered the same address (dnsmasq
                # does not hold an offer), and OVMF's PXE does not come
                # back from the NAK. Each starts once the one before has
                # its address; their timings are each their own.
                vms[k] = pool(**kw)
                watches[k] = Watch(b, vms[k])
                deadline = time.monotonic() + BOOT_TIMEOUT
                while dhcp_ip(b.log(), vms[k].mac) is None:
                    assert time.monotonic() < deadline, log_tail(b, 4000)
                    time.sleep(0.1)
            yield b, vms, watches
        finally:
            try:
                pool.cleanup()
            finally:
                drop_bastion(b)

    def test_bios_ipxe_rom(self, lab):
        b, vms, watches = lab
        check_discovering(b, vms["bios"], watches["bios"], "pcbios", "i386",
                          "BIOS (SeaBIOS + iPXE ROM)")

    def test_uefi_ipxe_rom(self, lab):
        b, vms, watches = lab
        vm = vms["uefi"]
        check_discovering(b, vm, watches["uefi"], "efi", "x86_64",
                          "UEFI (OVMF + iPXE EFI ROM)")
        # The ROM is iPXE already: it never needs a TFTP file.
        ip = dhcp_ip(b.log(), vm.mac)
        assert ip, log_tail(b, 4000)
        assert not re.search(r"tftp: .*\b%s\b" % re.escape(ip), b.log())

    def test_uefi_firmware_pxe_no_chain_loop(self, lab):
        b, vms, watches = lab
        vm = vms["uefi-pxe"]
        check_discovering(b, vm, watches["uefi-pxe"], "efi", "x86_64",
                          "UEFI (OVMF PXE -> TFTP ipxe.efi -> iPXE)")
        # The firmware fetched ipxe.efi over TFTP; the iPXE it started was
        # recognised (option 175 / user class) and sent to HTTP, so the
        # chain happened once: one TFTP transfer target, one /dispatch
        # (checked above) and one /boot.ipxe.
        log = b.log()
        ip = dhcp_ip(log, vm.mac)
        assert ip, log_tail(b, 4000)
        sent = re.findall(r"tftp: sent (\S+) to %s\b" % re.escape(ip), log)
        assert sent and all(f.endswith("/ipxe.efi") for f in sent), log_tail(b, 4000)
        # Give a looping client the time to come round again.
        time.sleep(3)
        log = b.log()
        assert len(dispatch_lines(log, vm.mac)) == 1, log_tail(b, 4000)
        assert len(re.findall(r"tftp: sent (\S+) to %s\b" % re.escape(ip), log)) \
            == len(sent), log_tail(b, 4000)


def metric(b, name):
    r = b.admin("GET", "/api/v1/metrics")
    assert r.status == 200, r
    m = re.search(r"^%s (\d+)$" % re.escape(name), r.text, re.M)
    assert m, "no %s in /metrics:\n%s" % (name, r.text)
    return int(m.group(1))


def test_dnsmasq_restarted_after_kill(e2e_bastion, make_vm):
    """dnsmasq killed with SIGKILL is back within 2 s, counted in /metrics,
    and machines still boot through the new one."""
    b = e2e_bastion()
    old = b.dnsmasq_pid()
    assert old, b.admin("GET", "/api/v1/readyz").json()
    assert metric(b, "bastion_dnsmasq_restarts_total") == 0

    os.kill(old, signal.SIGKILL)
    killed = time.monotonic()
    new = None
    while time.monotonic() - killed < 2.0:
        st = b.admin("GET", "/api/v1/readyz").json()["dnsmasq"]
        if st.get("running") and st.get("pid") not in (None, old):
            new = st["pid"]
            break
        time.sleep(0.05)
    assert new, "dnsmasq not back within 2 s of SIGKILL: %r\n%s" % (
        b.admin("GET", "/api/v1/readyz").json(), log_tail(b, 4000))
    record_timing("dnsmasq SIGKILL -> new pid (not a VM timing)",
                  time.monotonic() - killed)
    with open("/proc/%d/comm" % new) as f:
        assert f.read().strip() == "dnsmasq"
    assert metric(b, "bastion_dnsmasq_restarts_total") == 1
    assert b.admin("GET", "/api/v1/readyz").status == 200

    vm = make_vm(name="bios-after-restart", firmware="bios")
    watch = Watch(b, vm)
    check_discovering(b, vm, watch, "pcbios", "i386",
                      "BIOS after a dnsmasq restart")
