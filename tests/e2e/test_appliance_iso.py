"""The appliance ISO end to end (make iso, image/iso.sh), under QEMU TCG,
once with BIOS (SeaBIOS) and once with UEFI (OVMF):

- the ISO boots from a CD, installs to the VM's empty disk unattended and
  powers off;
- the disk boots (the ISO removed); the console shows the panel URL
  https://10.77.0.1:8443/ and the first admin's one-time password;
  systemd reports bastion.service active, and `systemd-analyze security`
  of bastion.service and agentd.service (printed to the serial console
  by a oneshot this test adds to the installed disk) is recorded:
  bastion.service at most 2.5 ("OK"); the oneshot restarts bastion.service,
  whose stop must reach its HTTP worker and dnsmasq without CAP_KILL;
- the panel answers HTTPS on the provisioning address (from a network
  namespace of its own on the appliance's network), the one-time password
  logs in and is changed;
- BIOS run: a second VM on the same network PXE-boots from the appliance
  and is listed as discovered.

The appliance (10.77.0.1) and its client sit on a bridge of their own
(not bastion0, which holds 10.77.0.1 in this namespace; the bridge's own
end does not answer ARP, or it would answer for that address). One ISO serves
both runs (image/iso.sh rebuilds it only when its inputs change).
Serial logs of a failed run are kept in build/artifacts/appliance-iso/.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

import qemu
from conftest import LIVE_VMS, record_timing

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")
ARTIFACTS = os.path.join(BUILD, "artifacts", "appliance-iso")
ADDR = "10.77.0.1"
INSTALL_TIMEOUT = 1800
BOOT_TIMEOUT = 900

SELFTEST_UNIT = """[Unit]
Description=e2e: unit state and sandbox exposure on the serial console
After=bastion-console.service

[Service]
Type=oneshot
# It restarts bastion.service (Type=notify: until it is ready again).
TimeoutStartSec=600
StandardOutput=file:/dev/ttyS0
ExecStart=/bin/sh -c 'echo "selftest: bastion.service $(systemctl is-active bastion.service)"; \
systemd-analyze security --no-pager bastion.service | tail -1 | sed "s/^/selftest: /"; \
systemctl restart bastion.service; \
echo "selftest: restarted $(systemctl is-active bastion.service)"; \
echo "selftest: starts $(journalctl -b -u bastion.service -o cat --no-pager | grep -c " ready (CA ")"; \
journalctl -b -u bastion.service -o cat --no-pager | \
grep -E "ignored SIGTERM|cannot kill|did not stop" | head -5 | sed "s/^/selftest: log: /"; \
echo "selftest: lease-init failures $(journalctl -b -u bastion.service -o cat --no-pager | grep -c "lease-init script returned")"; \
sed "s|/usr/local/sbin/|/usr/sbin/|" /usr/share/bastion/appliance/agentd.service > /run/agentd.service; \
systemd-analyze security --no-pager --offline=yes /run/agentd.service | tail -1 | sed "s/^/selftest: /"; \
echo "selftest: done"'

[Install]
WantedBy=multi-user.target
"""


def iso_path():
    found = sorted(f for f in os.listdir(os.path.join(BUILD, "images"))
                   if re.match(r"bastion-.*-amd64\.iso$", f))
    assert found, "no ISO in build/images: run make iso"
    return os.path.join(BUILD, "images", found[-1])


def run(*argv, timeout=60):
    r = subprocess.run(list(argv), capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, "%s: %s%s" % (" ".join(argv), r.stdout, r.stderr)
    return r.stdout


class Net:
    """A bridge with no address, for the appliance and its PXE client, and
    a namespace on it at 10.77.0.250 to reach the panel from."""

    def __init__(self):
        tag = str(os.getpid())[-5:]
        self.bridge = "bqa" + tag
        self.ns = "bqa-client-" + tag
        self.veth = "bqv" + tag
        run("ip", "link", "add", self.bridge, "type", "bridge")
        # No ARP from the bridge's own end: this namespace holds
        # 10.77.0.1 (bastion0), and Linux answers ARP for any of its
        # addresses on any interface, so the client would reach this
        # namespace instead of the appliance.
        run("ip", "link", "set", self.bridge, "arp", "off", "up")
        run("ip", "netns", "add", self.ns)
        run("ip", "link", "add", self.veth, "type", "veth", "peer", "name",
            "c" + self.veth)
        run("ip", "link", "set", "c" + self.veth, "netns", self.ns)
        run("ip", "link", "set", self.veth, "master", self.bridge, "up")
        run("ip", "-n", self.ns, "addr", "add", "10.77.0.250/24", "dev",
            "c" + self.veth)
        run("ip", "-n", self.ns, "link", "set", "c" + self.veth, "up")
        run("ip", "-n", self.ns, "link", "set", "lo", "up")

    def curl(self, *args, timeout=30):
        return subprocess.run(["ip", "netns", "exec", self.ns, "curl", "-sk",
                               "--max-time", "20"] + list(args),
                              capture_output=True, text=True, timeout=timeout)

    def diagnose(self, vm):
        """What the client's side sees of the appliance's network, for a
        failure message: its neighbours, the boot listener over plain
        HTTP, and the packet counters of every port on the bridge."""
        out = []
        for argv in (["ip", "-n", self.ns, "neigh"],
                     ["ip", "-s", "-br", "link", "show", "master", self.bridge],
                     ["ip", "netns", "exec", self.ns, "curl", "-s", "-o", "/dev/null",
                      "-w", "boot listener: %{http_code}", "--max-time", "10",
                      "http://%s:8080/" % ADDR]):
            r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            out.append("$ %s\n%s%s" % (" ".join(argv), r.stdout, r.stderr))
        for n in vm.nics:
            st = "/sys/class/net/%s/statistics/" % n.tap
            try:
                out.append("%s: rx %s tx %s packets" % (
                    n.tap, open(st + "rx_packets").read().strip(),
                    open(st + "tx_packets").read().strip()))
            except OSError as e:
                out.append("%s: %s" % (n.tap, e))
        return "\n".join(out)

    def cleanup(self):
        subprocess.run(["ip", "link", "del", self.veth], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


@pytest.fixture
def net():
    n = Net()
    yield n
    n.cleanup()


@pytest.fixture
def vms(request):
    made = []

    def make(**kw):
        vm = qemu.VM(**kw)
        made.append(vm)
        LIVE_VMS.append(vm)
        return vm.start()
    yield make
    failed = getattr(request.node, "rep_call", None)
    failed = failed is None or failed.failed
    for vm in made:
        if failed:
            os.makedirs(ARTIFACTS, exist_ok=True)
            for f in ("serial.log", "qemu.log"):
                src = os.path.join(vm.workdir, f)
                if os.path.exists(src):
                    shutil.copy(src, os.path.join(
                        ARTIFACTS, "%s-%s-%s" % (request.node.name, vm.name, f)))
        vm.cleanup()
        LIVE_VMS.remove(vm)


def add_selftest(disk):
    """Mount the installed root (partition 3) and enable the oneshot. The
    partition is looped by its offset: without udev, a partitioned loop
    device gets no /dev nodes for its partitions here."""
    table = json.loads(run("sfdisk", "--json", disk))["partitiontable"]
    sector = table.get("sectorsize", 512)
    root = table["partitions"][2]
    loop = run("losetup", "--find", "--show", "--offset", str(root["start"] * sector),
               "--sizelimit", str(root["size"] * sector), disk).strip()
    mnt = tempfile.mkdtemp(prefix="bqa-root-")
    try:
        run("mount", loop, mnt)
        try:
            unit = os.path.join(mnt, "etc/systemd/system/e2e-selftest.service")
            with open(unit, "w") as f:
                f.write(SELFTEST_UNIT)
            os.symlink("../e2e-selftest.service", os.path.join(
                mnt, "etc/systemd/system/multi-user.target.wants/e2e-selftest.service"))
        finally:
            run("umount", mnt)
    finally:
        os.rmdir(mnt)
        run("losetup", "-d", loop)


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_iso_installs_boots_serves(firmware, net, vms):
    iso = iso_path()
    workdir = tempfile.mkdtemp(prefix="bqa-%s-" % firmware)
    disk = os.path.join(workdir, "disk.raw")
    run("qemu-img", "create", "-q", "-f", "raw", disk, "8G")
    mac = qemu.random_mac()
    cd = ["-drive", "if=none,id=cd0,media=cdrom,readonly=on,format=raw,file=" + iso,
          "-device", "ide-cd,drive=cd0,bootindex=0"]
    try:
        # 1. Install: the ISO's default entry, no key pressed.
        inst = vms(name="appl-inst-" + firmware, firmware=firmware, memory=1536,
                   cpus=1, nics=[qemu.Nic(mac, bridge=net.bridge, boot=False)],
                   disks=[qemu.Disk(path=disk, fmt="raw")], extra_args=cd)
        m = inst.wait_serial(r"bastion-installer: (installed to (\S+) in (\d+) s"
                             r"|installation stopped)",
                             timeout=INSTALL_TIMEOUT, regex=True)
        assert m.group(2) == "/dev/vda", inst.serial_text()[-3000:]
        inst.wait_exit(timeout=120)
        installed = inst.elapsed()
        record_timing("appliance %s: ISO boot -> installed, powered off" % firmware,
                      installed)
        text = inst.serial_text()
        assert "provisioning interface %s 10.77.0.1/24, DHCP 10.77.0.100,10.77.0.200,12h" \
            % mac in text, text[-3000:]

        # 2. The installed disk boots into a running bastion.
        add_selftest(disk)
        appl = vms(name="appl-" + firmware, firmware=firmware, memory=1024, cpus=1,
                   nics=[qemu.Nic(mac, bridge=net.bridge, boot=False)],
                   disks=[qemu.Disk(path=disk, fmt="raw")])
        appl.wait_serial("Bastion is ready: https://%s:8443/" % ADDR,
                         timeout=BOOT_TIMEOUT)
        record_timing("appliance %s: disk boot -> panel URL on console" % firmware,
                      appl.elapsed())
        pw = appl.wait_serial(r"password: (\S+)", timeout=60, regex=True).group(1)
        appl.wait_serial("selftest: done", timeout=300)
        text = appl.serial_text()
        assert "selftest: bastion.service active" in text, text[-3000:]
        # The selftest restarted bastion.service: under the unit (no
        # CAP_KILL) the stop reached the worker and dnsmasq (nobody) with
        # SIGTERM, nothing was left to be killed, and it came back.
        assert "selftest: restarted active" in text, text[-3000:]
        starts = re.search(r"selftest: starts (\d+)", text)
        assert starts and int(starts.group(1)) >= 2, text[-3000:]
        assert "selftest: log: " not in text, text[-3000:]
        fails = re.search(r"selftest: lease-init failures (\d+)", text)
        print("dnsmasq lease-init failures this boot (%s): %s" % (
            firmware, fails and fails.group(1)))
        scores = re.findall(r"selftest: .*Overall exposure level for (\S+): "
                            r"([0-9.]+)", text)
        assert [s[0] for s in scores] == ["bastion.service", "agentd.service"], \
            text[-3000:]
        for unit, score in scores:
            print("systemd-analyze security %s (%s): %s" % (unit, firmware, score))
            record_timing("exposure %s (score, not seconds)" % unit, float(score))
        # Issue 16's goal for bastion.service: 2.5 ("OK") at most.
        assert float(scores[0][1]) <= 2.5, scores
        # agentd.service: confined, its jobs in transient units (the
        # goal, 3.0; tests/e2e/test_agentd_unit.py runs them).
        assert float(scores[1][1]) <= 3.0, scores

        # 3. The panel, over HTTPS on the provisioning address.
        r = net.curl("-o", "/dev/null", "-w", "%{http_code}",
                     "https://%s:8443/" % ADDR)
        assert r.stdout in ("200", "302", "303"), (r.stdout, r.stderr,
                                                   net.diagnose(appl))
        jar = os.path.join(workdir, "cookies")
        r = net.curl("-c", jar, "-H", "Content-Type: application/json",
                     "-d", json.dumps({"username": "admin", "password": pw}),
                     "https://%s:8443/api/v1/session" % ADDR)
        session = json.loads(r.stdout)
        assert session.get("must_change_password") is True, r.stdout
        hdr = ["-b", jar, "-c", jar, "-H", "Content-Type: application/json",
               "-H", "X-CSRF-Token: " + session["csrf_token"]]
        r = net.curl(*hdr, "-X", "PUT", "-d", json.dumps(
            {"old_password": pw, "password": "e2e-appliance-Passw0rd!"}),
            "-w", "\n%{http_code}", "https://%s:8443/api/v1/users/admin/password" % ADDR)
        assert r.stdout.rstrip().endswith("200"), r.stdout

        if firmware != "bios":
            return
        # 4. A machine network-boots from the appliance and is discovered.
        node = vms(name="appl-node", firmware="bios", memory=1024,
                   nics=[qemu.Nic(bridge=net.bridge)])
        deadline = time.monotonic() + 300
        state = None
        while time.monotonic() < deadline:
            r = net.curl(*hdr, "https://%s:8443/api/v1/machines" % ADDR)
            try:
                rows = json.loads(r.stdout)
            except ValueError:
                rows = []
            if isinstance(rows, dict):
                rows = rows.get("machines", [])
            row = [x for x in rows if x.get("mac") == node.mac]
            state = row[0].get("state") if row else None
            if state == "discovered":
                break
            time.sleep(2)
        assert state == "discovered", (state, r.stdout[-2000:],
                                       node.serial_text()[-3000:])
        record_timing("appliance: PXE node start -> discovered", node.elapsed())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
