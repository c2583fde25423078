/* install_xfs.c — a new UUID for the root filesystem written from the
 * image, in-process: `xfs_db -x -c "uuid generate"` took 1.5 s of the
 * installer VM's time on the install's critical path for a few sectors.
 *
 * What changes on a v5 (CRC) XFS, as xfs_db does it: sb_uuid in every
 * allocation group's superblock; the first time, the META_UUID incompat
 * feature with the old UUID in sb_meta_uuid, so the metadata blocks
 * stamped with it stay valid; each superblock's CRC. The log's records
 * carry the UUID too, and mount checks the head record's (the unmount
 * record of a clean log) against sb_uuid: xfs_db writes a fresh log;
 * here that one record gets the new UUID and its CRC, the log staying
 * where it was (so no metadata LSN is ever ahead of it). A log that is
 * not clean (no unmount record at its head) is refused, nothing written.
 *
 * Offsets from xfsprogs' libxfs/xfs_format.h (struct xfs_dsb) and
 * xfs_log_format.h (struct xlog_rec_header, struct xlog_op_header). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "installer.h"

/* struct xfs_dsb: all big-endian but sb_crc. */
#define SB_MAGIC		0x58465342	/* "XFSB" */
#define SB_BLOCKSIZE		4
#define SB_UUID			32
#define SB_LOGSTART		48
#define SB_AGBLOCKS		84
#define SB_AGCOUNT		88
#define SB_LOGBLOCKS		96
#define SB_VERSIONNUM		100
#define SB_SECTSIZE		102
#define SB_AGBLKLOG		124
#define SB_INPROGRESS		126
#define SB_FEATURES_INCOMPAT	216
#define SB_CRC			224	/* little-endian */
#define SB_META_UUID		248
#define SB_VERSION_5		5
#define SB_FEAT_INCOMPAT_META_UUID 0x4

/* The log, in 512-byte basic blocks; struct xlog_rec_header. */
#define BB			512
#define LOG_MAGIC		0xfeedbabe
#define LH_CYCLE		4
#define LH_VERSION		8
#define LH_LEN			12
#define LH_LSN			16
#define LH_CRC			32	/* little-endian */
#define LH_NUM_LOGOPS		40
#define LH_FS_UUID		304
#define LH_SIZE			320
#define LH_STRUCT		328	/* sizeof, padding included: the CRC's */
#define LH_EXT_STRUCT		260	/* sizeof(struct xlog_rec_ext_header) */
#define LOG_CYCLE_SIZE		32768	/* XLOG_HEADER_CYCLE_SIZE */
#define LOG_VERSION_2		2
#define LOG_MAXREC		(2 << 20) /* > any record (iclogs <= 256 KiB) */
#define OP_FLAGS		9	/* in struct xlog_op_header */
#define OP_UNMOUNT_TRANS	0x20

struct xfs_geo {
	int		 fd;
	uint32_t	 blocksize, agblocks, agcount, sectsize;
	off_t		 log_off;	/* bytes */
	uint32_t	 log_bbs;	/* basic blocks */
};

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static uint16_t
be16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint64_t
be64(const unsigned char *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static void
put_be32(unsigned char *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static uint32_t
le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static void
put_le32(unsigned char *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

/* CRC32C (Castagnoli, reflected) without the initial and final
 * inversions: libxfs's crc32c(), chained over several pieces. */
static uint32_t
crc32c(uint32_t crc, const unsigned char *p, size_t len)
{
	static uint32_t table[256];
	uint32_t c;
	int i, k;

	if (table[1] == 0)
		for (i = 0; i < 256; i++) {
			c = (uint32_t)i;
			for (k = 0; k < 8; k++)
				c = c & 1 ? c >> 1 ^ 0x82f63b78 : c >> 1;
			table[i] = c;
		}
	while (len-- > 0)
		crc = table[(crc ^ *p++) & 0xff] ^ crc >> 8;
	return crc;
}

/* xfs_start_cksum_update: the CRC field counts as zero. */
static uint32_t
crc_skipping(const unsigned char *p, size_t len, size_t at)
{
	static const unsigned char zero[4];
	uint32_t crc = 0xffffffff;

	crc = crc32c(crc, p, at);
	crc = crc32c(crc, zero, 4);
	return crc32c(crc, p + at + 4, len - at - 4);
}

static int
read_at(int fd, void *buf, size_t len, off_t off)
{
	ssize_t n = pread(fd, buf, len, off);

	if (n == (ssize_t)len)
		return 0;
	if (n >= 0)
		errno = EIO;	/* short: the device ends there */
	return -1;
}

static int
write_at(int fd, const void *buf, size_t len, off_t off)
{
	ssize_t n = pwrite(fd, buf, len, off);

	if (n == (ssize_t)len)
		return 0;
	if (n >= 0)
		errno = ENOSPC;
	return -1;
}

/* A log basic block's cycle number: the header's second word, every
 * other block's first (xlog_get_cycle). */
static int
log_cycle(const struct xfs_geo *g, uint32_t bb, uint32_t *cycle)
{
	unsigned char b[8];

	if (read_at(g->fd, b, sizeof b, g->log_off + (off_t)bb * BB) == -1)
		return -1;
	*cycle = be32(b) == LOG_MAGIC ? be32(b + LH_CYCLE) : be32(b);
	return 0;
}

/* The head: where the next record would go, the first block of a lower
 * cycle than block 0's (the log is written round and round). */
static int
log_head(const struct xfs_geo *g, uint32_t *head, char *why, size_t whylen)
{
	uint32_t first, last, mid, c, lo, hi;

	if (log_cycle(g, 0, &first) == -1 ||
	    log_cycle(g, g->log_bbs - 1, &last) == -1) {
		snprintf(why, whylen, "reading the log: %s", strerror(errno));
		return -1;
	}
	if (first == 0) {
		snprintf(why, whylen, "the log is empty");
		return -1;
	}
	if (last == first) {
		*head = 0;	/* just wrapped */
		return 0;
	}
	if (last != first - 1 && last != 0) {
		snprintf(why, whylen, "the log's cycles %u and %u: not a "
		    "cleanly unmounted log", first, last);
		return -1;
	}
	lo = 0;		/* cycle first */
	hi = g->log_bbs - 1;	/* not */
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (log_cycle(g, mid, &c) == -1) {
			snprintf(why, whylen, "reading the log: %s",
			    strerror(errno));
			return -1;
		}
		if (c == first)
			lo = mid;
		else
			hi = mid;
	}
	*head = hi;
	return 0;
}

struct log_rec {
	unsigned char	*buf;	/* hblks header blocks, then the data */
	uint32_t	 bb;	/* where it starts in the log */
	uint32_t	 hblks, len;
};

/* xlog_cksum: the header (its CRC as zero), the extended headers the
 * length needs, the data. */
static uint32_t
log_crc(const struct log_rec *r)
{
	uint32_t crc, i, xheads;

	crc = crc_skipping(r->buf, LH_STRUCT, LH_CRC);
	xheads = (r->len + LOG_CYCLE_SIZE - 1) / LOG_CYCLE_SIZE;
	for (i = 1; i < xheads; i++)
		crc = crc32c(crc, r->buf + (size_t)i * BB, LH_EXT_STRUCT);
	return ~crc32c(crc, r->buf + (size_t)r->hblks * BB, r->len);
}

/* The log's last record, which must be an unmount record ending at the
 * head, its CRC right: into r (r->buf the caller's to free). */
static int
log_last_record(const struct xfs_geo *g, struct log_rec *r, char *why,
    size_t whylen)
{
	unsigned char hdr[BB];
	uint32_t head, bb = 0, back, size, nbb, i;

	if (log_head(g, &head, why, whylen) == -1)
		return -1;
	/* Back from the head to the nearest record header. */
	for (back = 1; back <= LOG_MAXREC / BB && back <= g->log_bbs; back++) {
		bb = (head + g->log_bbs - back) % g->log_bbs;
		if (read_at(g->fd, hdr, BB, g->log_off + (off_t)bb * BB) == -1)
			goto err_io;
		if (be32(hdr) == LOG_MAGIC)
			break;
	}
	if (be32(hdr) != LOG_MAGIC) {
		snprintf(why, whylen, "no log record before the log's head");
		return -1;
	}
	r->len = be32(hdr + LH_LEN);
	size = be32(hdr + LH_SIZE);
	/* xlog_logrec_hblks */
	r->hblks = (be32(hdr + LH_VERSION) & LOG_VERSION_2) &&
	    size > LOG_CYCLE_SIZE ? (size + LOG_CYCLE_SIZE - 1) /
	    LOG_CYCLE_SIZE : 1;
	nbb = (r->len + BB - 1) / BB;
	if (r->len == 0 || r->len > LOG_MAXREC || r->hblks > 64 ||
	    r->hblks + nbb != back ||
	    be64(hdr + LH_LSN) != ((uint64_t)be32(hdr + LH_CYCLE) << 32 | bb)) {
		snprintf(why, whylen, "the log's last record does not end at "
		    "its head: not a cleanly unmounted log");
		return -1;
	}
	if ((r->buf = malloc((size_t)back * BB)) == NULL) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -1;
	}
	/* It may wrap round the log's end. */
	for (i = 0; i < back; i++)
		if (read_at(g->fd, r->buf + (size_t)i * BB, BB, g->log_off +
		    (off_t)((bb + i) % g->log_bbs) * BB) == -1)
			goto err_free;
	r->bb = bb;
	/* mkfs writes its record with no CRC (0): the kernel takes that. */
	if (le32(r->buf + LH_CRC) != 0 && log_crc(r) != le32(r->buf + LH_CRC)) {
		snprintf(why, whylen, "the log's last record fails its CRC");
		goto err_out;
	}
	if (be32(r->buf + LH_NUM_LOGOPS) != 1 ||
	    (r->buf[(size_t)r->hblks * BB + OP_FLAGS] & OP_UNMOUNT_TRANS) == 0) {
		snprintf(why, whylen, "the log is dirty (no unmount record at "
		    "its head): mount and unmount the filesystem first");
		goto err_out;
	}
	return 0;
err_free:
	free(r->buf);
	r->buf = NULL;
err_io:
	snprintf(why, whylen, "reading the log: %s", strerror(errno));
	return -1;
err_out:
	free(r->buf);
	r->buf = NULL;
	return -1;
}

/* Reads and checks the primary superblock into sb (sectsize bytes). */
static int
xfs_geometry(struct xfs_geo *g, unsigned char *sb, char *why, size_t whylen)
{
	uint64_t logstart, agno, agbno;
	uint32_t logblocks;

	if (read_at(g->fd, sb, BB, 0) == -1) {
		snprintf(why, whylen, "reading the superblock: %s",
		    strerror(errno));
		return -1;
	}
	if (be32(sb) != SB_MAGIC) {
		snprintf(why, whylen, "not an XFS filesystem (no superblock)");
		return -1;
	}
	if ((be16(sb + SB_VERSIONNUM) & 0xf) != SB_VERSION_5) {
		snprintf(why, whylen, "XFS version %u, not 5 (with CRCs)",
		    (unsigned)(be16(sb + SB_VERSIONNUM) & 0xf));
		return -1;
	}
	g->blocksize = be32(sb + SB_BLOCKSIZE);
	g->sectsize = be16(sb + SB_SECTSIZE);
	g->agblocks = be32(sb + SB_AGBLOCKS);
	g->agcount = be32(sb + SB_AGCOUNT);
	logstart = be64(sb + SB_LOGSTART);
	logblocks = be32(sb + SB_LOGBLOCKS);
	if (g->blocksize < 512 || g->blocksize > 65536 ||
	    (g->blocksize & (g->blocksize - 1)) != 0 || g->sectsize < BB ||
	    g->sectsize > g->blocksize ||
	    (g->sectsize & (g->sectsize - 1)) != 0 || g->agblocks == 0 ||
	    g->agcount == 0 || sb[SB_AGBLKLOG] > 31 ||
	    (uint64_t)g->agblocks > (uint64_t)1 << sb[SB_AGBLKLOG]) {
		snprintf(why, whylen, "the superblock's geometry is "
		    "inconsistent");
		return -1;
	}
	if (sb[SB_INPROGRESS] != 0) {
		snprintf(why, whylen, "mkfs did not complete");
		return -1;
	}
	if (logstart == 0) {
		snprintf(why, whylen, "the log is external");
		return -1;
	}
	/* XFS_FSB_TO_DADDR: an AG number above agblklog bits. */
	agno = logstart >> sb[SB_AGBLKLOG];
	agbno = logstart & (((uint64_t)1 << sb[SB_AGBLKLOG]) - 1);
	if (agno >= g->agcount || agbno + logblocks > g->agblocks ||
	    logblocks == 0) {
		snprintf(why, whylen, "the log lies outside the filesystem");
		return -1;
	}
	g->log_off = (off_t)((agno * g->agblocks + agbno) * g->blocksize);
	g->log_bbs = (uint32_t)((uint64_t)logblocks * g->blocksize / BB);
	return 0;
}

int
install_xfs_uuid(const char *dev, char *uuid, size_t uuidlen, char *why,
    size_t whylen)
{
	unsigned char *sb = NULL, new[16], meta[16];
	char text[40];
	struct log_rec rec = { NULL, 0, 0, 0 };
	struct xfs_geo g;
	uint32_t incompat, i;
	int rc = -1, set_meta;
	off_t off;

	memset(&g, 0, sizeof g);
	if ((g.fd = open(dev, O_RDWR | O_CLOEXEC)) == -1) {
		snprintf(why, whylen, "%s: %s", dev, strerror(errno));
		return -1;
	}
	if ((sb = malloc(65536)) == NULL) {	/* sectsize's most */
		snprintf(why, whylen, "%s", strerror(errno));
		goto out;
	}
	if (xfs_geometry(&g, sb, why, whylen) == -1)
		goto out;
	/* Every superblock is ours to rewrite before anything is written. */
	for (i = 0; i < g.agcount; i++) {
		off = (off_t)i * g.agblocks * g.blocksize;
		if (read_at(g.fd, sb, g.sectsize, off) == -1) {
			snprintf(why, whylen, "reading AG %u's superblock: %s",
			    i, strerror(errno));
			goto out;
		}
		if (be32(sb) != SB_MAGIC ||
		    (be16(sb + SB_VERSIONNUM) & 0xf) != SB_VERSION_5) {
			snprintf(why, whylen, "AG %u's superblock is not XFS v5",
			    i);
			goto out;
		}
	}
	if (log_last_record(&g, &rec, why, whylen) == -1)
		goto out;
	if (read_at(g.fd, sb, g.sectsize, 0) == -1) {
		snprintf(why, whylen, "reading the superblock: %s",
		    strerror(errno));
		goto out;
	}
	if (install_uuid4(new, text, sizeof text, why, whylen) == -1)
		goto out;

	/* xfs_db's do_uuid, decided on the primary for every AG. */
	incompat = be32(sb + SB_FEATURES_INCOMPAT);
	if ((incompat & SB_FEAT_INCOMPAT_META_UUID) == 0) {
		set_meta = 1;
		memcpy(meta, sb + SB_UUID, sizeof meta);
	} else if (memcmp(new, sb + SB_META_UUID, sizeof new) == 0) {
		set_meta = -1;	/* back to the metadata's own */
		memset(meta, 0, sizeof meta);
	} else
		set_meta = 0;

	/* The log's head record first, as xfs_db clears the log first. */
	memcpy(rec.buf + LH_FS_UUID, new, sizeof new);
	if (le32(rec.buf + LH_CRC) != 0)
		put_le32(rec.buf + LH_CRC, log_crc(&rec));
	if (write_at(g.fd, rec.buf, BB, g.log_off + (off_t)rec.bb * BB) == -1) {
		snprintf(why, whylen, "writing the log: %s", strerror(errno));
		goto out;
	}
	for (i = 0; i < g.agcount; i++) {
		off = (off_t)i * g.agblocks * g.blocksize;
		if (read_at(g.fd, sb, g.sectsize, off) == -1)
			goto err_io;
		incompat = be32(sb + SB_FEATURES_INCOMPAT);
		if (set_meta == 1) {
			incompat |= SB_FEAT_INCOMPAT_META_UUID;
			memcpy(sb + SB_META_UUID, meta, sizeof meta);
		} else if (set_meta == -1) {
			incompat &= ~(uint32_t)SB_FEAT_INCOMPAT_META_UUID;
			memcpy(sb + SB_META_UUID, meta, sizeof meta);
		}
		put_be32(sb + SB_FEATURES_INCOMPAT, incompat);
		memcpy(sb + SB_UUID, new, sizeof new);
		put_le32(sb + SB_CRC, ~crc_skipping(sb, g.sectsize, SB_CRC));
		if (write_at(g.fd, sb, g.sectsize, off) == -1)
			goto err_io;
	}
	if (fsync(g.fd) == -1)
		goto err_io;
	snprintf(uuid, uuidlen, "%s", text);
	rc = 0;
	goto out;
err_io:
	snprintf(why, whylen, "%s: %s (the filesystem is half changed)", dev,
	    strerror(errno));
out:
	free(rec.buf);
	free(sb);
	close(g.fd);
	return rc;
}
