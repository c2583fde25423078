"""Containers on nodes (DESIGN §12) against a real Docker engine: Debian's
dockerd, started here with its data root in a temporary directory, no
bridge and no iptables rules (nothing on the host changes), in the test's
network namespace (nsenter into the host's mount namespace: `ip netns exec`
remounts /sys and dockerd then finds no cgroups, LAB.md). Images cannot be
pulled: a busybox image is made with `docker import` of busybox-static.

A real agentd reports the engine over real mTLS and runs the signed
container jobs; bastion and bastionctl are checked against what the
engine's own CLI (/usr/bin/docker) says."""
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time

import pytest

from agents import enrolled_agent, wait_for
from harness import BIN

DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"     # Debian's client, not any other on PATH
IMAGE = "bt-busybox:1"
SECRET = "hunter2-s3cr3t-value"


def outer_mount_ns():
    """The mount namespace `ip netns exec` left: that of the nearest
    ancestor in another one (PID 1's may not be ours to enter)."""
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


class Engine:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="bt-docker-", dir="/tmp")
        self.sock = os.path.join(self.tmp, "docker.sock")
        self.proc = None

    def start(self):
        log = open(os.path.join(self.tmp, "dockerd.log"), "ab")
        net = "/proc/%d/ns/net" % os.getpid()
        self.proc = subprocess.Popen(
            ["nsenter", "--mount=" + outer_mount_ns(), "--net=" + net, DOCKERD,
             "--data-root", os.path.join(self.tmp, "root"),
             "--exec-root", os.path.join(self.tmp, "exec"),
             "--pidfile", os.path.join(self.tmp, "dockerd.pid"),
             "-H", "unix://" + self.sock, "--bridge", "none",
             "--iptables=false", "--ip6tables=false", "--ip-masq=false",
             "--storage-driver", "vfs", "--containerd-namespace", "bt",
             "--containerd-plugins-namespace", "bt-plugins"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        wait_for(lambda: self.run("version", check=False).returncode == 0,
                 60, "dockerd to answer")
        return self

    def run(self, *args, check=True, input=None):
        r = subprocess.run([DOCKER, "-H", "unix://" + self.sock] + list(args),
                           capture_output=True, text=True, input=input,
                           timeout=120)
        if check:
            assert r.returncode == 0, r
        return r

    def make_image(self):
        root = os.path.join(self.tmp, "rootfs")
        os.makedirs(os.path.join(root, "bin"))
        shutil.copy("/bin/busybox", os.path.join(root, "bin", "busybox"))
        for tool in ("sh", "echo", "sleep", "cat", "env", "ls", "true",
                     "false", "seq", "kill", "awk", "stty", "tty"):
            os.symlink("busybox", os.path.join(root, "bin", tool))
        tar = subprocess.run(["tar", "-C", root, "-c", "."],
                             capture_output=True, check=True).stdout
        subprocess.run([DOCKER, "-H", "unix://" + self.sock, "import", "-",
                        IMAGE], input=tar, check=True, capture_output=True)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            ids = self.run("ps", "-aq", check=False).stdout.split()
            if ids:
                self.run("rm", "-f", *ids, check=False)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop()
        subprocess.run(["rm", "-rf", self.tmp])

    def ps(self):
        out = self.run("ps", "-a", "--no-trunc", "--format", "{{json .}}").stdout
        return [json.loads(line) for line in out.splitlines() if line]

    def inspect(self, ref):
        return json.loads(self.run("inspect", ref).stdout)[0]


@pytest.fixture(scope="module")
def engine():
    e = Engine().start()
    try:
        e.make_image()
        yield e
    finally:
        e.cleanup()


@pytest.fixture
def node(bastion, agents, engine):
    """web1 (running, a secret in its env, a label, a volume), idle1
    (created, never started) and an agent reporting them."""
    for c in engine.ps():
        engine.run("rm", "-f", c["ID"])
    engine.run("run", "-d", "--name", "web1", "--network", "none",
               "-e", "DB_PASSWORD=" + SECRET, "-e", "PLAIN=visible",
               "-l", "tier=front", "-v", "web1data:/data", IMAGE,
               "sh", "-c", "echo hello from web1; echo oops >&2; "
               "trap 'exit 0' TERM; while :; do sleep 1; done")
    engine.run("create", "--name", "idle1", "--network", "none", IMAGE,
               "true")
    a = enrolled_agent(bastion, extra="docker_socket = %s\n" % engine.sock)
    agents.append(a)
    wait_for(lambda: len(containers(bastion)) == 2, 30, "the first report")
    return a


def containers(b, target="node1"):
    r = b.admin("GET", "/api/v1/agents/%s/containers" % target)
    assert r.status == 200, r
    return r.json()["containers"]


def report_of(b, name):
    return next((c for c in containers(b) if c["name"] == name), None)


def ctl_json(b, *args):
    r = b.ctl(*args, "--json")
    assert r.returncode == 0, r
    return json.loads(r.stdout)


# --- monitoring ------------------------------------------------------------

def test_list_matches_docker_ps_field_for_field(bastion, node, engine):
    listed = {c["name"]: c for c in ctl_json(bastion, "containers", "list")}
    ps = engine.ps()
    assert sorted(listed) == sorted(p["Names"] for p in ps)
    for p in ps:
        c = listed[p["Names"]]
        assert c["id"] == p["ID"]
        assert c["image"] == p["Image"]
        assert c["state"] == p["State"]
        assert c["command"] == json.loads(p["Command"])
        labels = dict(kv.split("=", 1) for kv in p["Labels"].split(",") if kv)
        assert c["labels"] == labels
        assert sorted(m["name"] or m["source"] for m in c["mounts"]) == \
            sorted(x for x in p["Mounts"].split(",") if x)
        assert ",".join(n["name"] for n in c["networks"]) == p["Networks"]
        # Status moves with time ("Up 2 seconds"): its kind is the same.
        assert c["status"].split()[0] == p["Status"].split()[0]
        assert c["hostname"] == "node1" and c["stale"] is False
    ins = engine.inspect("web1")
    # The stats: sampled while the engine is quiet, then reported.
    wait_for(lambda: (report_of(bastion, "web1") or {}).get("stats"), 30,
             "a stats sample of web1")
    web = report_of(bastion, "web1")
    assert web["restart_count"] == ins["RestartCount"]
    assert web["health"] is None
    assert web["started_at"] == ins["State"]["StartedAt"]
    assert web["stats"]["memory_bytes"] > 0
    # The text listing: one line per container with its node.
    r = bastion.ctl("containers", "list", "node1")
    assert r.returncode == 0, r
    assert re.search(r"node1\s+web1\s+%s\s+%s\s+running" % (ins["Id"][:12], IMAGE),
                     r.stdout), r.stdout
    assert re.search(r"node1\s+idle1\s+\w{12}\s+%s\s+created" % IMAGE, r.stdout)


def test_env_secrets_are_masked_before_they_leave_the_node(bastion, node):
    shown = ctl_json(bastion, "containers", "show", "node1", "web1")
    assert "DB_PASSWORD=********" in shown["env"]
    assert "PLAIN=visible" in shown["env"]
    r = bastion.ctl("containers", "inspect", "node1", "web1")
    assert r.returncode == 0, r
    env = json.loads(r.stdout)["Config"]["Env"]
    assert "DB_PASSWORD=********" in env and "PLAIN=visible" in env
    # Nowhere in bastion: not in its database (any table, WAL included),
    # not in its log.
    bastion.admin("GET", "/api/v1/containers")
    for name in os.listdir(bastion.state):
        path = os.path.join(bastion.state, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                assert SECRET.encode() not in f.read(), path
    assert SECRET not in bastion.log()


def test_change_is_pushed_without_waiting_for_the_interval(bastion, node, engine):
    engine.run("run", "-d", "--name", "late1", "--network", "none", IMAGE,
               "sleep", "1000")
    # The heartbeat interval is 30 s: a change is reported well before.
    start = time.time()
    wait_for(lambda: report_of(bastion, "late1"), 15, "late1 in the report")
    assert time.time() - start < 15
    engine.run("stop", "-t", "0", "late1")
    wait_for(lambda: (report_of(bastion, "late1") or {}).get("state") == "exited",
             15, "late1 exited in the report")


# --- actions -----------------------------------------------------------------

def test_actions_change_the_real_engine(bastion, node, engine):
    def state():
        return engine.inspect("web1")["State"]

    r = bastion.ctl("containers", "stop", "node1", "web1", "--timeout", "5")
    assert r.returncode == 0 and re.match(r"node1/web1: stopped \(job \d+\)",
                                          r.stdout), r
    assert state()["Status"] == "exited"
    wait_for(lambda: report_of(bastion, "web1")["state"] == "exited", 15,
             "the report to show web1 exited")
    r = bastion.ctl("containers", "stop", "node1", "web1")
    assert r.returncode == 0 and "already stopped" in r.stdout, r
    assert bastion.ctl("containers", "start", "node1", "web1").returncode == 0
    assert state()["Running"] is True
    assert bastion.ctl("containers", "pause", "node1", "web1").returncode == 0
    assert state()["Paused"] is True
    assert bastion.ctl("containers", "unpause", "node1", "web1").returncode == 0
    assert state()["Paused"] is False
    started = state()["StartedAt"]
    assert bastion.ctl("containers", "restart", "node1", "web1",
                       "--timeout", "2").returncode == 0
    assert state()["Running"] and state()["StartedAt"] != started
    r = bastion.ctl("containers", "kill", "node1", "web1", "--signal", "KILL")
    assert r.returncode == 0, r
    assert state()["Status"] == "exited" and state()["ExitCode"] == 137
    # A state the engine refuses: failed with its message, exit 1.
    try:
        r = bastion.ctl("containers", "pause", "node1", "web1")
    except subprocess.TimeoutExpired:
        raise AssertionError(node.log()[-3000:] + bastion.log()[-3000:])
    assert r.returncode == 1 and "is not running" in r.stderr, r
    r = bastion.ctl("containers", "remove", "node1", "idle1")
    assert r.returncode == 0 and "removed" in r.stdout, r
    assert engine.run("inspect", "idle1", check=False).returncode != 0
    # Unknown container: the engine says so.
    r = bastion.ctl("containers", "start", "node1", "nosuch")
    assert r.returncode == 1 and "No such container" in r.stderr, r


def test_every_action_is_audited_with_node_and_container(bastion, node):
    assert bastion.ctl("containers", "pause", "node1", "web1").returncode == 0
    assert bastion.ctl("containers", "unpause", "node1", "web1").returncode == 0
    rows = json.loads(bastion.ctl("audit", "list", "--json").stdout)
    agent = bastion.admin("GET", "/api/v1/agents/node1").json()["id"]
    for action in ("container.pause", "container.unpause"):
        row = next(r for r in rows if r["action"] == action)
        assert row["target"] == "%s/web1" % agent and row["result"] == "ok", row
    assert bastion.ctl("containers", "stop", "node1", "web1", "--timeout",
                       "3").returncode == 0
    rows = json.loads(bastion.ctl("audit", "list", "--json").stdout)
    row = next(r for r in rows if r["action"] == "container.stop")
    assert row["target"] == "%s/web1" % agent and row["detail"] == '{"timeout":3}'
    jobs = bastion.admin("GET", "/api/v1/jobs").json()
    assert sum(1 for j in jobs if j["kind"] == "container") == 3


def test_logs_and_exec_return_real_output_and_exit_codes(bastion, node, engine):
    r = bastion.ctl("containers", "logs", "node1", "web1")
    assert r.returncode == 0, r
    assert "hello from web1" in r.stdout and "oops" in r.stderr
    assert r.stdout == engine.run("logs", "web1").stdout
    engine.run("run", "--name", "many", "--network", "none", IMAGE,
               "seq", "1", "500")
    r = bastion.ctl("containers", "logs", "node1", "many", "--tail", "3")
    assert r.returncode == 0 and r.stdout == "498\n499\n500\n", r
    r = bastion.ctl("containers", "exec", "node1", "web1", "--", "sh", "-c",
                    "echo out; echo err >&2; exit 7")
    assert r.returncode == 7, r
    assert r.stdout == "out\n" and r.stderr == "err\n"
    r = bastion.ctl("containers", "exec", "node1", "web1", "cat", "/nonexistent")
    assert r.returncode == 1 and "No such file" in r.stderr, r


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


def read_until(fd, pattern, timeout=30):
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
    raise AssertionError("never saw %r in %r" % (pattern, seen))


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


def test_exec_it_is_an_interactive_tty(bastion, node, engine):
    pid, fd = pty_session(bastion, "containers", "exec", "-it", "node1", "web1",
                          "--", "sh")
    try:
        read_until(fd, rb"Ctrl-\] leaves")
        os.write(fd, b"tty; echo answer-$((6*7))\r")
        try:
            out = read_until(fd, rb"answer-42")
        except AssertionError as e:
            raise AssertionError(str(e) + node.log()[-2500:] + bastion.log()[-2500:])
        assert b"/dev/pts/" in out, out      # a real TTY in the container
        # The terminal's size reached the process.
        os.write(fd, b"stty size\r")
        read_until(fd, rb"33 101")
        os.write(fd, b"exit 5\r")
        assert wait_exit(pid) == 5
    finally:
        os.close(fd)
    # Ctrl-] leaves at once, exit 0, whatever runs.
    pid, fd = pty_session(bastion, "containers", "exec", "-it", "node1", "web1",
                          "--", "sh")
    try:
        read_until(fd, rb"Ctrl-\] leaves")
        os.write(fd, b"echo ready\r")
        read_until(fd, rb"ready")
        os.write(fd, b"\x1d")
        read_until(fd, rb"left the session")
        assert wait_exit(pid) == 0
    finally:
        os.close(fd)
    # Without a terminal (a pipe): the same stream, input then its end.
    r = bastion.ctl("containers", "exec", "--tty", "node1", "web1", "--", "sh",
                    input="echo piped-$((1+1))\nexit 3\n")
    assert r.returncode == 3 and "piped-2" in r.stdout, r
    # Someone else cannot read or write another's stream.
    job = bastion.admin("POST", "/api/v1/agents/node1/containers/web1/exec",
                        {"argv": ["sh"], "tty": True}).json()
    sid = job["stream"]
    assert bastion.control("GET", "/api/v1/streams/%s/output" % sid).status == 404
    assert bastion.control("POST", "/api/v1/streams/%s/input" % sid,
                           {"close": True}).status == 404
    assert bastion.admin("POST", "/api/v1/streams/%s/input" % sid,
                         {"close": True}).status == 200


def test_logs_follow_streams_until_the_container_ends(bastion, node, engine):
    engine.run("run", "-d", "--name", "ticker", "--network", "none", IMAGE,
               "sh", "-c", "for i in 1 2 3 4 5 6; do echo tick $i; sleep 1; done")
    env = dict(os.environ, BASTION_SOCKET=bastion.admin_sock)
    p = subprocess.Popen([os.path.join(BIN, "bastionctl"), "containers", "logs",
                          "node1", "ticker", "--follow"], env=env,
                         stdout=subprocess.PIPE, text=True)
    first = p.stdout.readline()
    t0 = time.time()
    assert first.startswith("tick "), first
    rest = p.stdout.read()
    assert p.wait(timeout=30) == 0
    # Streamed: the first line came while the container still ran.
    assert time.time() - t0 > 1.5
    assert rest.rstrip().endswith("tick 6")


def test_bad_refs_are_refused_on_both_sides(bastion, node, engine):
    before = engine.inspect("web1")["State"]
    for ref in ("a;b", "-x", "a" * 200, "..", "a b"):
        r = bastion.admin("POST", "/api/v1/agents/node1/containers/%s/stop"
                          % ref.replace(" ", "%20"))
        assert 400 <= r.status < 500, (ref, r)
        r = bastion.ctl("containers", "stop", "node1", "--", ref)
        assert r.returncode == 1 and "is not a container" in r.stderr, (ref, r)
    r = bastion.admin("POST", "/api/v1/agents/node1/containers/../x/stop")
    assert 400 <= r.status < 500, r
    r = bastion.admin("POST", "/api/v1/agents/node1/containers/..%2Fx/stop")
    assert 400 <= r.status < 500, r
    r = bastion.admin("GET", "/api/v1/agents/node1/containers/a;b")
    assert r.status == 422, r
    # Options that are not the action's, or out of range: 422.
    r = bastion.admin("POST", "/api/v1/agents/node1/containers/web1/stop",
                      {"argv": ["sh"]})
    assert r.status == 422, r
    r = bastion.admin("POST", "/api/v1/agents/node1/containers/web1/kill",
                      {"signal": "TERM; rm"})
    assert r.status == 422, r
    assert engine.inspect("web1")["State"] == before


def test_generic_job_route_refuses_container_jobs(bastion, node, engine):
    """Container jobs are made only by the container routes (which check
    the ref and the options); the agent checks the ref again itself
    (agentd/container.c with lib/container.c, tests/unit/test_container.c)."""
    agent = bastion.admin("GET", "/api/v1/agents/node1").json()["id"]
    r = bastion.admin("POST", "/api/v1/jobs", {"target": agent,
                      "kind": "container", "args": {"action": "stop",
                                                    "ref": "../x"}})
    # bastion's generic job route does not take container jobs at all.
    assert r.status == 422, r


def test_viewer_lists_but_cannot_act(bastion, node, engine):
    bastion.add_user("vera", "viewer", "viewer-password-1")
    s = bastion.login("vera", "viewer-password-1")
    r = s.request("GET", "/api/v1/containers")
    assert r.status == 200 and len(r.json()[0]["containers"]) == 2
    assert s.request("GET", "/api/v1/agents/node1/containers/web1").status == 200
    for action in ("stop", "remove", "logs", "exec"):
        r = s.request("POST", "/api/v1/agents/node1/containers/web1/" + action,
                      {"argv": ["true"]} if action == "exec" else None)
        assert r.status == 403, (action, r)
    tok = bastion.make_token("vera", "read")
    assert bastion.control("GET", "/api/v1/containers", auth=tok).status == 200
    r = bastion.control("POST", "/api/v1/agents/node1/containers/web1/stop",
                        auth=tok)
    assert r.status == 403, r
    assert engine.inspect("web1")["State"]["Running"] is True


def test_production_mode_remove_names_the_container(bastion, node, engine):
    assert bastion.ctl("settings", "set", "production", "on").returncode == 0
    r = bastion.admin("POST", "/api/v1/agents/node1/containers/idle1/remove")
    assert r.status == 428 and "X-Confirm: idle1" in r.json()["error"]["message"], r
    r = bastion.admin("POST", "/api/v1/agents/node1/containers/idle1/remove",
                      headers={"X-Confirm": "node1"})
    assert r.status == 428, r
    r = bastion.ctl("--confirm", "web1", "containers", "remove", "node1", "idle1")
    assert r.returncode == 1
    assert engine.run("inspect", "idle1", check=False).returncode == 0
    r = bastion.ctl("--confirm", "idle1", "containers", "remove", "node1", "idle1")
    assert r.returncode == 0, r
    assert engine.run("inspect", "idle1", check=False).returncode != 0
    # Other actions need no confirmation.
    assert bastion.ctl("containers", "pause", "node1", "web1").returncode == 0
    assert bastion.ctl("settings", "set", "production", "off").returncode == 0


# --- failure modes -------------------------------------------------------------

def test_engine_stopped_shows_unreachable_and_agent_keeps_running(
        bastion, agents, tmp_path):
    e = Engine().start()
    try:
        a = enrolled_agent(bastion, extra="docker_socket = %s\n" % e.sock)
        agents.append(a)
        wait_for(lambda: (bastion.admin("GET", "/api/v1/agents/node1/containers")
                          .json()["engine"] or {}).get("reachable"), 30,
                 "a reachable engine")
        e.stop()
        n = wait_for(lambda: (lambda n: n if n["engine"]["reachable"] is False
                              else None)(bastion.admin(
                                  "GET", "/api/v1/agents/node1/containers").json()),
                     30, "the engine shown unreachable")
        assert n["engine"]["error"] and n["containers"] == []
        r = bastion.ctl("containers", "list", "node1")
        assert r.returncode == 0 and "unreachable" in r.stderr, r
        assert a.proc.poll() is None
        # Its heartbeats go on.
        hb = bastion.admin("GET", "/api/v1/agents/node1").json()["last_heartbeat_at"]
        assert bastion.admin("GET", "/api/v1/agents/node1").json()["stale"] is False
        assert hb
    finally:
        e.cleanup()


def test_agent_stopped_report_goes_stale(make_bastion, agents, engine):
    b = make_bastion(extra_conf="[agent]\nheartbeat_interval = 5\n").start()
    a = enrolled_agent(b, extra="docker_socket = %s\n" % engine.sock)
    agents.append(a)
    wait_for(lambda: b.admin("GET", "/api/v1/agents/node1/containers").json()
             ["reported_at"], 30, "a report")
    assert b.admin("GET", "/api/v1/containers").json()[0]["stale"] is False
    a.stop()
    n = wait_for(lambda: (lambda n: n if n["stale"] else None)(
        b.admin("GET", "/api/v1/agents/node1/containers").json()), 40,
        "the report to go stale")
    assert n["age_s"] >= 15
    r = b.ctl("containers", "list")
    assert "stale" in r.stderr, r


# --- the panel ---------------------------------------------------------------

def test_containers_page_in_a_browser(bastion, node, engine, agents):
    from test_panel import USERS, browser
    for role, (name, pw) in USERS.items():
        bastion.add_user(name, role, pw)
    engine.run("run", "--name", "chatty", "--network", "none", IMAGE, "awk",
               'BEGIN { for (i = 1; i <= 30000; i++) print "line " i }')
    # A node whose engine cannot be reached: its socket is no socket.
    bad = os.path.join(bastion.tmp, "not-a-socket")
    open(bad, "w").close()
    agents.append(enrolled_agent(bastion, name="node2", mac="52:54:00:a0:00:02",
                                 extra="docker_socket = %s\n" % bad))
    wait_for(lambda: (bastion.admin("GET", "/api/v1/agents/node2/containers")
                      .json()["engine"] or {}).get("reachable") is False, 30,
             "node2's engine unreachable")
    wait_for(lambda: report_of(bastion, "chatty"), 15, "chatty in the report")

    def on_step(name):
        running = engine.inspect("web1")["State"]["Running"]
        assert running is (name == "started"), (name, running)

    from harness import ROOT
    art = os.path.join(ROOT, "build", "artifacts", "panel-containers")
    err = browser("containers.mjs", bastion, art, USERS, on_step, NODE="node1",
                  BADNODE="node2")
    print(err)
