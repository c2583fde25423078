"""The `pg` fixture shared by the integration and e2e suites: a
throwaway PostgreSQL 15 cluster (tests/pg.sh) started for one test, as
nobody, in a temp dir; it yields the cluster's directory and the url of
its database, and is stopped and removed after the test."""
import os
import shutil
import subprocess
import tempfile

import pytest

from harness import ROOT

PG_SH = os.path.join(ROOT, "tests", "pg.sh")


@pytest.fixture
def pg():
    d = tempfile.mkdtemp(prefix="bastion-pg-")
    os.chmod(d, 0o711)      # the cluster runs as nobody
    cluster = os.path.join(d, "cluster")
    r = subprocess.run([PG_SH, "start", cluster], capture_output=True, text=True)
    assert r.returncode == 0, "PostgreSQL did not start: %s %s" % (r.stdout, r.stderr)
    try:
        yield cluster, r.stdout.strip()
    finally:
        subprocess.run([PG_SH, "stop", cluster], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)
