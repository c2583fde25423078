"""Writes on several bastions at once (issue 17): every acknowledged
write is in the shared database afterwards, the audit log stays one
chain, and a bastion killed in the middle of the load loses nothing it
had acknowledged."""
import os
import shutil
import threading

from agents import wait_for
from harness import pid_running

THREADS = 3         # per bastion
WRITES = 15         # per thread


def two_bastions(make_bastion, url):
    conf = "[database]\nurl = %s\n" % url
    a = make_bastion(extra_conf=conf, dhcp_mode="off")
    a.start()
    b = make_bastion(extra_conf=conf, dhcp_mode="off")
    shutil.copytree(os.path.join(a.state, "ca"), os.path.join(b.state, "ca"))
    b.start()
    return a, b


def writer(b, tag, acked, failed, stop=None):
    """Enrollment tokens made one after another; the comment names each
    write, kept in acked when bastion answered 201."""
    for i in range(WRITES):
        if stop is not None and stop.is_set():
            return
        comment = "%s-%d" % (tag, i)
        try:
            r = b.admin("POST", "/api/v1/tokens", {"comment": comment})
        except OSError as e:       # the bastion was killed: not acknowledged
            failed.append((comment, repr(e)))
            continue
        if r.status == 201:
            acked.append(comment)
        else:
            failed.append((comment, r.status, r.text))


def run_writers(plan):
    threads = [threading.Thread(target=writer, args=args) for args in plan]
    for t in threads:
        t.start()
    return threads


def comments(b):
    return {t["comment"] for t in b.admin("GET", "/api/v1/tokens").json()}


def audit_rows(b, action):
    r = b.admin("GET", "/api/v1/audit?action=%s&limit=10000" % action)
    assert r.status == 200, r
    return r.json()


def test_concurrent_writes_on_two_bastions_all_land_in_one_chain(make_bastion, pg):
    a, b = two_bastions(make_bastion, pg[1])
    acked, failed = [], []
    threads = run_writers([(x, "%s%d" % (name, t), acked, failed)
                           for x, name in ((a, "a"), (b, "b"))
                           for t in range(THREADS)])
    for t in threads:
        t.join()
    # Appends to the audit chain from two bastions at once must not make
    # either refuse a write.
    assert failed == [], failed
    assert len(acked) == 2 * THREADS * WRITES
    assert set(acked) <= comments(a) and set(acked) <= comments(b)
    # One audit row per write, and the chain verifies on both.
    assert len(audit_rows(a, "jointoken.create")) == len(acked)
    for x in (a, b):
        v = x.admin("GET", "/api/v1/audit/verify").json()
        assert v["ok"] is True and v["anchored"] is True, v
    assert a.alive() and b.alive()


def test_a_bastion_killed_under_write_load_loses_no_acknowledged_write(make_bastion, pg):
    a, b = two_bastions(make_bastion, pg[1])
    acked_a, acked_b, failed_a, failed_b = [], [], [], []
    stop_b = threading.Event()
    threads = run_writers([(a, "a%d" % t, acked_a, failed_a) for t in range(THREADS)] +
                          [(b, "b%d" % t, acked_b, failed_b, stop_b)
                           for t in range(THREADS)])
    # Kill B once it has acknowledged some writes, mid-load.
    deadline = 0
    while len(acked_b) < THREADS * 3 and deadline < 600:
        threads[-1].join(0.05)
        deadline += 1
    assert len(acked_b) >= THREADS * 3, (acked_b, failed_b)
    children = [b.child_pid(c) for c in ("bastion-http", "bastion-signer")]
    dnsmasq = b.dnsmasq_pid()   # None: A leads DHCP, B stands by
    b.kill9()
    # Its worker and signer follow it (parent-death signal), and so does
    # its dnsmasq if it ran one (a watcher ends it: it runs as nobody).
    wait_for(lambda: not any(p and pid_running(p) for p in children + [dnsmasq]),
             what="B's worker, signer and dnsmasq to end")
    stop_b.set()
    for t in threads:
        t.join()
    # Every write either bastion acknowledged is in the database, with its
    # audit row; A never refused one.
    assert failed_a == [], failed_a
    have = comments(a)
    missing = [c for c in acked_a + acked_b if c not in have]
    assert missing == [], missing
    assert len(audit_rows(a, "jointoken.create")) >= len(acked_a) + len(acked_b)
    v = a.admin("GET", "/api/v1/audit/verify").json()
    assert v["ok"] is True, v
    # B's leftovers: a restart on the same database serves again.
    b.start()
    assert set(acked_b) <= comments(b)
