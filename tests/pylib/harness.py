"""Start a real bastion with a temporary state dir and talk to it.

Used by the integration and e2e suites and by bench/. Everything runs in
the current network namespace; tests/run.sh puts the integration suite in
a fresh one with a bridge `bastion0` (10.77.0.1/24) that has no ports.
"""
import http.client
import json
import re
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BASTION_BUILD", os.path.join(ROOT, "build"))
BIN = os.path.join(BUILD, "bin")
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:", "UndefinedBehaviorSanitizer")


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:200])


def _request(conn, method, path, body=None, headers=None):
    headers = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        body = body.encode()
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return Response(r.status, dict(r.getheaders()), r.read())
    finally:
        conn.close()


DEFAULT_CONF = """\
[bastion]
state_dir = {state}
share_dir = {share}
debug = yes
[boot]
listen = {boot_host}:{boot_port}
interface = {interface}
dhcp_mode = {dhcp_mode}
dhcp_range = 10.77.0.100,10.77.0.200,1h
discovery_dir = {discovery_dir}
[control]
listen = {control_host}:{control_port}
names = localhost,127.0.0.1,10.77.0.1
[install]
repo = {repo}
[auth]
; Cheap Argon2id for tests (the defaults are t=3, 64 MiB): every login
; and user creation hashes, also under ASan.
argon2_time = 1
argon2_memory = 256
"""


def pid_running(pid):
    """pid exists and has not ended (a zombie or a dead task has: nobody
    here may reap it)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rindex(")") + 2] not in "ZX"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Bastion:
    """One bastion daemon. start()/stop() may be called repeatedly; the
    state dir survives restarts until cleanup()."""

    def __init__(self, boot_host="10.77.0.1", boot_port=None, dhcp_mode="full",
                 interface="bastion0", discovery_dir=None, extra_conf="",
                 state=None, repo="http://10.77.0.1:8081/fedora/40/os",
                 control_host="127.0.0.1", wrap=()):
        """wrap: a command line bastion runs under (e.g. setpriv)."""
        self.wrap = list(wrap)
        self.tmp = tempfile.mkdtemp(prefix="bastion-test-")
        os.chmod(self.tmp, 0o711)   # dnsmasq (nobody) reaches STATE/tftp
        self.state = state or os.path.join(self.tmp, "state")
        self.boot_host = boot_host
        self.boot_port = boot_port or free_port()
        self.dhcp_mode = dhcp_mode
        self.control_port = free_port()
        self.discovery_dir = discovery_dir or os.path.join(self.tmp, "discovery")
        self.conf = os.path.join(self.tmp, "bastion.conf")
        # BASTION_TEST_PG_HOST (a socket dir of tests/pg.sh's cluster):
        # every bastion gets a database of its own there.
        pg_host = os.environ.get("BASTION_TEST_PG_HOST")
        if pg_host and "[database]" not in extra_conf:
            name = "b_" + os.path.basename(self.tmp).replace("-", "_").lower()
            subprocess.run(["/usr/lib/postgresql/15/bin/createdb", "-h", pg_host,
                            "-U", "postgres", name], check=True)
            extra_conf += "\n[database]\nurl = postgresql:///%s?host=%s&user=postgres\n" % (
                name, pg_host)
        with open(self.conf, "w") as f:
            f.write(DEFAULT_CONF.format(
                state=self.state, share=ROOT, repo=repo, boot_host=boot_host, boot_port=self.boot_port,
                interface=interface, dhcp_mode=dhcp_mode,
                discovery_dir=self.discovery_dir,
                control_host=control_host, control_port=self.control_port) + extra_conf)
        self.proc = None
        self.log_path = os.path.join(self.tmp, "bastion.log")
        self.logs = []
        self._admin_token = None

    # --- process --------------------------------------------------------
    def start(self, wait=True):
        self.log_start = len(self.log())
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.wrap + [os.path.join(BIN, "bastion"), "-d",
                                                  "-f", self.conf],
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("bastion exited with %d:\n%s" % (self.proc.returncode, self.log()))
            try:
                if self.admin("GET", "/api/v1/readyz").status == 200 and \
                        self._leases_given_back():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("bastion not ready after %ss:\n%s" % (timeout, self.log()))

    def _leases_given_back(self):
        """With full DHCP, dnsmasq's hook asks for the leases once it has
        started (init, leasefile-ro): ready means that request is done,
        so that no test counts it as its own."""
        return self.dhcp_mode != "full" or re.search(
            r"admin GET /api/v1/leases from [^:]*: 200", self.log()[self.log_start:])

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, expect_clean=True):
        """SIGTERM, wait, and check the exit: a clean exit and no sanitizer
        report is part of every test that starts bastion."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("bastion did not stop on SIGTERM:\n" + self.log())
        rc = self.proc.returncode
        self.proc = None
        text = self.log()
        if expect_clean:
            for marker in SANITIZER_MARKERS:
                assert marker not in text, "sanitizer report:\n" + text[-6000:]
            assert rc == 0, "bastion exited %d:\n%s" % (rc, text[-4000:])
        return rc

    def cleanup(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def child_pid(self, comm):
        """bastion's child process named comm (bastion-http, the worker;
        bastion-signer), never any other process; None if there is none."""
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % p) as f:
                    st = f.read()
            except OSError:
                continue
            name = st[st.index("(") + 1:st.rindex(")")]
            ppid = int(st[st.rindex(")") + 2:].split()[1])
            if self.proc is not None and ppid == self.proc.pid and name == comm:
                return int(p)
        return None

    def dnsmasq_state(self):
        """readyz's dnsmasq object: running, standby, pid, last_error…"""
        return self.admin("GET", "/api/v1/readyz").json()["dnsmasq"]

    def dnsmasq_pid(self):
        return self.dnsmasq_state().get("pid")

    def kill9(self):
        """SIGKILL, as a crash or a power cut: no clean stop to check."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    # --- clients --------------------------------------------------------
    @property
    def admin_sock(self):
        return os.path.join(self.state, "admin.sock")

    @property
    def ca_pem(self):
        return os.path.join(self.state, "ca", "ca.pem")

    def boot(self, method, path, body=None, headers=None, timeout=10, source=None):
        """HTTP to the boot listener, from the address source (one of
        this namespace's, see add_address) or the default one."""
        conn = http.client.HTTPConnection(self.boot_host, self.boot_port, timeout=timeout,
                                          source_address=(source, 0) if source else None)
        return _request(conn, method, path, body, headers)

    def control(self, method, path, body=None, headers=None, timeout=10,
                host="127.0.0.1", auth="admin"):
        """HTTPS to the control listener. auth="admin" (the default) sends
        an admin-scope API token of the user "test-admin"; None sends no
        credentials; any other string is sent as the bearer token."""
        headers = dict(headers or {})
        if auth == "admin":
            auth = self.admin_token()
        if auth:
            headers.setdefault("Authorization", "Bearer " + auth)
        ctx = ssl.create_default_context(cafile=self.ca_pem)
        conn = http.client.HTTPSConnection(host, self.control_port, context=ctx,
                                           timeout=timeout)
        return _request(conn, method, path, body, headers)

    # --- accounts ---------------------------------------------------------
    def add_user(self, name, role, password=None):
        body = {"name": name, "role": role}
        if password is not None:
            body["password"] = password
        r = self.admin("POST", "/api/v1/users", body)
        assert r.status == 201, r
        return r.json()

    def make_token(self, user, scope, expires="1h"):
        r = self.admin("POST", "/api/v1/apitokens",
                       {"user": user, "scope": scope, "expires": expires})
        assert r.status == 201, r
        return r.json()["token"]

    def admin_token(self):
        """An admin-scope token of "test-admin", made over the admin socket
        the first time it is needed (and kept across restarts)."""
        if self._admin_token is None:
            if self.admin("GET", "/api/v1/users").status == 200 and not any(
                    u["name"] == "test-admin"
                    for u in self.admin("GET", "/api/v1/users").json()):
                self.add_user("test-admin", "admin", "test-admin-password")
            self._admin_token = self.make_token("test-admin", "admin", "1d")
        return self._admin_token

    def login(self, user, password, host="127.0.0.1"):
        """A cookie session on the control listener (see Session)."""
        return Session(self, user, password, host)

    def admin(self, method, path, body=None, headers=None, timeout=10):
        return _request(UnixHTTPConnection(self.admin_sock, timeout), method, path,
                        body, headers)

    def ctl(self, *args, input=None, env=None, timeout=30):
        e = dict(os.environ)
        e.pop("BASTION_URL", None)
        e["BASTION_SOCKET"] = self.admin_sock
        if env:
            e.update(env)
        return subprocess.run([os.path.join(BIN, "bastionctl")] + list(args),
                              input=input, capture_output=True, text=True,
                              env=e, timeout=timeout)

    # --- helpers --------------------------------------------------------
    def dispatch(self, mac, source=None, **params):
        q = "&".join("%s=%s" % (k, v) for k, v in dict(mac=mac, **params).items())
        return self.boot("GET", "/dispatch?" + q, source=source)

    def lease(self, mac, ip, action="add", hostname=""):
        """What dnsmasq's lease hook reports for a DHCP lease."""
        r = self.admin("POST", "/api/v1/leases", {"action": action, "mac": mac,
                                                  "ip": ip, "hostname": hostname})
        assert r.status == 200, r
        return r.json()


def add_address(ip, dev="bastion0"):
    """Another machine on the provisioning network, in effect: ip/24 on
    the test bridge of this network namespace (tests/run.sh makes one per
    suite; never the host's). Clients bind to it with source=ip."""
    assert os.environ.get("BASTION_NETNS"), "only inside the test namespace"
    r = subprocess.run(["ip", "addr", "add", ip + "/24", "dev", dev],
                       capture_output=True, text=True)
    assert r.returncode == 0 or "already assigned" in r.stderr or \
        "File exists" in r.stderr, r.stderr


class Session:
    """A logged-in browser, in effect: sends the bastion_session cookie and,
    on anything but GET/HEAD, the X-CSRF-Token header."""

    def __init__(self, b, user, password, host="127.0.0.1"):
        self.b = b
        self.host = host
        r = b.control("POST", "/api/v1/session",
                      {"username": user, "password": password}, auth=None,
                      host=host)
        self.login_response = r
        assert r.status == 200, r
        cookie = r.headers.get("Set-Cookie", "")
        self.set_cookie = cookie
        self.sid = cookie.split(";")[0].split("=", 1)[1]
        self.csrf = r.json()["csrf_token"]

    def request(self, method, path, body=None, headers=None, csrf=True):
        headers = dict(headers or {})
        headers["Cookie"] = "bastion_session=" + self.sid
        if csrf and method not in ("GET", "HEAD"):
            headers["X-CSRF-Token"] = self.csrf
        return self.b.control(method, path, body, headers, auth=None,
                              host=self.host)


def sample_report(mac, **over):
    r = {
        "mac": mac, "boot_mac": mac, "firmware": "bios",
        "cpu": {"model": "QEMU Virtual CPU", "sockets": 1, "cores": 2, "threads": 2},
        "memory": {"total_bytes": 1073741824},
        "disks": [{"name": "vda", "size_bytes": 8589934592, "model": "",
                   "serial": "disk0", "rotational": False}],
        "nics": [{"name": "eth0", "mac": mac, "driver": "virtio_net",
                  "speed_mbps": -1, "boot": True}],
        "dmi": {"vendor": "QEMU", "product": "Standard PC", "serial": "",
                "uuid": "00000000-0000-0000-0000-000000000001"},
    }
    r.update(over)
    return r
