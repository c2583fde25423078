/* channels.c — [channel NAME] sections: parsing, checking and the API's
 * view of a channel (secrets never leave; only whether they are set). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"

static const char *const type_names[] = { "email", "webhook", "ntfy",
    "gotify", "telegram", NULL };

const char *
channels_type_name(enum channel_type t)
{
	return type_names[t];
}

static int
valid_name(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n >= CHANNEL_NAME_LEN)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
			return 0;
	return 1;
}

static int
copy(char *dst, size_t len, const char *v)
{
	size_t i, n = strlen(v);

	if (n >= len)
		return -1;
	for (i = 0; i < n; i++)		/* header and mail injection */
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return -1;
	memcpy(dst, v, n + 1);
	return 0;
}

static int
int_in(const char *v, long min, long max, int *out)
{
	char *end;
	long n = strtol(v, &end, 10);

	if (v[0] == '\0' || *end || n < min || n > max)
		return -1;
	*out = (int)n;
	return 0;
}

static struct channel *
channel_get(struct channel_set *s, const char *name)
{
	struct channel *c;
	int i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->ch[i].name, name) == 0)
			return &s->ch[i];
	if (s->n == CHANNELS_MAX)
		return NULL;
	c = &s->ch[s->n++];
	memset(c, 0, sizeof *c);
	strcpy(c->name, name);
	c->min_level = 1;
	c->retries = 3;
	c->rate_per_hour = 60;
	c->timeout_s = 10;
	return c;
}

const struct channel *
channels_find(const struct channel_set *s, const char *name)
{
	int i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->ch[i].name, name) == 0)
			return &s->ch[i];
	return NULL;
}

int
channels_config_value(struct channel_set *s, const char *name,
    const char *key, const char *value, const char **why)
{
	struct channel *c;
	int i;

	if (!valid_name(name)) {
		*why = "a channel name is 1-31 of [A-Za-z0-9._-]";
		return -1;
	}
	if ((c = channel_get(s, name)) == NULL) {
		*why = "too many channels (at most 16)";
		return -1;
	}
	if (strcmp(key, "type") == 0) {
		for (i = 0; type_names[i]; i++)
			if (strcmp(value, type_names[i]) == 0)
				break;
		if (type_names[i] == NULL) {
			*why = "type is one of email, webhook, ntfy, gotify, "
			    "telegram";
			return -1;
		}
		c->type = (enum channel_type)i;
		c->type_set = 1;
		return 0;
	}
	if (strcmp(key, "min_level") == 0) {
		if (strcmp(value, "warning") == 0)
			c->min_level = 1;
		else if (strcmp(value, "critical") == 0)
			c->min_level = 2;
		else {
			*why = "min_level is warning or critical";
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "allow_link_local") == 0) {
		if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0)
			c->allow_link_local = 1;
		else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0)
			c->allow_link_local = 0;
		else {
			*why = "allow_link_local is yes or no";
			return -1;
		}
		return 0;
	}
#define STR(k, f) if (strcmp(key, k) == 0) { \
	if (copy(c->f, sizeof c->f, value) == -1) { \
		*why = "too long or holds control characters"; return -1; } \
	return 0; }
	STR("url", url)
	STR("user", user)
	STR("password", password)
	STR("token", token)
	STR("secret", secret)
	STR("from", from)
	STR("to", to)
	STR("cacert", cacert)
#undef STR
	if (strcmp(key, "retries") == 0) {
		if (int_in(value, 0, 10, &c->retries) == -1) {
			*why = "retries is 0-10";
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "rate_limit") == 0) {
		if (int_in(value, 0, 100000, &c->rate_per_hour) == -1) {
			*why = "rate_limit is messages per hour, 0-100000 (0: none)";
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "timeout") == 0) {
		if (int_in(value, 1, 300, &c->timeout_s) == -1) {
			*why = "timeout is 1-300 seconds";
			return -1;
		}
		return 0;
	}
	*why = "unknown key (type url user password token secret from to "
	    "cacert min_level retries rate_limit timeout allow_link_local)";
	return -1;
}

static int
has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

int
channels_check(const struct channel_set *s, const char **which,
    const char **why)
{
	const struct channel *c;
	int i;

	for (i = 0; i < s->n; i++) {
		c = &s->ch[i];
		*which = c->name;
		if (!c->type_set) {
			*why = "type is required";
			return -1;
		}
		if (c->type == CH_EMAIL) {
			if (!has_prefix(c->url, "smtp://") &&
			    !has_prefix(c->url, "smtps://") &&
			    !has_prefix(c->url, "smtp+starttls://")) {
				*why = "an email url is smtp://, smtp+starttls:// "
				    "or smtps://HOST[:PORT]";
				return -1;
			}
			if (c->from[0] == '\0' || c->to[0] == '\0') {
				*why = "email needs from and to";
				return -1;
			}
		} else if (c->type == CH_TELEGRAM) {
			if (c->url[0] && !has_prefix(c->url, "https://") &&
			    !has_prefix(c->url, "http://")) {
				*why = "url is the Bot API's base URL (https://...)";
				return -1;
			}
			if (c->token[0] == '\0' || c->to[0] == '\0') {
				*why = "telegram needs token (the bot's) and to "
				    "(the chat id)";
				return -1;
			}
		} else if (!has_prefix(c->url, "https://") &&
		    !has_prefix(c->url, "http://")) {
			*why = "url must be an http:// or https:// URL";
			return -1;
		}
		if (c->type == CH_GOTIFY && c->token[0] == '\0') {
			*why = "gotify needs token (an application token)";
			return -1;
		}
	}
	return 0;
}

json_t *
channels_json(const struct channel *c)
{
	const char *url = c->type == CH_TELEGRAM && c->url[0] == '\0' ?
	    "https://api.telegram.org" : c->url;

	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:b, s:b, s:b}",
	    "name", c->name, "type", type_names[c->type], "url", url,
	    "to", c->to, "min_level", c->min_level == 2 ? "critical" : "warning",
	    "retries", c->retries, "rate_limit", c->rate_per_hour,
	    "allow_link_local", c->allow_link_local,
	    "has_secret", c->password[0] || c->token[0] || c->secret[0],
	    "has_user", c->user[0] != '\0');
}
