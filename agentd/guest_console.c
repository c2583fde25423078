/* guest_console.c — a guest's console relayed over a bastion stream
 * (bastion/stream.c, DESIGN §13): tty 0 of an LXC guest (liblxc
 * console_getfd) or the serial console of a VM (libvirt
 * virDomainOpenConsole on a virStream). Nothing listens on the node: a
 * thread long-polls the stream for the operator's keys and resizes, the
 * job's thread posts what the console prints, as `containers exec -it`
 * does (container.c).
 *
 * liblxc and libvirt are loaded when a console is first asked for
 * (dlopen), so agentd starts on a node without them; a console on such a
 * node is a job error that says which library is missing. agentd-static
 * cannot load shared libraries: it runs the node's own tools on a
 * pseudo-terminal instead (lxc-console, virsh console). */
#ifndef AGENTD_NO_CURL	/* the discovery image runs no guests */
#define LOG_SUBSYS "console"
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <pty.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <lxc/lxccontainer.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "agent.h"
#include "b64.h"
#include "clock.h"
#include "guest.h"
#include "log.h"

#define LXC_SONAME	"liblxc.so.1"
#define VIRT_SONAME	"libvirt.so.0"
#define VIRT_URI	"qemu:///system"
#define POLL_WAIT_S	20		/* the input long poll */
#define CHUNK		32768		/* bytes per output post */
#define VM_IDLE_MS	10		/* a VM console without data: look again */
#define BUSY_WAIT_MS	5000		/* for a console to be let go of */

/* --- the libraries, loaded once ------------------------------------------ */

static struct {
	pthread_once_t	 once;
	char		 err[256];	/* why not, "" when loaded */
	__typeof__(lxc_container_new)	*container_new;
	__typeof__(lxc_container_put)	*container_put;
} lxc = { PTHREAD_ONCE_INIT, "", NULL, NULL };

static struct {
	pthread_once_t	 once;
	char		 err[256];
	__typeof__(virConnectOpen)		*connect_open;
	__typeof__(virConnectClose)		*connect_close;
	__typeof__(virDomainLookupByName)	*lookup_name;
	__typeof__(virDomainLookupByUUIDString)	*lookup_uuid;
	__typeof__(virDomainFree)		*domain_free;
	__typeof__(virDomainOpenConsole)	*open_console;
	__typeof__(virStreamNew)		*stream_new;
	__typeof__(virStreamRecv)		*stream_recv;
	__typeof__(virStreamSend)		*stream_send;
	__typeof__(virStreamAbort)		*stream_abort;
	__typeof__(virStreamFree)		*stream_free;
	__typeof__(virGetLastErrorMessage)	*last_error;
	__typeof__(virEventRegisterDefaultImpl)	*event_register;
	__typeof__(virEventRunDefaultImpl)	*event_run;
} virt = { PTHREAD_ONCE_INIT, "", NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL };

/*
 * A static program cannot take shared libraries in: glibc's dlopen from a
 * static-pie binary brings a second C library beside the built-in one
 * (libvirt's crashed inside dlopen itself, liblxc's calls hung).
 * agentd-static runs the node's console tools instead (helper_open).
 */
#ifndef AGENTD_STATIC
/* Symbol name of h into *fp; 0 or -1 with err set. */
static int
sym(void *h, const char *name, void *fp, char *err, size_t errlen)
{
	union {
		void	*p;
		char	 b[sizeof(void *)];
	} u;

	memset(&u, 0, sizeof u);
	if ((u.p = dlsym(h, name)) == NULL) {
		snprintf(err, errlen, "the library has no %s", name);
		return -1;
	}
	memcpy(fp, u.b, sizeof u.b);
	return 0;
}


static void
lxc_load(void)
{
	void *h = dlopen(LXC_SONAME, RTLD_NOW | RTLD_LOCAL);

	if (h == NULL) {
		snprintf(lxc.err, sizeof lxc.err, "LXC is not installed on this "
		    "node (%s: %s)", LXC_SONAME, dlerror());
		return;
	}
	if (sym(h, "lxc_container_new", &lxc.container_new, lxc.err,
	    sizeof lxc.err) == -1 || sym(h, "lxc_container_put",
	    &lxc.container_put, lxc.err, sizeof lxc.err) == -1)
		lxc.container_new = NULL;
}

static void *
virt_loop(void *arg)
{
	for (;;)
		if (virt.event_run() == -1) {
			struct timespec ts = { 0, 100 * 1000000L };

			nanosleep(&ts, NULL);
		}
	return NULL;
}

static int
virt_loop_start(void)
{
	return agent_thread(NULL, virt_loop, NULL);
}

static void
virt_load(void)
{
	void *h = dlopen(VIRT_SONAME, RTLD_NOW | RTLD_LOCAL);
	char *e = virt.err;
	size_t n = sizeof virt.err;

	if (h == NULL) {
		snprintf(virt.err, sizeof virt.err, "libvirt is not installed on "
		    "this node (%s: %s)", VIRT_SONAME, dlerror());
		return;
	}
	if (sym(h, "virConnectOpen", &virt.connect_open, e, n) == -1 ||
	    sym(h, "virConnectClose", &virt.connect_close, e, n) == -1 ||
	    sym(h, "virDomainLookupByName", &virt.lookup_name, e, n) == -1 ||
	    sym(h, "virDomainLookupByUUIDString", &virt.lookup_uuid, e, n) ==
	    -1 || sym(h, "virDomainFree", &virt.domain_free, e, n) == -1 ||
	    sym(h, "virDomainOpenConsole", &virt.open_console, e, n) == -1 ||
	    sym(h, "virStreamNew", &virt.stream_new, e, n) == -1 ||
	    sym(h, "virStreamRecv", &virt.stream_recv, e, n) == -1 ||
	    sym(h, "virStreamSend", &virt.stream_send, e, n) == -1 ||
	    sym(h, "virStreamAbort", &virt.stream_abort, e, n) == -1 ||
	    sym(h, "virStreamFree", &virt.stream_free, e, n) == -1 ||
	    sym(h, "virGetLastErrorMessage", &virt.last_error, e, n) == -1 ||
	    sym(h, "virEventRegisterDefaultImpl", &virt.event_register, e, n) ==
	    -1 || sym(h, "virEventRunDefaultImpl", &virt.event_run, e, n) == -1) {
		virt.connect_open = NULL;
		return;
	}
	/* A non-blocking stream's data is read by libvirt's event loop:
	 * one, for every console, on a thread of its own for good. */
	if (virt.event_register() == -1 || virt_loop_start() == -1) {
		snprintf(virt.err, sizeof virt.err, "cannot start libvirt's "
		    "event loop");
		virt.connect_open = NULL;
	}
}

#endif /* !AGENTD_STATIC */

/* --- one console, either kind -------------------------------------------- */

struct console {
	const struct agent_conf	*c;
	const struct astream	*bs;		/* the bastion stream */
	enum guest_type		 type;
	/* LXC: the tty's multiplexer end, and the command socket that holds
	 * the tty while it is open. */
	struct lxc_container	*ct;
	int			 ptx, sock;
	pid_t			 helper;	/* agentd-static: the tool */
	/* VM */
	virConnectPtr		 conn;
	virDomainPtr		 dom;
	virStreamPtr		 st;
	volatile sig_atomic_t	 done;		/* either side is over */
	volatile sig_atomic_t	 closed;	/* the operator left */
	char			 why[256];	/* the guest's side ended: why */
};

static void
console_resize(struct console *k, long rows, long cols)
{
	struct winsize ws;

	/* A VM's serial line has no size: the guest asks its terminal. */
	if (k->ptx == -1 || rows < 1 || cols < 1 || rows > 1000 ||
	    cols > 1000)
		return;
	memset(&ws, 0, sizeof ws);
	ws.ws_row = (unsigned short)rows;
	ws.ws_col = (unsigned short)cols;
	ioctl(k->ptx, TIOCSWINSZ, &ws);
}

/* All of p to the console; 0 or -1. */
static int
console_write(struct console *k, const unsigned char *p, size_t n)
{
	struct timespec ts = { 0, VM_IDLE_MS * 1000000L };
	struct pollfd pf;
	ssize_t w;
	int s;

	while (n > 0 && !agent_stop) {
		if (k->st != NULL) {
			s = virt.stream_send(k->st, (const char *)p, n);
			if (s == -2) {
				nanosleep(&ts, NULL);
				continue;
			}
			if (s < 0)
				return -1;
			w = s;
		} else {
			pf.fd = k->ptx;
			pf.events = POLLOUT;
			pf.revents = 0;
			if (poll(&pf, 1, 10000) <= 0)
				return -1;
			if ((w = write(k->ptx, p, n)) == -1) {
				if (errno == EINTR || errno == EAGAIN)
					continue;
				return -1;
			}
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* What the console printed within wait_ms into buf: the count, 0 for
 * nothing yet, -1 when the console is over (why set). */
static ssize_t
console_read(struct console *k, char *buf, size_t n, int wait_ms)
{
	struct timespec ts = { 0, VM_IDLE_MS * 1000000L };
	struct pollfd pf;
	int64_t end = clock_mono_ms() + wait_ms;
	ssize_t r;
	int s;

	if (k->st != NULL) {
		do {
			s = virt.stream_recv(k->st, buf, n);
			if (s > 0)
				return s;
			if (s == 0) {
				snprintf(k->why, sizeof k->why, "the guest's "
				    "console closed");
				return -1;
			}
			if (s != -2) {
				snprintf(k->why, sizeof k->why, "the console "
				    "stream failed: %s", virt.last_error());
				return -1;
			}
			nanosleep(&ts, NULL);
		} while (clock_mono_ms() < end && !k->done);
		return 0;
	}
	pf.fd = k->ptx;
	pf.events = POLLIN;
	pf.revents = 0;
	if ((s = poll(&pf, 1, wait_ms)) == 0 || (s == -1 && errno == EINTR))
		return 0;
	if (s == -1 || (r = read(k->ptx, buf, n)) == 0 || (r == -1 && errno !=
	    EINTR && errno != EAGAIN)) {
		snprintf(k->why, sizeof k->why, "the guest's console closed "
		    "(stopped?)");
		return -1;
	}
	return r < 0 ? 0 : r;
}

#ifndef AGENTD_STATIC
static int
lxc_open(struct console *k, const char *guest, char *err, size_t errlen)
{
	struct timespec ts = { 0, 100 * 1000000L };
	int64_t until = clock_mono_ms() + BUSY_WAIT_MS;
	int tty = 0;

	pthread_once(&lxc.once, lxc_load);
	if (lxc.container_new == NULL) {
		snprintf(err, errlen, "%s", lxc.err);
		return -1;
	}
	if ((k->ct = lxc.container_new(guest, k->c->lxc_path)) == NULL) {
		snprintf(err, errlen, "liblxc cannot open %.64s in %.300s",
		    guest, k->c->lxc_path);
		return -1;
	}
	if (!k->ct->is_defined(k->ct)) {
		snprintf(err, errlen, "no LXC guest %.64s in %.300s", guest,
		    k->c->lxc_path);
		return -1;
	}
	if (!k->ct->is_running(k->ct)) {
		snprintf(err, errlen, "LXC guest %.64s is not running", guest);
		return -1;
	}
	/* tty 0 is the guest's /dev/console; liblxc lends it to one client
	 * at a time. A session just taken over lets go of it within a
	 * moment: wait for that, not longer. */
	while ((k->sock = k->ct->console_getfd(k->ct, &tty, &k->ptx)) < 0 &&
	    clock_mono_ms() < until && !agent_stop) {
		nanosleep(&ts, NULL);
		tty = 0;
	}
	if (k->sock < 0) {
		k->ptx = -1;
		snprintf(err, errlen, "the console of %.64s is in use on the node "
		    "(lxc-console?) or cannot be opened", guest);
		return -1;
	}
	fcntl(k->ptx, F_SETFD, FD_CLOEXEC);
	fcntl(k->sock, F_SETFD, FD_CLOEXEC);
	return 0;
}

static int
vm_open(struct console *k, const char *guest, char *err, size_t errlen)
{
	pthread_once(&virt.once, virt_load);
	if (virt.connect_open == NULL) {
		snprintf(err, errlen, "%s", virt.err);
		return -1;
	}
	if ((k->conn = virt.connect_open(VIRT_URI)) == NULL) {
		snprintf(err, errlen, "cannot reach libvirt at %s: %.300s", VIRT_URI,
		    virt.last_error());
		return -1;
	}
	if ((k->dom = virt.lookup_name(k->conn, guest)) == NULL &&
	    (k->dom = virt.lookup_uuid(k->conn, guest)) == NULL) {
		snprintf(err, errlen, "no VM %.64s in %s", guest, VIRT_URI);
		return -1;
	}
	if ((k->st = virt.stream_new(k->conn, VIR_STREAM_NONBLOCK)) == NULL) {
		snprintf(err, errlen, "libvirt: %.300s", virt.last_error());
		return -1;
	}
	/* One console per guest is bastion's rule (a forced session ends
	 * the other); a console held on the node itself (virsh console) is
	 * taken over. */
	if (virt.open_console(k->dom, NULL, k->st, VIR_DOMAIN_CONSOLE_FORCE) ==
	    -1) {
		snprintf(err, errlen, "the console of %.64s: %.300s", guest,
		    virt.last_error());
		return -1;
	}
	return 0;
}

#else
/*
 * agentd-static cannot load liblxc or libvirt (see NO_DLOPEN): it runs
 * the node's own console tool on a pseudo-terminal and relays that —
 * lxc-console (tty 0) or virsh console (--force). A tool that ends at
 * once (the console is still held by a session just taken over) is
 * started again for a moment.
 */
static int
helper_open(struct console *k, const char *guest, char *err, size_t errlen)
{
	char *const lxc_argv[] = { "lxc-console", "-n", (char *)guest, "-P",
	    (char *)k->c->lxc_path, "-t", "0", NULL };
	char *const vm_argv[] = { "virsh", "-q", "-c", VIRT_URI, "console",
	    "--force", (char *)guest, NULL };
	char *const *argv = k->type == GUEST_LXC ? lxc_argv : vm_argv;
	struct timespec ts = { 0, 100 * 1000000L };
	int64_t until = clock_mono_ms() + BUSY_WAIT_MS, t0;
	int st = 0;

	for (;;) {
		if ((k->helper = forkpty(&k->ptx, NULL, NULL, NULL)) == -1) {
			k->ptx = -1;
			snprintf(err, errlen, "cannot make a pseudo-terminal: %s",
			    strerror(errno));
			return -1;
		}
		if (k->helper == 0) {
			child_prepare();
			execvp(argv[0], argv);
			dprintf(2, "bastion: %s is not installed on this node "
			    "(%s)\r\n", argv[0], strerror(errno));
			_exit(127);
		}
		fcntl(k->ptx, F_SETFD, FD_CLOEXEC);
		/* Still there after a moment, or talking: it has the console. */
		t0 = clock_mono_ms();
		while (clock_mono_ms() - t0 < 700) {
			if (waitpid(k->helper, &st, WNOHANG) == k->helper) {
				k->helper = 0;
				break;
			}
			nanosleep(&ts, NULL);
		}
		if (k->helper > 0 || clock_mono_ms() >= until || agent_stop)
			break;
		/* Gone at once: try again, unless it is not installed. */
		if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
			break;
		close(k->ptx);
		k->ptx = -1;
	}
	return 0;	/* a tool that ended: its words reach the operator */
}
#endif /* AGENTD_STATIC */

static void
console_close(struct console *k)
{
	if (k->helper > 0) {
		struct timespec ts = { 0, 50 * 1000000L };
		int i;

		/* Its terminal goes (a hangup), then SIGTERM; SIGKILL after
		 * 2 s (virsh console waits on its own). */
		close(k->ptx);
		k->ptx = -1;
		kill(k->helper, SIGTERM);
		for (i = 0; i < 40 && waitpid(k->helper, NULL, WNOHANG) == 0; i++)
			nanosleep(&ts, NULL);
		if (i == 40) {
			kill(k->helper, SIGKILL);
			waitpid(k->helper, NULL, 0);
		}
		k->helper = 0;
	}
	if (k->st == NULL && k->conn == NULL) {
		if (k->ptx != -1)
			close(k->ptx);
		if (k->sock != -1)
			close(k->sock);
		if (k->ct)
			lxc.container_put(k->ct);
		return;
	}
	if (k->st) {
		virt.stream_abort(k->st);
		virt.stream_free(k->st);
	}
	if (k->dom)
		virt.domain_free(k->dom);
	if (k->conn)
		virt.connect_close(k->conn);
}

/* --- the stream (bastion/routes_stream.c) -------------------------------- */

/*
 * Keys for a console tool (agentd-static) that would act on them: for
 * lxc-console Ctrl-a is its escape (Ctrl-a q leaves), doubled it is one
 * Ctrl-a for the guest; virsh console leaves on Ctrl-], which the
 * operator's client keeps for itself anyway: dropped. raw itself
 * (changed in place, *len updated), or a new buffer the caller frees;
 * NULL when out of memory.
 */
static unsigned char *
helper_keys(struct console *k, unsigned char *raw, size_t *len)
{
	unsigned char *out;
	size_t i, n = 0, extra = 0;

	if (k->helper <= 0)
		return raw;
	if (k->type == GUEST_VM) {
		for (i = 0; i < *len; i++)
			if (raw[i] != 0x1d)
				raw[n++] = raw[i];
		*len = n;
		return raw;
	}
	for (i = 0; i < *len; i++)
		extra += raw[i] == 0x01;
	if (extra == 0)
		return raw;
	if ((out = malloc(*len + extra)) == NULL)
		return NULL;
	for (i = 0; i < *len; i++) {
		if (raw[i] == 0x01)
			out[n++] = 0x01;
		out[n++] = raw[i];
	}
	*len = n;
	return out;
}

/* The operator's keys and resizes into the console, until the stream or
 * the console is over. */
static void *
console_input(void *arg)
{
	struct console *k = arg;
	struct aclient *a = astream_client(k->bs);
	char path[160], err[256];
	unsigned char *raw, *keys;
	const char *data;
	json_t *reply, *rs;
	size_t len;
	long code;

	snprintf(path, sizeof path, "/agent/v1/streams/%s/input?wait=%d",
	    k->bs->sid, POLL_WAIT_S);
	while (a && !k->done && !agent_stop) {
		reply = NULL;
		code = aclient_call(a, "GET", path, NULL, (POLL_WAIT_S + 15) *
		    1000L, &reply, err, sizeof err);
		if (code != 200) {
			json_decref(reply);
			if (code == 0 && !k->done) {
				struct timespec ts = { 1, 0 };

				nanosleep(&ts, NULL);	/* bastion away: again */
				continue;
			}
			k->closed = 1;		/* the stream is gone */
			break;
		}
		if ((rs = json_object_get(reply, "resize")) != NULL)
			console_resize(k, (long)json_integer_value(json_array_get(
			    rs, 0)), (long)json_integer_value(json_array_get(rs,
			    1)));
		data = json_string_value(json_object_get(reply, "data"));
		if (data && *data && (raw = b64_decode(data, 1 << 20, &len)) !=
		    NULL) {
			keys = helper_keys(k, raw, &len);
			if (keys != NULL && console_write(k, keys, len) == -1 &&
			    k->why[0] == '\0')
				snprintf(k->why, sizeof k->why, "the guest's "
				    "console does not take input");
			if (keys != raw)
				free(keys);
			free(raw);
		}
		if (json_is_true(json_object_get(reply, "closed")) ||
		    json_is_true(json_object_get(reply, "ended")))
			k->closed = 1;
		json_decref(reply);
		if (k->closed)
			break;
	}
	k->done = 1;
	aclient_free(a);
	return NULL;
}

/* p to the operator, the last post when end (with exit code ec). */
static long
out(struct aclient *a, const struct astream *st, const char *p, size_t n,
    int end, int ec, int *closed)
{
	json_t *e = end ? json_integer(ec) : NULL;
	long code = astream_out(a, st, p, n, end, e, closed);

	json_decref(e);
	return code;
}

int
guest_console_run(const struct agent_conf *c, const char *guest,
    enum guest_type type, struct astream *st, struct job_output *jo)
{
	struct console k;
	struct aclient *a = NULL;
	char err[512], line[600], buf[CHUNK];
	pthread_t in;
	ssize_t n;
	int closed = 0, rc = 1;

	memset(&k, 0, sizeof k);
	k.c = c;
	k.bs = st;
	k.type = type;
	k.ptx = k.sock = -1;
	err[0] = '\0';
	if (!guest_name_valid(guest)) {
		snprintf(err, sizeof err, "guest names are ^[a-zA-Z0-9]"
		    "[a-zA-Z0-9_.-]{0,63}$");
		goto err_open;
	}
#ifdef AGENTD_STATIC
	if (helper_open(&k, guest, err, sizeof err) == -1)
		goto err_open;
#else
	if ((type == GUEST_LXC ? lxc_open(&k, guest, err, sizeof err) :
	    vm_open(&k, guest, err, sizeof err)) == -1)
		goto err_open;
#endif
	/* The console is open: now the stream, wherever it is (its
	 * operator sees "attached" from here). */
	if (astream_reach(st, err, sizeof err) == -1) {
		console_close(&k);
		goto err_client;
	}
	if ((a = astream_client(st)) == NULL) {
		snprintf(err, sizeof err, "cannot make a client for bastion");
		console_close(&k);
		goto err_client;
	}
	log_info("console of %s guest %s on stream %.8s…", guest_type_name(
	    type), guest, st->sid);
	if (pthread_create(&in, NULL, console_input, &k) != 0) {
		snprintf(err, sizeof err, "cannot start a thread");
		goto err_open;
	}
	/* The guest's output to the operator, until either side is over. */
	while (!k.done && !closed && !agent_stop) {
		if ((n = console_read(&k, buf, sizeof buf, 250)) == -1)
			break;
		if (n > 0 && out(a, st, buf, (size_t)n, 0, 0, &closed) == 0 &&
		    agent_stop)
			break;
	}
	k.done = 1;
	if (k.closed || closed) {
		snprintf(line, sizeof line, "the operator left the console of "
		    "%s\n", guest);
		rc = 0;
	} else if (agent_stop) {
		snprintf(line, sizeof line, "agentd is stopping: console of %s "
		    "ended\n", guest);
	} else {
		snprintf(line, sizeof line, "console of %s: %s\n", guest,
		    k.why[0] ? k.why : "ended");
		rc = 0;
	}
	job_output_add(jo, rc == 0 ? "stdout" : "stderr", line, strlen(line));
	/* Its end, to the operator (and the input poll). */
	if (!closed && !k.closed) {
		snprintf(line, sizeof line, "\r\n[%s]\r\n", k.why[0] ? k.why :
		    "console ended");
		out(a, st, line, strlen(line), 1, rc, &closed);
	} else {
		out(a, st, "", 0, 1, rc, &closed);
	}
	pthread_join(in, NULL);
	console_close(&k);
	aclient_free(a);
	return rc;

err_open:
	/* Say why in the operator's terminal too, and end the stream. */
	snprintf(line, sizeof line, "bastion: %s\r\n", err);
	if (a == NULL && astream_reach(st, buf, sizeof buf) == 0)
		a = astream_client(st);
	if (a != NULL)
		out(a, st, line, strlen(line), 1, 1, &closed);
	console_close(&k);
	aclient_free(a);
err_client:
	log_warnx("console of %s: %s", guest ? guest : "?", err);
	snprintf(line, sizeof line, "%s\n", err);
	job_output_add(jo, "stderr", line, strlen(line));
	return 1;
}

void
guest_console_refuse(const struct agent_conf *c, const json_t *args,
    const char *why)
{
	char line[600], err[512];
	struct astream st;
	struct aclient *a;
	int closed = 0;

	if (astream_parse(&st, c, args, err, sizeof err) == -1 ||
	    astream_reach(&st, err, sizeof err) == -1 ||
	    (a = astream_client(&st)) == NULL)
		return;		/* bastion ends it, hearing the job failed */
	snprintf(line, sizeof line, "bastion: %s\r\n", why);
	out(a, &st, line, strlen(line), 1, 1, &closed);
	aclient_free(a);
}
#endif /* AGENTD_NO_CURL */
