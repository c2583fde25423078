/* ca.h — bastion's own certificate authority (EC P-256, 10 years) and the
 * control listener's server certificate issued by it. */
#ifndef BASTION_CA_H
#define BASTION_CA_H

#include "config.h"

struct ca;

#define CA_FINGERPRINT_LEN 72	/* "sha256:" + 64 hex + NUL */

/* Load STATE_DIR/ca/, creating the CA on first start, and (re)issue the
 * server certificate when it is missing, due to expire within 30 days, or
 * its SANs differ from names. */
int	ca_open(const char *state_dir, const char names[][CONFIG_NAME_LEN],
	    int nnames, struct ca **out);
void	ca_close(struct ca *);
/* Copies of the server chain (leaf + CA) and key as PEM, NUL-terminated;
 * free both with ca_pem_free (which wipes the key). */
int	ca_server_pem(struct ca *, char **cert, char **key);
void	ca_pem_free(char *cert, char *key);
/* "sha256:<hex>" of the CA certificate's DER. */
void	ca_fingerprint(struct ca *, char out[CA_FINGERPRINT_LEN]);
/* The CA certificate as PEM (borrowed). */
const char *ca_cert_pem(struct ca *);
/* Seconds until the server certificate expires. */
long	ca_server_expires_in(struct ca *);

#endif
