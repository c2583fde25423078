/* cmdline.c — what the discovery boot tells agentd on the kernel command
 * line: bastion.url (where to report), bastion.plan (the installer's
 * plan), bastion.mac (the MAC iPXE booted
 * from; PXELINUX's BOOTIF=01-aa-bb-.. is understood too) and
 * bastion.after (poweroff | reboot | wait). */
#define LOG_SUBSYS "cmdline"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "inventory.h"
#include "log.h"

#define CMDLINE_MAX	4096	/* COMMAND_LINE_SIZE on x86 is 2048 */

int
cmdline_after_parse(const char *s, enum after_action *out)
{
	if (strcmp(s, "poweroff") == 0)
		*out = AFTER_POWEROFF;
	else if (strcmp(s, "reboot") == 0)
		*out = AFTER_REBOOT;
	else if (strcmp(s, "wait") == 0)
		*out = AFTER_WAIT;
	else if (strcmp(s, "exit") == 0)
		*out = AFTER_EXIT;
	else
		return -1;
	return 0;
}

const char *
cmdline_after_name(enum after_action a)
{
	switch (a) {
	case AFTER_POWEROFF:
		return "poweroff";
	case AFTER_REBOOT:
		return "reboot";
	case AFTER_WAIT:
		return "wait";
	case AFTER_EXIT:
		return "exit";
	default:
		return "none";
	}
}

/* Only http(s) URLs of printable characters without spaces or quotes. */
static int
url_ok(const char *s, size_t n)
{
	size_t i;

	if (n >= CMDLINE_URLMAX || (strncmp(s, "http://", 7) != 0 &&
	    strncmp(s, "https://", 8) != 0))
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f ||
		    s[i] == '"' || s[i] == '\\')
			return 0;
	return 1;
}

/*
 * Next parameter of the command line, as the kernel splits it: words
 * separated by spaces, double quotes group (and are removed). Writes the
 * word to w (NUL-terminated, cut at wlen) and returns the rest, or NULL
 * at the end.
 */
static const char *
next_word(const char *p, char *w, size_t wlen, size_t *full)
{
	int quoted = 0;
	size_t n = 0;

	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	if (*p == '\0')
		return NULL;
	for (; *p; p++) {
		if (*p == '"') {
			quoted = !quoted;
			continue;
		}
		if (!quoted && (*p == ' ' || *p == '\t' || *p == '\n'))
			break;
		if (n + 1 < wlen)
			w[n] = *p;
		n++;
	}
	w[n + 1 < wlen ? n : wlen - 1] = '\0';
	*full = n;
	return p;
}

/* A URL parameter into out (CMDLINE_URLMAX), or a warning. */
static void
take_url(const char *name, const char *v, char *out)
{
	if (url_ok(v, strlen(v)))	/* then shorter than out */
		memcpy(out, v, strlen(v) + 1);
	else
		log_warnx("ignoring %s: not an http(s) URL", name);
}

int
cmdline_parse(const char *text, struct cmdline *out)
{
	char w[CMDLINE_MAX], mac[MAC_STRLEN], bootif[MAC_STRLEN];
	enum after_action a;
	const char *p = text;
	size_t n;

	memset(out, 0, sizeof *out);
	bootif[0] = '\0';
	while ((p = next_word(p, w, sizeof w, &n)) != NULL) {
		if (n >= sizeof w)
			continue;	/* longer than any value we take */
		if (strncmp(w, "bastion.url=", 12) == 0)
			take_url("bastion.url", w + 12, out->url);
		else if (strncmp(w, "bastion.plan=", 13) == 0)
			take_url("bastion.plan", w + 13, out->plan);
		else if (strncmp(w, "bastion.mac=", 12) == 0) {
			if (mac_normalize(w + 12, mac) == 0)
				memcpy(out->mac, mac, sizeof mac);
			else
				log_warnx("ignoring bastion.mac: not a MAC");
		} else if (strncmp(w, "BOOTIF=", 7) == 0) {
			if (mac_normalize(w + 7, mac) == 0)
				memcpy(bootif, mac, sizeof mac);
			else
				log_warnx("ignoring BOOTIF: not a MAC");
		} else if (strncmp(w, "bastion.after=", 14) == 0) {
			if (cmdline_after_parse(w + 14, &a) == 0 &&
			    a != AFTER_EXIT)
				out->after = a;
			else
				log_warnx("ignoring bastion.after: not "
				    "poweroff, reboot or wait");
		}
	}
	if (out->mac[0] == '\0' && bootif[0] != '\0')
		memcpy(out->mac, bootif, sizeof bootif);
	return 0;
}

int
cmdline_read(const char *root, struct cmdline *out)
{
	char path[4096], text[CMDLINE_MAX];
	ssize_t n;
	int fd;

	if (inventory_path(path, sizeof path, root, "proc/cmdline") == -1 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, text, sizeof text - 1);
	close(fd);
	if (n < 0)
		return -1;
	text[n] = '\0';
	return cmdline_parse(text, out);
}
