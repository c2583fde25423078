/* agent.h — agentd's enrolled life: its configuration (conf.c), the
 * mTLS client (client.c), enrollment and renewal (enroll.c), the daemon
 * loop (run.c), jobs (jobs.c) and the reconnect backoff (backoff.c).
 *
 * The state dir holds key.pem (0600, made here, never sent), cert.pem,
 * ca.pem (pinned by its fingerprint at first contact), agent.json (id,
 * certificate lifetime, pinned job keys), nonces (jobs already accepted)
 * and spool/ (job results not yet acknowledged by bastion). */
#ifndef AGENTD_AGENT_H
#define AGENTD_AGENT_H

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "envelope.h"
#include "guest.h"
#include "mac.h"
#include "secret.h"

#define AGENT_URL_LEN		512
#define AGENT_SERVERS_MAX	8	/* server = URL1, URL2, … */
#define AGENT_MAX_KEYS		8
#define AGENT_BACKOFF_MIN_MS	1000
#define AGENT_BACKOFF_MAX_MS	60000
#define ACLIENT_REPLY_MAX	(4 * 1024 * 1024)

/* Job kinds a node may accept (accept = ... in agentd.conf). */
enum {
	ACCEPT_EXEC = 1 << 0,
	ACCEPT_REBOOT = 1 << 1,
	ACCEPT_REPROVISION = 1 << 2,
	ACCEPT_INVENTORY = 1 << 3,
	ACCEPT_CONTAINERS = 1 << 4,	/* job kind "container" */
	ACCEPT_GUESTS = 1 << 5,		/* job kind "guest" */
};

/* Guest drivers a node may have ([agent] guests = libvirt,lxc). */
enum {
	GUESTS_LIBVIRT = 1 << 0,
	GUESTS_LXC = 1 << 1,
};

struct agent_conf {
	char		path[PATH_MAX];
	/* https://host:port of each bastion, tried in turn (failover):
	 * agent_server() is the one in use. */
	char		servers[AGENT_SERVERS_MAX][AGENT_URL_LEN];
	int		nservers;
	char		ca_fingerprint[160];	/* "sha256:hex", lower-case */
	char		token[80];
	char		state_dir[PATH_MAX];
	unsigned	accept;			/* ACCEPT_* */
	char		accept_text[128];
	char		hostname[254];		/* "" = gethostname() */
	char		mac[MAC_STRLEN];	/* "" = the NIC that routes to
						 * server, else the boot NIC */
	char		reboot_command[256];
	char		efibootmgr[PATH_MAX];
	char		inventory_root[PATH_MAX];
	char		smartctl[PATH_MAX];	/* "" = no SMART */
	char		docker_socket[108];	/* "" = no Docker reports */
	unsigned	guests;			/* GUESTS_*; 0 = no guest reports */
	char		lxc_path[PATH_MAX];	/* where LXC keeps containers */
	int		transient;		/* TRANSIENT_*: transient.c */
};

/* The bastion in use, and a count that changes when agentd moves to the
 * next one (clients made before it notice and follow). */
const char *agent_server(const struct agent_conf *);
unsigned agent_server_turn(void);
/* After a failure that another bastion might not have: the next server
 * of the list (no-op with one). */
void	agent_server_next(const struct agent_conf *);

/* --- child.c ----------------------------------------------------------- */
/* In a forked child: every descriptor above 2 closes at exec; no signal
 * blocked, SIGPIPE back to its default. */
void	child_prepare(void);

/* --- transient.c ------------------------------------------------------- */
/* [agent] transient_units = auto | yes | no: whether what needs root's
 * full rights runs in transient systemd units (auto: when agentd is a
 * systemd service). */
enum { TRANSIENT_AUTO, TRANSIENT_YES, TRANSIENT_NO };

struct transient_opts {
	const char	*unit;		/* "agentd-job-42"; NULL: systemd's */
	const char	*description;
	const char	*cwd;		/* NULL: / */
	char *const	*envp;		/* the unit's environment; NULL: none */
	const char	*property;	/* one more, "Name=value"; NULL: none */
	long		 max_s;		/* RuntimeMaxSec=; 0: none */
	int		 quiet;		/* transient_capture: stderr dropped */
	int		 hush;		/* no "Started" lines from systemd
					 * (LogLevelMax=notice): a unit
					 * made every few seconds */
};

/* Whether this process should use transient units (mode TRANSIENT_*). */
int	transient_detect(int mode);
/* Once, at start: decides for the process. */
void	transient_init(const struct agent_conf *);
int	transient_on(void);
/* agentd's own unit ("agentd.service"; "" if unknown). */
const char *transient_unit(void);
/* This executable's path ("" if unknown). */
const char *transient_self(void);
/* s with every '$' doubled (systemd's command-line expansion). */
char	*transient_escape(const char *s);
/* systemd-run's argv running argv in a transient unit; NULL when out of
 * memory. Freed with transient_free. */
char	**transient_argv(char *const argv[], const struct transient_opts *);
void	transient_free(char **);
/* Run argv (argv[0] looked up in PATH) in a transient unit when transient_on(), else
 * as a child: its stdout, at most max bytes, into *out (NUL-terminated,
 * the caller frees; out may be NULL), stdin /dev/null; killed after
 * timeout_ms (0: never). *status: its exit status, -1 if it was killed
 * or died of a signal. 0, or -1 when it could not be started. */
int	transient_capture(char *const argv[], const struct transient_opts *,
	    size_t max, long timeout_ms, char **out, int *status);

/* --- conf.c ------------------------------------------------------------ */
/* Defaults, then the file; problems are printed as file:line: message. */
int	agent_conf_load(const char *path, struct agent_conf *);
/* "exec,reboot" -> ACCEPT_* bits; -1 on an unknown kind. */
int	agent_accept_parse(const char *, unsigned *);
int	agent_accepts(const struct agent_conf *, const char *kind);
/* state_dir/name into out. 0 or -1. */
int	agent_path(const struct agent_conf *, const char *name, char *out,
	    size_t len);

/* --- backoff.c --------------------------------------------------------- */
/* Wait before reconnect attempt `attempt` (1 = after the first failure):
 * 1 s doubling to 60 s, equal jitter (a random half of the step added to
 * its other half), never under 1 s. rnd is a random 32-bit value. */
long	agent_backoff_ms(int attempt, uint32_t rnd);

/* --- client.c (libcurl) or client_tls.c (the static node build) -------- */
struct aclient;
struct buf;

/* Once per process, before any client. 0 or -1. */
int	aclient_global_init(void);
void	aclient_global_cleanup(void);

/* mtls: present the agent certificate; either way only the pinned CA
 * (state_dir/ca.pem) is trusted. */
struct aclient *aclient_new(const struct agent_conf *, int mtls);
/* The same for one bastion named by url (a stream's, from a signed job;
 * h1_url_base_valid): with the same pinned CA, name check and agent
 * certificate, and never following the failover of agent_server().
 * NULL when url is not one. */
struct aclient *aclient_new_at(const struct agent_conf *, const char *url,
	    int mtls);
void	aclient_free(struct aclient *);
/* One request; body may be NULL. Returns the HTTP status, or 0 with err
 * set when no answer came. *reply (may be NULL) gets the parsed JSON
 * answer or NULL. agent_stop set (a signal) ends the transfer early. */
long	aclient_call(struct aclient *, const char *method, const char *path,
	    const json_t *body, long timeout_ms, json_t **reply, char *err,
	    size_t errlen);
/*
 * First contact, before any CA is pinned: GET path from the server without
 * verifying it (the caller checks what came against the pin). The HTTP
 * status, or 0 with err set; *body (NUL-terminated, at most max bytes) is
 * the caller's to free.
 */
long	aclient_fetch_unverified(const struct agent_conf *, const char *path,
	    size_t max, char **body, char *err, size_t errlen);
/* The transport under aclient_call: payload (JSON text, may be NULL) out,
 * the answer's body into resp. The status, or 0 with err set. */
long	aclient_raw(struct aclient *, const char *method, const char *path,
	    const char *payload, long timeout_ms, struct buf *resp, char *err,
	    size_t errlen);
/* The agent's key and certificate were replaced (a renewal): connections
 * made from now on present the new ones. */
void	aclient_credentials_changed(void);
/* Error message of a JSON error answer, or "". */
const char *aclient_error_message(const json_t *reply);

/* crypto.c: the agent's own cryptography, on mbedTLS. */
#define AGENT_CN_LEN	256
/* mbedTLS's f_rng: getrandom(2). 0, or an mbedTLS error. */
int	agent_random(void *, unsigned char *, size_t);
/* SHA-256 of s as lowercase hex. */
void	agent_sha256_hex(const char *s, size_t len, char out[SECRET_HEXLEN]);
/* Whether n bytes of a and b are the same, in constant time. */
int	agent_equal(const char *a, const char *b, size_t n);
/* The first certificate of pem alone, as PEM (*out malloc'd). 0 or -1. */
int	agent_first_cert_pem(const char *pem, char **out);
/* The raw key of an Ed25519 public key's PEM. 0 or -1. */
int	agent_ed25519_pem(const char *pem, unsigned char pub[ENVELOPE_PUBLEN]);
/* A new EC P-256 key and a CSR for it, both PEM (malloc'd; the caller
 * wipes the key). 0 or -1. */
int	agent_key_csr(const char *cn, char **key_pem, char **csr_pem);
/* "sha256:hex" of a PEM certificate's DER (the first). 0 or -1. */
int	agent_fingerprint(const char *pem, char out[80]);

extern volatile sig_atomic_t agent_stop;

/* --- enroll.c ---------------------------------------------------------- */
struct agent_state {
	char		 agent_id[ENVELOPE_AGENT_LEN];
	int64_t		 not_before, not_after;	/* unix seconds */
	struct envelope_key keys[AGENT_MAX_KEYS];
	size_t		 nkeys;
};

/* Whether the state dir holds a certificate and its key. */
int	agent_enrolled(const struct agent_conf *);
/* Enroll with the token from the config. 0, or -1; *retry says whether
 * trying again later may help (no answer, 429, 5xx). */
int	agent_enroll(const struct agent_conf *, int *retry);
/* The MAC of the interface this machine reaches the server through (the
 * source address a connection to it gets; no default route needed). 0,
 * or -1 when none with a MAC does (lo, no route, a name that does not
 * resolve). */
int	agent_route_mac(const struct agent_conf *, char out[MAC_STRLEN]);
int	agent_state_load(const struct agent_conf *, struct agent_state *);
void	agent_state_free(struct agent_state *);
/* New key, CSR, POST /agent/v1/renew, install the new certificate. */
int	agent_renew(const struct agent_conf *, struct agent_state *);

/* --- trim.c ------------------------------------------------------------ */
/* Once start-up is over: free heap to the system, mark the file-backed
 * pages (text) reclaimable so that only what is used again stays. */
void	agent_trim(void);
/* Before any thread starts: malloc tuned for a mostly idle daemon. */
void	agent_malloc_init(void);

/* --- scratch.c: a thread's short-lived JSON, off the heap ---------------- */
struct scratch {
	struct scratch	*outer;
	size_t		 mark;
};
/* Once, before any thread starts: jansson allocates through scratch.c
 * (malloc wherever no scratch is open). */
void	scratch_init(void);
/* From open to close (same function, innermost first), what jansson
 * allocates on this thread comes from pages that the close unmaps. */
void	scratch_open(struct scratch *);
void	scratch_close(struct scratch *);
/* A thread that opened scratches hands their space back as it ends. */
void	scratch_thread_done(void);

/* --- run.c ------------------------------------------------------------- */
int	agent_run(const struct agent_conf *);

/* --- helper.c: what runs in transient units ------------------------------ */
/* `agentd -f FILE helper ...` (argv after "helper"); an exit status. */
int	helper_main(const struct agent_conf *, int argc, char **argv);
/* The inventory (with probe: libblkid on the disks), in a transient unit
 * under systemd. 0 or -1. */
int	agent_inventory(const struct agent_conf *, int probe, json_t **out);
/* The guest report (guest_report_build), with LXC in a transient unit
 * under systemd; NULL if it could not be made. */
json_t	*agent_guest_report(const struct agent_conf *);

/* --- jobs.c ------------------------------------------------------------ */
struct jobs;

struct jobs *jobs_new(const struct agent_conf *, struct agent_state *);
void	jobs_free(struct jobs *);
/* A job from the poll ({id, envelope, sig, key_id}): verify, apply the
 * local policy, start it (or spool a refusal). */
void	jobs_handle(struct jobs *, const json_t *job);
/* `agentd helper job`: the exec or guest job read from in ({id, kind,
 * args}), run here; its result spooled, not sent. An exit status. */
int	jobs_helper(const struct agent_conf *, FILE *in);
/* Send spooled results; 0 when the spool is empty afterwards. */
int	jobs_flush(struct jobs *, struct aclient *);
int	jobs_running(struct jobs *);
/* Wait up to ms for the job threads to end; how many still run. */
int	jobs_drain(struct jobs *, long ms);
/* The heartbeat body: load, memory, root file system, uptime. */
json_t	*agent_heartbeat_json(struct jobs *);

/* --- health.c ---------------------------------------------------------- */
/* Add load, cpus, memory, mounts, temperatures and SMART (cached) to a
 * heartbeat body (DESIGN §14), read below c->inventory_root. */
void	health_add(const struct agent_conf *, json_t *hb);
/* One disk's SMART summary ({device, passed, celsius?, model?}) from
 * `smartctl --json` output, or NULL when it carries no verdict. */
json_t	*health_smart_parse(const char *dev, const char *text);
/* A job on a thread of its own (exec, container): jobs.c starts it,
 * counts it and marks it running on disk; the thread ends with
 * job_thread_done(), which frees it and its args. */
struct job_thread {
	struct jobs	*j;
	int64_t		 id;
	json_t		*args;
	const char	*kind;		/* "exec", "guest", "container" */
};
void	job_thread_done(struct job_thread *);
const struct agent_conf *job_conf(const struct job_thread *);

/* A running job's output, sent to bastion in numbered base64 chunks
 * (stdout or stderr); what bastion has not acknowledged stays pending
 * (at most 8 MiB: more is dropped and truncated set). */
struct job_output {
	json_t	*pending;	/* chunks not yet acknowledged */
	long	 pending_bytes;
	int64_t	 seq;
	int	 truncated;
};
void	job_output_add(struct job_output *, const char *stream, const char *p,
	    size_t n);
/* POST the pending chunks (with always, also none: "it runs"). */
void	job_output_send(struct aclient *, int64_t id, struct job_output *,
	    int always);
/* Spool the job's result (taking it) and try to deliver it now. */
void	job_finish(struct jobs *, struct aclient *, int64_t id,
	    json_t *result);

/* --- docker.c: the engine on its local unix socket ----------------------- */
struct docker;

struct docker *docker_new(const char *socket_path);
void	docker_free(struct docker *);
/* GET /version: the API version both sides speak. 0 or -1 with err. */
int	docker_negotiate(struct docker *, char *err, size_t errlen);
const char *docker_api_version(const struct docker *);
const char *docker_engine_version(const struct docker *);
/* A streamed answer (logs, exec): sink gets the body as it comes, tick
 * every quarter second of silence; -1 from either ends the stream. */
struct docker_stream {
	int	(*sink)(void *ctx, const char *p, size_t n);
	int	(*tick)(void *ctx);
	void	*ctx;
};
/*
 * One request to /vVERSION + path (negotiated first if need be); body is
 * JSON text or NULL. The answer's body goes into resp, or with st to its
 * sink as it comes. The HTTP status (a stream cut short by its time limit
 * or its sink still has one, and err says why), or 0 with err set (no
 * answer; the version is asked again next time).
 */
long	docker_call(struct docker *, const char *method, const char *path,
	    const char *body, long timeout_ms, struct buf *resp,
	    const struct docker_stream *, char *err, size_t errlen);
/* The same with JSON in and out (*out: the answer, may be NULL); err
 * holds the engine's message for a status >= 300. */
long	docker_json(struct docker *, const char *method, const char *path,
	    const json_t *body, long timeout_ms, size_t max, json_t **out,
	    char *err, size_t errlen);

/* POST path with body, asking the engine to turn the connection into the
 * process's raw stream (exec start with a TTY): the connected socket
 * (non-blocking), or -1 with err. */
int	docker_hijack(struct docker *, const char *path, const char *body,
	    char *err, size_t errlen);

/* --- thread.c ------------------------------------------------------------ */
/* fn(arg) on a new thread with every signal blocked: detached, or
 * joinable into *joinable. 0 or -1. */
int	agent_thread(pthread_t *joinable, void *(*fn)(void *), void *arg);
/* A reporter's thread: fn runs until stop (or agent_stop). */
struct agent_reporter {
	pthread_t		 t;
	int			 running;
	volatile sig_atomic_t	 stop;
	const struct agent_conf	*c;
};
int	agent_reporter_start(struct agent_reporter *, const struct agent_conf *,
	    void *(*fn)(void *), const char *what);
void	agent_reporter_stop(struct agent_reporter *);

/* --- docker_report.c ----------------------------------------------------- */
/* The heartbeat interval bastion asked for (run.c keeps it): reports go
 * at least this often. */
extern volatile sig_atomic_t agent_interval_s;
/* Set once bastion has answered a heartbeat: reports wait for it. */
extern volatile sig_atomic_t agent_heard;
/* The thread that pushes snapshots to bastion (nothing without
 * docker_socket). 0 or -1. */
int	docker_reporter_start(const struct agent_conf *);
void	docker_reporter_stop(void);

/* --- container.c: jobs of kind "container" -------------------------------- */
void	*container_thread(void *job_thread);

/* --- guests (DESIGN §13): guest.c, guest_lxc.c, guest_libvirt.c,
 * guest_report.c ------------------------------------------------------- */
/* "libvirt,lxc" -> GUESTS_* bits; -1 on an unknown driver. */
int	agent_guests_parse(const char *, unsigned *);

/* What a guest job's action writes as it goes: job output chunks, sent
 * every so often. */
struct guest_out {
	struct aclient		*a;
	int64_t			 id;
	struct job_output	*out;
	int64_t			 last_send;
};
void	guest_say(struct guest_out *, const char *stream, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* Data as it comes (an attached command's output). */
void	guest_out_add(struct guest_out *, const char *stream, const char *p,
	    size_t n);

/* A guest job's fields, checked (guest.c; the node never trusts what
 * bastion checked). */
struct guest_job {
	char		 action[24];
	char		 guest[GUEST_NAME_MAX + 1];
	int		 has_type;
	enum guest_type	 type;
	char		 snapshot[GUEST_SNAP_MAX + 1];	/* "" = none */
	long		 timeout;	/* seconds; 0 = the action's default */
	const json_t	*argv;		/* guard: the change (borrowed) */
	const json_t	*health;	/* guard: the health check (borrowed) */
	int		 keep_snapshot;
	char		 stream[33];	/* console */
};
/* args -> *gj, or -1 with why: unknown action or field, a name or
 * snapshot name off the rules, a missing snapshot, argv that is not 1 to
 * GUEST_ARGV_MAX strings, a timeout out of range. */
int	guest_job_parse(const json_t *args, struct guest_job *gj, char *why,
	    size_t whylen);
void	*guest_thread(void *job_thread);

/* A driver: its state for the report ({state: ok|absent|error, detail,
 * version}), its guests appended to list (each as GUESTS.md says), and
 * the actions. Every driver function returns 0 or -1 with err set. Both
 * load their library at run time (dlopen): a node without it reports the
 * driver absent; the static agentd has neither (see guest_lxc.c). */
json_t	*guest_lxc_driver(const struct agent_conf *);
int	guest_lxc_list(const struct agent_conf *, json_t *list, char *err,
	    size_t errlen);
/* 1 when the container exists, 0 when not, -1 (driver unusable). */
int	guest_lxc_exists(const struct agent_conf *, const char *name);
/* start shutdown stop reboot suspend resume snapshot rollback
 * snapshot-delete. */
int	guest_lxc_action(const struct agent_conf *, const struct guest_job *,
	    struct guest_out *, char *err, size_t errlen);
/* Run argv (JSON strings) inside the running container, output to o,
 * for at most timeout_s: its exit status into *status (0-255; 124 when
 * its time ran out, 127 when it could not be run). */
int	guest_lxc_attach(const struct agent_conf *, const char *name,
	    const json_t *argv, long timeout_s, struct guest_out *o,
	    int *status, char *err, size_t errlen);
/* Whether the container runs: 1, 0, or -1. */
int	guest_lxc_running(const struct agent_conf *, const char *name);

json_t	*guest_libvirt_driver(const struct agent_conf *);
int	guest_libvirt_list(const struct agent_conf *, json_t *list, char *err,
	    size_t errlen);
int	guest_libvirt_exists(const struct agent_conf *, const char *name);
int	guest_libvirt_action(const struct agent_conf *,
	    const struct guest_job *, struct guest_out *, char *err,
	    size_t errlen);

/* The report (GUESTS.md): {drivers, guests}. */
json_t	*guest_report_build(const struct agent_conf *);
/* The thread that pushes it (nothing without guests). 0 or -1. */
int	guest_reporter_start(const struct agent_conf *);
void	guest_reporter_stop(void);

/* --- stream.c: the node's side of an interactive stream ----------------- */
struct astream {
	const struct agent_conf	*c;
	char			 sid[33];
	char			 url[AGENT_URL_LEN];	/* "": own bastion */
	int			 reached;	/* 1 yes, -1 no, 0 not tried */
	char			 why[960];	/* when not (bastion takes 1024) */
};
/* The job's stream (32 hex digits) and stream_url (optional: the bastion
 * that holds it, h1_url_base_valid) into *s. 0, or -1 with why. */
int	astream_parse(struct astream *, const struct agent_conf *,
	    const json_t *args, char *why, size_t whylen);
/* Find the stream (once; later calls say the same): at stream_url if it
 * answers there, else at the agent's own bastion. 0, or -1 with why
 * ("unreached_stream: …", the job's error). */
int	astream_reach(struct astream *, char *why, size_t whylen);
/* A new client for the stream's bastion (after astream_reach). */
struct aclient *astream_client(const struct astream *);
/* p to the operator (end: the last post, with exit_code, may be NULL);
 * the HTTP status. *closed is set when the operator has left (or the
 * stream is gone). */
long	astream_out(struct aclient *, const struct astream *, const char *p,
	    size_t n, int end, const json_t *exit_code, int *closed);

/* --- guest_console.c -------------------------------------------------------- */
struct job_output;
/* agentd/guest_console.c: relay the guest's console over the stream
 * (astream_parse'd: reached once the console is open) until either side
 * ends; 0 or 1, the job's exit code. A stream reached nowhere leaves
 * st->reached -1 (the job fails with unreached_stream). */
int	guest_console_run(const struct agent_conf *, const char *guest,
	    enum guest_type, struct astream *st, struct job_output *out);
/* A console job refused before its relay began (no such guest, no
 * driver, a bad field): the reason to the operator's terminal (args'
 * stream, where it is), and the stream ended, so that the client does
 * not wait for it. */
void	guest_console_refuse(const struct agent_conf *, const json_t *args,
	    const char *why);

#endif
