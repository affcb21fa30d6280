/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * kevent netlink wire format: the contract between the kevent kernel module
 * and its listeners (kevent_exporter's "kevent" decoder).
 *
 * Each event is one netlink message of type KEVENT_MSG_EVENT, multicast on
 * the module's classic netlink protocol and group. Its payload is a list of
 * netlink attributes (struct nlattr, 4-byte aligned TLVs); listeners skip
 * attributes they do not know, so new ones can be added without breaking them.
 *
 * This header is the source of truth: the exporter's decoder constants are
 * checked against it by a test.
 */
#ifndef _UAPI_KEVENT_NETLINK_H
#define _UAPI_KEVENT_NETLINK_H

/* Defaults of the module's protocol= and group= parameters. */
#define KEVENT_PROTOCOL_DEFAULT	29
#define KEVENT_GROUP_DEFAULT	2

/* Message types start at NLMSG_MIN_TYPE (0x10): lower ones are reserved. */
enum kevent_msg_type {
	KEVENT_MSG_EVENT = 0x10,	/* one event, attributes below */
};

enum kevent_attr {
	KEVENT_A_UNSPEC,
	KEVENT_A_SEQ,		/* u64: sequence number, 1 for the first event of an instance */
	KEVENT_A_INSTANCE,	/* u64: random id chosen at every module load */
	KEVENT_A_TIMESTAMP_NS,	/* u64: CLOCK_REALTIME of the event, nanoseconds */
	KEVENT_A_NAME,		/* NUL-terminated string, at most KEVENT_NAME_MAX bytes with the NUL */
	KEVENT_A_VALUE,		/* s64: the event's value */
	KEVENT_A_PAYLOAD,	/* NUL-terminated string, at most KEVENT_PAYLOAD_MAX bytes with the NUL; optional */
	KEVENT_A_PAD,		/* padding for 64-bit attributes, carries nothing */
	__KEVENT_A_MAX,
};

#define KEVENT_A_MAX		(__KEVENT_A_MAX - 1)

#define KEVENT_NAME_MAX		64
#define KEVENT_PAYLOAD_MAX	256

#endif /* _UAPI_KEVENT_NETLINK_H */
