// SPDX-License-Identifier: MIT
/*
 * sockets: open COUNT netlink sockets (NETLINK_USERSOCK, each bound, so each
 * is a line of /proc/net/netlink), print "ready", and hold them until stdin
 * ends. The idle cost benchmark waits for a protocol with them open.
 *
 *	sockets -n COUNT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <linux/netlink.h>

int main(int argc, char **argv)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct rlimit rl;
	long n = 0;
	int opt;
	char c;

	while ((opt = getopt(argc, argv, "n:")) != -1) {
		if (opt != 'n') {
			fprintf(stderr, "usage: sockets -n COUNT\n");
			return 2;
		}
		n = strtol(optarg, NULL, 10);
	}
	if (n <= 0) {
		fprintf(stderr, "usage: sockets -n COUNT\n");
		return 2;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 16) {
		rl.rlim_cur = n + 16;
		if (rl.rlim_max < rl.rlim_cur)
			rl.rlim_max = rl.rlim_cur;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
			perror("setrlimit RLIMIT_NOFILE");
			return 1;
		}
	}
	for (long i = 0; i < n; i++) {
		int fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_USERSOCK);

		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			perror("netlink socket");
			return 1;
		}
	}
	printf("ready\n");
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
	return 0;
}
