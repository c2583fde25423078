/* channels.h — notification channels: the [channel NAME] sections of
 * bastion.conf (channels.c) and how a message is delivered on one
 * (notify.c). DESIGN §14:
 *	[channel ops-mail]
 *	type = email            ; email webhook ntfy gotify telegram
 *	url = smtp+starttls://mail.lan:587
 *	user = bastion
 *	password = ...
 *	from = bastion@lan
 *	to = ops@lan, oncall@lan
 *	min_level = warning     ; warning | critical
 */
#ifndef BASTION_CHANNELS_H
#define BASTION_CHANNELS_H

#include <jansson.h>

#define CHANNELS_MAX		16
#define CHANNEL_NAME_LEN	32
#define CHANNEL_URL_LEN		512
#define CHANNEL_SECRET_LEN	256

enum channel_type { CH_EMAIL, CH_WEBHOOK, CH_NTFY, CH_GOTIFY, CH_TELEGRAM };

struct channel {
	char			name[CHANNEL_NAME_LEN];
	enum channel_type	type;
	int			type_set;
	char			url[CHANNEL_URL_LEN];	/* telegram: base URL */
	char			user[128];
	char			password[CHANNEL_SECRET_LEN];
	char			token[CHANNEL_SECRET_LEN]; /* ntfy gotify telegram */
	char			secret[CHANNEL_SECRET_LEN]; /* webhook HMAC key */
	char			from[256];
	char			to[512];	/* email: list; telegram: chat id */
	char			cacert[256];	/* TLS trust; "" = system */
	int			min_level;	/* 1 warning, 2 critical */
	int			retries;	/* after the first attempt */
	int			rate_per_hour;	/* 0: unlimited */
	int			timeout_s;
	int			allow_link_local; /* 169.254/16, fe80::/10 ... */
};

struct channel_set {
	struct channel	ch[CHANNELS_MAX];
	int		n;
};

/* One key of [channel name]; 0, or -1 with *why. */
int	channels_config_value(struct channel_set *, const char *name,
	    const char *key, const char *value, const char **why);
/* After the whole file: every channel complete? 0, or -1 with the
 * channel's name and why. */
int	channels_check(const struct channel_set *, const char **which,
	    const char **why);
const struct channel *channels_find(const struct channel_set *,
	    const char *name);
const char *channels_type_name(enum channel_type);
/* The channel as the API shows it: never its secrets, only whether they
 * are set. */
json_t	*channels_json(const struct channel *);

#endif
