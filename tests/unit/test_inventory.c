/* test_inventory.c — agentd's discovery: every collector against fixture
 * trees of /proc and /sys (tests/data/inventory/{server,qemu,minimal}),
 * libblkid and the LVM reader on disk images made here (GPT with ext4 and
 * vfat, a DOS table, LVM PVs made with the real LVM tools on loop
 * devices, and hand-made PV labels for the malformed cases), the kernel
 * command line, and the report upload against a scripted HTTP server. */
#define _GNU_SOURCE	/* strcasestr */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#define SHA256_DIGEST_LENGTH 32

#include "discover.h"	/* bastion's validator: the report must pass it */
#include "inventory.h"

#define FIX	TEST_SRCDIR "/tests/data/inventory"
#define SERVER	FIX "/server"
#define QEMU	FIX "/qemu"
#define MINIMAL	FIX "/minimal"

/* --- helpers ----------------------------------------------------------- */

static json_t *
get(const json_t *o, const char *path)
{
	char key[64];
	const char *dot;
	size_t n;

	while (o && path && *path) {
		dot = strchr(path, '.');
		n = dot ? (size_t)(dot - path) : strlen(path);
		snprintf(key, sizeof key, "%.*s", (int)n, path);
		if (json_is_array(o))
			o = json_array_get(o, strtoul(key, NULL, 10));
		else
			o = json_object_get(o, key);
		path = dot ? dot + 1 : NULL;
	}
	return (json_t *)o;
}

static const char *
gets_(const json_t *o, const char *path)
{
	const json_t *v = get(o, path);

	if (!json_is_string(v))
		fail_msg("%s: not a string", path);
	return json_string_value(v);
}

static long long
geti(const json_t *o, const char *path)
{
	const json_t *v = get(o, path);

	if (!json_is_integer(v))
		fail_msg("%s: not an integer", path);
	return json_integer_value(v);
}

static int
have(const char *prog)
{
	char cmd[256];

	snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1 || "
	    "test -x /usr/sbin/%s || test -x /sbin/%s", prog, prog, prog);
	return system(cmd) == 0;
}

static int
sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc == -1 || !WIFEXITED(rc))
		return -1;
	return WEXITSTATUS(rc);
}

/* sh(), but the output into a string (first line, trailing space cut). */
static int
sh_out(char *out, size_t len, const char *cmd)
{
	FILE *p;
	size_t n;

	if ((p = popen(cmd, "r")) == NULL)
		return -1;
	if (fgets(out, (int)len, p) == NULL)
		out[0] = '\0';
	pclose(p);
	n = strlen(out);
	while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = '\0';
	return out[0] ? 0 : -1;
}

static void
sha256_file(const char *path, unsigned char md[SHA256_DIGEST_LENGTH])
{
	unsigned char buf[65536];
	EVP_MD_CTX *c;
	ssize_t n;
	int fd;

	assert_true((fd = open(path, O_RDONLY)) != -1);
	assert_non_null(c = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestInit_ex(c, EVP_sha256(), NULL), 1);
	while ((n = read(fd, buf, sizeof buf)) > 0)
		EVP_DigestUpdate(c, buf, (size_t)n);
	close(fd);
	EVP_DigestFinal_ex(c, md, NULL);
	EVP_MD_CTX_free(c);
}

static char tmpdir[64];

static int
tmp_setup(void **state)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/bst-inv-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int
tmp_teardown(void **state)
{
	if (tmpdir[0])
		sh("rm -rf '%s'", tmpdir);
	tmpdir[0] = '\0';
	return 0;
}

/* --- inventory.c helpers ----------------------------------------------- */

static void
test_path_join_root(void **state)
{
	char p[64];

	assert_int_equal(inventory_path(p, sizeof p, "/", "proc/cpuinfo"), 0);
	assert_string_equal(p, "/proc/cpuinfo");
	assert_int_equal(inventory_path(p, sizeof p, "/fx", "/sys/block"), 0);
	assert_string_equal(p, "/fx/sys/block");
	assert_int_equal(inventory_path(p, 8, "/fx", "sys/block"), -1);
}

static void
test_clean_strings(void **state)
{
	char s[64];

	snprintf(s, sizeof s, "  ATA     \n");
	inventory_clean(s);
	assert_string_equal(s, "ATA");
	snprintf(s, sizeof s, "a\x01" "b\xc3\xa9" "c");
	inventory_clean(s);
	assert_string_equal(s, "a?b??c");
}

static void
test_read_missing_leaves_out(void **state)
{
	char v[16] = "untouched";
	long long n = 42;

	assert_int_equal(inventory_read_str(SERVER, "no/such/file", v,
	    sizeof v), -1);
	assert_string_equal(v, "untouched");
	assert_int_equal(inventory_read_ll(SERVER,
	    "sys/class/dmi/id/product_name", &n), -1);	/* not a number */
	assert_int_equal(n, 42);
	assert_int_equal(inventory_read_ll(SERVER,
	    "sys/class/dmi/id/chassis_type", &n), 0);
	assert_int_equal(n, 23);
}

static void
test_firmware(void **state)
{
	assert_string_equal(inventory_firmware(SERVER), "uefi");
	assert_string_equal(inventory_firmware(QEMU), "bios");
	assert_string_equal(inventory_firmware(MINIMAL), "bios");
}

/* --- CPU --------------------------------------------------------------- */

static int
has_flag(const json_t *cpu, const char *flag)
{
	const json_t *f;
	size_t i;

	json_array_foreach(json_object_get(cpu, "flags"), i, f)
		if (strcmp(json_string_value(f), flag) == 0)
			return 1;
	return 0;
}

static void
test_cpu_server_topology(void **state)
{
	json_t *c = NULL;

	/* 2 sockets x 4 cores x 2 threads, cpu15 offline. */
	assert_int_equal(inventory_cpu(SERVER, &c), 0);
	assert_string_equal(gets_(c, "model"),
	    "Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz");
	assert_string_equal(gets_(c, "vendor"), "GenuineIntel");
	assert_int_equal(geti(c, "sockets"), 2);
	assert_int_equal(geti(c, "cores"), 8);
	assert_int_equal(geti(c, "threads"), 15);
	assert_int_equal(geti(c, "mhz"), 2200);
	assert_int_equal(geti(c, "max_mhz"), 3200);
	assert_int_equal(geti(c, "numa_nodes"), 2);
	assert_string_equal(gets_(c, "virtualization"), "vmx");
	assert_true(json_is_false(get(c, "hypervisor")));
	assert_true(has_flag(c, "avx512f"));
	assert_true(has_flag(c, "aes"));
	assert_false(has_flag(c, "svm"));
	assert_false(has_flag(c, "fpu"));	/* only flags of note */
	json_decref(c);
}

static void
test_cpu_qemu(void **state)
{
	json_t *c = NULL;

	assert_int_equal(inventory_cpu(QEMU, &c), 0);
	assert_string_equal(gets_(c, "model"), "QEMU Virtual CPU version 2.5+");
	assert_int_equal(geti(c, "sockets"), 1);
	assert_int_equal(geti(c, "cores"), 2);
	assert_int_equal(geti(c, "threads"), 2);
	assert_string_equal(gets_(c, "virtualization"), "svm");
	assert_true(json_is_true(get(c, "hypervisor")));
	assert_null(get(c, "max_mhz"));
	json_decref(c);
}

static void
test_cpu_no_topology(void **state)
{
	json_t *c = NULL;

	/* No sysfs, no physical/core ids (an arm64 cpuinfo): each logical
	 * CPU is taken as a core of one socket. */
	assert_int_equal(inventory_cpu(MINIMAL, &c), 0);
	assert_int_equal(geti(c, "sockets"), 1);
	assert_int_equal(geti(c, "cores"), 4);
	assert_int_equal(geti(c, "threads"), 4);
	assert_string_equal(gets_(c, "model"), "");
	assert_true(json_is_null(get(c, "virtualization")));
	json_decref(c);
}

static void
test_cpu_cpuinfo_ids_only(void **state)
{
	char p[PATH_MAX];
	json_t *c = NULL;

	/* The server's cpuinfo without its sysfs: physical id / core id. */
	snprintf(p, sizeof p, "%s/proc", tmpdir);
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(sh("cp %s/proc/cpuinfo %s/proc/", SERVER, tmpdir), 0);
	assert_int_equal(inventory_cpu(tmpdir, &c), 0);
	assert_int_equal(geti(c, "sockets"), 2);
	assert_int_equal(geti(c, "cores"), 8);
	assert_int_equal(geti(c, "threads"), 15);
	json_decref(c);
}

static void
test_cpu_missing(void **state)
{
	json_t *c = (json_t *)0x1;

	assert_int_equal(inventory_cpu(FIX "/nonexistent", &c), -1);
	assert_ptr_equal(c, (json_t *)0x1);
}

/* --- memory ------------------------------------------------------------ */

static void
test_memory_server_dimms(void **state)
{
	json_t *m = NULL;

	assert_int_equal(inventory_memory(SERVER, &m), 0);
	assert_int_equal(geti(m, "total_bytes"), 64LL << 30);
	assert_string_equal(gets_(m, "source"), "dmi");
	assert_int_equal(geti(m, "usable_bytes"), 65699248LL * 1024);
	assert_int_equal(geti(m, "slots"), 6);
	assert_int_equal(json_array_size(get(m, "dimms")), 4);
	assert_string_equal(gets_(m, "dimms.0.locator"), "DIMM_A1");
	assert_string_equal(gets_(m, "dimms.1.locator"), "DIMM_B1");
	assert_int_equal(geti(m, "dimms.0.size_bytes"), 16LL << 30);
	assert_string_equal(gets_(m, "dimms.0.type"), "DDR4");
	assert_int_equal(geti(m, "dimms.0.speed_mts"), 2933);
	assert_string_equal(gets_(m, "dimms.3.manufacturer"), "Samsung");
	assert_string_equal(gets_(m, "dimms.3.serial"), "S1234505");
	assert_string_equal(gets_(m, "dimms.3.part_number"),
	    "M393A2K43DB3-CWE");
	assert_string_equal(gets_(m, "ecc"), "multi-bit");
	json_decref(m);
}

static void
test_memory_qemu(void **state)
{
	json_t *m = NULL;

	/* -m 1024: the DIMM says 1 GiB, the kernel sees a bit less. */
	assert_int_equal(inventory_memory(QEMU, &m), 0);
	assert_int_equal(geti(m, "total_bytes"), 1LL << 30);
	assert_int_equal(geti(m, "usable_bytes"), 1004004LL * 1024);
	assert_string_equal(gets_(m, "dimms.0.type"), "RAM");
	assert_string_equal(gets_(m, "dimms.0.locator"), "DIMM 0");
	json_decref(m);
}

static void
test_memory_meminfo_only(void **state)
{
	json_t *m = NULL;

	assert_int_equal(inventory_memory(MINIMAL, &m), 0);
	assert_int_equal(geti(m, "total_bytes"), 4028440LL * 1024);
	assert_string_equal(gets_(m, "source"), "meminfo");
	assert_null(get(m, "dimms"));
	json_decref(m);
}

static void
test_dmi_string_reader(void **state)
{
	/* type 1, length 8, handle, 4 string indexes; strings "A", "BC". */
	static const uint8_t ok[] = { 1, 8, 0, 0, 1, 2, 0, 3,
	    'A', 0, 'B', 'C', 0, 0 };
	static const uint8_t unterminated[] = { 1, 8, 0, 0, 1, 2, 0, 0,
	    'A', 0, 'B', 'C' };
	static const uint8_t badlen[] = { 1, 40, 0, 0 };
	char s[16];

	assert_int_equal(inventory_dmi_string(ok, sizeof ok, 1, s, sizeof s),
	    0);
	assert_string_equal(s, "A");
	assert_int_equal(inventory_dmi_string(ok, sizeof ok, 2, s, sizeof s),
	    0);
	assert_string_equal(s, "BC");
	assert_int_equal(inventory_dmi_string(ok, sizeof ok, 0, s, sizeof s),
	    0);
	assert_string_equal(s, "");
	/* Index past the last string: a firmware bug, read as empty. */
	assert_int_equal(inventory_dmi_string(ok, sizeof ok, 3, s, sizeof s),
	    0);
	assert_string_equal(s, "");
	assert_int_equal(inventory_dmi_string(unterminated,
	    sizeof unterminated, 2, s, sizeof s), -1);
	assert_int_equal(inventory_dmi_string(badlen, sizeof badlen, 1, s,
	    sizeof s), -1);
}

/* --- DMI --------------------------------------------------------------- */

static void
test_dmi_server(void **state)
{
	json_t *d = NULL;

	assert_int_equal(inventory_dmi(SERVER, &d), 0);
	assert_string_equal(gets_(d, "vendor"), "Supermicro");
	assert_string_equal(gets_(d, "product"), "SYS-1029P-WTR");
	assert_string_equal(gets_(d, "serial"), "S348291X9A12345");
	assert_string_equal(gets_(d, "uuid"),
	    "00000000-0000-0000-0000-ac1f6b123456");
	assert_string_equal(gets_(d, "board.name"), "X11DDW-L");
	assert_string_equal(gets_(d, "board.asset_tag"), "");
	assert_string_equal(gets_(d, "chassis.type"), "rack mount chassis");
	assert_string_equal(gets_(d, "bios.vendor"),
	    "American Megatrends Inc.");
	assert_string_equal(gets_(d, "bios.date"), "11/19/2020");
	json_decref(d);
}

static void
test_dmi_qemu_and_absent(void **state)
{
	json_t *d = NULL;

	assert_int_equal(inventory_dmi(QEMU, &d), 0);
	assert_string_equal(gets_(d, "vendor"), "QEMU");
	assert_string_equal(gets_(d, "uuid"),
	    "6a3b8c2e-1111-2222-3333-444455556666");
	assert_null(get(d, "serial"));	/* no file: no key */
	assert_string_equal(gets_(d, "chassis.type"), "other");
	assert_string_equal(gets_(d, "bios.vendor"), "SeaBIOS");
	json_decref(d);

	assert_int_equal(inventory_dmi(MINIMAL, &d), 0);
	assert_null(get(d, "vendor"));
	assert_int_equal(json_object_size(get(d, "bios")), 0);
	json_decref(d);
}

/* --- disks (sysfs) ----------------------------------------------------- */

static void
test_disks_server(void **state)
{
	json_t *a = NULL;

	/* loop0, ram0, zram0, dm-0, md127, nbd0, the DVD, an eMMC boot area
	 * and a hidden NVMe multipath path are not disks. */
	assert_int_equal(inventory_disks(SERVER, 0, &a), 0);
	assert_int_equal(json_array_size(a), 4);
	assert_string_equal(gets_(a, "0.name"), "nvme0n1");
	assert_string_equal(gets_(a, "1.name"), "sda");
	assert_string_equal(gets_(a, "2.name"), "sdb");
	assert_string_equal(gets_(a, "3.name"), "sdc");

	assert_int_equal(geti(a, "0.size_bytes"), 1875385008LL * 512);
	assert_string_equal(gets_(a, "0.model"), "SAMSUNG MZQLB960HAJR-00007");
	assert_string_equal(gets_(a, "0.serial"), "S437NA0M501234");
	assert_string_equal(gets_(a, "0.wwn"), "eui.0025388b91b2c3d4");
	assert_string_equal(gets_(a, "0.bus"), "nvme");
	assert_true(json_is_false(get(a, "0.rotational")));

	/* SATA SSD: serial from VPD page 0x80, vendor/model trimmed. */
	assert_string_equal(gets_(a, "1.model"), "Samsung SSD 860");
	assert_string_equal(gets_(a, "1.vendor"), "ATA");
	assert_string_equal(gets_(a, "1.serial"), "S4EVNF0M123456");
	assert_string_equal(gets_(a, "1.wwn"), "naa.5002538e4012abcd");
	assert_string_equal(gets_(a, "1.bus"), "ata");
	assert_true(json_is_false(get(a, "1.removable")));

	assert_true(json_is_true(get(a, "2.rotational")));
	assert_int_equal(geti(a, "2.physical_block_size"), 4096);
	assert_string_equal(gets_(a, "2.serial"), "");

	/* An empty card reader: a removable USB disk of size 0. */
	assert_int_equal(geti(a, "3.size_bytes"), 0);
	assert_true(json_is_true(get(a, "3.removable")));
	assert_string_equal(gets_(a, "3.bus"), "usb");
	json_decref(a);
}

static void
test_disks_qemu(void **state)
{
	json_t *a = NULL;

	assert_int_equal(inventory_disks(QEMU, 1, &a), 0);	/* no dev/ */
	assert_int_equal(json_array_size(a), 2);
	assert_string_equal(gets_(a, "0.name"), "vda");
	assert_int_equal(geti(a, "0.size_bytes"), 8LL << 30);
	assert_string_equal(gets_(a, "0.serial"), "bst-disk-a");
	assert_string_equal(gets_(a, "0.bus"), "virtio");
	assert_null(get(a, "0.vendor"));	/* not the virtio vendor id */
	assert_null(get(a, "0.pttype"));
	assert_string_equal(gets_(a, "1.name"), "vdb");
	assert_int_equal(geti(a, "1.size_bytes"), 4LL << 30);
	json_decref(a);
}

static void
test_disks_no_sysfs(void **state)
{
	json_t *a = (json_t *)0x1;

	assert_int_equal(inventory_disks(MINIMAL, 0, &a), -1);
	assert_ptr_equal(a, (json_t *)0x1);
}

/* --- NICs -------------------------------------------------------------- */

static json_t *
nic_named(const json_t *a, const char *name)
{
	json_t *n;
	size_t i;

	json_array_foreach(a, i, n)
		if (strcmp(json_string_value(json_object_get(n, "name")), name)
		    == 0)
			return n;
	return NULL;
}

static void
test_nics_server(void **state)
{
	json_t *a = NULL, *n;

	assert_int_equal(inventory_nics(SERVER, "3c:ec:ef:10:20:31", &a), 0);
	/* lo, bond0 (virtual), ib0 (not Ethernet) and eno4 (zero MAC) are
	 * left out. */
	assert_int_equal(json_array_size(a), 5);
	assert_string_equal(gets_(a, "0.name"), "eno1");
	assert_string_equal(gets_(a, "3.name"), "ens1f0np0");
	assert_null(nic_named(a, "ib0"));
	assert_null(nic_named(a, "bond0"));
	assert_null(nic_named(a, "eno4"));

	n = nic_named(a, "eno1");
	assert_string_equal(gets_(n, "mac"), "3c:ec:ef:10:20:30");
	assert_string_equal(gets_(n, "driver"), "igb");
	assert_int_equal(geti(n, "speed_mbps"), 1000);
	assert_true(json_is_true(get(n, "carrier")));
	assert_true(json_is_false(get(n, "boot")));
	assert_string_equal(gets_(n, "pci"), "0000:01:00.0");
	assert_string_equal(gets_(n, "vendor_id"), "0x8086");

	n = nic_named(a, "eno2");
	assert_true(json_is_true(get(n, "boot")));

	/* Down: speed and carrier unreadable. */
	n = nic_named(a, "eno3");
	assert_int_equal(geti(n, "speed_mbps"), -1);
	assert_true(json_is_null(get(n, "carrier")));

	n = nic_named(a, "ens1f0np0");
	assert_string_equal(gets_(n, "driver"), "mlx5_core");
	assert_int_equal(geti(n, "speed_mbps"), 25000);
	assert_string_equal(gets_(n, "pci"), "0000:3b:00.0");
	/* No carrier: the speed it reads is only what was advertised. */
	n = nic_named(a, "ens1f1np1");
	assert_int_equal(geti(n, "speed_mbps"), -1);
	assert_true(json_is_false(get(n, "carrier")));
	assert_string_equal(gets_(n, "device_id"), "0x1017");
	json_decref(a);
}

static void
test_nics_qemu(void **state)
{
	json_t *a = NULL;

	assert_int_equal(inventory_nics(QEMU, NULL, &a), 0);
	assert_int_equal(json_array_size(a), 2);
	assert_string_equal(gets_(a, "0.name"), "eth0");
	assert_string_equal(gets_(a, "0.driver"), "virtio_net");
	/* virtio: the PCI function's address and ids, not virtio's. */
	assert_string_equal(gets_(a, "0.pci"), "0000:00:03.0");
	assert_string_equal(gets_(a, "0.vendor_id"), "0x1af4");
	assert_string_equal(gets_(a, "0.device_id"), "0x1000");
	assert_string_equal(gets_(a, "1.driver"), "e1000");
	assert_string_equal(gets_(a, "1.mac"), "52:54:00:12:34:57");
	assert_int_equal(geti(a, "1.speed_mbps"), 1000);
	assert_true(json_is_false(get(a, "0.boot")));
	json_decref(a);
}

/* --- the kernel command line ------------------------------------------- */

static void
test_cmdline_files(void **state)
{
	struct cmdline c;

	assert_int_equal(cmdline_read(SERVER, &c), 0);
	assert_string_equal(c.url, "http://10.77.0.1:8080");
	assert_string_equal(c.mac, "3c:ec:ef:10:20:31");	/* BOOTIF */
	assert_int_equal(c.after, AFTER_REBOOT);

	assert_int_equal(cmdline_read(QEMU, &c), 0);
	assert_string_equal(c.mac, "52:54:00:12:34:56");
	assert_int_equal(c.after, AFTER_POWEROFF);

	/* Quoted URL kept (quotes removed), bad MAC and action ignored. */
	assert_int_equal(cmdline_read(MINIMAL, &c), 0);
	assert_string_equal(c.url, "http://[fd77::1]:8080");
	assert_string_equal(c.mac, "");
	assert_int_equal(c.after, AFTER_NONE);

	assert_int_equal(cmdline_read(FIX "/nonexistent", &c), -1);
}

static void
test_cmdline_parse(void **state)
{
	char longurl[700];
	struct cmdline c;

	cmdline_parse("BOOTIF=01-aa-bb-cc-dd-ee-01 bastion.mac=AA:BB:CC:DD:EE:02"
	    " bastion.after=wait", &c);
	assert_string_equal(c.mac, "aa:bb:cc:dd:ee:02");	/* beats BOOTIF */
	assert_int_equal(c.after, AFTER_WAIT);

	cmdline_parse("bastion.after=poweroff bastion.after=reboot", &c);
	assert_int_equal(c.after, AFTER_REBOOT);	/* last wins */

	cmdline_parse("x=\"a b\" bastion.url=\"http://h/x y\" "
	    "bastion.url=ftp://h/ bastion.after=exit", &c);
	assert_string_equal(c.url, "");		/* space, then not http */
	assert_int_equal(c.after, AFTER_NONE);	/* exit is not for cmdline */

	memset(longurl, 'a', sizeof longurl - 1);
	longurl[sizeof longurl - 1] = '\0';
	memcpy(longurl, "bastion.url=http://", 19);
	cmdline_parse(longurl, &c);
	assert_string_equal(c.url, "");

	cmdline_parse("", &c);
	assert_string_equal(c.url, "");
	assert_string_equal(c.mac, "");

	assert_string_equal(cmdline_after_name(AFTER_POWEROFF), "poweroff");
}

/* --- the whole report -------------------------------------------------- */

static void
assert_bastion_accepts(const json_t *r)
{
	char why[256] = "";
	json_t *out = NULL;

	if (discover_validate(r, &out, why, sizeof why) != 0)
		fail_msg("bastion rejects the report: %s", why);
	json_decref(out);
}

static void
test_collect_qemu_valid(void **state)
{
	struct inventory_opts o = { QEMU, "52:54:00:12:34:56", 1 };
	json_t *r = NULL;

	assert_int_equal(inventory_collect(&o, &r), 0);
	assert_string_equal(gets_(r, "mac"), "52:54:00:12:34:56");
	assert_string_equal(gets_(r, "boot_mac"), "52:54:00:12:34:56");
	assert_string_equal(gets_(r, "firmware"), "bios");
	assert_int_equal(geti(r, "cpu.threads"), 2);
	assert_int_equal(geti(r, "memory.total_bytes"), 1LL << 30);
	assert_int_equal(json_array_size(get(r, "disks")), 2);
	assert_int_equal(json_array_size(get(r, "nics")), 2);
	assert_true(json_is_true(get(r, "nics.0.boot")));
	assert_true(json_is_false(get(r, "nics.1.boot")));
	assert_string_equal(gets_(r, "dmi.product"),
	    "Standard PC (i440FX + PIIX, 1996)");
	assert_bastion_accepts(r);
	json_decref(r);
}

static void
test_collect_server_valid(void **state)
{
	struct inventory_opts o = { SERVER, NULL, 0 };
	json_t *r = NULL;

	/* No boot MAC given: the first NIC with carrier is taken. */
	assert_int_equal(inventory_collect(&o, &r), 0);
	assert_string_equal(gets_(r, "mac"), "3c:ec:ef:10:20:30");
	assert_true(json_is_true(get(r, "nics.0.boot")));
	assert_string_equal(gets_(r, "firmware"), "uefi");
	assert_bastion_accepts(r);
	json_decref(r);
}

static void
test_collect_minimal(void **state)
{
	struct inventory_opts o = { MINIMAL, NULL, 0 };
	json_t *r = (json_t *)0x1;

	/* No NIC and no MAC given: nothing to identify the machine by. */
	assert_int_equal(inventory_collect(&o, &r), -1);
	assert_ptr_equal(r, (json_t *)0x1);

	o.boot_mac = "52:54:00:00:00:09";
	assert_int_equal(inventory_collect(&o, &r), 0);
	assert_int_equal(json_array_size(get(r, "disks")), 0);
	assert_int_equal(json_array_size(get(r, "nics")), 0);
	assert_bastion_accepts(r);
	json_decref(r);
}

/* --- libblkid on images made here --------------------------------------- */

#define EXT4_UUID	"0b5e1a7e-0000-4000-8000-000000000001"

/* A 48 MiB GPT image: p1 ext4 "bstroot" (20 MiB at 1 MiB), p2 vfat
 * "BSTEFI" (8 MiB at 21 MiB), p3 "Linux LVM" type (16 MiB at 29 MiB). */
static int
make_gpt(const char *img)
{
	if (sh("truncate -s 48M %s && printf 'label: gpt\\n"
	    "label-id: 6A3B8C2E-0000-4000-8000-00000000A0A0\\n"
	    "start=2048, size=40960, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4,"
	    " name=\"root\"\\n"
	    "start=43008, size=16384, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B,"
	    " name=\"EFI\"\\n"
	    "start=59392, size=32768, type=E6D6D379-F507-44C2-A23C-238F2A3DF928"
	    "\\n' | sfdisk -q %s >/dev/null", img, img) != 0)
		return -1;
	if (sh("cd %s && mkfs.ext4 -q -F -L bstroot -U " EXT4_UUID
	    " -E nodiscard p1.img 20M >/dev/null 2>&1 && "
	    "dd if=p1.img of=%s bs=1M seek=1 conv=notrunc status=none && "
	    "truncate -s 8M p2.img && mkfs.vfat -n BSTEFI -i 1234ABCD p2.img"
	    " >/dev/null && dd if=p2.img of=%s bs=1M seek=21 conv=notrunc "
	    "status=none && rm -f p1.img p2.img", tmpdir, img, img) != 0)
		return -1;
	return 0;
}

static void
test_probe_gpt_ext4_vfat(void **state)
{
	unsigned char before[SHA256_DIGEST_LENGTH], after[SHA256_DIGEST_LENGTH];
	char img[PATH_MAX];
	json_t *d;

	if (!have("sfdisk") || !have("mkfs.ext4") || !have("mkfs.vfat"))
		skip();
	snprintf(img, sizeof img, "%s/gpt.img", tmpdir);
	assert_int_equal(make_gpt(img), 0);
	sha256_file(img, before);

	d = json_object();
	assert_int_equal(inventory_probe(img, "vda", d), 0);
	assert_string_equal(gets_(d, "pttype"), "gpt");
	assert_string_equal(gets_(d, "ptuuid"),
	    "6a3b8c2e-0000-4000-8000-00000000a0a0");
	assert_null(get(d, "fstype"));
	assert_int_equal(json_array_size(get(d, "partitions")), 3);

	assert_string_equal(gets_(d, "partitions.0.name"), "vda1");
	assert_int_equal(geti(d, "partitions.0.number"), 1);
	assert_int_equal(geti(d, "partitions.0.start_bytes"), 1 << 20);
	assert_int_equal(geti(d, "partitions.0.size_bytes"), 20 << 20);
	assert_string_equal(gets_(d, "partitions.0.parttype"),
	    "0fc63daf-8483-4772-8e79-3d69d8477de4");
	assert_string_equal(gets_(d, "partitions.0.partlabel"), "root");
	assert_string_equal(gets_(d, "partitions.0.fstype"), "ext4");
	assert_string_equal(gets_(d, "partitions.0.label"), "bstroot");
	assert_string_equal(gets_(d, "partitions.0.uuid"), EXT4_UUID);

	assert_string_equal(gets_(d, "partitions.1.fstype"), "vfat");
	assert_string_equal(gets_(d, "partitions.1.label"), "BSTEFI");
	assert_string_equal(gets_(d, "partitions.1.uuid"), "1234-ABCD");
	assert_string_equal(gets_(d, "partitions.1.partlabel"), "EFI");

	/* Typed LVM but never pvcreate'd: nothing on it. */
	assert_null(get(d, "partitions.2.fstype"));
	assert_null(get(d, "partitions.2.lvm"));
	json_decref(d);

	/* Probing wrote nothing. */
	sha256_file(img, after);
	assert_memory_equal(before, after, sizeof before);

	d = json_object();
	assert_int_equal(inventory_probe(img, "nvme0n1", d), 0);
	assert_string_equal(gets_(d, "partitions.1.name"), "nvme0n1p2");
	json_decref(d);
}

static void
test_probe_dos_and_whole_disk(void **state)
{
	char img[PATH_MAX];
	json_t *d;

	if (!have("sfdisk") || !have("mkfs.ext4"))
		skip();
	snprintf(img, sizeof img, "%s/dos.img", tmpdir);
	assert_int_equal(sh("truncate -s 16M %s && printf 'label: dos\\n"
	    "label-id: 0x0badcafe\\nstart=2048, size=8192, type=83\\n"
	    "start=10240, type=5\\nstart=12288, size=4096, type=82\\n' | "
	    "sfdisk -q %s >/dev/null", img, img), 0);
	d = json_object();
	assert_int_equal(inventory_probe(img, "sda", d), 0);
	assert_string_equal(gets_(d, "pttype"), "dos");
	assert_string_equal(gets_(d, "ptuuid"), "0badcafe");
	assert_string_equal(gets_(d, "partitions.0.parttype"), "0x83");
	assert_string_equal(gets_(d, "partitions.0.partuuid"), "0badcafe-01");
	assert_true(json_is_true(get(d, "partitions.1.extended")));
	assert_int_equal(geti(d, "partitions.2.number"), 5);
	assert_string_equal(gets_(d, "partitions.2.name"), "sda5");
	json_decref(d);

	/* A filesystem on the whole disk, no partition table. */
	snprintf(img, sizeof img, "%s/whole.img", tmpdir);
	assert_int_equal(sh("mkfs.ext4 -q -F -L whole -E nodiscard %s 8M "
	    ">/dev/null 2>&1", img), 0);
	d = json_object();
	assert_int_equal(inventory_probe(img, "sdb", d), 0);
	assert_null(get(d, "pttype"));
	assert_string_equal(gets_(d, "fstype"), "ext4");
	assert_string_equal(gets_(d, "label"), "whole");
	assert_string_equal(gets_(d, "usage"), "filesystem");
	json_decref(d);

	/* Zeros: nothing found, and that is not an error. */
	snprintf(img, sizeof img, "%s/zero.img", tmpdir);
	assert_int_equal(sh("truncate -s 4M %s", img), 0);
	d = json_object();
	assert_int_equal(inventory_probe(img, "sdc", d), 0);
	assert_null(get(d, "pttype"));
	assert_null(get(d, "fstype"));
	json_decref(d);

	d = json_object();
	assert_int_equal(inventory_probe("/nonexistent/dev", "x", d), -1);
	assert_int_equal(json_object_size(d), 0);
	json_decref(d);
}

/* --- LVM: hand-made PV labels (no root needed) -------------------------- */

static void
put64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void
put32(unsigned char *p, uint32_t v)
{
	int i;

	for (i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/*
 * Writes a PV at byte base of fd: label in sector 1, one data area, one
 * metadata area at 4096 of size mdasize whose first raw_locn holds text
 * at offset off (0: orphan) with flags.
 */
static void
write_pv(int fd, off_t base, uint64_t mdasize, uint64_t off,
    const char *text, uint32_t flags, int good_magic)
{
	unsigned char lab[512], h[512];
	size_t n = text ? strlen(text) : 0, first;

	memset(lab, 0, sizeof lab);
	memcpy(lab, "LABELONE", 8);
	put64(lab + 8, 1);
	put32(lab + 20, 32);
	memcpy(lab + 24, "LVM2 001", 8);
	memset(lab + 32, 'U', 32);			/* pv uuid */
	put64(lab + 64, 64 << 20);			/* device size */
	put64(lab + 72, 1 << 20);			/* data area */
	put64(lab + 80, 0);
	/* lab + 88: terminator (zeros); then the metadata area list */
	put64(lab + 104, 4096);
	put64(lab + 112, mdasize);
	assert_int_equal(pwrite(fd, lab, sizeof lab, base + 512), 512);

	memset(h, 0, sizeof h);
	memcpy(h + 4, good_magic ? " LVM2 x[5A%r0N*>" : " LVM2 x[5A%r0N*?",
	    16);
	put32(h + 20, 1);
	put64(h + 24, 4096);
	put64(h + 32, mdasize);
	put64(h + 40, off);
	put64(h + 48, n);
	put32(h + 60, flags);
	assert_int_equal(pwrite(fd, h, sizeof h, base + 4096), 512);
	if (n == 0 || off == 0)
		return;
	/* A ring after the 512-byte header: wrap if the text runs over. */
	first = mdasize - off < n ? (size_t)(mdasize - off) : n;
	assert_int_equal(pwrite(fd, text, first, base + 4096 + (off_t)off),
	    (ssize_t)first);
	if (first < n)
		assert_int_equal(pwrite(fd, text + first, n - first,
		    base + 4096 + 512), (ssize_t)(n - first));
}

static int
fresh_fd(const char *name)
{
	char p[PATH_MAX];
	int fd;

	snprintf(p, sizeof p, "%s/%s", tmpdir, name);
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd != -1);
	assert_int_equal(ftruncate(fd, 4 << 20), 0);
	return fd;
}

static void
test_lvm_synthetic(void **state)
{
	char vg[64];
	int fd;

	fd = fresh_fd("pv1.img");
	write_pv(fd, 0, 1 << 20, 1536, "data_vg {\nid = \"x\"\n", 0, 1);
	assert_int_equal(inventory_lvm_vgname(fd, 0, vg, sizeof vg), 0);
	assert_string_equal(vg, "data_vg");
	close(fd);

	/* At an offset (a PV on a partition), text wrapping the ring. */
	fd = fresh_fd("pv2.img");
	write_pv(fd, 1 << 20, 8192, 8192 - 4, "vg.wrap-1+ {\nid = \"y\"\n", 0,
	    1);
	strcpy(vg, "untouched");
	assert_int_equal(inventory_lvm_vgname(fd, 0, vg, sizeof vg), -1);
	assert_string_equal(vg, "untouched");
	assert_int_equal(inventory_lvm_vgname(fd, 1 << 20, vg, sizeof vg), 0);
	assert_string_equal(vg, "vg.wrap-1+");
	close(fd);

	/* Orphan PV (no metadata yet), ignored area, bad magic, junk. */
	fd = fresh_fd("pv3.img");
	write_pv(fd, 0, 1 << 20, 0, NULL, 0, 1);
	assert_int_equal(inventory_lvm_vgname(fd, 0, vg, sizeof vg), -1);
	write_pv(fd, 0, 1 << 20, 1536, "vg0 {\n", 1, 1);
	assert_int_equal(inventory_lvm_vgname(fd, 0, vg, sizeof vg), -1);
	write_pv(fd, 0, 1 << 20, 1536, "vg0 {\n", 0, 0);
	assert_int_equal(inventory_lvm_vgname(fd, 0, vg, sizeof vg), -1);
	write_pv(fd, 0, 1 << 20, 1536, "v\"g {\n", 0, 1);
	assert_int_equal(inventory_lvm_vgname(fd, 0, vg, sizeof vg), -1);
	write_pv(fd, 0, 1 << 20, 1 << 20, "vg0 {\n", 0, 1);	/* off = size */
	assert_int_equal(inventory_lvm_vgname(fd, 0, vg, sizeof vg), -1);
	/* Output too small for the name. */
	write_pv(fd, 0, 1 << 20, 1536, "a_long_vg_name {\n", 0, 1);
	assert_int_equal(inventory_lvm_vgname(fd, 0, vg, 4), -1);
	close(fd);

	/* Not a PV at all, and a file shorter than the label area. */
	fd = fresh_fd("zero.img");
	assert_int_equal(inventory_lvm_vgname(fd, 0, vg, sizeof vg), -1);
	assert_int_equal(ftruncate(fd, 100), 0);
	assert_int_equal(inventory_lvm_vgname(fd, 0, vg, sizeof vg), -1);
	close(fd);
}

/* --- LVM: real PVs and VGs made with the LVM tools on loop devices ------- */

struct lvm_fixture {
	char	disk_img[PATH_MAX];	/* GPT: p1 ext4, p2 vfat, p3 PV in vg_a */
	char	pv_img[PATH_MAX];	/* whole-disk PV in vg_b */
	char	orphan_img[PATH_MAX];	/* pvcreate only */
	char	loop_part[64], loop_whole[64], loop_orphan[64];
	char	vg_a[32], vg_b[32];
};

static struct lvm_fixture lf;

#define LVM_ENV	"LVM_SUPPRESS_FD_WARNINGS=1 "

static int
lvm_teardown(void **state)
{
	if (lf.vg_a[0])
		sh(LVM_ENV "vgremove -q -f %s >/dev/null 2>&1", lf.vg_a);
	if (lf.vg_b[0])
		sh(LVM_ENV "vgremove -q -f %s >/dev/null 2>&1", lf.vg_b);
	if (lf.loop_part[0])
		sh(LVM_ENV "pvremove -q -ff -y %s >/dev/null 2>&1; "
		    "losetup -d %s", lf.loop_part, lf.loop_part);
	if (lf.loop_whole[0])
		sh(LVM_ENV "pvremove -q -ff -y %s >/dev/null 2>&1; "
		    "losetup -d %s", lf.loop_whole, lf.loop_whole);
	if (lf.loop_orphan[0])
		sh(LVM_ENV "pvremove -q -ff -y %s >/dev/null 2>&1; "
		    "losetup -d %s", lf.loop_orphan, lf.loop_orphan);
	memset(&lf, 0, sizeof lf);
	return tmp_teardown(state);
}

static int
lvm_setup(void **state)
{
	char cmd[PATH_MAX + 128];

	memset(&lf, 0, sizeof lf);
	if (tmp_setup(state) != 0)
		return -1;
	if (geteuid() != 0 || !have("pvcreate") || !have("losetup") ||
	    !have("sfdisk") || !have("mkfs.vfat") ||
	    access("/dev/loop-control", F_OK) != 0)
		return 0;	/* the test skips */
	snprintf(lf.vg_a, sizeof lf.vg_a, "bstinv%da", (int)getpid());
	snprintf(lf.vg_b, sizeof lf.vg_b, "bstinv%db", (int)getpid());
	snprintf(lf.disk_img, sizeof lf.disk_img, "%s/disk.img", tmpdir);
	snprintf(lf.pv_img, sizeof lf.pv_img, "%s/pv.img", tmpdir);
	snprintf(lf.orphan_img, sizeof lf.orphan_img, "%s/orphan.img", tmpdir);
	if (make_gpt(lf.disk_img) != 0 ||
	    sh("truncate -s 16M %s %s", lf.pv_img, lf.orphan_img) != 0)
		goto fail;
	snprintf(cmd, sizeof cmd, "losetup -f --show -o %d --sizelimit %d %s",
	    59392 * 512, 32768 * 512, lf.disk_img);
	if (sh_out(lf.loop_part, sizeof lf.loop_part, cmd) == -1)
		goto fail;
	snprintf(cmd, sizeof cmd, "losetup -f --show %s", lf.pv_img);
	if (sh_out(lf.loop_whole, sizeof lf.loop_whole, cmd) == -1)
		goto fail;
	snprintf(cmd, sizeof cmd, "losetup -f --show %s", lf.orphan_img);
	if (sh_out(lf.loop_orphan, sizeof lf.loop_orphan, cmd) == -1)
		goto fail;
	if (sh(LVM_ENV "pvcreate -q -y %s %s %s >/dev/null", lf.loop_part,
	    lf.loop_whole, lf.loop_orphan) != 0 ||
	    sh(LVM_ENV "vgcreate -q %s %s >/dev/null", lf.vg_a,
	    lf.loop_part) != 0 ||
	    sh(LVM_ENV "vgcreate -q %s %s >/dev/null", lf.vg_b,
	    lf.loop_whole) != 0)
		goto fail;
	return 0;
fail:
	print_error("lvm_setup: could not build the LVM fixture\n");
	lvm_teardown(state);
	return -1;
}

static void
test_lvm_real_pvs(void **state)
{
	char vg[64];
	json_t *d;
	int fd;

	if (lf.vg_a[0] == '\0')
		skip();	/* not root, or no LVM tools / loop devices */

	d = json_object();
	assert_int_equal(inventory_probe(lf.pv_img, "vdb", d), 0);
	assert_null(get(d, "pttype"));
	assert_string_equal(gets_(d, "fstype"), "LVM2_member");
	assert_string_equal(gets_(d, "usage"), "raid");
	assert_string_equal(gets_(d, "lvm.vg"), lf.vg_b);
	assert_int_equal(strlen(gets_(d, "lvm.pv_uuid")), 38);
	json_decref(d);

	d = json_object();
	assert_int_equal(inventory_probe(lf.disk_img, "vda", d), 0);
	assert_string_equal(gets_(d, "partitions.0.fstype"), "ext4");
	assert_string_equal(gets_(d, "partitions.2.fstype"), "LVM2_member");
	assert_string_equal(gets_(d, "partitions.2.lvm.vg"), lf.vg_a);
	json_decref(d);

	/* Orphan: a PV, no VG. */
	d = json_object();
	assert_int_equal(inventory_probe(lf.orphan_img, "vdc", d), 0);
	assert_string_equal(gets_(d, "fstype"), "LVM2_member");
	assert_non_null(get(d, "lvm.pv_uuid"));
	assert_null(get(d, "lvm.vg"));
	json_decref(d);

	/* The same through the loop device itself (a block device). */
	assert_true((fd = open(lf.loop_whole, O_RDONLY)) != -1);
	assert_int_equal(inventory_lvm_vgname(fd, 0, vg, sizeof vg), 0);
	assert_string_equal(vg, lf.vg_b);
	close(fd);
}

/* A root with sys/block/{vda,vdb} and dev/{vda,vdb} = the images. */
static void
test_lvm_disks_and_volume_groups(void **state)
{
	static const char *const names[] = { "vda", "vdb", "vdc" };
	char root[PATH_MAX], *imgs[3];
	json_t *a = NULL, *vgs = NULL;
	int i;

	if (lf.vg_a[0] == '\0')
		skip();
	imgs[0] = lf.disk_img;
	imgs[1] = lf.pv_img;
	imgs[2] = lf.orphan_img;
	snprintf(root, sizeof root, "%s/root", tmpdir);
	for (i = 0; i < 3; i++)
		assert_int_equal(sh("mkdir -p %s/sys/block/%s/queue %s/dev && "
		    "echo $(($(stat -c %%s %s) / 512)) > %s/sys/block/%s/size && "
		    "echo 0 > %s/sys/block/%s/queue/rotational && "
		    "ln -s %s %s/dev/%s", root, names[i], root, imgs[i], root,
		    names[i], root, names[i], imgs[i], root, names[i]), 0);
	assert_int_equal(inventory_disks(root, 1, &a), 0);
	assert_int_equal(json_array_size(a), 3);
	assert_int_equal(geti(a, "0.size_bytes"), 48 << 20);
	assert_string_equal(gets_(a, "0.pttype"), "gpt");
	assert_string_equal(gets_(a, "1.lvm.vg"), lf.vg_b);

	assert_int_equal(inventory_volume_groups(a, &vgs), 0);
	assert_int_equal(json_array_size(vgs), 2);
	assert_string_equal(gets_(vgs, "0.name"), lf.vg_a);
	assert_string_equal(gets_(vgs, "0.pvs.0"), "vda3");
	assert_string_equal(gets_(vgs, "1.name"), lf.vg_b);
	assert_string_equal(gets_(vgs, "1.pvs.0"), "vdb");
	assert_int_equal(json_array_size(get(vgs, "1.pvs")), 1);
	json_decref(vgs);
	json_decref(a);
}

static void
test_volume_groups_sorted(void **state)
{
	json_t *disks, *vgs = NULL;

	disks = json_loads("[{\"name\":\"sdb\",\"lvm\":{\"vg\":\"zeta\"}},"
	    "{\"name\":\"sda\",\"partitions\":[{\"name\":\"sda1\"},"
	    "{\"name\":\"sda2\",\"lvm\":{\"vg\":\"alpha\"}}]},"
	    "{\"name\":\"sdc\",\"lvm\":{\"vg\":\"zeta\"}},"
	    "{\"name\":\"sdd\",\"lvm\":{}}]", 0, NULL);
	assert_non_null(disks);
	assert_int_equal(inventory_volume_groups(disks, &vgs), 0);
	assert_int_equal(json_array_size(vgs), 2);
	assert_string_equal(gets_(vgs, "0.name"), "alpha");
	assert_string_equal(gets_(vgs, "0.pvs.0"), "sda2");
	assert_string_equal(gets_(vgs, "1.name"), "zeta");
	assert_int_equal(json_array_size(get(vgs, "1.pvs")), 2);
	assert_string_equal(gets_(vgs, "1.pvs.1"), "sdc");
	json_decref(vgs);
	json_decref(disks);
}

/* --- report.c ---------------------------------------------------------- */

static void
test_backoff(void **state)
{
	struct report_opts o;
	int i;

	report_opts_default(&o);
	o.backoff_initial_ms = 1000;
	o.backoff_max_ms = 8000;
	/* Equal jitter: [d/2, d] with d = 1, 2, 4, 8, 8 ... s. */
	assert_int_equal(report_backoff_ms(&o, 1, 0), 500);
	assert_int_equal(report_backoff_ms(&o, 1, 500), 1000);
	assert_int_equal(report_backoff_ms(&o, 2, 0), 1000);
	assert_int_equal(report_backoff_ms(&o, 3, 0), 2000);
	assert_int_equal(report_backoff_ms(&o, 4, 0), 4000);
	assert_int_equal(report_backoff_ms(&o, 5, 0), 4000);
	assert_int_equal(report_backoff_ms(&o, 60, 0), 4000);
	for (i = 0; i < 1000; i++) {
		long d = report_backoff_ms(&o, 4, (uint32_t)rand());

		assert_in_range(d, 4000, 8000);
	}
	o.backoff_initial_ms = 0;
	assert_int_equal(report_backoff_ms(&o, 3, 12345), 0);
}

static void
test_report_url(void **state)
{
	char u[64];

	assert_int_equal(report_url("http://10.77.0.1:8080", u, sizeof u), 0);
	assert_string_equal(u, "http://10.77.0.1:8080/api/v1/discover");
	assert_int_equal(report_url("http://10.77.0.1:8080/", u, sizeof u), 0);
	assert_string_equal(u, "http://10.77.0.1:8080/api/v1/discover");
	assert_int_equal(report_url("https://b/x/discover", u, sizeof u), 0);
	assert_string_equal(u, "https://b/x/discover");
	assert_int_equal(report_url("ftp://b/", u, sizeof u), -1);
	assert_int_equal(report_url("http://", u, sizeof u), -1);
	assert_int_equal(report_url("http://a-very-long-host-name.example/",
	    u, 32), -1);
}

/* A scripted HTTP server: answers connection i with statuses[i]. */
struct script {
	int	 fd;
	int	 port;
	const int *statuses;
	int	 n;
	int	 served;
	char	 last_body[4096];
	char	 last_ctype[128];
};

static void *
serve(void *arg)
{
	struct script *s = arg;
	char req[8192], resp[256], *hdr_end, *cl, *ct;
	size_t got, need;
	ssize_t r;
	int c;

	for (; s->served < s->n; s->served++) {
		if ((c = accept(s->fd, NULL, NULL)) == -1)
			break;
		got = 0;
		hdr_end = NULL;
		need = 0;
		while (got < sizeof req - 1) {
			if ((r = read(c, req + got, sizeof req - 1 - got)) <= 0)
				break;
			got += (size_t)r;
			req[got] = '\0';
			if (hdr_end == NULL &&
			    (hdr_end = strstr(req, "\r\n\r\n")) != NULL) {
				cl = strcasestr(req, "Content-Length:");
				need = (size_t)(hdr_end + 4 - req) +
				    (cl ? strtoul(cl + 15, NULL, 10) : 0);
				ct = strcasestr(req, "Content-Type:");
				if (ct)
					snprintf(s->last_ctype,
					    sizeof s->last_ctype, "%.*s",
					    (int)strcspn(ct + 14, "\r"),
					    ct + 14);
			}
			if (hdr_end && got >= need)
				break;
		}
		if (hdr_end)
			snprintf(s->last_body, sizeof s->last_body, "%s",
			    hdr_end + 4);
		snprintf(resp, sizeof resp, "HTTP/1.1 %d X\r\n"
		    "Content-Type: application/json\r\nContent-Length: 11\r\n"
		    "Connection: close\r\n\r\n{\"ok\":%s}", s->statuses[s->served],
		    s->statuses[s->served] < 300 ? "true" : "0000");
		if (write(c, resp, strlen(resp)) < 0)
			break;
		close(c);
	}
	return NULL;
}

static void
script_start(struct script *s, pthread_t *t)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;

	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0))
	    != -1);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(s->fd, 8), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(t, NULL, serve, s), 0);
}

static enum report_transport transport = REPORT_CURL;

static int
use_curl(void **state)
{
	transport = REPORT_CURL;
	return 0;
}

static int
use_plain(void **state)
{
	transport = REPORT_PLAIN;
	return 0;
}

static void
fast_opts(struct report_opts *o)
{
	report_opts_default(o);
	o->transport = transport;
	o->backoff_initial_ms = 2;
	o->backoff_max_ms = 10;
	o->timeout_ms = 5000;
	o->max_attempts = 5;
}

static void
test_report_retries_then_succeeds(void **state)
{
	static const int statuses[] = { 503, 429, 200 };
	struct script s = { .statuses = statuses, .n = 3 };
	struct report_opts o;
	char url[64], *reply = NULL;
	long status = 0;
	pthread_t t;

	fast_opts(&o);
	script_start(&s, &t);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/discover",
	    s.port);
	assert_int_equal(report_post(url, "{\"mac\":\"x\"}", &o, &status,
	    &reply), 0);
	pthread_join(t, NULL);
	close(s.fd);
	assert_int_equal(s.served, 3);
	assert_int_equal(status, 200);
	assert_string_equal(reply, "{\"ok\":true}");
	assert_string_equal(s.last_body, "{\"mac\":\"x\"}");
	assert_string_equal(s.last_ctype, "application/json");
	free(reply);
}

static void
test_report_4xx_is_final(void **state)
{
	static const int statuses[] = { 422, 200 };
	struct script s = { .statuses = statuses, .n = 1 };
	struct report_opts o;
	char url[64];
	long status = 0;
	pthread_t t;

	fast_opts(&o);
	script_start(&s, &t);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/discover",
	    s.port);
	assert_int_equal(report_post(url, "{}", &o, &status, NULL), -1);
	pthread_join(t, NULL);
	close(s.fd);
	assert_int_equal(s.served, 1);
	assert_int_equal(status, 422);
}

static void
test_report_gives_up(void **state)
{
	static const int statuses[] = { 500, 502, 503 };
	struct script s = { .statuses = statuses, .n = 3 };
	struct report_opts o;
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	char url[64], *reply = NULL;
	long status = 0;
	pthread_t t;
	int fd;

	fast_opts(&o);
	o.max_attempts = 3;
	script_start(&s, &t);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", s.port);
	assert_int_equal(report_post(url, "{}", &o, &status, &reply), -1);
	pthread_join(t, NULL);
	close(s.fd);
	assert_int_equal(s.served, 3);
	assert_int_equal(status, 503);
	free(reply);

	/* Nobody listening: connection refused until the deadline. */
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/x", ntohs(a.sin_port));
	o.max_attempts = 1000;
	o.backoff_initial_ms = 40;
	o.backoff_max_ms = 80;
	o.deadline_ms = 300;
	assert_int_equal(report_post(url, "{}", &o, &status, NULL), -1);
	assert_int_equal(status, 0);
	close(fd);
}

/* The plain client: IPv6 literals, ports, paths; no https, no junk. */
static void
test_report_plain_urls(void **state)
{
	static const int statuses[] = { 200 };
	struct script s = { .statuses = statuses, .n = 1 };
	struct report_opts o;
	char url[64];
	long status = -1;
	pthread_t t;

	report_opts_default(&o);
	o.transport = REPORT_PLAIN;
	o.max_attempts = 1;
	script_start(&s, &t);
	snprintf(url, sizeof url, "http://localhost:%d/api/v1/discover?x=1",
	    s.port);
	assert_int_equal(report_post(url, "{\"a\":1}", &o, &status, NULL), 0);
	pthread_join(t, NULL);
	close(s.fd);
	assert_int_equal(status, 200);
	assert_string_equal(s.last_body, "{\"a\":1}");

	assert_int_equal(report_post("https://127.0.0.1:1/", "{}", &o,
	    &status, NULL), -1);
	assert_int_equal(status, 0);
	assert_int_equal(report_post("http://[::1:1/", "{}", &o, &status,
	    NULL), -1);
	assert_int_equal(report_post("http://127.0.0.1:8x/", "{}", &o,
	    &status, NULL), -1);
	assert_int_equal(report_post("http://[::1]:1/", "{}", &o, &status,
	    NULL), -1);	/* refused */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_join_root),
		cmocka_unit_test(test_clean_strings),
		cmocka_unit_test(test_read_missing_leaves_out),
		cmocka_unit_test(test_firmware),
		cmocka_unit_test(test_cpu_server_topology),
		cmocka_unit_test(test_cpu_qemu),
		cmocka_unit_test(test_cpu_no_topology),
		cmocka_unit_test_setup_teardown(test_cpu_cpuinfo_ids_only,
		    tmp_setup, tmp_teardown),
		cmocka_unit_test(test_cpu_missing),
		cmocka_unit_test(test_memory_server_dimms),
		cmocka_unit_test(test_memory_qemu),
		cmocka_unit_test(test_memory_meminfo_only),
		cmocka_unit_test(test_dmi_string_reader),
		cmocka_unit_test(test_dmi_server),
		cmocka_unit_test(test_dmi_qemu_and_absent),
		cmocka_unit_test(test_disks_server),
		cmocka_unit_test(test_disks_qemu),
		cmocka_unit_test(test_disks_no_sysfs),
		cmocka_unit_test(test_nics_server),
		cmocka_unit_test(test_nics_qemu),
		cmocka_unit_test(test_cmdline_files),
		cmocka_unit_test(test_cmdline_parse),
		cmocka_unit_test(test_collect_qemu_valid),
		cmocka_unit_test(test_collect_server_valid),
		cmocka_unit_test(test_collect_minimal),
		cmocka_unit_test_setup_teardown(test_probe_gpt_ext4_vfat,
		    tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_probe_dos_and_whole_disk,
		    tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_lvm_synthetic,
		    tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_lvm_real_pvs,
		    lvm_setup, lvm_teardown),
		cmocka_unit_test_setup_teardown(test_lvm_disks_and_volume_groups,
		    lvm_setup, lvm_teardown),
		cmocka_unit_test(test_volume_groups_sorted),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_report_url),
		cmocka_unit_test_setup(test_report_retries_then_succeeds,
		    use_curl),
		cmocka_unit_test_setup(test_report_4xx_is_final, use_curl),
		cmocka_unit_test_setup(test_report_gives_up, use_curl),
		cmocka_unit_test_setup(test_report_retries_then_succeeds,
		    use_plain),
		cmocka_unit_test_setup(test_report_4xx_is_final, use_plain),
		cmocka_unit_test_setup(test_report_gives_up, use_plain),
		cmocka_unit_test(test_report_plain_urls),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
