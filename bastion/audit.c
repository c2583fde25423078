/* audit.c — the canonical form and hash of an audit row (audit.h). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "audit.h"
#include "hex.h"

void
audit_setf(char *field, size_t size, const char *fmt, ...)
{
	va_list ap;
	size_t i;

	if (size == 0)
		return;
	va_start(ap, fmt);
	/* Most are one string (audit_start, per request): copied. */
	if (strcmp(fmt, "%s") == 0) {
		const char *s = va_arg(ap, const char *);

		if (s == NULL)
			s = "(null)";	/* what vsnprintf would write */
		for (i = 0; i < size - 1 && s[i]; i++)
			field[i] = s[i];
		field[i] = '\0';
	} else
		vsnprintf(field, size, fmt, ap);
	va_end(ap);
	for (i = 0; field[i]; i++)
		if ((unsigned char)field[i] < 0x20 || field[i] == 0x7f)
			field[i] = '?';
}

static void
add_field(EVP_MD_CTX *md, const char *s)
{
	char len[32];
	size_t n = strlen(s);

	snprintf(len, sizeof len, "%zu:", n);
	EVP_DigestUpdate(md, len, strlen(len));
	EVP_DigestUpdate(md, s, n);
	EVP_DigestUpdate(md, ",", 1);
}

void
audit_hash_fields(const char *const f[AUDIT_NFIELDS], const char *prev_hash,
    char out[AUDIT_HASH_LEN])
{
	static const char magic[] = "bastion-audit-v1\n";
	unsigned char d[32];
	unsigned int dlen = 0;
	EVP_MD_CTX *md;
	int i;

	out[0] = '\0';
	if ((md = EVP_MD_CTX_new()) == NULL)
		return;
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1) {
		EVP_DigestUpdate(md, magic, sizeof magic - 1);
		for (i = 0; i < AUDIT_NFIELDS; i++)
			add_field(md, f[i]);
		EVP_DigestUpdate(md, prev_hash, strlen(prev_hash));
		if (EVP_DigestFinal_ex(md, d, &dlen) == 1 && dlen == 32)
			hex_encode(d, 32, out);
	}
	EVP_MD_CTX_free(md);
}

void
audit_hash(const struct audit_entry *e, const char *prev_hash,
    char out[AUDIT_HASH_LEN])
{
	char id[32], t[32];
	const char *f[AUDIT_NFIELDS] = { id, t, e->actor_type, e->actor,
	    e->source, e->action, e->target, e->result, e->error, e->detail,
	    e->request_id };

	snprintf(id, sizeof id, "%" PRId64, e->id);
	snprintf(t, sizeof t, "%" PRId64, e->time_ms);
	audit_hash_fields(f, prev_hash, out);
}
