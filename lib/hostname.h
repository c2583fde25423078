/* hostname.h — RFC 1123 host names and labels. */
#ifndef BASTION_HOSTNAME_H
#define BASTION_HOSTNAME_H

/* One label: 1-63 of [A-Za-z0-9-], no hyphen at either end. */
int	hostname_label_valid(const char *);
/* Dot-separated labels, at most 253 characters. lower_only: reject
 * upper-case letters (names bastion hands out are lower-case). */
int	hostname_valid(const char *, int lower_only);

#endif
