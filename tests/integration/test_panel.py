"""The web panel (issue 6): its static files and their headers, and a real
browser (Debian's chromium, headless, driven by playwright-core from
tests/browser) logging in, queueing an install and watching it progress,
an admin reading the audit log, a viewer seeing no actions and being
refused when forcing a request. Screenshots go to build/artifacts/panel/."""
import os
import re
import shutil
import subprocess

import pytest

from harness import sample_report

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BROWSER_DIR = os.path.join(ROOT, "tests", "browser")
ARTIFACTS = os.path.join(ROOT, "build", "artifacts", "panel")
MAC = "52:54:00:b1:0b:01"
KEY_HEX = re.compile(r"k=([0-9a-f]{64})")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def test_panel_files_are_served_with_a_strict_policy(bastion):
    for path, ctype in (("/", "text/html"), ("/ui/index.html", "text/html"),
                        ("/ui/app.js", "text/javascript"), ("/ui/api.js", "text/javascript"),
                        ("/ui/dom.js", "text/javascript"),
                        ("/ui/jobs.js", "text/javascript"), ("/ui/favicon.svg", "image/svg+xml"), ("/ui/style.css", "text/css")):
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


def test_panel_in_a_browser(bastion):
    if not have_browser():
        pytest.fail("no browser: run `make deps` (chromium, node, npm ci in tests/browser)")
    b = bastion
    users = {"operator": ("olga", "operator-pw-1234"), "viewer": ("vic", "viewer-pw-1234"),
             "admin": ("ada", "admin-pw-12345")}
    for role, (name, pw) in users.items():
        b.add_user(name, role, pw)
    # A machine that booted and sent its discovery report.
    assert b.dispatch(MAC).status == 200
    r = b.boot("POST", "/api/v1/discover", sample_report(MAC))
    assert r.status == 200, r

    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    os.makedirs(ARTIFACTS)
    env = dict(os.environ, BASE="https://127.0.0.1:%d" % b.control_port, MAC=MAC,
               ARTIFACTS=ARTIFACTS, OPERATOR="%s:%s" % users["operator"],
               VIEWER="%s:%s" % users["viewer"], ADMIN="%s:%s" % users["admin"])
    p = subprocess.Popen(["node", os.path.join(BROWSER_DIR, "panel.mjs")], cwd=BROWSER_DIR,
                         env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, bufsize=1)
    key = None
    try:
        for line in p.stdout:
            line = line.strip()
            if line == "STEP queued":
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
                p.stdin.write("go\n")
            elif line == "STEP progress-seen":
                r = b.boot("POST", "/api/v1/progress/%s?k=%s" % (MAC, key),
                           {"stage": "done", "percent": 100, "message": "finished"})
                assert r.status == 200, r
                p.stdin.write("go\n")
            elif line.startswith("OK") or line == "FAIL":
                break
        rc = p.wait(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read()
    assert rc == 0, err[-4000:]
    shots = sorted(os.listdir(ARTIFACTS))
    assert len(shots) == 11, shots
    # The install and the refused forced requests are on the record.
    audit = b.admin("GET", "/api/v1/audit?action=machine.").json()
    assert any(a["action"] == "machine.install" and a["actor"] == "olga" and
               a["target"] == MAC and a["result"] == "ok" for a in audit), audit
    assert sum(a["actor"] == "vic" and a["result"] == "denied" for a in audit) == 2, audit
