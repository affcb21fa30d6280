// SPDX-License-Identifier: MIT
/*
 * flood: multicast numbered netlink messages on NETLINK_USERSOCK as fast as
 * possible, in the raw format (sequence number in nlmsg_seq, text payload) or
 * the kevent attribute format (sequence number in KEVENT_A_SEQ too).
 *
 *	flood -g GROUP -n COUNT [-f raw|kevent|genl] [-d DISTINCT_NAMES] [-p PROTOCOL]
 *
 * genl is the kevent attributes behind a generic netlink header (command
 * KEVENT_CMD_EVENT), as the module sends them on its family; with
 * -p 16 (NETLINK_GENERIC) and -g a family's group id (1-32), a root sender
 * multicasts them on that group.
 *
 * With -d, kevent names cycle through DISTINCT_NAMES values (name_0,
 * name_1, ...) to flood the exporter with distinct event names.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/netlink.h>

#include "../kmod/kevent_netlink.h"

#define NLA_HDRLEN_ ((int)NLA_ALIGN(sizeof(struct nlattr)))

static size_t put_attr(char *p, uint16_t type, const void *v, size_t len)
{
	struct nlattr *a = (struct nlattr *)p;

	a->nla_len = NLA_HDRLEN_ + len;
	a->nla_type = type;
	memcpy(p + NLA_HDRLEN_, v, len);
	memset(p + NLA_HDRLEN_ + len, 0, NLA_ALIGN(a->nla_len) - a->nla_len);
	return NLA_ALIGN(a->nla_len);
}

enum format { RAW, KEVENT, GENL };

static size_t build(char *buf, enum format format, uint64_t seq, uint64_t distinct)
{
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	char *p = buf + NLMSG_HDRLEN;
	char text[KEVENT_NAME_MAX];

	memset(h, 0, sizeof(*h));
	h->nlmsg_seq = (uint32_t)seq;
	if (format == RAW) {
		int n = snprintf(p, 32, "%llu", (unsigned long long)seq);

		h->nlmsg_type = 16;
		h->nlmsg_len = NLMSG_HDRLEN + n + 1;
		return NLMSG_ALIGN(h->nlmsg_len);
	}
	uint64_t inst = 0x6b6576656e74ULL, ts = (uint64_t)time(NULL) * 1000000000ULL;
	int64_t value = (int64_t)seq;
	int n;

	h->nlmsg_type = KEVENT_MSG_EVENT;
	if (format == GENL) {
		/* struct genlmsghdr: cmd, version, reserved. The type stands
		 * for a family id. */
		h->nlmsg_type = 0x20;
		p[0] = KEVENT_CMD_EVENT;
		p[1] = KEVENT_GENL_VERSION;
		p[2] = p[3] = 0;
		p += 4;
	}
	p += put_attr(p, KEVENT_A_SEQ, &seq, 8);
	p += put_attr(p, KEVENT_A_INSTANCE, &inst, 8);
	p += put_attr(p, KEVENT_A_TIMESTAMP_NS, &ts, 8);
	if (distinct)
		n = snprintf(text, sizeof(text), "name_%llu", (unsigned long long)(seq % distinct));
	else
		n = snprintf(text, sizeof(text), "flood");
	p += put_attr(p, KEVENT_A_NAME, text, n + 1);
	p += put_attr(p, KEVENT_A_VALUE, &value, 8);
	h->nlmsg_len = p - buf;
	return h->nlmsg_len;
}

int main(int argc, char **argv)
{
	unsigned long long count = 0, distinct = 0, i, errors = 0;
	int group = 0, protocol = NETLINK_USERSOCK, opt, fd;
	enum format format = RAW;
	struct sockaddr_nl local = { .nl_family = AF_NETLINK };
	struct sockaddr_nl dst = { .nl_family = AF_NETLINK };
	struct timespec t0, t1;
	char buf[512];

	while ((opt = getopt(argc, argv, "g:n:f:d:p:")) != -1) {
		switch (opt) {
		case 'g': group = atoi(optarg); break;
		case 'n': count = strtoull(optarg, NULL, 10); break;
		case 'f':
			if (!strcmp(optarg, "kevent"))
				format = KEVENT;
			else if (!strcmp(optarg, "genl"))
				format = GENL;
			else if (strcmp(optarg, "raw"))
				goto usage;
			break;
		case 'p': protocol = atoi(optarg); break;
		case 'd': distinct = strtoull(optarg, NULL, 10); break;
		default: goto usage;
		}
	}
	if (group < 1 || group > 32 || !count)
		goto usage;

	fd = socket(AF_NETLINK, SOCK_RAW, protocol);
	if (fd < 0 || bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0) {
		perror("flood: socket");
		return 1;
	}
	dst.nl_groups = 1u << (group - 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 1; i <= count; i++) {
		size_t len = build(buf, format, i, distinct);

		/* ECONNREFUSED: delivered to the group, no kernel socket to unicast to. */
		if (sendto(fd, buf, len, 0, (struct sockaddr *)&dst, sizeof(dst)) < 0 &&
		    errno != ECONNREFUSED)
			errors++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("sent=%llu send_errors=%llu seconds=%.3f rate=%.0f\n", count, errors, s, count / s);
	return errors ? 1 : 0;
usage:
	fprintf(stderr, "usage: flood -g GROUP(1-32) -n COUNT [-f raw|kevent|genl] [-d DISTINCT_NAMES] [-p PROTOCOL]\n");
	return 2;
}
