/* install.c — `agentd install`: the plan, progress reports, running the
 * tools, and the order of the steps (see installer.h). */
#define _GNU_SOURCE
#define LOG_SUBSYS "install"
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "clock.h"
#include "http1.h"
#include "installer.h"
#include "inventory.h"
#include "log.h"

#define PLAN_MAX	(256 * 1024)
#define RUN_OUT_MAX	(1024 * 1024)

/* --- running the tools ---------------------------------------------------- */

/* Keeps the last line of what a tool printed (its complaint, usually). */
static void
keep_last_line(char *last, size_t lastlen, const char *p, size_t n)
{
	size_t i, start = 0, len;

	for (i = 0; i < n; i++)
		if (p[i] == '\n' && i + 1 < n)
			start = i + 1;
	len = n - start;
	while (len > 0 && (p[start + len - 1] == '\n' || p[start + len - 1] ==
	    '\r'))
		len--;
	if (len == 0)
		return;
	if (len >= lastlen)
		len = lastlen - 1;
	memcpy(last, p + start, len);
	last[len] = '\0';
	for (i = 0; i < len; i++)
		if ((unsigned char)last[i] < 0x20)
			last[i] = ' ';
}

/* bastion.debug: where an install's time goes, command by command, and
 * whether the one CPU of an emulated machine was what it waited for. */
static void
cpu_idle_ticks(long long t[2])
{
	long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "re");

	t[0] = t[1] = 0;
	if (f == NULL)
		return;
	if (fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld", &v[0],
	    &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
		t[0] = v[3] + v[4];	/* idle and iowait */
		for (int i = 0; i < 8; i++)
			t[1] += v[i];
	}
	fclose(f);
}

static int
cpu_idle_since(const long long before[2])
{
	long long now[2];

	cpu_idle_ticks(now);
	return now[1] > before[1] ? (int)(100 * (now[0] - before[0]) /
	    (now[1] - before[1])) : 0;
}

int
install_run(const char *const argv[], const char *root, int in_fd,
    struct buf *out, char *err, size_t errlen)
{
	int opipe[2] = { -1, -1 }, epipe[2] = { -1, -1 }, status, open_fds;
	char chunk[4096], last[200] = "";
	struct pollfd pf[2];
	int64_t started = clock_mono_ms();
	long long idle_before[2];
	pid_t pid;
	ssize_t n;

	if (log_is_debug())
		cpu_idle_ticks(idle_before);

	if (pipe2(epipe, O_CLOEXEC) == -1 || (out && pipe2(opipe, O_CLOEXEC) ==
	    -1)) {
		snprintf(err, errlen, "%s: pipe: %s", argv[0], strerror(errno));
		goto err_pipe;
	}
	if ((pid = fork()) == -1) {
		snprintf(err, errlen, "%s: fork: %s", argv[0], strerror(errno));
		goto err_pipe;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		child_prepare();

		if (dup2(in_fd >= 0 ? in_fd : null, 0) == -1 ||
		    dup2(out ? opipe[1] : epipe[1], 1) ==
		    -1 ||
		    dup2(epipe[1], 2) == -1)
			_exit(127);
		if (root && (chroot(root) == -1 || chdir("/") == -1)) {
			dprintf(2, "chroot %s: %s\n", root, strerror(errno));
			_exit(127);
		}
		setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
		setenv("LC_ALL", "C", 1);
		execvp(argv[0], (char *const *)argv);
		dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(epipe[1]);
	epipe[1] = -1;
	if (out) {
		close(opipe[1]);
		opipe[1] = -1;
	}
	pf[0].fd = epipe[0];
	pf[1].fd = out ? opipe[0] : -1;
	pf[0].events = pf[1].events = POLLIN;
	open_fds = out ? 2 : 1;
	while (open_fds > 0) {
		if (poll(pf, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP |
			    POLLERR)))
				continue;
			n = read(pf[i].fd, chunk, sizeof chunk);
			if (n <= 0) {
				pf[i].fd = -1;
				open_fds--;
			} else if (i == 0) {
				keep_last_line(last, sizeof last, chunk, (size_t)n);
			} else if (buf_add(out, chunk, (size_t)n) == -1) {
				/* Too much to parse: drained, then refused. */
				out->len = out->max + 1;
			}
		}
	}
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (log_is_debug())
		log_debug("%s %s: %lld ms, %d%% of it the CPU idle", argv[0],
		    argv[1] ? argv[1] : "", (long long)(clock_mono_ms() -
		    started), cpu_idle_since(idle_before));
	close(epipe[0]);
	if (out)
		close(opipe[0]);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		/* What a command that exits 0 whatever happened said last
		 * (the lvm shell): for the caller that checks the outcome. */
		snprintf(err, errlen, "%s", last);
		if (out && out->len > out->max) {
			snprintf(err, errlen, "%s: more output than %zu bytes",
			    argv[0], out->max);
			return -1;
		}
		return 0;
	}
	if (WIFEXITED(status))
		snprintf(err, errlen, "%s: exit %d%s%s", argv[0],
		    WEXITSTATUS(status), last[0] ? ": " : "", last);
	else
		snprintf(err, errlen, "%s: killed by signal %d%s%s", argv[0],
		    WTERMSIG(status), last[0] ? ": " : "", last);
	return -1;
err_pipe:
	for (int i = 0; i < 2; i++) {
		if (epipe[i] >= 0)
			close(epipe[i]);
		if (opipe[i] >= 0)
			close(opipe[i]);
	}
	return -1;
}

/* The installer's image has no crypto.c (agent_random): the kernel's
 * generator directly. */
int
install_random(unsigned char *p, size_t n, char *why, size_t whylen)
{
	if (getrandom(p, n, 0) != (ssize_t)n) {
		snprintf(why, whylen, "getrandom: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int
install_uuid4(unsigned char u[16], char *text, size_t len, char *why,
    size_t whylen)
{
	if (install_random(u, 16, why, whylen) == -1)
		return -1;
	u[6] = (u[6] & 0x0f) | 0x40;	/* version 4: random */
	u[8] = (u[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
	snprintf(text, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4], u[5],
	    u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
	return 0;
}

int
install_part_node(const char *disk, int n, char *out, size_t len)
{
	size_t l = strlen(disk);
	int w;

	/* A name ending in a digit takes a "p" before the number. */
	w = snprintf(out, len, "/dev/%s%s%d", disk, l &&
	    isdigit((unsigned char)disk[l - 1]) ? "p" : "", n);
	return w < 0 || (size_t)w >= len ? -1 : 0;
}

/* --- the plan ------------------------------------------------------------ */

static int
charset_ok(const char *s, size_t min, size_t max, const char *set)
{
	size_t n = strlen(s);

	return n >= min && n <= max && strspn(s, set) == n;
}

#define LOWER_DIGITS	"abcdefghijklmnopqrstuvwxyz0123456789"

static int
url_ok(const char *s)
{
	size_t i;

	if (strncmp(s, "http://", 7) != 0 || strlen(s) >= INST_URLMAX)
		return 0;
	for (i = 0; s[i]; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f ||
		    strchr("\"'\\`", s[i]))
			return 0;
	return 1;
}

static int
hex64_ok(const char *s)
{
	return charset_ok(s, 64, 64, "0123456789abcdef");
}

/* A string member into out; 0 or -1 with why. */
static int
get_str(const json_t *o, const char *key, char *out, size_t len,
    char *why, size_t whylen)
{
	const char *v = json_string_value(json_object_get(o, key));

	if (v == NULL || strlen(v) >= len) {
		snprintf(why, whylen, "plan: %s is missing or too long", key);
		return -1;
	}
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

static int
mount_ok(const char *m)
{
	if (strcmp(m, "swap") == 0)
		return 1;
	return m[0] == '/' && charset_ok(m, 1, 63, LOWER_DIGITS "/_.-") &&
	    strstr(m, "//") == NULL && strstr(m, "/.") == NULL &&
	    (m[1] == '\0' || m[strlen(m) - 1] != '/');
}

static int
parse_volumes(const json_t *vols, struct inst_plan *p, char *why,
    size_t whylen)
{
	static const char *const fstypes[] = { "xfs", "ext4", "ext3", "ext2",
	    "swap", NULL };
	const json_t *v;
	size_t i;
	int j, root = 0, grow = 0;

	if (!json_is_array(vols) || json_array_size(vols) == 0 ||
	    json_array_size(vols) > INST_MAX_VOLUMES) {
		snprintf(why, whylen, "plan: storage.volumes must hold 1-%d "
		    "volumes", INST_MAX_VOLUMES);
		return -1;
	}
	json_array_foreach(vols, i, v) {
		struct inst_volume *x = &p->vol[i];
		json_int_t size = json_integer_value(json_object_get(v,
		    "size_mb"));
		const char *g = json_string_value(json_object_get(v, "grow"));
		const char *k = json_string_value(json_object_get(v, "preserve"));

		if (get_str(v, "name", x->name, sizeof x->name, why, whylen) ||
		    get_str(v, "mount", x->mount, sizeof x->mount, why, whylen) ||
		    get_str(v, "fstype", x->fstype, sizeof x->fstype, why, whylen))
			return -1;
		if (!charset_ok(x->name, 1, 39, LOWER_DIGITS "_") ||
		    !mount_ok(x->mount) || size < 1 || size > (1LL << 30) ||
		    g == NULL || k == NULL) {
			snprintf(why, whylen, "plan: volume %zu is not valid", i);
			return -1;
		}
		for (j = 0; fstypes[j] && strcmp(fstypes[j], x->fstype); j++)
			;
		if (fstypes[j] == NULL || ((strcmp(x->fstype, "swap") == 0) !=
		    (strcmp(x->mount, "swap") == 0))) {
			snprintf(why, whylen, "plan: volume %s: filesystem %s",
			    x->name, x->fstype);
			return -1;
		}
		for (j = 0; j < (int)i; j++)
			if (strcmp(p->vol[j].name, x->name) == 0 ||
			    strcmp(p->vol[j].mount, x->mount) == 0) {
				snprintf(why, whylen, "plan: volume %s twice",
				    x->name);
				return -1;
			}
		x->size_mb = (long)size;
		x->grow = strcmp(g, "yes") == 0;
		x->preserve = strcmp(k, "yes") == 0;
		root += strcmp(x->mount, "/") == 0;
		grow += x->grow;
	}
	p->nvol = (int)json_array_size(vols);
	if (root != 1 || grow > 1) {
		snprintf(why, whylen, "plan: the layout needs one / and at most "
		    "one growing volume");
		return -1;
	}
	return 0;
}

/* image.root: the root filesystem image (XFS) and the rest, or nothing. */
static int
parse_root_image(const json_t *r, struct inst_plan *p, char *why,
    size_t whylen)
{
	const json_t *rest = json_object_get(r, "rest");
	char fstype[8];

	if (r == NULL)
		return 0;
	if (!json_is_object(r) || !json_is_object(rest) ||
	    get_str(r, "url", p->root_url, sizeof p->root_url, why, whylen) ||
	    get_str(r, "sha256", p->root_sha256, sizeof p->root_sha256, why,
	    whylen) || get_str(r, "fstype", fstype, sizeof fstype, why,
	    whylen) || get_str(rest, "url", p->rest_url, sizeof p->rest_url,
	    why, whylen) || get_str(rest, "sha256", p->rest_sha256,
	    sizeof p->rest_sha256, why, whylen)) {
		snprintf(why, whylen, "plan: image.root is not valid");
		return -1;
	}
	p->root_size = json_integer_value(json_object_get(r, "size"));
	p->root_bytes = json_integer_value(json_object_get(r, "bytes"));
	p->rest_size = json_integer_value(json_object_get(rest, "size"));
	if (!url_ok(p->root_url) || !url_ok(p->rest_url) ||
	    !hex64_ok(p->root_sha256) || !hex64_ok(p->rest_sha256) ||
	    strcmp(fstype, "xfs") != 0 || p->root_size <= 0 ||
	    p->root_size > (64LL << 30) || p->root_bytes < p->root_size ||
	    p->root_bytes > (64LL << 30) || p->rest_size <= 0 ||
	    p->rest_size > (64LL << 30)) {
		snprintf(why, whylen, "plan: image.root is not valid");
		return -1;
	}
	return 0;
}

static int
parse_keys(const json_t *keys, struct inst_plan *p, char *why, size_t whylen)
{
	const json_t *k;
	size_t i;

	if (!json_is_array(keys) || json_array_size(keys) > INST_MAX_KEYS) {
		snprintf(why, whylen, "plan: ssh_keys must be an array of at "
		    "most %d keys", INST_MAX_KEYS);
		return -1;
	}
	json_array_foreach(keys, i, k) {
		const char *s = json_string_value(k);

		/* One line each: authorized_keys is line-based. */
		if (s == NULL || strlen(s) > 8192 || strpbrk(s, "\r\n") ||
		    (strncmp(s, "ssh-", 4) && strncmp(s, "ecdsa-", 6) &&
		    strncmp(s, "sk-", 3))) {
			snprintf(why, whylen, "plan: ssh_keys[%zu] is not a "
			    "public key line", i);
			return -1;
		}
		p->keys[i] = s;
	}
	p->nkeys = (int)json_array_size(keys);
	p->keys_json = json_incref((json_t *)keys);
	return 0;
}

int
install_plan_parse(const json_t *j, struct inst_plan *out, char *why,
    size_t whylen)
{
	const json_t *st = json_object_get(j, "storage"),
	    *img = json_object_get(j, "image"), *ag = json_object_get(j, "agent");
	struct inst_plan p;
	char mac[64];

	memset(&p, 0, sizeof p);
	if (!json_is_object(st) || !json_is_object(img) || !json_is_object(ag)) {
		snprintf(why, whylen, "plan: storage, image and agent are needed");
		return -1;
	}
	if (get_str(j, "mac", mac, sizeof mac, why, whylen) ||
	    get_str(j, "hostname", p.hostname, sizeof p.hostname, why, whylen) ||
	    get_str(j, "os", p.os, sizeof p.os, why, whylen) ||
	    get_str(j, "role", p.role, sizeof p.role, why, whylen) ||
	    get_str(j, "progress_url", p.progress_url, sizeof p.progress_url,
	    why, whylen) ||
	    get_str(st, "disk", p.disk, sizeof p.disk, why, whylen) ||
	    get_str(st, "vg", p.vg, sizeof p.vg, why, whylen) ||
	    get_str(img, "url", p.image_url, sizeof p.image_url, why, whylen) ||
	    get_str(img, "sha256", p.image_sha256, sizeof p.image_sha256, why,
	    whylen) ||
	    get_str(ag, "server", p.server, sizeof p.server, why, whylen) ||
	    get_str(ag, "ca_fingerprint", p.ca_fingerprint,
	    sizeof p.ca_fingerprint, why, whylen) ||
	    get_str(ag, "token", p.token, sizeof p.token, why, whylen) ||
	    get_str(ag, "agentd_url", p.agentd_url, sizeof p.agentd_url, why,
	    whylen) ||
	    get_str(ag, "agentd_sha256", p.agentd_sha256,
	    sizeof p.agentd_sha256, why, whylen) ||
	    get_str(ag, "unit_url", p.unit_url, sizeof p.unit_url, why,
	    whylen) ||
	    get_str(ag, "unit_sha256", p.unit_sha256, sizeof p.unit_sha256, why,
	    whylen))
		return -1;
	if (mac_normalize(mac, p.mac) == -1 ||
	    !charset_ok(p.hostname, 1, 253, LOWER_DIGITS ".-") ||
	    p.hostname[0] == '-' || p.hostname[0] == '.' ||
	    !charset_ok(p.os, 1, 31, LOWER_DIGITS "._-") ||
	    !charset_ok(p.role, 1, 31, LOWER_DIGITS "_-") ||
	    !charset_ok(p.disk, 1, 31, LOWER_DIGITS "_-") ||
	    !charset_ok(p.vg, 1, 31, LOWER_DIGITS "_") ||
	    !url_ok(p.progress_url) || !url_ok(p.image_url) ||
	    !url_ok(p.agentd_url) || !url_ok(p.unit_url) ||
	    !hex64_ok(p.image_sha256) || !hex64_ok(p.agentd_sha256) ||
	    !hex64_ok(p.unit_sha256) ||
	    (strncmp(p.server, "https://", 8) != 0 || !charset_ok(p.server, 9,
	    299, LOWER_DIGITS "ABCDEFGHIJKLMNOPQRSTUVWXYZ:/.[]-_")) ||
	    !charset_ok(p.ca_fingerprint, 8, 99, "sha256:0123456789abcdefABCDEF") ||
	    !charset_ok(p.token, 16, 79, LOWER_DIGITS)) {
		snprintf(why, whylen, "plan: a field has characters or a length "
		    "it may not have");
		return -1;
	}
	p.reprovision = json_is_true(json_object_get(j, "reprovision"));
	p.image_size = json_integer_value(json_object_get(img, "size"));
	p.efi_mb = (long)json_integer_value(json_object_get(st, "efi_size_mb"));
	p.boot_mb = (long)json_integer_value(json_object_get(st,
	    "boot_size_mb"));
	if (p.image_size <= 0 || p.image_size > (64LL << 30) || p.efi_mb < 32 ||
	    p.efi_mb > 4096 || p.boot_mb < 128 || p.boot_mb > 8192) {
		snprintf(why, whylen, "plan: image size or partition sizes out of "
		    "range");
		return -1;
	}
	snprintf(p.version, sizeof p.version, "%s", json_string_value(
	    json_object_get(j, "version")) ? json_string_value(
	    json_object_get(j, "version")) : "");
	if (!charset_ok(p.version, 0, 31, LOWER_DIGITS "._-+~"))
		p.version[0] = '\0';
	if (parse_root_image(json_object_get(img, "root"), &p, why, whylen) ==
	    -1)
		return -1;
	if (parse_volumes(json_object_get(st, "volumes"), &p, why, whylen) ==
	    -1 || parse_keys(json_object_get(j, "ssh_keys"), &p, why, whylen) ==
	    -1)
		return -1;
	/* The root image is XFS: fstab would name another filesystem. */
	for (int i = 0; i < p.nvol && p.root_url[0]; i++)
		if (strcmp(p.vol[i].mount, "/") == 0 && strcmp(p.vol[i].fstype,
		    "xfs") != 0) {
			snprintf(why, whylen, "plan: image.root is XFS, the root "
			    "volume %s", p.vol[i].fstype);
			install_plan_free(&p);
			return -1;
		}
	*out = p;
	return 0;
}

void
install_plan_free(struct inst_plan *p)
{
	json_decref(p->keys_json);
	p->keys_json = NULL;
	p->nkeys = 0;
}

/* --- progress ------------------------------------------------------------ */

/*
 * Reports go out from a thread of their own, in order: each is a POST to
 * bastion (a connection, a database write there) that the install need
 * not wait for. A report within a stage that finds the one before it
 * still waiting replaces it (its percentage is newer); a new stage's is
 * always sent. The last one (done, error) is waited for: the node reboots
 * or powers off right after.
 */
#define PQ_MAX	32

static struct {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	char		*body[PQ_MAX];
	int		 forced[PQ_MAX];
	int		 head, n, busy, started;
	const char	*url;
} pq = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, { NULL },
    { 0 }, 0, 0, 0, 0, NULL };

static void
progress_post(const char *url, const char *body)
{
	struct report_opts o;
	long status;

	report_opts_default(&o);
	o.transport = REPORT_PLAIN;
	o.max_attempts = 5;
	o.deadline_ms = 30000;
	if (report_post(url, body, &o, &status, NULL) == -1)
		log_warnx("progress not recorded (status %ld): %.120s", status,
		    body);
}

static void *
progress_thread(void *arg)
{
	char *body;

	for (;;) {
		pthread_mutex_lock(&pq.mu);
		while (pq.n == 0)
			pthread_cond_wait(&pq.cv, &pq.mu);
		body = pq.body[pq.head];
		pq.head = (pq.head + 1) % PQ_MAX;
		pq.n--;
		pq.busy = 1;
		pthread_mutex_unlock(&pq.mu);
		progress_post(pq.url, body);
		free(body);
		pthread_mutex_lock(&pq.mu);
		pq.busy = 0;
		pthread_cond_broadcast(&pq.cv);
		pthread_mutex_unlock(&pq.mu);
	}
	return arg;
}

/* Every report queued so far sent (or given up on). */
static void
progress_flush(void)
{
	pthread_mutex_lock(&pq.mu);
	while (pq.n > 0 || pq.busy)
		pthread_cond_wait(&pq.cv, &pq.mu);
	pthread_mutex_unlock(&pq.mu);
}

/* body (malloc'd) to the thread; sent here when there is none. */
static void
progress_queue(const char *url, char *body, int forced)
{
	int last;

	pthread_mutex_lock(&pq.mu);
	if (!pq.started) {
		pq.url = url;
		pq.started = agent_thread(NULL, progress_thread, NULL) == 0 ?
		    1 : -1;
	}
	if (pq.started == -1) {
		pthread_mutex_unlock(&pq.mu);
		progress_post(url, body);
		free(body);
		return;
	}
	last = (pq.head + pq.n - 1) % PQ_MAX;
	if (pq.n > 0 && !forced && !pq.forced[last]) {
		free(pq.body[last]);
		pq.body[last] = body;
	} else {
		while (pq.n == PQ_MAX)
			pthread_cond_wait(&pq.cv, &pq.mu);
		last = (pq.head + pq.n) % PQ_MAX;
		pq.body[last] = body;
		pq.forced[last] = forced;
		pq.n++;
	}
	pthread_cond_broadcast(&pq.cv);
	pthread_mutex_unlock(&pq.mu);
}

void
install_progress(struct inst_plan *p, const char *stage, int percent,
    int force, const char *fmt, ...)
{
	static char last_stage[16];
	static long last_ms;
	static int last_pct = -1;
	char msg[200], *body;
	long now = clock_mono_ms();
	json_t *j;
	va_list ap;
	int new_stage;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	new_stage = strcmp(stage, last_stage) != 0;
	/* A new stage always; within one, every 2 % and 2 s at most. */
	if (!force && !new_stage && (percent - last_pct < 2 ||
	    now - last_ms < 2000))
		return;
	snprintf(last_stage, sizeof last_stage, "%s", stage);
	last_pct = percent;
	last_ms = now;
	log_info("%s %d%%: %s", stage, percent, msg);
	if ((j = json_pack("{s:s, s:i, s:s}", "stage", stage, "percent",
	    percent, "message", msg)) == NULL)
		return;
	body = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (body == NULL)
		return;
	progress_queue(p->progress_url, body, force || new_stage);
	/* The end of the install: the reboot must not cut it off. */
	if (strcmp(stage, "done") == 0 || strcmp(stage, "error") == 0)
		progress_flush();
}

/* --- the steps ----------------------------------------------------------- */

long
install_get(const char *url, struct buf *body, int (*sink)(void *,
    const char *, size_t), void *ctx, long timeout_ms, char *err,
    size_t errlen)
{
	struct h1_url u;
	struct h1_sock s = { -1, NULL };
	struct h1_io io;
	struct h1_reply r;
	struct buf req;
	long deadline = clock_mono_ms() + timeout_ms;

	r.status = 0;
	if (h1_url_parse(url, &u) == -1 || u.tls) {
		snprintf(err, errlen, "%.200s: not a plain http:// URL", url);
		return 0;
	}
	if ((s.fd = h1_connect(&u, deadline, NULL, err, errlen)) == -1)
		return 0;
	h1_io_socket(&io, &s);
	io.sink = sink;
	io.sink_ctx = ctx;
	buf_init(&req, 8192);
	if (h1_request(&req, "GET", &u, u.path, NULL, NULL, 0, 1) == -1)
		snprintf(err, errlen, "URL too long");
	else if (io.write(io.ctx, req.data, req.len, deadline, err, errlen) ==
	    -1 || h1_read_reply(&io, 0, body, deadline, &r, err, errlen) == -1)
		r.status = 0;
	buf_free(&req);
	close(s.fd);
	return r.status;
}

static int
fetch_plan(const char *url, struct inst_plan *p, char *why, size_t whylen)
{
	struct buf body;
	json_error_t je;
	json_t *j = NULL;
	long status = 0;
	int attempt, rc = -1;

	buf_init(&body, PLAN_MAX);
	/* Retried only while nothing answers: a plan is handed out once per
	 * installer boot, and an answer other than 200 is final. */
	for (attempt = 0; attempt < 10; attempt++) {
		body.len = 0;
		if ((status = install_get(url, &body, NULL, NULL, 60000, why,
		    whylen)) != 0)
			break;
		log_warnx("plan: %s; retrying", why);
		sleep(1 + attempt);
	}
	if (status != 200) {
		if (status != 0)
			snprintf(why, whylen, "the plan was refused (HTTP %ld): "
			    "%.200s", status, body.data ? body.data : "");
		goto out;
	}
	if ((j = json_loadb(body.data, body.len, JSON_REJECT_DUPLICATES, &je))
	    == NULL || !json_is_object(j)) {
		snprintf(why, whylen, "plan: not a JSON object");
		goto out;
	}
	rc = install_plan_parse(j, p, why, whylen);
out:
	json_decref(j);
	buf_free(&body);
	return rc;
}

static void
finish(int ok)
{
	sync();
	log_info("%s", ok ? "installed; rebooting from the disk" :
	    "the install failed; powering off (the disk was left as the "
	    "report says)");
	fflush(NULL);
	if (reboot(ok ? RB_AUTOBOOT : RB_POWER_OFF) == -1)
		log_warn("reboot");
}

int
install_main(const char *plan_url, int dry_run)
{
	struct inst_plan p;
	struct inst_disk d;
	char why[INST_ERRLEN];
	int have_plan = 0;

	memset(&p, 0, sizeof p);
	if (fetch_plan(plan_url, &p, why, sizeof why) == -1) {
		/* Without a plan there is no progress URL to tell bastion. */
		log_warnx("%s", why);
		goto fail;
	}
	have_plan = 1;
	log_info("plan: %s as %s (%s) on %s%s", p.hostname, p.role, p.os,
	    p.disk, p.reprovision ? ", keeping preserved volumes" : "");
	if (dry_run) {
		install_plan_free(&p);
		return 0;
	}
	install_progress(&p, "pre", 1, 1, "installer started: %s on %s",
	    p.os, p.disk);
	install_disk_modules_start();	/* beside the download */
	if (mkdir(INST_WORK, 0700) == -1 && errno != EEXIST) {
		snprintf(why, sizeof why, "%s: %s", INST_WORK, strerror(errno));
		goto fail;
	}
	if (install_image_fetch(&p, why, sizeof why) == -1)
		goto fail;
	if (install_disk_prepare(&p, &d, why, sizeof why) == -1)
		goto fail;
	if (install_image_write(&p, why, sizeof why) == -1 ||
	    install_image_configure(&p, &d, why, sizeof why) == -1) {
		install_disk_release(&p, 1);
		goto fail;
	}
	install_disk_release(&p, 0);
	install_progress(&p, "done", 100, 1, "%s installed on %s", p.os,
	    p.disk);
	install_plan_free(&p);
	finish(1);
	return 0;
fail:
	if (have_plan) {
		log_warnx("%s", why);
		install_progress(&p, "error", 100, 1, "%.190s", why);
		install_plan_free(&p);
	}
	if (!dry_run)
		finish(0);
	return 1;
}
