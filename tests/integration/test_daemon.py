"""Daemon behaviour: control listener TLS, admin socket, config check mode,
reload, restart keeps state, single instance, metrics and health."""
import http.client
import os
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import time

from harness import BIN, ROOT, Bastion, sample_report

MAC = "52:54:00:00:00:42"


def test_control_listener_uses_its_own_ca(bastion):
    r = bastion.control("GET", "/api/v1/healthz")
    assert r.status == 200 and r.json() == {"status": "ok"}
    ctx = ssl.create_default_context(cafile=bastion.ca_pem)
    with socket.create_connection(("127.0.0.1", bastion.control_port)) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            cert = t.getpeercert()
    sans = {v for _, v in cert["subjectAltName"]}
    assert {"localhost", "127.0.0.1", "10.77.0.1"} <= sans
    # The CA certificate is an EC P-256 CA; its key is 0600 and never served.
    out = subprocess.run(["openssl", "x509", "-in", bastion.ca_pem, "-noout", "-text"],
                         capture_output=True, text=True).stdout
    assert "prime256v1" in out and "CA:TRUE" in out
    key = os.path.join(bastion.state, "ca", "ca.key")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    for path in ("/ca.key", "/ca/ca.key", "/boot/ca.key"):
        assert bastion.boot("GET", path).status == 404


def test_plain_http_to_control_listener_fails(bastion):
    with socket.create_connection(("127.0.0.1", bastion.control_port), timeout=5) as s:
        s.sendall(b"GET /api/v1/healthz HTTP/1.0\r\n\r\n")
        try:
            data = s.recv(100)
        except ConnectionResetError:    # the TLS listener hangs up: fine
            data = b""
    assert b"200 OK" not in data
    assert bastion.alive()


def test_admin_socket_is_private(bastion):
    assert stat.S_IMODE(os.stat(bastion.admin_sock).st_mode) == 0o600
    assert bastion.admin("GET", "/api/v1/healthz").status == 200


def test_control_api_needs_credentials_from_everywhere(make_bastion):
    b = make_bastion(extra_conf="")
    # Listen on every address, then come in over the bridge address.
    with open(b.conf) as f:
        conf = f.read().replace("listen = 127.0.0.1:", "listen = 0.0.0.0:")
    with open(b.conf, "w") as f:
        f.write(conf)
    b.start()
    # Loopback is no longer trusted by itself...
    r = b.control("GET", "/api/v1/machines", auth=None)
    assert r.status == 401 and r.json()["error"]["code"] == "unauthenticated"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    r = b.control("GET", "/api/v1/machines", host="10.77.0.1", auth=None)
    assert r.status == 401
    # ...and a remote client with a token is served.
    assert b.control("GET", "/api/v1/machines", host="10.77.0.1").status == 200
    assert b.control("GET", "/api/v1/machines").status == 200


def test_machines_api(bastion):
    assert bastion.control("GET", "/api/v1/machines").json() == []
    bastion.dispatch(MAC)
    lst = bastion.control("GET", "/api/v1/machines").json()
    assert [m["mac"] for m in lst] == [MAC] and lst[0]["state"] == "discovering"
    assert bastion.control("GET", "/api/v1/machines?state=discovered").json() == []
    assert bastion.control("GET", "/api/v1/machines?state=bogus").status == 400
    assert bastion.control("GET", "/api/v1/machines/5254.0000.0042").json()["mac"] == MAC
    assert bastion.control("GET", "/api/v1/machines/not-a-mac").status == 400
    r = bastion.control("GET", "/api/v1/machines/52:54:00:00:00:43")
    assert r.status == 404 and r.json()["error"]["code"] == "not_found"
    assert bastion.control("GET", "/api/v1/machines/%s/events?limit=x" % MAC).status == 400
    assert bastion.control("DELETE", "/api/v1/machines/" + MAC).json() == {"forgotten": MAC}
    assert bastion.control("DELETE", "/api/v1/machines/" + MAC).status == 404
    assert bastion.control("GET", "/api/v1/machines").json() == []
    assert bastion.control("PATCH", "/api/v1/machines/" + MAC).status == 405


def test_health_ready_metrics(bastion):
    r = bastion.admin("GET", "/api/v1/readyz")
    assert r.status == 200
    body = r.json()
    assert body["ready"] and body["dnsmasq"]["running"] and body["dnsmasq"]["pid"]
    bastion.dispatch(MAC)
    bastion.boot("GET", "/nope")
    # Requests are counted when libmicrohttpd reports them complete, just
    # after the client has its answer: allow that moment.
    deadline = time.time() + 5
    while True:
        text = bastion.admin("GET", "/api/v1/metrics").text
        if 'bastion_http_requests_total{listener="boot",code="4xx"} 1' in text:
            break
        assert time.time() < deadline, text
        time.sleep(0.05)
    assert 'bastion_machines{state="discovering"} 1' in text
    assert 'bastion_machines{state="discovered"} 0' in text
    assert "bastion_dispatch_total 1" in text
    assert 'bastion_http_requests_total{listener="boot",code="4xx"} 1' in text
    assert "bastion_dnsmasq_restarts_total 0" in text


def test_restart_keeps_state_and_ca(bastion):
    bastion.dispatch(MAC)
    bastion.boot("POST", "/api/v1/discover", sample_report(MAC))
    with open(bastion.ca_pem) as f:
        ca = f.read()
    bastion.stop()
    bastion.start()
    m = bastion.admin("GET", "/api/v1/machines/" + MAC).json()
    assert m["state"] == "discovered" and m["hardware"]["memory"]["total_bytes"] == 1073741824
    with open(bastion.ca_pem) as f:
        assert f.read() == ca


def test_second_instance_refuses_the_same_state_dir(bastion):
    p = subprocess.run([os.path.join(BIN, "bastion"), "-d", "-f", bastion.conf],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode != 0
    assert "another bastion is running" in p.stderr
    assert bastion.admin("GET", "/api/v1/healthz").status == 200


def test_check_mode_reports_every_error_with_its_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[bastion]\nstate_dir = relative\n[boot]\n  listen = 10.0.0.1\n"
                    "  dhcp_mode = sideways\n[nope]\nkey = 1\n[control]\nnames = ,\n")
    p = subprocess.run([os.path.join(BIN, "bastion"), "-n", "-f", str(conf)],
                       capture_output=True, text=True)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert lines[0].startswith("%s:2: bastion.state_dir" % conf)
    assert lines[1].startswith("%s:4: boot.listen" % conf)
    assert lines[2].startswith("%s:5: boot.dhcp_mode" % conf)
    assert lines[3].startswith("%s:7: unknown key nope.key" % conf)
    assert lines[4].startswith("%s:9: control.names" % conf)
    good = Bastion()
    try:
        p = subprocess.run([os.path.join(BIN, "bastion"), "-n", "-f", good.conf],
                           capture_output=True, text=True)
        assert p.returncode == 0 and "configuration OK" in p.stdout
        assert not os.path.exists(good.state)   # -n only validates
    finally:
        good.cleanup()


def test_sighup_reloads_and_bad_config_keeps_old(bastion):
    bastion.dispatch(MAC)
    bastion.boot("POST", "/api/v1/discover", sample_report(MAC))
    assert "poweroff" not in bastion.dispatch(MAC).text
    with open(bastion.conf, "a") as f:
        f.write("[boot]\nidle_action = poweroff\n")
    bastion.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    while "poweroff" not in bastion.dispatch(MAC).text:
        assert time.time() < deadline, bastion.log()
        time.sleep(0.1)
    with open(bastion.conf, "a") as f:
        f.write("[boot]\nidle_action = explode\n")
    bastion.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while "keeping the running config" not in bastion.log():
        assert time.time() < deadline, bastion.log()
        time.sleep(0.05)
    assert "poweroff" in bastion.dispatch(MAC).text
    assert bastion.alive()


def test_config_over_admin_socket(bastion):
    c = bastion.admin("GET", "/api/v1/config").json()
    assert c["path"] == os.path.realpath(bastion.conf)
    assert c["values"]["boot.dhcp_mode"] == "full"
    assert c["values"]["boot.interface"] == "bastion0"
    r = bastion.admin("PUT", "/api/v1/config/boot.idle_action", {"value": "poweroff"})
    assert r.status == 200 and r.json()["restart_required"] is False
    before = open(bastion.conf).read()
    r = bastion.admin("PUT", "/api/v1/config/boot.idle_action", {"value": "explode"})
    assert r.status == 422 and "boot.idle_action" in r.json()["error"]["message"]
    assert bastion.admin("PUT", "/api/v1/config/boot.nope", {"value": "x"}).status == 404
    assert bastion.admin("PUT", "/api/v1/config/boot.idle_action", {"v": 1}).status == 400
    assert open(bastion.conf).read() == before
    # Only the admin socket may change the config, even for an admin.
    assert bastion.control("PUT", "/api/v1/config/boot.idle_action",
                           {"value": "exit"}).status == 404
    assert bastion.control("PUT", "/api/v1/config/boot.idle_action",
                           {"value": "exit"}, auth=None).status == 401
    deadline = time.time() + 5
    while bastion.admin("GET", "/api/v1/config").json()["values"]["boot.idle_action"] != "poweroff":
        assert time.time() < deadline
        time.sleep(0.1)


def test_garbage_on_the_wire_does_not_hurt(bastion):
    for payload in (b"\x16\x03\x01garbage\r\n\r\n", b"GET " + b"A" * 20000 + b" HTTP/1.1\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X: y\r\n" * 5000 + b"\r\n",
                    b"POST /api/v1/discover HTTP/1.1\r\nContent-Length: -5\r\n\r\n"):
        with socket.create_connection((bastion.boot_host, bastion.boot_port), timeout=5) as s:
            try:
                s.sendall(payload)
                s.recv(1000)
            except OSError:
                pass
    assert bastion.boot("GET", "/boot.ipxe").status == 200
    assert bastion.alive()


def _metric(b, name):
    for line in b.admin("GET", "/api/v1/metrics").text.splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise AssertionError("no metric " + name)


def _until(fn, what):
    deadline = time.time() + 20
    while not fn():
        assert time.time() < deadline, "timed out waiting for " + what
        time.sleep(0.05)


def _refused(b, source):
    """A TCP connection to the control listener from source: it must be
    closed by bastion at once, before any TLS."""
    s = socket.create_connection(("127.0.0.1", b.control_port), timeout=10,
                                 source_address=(source, 0))
    try:
        try:
            assert s.recv(1) == b""
        except ConnectionResetError:
            pass
    finally:
        s.close()


def test_control_connection_caps_refuse_cleanly(make_bastion):
    b = make_bastion(extra_conf="[control]\nmax_connections = 3\n"
                     "max_connections_per_address = 2\n").start()
    open_now = 'bastion_http_connections{listener="control"}'
    refused = 'bastion_http_connections_refused_total{listener="control"}'
    assert _metric(b, open_now) == 0 and _metric(b, refused) == 0
    held = []
    try:
        for _ in range(2):
            held.append(socket.create_connection(("127.0.0.1", b.control_port),
                                                 source_address=("127.0.0.1", 0)))
        _until(lambda: _metric(b, open_now) == 2, "2 connections")
        _refused(b, "127.0.0.1")        # a third from the same address
        assert _metric(b, refused) == 1
        held.append(socket.create_connection(("127.0.0.1", b.control_port),
                                             source_address=("127.0.0.2", 0)))
        _until(lambda: _metric(b, open_now) == 3, "3 connections")
        _refused(b, "127.0.0.3")        # a fourth: the listener is full
        assert _metric(b, refused) == 2
        assert _metric(b, open_now) == 3
        assert "control listener: refused a connection" in b.log()
    finally:
        for s in held:
            s.close()
    # Healthy after: the slots come back and TLS requests are answered.
    _until(lambda: _metric(b, open_now) == 0, "the connections to close")
    r = b.control("GET", "/api/v1/healthz")
    assert r.status == 200, r
    assert b.admin("GET", "/api/v1/readyz").status == 200


def test_connection_cap_config_is_checked(tmp_path):
    conf = tmp_path / "bastion.conf"
    conf.write_text("[bastion]\nstate_dir = %s\n[control]\n"
                    "max_connections = -1\nmax_connections_per_address = lots\n"
                    % (tmp_path / "state"))
    r = subprocess.run([os.path.join(BIN, "bastion"), "-n", "-f", str(conf)],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "%s:4: control.max_connections" % conf in r.stderr, r.stderr
    assert "%s:5: control.max_connections_per_address" % conf in r.stderr, r.stderr


def test_empty_share_dir_is_a_config_error():
    """Without the templates every /boot.ipxe would be a 500: bastion -n
    and the start itself say so, naming the directory."""
    b = Bastion()
    try:
        share = os.path.join(b.tmp, "share")
        os.mkdir(share)
        with open(b.conf) as f:
            text = f.read()
        with open(b.conf, "w") as f:
            f.write(text.replace("share_dir = %s\n" % ROOT, "share_dir = %s\n" % share))
        for args in (["-n"], ["-d"]):
            p = subprocess.run([os.path.join(BIN, "bastion")] + args + ["-f", b.conf],
                               capture_output=True, text=True, timeout=20)
            assert p.returncode == 1, p
            assert "share_dir %s has no ipxe/" % share in p.stderr, p.stderr
            assert "configuration OK" not in p.stdout
        assert not os.path.exists(os.path.join(b.state, "bastion.db"))
        # The panel counts too: templates without webroot/ is incomplete.
        for sub in ("ipxe", "kickstart"):
            shutil.copytree(os.path.join(ROOT, sub), os.path.join(share, sub))
        p = subprocess.run([os.path.join(BIN, "bastion"), "-n", "-f", b.conf],
                           capture_output=True, text=True)
        assert p.returncode == 1 and "has no webroot/index.html" in p.stderr, p.stderr
    finally:
        b.cleanup()


def test_state_dir_dnsmasq_cannot_reach_is_a_config_error():
    """A state dir under a private (0700) directory, as mktemp -d makes:
    dnsmasq (nobody) could not reach STATE/tftp. bastion -n says so."""
    b = Bastion()
    try:
        private = os.path.join(b.tmp, "private")
        os.mkdir(private, 0o700)
        os.chmod(private, 0o700)
        state = os.path.join(private, "state")
        with open(b.conf) as f:
            text = f.read()
        with open(b.conf, "w") as f:
            f.write(text.replace("state_dir = %s\n" % b.state, "state_dir = %s\n" % state))
        p = subprocess.run([os.path.join(BIN, "bastion"), "-n", "-f", b.conf],
                           capture_output=True, text=True)
        assert p.returncode == 1, p
        assert "%s is not searchable by others" % private in p.stderr, p.stderr
        assert "cannot reach %s/tftp" % state in p.stderr, p.stderr
        assert "choose a state_dir" in p.stderr
        os.chmod(private, 0o711)
        p = subprocess.run([os.path.join(BIN, "bastion"), "-n", "-f", b.conf],
                           capture_output=True, text=True)
        assert p.returncode == 0 and "configuration OK" in p.stdout, p
    finally:
        b.cleanup()


def test_control_request_headers_fit_or_431(bastion):
    """The control listener's per-connection memory is small (a waiting
    agent holds it): a browser-sized request still fits; an oversized one
    is answered 431 and closed (with the rest of it unread, the kernel's
    reset can overtake the answer) and the daemon carries on."""
    browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
               "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
               "Accept": "text/html,application/xhtml+xml,application/xml;"
               "q=0.9,image/avif,image/webp,*/*;q=0.8",
               "Accept-Language": "en-US,en;q=0.9",
               "Cookie": "other_app=" + "c" * 1000}
    r = bastion.control("GET", "/api/v1/healthz", headers=browser)
    assert r.status == 200, r
    try:
        r = bastion.control("GET", "/api/v1/healthz", headers={"X-Big": "b" * 8000})
        assert r.status == 431, r
    except (ConnectionResetError, http.client.RemoteDisconnected):
        pass
    assert bastion.control("GET", "/api/v1/healthz").status == 200


def test_connection_caps_change_only_at_restart(bastion):
    """The control listener takes its caps when it starts: a reload
    keeps the ones in force (and says so), the config shows those, and
    setting one says a restart is needed."""
    b = bastion
    r = b.admin("PUT", "/api/v1/config/control.max_connections", {"value": "5"})
    assert r.status == 200 and r.json()["restart_required"] is True, r
    r = b.admin("PUT", "/api/v1/config/control.max_connections_per_address",
                {"value": "1"})
    assert r.status == 200 and r.json()["restart_required"] is True, r
    b.proc.send_signal(signal.SIGHUP)
    _until(lambda: "connection caps" in b.log(), "the reload's warning")
    values = b.admin("GET", "/api/v1/config").json()["values"]
    assert values["control.max_connections"] == "20480", values
    assert values["control.max_connections_per_address"] == "1024", values
    # And 1024 is what holds: two connections from one address are fine.
    held = [socket.create_connection(("127.0.0.1", b.control_port),
                                     source_address=("127.0.0.9", 0))
            for _ in range(2)]
    try:
        _until(lambda: _metric(b, 'bastion_http_connections{listener="control"}')
               == 2, "2 connections")
        assert _metric(b, 'bastion_http_connections_refused_total'
                       '{listener="control"}') == 0
    finally:
        for s in held:
            s.close()


# --- log injection (issue 11) -------------------------------------------------

def _raw(host, port, data):
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(data)
        out = b""
        try:
            while True:
                d = s.recv(4096)
                if not d:
                    break
                out += d
        except socket.timeout:
            pass
    return out


def test_log_lines_escape_what_requests_carry(bastion):
    """A URL with %0a / %1b and a login name with a newline cannot start a
    forged log line (journald would take it for an entry of its own) nor
    reach an operator's terminal as an escape sequence."""
    forged = "2099-01-01T00:00:00.000Z auth: admin logged in from 10.0.0.1"
    q = forged.replace(" ", "%20")
    _raw(bastion.boot_host, bastion.boot_port,
         ("GET /dispatch%0a" + q + "%1b[2J%c2%9b HTTP/1.1\r\nHost: x\r\n"
          "Connection: close\r\n\r\n").encode())
    r = bastion.control("POST", "/api/v1/session",
                        {"username": "eve\n" + forged + "\x1b[2J\u009b",
                         "password": "x"}, auth=None)
    assert r.status == 401, r
    time.sleep(0.3)
    text = bastion.log()
    lines = text.splitlines()
    assert not any(l.startswith("2099-01-01") for l in lines), text[-3000:]
    assert "\x1b" not in text and "\u009b" not in text
    # Both arrived, escaped, on one line each.
    assert any("/dispatch\\n2099-01-01" in l and "\\x1b[2J" in l and
               "\\xc2\\x9b" in l for l in lines), text[-3000:]
    assert any("eve\\n2099-01-01" in l for l in lines), text[-3000:]
