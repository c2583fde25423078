/* duration.h — "90d", "2w", "12h", "30m", "45s" or plain seconds, parsed
 * the same way by bastion (API token expiries, join token TTLs) and
 * bastionctl (its options), so the two cannot disagree. */
#ifndef BASTION_DURATION_H
#define BASTION_DURATION_H

#include <stdint.h>

/* s is digits with at most one unit letter (s m h d w); the result is in
 * 1 .. max_s seconds. 0, or -1 (and *out_s untouched) if not. */
int	duration_parse(const char *s, int64_t max_s, int64_t *out_s);

#endif
