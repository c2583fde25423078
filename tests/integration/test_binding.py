"""Issue 11, points 1-3: the boot listener's secrets and reports are bound
to the machine entitled to them — the address bastion saw its MAC use
(docs/operator-guide.md, "What the boot network can and cannot do").

Each attack of the issue is a test: another machine on the provisioning
network (an address of its own on the test bridge) tries it, is refused,
and the real machine's install still completes and its agent enrolls."""
import json
import re
import time

import pytest

from agents import Agent, token
from harness import add_address, sample_report

MAC = "52:54:00:b1:00:01"
REAL = "10.77.0.60"     # the real machine
EVIL = "10.77.0.50"     # anything else on the provisioning network
KEY_HEX = re.compile(r"k=([0-9a-f]{64})")
TOKEN = re.compile(r"^token = ([0-9a-f]{64})$", re.M)


@pytest.fixture(autouse=True)
def addresses():
    for ip in (REAL, EVIL, "10.77.0.61", "10.77.0.62"):
        add_address(ip)


def state(b, mac=MAC):
    return b.admin("GET", "/api/v1/machines/" + mac).json()["state"]


def install(b, mac=MAC):
    return b.admin("GET", "/api/v1/machines/" + mac).json()["install"]


def discovered(b, mac=MAC, ip=REAL, **report):
    assert b.dispatch(mac, source=ip).status == 200
    r = b.boot("POST", "/api/v1/discover", sample_report(mac, **report), source=ip)
    assert r.status == 200, r


def queue(b, mac=MAC, how="install", **body):
    req = {"hostname": "node1.lab", "role": "worker"}
    req.update(body)
    r = b.admin("POST", "/api/v1/machines/%s/%s" % (mac, how), req)
    assert r.status == 202, r
    return r.json()


def installer_key(b, mac=MAC, ip=REAL):
    r = b.dispatch(mac, source=ip)
    m = KEY_HEX.search(r.text)
    assert r.status == 200 and m, r.text
    return m.group(1)


def ks(b, key, mac=MAC, ip=REAL):
    return b.boot("GET", "/ks/%s?k=%s" % (mac, key), source=ip)


def progress(b, key, stage, mac=MAC, ip=REAL):
    return b.boot("POST", "/api/v1/progress/%s?k=%s" % (mac, key),
                  {"stage": stage, "percent": 100 if stage == "done" else 50},
                  source=ip)


def denied(b, source=EVIL):
    rows = json.loads(b.ctl("audit", "list", "--json").stdout)
    return [e for e in rows if e["source"] == source and e["result"] == "denied"]


def assert_idle(r):
    """The answer of a machine with nothing to do: no installer, no key."""
    assert r.status == 200, r
    assert "kernel" not in r.text and "k=" not in r.text and "exit" in r.text, r.text


def enroll(b, tok, mac=MAC, name="node1"):
    return Agent(b, name, tok, mac).enroll()


def kickstarted(b):
    """The real machine, leased REAL, is discovered and queued, boots the
    installer and fetches its kickstart: (key, join token)."""
    b.lease(MAC, REAL)
    discovered(b)
    queue(b)
    key = installer_key(b)
    k = ks(b, key)
    assert k.status == 200, k
    return key, TOKEN.search(k.text).group(1)


# --- 1. install takeover --------------------------------------------------

def test_install_takeover_from_another_address_full_dhcp(bastion):
    b = bastion
    b.lease(MAC, REAL)              # what dnsmasq's lease hook reports
    discovered(b)
    queue(b)
    # Before the real machine boots: four dispatches from elsewhere get
    # the idle answer, count no boot, mint no key, fail nothing.
    for _ in range(4):
        assert_idle(b.dispatch(MAC, source=EVIL))
    assert state(b) == "queued" and install(b)["boots"] == 0
    assert len(denied(b)) == 4
    assert all(e["target"] == MAC and e["actor"] == EVIL for e in denied(b))
    assert "network boot" in denied(b)[0]["error"]
    # The real machine boots: bound to its lease.
    key = installer_key(b)
    assert install(b)["bound_addr"] == REAL
    # The key is no use elsewhere: no kickstart, no token, no progress.
    r = ks(b, key, ip=EVIL)
    assert r.status == 403 and r.json()["error"]["code"] == "forbidden", r
    assert state(b) == "queued"
    k = ks(b, key)
    assert k.status == 200, k
    tok = TOKEN.search(k.text).group(1)
    assert state(b) == "installing"
    # One kickstart (and so one token secret) per installer boot.
    again = ks(b, key)
    assert again.status == 409 and again.json()["error"]["code"] == "kickstart_sent"
    for stage in ("post", "done"):
        r = progress(b, key, stage, ip=EVIL)
        assert r.status == 403 and r.json()["error"]["code"] == "forbidden", r
    assert_idle(b.dispatch(MAC, source=EVIL))
    assert install(b)["boots"] == 1 and state(b) == "installing"
    # The attacker's token attempt is bound to the MAC and, from the
    # token's side, nothing was handed to it: the real node enrolls.
    assert progress(b, key, "done").status == 200
    assert state(b) == "installed"
    assert enroll(b, tok).returncode == 0
    assert state(b) == "active"
    kinds = {(e["action"], e["result"]) for e in denied(b)}
    assert ("install.kickstart", "denied") in kinds and ("install.progress", "denied") in kinds


def test_install_in_proxy_mode_is_bound_on_first_use(make_bastion):
    b = make_bastion(dhcp_mode="proxy")
    b.start()
    discovered(b)
    queue(b)
    key = installer_key(b)          # the first installer boot binds
    assert install(b)["bound_addr"] == REAL
    assert_idle(b.dispatch(MAC, source=EVIL))
    assert ks(b, key, ip=EVIL).status == 403
    assert install(b)["boots"] == 1
    # Its address changed: refused too (the weaker guarantee of proxy
    # mode); the operator queues the install again, which binds anew.
    assert_idle(b.dispatch(MAC, source="10.77.0.61"))
    queue(b)
    key = installer_key(b, ip="10.77.0.61")
    assert install(b)["bound_addr"] == "10.77.0.61"
    assert ks(b, key, ip="10.77.0.61").status == 200
    assert progress(b, key, "done", ip="10.77.0.61").status == 200
    assert state(b) == "installed"


def test_the_binding_follows_the_dhcp_lease(bastion):
    b = bastion
    key, _ = kickstarted(b)
    # dnsmasq gives the machine another address (its lease expired
    # during a long install): the lease decides, the old address is out.
    b.lease(MAC, "10.77.0.62", action="old")
    assert progress(b, key, "packages", ip=REAL).status == 403
    assert progress(b, key, "done", ip="10.77.0.62").status == 200
    assert state(b) == "installed"


def test_join_token_per_installer_boot_with_a_fixed_expiry(bastion):
    b = bastion
    b.lease(MAC, REAL)
    discovered(b)
    t0 = time.time()
    queue(b)
    tok_rows = lambda: [t for t in json.loads(b.ctl("tokens", "list", "--json").stdout)
                        if t["install_id"]]
    expires = tok_rows()[0]["expires_at"]
    exp = time.mktime(time.strptime(expires[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert abs(exp - (t0 + 24 * 3600)) < 60, expires
    key1 = installer_key(b)
    tok1 = TOKEN.search(ks(b, key1).text).group(1)
    # The installer boots again within the install: a new key, a new
    # kickstart and a new secret; the first secret is dead; the expiry
    # has not moved.
    key2 = installer_key(b)
    tok2 = TOKEN.search(ks(b, key2).text).group(1)
    assert tok1 != tok2
    rows = tok_rows()
    assert len(rows) == 1 and rows[0]["expires_at"] == expires
    assert progress(b, key2, "done").status == 200
    r = enroll(b, tok1)
    assert r.returncode != 0 and "not valid" in r.stderr, r
    assert enroll(b, tok2).returncode == 0
    assert state(b) == "active"
    # It dies at enrollment.
    assert tok_rows()[0]["state"] == "used"
    r = enroll(b, tok2, name="again")
    assert r.returncode != 0


def test_an_expired_install_token_stops_the_kickstart(bastion):
    import sqlite3
    b = bastion
    discovered(b)
    queue(b)
    h = sqlite3.connect(b.state + "/bastion.db")
    with h:
        h.execute("UPDATE join_tokens SET expires_ms = 1 WHERE install_id IS NOT NULL")
    h.close()
    key = installer_key(b)
    r = ks(b, key)
    assert r.status == 409 and r.json()["error"]["code"] == "no_join_token", r
    assert state(b) == "queued"


# --- 2. agent impersonation with an unbound token ------------------------

def test_unbound_token_cannot_take_a_live_agents_mac(bastion):
    b = bastion
    key, tok = kickstarted(b)
    assert progress(b, key, "done").status == 200
    # Installed, not yet enrolled: an unbound token cannot take its MAC.
    r = enroll(b, token(b), name="impostor")
    assert r.returncode != 0 and "only its install's token" in r.stderr, r
    assert enroll(b, tok).returncode == 0
    agents = b.admin("GET", "/api/v1/agents").json()
    real = [a for a in agents if a["mac"] == MAC]
    assert len(real) == 1 and not real[0]["revoked_at"]
    # Active with a live agent: an unbound token, or even one bound to
    # the MAC, cannot replace it.
    r = enroll(b, token(b), name="impostor")
    assert r.returncode != 0 and "only its install's token" in r.stderr, r
    r = enroll(b, token(b, mac=MAC), name="impostor")
    assert r.returncode != 0 and "only its install's token" in r.stderr, r
    agents = b.admin("GET", "/api/v1/agents").json()
    assert [a["hostname"] for a in agents if not a["revoked_at"]] == ["node1"]
    assert state(b) == "active"
    h = [e for e in json.loads(b.ctl("audit", "list", "--json").stdout)
         if e["action"] == "agent.enroll" and e["result"] == "denied"]
    assert len(h) == 3
    # A reprovision's install token replaces it (the node reinstalled).
    queue(b, how="reprovision")
    key = installer_key(b)
    tok = TOKEN.search(ks(b, key).text).group(1)
    assert progress(b, key, "done").status == 200
    assert enroll(b, tok, name="node1b").returncode == 0
    live = [a for a in b.admin("GET", "/api/v1/agents").json() if not a["revoked_at"]]
    assert [a["hostname"] for a in live] == ["node1b"]
    # An unbound token still enrolls a host bastion does not manage.
    assert enroll(b, token(b), mac="52:54:00:b1:00:77", name="other").returncode == 0


# --- 3. inventory forgery ------------------------------------------------

def test_forged_reports_are_refused(bastion):
    b = bastion
    b.lease(MAC, REAL)
    assert b.dispatch(MAC, source=REAL).status == 200
    # Discovering: only the address that was sent the discovery image.
    forged = sample_report(MAC, firmware="uefi", disks=[
        {"name": "sdb", "size_bytes": 2 << 40, "model": "", "serial": "x",
         "rotational": False}])
    r = b.boot("POST", "/api/v1/discover", forged, source=EVIL)
    assert r.status == 403 and r.json()["error"]["code"] == "forbidden", r
    assert state(b) == "discovering"
    r = b.boot("POST", "/api/v1/discover", sample_report(MAC), source=REAL)
    assert r.status == 200, r
    # Any other state: 409, from anywhere, and nothing changes.
    for ip in (EVIL, REAL):
        r = b.boot("POST", "/api/v1/discover", forged, source=ip)
        assert r.status == 409 and r.json()["error"]["code"] == "wrong_state", r
    hw = b.admin("GET", "/api/v1/machines/" + MAC).json()["hardware"]
    assert hw["firmware"] == "bios" and [d["name"] for d in hw["disks"]] == ["vda"]
    # The install's disk comes from the accepted inventory ...
    assert queue(b)["install"]["disk"] == "vda"
    key = installer_key(b)
    text = ks(b, key).text
    assert "ignoredisk --only-use=vda" in text
    assert progress(b, key, "done").status == 200
    assert b.boot("POST", "/api/v1/discover", forged, source=REAL).status == 409
    # ... and a reprovision keeps the previous install's.
    assert queue(b, how="reprovision")["install"]["disk"] == "vda"
    # A dispatch from elsewhere while discovering binds nothing.
    other = "52:54:00:b1:00:02"
    b.lease(other, "10.77.0.61")
    assert_idle(b.dispatch(other, source=EVIL))
    assert b.admin("GET", "/api/v1/machines/" + other).status == 404


def test_a_fake_machine_cannot_lock_out_a_real_nic(bastion):
    b = bastion
    fake, real = "52:54:00:b1:00:0f", "52:54:00:b1:00:10"
    nic = lambda m, n: {"name": "eth%d" % n, "mac": m, "driver": "virtio_net"}
    # The fake can no longer report as the real MAC: the real machine's
    # lease says where it is ...
    b.lease(real, REAL)
    assert_idle(b.dispatch(real, source=EVIL))
    r = b.boot("POST", "/api/v1/discover", sample_report(real), source=EVIL)
    assert r.status in (403, 404), r
    # ... so it boots as itself and lists the real machine's MAC as a
    # NIC of its own, before the real machine ever booted.
    discovered(b, fake, ip=EVIL, nics=[nic(fake, 0), nic(real, 1)])
    # The real machine's report of its own boot MAC is still taken.
    assert b.dispatch(real, source=REAL).status == 200
    r = b.boot("POST", "/api/v1/discover", sample_report(real, nics=[nic(real, 0)]),
               source=REAL)
    assert r.status == 200, r
    assert state(b, real) == "discovered"
    # Claiming a MAC that is another machine's boot MAC stays refused.
    third = "52:54:00:b1:00:11"
    assert b.dispatch(third, source=EVIL).status == 200
    r = b.boot("POST", "/api/v1/discover",
               sample_report(third, nics=[nic(third, 0), nic(real, 1)]), source=EVIL)
    assert r.status == 409 and r.json()["error"]["code"] == "duplicate_mac", r
