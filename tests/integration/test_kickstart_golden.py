"""Rendered kickstarts for every built-in role, fresh install and
reprovision, BIOS and UEFI, against golden files in tests/data/kickstart/,
plus the structural check. UPDATE_GOLDEN=1 rewrites the golden files
(review the diff before committing it)."""
import hashlib
import os
import re

import pytest

from harness import BIN, ROOT, sample_report
import kscheck

GOLDEN = os.path.join(ROOT, "tests", "data", "kickstart")
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGmiGf1hhbxbcvYOUcw0WlcRbFhRLfP0uj9dCkpWxrJ9 ops@lab"


def render(b, mac, role, reprovision, firmware):
    b.dispatch(mac)
    assert b.boot("POST", "/api/v1/discover", sample_report(mac, firmware=firmware)).status == 200
    r = b.admin("POST", "/api/v1/machines/%s/install" % mac,
                {"hostname": "%s-1.lab" % role, "role": role, "ssh_keys": [KEY]})
    assert r.status == 202, r
    if reprovision:
        key = re.search(r"k=([0-9a-f]{64})", b.dispatch(mac).text).group(1)
        b.boot("GET", "/ks/%s?k=%s" % (mac, key))
        b.boot("POST", "/api/v1/progress/%s?k=%s" % (mac, key), {"stage": "done", "percent": 100})
        assert b.admin("POST", "/api/v1/machines/%s/reprovision" % mac, {}).status == 202
    ks = b.admin("POST", "/api/v1/templates/render", {"mac": mac}).json()["kickstart"]
    # What differs between runs: the listeners' ports, the CA and the
    # agentd build (its digest is checked against the file here).
    fp = re.search(r"ca_fingerprint = (sha256:[0-9a-f]{64})", ks).group(1)
    sums = dict((f, h) for h, f in re.findall(
        r"'([0-9a-f]{64})' (/usr/local/sbin/agentd|/etc/systemd/system/agentd.service)",
        ks, re.M))
    assert sums == {"/usr/local/sbin/agentd": sha256(os.path.join(BIN, "agentd-static")),
                    "/etc/systemd/system/agentd.service":
                        sha256(os.path.join(ROOT, "appliance", "agentd.service"))}, sums
    for h in sums.values():
        ks = ks.replace(h, "0" * 64)
    return ks.replace("http://10.77.0.1:%d/" % b.boot_port, "http://10.77.0.1:8080/") \
        .replace("https://10.77.0.1:%d\n" % b.control_port, "https://10.77.0.1:8443\n") \
        .replace(fp, "sha256:" + "0" * 64)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


CASES = [(role, repro, fw) for role in ("worker", "infra")
         for repro in (False, True) for fw in ("bios", "uefi")]


@pytest.mark.parametrize("role,reprovision,firmware", CASES)
def test_golden(bastion, role, reprovision, firmware):
    mac = "52:54:00:90:%02x:%02x" % (CASES.index((role, reprovision, firmware)), 1)
    ks = render(bastion, mac, role, reprovision, firmware)
    assert kscheck.check(ks) == []
    pre = kscheck.sections(ks, "%pre")
    assert len(pre) == 1 and "bastion_progress pre 5" in pre[0]
    assert len(kscheck.sections(ks, "%post")) == 1
    assert len(kscheck.sections(ks, "%onerror")) == 1
    name = "%s-%s-%s.ks" % (role, "reprovision" if reprovision else "fresh", firmware)
    path = os.path.join(GOLDEN, name)
    if os.environ.get("UPDATE_GOLDEN"):
        with open(path, "w") as f:
            f.write(ks)
    with open(path) as f:
        assert ks == f.read(), "rendered %s differs from %s" % (name, path)
