/* guest_libvirt.c — the libvirt driver (DESIGN §13): the VMs of
 * qemu:///system through libvirt's C API, for the report and the actions
 * of guest jobs.
 *
 * libvirt.so.0 is loaded with dlopen() for the reasons guest_lxc.c gives
 * (a node without it reports the driver absent; libvirt's dependencies
 * stay off nodes that have no VMs); the static agentd has no libvirt.
 *
 * Snapshots are internal (qcow2): Debian 12's libvirt 9.0 cannot revert
 * external ones. A domain's disks and NICs come from its XML, read with
 * a small scanner (attributes of <disk>, <interface> and their children;
 * libvirt writes that XML itself). */
#ifndef AGENTD_NO_CURL	/* the discovery image has no guests to run */
#define LOG_SUBSYS "libvirt"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "clock.h"
#include "log.h"

#ifdef AGENTD_STATIC
#define STATIC_WHY "the static agentd has no guest drivers (libvirt is a " \
	"shared library it cannot load); run the dynamic agentd"

json_t *
guest_libvirt_driver(const struct agent_conf *c)
{
	return json_pack("{s:s, s:s, s:s}", "state", "absent", "detail",
	    STATIC_WHY, "version", "");
}

int
guest_libvirt_list(const struct agent_conf *c, json_t *list, char *err,
    size_t errlen)
{
	snprintf(err, errlen, "%s", STATIC_WHY);
	return -1;
}

int
guest_libvirt_exists(const struct agent_conf *c, const char *name)
{
	return -1;
}

int
guest_libvirt_action(const struct agent_conf *c, const struct guest_job *gj,
    struct guest_out *o, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s", STATIC_WHY);
	return -1;
}
#else /* the dynamic agentd: libvirt.so.0 at run time */
#include <dlfcn.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#define LV_SONAME	"libvirt.so.0"
#define LV_URI		"qemu:///system"
#define SHUTDOWN_DEFAULT 120	/* seconds */
#define XML_MAX		(1024 * 1024)

#define LV_SYMS(X) X(virInitialize) X(virSetErrorFunc) \
	X(virGetLastErrorMessage) X(virConnectOpen) X(virConnectClose) \
	X(virConnectGetLibVersion) X(virConnectListAllDomains) \
	X(virDomainFree) X(virDomainGetName) X(virDomainGetUUIDString) \
	X(virDomainGetInfo) X(virDomainGetState) X(virDomainGetAutostart) \
	X(virDomainGetXMLDesc) X(virDomainLookupByName) X(virDomainCreate) \
	X(virDomainShutdown) X(virDomainDestroy) X(virDomainReboot) \
	X(virDomainSuspend) X(virDomainResume) X(virDomainGetBlockInfo) \
	X(virDomainInterfaceAddresses) X(virDomainInterfaceFree) \
	X(virDomainSnapshotCreateXML) X(virDomainSnapshotLookupByName) \
	X(virDomainRevertToSnapshot) X(virDomainSnapshotDelete) \
	X(virDomainSnapshotFree) X(virDomainListAllSnapshots) \
	X(virDomainSnapshotGetName) X(virDomainSnapshotIsCurrent) \
	X(virDomainSnapshotGetXMLDesc)
#define LV_FIELD(n) __typeof__(n) *n;
static struct {
	LV_SYMS(LV_FIELD)
} V;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_err[256] = "not loaded";	/* "" once loaded */

/* libvirt prints every error on stderr unless told otherwise: they are
 * in the job's result and the report instead. */
static void
quiet(void *ud, virErrorPtr e)
{
}

static void
load(void)
{
	void *h;

	if ((h = dlopen(LV_SONAME, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(load_err, sizeof load_err, "%s cannot be loaded (is "
		    "libvirt installed?): %s", LV_SONAME, dlerror());
		return;
	}
#define LV_LOAD(n) \
	if ((V.n = (__typeof__(V.n))dlsym(h, #n)) == NULL) { \
		snprintf(load_err, sizeof load_err, "%s has no %s", \
		    LV_SONAME, #n); \
		return; \
	}
	LV_SYMS(LV_LOAD)
#undef LV_LOAD
	if (V.virInitialize() < 0) {
		snprintf(load_err, sizeof load_err, "virInitialize failed");
		return;
	}
	V.virSetErrorFunc(NULL, quiet);
	load_err[0] = '\0';
}

static int
loaded(char *err, size_t errlen)
{
	pthread_once(&load_once, load);
	if (load_err[0]) {
		snprintf(err, errlen, "%s", load_err);
		return 0;
	}
	return 1;
}

static const char *
lverr(void)
{
	const char *m = V.virGetLastErrorMessage();

	return m ? m : "unknown libvirt error";
}

static virConnectPtr
conn_open(char *err, size_t errlen)
{
	virConnectPtr conn;

	if (!loaded(err, errlen))
		return NULL;
	if ((conn = V.virConnectOpen(LV_URI)) == NULL)
		snprintf(err, errlen, "%s: %s", LV_URI, lverr());
	return conn;
}

json_t *
guest_libvirt_driver(const struct agent_conf *c)
{
	unsigned long ver = 0;
	virConnectPtr conn;
	char err[512], v[32];

	if (!loaded(err, sizeof err))
		return json_pack("{s:s, s:s, s:s}", "state", "absent", "detail",
		    err, "version", "");
	if ((conn = conn_open(err, sizeof err)) == NULL)
		return json_pack("{s:s, s:s, s:s}", "state", "error", "detail",
		    err, "version", "");
	V.virConnectGetLibVersion(conn, &ver);
	V.virConnectClose(conn);
	snprintf(v, sizeof v, "%lu.%lu.%lu", ver / 1000000, ver / 1000 % 1000,
	    ver % 1000);
	return json_pack("{s:s, s:s, s:s}", "state", "ok", "detail", LV_URI,
	    "version", v);
}

/* --- the domain's XML ------------------------------------------------------ */

/* The value of attr in the first <tag ...> of [p, end), into out ("" when
 * none). */
static void
xml_attr(const char *p, const char *end, const char *tag, const char *attr,
    char *out, size_t len)
{
	char open[64], key[64];
	const char *t, *close, *a, *v;
	size_t n;

	out[0] = '\0';
	snprintf(open, sizeof open, "<%s ", tag);
	snprintf(key, sizeof key, " %s=", attr);
	if ((t = strstr(p, open)) == NULL || t >= end ||
	    (close = strchr(t, '>')) == NULL || close > end)
		return;
	for (a = t; (a = strstr(a, key)) != NULL && a < close; a++) {
		v = a + strlen(key);
		if (*v != '\'' && *v != '"')
			continue;
		n = strcspn(v + 1, *v == '\'' ? "'" : "\"");
		if (v + 1 + n > close)
			return;
		snprintf(out, len, "%.*s", (int)n, v + 1);
		return;
	}
}

/* Each <el ...>...</el> block of xml: fn(block start, end). */
static void
xml_each(const char *xml, const char *el, void (*fn)(const char *,
    const char *, void *), void *arg)
{
	char open[64], close[64];
	const char *p = xml, *e;

	snprintf(open, sizeof open, "<%s ", el);
	snprintf(close, sizeof close, "</%s>", el);
	while ((p = strstr(p, open)) != NULL) {
		if ((e = strstr(p, close)) == NULL)
			break;
		fn(p, e, arg);
		p = e;
	}
}

struct dom_ctx {
	virDomainPtr	 dom;
	json_t		*disks, *nics;
	virDomainInterfacePtr *ifaces;
	int		 nifaces;
};

static void
disk_of(const char *p, const char *end, void *arg)
{
	struct dom_ctx *d = arg;
	char dev[16], target[64], src[1024], fmt[32];
	virDomainBlockInfo bi;
	json_t *size = json_null();

	xml_attr(p, end, "disk", "device", dev, sizeof dev);
	if (strcmp(dev, "disk") != 0)
		return;
	xml_attr(p, end, "target", "dev", target, sizeof target);
	xml_attr(p, end, "source", "file", src, sizeof src);
	if (!src[0])
		xml_attr(p, end, "source", "dev", src, sizeof src);
	if (!src[0])
		xml_attr(p, end, "source", "name", src, sizeof src);
	xml_attr(p, end, "driver", "type", fmt, sizeof fmt);
	if (target[0] && V.virDomainGetBlockInfo(d->dom, target, &bi, 0) == 0)
		size = json_integer((json_int_t)bi.capacity);
	json_array_append_new(d->disks, json_pack("{s:s, s:s, s:s, s:o}",
	    "target", target, "source", src, "format", fmt, "size_bytes", size));
}

static void
nic_of(const char *p, const char *end, void *arg)
{
	struct dom_ctx *d = arg;
	char mac[32], net[256], type[32], ip[128];
	json_t *addrs = json_array();
	int i;
	unsigned k;

	xml_attr(p, end, "interface", "type", type, sizeof type);
	xml_attr(p, end, "mac", "address", mac, sizeof mac);
	xml_attr(p, end, "source", "network", net, sizeof net);
	if (!net[0])
		xml_attr(p, end, "source", "bridge", net, sizeof net);
	if (!net[0])
		snprintf(net, sizeof net, "%s", type);
	for (i = 0; i < d->nifaces; i++) {
		if (d->ifaces[i]->hwaddr == NULL ||
		    strcasecmp(d->ifaces[i]->hwaddr, mac) != 0)
			continue;
		for (k = 0; k < d->ifaces[i]->naddrs; k++) {
			snprintf(ip, sizeof ip, "%s/%u",
			    d->ifaces[i]->addrs[k].addr ?
			    d->ifaces[i]->addrs[k].addr : "",
			    d->ifaces[i]->addrs[k].prefix);
			json_array_append_new(addrs, json_string(ip));
		}
	}
	json_array_append_new(d->nics, json_pack("{s:s, s:s, s:o}", "mac", mac,
	    "network", net, "addresses", addrs));
}

static const char *
state_name(int st)
{
	switch (st) {
	case VIR_DOMAIN_RUNNING:
	case VIR_DOMAIN_BLOCKED:
		return "running";
	case VIR_DOMAIN_PAUSED:
	case VIR_DOMAIN_PMSUSPENDED:
		return "paused";
	case VIR_DOMAIN_SHUTDOWN:
		return "stopping";
	case VIR_DOMAIN_SHUTOFF:
		return "shutoff";
	case VIR_DOMAIN_CRASHED:
		return "crashed";
	default:
		return "unknown";
	}
}

/* <creationTime>N</creationTime> in ms, or 0. */
static json_int_t
snap_created(virDomainSnapshotPtr s)
{
	char *xml = V.virDomainSnapshotGetXMLDesc(s, 0), *p;
	json_int_t t = 0;

	if (xml && (p = strstr(xml, "<creationTime>")) != NULL)
		t = (json_int_t)strtoll(p + 14, NULL, 10) * 1000;
	free(xml);
	return t;
}

static json_t *
snapshots_json(virDomainPtr dom)
{
	virDomainSnapshotPtr *snaps = NULL;
	json_t *out = json_array();
	const char *name;
	int n, i;

	if ((n = V.virDomainListAllSnapshots(dom, &snaps, 0)) <= 0)
		return out;
	for (i = 0; i < n; i++) {
		name = V.virDomainSnapshotGetName(snaps[i]);
		if (name && guest_snap_valid(name))
			json_array_append_new(out, json_pack("{s:s, s:I, s:b}",
			    "name", name, "created", snap_created(snaps[i]),
			    "current", V.virDomainSnapshotIsCurrent(snaps[i], 0) ==
			    1));
		V.virDomainSnapshotFree(snaps[i]);
	}
	free(snaps);
	return out;
}

static json_t *
domain_json(virDomainPtr dom)
{
	struct dom_ctx d;
	virDomainInfo info;
	char uuid[VIR_UUID_STRING_BUFLEN] = "", *xml;
	const char *name = V.virDomainGetName(dom);
	int autostart = 0, i;
	json_t *g;

	if (name == NULL || !guest_name_valid(name) ||
	    V.virDomainGetInfo(dom, &info) < 0)
		return NULL;
	V.virDomainGetUUIDString(dom, uuid);
	V.virDomainGetAutostart(dom, &autostart);
	memset(&d, 0, sizeof d);
	d.dom = dom;
	d.disks = json_array();
	d.nics = json_array();
	if (info.state == VIR_DOMAIN_RUNNING && (d.nifaces =
	    V.virDomainInterfaceAddresses(dom, &d.ifaces,
	    VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, 0)) < 0)
		d.nifaces = 0;
	if ((xml = V.virDomainGetXMLDesc(dom, 0)) != NULL &&
	    strlen(xml) < XML_MAX) {
		xml_each(xml, "disk", disk_of, &d);
		xml_each(xml, "interface", nic_of, &d);
	}
	free(xml);
	for (i = 0; i < d.nifaces; i++)
		V.virDomainInterfaceFree(d.ifaces[i]);
	free(d.ifaces);
	g = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:b, s:o, s:o, s:o}",
	    "id", uuid, "name", name, "type", "vm", "state",
	    state_name(info.state), "vcpus", (json_int_t)info.nrVirtCpu,
	    "memory_mib", (json_int_t)(info.maxMem / 1024), "autostart",
	    autostart == 1, "disks", d.disks, "nics", d.nics, "snapshots",
	    snapshots_json(dom));
	return g;
}

int
guest_libvirt_list(const struct agent_conf *c, json_t *list, char *err,
    size_t errlen)
{
	virConnectPtr conn;
	virDomainPtr *doms = NULL;
	json_t *g;
	int n, i;

	if ((conn = conn_open(err, errlen)) == NULL)
		return -1;
	if ((n = V.virConnectListAllDomains(conn, &doms, 0)) < 0) {
		snprintf(err, errlen, "cannot list the domains: %s", lverr());
		V.virConnectClose(conn);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (json_array_size(list) < GUEST_REPORT_MAX &&
		    (g = domain_json(doms[i])) != NULL)
			json_array_append_new(list, g);
		V.virDomainFree(doms[i]);
	}
	free(doms);
	V.virConnectClose(conn);
	return 0;
}

int
guest_libvirt_exists(const struct agent_conf *c, const char *name)
{
	virConnectPtr conn;
	virDomainPtr dom;
	char err[512];

	if ((conn = conn_open(err, sizeof err)) == NULL)
		return -1;
	dom = V.virDomainLookupByName(conn, name);
	if (dom)
		V.virDomainFree(dom);
	V.virConnectClose(conn);
	return dom != NULL;
}

static int
dom_state(virDomainPtr dom)
{
	int st = VIR_DOMAIN_NOSTATE, reason;

	if (V.virDomainGetState(dom, &st, &reason, 0) < 0)
		return -1;
	return st;
}

/* Graceful: ask (ACPI), then wait for shutoff up to secs. */
static int
shutdown_dom(virDomainPtr dom, const char *name, long secs,
    struct guest_out *o, char *err, size_t errlen)
{
	int64_t end = clock_mono_ms() + secs * 1000;
	struct timespec ts = { 0, 200 * 1000000 };

	if (dom_state(dom) == VIR_DOMAIN_SHUTOFF) {
		guest_say(o, "stdout", "%s: already shut off", name);
		return 0;
	}
	if (V.virDomainShutdown(dom) < 0) {
		snprintf(err, errlen, "%s: %s", name, lverr());
		return -1;
	}
	guest_say(o, "stdout", "%s: asked to shut down; waiting up to %ld s",
	    name, secs);
	while (clock_mono_ms() < end && !agent_stop) {
		if (dom_state(dom) == VIR_DOMAIN_SHUTOFF) {
			guest_say(o, "stdout", "%s: shut down", name);
			return 0;
		}
		nanosleep(&ts, NULL);
	}
	snprintf(err, errlen, "%s did not shut down within %ld s (stop forces "
	    "it)", name, secs);
	return -1;
}

static int
snap_action(virDomainPtr dom, const struct guest_job *gj,
    struct guest_out *o, char *err, size_t errlen)
{
	virDomainSnapshotPtr s;
	char xml[256];
	int rc;

	if (strcmp(gj->action, "snapshot") == 0) {
		/* Names are [a-zA-Z0-9_.-]: nothing to escape in XML. */
		snprintf(xml, sizeof xml, "<domainsnapshot><name>%s</name>"
		    "<description>bastion</description></domainsnapshot>",
		    gj->snapshot);
		if ((s = V.virDomainSnapshotCreateXML(dom, xml, 0)) == NULL) {
			snprintf(err, errlen, "snapshot %s of %s: %s", gj->snapshot,
			    gj->guest, lverr());
			return -1;
		}
		V.virDomainSnapshotFree(s);
		guest_say(o, "stdout", "%s: snapshot %s taken (internal)",
		    gj->guest, gj->snapshot);
		return 0;
	}
	if ((s = V.virDomainSnapshotLookupByName(dom, gj->snapshot, 0)) ==
	    NULL) {
		snprintf(err, errlen, "%s has no snapshot %s", gj->guest,
		    gj->snapshot);
		return -1;
	}
	if (strcmp(gj->action, "rollback") == 0)
		rc = V.virDomainRevertToSnapshot(s, 0);
	else
		rc = V.virDomainSnapshotDelete(s, 0);
	if (rc < 0)
		snprintf(err, errlen, "%s %s of %s: %s", gj->action, gj->snapshot,
		    gj->guest, lverr());
	else
		guest_say(o, "stdout", "%s: %s %s", gj->guest,
		    strcmp(gj->action, "rollback") == 0 ? "rolled back to" :
		    "deleted snapshot", gj->snapshot);
	V.virDomainSnapshotFree(s);
	return rc < 0 ? -1 : 0;
}

int
guest_libvirt_action(const struct agent_conf *c, const struct guest_job *gj,
    struct guest_out *o, char *err, size_t errlen)
{
	virConnectPtr conn;
	virDomainPtr dom = NULL;
	const char *a = gj->action, *done = NULL;
	int rc = -1, st;

	if ((conn = conn_open(err, errlen)) == NULL)
		return -1;
	if ((dom = V.virDomainLookupByName(conn, gj->guest)) == NULL) {
		snprintf(err, errlen, "no VM %s on %s", gj->guest, LV_URI);
		goto out;
	}
	st = dom_state(dom);
	if (strcmp(a, "start") == 0) {
		if (st == VIR_DOMAIN_RUNNING || st == VIR_DOMAIN_BLOCKED)
			done = "already running";
		else if (V.virDomainCreate(dom) < 0)
			goto lverr;
		else
			done = "started";
	} else if (strcmp(a, "shutdown") == 0) {
		rc = shutdown_dom(dom, gj->guest, gj->timeout ? gj->timeout :
		    SHUTDOWN_DEFAULT, o, err, errlen);
		goto out;
	} else if (strcmp(a, "stop") == 0) {
		if (st == VIR_DOMAIN_SHUTOFF)
			done = "already shut off";
		else if (V.virDomainDestroy(dom) < 0)
			goto lverr;
		else
			done = "stopped (forced off)";
	} else if (strcmp(a, "reboot") == 0) {
		if (V.virDomainReboot(dom, 0) < 0)
			goto lverr;
		done = "rebooting";
	} else if (strcmp(a, "suspend") == 0) {
		if (V.virDomainSuspend(dom) < 0)
			goto lverr;
		done = "suspended";
	} else if (strcmp(a, "resume") == 0) {
		if (V.virDomainResume(dom) < 0)
			goto lverr;
		done = "resumed";
	} else if (guest_action_wants_snap(a)) {
		rc = snap_action(dom, gj, o, err, errlen);
		goto out;
	} else {
		snprintf(err, errlen, "%s is not a VM action", a);
		goto out;
	}
	guest_say(o, "stdout", "%s: %s", gj->guest, done);
	rc = 0;
	goto out;
lverr:
	snprintf(err, errlen, "%s %s: %s", a, gj->guest, lverr());
out:
	if (dom)
		V.virDomainFree(dom);
	V.virConnectClose(conn);
	return rc;
}
#endif /* AGENTD_STATIC */
#endif /* AGENTD_NO_CURL */
