/* install.h — install requests (validation) and the data templates are
 * rendered with. */
#ifndef BASTION_INSTALL_H
#define BASTION_INSTALL_H

#include <jansson.h>

#include "config.h"
#include "db.h"
#include "dispatch.h"
#include "machine.h"

#define INSTALL_MAX_KEYS	32
#define INSTALL_VG		"bastion"
#define INSTALL_KEY_PLACEHOLDER	"DRY-RUN-KEY"

/* RFC 1123 host name (labels of [a-z0-9-], FQDN allowed, <= 253). */
int	install_valid_hostname(const char *);
/* An OpenSSH public key line: known type, base64 blob whose embedded type
 * matches, optional plain comment. 0 or -1 with *why. */
int	install_valid_ssh_key(const char *, const char **why);
/* The disk to install on from a hardware report: the first non-removable
 * disk of at least 4 GiB by name. 0 or -1. */
int	install_pick_disk(const json_t *hardware, char *out, size_t len);

/* Parse POST .../install (or .../reprovision when prev is the machine's
 * last install: every field then defaults to it) into out. 0, or -1 with
 * a message in why. */
int	install_parse(const json_t *body, const struct config *,
	    const json_t *hardware, const struct install *prev,
	    struct install *out, char *why, size_t whylen);

/* Everything a template may use: bastion{}, machine{}, and for installs
 * install{}, ssh_keys[] and storage{}. key is the clear install key that
 * goes into URLs (a placeholder for dry runs); in may be NULL. */
json_t	*install_context(const struct config *, const struct machine *,
	    const struct install *in, const json_t *hardware, const char *key,
	    int boot_number);

struct os_image;
/* The plan `agentd install` fetches (DESIGN §11) from a context made by
 * install_context + install_set_agent, for the image img. */
json_t	*install_plan(const struct config *, const json_t *ctx,
	    const struct os_image *img);

/* The join token (clear, or a placeholder for dry runs) and the CA
 * fingerprint the kickstart's %post gives agentd (agent.* in templates). */
void	install_set_agent(json_t *ctx, const char *ca_fingerprint,
	    const char *token);
#define INSTALL_TOKEN_PLACEHOLDER	"DRY-RUN-TOKEN"
#define INSTALL_TOKEN_TTL_MS	(24LL * 3600 * 1000)

/* Template name for a dispatch action. */
const char *install_template_for(enum boot_action);

struct templates;
/* Render the iPXE answer for action (in: the current install, for the
 * installer). *out is malloc'd. */
int	install_render_boot(struct templates *, const struct config *,
	    const struct machine *, const struct install *in,
	    const json_t *hardware, enum boot_action, const char *key,
	    int boot_number, char **out, size_t *outlen, char *err,
	    size_t errlen);

#endif
