"""PostgreSQL backend (issue 17, phase 1): a bastion whose [database] url
names a PostgreSQL database (a throwaway cluster, tests/pg.sh) answers
the API — login, a token, the machine list — and keeps no SQLite file;
with PostgreSQL stopped it answers 503 with a JSON error and stays up;
started again, it serves as before."""
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import time

from agents import Agent, token, wait_for, waiting_polls
from harness import ROOT, sample_report

PG = os.path.join(ROOT, "tests", "pg.sh")
MAC = "52:54:00:ab:00:01"


def wait_status(b, want, timeout=20):
    deadline = time.time() + timeout
    while True:
        r = b.control("GET", "/api/v1/machines")
        if r.status == want or time.time() > deadline:
            return r
        time.sleep(0.1)


def test_postgres_smoke_outage_and_recovery(make_bastion, pg):
    cluster, url = pg
    b = make_bastion(extra_conf="[database]\nurl = %s\n" % url)
    b.start()
    assert not os.path.exists(os.path.join(b.state, "bastion.db"))
    # A machine boots and reports; an operator logs in and lists it.
    b.dispatch(MAC)
    assert b.boot("POST", "/api/v1/discover", sample_report(MAC)).status == 200
    b.add_user("olga", "operator", "olga's long password")
    assert b.login("olga", "olga's long password")
    r = b.control("GET", "/api/v1/machines")
    assert r.status == 200, r
    assert [m["mac"] for m in r.json()] == [MAC]

    # PostgreSQL goes away: 503 with a JSON error, the daemon stays up.
    subprocess.run([PG, "stop", cluster], check=True)
    r = wait_status(b, 503)
    assert r.status == 503, r
    assert r.json()["error"]["code"] == "unavailable"
    assert b.alive()

    # Back: the same data is served again (the reconnect's backoff is at
    # most 5 s).
    subprocess.run([PG, "start", cluster], check=True, capture_output=True)
    r = wait_status(b, 200)
    assert r.status == 200, r
    assert [m["mac"] for m in r.json()] == [MAC]
    b.stop()


def _two_bastions(make_bastion, url):
    """A and B on one database, B with a copy of A's ca/ (DESIGN §16: how
    a bastion joins by hand); B runs no DHCP (one leader per interface)."""
    conf = "[database]\nurl = %s\n" % url
    a = make_bastion(extra_conf=conf)
    a.start()
    b = make_bastion(extra_conf=conf, dhcp_mode="off")
    shutil.copytree(os.path.join(a.state, "ca"), os.path.join(b.state, "ca"))
    b.start()
    return a, b


def test_two_bastions_share_state_and_wake_each_others_agents(make_bastion, pg, agents):
    cluster, url = pg
    a, b = _two_bastions(make_bastion, url)
    # Each sees both.
    st = json.loads(a.ctl("cluster", "status", "--json").stdout)
    assert st["database"] == "postgresql"
    assert sorted(x["url"] for x in st["bastions"] if x["up"]) == sorted(
        "https://10.77.0.1:%d" % x.control_port for x in (a, b)), st
    out = b.ctl("cluster", "status")
    assert out.returncode == 0 and out.stdout.count(" up ") == 2, out
    # A token made on A is listed on B; an agent enrolls with it on B.
    tok = token(a)
    assert any(t["state"] == "active" for t in
               json.loads(b.ctl("tokens", "list", "--json").stdout))
    n2 = Agent(b, "node2", tok, "52:54:00:a0:00:02")
    r = n2.enroll()
    assert r.returncode == 0, r

    # The wake-up: a long poll waiting on B (30 s) is answered as soon as
    # A queues a job, not when its wait runs out.
    ctx = ssl.create_default_context(cafile=b.ca_pem)
    ctx.load_cert_chain(os.path.join(n2.state, "cert.pem"),
                        os.path.join(n2.state, "key.pem"))
    with socket.create_connection(("127.0.0.1", b.control_port), timeout=60) as raw:
        s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        s.sendall(b"GET /agent/v1/jobs?wait=30 HTTP/1.1\r\nHost: b\r\n"
                  b"Connection: close\r\n\r\n")
        wait_for(lambda: waiting_polls(b) == 1, what="the poll to wait on B")
        t0 = time.time()
        r = a.ctl("exec", "--detach", "node2", "--", "true")
        assert r.returncode == 0, r
        reply = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
        waited = time.time() - t0
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert b'"id":%d' % int(r.stdout) in reply.replace(b" ", b"")
    assert waited < 15, "answered after %.1f s: by the poll's end, not a wake-up" % waited

    # A real agent on B runs what an operator of A asks.
    ag = Agent(b, "node1", token(a), "52:54:00:a0:00:01")
    agents.append(ag.start())
    wait_for(lambda: any(x["hostname"] == "node1" and x.get("heartbeat") for x in
                         a.admin("GET", "/api/v1/agents").json()),
             what="the agent to heartbeat through B")
    r = a.ctl("exec", "node1", "--", "echo", "made on A, run through B")
    assert r.returncode == 0 and r.stdout == "made on A, run through B\n", r

    # B's machine cache follows A's changes: discovered on A, B sends the
    # machine to its disk; deleted on A, B boots it into discovery again
    # (this harness has no discovery image: B says so).
    a.dispatch(MAC)
    assert a.boot("POST", "/api/v1/discover", sample_report(MAC)).status == 200
    d = b.dispatch(MAC)
    assert "exit" in d.text and "kernel" not in d.text, d.text
    assert a.admin("DELETE", "/api/v1/machines/" + MAC).status == 200
    wait_for(lambda: "registered as 'discovering'" in b.dispatch(MAC).text, timeout=10,
             what="B to see the machine deleted on A")
    assert a.alive() and b.alive()



def test_a_bastion_with_other_keys_is_refused(make_bastion, pg):
    """A bastion that made its own CA cannot join a database whose
    bastions have another: it says so, with what to do, and stops."""
    cluster, url = pg
    conf = "[database]\nurl = %s\n" % url
    a = make_bastion(extra_conf=conf)
    a.start()
    c = make_bastion(extra_conf=conf, dhcp_mode="off")
    c.start(wait=False)
    assert c.proc.wait(timeout=60) != 0
    c.proc = None
    assert "copy STATE_DIR/ca/" in c.log(), c.log()[-3000:]
    assert a.alive() and a.admin("GET", "/api/v1/readyz").status == 200
    st = a.admin("GET", "/api/v1/cluster").json()
    assert [x["url"] for x in st["bastions"]] == ["https://10.77.0.1:%d" % a.control_port]


def test_cluster_status_on_sqlite_is_the_one_bastion(bastion):
    st = json.loads(bastion.ctl("cluster", "status", "--json").stdout)
    assert st["database"] == "sqlite" and len(st["bastions"]) == 1
    assert st["bastions"][0]["up"] and st["bastions"][0]["version"]
    r = bastion.ctl("cluster", "status", "extra")
    assert r.returncode == 2, r

class _AgentConn:
    """Heartbeats with an enrolled agent's certificate over one keep-alive
    mTLS connection (no handshake per request: timings are the
    bastion's)."""

    def __init__(self, b, ag):
        ctx = ssl.create_default_context(cafile=b.ca_pem)
        ctx.load_cert_chain(os.path.join(ag.state, "cert.pem"),
                            os.path.join(ag.state, "key.pem"))
        self.c = http.client.HTTPSConnection("127.0.0.1", b.control_port,
                                             context=ctx, timeout=30)

    def heartbeat(self):
        self.c.request("POST", "/agent/v1/heartbeat", body=b"{}",
                       headers={"Content-Type": "application/json"})
        r = self.c.getresponse()
        r.read()
        return r.status

    def close(self):
        self.c.close()


def _metric(b, name):
    m = re.search(r"^%s (\d+)$" % name, b.admin("GET", "/api/v1/metrics").text,
                  re.M)
    return int(m.group(1))


def test_revocation_ends_the_certificate_cache_on_every_bastion(make_bastion, pg):
    """The certificate check is cached (agentcache.c, at most 2 s): an
    agent revoked on A is refused by A at its next request and by B as
    soon as B hears A's NOTIFY — well before the entry B cached would
    have aged out."""
    cluster, url = pg
    a, b = _two_bastions(make_bastion, url)
    tok = token(a)
    n2 = Agent(b, "node2", tok, "52:54:00:a0:00:02")
    assert n2.enroll().returncode == 0
    n3 = Agent(a, "node3", token(a), "52:54:00:a0:00:03")
    assert n3.enroll().returncode == 0
    on_b, on_a = _AgentConn(b, n2), _AgentConn(a, n3)

    # Revoked on A, A's own cached yes ends with the revocation.
    def a_hits():
        hits = _metric(a, "bastion_agent_cert_cache_hits_total")
        assert on_a.heartbeat() == 200
        return _metric(a, "bastion_agent_cert_cache_hits_total") == hits + 1
    wait_for(a_hits, timeout=20, what="A to answer from its cache")
    assert a.ctl("agents", "revoke", "node3").returncode == 0
    assert on_a.heartbeat() == 403

    # B caches node2's yes (once B listens: off before): a heartbeat that
    # asked the database (so stored no earlier than t_stored), then one
    # answered from the cache.
    deadline = time.monotonic() + 20
    while True:
        assert time.monotonic() < deadline, "B never answered from its cache"
        misses = _metric(b, "bastion_agent_cert_cache_misses_total")
        t_stored = time.monotonic()
        assert on_b.heartbeat() == 200
        if _metric(b, "bastion_agent_cert_cache_misses_total") == misses:
            continue
        hits = _metric(b, "bastion_agent_cert_cache_hits_total")
        assert on_b.heartbeat() == 200
        if _metric(b, "bastion_agent_cert_cache_hits_total") == hits + 1:
            break
    # Revoked on A: B refuses it within a second, before its entry's 2 s.
    assert a.ctl("agents", "revoke", "node2").returncode == 0
    t_revoked = time.monotonic()
    while on_b.heartbeat() == 200:
        assert time.monotonic() - t_revoked < 1.0, "B still takes node2"
    t_refused = time.monotonic()
    assert on_b.heartbeat() == 403
    assert t_refused - t_stored < 2.0, (
        "refused %.2f s after B cached it: by its age, not A's NOTIFY"
        % (t_refused - t_stored))
    on_a.close()
    on_b.close()
    assert a.alive() and b.alive()


class _Poll:
    """A long poll of an enrolled agent on its own mTLS connection."""

    def __init__(self, b, ag, wait):
        ctx = ssl.create_default_context(cafile=b.ca_pem)
        ctx.load_cert_chain(os.path.join(ag.state, "cert.pem"),
                            os.path.join(ag.state, "key.pem"))
        raw = socket.create_connection(("127.0.0.1", b.control_port), timeout=60)
        self.s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        self.s.sendall(b"GET /agent/v1/jobs?wait=%d HTTP/1.1\r\nHost: b\r\n"
                       b"Connection: close\r\n\r\n" % wait)

    def reply(self):
        data = b""
        while True:
            chunk = self.s.recv(65536)
            if not chunk:
                break
            data += chunk
        self.s.close()
        return data


def _quiet_on(b, ag):
    """Polls of ag on b until one is answered without asking the database
    (jobseen.c: b listens and knows ag has no job)."""
    deadline = time.monotonic() + 30
    while True:
        assert time.monotonic() < deadline, "b never knew the agent quiet"
        quiet = _metric(b, "bastion_agent_polls_quiet_total")
        asked = _metric(b, "bastion_agent_polls_asked_total")
        assert _Poll(b, ag, 1).reply().startswith(b"HTTP/1.1 204")
        if (_metric(b, "bastion_agent_polls_asked_total") == asked and
                _metric(b, "bastion_agent_polls_quiet_total") > quiet):
            return


def test_a_job_reaches_a_poll_that_asks_no_database(make_bastion, pg):
    """B answers its agent's polls without asking the database while
    nothing is announced for it; a job made on A is announced with its
    commit: B's waiting poll gets it within a second."""
    cluster, url = pg
    a, b = _two_bastions(make_bastion, url)
    n2 = Agent(b, "node2", token(a), "52:54:00:a0:00:02")
    assert n2.enroll().returncode == 0
    _quiet_on(b, n2)
    p = _Poll(b, n2, 30)
    wait_for(lambda: waiting_polls(b) == 1, what="the poll to wait on B")
    r = a.ctl("exec", "--detach", "node2", "--", "true")
    made = time.monotonic()
    assert r.returncode == 0, r
    reply = p.reply()
    waited = time.monotonic() - made
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert b'"id":%d' % int(r.stdout) in reply.replace(b" ", b"")
    assert waited < 1.0, "answered %.2f s after the job was made" % waited


def test_a_job_made_while_b_does_not_listen_reaches_its_poll(make_bastion, pg):
    """B's listening connection lost and not back (the database takes no
    new connection): a job made on A meanwhile is not heard by B, and B
    stops taking its agent for quiet — the waiting poll gets the job as
    soon as B listens again, not at the end of its 30 s."""
    cluster, url = pg
    a, b = _two_bastions(make_bastion, url)
    n2 = Agent(b, "node2", token(a), "52:54:00:a0:00:02")
    assert n2.enroll().returncode == 0
    _quiet_on(b, n2)
    p = _Poll(b, n2, 30)
    wait_for(lambda: waiting_polls(b) == 1, what="the poll to wait on B")
    admin = url.replace("/bastion_test?", "/postgres?")

    def psql(sql, db=admin):
        r = subprocess.run(["psql", "-Atq", "-v", "ON_ERROR_STOP=1", db,
                            "-c", sql], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()
    # B's listening session: the one it records in the bastions table (it
    # competes for the DHCP lead on it too).
    pid = int(psql("SELECT dhcp_session FROM bastions WHERE url ="
                   " 'https://10.77.0.1:%d'" % b.control_port, db=url))
    assert pid > 0
    psql("ALTER DATABASE bastion_test ALLOW_CONNECTIONS false")
    try:
        assert psql("SELECT pg_terminate_backend(%d)" % pid) == "t"
        wait_for(lambda: "listening for other bastions" in b.log(), timeout=10,
                 what="B to see its listening connection lost")
        r = a.ctl("exec", "--detach", "node2", "--", "true")
        assert r.returncode == 0, r
    finally:
        psql("ALTER DATABASE bastion_test ALLOW_CONNECTIONS true")
    back = time.monotonic()
    reply = p.reply()
    waited = time.monotonic() - back
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert b'"id":%d' % int(r.stdout) in reply.replace(b" ", b"")
    # The listener's backoff is at most 5 s; the poll's end 30 s.
    assert waited < 10, "answered %.1f s after the database took connections" % waited
    assert a.alive() and b.alive()
