"""agentd.service under a real systemd (DESIGN §15, issue #16).

The Debian 12 root of the OS image (build/image-cache/os-debian-12-root,
`make image`) boots as a container (systemd-nspawn -b, a throwaway
overlay over the root) that shares this test's network namespace, with
this checkout's agentd and appliance/agentd.service installed. agentd
enrolls against the test's bastion and runs confined; then:

- `systemd-analyze security agentd.service` there rates it ≤ 3.0 (the
  score is printed with the e2e timings);
- agentd itself has no capabilities and a read-only system;
- exec jobs run in transient units (agentd-job-ID.service) with root's
  full rights, and their output, exit codes, signals, timeouts and
  failures to start are those of the same jobs on an agentd outside
  systemd (its own children), job for job;
- a reboot job's command and smartctl run outside the sandbox too, and
  an inventory job's disk probe (`agentd helper inventory`) reaches
  bastion.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from agents import Agent, fingerprint, job_done, token, wait_for
from conftest import record_timing
from harness import BIN, ROOT

# The image's root is the plain build's (BASTION_BUILD may be the ASan
# build's binaries).
OS_ROOT = os.path.join(ROOT, "build", "image-cache", "os-debian-12-root")
MAC = "52:54:00:e2:0b:01"
PLAIN_MAC = "52:54:00:e2:0b:02"
GOAL = 3.0

# Both record what they ran as: the capabilities they had, their control
# group, and whether / was writable for them (/run is, outside the unit).
FAKE = """#!/bin/sh
{ grep CapEff /proc/self/status; cat /proc/self/cgroup; } > /run/%s.txt
%s
"""
SMART_JSON = ('echo \'{"smart_status": {"passed": true}, "temperature": '
              '{"current": 31}, "model_name": "FAKE DISK"}\'')


# `ip netns exec` mounts a sysfs of its own, without /sys/fs/cgroup's
# hierarchies: nspawn gets them back (cgroup2 beside the named systemd
# one, as on the host) in a mount namespace of its own.
CGROUPS = """set -e
mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
mkdir /sys/fs/cgroup/unified /sys/fs/cgroup/systemd
mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified
mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
exec "$@"
"""


class Container:
    """A systemd booted in a container over OS_ROOT, removed at cleanup."""

    def __init__(self, tmp, binds, ro_binds):
        self.log_path = os.path.join(tmp, "nspawn.log")
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                CGROUPS, "sh", "systemd-nspawn", "--quiet", "--keep-unit", "--register=no",
                "--volatile=overlay", "--console=pipe", "-D", OS_ROOT, "-b"]
        argv += ["--bind=%s:%s" % b for b in binds]
        argv += ["--bind-ro=%s:%s" % b for b in ro_binds]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        self.leader = wait_for(self._leader, 60, "the container's init")

    def _leader(self):
        assert self.proc.poll() is None, self.log()
        try:
            with open("/proc/%d/task/%d/children" % (self.proc.pid,
                                                      self.proc.pid)) as f:
                kids = f.read().split()
        except OSError:
            return None
        for k in kids:	# nspawn's own helpers come and go first
            try:
                with open("/proc/%s/comm" % k) as f:
                    if f.read().strip() == "systemd":
                        return int(k)
            except OSError:
                pass
        return None

    def run(self, *argv, timeout=60, check=True):
        r = subprocess.run(["nsenter", "-t", str(self.leader), "-m", "-u",
                            "-i", "-p", "--", "/usr/bin/env", "-i",
                            "PATH=/usr/sbin:/usr/bin:/sbin:/bin"] + list(argv),
                           capture_output=True, text=True, timeout=timeout)
        if check:
            assert r.returncode == 0, r
        return r

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()	# nspawn: a clean shutdown of the container
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(params=("agentd", "agentd-static"))
def node(request, e2e_bastion):
    """(bastion, container, build) with agentd.service enrolled and
    running: each agentd build in turn (agentd-static is what the
    kickstart installs, agentd what image installs get)."""
    assert os.path.isdir(os.path.join(OS_ROOT, "usr", "lib", "systemd")), \
        "%s is not built: run `make image`" % OS_ROOT
    assert shutil.which("systemd-nspawn"), "systemd-nspawn is missing (make deps)"
    b = e2e_bastion()
    tmp = tempfile.mkdtemp(prefix="agentd-unit-")
    etc = os.path.join(tmp, "etc-agentd")
    os.mkdir(etc, 0o700)
    scripts = os.path.join(tmp, "sbin")
    os.mkdir(scripts)
    for name, rest in (("fake-smartctl", SMART_JSON), ("fake-reboot", "")):
        with open(os.path.join(scripts, name), "w") as f:
            f.write(FAKE % (name, rest))
        os.chmod(os.path.join(scripts, name), 0o755)
    with open(os.path.join(etc, "agentd.conf"), "w") as f:
        f.write("[agent]\nserver = https://127.0.0.1:%d\nca_fingerprint = %s\n"
                "token = %s\nhostname = unitnode\nmac = %s\n"
                "reboot_command = /usr/local/lib/agentd-test/fake-reboot\n"
                "smartctl = /usr/local/lib/agentd-test/fake-smartctl\n"
                "guests = none\n"
                % (b.control_port, fingerprint(b.ca_pem), token(b), MAC))
    os.chmod(os.path.join(etc, "agentd.conf"), 0o600)
    t0 = time.time()
    c = Container(tmp, [(etc, "/etc/agentd")], [
        (os.path.join(BIN, request.param), "/usr/local/sbin/agentd"),
        (os.path.join(ROOT, "appliance", "agentd.service"),
         "/etc/systemd/system/agentd.service"),
        (scripts, "/usr/local/lib/agentd-test")])
    try:
        # "degraded" is fine: a container lacks units a machine has.
        # No answer (or "offline") until PID 1 listens.
        r = wait_for(lambda: (lambda r: r if r.stdout.strip() not in
                              ("", "offline") else None)(
            c.run("systemctl", "is-system-running", "--wait", timeout=120,
                  check=False)), 120, "the container's systemd")
        assert r.stdout.strip() in ("running", "degraded"), (r, c.log())
        record_timing("container boot (systemd-nspawn) -> system running",
                      time.time() - t0)
        c.run("systemctl", "start", "agentd.service")
        wait_for(lambda: any(x["hostname"] == "unitnode" and x.get("heartbeat")
                             for x in b.admin("GET", "/api/v1/agents").json()),
                 60, "agentd.service to enroll and heartbeat")
        yield b, c, request.param
    finally:
        print(c.run("journalctl", "--no-pager", "-u", "agentd.service",
                    "-u", "agentd-job-*", check=False).stdout[-6000:])
        c.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def exposure(c):
    r = c.run("systemd-analyze", "security", "--no-pager", "agentd.service",
              check=False)
    m = re.search(r"Overall exposure level for agentd.service: ([0-9.]+)",
                  r.stdout)
    assert m, r
    return float(m.group(1)), r.stdout


def exec_result(b, target, *args):
    """bastionctl exec's (exit status, stdout, stderr) and the job row;
    job numbers and the node's name in stderr made alike."""
    r = b.ctl("exec", *args[:-1], target, "--", *args[-1], timeout=60)
    job = json.loads(b.ctl("jobs", "list", "--json").stdout)[0]
    err = re.sub(r"\bjob [0-9]+", "job N", r.stderr.replace(target, "NODE"))
    return (r.returncode, r.stdout, err), job


# (bastionctl exec options, argv): each runs on both agents.
SAME = [
    ((), ["sh", "-c", "echo out; echo err >&2; exit 7"]),
    (("--env", "GREETING=hi there", "--cwd", "/tmp"),
     ["sh", "-c", 'echo "$GREETING from $(pwd)"']),
    # systemd expands $NAME in a unit's command line: not here.
    (("--env", "HOME=/nowhere"), ["echo", "$HOME", "${PATH}", "$$", "%n", "a b"]),
    ((), ["/nonexistent/command"]),
    ((), ["no-such-command-anywhere"]),
    (("--cwd", "/nonexistent"), ["true"]),
    ((), ["sh", "-c", "ls /proc/$$/fd"]),
    ((), ["sh", "-c", "seq 1 30000; seq 1 500 >&2"]),
    ((), ["sh", "-c", "kill -KILL $$"]),
    (("--timeout", "1", "--grace", "1"), ["sh", "-c", "echo started; sleep 60"]),
    (("--timeout", "1", "--grace", "1"), ["sh", "-c", "trap '' TERM; sleep 60"]),
]


def test_agentd_unit_confined_jobs_in_transient_units(node):
    b, c, build = node
    score, text = exposure(c)
    record_timing("systemd-analyze security agentd.service, %s (exposure, "
                  "goal <= %.1f)" % (build, GOAL), score)
    assert score <= GOAL, text

    # agentd: root without a capability, / read-only.
    pid = c.run("systemctl", "show", "-P", "MainPID", "agentd.service").stdout.strip()
    status = c.run("cat", "/proc/%s/status" % pid).stdout
    assert re.search(r"CapBnd:\s+0+\n", status) and re.search(
        r"CapEff:\s+0+\n", status), status
    log = c.run("journalctl", "--no-pager", "-u", "agentd.service").stdout
    assert "jobs that need the whole node run in transient units" in log, log

    # The same jobs on an agentd outside systemd: its children.
    plain = Agent(b, "plainnode", token(b), PLAIN_MAC, extra="guests = none\n",
                  binary=build).start()
    try:
        wait_for(lambda: any(x["hostname"] == "plainnode" and x.get("heartbeat")
                             for x in b.admin("GET", "/api/v1/agents").json()),
                 60, "the plain agentd to heartbeat")
        for opts, argv in SAME:
            got, job = exec_result(b, "unitnode", *opts, argv)
            want, pjob = exec_result(b, "plainnode", *opts, argv)
            assert got == want, (opts, argv, got, want)
            for k in ("status", "exit_code", "signal", "timed_out", "error"):
                assert job.get(k) == pjob.get(k), (k, argv, job, pjob)
        assert "timed out" in got[2] and job["signal"] == 9
        # A guest job goes through `agentd helper job` too.
        for target in ("unitnode", "plainnode"):
            r = b.admin("POST", "/api/v1/agents/%s/guests/ct1/start" % target, {})
            assert r.status in (201, 202), r
            got = (got, job_done(b, r.json()["job"]["id"], 60))
        (_, gu), gp = got
        for k in ("status", "exit_code", "error"):
            assert gu.get(k) == gp.get(k), (k, gu, gp)
        assert gu["status"] == "failed" and "guests = none" in gu["error"], gu
    finally:
        plain.stop()

    # The job's command: a unit of its own, root's full rights.
    (rc, out, err), job = exec_result(b, "unitnode", (
        "sh", "-c", "grep CapEff /proc/self/status; cat /proc/self/cgroup; "
        "touch /usr/local/.written && echo wrote /usr"))
    assert rc == 0, err
    assert "agentd-job-%d.service" % job["id"] in out, out
    assert not re.search(r"CapEff:\s+0+\n", out) and "wrote /usr" in out, out
    # Its unit is gone with it.
    r = c.run("systemctl", "show", "-P", "LoadState",
              "agentd-job-%d.service" % job["id"])
    assert r.stdout.strip() == "not-found", r

    # smartctl ran (at the first heartbeat) outside the sandbox: it wrote
    # to /run, and the heartbeat carries what it printed.
    def smart():
        hb = b.admin("GET", "/api/v1/agents/unitnode").json().get("heartbeat") or {}
        return hb.get("smart")
    s = wait_for(smart, 60, "a heartbeat with SMART data")
    assert s and s[0]["model"] == "FAKE DISK" and s[0]["passed"], s
    ran = c.run("cat", "/run/fake-smartctl.txt").stdout
    assert "agentd.service" not in ran and not re.search(r"CapEff:\s+0+\n", ran), ran

    # An inventory job: the disk probe in a transient unit.
    r = b.admin("POST", "/api/v1/jobs", {"target": "unitnode", "kind": "inventory"})
    assert r.status == 201, r
    j = job_done(b, r.json()["id"], 120)
    assert j["status"] == "done", j
    assert "agentd: inventory" in c.run("journalctl", "--no-pager").stdout

    # A reboot job: its result first, then the command, out of the sandbox.
    r = b.admin("POST", "/api/v1/jobs", {"target": "unitnode", "kind": "reboot"})
    assert r.status == 201, r
    j = job_done(b, r.json()["id"], 60)
    assert j["status"] == "done", j
    ran = wait_for(lambda: c.run("cat", "/run/fake-reboot.txt",
                                 check=False).stdout, 30, "the reboot command")
    assert "agentd.service" not in ran and not re.search(r"CapEff:\s+0+\n", ran), ran

    # agentd and every helper it ran ended clean (the ASan build reports
    # a leak or an error when a helper exits).
    log = c.run("journalctl", "--no-pager").stdout
    assert not re.search(r"Sanitizer|runtime error", log), log[-6000:]
