"""Debian 12 installed from bastion's image, the whole life of a machine
(DESIGN §11), in QEMU (TCG) with BIOS and with UEFI:

PXE → discovered → `machines install --os debian-12` → the installer RAM
image lays out the first of two disks, writes the image, installs GRUB →
the VM boots Debian from its disk → agentd enrolls → active →
`bastionctl exec` sees Debian 12 and the role's LVs → a file in /srv (a
preserved volume) and one in /root → `machines reprovision --reboot` →
active again: the /srv file is there, the /root one is not. The second
disk is never written.

The reprovision also makes /home's volume afresh, which was removed on
the node before (a preserved volume that is not there has nothing to keep).

Then the refusal path: the node's /boot partition loses its label, the
machine is reprovisioned, and the installer refuses to lay the disk out
afresh over the preserved volumes: the
install fails with the reason and the disk is byte for byte what it was.

VMs run with -no-reboot: every reboot ends QEMU and the test starts the
next boot with the same disks, as a power cycle."""
import concurrent.futures
import hashlib
import json
import os
import subprocess
import time

import pytest

import qemu
from agents import wait_for
from conftest import drop_bastion, log_tail, new_bastion, record_timing
from harness import ROOT
from test_discovery import discovery_image  # noqa: F401 (fixture)

BUILD = os.environ.get("BASTION_BUILD", os.path.join(ROOT, "build"))
OS_DIR = os.path.join(BUILD, "images", "os", "debian-12")
INSTALLER_DIR = os.path.join(BUILD, "images", "installer")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture
def image_bastion(discovery_image):  # noqa: F811
    """A bastion (not started) whose state dir has the debian-12 image
    (a symlink to what `make image` built) and whose control listener the
    nodes reach (10.77.0.1)."""
    for f in ("manifest.json", "rootfs.tar.zst", "root.xfs.zst", "rest.tar.zst"):
        assert os.path.exists(os.path.join(OS_DIR, f)), \
            "%s is not built: run `make image`" % OS_DIR
    assert os.path.exists(os.path.join(INSTALLER_DIR, "tools.img")), \
        "the installer's tools are not built: run `make image`"
    b = new_bastion(discovery_dir=discovery_image, control_host="10.77.0.1",
                    extra_conf="[boot]\ninstaller_dir = %s\n" % INSTALLER_DIR)
    os.makedirs(os.path.join(b.state, "images", "os"))
    os.symlink(OS_DIR, os.path.join(b.state, "images", "os", "debian-12"))
    yield b.start()
    drop_bastion(b)


def boot(make_vm, fw, mac, disks, name):
    return make_vm(name=name, macs=[mac], firmware=fw, memory=2048, cpus=1,
                   disks=[qemu.Disk(path=d) for d in disks])


def ctl_ok(b, *args, timeout=60):
    r = b.ctl(*args, timeout=timeout)
    assert r.returncode == 0, "bastionctl %s: exit %d\n%s%s" % (
        " ".join(args), r.returncode, r.stdout, r.stderr)
    return r.stdout


def run_on(b, target, cmd, timeout=180):
    return ctl_ok(b, "exec", "--timeout", "2m", target, "--", "/bin/sh", "-c", cmd,
                  timeout=timeout)


def until_state(b, mac, vm, state, timeout):
    """The machine's row once in state; fails at once if it fails instead
    (with the last events). The VM powers itself off or reboots on the
    way: only bastion is watched."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = b.admin("GET", "/api/v1/machines/" + mac).json()
        if row.get("state") == state:
            return row
        if row.get("state") == "failed" and state != "failed":
            ev = b.admin("GET", "/api/v1/machines/%s/events?limit=1000" % mac).json()
            raise AssertionError("%s failed: %s\n%s" % (
                mac, [e["message"] for e in ev[-4:]], vm.serial_text()[-3000:]))
        assert b.alive(), "bastion died:\n" + log_tail(b, 4000)
        time.sleep(1)
    raise AssertionError("%s not %s after %ss\n%s" % (
        mac, state, timeout, vm.serial_text()[-3000:]))


def lifecycle(b, make_vm, fw, tmp_path):
    os.makedirs(tmp_path)
    disks = [str(tmp_path / ("disk%d.qcow2" % i)) for i in range(2)]
    for d in disks:
        subprocess.run([qemu.QEMU_IMG, "create", "-q", "-f", "qcow2", d, "80G"],
                       check=True)
    mac = qemu.random_mac()
    host = "deb-%s.lab" % fw

    vm = boot(make_vm, fw, mac, disks, "%s-discover" % fw)
    until_state(b, mac, vm, "discovered", 300)
    vm.wait_exit(60)
    second = sha256_file(disks[1])

    # An unknown OS is refused, the machine unchanged.
    r = b.ctl("machines", "install", mac, "--hostname", host, "--role", "worker",
              "--os", "debian-13")
    assert r.returncode == 1 and "unknown OS" in r.stderr, (r.stdout, r.stderr)
    assert b.admin("GET", "/api/v1/machines/" + mac).json()["state"] == "discovered"

    ctl_ok(b, "machines", "install", mac, "--hostname", host, "--role", "worker",
           "--os", "debian-12")
    vm = boot(make_vm, fw, mac, disks, "%s-install" % fw)
    until_state(b, mac, vm, "installed", 1200)
    record_timing("image install %s (QEMU start -> installed)" % fw, vm.elapsed())
    assert vm.wait_exit(120) == 0
    ev = b.admin("GET", "/api/v1/machines/%s/events?limit=1000" % mac).json()
    stages = [e["message"] for e in ev]
    # The root went on as one filesystem image (image/os-fs.sh), /boot
    # and /var from the small tar.
    assert any("writing debian-12's root filesystem" in m for m in stages), stages
    assert any("writing debian-12's /boot and /var" in m for m in stages), stages
    assert any("bootable (BIOS and UEFI)" in m for m in stages), stages

    vm = boot(make_vm, fw, mac, disks, "%s-debian" % fw)
    until_state(b, mac, vm, "active", 900)
    agent = b.admin("GET", "/api/v1/agents").json()
    assert [a["hostname"] for a in agent if a.get("mac") == mac] == [host.split(".")[0]], agent
    record_timing("Debian from disk %s (QEMU start -> active)" % fw, vm.elapsed())
    osr = run_on(b, mac, "cat /etc/os-release")
    assert 'VERSION_ID="12"' in osr and "debian" in osr, osr
    lvs = run_on(b, mac, "lvs --noheadings -o lv_name bastion")
    assert set(lvs.split()) == {"root", "var", "home", "srv", "var_lib_longhorn"}, lvs
    dynamic_agent(b, mac)
    # Its own SSH host keys, made at this first boot at idle priority
    # (bastion-host-keys.service), and sshd after them.
    keys = ctl_ok(b, "exec", "--timeout", "5m", mac, "--", "/bin/sh", "-c",
                  "systemctl start ssh && systemctl is-active ssh && "
                  "ssh-keygen -l -f /etc/ssh/ssh_host_ed25519_key.pub",
                  timeout=360)
    assert keys.startswith("active\n256 SHA256:"), keys
    # The root image grew to fill its 20 GiB volume and has a UUID of its own.
    fs = run_on(b, mac, "findmnt -n -o FSTYPE,SIZE -b /").split()
    assert fs[0] == "xfs" and int(fs[1]) > 19 << 30, fs
    uuid = run_on(b, mac, "blkid -o value -s UUID /dev/mapper/bastion-root").strip()
    mnt = run_on(b, mac, "findmnt -n -o SOURCE /srv")
    assert "bastion-srv" in mnt, mnt
    run_on(b, mac, "echo kept > /srv/keep && echo gone > /root/gone && sync")
    # A preserved volume that is gone (here /home's, removed) is made
    # afresh at the reprovision; the others keep their bytes. (systemd
    # unmounts it: agentd's jobs run in a mount namespace of their own.)
    run_on(b, mac, "systemctl stop home.mount && lvremove -y bastion/home && sync")

    ctl_ok(b, "machines", "reprovision", mac, "--reboot")
    assert vm.wait_exit(300) == 0
    vm = boot(make_vm, fw, mac, disks, "%s-reinstall" % fw)
    until_state(b, mac, vm, "installed", 1200)
    assert vm.wait_exit(120) == 0
    vm = boot(make_vm, fw, mac, disks, "%s-debian2" % fw)
    until_state(b, mac, vm, "active", 900)
    assert run_on(b, mac, "cat /srv/keep").strip() == "kept"
    lvs = run_on(b, mac, "lvs --noheadings -o lv_name bastion")
    assert set(lvs.split()) == {"root", "var", "home", "srv", "var_lib_longhorn"}, lvs
    assert "bastion-home" in run_on(b, mac, "findmnt -n -o SOURCE /home")
    assert run_on(b, mac, "test -e /root/gone && echo there || echo absent").strip() \
        == "absent"
    assert sha256_file(disks[1]) == second, "the second disk was written"
    return mac, host, vm, disks, uuid


def dynamic_agent(b, mac):
    """An image node runs the dynamically linked agentd (the image is the
    build host's Debian 12): its libraries are all in the image, it takes
    guest jobs, and its guest report says libvirt and liblxc are not
    installed, not what agentd-static says (that it cannot load them)."""
    ldd = run_on(b, mac, "ldd /usr/local/sbin/agentd")
    assert "libcurl.so.4" in ldd and "not found" not in ldd, ldd
    assert "guests" in run_on(b, mac, "grep ^accept /etc/agentd/agentd.conf")
    rep = wait_for(lambda: (lambda n: n if n.get("received") else None)(
        b.admin("GET", "/api/v1/agents/%s/guests" % mac).json()), 180,
        "%s's guest report" % mac)
    for d, lib in (("libvirt", "libvirt.so.0"), ("lxc", "liblxc.so.1")):
        drv = rep["drivers"][d]
        assert drv["state"] == "absent", rep
        assert drv["detail"].startswith(lib + " cannot be loaded"), rep
        assert "static agentd" not in drv["detail"], rep
    assert rep["guests"] == [], rep


def refusals(b, make_vm, mac, vm, disks):
    """On an installed BIOS node: a volume group whose disk lost its /boot
    partition (someone relabelled it) is not laid out afresh while it holds
    preserved volumes; an image whose SHA-256
    is not the manifest's is not written. Each time the disk stays byte for
    byte what it was."""
    run_on(b, mac, 'e2label "$(findmnt -n -o SOURCE /boot)" not_boot && sync')
    ctl_ok(b, "exec", "--detach", mac, "--", "/bin/systemctl", "poweroff")
    vm.wait_exit(300)
    before = sha256_file(disks[0])
    ctl_ok(b, "machines", "reprovision", mac)
    vm = boot(make_vm, "bios", mac, disks, "bios-refused")
    until_state(b, mac, vm, "failed", 900)
    # A refusing installer powers off; under TCG on a loaded host that
    # has taken over two minutes (a soft lockup on the way down).
    assert vm.wait_exit(300) == 0
    msg = last_events(b, mac)
    assert "cannot be reused: no /boot partition labelled bastion_boot" in msg, msg
    assert "nothing was written" in msg, msg
    assert sha256_file(disks[0]) == before, "the refused reprovision wrote the disk"

    bad = os.path.join(b.state, "images", "os", "debian-12-bad")
    os.makedirs(bad)
    with open(os.path.join(OS_DIR, "manifest.json")) as f:
        m = json.load(f)
    m["name"] = "debian-12-bad"
    m["sha256"] = "0" * 64
    m["root_image"]["sha256"] = "0" * 64
    with open(os.path.join(bad, "manifest.json"), "w") as f:
        json.dump(m, f)
    for f in ("rootfs.tar.zst", m["root_image"]["file"], m["root_image"]["rest"]):
        os.symlink(os.path.join(OS_DIR, f), os.path.join(bad, f))
    ctl_ok(b, "machines", "install", mac, "--hostname", "bad.lab", "--role", "worker",
           "--os", "debian-12-bad")
    vm = boot(make_vm, "bios", mac, disks, "bios-badimage")
    until_state(b, mac, vm, "failed", 900)
    assert vm.wait_exit(300) == 0
    msg = last_events(b, mac)
    assert "root filesystem image does not match its SHA-256 in the plan" in msg, msg
    assert "refusing to write it" in msg, msg
    assert sha256_file(disks[0]) == before, "a corrupt image was written"


def last_events(b, mac, n=3):
    ev = b.admin("GET", "/api/v1/machines/%s/events?limit=1000" % mac).json()
    return " | ".join(e["message"] for e in ev[-n:])


def test_image_install_bios_and_uefi(image_bastion, make_vm, tmp_path):
    """Both firmwares at once (two VMs, one core each): the BIOS node then
    also takes the refusal paths."""
    b = image_bastion

    def bios():
        mac, host, vm, disks, uuid = lifecycle(b, make_vm, "bios", tmp_path / "bios")
        refusals(b, make_vm, mac, vm, disks)
        return uuid

    def uefi():
        return lifecycle(b, make_vm, "uefi", tmp_path / "uefi")[4]

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        jobs = [pool.submit(bios), pool.submit(uefi)]
        errors = [j.exception() for j in jobs]
    for e in errors:
        if e is not None:
            raise e
    # One image, two machines: two root filesystem UUIDs.
    assert jobs[0].result() != jobs[1].result(), [j.result() for j in jobs]
