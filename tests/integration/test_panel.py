"""The web panel (issue 6): its static files and their headers, and a real
browser (Debian's chromium, headless, driven by playwright-core from
tests/browser) logging in, queueing an install and watching it progress,
an admin reading the audit log, a viewer seeing no actions and being
refused when forcing a request; and the jobs page with a real enrolled
agentd: a command's output arriving live, its exit code, the audit row,
production mode's confirmation. Screenshots go to build/artifacts/panel/
and build/artifacts/panel-jobs/."""
import base64
import os
import re
import shutil
import sqlite3
import subprocess

import pytest

from agents import enrolled_agent
from harness import sample_report

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BROWSER_DIR = os.path.join(ROOT, "tests", "browser")
ARTIFACTS = os.path.join(ROOT, "build", "artifacts", "panel")
JOB_ARTIFACTS = os.path.join(ROOT, "build", "artifacts", "panel-jobs")
MAC = "52:54:00:b1:0b:01"
KEY_HEX = re.compile(r"k=([0-9a-f]{64})")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def test_panel_files_are_served_with_a_strict_policy(bastion):
    # Every module of the panel (one per page) is served.
    modules = sorted(f for f in os.listdir(os.path.join(ROOT, "webroot")) if f.endswith(".js"))
    assert {"app.js", "ui.js", "machines.js", "machine.js", "job.js"} <= set(modules), modules
    for path, ctype in [("/", "text/html"), ("/ui/index.html", "text/html"),
                        ("/ui/favicon.svg", "image/svg+xml"), ("/ui/style.css", "text/css")] + [
                        ("/ui/" + m, "text/javascript") for m in modules]:
        r = bastion.control("GET", path, auth=None)
        assert r.status == 200, (path, r)
        assert r.headers["Content-Type"].startswith(ctype), (path, r.headers)
        assert r.headers["Content-Security-Policy"] == CSP, path
        assert r.headers["X-Frame-Options"] == "DENY", path
        assert r.headers["X-Content-Type-Options"] == "nosniff", path
    index = bastion.control("GET", "/", auth=None).text
    assert "<script" in index and "https:" not in index and "http:" not in index
    for path in ("/ui/..", "/ui/.hidden.js", "/ui/%2e%2e%2fMakefile", "/ui/App.js",
                 "/ui/nope.js", "/ui/README", "/ui/x.sh", "/ui/a/b.js", "/ui/"):
        r = bastion.control("GET", path, auth=None)
        assert r.status in (401, 404), (path, r)
        assert "Content-Type" in r.headers and "javascript" not in r.headers["Content-Type"]
    # Not on the boot listener, and the data behind the panel is not open.
    assert bastion.boot("GET", "/ui/app.js").status == 404
    assert bastion.control("GET", "/api/v1/machines", auth=None).status == 401


def have_browser():
    return (os.path.exists("/usr/bin/chromium") and shutil.which("node") and
            os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")))


def browser(script, b, artifacts, users, on_step=None, **env):
    """Runs tests/browser/SCRIPT against bastion b with the users (role ->
    (name, password)); on_step(name) answers each "STEP name" line.
    Returns the process's stderr after asserting it said OK."""
    if not have_browser():
        pytest.fail("no browser: run `make deps` (chromium, node, npm ci in tests/browser)")
    shutil.rmtree(artifacts, ignore_errors=True)
    os.makedirs(artifacts)
    env = dict(os.environ, BASE="https://127.0.0.1:%d" % b.control_port,
               ARTIFACTS=artifacts, OPERATOR="%s:%s" % users["operator"],
               VIEWER="%s:%s" % users["viewer"], ADMIN="%s:%s" % users["admin"], **env)
    p = subprocess.Popen(["node", os.path.join(BROWSER_DIR, script)], cwd=BROWSER_DIR,
                         env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, bufsize=1)
    last = ""
    try:
        for line in p.stdout:
            last = line.strip()
            if last.startswith("STEP "):
                on_step(last[5:])
                p.stdin.write("go\n")
            elif last.startswith("OK") or last == "FAIL":
                break
        rc = p.wait(timeout=180)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read()
    assert rc == 0 and last.startswith("OK"), err[-4000:]
    return err


USERS = {"operator": ("olga", "operator-pw-1234"), "viewer": ("vic", "viewer-pw-1234"),
         "admin": ("ada", "admin-pw-12345")}


def test_panel_in_a_browser(bastion):
    b = bastion
    for role, (name, pw) in USERS.items():
        b.add_user(name, role, pw)
    # A machine that booted and sent its discovery report.
    assert b.dispatch(MAC).status == 200
    r = b.boot("POST", "/api/v1/discover", sample_report(MAC))
    assert r.status == 200, r
    key = None

    def on_step(name):
        nonlocal key
        if name == "queued":
            m = b.admin("GET", "/api/v1/machines/" + MAC).json()
            assert m["state"] == "queued" and m["hostname"] == "web1.lab", m
            assert m["install"]["role"] == "worker"
            # The installer boots, fetches its kickstart, reports progress.
            d = b.dispatch(MAC)
            key = KEY_HEX.search(d.text).group(1)
            assert b.boot("GET", "/ks/%s?k=%s" % (MAC, key)).status == 200
            r = b.boot("POST", "/api/v1/progress/%s?k=%s" % (MAC, key),
                       {"stage": "packages", "percent": 40,
                        "message": "installing packages"})
            assert r.status == 200, r
        elif name == "progress-seen":
            r = b.boot("POST", "/api/v1/progress/%s?k=%s" % (MAC, key),
                       {"stage": "done", "percent": 100, "message": "finished"})
            assert r.status == 200, r

    browser("panel.mjs", b, ARTIFACTS, USERS, on_step, MAC=MAC)
    shots = sorted(os.listdir(ARTIFACTS))
    assert len(shots) == 11, shots
    # The install and the refused forced requests are on the record.
    audit = b.admin("GET", "/api/v1/audit?action=machine.").json()
    assert any(a["action"] == "machine.install" and a["actor"] == "olga" and
               a["target"] == MAC and a["result"] == "ok" for a in audit), audit
    assert sum(a["actor"] == "vic" and a["result"] == "denied" for a in audit) == 2, audit


def test_jobs_page_with_a_real_agent(bastion, agents):
    b = bastion
    for role, (name, pw) in USERS.items():
        b.add_user(name, role, pw)
    agents.append(enrolled_agent(b, name="node7", mac="52:54:00:b1:0b:07"))
    agent = b.admin("GET", "/api/v1/agents/node7").json()
    def on_step(name):
        assert name == "silence"
        # The node goes quiet: four heartbeat intervals without a word.
        agents[0].stop()
        c = sqlite3.connect(os.path.join(b.state, "bastion.db"), timeout=10)
        with c:
            c.execute("UPDATE agents SET last_seen_ms = last_seen_ms - 120000")
        c.close()

    err = browser("jobs.mjs", b, JOB_ARTIFACTS, USERS, on_step, NODE="node7", AGENT=agent["id"])
    assert "viewer's forced job: 403 application/json" in err
    shots = sorted(os.listdir(JOB_ARTIFACTS))
    assert len(shots) == 9 and "failure.png" not in shots, shots
    # What the browser did is what happened: two jobs ran on the node (the
    # wrongly confirmed one never reached the API), with their output.
    jobs = b.admin("GET", "/api/v1/jobs").json()
    assert [(j["agent_id"], j["status"], j["exit_code"]) for j in jobs] == [
        (agent["id"], "done", 0), (agent["id"], "done", 3)], jobs
    assert jobs[0]["args"]["argv"] == ["echo production"]
    assert jobs[1]["args"]["argv"] == [
        "echo first; printf '\\342\\202'; sleep 2; printf '\\254 second\\n'; exit 3"]
    assert jobs[1]["args"]["shell"] is True
    out = b.admin("GET", "/api/v1/jobs/%d/output" % jobs[1]["id"]).json()
    chunks = [base64.b64decode(c["data"]) for c in out["chunks"]]
    assert b"".join(chunks) == "first\n€ second\n".encode()
    assert len(chunks) >= 2     # it came in pieces, as it was printed
    # One of them ends inside the €, which the page showed whole.
    assert any(c.endswith(b"\xe2\x82") for c in chunks), chunks
    # Who ran them: the job names its user, as does the audit log, whose
    # rows name the node the job went to (production mode or not).
    assert [j["created_by"] for j in jobs] == ["ada", "olga"], jobs
    audit = b.admin("GET", "/api/v1/audit?action=job.create").json()
    assert sorted((a["actor"], a["result"]) for a in audit) == [
        ("ada", "ok"), ("olga", "ok"), ("vic", "denied")], audit
    assert sorted(a["target"] for a in audit if a["result"] == "ok") == [
        agent["id"], agent["id"]], audit
    assert any(a["action"] == "settings.set" and a["target"] == "production"
               for a in b.admin("GET", "/api/v1/audit?actor=ada").json())


OVERVIEW_ARTIFACTS = os.path.join(ROOT, "build", "artifacts", "panel-overview")


def test_fleet_overview(make_bastion, agents, tmp_path):
    """The first page: a real agentd on a sysfs fixture (hot, failing
    SMART, loaded) and a channel whose deliveries fail (a closed port)."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed = s.getsockname()[1]
    s.close()
    b = make_bastion(extra_conf=(
        "[agent]\nheartbeat_interval = 5\n[alerts]\nrecompute_interval = 1\n"
        "[channel dead]\ntype = webhook\nurl = http://127.0.0.1:%d/x\n"
        "secret = hunter2\nretries = 0\n" % closed)).start()
    for role, (name, pw) in USERS.items():
        b.add_user(name, role, pw)
    root = tmp_path / "root"
    shutil.copytree(os.path.join(ROOT, "tests", "data", "health", "sysfs-hot"), str(root))
    smartctl = tmp_path / "smartctl"
    smartctl.write_text("#!/bin/sh\nexec cat %s\n" % os.path.join(
        ROOT, "tests", "data", "health", "smart", "failing.json"))
    smartctl.chmod(0o755)
    agents.append(enrolled_agent(b, name="hot7", mac="52:54:00:b1:0b:17",
                                 extra="inventory_root = %s\nsmartctl = %s\n"
                                 % (root, smartctl)))

    def on_step(name):
        assert name == "silence"
        out = b.ctl("alerts", "silence", "hot7", "smart_failing", "--for", "1h")
        assert out.returncode == 0, out

    browser("overview.mjs", b, OVERVIEW_ARTIFACTS, USERS, on_step, NODE="hot7")
    assert sorted(os.listdir(OVERVIEW_ARTIFACTS)) == [
        "01-overview-admin.png", "02-overview-silenced.png", "03-overview-viewer.png"]
