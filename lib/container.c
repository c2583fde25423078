/* container.c — container refs, actions and secret-looking environment
 * values, shared by bastion, bastionctl and agentd (container.h). */
#include <string.h>
#include <strings.h>

#include "container.h"

const char *const container_actions[] = { "start", "stop", "restart",
    "pause", "unpause", "kill", "remove", "logs", "inspect", "exec", NULL };

static int
ref_char(char c, int first)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return !first && (c == '_' || c == '.' || c == '-');
}

int
container_ref_valid(const char *s)
{
	size_t i;

	if (s == NULL || !ref_char(s[0], 1))
		return 0;
	for (i = 1; s[i]; i++)
		if (i >= CONTAINER_REF_MAX || !ref_char(s[i], 0))
			return 0;
	return 1;
}

int
container_action_known(const char *a)
{
	int i;

	for (i = 0; a && container_actions[i]; i++)
		if (strcmp(a, container_actions[i]) == 0)
			return 1;
	return 0;
}

int
container_env_secret(const char *name, size_t len)
{
	static const char *const words[] = { "PASS", "SECRET", "TOKEN", "KEY",
	    "CREDENTIAL", "PRIVATE", "AUTH", "CERT", "SALT", NULL };
	size_t i, w, n;

	for (w = 0; words[w]; w++) {
		n = strlen(words[w]);
		for (i = 0; i + n <= len; i++)
			if (strncasecmp(name + i, words[w], n) == 0)
				return 1;
	}
	return 0;
}

size_t
container_env_mask(json_t *env)
{
	const char *s, *eq;
	json_t *v;
	size_t i, n = 0;

	json_array_foreach(env, i, v) {
		if ((s = json_string_value(v)) == NULL) {
			json_array_set_new(env, i, json_string(""));
			continue;
		}
		eq = strchr(s, '=');
		if (eq == NULL || !container_env_secret(s, (size_t)(eq - s)) ||
		    strcmp(eq + 1, CONTAINER_MASK) == 0)
			continue;
		/* New string first: s points into the old one. */
		v = json_sprintf("%.*s=%s", (int)(eq - s), s, CONTAINER_MASK);
		if (v == NULL || json_array_set_new(env, i, v) == -1)
			json_array_set_new(env, i, json_string(""));
		n++;
	}
	return n;
}
