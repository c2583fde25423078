"""The audit trail (issue 6): every change, login and token event is an
append-only, hash-chained row; `bastionctl audit verify` recomputes the
chain and names the first row that was changed, removed or moved, whether
bastion runs or not."""
import hashlib
import json
import os
import re
import sqlite3

import pytest

from harness import sample_report

MAC = "52:54:00:bb:00:01"
COLS = ("id", "time_ms", "actor_type", "actor", "source", "action", "target",
        "result", "error", "detail", "request_id", "prev_hash", "hash")


def ok(r):
    assert r.returncode == 0, "exit %d\nstdout: %s\nstderr: %s" % (
        r.returncode, r.stdout, r.stderr)
    return r


def db(b):
    return sqlite3.connect(os.path.join(b.state, "bastion.db"), timeout=10)


def all_rows(b):
    with db(b) as h:
        return h.execute("SELECT %s FROM audit_log ORDER BY id" % ", ".join(COLS)).fetchall()


def tamper(b, *sql):
    """What an attacker with the database file can do: the append-only
    triggers are in the way, so they go first."""
    h = db(b)
    try:
        if h.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
                     " AND name LIKE 'audit_log_no_%'").fetchone()[0] == 2:
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                h.execute("UPDATE audit_log SET actor = 'x' WHERE id = 1")
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                h.execute("DELETE FROM audit_log WHERE id = 1")
        h.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        h.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        for s in sql:
            h.execute(*s) if isinstance(s, tuple) else h.execute(s)
        h.commit()
    finally:
        h.close()


def restore(b, original):
    h = db(b)
    try:
        h.execute("DELETE FROM audit_log")
        h.executemany("INSERT INTO audit_log (%s) VALUES (%s)" % (
            ", ".join(COLS), ", ".join("?" * len(COLS))), original)
        h.commit()
    finally:
        h.close()


def verify(b):
    r = b.ctl("audit", "verify")
    j = json.loads(b.ctl("audit", "verify", "--json").stdout)
    return r, j


def canonical_hash(row, prev):
    """docs/api.md, "Audit log": the chain as anyone can recompute it."""
    h = hashlib.sha256(b"bastion-audit-v1\n")
    for v in row[:11]:
        v = str(v).encode()
        h.update(b"%d:" % len(v) + v + b",")
    h.update(prev.encode())
    return h.hexdigest()


def some_history(b):
    b.add_user("alice", "operator", "alice's password")
    tok = b.make_token("alice", "provision")
    b.control("POST", "/api/v1/session", {"username": "alice", "password": "nope"},
              auth=None)
    b.login("alice", "alice's password")
    b.dispatch(MAC)
    assert b.boot("POST", "/api/v1/discover", sample_report(MAC)).status == 200
    assert b.control("DELETE", "/api/v1/machines/" + MAC, auth=tok).status == 200
    b.control("DELETE", "/api/v1/machines/" + MAC, auth=tok)          # 404
    b.control("GET", "/api/v1/users", auth=tok)                       # not audited
    b.control("DELETE", "/api/v1/machines/" + MAC, auth=None)         # 401
    return tok


def test_what_is_audited(bastion):
    some_history(bastion)
    rows = json.loads(ok(bastion.ctl("audit", "list", "--json")).stdout)
    seen = [(e["actor_type"], e["actor"], e["action"], e["target"], e["result"])
            for e in rows]
    assert ("admin-socket", "root", "user.create", "alice", "ok") in seen
    assert ("admin-socket", "root", "apitoken.create", "alice", "ok") in seen
    assert ("user", "alice", "session.login", "alice", "denied") in seen
    assert ("user", "alice", "session.login", "alice", "ok") in seen
    assert ("machine", MAC, "machine.boot", MAC, "ok") in seen
    assert ("machine", MAC, "machine.discover", MAC, "ok") in seen
    forget = [e for e in rows if e["action"] == "machine.forget"]
    assert [(e["actor_type"], e["result"]) for e in forget] == [
        ("token", "ok"), ("token", "error"), ("anonymous", "denied")]
    assert forget[0]["actor"].startswith("alice#")
    assert forget[1]["error"].startswith("not_found")
    assert forget[2]["error"].startswith("unauthenticated")
    for e in rows:
        assert e["time"] and e["source"]
        assert len(e["request_id"]) == 16 or e["request_id"] == "startup"
        assert len(e["hash"]) == 64 and len(e["prev_hash"]) == 64
    assert not any(e["action"] == "" for e in rows)
    # The chain, recomputed here from the documented format.
    prev = "0" * 64
    for row in all_rows(bastion):
        assert row[11] == prev
        assert canonical_hash(row, prev) == row[12]
        prev = row[12]
    # Filters.
    only = json.loads(ok(bastion.ctl("audit", "list", "--actor", "alice",
                                     "--json")).stdout)
    assert only and all(e["actor"] == "alice" or e["actor"].startswith("alice#")
                        for e in only)
    assert any(e["actor_type"] == "token" for e in only)
    logins = json.loads(ok(bastion.ctl("audit", "list", "--action", "session.login",
                                       "--json")).stdout)
    assert {e["result"] for e in logins} == {"ok", "denied"}
    machine = json.loads(ok(bastion.ctl("audit", "list", "--action", "machine.",
                                        "--json")).stdout)
    assert {e["action"] for e in machine} == {"machine.boot", "machine.discover",
                                              "machine.forget"}
    assert len(json.loads(ok(bastion.ctl("audit", "list", "--since", "1h",
                                         "--json")).stdout)) == len(rows)
    assert json.loads(ok(bastion.ctl("audit", "list", "--since", "2999-01-01",
                                     "--json")).stdout) == []
    last2 = json.loads(ok(bastion.ctl("audit", "list", "--limit", "2", "--json")).stdout)
    assert [e["id"] for e in last2] == [rows[-2]["id"], rows[-1]["id"]]
    assert bastion.ctl("audit", "list", "--since", "yesterday").returncode == 1
    text = ok(bastion.ctl("audit", "list")).stdout
    assert "machine.forget" in text and "admin-socket:root" in text
    # Over HTTPS: admins only.
    r = bastion.control("GET", "/api/v1/audit?actor=alice&limit=5")
    assert r.status == 200 and len(r.json()) <= 5


def test_install_progress_and_kickstart_are_audited(bastion):
    bastion.dispatch(MAC)
    bastion.boot("POST", "/api/v1/discover", sample_report(MAC))
    r = bastion.control("POST", "/api/v1/machines/%s/install" % MAC, {
        "hostname": "n1.lab", "role": "worker",
        "ssh_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq7 ops@lab"]})
    assert r.status == 202, r
    key = re.search(r"k=([0-9a-f]{64})", bastion.dispatch(MAC).text).group(1)
    assert bastion.boot("GET", "/ks/%s?k=%s" % (MAC, key)).status == 200
    r = bastion.boot("POST", "/api/v1/progress/%s?k=%s" % (MAC, key),
                     {"stage": "done", "percent": 100})
    assert r.status == 200
    rows = json.loads(ok(bastion.ctl("audit", "list", "--json")).stdout)
    acts = [(e["action"], e["actor_type"], e["target"]) for e in rows]
    assert ("machine.install", "token", MAC) in acts
    assert ("install.kickstart", "machine", MAC) in acts
    assert ("install.progress", "machine", MAC) in acts
    done = [e for e in rows if e["action"] == "install.progress"][0]
    assert done["detail"] == "done 100%"


def test_verify_intact(bastion):
    some_history(bastion)
    r, j = verify(bastion)
    assert r.returncode == 0 and "intact" in r.stdout
    assert j["ok"] is True and j["first_bad_id"] is None and j["rows"] >= 8
    assert j["anchored"] is True


@pytest.mark.parametrize("running", [True, False])
def test_verify_names_the_first_bad_row(bastion, running):
    some_history(bastion)
    original = all_rows(bastion)
    n = len(original)
    assert n >= 8
    cases = [
        # (what, sql, the row verify must name)
        ("changed", [("UPDATE audit_log SET result = 'error' WHERE id = 3",)], 3),
        ("changed time", [("UPDATE audit_log SET time_ms = time_ms + 1 WHERE id = 5",)], 5),
        ("deleted", [("DELETE FROM audit_log WHERE id = 4",)], 4),
        ("deleted first", [("DELETE FROM audit_log WHERE id = 1",)], 1),
        ("deleted last", [("DELETE FROM audit_log WHERE id = %d" % n,)], n),
        ("swapped", [("UPDATE audit_log SET id = -1 WHERE id = 2",),
                     ("UPDATE audit_log SET id = 2 WHERE id = 6",),
                     ("UPDATE audit_log SET id = 6 WHERE id = -1",)], 2),
        ("rehashed", [("UPDATE audit_log SET actor = 'mallory' WHERE id = 7",)], 7),
    ]
    for what, sql, bad in cases:
        if not running:
            bastion.stop()
        if what == "rehashed":
            # Forging one row's hash moves the break to the next row.
            r = dict(zip(COLS, original[6]))
            r["actor"] = "mallory"
            forged = canonical_hash([r[c] for c in COLS], r["prev_hash"])
            sql = sql + [("UPDATE audit_log SET hash = ? WHERE id = 7", (forged,))]
            bad = 8
        tamper(bastion, *[s if len(s) == 2 else s[0] for s in sql])
        if not running:
            bastion.start()
        r, j = verify(bastion)
        assert r.returncode == 1, (what, r.stdout)
        assert j["ok"] is False and j["first_bad_id"] == bad, (what, j)
        assert "row %d" % bad in r.stdout, (what, r.stdout)
        if not running:
            bastion.stop()
        restore(bastion, original)
        if not running:
            bastion.start()
        r, j = verify(bastion)
        assert r.returncode == 0, (what, r.stdout, j)
        original = all_rows(bastion)    # a restart may have added rows


def test_no_change_without_its_audit_row(bastion):
    """The row is written in the change's own transaction: when it cannot
    be written, the change does not happen either."""
    bastion.admin_token()
    bastion.dispatch(MAC)
    bastion.boot("POST", "/api/v1/discover", sample_report(MAC))
    h = db(bastion)
    h.execute("CREATE TRIGGER audit_full BEFORE INSERT ON audit_log"
              " BEGIN SELECT RAISE(ABORT, 'disk full, say'); END")
    h.commit()
    h.close()
    r = bastion.control("DELETE", "/api/v1/machines/" + MAC)
    assert r.status == 500, r
    assert bastion.admin("GET", "/api/v1/machines/" + MAC).status == 200
    # What has no change to ride on is logged in full instead.
    bastion.control("GET", "/api/v1/machines", auth="bst_" + "0" * 64)
    bastion.control("POST", "/api/v1/session", {"username": "a", "password": "b"},
                    auth=None)
    assert "AUDIT ROW LOST" in bastion.log()
    h = db(bastion)
    h.execute("DROP TRIGGER audit_full")
    h.commit()
    h.close()
    assert bastion.control("DELETE", "/api/v1/machines/" + MAC).status == 200
    assert ok(bastion.ctl("audit", "verify"))
