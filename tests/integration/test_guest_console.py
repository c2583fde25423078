"""A guest's console through bastion (DESIGN §13): a real LXC guest
(`lxc-create -t busybox` under a temporary lxcpath, no network) and a real
libvirt VM (`type='qemu'`, TCG, booting the discovery kernel with
console=ttyS0), their consoles relayed by a real agentd over the
agent-initiated stream to bastionctl on a pseudo-terminal. One session
per guest unless forced; every session audited with its duration."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

from agents import enrolled_agent, job_done, wait_for
from harness import BIN

LXC_TEMPLATE = "busybox"
# The discovery kernel of this checkout (make image, a prerequisite of
# make test and make integration).
KERNEL = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "build", "images", "discovery", "vmlinuz")
VIRSH = ["virsh", "-c", "qemu:///system"]


def run(*args, check=True, timeout=120):
    r = subprocess.run(list(args), capture_output=True, text=True,
                       timeout=timeout)
    if check:
        assert r.returncode == 0, r
    return r


@pytest.fixture(scope="module")
def lxc_guest(host_lock):
    """A running busybox guest (its console: /bin/sh after Enter) in its
    own lxcpath: (lxcpath, name)."""
    path = tempfile.mkdtemp(prefix="bt-lxc-", dir="/tmp")
    name = "bt-con-%s" % uuid.uuid4().hex[:6]
    try:
        run("lxc-create", "-t", LXC_TEMPLATE, "-n", name, "-P", path)
        conf = os.path.join(path, name, "config")
        with open(conf) as f:
            lines = [l for l in f.read().splitlines()
                     if not l.startswith(("lxc.net.0.", "lxc.apparmor."))]
        lines += ["lxc.net.0.type = empty",
                  "lxc.apparmor.profile = unconfined"]
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        run("lxc-start", "-n", name, "-P", path)
        wait_for(lambda: "RUNNING" in run("lxc-info", "-n", name, "-P", path,
                                          check=False).stdout, 30,
                 "the LXC guest to run")
        yield path, name
    finally:
        run("lxc-stop", "-k", "-n", name, "-P", path, check=False)
        run("lxc-destroy", "-n", name, "-P", path, check=False)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def node(bastion, agents, lxc_guest):
    a = enrolled_agent(bastion, extra="lxc_path = %s\n" % lxc_guest[0])
    agents.append(a)
    return a


def pty_session(bastion, *args):
    """bastionctl on a pseudo-terminal: (pid, master fd)."""
    import pty
    env = dict(os.environ, BASTION_SOCKET=bastion.admin_sock, TERM="xterm")
    pid, fd = pty.fork()
    if pid == 0:
        import fcntl
        import struct
        import termios
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
        os.execve(os.path.join(BIN, "bastionctl"),
                  ["bastionctl"] + list(args), env)
    return pid, fd


def read_until(fd, pattern, timeout=30, what=""):
    import select
    seen = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
            if re.search(pattern, seen):
                return seen
    raise AssertionError("never saw %r in %r%s" % (pattern, seen, what))


def wait_exit(pid, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError("bastionctl did not end")


def audit_rows(bastion, prefix="guest.console"):
    rows = json.loads(bastion.ctl("audit", "list", "--json").stdout)
    return [r for r in rows if r["action"].startswith(prefix)]


def test_lxc_console_types_a_command_and_is_one_session_at_a_time(
        bastion, node, lxc_guest):
    _, guest = lxc_guest
    logs = lambda: "\n--- agentd:\n" + node.log()[-2500:] + \
        "\n--- bastion:\n" + bastion.log()[-2500:]
    pid, fd = pty_session(bastion, "guests", "console", "node1", guest)
    try:
        read_until(fd, rb"Ctrl-\] leaves", what=logs())
        # busybox's init asks for Enter on the console, then runs sh.
        os.write(fd, b"\r")
        time.sleep(0.3)
        os.write(fd, b"echo answer-$((6*7)); tty\r")
        out = read_until(fd, rb"answer-42", what=logs())
        # A second session is refused while this one is open ...
        r = bastion.ctl("guests", "console", "node1", guest, input="")
        assert r.returncode == 1 and "console" in r.stderr, r
        r = bastion.admin("POST", "/api/v1/agents/node1/guests/%s/console"
                          % guest, {"rows": 24, "cols": 80})
        assert r.status == 409 and r.json()["error"]["code"] == \
            "console_busy", r
        # ... and takes it over when forced: the first one is told.
        pid2, fd2 = pty_session(bastion, "guests", "console", "--force",
                                "node1", guest)
        try:
            read_until(fd, rb"ended on bastion", what=logs())
            assert wait_exit(pid) == 1
            read_until(fd2, rb"Ctrl-\] leaves", what=logs())
            os.write(fd2, b"echo second-$((1+2))\r")
            read_until(fd2, rb"second-3", what=logs())
            os.write(fd2, b"\x1d")
            read_until(fd2, rb"left the session")
            assert wait_exit(pid2) == 0
        finally:
            os.close(fd2)
    finally:
        os.close(fd)
    assert b"answer-42" in out
    # Free again once left.
    r = bastion.admin("POST", "/api/v1/agents/node1/guests/%s/console" % guest,
                      {})
    assert r.status == 202, r
    sid = r.json()["stream"]
    assert r.json()["job"]["kind"] == "guest"
    assert bastion.admin("POST", "/api/v1/streams/%s/input" % sid,
                         {"close": True}).status == 200
    job_done(bastion, r.json()["job"]["id"])
    agent = bastion.admin("GET", "/api/v1/agents/node1").json()["id"]
    rows = audit_rows(bastion)
    opened = [r for r in rows if r["action"] == "guest.console"]
    ended = [r for r in rows if r["action"] == "guest.console.end"]
    # Opened: the first, the forced one, the API's; the refused ones are
    # rows too, with their error.
    assert [r["result"] for r in opened].count("ok") == 3, opened
    assert [r["result"] for r in opened].count("error") == 2, opened
    assert all(r["target"] == "%s/%s" % (agent, guest) for r in rows), rows
    wait_for(lambda: len(audit_rows(bastion, "guest.console.end")) == 3, 30,
             "three session ends")
    ended = audit_rows(bastion, "guest.console.end")
    by = sorted(json.loads(r["detail"])["ended_by"] for r in ended)
    assert by == ["forced", "operator", "operator"], ended
    for r in ended:
        d = json.loads(r["detail"])
        assert isinstance(d["duration_ms"], int) and d["duration_ms"] >= 0, r
        assert r["actor"] and r["result"] == "ok", r
    # The forced session lasted as long as it was open: seconds, not 0.
    forced = next(r for r in ended
                  if json.loads(r["detail"])["ended_by"] == "forced")
    assert json.loads(forced["detail"])["duration_ms"] > 200, forced


def test_static_agent_runs_the_node_console_tool(bastion, agents, lxc_guest):
    """agentd-static cannot load liblxc: it relays lxc-console on a pty,
    with the operator's Ctrl-a kept from lxc-console's escape."""
    path, guest = lxc_guest
    a = enrolled_agent(bastion, extra="lxc_path = %s\n" % path,
                       binary="agentd-static")
    agents.append(a)
    logs = lambda: "\n--- agentd:\n" + a.log()[-2500:]
    pid, fd = pty_session(bastion, "guests", "console", "node1", guest)
    try:
        read_until(fd, rb"Ctrl-\] leaves", what=logs())
        os.write(fd, b"\r")
        os.write(fd, b"echo static-$((2+3))\r")
        read_until(fd, rb"static-5", what=logs())
        # Ctrl-a then q: for lxc-console that would be "leave"; here the
        # guest gets them (q at the start of the line: not a command).
        os.write(fd, b"x\x01q\r")
        os.write(fd, b"echo still-$((3+4))\r")
        read_until(fd, rb"still-7", what=logs())
        os.write(fd, b"\x1d")
        read_until(fd, rb"left the session")
        assert wait_exit(pid) == 0
    finally:
        os.close(fd)


def test_console_rules(bastion, node, lxc_guest):
    _, guest = lxc_guest
    r = bastion.admin("POST", "/api/v1/agents/node1/guests/bad%20name/console",
                      {})
    assert r.status == 422 and r.json()["error"]["code"] == "bad_guest", r
    r = bastion.admin("POST", "/api/v1/agents/node1/guests/%s/console" % guest,
                      {"rows": 0})
    assert r.status == 422, r
    r = bastion.admin("POST", "/api/v1/agents/node1/guests/%s/console" % guest,
                      {"shell": True})
    assert r.status == 422, r
    assert bastion.ctl("guests", "console", "node1", "-bad").returncode == 2
    bastion.add_user("vera", "viewer", "viewer-password-1")
    s = bastion.login("vera", "viewer-password-1")
    r = s.request("POST", "/api/v1/agents/node1/guests/%s/console" % guest, {})
    assert r.status == 403, r
    # A guest the node does not have: the job fails and says why, in the
    # terminal too.
    r = bastion.ctl("guests", "console", "node1", "no-such-guest", input="")
    assert r.returncode == 1 and "no-such-guest" in r.stdout + r.stderr, r
    # That session, too, is over in the audit: the node ended it.
    wait_for(lambda: any(json.loads(x["detail"])["ended_by"] == "node" and
                         x["target"].endswith("/no-such-guest")
                         for x in audit_rows(bastion, "guest.console.end")),
             30, "the failed session's end row")
    # bastion's generic job route does not make guest jobs.
    r = bastion.admin("POST", "/api/v1/jobs", {"target": "node1",
                                                "kind": "guest"})
    assert r.status == 422, r


# --- a VM's serial console through libvirt ------------------------------

class Libvirt:
    """The system libvirtd when one answers, else one started here (and
    stopped afterwards)."""

    def __init__(self):
        self.started = []

    def up(self):
        if run(*VIRSH, "version", check=False).returncode == 0:
            return self
        for d in ("virtlogd", "libvirtd"):
            pidf = tempfile.mktemp(prefix="bt-%s-" % d, suffix=".pid")
            run(d, "-d", "-p", pidf)
            self.started.append(pidf)
        wait_for(lambda: run(*VIRSH, "version", check=False).returncode == 0,
                 30, "libvirtd to answer")
        return self

    def down(self):
        for pidf in reversed(self.started):
            try:
                with open(pidf) as f:
                    os.kill(int(f.read().strip()), signal.SIGTERM)
            except (OSError, ValueError):
                pass


@pytest.fixture
def vm(host_lock, tmp_path):
    if not os.path.exists(KERNEL):
        pytest.fail("no discovery kernel at %s (make image)" % KERNEL)
    lv = Libvirt().up()
    d = tempfile.mkdtemp(prefix="bt-vm-", dir="/tmp")
    os.chmod(d, 0o755)
    kernel = os.path.join(d, "vmlinuz")
    shutil.copy(KERNEL, kernel)
    os.chmod(kernel, 0o644)
    name = "bastion-test-%s" % uuid.uuid4().hex[:8]
    xml = os.path.join(d, "dom.xml")
    with open(xml, "w") as f:
        f.write("""<domain type='qemu'>
  <name>%s</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>%s</kernel>
    <cmdline>console=ttyS0 panic=0</cmdline></os>
  <on_poweroff>destroy</on_poweroff><on_crash>destroy</on_crash>
  <devices><serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/></devices>
</domain>""" % (name, kernel))
    try:
        run(*VIRSH, "define", xml)
        run(*VIRSH, "start", "--paused", name)
        yield name
    finally:
        run(*VIRSH, "destroy", name, check=False)
        run(*VIRSH, "undefine", name, check=False)
        shutil.rmtree(d, ignore_errors=True)
        lv.down()


@pytest.mark.parametrize("binary", ["agentd", "agentd-static"])
def test_vm_serial_console_through_the_stream(bastion, agents, vm, binary):
    """agentd through libvirt's API; agentd-static through virsh console."""
    a = enrolled_agent(bastion, extra="lxc_path = /nonexistent\n",
                       binary=binary)
    agents.append(a)
    r = bastion.admin("POST", "/api/v1/agents/node1/guests/%s/console" % vm,
                      {"rows": 24, "cols": 80})
    assert r.status == 202, r
    sid = r.json()["stream"]
    out = b""
    import base64
    # The agent has the console once its side of the stream is there.
    def attached():
        global_out = bastion.admin("GET", "/api/v1/streams/%s/output?wait=1"
                                   % sid).json()
        return global_out["attached"] or global_out["ended"]
    wait_for(attached, 30, "the agent to open the console")
    run(*VIRSH, "resume", vm)
    deadline = time.time() + 60
    while time.time() < deadline and b"Linux version" not in out:
        o = bastion.admin("GET", "/api/v1/streams/%s/output?wait=5" % sid,
                          timeout=15).json()
        out += base64.b64decode(o["data"])
        assert not o["ended"], (out, a.log()[-2000:])
    assert b"Linux version" in out, (out[-2000:], a.log()[-2000:])
    assert bastion.admin("POST", "/api/v1/streams/%s/input" % sid,
                         {"close": True}).status == 200
    job = job_done(bastion, r.json()["job"]["id"])
    assert job["status"] == "done", job
    ended = audit_rows(bastion, "guest.console.end")
    assert len(ended) == 1 and json.loads(ended[0]["detail"])["ended_by"] == \
        "operator", ended


# --- the panel -------------------------------------------------------------

def test_guests_page_and_console_in_a_browser(bastion, node, lxc_guest):
    from test_panel import USERS, browser
    from harness import ROOT
    _, guest = lxc_guest
    for role, (name, pw) in USERS.items():
        bastion.add_user(name, role, pw)
    agent = bastion.admin("GET", "/api/v1/agents/node1").json()["id"]
    env = {"NODE": "node1", "GUEST": guest, "SNAPSHOT": "before-test"}
    # A real snapshot through a signed job (the agent stops the running
    # guest for it and starts it again), then the page reads the node's
    # real report.
    r = bastion.ctl("guests", "snapshot", "node1", guest, "before-test", timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr)

    def reported():
        g = bastion.admin("GET", "/api/v1/agents/%s/guests/%s" % (agent, guest))
        if g.status != 200:
            return False
        g = g.json()["guest"]
        return g["state"] == "running" and \
            [x["name"] for x in g["snapshots"]] == ["before-test"]
    wait_for(reported, 60, "the snapshot and the running guest in the node's report")
    art = os.path.join(ROOT, "build", "artifacts", "panel-guests")
    browser("guests.mjs", bastion, art, USERS, None, **env)
    wait_for(lambda: any(json.loads(r["detail"])["ended_by"] == "operator"
                         and r["actor"] == USERS["operator"][0]
                         for r in audit_rows(bastion, "guest.console.end")),
             30, "the page's session to end, audited")
