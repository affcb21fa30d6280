// SPDX-License-Identifier: GPL-2.0
/*
 * kevent: a reference kernel module that multicasts events over a generic
 * netlink family and, optionally, a classic netlink protocol, for
 * kevent_exporter.
 *
 * Every event is one netlink message whose payload is a list of attributes
 * described in kevent_netlink.h. It goes to each enabled transport:
 *
 *  - the generic netlink family "kevent", multicast group "events" (on
 *    unless genl=0): command KEVENT_CMD_EVENT;
 *  - a classic netlink protocol and group (off unless protocol=17..31 is
 *    given): message type KEVENT_MSG_EVENT.
 *
 * Events come from three sources:
 *
 *  - a periodic heartbeat (delayed work), see the heartbeat_ms parameter;
 *  - root-only sysfs files, /sys/kernel/kevent/emit and /sys/kernel/kevent/burst;
 *  - a netdevice notifier (interfaces of the initial network namespace
 *    registered, unregistered, up, down, changed).
 *
 * Counters are readable in /sys/kernel/kevent/stats.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/ctype.h>
#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/kobject.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/netdevice.h>
#include <linux/netlink.h>
#include <linux/random.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/workqueue.h>
#include <net/genetlink.h>
#include <net/net_namespace.h>
#include <net/netlink.h>
#include <net/sock.h>

#include "kevent_netlink.h"

/* Protocols below 17 belong to the kernel; MAX_LINKS is 32. */
#define KEVENT_PROTOCOL_MIN	17
#define KEVENT_PROTOCOL_MAX	31
/* Multicast groups a classic netlink socket can bind with nl_groups. */
#define KEVENT_GROUPS		32
/* Upper bound of one write to the burst file. */
#define KEVENT_BURST_MAX	10000000U

static bool genl = true;
module_param(genl, bool, 0444);
MODULE_PARM_DESC(genl,
		 "register the generic netlink family \"kevent\" and send events to its group \"events\" (default Y)");

static int protocol;
module_param(protocol, int, 0444);
MODULE_PARM_DESC(protocol,
		 "classic netlink protocol to register and send events to as well, 17..31; 0 registers none (default 0)");

static int group = KEVENT_GROUP_DEFAULT;
module_param(group, int, 0444);
MODULE_PARM_DESC(group,
		 "multicast group of the classic protocol events are sent to, 1..32 (default 2); unused when protocol is 0");

static unsigned int heartbeat_ms = 10000;
module_param(heartbeat_ms, uint, 0444);
MODULE_PARM_DESC(heartbeat_ms,
		 "period of the \"heartbeat\" event in milliseconds, 0 disables it (default 10000)");

/* The classic netlink socket, NULL when protocol is 0. */
static struct sock *kevent_sk;
static struct kobject *kevent_kobj;
static u64 kevent_instance;

/* Multicast groups of the family, by their index in kevent_genl_mcgrps. */
enum kevent_genl_mcgrp {
	KEVENT_GENL_MCGRP_EVENTS_IDX,
};

static const struct genl_multicast_group kevent_genl_mcgrps[] = {
	/* No GENL_MCAST_CAP_* flag: unprivileged listeners may join. */
	[KEVENT_GENL_MCGRP_EVENTS_IDX] = { .name = KEVENT_GENL_MCGRP_EVENTS },
};

/*
 * The attributes of KEVENT_CMD_EVENT. The family has no operations for
 * userspace to call (genl_register_family() accepts none): the policy
 * documents the attributes, through CTRL_ATTR_MAXATTR too, and is the one
 * that future operations would validate requests with.
 */
static const struct nla_policy kevent_genl_policy[KEVENT_A_MAX + 1] = {
	[KEVENT_A_SEQ]		= { .type = NLA_U64 },
	[KEVENT_A_INSTANCE]	= { .type = NLA_U64 },
	[KEVENT_A_TIMESTAMP_NS]	= { .type = NLA_U64 },
	[KEVENT_A_NAME]		= { .type = NLA_NUL_STRING,
				    .len = KEVENT_NAME_MAX - 1 },
	[KEVENT_A_VALUE]	= { .type = NLA_S64 },
	[KEVENT_A_PAYLOAD]	= { .type = NLA_NUL_STRING,
				    .len = KEVENT_PAYLOAD_MAX - 1 },
	/* KEVENT_A_PAD carries nothing: no policy entry. */
	[KEVENT_A_OBJECT]	= { .type = NLA_NUL_STRING,
				    .len = KEVENT_OBJECT_MAX - 1 },
};

static struct genl_family kevent_genl_family __ro_after_init = {
	.name		= KEVENT_GENL_NAME,
	.version	= KEVENT_GENL_VERSION,
	.maxattr	= KEVENT_A_MAX,
	.policy		= kevent_genl_policy,
	/*
	 * Initial network namespace only, like the classic socket and the
	 * interfaces the notifier reports.
	 */
	.netnsok	= false,
	.module		= THIS_MODULE,
	.mcgrps		= kevent_genl_mcgrps,
	.n_mcgrps	= ARRAY_SIZE(kevent_genl_mcgrps),
};

/* Sequence number of the last event the module tried to send. */
static atomic64_t kevent_seq = ATOMIC64_INIT(0);

/*
 * What became of the events, per transport (an event sent to both counts
 * once in each).
 */
struct kevent_stats {
	/*
	 * Events handed to the listeners of the group. A listener whose
	 * receive buffer is full loses the event silently (the kernel counts
	 * it in the socket's drops and reports ENOBUFS to it), unless it set
	 * the NETLINK_BROADCAST_ERROR socket option: then the event counts in
	 * delivery_failed instead.
	 */
	atomic64_t sent;
	/*
	 * Events no listener took (-ESRCH): nobody was subscribed, which is
	 * normal, or every subscriber's receive buffer was full.
	 */
	atomic64_t no_listener;
	/* Events a NETLINK_BROADCAST_ERROR listener had no room for (-ENOBUFS). */
	atomic64_t delivery_failed;
	/* Events that were never sent: no memory for the message, or other errors. */
	atomic64_t send_failed;
};

static struct kevent_stats kevent_genl_stats;
static struct kevent_stats kevent_classic_stats;

static atomic64_t kevent_heartbeats = ATOMIC64_INIT(0);
static void kevent_heartbeat_fn(struct work_struct *work);
static DECLARE_DELAYED_WORK(kevent_heartbeat_work, kevent_heartbeat_fn);

/*
 * Set while the netdevice notifier should report events. It is clear while
 * register_netdevice_notifier() and unregister_netdevice_notifier() replay
 * REGISTER/UP and DOWN/UNREGISTER for the interfaces that already exist, so
 * that loading and unloading the module do not look like interfaces
 * appearing and vanishing.
 */
static bool kevent_netdev_live;

/* Set at unload before the sysfs files go: a burst in progress ends early. */
static bool kevent_stopping;

/* One event, as every transport sends it. */
struct kevent_event {
	u64 seq;
	u64 timestamp_ns;
	const char *name;
	s64 value;
	const char *payload;
	const char *object;
};

/* Size of the attributes of @ev, for nlmsg_new() and genlmsg_new(). */
static size_t kevent_attrs_size(const struct kevent_event *ev)
{
	size_t size = 4 * nla_total_size_64bit(sizeof(u64)) +
		      nla_total_size(strlen(ev->name) + 1);

	if (ev->payload)
		size += nla_total_size(strlen(ev->payload) + 1);
	if (ev->object)
		size += nla_total_size(strlen(ev->object) + 1);
	return size;
}

static int kevent_put_attrs(struct sk_buff *skb, const struct kevent_event *ev)
{
	if (nla_put_u64_64bit(skb, KEVENT_A_SEQ, ev->seq, KEVENT_A_PAD) ||
	    nla_put_u64_64bit(skb, KEVENT_A_INSTANCE, kevent_instance,
			      KEVENT_A_PAD) ||
	    nla_put_u64_64bit(skb, KEVENT_A_TIMESTAMP_NS, ev->timestamp_ns,
			      KEVENT_A_PAD) ||
	    nla_put_string(skb, KEVENT_A_NAME, ev->name) ||
	    nla_put_s64(skb, KEVENT_A_VALUE, ev->value, KEVENT_A_PAD) ||
	    (ev->payload && nla_put_string(skb, KEVENT_A_PAYLOAD, ev->payload)) ||
	    (ev->object && nla_put_string(skb, KEVENT_A_OBJECT, ev->object)))
		return -EMSGSIZE;
	return 0;
}

/* Multicast @ev to the family's group "events". */
static int kevent_send_genl(const struct kevent_event *ev, gfp_t gfp)
{
	struct sk_buff *skb;
	void *hdr;

	skb = genlmsg_new(kevent_attrs_size(ev), gfp);
	if (!skb)
		return -ENOMEM;
	hdr = genlmsg_put(skb, 0, 0, &kevent_genl_family, 0, KEVENT_CMD_EVENT);
	if (!hdr || kevent_put_attrs(skb, ev)) {
		nlmsg_free(skb);
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	/* genlmsg_multicast() consumes the skb whatever it returns. */
	return genlmsg_multicast(&kevent_genl_family, skb, 0,
				 KEVENT_GENL_MCGRP_EVENTS_IDX, gfp);
}

/* Multicast @ev to group on the classic protocol. */
static int kevent_send_classic(const struct kevent_event *ev, gfp_t gfp)
{
	struct sk_buff *skb;
	struct nlmsghdr *nlh;

	skb = nlmsg_new(kevent_attrs_size(ev), gfp);
	if (!skb)
		return -ENOMEM;
	nlh = nlmsg_put(skb, 0, 0, KEVENT_MSG_EVENT, 0, 0);
	if (!nlh || kevent_put_attrs(skb, ev)) {
		nlmsg_free(skb);
		return -EMSGSIZE;
	}
	nlmsg_end(skb, nlh);
	/* nlmsg_multicast() consumes the skb whatever it returns. */
	return nlmsg_multicast(kevent_sk, skb, 0, group, gfp);
}

/*
 * Count the result of one transport's send; return 0 when the event was sent
 * or nobody listens, the error otherwise.
 */
static int kevent_account(struct kevent_stats *st, int err)
{
	switch (err) {
	case 0:
		atomic64_inc(&st->sent);
		return 0;
	case -ESRCH:
		atomic64_inc(&st->no_listener);
		return 0;
	case -ENOBUFS:
		atomic64_inc(&st->delivery_failed);
		return err;
	default:
		atomic64_inc(&st->send_failed);
		return err;
	}
}

/* The error to report of two transports': a failure to send beats -ENOBUFS. */
static int kevent_worse(int a, int b)
{
	if (a && a != -ENOBUFS)
		return a;
	return b ? b : a;
}

/*
 * kevent_send - build and multicast one event to every enabled transport
 * @name: event name, shorter than KEVENT_NAME_MAX
 * @value: event value
 * @payload: optional text, shorter than KEVENT_PAYLOAD_MAX, or NULL
 * @object: what the event is about, shorter than KEVENT_OBJECT_MAX, or NULL
 * @gfp: allocation flags for the caller's context
 *
 * The sequence number is taken before anything can fail, so an event that
 * could not be sent leaves a gap that listeners can count; the event has the
 * same sequence number (and timestamp) on both transports.
 *
 * Callers must be event sources that kevent_exit() stops before it
 * unregisters the family and releases the socket.
 *
 * Return: 0 when the event was sent or nobody listens, -ENOBUFS when a
 * listener that set NETLINK_BROADCAST_ERROR had no room for it, another
 * negative errno when a transport could not send it.
 */
static int kevent_send(const char *name, s64 value, const char *payload,
		       const char *object, gfp_t gfp)
{
	const struct kevent_event ev = {
		.seq = atomic64_inc_return(&kevent_seq),
		.timestamp_ns = ktime_get_real_ns(),
		.name = name,
		.value = value,
		.payload = payload,
		.object = object,
	};
	int err = 0;

	if (genl)
		err = kevent_account(&kevent_genl_stats,
				     kevent_send_genl(&ev, gfp));
	if (kevent_sk)
		err = kevent_worse(err,
				   kevent_account(&kevent_classic_stats,
						  kevent_send_classic(&ev, gfp)));
	return err;
}

static void kevent_heartbeat_fn(struct work_struct *work)
{
	s64 n = atomic64_inc_return(&kevent_heartbeats);

	/* Workqueue: process context, may sleep. */
	kevent_send("heartbeat", n, NULL, NULL, GFP_KERNEL);
	queue_delayed_work(system_wq, &kevent_heartbeat_work,
			   msecs_to_jiffies(heartbeat_ms));
}

static bool kevent_name_valid(const char *name)
{
	size_t len = strlen(name);
	size_t i;

	if (len == 0 || len > KEVENT_NAME_MAX - 1)
		return false;
	for (i = 0; i < len; i++) {
		char c = name[i];

		if (!isalnum(c) && c != '_' && c != '.' && c != ':' && c != '-')
			return false;
	}
	return true;
}

static bool kevent_payload_valid(const char *payload)
{
	size_t len = strlen(payload);
	size_t i;

	if (len > KEVENT_PAYLOAD_MAX - 1)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = payload[i];

		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

/* Next whitespace-separated token of *s, or NULL when there is none. */
static char *kevent_next_token(char **s)
{
	char *tok;

	if (!*s)
		return NULL;
	*s = skip_spaces(*s);
	if (!**s)
		return NULL;
	tok = *s;
	while (**s && !isspace(**s))
		(*s)++;
	if (**s) {
		**s = '\0';
		(*s)++;
	} else {
		*s = NULL;
	}
	return tok;
}

/*
 * Copy a sysfs write into a NUL-terminated buffer and strip one trailing
 * newline. Sysfs limits writes to PAGE_SIZE.
 */
static char *kevent_copy_line(const char *buf, size_t count)
{
	char *line = kmemdup_nul(buf, count, GFP_KERNEL);
	size_t len;

	if (!line)
		return NULL;
	len = strlen(line);
	if (len && line[len - 1] == '\n')
		line[len - 1] = '\0';
	return line;
}

/*
 * Parse the "name value" that starts every write: a valid event name and a
 * decimal s64. On success *s points past them (or is NULL at the end).
 */
static int kevent_parse_name_value(char **s, char **name, s64 *value)
{
	char *tok;

	*name = kevent_next_token(s);
	if (!*name || !kevent_name_valid(*name))
		return -EINVAL;
	tok = kevent_next_token(s);
	if (!tok || kstrtos64(tok, 10, value))
		return -EINVAL;
	return 0;
}

/* echo "name value [payload...]" > /sys/kernel/kevent/emit */
static ssize_t emit_store(struct kobject *kobj, struct kobj_attribute *attr,
			  const char *buf, size_t count)
{
	char *line, *s, *name, *payload = NULL;
	s64 value;
	int err;

	line = kevent_copy_line(buf, count);
	if (!line)
		return -ENOMEM;
	s = line;

	err = kevent_parse_name_value(&s, &name, &value);
	if (err)
		goto out;
	err = -EINVAL;
	if (s) {
		payload = skip_spaces(s);
		if (!*payload)
			payload = NULL;
		else if (!kevent_payload_valid(payload))
			goto out;
	}

	/* A write(2) to sysfs runs in process context: GFP_KERNEL is fine. */
	err = kevent_send(name, value, payload, NULL, GFP_KERNEL);
	/* A listener's full receive buffer is the listener's problem. */
	if (err == -ENOBUFS)
		err = 0;
out:
	kfree(line);
	return err ? err : count;
}

static struct kobj_attribute emit_attr = __ATTR_WO(emit);

/* echo "name value count" > /sys/kernel/kevent/burst */
static ssize_t burst_store(struct kobject *kobj, struct kobj_attribute *attr,
			   const char *buf, size_t count)
{
	char *line, *s, *name, *tok;
	s64 value;
	u32 n, i;
	int err;

	line = kevent_copy_line(buf, count);
	if (!line)
		return -ENOMEM;
	s = line;

	err = kevent_parse_name_value(&s, &name, &value);
	if (err)
		goto out;
	err = -EINVAL;
	tok = kevent_next_token(&s);
	if (!tok || kstrtou32(tok, 10, &n) || n == 0 || n > KEVENT_BURST_MAX)
		goto out;
	if (kevent_next_token(&s))
		goto out;

	err = 0;
	for (i = 0; i < n; i++) {
		/* Failures are counted by kevent_send() and show as gaps. */
		kevent_send(name, value, NULL, NULL, GFP_KERNEL);
		cond_resched();
		if (fatal_signal_pending(current)) {
			err = -EINTR;
			break;
		}
		/* Do not make rmmod wait for the rest of the burst. */
		if (READ_ONCE(kevent_stopping)) {
			err = -ENODEV;
			break;
		}
	}
out:
	kfree(line);
	return err ? err : count;
}

static struct kobj_attribute burst_attr = __ATTR_WO(burst);

static int kevent_stats_emit(char *buf, int at, const char *transport,
			     struct kevent_stats *st)
{
	return sysfs_emit_at(buf, at,
			     "%s_sent %lld\n%s_no_listener %lld\n%s_delivery_failed %lld\n%s_send_failed %lld\n",
			     transport, (long long)atomic64_read(&st->sent),
			     transport, (long long)atomic64_read(&st->no_listener),
			     transport, (long long)atomic64_read(&st->delivery_failed),
			     transport, (long long)atomic64_read(&st->send_failed));
}

static ssize_t stats_show(struct kobject *kobj, struct kobj_attribute *attr,
			  char *buf)
{
	int len;

	len = sysfs_emit(buf, "instance %llu\nseq %lld\n", kevent_instance,
			 (long long)atomic64_read(&kevent_seq));
	len += kevent_stats_emit(buf, len, "genl", &kevent_genl_stats);
	len += kevent_stats_emit(buf, len, "classic", &kevent_classic_stats);
	return len;
}

static struct kobj_attribute stats_attr = __ATTR_RO(stats);

static struct attribute *kevent_attrs[] = {
	&emit_attr.attr,
	&burst_attr.attr,
	&stats_attr.attr,
	NULL,
};

static const struct attribute_group kevent_attr_group = {
	.attrs = kevent_attrs,
};

static int kevent_netdev_event(struct notifier_block *nb, unsigned long event,
			       void *ptr)
{
	struct net_device *dev = netdev_notifier_info_to_dev(ptr);
	const char *name;

	if (!READ_ONCE(kevent_netdev_live))
		return NOTIFY_DONE;
	/*
	 * Interfaces of the initial network namespace only: the transports
	 * live there, ifindexes repeat across namespaces, and a container's
	 * interfaces are not the host's business to broadcast.
	 */
	if (!net_eq(dev_net(dev), &init_net))
		return NOTIFY_DONE;

	switch (event) {
	case NETDEV_REGISTER:
		name = "netdev_register";
		break;
	case NETDEV_UNREGISTER:
		name = "netdev_unregister";
		break;
	case NETDEV_UP:
		name = "netdev_up";
		break;
	case NETDEV_DOWN:
		name = "netdev_down";
		break;
	case NETDEV_CHANGE:
		name = "netdev_change";
		break;
	default:
		return NOTIFY_DONE;
	}

	/*
	 * Netdevice notifiers are called with RTNL held (ASSERT_RTNL() in
	 * call_netdevice_notifiers_info()); RTNL is a mutex, so this is
	 * process context and GFP_KERNEL may sleep here.
	 */
	/* The interface is the event's object, and its payload as before. */
	kevent_send(name, dev->ifindex, dev->name, dev->name, GFP_KERNEL);
	return NOTIFY_DONE;
}

static struct notifier_block kevent_netdev_nb = {
	.notifier_call = kevent_netdev_event,
};

static void kevent_log_stats(const char *transport, struct kevent_stats *st)
{
	pr_info("%s: sent %lld no_listener %lld delivery_failed %lld send_failed %lld\n",
		transport, (long long)atomic64_read(&st->sent),
		(long long)atomic64_read(&st->no_listener),
		(long long)atomic64_read(&st->delivery_failed),
		(long long)atomic64_read(&st->send_failed));
}

/*
 * Set up the transports first (classic socket, family), then the event
 * sources (sysfs files, netdevice notifier, heartbeat): nothing can send
 * before there is somewhere to send to. kevent_exit() and the error path
 * undo this in the reverse order.
 */
static int __init kevent_init(void)
{
	struct netlink_kernel_cfg cfg = {
		.groups = KEVENT_GROUPS,
		.flags = NL_CFG_F_NONROOT_RECV,
	};
	int err;

	if (protocol &&
	    (protocol < KEVENT_PROTOCOL_MIN || protocol > KEVENT_PROTOCOL_MAX)) {
		pr_err("protocol=%d is out of range: 0 (none) or %d..%d\n",
		       protocol, KEVENT_PROTOCOL_MIN, KEVENT_PROTOCOL_MAX);
		return -EINVAL;
	}
	if (group < 1 || group > KEVENT_GROUPS) {
		pr_err("group=%d is out of range 1..%d\n", group,
		       KEVENT_GROUPS);
		return -EINVAL;
	}
	if (!genl && !protocol) {
		pr_err("genl=0 without protocol=%d..%d leaves no transport\n",
		       KEVENT_PROTOCOL_MIN, KEVENT_PROTOCOL_MAX);
		return -EINVAL;
	}

	kevent_instance = get_random_u64();

	if (protocol) {
		kevent_sk = netlink_kernel_create(&init_net, protocol, &cfg);
		if (!kevent_sk) {
			pr_err("cannot create netlink protocol %d (in use?)\n",
			       protocol);
			return -EBUSY;
		}
	}

	if (genl) {
		err = genl_register_family(&kevent_genl_family);
		if (err) {
			pr_err("cannot register generic netlink family %s: %d\n",
			       KEVENT_GENL_NAME, err);
			goto err_release_sock;
		}
	}

	kevent_kobj = kobject_create_and_add("kevent", kernel_kobj);
	if (!kevent_kobj) {
		err = -ENOMEM;
		goto err_unregister_family;
	}
	err = sysfs_create_group(kevent_kobj, &kevent_attr_group);
	if (err)
		goto err_put_kobj;

	err = register_netdevice_notifier(&kevent_netdev_nb);
	if (err)
		goto err_remove_group;
	WRITE_ONCE(kevent_netdev_live, true);

	if (heartbeat_ms)
		queue_delayed_work(system_wq, &kevent_heartbeat_work,
				   msecs_to_jiffies(heartbeat_ms));

	if (genl)
		pr_info("generic netlink family %s id %d version %d group %s\n",
			KEVENT_GENL_NAME, kevent_genl_family.id,
			KEVENT_GENL_VERSION, KEVENT_GENL_MCGRP_EVENTS);
	if (protocol)
		pr_info("classic netlink protocol %d group %d\n", protocol,
			group);
	pr_info("instance %llu heartbeat_ms %u\n", kevent_instance,
		heartbeat_ms);
	return 0;

	/*
	 * Writes may have started once the sysfs files existed:
	 * sysfs_remove_group() waits for them (see kevent_exit()) before the
	 * family and the socket go.
	 */
err_remove_group:
	WRITE_ONCE(kevent_stopping, true);
	sysfs_remove_group(kevent_kobj, &kevent_attr_group);
err_put_kobj:
	kobject_put(kevent_kobj);
err_unregister_family:
	if (genl)
		genl_unregister_family(&kevent_genl_family);
err_release_sock:
	if (kevent_sk)
		netlink_kernel_release(kevent_sk);
	return err;
}

/*
 * Unload in the reverse order of kevent_init(). Every event source is
 * stopped, and each stop waits for the sends it has in flight, before the
 * transports go, so that no kevent_send() runs while or after the family is
 * unregistered and the socket released:
 *
 *  - cancel_delayed_work_sync() cancels the heartbeat and waits for a
 *    running one, which cannot re-queue itself past it;
 *  - unregister_netdevice_notifier() takes RTNL, which every notifier call
 *    holds: when it returns, no call runs and none can start;
 *  - sysfs_remove_group() deactivates the files (new writes fail with
 *    ENODEV) and waits until every emit or burst write in progress has
 *    returned (kernfs drains the files' active references);
 *    kevent_stopping ends a long burst early instead of making rmmod wait
 *    for it.
 *
 * Listeners of the family do not hold the module (only classic sockets on
 * its protocol do): genl_unregister_family() removes them from the group
 * and they simply receive nothing more.
 */
static void __exit kevent_exit(void)
{
	WRITE_ONCE(kevent_stopping, true);
	cancel_delayed_work_sync(&kevent_heartbeat_work);
	WRITE_ONCE(kevent_netdev_live, false);
	unregister_netdevice_notifier(&kevent_netdev_nb);
	sysfs_remove_group(kevent_kobj, &kevent_attr_group);
	kobject_put(kevent_kobj);
	if (genl)
		genl_unregister_family(&kevent_genl_family);
	if (kevent_sk)
		netlink_kernel_release(kevent_sk);

	pr_info("unloaded: seq %lld\n", (long long)atomic64_read(&kevent_seq));
	if (genl)
		kevent_log_stats("genl", &kevent_genl_stats);
	if (protocol)
		kevent_log_stats("classic", &kevent_classic_stats);
}

module_init(kevent_init);
module_exit(kevent_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kevent_exporter authors");
MODULE_DESCRIPTION("Multicast kernel events over generic (and classic) netlink for kevent_exporter");
