"""Regenerates the fixture trees of tests/unit/test_inventory.c:
tests/data/inventory/{server,qemu,minimal}, small copies of what /proc and
/sys hold on a 2-socket server, on the e2e QEMU VM, and on a machine with
neither sysfs nor CPU topology. The trees are committed; run this only to
change them (python3 tests/data/inventory/make-fixtures.py), then adjust
the tests. Binary files (SMBIOS type 16/17 structures, a SCSI VPD page)
are built here, byte by byte."""
import os
import shutil
import struct

BASE = os.path.dirname(os.path.abspath(__file__))

def w(root, rel, data):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(p, mode) as f:
        f.write(data)

def ln(root, rel, target):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    if os.path.lexists(p):
        os.unlink(p)
    os.symlink(target, p)

def relto(src_rel, dst_rel):
    return os.path.relpath(dst_rel, os.path.dirname(src_rel))

def dmi_struct(t, handle, formatted, strings):
    body = bytes([t, 4 + len(formatted)]) + struct.pack("<H", handle) + formatted
    s = b"".join(x.encode() + b"\0" for x in strings) + b"\0"
    if not strings:
        s = b"\0\0"
    return body + s

def type17(handle, size_mb, locator, bank, mtype, speed, vendor, serial, part, ext=None):
    # formatted area after header: offsets 0x04..0x27 (len 0x28 total)
    f = bytearray(0x28 - 4)
    def put(off, fmt, v):
        struct.pack_into(fmt, f, off - 4, v)
    put(0x04, "<H", 0x1000)       # array handle
    put(0x06, "<H", 0xfffe)
    put(0x08, "<H", 72)
    put(0x0a, "<H", 64)
    put(0x0c, "<H", size_mb if ext is None else 0x7fff)
    put(0x0e, "B", 0x09)          # DIMM
    put(0x0f, "B", 0)
    strs = [locator, bank] + ([vendor, serial, "", part] if size_mb or ext else [])
    put(0x10, "B", 1)
    put(0x11, "B", 2)
    put(0x12, "B", mtype)
    put(0x13, "<H", 0x80)
    put(0x15, "<H", speed)
    if size_mb or ext:
        put(0x17, "B", 3); put(0x18, "B", 4); put(0x19, "B", 0); put(0x1a, "B", 6)
        strs = [locator, bank, vendor, serial, "unused", part]
        put(0x19, "B", 5)
    put(0x1c, "<I", ext or 0)
    put(0x20, "<H", speed)
    return dmi_struct(17, handle, bytes(f), strs)

def type16(handle, ecc):
    f = bytearray(0x17 - 4)
    struct.pack_into("B", f, 0x04 - 4, 3)    # location: system board
    struct.pack_into("B", f, 0x05 - 4, 3)    # use: system memory
    struct.pack_into("B", f, 0x06 - 4, ecc)
    struct.pack_into("<I", f, 0x07 - 4, 0x8000000)
    struct.pack_into("<H", f, 0x0b - 4, 0xfffe)
    struct.pack_into("<H", f, 0x0d - 4, 8)
    return dmi_struct(16, handle, bytes(f), [])

def cpuinfo_block(i, model, vendor, flags, pkg, core, siblings, cores, mhz):
    lines = ["processor\t: %d" % i, "vendor_id\t: %s" % vendor,
             "cpu family\t: 6", "model\t\t: 85", "model name\t: %s" % model,
             "stepping\t: 7", "cpu MHz\t\t: %s" % mhz, "cache size\t: 16384 KB"]
    if pkg is not None:
        lines += ["physical id\t: %d" % pkg, "siblings\t: %d" % siblings,
                  "core id\t\t: %d" % core, "cpu cores\t: %d" % cores]
    lines += ["flags\t\t: %s" % flags, "bogomips\t: 4800.00", ""]
    return "\n".join(lines) + "\n"

def net(root, name, pcipath, driver, mac, speed=None, carrier=None, typ=1,
        vendor="0x8086", device="0x1533", virtio=None, operstate="down"):
    devdir = "sys/devices/" + pcipath
    netdev = devdir + ("/" + virtio if virtio else "") + "/net/" + name
    ln(root, "sys/class/net/" + name, relto("sys/class/net/" + name, netdev))
    w(root, netdev + "/address", mac + "\n")
    w(root, netdev + "/type", "%d\n" % typ)
    w(root, netdev + "/mtu", "1500\n")
    w(root, netdev + "/operstate", operstate + "\n")
    if speed is not None:
        w(root, netdev + "/speed", "%d\n" % speed)
        w(root, netdev + "/duplex", "full\n")
    if carrier is not None:
        w(root, netdev + "/carrier", "%d\n" % carrier)
    target = devdir + ("/" + virtio if virtio else "")
    ln(root, netdev + "/device", relto(netdev + "/device", target))
    ln(root, target + "/driver", relto(target + "/driver", "sys/bus/" + ("virtio" if virtio else "pci") + "/drivers/" + driver))
    if virtio:   # the virtio device's own ids, then its PCI function's
        w(root, target + "/vendor", "0x1af4\n")
        w(root, target + "/device", "0x0001\n")
        ln(root, devdir + "/driver", relto(devdir + "/driver", "sys/bus/pci/drivers/virtio-pci"))
    w(root, devdir + "/vendor", vendor + "\n")
    w(root, devdir + "/device", device + "\n")

def virtual_net(root, name, mac, typ=1):
    d = "sys/devices/virtual/net/" + name
    ln(root, "sys/class/net/" + name, relto("sys/class/net/" + name, d))
    w(root, d + "/address", mac + "\n")
    w(root, d + "/type", "%d\n" % typ)

def block(root, name, devpath, size_sectors, rotational, removable=0, attrs=None, devattrs=None, lbs=512, pbs=512):
    d = "sys/devices/" + devpath + "/block/" + name
    ln(root, "sys/block/" + name, relto("sys/block/" + name, d))
    w(root, d + "/size", "%d\n" % size_sectors)
    w(root, d + "/removable", "%d\n" % removable)
    w(root, d + "/ro", "0\n")
    w(root, d + "/queue/rotational", "%d\n" % rotational)
    w(root, d + "/queue/logical_block_size", "%d\n" % lbs)
    w(root, d + "/queue/physical_block_size", "%d\n" % pbs)
    for k, v in (attrs or {}).items():
        w(root, d + "/" + k, v)
    if devpath.startswith("virtual"):
        return
    ln(root, d + "/device", relto(d + "/device", "sys/devices/" + devpath))
    for k, v in (devattrs or {}).items():
        w(root, "sys/devices/" + devpath + "/" + k, v)

def dmi_id(root, vals):
    for k, v in vals.items():
        w(root, "sys/class/dmi/id/" + k, v + "\n")

# ------------------------------------------------------------------ server
R = os.path.join(BASE, "server")
shutil.rmtree(R, ignore_errors=True)
flags = "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr sse sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc art arch_perfmon pebs bts rep_good nopl xtopology nonstop_tsc cpuid aperfmperf pni pclmulqdq dtes64 monitor ds_cpl vmx smx est tm2 ssse3 sdbg fma cx16 xtpr pdcm pcid dca sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand lahf_lm abm 3dnowprefetch cpuid_fault epb cat_l3 cdp_l3 invpcid_single intel_ppin ssbd mba ibrs ibpb stibp ibrs_enhanced tpr_shadow vnmi flexpriority ept vpid ept_ad fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid cqm mpx rdt_a avx512f avx512dq rdseed adx smap clflushopt clwb intel_pt avx512cd avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves cqm_llc cqm_occup_llc cqm_mbm_total cqm_mbm_local dtherm ida arat pln pts pku ospke avx512_vnni md_clear flush_l1d arch_capabilities"
model = "Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz"
# 2 sockets x 4 cores x 2 threads: cpu N -> pkg N//4 % 2 ... linux numbering: first threads then siblings
cpus = []
for i in range(16):
    thread = i // 8
    pkg = (i % 8) // 4
    core = i % 4
    cpus.append((i, pkg, core))
txt = "".join(cpuinfo_block(i, model, "GenuineIntel", flags, pkg, [0, 1, 4, 5][core], 8, 4, "2200.000") for i, pkg, core in cpus[:15])
w(R, "proc/cpuinfo", txt)
for i, pkg, core in cpus:
    c = "sys/devices/system/cpu/cpu%d" % i
    if i == 15:
        w(R, c + "/online", "0\n")
        continue
    if i != 0:
        w(R, c + "/online", "1\n")
    w(R, c + "/topology/physical_package_id", "%d\n" % pkg)
    w(R, c + "/topology/core_id", "%d\n" % [0, 1, 4, 5][core])
    w(R, c + "/topology/die_id", "0\n")
w(R, "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "3200000\n")
w(R, "sys/devices/system/cpu/online", "0-14\n")
w(R, "sys/devices/system/node/node0/cpulist", "0-3,8-11\n")
w(R, "sys/devices/system/node/node1/cpulist", "4-7,12-14\n")
w(R, "proc/meminfo", "MemTotal:       65699248 kB\nMemFree:        64000000 kB\nMemAvailable:   64500000 kB\n")
w(R, "proc/cmdline", "BOOT_IMAGE=/vmlinuz initrd=initrd.img console=ttyS0,115200n8 quiet BOOTIF=01-3c-ec-ef-10-20-31 bastion.url=http://10.77.0.1:8080 bastion.after=reboot\n")
w(R, "sys/firmware/efi/fw_platform_size", "64\n")
w(R, "sys/firmware/dmi/entries/16-0/raw", type16(0x1000, 0x06))
dimms = [("DIMM_A1", 16384), ("DIMM_A2", 0), ("DIMM_B1", 16384), ("DIMM_B2", 0),
         ("DIMM_C1", 16384), ("DIMM_D1", 16384)]
for n, (loc, size) in enumerate(dimms):
    w(R, "sys/firmware/dmi/entries/17-%d/raw" % n,
      type17(0x1100 + n, size, loc, "P%d_Node%d_Channel%d" % (n // 3, n // 3, n % 3), 0x1a, 2933,
             "Samsung", "S%07X" % (0x1234500 + n), "M393A2K43DB3-CWE"))
dmi_id(R, {"sys_vendor": "Supermicro", "product_name": "SYS-1029P-WTR",
           "product_version": "0123456789", "product_serial": "S348291X9A12345",
           "product_uuid": "00000000-0000-0000-0000-AC1F6B123456",
           "product_sku": "To be filled by O.E.M.", "product_family": "SMC X11",
           "board_vendor": "Supermicro", "board_name": "X11DDW-L", "board_version": "1.02",
           "board_serial": "ZM19AS012345", "board_asset_tag": "",
           "chassis_vendor": "Supermicro", "chassis_type": "23", "chassis_serial": "C1160LI51NA1234",
           "chassis_asset_tag": "", "bios_vendor": "American Megatrends Inc.",
           "bios_version": "3.4", "bios_date": "11/19/2020", "bios_release": "5.14"})
vpd = b"\x00\x80\x00\x14" + b"S4EVNF0M123456      "
block(R, "sda", "pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0", 937703088, 0,
      devattrs={"model": "Samsung SSD 860 \n", "vendor": "ATA     \n", "type": "0\n",
                "wwid": "naa.5002538e4012abcd\n", "vpd_pg80": vpd})
block(R, "sdb", "pci0000:00/0000:00:17.0/ata2/host1/target1:0:0/1:0:0:0", 7814037168, 1,
      devattrs={"model": "ST4000NM0035-1V4\n", "vendor": "ATA     \n", "type": "0\n",
                "wwid": "naa.5000c500a1b2c3d4\n"}, pbs=4096)
block(R, "nvme0n1", "pci0000:00/0000:00:1d.0/0000:3b:00.0/nvme/nvme0", 1875385008, 0,
      attrs={"wwid": "eui.0025388b91b2c3d4\n"},
      devattrs={"model": "SAMSUNG MZQLB960HAJR-00007             \n", "serial": "S437NA0M501234      \n"})
block(R, "sr0", "pci0000:00/0000:00:17.0/ata3/host2/target2:0:0/2:0:0:0", 2097151, 1, removable=1,
      devattrs={"model": "DVD-ROM\n", "vendor": "HL-DT-ST\n", "type": "5\n"})
block(R, "sdc", "pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.0/host3/target3:0:0/3:0:0:0", 0, 1, removable=1,
      devattrs={"model": "Card Reader     \n", "vendor": "Generic \n", "type": "0\n"})
block(R, "nvme0c0n1", "pci0000:00/0000:00:1d.0/0000:3b:00.0/nvme/nvme0", 1875385008, 0,
      attrs={"hidden": "1\n"})
block(R, "mmcblk0boot0", "platform/soc/mmc0/mmc0:0001", 8192, 0)
for v in ("loop0", "ram0", "zram0", "dm-0", "md127", "nbd0"):
    block(R, v, "virtual/block", 2048, 0)
net(R, "eno1", "pci0000:00/0000:00:1c.0/0000:01:00.0", "igb", "3C:EC:EF:10:20:30", 1000, 1, operstate="up")
net(R, "eno2", "pci0000:00/0000:00:1c.0/0000:01:00.1", "igb", "3c:ec:ef:10:20:31", 1000, 1, operstate="up")
net(R, "eno3", "pci0000:00/0000:00:1c.0/0000:01:00.2", "igb", "3c:ec:ef:10:20:32")
net(R, "ens1f0np0", "pci0000:3a/0000:3a:00.0/0000:3b:00.0", "mlx5_core", "b8:ce:f6:00:11:22", 25000, 1,
    vendor="0x15b3", device="0x1017", operstate="up")
net(R, "ens1f1np1", "pci0000:3a/0000:3a:00.0/0000:3b:00.1", "mlx5_core", "b8:ce:f6:00:11:23", 25000, 0,
    vendor="0x15b3", device="0x1017")
net(R, "ib0", "pci0000:3a/0000:3a:02.0/0000:5e:00.0", "mlx5_core", "80:00:02:08:fe:80:00:00:00:00:00:00:b8:ce:f6:03:00:11:22:33", 100000, 1, typ=32)
net(R, "eno4", "pci0000:00/0000:00:1c.0/0000:01:00.3", "igb", "00:00:00:00:00:00")
virtual_net(R, "bond0", "3c:ec:ef:10:20:30")
virtual_net(R, "lo", "00:00:00:00:00:00", typ=772)

# ------------------------------------------------------------------ qemu (BIOS, like the e2e VM)
R = os.path.join(BASE, "qemu")
shutil.rmtree(R, ignore_errors=True)
qflags = "fpu de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx lm nopl cpuid pni cx16 hypervisor lahf_lm svm 3dnowprefetch vmmcall"
txt = ""
for i in range(2):
    txt += ("processor\t: %d\nvendor_id\t: AuthenticAMD\ncpu family\t: 15\nmodel\t\t: 107\n"
            "model name\t: QEMU Virtual CPU version 2.5+\nstepping\t: 1\ncpu MHz\t\t: 2596.064\n"
            "cache size\t: 512 KB\nphysical id\t: 0\nsiblings\t: 2\ncore id\t\t: %d\ncpu cores\t: 2\n"
            "apicid\t\t: %d\nfpu\t\t: yes\nflags\t\t: %s\nbogomips\t: 5192.12\n\n") % (i, i, i, qflags)
w(R, "proc/cpuinfo", txt)
for i in range(2):
    c = "sys/devices/system/cpu/cpu%d" % i
    if i:
        w(R, c + "/online", "1\n")
    w(R, c + "/topology/physical_package_id", "0\n")
    w(R, c + "/topology/core_id", "%d\n" % i)
    w(R, c + "/topology/die_id", "0\n")
w(R, "sys/devices/system/node/node0/cpulist", "0-1\n")
w(R, "proc/meminfo", "MemTotal:        1004004 kB\nMemFree:          950000 kB\n")
w(R, "proc/cmdline", "initrd=initrd.img console=tty0 console=ttyS0,115200n8 quiet bastion.url=http://10.77.0.1:8080 bastion.mac=52:54:00:12:34:56 bastion.after=poweroff\n")
w(R, "sys/firmware/dmi/entries/16-0/raw", type16(0x1000, 0x06))
w(R, "sys/firmware/dmi/entries/17-0/raw", type17(0x1100, 1024, "DIMM 0", "", 0x07, 0, "QEMU", "", ""))
dmi_id(R, {"sys_vendor": "QEMU", "product_name": "Standard PC (i440FX + PIIX, 1996)",
           "product_version": "pc-i440fx-7.2", "product_uuid": "6A3B8C2E-1111-2222-3333-444455556666",
           "chassis_vendor": "QEMU", "chassis_type": "1", "chassis_version": "pc-i440fx-7.2",
           "bios_vendor": "SeaBIOS", "bios_version": "1.16.2-debian-1.16.2-1", "bios_date": "04/01/2014",
           "bios_release": "0.0"})
block(R, "vda", "pci0000:00/0000:00:05.0/virtio2", 16777216, 1, attrs={"serial": "bst-disk-a\n"},
      devattrs={"vendor": "0x1af4\n", "device": "0x0002\n"})
block(R, "vdb", "pci0000:00/0000:00:06.0/virtio3", 8388608, 1, attrs={"serial": "bst-disk-b\n"},
      devattrs={"vendor": "0x1af4\n", "device": "0x0002\n"})
block(R, "sr0", "pci0000:00/0000:00:01.1/ata2/host1/target1:0:0/1:0:0:0", 2097151, 1, removable=1,
      devattrs={"model": "QEMU DVD-ROM    \n", "vendor": "QEMU    \n", "type": "5\n"})
block(R, "fd0", "platform/floppy.0", 8, 1, removable=1)
net(R, "eth0", "pci0000:00/0000:00:03.0", "virtio_net", "52:54:00:12:34:56", -1, 1, vendor="0x1af4",
    device="0x1000", virtio="virtio0", operstate="up")
net(R, "eth1", "pci0000:00/0000:00:04.0", "e1000", "52:54:00:12:34:57", 1000, 1, vendor="0x8086",
    device="0x100e", operstate="up")
virtual_net(R, "lo", "00:00:00:00:00:00", typ=772)

# ------------------------------------------------------------------ minimal (no sysfs, no topology)
R = os.path.join(BASE, "minimal")
shutil.rmtree(R, ignore_errors=True)
txt = ""
for i in range(4):
    txt += "processor\t: %d\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm crc32\nCPU implementer\t: 0x41\n\n" % i
w(R, "proc/cpuinfo", txt)
w(R, "proc/meminfo", "MemTotal:        4028440 kB\n")
w(R, "proc/cmdline", 'console=ttyAMA0 bastion.url="http://[fd77::1]:8080" bastion.mac=bogus bastion.after=explode\n')
