"""Fleet attention and alerts (DESIGN §14) against real processes: a real
agentd's heartbeat health, a loop-mounted file system filled to trip
disk_low, agentd stopped and restarted for heartbeat_stale, sysfs
fixtures and captured smartctl --json outputs for temperature and SMART,
and every channel type delivered to a local server: a real SMTP server
(aiosmtpd, from Debian's python3-aiosmtpd) and a local HTTP receiver for
the webhook (its HMAC signature checked), ntfy, Gotify and Telegram (their
servers are not packaged: the requests are checked against the shapes
their public API documentation gives)."""
import hashlib
import hmac
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from agents import enrolled_agent, wait_for
from harness import BIN, free_port, sample_report

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "health")
SECRET = "webhook-test-secret"


class Receiver:
    """A local HTTP server that records every request and answers 200 (or
    status)."""

    def __init__(self, status=200):
        self.requests = []
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                rec.requests.append({"path": self.path,
                                     "headers": dict(self.headers.items()),
                                     "body": body})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def url(self, path=""):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()

    def webhooks(self, status=None, reason=None):
        out = []
        for r in self.requests:
            try:
                j = json.loads(r["body"])
            except ValueError:
                continue
            if not isinstance(j, dict) or "status" not in j:
                continue
            if status and j["status"] != status:
                continue
            if reason and not any(x["reason"] == reason for x in j["reasons"]):
                continue
            out.append((r, j))
        return out


class Smtp:
    """aiosmtpd on a free port, keeping every message."""

    def __init__(self):
        from aiosmtpd.controller import Controller
        self.messages = []
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                outer.messages.append({"from": envelope.mail_from,
                                       "to": list(envelope.rcpt_tos),
                                       "data": envelope.content.decode()})
                return "250 OK"

        self.port = free_port()
        self.c = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.c.start()

    def close(self):
        self.c.stop()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def smtp():
    s = Smtp()
    yield s
    s.close()


def conf(channels="", alerts=""):
    return ("[agent]\nheartbeat_interval = 5\n"
            "[alerts]\nstale_after = 8\nrecompute_interval = 1\n"
            "repeat_interval = 0\n" + alerts + channels)


def attention_of(b, node):
    for n in b.admin("GET", "/api/v1/attention?all=1").json():
        if n["hostname"] == node:
            return n
    return None


def has_reason(b, node, reason, subject=None):
    n = attention_of(b, node)
    return n and any(r["reason"] == reason and (subject is None or
                                                r["subject"] == subject)
                     for r in n["reasons"])


def audit_actions(b):
    return [e["action"] for e in b.admin("GET", "/api/v1/audit?limit=1000").json()]


def verify_sig(req):
    sig = req["headers"].get("X-Bastion-Signature", "")
    want = "sha256=" + hmac.new(SECRET.encode(), req["body"],
                                hashlib.sha256).hexdigest()
    return hmac.compare_digest(sig, want)


@pytest.fixture
def loopfs(tmp_path):
    """A 16 MiB ext4 file system, loop-mounted."""
    img = tmp_path / "fs.img"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["truncate", "-s", "16M", str(img)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(img)], check=True)
    subprocess.run(["mount", "-o", "loop", str(img), str(mnt)], check=True)
    try:
        yield str(mnt)
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_disk_low_stale_webhook_and_email(make_bastion, agents, receiver, smtp,
                                          loopfs):
    b = make_bastion(extra_conf=conf(
        "[channel hook]\ntype = webhook\nurl = %s\nsecret = %s\n"
        "[channel mail]\ntype = email\nurl = smtp://127.0.0.1:%d\n"
        "from = bastion@test.lan\nto = ops@test.lan, oncall@test.lan\n"
        % (receiver.url("/hook"), SECRET, smtp.port),
        "disk_warning = 60\ndisk_critical = 90\n")).start()
    a = enrolled_agent(b, "node1")
    agents.append(a)
    # The heartbeat carries the health fields, the loop mount among them.
    hb = wait_for(lambda: (lambda x: x if any(
        m["mount"] == loopfs for m in x["heartbeat"].get("mounts", [])) else None)(
        b.admin("GET", "/api/v1/agents/node1").json()), 20, "the loop mount")
    hb = hb["heartbeat"]
    assert hb["cpus"] >= 1 and hb["memory"]["available_bytes"] > 0
    assert len(hb["load"]) == 3 and "temperatures" in hb
    assert not has_reason(b, "node1", "disk_low", loopfs)

    # Fill it: disk_low opens (critical), both channels are told.
    subprocess.run(["dd", "if=/dev/zero", "of=" + os.path.join(loopfs, "fill"),
                    "bs=1M", "count=15", "status=none"], check=False)
    wait_for(lambda: has_reason(b, "node1", "disk_low", loopfs), 30,
             "disk_low on the loop mount")
    req, body = wait_for(lambda: next(iter(
        [(r, j) for r, j in receiver.webhooks("firing", "disk_low")
         if j["reasons"][0]["subject"] == loopfs]), None), 30, "the webhook")
    assert req["path"] == "/hook" and verify_sig(req)
    assert req["headers"]["Content-Type"] == "application/json"
    assert body["node"] == "node1" and body["level"] == "critical"
    assert body["reasons"][0]["level"] == "critical"
    assert "full" in body["reasons"][0]["message"]
    mail = wait_for(lambda: next(iter([m for m in smtp.messages
                                       if "disk_low " + loopfs in m["data"]]),
                                     None), 30, "the mail")
    assert mail["from"] == "bastion@test.lan"
    assert sorted(mail["to"]) == ["oncall@test.lan", "ops@test.lan"]
    subject = [line for line in mail["data"].splitlines()
               if line.startswith("Subject: ")][0]
    assert "FIRING critical node1: disk_low " + loopfs in subject
    assert loopfs + " is" in mail["data"] and "% full" in mail["data"]
    # Shown everywhere: attention (CLI and API), alerts list.
    out = b.ctl("attention", "--json")
    assert out.returncode == 0, out
    node = [n for n in json.loads(out.stdout) if n["hostname"] == "node1"][0]
    assert node["level"] == "critical"
    out = b.ctl("attention")
    assert out.returncode == 0 and "disk_low " + loopfs in out.stdout, out
    out = b.ctl("alerts", "list", "--json")
    assert any(al["reason"] == "disk_low" and al["state"] == "open"
               for al in json.loads(out.stdout)), out.stdout
    # Dedup: the open alert is not sent again (repeat_interval = 0).
    n_fire = len([j for _, j in receiver.webhooks("firing", "disk_low")
                  if j["reasons"][0]["subject"] == loopfs])
    time.sleep(3)
    assert len([j for _, j in receiver.webhooks("firing", "disk_low")
                if j["reasons"][0]["subject"] == loopfs]) == n_fire == 1

    # Emptied: resolved, and said so.
    os.unlink(os.path.join(loopfs, "fill"))
    wait_for(lambda: not has_reason(b, "node1", "disk_low", loopfs), 30,
             "disk_low to go")
    req, body = wait_for(lambda: next(iter(
        [(r, j) for r, j in receiver.webhooks("resolved", "disk_low")
         if j["reasons"][0]["subject"] == loopfs]), None), 30,
        "the resolved webhook")
    assert verify_sig(req)
    wait_for(lambda: any("RESOLVED" in m["data"] and "disk_low " + loopfs in
                         m["data"] for m in smtp.messages), 30,
             "the resolved mail")

    # agentd stopped: heartbeat_stale; started again: resolved.
    a.stop()
    wait_for(lambda: has_reason(b, "node1", "heartbeat_stale"), 30,
             "heartbeat_stale")
    wait_for(lambda: receiver.webhooks("firing", "heartbeat_stale"), 30,
             "the stale webhook")
    a.start()
    wait_for(lambda: not has_reason(b, "node1", "heartbeat_stale"), 30,
             "heartbeat_stale to go")
    wait_for(lambda: receiver.webhooks("resolved", "heartbeat_stale"), 30,
             "the stale resolved webhook")
    acts = audit_actions(b)
    assert acts.count("alert.open") >= 2 and acts.count("alert.resolve") >= 2
    out = b.ctl("channels", "list", "--json")
    chans = {c["name"]: c for c in json.loads(out.stdout)}
    assert chans["hook"]["delivered"] >= 4 and chans["hook"]["failed"] == 0
    assert chans["mail"]["delivered"] >= 2
    assert chans["hook"]["has_secret"] and "secret" not in chans["hook"]


def make_fixture_root(tmp_path, smart_json):
    root = tmp_path / "root"
    shutil.copytree(os.path.join(DATA, "sysfs-hot"), str(root))
    smartctl = tmp_path / "smartctl"
    smartctl.write_text("#!/bin/sh\nexec cat %s\n" % os.path.join(
        os.path.abspath(DATA), "smart", smart_json))
    smartctl.chmod(0o755)
    return str(root), str(smartctl)


def test_fixtures_temperature_smart_memory_load(make_bastion, agents, receiver,
                                                tmp_path):
    b = make_bastion(extra_conf=conf(
        "[channel crit]\ntype = webhook\nurl = %s\nmin_level = critical\n"
        % receiver.url("/crit"))).start()
    root, smartctl = make_fixture_root(tmp_path, "failing.json")
    a = enrolled_agent(b, "hot1", extra="inventory_root = %s\nsmartctl = %s\n"
                       % (root, smartctl))
    agents.append(a)
    wait_for(lambda: has_reason(b, "hot1", "smart_failing", "sda"), 30,
             "smart_failing")
    n = attention_of(b, "hot1")
    reasons = {(r["reason"], r["subject"]): r for r in n["reasons"]}
    # 95 °C against the sensor's own 100 °C critical point and the
    # defaults 80/90: critical. The thermal zone at 83: warning.
    assert reasons[("temperature_high", "coretemp/Package id 0")]["level"] == "critical"
    assert reasons[("temperature_high", "thermal_zone0/x86_pkg_temp")]["level"] == "warning"
    assert ("temperature_high", "coretemp/temp2") not in reasons
    assert ("temperature_high", "nvme/temp1") not in reasons
    assert reasons[("smart_failing", "sda")]["level"] == "critical"
    assert reasons[("memory_high", "")]["level"] == "critical"   # 98 % used
    assert reasons[("load_high", "")]["level"] == "critical"     # 9.5 on 2
    assert n["level"] == "critical"
    hb = b.admin("GET", "/api/v1/agents/hot1").json()["heartbeat"]
    assert hb["smart"] == [{"device": "sda", "passed": False, "celsius": 40,
                            "model": "WDC WD40EFRX-68N32N0"}]
    # min_level = critical: only critical reasons reach that channel.
    wait_for(lambda: receiver.webhooks("firing", "smart_failing"), 30,
             "the SMART webhook")
    time.sleep(2)
    assert not [j for _, j in receiver.webhooks("firing")
                if j["level"] != "critical"]

    # A silence: audited, listed, and the reason it covers is not sent.
    out = b.ctl("alerts", "silence", "hot1", "agent_outdated", "--for", "2h")
    assert out.returncode == 0 and "silenced agent_outdated on hot1" in out.stdout
    assert "alert.silence" in audit_actions(b)
    out = b.ctl("alerts", "silences", "--json")
    assert json.loads(out.stdout)[0]["reason"] == "agent_outdated"
    assert b.ctl("alerts", "silence", "hot1", "no_such", "--for", "2h").returncode == 1
    assert b.ctl("alerts", "silence", "hot1", "disk_low").returncode == 2


def test_repeat_interval(make_bastion, agents, receiver, tmp_path):
    """An alert still open is sent again after repeat_interval, not
    before (dedup)."""
    b = make_bastion(extra_conf=conf(
        "[channel hook]\ntype = webhook\nurl = %s\n" % receiver.url("/r"),
    ).replace("repeat_interval = 0", "repeat_interval = 4")).start()
    root, smartctl = make_fixture_root(tmp_path, "failing.json")
    agents.append(enrolled_agent(b, "rep1", extra="inventory_root = %s\n"
                                 "smartctl = %s\n" % (root, smartctl)))
    first = wait_for(lambda: receiver.webhooks("firing", "smart_failing"), 30,
                     "the first notice")
    t0 = time.time()
    wait_for(lambda: len(receiver.webhooks("firing", "smart_failing")) >= 2,
             30, "the repeated notice")
    assert time.time() - t0 >= 2.5, "repeated before repeat_interval"
    assert first[0][1]["alert_id"] == receiver.webhooks(
        "firing", "smart_failing")[1][1]["alert_id"]
    assert len(b.admin("GET", "/api/v1/alerts?state=open").json()) >= 1


def test_passing_smart_and_no_smartctl(make_bastion, agents, tmp_path):
    b = make_bastion(extra_conf=conf()).start()
    # A discovered machine whose agent this is: machines list shows its
    # attention.
    assert b.dispatch("52:54:00:a0:00:01").status == 200
    assert b.boot("POST", "/api/v1/discover",
                  sample_report("52:54:00:a0:00:01")).status == 200
    root, smartctl = make_fixture_root(tmp_path, "passing.json")
    a = enrolled_agent(b, "cool1", extra="inventory_root = %s\nsmartctl = %s\n"
                       % (root, smartctl))
    agents.append(a)
    hb = wait_for(lambda: b.admin("GET", "/api/v1/agents/cool1").json()[
        "heartbeat"].get("smart"), 20, "smart in the heartbeat")
    assert hb == [{"device": "sda", "passed": True, "celsius": 38,
                   "model": "Samsung SSD 980 PRO 1TB"}]
    wait_for(lambda: attention_of(b, "cool1"), 20, "attention")
    assert not has_reason(b, "cool1", "smart_failing")
    # The fixture's memory and load are critical; SMART passed.
    # (The machine may show an earlier pass first, made before this
    # heartbeat: its level is what the next pass says.)
    m = wait_for(lambda: (lambda x: x if (x.get("attention") or {}).get(
        "level") == "critical" else None)(
        b.admin("GET", "/api/v1/machines").json()[0]), 20,
        "critical attention on the machine")
    assert {r["reason"] for r in m["attention"]["reasons"]} >= {"memory_high", "load_high"}
    out = b.ctl("machines", "list")
    assert out.returncode == 0, out
    header, row = out.stdout.splitlines()[:2]
    assert row[header.index("ATTENTION"):].strip() == "critical", out.stdout
    # smartmontools missing: no "smart" at all, not an error.
    a2 = enrolled_agent(b, "nosmart", mac="52:54:00:a0:00:02",
                        extra="inventory_root = %s\nsmartctl = /nonexistent/smartctl\n"
                        % root)
    agents.append(a2)
    assert "smart" not in b.admin("GET", "/api/v1/agents/nosmart").json()["heartbeat"]


def test_ntfy_gotify_telegram_shapes(make_bastion, receiver):
    b = make_bastion(extra_conf=conf(
        "[channel nt]\ntype = ntfy\nurl = %s\ntoken = tk_ntfy\n"
        "[channel go]\ntype = gotify\nurl = %s\ntoken = AppTok.1\n"
        "[channel tg]\ntype = telegram\nurl = %s\ntoken = 123:ABC\nto = -1001\n"
        "[channel rl]\ntype = webhook\nurl = %s\nrate_limit = 1\n"
        % (receiver.url("/alerts"), receiver.url("/gotify/"),
           receiver.url("/tg"), receiver.url("/rl")))).start()
    for name in ("nt", "go", "tg"):
        out = b.ctl("channels", "test", name)
        assert out.returncode == 0 and "delivered" in out.stdout, out
    reqs = {r["path"]: r for r in receiver.requests}
    # ntfy: POST /<topic>, the message as the body, Title/Priority/Tags
    # headers, a bearer access token.
    nt = reqs["/alerts"]
    assert nt["body"].decode().startswith("This is a test message")
    assert nt["headers"]["Title"].startswith("[bastion] test message")
    assert nt["headers"]["Priority"] in ("1", "2", "3", "4", "5")
    assert nt["headers"]["Authorization"] == "Bearer tk_ntfy"
    # Gotify: POST /message with X-Gotify-Key, JSON title/message/priority.
    go = reqs["/gotify/message"]
    assert go["headers"]["X-Gotify-Key"] == "AppTok.1"
    j = json.loads(go["body"])
    assert set(j) == {"title", "message", "priority"} and isinstance(j["priority"], int)
    # Telegram Bot API: POST /bot<token>/sendMessage, JSON chat_id + text.
    tg = reqs["/tg/bot123:ABC/sendMessage"]
    j = json.loads(tg["body"])
    assert j["chat_id"] == "-1001" and "test message" in j["text"]
    assert tg["headers"]["Content-Type"] == "application/json"
    # The rate limit: one message an hour on rl, the second is recorded
    # as an error and never sent.
    assert b.ctl("channels", "test", "rl").returncode == 0
    out = b.ctl("channels", "test", "rl")
    assert out.returncode == 1 and "rate limit" in out.stdout, out
    assert len([r for r in receiver.requests if r["path"] == "/rl"]) == 1
    out = b.ctl("channels", "list")
    assert out.returncode == 0 and "telegram" in out.stdout
    assert "ABC" not in out.stdout and "AppTok" not in out.stdout


def test_closed_port_and_metadata_refused(make_bastion):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed = s.getsockname()[1]
    s.close()
    b = make_bastion(extra_conf=conf(
        "[channel dead]\ntype = webhook\nurl = http://127.0.0.1:%d/x\nretries = 1\n"
        "[channel meta]\ntype = webhook\nurl = http://169.254.169.254/latest/meta-data\n"
        "[channel meta6]\ntype = ntfy\nurl = http://[fe80::1%%25lo]:80/t\n"
        % closed)).start()
    t0 = time.time()
    out = b.ctl("channels", "test", "dead")
    assert out.returncode == 1 and "failed after 2 attempts" in out.stdout, out
    assert time.time() - t0 < 30
    # Bastion is unaffected: it answers, and the error is recorded.
    assert b.admin("GET", "/api/v1/healthz").status == 200
    d = b.admin("GET", "/api/v1/channels/dead/deliveries").json()[0]
    assert d["result"] == "error" and d["kind"] == "test" and d["error"]
    out = b.ctl("channels", "test", "meta")
    assert out.returncode == 1 and "refused" in out.stdout, out
    d = b.admin("GET", "/api/v1/channels/meta/deliveries").json()[0]
    assert d["attempts"] == 1 and "link-local" in d["error"]
    out = b.ctl("channels", "test", "meta6")
    assert out.returncode == 1 and "refused" in out.stdout, out
    chans = {c["name"]: c for c in json.loads(b.ctl("channels", "list",
                                                     "--json").stdout)}
    assert chans["dead"]["failed"] == 1 and chans["meta"]["failed"] == 1
    assert "channel.test" in audit_actions(b)
    assert b.ctl("channels", "test", "nope").returncode == 1


def test_config_checks(make_bastion):
    b = make_bastion(extra_conf="[channel x]\ntype = email\nurl = http://a\n"
                     "[channel y]\ntype = pager\n"
                     "[alerts]\ndisk_warning = 99\ndisk_critical = 50\n")
    r = subprocess.run([os.path.join(BIN, "bastion"), "-n", "-f", b.conf],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "[channel y] type" in r.stderr
    assert "critical threshold is below" in r.stderr


def tls_pair(tmp_path):
    cert, key = str(tmp_path / "smtp.pem"), str(tmp_path / "smtp.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1",
                    "-keyout", key, "-out", cert], check=True,
                   capture_output=True)
    return cert, key


def test_email_starttls_and_smtps_with_auth(make_bastion, tmp_path):
    """aiosmtpd requiring STARTTLS and AUTH (smtp+starttls://), and the
    same behind implicit TLS (smtps://), both with the test's CA."""
    import ssl
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult
    cert, key = tls_pair(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    got, logins = [], []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            got.append((session.ssl is not None, envelope.content.decode()))
            return "250 OK"

    def auth(server, session, envelope, mechanism, data):
        logins.append((mechanism, data.login, data.password))
        return AuthResult(success=(data.login, data.password) ==
                          (b"bastion", b"s3cret"))

    p1, p2 = free_port(), free_port()
    c1 = Controller(Handler(), hostname="127.0.0.1", port=p1, tls_context=ctx,
                    require_starttls=True, authenticator=auth,
                    auth_required=True, auth_require_tls=True)
    c2 = Controller(Handler(), hostname="127.0.0.1", port=p2, ssl_context=ctx,
                    server_hostname="127.0.0.1", authenticator=auth,
                    auth_required=True, auth_require_tls=False)
    c1.start()
    c2.start()
    try:
        b = make_bastion(extra_conf=conf())
        # The HTTP worker (user bastion) reads the CA bundle: in its tree.
        ca = os.path.join(b.tmp, "smtp-ca.pem")
        shutil.copy(cert, ca)
        os.chmod(ca, 0o644)
        with open(b.conf, "a") as f:
            f.write("[channel tls]\ntype = email\nurl = smtp+starttls://127.0.0.1:%d\n"
                    "user = bastion\npassword = s3cret\nfrom = b@test.lan\n"
                    "to = ops@test.lan\ncacert = %s\n"
                    "[channel smtps]\ntype = email\nurl = smtps://127.0.0.1:%d\n"
                    "user = bastion\npassword = s3cret\nfrom = b@test.lan\n"
                    "to = ops@test.lan\ncacert = %s\n"
                    "[channel badpw]\ntype = email\nurl = smtp+starttls://127.0.0.1:%d\n"
                    "user = bastion\npassword = wrong\nfrom = b@test.lan\n"
                    "to = ops@test.lan\ncacert = %s\nretries = 0\n"
                    "[channel noca]\ntype = email\nurl = smtp+starttls://127.0.0.1:%d\n"
                    "from = b@test.lan\nto = ops@test.lan\nretries = 0\n"
                    % (p1, ca, p2, ca, p1, ca, p1))
        b.start()
        for name in ("tls", "smtps"):
            out = b.ctl("channels", "test", name)
            assert out.returncode == 0 and "delivered" in out.stdout, out
        assert len(got) == 2
        for tls, data in got:
            assert "Subject: [bastion] test message for channel" in data
            assert "channel" in data.split("\r\n\r\n", 1)[-1] or "works" in data
        assert got[0][0]   # the message came over the STARTTLS session
        assert logins[0][1:] == (b"bastion", b"s3cret")
        out = b.ctl("channels", "test", "badpw")
        assert out.returncode == 1 and "failed" in out.stdout, out
        # The server's certificate is checked: without the CA, no mail.
        out = b.ctl("channels", "test", "noca")
        assert out.returncode == 1 and "failed" in out.stdout, out
        assert len(got) == 2
    finally:
        c1.stop()
        c2.stop()
