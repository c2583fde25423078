"""Guests on nodes (DESIGN §13) against real LXC and real libvirt.

LXC: busybox containers made by `lxc-create -t busybox` under a temporary
lxcpath, with `lxc.net.0.type = empty` (no network at all: the host's is
never touched). libvirt: the system's libvirtd (qemu:///system) when it
answers, else one started here (and stopped afterwards); `type='qemu'`
(TCG) domains with a qcow2 disk from qemu-img and no network, named
bastion-test-<random>, undefined with their snapshots afterwards. No OS
boots: a disk-only domain is enough for lifecycle and disk snapshots.

`ip netns exec` remounts /sys without the cgroup tree, where liblxc
cannot start a container: agentd and the lxc-* tools run in the outer
mount namespace (nsenter --mount), still in this test's network
namespace (LXC's command sockets are abstract, per network namespace).

A real agentd reports both drivers over real mTLS and runs the signed
guest jobs; what bastionctl says is checked against lxc-info, virsh,
qemu-io and the containers' files."""
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from agents import SANITIZED, enrolled_agent, job_done, wait_for
from harness import BIN

VIRSH = ["virsh", "-q", "-c", "qemu:///system"]


def outer_mount_ns():
    """The mount namespace `ip netns exec` left (see test_containers)."""
    mine = os.readlink("/proc/self/ns/mnt")
    pid = os.getpid()
    while pid > 1:
        with open("/proc/%d/stat" % pid) as f:
            pid = int(f.read().rsplit(")", 1)[1].split()[1])
        try:
            if os.readlink("/proc/%d/ns/mnt" % pid) != mine:
                return "/proc/%d/ns/mnt" % pid
        except OSError:
            break
    return "/proc/self/ns/mnt"


OUTER = ["nsenter", "--mount=" + outer_mount_ns()]
# (The ASan build's agentd gets libtirpc and its leak suppressions from
# tests/pylib/agents.py.)
AGENT_WRAP = OUTER


def run(*args, check=True, timeout=120):
    r = subprocess.run(list(args), capture_output=True, text=True,
                       timeout=timeout)
    if check:
        assert r.returncode == 0, r
    return r


class Lxc:
    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="bt-lxc-", dir="/tmp")

    def tool(self, name, *args, check=True):
        return run(*OUTER, name, "-P", self.path, *args, check=check)

    def create(self, name):
        self.tool("lxc-create", "-t", "busybox", "-n", name)
        conf = os.path.join(self.path, name, "config")
        with open(conf) as f:
            lines = [x for x in f.read().splitlines()
                     if not x.startswith(("lxc.net.", "lxc.apparmor."))]
        lines += ["lxc.net.0.type = empty",
                  "lxc.apparmor.profile = unconfined"]
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def state(self, name):
        return self.tool("lxc-info", "-n", name, "-s").stdout.split()[-1]

    def rootfs(self, name, *rel):
        return os.path.join(self.path, name, "rootfs", *rel)

    def cleanup(self):
        for name in os.listdir(self.path):
            if os.path.isfile(os.path.join(self.path, name, "config")):
                self.tool("lxc-stop", "-n", name, "-k", check=False)
                self.tool("lxc-destroy", "-n", name, "-s", check=False)
        shutil.rmtree(self.path, ignore_errors=True)


class Libvirt:
    """qemu:///system: the running daemon, or one started here."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="bt-virt-", dir="/tmp")
        os.chmod(self.tmp, 0o755)   # QEMU runs as libvirt-qemu
        self.pids = []
        self.domains = []

    def up(self):
        return run(*VIRSH, "version", check=False, timeout=30).returncode == 0

    def start(self):
        if self.up():
            return self
        for daemon in ("virtlogd", "libvirtd"):
            pidfile = os.path.join(self.tmp, daemon + ".pid")
            run(*OUTER, daemon, "-d", "-p", pidfile)
            wait_for(lambda: os.path.exists(pidfile), 30, daemon)
            with open(pidfile) as f:
                self.pids.append(int(f.read().strip()))
        wait_for(self.up, 60, "libvirtd to answer")
        return self

    def define(self, size="16M"):
        name = "bastion-test-" + secrets.token_hex(4)
        disk = os.path.join(self.tmp, name + ".qcow2")
        run("qemu-img", "create", "-q", "-f", "qcow2", disk, size)
        xml = os.path.join(self.tmp, name + ".xml")
        with open(xml, "w") as f:
            f.write("""<domain type='qemu'><name>%s</name>
<memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
<source file='%s'/><target dev='vda' bus='virtio'/></disk>
<serial type='pty'/><console type='pty'/></devices></domain>
""" % (name, disk))
        run(*VIRSH, "define", xml)
        self.domains.append(name)
        return name, disk

    def state(self, name):
        return run(*VIRSH, "domstate", name).stdout.strip()

    def cleanup(self):
        for name in self.domains:
            run(*VIRSH, "destroy", name, check=False)
            run(*VIRSH, "undefine", name, "--snapshots-metadata", check=False)
        for pid in reversed(self.pids):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in self.pids:
            wait_for(lambda: not os.path.exists("/proc/%d" % pid), 30,
                     "libvirt daemon %d to exit" % pid)
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def lxc(host_lock):
    x = Lxc()
    try:
        x.create("ct1")
        yield x
    finally:
        x.cleanup()


@pytest.fixture(scope="module")
def virt(host_lock):
    v = Libvirt().start()
    try:
        v.vm, v.disk = v.define()
        yield v
    finally:
        v.cleanup()


@pytest.fixture
def node(bastion, agents, lxc, virt):
    """ct1 stopped, the VM shut off, and an agent reporting both."""
    if lxc.state("ct1") != "STOPPED":
        lxc.tool("lxc-stop", "-n", "ct1", "-k")
    if virt.state(virt.vm) != "shut off":
        run(*VIRSH, "destroy", virt.vm)
    a = enrolled_agent(bastion, extra="guests = libvirt,lxc\nlxc_path = %s\n"
                       % lxc.path)
    a.wrap = AGENT_WRAP
    a.stop()
    a.start()
    agents.append(a)
    try:
        wait_for(lambda: guest(bastion, "ct1") and guest(bastion, virt.vm),
                 60, "the first guest report")
    except AssertionError:
        raise AssertionError("no report; agentd said:\n" + a.log()[-4000:])
    return a


def guests(b, target="node1"):
    r = b.admin("GET", "/api/v1/agents/%s/guests" % target)
    assert r.status == 200, r
    return r.json()["guests"]


def guest(b, name):
    return next((g for g in guests(b) if g["name"] == name), None)


def ctl(b, *args, rc=0, timeout=120):
    r = b.ctl(*args, timeout=timeout)
    assert r.returncode == rc, r
    return r


def ctl_json(b, *args):
    return json.loads(ctl(b, *args, "--json").stdout)


# --- reports -------------------------------------------------------------------

def test_report_lists_both_drivers_guests(bastion, node, lxc, virt):
    n = bastion.admin("GET", "/api/v1/guests").json()["nodes"][0]
    assert n["hostname"] == "node1" and n["stale"] is False and n["received"]
    assert n["drivers"]["lxc"]["state"] == "ok", n["drivers"]
    assert n["drivers"]["libvirt"]["state"] == "ok", n["drivers"]
    assert re.match(r"\d+\.\d+\.\d+$", n["drivers"]["libvirt"]["version"])
    listed = {g["name"]: g for g in ctl_json(bastion, "guests", "list")}
    ct, vm = listed["ct1"], listed[virt.vm]
    assert ct["type"] == "lxc" and ct["state"] == "stopped"
    assert ct["disks"][0]["source"] == lxc.rootfs("ct1")
    assert vm["type"] == "vm" and vm["state"] == "shutoff"
    assert vm["vcpus"] == 1 and vm["memory_mib"] == 64
    assert vm["disks"] == [{"target": "vda", "source": virt.disk,
                            "format": "qcow2", "size_bytes": 16 << 20}]
    assert vm["id"] == run(*VIRSH, "domuuid", virt.vm).stdout.strip()
    r = ctl(bastion, "guests", "list", "node1")
    assert re.search(r"node1\s+ct1\s+lxc\s+stopped", r.stdout), r.stdout
    shown = ctl_json(bastion, "guests", "show", "node1", virt.vm)
    assert shown["guest"]["name"] == virt.vm
    r = bastion.admin("GET", "/api/v1/agents/node1/guests/nosuch")
    assert r.status == 404 and r.json()["error"]["code"] == "not_found", r


# --- lifecycle -------------------------------------------------------------------

def test_lxc_lifecycle_is_what_lxc_info_says(bastion, node, lxc):
    ctl(bastion, "guests", "start", "node1", "ct1")
    assert lxc.state("ct1") == "RUNNING"
    wait_for(lambda: guest(bastion, "ct1")["state"] == "running", 30,
             "the report to show ct1 running")
    ctl(bastion, "guests", "suspend", "node1", "ct1")
    assert lxc.state("ct1") == "FROZEN"
    ctl(bastion, "guests", "resume", "node1", "ct1")
    assert lxc.state("ct1") == "RUNNING"
    r = ctl(bastion, "guests", "start", "node1", "ct1")
    assert "already running" in r.stdout, r
    ctl(bastion, "guests", "shutdown", "node1", "ct1", "--timeout", "30")
    assert lxc.state("ct1") == "STOPPED"
    ctl(bastion, "guests", "start", "node1", "ct1", "--type", "lxc")
    ctl(bastion, "guests", "stop", "node1", "ct1")
    assert lxc.state("ct1") == "STOPPED"


def test_vm_lifecycle_is_what_virsh_says(bastion, node, virt):
    vm = virt.vm
    ctl(bastion, "guests", "start", "node1", vm)
    assert virt.state(vm) == "running"
    ctl(bastion, "guests", "suspend", "node1", vm)
    assert virt.state(vm) == "paused"
    wait_for(lambda: guest(bastion, vm)["state"] == "paused", 30,
             "the report to show the VM paused")
    ctl(bastion, "guests", "resume", "node1", vm)
    assert virt.state(vm) == "running"
    # No OS answers ACPI: a graceful shutdown runs out of time, exit 1.
    r = ctl(bastion, "guests", "shutdown", "node1", vm, "--timeout", "2", rc=1)
    assert "did not shut down within 2 s" in r.stderr, r
    assert virt.state(vm) == "running"
    ctl(bastion, "guests", "stop", "node1", vm)
    assert virt.state(vm) == "shut off"


# --- snapshots ---------------------------------------------------------------------

def test_lxc_snapshot_rolled_back_restores_a_file(bastion, node, lxc):
    marker = lxc.rootfs("ct1", "marker")
    with open(marker, "w") as f:
        f.write("before\n")
    ctl(bastion, "guests", "snapshot", "node1", "ct1", "before-x")
    wait_for(lambda: [s["name"] for s in guest(bastion, "ct1")["snapshots"]]
             == ["before-x"], 30, "the snapshot in the report")
    snaps = ctl_json(bastion, "guests", "snapshots", "node1", "ct1")
    assert [s["name"] for s in snaps] == ["before-x"] and snaps[0]["created"]
    with open(marker, "w") as f:
        f.write("after\n")
    ctl(bastion, "guests", "rollback", "node1", "ct1", "before-x")
    with open(lxc.rootfs("ct1", "marker")) as f:
        assert f.read() == "before\n"
    r = ctl(bastion, "guests", "rollback", "node1", "ct1", "nosuch", rc=1)
    assert "no snapshot nosuch" in r.stderr, r
    ctl(bastion, "guests", "snapshot-delete", "node1", "ct1", "before-x")
    assert "before-x" not in lxc.tool("lxc-snapshot", "-n", "ct1", "-L",
                                      "-C").stdout


def test_vm_internal_snapshot_reverted_restores_disk_bytes(bastion, node, virt):
    vm, disk = virt.vm, virt.disk
    run("qemu-io", "-c", "write -P 0xaa 0 64k", disk)
    ctl(bastion, "guests", "snapshot", "node1", vm, "s1")
    assert run(*VIRSH, "snapshot-list", vm, "--name").stdout.split() == ["s1"]
    # Internal: the qcow2 itself holds it.
    assert "s1" in run("qemu-img", "snapshot", "-l", disk).stdout
    run("qemu-io", "-c", "write -P 0xbb 0 64k", disk)
    run("qemu-io", "-c", "read -P 0xbb 0 64k", disk)
    ctl(bastion, "guests", "rollback", "node1", vm, "s1")
    r = run("qemu-io", "-c", "read -P 0xaa 0 64k", disk)
    assert "Pattern verification failed" not in r.stdout, r
    wait_for(lambda: [(s["name"], s["current"]) for s in
                      guest(bastion, vm)["snapshots"]] == [("s1", True)], 30,
             "s1 current in the report")
    ctl(bastion, "guests", "snapshot-delete", "node1", vm, "s1")
    assert run(*VIRSH, "snapshot-list", vm, "--name").stdout.split() == []


# --- guard ---------------------------------------------------------------------------

def test_guard_rolls_back_on_failing_health_and_keeps_on_passing(
        bastion, node, lxc):
    with open(lxc.rootfs("ct1", "marker"), "w") as f:
        f.write("original\n")
    ctl(bastion, "guests", "start", "node1", "ct1")
    r = ctl(bastion, "guests", "guard", "node1", "ct1", "--health", "false",
            "--", "sh", "-c", "echo changed > /marker", rc=1)
    outcome = json.loads(r.stdout.strip().splitlines()[-1])
    assert outcome["outcome"] == "rolled_back", r.stdout
    assert outcome["change_exit"] == 0 and outcome["health_exit"] == 1
    assert outcome["snapshot_kept"] is False
    with open(lxc.rootfs("ct1", "marker")) as f:
        assert f.read() == "original\n"
    assert lxc.state("ct1") == "RUNNING"
    # A failing change is rolled back before any health check.
    r = ctl(bastion, "guests", "guard", "node1", "ct1", "--health", "true",
            "--", "sh", "-c", "echo half > /marker; exit 3", rc=1)
    outcome = json.loads(r.stdout.strip().splitlines()[-1])
    assert outcome["change_exit"] == 3 and outcome["health_exit"] is None
    with open(lxc.rootfs("ct1", "marker")) as f:
        assert f.read() == "original\n"
    # A passing health check keeps the change; the snapshot goes.
    r = ctl(bastion, "guests", "guard", "node1", "ct1", "--snapshot", "g1",
            "--health", "grep -q changed /marker", "--", "sh", "-c",
            "echo changed > /marker")
    outcome = json.loads(r.stdout.strip().splitlines()[-1])
    assert outcome == {"outcome": "kept", "snapshot": "g1", "change_exit": 0,
                       "health_exit": 0, "snapshot_kept": False}, r.stdout
    with open(lxc.rootfs("ct1", "marker")) as f:
        assert f.read() == "changed\n"
    assert "g1" not in lxc.tool("lxc-snapshot", "-n", "ct1", "-L", "-C").stdout
    # Usage errors: 2.
    ctl(bastion, "guests", "guard", "node1", "ct1", "--", "true", rc=2)
    ctl(bastion, "guests", "stop", "node1", "ct1")


# --- refusals ------------------------------------------------------------------------

def test_bad_names_are_refused_on_both_sides(bastion, node, lxc):
    for name in ("a;b", "-x", "a" * 65, "..", "a b", "x<y"):
        r = bastion.admin("POST", "/api/v1/agents/node1/guests/%s/start"
                          % name.replace(" ", "%20").replace("<", "%3C"))
        assert 400 <= r.status < 500, (name, r)
        r = bastion.ctl("guests", "start", "node1", "--", name)
        assert r.returncode == 1 and "not a guest name" in r.stderr, (name, r)
        r = bastion.admin("POST", "/api/v1/agents/node1/guests/ct1/snapshot",
                          {"snapshot": name})
        assert r.status == 422, (name, r)
        r = bastion.ctl("guests", "rollback", "node1", "ct1", "--", name)
        assert r.returncode == 1 and "not a snapshot name" in r.stderr, r
    r = bastion.admin("GET", "/api/v1/agents/node1/guests/a;b")
    assert r.status == 422, r
    for body in ({"argv": ["true"]}, {"snapshot": "x", "timeout": 5},
                 {"type": "docker"}):
        r = bastion.admin("POST", "/api/v1/agents/node1/guests/ct1/start", body)
        assert r.status == 422, (body, r)
    r = bastion.admin("POST", "/api/v1/agents/node1/guests/ct1/rollback", {})
    assert r.status == 422, r
    r = bastion.admin("POST", "/api/v1/agents/node1/guests/ct1/guard",
                      {"argv": ["true"]})
    assert r.status == 422, r
    r = bastion.admin("POST", "/api/v1/agents/node1/guests/ct1/shutdown",
                      {"timeout": 99999})
    assert r.status == 422, r
    agent = bastion.admin("GET", "/api/v1/agents/node1").json()["id"]
    r = bastion.admin("POST", "/api/v1/jobs", {"target": agent, "kind": "guest",
                      "args": {"action": "start", "guest": "../x"}})
    assert r.status == 422, r
    assert lxc.state("ct1") == "STOPPED"


def test_actions_are_audited_and_viewer_cannot_act(bastion, node, lxc):
    ctl(bastion, "guests", "snapshot", "node1", "ct1", "aud1")
    ctl(bastion, "guests", "snapshot-delete", "node1", "ct1", "aud1")
    agent = bastion.admin("GET", "/api/v1/agents/node1").json()["id"]
    rows = json.loads(ctl(bastion, "audit", "list", "--json").stdout)
    for action in ("guest.snapshot", "guest.snapshot-delete"):
        row = next(r for r in rows if r["action"] == action)
        assert row["target"] == "%s/ct1@aud1" % agent, row
        assert row["result"] == "ok", row
    bastion.add_user("vera", "viewer", "viewer-password-1")
    s = bastion.login("vera", "viewer-password-1")
    r = s.request("GET", "/api/v1/guests")
    assert r.status == 200 and "ct1" in [g["name"] for g in
                                         r.json()["nodes"][0]["guests"]]
    assert s.request("GET", "/api/v1/agents/node1/guests/ct1").status == 200
    for action in ("start", "stop", "snapshot", "guard"):
        r = s.request("POST", "/api/v1/agents/node1/guests/ct1/" + action, {})
        assert r.status == 403, (action, r)
    tok = bastion.make_token("vera", "read")
    assert bastion.control("GET", "/api/v1/guests", auth=tok).status == 200
    r = bastion.control("POST", "/api/v1/agents/node1/guests/ct1/start",
                        auth=tok)
    assert r.status == 403, r
    assert lxc.state("ct1") == "STOPPED"


def test_agent_without_guests_in_accept_refuses(bastion, agents, lxc):
    a = enrolled_agent(bastion, name="node2", mac="52:54:00:a0:00:02",
                       extra="accept = exec\nguests = lxc\nlxc_path = %s\n"
                       % lxc.path)
    agents.append(a)
    r = bastion.admin("POST", "/api/v1/agents/node2/guests/ct1/start")
    assert r.status == 202, r
    j = job_done(bastion, r.json()["job"]["id"])
    assert j["status"] == "refused" and "guest" in j["error"], j
    assert lxc.state("ct1") == "STOPPED"
    # The report still comes (accept is about jobs only).
    wait_for(lambda: any(g["name"] == "ct1" for g in guests(bastion, "node2")),
             60, "node2's report")


def test_agent_stopped_report_goes_stale(make_bastion, agents, lxc):
    b = make_bastion(extra_conf="[agent]\nheartbeat_interval = 5\n").start()
    a = enrolled_agent(b, extra="guests = lxc\nlxc_path = %s\n" % lxc.path)
    agents.append(a)
    n = wait_for(lambda: (lambda n: n if n["received"] else None)(
        b.admin("GET", "/api/v1/agents/node1/guests").json()), 30, "a report")
    assert n["stale"] is False and n["drivers"]["lxc"]["state"] == "ok"
    assert "libvirt" not in n["drivers"]
    a.stop()
    wait_for(lambda: b.admin("GET", "/api/v1/agents/node1/guests").json()
             ["stale"], 40, "the report to go stale")
    r = b.ctl("guests", "list")
    assert r.returncode == 0 and "stale" in r.stderr, r


def test_static_agent_reports_drivers_absent(bastion, agents, lxc):
    """agentd-static cannot load libvirt or liblxc: it runs, and says so."""
    a = enrolled_agent(bastion, name="node3", mac="52:54:00:a0:00:03",
                       binary="agentd-static",
                       extra="lxc_path = %s\n" % lxc.path)
    agents.append(a)
    n = wait_for(lambda: (lambda n: n if n["received"] else None)(
        bastion.admin("GET", "/api/v1/agents/node3/guests").json()), 30,
        "node3's report")
    for d in ("libvirt", "lxc"):
        assert n["drivers"][d]["state"] == "absent", n
        assert "static agentd" in n["drivers"][d]["detail"], n
    assert n["guests"] == []
    r = bastion.admin("POST", "/api/v1/agents/node3/guests/ct1/start")
    j = job_done(bastion, r.json()["job"]["id"])
    assert j["status"] == "failed" and "static agentd" in j["error"], j
    assert a.proc.poll() is None


# --- agentd helper guests (what agentd runs in a transient unit) ----------------

def test_helper_guests_prints_the_report_agentd_sends(bastion, node, lxc, virt):
    """Under systemd the confined agentd gets its guest report from
    `agentd helper guests` (agentd(8), UNDER SYSTEMD): the same report."""
    helper = node.wrap + SANITIZED + [node.binary, "-f", node.conf, "helper"]
    r = subprocess.run(helper + ["guests"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r
    rep = json.loads(r.stdout)
    assert rep["drivers"]["lxc"]["state"] == "ok", rep["drivers"]
    assert rep["drivers"]["libvirt"]["state"] == "ok", rep["drivers"]
    assert sorted(g["name"] for g in rep["guests"]) == \
        sorted(g["name"] for g in guests(bastion))
    r = subprocess.run(helper + ["inventory", "52:54:00:a0:00:01"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r
    inv = json.loads(r.stdout)
    assert inv["mac"] == "52:54:00:a0:00:01" and inv["disks"], inv.keys()
    r = subprocess.run(helper + ["nosuch"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and "internal" in r.stderr, r
