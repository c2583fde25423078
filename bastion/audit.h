/* audit.h — one row of the append-only, hash-chained audit log, and how
 * a row is made canonical and hashed. Rows are written by db_audit.c
 * (inside the transaction of the change they describe whenever that
 * change commits while the row is pending) and checked by
 * db_audit_verify(). */
#ifndef BASTION_AUDIT_H
#define BASTION_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#define AUDIT_HASH_LEN	65	/* SHA-256 as hex + NUL */

struct audit_entry {
	int64_t	id;			/* set when written */
	int64_t	time_ms;		/* set when written */
	char	actor_type[16];		/* user token admin-socket agent machine
					   anonymous system */
	char	actor[80];
	char	source[64];		/* client address, "admin", "local" */
	char	action[48];		/* "machine.forget", "session.login" */
	char	target[160];
	char	result[16];		/* ok denied error */
	char	error[256];
	char	detail[256];
	char	request_id[17];
	char	prev_hash[AUDIT_HASH_LEN];
	char	hash[AUDIT_HASH_LEN];
	int	wanted;			/* the request is to be audited */
	int	written;		/* its row is committed */
};

/* printf into one field of an entry, truncated, with control characters
 * replaced by '?' so a row always prints on one line. */
void	audit_setf(char *field, size_t size, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
#define AUDIT_SET(e, field, ...) \
	audit_setf((e)->field, sizeof (e)->field, __VA_ARGS__)

/*
 * hash = SHA-256 over "bastion-audit-v1\n", then every field as
 * "<decimal length>:<bytes>," in the order id, time_ms, actor_type, actor,
 * source, action, target, result, error, detail, request_id, then the
 * previous row's hash (64 zeros for the first row). The format is
 * documented in docs/api.md so that anyone can check an export.
 */
void	audit_hash(const struct audit_entry *, const char *prev_hash,
	    char out[AUDIT_HASH_LEN]);
/* The same over the fields as text, in that order (id and time_ms in
 * decimal): what verification recomputes from the stored columns. */
#define AUDIT_NFIELDS	11
void	audit_hash_fields(const char *const f[AUDIT_NFIELDS],
	    const char *prev_hash, char out[AUDIT_HASH_LEN]);

#define AUDIT_GENESIS \
	"0000000000000000000000000000000000000000000000000000000000000000"

#endif
