"""Installs: queue, installer boot, kickstart with its key, progress to
installed, failure after too many boots, reprovision, dry runs and
operator template overrides — against a real bastion."""
import os
import re
import time

from agents import wait_for
from harness import sample_report
import kscheck

MAC = "52:54:00:aa:00:01"
KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGmiGf1hhbxbcvYOUcw0WlcRbFhRLfP0"
       "uj9dCkpWxrJ9 ops@bastion")
KEY_HEX = re.compile(r"k=([0-9a-f]{64})")


def discovered(b, mac=MAC, **report):
    assert b.dispatch(mac).status == 200
    r = b.boot("POST", "/api/v1/discover", sample_report(mac, **report))
    assert r.status == 200, r
    return mac


def queue(b, mac=MAC, **body):
    req = {"hostname": "node1.lab", "role": "worker", "ssh_keys": [KEY]}
    req.update(body)
    return b.admin("POST", "/api/v1/machines/%s/install" % mac, req)


def installer_key(b, mac=MAC):
    r = b.dispatch(mac)
    assert r.status == 200
    m = KEY_HEX.search(r.text)
    assert m, r.text
    return r, m.group(1)


def events(b, mac=MAC):
    return b.admin("GET", "/api/v1/machines/%s/events" % mac).json()


def state(b, mac=MAC):
    return b.admin("GET", "/api/v1/machines/" + mac).json()["state"]


def progress(b, key, stage, pct, msg="", mac=MAC):
    return b.boot("POST", "/api/v1/progress/%s?k=%s" % (mac, key),
                  {"stage": stage, "percent": pct, "message": msg})


def test_install_end_to_end_through_the_api(bastion):
    discovered(bastion)
    r = queue(bastion)
    assert r.status == 202, r
    m = r.json()
    assert m["state"] == "queued" and m["hostname"] == "node1.lab"
    assert m["install"]["role"] == "worker" and m["install"]["disk"] == "vda"
    assert m["install"]["ssh_keys"] == [KEY] and m["install"]["reprovision"] is False
    # The next network boot gets the installer with its kickstart URL.
    r, key = installer_key(bastion)
    repo = "http://10.77.0.1:8081/fedora/40/os"
    base = "http://10.77.0.1:%d" % bastion.boot_port
    assert "kernel %s/images/pxeboot/vmlinuz" % repo in r.text
    assert "initrd %s/images/pxeboot/initrd.img" % repo in r.text
    assert "inst.repo=%s " % repo in r.text
    assert "inst.ks=%s/ks/%s?k=%s " % (base, MAC, key) in r.text
    # The kickstart needs that key, and only that key.
    assert bastion.boot("GET", "/ks/" + MAC).status == 403
    bad = bastion.boot("GET", "/ks/%s?k=%s" % (MAC, "0" * 64))
    assert bad.status == 403 and bad.json()["error"]["code"] == "forbidden"
    assert state(bastion) == "queued"
    ks = bastion.boot("GET", "/ks/%s?k=%s" % (MAC, key))
    assert ks.status == 200
    assert state(bastion) == "installing"
    text = ks.text
    assert kscheck.check(text) == []
    assert "network --bootproto=dhcp --device=%s --hostname=node1.lab" % MAC in text
    assert 'sshkey --username=root "%s"' % KEY in text
    assert "url --url=%s" % repo in text
    assert "%s/api/v1/progress/%s?k=%s" % (base, MAC, key) in text
    assert "ignoredisk --only-use=vda" in text
    # Progress through every stage; each is an event with its percent.
    for stage, pct in (("pre", 5), ("partition", 10), ("packages", 30), ("post", 90)):
        r = progress(bastion, key, stage, pct, "at " + stage)
        assert r.status == 200, r
        assert state(bastion) == "installing"
    assert progress(bastion, key, "done", 100).status == 200
    assert state(bastion) == "installed"
    ev = events(bastion)
    got = [(e["state"], e["progress"]) for e in ev if e["source"] == "progress"]
    assert got == [("installing", 5), ("installing", 10), ("installing", 30),
                   ("installing", 90), ("installed", 100)]
    # Installed: local boot from now on, and the kickstart is gone.
    d = bastion.dispatch(MAC)
    assert "sanboot --no-describe --drive 0x80" in d.text and "kernel" not in d.text
    assert bastion.boot("GET", "/ks/%s?k=%s" % (MAC, key)).status == 403
    assert progress(bastion, key, "post", 95).status == 403


def test_keys_rotate_per_boot_and_old_keys_die(bastion):
    discovered(bastion)
    queue(bastion)
    _, k1 = installer_key(bastion)
    _, k2 = installer_key(bastion)
    assert k1 != k2
    assert bastion.boot("GET", "/ks/%s?k=%s" % (MAC, k1)).status == 403
    assert bastion.boot("GET", "/ks/%s?k=%s" % (MAC, k2)).status == 200
    # The key is stored only as a hash.
    db = os.path.join(bastion.state, "bastion.db")
    with open(db, "rb") as f:
        assert k2.encode() not in f.read()


def test_repeated_boots_without_progress_fail_the_install(bastion):
    discovered(bastion)
    queue(bastion)
    for _ in range(3):          # install.max_boots = 3
        r, key = installer_key(bastion)
        bastion.boot("GET", "/ks/%s?k=%s" % (MAC, key))
    r = bastion.dispatch(MAC)
    assert "kernel" not in r.text and "exit" in r.text
    assert state(bastion) == "failed"
    assert "3 network boots without finishing the install" in events(bastion)[-1]["message"]
    # A failed machine does not loop either.
    assert "kernel" not in bastion.dispatch(MAC).text


def test_installer_error_report_fails_the_machine(bastion):
    discovered(bastion)
    queue(bastion)
    _, key = installer_key(bastion)
    bastion.boot("GET", "/ks/%s?k=%s" % (MAC, key))
    assert progress(bastion, key, "error", 100, "anaconda died").status == 200
    assert state(bastion) == "failed"
    assert "anaconda died" in events(bastion)[-1]["message"]


def test_bad_install_requests_change_nothing(bastion):
    discovered(bastion)
    cases = [
        ({"hostname": "Bad_Host", "role": "worker"}, "hostname"),
        ({"hostname": "-lead.lab", "role": "worker"}, "hostname"),
        ({"hostname": "a" * 64 + ".lab", "role": "worker"}, "hostname"),
        ({"role": "worker"}, "hostname is required"),
        ({"hostname": "n1"}, "role is required"),
        ({"hostname": "n1", "role": "nope"}, "unknown role"),
        ({"hostname": "n1", "role": "worker", "ssh_keys": ["ssh-ed25519 !!!"]}, "ssh_keys[0]"),
        ({"hostname": "n1", "role": "worker", "ssh_keys": ["ssh-dss AAAAB3NzaC1kc3M="]}, "unknown key type"),
        ({"hostname": "n1", "role": "worker",
          "ssh_keys": ["ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIGmiGf1hhbxbcvYOUcw0WlcRbFhRLfP0uj9dCkpWxrJ9"]},
         "does not match its type"),
        ({"hostname": "n1", "role": "worker", "ssh_keys": [KEY + ' "; rm -rf /']}, "comment"),
        ({"hostname": "n1", "role": "worker", "ssh_keys": "not a list"}, "array"),
        ({"hostname": "n1", "role": "worker", "disk": "../sda"}, "disk"),
        ({"hostname": "n1", "role": "worker", "extra": 1}, "unknown field"),
        ({"hostname": 7, "role": "worker"}, "hostname must be a string"),
    ]
    for body, msg in cases:
        r = bastion.admin("POST", "/api/v1/machines/%s/install" % MAC, body)
        assert r.status == 422, (body, r)
        assert msg in r.json()["error"]["message"], (body, r.json())
    assert bastion.admin("POST", "/api/v1/machines/%s/install" % MAC, "nope",
                         {"Content-Type": "application/json"}).status == 400
    assert bastion.admin("POST", "/api/v1/machines/%s/install" % MAC, "nope").status == 415
    assert bastion.admin("POST", "/api/v1/machines/zz/install", {}).status == 400
    assert bastion.admin("POST", "/api/v1/machines/52:54:00:99:99:99/install",
                         {"hostname": "n", "role": "worker"}).status == 404
    m = bastion.admin("GET", "/api/v1/machines/" + MAC).json()
    assert m["state"] == "discovered" and m["install"] is None
    # Still discovering (no hardware yet): refused with the reason.
    bastion.dispatch("52:54:00:aa:00:02")
    r = queue(bastion, mac="52:54:00:aa:00:02")
    assert r.status == 409 and "discovering" in r.json()["error"]["message"]
    assert bastion.alive()


def test_install_refused_without_repo(make_bastion):
    b = make_bastion(repo="")
    b.start()
    discovered(b)
    r = queue(b)
    assert r.status == 409 and r.json()["error"]["code"] == "no_repo"


def test_bad_progress_reports(bastion):
    discovered(bastion)
    queue(bastion)
    _, key = installer_key(bastion)
    # Before the kickstart was fetched the machine is not installing.
    assert progress(bastion, key, "pre", 5).status == 403
    bastion.boot("GET", "/ks/%s?k=%s" % (MAC, key))
    for body in ({"stage": "bogus", "percent": 5}, {"stage": "pre", "percent": 101},
                 {"stage": "pre", "percent": "5"}, {"stage": "pre"},
                 {"stage": "pre", "percent": 5, "message": "x" * 300}):
        r = bastion.boot("POST", "/api/v1/progress/%s?k=%s" % (MAC, key), body)
        assert r.status == 422, (body, r)
    assert bastion.boot("POST", "/api/v1/progress/%s?k=%s" % (MAC, "f" * 64),
                        {"stage": "pre", "percent": 5}).status == 403
    assert bastion.boot("POST", "/api/v1/progress/%s" % MAC,
                        {"stage": "pre", "percent": 5}).status == 403
    assert state(bastion) == "installing"


def install_fully(b, mac=MAC, **body):
    discovered(b, mac)
    assert queue(b, mac, **body).status == 202
    _, key = installer_key(b, mac)
    assert b.boot("GET", "/ks/%s?k=%s" % (mac, key)).status == 200
    assert progress(b, key, "done", 100, mac=mac).status == 200
    assert state(b, mac) == "installed"


def test_reprovision_keeps_hostname_and_keys_and_can_change_role(bastion):
    install_fully(bastion)
    # install on an installed machine is refused: reprovision is the way.
    r = queue(bastion)
    assert r.status == 409 and "reprovision" in r.json()["error"]["message"]
    r = bastion.admin("POST", "/api/v1/machines/%s/reprovision" % MAC, {"role": "infra"})
    assert r.status == 202, r
    inst = r.json()["install"]
    assert inst["reprovision"] is True and inst["role"] == "infra"
    assert inst["hostname"] == "node1.lab" and inst["ssh_keys"] == [KEY]
    _, key = installer_key(bastion)
    ks = bastion.boot("GET", "/ks/%s?k=%s" % (MAC, key)).text
    assert "REPROVISION=yes" in ks
    assert "var_lib_rancher /var/lib/rancher 1024 yes xfs yes" in ks
    assert "var_lib_longhorn" not in ks
    assert kscheck.check(ks) == []
    # Never-installed machines cannot be reprovisioned.
    discovered(bastion, "52:54:00:aa:00:03")
    r = bastion.admin("POST", "/api/v1/machines/52:54:00:aa:00:03/reprovision", {})
    assert r.status == 409


def test_dry_run_changes_nothing(bastion):
    discovered(bastion)
    queue(bastion)
    before = (events(bastion), bastion.admin("GET", "/api/v1/machines/" + MAC).json())
    r = bastion.admin("POST", "/api/v1/templates/render", {"mac": MAC})
    assert r.status == 200, r
    out = r.json()
    assert out["action"] == "installer" and out["state"] == "queued"
    assert "inst.ks=" in out["ipxe"] and "k=DRY-RUN-KEY" in out["ipxe"]
    assert out["kickstart"].startswith("# Bastion kickstart for node1.lab")
    assert kscheck.check(out["kickstart"]) == []
    after = (events(bastion), bastion.admin("GET", "/api/v1/machines/" + MAC).json())
    assert before == after
    assert bastion.admin("POST", "/api/v1/templates/render", {"mac": "x"}).status == 400
    assert bastion.admin("POST", "/api/v1/templates/render",
                         {"mac": "52:54:00:99:99:99"}).status == 404


def test_operator_overrides_a_template(bastion):
    discovered(bastion)
    lst = {t["name"]: t for t in bastion.admin("GET", "/api/v1/templates").json()}
    assert lst["idle.ipxe"]["source"] == "builtin"
    assert lst["install.ks"]["source"] == "builtin"
    assert {"progress.ks", "pre-storage.ks", "installer.ipxe", "local.ipxe"} <= set(lst)
    tdir = os.path.join(bastion.state, "templates")
    os.makedirs(tdir, exist_ok=True)
    with open(os.path.join(tdir, "idle.ipxe.mustache"), "w") as f:
        f.write("#!ipxe\necho site override for {{machine.mac}}\nexit\n")
    # Templates are re-checked at most once a second: the next boots
    # after that get the override.
    want = "#!ipxe\necho site override for %s\nexit\n" % MAC
    wait_for(lambda: bastion.dispatch(MAC).text == want, what="the override")
    lst = {t["name"]: t for t in bastion.admin("GET", "/api/v1/templates").json()}
    assert lst["idle.ipxe"]["source"] == "override"
    # A broken override is a clear error naming file and line, not a crash.
    with open(os.path.join(tdir, "idle.ipxe.mustache"), "w") as f:
        f.write("#!ipxe\n\n{{#machine}}\nexit\n")
    wait_for(lambda: bastion.dispatch(MAC).status == 500, what="the broken override")
    r = bastion.dispatch(MAC)
    assert r.status == 500
    msg = r.json()["error"]["message"]
    assert "idle.ipxe.mustache:3" in msg, msg
    os.unlink(os.path.join(tdir, "idle.ipxe.mustache"))
    wait_for(lambda: "trying the next boot device" in bastion.dispatch(MAC).text,
             what="the built-in template again")
    assert bastion.alive()


def test_roles_from_config(make_bastion):
    b = make_bastion(extra_conf="[role gpu]\nvolume = / 30G xfs reformat\n"
                                "volume = /var/lib/gpu grow ext4 preserve\n"
                                "[role worker]\nvolume = / 10G xfs reformat\n")
    b.start()
    roles = {r["name"]: r for r in b.admin("GET", "/api/v1/roles").json()}
    assert set(roles) == {"worker", "infra", "gpu"}
    assert [v["mount"] for v in roles["worker"]["volumes"]] == ["/"]
    assert roles["gpu"]["volumes"][1] == {"name": "var_lib_gpu", "mount": "/var/lib/gpu",
                                          "size_mb": 1024, "grow": "yes",
                                          "fstype": "ext4", "preserve": "yes"}
    discovered(b)
    assert queue(b, role="gpu").status == 202
    out = b.admin("POST", "/api/v1/templates/render", {"mac": MAC}).json()
    assert "var_lib_gpu /var/lib/gpu 1024 yes ext4 yes" in out["kickstart"]


def test_machine_list_carries_install_progress(bastion):
    # The panel's machines page reads its progress bars from the list
    # alone: rows of queued and installing machines carry the current
    # install's progress; others have none.
    other = discovered(bastion, mac="52:54:00:aa:00:02")
    discovered(bastion)
    assert queue(bastion).status == 202

    def rows():
        return {m["mac"]: m for m in bastion.admin("GET", "/api/v1/machines").json()}

    got = rows()
    assert got[MAC]["progress"] == {"stage": "", "percent": 0, "message": ""}, got
    assert "progress" not in got[other]
    _, key = installer_key(bastion)
    assert bastion.boot("GET", "/ks/%s?k=%s" % (MAC, key)).status == 200
    assert progress(bastion, key, "packages", 40, "installing packages").status == 200
    assert rows()[MAC]["progress"] == {"stage": "packages", "percent": 40,
                                       "message": "installing packages"}
    filtered = bastion.admin("GET", "/api/v1/machines?state=installing").json()
    assert [(m["mac"], m["progress"]["percent"]) for m in filtered] == [(MAC, 40)]
    assert progress(bastion, key, "done", 100).status == 200
    assert "progress" not in rows()[MAC]
