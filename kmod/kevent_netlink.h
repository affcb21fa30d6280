/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * kevent netlink wire format: the contract between the kevent kernel module
 * and its listeners (kevent_exporter's "kevent" decoder).
 *
 * Each event is one netlink message carrying a list of netlink attributes
 * (struct nlattr, 4-byte aligned TLVs, enum kevent_attr below); listeners
 * skip attributes they do not know, so new ones can be added without
 * breaking them. The module sends every event to each transport that is
 * enabled:
 *
 *  - generic netlink (the default): the family KEVENT_GENL_NAME, version
 *    KEVENT_GENL_VERSION, multicast group KEVENT_GENL_MCGRP_EVENTS, in the
 *    initial network namespace. Family and group ids are assigned at run
 *    time: resolve them by name with CTRL_CMD_GETFAMILY. A message is a
 *    struct nlmsghdr whose nlmsg_type is the family id, a struct genlmsghdr
 *    with cmd KEVENT_CMD_EVENT and version KEVENT_GENL_VERSION, then the
 *    attributes.
 *  - classic netlink (opt-in, module parameter protocol=17..31): a struct
 *    nlmsghdr of type KEVENT_MSG_EVENT, then the attributes, multicast to
 *    the group of the module's group= parameter.
 *
 * The same event carries the same attributes, KEVENT_A_SEQ included, on
 * both transports.
 *
 * This header is the source of truth: the exporter's decoder constants are
 * checked against it by a test.
 */
#ifndef _UAPI_KEVENT_NETLINK_H
#define _UAPI_KEVENT_NETLINK_H

/* Generic netlink: the family's name and version, and its multicast group. */
#define KEVENT_GENL_NAME		"kevent"
#define KEVENT_GENL_VERSION		1
#define KEVENT_GENL_MCGRP_EVENTS	"events"

/* Generic netlink commands (struct genlmsghdr's cmd). */
enum kevent_cmd {
	KEVENT_CMD_UNSPEC,
	KEVENT_CMD_EVENT,	/* one event, multicast; attributes below */
	__KEVENT_CMD_MAX,
};

#define KEVENT_CMD_MAX		(__KEVENT_CMD_MAX - 1)

/*
 * Classic netlink: the default of the module's group= parameter. Its
 * protocol= parameter defaults to 0, no classic protocol; the seed-style
 * setup is protocol=29 group=2.
 */
#define KEVENT_GROUP_DEFAULT	2

/*
 * Classic netlink message types start at NLMSG_MIN_TYPE (0x10): lower ones
 * are reserved.
 */
enum kevent_msg_type {
	KEVENT_MSG_EVENT = 0x10,	/* one event, attributes below */
};

enum kevent_attr {
	KEVENT_A_UNSPEC,
	/* u64: sequence number, 1 for the first event of an instance */
	KEVENT_A_SEQ,
	/* u64: random id chosen at every module load */
	KEVENT_A_INSTANCE,
	/* u64: CLOCK_REALTIME of the event, nanoseconds */
	KEVENT_A_TIMESTAMP_NS,
	/* NUL-terminated string, at most KEVENT_NAME_MAX bytes with the NUL */
	KEVENT_A_NAME,
	/* s64: the event's value */
	KEVENT_A_VALUE,
	/*
	 * NUL-terminated string, at most KEVENT_PAYLOAD_MAX bytes with the
	 * NUL; optional
	 */
	KEVENT_A_PAYLOAD,
	/* padding for 64-bit attributes, carries nothing */
	KEVENT_A_PAD,
	/*
	 * NUL-terminated string, at most KEVENT_OBJECT_MAX bytes with the NUL;
	 * optional: what the event is about (netdev events: the interface)
	 */
	KEVENT_A_OBJECT,
	__KEVENT_A_MAX,
};

#define KEVENT_A_MAX		(__KEVENT_A_MAX - 1)

#define KEVENT_NAME_MAX		64
#define KEVENT_PAYLOAD_MAX	256
#define KEVENT_OBJECT_MAX	64

#endif /* _UAPI_KEVENT_NETLINK_H */
