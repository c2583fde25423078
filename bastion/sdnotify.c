/* sdnotify.c — the readiness datagram systemd waits for (sd_notify(3)'s
 * protocol: one AF_UNIX datagram to $NOTIFY_SOCKET). */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "sdnotify.h"

int
sdnotify_send(const char *state)
{
	struct sockaddr_un sa;
	const char *path = getenv("NOTIFY_SOCKET");
	size_t len, slen = strlen(state);
	ssize_t n;
	int fd;

	if (path == NULL || *path == '\0')
		return 0;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len < 2 ||
	    len >= sizeof sa.sun_path) {
		log_warnx("NOTIFY_SOCKET %s: not a socket path", path);
		return -1;
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';	/* abstract: no terminating NUL */
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1) {
		log_warn("NOTIFY_SOCKET: socket");
		return -1;
	}
	do
		n = sendto(fd, state, slen, MSG_NOSIGNAL, (struct sockaddr *)&sa,
		    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
	while (n == -1 && errno == EINTR);
	if (n != (ssize_t)slen) {
		log_warn("NOTIFY_SOCKET %s", path);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}
