/* guest_console.c — bastionctl guests console TARGET GUEST [--force]: a
 * guest's console (tty 0 of an LXC guest, the serial console of a VM;
 * DESIGN §13) in this terminal, through bastion and the node's agent.
 * Ctrl-] leaves. One session per guest: another one is refused unless
 * --force, which ends it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "guest.h"

int
guests_console(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	int force = 0, rows, cols, rc;
	const struct ctl_opt opts[] = {
		{ "force", NULL, &force },
		{ NULL, NULL, NULL },
	};
	struct ctl_args a;
	char *path = NULL, label[300];

	json_t *body, *job = NULL;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if (!guest_name_valid(a.pos[1]))
		return ctl_usage_error(cmd, "GUEST: ^[a-zA-Z0-9][a-zA-Z0-9_.-]"
		    "{0,63}$");
	if ((body = json_pack("{s:b}", "force", force)) == NULL)
		return ctl_error("out of memory");
	if (ctl_tty_size(&rows, &cols) == 0) {
		json_object_set_new(body, "rows", json_integer(rows));
		json_object_set_new(body, "cols", json_integer(cols));
	}
	if ((path = ctl_agent_path(a.pos[0], "guests", a.pos[1], "console")) ==
	    NULL) {
		rc = ctl_error("out of memory");
		goto out;
	}
	if (ctl_request(c, "POST", path, body, &job, NULL, NULL) == -1) {
		rc = CTL_ERR;
		goto out;
	}
	snprintf(label, sizeof label, "the console of %s on %s", a.pos[1],
	    a.pos[0]);
	rc = ctl_tty_session(c, ctl_jstr(job, "stream"), label);
out:
	json_decref(job);
	json_decref(body);
	free(path);
	return rc;
}

/* The console's row, beside guests.c's table of the other guests
 * subcommands. */
const struct ctl_command ctl_guest_console_commands[] = {
	{ "guests", "console", "TARGET GUEST [--force]", "the guest's console "
	    "(tty 0 of an LXC guest, a VM's serial console); Ctrl-] leaves, "
	    "--force takes it over from another session", guests_console, 2, 2,
	    0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
