"""The kickstart's %post really installs and enrolls agentd.

A machine is discovered and queued, so bastion mints the install-bound
join token; the kickstart is fetched the way the installer does (dispatch
→ /ks/{mac}?k=…), and its %post sections run with bash inside a chroot
that looks like a minimal freshly installed node: bash, coreutils, curl
and Debian's real systemctl (which enables units offline in a chroot),
with exactly the shared libraries those need and nothing of agentd's.
agentd is then started as systemd would start it (the installed unit's
ExecStart, inside the chroot, in this network namespace): it enrolls with
the token from the kickstart, the machine goes installed → active, and
`bastionctl exec` runs a command on the "node".

The node's MAC (the token is bound to it) is a veth interface with the
default route, which is how agentd finds its MAC on a real node."""
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import drop_bastion, log_tail, new_bastion, wait_machine
from harness import BIN, sample_report

MAC = "52:54:00:e2:0a:01"
DUMMY = "e2enode0"
TOOLS = ["/bin/bash", "/usr/bin/curl", "/usr/bin/systemctl", "/bin/mkdir",
         "/bin/chmod", "/bin/mv", "/bin/cat", "/bin/rm", "/bin/ls",
         "/usr/bin/sha256sum"]


def _ldd(path):
    out = subprocess.run(["ldd", path], capture_output=True, text=True,
                         check=True).stdout
    return re.findall(r"(/\S+) \(0x", out)


def _copy(root, path):
    dst = root + path
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if not os.path.exists(dst):
        shutil.copy2(os.path.realpath(path), dst)


def make_node_root(root):
    """A Fedora-like merged-/usr tree with the tools and their libraries."""
    missing = [t for t in TOOLS if not os.access(t, os.X_OK)]
    assert not missing, "missing %s: run `make deps` (curl, systemd)" % missing
    for d in ("usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "etc", "tmp",
              "var", "run", "proc", "sys", "dev", "root"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"),
                         ("lib", "usr/lib"), ("lib64", "usr/lib64")):
        os.symlink(target, os.path.join(root, link))
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    for tool in TOOLS:
        _copy(root, tool)
        for lib in _ldd(tool):
            _copy(root, lib)
    os.symlink("bash", os.path.join(root, "usr/bin/sh"))
    for name, minor in (("null", 3), ("zero", 5), ("random", 8), ("urandom", 9)):
        os.mknod(os.path.join(root, "dev", name), 0o666 | 0o020000,
                 os.makedev(1, minor))
    with open(os.path.join(root, "etc/os-release"), "w") as f:
        f.write('NAME="Fedora Linux"\nID=fedora\nVERSION_ID=40\n')
    with open(os.path.join(root, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/bash\n")


def mounted_below(root):
    with open("/proc/self/mountinfo") as f:
        return [ln.split()[4] for ln in f if ln.split()[4].startswith(root + "/")]


@pytest.fixture
def node_root():
    """The chroot with /proc and /sys mounted; the processes started in it
    (by PID), the mounts and the directory are removed at teardown, and
    the directory only once nothing is mounted below it."""
    root = tempfile.mkdtemp(prefix="bastion-e2e-node-")
    procs = []
    make_node_root(root)
    subprocess.run(["mount", "-t", "proc", "proc", root + "/proc"], check=True)
    subprocess.run(["mount", "-t", "sysfs", "-o", "ro", "sysfs", root + "/sys"],
                   check=True)
    try:
        yield root, procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for m in reversed(mounted_below(root)):
            subprocess.run(["umount", m])
        left = mounted_below(root)
        assert not left, "still mounted, %s kept: %s" % (root, left)
        shutil.rmtree(root)


@pytest.fixture
def node_mac():
    """A NIC with the node's MAC and the default route (one end of a veth
    pair), in this test namespace (tests/run.sh made it; nothing outside
    it is touched)."""
    subprocess.run(["ip", "link", "add", DUMMY, "address", MAC, "type", "veth",
                    "peer", "name", DUMMY + "p"], check=True)
    try:
        subprocess.run(["ip", "link", "set", DUMMY + "p", "up"], check=True)
        subprocess.run(["ip", "link", "set", DUMMY, "up"], check=True)
        subprocess.run(["ip", "route", "add", "default", "dev", DUMMY], check=True)
        yield MAC
    finally:
        subprocess.run(["ip", "link", "del", DUMMY])


@pytest.fixture
def node_bastion():
    """A bastion whose control listener is on the bridge address, where the
    kickstart tells nodes to enroll (harness bastions listen on loopback)."""
    b = new_bastion()
    with open(b.conf) as f:
        conf = f.read()
    with open(b.conf, "w") as f:
        f.write(conf.replace("listen = 127.0.0.1:%d" % b.control_port,
                             "listen = 10.77.0.1:%d" % b.control_port))
    b.start()
    try:
        yield b
    finally:
        drop_bastion(b)


def post_sections(ks):
    """The bodies of the %post sections, in order."""
    return re.findall(r"^%post\b[^\n]*\n(.*?)^%end$", ks, re.M | re.S)


def queued_kickstart(b, hostname):
    """discovered → queued (bastion mints the install-bound token), then
    the kickstart fetched the way the installer does: dispatch names its
    URL."""
    b.dispatch(MAC)
    assert b.boot("POST", "/api/v1/discover", sample_report(MAC)).status == 200
    r = b.ctl("machines", "install", MAC, "--hostname", hostname,
              "--role", "worker")
    assert r.returncode == 0, r.stderr
    m = re.search(r"inst\.ks=(\S+)", b.dispatch(MAC).text)
    assert m, b.dispatch(MAC).text
    ks = b.boot("GET", "/" + m.group(1).split("://", 1)[1].split("/", 1)[1])
    assert ks.status == 200, ks
    return ks


def test_post_installs_and_enrolls_agentd(node_bastion, node_root, node_mac):
    b = node_bastion
    root, procs = node_root
    # Nothing of agentd's own libraries is on the node.
    names = [n for _, _, ns in os.walk(root + "/usr") for n in ns]
    assert "libcurl.so.4" in names
    assert not [n for n in names if n.startswith(("libjansson", "libinih"))]
    ks = queued_kickstart(b, "e2e-agent.lab")
    wait_machine(b, MAC, state="installing", timeout=10)
    token = re.search(r"^token = ([0-9a-f]{64})$", ks.text, re.M).group(1)
    fp = re.search(r"^ca_fingerprint = (sha256:[0-9a-f]{64})$", ks.text,
                   re.M).group(1)

    posts = post_sections(ks.text)
    assert posts and any("agentd" in p for p in posts)
    env = {"PATH": "/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": "/root", "LANG": "C"}
    for i, body in enumerate(posts):
        with open(os.path.join(root, "tmp", "post-%d.sh" % i), "w") as f:
            f.write(body)
        r = subprocess.run(["chroot", root, "/bin/bash", "/tmp/post-%d.sh" % i],
                           capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 0, "%%post %d: %s\n%s" % (i, r.stdout, r.stderr)
        assert "agentd installed" in r.stdout, r.stdout + r.stderr
    # Progress from %post reached bastion: post, then done → installed.
    row = wait_machine(b, MAC, state="installed", timeout=10)
    ev = b.admin("GET", "/api/v1/machines/%s/events" % MAC).json()
    assert [e["progress"] for e in ev if e["source"] == "progress"][-2:] == [90, 100]

    # agentd came from the boot listener and is the node build.
    agentd = os.path.join(root, "usr/local/sbin/agentd")
    assert os.access(agentd, os.X_OK)
    with open(agentd, "rb") as f, open(os.path.join(BIN, "agentd-static"), "rb") as g:
        assert f.read() == g.read()
    assert re.search(r"GET /boot/agent/agentd\b", b.log()), log_tail(b)
    conf = os.path.join(root, "etc/agentd/agentd.conf")
    assert os.stat(conf).st_mode & 0o777 == 0o600
    text = open(conf).read()
    assert "token = " + token in text and "ca_fingerprint = " + fp in text
    assert "server = https://10.77.0.1:%d" % b.control_port in text
    unit = os.path.join(root, "etc/systemd/system/agentd.service")
    wants = os.path.join(root, "etc/systemd/system/multi-user.target.wants/agentd.service")
    assert os.path.islink(wants), "systemctl enable made no wants link"
    assert os.readlink(wants) == "/etc/systemd/system/agentd.service"

    # First boot: systemd runs ExecStart.
    execstart = re.search(r"^ExecStart=(.+)$", open(unit).read(), re.M).group(1)
    log_path = os.path.join(b.tmp, "node-agentd.log")
    with open(log_path, "wb") as log:
        procs.append(subprocess.Popen(["chroot", root] + shlex.split(execstart),
                                      stdout=log, stderr=subprocess.STDOUT,
                                      env=env))

    def agent_log():
        return open(log_path, errors="replace").read()
    try:
        row = wait_machine(b, MAC, state="active", timeout=60)
    except AssertionError as e:
        raise AssertionError("%s\nagentd:\n%s" % (e, agent_log()[-3000:]))
    assert row["state"] == "active"
    deadline = time.time() + 30
    while not b.admin("GET", "/api/v1/machines/" + MAC).json()["agent"].get(
            "last_heartbeat_at"):
        assert time.time() < deadline, agent_log()[-3000:]
        assert procs[0].poll() is None, agent_log()[-3000:]
        time.sleep(0.2)
    # The node's key stayed in the chroot, private.
    st = os.stat(os.path.join(root, "var/lib/agentd/key.pem"))
    assert st.st_mode & 0o077 == 0
    r = b.ctl("exec", MAC, "--", "cat", "/etc/bastion-release")
    assert r.returncode == 0, (r, agent_log()[-3000:])
    assert r.stdout == "provisioned by bastion 0.1.0 as worker\n"
    r = b.ctl("exec", MAC, "--", "sh", "-c", "exit 3")
    assert r.returncode == 3, r
    # The token was spent by the enrollment.
    toks = b.admin("GET", "/api/v1/tokens").json()
    assert [t["state"] for t in toks if t.get("mac") == MAC] == ["used"]


def test_tampered_agentd_fails_the_install(node_bastion, node_root, node_mac):
    """agentd and its unit come over plain HTTP on a hostile network: the
    kickstart carries their SHA-256 (computed by bastion) and %post checks
    it. Someone who serves another agentd-static (here: the real one with
    one byte changed, from another server on the provisioning network)
    gets the install stopped and reported as failed, and nothing of the
    agent installed."""
    import http.server
    import threading

    b = node_bastion
    root, _ = node_root
    ks = queued_kickstart(b, "e2e-tamper.lab")
    with open(os.path.join(BIN, "agentd-static"), "rb") as f:
        evil = bytearray(f.read())
    evil[len(evil) // 2] ^= 0xff

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(evil)))
            self.end_headers()
            self.wfile.write(bytes(evil))

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("10.77.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        real = "http://10.77.0.1:%d/boot/agent/agentd'" % b.boot_port
        posts = post_sections(ks.text)
        assert any(real in p for p in posts)
        env = {"PATH": "/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": "/root", "LANG": "C"}
        with open(os.path.join(root, "tmp", "post.sh"), "w") as f:
            f.write("\n".join(posts).replace(
                real, "http://10.77.0.1:%d/agentd'" % srv.server_address[1]))
        r = subprocess.run(["chroot", root, "/bin/bash", "/tmp/post.sh"],
                           capture_output=True, text=True, env=env, timeout=120)
    finally:
        srv.shutdown()
        srv.server_close()
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "does not match its SHA-256" in r.stderr
    assert "agentd installed" not in r.stdout
    for path in ("usr/local/sbin/agentd", "usr/local/sbin/agentd.new",
                 "etc/agentd/agentd.conf", "etc/systemd/system/agentd.service"):
        assert not os.path.exists(os.path.join(root, path)), path
    row = wait_machine(b, MAC, state="failed", timeout=10)
    ev = b.admin("GET", "/api/v1/machines/%s/events" % MAC).json()
    assert "SHA-256" in ev[-1]["message"], ev[-1]
    assert row["state"] == "failed"
