/* msgio.c — framed messages between bastion's processes; see msgio.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "msgio.h"

struct msg_hdr {
	uint32_t	type;
	uint32_t	len;
};

static int
write_full(int fd, const void *p, size_t n)
{
	const char *c = p;
	ssize_t w;

	while (n > 0) {
		if ((w = send(fd, c, n, MSG_NOSIGNAL)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* 1 read, 0 clean EOF before anything, -1 error or short read. */
static int
read_full(int fd, void *p, size_t n)
{
	char *c = p;
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		if ((r = recv(fd, c + got, n - got, 0)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			return got == 0 ? 0 : -1;
		got += (size_t)r;
	}
	return 1;
}

/* The header, with the descriptor attached to its bytes. */
static int
send_header(int fd, const struct msg_hdr *h, int pass_fd)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { (void *)h, sizeof *h };
	struct msghdr m;
	struct cmsghdr *cm;
	ssize_t w;

	memset(&m, 0, sizeof m);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	memset(&ctl, 0, sizeof ctl);
	m.msg_control = ctl.buf;
	m.msg_controllen = sizeof ctl.buf;
	cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
	while ((w = sendmsg(fd, &m, MSG_NOSIGNAL)) == -1 && errno == EINTR)
		;
	if (w == -1)
		return -1;
	/* The descriptor went with the first byte; the rest is plain. */
	return write_full(fd, (const char *)h + w, sizeof *h - (size_t)w);
}

/* The header and any descriptor that came with it. */
static int
recv_header(int fd, struct msg_hdr *h, int *got_fd)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { h, sizeof *h };
	struct msghdr m;
	struct cmsghdr *cm;
	ssize_t r;
	int rc;

	*got_fd = -1;
	memset(&m, 0, sizeof m);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = ctl.buf;
	m.msg_controllen = sizeof ctl.buf;
	while ((r = recvmsg(fd, &m, MSG_CMSG_CLOEXEC)) == -1 && errno == EINTR)
		;
	if (r <= 0)
		return r == 0 ? 0 : -1;
	for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)) && *got_fd == -1)
			memcpy(got_fd, CMSG_DATA(cm), sizeof(int));
	if (m.msg_flags & MSG_CTRUNC)
		goto err;
	if ((size_t)r < sizeof *h &&
	    (rc = read_full(fd, (char *)h + r, sizeof *h - (size_t)r)) != 1)
		goto err;
	return 1;
err:
	if (*got_fd != -1)
		close(*got_fd);
	*got_fd = -1;
	return -1;
}

int
msg_send(int fd, uint32_t type, const void *p, size_t len, size_t max,
    int pass_fd)
{
	struct msg_hdr h = { type, (uint32_t)len };

	if (len > max || len > UINT32_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	if (pass_fd >= 0 ? send_header(fd, &h, pass_fd) == -1 :
	    write_full(fd, &h, sizeof h) == -1)
		return -1;
	return len == 0 ? 0 : write_full(fd, p, len);
}

int
msg_recv(int fd, uint32_t *type, char **p, size_t *len, size_t max,
    int *got_fd)
{
	struct msg_hdr h;
	char *b;
	int rc, passed;

	if ((rc = recv_header(fd, &h, &passed)) <= 0)
		return rc;
	if (h.len > max || (b = calloc(1, (size_t)h.len + 1)) == NULL)
		goto err_header;
	if (h.len && read_full(fd, b, h.len) != 1)
		goto err_body;
	*type = h.type;
	*p = b;
	*len = h.len;
	if (got_fd)
		*got_fd = passed;
	else if (passed != -1)
		close(passed);
	return 1;

err_body:
	free(b);
err_header:
	if (passed != -1)
		close(passed);
	return -1;
}
