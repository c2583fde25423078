"""Interactive streams across bastions (issue 17, DESIGN §16): two
bastions on one PostgreSQL database; the agent polls A, the operator
opens a guest's console (a real LXC guest) or `containers exec -it` (a
real Docker engine) through B. The stream lives in B's memory: the job
names B's control URL (stream_url) and the agent reaches the stream
there, on a connection of its own. Keys typed reach the guest, its output
comes back, a resize reaches the process, the session ends cleanly; with
agentd and agentd-static. A stream bastion the agent cannot reach: it
tries its own, finds no stream there, and the session ends at once for
the operator with the reason, through the job's result and a NOTIFY.
A stream on the agent's own bastion whose URL it cannot reach: the agent
falls back to its own connection and the session works."""
import base64
import fcntl
import json
import os
import shutil
import signal
import struct
import termios
import time

import pytest

from agents import enrolled_agent, job_done, wait_for, waiting_polls
from test_containers import IMAGE, engine  # noqa: F401  (fixture)
from test_guest_console import (lxc_guest, pty_session, read_until,  # noqa: F401
                                wait_exit)


def two_bastions(make_bastion, db_url, b_reachable=True):
    """A (agents poll it, on 127.0.0.1) and B (a copy of A's ca/, no
    DHCP). B's control URL for nodes is https://10.77.0.1:PORT: B listens
    there when b_reachable, else only on 127.0.0.1 (nothing answers at
    its URL: connection refused)."""
    conf = "[database]\nurl = %s\n" % db_url
    a = make_bastion(extra_conf=conf, dhcp_mode="off")
    a.start()
    b = make_bastion(extra_conf=conf, dhcp_mode="off",
                     control_host="10.77.0.1" if b_reachable else "127.0.0.1")
    shutil.copytree(os.path.join(a.state, "ca"), os.path.join(b.state, "ca"))
    b.start()
    return a, b


def tail(text, n=4000):
    """The end of a log without the inventory's chatter."""
    return "\n".join(l for l in text.splitlines()
                     if " inventory: " not in l)[-n:]


def log_of(ag, *bastions):
    return lambda: "\n--- agentd:\n" + tail(ag.log()) + "".join(
        "\n--- %s:\n%s" % (name, tail(b.log())) for name, b in
        zip("AB", bastions))


def stream_requests(b, sid):
    return "/agent/v1/streams/%s/" % sid in b.log()


def sid_of(b, kind):
    """The stream of the newest job of kind (made through b)."""
    jobs = b.admin("GET", "/api/v1/jobs").json()
    job = next(j for j in jobs if j["kind"] == kind)
    return job, job["args"]["stream"]


def done_through_b(a, b, kind, logs):
    """The newest job of kind, made on b: it named B's URL, its agent used
    the stream there and not on A, and it is done (returned)."""
    job, sid = sid_of(b, kind)
    assert job["args"]["stream_url"] == "https://10.77.0.1:%d" % b.control_port
    assert stream_requests(b, sid) and not stream_requests(a, sid), logs()
    return job_done(b, job["id"])


@pytest.mark.parametrize("binary", ["agentd", "agentd-static"])
def test_console_through_b_for_an_agent_of_a(make_bastion, pg, agents,
                                              lxc_guest, binary):
    _, db_url = pg
    path, guest = lxc_guest
    a, b = two_bastions(make_bastion, db_url)
    ag = enrolled_agent(a, extra="lxc_path = %s\n" % path, binary=binary)
    agents.append(ag)
    logs = log_of(ag, a, b)
    pid, fd = pty_session(b, "guests", "console", "node1", guest)
    try:
        read_until(fd, rb"Ctrl-\] leaves", what=logs())
        os.write(fd, b"\r")
        time.sleep(0.3)
        os.write(fd, b"echo cross-$((6*7))\r")
        read_until(fd, rb"cross-42", what=logs())
        os.write(fd, b"\x1d")
        read_until(fd, rb"left the session")
        assert wait_exit(pid) == 0
    finally:
        os.close(fd)
    job = done_through_b(a, b, "guest", logs)
    assert job["status"] == "done", job
    # One session, ended by its operator, recorded by B (it held it).
    wait_for(lambda: [json.loads(r["detail"])["ended_by"] for r in json.loads(
        b.ctl("audit", "list", "--json").stdout)
        if r["action"] == "guest.console.end"] == ["operator"], 30,
        "the session's end row")


@pytest.mark.parametrize("binary", ["agentd", "agentd-static"])
def test_exec_it_through_b_for_an_agent_of_a(make_bastion, pg, agents, engine,
                                             binary):
    _, db_url = pg
    for c in engine.ps():
        engine.run("rm", "-f", c["ID"])
    engine.run("run", "-d", "--name", "web1", "--network", "none", IMAGE,
               "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done")
    a, b = two_bastions(make_bastion, db_url)
    ag = enrolled_agent(a, extra="docker_socket = %s\n" % engine.sock,
                        binary=binary)
    agents.append(ag)
    logs = log_of(ag, a, b)
    pid, fd = pty_session(b, "containers", "exec", "-it", "node1", "web1",
                          "--", "sh")
    try:
        read_until(fd, rb"Ctrl-\] leaves", what=logs())
        os.write(fd, b"tty; echo answer-$((6*7))\r")
        out = read_until(fd, rb"answer-42", what=logs())
        assert b"/dev/pts/" in out, out
        os.write(fd, b"stty size\r")
        read_until(fd, rb"33 101", what=logs())
        # The operator's terminal changes size: the process's does too.
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        os.write(fd, b"stty size\r")
        read_until(fd, rb"40 120", what=logs())
        os.write(fd, b"exit 5\r")
        assert wait_exit(pid) == 5
    finally:
        os.close(fd)
    job = done_through_b(a, b, "container", logs)
    assert job["status"] == "done" and job["exit_code"] == 5, job


def test_unreachable_stream_bastion_ends_the_session_with_a_reason(
        make_bastion, pg, agents, engine, lxc_guest):
    """B's URL answers nothing (connection refused): the agent tries A, A
    has no such stream; its job fails with unreached_stream, A tells B,
    and B ends the stream: the operator is told why within seconds, not
    after the stream's idle time (120 s)."""
    _, db_url = pg
    path, guest = lxc_guest
    for c in engine.ps():
        engine.run("rm", "-f", c["ID"])
    engine.run("run", "-d", "--name", "web1", "--network", "none", IMAGE,
               "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done")
    a, b = two_bastions(make_bastion, db_url, b_reachable=False)
    ag = enrolled_agent(a, extra="lxc_path = %s\ndocker_socket = %s\n" %
                        (path, engine.sock))
    agents.append(ag)
    logs = log_of(ag, a, b)

    # A console, through the API: the client's long poll answers with the
    # end and its reason.
    r = b.admin("POST", "/api/v1/agents/node1/guests/%s/console" % guest, {})
    assert r.status == 202, r
    sid = r.json()["stream"]
    t0 = time.time()
    seen = b""
    while time.time() - t0 < 40:
        o = b.admin("GET", "/api/v1/streams/%s/output?wait=10" % sid,
                    timeout=20).json()
        seen += base64.b64decode(o["data"])
        if o["ended"]:
            break
    took = time.time() - t0
    assert o["ended"] and not o["attached"] and o["exit_code"] is None, (o, logs())
    assert "could not reach the bastion that holds this session" in \
        o["reason"], o
    assert "10.77.0.1:%d" % b.control_port in o["reason"], o
    assert b"bastion: the node could not reach" in seen, seen
    assert took < 30, took
    # Gone once read; the job says why; the session's end row says so.
    assert b.admin("GET", "/api/v1/streams/%s/output" % sid).status == 404
    job = job_done(a, r.json()["job"]["id"])
    assert job["status"] == "failed" and job["error"].startswith(
        "unreached_stream: https://10.77.0.1:%d" % b.control_port), job
    wait_for(lambda: [json.loads(x["detail"])["ended_by"] for x in json.loads(
        b.ctl("audit", "list", "--json").stdout)
        if x["action"] == "guest.console.end"] == ["node did not come"], 30,
        "the session's end row")

    # exec -it through bastionctl: it ends with the reason and exit 1.
    t0 = time.time()
    r = b.ctl("containers", "exec", "--tty", "node1", "web1", "--", "sh",
              input="echo never\n")
    assert r.returncode == 1, r
    assert "could not reach the bastion that holds this session" in r.stderr, r
    assert "never" not in r.stdout, r
    assert time.time() - t0 < 30
    assert a.alive() and b.alive()


def test_stream_url_unreachable_falls_back_to_the_agents_own_bastion(
        make_bastion, pg, agents, lxc_guest):
    """A console opened on A while its agent is not polling A (stopped
    for a moment): the job names A's URL, which the agent cannot reach
    (A listens on 127.0.0.1 only); it falls back to the server it was
    given, where the stream is, and the session works."""
    _, db_url = pg
    path, guest = lxc_guest
    a, b = two_bastions(make_bastion, db_url, b_reachable=False)
    ag = enrolled_agent(a, extra="lxc_path = %s\n" % path)
    agents.append(ag)
    logs = log_of(ag, a, b)
    ag.proc.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: waiting_polls(a) == 0, 40, "A's long poll to end")
        r = a.admin("POST", "/api/v1/agents/node1/guests/%s/console" % guest,
                    {})
        assert r.status == 202, r
    finally:
        ag.proc.send_signal(signal.SIGCONT)
    sid = r.json()["stream"]
    job = a.admin("GET", "/api/v1/jobs/%d" % r.json()["job"]["id"]).json()
    url = "https://10.77.0.1:%d" % a.control_port
    assert job["args"]["stream_url"] == url, job
    out = b""
    typed = False
    deadline = time.time() + 40
    while time.time() < deadline and b"fallback-5" not in out:
        o = a.admin("GET", "/api/v1/streams/%s/output?wait=5" % sid,
                    timeout=15).json()
        out += base64.b64decode(o["data"])
        assert not o["ended"], (o, out, logs())
        if o["attached"] and not typed:
            assert a.admin("POST", "/api/v1/streams/%s/input" % sid, {
                "data": base64.b64encode(
                    b"\recho fallback-$((2+3))\r").decode()}).status == 200
            typed = True
    assert b"fallback-5" in out, (out, logs())
    assert "trying https://127.0.0.1:%d" % a.control_port in ag.log(), logs()
    assert a.admin("POST", "/api/v1/streams/%s/input" % sid,
                   {"close": True}).status == 200
    assert job_done(a, job["id"])["status"] == "done"
