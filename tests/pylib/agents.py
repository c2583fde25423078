"""Real agentd processes for the integration tests: each in its own state
dir under the bastion's temporary directory, enrolling with a join token
over real mTLS against the test's bastion (tests/integration/test_agent.py,
test_panel.py)."""
import os
import re
import subprocess
import time

from harness import BIN


def fingerprint(pem):
    out = subprocess.run(["openssl", "x509", "-in", pem, "-noout",
                          "-fingerprint", "-sha256"], capture_output=True,
                         text=True, check=True).stdout
    return "sha256:" + out.strip().split("=")[1].replace(":", "").lower()


# The ASan build of agentd, which loads libvirt at run time for guests:
# ASan binds its xdr interceptors when the program starts, to nothing
# (glibc has no Sun RPC any more), so libvirt would call a NULL xdr
# function unless libtirpc is loaded first; and libvirt's one-time GLib
# allocations are not agentd's leaks (agentd-lsan.supp). The slow
# unwinder gives those allocations their whole stack (GLib has no frame
# pointers), so that the suppressions can see libvirt in it.
SANITIZED = ["env", "LD_PRELOAD=/lib/x86_64-linux-gnu/libtirpc.so.3",
             "LSAN_OPTIONS=fast_unwind_on_malloc=0:suppressions=" +
             os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "agentd-lsan.supp")] if "asan" in BIN else []


class Agent:
    def __init__(self, b, name, token, mac, extra="", binary="agentd",
                 server=None, wrap=()):
        """mac None: none in the config (agentd finds it). server: the
        URL agentd is given (the control listener on 127.0.0.1). wrap: a
        command agentd runs under (ip netns exec NS)."""
        self.b = b
        self.name = name
        self.binary = os.path.join(BIN, binary)
        self.state = os.path.join(b.tmp, "agent-" + name)
        self.conf = os.path.join(b.tmp, "agentd-%s.conf" % name)
        self.log_path = os.path.join(b.tmp, "agentd-%s.log" % name)
        self.proc = None
        self.wrap = list(wrap)
        with open(self.conf, "w") as f:
            f.write("[agent]\nserver = %s\n"
                    "ca_fingerprint = %s\ntoken = %s\nstate_dir = %s\n"
                    "hostname = %s\n%sreboot_command = /bin/true\n%s"
                    % (server or "https://127.0.0.1:%d" % b.control_port,
                       fingerprint(b.ca_pem), token, self.state, name,
                       "mac = %s\n" % mac if mac else "", extra))

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.wrap + SANITIZED + [self.binary, "-d", "-f",
                                      self.conf, "run"], stdout=log,
                                     stderr=subprocess.STDOUT)
        log.close()
        return self

    def enroll(self):
        return subprocess.run(self.wrap + [self.binary, "-f", self.conf,
                               "enroll"], capture_output=True, text=True,
                              timeout=60)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def wait_log(self, pattern, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if re.search(pattern, self.log()):
                return
            time.sleep(0.1)
        raise AssertionError("agentd never logged %r:\n%s" % (pattern, self.log()[-3000:]))


def token(b, **kw):
    r = b.admin("POST", "/api/v1/tokens", kw)
    assert r.status == 201, r
    return r.json()["token"]


def wait_for(fn, timeout=30, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def enrolled_agent(b, name="node1", mac="52:54:00:a0:00:01", extra="",
                   binary="agentd", tok=None):
    """tok: the join token (default: a new one bound to no MAC, which
    cannot take the MAC of an installed or active machine)."""
    a = Agent(b, name, tok or token(b), mac, extra, binary).start()
    # Enrollment sets last_heartbeat_at already: wait for a heartbeat's
    # own report.
    wait_for(lambda: any(x["hostname"] == name and x.get("heartbeat")
                         for x in b.admin("GET", "/api/v1/agents").json()),
             what="agent %s to heartbeat" % name)
    return a


def waiting_polls(b):
    """How many agent long polls b holds (its metrics)."""
    for line in b.admin("GET", "/api/v1/metrics").text.splitlines():
        if line.startswith("bastion_http_waiting "):
            return int(line.split()[1])
    raise AssertionError("no bastion_http_waiting metric")


def job_done(b, jid, timeout=30):
    return wait_for(lambda: (lambda j: j if j["status"] in
                             ("done", "failed", "refused", "expired") else None)(
        b.admin("GET", "/api/v1/jobs/%d" % jid).json()), timeout,
        "job %d to finish" % jid)
