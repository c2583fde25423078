"""An install end to end: a VM is discovered by the real discovery image,
queued with bastionctl, and its next network boot gets the installer
script from /dispatch; iPXE loads the "installer" from the configured
repo, which fetches the kickstart URL it was given and reports every
progress stage to the URL in that kickstart, until bastion has the machine
`installed` and answers its next boot with a local boot.

The installer is a stand-in (a real Fedora tree cannot be fetched here):
the discovery kernel with an initramfs whose /init does exactly what
anaconda does with inst.ks= and the kickstart's progress callbacks."""
import os
import shutil
import subprocess
import tempfile
import time

import pytest

import qemu
from conftest import log_tail, wait_machine
from agents import wait_for
from harness import free_port
from test_discovery import discovery_image  # noqa: F401 (fixture)

FAKE_INIT = r"""#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run /tmp
for pass in 1 2 3; do
	for a in $(cat /sys/bus/*/devices/*/modalias 2>/dev/null | sort -u); do
		modprobe -q "$a" 2>/dev/null
	done
done
ks=
for w in $(cat /proc/cmdline); do
	case $w in inst.ks=*) ks=${w#inst.ks=} ;; esac
done
echo "fake-installer: kickstart $ks"
ip link set lo up
ip link set eth0 up
udhcpc -i eth0 -f -q -n -t 8 -T 1 -s /etc/udhcpc.script >/dev/null 2>&1
wget -q -O /tmp/ks "$ks" && echo "fake-installer: got the kickstart"
prog=$(sed -n "s/.*'\(http[^']*\/api\/v1\/progress\/[^']*\)'.*/\1/p" /tmp/ks | head -n 1)
for s in "pre 5" "partition 10" "packages 30" "post 90" "done 100"; do
	set -- $s
	wget -q -O /dev/null --header 'Content-Type: application/json' \
	    --post-data "{\"stage\":\"$1\",\"percent\":$2,\"message\":\"stand-in installer\"}" \
	    "$prog" && echo "fake-installer: reported $1"
done
poweroff -f
"""


def build_repo(image_dir, root):
    """root/repo/images/pxeboot/{vmlinuz,initrd.img}: the discovery kernel
    and its initramfs with FAKE_INIT as /init."""
    pxe = os.path.join(root, "repo", "images", "pxeboot")
    tree = os.path.join(root, "tree")
    os.makedirs(pxe)
    os.makedirs(tree)
    shutil.copy(os.path.join(image_dir, "vmlinuz"), os.path.join(pxe, "vmlinuz"))
    with open(os.path.join(image_dir, "initrd.img"), "rb") as f:
        magic = f.read(4)
    unpack = ["zstd", "-dc"] if magic == b"\x28\xb5\x2f\xfd" else ["gzip", "-dc"]
    with open(os.path.join(image_dir, "initrd.img"), "rb") as src:
        dec = subprocess.run(unpack, stdin=src, capture_output=True, check=True).stdout
    subprocess.run(["cpio", "-idm", "--quiet"], input=dec, cwd=tree, check=True)
    with open(os.path.join(tree, "init"), "w") as f:
        f.write(FAKE_INIT)
    os.chmod(os.path.join(tree, "init"), 0o755)
    files = subprocess.run("find . | sort", shell=True, cwd=tree, capture_output=True,
                           check=True).stdout
    cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], input=files,
                          cwd=tree, capture_output=True, check=True).stdout
    with open(os.path.join(pxe, "initrd.img"), "wb") as f:
        f.write(subprocess.run(["gzip", "-1", "-n"], input=cpio, capture_output=True,
                               check=True).stdout)


@pytest.fixture
def repo_server(discovery_image):  # noqa: F811
    root = tempfile.mkdtemp(prefix="bastion-e2e-repo-")
    build_repo(discovery_image, root)
    port = free_port()
    log = open(os.path.join(root, "http.log"), "wb")
    proc = subprocess.Popen(["/usr/bin/python3", "-m", "http.server", "--bind", "10.77.0.1",
                             "--directory", root, str(port)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while b"Serving HTTP" not in open(os.path.join(root, "http.log"), "rb").read():
            assert proc.poll() is None and time.monotonic() < deadline, "http.server did not start"
            time.sleep(0.1)
        yield "http://10.77.0.1:%d/repo" % port, root
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def test_install_through_a_real_network_boot(e2e_bastion, make_vm, discovery_image,  # noqa: F811
                                             repo_server):
    repo, root = repo_server
    b = e2e_bastion(discovery_dir=discovery_image, repo=repo)
    nic = qemu.Nic(model="virtio-net-pci")
    vm = make_vm(name="install-discover", firmware="bios", memory=1024, cpus=1,
                 nics=[nic], disks=[qemu.Disk("8G")])
    wait_machine(b, nic.mac, vm=vm, state="discovered", timeout=90)
    assert vm.wait_exit(timeout=30) == 0

    r = b.ctl("machines", "install", nic.mac, "--hostname", "e2e-node.lab",
              "--role", "worker")
    assert r.returncode == 0, r.stderr
    assert b.admin("GET", "/api/v1/machines/" + nic.mac).json()["state"] == "queued"

    # The same machine boots again: installer, kickstart, progress, done.
    vm2 = make_vm(name="install-run", firmware="bios", memory=1024, cpus=1,
                  nics=[qemu.Nic(mac=nic.mac, model="virtio-net-pci")],
                  disks=[qemu.Disk("8G")])
    try:
        wait_machine(b, nic.mac, vm=None, state="installed", timeout=120)
    except AssertionError:
        raise AssertionError("not installed; console:\n%s\nrepo log:\n%s\n%s" % (
            vm2.serial_text()[-4000:], open(os.path.join(root, "http.log")).read()[-2000:],
            log_tail(b, 4000)))
    # bastion says "installed" when the report arrives; the installer
    # prints its line once the answer is back, a moment later.
    try:
        wait_for(lambda: "fake-installer: reported done" in vm2.serial_text(),
                 timeout=30, what="the installer's line after its report")
    except AssertionError:
        raise AssertionError(vm2.serial_text()[-3000:])
    console = vm2.serial_text()
    assert "fake-installer: got the kickstart" in console, console[-3000:]
    # iPXE fetched the installer from the repo, exactly as the script said.
    http_log = open(os.path.join(root, "http.log")).read()
    assert "GET /repo/images/pxeboot/vmlinuz" in http_log
    assert "GET /repo/images/pxeboot/initrd.img" in http_log

    ev = b.ctl("machines", "events", nic.mac, "--json")
    assert ev.returncode == 0
    import json
    events = json.loads(ev.stdout)
    msgs = [e["message"] for e in events]
    assert any("install queued: e2e-node.lab as worker" in m for m in msgs), msgs
    assert any("network boot 1 of 3: installer sent" in m for m in msgs), msgs
    assert any("kickstart fetched" in m for m in msgs), msgs
    assert [e["progress"] for e in events if e["source"] == "progress"] == [5, 10, 30, 90, 100]
    assert events[-1]["state"] == "installed"
    # From now on the machine boots its disk.
    d = b.dispatch(nic.mac)
    assert "sanboot" in d.text and "kernel" not in d.text
    assert vm2.wait_exit(timeout=30) == 0
