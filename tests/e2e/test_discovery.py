"""Discovery end to end: a new VM network-boots through a real bastion,
runs the RAM-only discovery image (build/images/discovery, built here by
image/build.sh when missing or out of date), and must end `discovered`
with exactly the hardware it was given, within 30 s of QEMU starting.

The VM: 2 vCPUs, 1 GiB, two virtio disks of different sizes (the second
one carries an LVM volume group made here with the host's LVM tools on a
loop device), two NICs of different models (virtio-net-pci, which boots,
and e1000). Once with SeaBIOS, once with OVMF.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import uuid

import pytest

import qemu
from conftest import record_timing, wait_machine
from harness import ROOT

IMAGE_DIR = os.path.join(os.environ.get("BASTION_BUILD", os.path.join(ROOT, "build")),
                         "images", "discovery")
DISCOVERED_WITHIN = 30.0
GiB = 1 << 30


def outer_netns():
    """The network namespace this one was entered from (tests/run.sh's:
    the nearest ancestor process in another one), or None."""
    try:
        mine = os.readlink("/proc/self/ns/net")
        pid = os.getppid()
        while pid > 1:
            path = "/proc/%d/ns/net" % pid
            if os.readlink(path) != mine:
                return path
            with open("/proc/%d/status" % pid) as f:
                pid = int(re.search(r"^PPid:\s+(\d+)", f.read(), re.M).group(1))
    except (OSError, AttributeError, ValueError):
        pass
    return None


@pytest.fixture(scope="session")
def discovery_image():
    """build/images/discovery, (re)built by image/build.sh: it is a no-op
    when its inputs have not changed. The build may have to download the
    Debian packages, and this suite runs in a namespace with no way out:
    the build runs in the network namespace of PID 1 (the host's)."""
    argv = [os.path.join(ROOT, "image", "build.sh")]
    outer = outer_netns()
    if outer:
        argv = ["nsenter", "--net=" + outer] + argv
    env = dict(os.environ)
    if "BASTION_BUILD" in env:
        env["BUILD"] = env["BASTION_BUILD"]
    r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True,
                       timeout=900, env=env)
    assert r.returncode == 0, "image/build.sh failed:\n%s%s" % (
        r.stdout[-3000:], r.stderr[-5000:])
    for f in ("vmlinuz", "initrd.img"):
        assert os.path.getsize(os.path.join(IMAGE_DIR, f)) > 0
    return IMAGE_DIR


def _run(*argv):
    r = subprocess.run(list(argv), capture_output=True, text=True,
                       env=dict(os.environ, LVM_SUPPRESS_FD_WARNINGS="1"))
    assert r.returncode == 0, "%s: %s%s" % (" ".join(argv), r.stdout, r.stderr)
    return r.stdout.strip()


@pytest.fixture
def lvm_disk():
    """A 4 GiB sparse raw image holding an LVM PV in a new VG. The loop
    device and the VG leave the host before the VM starts: only the image
    keeps them."""
    tmp = tempfile.mkdtemp(prefix="bastion-e2e-lvm-")
    try:
        path = os.path.join(tmp, "lvm.raw")
        vg = "bste2e%d" % os.getpid()
        with open(path, "wb") as f:
            f.truncate(4 * GiB)
        loop = _run("losetup", "-f", "--show", path)
        try:
            _run("pvcreate", "-q", "-y", loop)
            _run("vgcreate", "-q", vg, loop)
        finally:
            subprocess.run(["losetup", "-d", loop], capture_output=True)
        yield path, vg
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def hardware(b, mac):
    r = b.ctl("machines", "show", mac, "--json")
    assert r.returncode == 0, "bastionctl machines show %s --json: %s%s" % (
        mac, r.stdout, r.stderr)
    m = json.loads(r.stdout)
    assert isinstance(m.get("hardware"), dict), m
    return m["hardware"]


def digest(path):
    """SHA-256 of the first and last 8 MiB (labels and metadata live there)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(8 << 20))
        f.seek(-(8 << 20), os.SEEK_END)
        h.update(f.read(8 << 20))
    return h.hexdigest()


def discover(e2e_bastion, make_vm, image, lvm_disk, firmware, label):
    lvm_path, vg = lvm_disk
    lvm_digest = digest(lvm_path)
    b = e2e_bastion(discovery_dir=image)
    vm_uuid = str(uuid.uuid4())
    boot = qemu.Nic(model="virtio-net-pci", boot=True)
    other = qemu.Nic(model="e1000", boot=False)
    vm = make_vm(name="disc-" + firmware, firmware=firmware, memory=1024,
                 cpus=2, nics=[boot, other],
                 disks=[qemu.Disk("8G", serial="bst-disk-a"),
                        qemu.Disk(path=lvm_path, fmt="raw", serial="bst-disk-b")],
                 extra_args=["-uuid", vm_uuid])
    row = wait_machine(b, vm.mac, vm=vm, state="discovered",
                       timeout=DISCOVERED_WITHIN + 30, poll=0.1)
    took = vm.elapsed()
    record_timing("%s: QEMU start -> discovered" % label, took)
    assert row["state"] == "discovered"

    hw = hardware(b, vm.mac)
    detail = json.dumps(hw, indent=1)
    print("%s: the report as stored:\n%s" % (label, detail))
    assert hw["mac"] == boot.mac and hw["boot_mac"] == boot.mac, detail
    assert hw["firmware"] == firmware, detail

    # -smp 2: QEMU (7.2, both machine types) makes that 1 socket, 2 cores.
    cpu = hw["cpu"]
    assert (cpu["sockets"], cpu["cores"], cpu["threads"]) == (1, 2, 2), detail
    assert cpu["model"].startswith("QEMU"), detail
    assert hw["memory"]["total_bytes"] == GiB, detail
    assert 0.8 * GiB < hw["memory"]["usable_bytes"] <= GiB, detail

    disks = hw["disks"]
    assert [d["name"] for d in disks] == ["vda", "vdb"], detail
    assert [d["size_bytes"] for d in disks] == [8 * GiB, 4 * GiB], detail
    assert [d["serial"] for d in disks] == ["bst-disk-a", "bst-disk-b"], detail
    assert all(d["bus"] == "virtio" and d["removable"] is False for d in disks)
    assert "pttype" not in disks[0] and "fstype" not in disks[0], detail
    assert disks[1]["fstype"] == "LVM2_member", detail
    assert disks[1]["lvm"]["vg"] == vg, detail
    assert hw["volume_groups"] == [{"name": vg, "pvs": ["vdb"]}], detail

    nics = hw["nics"]
    assert sorted((n["mac"], n["driver"], n["boot"]) for n in nics) == sorted([
        (boot.mac, "virtio_net", True), (other.mac, "e1000", False)]), detail
    # The boot NIC has its link; the other one may still be negotiating
    # when the report is made (e1000 takes ~2 s): whatever it says, it is
    # a boolean or unknown (null), never a made-up value.
    booted = [n for n in nics if n["boot"]][0]
    assert booted["carrier"] is True, detail
    assert all(n["carrier"] in (True, False, None) for n in nics), detail

    assert hw["dmi"]["vendor"] == "QEMU", detail
    assert hw["dmi"]["uuid"] == vm_uuid, detail

    # bastion.after=poweroff: the VM ends by itself.
    assert vm.wait_exit(timeout=30) == 0
    # Discovery never wrote to a disk: the PV label and metadata are as
    # the test made them.
    assert digest(lvm_path) == lvm_digest, "discovery wrote to the LVM disk"
    assert took <= DISCOVERED_WITHIN, "%s: discovered after %.1f s (limit %.0f s)\n%s" % (
        label, took, DISCOVERED_WITHIN, vm.serial_text()[-3000:])
    return b, vm, took


def test_discovery_bios(e2e_bastion, make_vm, discovery_image, lvm_disk):
    discover(e2e_bastion, make_vm, discovery_image, lvm_disk, "bios",
             "discovery BIOS (2 disks, LVM, virtio+e1000)")


def test_discovery_uefi(e2e_bastion, make_vm, discovery_image, lvm_disk):
    discover(e2e_bastion, make_vm, discovery_image, lvm_disk, "uefi",
             "discovery UEFI (2 disks, LVM, virtio+e1000)")
