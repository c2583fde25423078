/* discover.h — the discovery report (docs/api.md): validation and the
 * summary of what changed between two reports. */
#ifndef BASTION_DISCOVER_H
#define BASTION_DISCOVER_H

#include <jansson.h>

#include "buf.h"

#define DISCOVER_MAX_BODY	(1024 * 1024)
#define DISCOVER_MAX_DISKS	256
#define DISCOVER_MAX_NICS	128

/* Check report against the schema and return a normalised copy (MACs
 * lower-case with colons, top-level fields other than mac, boot_mac,
 * firmware, cpu, memory, disks, nics, dmi, volume_groups and agent
 * dropped) in *out. On error returns -1 and writes the
 * JSON path and reason into why ("disks[2].size_bytes: must be ..."). */
int	discover_validate(const json_t *report, json_t **out, char *why,
	    size_t whylen);
/* One line describing what differs, e.g. "firmware bios -> uefi; memory
 * 1.0 GiB -> 2.0 GiB; disks 2 -> 3". Empty when nothing of note changed. */
int	discover_diff(const json_t *old, const json_t *new, struct buf *out);

#endif
