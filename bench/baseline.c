// SPDX-License-Identifier: MIT
/*
 * baseline: the plain C reader the exporter is measured against. It binds a
 * NETLINK_USERSOCK socket to GROUP with a forced receive buffer and reads
 * with recv() into one buffer, checking nlmsg_seq for gaps.
 *
 *	baseline -g GROUP -r RCVBUF -n EXPECTED -m drain|live
 *
 * It prints "ready" once bound. In drain mode it then waits for a line on
 * stdin (the flood has been queued) before reading; in live mode it reads
 * at once. It stops when it has received EXPECTED messages, or after 2 s
 * without one, and prints its counts (dropped ones from SO_MEMINFO) and the
 * rate between its first and last message.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

static unsigned long long drops(int fd)
{
	uint32_t mem[SK_MEMINFO_VARS] = { 0 };
	socklen_t len = sizeof(mem);

	if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) < 0)
		return 0;
	return mem[SK_MEMINFO_DROPS];
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	unsigned long long expected = 0, received = 0, gaps = 0, enobufs = 0;
	int group = 0, rcvbuf = 0, drain = 0, opt, fd;
	int protocol = NETLINK_USERSOCK;
	uint32_t last_seq = 0;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	static char buf[65536];
	double t0 = 0, t_last = 0;

	while ((opt = getopt(argc, argv, "g:r:n:m:p:")) != -1) {
		switch (opt) {
		case 'g': group = atoi(optarg); break;
		case 'r': rcvbuf = atoi(optarg); break;
		case 'n': expected = strtoull(optarg, NULL, 10); break;
		case 'm': drain = !strcmp(optarg, "drain"); break;
		case 'p': protocol = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (group < 1 || group > 32 || !expected)
		goto usage;

	fd = socket(AF_NETLINK, SOCK_RAW, protocol);
	sa.nl_groups = 1u << (group - 1);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("baseline: socket");
		return 1;
	}
	if (rcvbuf && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0) {
		perror("baseline: SO_RCVBUFFORCE");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	if (drain) {
		char line[16];

		if (!fgets(line, sizeof(line), stdin))
			return 1;
	}

	/* Blocking reads; two idle seconds end the run. */
	struct timeval idle = { .tv_sec = 2 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof(idle));
	while (received < expected) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0) {
			if (errno == ENOBUFS) {
				enobufs++;
				continue;
			}
			if (errno == EINTR)
				continue;
			break;
		}
		if (!received)
			t0 = now();
		t_last = now();
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (received && h->nlmsg_seq > last_seq + 1)
				gaps += h->nlmsg_seq - last_seq - 1;
			last_seq = h->nlmsg_seq;
			received++;
		}
	}
	double s = t_last - t0;

	printf("received=%llu lost=%llu enobufs=%llu seq_gaps=%llu seconds=%.3f rate=%.0f\n",
	       received, drops(fd), enobufs, gaps, s, s > 0 ? received / s : 0);
	return 0;
usage:
	fprintf(stderr, "usage: baseline -g GROUP(1-32) -r RCVBUF -n EXPECTED -m drain|live [-p PROTOCOL]\n");
	return 2;
}
