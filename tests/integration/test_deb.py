"""The Debian packages (make deb, debian/): lintian finds no error, and
apt installs them into a fresh Debian 12 root (mmdebstrap, cached by
appliance/debroot.sh) from a local repository of them and their
dependencies, where the daemon's configuration check passes, the user,
the state dir, the conffile and the enabled unit are what the operator
guide says.

make deb builds build/debs/ and the caches (it needs the registry; this
test runs without a network).
"""
import glob
import os
import shutil
import stat
import subprocess
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")
DEBS = os.path.join(BUILD, "debs")


def debs():
    found = sorted(glob.glob(os.path.join(DEBS, "bastion_*.deb")) +
                   glob.glob(os.path.join(DEBS, "bastion-agent_*.deb")))
    assert len(found) == 2, "no packages in %s: run make deb" % DEBS
    return found


def run(*argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=600,
                          **kw)


def test_lintian_no_errors():
    r = run("lintian", "--fail-on", "error", *debs())
    assert r.returncode == 0, r.stdout + r.stderr
    assert "\nE: " not in "\n" + r.stdout, r.stdout


def test_depends_exact():
    for deb in debs():
        r = run("dpkg-deb", "-f", deb, "Package", "Depends")
        assert r.returncode == 0, r.stderr
        fields = dict(line.split(": ", 1) for line in r.stdout.splitlines())
        deps = {d.strip().split()[0] for d in fields["Depends"].split(",")}
        if fields["Package"] == "bastion":
            # What the daemon runs (dnsmasq), serves (iPXE's ROMs) and
            # links; the user comes from adduser.
            for need in ("dnsmasq-base", "ipxe", "libmicrohttpd12",
                         "libsqlite3-0", "libjansson4", "libssl3",
                         "libargon2-1", "libinih1", "libgnutls30",
                         "libcurl4", "adduser"):
                assert need in deps, (need, deps)
            assert "libblkid1" not in deps, deps
        else:
            assert deps >= {"libcurl4", "libjansson4", "libssl3",
                            "libinih1", "libblkid1"}, deps
            assert "dnsmasq-base" not in deps and "ipxe" not in deps, deps


@pytest.fixture
def debroot():
    d = tempfile.mkdtemp(prefix="debroot.", dir=os.path.join(BUILD))
    try:
        r = run(os.path.join(ROOT, "appliance", "debroot.sh"), "unpack", d)
        assert r.returncode == 0, r.stderr
        yield d
    finally:
        shutil.rmtree(d)


def chroot(root, *argv):
    return run("chroot", root, *argv,
               env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                    "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"})


def test_apt_install_into_fresh_root(debroot):
    for deb in debs():
        shutil.copy(deb, os.path.join(debroot, "tmp"))
    names = ["/tmp/" + os.path.basename(d) for d in debs()]
    r = chroot(debroot, "apt-get", "-q", "update")
    assert r.returncode == 0, r.stdout + r.stderr
    r = chroot(debroot, "apt-get", "-q", "install", "-y", *names)
    assert r.returncode == 0, r.stdout + r.stderr

    r = chroot(debroot, "bastion", "-n")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "configuration OK" in r.stdout
    for prog in ("/usr/bin/bastionctl", "/usr/sbin/agentd",
                 "/usr/sbin/agentd-static", "/usr/sbin/dnsmasq",
                 "/usr/lib/ipxe/undionly.kpxe", "/usr/lib/ipxe/ipxe.efi",
                 "/usr/lib/bastion/images/discovery/vmlinuz",
                 "/usr/lib/bastion/images/discovery/initrd.img",
                 "/usr/share/bastion/webroot/index.html",
                 "/usr/share/man/man8/bastion.8.gz",
                 "/usr/share/man/man5/bastion.conf.5.gz"):
        assert os.path.exists(debroot + prog), prog

    r = chroot(debroot, "getent", "passwd", "bastion")
    assert r.returncode == 0, "no user bastion"
    uid = int(r.stdout.split(":")[2])
    assert uid < 1000 and r.stdout.rstrip().endswith(":/usr/sbin/nologin")
    st = os.stat(os.path.join(debroot, "var/lib/bastion"))
    assert stat.S_IMODE(st.st_mode) == 0o771 and st.st_uid == uid and st.st_gid == 0
    st = os.stat(os.path.join(debroot, "etc/bastion/bastion.conf"))
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 0

    r = chroot(debroot, "dpkg-query", "-W", "-f", "${Conffiles}", "bastion")
    assert "/etc/bastion/bastion.conf" in r.stdout
    # Enabled at installation (deb-systemd-helper), agentd only installed:
    # it needs `agentd enroll` first.
    wants = os.path.join(debroot, "etc/systemd/system/multi-user.target.wants")
    assert os.path.islink(os.path.join(wants, "bastion.service"))
    assert not os.path.exists(os.path.join(wants, "agentd.service"))
    unit = open(os.path.join(debroot, "lib/systemd/system/bastion.service")).read()
    assert "ExecStart=/usr/sbin/bastion " in unit

    # A configuration edit survives an upgrade (reinstall) as a conffile.
    conf = os.path.join(debroot, "etc/bastion/bastion.conf")
    with open(conf, "a") as f:
        f.write("\n; local edit\n")
    r = chroot(debroot, "apt-get", "-q", "install", "-y", "--reinstall",
               "-o", "Dpkg::Options::=--force-confold", names[0])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "; local edit" in open(conf).read()

    # purge takes the state with it (the guide says: back it up first).
    r = chroot(debroot, "apt-get", "-q", "purge", "-y", "bastion")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not os.path.exists(os.path.join(debroot, "var/lib/bastion"))
    assert not os.path.exists(conf)
