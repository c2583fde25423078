"""bastionctl against a real bastion (admin socket and HTTPS control
listener) and against a small fake API for what a healthy bastion never
does (odd errors, huge answers, hostile strings, silence)."""
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import BIN, sample_report

CTL = os.path.join(BIN, "bastionctl")
MAC = "52:54:00:ab:cd:ef"
OTHER = "52:54:00:00:00:99"


def run(*args, env=None, timeout=30, input=None):
    """bastionctl with a clean environment (no BASTION_* from outside)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    e.update(env or {})
    return subprocess.run([CTL] + list(args), capture_output=True, text=True,
                          env=e, timeout=timeout, input=input)


def ok(r):
    assert r.returncode == 0, "exit %d\nstdout: %s\nstderr: %s" % (
        r.returncode, r.stdout, r.stderr)
    return r


def discovered(bastion, mac=MAC, **over):
    assert bastion.dispatch(mac, arch="x86_64", platform="pcbios").status == 200
    r = bastion.boot("POST", "/api/v1/discover", sample_report(mac, **over))
    assert r.status == 200, r
    return mac


def list_polls(b):
    """How many times machines were asked for over the admin socket."""
    return b.log().count("admin GET /api/v1/machines")


def wait_for(pred, timeout=10, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return False


# --- machines ---------------------------------------------------------------

def test_list_empty(bastion):
    r = ok(bastion.ctl("machines", "list"))
    assert r.stdout.split() == ["MAC", "STATE", "HOSTNAME", "IP", "CPUS",
                                "MEMORY", "DISKS", "LAST", "BOOT", "ATTENTION"]
    assert json.loads(ok(bastion.ctl("machines", "list", "--json")).stdout) == []


def test_list_human_and_json(bastion):
    discovered(bastion)
    assert bastion.dispatch(OTHER).status == 200
    r = ok(bastion.ctl("machines", "list"))
    lines = r.stdout.splitlines()
    assert len(lines) == 3
    header = lines[0]
    for col in ("MAC", "STATE", "HOSTNAME", "IP", "CPUS", "MEMORY", "DISKS",
                "LAST BOOT"):
        assert col in header
    # Aligned: every column starts at the same offset on every line.
    assert lines[1].index("discover") == header.index("STATE")
    assert lines[2].index("discover") == header.index("STATE")
    row = next(line for line in lines if line.startswith(MAC))
    assert "discovered" in row and "1.0 GiB" in row
    assert row[header.index("CPUS"):].split()[0] == "2"
    other = next(line for line in lines if line.startswith(OTHER))
    assert "discovering" in other
    api = bastion.admin("GET", "/api/v1/machines").json()
    assert json.loads(ok(bastion.ctl("machines", "list", "--json")).stdout) == api


def test_list_state_filter(bastion):
    discovered(bastion)
    assert bastion.dispatch(OTHER).status == 200
    got = json.loads(ok(bastion.ctl("machines", "list", "--state", "discovering",
                                    "--json")).stdout)
    assert [m["mac"] for m in got] == [OTHER]
    got = json.loads(ok(bastion.ctl("machines", "list", "--state=discovered",
                                    "--json")).stdout)
    assert [m["mac"] for m in got] == [MAC]
    r = bastion.ctl("machines", "list", "--state", "sleeping")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == "bastionctl: unknown state 'sleeping'\n"


def test_show_human(bastion):
    discovered(bastion)
    r = ok(bastion.ctl("machines", "show", MAC))
    out = r.stdout
    for want in (MAC, "discovered", "x86_64", "pcbios", "QEMU Virtual CPU",
                 "1 socket, 2 cores, 2 threads", "1.0 GiB", "vda", "8.0 GiB",
                 "disk0", "eth0", "virtio_net", "QEMU Standard PC", "bios"):
        assert want in out, want
    for label in ("State:", "Hostname:", "IP:", "UUID:", "Serial:", "Arch:",
                  "Boots:", "Created:", "Last boot:", "CPU:", "Memory:",
                  "Disks:", "NICs:", "DMI:"):
        assert label in out, label


def test_show_counts_boots_in_all_and_in_the_state(bastion):
    """Boots: lifetime count across states, beside the count in the
    current state (which starts again at every transition). A boot
    within 10 s of the last one with the same UUID is the same boot, so
    each boot here brings a new one."""
    def show():
        return json.loads(ok(bastion.ctl("machines", "show", MAC, "--json")).stdout)

    assert bastion.dispatch(MAC, uuid="a-1").status == 200
    j = show()
    assert (j["state"], j["boots"], j["boots_in_state"]) == ("discovering", 1, 1)
    assert bastion.boot("POST", "/api/v1/discover", sample_report(MAC)).status == 200
    j = show()
    assert (j["state"], j["boots"], j["boots_in_state"]) == ("discovered", 1, 0)
    for n, uuid in ((2, "a-2"), (3, "a-3")):
        assert bastion.dispatch(MAC, uuid=uuid).status == 200
        j = show()
        assert (j["state"], j["boots"], j["boots_in_state"]) == ("discovered", n, n - 1)
    out = ok(bastion.ctl("machines", "show", MAC)).stdout
    assert re.search(r"^Boots:\s+3 \(2 in this state\)$", out, re.M), out
    assert "boot_count" not in j


def test_show_without_hardware(bastion):
    assert bastion.dispatch(OTHER).status == 200
    r = ok(bastion.ctl("machines", "show", OTHER))
    assert "not reported yet" in r.stdout
    j = json.loads(ok(bastion.ctl("machines", "show", OTHER, "--json")).stdout)
    assert j["hardware"] is None and j["state"] == "discovering"


def test_show_json_equals_api(bastion):
    discovered(bastion)
    j = json.loads(ok(bastion.ctl("machines", "show", MAC, "--json")).stdout)
    assert j == bastion.admin("GET", "/api/v1/machines/" + MAC).json()
    hw = j["hardware"]
    assert hw["cpu"]["threads"] == 2 and hw["memory"]["total_bytes"] == 1 << 30
    assert hw["disks"][0]["size_bytes"] == 8 << 30
    assert hw["nics"][0]["mac"] == MAC and hw["dmi"]["vendor"] == "QEMU"


def test_events_human_and_json(bastion):
    discovered(bastion)
    j = json.loads(ok(bastion.ctl("machines", "events", MAC, "--json")).stdout)
    assert j == bastion.admin("GET", "/api/v1/machines/%s/events" % MAC).json()
    assert [e["state"] for e in j] == ["discovering", "discovered"]
    lines = ok(bastion.ctl("machines", "events", MAC)).stdout.splitlines()
    assert lines[0].split() == ["TIME", "STATE", "SOURCE", "PROGRESS", "MESSAGE"]
    assert len(lines) == 3
    assert "discovering" in lines[1] and "dispatch" in lines[1]
    assert "hardware reported" in lines[2]


@pytest.mark.parametrize("spelling", [
    "52:54:00:ab:cd:ef", "52:54:00:AB:CD:EF", "52-54-00-ab-cd-ef",
    "52-54-00-AB-CD-EF", "5254.00ab.cdef", "525400ABCDEF",
    "01-52-54-00-ab-cd-ef", "52:54:0:ab:cd:ef",
])
def test_every_mac_spelling(bastion, spelling):
    discovered(bastion)
    j = json.loads(ok(bastion.ctl("machines", "show", spelling, "--json")).stdout)
    assert j["mac"] == MAC
    ev = json.loads(ok(bastion.ctl("machines", "events", spelling, "--json")).stdout)
    assert len(ev) == 2
    ok(bastion.ctl("machines", "forget", spelling))
    assert bastion.admin("GET", "/api/v1/machines/" + MAC).status == 404


def admin_requests(bastion):
    text = bastion.admin("GET", "/api/v1/metrics").text
    return sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith('bastion_http_requests_total{listener="admin"'))


@pytest.mark.parametrize("garbage", [
    "zz", "52:54:00:ab:cd", "52:54:00:ab:cd:ef:01", "ff:ff:ff:ff:ff:ff",
    "00:00:00:00:00:00", "52:54:00-ab:cd:ef", "../../etc/passwd",
    "52:54:00:ab:cd:ef?x=1", "52:54:00:ab:cd:ef/events", "",
])
def test_garbage_mac_is_refused_locally(bastion, garbage):
    before = admin_requests(bastion)
    for verb in ("show", "events", "forget", "watch"):
        r = bastion.ctl("machines", verb, garbage)
        assert r.returncode == 1, (verb, r)
        assert "is not a MAC address" in r.stderr and r.stdout == ""
        assert r.stderr.startswith("bastionctl: ")
    # Nothing reached the server (the metrics request itself is the 1).
    assert admin_requests(bastion) - before == 1


def test_not_found_prints_the_servers_message(bastion):
    api = bastion.admin("GET", "/api/v1/machines/" + OTHER)
    assert api.status == 404
    msg = api.json()["error"]["message"]
    for verb in ("show", "events", "forget"):
        r = bastion.ctl("machines", verb, OTHER)
        assert r.returncode == 1 and r.stdout == ""
        assert r.stderr == "bastionctl: %s\n" % msg


def test_forget(bastion):
    discovered(bastion)
    r = ok(bastion.ctl("machines", "forget", MAC.upper()))
    assert MAC in r.stdout
    assert bastion.admin("GET", "/api/v1/machines/" + MAC).status == 404
    assert bastion.ctl("machines", "show", MAC).returncode == 1
    assert json.loads(ok(bastion.ctl("machines", "list", "--json")).stdout) == []


# --- usage ------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    [], ["bogus"], ["machines"], ["machines", "bogus"],
    ["machines", "list", "--bogus"], ["machines", "list", "-x"],
    ["machines", "list", "extra"], ["machines", "show"],
    ["machines", "show", MAC, MAC], ["machines", "list", "--state"],
    ["machines", "list", "--json=yes"], ["--bogus", "machines", "list"],
    ["--socket"], ["machines", "watch", "--count", "0"],
    ["machines", "watch", "--count", "x"], ["config", "get"],
    ["config", "set", "boot.dhcp_mode"], ["doctor", "now"],
    ["version", "--long"], ["--socket", "/x", "--server", "https://x",
                            "version"],
    ["machines", "list", "--socket", "/x"], ["lease-hook"],
    ["lease-hook", "add", MAC], ["lease-hook", "add", MAC, "10.77.0.5", "h",
                                 "extra"],
])
def test_usage_errors_exit_2(args):
    r = run(*args, env={"BASTION_SOCKET": "/nonexistent/admin.sock"})
    assert r.returncode == 2, r
    assert r.stdout == ""
    assert "usage: bastionctl" in r.stderr


def test_help_goes_to_stdout():
    for args in (["--help"], ["-h"], ["help"], ["machines", "--help"],
                 ["machines", "list", "--help"], ["doctor", "-h"],
                 ["help", "config"]):
        r = run(*args)
        assert r.returncode == 0 and r.stderr == "", args
        assert "usage: bastionctl" in r.stdout
    r = run("--help")
    for cmd in ("machines list", "machines show", "machines events",
                "machines forget", "machines watch", "config get",
                "config set", "config list", "config path", "doctor",
                "version"):
        assert cmd in r.stdout, cmd
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("bastionctl ")


def test_connection_failure_is_explained():
    r = run("machines", "list", env={"BASTION_SOCKET": "/nonexistent/admin.sock"})
    assert r.returncode == 1 and r.stdout == ""
    assert "/nonexistent/admin.sock" in r.stderr and "bastion running" in r.stderr
    s = socket.socket(socket.AF_INET)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = run("--server", "https://127.0.0.1:%d" % port, "version")
    assert r.returncode == 1 and "cannot connect" in r.stderr
    r = run("--server", "ftp://127.0.0.1/", "version")
    assert r.returncode == 1 and "not an http:// or https:// URL" in r.stderr


def test_default_socket_path():
    r = run("machines", "list")
    assert r.returncode == 1
    if not os.path.exists("/var/lib/bastion/admin.sock"):
        assert "/var/lib/bastion/admin.sock" in r.stderr


# --- HTTPS control listener --------------------------------------------------

def make_other_ca(tmp):
    key, pem = os.path.join(tmp, "k.pem"), os.path.join(tmp, "ca.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                    "-out", pem, "-days", "1", "-subj", "/CN=Not Bastion"],
                   check=True, capture_output=True)
    return pem


def test_server_with_cacert(bastion):
    discovered(bastion)
    url = "https://127.0.0.1:%d" % bastion.control_port
    token = bastion.admin_token()
    api = bastion.admin("GET", "/api/v1/machines").json()
    # The command line beats BASTION_SOCKET (set by bastion.ctl).
    r = ok(bastion.ctl("--server", url, "--cacert", bastion.ca_pem,
                       "--token", token, "machines", "list", "--json"))
    assert json.loads(r.stdout) == api
    # The same from the environment, with a trailing slash and localhost.
    r = ok(run("machines", "show", MAC, "--json",
               env={"BASTION_URL": "https://localhost:%d/" % bastion.control_port,
                    "BASTION_CACERT": bastion.ca_pem, "BASTION_TOKEN": token}))
    assert json.loads(r.stdout)["mac"] == MAC
    r = ok(run("--server=" + url, "--cacert=" + bastion.ca_pem,
               "--token=" + token, "version"))
    assert "bastion " in r.stdout
    # Without a token the control listener says who to ask.
    r = run("--server", url, "--cacert", bastion.ca_pem, "machines", "list")
    assert r.returncode == 1 and r.stdout == ""
    assert "authentication required" in r.stderr and "--token" in r.stderr


def test_server_with_wrong_cacert_fails(bastion):
    url = "https://127.0.0.1:%d" % bastion.control_port
    with tempfile.TemporaryDirectory() as tmp:
        other = make_other_ca(tmp)
        r = run("--server", url, "--cacert", other, "machines", "list")
        assert r.returncode == 1 and r.stdout == ""
        assert "not trusted" in r.stderr and "--cacert" in r.stderr
        # No --cacert: the system store does not know bastion's CA either.
        r = run("--server", url, "machines", "list")
        assert r.returncode == 1 and "not trusted" in r.stderr
        r = run("--server", url, "--cacert", os.path.join(tmp, "missing.pem"),
                "machines", "list")
        assert r.returncode == 1 and r.stdout == ""
    # Plain HTTP to the HTTPS listener is not an answer either.
    r = run("--server", "http://127.0.0.1:%d" % bastion.control_port, "version")
    assert r.returncode == 1


def test_config_set_is_admin_socket_only(bastion):
    url = "https://127.0.0.1:%d" % bastion.control_port
    with open(bastion.conf) as f:
        before = f.read()
    r = run("--server", url, "--cacert", bastion.ca_pem, "--token",
            bastion.admin_token(), "config", "set", "install.max_boots", "7")
    assert r.returncode == 1 and r.stderr.startswith("bastionctl: ")
    assert "only over the admin socket" in r.stderr
    with open(bastion.conf) as f:
        assert f.read() == before


# --- config -----------------------------------------------------------------

def test_config_get_list_path(bastion):
    assert ok(bastion.ctl("config", "get", "boot.dhcp_mode")).stdout == "full\n"
    assert ok(bastion.ctl("config", "get", "bastion.state_dir")).stdout == \
        bastion.state + "\n"
    assert ok(bastion.ctl("config", "path")).stdout == bastion.conf + "\n"
    api = bastion.admin("GET", "/api/v1/config").json()
    assert json.loads(ok(bastion.ctl("config", "list", "--json")).stdout) == api
    lines = ok(bastion.ctl("config", "list")).stdout.splitlines()
    assert lines[0].split() == ["KEY", "VALUE"]
    keys = [line.split()[0] for line in lines[1:]]
    assert keys == list(api["values"])
    assert any(line.split()[:2] == ["boot.dhcp_mode", "full"] for line in lines)
    r = bastion.ctl("config", "get", "boot.nonsense")
    assert r.returncode == 1 and "unknown key" in r.stderr and r.stdout == ""


def test_config_set_writes_the_file(bastion):
    r = ok(bastion.ctl("config", "set", "install.max_boots", "5"))
    assert "install.max_boots = 5" in r.stdout
    with open(bastion.conf) as f:
        text = f.read()
    assert "max_boots = 5" in text
    # The daemon reloads (SIGHUP) and then reports the new value.
    assert wait_for(lambda: bastion.ctl("config", "get", "install.max_boots")
                    .stdout == "5\n")
    # A key that only applies after a restart says so.
    r = ok(bastion.ctl("config", "set", "control.names",
                       "localhost,127.0.0.1,10.77.0.1,bastion.lan"))
    assert "restart" in r.stdout
    assert bastion.alive()


def test_config_set_on_a_file_too_large_to_rewrite_leaves_it(bastion):
    """A bastion.conf near the 1 MiB the rewrite holds (comments count):
    the new file would not fit. It used to be cut, still parse, and
    replace the old one; now it is an error and the file is untouched."""
    with open(bastion.conf, "rb") as f:
        size = len(f.read())
    line = "# " + "padding " * 20 + "\n"
    left = 1024 * 1024 - 5 - size     # 5 bytes short of the cap
    with open(bastion.conf, "a") as f:
        f.write(line * (left // len(line)) + "#" * (left % len(line) - 1) + "\n")
    with open(bastion.conf, "rb") as f:
        before = f.read()
    assert len(before) == 1024 * 1024 - 5
    r = bastion.ctl("config", "set", "install.max_boots", "5")
    assert r.returncode == 1, r
    assert "larger than 1024 KiB; left as it is" in r.stderr, r.stderr
    with open(bastion.conf, "rb") as f:
        assert f.read() == before
    assert bastion.alive()


def test_config_set_invalid_value_leaves_the_file(bastion):
    with open(bastion.conf, "rb") as f:
        before = f.read()
    for key, value in (("install.max_boots", "many"),
                       ("install.max_boots", "1000"),
                       ("boot.dhcp_mode", "sometimes"),
                       ("boot.listen", "nowhere"),
                       ("boot.dhcp_mode", "full\n[bastion]\nstate_dir = /"),
                       ("boot.nonsense", "1"),
                       ("../../etc/passwd", "x")):
        r = bastion.ctl("config", "set", key, value)
        assert r.returncode == 1, (key, value, r)
        assert r.stderr.startswith("bastionctl: ") and r.stdout == ""
        with open(bastion.conf, "rb") as f:
            assert f.read() == before, (key, value)
    r = bastion.ctl("config", "set", "install.max_boots", "many")
    assert "install.max_boots" in r.stderr
    assert bastion.alive()


# --- doctor, version ----------------------------------------------------------

def test_doctor(bastion):
    r = bastion.ctl("doctor", "--json")
    j = json.loads(r.stdout)
    assert j == bastion.admin("GET", "/api/v1/doctor").json() or \
        set(j) == {"ok", "checks"}
    assert isinstance(j["ok"], bool) and isinstance(j["checks"], list)
    assert j["checks"]
    for c in j["checks"]:
        assert set(c) >= {"name", "status", "detail"}
        assert c["status"] in ("ok", "warn", "fail")
    failed = any(c["status"] == "fail" for c in j["checks"])
    assert j["ok"] == (not failed)
    assert r.returncode == (1 if failed else 0)
    h = bastion.ctl("doctor")
    assert h.returncode == r.returncode
    lines = h.stdout.splitlines()
    assert lines[0].split() == ["CHECK", "STATUS", "DETAIL"]
    for c in j["checks"]:
        assert any(line.startswith(c["name"]) for line in lines)
    # The discovery image is missing in the test setup: a warning, not a failure.
    assert any(c["status"] == "warn" for c in j["checks"])


def test_doctor_ipv6_router_adverts(bastion):
    """Without an IPv6 prefix on the provisioning bridge dnsmasq has nothing
    to advertise and iPXE waits ~13 s at every boot: the doctor warns."""
    def check():
        j = bastion.admin("GET", "/api/v1/doctor").json()
        return [c for c in j["checks"] if c["name"] == "ipv6 router adverts"]
    c = check()
    assert len(c) == 1 and c[0]["status"] == "ok" and re.fullmatch(
        r"bastion0 has fd77:[0-9a-f:]+: dnsmasq advertises its prefix",
        c[0]["detail"]), c
    # fd77::1, and any address the bridge took from dnsmasq's own adverts.
    subprocess.run(["ip", "-6", "addr", "flush", "dev", "bastion0", "scope",
                    "global"], check=True)
    try:
        c = check()
        assert len(c) == 1 and c[0]["status"] == "warn", c
        assert "iPXE waits about 13 s" in c[0]["detail"] and \
            "ip -6 addr add fdXX::1/64 dev bastion0" in c[0]["detail"], c
        r = bastion.ctl("doctor")
        assert re.search(r"^ipv6 router adverts +warn ", r.stdout, re.M), r.stdout
    finally:
        subprocess.run(["ip", "-6", "addr", "add", "fd77::1/64", "dev", "bastion0",
                        "nodad"], check=True)
    assert check()[0]["status"] == "ok"


def test_doctor_failure_exits_1(make_bastion, tmp_path):
    empty = tmp_path / "noipxe"
    empty.mkdir()
    b = make_bastion()
    with open(b.conf) as f:
        conf = f.read()
    conf = conf.replace("[boot]\n", "[boot]\nipxe_dir = %s\n" % empty, 1)
    with open(b.conf, "w") as f:
        f.write(conf)
    b.start()
    r = b.ctl("doctor", "--json")
    assert r.returncode == 1, r
    j = json.loads(r.stdout)
    assert j["ok"] is False
    assert any(c["status"] == "fail" and "ipxe" in c["name"] for c in j["checks"])
    r = b.ctl("doctor")
    assert r.returncode == 1 and "fail" in r.stdout


def test_version(bastion):
    api = bastion.admin("GET", "/api/v1/version").json()
    r = ok(bastion.ctl("version"))
    lines = r.stdout.splitlines()
    assert lines[0].startswith("bastionctl ")
    assert lines[1].split()[:2] == ["bastion", api["version"]]
    j = json.loads(ok(bastion.ctl("version", "--json")).stdout)
    assert j["client"]["version"] == lines[0].split()[1]
    assert j["server"]["version"] == api["version"]
    assert isinstance(j["server"]["uptime_s"], int)


# --- watch ------------------------------------------------------------------

def spawn(bastion, *args):
    e = dict(os.environ)
    e.pop("BASTION_URL", None)
    e["BASTION_SOCKET"] = bastion.admin_sock
    return subprocess.Popen([CTL] + list(args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=e)


def drive_until_exit(proc, action, timeout=20):
    """Call action() every 0.3 s until proc exits; return its output."""
    deadline = time.time() + timeout
    while proc.poll() is None and time.time() < deadline:
        action()
        time.sleep(0.3)
    if proc.poll() is None:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError("watch did not stop:\n%s\n%s" % (out, err))
    out, err = proc.communicate()
    return proc.returncode, out, err


def test_watch_one_machine_count(bastion):
    discovered(bastion)
    p = spawn(bastion, "machines", "watch", MAC.replace(":", "-"), "--count", "2")
    rc, out, err = drive_until_exit(
        p, lambda: bastion.admin("POST", "/api/v1/machines/%s/install" % MAC,
                                 {"hostname": "node1.lab", "role": "worker"}))
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 2
    for line in lines:
        f = line.split()
        # TIME (date and clock) MAC STATE SOURCE MESSAGE
        assert f[2] == MAC and f[3] == "queued" and f[4] == "api", line
        assert "install queued" in line
    # Old events are not replayed: only new ones were printed.
    assert "first network boot" not in out


def test_watch_all_machines_sees_new_ones(bastion):
    discovered(bastion)
    n = [0]

    def new_machine():
        n[0] += 1
        assert bastion.dispatch("52:54:00:77:00:%02x" % n[0]).status == 200

    p = spawn(bastion, "machines", "watch", "--count", "2")
    rc, out, err = drive_until_exit(p, new_machine)
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 2
    for line in lines:
        f = line.split()
        assert f[2].startswith("52:54:00:77:00:") and f[3] == "discovering"
        assert "first network boot" in line
    # In id (time) order.
    assert lines[0].split()[2] < lines[1].split()[2]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_watch_stops_cleanly_on_signal(bastion, sig):
    discovered(bastion)
    before = list_polls(bastion)
    p = spawn(bastion, "machines", "watch")
    # Watching: it has asked for the list twice (started, then a poll).
    assert wait_for(lambda: list_polls(bastion) >= before + 2 or p.poll() is not None)
    assert p.poll() is None
    p.send_signal(sig)
    out, err = p.communicate(timeout=10)
    assert p.returncode == 0, err
    assert out == ""


def test_watch_unknown_machine_waits_for_it(bastion):
    before = list_polls(bastion)
    p = spawn(bastion, "machines", "watch", OTHER, "--count", "1")
    assert wait_for(lambda: list_polls(bastion) >= before + 2 or p.poll() is not None)
    assert p.poll() is None
    rc, out, err = drive_until_exit(p, lambda: bastion.dispatch(OTHER))
    assert rc == 0
    assert "not known" in err
    assert OTHER in out and "first network boot" in out


def test_watch_without_bastion_fails():
    r = run("machines", "watch", env={"BASTION_SOCKET": "/nonexistent/admin.sock"})
    assert r.returncode == 1 and "bastion running" in r.stderr


# --- lease-hook ---------------------------------------------------------------

def leases(bastion):
    return bastion.admin("GET", "/api/v1/leases").json()


def test_lease_hook_add_old_del(bastion):
    ok(bastion.ctl("lease-hook", "add", "52-54-00-AB-CD-EF", "10.77.0.150", "node1",
                   env={"DNSMASQ_LEASE_EXPIRES": "1900000000",
                        "DNSMASQ_INTERFACE": "bastion0"}))
    ls = leases(bastion)
    assert len(ls) == 1
    assert ls[0]["mac"] == MAC and ls[0]["ip"] == "10.77.0.150"
    assert ls[0]["hostname"] == "node1" and ls[0]["expires"] == 1900000000
    # init: what dnsmasq (leasefile-ro) starts with, in its lease format.
    r = ok(bastion.ctl("lease-hook", "init"))
    assert r.stdout == "1900000000 %s 10.77.0.150 node1 *\n" % MAC, r
    r = bastion.ctl("lease-hook", "init", "extra")
    assert r.returncode == 2 and "init takes no arguments" in r.stderr, r
    ok(bastion.ctl("lease-hook", "old", MAC, "10.77.0.151"))
    ls = leases(bastion)
    assert len(ls) == 1 and ls[0]["ip"] == "10.77.0.151"
    r = ok(bastion.ctl("lease-hook", "del", MAC, "10.77.0.151"))
    assert r.stdout == ""
    assert leases(bastion) == []


def test_lease_hook_ignores_what_is_not_a_lease(bastion):
    for args in (["tftp", "1234", "10.77.0.150", "/tftp/ipxe.efi"],
                 ["arp-add", MAC, "10.77.0.150"], ["arp-del", MAC, "10.77.0.150"],
                 ["relay-snoop", "x"]):
        r = bastion.ctl("lease-hook", *args)
        assert r.returncode == 0 and r.stdout == "" and r.stderr == "", args
    assert leases(bastion) == []


@pytest.mark.parametrize("args", [
    ["add", "zz", "10.77.0.150"],
    ["add", "ff:ff:ff:ff:ff:ff", "10.77.0.150"],
    ["add", MAC, "10.77.0.999"],
    ["add", MAC, "not-an-ip"],
    ["add", MAC, "10.77.0.150", "bad_host!"],
    ["add", MAC, "10.77.0.150", "a" * 64],
    ["add", MAC, "10.77.0.150", "-leading"],
    ["add", MAC],
    [],
])
def test_lease_hook_bad_args(bastion, args):
    r = bastion.ctl("lease-hook", *args)
    assert r.returncode != 0 and r.stderr.startswith("bastionctl: ")
    r = bastion.ctl("lease-hook", "add", MAC, "10.77.0.150",
                    env={"DNSMASQ_LEASE_EXPIRES": "soon"})
    assert r.returncode != 0
    assert leases(bastion) == []
    assert bastion.alive()
    assert bastion.admin("GET", "/api/v1/readyz").status == 200


def test_lease_hook_gives_up_after_5_seconds(tmp_path):
    # A socket that accepts connections and never answers.
    path = str(tmp_path / "silent.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.listen(8)
    try:
        t0 = time.time()
        r = run("--socket", path, "lease-hook", "add", MAC, "10.77.0.150")
        took = time.time() - t0
    finally:
        s.close()
    assert r.returncode == 1
    assert 4 <= took < 9, took
    assert "no answer within 5 s" in r.stderr


# --- against a fake API ---------------------------------------------------------

class FakeAPI:
    """An HTTP server that answers from a table and records requests."""

    def __init__(self):
        self.routes = {}
        self.requests = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                fake.requests.append((self.command, self.path,
                                      dict(self.headers), body))
                key = (self.command, self.path)
                if key not in fake.routes:
                    key = (self.command, self.path.split("?")[0])
                status, payload, ctype = fake.routes.get(
                    key, (404, {"error": {"code": "not_found",
                                          "message": "fake: no route"}}, None))
                if callable(payload):
                    payload = payload(self.path)
                if not isinstance(payload, (bytes, str)):
                    payload = json.dumps(payload)
                if isinstance(payload, str):
                    payload = payload.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype or "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except OSError:
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def route(self, method, path, status=200, payload=None, ctype=None):
        self.routes[(method, path)] = (status, payload, ctype)

    def ctl(self, *args, env=None, timeout=30):
        e = {"BASTION_URL": self.url}
        e.update(env or {})
        return run(*args, env=e, timeout=timeout)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    f = FakeAPI()
    try:
        yield f
    finally:
        f.close()


def machine(mac=MAC, **over):
    m = {"mac": mac, "state": "discovered", "hostname": "", "ip": "",
         "uuid": "", "serial": "", "arch": "x86_64", "platform": "efi",
         "created_at": "2024-05-01T12:00:00.000Z",
         "updated_at": "2024-05-01T12:00:00.000Z",
         "last_boot_at": "2024-05-01T12:00:00.000Z", "boots": 1,
         "boots_in_state": 1}
    m.update(over)
    return m


def test_token_is_sent_as_bearer(fake):
    fake.route("GET", "/api/v1/machines", payload=[])
    ok(fake.ctl("--token", "s3cret-token", "machines", "list"))
    ok(fake.ctl("machines", "list", env={"BASTION_TOKEN": "from-env"}))
    auth = [r[2].get("Authorization") for r in fake.requests]
    assert auth == ["Bearer s3cret-token", "Bearer from-env"]
    assert fake.requests[0][2].get("Accept") == "application/json"
    # A token that would break the header never leaves the machine.
    r = fake.ctl("--token", "a\r\nX-Evil: 1", "machines", "list")
    assert r.returncode == 1 and len(fake.requests) == 2


def test_unauthorized_hints_at_token(fake):
    fake.route("GET", "/api/v1/machines", 401,
               {"error": {"code": "unauthorized", "message": "a token is needed"}})
    r = fake.ctl("machines", "list")
    assert r.returncode == 1
    assert r.stderr.startswith("bastionctl: a token is needed")
    assert "--token" in r.stderr


def test_what_goes_in_urls_is_escaped(fake):
    fake.route("GET", "/api/v1/machines", payload=[])
    ok(fake.ctl("machines", "list", "--state", "a b&c=d/../e#f"))
    assert fake.requests[-1][1] == "/api/v1/machines?state=a%20b%26c%3Dd%2F..%2Fe%23f"
    r = fake.ctl("config", "set", "../../x y?z", "v")
    assert r.returncode == 1
    assert fake.requests[-1][0] == "PUT"
    assert fake.requests[-1][1] == "/api/v1/config/..%2F..%2Fx%20y%3Fz"
    assert json.loads(fake.requests[-1][3]) == {"value": "v"}
    fake.route("GET", "/api/v1/machines/" + MAC, payload=machine())
    ok(fake.ctl("machines", "show", "5254.00AB.CDEF", "--json"))
    assert fake.requests[-1][1] == "/api/v1/machines/" + MAC


def test_odd_server_errors(fake):
    fake.route("GET", "/api/v1/machines", 502, "<html>Bad Gateway</html>\nmore",
               "text/html")
    r = fake.ctl("machines", "list")
    assert r.returncode == 1 and r.stdout == ""
    assert "HTTP 502" in r.stderr and "Bad Gateway" in r.stderr
    fake.route("GET", "/api/v1/version", 200, "this is not json", "text/plain")
    r = fake.ctl("version", "--json")
    assert r.returncode == 1 and "not JSON" in r.stderr
    fake.route("GET", "/api/v1/doctor", 200, {"nothing": "useful"})
    r = fake.ctl("doctor")
    assert r.returncode == 1 and "unexpected answer" in r.stderr


def test_response_size_is_capped(fake):
    big = b"[" + b" " * (17 * 1024 * 1024) + b"]"
    fake.route("GET", "/api/v1/machines", 200, big)
    r = fake.ctl("machines", "list")
    assert r.returncode == 1
    assert "larger than 16 MiB" in r.stderr


def test_hostile_strings_do_not_reach_the_terminal(fake):
    evil = "\x1b]0;owned\x07\x1b[2J\u009bX"
    m = machine(hostname=evil, serial=evil)
    m["summary"] = {"cpu_threads": 4, "memory_bytes": 3 << 30, "disks": 2, "nics": 1}
    fake.route("GET", "/api/v1/machines", payload=[m])
    full = dict(m, hardware={"cpu": {"model": evil, "sockets": 1, "cores": 1,
                                     "threads": 1},
                             "memory": {"total_bytes": 1},
                             "disks": [{"name": evil, "size_bytes": 1}],
                             "nics": [], "dmi": {"vendor": evil}})
    fake.route("GET", "/api/v1/machines/" + MAC, payload=full)
    fake.route("GET", "/api/v1/machines/%s/events" % MAC,
               payload=[{"id": 1, "time": "2024-05-01T12:00:00.000Z",
                         "source": evil, "state": evil, "message": evil,
                         "progress": None}])
    for args in (["machines", "list"], ["machines", "show", MAC],
                 ["machines", "events", MAC]):
        r = ok(fake.ctl(*args))
        assert "\x1b" not in r.stdout and "\x07" not in r.stdout, args
        assert "\u009b" not in r.stdout
    r = ok(fake.ctl("machines", "list"))
    assert "3.0 GiB" in r.stdout
    # --json is the API's answer, escaped by the JSON encoder.
    j = json.loads(ok(fake.ctl("machines", "list", "--json")).stdout)
    assert j == [m]


def events_route(events):
    """A callable payload: the events of the list with id > ?after=."""
    def answer(path):
        q = dict(kv.split("=", 1) for kv in path.partition("?")[2].split("&") if kv)
        after = int(q.get("after", 0))
        return [e for e in list(events) if e["id"] > after]
    return answer


def event(i, message, state="installing", source="progress", progress=None):
    return {"id": i, "time": "2024-05-01T12:00:%02d.000Z" % i, "source": source,
            "state": state, "message": message, "progress": progress}


def test_watch_progress_bar(fake):
    events = [event(1, "old", "discovering", "dispatch"),
              event(2, "old too", "discovered", "discover")]
    fake.route("GET", "/api/v1/machines/%s/events" % MAC, payload=events_route(events))
    p = subprocess.Popen([CTL, "--server", fake.url, "machines", "watch", MAC,
                          "--count", "3"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    # The second request is the first poll: the snapshot (ids 1, 2) is done.
    assert wait_for(lambda: len(fake.requests) >= 2)
    events.extend([event(3, "packages", progress=50),
                   event(4, "post", progress=100),
                   event(5, "start", progress=0)])
    out, err = p.communicate(timeout=15)
    assert p.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 3
    assert lines[0].endswith("packages [#####-----] 50%")
    assert lines[1].endswith("post [##########] 100%")
    assert lines[2].endswith("start [----------] 0%")
    assert lines[0].split()[2:5] == [MAC, "installing", "progress"]
    assert "old" not in out
    # Polls ask only for what is new.
    assert all("after=" in r[1] for r in fake.requests)
    assert any("after=2&" in r[1] for r in fake.requests)


def test_watch_survives_a_restart(fake):
    """A bastion restart (5xx, refused connections) is retried, not fatal."""
    events = []
    fake.route("GET", "/api/v1/machines", payload=[machine()])
    fake.route("GET", "/api/v1/machines/%s/events" % MAC, payload=events_route(events))
    p = subprocess.Popen([CTL, "--server", fake.url, "machines", "watch",
                          "--count", "1"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)

    def lists():
        return sum(1 for r in fake.requests if r[1].startswith("/api/v1/machines?")
                   or r[1] == "/api/v1/machines")
    assert wait_for(lambda: lists() >= 1 or p.poll() is not None)
    fake.route("GET", "/api/v1/machines", 503,
               {"error": {"code": "unavailable", "message": "restarting"}})
    seen = lists()
    # Two polls answered 503 (the restart), and it is still watching.
    assert wait_for(lambda: lists() >= seen + 2 or p.poll() is not None, timeout=15)
    assert p.poll() is None
    events.append(event(9, "back", "discovering", "dispatch"))
    fake.route("GET", "/api/v1/machines", payload=[machine()])
    out, err = p.communicate(timeout=15)
    assert p.returncode == 0, err
    assert "restarting" in err and "retrying" in err and "answers again" in err
    assert err.count("restarting") == 1
    assert "back" in out


# --- server strings reach the terminal cleaned (issue 11) ---------------------

EVIL = "x\x1b[2J\u009b31m\u0085\n2099-01-01 forged line\x7f"


def _clean_output(text, json_out=False):
    # DEL is harmless to terminals; jansson leaves it as it is in --json.
    for bad in ("\x1b", "\u009b", "\u0085") + (() if json_out else ("\x7f",)):
        assert bad not in text, repr(text)
    assert not any(l.startswith("2099-01-01") for l in text.splitlines()), text


def test_server_strings_are_cleaned(fake):
    """A job's error, an agent's hostname, ... are whatever a node or the
    server said: C0 and C1 controls (\\xc2\\x9b is CSI) never reach the
    terminal, in tables, detail views, messages or --json."""
    job = {"id": 7, "agent_id": "ag-" + EVIL, "hostname": EVIL, "mac": MAC,
           "kind": "exec", "args": {"argv": [EVIL]}, "status": "failed",
           "error": EVIL, "created_by": EVIL,
           "created_at": "2024-05-01T12:00:00.000Z", "output_bytes": 0}
    agent = {"id": "ag-1", "hostname": EVIL, "mac": MAC, "revoked": True,
             "revoked_reason": EVIL, "last_addr": EVIL, "cert_serial": EVIL,
             "heartbeat": {"load": [0.1, 0.2, 0.3], "running_jobs": 1}}
    fake.route("GET", "/api/v1/jobs/7", payload=job)
    fake.route("GET", "/api/v1/jobs", payload=[job])
    fake.route("GET", "/api/v1/agents/ag-1", payload=agent)
    fake.route("GET", "/api/v1/agents", payload=[agent])
    fake.route("POST", "/api/v1/agents/ag-1/revoke", payload=agent)
    fake.route("GET", "/api/v1/machines", 400,
               {"error": {"code": "bad", "message": EVIL}})
    for args in (["jobs", "show", "7"], ["jobs", "list"], ["agents", "show", "ag-1"],
                 ["agents", "list"], ["agents", "revoke", "ag-1"],
                 ["jobs", "show", "7", "--json"], ["machines", "list"]):
        r = fake.ctl(*args)
        _clean_output(r.stdout, "--json" in args)
        _clean_output(r.stderr)
    r = ok(fake.ctl("jobs", "show", "7"))
    assert "error            x?[2J??31m???2099-01-01 forged line?" in r.stdout
    assert json.loads(ok(fake.ctl("jobs", "show", "7", "--json")).stdout)["error"] == EVIL
