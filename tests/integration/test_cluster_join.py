"""`bastionctl cluster join` (issue 17, point 4; DESIGN §16, §17): a new
bastion takes the CA and job key of a bastion of its database over the
admin API, pinned to the CA's fingerprint; the keys travel signed by the
CA and sealed to a one-time key of the joiner, so the HTTP worker that
carries them never holds them in clear. B joins A (both on one throwaway
PostgreSQL 15), starts on the same database with the keys the database
expects, and serves: an agent attached to B runs a job made on A, and its
certificate verifies against A's CA. Wrong fingerprints, non-admin
tokens, bad public keys and a state dir holding other keys are refused
with nothing written."""
import base64
import json
import os
import ssl
import stat
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agents import Agent, fingerprint, token, wait_for
from harness import BIN
from test_privsep import memory_holds, private_bytes

KEYS = ("ca.pem", "ca.key", "jobs.key")


def join(a, *args, token=None, env=None):
    """bastionctl cluster join https://127.0.0.1:A ARGS, as on the new
    machine (no admin socket of A); a may be a URL."""
    url = a if isinstance(a, str) else "https://127.0.0.1:%d" % a.control_port
    e = dict(os.environ)
    for k in ("BASTION_URL", "BASTION_SOCKET", "BASTION_TOKEN", "BASTION_CACERT"):
        e.pop(k, None)
    if token:
        e["BASTION_TOKEN"] = token
    e.update(env or {})
    return subprocess.run([os.path.join(BIN, "bastionctl"), "cluster", "join",
                           url] + list(args),
                          capture_output=True, text=True, env=e, timeout=60)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def joined_audit(a):
    return [e for e in a.admin("GET", "/api/v1/audit?limit=1000").json()
            if e["action"] == "cluster.join"]


def worker_pid(b):
    return b.child_pid("bastion-http")


def test_join_then_serve_on_the_same_database(make_bastion, pg, agents, tmp_path):
    cluster, url = pg
    conf = "[database]\nurl = %s\n" % url
    a = make_bastion(extra_conf=conf)
    a.start()
    fp = fingerprint(a.ca_pem)
    # What the operator pins: printed by A at start, and in cluster status.
    assert "ready (CA %s)" % fp in a.log()
    st = json.loads(a.ctl("cluster", "status", "--json").stdout)
    assert st["ca_fingerprint"] == fp
    assert a.ctl("cluster", "status").stdout.startswith("ca: %s\n" % fp)

    # B: a new machine, its state dir not even made yet; the state dir
    # comes from its bastion.conf. The token from a file, in openssl's
    # colon spelling of the fingerprint.
    b = make_bastion(extra_conf=conf, dhcp_mode="off")
    assert not os.path.exists(b.state)
    tok = tmp_path / "token"
    tok.write_text(a.admin_token() + "\n")
    colons = "SHA256:" + ":".join(fp[7 + i:9 + i] for i in range(0, 64, 2)).upper()
    r = join(a, "--ca-sha256", colons, "--token-file", str(tok), "--config", b.conf)
    assert r.returncode == 0, r
    assert "joined" in r.stdout and fp in r.stdout, r.stdout
    cadir = os.path.join(b.state, "ca")
    assert mode(cadir) == 0o700
    assert (mode(os.path.join(cadir, "ca.pem")), mode(os.path.join(cadir, "ca.key")),
            mode(os.path.join(cadir, "jobs.key"))) == (0o644, 0o600, 0o600)
    assert sorted(os.listdir(cadir)) == sorted(KEYS), "no temporary file left"
    for name in KEYS:
        with open(os.path.join(a.state, "ca", name), "rb") as x, \
                open(os.path.join(cadir, name), "rb") as y:
            assert x.read() == y.read(), name

    # A recorded who took the keys, from where.
    rows = joined_audit(a)
    assert len(rows) == 1, rows
    e = rows[0]
    assert e["result"] == "ok" and e["actor"].startswith("test-admin"), e
    assert e["source"] == "127.0.0.1", e
    assert "cluster join: keys sent to" in e["detail"] and "127.0.0.1" in e["detail"], e
    assert fp in e["detail"], e
    # The worker carried the keys without holding them (the signer is the
    # control that the search finds them where they are).
    ca_key = private_bytes(os.path.join(a.state, "ca", "ca.key"))
    jobs_key = private_bytes(os.path.join(a.state, "ca", "jobs.key"))
    pid = worker_pid(a)
    assert memory_holds(a.child_pid("bastion-signer"), ca_key)
    assert not memory_holds(pid, ca_key) and not memory_holds(pid, jobs_key)
    with open(os.path.join(a.state, "ca", "ca.key"), "rb") as f:
        pem_line = f.read().splitlines()[1]
    assert not memory_holds(pid, pem_line)

    # B starts on the same database: its keys are the database's.
    b.start()
    st = json.loads(b.ctl("cluster", "status", "--json").stdout)
    assert st["ca_fingerprint"] == fp
    assert sorted(x["url"] for x in st["bastions"] if x["up"]) == sorted(
        "https://10.77.0.1:%d" % x.control_port for x in (a, b)), st
    # An agent enrolls through B: its certificate is A's CA's, and it runs
    # what an operator of A asks (the job key is the same).
    ag = Agent(b, "node1", token(a), "52:54:00:a0:00:11")
    agents.append(ag.start())
    wait_for(lambda: any(x["hostname"] == "node1" and x.get("heartbeat") for x in
                         a.admin("GET", "/api/v1/agents").json()),
             what="the agent to heartbeat through B")
    v = subprocess.run(["openssl", "verify", "-CAfile", a.ca_pem,
                        os.path.join(ag.state, "cert.pem")], capture_output=True, text=True)
    assert v.returncode == 0, v
    r = a.ctl("exec", "node1", "--", "echo", "made on A, run through B")
    assert r.returncode == 0 and r.stdout == "made on A, run through B\n", r

    # Joining again while B runs is refused (its keys are loaded); once B
    # is stopped, the same keys are "nothing to do".
    r = join(a, "--ca-sha256", fp, "--state-dir", b.state, token=a.admin_token())
    assert r.returncode == 1 and "bastion is running" in r.stderr, r
    b.stop()
    r = join(a, "--ca-sha256", fp, "--state-dir", b.state, token=a.admin_token())
    assert r.returncode == 0 and "nothing to do" in r.stdout, r


def test_join_refusals(make_bastion, pg, tmp_path):
    cluster, url = pg
    conf = "[database]\nurl = %s\n" % url
    a = make_bastion(extra_conf=conf)
    a.start()
    fp = fingerprint(a.ca_pem)
    admin = a.admin_token()
    target = str(tmp_path / "state")

    # A wrong fingerprint: refused before any token is sent, nothing
    # written.
    wrong = fp[:-1] + ("0" if fp[-1] != "0" else "1")
    r = join(a, "--ca-sha256", wrong, "--state-dir", target, token=admin)
    assert r.returncode == 1, r
    assert "not the pinned %s" % wrong in r.stderr and fp in r.stderr, r
    assert not os.path.exists(target)

    # Only an admin (with an admin-scope token) gets the keys.
    a.add_user("vera", "viewer")
    a.add_user("otto", "operator")
    for user, scope in (("vera", "read"), ("otto", "provision"), ("otto", "exec"),
                        ("test-admin", "read"), ("test-admin", "exec")):
        r = join(a, "--ca-sha256", fp, "--state-dir", target,
                 token=a.make_token(user, scope))
        assert r.returncode == 1, (user, scope, r)
        assert "needs" in r.stderr and ("admin" in r.stderr), (user, scope, r.stderr)
        assert not os.path.exists(target)
    assert joined_audit(a) and all(e["result"] != "ok" for e in joined_audit(a))

    # Usage errors: exit 2, nothing asked.
    for args, env_token in ((["--state-dir", target], admin),            # no pin
                            (["--ca-sha256", "sha256:abc", "--state-dir", target], admin),
                            (["--ca-sha256", fp, "--state-dir", target], None),  # no token
                            (["--ca-sha256", fp, "--state-dir", "relative"], admin),
                            (["--ca-sha256", fp, "--state-dir", target,
                              "--config", "/etc/bastion/bastion.conf"], admin)):
        r = join(a, *args, token=env_token)
        assert r.returncode == 2, (args, r)
    r = subprocess.run([os.path.join(BIN, "bastionctl"), "cluster", "join",
                        "http://127.0.0.1:%d" % a.control_port, "--ca-sha256", fp],
                       capture_output=True, text=True, env={"BASTION_TOKEN": admin})
    assert r.returncode == 2 and "https://" in r.stderr, r

    # The route itself: bad input is a 4xx JSON error.
    def post(body, ctype="application/json"):
        return a.control("POST", "/api/v1/cluster/join", body,
                         headers={"Content-Type": ctype})
    for body, code in (({"public_key": base64.b64encode(b"\x09" * 31).decode()},
                        "bad_public_key"),
                       ({"public_key": base64.b64encode(b"\x09" * 33).decode()},
                        "bad_public_key"),
                       ({"public_key": "not base64!"}, "bad_public_key"),
                       ({"public_key": 42}, "bad_public_key"),
                       ({}, "bad_public_key"),
                       ({"public_key": base64.b64encode(bytes(32)).decode()},
                        "bad_public_key"),                      # small order
                       ({"public_key": base64.b64encode(b"\x09" * 32).decode(),
                         "name": "no spaces allowed"}, "bad_name"),
                       ("{not json", "bad_json")):
        r = post(body)
        assert r.status == 400, (body, r)
        assert r.json()["error"]["code"] == code, (body, r)
    r = post(json.dumps({"public_key": "x"}), ctype="text/plain")
    assert r.status == 415 and r.json()["error"]["code"], r
    r = post({"public_key": "A" * 4096})
    assert r.status == 413, r

    # A state dir whose CA is its own (a bastion that started alone):
    # refused without --force, files untouched; --force replaces them and
    # keeps the old ones.
    c = make_bastion()
    c.start()
    c.stop()
    cadir = os.path.join(c.state, "ca")
    before = {n: open(os.path.join(cadir, n), "rb").read() for n in KEYS}
    r = join(a, "--ca-sha256", fp, "--state-dir", c.state, token=admin)
    assert r.returncode == 1 and "other keys" in r.stderr and "--force" in r.stderr, r
    assert {n: open(os.path.join(cadir, n), "rb").read() for n in KEYS} == before
    r = join(a, "--ca-sha256", fp, "--state-dir", c.state, "--force", token=admin)
    assert r.returncode == 0, r
    for n in KEYS:
        assert open(os.path.join(cadir, n + ".old"), "rb").read() == before[n]
        assert open(os.path.join(cadir, n), "rb").read() == \
            open(os.path.join(a.state, "ca", n), "rb").read()
    assert fingerprint(os.path.join(cadir, "ca.pem")) == fp
    assert a.alive()


def test_join_is_rate_limited_per_address(bastion):
    """A handful of joins a minute per address; the 429 says when to come
    back. Refusals before the handler (401/403) do not count."""
    pub = base64.b64encode(b"\x09" * 32).decode()
    for i in range(5):
        r = bastion.control("POST", "/api/v1/cluster/join", {"public_key": pub})
        assert r.status == 200, (i, r)
        assert set(r.json()) == {"algorithm", "ca_fingerprint", "sealed"}
    r = bastion.control("POST", "/api/v1/cluster/join", {"public_key": pub})
    assert r.status == 429 and r.json()["error"]["code"] == "rate_limited", r
    assert r.headers.get("Retry-After") == "60"
    # Another address (the admin socket) has its own allowance.
    assert bastion.admin("POST", "/api/v1/cluster/join", {"public_key": pub}).status == 200


class Impostor(BaseHTTPRequestHandler):
    """Answers at a bastion's address with its public CA certificate but
    a TLS certificate of its own: what someone between the bastions
    could do. Records every request that reaches it."""
    ca_pem = b""
    seen = []

    def do_GET(self):
        self.seen.append(("GET", self.path, self.headers.get("Authorization")))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-pem-file")
        self.send_header("Content-Length", str(len(self.ca_pem)))
        self.end_headers()
        self.wfile.write(self.ca_pem)

    def do_POST(self):
        self.seen.append(("POST", self.path, self.headers.get("Authorization")))
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_join_refuses_a_server_whose_certificate_is_not_the_pinned_cas(bastion, tmp_path):
    """The pin is on the CA, and the TLS connection that carries the token
    must chain to it: a server that shows the right ca.pem but cannot
    present a certificate of that CA never sees the token."""
    key, cert = str(tmp_path / "k.pem"), str(tmp_path / "c.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=impostor", "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    Impostor.ca_pem = open(bastion.ca_pem, "rb").read()
    Impostor.seen = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Impostor)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        target = str(tmp_path / "state")
        r = join("https://127.0.0.1:%d" % srv.server_address[1], "--ca-sha256",
                 fingerprint(bastion.ca_pem), "--state-dir", target,
                 token=bastion.admin_token())
        assert r.returncode == 1, r
        assert "not trusted" in r.stderr and "pinned CA" in r.stderr, r.stderr
        assert not os.path.exists(target)
        # It was asked for the CA (public, no token), and nothing else.
        assert Impostor.seen == [("GET", "/ca.pem", None)], Impostor.seen
    finally:
        srv.shutdown()
        srv.server_close()
        t.join()
