"""Operators (issue 6): users and passwords, cookie sessions with CSRF,
idle and absolute expiry, API tokens, login throttling, the global
switches (read-only, production, allowlist) and bastionctl's commands for
all of them."""
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import time

import pytest

from harness import BIN, sample_report

CTL = os.path.join(BIN, "bastionctl")
MAC = "52:54:00:aa:00:01"


def ok(r):
    assert r.returncode == 0, "exit %d\nstdout: %s\nstderr: %s" % (
        r.returncode, r.stdout, r.stderr)
    return r


def code(r):
    try:
        return r.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def discovered(b, mac=MAC):
    b.dispatch(mac)
    assert b.boot("POST", "/api/v1/discover", sample_report(mac)).status == 200


def rows(b, sql, *args):
    db = sqlite3.connect(os.path.join(b.state, "bastion.db"))
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def audit(b, **q):
    qs = "&".join("%s=%s" % kv for kv in q.items())
    r = b.admin("GET", "/api/v1/audit?limit=1000" + ("&" + qs if qs else ""))
    assert r.status == 200, r
    return r.json()


# --- the first admin ----------------------------------------------------------

def test_first_start_creates_admin_with_one_time_password(bastion):
    m = re.search(r"created user 'admin' with the one-time password (\S+)",
                  bastion.log())
    assert m, bastion.log()[-2000:]
    pw = m.group(1)
    assert len(pw) == 24
    users = bastion.admin("GET", "/api/v1/users").json()
    assert [u["name"] for u in users] == ["admin"]
    assert users[0]["role"] == "admin" and users[0]["must_change_password"]
    # Argon2id with the configured cost; the password itself is nowhere.
    (h,) = rows(bastion, "SELECT password_hash FROM users WHERE name='admin'")[0]
    assert h.startswith("$argon2id$v=19$m=256,t=1,p=1$")
    with open(os.path.join(bastion.state, "bastion.db"), "rb") as f:
        assert pw.encode() not in f.read()
    # The one-time password logs in, but only to change itself.
    s = bastion.login("admin", pw)
    assert s.login_response.json()["must_change_password"] is True
    r = s.request("GET", "/api/v1/machines")
    assert r.status == 403 and code(r) == "password_change_required"
    assert s.request("GET", "/api/v1/session").json()["must_change_password"]
    r = s.request("PUT", "/api/v1/users/admin/password",
                  {"old_password": pw, "password": "a new long secret"})
    assert r.status == 200, r
    assert s.request("GET", "/api/v1/machines").status == 200
    # Shown once: a restart does not make or print another.
    bastion.stop()
    bastion.start()
    assert len(re.findall("created user 'admin'", bastion.log())) == 1
    assert bastion.login("admin", "a new long secret")
    act = [(e["action"], e["actor_type"]) for e in audit(bastion)]
    assert ("user.bootstrap", "system") in act
    assert ("user.password", "user") in act


def test_default_argon2_cost_is_t3_64mib(make_bastion):
    b = make_bastion()
    with open(b.conf) as f:
        conf = f.read()
    conf = conf.replace("argon2_time = 1\n", "").replace("argon2_memory = 256\n", "")
    with open(b.conf, "w") as f:
        f.write(conf)
    b.start()
    b.add_user("dora", "viewer", "dora's password")
    (h,) = rows(b, "SELECT password_hash FROM users WHERE name='dora'")[0]
    assert h.startswith("$argon2id$v=19$m=65536,t=3,p=1$")
    assert b.login("dora", "dora's password")


# --- users --------------------------------------------------------------------

def test_users_cli(bastion):
    r = ok(bastion.ctl("users", "add", "bob", "--role", "operator"))
    m = re.search(r"one-time password: (\S+)", r.stdout)
    assert m and "created user bob (operator)" in r.stdout
    ok(bastion.ctl("users", "add", "carol", "--role", "viewer",
                   "--password-stdin", input="carol's password\n"))
    lst = json.loads(ok(bastion.ctl("users", "list", "--json")).stdout)
    by = {u["name"]: u for u in lst}
    assert by["bob"]["must_change_password"] and not by["carol"]["must_change_password"]
    assert "password_hash" not in by["carol"]
    assert "carol" in ok(bastion.ctl("users", "list")).stdout
    assert bastion.login("carol", "carol's password")
    # Errors are the server's, with exit 1; usage errors exit 2.
    r = bastion.ctl("users", "add", "carol", "--role", "viewer")
    assert r.returncode == 1 and "already exists" in r.stderr
    for args in (["users", "add", "Bad Name", "--role", "viewer"],
                 ["users", "add", "x", "--role", "god"]):
        assert bastion.ctl(*args).returncode == 1
    r = bastion.ctl("users", "add", "dave", "--role", "viewer",
                    "--password-stdin", input="short\n")
    assert r.returncode == 1 and "at least 8" in r.stderr
    assert bastion.ctl("users", "add", "dave").returncode == 2
    # An admin resets a password: a new one-time password.
    r = ok(bastion.ctl("users", "passwd", "carol"))
    assert "one-time password" in r.stdout
    ok(bastion.ctl("users", "passwd", "carol", "--password-stdin",
                   input="carol's 2nd password\n"))
    assert bastion.login("carol", "carol's 2nd password")
    # disable / enable
    s = bastion.login("carol", "carol's 2nd password")
    tok = bastion.make_token("carol", "read")
    ok(bastion.ctl("users", "disable", "carol"))
    assert s.request("GET", "/api/v1/machines").status == 401
    assert bastion.control("GET", "/api/v1/machines", auth=tok).status == 401
    r = bastion.control("POST", "/api/v1/session",
                        {"username": "carol", "password": "carol's 2nd password"},
                        auth=None)
    assert r.status == 401
    ok(bastion.ctl("users", "enable", "carol"))
    assert bastion.control("GET", "/api/v1/machines", auth=tok).status == 200
    # The last enabled admin stays.
    r = bastion.ctl("users", "disable", "admin")
    assert r.returncode == 1 and "last enabled admin" in r.stderr


def test_password_changes(bastion):
    bastion.add_user("alice", "viewer", "alice password 1")
    bastion.add_user("eve", "viewer", "eve's password")
    s1 = bastion.login("alice", "alice password 1")
    s2 = bastion.login("alice", "alice password 1")
    # Someone else's password: only an admin.
    r = s1.request("PUT", "/api/v1/users/eve/password", {"password": "hijacked!!"})
    assert r.status == 403 and code(r) == "not_yours"
    # One's own needs the old one.
    r = s1.request("PUT", "/api/v1/users/alice/password", {"password": "x" * 10})
    assert r.status == 422
    r = s1.request("PUT", "/api/v1/users/alice/password",
                   {"old_password": "wrong", "password": "alice password 2"})
    assert r.status == 403 and code(r) == "wrong_password"
    r = s1.request("PUT", "/api/v1/users/alice/password",
                   {"old_password": "alice password 1", "password": "alice password 2"})
    assert r.status == 200
    # This session lives on, the others end.
    assert s1.request("GET", "/api/v1/session").status == 200
    assert s2.request("GET", "/api/v1/session").status == 401
    assert bastion.control("POST", "/api/v1/session", {
        "username": "alice", "password": "alice password 1"}, auth=None).status == 401
    assert bastion.login("alice", "alice password 2")
    # Via a token: an admin-scope token of the user, with the old password.
    bastion.add_user("tim", "admin", "tim's password")
    tok = bastion.make_token("tim", "admin")
    r = bastion.control("PUT", "/api/v1/users/tim/password", {
        "old_password": "tim's password", "password": "tim's new password"}, auth=tok)
    assert r.status == 200
    # The CLI reads old and new from stdin.
    url = "https://127.0.0.1:%d" % bastion.control_port
    r = ok(subprocess.run([CTL, "--server", url, "--cacert", bastion.ca_pem,
                           "--token", tok, "users", "passwd", "tim",
                           "--old-password-stdin"],
                          input="tim's new password\ntim's third password\n",
                          capture_output=True, text=True))
    assert "password changed" in r.stdout
    assert bastion.login("tim", "tim's third password")


# --- sessions -------------------------------------------------------------------

def test_session_cookie_flags_and_csrf(bastion):
    bastion.add_user("olga", "operator", "olga's password")
    discovered(bastion)
    s = bastion.login("olga", "olga's password")
    flags = [f.strip() for f in s.set_cookie.split(";")]
    assert flags[0].startswith("bastion_session=")
    assert re.fullmatch(r"bastion_session=[0-9a-f]{64}", flags[0])
    assert {"HttpOnly", "Secure", "SameSite=Strict", "Path=/"} <= set(flags)
    body = s.login_response.json()
    assert body["user"] == "olga" and body["role"] == "operator"
    assert re.fullmatch(r"[0-9a-f]{64}", body["csrf_token"])
    me = s.request("GET", "/api/v1/session").json()
    assert me["via"] == "session" and me["csrf_token"] == body["csrf_token"]
    # The session id is stored only as its SHA-256.
    sid_hash = hashlib.sha256(s.sid.encode()).hexdigest()
    assert rows(bastion, "SELECT count(*) FROM sessions WHERE id_hash=?", sid_hash) == [(1,)]
    assert rows(bastion, "SELECT count(*) FROM sessions WHERE id_hash=?", s.sid) == [(0,)]
    # Mutations with the cookie need the CSRF header, reads do not.
    r = s.request("DELETE", "/api/v1/machines/" + MAC, csrf=False)
    assert r.status == 403 and code(r) == "csrf"
    r = s.request("DELETE", "/api/v1/machines/" + MAC,
                  headers={"X-CSRF-Token": "0" * 64}, csrf=False)
    assert r.status == 403 and code(r) == "csrf"
    r = s.request("POST", "/api/v1/apitokens", {"scope": "read", "expires": "1h"},
                  csrf=False)
    assert r.status == 403 and code(r) == "csrf"
    assert bastion.admin("GET", "/api/v1/machines/" + MAC).status == 200
    r = s.request("DELETE", "/api/v1/machines/" + MAC)
    assert r.status == 200, r
    # A bad cookie is 401 and is cleared...
    r = bastion.control("GET", "/api/v1/machines", auth=None,
                        headers={"Cookie": "bastion_session=" + "ab" * 32})
    assert r.status == 401 and "Max-Age=0" in r.headers.get("Set-Cookie", "")
    # ...but does not stand in the way of logging in again.
    r = bastion.control("POST", "/api/v1/session",
                        {"username": "olga", "password": "olga's password"},
                        auth=None, headers={"Cookie": "bastion_session=" + "ab" * 32})
    assert r.status == 200 and r.headers["Set-Cookie"].count("bastion_session=") == 1


def test_login_csrf_needs_json_and_our_origin(bastion):
    """Login CSRF (issue 11): a page elsewhere can POST text/plain (no
    preflight) with the browser's cookies; it must not log the browser in
    to the attacker's account."""
    bastion.add_user("rita", "viewer", "rita's password")
    creds = json.dumps({"username": "rita", "password": "rita's password"})
    evil = {"Origin": "https://evil.example", "Content-Type": "text/plain"}
    r = bastion.control("POST", "/api/v1/session", creds, auth=None, headers=evil)
    assert r.status == 415 and code(r) == "unsupported_media_type", r
    assert "Set-Cookie" not in r.headers
    # Form types and none at all are refused the same way.
    for ct in ("application/x-www-form-urlencoded", "multipart/form-data",
               "application/jsonx", None):
        h = {"Content-Type": ct} if ct else {}
        r = bastion.control("POST", "/api/v1/session", creds, auth=None, headers=h)
        assert r.status == 415 and "Set-Cookie" not in r.headers, (ct, r)
    # JSON from a foreign origin (or an opaque one) is 403.
    for origin in ("https://evil.example", "null",
                   "http://localhost:%d" % bastion.control_port,
                   "https://localhost:%d" % (bastion.control_port + 1),
                   "https://localhost:%d.evil.example" % bastion.control_port):
        r = bastion.control("POST", "/api/v1/session", creds, auth=None,
                            headers={"Origin": origin,
                                     "Content-Type": "application/json"})
        assert r.status == 403 and code(r) == "foreign_origin", (origin, r)
        assert "Set-Cookie" not in r.headers
    # Our own origins (names and listen address, https and port), a
    # charset parameter, and no Origin at all (scripts) log in.
    for origin in ("https://localhost:%d" % bastion.control_port,
                   "https://10.77.0.1:%d" % bastion.control_port,
                   "https://127.0.0.1:%d" % bastion.control_port, None):
        h = {"Content-Type": "application/json; charset=utf-8"}
        if origin:
            h["Origin"] = origin
        r = bastion.control("POST", "/api/v1/session", creds, auth=None, headers=h)
        assert r.status == 200 and "bastion_session=" in r.headers["Set-Cookie"], (origin, r)
    denied = [e for e in audit(bastion, action="session.login")
              if e["result"] == "denied"]
    assert any("evil.example" in (e.get("detail") or "") for e in denied)


def test_json_endpoints_need_json_content_type(bastion):
    """Every JSON body, on every listener, is application/json or 415."""
    bastion.dispatch(MAC)       # discovering: its report is due
    user = json.dumps({"name": "sam", "role": "viewer"})
    rep = json.dumps(sample_report(MAC))
    for send, path, body, ctype in (
            (bastion.admin, "/api/v1/users", user, "text/plain"),
            (bastion.control, "/api/v1/users", user, "text/plain"),
            (bastion.boot, "/api/v1/discover", rep,
             "application/x-www-form-urlencoded")):
        r = send("POST", path, body, headers={"Content-Type": ctype})
        assert r.status == 415 and code(r) == "unsupported_media_type", r
    assert bastion.admin("GET", "/api/v1/users").json()[-1]["name"] != "sam"
    r = bastion.boot("POST", "/api/v1/discover", rep,
                     headers={"Content-Type": "Application/JSON;charset=UTF-8"})
    assert r.status == 200, r
    # bastionctl sends application/json.
    ok(bastion.ctl("users", "add", "sam", "--role", "viewer",
                   "--password-stdin", input="sam's password\n"))


def test_logout_and_own_sessions(bastion):
    bastion.add_user("pia", "viewer", "pia's password")
    bastion.add_user("quinn", "viewer", "quinn's password")
    s1 = bastion.login("pia", "pia's password")
    s2 = bastion.login("pia", "pia's password")
    q = bastion.login("quinn", "quinn's password")
    lst = s1.request("GET", "/api/v1/sessions").json()
    assert len(lst) == 2 and sum(x["current"] for x in lst) == 1
    assert all("hash" not in json.dumps(x) for x in lst)
    other = [x["id"] for x in lst if not x["current"]][0]
    # Not someone else's.
    qid = q.login_response.json()["session_id"]
    r = s1.request("DELETE", "/api/v1/sessions/%d" % qid)
    assert r.status == 404
    assert q.request("GET", "/api/v1/session").status == 200
    # One's own other session.
    assert s1.request("DELETE", "/api/v1/sessions/%d" % other).status == 200
    assert s2.request("GET", "/api/v1/session").status == 401
    # Logout ends this one and clears the cookie.
    r = s1.request("DELETE", "/api/v1/session", csrf=False)
    assert r.status == 403 and code(r) == "csrf"
    r = s1.request("DELETE", "/api/v1/session")
    assert r.status == 200 and "Max-Age=0" in r.headers["Set-Cookie"]
    assert s1.request("GET", "/api/v1/session").status == 401
    acts = [(e["action"], e["actor"], e["result"]) for e in audit(bastion)]
    assert ("session.logout", "pia", "ok") in acts
    assert ("session.end", "pia", "ok") in acts


def test_session_idle_and_absolute_expiry(make_bastion):
    b = make_bastion(extra_conf="session_idle = 2\nsession_lifetime = 8\n")
    b.start()
    b.add_user("ida", "viewer", "ida's password")
    s = b.login("ida", "ida's password")
    assert "Max-Age=8" in s.set_cookie
    assert s.login_response.json()["idle_timeout_s"] == 2
    # Idle: nothing for longer than 2 s.
    time.sleep(2.6)
    r = s.request("GET", "/api/v1/session")
    assert r.status == 401 and "idle" in r.json()["error"]["message"]
    # Absolute: busy, yet over after 8 s. Margins of seconds on either
    # side: a busy machine may be slow to answer, never early.
    s = b.login("ida", "ida's password")
    start = time.time()
    while time.time() - start < 4:
        assert s.request("GET", "/api/v1/session").status == 200
        time.sleep(0.7)
    time.sleep(max(0, 8.3 - (time.time() - start)))
    r = s.request("GET", "/api/v1/session")
    assert r.status == 401 and "expired" in r.json()["error"]["message"]


# --- API tokens -----------------------------------------------------------------

def test_api_tokens(bastion):
    bastion.add_user("ops", "operator", "ops password")
    bastion.add_user("vic", "viewer", "vic's password")
    # CLI over the admin socket: the token alone on stdout.
    r = ok(bastion.ctl("apitokens", "create", "--user", "ops", "--scope",
                       "provision", "--expires", "90d", "--description", "ci"))
    tok = r.stdout.strip()
    assert re.fullmatch(r"bst_[0-9a-f]{64}", tok) and "shown once" in r.stderr
    j = json.loads(ok(bastion.ctl("apitokens", "create", "--user", "vic",
                                  "--scope", "read", "--expires", "12h",
                                  "--json")).stdout)
    assert j["token"].startswith("bst_") and j["scope"] == "read"
    me = bastion.control("GET", "/api/v1/session", auth=tok).json()
    assert me == {"user": "ops", "role": "operator", "via": "token",
                  "scope": "provision", "token_id": me["token_id"],
                  "must_change_password": False}
    # Stored hashed; listed without secrets, with the last use.
    assert rows(bastion, "SELECT count(*) FROM api_tokens WHERE hash=?",
                hashlib.sha256(tok.encode()).hexdigest()) == [(1,)]
    with open(os.path.join(bastion.state, "bastion.db"), "rb") as f:
        assert tok[4:].encode() not in f.read()
    lst = json.loads(ok(bastion.ctl("apitokens", "list", "--json")).stdout)
    assert all("token" not in t and "hash" not in t for t in lst)
    mine = [t for t in lst if t["user"] == "ops"][0]
    assert mine["last_used_at"] and mine["description"] == "ci"
    assert mine["last_used_address"] == "127.0.0.1" and mine["status"] == "active"
    assert "ops" in ok(bastion.ctl("apitokens", "list")).stdout
    # bastionctl --server --token uses it.
    url = "https://127.0.0.1:%d" % bastion.control_port
    r = ok(subprocess.run([CTL, "--server", url, "--cacert", bastion.ca_pem,
                           "--token", tok, "whoami"], capture_output=True, text=True))
    assert "ops (operator) via token" in r.stdout and "provision" in r.stdout
    # A user sees only their own tokens; an admin all.
    lst = bastion.control("GET", "/api/v1/apitokens", auth=j["token"]).json()
    assert {t["user"] for t in lst} == {"vic"}
    # Revoked: refused at once.
    ok(bastion.ctl("apitokens", "revoke", str(mine["id"])))
    r = bastion.control("GET", "/api/v1/machines", auth=tok)
    assert r.status == 401 and code(r) == "unauthenticated"
    assert bastion.ctl("apitokens", "revoke", str(mine["id"])).returncode == 1
    # Expired: refused.
    made = time.time()
    short = bastion.make_token("vic", "read", "4s")
    assert bastion.control("GET", "/api/v1/machines", auth=short).status == 200
    time.sleep(max(0, made + 4.3 - time.time()))
    assert bastion.control("GET", "/api/v1/machines", auth=short).status == 401
    # The list says which is which.
    status = {t["id"]: t["status"] for t in json.loads(
        ok(bastion.ctl("apitokens", "list", "--json")).stdout)}
    assert status[mine["id"]] == "revoked" and status[j["id"]] == "active"
    assert sorted(status.values()) == ["active", "expired", "revoked"], status
    # Garbage in every shape is 401, never 500.
    for bad in ("bst_" + "0" * 64, "bst_xyz", "", "x" * 5000, tok.upper()):
        r = bastion.control("GET", "/api/v1/machines", auth=None,
                            headers={"Authorization": "Bearer " + bad})
        assert r.status in (401, 431), (bad, r)
    r = bastion.control("GET", "/api/v1/machines", auth=None,
                        headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert r.status == 401


def test_api_token_rules(bastion):
    bastion.add_user("vic", "viewer", "vic's password")
    bastion.add_user("ops", "operator", "ops password")
    post = lambda body: bastion.admin("POST", "/api/v1/apitokens", body)  # noqa: E731
    # Mandatory, bounded expiry.
    assert post({"user": "ops", "scope": "read"}).status == 422
    assert post({"user": "ops", "scope": "read", "expires": "367d"}).status == 422
    assert post({"user": "ops", "scope": "read", "expires": "soon"}).status == 422
    assert post({"user": "ops", "scope": "read", "expires": "366d"}).status == 201
    # A scope above the user's role is refused.
    r = post({"user": "vic", "scope": "provision", "expires": "1h"})
    assert r.status == 422 and code(r) == "scope_above_role"
    assert post({"user": "ops", "scope": "admin", "expires": "1h"}).status == 422
    assert post({"user": "ops", "scope": "exec", "expires": "1h"}).status == 201
    assert post({"user": "nobody", "scope": "read", "expires": "1h"}).status == 404
    assert post({"scope": "read", "expires": "1h"}).status == 422  # socket: no user
    r = bastion.ctl("apitokens", "create", "--user", "ops", "--scope", "read")
    assert r.returncode == 2 and "--expires" in r.stderr
    # A token cannot outgrow its user: a demoted user's token shrinks.
    bastion.add_user("ann", "admin", "ann's password")
    tok = bastion.make_token("ann", "admin")
    assert bastion.control("GET", "/api/v1/users", auth=tok).status == 200
    assert bastion.admin("PATCH", "/api/v1/users/ann", {"role": "viewer"}).status == 200
    r = bastion.control("GET", "/api/v1/users", auth=tok)
    assert r.status == 403 and code(r) == "forbidden"
    # Non-admins make tokens only for themselves (with an admin-scope
    # credential, here a session).
    s = bastion.login("ops", "ops password")
    r = s.request("POST", "/api/v1/apitokens", {"user": "vic", "scope": "read",
                                                "expires": "1h"})
    assert r.status == 403 and code(r) == "not_yours"
    r = s.request("POST", "/api/v1/apitokens", {"scope": "read", "expires": "1h"})
    assert r.status == 201 and r.json()["user"] == "ops"


# --- throttling -------------------------------------------------------------------

def test_login_throttling_and_lockout(make_bastion):
    b = make_bastion(extra_conf="login_max_failures = 3\nlockout = 3\n")
    with open(b.conf) as f:
        conf = f.read().replace("listen = 127.0.0.1:", "listen = 0.0.0.0:")
    with open(b.conf, "w") as f:
        f.write(conf)
    b.start()
    b.add_user("bob", "viewer", "bob's password")
    b.add_user("carol", "viewer", "carol's password")

    def login(user, pw, host="127.0.0.1"):
        return b.control("POST", "/api/v1/session",
                         {"username": user, "password": pw}, auth=None, host=host)

    for _ in range(3):
        r = login("bob", "wrong")
        assert r.status == 401 and code(r) == "bad_credentials"
    # Locked: even the right password is refused, with Retry-After.
    r = login("bob", "bob's password")
    assert r.status == 429 and code(r) == "locked_out"
    assert 1 <= int(r.headers["Retry-After"]) <= 3
    # Per user: bob is locked from another address too...
    assert login("bob", "bob's password", host="10.77.0.1").status == 429
    # ...per address: this address is locked for carol as well, another is not.
    assert login("carol", "carol's password").status == 429
    assert login("carol", "carol's password", host="10.77.0.1").status == 200
    # Unknown users count the same way (no user enumeration).
    assert login("nobody", "x", host="10.77.0.1").status == 401
    time.sleep(3.2)
    assert login("bob", "bob's password").status == 200
    # Audited: each failure, the lockout, the refusals.
    rows_ = [e for e in audit(b) if e["action"] in ("session.login", "auth.lockout")]
    fails = [e for e in rows_ if e["action"] == "session.login" and e["actor"] == "bob"
             and e["result"] == "denied"]
    assert len(fails) == 5    # 3 wrong, 2 while locked
    assert any("locked out" in e["detail"] for e in fails)
    locks = [e for e in rows_ if e["action"] == "auth.lockout"]
    assert {e["target"] for e in locks} >= {"bob", "127.0.0.1"}
    assert all(e["source"] for e in rows_)
    ok_ = [e for e in rows_ if e["action"] == "session.login" and e["result"] == "ok"]
    assert {e["actor"] for e in ok_} == {"bob", "carol"}


def test_lockout_survives_a_restart(make_bastion):
    b = make_bastion(extra_conf="login_max_failures = 2\nlockout = 8\n").start()
    b.add_user("dave", "viewer", "dave's password")
    b.add_user("erin", "viewer", "erin's password")

    def login(user, pw):
        return b.control("POST", "/api/v1/session",
                         {"username": user, "password": pw}, auth=None)

    t0 = time.time()
    for _ in range(2):
        assert login("dave", "wrong").status == 401
    assert login("dave", "dave's password").status == 429
    stored = rows(b, "SELECT key FROM auth_lockouts ORDER BY key")
    assert stored == [("addr:127.0.0.1",), ("user:dave",)], stored
    # A restart does not lift it: the user and the address stay locked.
    b.stop()
    b.start()
    assert "user:dave stays locked out" in b.log()
    r = login("dave", "dave's password")
    assert r.status == 429 and code(r) == "locked_out", r
    assert "try again in" in r.json()["error"]["message"]
    assert 1 <= int(r.headers["Retry-After"]) <= 8
    assert login("erin", "erin's password").status == 429
    assert b.ctl("users", "list").returncode == 0     # the rest works
    # ...until the lockout is over, counted from when it started.
    time.sleep(max(0, t0 + 8.3 - time.time()))
    assert login("dave", "dave's password").status == 200
    assert login("erin", "erin's password").status == 200
    # Audited as before: one lockout row per key (the restart adds none),
    # each refusal a denied login.
    a = audit(b)
    locks = [e for e in a if e["action"] == "auth.lockout"]
    assert sorted(e["target"] for e in locks) == ["127.0.0.1", "dave"], locks
    refused = [e for e in a if e["action"] == "session.login" and
               e["result"] == "denied" and "locked out" in e["detail"]]
    assert {e["actor"] for e in refused} == {"dave", "erin"}
    assert len(refused) == 3, refused
    # A new lockout drops the ones that are over from the table.
    for _ in range(2):
        assert login("erin", "wrong").status == 401
    assert rows(b, "SELECT key FROM auth_lockouts ORDER BY key") == [
        ("addr:127.0.0.1",), ("user:erin",)]
    # A stored lockout never runs longer than the lockout configured now
    # (nor past a clock set back).
    b.stop()
    with open(b.conf) as f:
        conf = f.read().replace("lockout = 8", "lockout = 2")
    with open(b.conf, "w") as f:
        f.write(conf)
    b.start()
    r = login("erin", "erin's password")
    assert r.status == 429 and int(r.headers["Retry-After"]) <= 2, r
    time.sleep(2.2)
    assert login("erin", "erin's password").status == 200


# --- global switches ---------------------------------------------------------------

def test_read_only_mode(bastion):
    bastion.admin_token()       # made before read-only mode refuses it
    discovered(bastion)
    bastion.add_user("ro", "admin", "ro's password")
    s = bastion.login("ro", "ro's password")
    assert ok(bastion.ctl("settings", "get", "read_only")).stdout == "off\n"
    ok(bastion.ctl("settings", "set", "read_only", "on"))
    assert ok(bastion.ctl("settings", "get", "read_only")).stdout == "on\n"
    r = bastion.control("DELETE", "/api/v1/machines/" + MAC)
    assert r.status == 423 and code(r) == "read_only"
    assert "read-only" in r.json()["error"]["message"]
    r = bastion.admin("POST", "/api/v1/machines/%s/install" % MAC, {})
    assert r.status == 423
    r = bastion.ctl("users", "add", "x", "--role", "viewer")
    assert r.returncode == 1 and "read-only" in r.stderr
    r = bastion.ctl("settings", "set", "production", "on")
    assert r.returncode == 1 and "read-only" in r.stderr
    # Reads, logins and boots go on; what machines report waits (503).
    assert bastion.control("GET", "/api/v1/machines").status == 200
    assert bastion.login("ro", "ro's password")
    other = "52:54:00:aa:00:02"
    assert bastion.dispatch(other).status == 200
    r = bastion.boot("POST", "/api/v1/discover", sample_report(other))
    assert r.status == 503 and code(r) == "read_only", r
    # Settings survive a restart.
    bastion.stop()
    bastion.start()
    assert bastion.control("DELETE", "/api/v1/machines/" + MAC).status == 423
    # An admin turns it off, from the panel's session here.
    s = bastion.login("ro", "ro's password")
    r = s.request("PUT", "/api/v1/settings/read_only", {"value": "off"})
    assert r.status == 200 and r.json()["read_only"] is False
    assert bastion.control("DELETE", "/api/v1/machines/" + MAC).status == 200
    r = bastion.admin("PUT", "/api/v1/settings/read_only", {"value": "maybe"})
    assert r.status == 422
    assert bastion.admin("PUT", "/api/v1/settings/nope", {"value": "on"}).status == 404
    acts = [(e["action"], e["detail"]) for e in audit(bastion, action="settings.set")]
    assert ("settings.set", "read_only = on") in acts
    assert ("settings.set", "read_only = off") in acts


def test_production_mode(bastion):
    discovered(bastion)
    bastion.add_user("op", "operator", "op's password")
    optok = bastion.make_token("op", "provision")
    ok(bastion.ctl("settings", "set", "production", "on"))
    # Destructive actions need an admin...
    r = bastion.control("DELETE", "/api/v1/machines/" + MAC, auth=optok)
    assert r.status == 403 and code(r) == "production_mode"
    # ...and a confirmation naming the target.
    r = bastion.control("DELETE", "/api/v1/machines/" + MAC)
    assert r.status == 428 and code(r) == "confirmation_required"
    assert MAC in r.json()["error"]["message"]
    r = bastion.control("DELETE", "/api/v1/machines/" + MAC,
                        headers={"X-Confirm": "52:54:00:aa:00:02"})
    assert r.status == 428
    r = bastion.control("POST", "/api/v1/machines/%s/reprovision" % MAC, {},
                        headers={"X-Confirm": "wrong"})
    assert r.status == 428
    # A job's target is in its body: the confirmation must name it.
    r = bastion.control("POST", "/api/v1/jobs",
                        {"target": "node9", "kind": "exec", "args": {"argv": ["true"]}})
    assert r.status == 428 and "node9" in r.json()["error"]["message"]
    r = bastion.control("POST", "/api/v1/jobs",
                        {"target": "node9", "kind": "exec", "args": {"argv": ["true"]}},
                        headers={"X-Confirm": "other"})
    assert r.status == 428
    r = bastion.control("POST", "/api/v1/jobs",
                        {"target": "node9", "kind": "exec", "args": {"argv": ["true"]}},
                        headers={"X-Confirm": "node9"})
    assert r.status == 404, r    # confirmed; there is no such agent
    # Non-destructive changes are not affected.
    r = bastion.control("POST", "/api/v1/machines/%s/install" % MAC,
                        {"hostname": "n1"}, auth=optok)
    assert r.status not in (403, 428), r
    # bastionctl --confirm, in any MAC spelling.
    r = bastion.ctl("machines", "forget", MAC)
    assert r.returncode == 1 and "--confirm" in r.stderr
    ok(bastion.ctl("--confirm", MAC.upper().replace(":", "-"), "machines",
                   "forget", MAC))
    assert bastion.admin("GET", "/api/v1/machines/" + MAC).status == 404
    denied = [e for e in audit(bastion, action="machine.forget") if e["result"] == "denied"]
    assert len(denied) >= 3
    ok(bastion.ctl("settings", "set", "production", "off"))
    discovered(bastion)
    assert bastion.control("DELETE", "/api/v1/machines/" + MAC, auth=optok).status == 200


def test_allowlist(bastion):
    assert ok(bastion.ctl("settings", "get", "allowlist")).stdout == "any\n"
    for bad in ("10.0.0.0/33", "garbage", "1.2.3.4/x", "fd00::/129"):
        r = bastion.ctl("settings", "set", "allowlist", bad)
        assert r.returncode == 1, bad
    ok(bastion.ctl("settings", "set", "allowlist", "10.0.0.0/8, fd00::/8"))
    r = json.loads(ok(bastion.ctl("settings", "get", "--json")).stdout)
    assert r["allowlist"] == ["10.0.0.0/8", "fd00::/8"]
    r = bastion.control("GET", "/api/v1/machines")
    assert r.status == 403 and code(r) == "address_not_allowed"
    assert bastion.control("POST", "/api/v1/session", {"username": "a", "password": "b"},
                           auth=None).status == 403
    # The admin socket is not the control listener.
    assert bastion.admin("GET", "/api/v1/machines").status == 200
    ok(bastion.ctl("settings", "set", "allowlist", "127.0.0.0/8,::1"))
    assert bastion.control("GET", "/api/v1/machines").status == 200
    # A remote admin cannot lock themselves out by accident.
    r = bastion.control("PUT", "/api/v1/settings/allowlist", {"value": "192.0.2.0/24"})
    assert r.status == 409 and code(r) == "would_lock_out"
    r = bastion.control("PUT", "/api/v1/settings/allowlist",
                        {"value": "192.0.2.0/24", "force": True})
    assert r.status == 200
    assert bastion.control("GET", "/api/v1/machines").status == 403
    ok(bastion.ctl("settings", "set", "allowlist", "any"))
    assert bastion.control("GET", "/api/v1/machines").status == 200
    out = ok(bastion.ctl("settings", "get")).stdout
    assert "read_only" in out and "production" in out and "allowlist" in out


def test_cli_help_lists_the_new_commands():
    r = subprocess.run([CTL, "--help"], capture_output=True, text=True)
    for cmd in ("users add", "users list", "users passwd", "users disable",
                "apitokens create", "apitokens list", "apitokens revoke",
                "settings get", "settings set", "audit list", "audit verify",
                "--confirm"):
        assert cmd in r.stdout, cmd


@pytest.mark.parametrize("args", [
    ["users", "add"], ["users", "add", "x"], ["users", "list", "extra"],
    ["apitokens", "create", "--scope", "read"], ["apitokens", "revoke"],
    ["apitokens", "revoke", "x"], ["settings", "set", "read_only"],
    ["audit", "list", "--limit", "0"], ["audit", "verify", "x"],
    ["--confirm"],
])
def test_usage_errors(args):
    r = subprocess.run([CTL] + args, capture_output=True, text=True,
                       env={"BASTION_SOCKET": "/nonexistent/admin.sock"})
    assert r.returncode == 2, r


def test_refusal_waits_for_the_body(bastion):
    """A request refused on its headers (401, 423...) still gets its answer
    when the client sends the body afterwards, instead of a reset."""
    import socket
    import ssl
    body = json.dumps({"name": "x", "role": "viewer"}).encode()
    head = ("POST /api/v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: "
            "application/json\r\nContent-Length: %d\r\n\r\n" % len(body)).encode()
    ctx = ssl.create_default_context(cafile=bastion.ca_pem)
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", bastion.control_port)) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(head)
                time.sleep(0.2)
                s.sendall(body)
                data = s.recv(4096)
        assert data.startswith(b"HTTP/1.1 401"), data
    # The same over the admin socket in read-only mode.
    ok(bastion.ctl("settings", "set", "read_only", "on"))
    for _ in range(5):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(bastion.admin_sock)
            s.sendall(head)
            time.sleep(0.2)
            s.sendall(body)
            data = s.recv(4096)
        assert data.startswith(b"HTTP/1.1 423"), data
