"""Node agents with real TLS: enrollment with join tokens, mTLS agent
calls, signed jobs run by a real agentd (each in its own state dir), the
CLI, revocation, and bastion restarts in the middle of a job.

Tests that take `agentd_bin` run twice: with the libcurl build (agentd)
and with the static node build (agentd-static, client_tls.c), which is
the one the kickstart installs."""
import json
import os
import pathlib
import re
import shutil
import socket
import sqlite3
import ssl
import subprocess
import time

import pytest

from agents import (Agent, enrolled_agent, fingerprint, job_done, token, wait_for,
                    waiting_polls)
from harness import BIN, SANITIZER_MARKERS, Bastion

AGENTDS = ("agentd", "agentd-static")


@pytest.fixture(params=AGENTDS)
def agentd_bin(request):
    """Each agentd build in turn (its file name in build/bin)."""
    return request.param


def test_enroll_verify_heartbeat(bastion, agents, agentd_bin):
    a = enrolled_agent(bastion, binary=agentd_bin)
    agents.append(a)
    cert = os.path.join(a.state, "cert.pem")
    r = subprocess.run(["openssl", "verify", "-CAfile", bastion.ca_pem, cert],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "OK" in r.stdout, r
    # The key never left the node and is private to agentd.
    assert os.stat(os.path.join(a.state, "key.pem")).st_mode & 0o077 == 0
    subj = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-subject",
                           "-ext", "extendedKeyUsage"], capture_output=True,
                          text=True).stdout
    ag = bastion.admin("GET", "/api/v1/agents/node1").json()
    assert "CN = " + ag["id"] in subj and "Client Authentication" in subj
    assert ag["mac"] == "52:54:00:a0:00:01" and not ag["revoked"]
    assert ag["heartbeat"]["load"] and ag["cert_expires_at"]
    out = bastion.ctl("agents", "list", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)[0]["id"] == ag["id"]
    out = bastion.ctl("agents", "show", "52-54-00-A0-00-01")
    assert out.returncode == 0 and ag["id"] in out.stdout
    toks = json.loads(bastion.ctl("tokens", "list", "--json").stdout)
    assert toks[0]["state"] == "used" and "hash" not in toks[0]
    if agentd_bin == "agentd-static":
        # mbedTLS 2.28 speaks TLS 1.2 only: bastion's control listener
        # (GnuTLS) must take it, with forward secrecy and an AEAD.
        a.wait_log(r"client: 127\.0\.0\.1: TLSv1\.2, TLS-ECDHE-ECDSA-WITH-"
                   r"(AES-\d+-GCM|CHACHA20-POLY1305)-SHA\d+")


def test_exec_output_and_exit_codes(bastion, agents, agentd_bin):
    agents.append(enrolled_agent(bastion, binary=agentd_bin))
    r = bastion.ctl("exec", "node1", "--", "sh", "-c",
                    "echo out; echo err >&2; exit 7")
    assert r.returncode == 7, r
    assert r.stdout == "out\n" and "err" in r.stderr
    r = bastion.ctl("exec", "52:54:00:a0:00:01", "--", "true")
    assert r.returncode == 0, r
    r = bastion.ctl("exec", "--env", "GREETING=hi there", "--cwd", "/tmp",
                    "node1", "--", "sh", "-c", 'echo "$GREETING from $(pwd)"')
    assert r.returncode == 0 and r.stdout == "hi there from /tmp\n", r
    r = bastion.ctl("exec", "node1", "--", "/nonexistent/command")
    assert r.returncode == 127 and "cannot execute" in r.stderr, r
    # A job inherits stdin, stdout and stderr, nothing of agentd's (LVM
    # tools, for one, complain of any other descriptor).
    r = bastion.ctl("exec", "node1", "--", "sh", "-c", "ls /proc/$$/fd")
    assert r.returncode == 0 and r.stdout.split() == ["0", "1", "2"], r
    jobs = json.loads(bastion.ctl("jobs", "list", "--json").stdout)
    assert len(jobs) == 5 and jobs[-1]["exit_code"] == 7
    r = bastion.ctl("jobs", "output", str(jobs[-1]["id"]))
    assert r.stdout == "out\n" and "err" in r.stderr
    r = bastion.ctl("jobs", "show", str(jobs[-1]["id"]))
    assert "exit code" in r.stdout and "7" in r.stdout


def test_exec_timeout_kills(bastion, agents, agentd_bin):
    agents.append(enrolled_agent(bastion, binary=agentd_bin))
    t0 = time.time()
    r = bastion.ctl("exec", "--timeout", "1", "--grace", "1", "node1", "--",
                    "sh", "-c", "echo started; sleep 60")
    assert r.returncode == 128 + 15, r
    assert "started" in r.stdout and "timed out" in r.stderr
    assert time.time() - t0 < 20
    job = json.loads(bastion.ctl("jobs", "list", "--json").stdout)[0]
    assert job["timed_out"] and job["signal"] == 15
    # A command that ignores SIGTERM gets SIGKILL after the grace.
    r = bastion.ctl("exec", "--timeout", "1", "--grace", "1", "node1", "--",
                    "sh", "-c", "trap '' TERM; sleep 60")
    assert r.returncode == 128 + 9, r


def sql(b, query, *args):
    db = sqlite3.connect(os.path.join(b.state, "bastion.db"), timeout=10)
    try:
        cur = db.execute(query, args)
        rows = cur.fetchall()
        db.commit()
        return rows
    finally:
        db.close()


def test_altered_job_is_refused(bastion, agents):
    a = enrolled_agent(bastion)
    agents.append(a)
    a.stop()
    r = bastion.admin("POST", "/api/v1/jobs", {"target": "node1", "kind": "exec",
                      "args": {"argv": ["echo", "harmless"]}})
    assert r.status == 201, r
    jid = r.json()["id"]
    # Someone with the database changes what the node is to run.
    sql(bastion, "UPDATE jobs SET envelope = replace(envelope, 'harmless',"
        " 'pwned'), args = replace(args, 'harmless', 'pwned') WHERE id = ?", jid)
    r = bastion.admin("POST", "/api/v1/jobs", {"target": "node1", "kind": "exec",
                      "args": {"argv": ["echo", "original"]}})
    jid2 = r.json()["id"]
    # Changing only the args column changes nothing: the envelope is run.
    sql(bastion, "UPDATE jobs SET args = replace(args, 'original', 'pwned')"
        " WHERE id = ?", jid2)
    a.start()
    j = job_done(bastion, jid)
    assert j["status"] == "refused" and "bad signature" in j["error"], j
    j2 = job_done(bastion, jid2)
    assert j2["status"] == "done", j2
    out = bastion.admin("GET", "/api/v1/jobs/%d/output" % jid2).json()
    import base64
    text = b"".join(base64.b64decode(c["data"]) for c in out["chunks"])
    assert text == b"original\n"
    assert "pwned" not in a.log()


def test_replayed_job_is_refused(bastion, agents):
    a = enrolled_agent(bastion)
    agents.append(a)
    r = bastion.ctl("exec", "node1", "--", "echo", "once")
    assert r.returncode == 0
    jid = json.loads(bastion.ctl("jobs", "list", "--json").stdout)[0]["id"]
    # Deliver the very same signed envelope again, as a new job.
    sql(bastion, "INSERT INTO jobs (agent_id, kind, args, envelope, sig, key_id,"
        " not_after_ms, status, created_ms) SELECT agent_id, kind, args,"
        " envelope, sig, key_id, not_after_ms, 'queued', created_ms FROM jobs"
        " WHERE id = ?", jid)
    a.wait_log(r"refused: signature check: (replayed|malformed)")
    r = bastion.admin("POST", "/api/v1/jobs", {"target": "node1", "kind": "exec",
                      "args": {"argv": ["true"]}})
    assert job_done(bastion, r.json()["id"])["status"] == "done"


def _renew_now(a):
    """Make agentd's certificate look two thirds through its life, so the
    next start renews at once."""
    path = os.path.join(a.state, "agent.json")
    with open(path) as f:
        st = json.load(f)
    now = time.time()
    st["not_before"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3000))
    st["not_after"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 600))
    with open(path, "w") as f:
        json.dump(st, f)


def test_renewal_keeps_the_pinned_job_keys(bastion, agents, agentd_bin):
    """A renewal answer with another job key (a bastion whose jobs.key was
    replaced, or whoever answers on its address) does not change the keys
    agentd pinned at enrollment: jobs signed by the old key still run,
    jobs signed by the new one are refused, also after a restart."""
    a = enrolled_agent(bastion, binary=agentd_bin)
    agents.append(a)
    with open(os.path.join(a.state, "agent.json")) as f:
        pinned = json.load(f)["job_keys"]
    r = bastion.admin("POST", "/api/v1/jobs", {"target": "node1", "kind": "exec",
                      "args": {"argv": ["true"]}})
    assert job_done(bastion, r.json()["id"])["status"] == "done"
    # bastion comes back with another job key (it makes one when jobs.key
    # is missing) and the agent renews against it.
    key = os.path.join(bastion.state, "ca", "jobs.key")
    bastion.stop()
    a.stop()
    os.rename(key, key + ".old")
    bastion.start()
    _renew_now(a)
    a.start()
    a.wait_log(r"certificate renewed until")
    assert "kept the pinned ones" in a.log()
    with open(os.path.join(a.state, "agent.json")) as f:
        assert json.load(f)["job_keys"] == pinned
    # What it holds in memory and what it loads at a restart: the old key.
    for restart in (False, True):
        if restart:
            a.stop()
            a.start()
        r = bastion.admin("POST", "/api/v1/jobs", {"target": "node1",
                          "kind": "exec", "args": {"argv": ["true"]}})
        j = job_done(bastion, r.json()["id"], timeout=60)
        assert j["status"] == "refused" and "did not pin" in j["error"], j
    # The old key still verifies.
    bastion.stop()
    os.replace(key + ".old", key)
    bastion.start()
    r = bastion.admin("POST", "/api/v1/jobs", {"target": "node1", "kind": "exec",
                      "args": {"argv": ["true"]}})
    assert job_done(bastion, r.json()["id"], timeout=90)["status"] == "done"


def test_job_refused_when_its_nonce_cannot_be_kept(bastion, agents, agentd_bin,
                                                    tmp_path):
    """The nonce is written down before a job runs; if it cannot be, the
    job could be replayed after a restart, so it is refused and its
    command never runs."""
    a = enrolled_agent(bastion, binary=agentd_bin)
    agents.append(a)
    nonces = os.path.join(a.state, "nonces")
    if os.path.exists(nonces):
        os.unlink(nonces)
    # A directory in its place: the write (temp file + rename) fails,
    # also for root.
    os.mkdir(nonces)
    open(os.path.join(nonces, "x"), "w").close()
    marker = str(tmp_path / "ran")
    r = bastion.admin("POST", "/api/v1/jobs", {"target": "node1", "kind": "exec",
                      "args": {"argv": ["touch", marker]}})
    j = job_done(bastion, r.json()["id"])
    assert j["status"] == "refused" and "nonce" in j["error"], j
    time.sleep(0.5)
    assert not os.path.exists(marker)
    # Once it can be written again, jobs run.
    shutil.rmtree(nonces)
    r = bastion.admin("POST", "/api/v1/jobs", {"target": "node1", "kind": "exec",
                      "args": {"argv": ["touch", marker]}})
    assert job_done(bastion, r.json()["id"])["status"] == "done"
    assert os.path.exists(marker)


def test_local_policy_refuses_exec(bastion, agents):
    agents.append(enrolled_agent(bastion, extra="accept = inventory,reboot\n"))
    r = bastion.ctl("exec", "node1", "--", "echo", "no")
    assert r.returncode == 1 and "local policy" in r.stderr, r
    r = bastion.admin("POST", "/api/v1/jobs", {"target": "node1", "kind": "inventory"})
    assert job_done(bastion, r.json()["id"])["status"] == "done"
    r = bastion.admin("POST", "/api/v1/jobs", {"target": "node1", "kind": "reboot"})
    j = job_done(bastion, r.json()["id"])
    assert j["status"] == "done" and "rebooting" in j["error"]


def test_revoked_agent_refused(bastion, agents, agentd_bin):
    a = enrolled_agent(bastion, binary=agentd_bin)
    agents.append(a)
    serial = bastion.admin("GET", "/api/v1/agents/node1").json()["cert_serial"]
    r = bastion.ctl("agents", "revoke", "node1")
    assert r.returncode == 0, r
    a.wait_log(r"refused \(HTTP 403\)")
    assert "revoked agent" in bastion.log()
    # Its certificate cannot do anything any more, whoever presents it.
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                        "--cacert", bastion.ca_pem,
                        "--cert", os.path.join(a.state, "cert.pem"),
                        "--key", os.path.join(a.state, "key.pem"),
                        "-X", "POST", "-H", "Content-Type: application/json",
                        "-d", "{}", "https://127.0.0.1:%d/agent/v1/heartbeat"
                        % bastion.control_port], capture_output=True, text=True)
    assert r.stdout == "403"
    crl = bastion.boot("GET", "/ca.crl")
    assert crl.status == 200
    path = os.path.join(bastion.tmp, "ca.crl")
    with open(path, "wb") as f:
        f.write(crl.body)
    text = subprocess.run(["openssl", "crl", "-in", path, "-noout", "-text",
                           "-CAfile", bastion.ca_pem], capture_output=True,
                          text=True)
    assert "verify OK" in text.stderr + text.stdout
    assert serial.upper() in text.stdout.upper().replace(":", "")
    r = bastion.admin("POST", "/api/v1/jobs", {"target": "node1", "kind": "exec",
                      "args": {"argv": ["true"]}})
    assert r.status in (404, 409)


def heartbeat_as(bastion, a, body):
    """POST a heartbeat with agent a's certificate: the HTTP status."""
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                        "--cacert", bastion.ca_pem,
                        "--cert", os.path.join(a.state, "cert.pem"),
                        "--key", os.path.join(a.state, "key.pem"),
                        "-X", "POST", "-H", "Content-Type: application/json",
                        "-d", json.dumps(body),
                        "https://127.0.0.1:%d/agent/v1/heartbeat"
                        % bastion.control_port], capture_output=True, text=True)
    return r.stdout


def metric(bastion, name):
    text = bastion.admin("GET", "/api/v1/metrics").text
    m = re.search(r"^%s (\d+)$" % name, text, re.M)
    return int(m.group(1))


def test_heartbeats_written_behind_and_at_stop(bastion, agents):
    """A heartbeat is answered at once and written by the flusher (seen
    from another connection to the database, the API untouched); the last
    one acknowledged before SIGTERM is written too. The body is stored as
    it came (checked, not re-serialised)."""
    a = enrolled_agent(bastion)
    agents.append(a)
    a.stop()
    seen = "SELECT count(*) FROM agents WHERE heartbeat = ? AND last_seen_ms > 0"
    for n in range(3):     # one agent: coalesced to its newest
        assert heartbeat_as(bastion, a, {"mark": n}) == "200"
    wait_for(lambda: sql(bastion, seen, json.dumps({"mark": 2})) == [(1,)],
             timeout=5, what="the heartbeat written")
    assert metric(bastion, "bastion_heartbeats_total") >= 3
    assert 1 <= metric(bastion, "bastion_heartbeat_rows_written_total") <= \
        metric(bastion, "bastion_heartbeats_total")
    ag = bastion.admin("GET", "/api/v1/agents/node1").json()
    assert ag["heartbeat"] == {"mark": 2} and ag["last_heartbeat_at"]
    assert heartbeat_as(bastion, a, {"mark": 3}) == "200"
    bastion.stop()
    assert sql(bastion, seen, json.dumps({"mark": 3})) == [(1,)]
    bastion.start()


def test_tokens_reused_expired_bound(bastion, agents):
    t = token(bastion)
    a = Agent(bastion, "n1", t, "52:54:00:a0:00:01")
    assert a.enroll().returncode == 0
    again = Agent(bastion, "n2", t, "52:54:00:a0:00:02")
    r = again.enroll()
    assert r.returncode != 0 and "already used" in r.stderr, r
    t2 = token(bastion)
    sql(bastion, "UPDATE join_tokens SET expires_ms = 1 WHERE used = 0")
    r = Agent(bastion, "n3", t2, "52:54:00:a0:00:03").enroll()
    assert r.returncode != 0 and "expired" in r.stderr, r
    t3 = token(bastion, mac="52:54:00:a0:00:09")
    r = Agent(bastion, "n4", t3, "52:54:00:a0:00:04").enroll()
    assert r.returncode != 0 and "another machine" in r.stderr, r
    r = Agent(bastion, "n5", t3, "52:54:00:a0:00:09").enroll()
    assert r.returncode == 0, r
    # --uses
    out = bastion.ctl("tokens", "create", "--uses", "2", "--ttl", "10m")
    assert out.returncode == 0 and re.fullmatch(r"[0-9a-f]{64}\n", out.stdout)
    t4 = out.stdout.strip()
    assert Agent(bastion, "n6", t4, "52:54:00:a0:00:06").enroll().returncode == 0
    assert Agent(bastion, "n7", t4, "52:54:00:a0:00:07").enroll().returncode == 0
    assert Agent(bastion, "n8", t4, "52:54:00:a0:00:08").enroll().returncode != 0
    # revoke
    tid = json.loads(bastion.ctl("tokens", "create", "--json").stdout)["id"]
    assert bastion.ctl("tokens", "revoke", tid).returncode == 0
    states = {t["id"]: t["state"] for t in json.loads(
        bastion.ctl("tokens", "list", "--json").stdout)}
    assert states[tid] == "revoked"
    rows = sql(bastion, "SELECT result FROM enroll_attempts")
    results = [r[0] for r in rows]
    assert "token_used" in results and "token_expired" in results
    assert "mac_mismatch" in results and results.count("enrolled") == 4


def test_enroll_rejects_bad_requests(bastion):
    t = token(bastion)
    d = bastion.tmp
    subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", d + "/rsa.key", "-subj", "/CN=x", "-out",
                    d + "/rsa.csr"], check=True, capture_output=True)
    body = {"token": t, "csr": open(d + "/rsa.csr").read(), "hostname": "x",
            "mac": "52:54:00:a0:00:01"}
    r = bastion.control("POST", "/api/v1/enroll", body, auth=None)
    assert r.status == 400 and "P-256" in r.json()["error"]["message"], r
    body["csr"] = "-----BEGIN CERTIFICATE REQUEST-----\ngarbage\n-----END CERTIFICATE REQUEST-----\n"
    r = bastion.control("POST", "/api/v1/enroll", body, auth=None)
    assert r.status == 400 and r.json()["error"]["code"] == "bad_csr"
    body["token"] = "0" * 64
    r = bastion.control("POST", "/api/v1/enroll", body, auth=None)
    assert r.status == 401 and r.json()["error"]["code"] == "invalid_token"
    # The token was not spent by the failures.
    assert json.loads(bastion.ctl("tokens", "list", "--json").stdout)[0]["used"] == 0
    # Per-address rate limit.
    codes = [bastion.control("POST", "/api/v1/enroll", body, auth=None).status
             for _ in range(12)]
    assert 429 in codes
    # Agent calls without a certificate.
    r = bastion.control("GET", "/agent/v1/jobs", auth=None)
    assert r.status == 401 and r.json()["error"]["code"] == "no_certificate"


def test_bastion_restart_mid_job(bastion, agents, agentd_bin):
    a = enrolled_agent(bastion, binary=agentd_bin)
    agents.append(a)
    r = bastion.ctl("exec", "--detach", "node1", "--", "sh", "-c",
                    "echo begin; sleep 4; echo end; exit 5")
    assert r.returncode == 0, r
    jid = int(r.stdout)
    wait_for(lambda: bastion.admin("GET", "/api/v1/jobs/%d" % jid).json()["status"]
             == "running", what="the job to run")
    bastion.stop()
    # The job finishes while bastion is down: agentd keeps its result in
    # its spool (spool/ID.json) until it can deliver it.
    wait_for(lambda: os.path.exists(os.path.join(a.state, "spool", "%d.json" % jid)),
             timeout=60, what="the job to finish while bastion is down")
    bastion.start()
    j = job_done(bastion, jid, timeout=90)
    assert j["status"] == "done" and j["exit_code"] == 5, j
    r = bastion.ctl("jobs", "output", str(jid))
    assert r.stdout == "begin\nend\n", r
    assert "reconnecting" in a.log()


def test_failover_to_the_next_server(bastion, agents, agentd_bin, tmp_path):
    """server = URL1, URL2: agentd enrolls through whichever answers,
    moves on when its bastion goes away, and delivers the spooled result
    to the one that answers then. The second bastion here is another
    daemon on the same state (the same database and keys, as bastions
    sharing PostgreSQL have), on its own port."""
    other = Bastion(state=bastion.state)
    try:
        a = Agent(bastion, "node1", token(bastion), "52:54:00:a0:00:01",
                  binary=agentd_bin,
                  server="https://127.0.0.1:%d,\n    https://127.0.0.1:%d" % (
                      other.control_port, bastion.control_port))
        agents.append(a.start())
        # The first server does not answer yet: enrollment moves on.
        wait_for(lambda: any(x.get("heartbeat") for x in
                             bastion.admin("GET", "/api/v1/agents").json()),
                 timeout=60, what="the agent to enroll through the second server")
        assert "moving to https://127.0.0.1:%d" % bastion.control_port in a.log()
        gate = tmp_path / "gate"
        r = bastion.ctl("exec", "--detach", "node1", "--", "sh", "-c",
                        "echo begin; while [ ! -e %s ]; do sleep 0.1; done; "
                        "echo end; exit 3" % gate)
        assert r.returncode == 0, r
        jid = int(r.stdout)
        wait_for(lambda: bastion.admin("GET", "/api/v1/jobs/%d" % jid).json()
                 ["status"] == "running", what="the job to run")
        bastion.stop()
        gate.touch()
        wait_for(lambda: os.path.exists(os.path.join(a.state, "spool", "%d.json" % jid)),
                 timeout=60, what="the result to be spooled")
        other.start()
        j = job_done(other, jid, timeout=90)
        assert j["status"] == "done" and j["exit_code"] == 3, j
        assert other.ctl("jobs", "output", str(jid)).stdout == "begin\nend\n"
        assert "moving to https://127.0.0.1:%d" % other.control_port in a.log()
        # Jobs made on the bastion that answers now run there.
        r = other.ctl("exec", "node1", "--", "echo", "on the other")
        assert r.returncode == 0 and r.stdout == "on the other\n", r
    finally:
        other.cleanup()


def test_bad_server_lists_are_refused(tmp_path, agentd_bin):
    """Every URL of server = is checked, and the list is capped, also
    when it goes on over continuation lines."""
    cases = {
        "https://127.0.0.1:1, ftp://127.0.0.1:2": "https:// URLs",
        ",\n  ".join("https://127.0.0.1:%d" % p for p in range(1, 10)): "more than 8",
        "https://127.0.0.1:1\n  file:///etc/passwd": "https:// URLs",
    }
    for servers, why in cases.items():
        conf = tmp_path / "agentd.conf"
        conf.write_text("[agent]\nserver = %s\nstate_dir = %s\n" % (servers, tmp_path))
        r = subprocess.run([os.path.join(BIN, agentd_bin), "-f", str(conf), "enroll"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and why in r.stderr, (servers, r)


def test_long_poll_is_woken_by_a_job(bastion, agents, agentd_bin):
    a = enrolled_agent(bastion, binary=agentd_bin)
    agents.append(a)
    wait_for(lambda: waiting_polls(bastion) >= 1, what="agentd's long poll")
    t0 = time.time()
    r = bastion.ctl("exec", "node1", "--", "echo", "fast")
    assert r.returncode == 0 and r.stdout == "fast\n"
    assert time.time() - t0 < 5


def test_install_token_enrolls_and_activates(bastion, agents):
    from harness import sample_report
    b = bastion
    mac = "52:54:00:a1:00:01"
    b.dispatch(mac)
    assert b.boot("POST", "/api/v1/discover", sample_report(mac)).status == 200
    r = b.admin("POST", "/api/v1/machines/%s/install" % mac,
                {"hostname": "web-1.lab", "role": "worker"})
    assert r.status == 202, r
    toks = json.loads(b.ctl("tokens", "list", "--json").stdout)
    assert toks[0]["mac"] == mac and toks[0]["install_id"] and toks[0]["uses"] == 1
    key = re.search(r"k=([0-9a-f]{64})", b.dispatch(mac).text).group(1)
    ks = b.boot("GET", "/ks/%s?k=%s" % (mac, key)).text
    tok = re.search(r"^token = ([0-9a-f]{64})$", ks, re.M).group(1)
    fp = re.search(r"^ca_fingerprint = (sha256:[0-9a-f]{64})$", ks, re.M).group(1)
    assert fp == fingerprint(b.ca_pem)
    assert "/boot/agent/agentd" in ks and "systemctl enable agentd.service" in ks
    assert b.boot("GET", "/boot/agent/agentd").status == 200
    unit = b.boot("GET", "/boot/agent/agentd.service")
    assert unit.status == 200 and b"ExecStart=" in unit.body
    assert b.boot("POST", "/api/v1/progress/%s?k=%s" % (mac, key),
                  {"stage": "done", "percent": 100}).status == 200
    assert b.admin("GET", "/api/v1/machines/" + mac).json()["state"] == "installed"
    # The install token works only for its machine.
    r = Agent(b, "other", tok, "52:54:00:a1:00:02").enroll()
    assert r.returncode != 0 and "another machine" in r.stderr
    a = Agent(b, "web-1", tok, mac)
    assert a.enroll().returncode == 0
    m = b.admin("GET", "/api/v1/machines/" + mac).json()
    assert m["state"] == "active" and m["agent"]["enrolled"]
    assert m["agent"]["cert_expires_at"]
    ev = b.admin("GET", "/api/v1/machines/%s/events" % mac).json()
    assert any(e["state"] == "active" and "enrolled" in e["message"] for e in ev)
    agents.append(a.start())
    wait_for(lambda: b.admin("GET", "/api/v1/machines/" + mac).json()["agent"]
             ["last_heartbeat_at"], what="a heartbeat")
    out = b.ctl("machines", "show", mac)
    assert out.returncode == 0
    assert "Agent:" in out.stdout and "Last heartbeat:" in out.stdout
    assert "Cert expires:" in out.stdout and m["agent"]["id"] in out.stdout


def test_agentd_killed_mid_job_reports_it(bastion, agents):
    a = enrolled_agent(bastion)
    agents.append(a)
    r = bastion.ctl("exec", "--detach", "node1", "--", "sleep", "3")
    jid = int(r.stdout)
    wait_for(lambda: bastion.admin("GET", "/api/v1/jobs/%d" % jid).json()["status"]
             == "running", what="the job to run")
    a.proc.kill()
    a.proc.wait()
    a.start()
    j = job_done(bastion, jid)
    assert j["status"] == "failed" and "agentd stopped" in j["error"], j


def test_node_build_is_fully_static():
    """What the kickstart installs must run on any x86_64 Linux: no ELF
    interpreter, no shared library. The sanitizer build links its
    agentd-static dynamically (ASan cannot be static), so this looks at
    the plain build's, which `make` always makes."""
    from harness import ROOT
    path = os.path.join(ROOT, "build", "bin", "agentd-static")
    assert os.access(path, os.X_OK), "%s is not built (make all)" % path
    head = subprocess.run(["readelf", "-hlW", path], capture_output=True,
                          text=True, check=True).stdout
    assert "Advanced Micro Devices X86-64" in head
    assert "INTERP" not in head and "ld-linux" not in head, head
    dyn = subprocess.run(["readelf", "-dW", path], capture_output=True,
                         text=True, check=True).stdout
    assert "(NEEDED)" not in dyn, dyn
    # ...and it is the agent, not a stub.
    out = subprocess.run([path, "-V"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("agentd "), out


def test_only_the_pinned_ca_is_trusted(bastion, agents, agentd_bin, tmp_path):
    a = enrolled_agent(bastion, binary=agentd_bin)
    agents.append(a)
    a.stop()
    # Another CA in place of the pinned one: bastion's certificate is not
    # trusted any more and agentd says so instead of talking to it.
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                    "-subj", "/CN=other", "-keyout", str(tmp_path / "k"),
                    "-out", os.path.join(a.state, "ca.pem")], check=True,
                   capture_output=True)
    a.start()
    a.wait_log(r"heartbeat: .*(SSL certificate problem|is not trusted)")
    assert "reconnecting" in a.log()


def test_agentd_download_serves_the_node_build(bastion):
    # agentd: the static build (kickstart installs); agentd-dynamic: the
    # dynamically linked one (image installs); no other name is a file.
    for name, f in (("agentd", "agentd-static"), ("agentd-dynamic", "agentd")):
        r = bastion.boot("GET", "/boot/agent/" + name)
        assert r.status == 200, (name, r)
        with open(os.path.join(BIN, f), "rb") as fh:
            assert r.body == fh.read(), name
    for name in ("agentd-static", "bastion", "..%2fbastion", "agentd.service.bak"):
        assert bastion.boot("GET", "/boot/agent/" + name).status == 404, name
    # A bastion installed without it answers a clear 503 and logs why.
    bastion.stop()
    # (where the unprivileged HTTP worker can look: the harness's 0711 dir)
    lone = pathlib.Path(bastion.tmp) / "lone-bin"
    lone.mkdir(mode=0o755)
    exe = str(lone / "bastion")
    shutil.copy(os.path.join(BIN, "bastion"), exe)
    log = open(bastion.log_path, "ab")
    bastion.proc = subprocess.Popen([exe, "-d", "-f", bastion.conf],
                                    stdout=log, stderr=subprocess.STDOUT)
    log.close()
    bastion.wait_ready()
    r = bastion.boot("GET", "/boot/agent/agentd")
    assert r.status == 503, r
    assert r.json()["error"]["code"] == "agent_missing"
    assert "agentd-static" in r.json()["error"]["message"]
    assert "the node agent for installs" in bastion.log()
    r = bastion.boot("GET", "/boot/agent/agentd-dynamic")
    assert r.status == 503 and r.json()["error"]["code"] == "agent_missing"
    assert "(agentd)" in r.json()["error"]["message"], r
    # Larger than an installer takes (64 MiB): refused, not served.
    with open(str(lone / "agentd"), "wb") as f:
        f.truncate((64 << 20) + 1)
    r = bastion.boot("GET", "/boot/agent/agentd-dynamic")
    assert r.status == 503 and r.json()["error"]["code"] == "agent_too_large", r


def test_sigterm_ends_a_long_poll_at_once(bastion, agents, agentd_bin):
    a = enrolled_agent(bastion, binary=agentd_bin)
    agents.append(a)
    wait_for(lambda: waiting_polls(bastion) >= 1, what="agentd's long poll")
    t0 = time.time()
    a.proc.terminate()
    assert a.proc.wait(timeout=10) == 0
    assert time.time() - t0 < 2, "agentd took %.1f s to stop" % (time.time() - t0)
    assert "stopping" in a.log()


def test_long_poll_closed_while_waiting(bastion, agents):
    """A waiting long poll is parked (its request state freed) and runs
    again on a new one when woken; one whose client has gone is answered
    into the void and freed, and the daemon carries on: the agent still
    gets its job and the count of waiting polls comes back down."""
    a = enrolled_agent(bastion)
    agents.append(a)
    wait_for(lambda: waiting_polls(bastion) >= 1, what="agentd's long poll")
    before = waiting_polls(bastion)
    ctx = ssl.create_default_context(cafile=bastion.ca_pem)
    ctx.load_cert_chain(os.path.join(a.state, "cert.pem"),
                        os.path.join(a.state, "key.pem"))
    raw = socket.create_connection(("127.0.0.1", bastion.control_port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    s.sendall(b"GET /agent/v1/jobs?wait=30 HTTP/1.1\r\nHost: bastion\r\n\r\n")
    wait_for(lambda: waiting_polls(bastion) == before + 1, what="the second poll")
    s.close()
    # The job wakes both polls: one connection is gone, agentd answers.
    r = bastion.ctl("exec", "node1", "--", "echo", "still here")
    assert r.returncode == 0 and r.stdout == "still here\n", r
    wait_for(lambda: waiting_polls(bastion) == before, what="the dead poll to go")
    assert bastion.alive()
    assert bastion.admin("GET", "/api/v1/readyz").status == 200


def _ca(tmp_path, name, signer=None, san=None):
    """A certificate (self-signed CA, or one signed by signer, a name made
    here before) in tmp_path/name.pem with its key in name.key."""
    pem, key = str(tmp_path / (name + ".pem")), str(tmp_path / (name + ".key"))
    cmd = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
           "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj",
           "/CN=" + name, "-keyout", key, "-out", pem]
    if signer:
        cmd += ["-CA", str(tmp_path / (signer + ".pem")),
                "-CAkey", str(tmp_path / (signer + ".key"))]
    if san:
        cmd += ["-addext", "subjectAltName=" + san]
    subprocess.run(cmd, check=True, capture_output=True)
    return pem, key


def _listener(srv_pem, srv_key):
    """A TLS server context with srv_pem and a listening socket on
    127.0.0.1 for the stand-in servers below."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(srv_pem, srv_key)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    return ctx, lsock


def _enroll(agentd_bin, tmp_path, port, pin, mac, extra=""):
    """agentd enroll, once, against https://127.0.0.1:port with pin's
    fingerprint and a fresh state dir (tmp_path/state)."""
    state = str(tmp_path / "state")
    shutil.rmtree(state, ignore_errors=True)
    conf = str(tmp_path / "agentd.conf")
    with open(conf, "w") as f:
        f.write("[agent]\nserver = https://127.0.0.1:%d\nca_fingerprint = %s\n"
                "token = %s\nstate_dir = %s\nhostname = n1\nmac = %s\n%s"
                % (port, fingerprint(pin), "t" * 32, state, mac, extra))
    r = subprocess.run([os.path.join(BIN, agentd_bin), "-f", conf, "enroll"],
                       capture_output=True, text=True, timeout=60)
    for marker in SANITIZER_MARKERS:
        assert marker not in r.stderr, r.stderr[-6000:]
    return r


def _first_contact(agentd_bin, tmp_path, served, srv_pem, srv_key, pin):
    """agentd enroll against a stand-in server (TLS with srv_pem) that
    answers GET /ca.pem with served and records what is POSTed to it (403).
    (the enroll run, the paths POSTed)."""
    import http.server
    import threading

    seen = []

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(served)))
            self.end_headers()
            self.wfile.write(served)

        def do_POST(self):
            seen.append(self.path)
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(srv_pem, srv_key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        r = _enroll(agentd_bin, tmp_path, srv.server_address[1], pin,
                    "52:54:00:a0:00:09")
    finally:
        srv.shutdown()
        srv.server_close()
        t.join()
    return r, seen


def test_first_contact_pins_only_the_pinned_ca(agentd_bin, tmp_path):
    """Whoever answers the unverified first contact may send the pinned
    CA followed by one of its own: only the pinned certificate may end up
    in ca.pem, so that the enrollment (token, CSR) that follows is not
    trusted to the other CA's server."""
    real, _ = _ca(tmp_path, "real")
    _ca(tmp_path, "evil")
    srv_pem, srv_key = _ca(tmp_path, "srv", signer="evil", san="IP:127.0.0.1")
    with open(real) as f, open(str(tmp_path / "evil.pem")) as g:
        served = (f.read() + g.read()).encode()
    r, seen = _first_contact(agentd_bin, tmp_path, served, srv_pem, srv_key,
                             real)
    assert r.returncode != 0, r
    assert seen == [], "the enrollment went to the other CA's server"
    state = str(tmp_path / "state")
    with open(os.path.join(state, "ca.pem")) as f:
        pinned = f.read()
    assert pinned.count("BEGIN CERTIFICATE") == 1, pinned
    assert fingerprint(os.path.join(state, "ca.pem")) == fingerprint(real)
    assert "not trusted" in r.stderr or "certificate" in r.stderr, r.stderr


def test_server_address_is_checked(agentd_bin, tmp_path):
    """A certificate from the pinned CA for another address is refused:
    the address in server = is checked against the certificate. The same
    server with the right address gets the enrollment (the control)."""
    ca, _ = _ca(tmp_path, "ca")
    with open(ca, "rb") as f:
        served = f.read()
    wrong = _ca(tmp_path, "wrong", signer="ca", san="IP:10.9.9.9,DNS:127.0.0.1")
    r, seen = _first_contact(agentd_bin, tmp_path, served, *wrong, pin=ca)
    assert r.returncode != 0 and seen == [], (r, seen)
    assert "not trusted" in r.stderr or "certificate" in r.stderr, r.stderr
    right = _ca(tmp_path, "right", signer="ca", san="IP:127.0.0.1")
    r, seen = _first_contact(agentd_bin, tmp_path, served, *right, pin=ca)
    assert seen == ["/api/v1/enroll"], (r, seen)


def test_kept_connection_with_bytes_left_in_tls_is_dropped(tmp_path):
    """The static build's keep-alive: an answer that ends inside a TLS
    record whose rest the TLS library holds (nothing in the socket any
    more) leaves bytes nothing asked for; the next request must go on a
    new connection, not read them as its answer."""
    import threading

    ca, _ = _ca(tmp_path, "ca")
    srv_pem, srv_key = _ca(tmp_path, "srv", signer="ca", san="IP:127.0.0.1")
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    _ca(tmp_path, "agent", signer="ca")
    shutil.copy(ca, str(state / "ca.pem"))
    shutil.copy(str(tmp_path / "agent.pem"), str(state / "cert.pem"))
    shutil.copy(str(tmp_path / "agent.key"), str(state / "key.pem"))
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out",
                    str(tmp_path / "job.key")], check=True)
    pub = subprocess.run(["openssl", "pkey", "-in", str(tmp_path / "job.key"),
                          "-pubout"], check=True, capture_output=True,
                         text=True).stdout
    now = time.time()
    with open(str(state / "agent.json"), "w") as f:
        json.dump({"agent_id": "ag-test", "job_keys": [{"public_key": pub}],
                   "not_before": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                               time.gmtime(now - 60)),
                   "not_after": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                              time.gmtime(now + 86400 * 365))},
                  f)
    # The first answer's header line fills the 16 KiB read-ahead buffer so
    # that only its end, up to the body, fits from the second record.
    pad = 16384 - len("X-Pad: ") - len("\r\nContent-Length: 2\r\n\r\nok")
    rec1 = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * pad
    rec2 = (b"\r\nContent-Length: 2\r\n\r\nok" +
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    seen = []           # (connection number, request line)
    ctx, lsock = _listener(srv_pem, srv_key)
    stop = threading.Event()

    def serve(conn, n):
        buf = b""
        try:
            s = ctx.wrap_socket(conn, server_side=True)
            while not stop.is_set():
                while b"\r\n\r\n" not in buf:
                    d = s.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                m = re.search(rb"(?i)content-length: *(\d+)", head)
                want = int(m.group(1)) if m else 0
                while len(buf) < want:
                    buf += s.recv(65536)
                buf = buf[want:]
                seen.append((n, head.split(b"\r\n")[0].decode()))
                if len(seen) == 1:
                    s.sendall(rec1)
                    time.sleep(0.2)
                    s.sendall(rec2)
                elif "jobs?wait" in seen[-1][1]:
                    stop.wait(30)
                    return
                else:
                    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        except (OSError, ssl.SSLError):
            return
        finally:
            conn.close()

    def accept():
        n = 0
        while not stop.is_set():
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            n += 1
            threading.Thread(target=serve, args=(c, n), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    conf = str(tmp_path / "agentd.conf")
    with open(conf, "w") as f:
        f.write("[agent]\nserver = https://127.0.0.1:%d\nca_fingerprint = %s\n"
                "state_dir = %s\nhostname = n1\nmac = 52:54:00:a0:00:0a\n"
                % (lsock.getsockname()[1], fingerprint(ca), state))
    proc = subprocess.Popen([os.path.join(BIN, "agentd-static"), "-d", "-f",
                             conf, "run"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        # The same client's next request after the heartbeat.
        wait_for(lambda: any("inventory" in l for _, l in seen),
                 what="the inventory after the heartbeat")
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0]
        stop.set()
        lsock.close()
    for marker in SANITIZER_MARKERS:
        assert marker not in out, out[-6000:]
    assert seen[0][1] == "POST /agent/v1/heartbeat HTTP/1.1", (seen, out)
    inv = [n for n, l in seen if "inventory" in l][0]
    # Connections are numbered as accepted: not by which client made them.
    assert inv != seen[0][0], "the kept connection was used again: %r\n%s" % (
        seen, out)


def test_server_gone_while_sending_is_an_error_not_sigpipe(agentd_bin, tmp_path):
    """agentd enroll (no run loop to ignore SIGPIPE): a server that
    closes the connection right after the handshake resets it at the first
    record of the request, and the next record's write fails; that is a
    logged error and exit 1, not death by SIGPIPE (OpenSSL writes with
    write(2); libcurl guards against it, OpenSSL does not)."""
    import threading

    ca, _ = _ca(tmp_path, "ca")
    srv_pem, srv_key = _ca(tmp_path, "srv", signer="ca", san="IP:127.0.0.1")
    with open(ca, "rb") as f:
        pem = f.read()
    ctx, lsock = _listener(srv_pem, srv_key)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2   # server Finished last

    def serve():
        for n in range(2):
            try:
                c, _ = lsock.accept()
                s = ctx.wrap_socket(c, server_side=True)
                if n == 0:      # the CA, as a first contact answers it
                    while b"\r\n\r\n" not in s.recv(65536):
                        pass
                    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                              b"Connection: close\r\n\r\n%s" % (len(pem), pem))
                    s.close()
                else:           # the enrollment: closed at once
                    s.close()
            except (OSError, ssl.SSLError):
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    # An inventory of 128 NICs: a request of several TLS records, so
    # that a write comes after the server's reset.
    root = tmp_path / "root"
    shutil.copytree(os.path.join(os.path.dirname(__file__), "..", "data",
                                 "inventory", "minimal"), str(root))
    for i in range(128):
        nic = root / "sys" / "class" / "net" / ("eth%d" % i)
        (nic / "device").mkdir(parents=True)
        (nic / "type").write_text("1\n")
        (nic / "address").write_text("52:54:00:00:%02x:%02x\n" % (i // 256, i % 256))
        (nic / "operstate").write_text("u" * 200 + "\n")
    try:
        r = _enroll(agentd_bin, tmp_path, lsock.getsockname()[1], ca,
                    "52:54:00:a0:00:0b", "inventory_root = %s\n" % root)
    finally:
        lsock.close()
        t.join(timeout=10)
    assert r.returncode == 1, r
    assert "enrollment: " in r.stderr, r.stderr


def test_first_contact_failure_does_not_blame_the_certificate(agentd_bin, tmp_path):
    """The first contact does not verify the server (the pin does), so
    when it fails otherwise the message must say what happened, not that
    the certificate is not trusted."""
    import struct
    import threading

    ca, _ = _ca(tmp_path, "ca")
    srv_pem, srv_key = _ca(tmp_path, "srv", signer="ca", san="IP:127.0.0.1")
    ctx, lsock = _listener(srv_pem, srv_key)

    def serve():
        try:
            c, _ = lsock.accept()
            s = ctx.wrap_socket(c, server_side=True)
            while b"\r\n\r\n" not in s.recv(65536):
                pass
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
            time.sleep(0.2)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         struct.pack("ii", 1, 0))
            s.close()           # a reset, mid-answer
        except (OSError, ssl.SSLError):
            pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        r = _enroll(agentd_bin, tmp_path, lsock.getsockname()[1], ca,
                    "52:54:00:a0:00:0c")
    finally:
        lsock.close()
        t.join(timeout=10)
    assert r.returncode == 1, r
    assert "cannot reach" in r.stderr and "reset" in r.stderr, r.stderr
    assert "not trusted" not in r.stderr, r.stderr


@pytest.fixture
def isolated_ns():
    """A network namespace like an isolated provisioning network: one
    NIC (a veth into bastion0, MAC 52:54:00:77:00:50, 10.77.0.50/24) and
    no default route. Yields the `ip netns exec` prefix."""
    ns, host = "bst-iso-%d" % os.getpid(), "viso%d" % (os.getpid() % 100000)
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    run("ip", "netns", "add", ns)
    try:
        run("ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
        run("ip", "link", "set", host, "master", "bastion0", "up")
        run("ip", "-n", ns, "link", "set", "eth0", "address", "52:54:00:77:00:50")
        run("ip", "-n", ns, "addr", "add", "10.77.0.50/24", "dev", "eth0")
        run("ip", "-n", ns, "link", "set", "eth0", "up")
        run("ip", "-n", ns, "link", "set", "lo", "up")
        routes = subprocess.run(["ip", "-n", ns, "route", "show", "default"],
                                capture_output=True, text=True).stdout
        assert routes.strip() == "", routes
        yield ["ip", "netns", "exec", ns]
    finally:
        subprocess.run(["ip", "link", "del", host], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_enroll_without_default_route_finds_the_mac(make_bastion, agents, agentd_bin,
                                                     isolated_ns):
    """No mac = and no default route: agentd takes the MAC of the NIC its
    connection to bastion leaves from."""
    b = make_bastion(control_host="10.77.0.1").start()
    a = Agent(b, "iso1", token(b), None, binary=agentd_bin, wrap=isolated_ns,
              server="https://10.77.0.1:%d" % b.control_port)
    r = a.enroll()
    assert r.returncode == 0, r.stderr
    assert "set mac" not in r.stderr
    ag = b.admin("GET", "/api/v1/agents/iso1").json()
    assert ag["mac"] == "52:54:00:77:00:50", ag
    # The daemon reports its inventory with that MAC as the boot NIC.
    agents.append(a.start())
    wait_for(lambda: b.admin("GET", "/api/v1/agents/iso1").json()["inventory"],
             what="the first inventory")
    inv = b.admin("GET", "/api/v1/agents/iso1").json()["inventory"]
    assert inv["boot_mac"] == "52:54:00:77:00:50", inv
    assert "no boot MAC" not in a.log()


def test_no_mac_is_said_once_with_what_to_do(bastion, agents):
    """No mac = and no NIC to take one from (the suite's namespace has
    only lo and a bridge, and bastion is on 127.0.0.1): the inventory
    cannot be sent. agentd says so once, with the remedy, however often
    it tries (start-up, then two inventory jobs)."""
    a = Agent(bastion, "nomac", token(bastion), "52:54:00:a0:00:09")
    assert a.enroll().returncode == 0
    with open(a.conf) as f:
        text = f.read()
    with open(a.conf, "w") as f:
        f.write(text.replace("mac = 52:54:00:a0:00:09\n", ""))
    agents.append(a.start())
    a.wait_log("no boot MAC")
    for _ in range(2):     # each waits for its job's end
        r = bastion.ctl("agents", "inventory", "nomac")
        assert "cannot collect the inventory" in r.stderr, r
    lines = [x for x in a.log().splitlines() if "no boot MAC" in x]
    assert len(lines) == 1, a.log()
    assert "set mac = in agentd.conf" in lines[0], lines


def test_exec_command_line_parsing(bastion, agents):
    """exec parses with bastionctl's shared parser: options, the target,
    then the command, dashes and all; --shell joins it into one line of
    at most the agent's 4096 bytes, and more is a usage error, not a
    silently shortened command run as root."""
    agents.append(enrolled_agent(bastion))

    def ok(r):
        assert r.returncode == 0, r
        return r
    job = json.loads(ok(bastion.ctl("exec", "--json", "--env", "A=1", "--env",
                                    "B=2", "node1", "ls", "-l", "--all")).stdout)
    assert job["args"]["argv"] == ["ls", "-l", "--all"]
    assert job["args"]["env"] == {"A": "1", "B": "2"}
    job = json.loads(ok(bastion.ctl("exec", "--json", "--shell", "node1", "--",
                                    "echo", "a", "b")).stdout)
    assert job["args"]["argv"] == ["echo a b"] and job["args"]["shell"] is True
    before = len(json.loads(bastion.ctl("jobs", "list", "--json").stdout))
    long = ["w" * 1000] * 5
    r = bastion.ctl("exec", "--shell", "node1", "--", *long)
    assert r.returncode == 2 and "longer than 4096 bytes" in r.stderr, r
    envs = sum((["--env", "V%d=x" % i] for i in range(129)), [])
    r = bastion.ctl("exec", *envs, "node1", "--", "true")
    assert r.returncode == 2 and "--env given more than 128 times" in r.stderr, r
    r = bastion.ctl("exec", "--env", "=x", "node1", "--", "true")
    assert r.returncode == 2 and "NAME=VALUE" in r.stderr, r
    r = bastion.ctl("exec", "node1")
    assert r.returncode == 2 and "missing the command" in r.stderr, r
    r = bastion.ctl("exec", "--", "true")
    assert r.returncode == 2 and "missing argument" in r.stderr, r
    # Nothing of the refused ones reached the server.
    assert len(json.loads(bastion.ctl("jobs", "list", "--json").stdout)) == before
