"""QEMU virtual machines that network-boot on the lab bridge.

Used by the e2e suite (tests/e2e) and by the discovery-image tests: each VM
gets one tap device per NIC, enslaved to a bridge (bastion0 by default), a
serial console captured to a file, TCG acceleration (KVM does not work on
the lab machines, see /work/shared/LAB.md) and `-no-reboot`, so a guest
that reboots or powers off simply ends.

    vm = VM(macs=["52:54:00:00:00:01"], firmware="bios").start()
    try:
        vm.wait_serial("Bastion:", timeout=60)
    finally:
        vm.cleanup()          # stops QEMU by PID, deletes its taps

Everything is created by this process and removed by cleanup(): QEMU is
ended by the PID it was started with, taps by the names made here.
Set BASTION_QEMU_ACCEL (e.g. "kvm" or "kvm:tcg") to try another
accelerator; the default is "tcg".
"""
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

QEMU = os.environ.get("BASTION_QEMU", "qemu-system-x86_64")
QEMU_IMG = "qemu-img"
OVMF_CODE = os.environ.get("BASTION_OVMF_CODE", "/usr/share/OVMF/OVMF_CODE.fd")
OVMF_VARS = os.environ.get("BASTION_OVMF_VARS", "/usr/share/OVMF/OVMF_VARS.fd")
# Option ROMs QEMU loads for its NICs (Debian's ipxe-qemu). Only the
# models listed here are checked by missing_deps().
NIC_ROMS = {
    "virtio-net-pci": "/usr/lib/ipxe/qemu/efi-virtio.rom",
    "e1000": "/usr/lib/ipxe/qemu/efi-e1000.rom",
    "e1000e": "/usr/lib/ipxe/qemu/efi-e1000e.rom",
    "rtl8139": "/usr/lib/ipxe/qemu/efi-rtl8139.rom",
}
DISK_MODELS = ("virtio-blk-pci", "scsi-hd", "ide-hd", "nvme")

_ANSI = re.compile(r"\x1b(\[[0-9;?=]*[A-Za-z]|[()][A-Z0-9]|[A-Za-z])")
_BACKSPACE = re.compile("[^\n\x08]?\x08")
_tap_lock = threading.Lock()
_tap_seq = 0


def missing_deps(firmware=("bios", "uefi"), nic_models=("virtio-net-pci",)):
    """What is missing to run VMs with these firmwares and NICs, as a list
    of human-readable strings (empty when everything is there)."""
    missing = []
    if shutil.which(QEMU) is None:
        missing.append("%s (Debian package qemu-system-x86)" % QEMU)
    if shutil.which("ip") is None:
        missing.append("ip (Debian package iproute2)")
    for model in nic_models:
        rom = NIC_ROMS.get(model)
        if rom and not os.path.exists(rom):
            missing.append("%s (Debian package ipxe-qemu)" % rom)
    if "uefi" in firmware:
        for f in (OVMF_CODE, OVMF_VARS):
            if not os.path.exists(f):
                missing.append("%s (Debian package ovmf)" % f)
    return missing


def random_mac(prefix="52:54:00"):
    """A MAC in QEMU's locally-administered 52:54:00 block."""
    return prefix + "".join(":%02x" % random.randint(0, 255) for _ in range(3))


def clean_console(text):
    """Serial output without ANSI escapes, backspaces and CRs."""
    text = _ANSI.sub("", text)
    while "\x08" in text:
        text = _BACKSPACE.sub("", text)
    return text.replace("\r", "")


def _run(*argv):
    r = subprocess.run(list(argv), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), r.stderr.strip()))


def _new_tap_name():
    global _tap_seq
    with _tap_lock:
        _tap_seq += 1
        n = _tap_seq
    # Linux allows 15 characters; the PID keeps parallel runs apart.
    return ("bq%dt%d" % (os.getpid(), n))[:15]


class Nic:
    """One NIC. romfile=None uses QEMU's default option ROM (iPXE from
    ipxe-qemu); romfile="" loads none, so UEFI firmware uses its own PXE."""

    def __init__(self, mac=None, model="virtio-net-pci", romfile=None,
                 bridge="bastion0", boot=True):
        self.mac = (mac or random_mac()).lower()
        self.model = model
        self.romfile = romfile
        self.bridge = bridge
        self.boot = boot
        self.tap = None


class Disk:
    """One disk: a new sparse qcow2 image of `size` (e.g. "8G") unless
    `path` names an existing image."""

    def __init__(self, size="8G", model="virtio-blk-pci", serial=None,
                 path=None, fmt="qcow2", rotational=None):
        if model not in DISK_MODELS:
            raise ValueError("disk model %r not in %r" % (model, DISK_MODELS))
        self.size = size
        self.model = model
        self.serial = serial
        self.path = path
        self.fmt = fmt
        self.rotational = rotational   # scsi-hd/ide-hd: rotation_rate


class VM:
    def __init__(self, name=None, macs=None, nics=None, nic_model="virtio-net-pci",
                 firmware="bios", memory=512, cpus=1, disks=(), workdir=None,
                 machine=None, cpu=None, accel=None, bridge="bastion0",
                 extra_args=()):
        if firmware not in ("bios", "uefi"):
            raise ValueError("firmware must be bios or uefi")
        if nics is None:
            nics = [Nic(m, model=nic_model, bridge=bridge, boot=(i == 0))
                    for i, m in enumerate(macs or [None])]
        self.nics = [n if isinstance(n, Nic) else Nic(n, model=nic_model, bridge=bridge)
                     for n in nics]
        self.disks = [d if isinstance(d, Disk) else Disk(d) for d in disks]
        for n in self.nics:
            if firmware == "uefi" and n.romfile == "" and n.model != "virtio-net-pci":
                raise ValueError("OVMF has a network driver for virtio-net only: "
                                 "a %s without option ROM cannot boot" % n.model)
        self.firmware = firmware
        self.memory = memory
        self.cpus = cpus
        self.machine = machine or ("q35" if firmware == "uefi" else "pc")
        self.cpu = cpu
        self.accel = accel or os.environ.get("BASTION_QEMU_ACCEL", "tcg")
        self.extra_args = list(extra_args)
        self.name = name or "vm-" + self.nics[0].mac.replace(":", "")[-6:]
        self._own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="bastion-%s-" % self.name)
        os.makedirs(self.workdir, exist_ok=True)
        self.serial_path = os.path.join(self.workdir, "serial.log")
        self.qemu_log = os.path.join(self.workdir, "qemu.log")
        self.proc = None
        self.started_at = None      # time.monotonic() at QEMU start
        self.started_wall = None    # time.time() at QEMU start
        self.taps = []

    @property
    def mac(self):
        return self.nics[0].mac

    # --- command line -------------------------------------------------------
    def argv(self):
        a = [QEMU, "-name", self.name, "-nodefaults", "-display", "none",
             "-no-reboot", "-m", str(self.memory), "-smp", str(self.cpus)]
        for acc in self.accel.split(":"):
            a += ["-accel", acc]
        # graphics=off: SeaBIOS then mirrors the BIOS and iPXE console
        # (int 10h) onto the serial port ("sercon"); OVMF always does.
        a += ["-machine", "%s,graphics=off" % self.machine]
        if self.cpu:
            a += ["-cpu", self.cpu]
        a += ["-chardev", "file,id=serial0,path=%s" % self.serial_path,
              "-serial", "chardev:serial0"]
        if self.firmware == "uefi":
            vars_copy = os.path.join(self.workdir, "OVMF_VARS.fd")
            shutil.copyfile(OVMF_VARS, vars_copy)
            a += ["-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + OVMF_CODE,
                  "-drive", "if=pflash,format=raw,unit=1,file=" + vars_copy]
        bootindex = 1
        for i, n in enumerate(self.nics):
            a += ["-netdev", "tap,id=net%d,ifname=%s,script=no,downscript=no"
                  % (i, n.tap)]
            dev = "%s,netdev=net%d,mac=%s" % (n.model, i, n.mac)
            if n.romfile is not None:
                dev += ",romfile=" + n.romfile
            if n.boot:
                dev += ",bootindex=%d" % bootindex
                bootindex += 1
            a += ["-device", dev]
        if any(d.model == "scsi-hd" for d in self.disks):
            a += ["-device", "virtio-scsi-pci,id=scsi0"]
        for i, d in enumerate(self.disks):
            a += ["-drive", "if=none,id=disk%d,format=%s,file=%s" % (i, d.fmt, d.path)]
            dev = "%s,drive=disk%d" % (d.model, i)
            if d.model == "nvme":
                dev += ",serial=%s" % (d.serial or "nvme%d" % i)
            elif d.serial:
                dev += ",serial=%s" % d.serial
            if d.model == "scsi-hd":
                dev += ",bus=scsi0.0"
            if d.rotational is not None and d.model in ("scsi-hd", "ide-hd"):
                dev += ",rotation_rate=%d" % (7200 if d.rotational else 1)
            dev += ",bootindex=%d" % bootindex
            bootindex += 1
            a += ["-device", dev]
        return a + self.extra_args

    # --- life cycle ---------------------------------------------------------
    def _make_taps(self):
        for n in self.nics:
            n.tap = _new_tap_name()
            _run("ip", "tuntap", "add", "dev", n.tap, "mode", "tap")
            self.taps.append(n.tap)
            _run("ip", "link", "set", n.tap, "master", n.bridge, "up")

    def _make_disks(self):
        for i, d in enumerate(self.disks):
            if d.path is None:
                d.path = os.path.join(self.workdir, "disk%d.%s" % (i, d.fmt))
                _run(QEMU_IMG, "create", "-q", "-f", d.fmt, d.path, d.size)

    def start(self):
        """Create the taps and disks, then start QEMU in the background."""
        try:
            self._make_taps()
            self._make_disks()
            argv = self.argv()
            with open(self.qemu_log, "wb") as log:
                log.write((" ".join(argv) + "\n").encode())
                log.flush()
                self.started_at = time.monotonic()
                self.started_wall = time.time()
                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=subprocess.STDOUT)
        except BaseException:
            self._del_taps()
            raise
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def elapsed(self):
        """Seconds since QEMU was started."""
        return time.monotonic() - self.started_at

    def serial_text(self, raw=False):
        try:
            with open(self.serial_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return text if raw else clean_console(text)

    def log_text(self):
        try:
            with open(self.qemu_log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_serial(self, pattern, timeout=60, regex=False):
        """Wait until the (cleaned) serial console shows pattern; returns
        the match (a string, or an re.Match when regex=True)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.serial_text()
            if regex:
                m = re.search(pattern, text)
                if m:
                    return m
            elif pattern in text:
                return pattern
            if not self.running():
                raise AssertionError("%s: QEMU exited (%s) before %r appeared on "
                                     "its console.\nqemu: %s\nconsole:\n%s" % (
                                         self.name, self.proc and self.proc.returncode,
                                         pattern, self.log_text()[-2000:], text[-3000:]))
            if time.monotonic() >= deadline:
                raise AssertionError("%s: %r not on the console after %ss:\n%s" % (
                    self.name, pattern, timeout, text[-3000:]))
            time.sleep(0.2)

    def wait_exit(self, timeout=60):
        """Wait for the guest to end by itself (poweroff or reboot with
        -no-reboot); returns QEMU's exit status."""
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout=5):
        """End QEMU (by its PID: SIGTERM, then SIGKILL) and delete the taps."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            self._del_taps()

    def _del_taps(self):
        while self.taps:
            tap = self.taps.pop()
            subprocess.run(["ip", "link", "del", tap], capture_output=True)

    def cleanup(self, keep_files=False):
        try:
            self.stop()
        finally:
            if self._own_workdir and not keep_files:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
        return False
