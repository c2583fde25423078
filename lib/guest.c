/* guest.c — guest and snapshot names, guest job actions and types, shared
 * by bastion, bastionctl and agentd (guest.h). */
#include <string.h>

#include "guest.h"

const char *const guest_actions[] = { "start", "shutdown", "stop",
    "reboot", "suspend", "resume", "snapshot", "rollback", "snapshot-delete",
    "guard", "console", NULL };

static int
name_char(char c, int first)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return !first && (c == '_' || c == '.' || c == '-');
}

static int
name_valid(const char *s, size_t max)
{
	size_t i;

	if (s == NULL || !name_char(s[0], 1))
		return 0;
	for (i = 1; s[i]; i++)
		if (i >= max || !name_char(s[i], 0))
			return 0;
	return 1;
}

int
guest_name_valid(const char *s)
{
	return name_valid(s, GUEST_NAME_MAX);
}

int
guest_snap_valid(const char *s)
{
	return name_valid(s, GUEST_SNAP_MAX);
}

int
guest_action_known(const char *a)
{
	int i;

	for (i = 0; a && guest_actions[i]; i++)
		if (strcmp(a, guest_actions[i]) == 0)
			return 1;
	return 0;
}

int
guest_action_wants_snap(const char *a)
{
	return a && (strcmp(a, "snapshot") == 0 ||
	    strcmp(a, "rollback") == 0 || strcmp(a, "snapshot-delete") == 0);
}

const char *
guest_type_name(enum guest_type t)
{
	return t == GUEST_VM ? "vm" : "lxc";
}

int
guest_type_parse(const char *s, enum guest_type *t)
{
	if (s && strcmp(s, "vm") == 0)
		*t = GUEST_VM;
	else if (s && strcmp(s, "lxc") == 0)
		*t = GUEST_LXC;
	else
		return -1;
	return 0;
}
