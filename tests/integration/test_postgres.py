"""PostgreSQL backend (issue 17, phase 1): a bastion whose [database] url
names a PostgreSQL database (a throwaway cluster, tests/pg.sh) answers
the API — login, a token, the machine list — and keeps no SQLite file;
with PostgreSQL stopped it answers 503 with a JSON error and stays up;
started again, it serves as before."""
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from harness import ROOT, sample_report

PG = os.path.join(ROOT, "tests", "pg.sh")
MAC = "52:54:00:ab:00:01"


@pytest.fixture
def pg():
    d = tempfile.mkdtemp(prefix="bastion-pg-")
    os.chmod(d, 0o711)      # the cluster runs as nobody
    cluster = os.path.join(d, "cluster")
    r = subprocess.run([PG, "start", cluster], capture_output=True, text=True)
    assert r.returncode == 0, "PostgreSQL did not start: %s %s" % (r.stdout, r.stderr)
    try:
        yield cluster, r.stdout.strip()
    finally:
        subprocess.run([PG, "stop", cluster], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


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
