"""The kickstart's %pre storage script, run for real against LVM on loop
devices: a blank disk gets a clean layout; a disk whose volume group holds
preserved and non-preserved volumes (with data) is reused on reprovision,
keeping exactly the preserved ones and never writing to the disk.

This kernel has no device-mapper, so volumes are created with activation
off and their data is written straight into their extents on the PV."""
import fcntl
import os
import subprocess
import tempfile

import pytest

from harness import sample_report
import kscheck

MAC = "52:54:00:5d:00:01"
VG = "bastion"
NOACT = "global{activation=0}"
ENV = dict(os.environ, LVM_SUPPRESS_FD_WARNINGS="1", DM_DISABLE_UDEV="1")
BIOSBOOT = "21686148-6449-6E6F-744E-656564454649"


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env=ENV, **kw)


def lvm(*cmd):
    return sh(cmd[0], "--config", NOACT, *cmd[1:])


class LoopDisk:
    def __init__(self, size="10G"):
        self.dir = tempfile.mkdtemp(prefix="bastion-lvm-")
        self.file = os.path.join(self.dir, "disk.img")
        sh("truncate", "-s", size, self.file)
        self.dev = sh("losetup", "-P", "--show", "-f", self.file).stdout.strip()
        self.name = os.path.basename(self.dev)
        self.vg = False

    def part(self, n):
        return "%sp%d" % (self.name, n)

    def partition(self):
        sh("sfdisk", "-q", self.dev, input="label: gpt\nsize=1M, type=%s\nsize=1G\n,\n" % BIOSBOOT)
        subprocess.run(["partx", "-a", self.dev], capture_output=True)
        subprocess.run(["partx", "-u", self.dev], capture_output=True)
        assert os.path.exists("/dev/" + self.part(3))
        sh("mkfs.ext4", "-q", "-L", "bastion_boot", "/dev/" + self.part(2))

    def make_vg(self, lvs):
        lvm("pvcreate", "-q", "/dev/" + self.part(3))
        lvm("vgcreate", "-q", VG, "/dev/" + self.part(3))
        self.vg = True
        for name, size in lvs:
            lvm("lvcreate", "-q", "-an", "-Zn", "-L", size, "-n", name, VG)

    def lv_offset(self, lv, pv=3):
        """Byte offset of the LV's first extent on the disk (its PV is
        partition pv)."""
        pe_start = int(lvm("pvs", "--noheadings", "--units", "b", "--nosuffix",
                           "-o", "pe_start", "/dev/" + self.part(pv)).stdout.split()[0])
        extent = int(lvm("vgs", "--noheadings", "--units", "b", "--nosuffix",
                         "-o", "vg_extent_size", VG).stdout.split()[0])
        ranges = lvm("lvs", "--noheadings", "-o", "seg_pe_ranges", "%s/%s" % (VG, lv)).stdout
        first = int(ranges.split(":")[1].split("-")[0])
        part_start = int(open("/sys/block/%s/%s/start" % (self.name, self.part(pv))).read()) * 512
        return part_start + pe_start + first * extent

    def write(self, offset, data):
        with open(self.dev, "r+b") as f:
            f.seek(offset)
            f.write(data)

    def fingerprint(self):
        """Hash of every region a layout tool would write: the partition
        tables at both ends, the /boot filesystem's start and the LVM
        metadata at the start of the PV."""
        import hashlib
        h = hashlib.sha256()
        size = os.path.getsize(self.file)
        regions = [(0, 4 << 20), (size - (1 << 20), 1 << 20)]
        for n in (2, 3):
            p = "/sys/block/%s/%s/start" % (self.name, self.part(n))
            if os.path.exists(p):
                regions.append((int(open(p).read()) * 512, 4 << 20))
        for off, n in regions:
            h.update(self.read(off, n))
        return h.hexdigest()

    def read(self, offset, n):
        with open(self.dev, "rb") as f:
            f.seek(offset)
            return f.read(n)

    def close(self):
        if self.vg:
            subprocess.run(["vgremove", "--config", NOACT, "-qf", VG], capture_output=True, env=ENV)
        subprocess.run(["partx", "-d", self.dev], capture_output=True)
        subprocess.run(["losetup", "-d", self.dev], capture_output=True)
        subprocess.run(["rm", "-rf", self.dir])


@pytest.fixture
def disk(host_lock):
    # LVM's names are global to the machine, not to a network namespace:
    # two test runs at once (a developer's and CI's) take turns here.
    with open("/tmp/bastion-lvm-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        d = LoopDisk()
        try:
            yield d
        finally:
            d.close()


def pre_script(b, reprovision, role="worker"):
    """The %pre storage script exactly as bastion renders it for MAC."""
    if b.admin("GET", "/api/v1/machines/" + MAC).status == 404:
        b.dispatch(MAC)
        b.boot("POST", "/api/v1/discover", sample_report(MAC))
    m = b.admin("GET", "/api/v1/machines/" + MAC).json()
    if reprovision and m["state"] != "queued":
        b.admin("POST", "/api/v1/machines/%s/install" % MAC, {"hostname": "n1", "role": role})
        key = b.dispatch(MAC).text.split("k=")[1][:64]
        b.boot("GET", "/ks/%s?k=%s" % (MAC, key))
        b.boot("POST", "/api/v1/progress/%s?k=%s" % (MAC, key), {"stage": "done", "percent": 100})
        r = b.admin("POST", "/api/v1/machines/%s/reprovision" % MAC, {"role": role})
        assert r.status == 202, r
    elif not reprovision:
        assert b.admin("POST", "/api/v1/machines/%s/install" % MAC,
                       {"hostname": "n1", "role": role}).status == 202
    ks = b.admin("POST", "/api/v1/templates/render", {"mac": MAC}).json()["kickstart"]
    pres = kscheck.sections(ks, "%pre")
    assert len(pres) == 1
    return pres[0]


def run_pre(script, d, fails=False):
    """Run the %pre on d: the storage commands it wrote or, when it must
    fail, what it said on stderr (and that it wrote nothing)."""
    out = os.path.join(d.dir, "storage.ks")
    with open(os.path.join(d.dir, "pre.sh"), "w") as f:
        f.write(script)
    env = dict(ENV, BASTION_DISK=d.name, BASTION_STORAGE_OUT=out)
    p = subprocess.run(["bash", os.path.join(d.dir, "pre.sh")], env=env,
                       capture_output=True, text=True, timeout=120)
    if fails:
        assert p.returncode != 0, p.stdout
        assert not os.path.exists(out)      # anaconda gets no layout at all
        return p.stderr
    assert p.returncode == 0, p.stderr
    with open(out) as f:
        return f.read()


def logvols(text):
    out = {}
    for line in text.splitlines():
        if line.startswith("logvol "):
            words = line.split()
            name = [w for w in words if w.startswith("--name=")][0][7:]
            out[name] = words
    return out


def test_blank_disk_gets_a_clean_layout(bastion, disk):
    for reprovision in (False, True):
        text = run_pre(pre_script(bastion, reprovision), disk)
        assert kscheck.check(text, storage_only=True) == []
        assert "clearpart --all --initlabel --drives=%s --disklabel=gpt" % disk.name in text
        assert "part biosboot --fstype=biosboot --size=1 --ondisk=%s" % disk.name in text
        assert "part /boot --fstype=xfs --size=1024 --ondisk=%s --label=bastion_boot" % disk.name in text
        assert "volgroup bastion pv.01" in text
        lv = logvols(text)
        assert set(lv) == {"root", "var", "home", "srv", "var_lib_longhorn"}
        assert all("--useexisting" not in w and "--noformat" not in w for w in lv.values())
        assert "--size=20480" in lv["root"] and "--grow" in lv["var_lib_longhorn"]


def test_reprovision_keeps_exactly_the_preserved_volumes(bastion, disk):
    disk.partition()
    disk.make_vg([("root", "2G"), ("var", "1G"), ("home", "1G"), ("srv", "512M"),
                  ("var_lib_longhorn", "2G"), ("scratch", "256M")])
    marks = {}
    for lv in ("root", "home", "srv", "var_lib_longhorn"):
        off = disk.lv_offset(lv)
        data = ("bastion test data in %s\n" % lv).encode() * 100
        disk.write(off, data)
        marks[lv] = (off, data)
    before = disk.fingerprint()

    text = run_pre(pre_script(bastion, True), disk)
    assert kscheck.check(text, storage_only=True) == [], text
    assert "clearpart --none" in text and "clearpart --all" not in text
    assert "volgroup bastion --useexisting --noformat" in text
    assert "part biosboot --fstype=biosboot --onpart=%s" % disk.part(1) in text
    assert "part /boot --fstype=xfs --onpart=%s --label=bastion_boot" % disk.part(2) in text
    lv = logvols(text)
    kept = {n for n, w in lv.items() if "--noformat" in w}
    assert kept == {"home", "srv", "var_lib_longhorn"}
    for n in ("root", "var"):
        assert "--useexisting" in lv[n] and "--noformat" not in lv[n] and "--fstype=xfs" in lv[n]
    assert "scratch" not in lv        # not the role's: left alone
    # The script only looked: not one byte of the disk changed.
    assert disk.fingerprint() == before
    for off, data in marks.values():
        assert disk.read(off, len(data)) == data


def test_reprovision_creates_preserved_volumes_that_are_missing(bastion, disk):
    disk.partition()
    disk.make_vg([("root", "2G"), ("var", "1G"), ("home", "1G")])
    text = run_pre(pre_script(bastion, True), disk)
    lv = logvols(text)
    assert "--noformat" in lv["home"]
    for n in ("srv", "var_lib_longhorn"):   # not there yet: made fresh
        assert "--useexisting" not in lv[n] and "--size=" in " ".join(lv[n])
    assert kscheck.check(text, storage_only=True) == []


def test_fresh_install_wipes_an_old_layout(bastion, disk):
    disk.partition()
    disk.make_vg([("root", "2G"), ("home", "1G")])
    text = run_pre(pre_script(bastion, False), disk)
    assert "clearpart --all --initlabel --drives=%s --disklabel=gpt" % disk.name in text
    assert "--useexisting" not in text


def test_reprovision_without_boot_partition_falls_back_to_fresh(bastion, disk):
    sh("sfdisk", "-q", disk.dev, input="label: gpt\n,\n")
    subprocess.run(["partx", "-a", disk.dev], capture_output=True)
    lvm("pvcreate", "-q", "/dev/" + disk.part(1))
    lvm("vgcreate", "-q", VG, "/dev/" + disk.part(1))
    disk.vg = True
    text = run_pre(pre_script(bastion, True), disk)
    assert "clearpart --all" in text
    assert kscheck.check(text, storage_only=True) == []


def preserved_data(d, pv=3):
    marks = {}
    for lv in ("home", "srv"):
        off = d.lv_offset(lv, pv)
        data = ("keep me: %s\n" % lv).encode() * 200
        d.write(off, data)
        marks[lv] = (off, data)
    return marks


def test_reprovision_refuses_to_wipe_preserved_volumes_it_cannot_reuse(bastion, disk):
    """A volume group with preserved volumes but no /boot partition to
    reuse: today's %pre fell back to a fresh layout and wiped /home and
    /srv. Now the install fails with the reason and the disk is untouched."""
    sh("sfdisk", "-q", disk.dev, input="label: gpt\nsize=1M, type=%s\n,\n" % BIOSBOOT)
    subprocess.run(["partx", "-a", disk.dev], capture_output=True)
    lvm("pvcreate", "-q", "/dev/" + disk.part(2))
    lvm("vgcreate", "-q", VG, "/dev/" + disk.part(2))
    disk.vg = True
    for name, size in (("root", "2G"), ("home", "1G"), ("srv", "512M")):
        lvm("lvcreate", "-q", "-an", "-Zn", "-L", size, "-n", name, VG)
    marks = preserved_data(disk, pv=2)
    before = disk.fingerprint()
    err = run_pre(pre_script(bastion, True), disk, fails=True)
    assert "holds preserved volumes (home srv) that cannot be reused" in err, err
    assert "no /boot partition" in err and "nothing was written" in err
    assert disk.fingerprint() == before
    for off, data in marks.values():
        assert disk.read(off, len(data)) == data


def test_reprovision_refuses_a_layout_the_firmware_does_not_match(bastion, disk):
    """A forged report said uefi for this BIOS machine: the EFI partition
    the reuse needs is not there. Fail, never lay out fresh."""
    disk.partition()
    disk.make_vg([("root", "2G"), ("var", "1G"), ("home", "1G"), ("srv", "512M")])
    marks = preserved_data(disk)
    before = disk.fingerprint()
    script = pre_script(bastion, True).replace("FIRMWARE=bios", "FIRMWARE=uefi")
    assert "FIRMWARE=uefi" in script
    err = run_pre(script, disk, fails=True)
    assert "no EFI partition labelled BASTIONEFI" in err, err
    assert disk.fingerprint() == before
    for off, data in marks.values():
        assert disk.read(off, len(data)) == data
