"""Image OSes beside kickstart (DESIGN §11): the catalog (`os list`), an
image OS added by dropping a directory with a manifest into
STATE_DIR/images/os, installs refused for an unknown OS or a broken
image, the installer's plan (once per boot, with the key, for image OSes
only) and the image served from the boot listener."""
import hashlib
import json
import os
import re
import shutil
import subprocess

from harness import BIN, ROOT, sample_report

MAC = "52:54:00:aa:20:01"
KEY = re.compile(r"bastion\.plan=(\S+/install/[0-9a-f:]+/plan\?k=([0-9a-f]{64}))")


def add_image(b, name="tiny-os", data=b"not really a tarball\n" * 100, **over):
    d = os.path.join(b.state, "images", "os", name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "rootfs.tar.zst"), "wb") as f:
        f.write(data)
    m = {"name": name, "method": "image", "description": "a test OS",
         "image": "rootfs.tar.zst", "size": len(data),
         "sha256": hashlib.sha256(data).hexdigest(), "packages": []}
    m.update(over)
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(m, f)
    return data


def discovered(b, mac=MAC):
    assert b.dispatch(mac).status == 200
    r = b.boot("POST", "/api/v1/discover", sample_report(mac))
    assert r.status == 200, r


def test_os_list_shows_images_and_kickstart(bastion):
    add_image(bastion)
    add_image(bastion, "broken-os", sha256="0" * 64, size=5)
    r = bastion.ctl("os", "list", "--json")
    assert r.returncode == 0, r.stderr
    got = {o["name"]: o for o in json.loads(r.stdout)}
    assert got["tiny-os"]["method"] == "image" and got["tiny-os"]["available"]
    assert got["broken-os"]["available"] is False
    assert "not 5 bytes" in got["broken-os"]["problem"]
    assert got["fedora-40"]["method"] == "kickstart"
    assert got["fedora-40"]["default"] is True
    r = bastion.ctl("os", "list")
    assert r.returncode == 0 and "tiny-os" in r.stdout and "kickstart" in r.stdout
    assert bastion.ctl("os", "list", "--bogus").returncode == 2


def test_unknown_or_broken_os_is_refused(bastion):
    add_image(bastion, "broken-os", size=5)
    discovered(bastion)
    for os_name, why in (("debian-99", "unknown OS"), ("broken-os", "cannot be installed"),
                         ("../etc", "os must be")):
        r = bastion.ctl("machines", "install", MAC, "--hostname", "n1.lab",
                        "--role", "worker", "--os", os_name)
        assert r.returncode == 1 and why in r.stderr, (os_name, r.stdout, r.stderr)
    row = bastion.admin("GET", "/api/v1/machines/" + MAC).json()
    assert row["state"] == "discovered"


def test_plan_once_per_boot_with_its_key(bastion):
    data = add_image(bastion)
    discovered(bastion)
    r = bastion.ctl("machines", "install", MAC, "--hostname", "n1.lab", "--role",
                    "worker", "--os", "tiny-os")
    assert r.returncode == 0, r.stderr
    ipxe = bastion.dispatch(MAC).text
    assert "/boot/installer/tools.img" in ipxe and "initrd=tools.img" in ipxe, ipxe
    m = KEY.search(ipxe)
    assert m, ipxe
    path = m.group(1)[m.group(1).index("/install/"):]
    # A wrong key, and a kickstart asked of an image install: refused.
    bad = bastion.boot("GET", path.replace(m.group(2), "0" * 64))
    assert bad.status == 403 and bad.json()["error"]["code"] == "forbidden"
    ks = bastion.boot("GET", "/ks/%s?k=%s" % (MAC, m.group(2)))
    assert ks.status == 409 and ks.json()["error"]["code"] == "wrong_installer"
    r = bastion.boot("GET", path)
    assert r.status == 200, r
    plan = r.json()
    assert plan["os"] == "tiny-os" and plan["hostname"] == "n1.lab"
    assert plan["storage"]["vg"] == "bastion"
    assert {v["mount"] for v in plan["storage"]["volumes"]} >= {"/", "/srv", "/home"}
    assert plan["image"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert len(plan["agent"]["token"]) == 64 and plan["agent"]["ca_fingerprint"]
    assert plan["reprovision"] is False
    # The dynamically linked agentd (an image is the build host's Debian
    # release; it can load libvirt and liblxc), with its digest, served
    # byte for byte; the kickstart keeps agentd-static
    # (test_kickstart_golden.py).
    ag = plan["agent"]
    assert ag["agentd_build"] == "dynamic", ag
    assert ag["agentd_url"].endswith("/boot/agent/agentd-dynamic"), ag
    with open(os.path.join(BIN, "agentd"), "rb") as f:
        dyn = f.read()
    assert ag["agentd_sha256"] == hashlib.sha256(dyn).hexdigest()
    got = bastion.boot("GET", ag["agentd_url"][ag["agentd_url"].index("/boot/"):])
    assert got.status == 200 and got.body == dyn
    with open(os.path.join(ROOT, "appliance", "agentd.service"), "rb") as f:
        assert ag["unit_sha256"] == hashlib.sha256(f.read()).hexdigest()
    # Once per installer boot.
    again = bastion.boot("GET", path)
    assert again.status == 409 and again.json()["error"]["code"] == "kickstart_sent"
    # The image itself, as the manifest names it; nothing else from there.
    url = plan["image"]["url"]
    img = bastion.boot("GET", url[url.index("/boot/os/"):])
    assert img.status == 200 and img.body == data
    for p in ("/boot/os/tiny-os/manifest.json", "/boot/os/tiny-os/..%2fmanifest.json",
              "/boot/os/nope/rootfs.tar.zst", "/boot/installer/x.img"):
        assert bastion.boot("GET", p).status == 404, p
    row = bastion.admin("GET", "/api/v1/machines/" + MAC).json()
    assert row["state"] == "installing"
    audit = bastion.admin("GET", "/api/v1/audit?limit=50").json()
    assert any(a["action"] == "install.plan" for a in audit), audit


def test_kickstart_os_gets_no_plan(bastion):
    discovered(bastion)
    r = bastion.ctl("machines", "install", MAC, "--hostname", "n2.lab", "--role",
                    "worker")
    assert r.returncode == 0, r.stderr
    ipxe = bastion.dispatch(MAC).text
    k = re.search(r"k=([0-9a-f]{64})", ipxe).group(1)
    r = bastion.boot("GET", "/install/%s/plan?k=%s" % (MAC, k))
    assert r.status == 409 and r.json()["error"]["code"] == "wrong_installer"


def test_api_os_needs_a_reader(bastion):
    r = bastion.control("GET", "/api/v1/os", auth=None)
    assert r.status == 401
    assert os.path.exists(os.path.join(BIN, "bastionctl"))


def test_image_plan_refused_without_the_dynamic_agentd(bastion):
    """A bastion without the dynamically linked agentd beside it (the
    bastion-agent package not installed) refuses the plan with the reason
    instead of naming a file it cannot serve."""
    add_image(bastion)
    discovered(bastion)
    r = bastion.ctl("machines", "install", MAC, "--hostname", "n1.lab", "--role",
                    "worker", "--os", "tiny-os")
    assert r.returncode == 0, r.stderr
    bastion.stop()
    lone = os.path.join(bastion.tmp, "lone-bin")   # 0711: the worker looks here
    os.mkdir(lone, 0o755)
    for f in ("bastion", "bastionctl", "agentd-static"):   # the bastion package
        shutil.copy(os.path.join(BIN, f), os.path.join(lone, f))
    log = open(bastion.log_path, "ab")
    bastion.proc = subprocess.Popen([os.path.join(lone, "bastion"), "-d", "-f",
                                     bastion.conf], stdout=log,
                                    stderr=subprocess.STDOUT)
    log.close()
    bastion.wait_ready()
    m = KEY.search(bastion.dispatch(MAC).text)
    r = bastion.boot("GET", m.group(1)[m.group(1).index("/install/"):])
    assert r.status == 503 and r.json()["error"]["code"] == "agent_missing", r
    assert "dynamically linked" in r.json()["error"]["message"]


def add_root_image(b, name, **over):
    """An image OS with a root filesystem image beside its archive
    (image/os-fs.sh's manifest "root_image")."""
    add_image(b, name)
    d = os.path.join(b.state, "images", "os", name)
    files = {}
    for f, data in (("root.xfs.zst", b"xfs image\n" * 300), ("rest.tar.zst", b"rest\n" * 50)):
        with open(os.path.join(d, f), "wb") as out:
            out.write(data)
        files[f] = data
    with open(os.path.join(d, "manifest.json")) as f:
        m = json.load(f)
    m["root_image"] = {
        "file": "root.xfs.zst", "format": "xfs.zst", "fstype": "xfs",
        "size": len(files["root.xfs.zst"]),
        "sha256": hashlib.sha256(files["root.xfs.zst"]).hexdigest(),
        "bytes": 700 << 20, "rest": "rest.tar.zst",
        "rest_size": len(files["rest.tar.zst"]),
        "rest_sha256": hashlib.sha256(files["rest.tar.zst"]).hexdigest(),
        "mountable": ["/boot", "/home", "/mnt", "/opt", "/srv", "/var"]}
    m["root_image"].update(over)
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(m, f)
    return files


def plan_for(b, mac, os_name):
    discovered(b, mac)
    r = b.ctl("machines", "install", mac, "--hostname", "n%s.lab" % mac[-2:],
              "--role", "worker", "--os", os_name)
    assert r.returncode == 0, r.stderr
    m = KEY.search(b.dispatch(mac).text)
    r = b.boot("GET", m.group(1)[m.group(1).index("/install/"):])
    assert r.status == 200, r
    return r.json()


def test_plan_names_the_root_image_when_the_layout_fits(bastion):
    """The worker role (/ on XFS, its other volumes on /var, /home, /srv and
    below /var) fits an XFS root image: the plan names it and the rest
    (the archive stays, for older installers), both served byte for byte.
    A root image of another filesystem, one whose files a volume would
    hide, or one whose file is missing: the plan unpacks the archive."""
    files = add_root_image(bastion, "fs-os")
    add_root_image(bastion, "ext4-os", fstype="ext4")
    add_root_image(bastion, "hidden-os", mountable=["/boot", "/var"])   # /srv, /home
    add_root_image(bastion, "short-os", rest_size=3)
    got = {o["name"]: o for o in json.loads(bastion.ctl("os", "list", "--json").stdout)}
    assert got["fs-os"]["root_image"] == "xfs" and got["fs-os"]["available"]
    assert "root_image" not in got["short-os"] and got["short-os"]["available"]

    plan = plan_for(bastion, "52:54:00:aa:20:11", "fs-os")
    root = plan["image"]["root"]
    assert plan["image"]["url"].endswith("/boot/os/fs-os/rootfs.tar.zst")
    assert root["fstype"] == "xfs" and root["bytes"] == 700 << 20
    for url, size, sha, f in ((root["url"], root["size"], root["sha256"], "root.xfs.zst"),
                              (root["rest"]["url"], root["rest"]["size"],
                               root["rest"]["sha256"], "rest.tar.zst")):
        assert url.endswith("/boot/os/fs-os/" + f), url
        assert size == len(files[f]) and sha == hashlib.sha256(files[f]).hexdigest()
        got = bastion.boot("GET", url[url.index("/boot/os/"):])
        assert got.status == 200 and got.body == files[f], f
    for n, os_name in enumerate(("ext4-os", "hidden-os", "short-os")):
        plan = plan_for(bastion, "52:54:00:aa:20:2%d" % n, os_name)
        assert "root" not in plan["image"], (os_name, plan["image"])
        assert plan["image"]["url"].endswith("/rootfs.tar.zst")
    # Files the manifest does not name are not served, root image or not.
    for p in ("/boot/os/fs-os/manifest.json", "/boot/os/short-os/rest.tar.zst",
              "/boot/os/fs-os/root.xfs"):
        assert bastion.boot("GET", p).status == 404, p
