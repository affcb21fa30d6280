// SPDX-License-Identifier: GPL-2.0
/*
 * kevent: a reference kernel module that multicasts events over a classic
 * netlink protocol, for kevent_exporter.
 *
 * Every event is one netlink message of type KEVENT_MSG_EVENT whose payload
 * is a list of attributes described in kevent_netlink.h. Events come from
 * three sources:
 *
 *  - a periodic heartbeat (delayed work), see the heartbeat_ms parameter;
 *  - root-only sysfs files, /sys/kernel/kevent/emit and /sys/kernel/kevent/burst;
 *  - a netdevice notifier (interfaces registered, unregistered, up, down,
 *    changed).
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

static int protocol = KEVENT_PROTOCOL_DEFAULT;
module_param(protocol, int, 0444);
MODULE_PARM_DESC(protocol,
		 "classic netlink protocol number to register, 17..31 (default 29)");

static int group = KEVENT_GROUP_DEFAULT;
module_param(group, int, 0444);
MODULE_PARM_DESC(group, "multicast group events are sent to, 1..32 (default 2)");

static unsigned int heartbeat_ms = 10000;
module_param(heartbeat_ms, uint, 0444);
MODULE_PARM_DESC(heartbeat_ms,
		 "period of the \"heartbeat\" event in milliseconds, 0 disables it (default 10000)");

static struct sock *kevent_sk;
static struct kobject *kevent_kobj;
static u64 kevent_instance;

/* Sequence number of the last event the module tried to send. */
static atomic64_t kevent_seq = ATOMIC64_INIT(0);
/*
 * Events handed to the listeners of the group. A listener whose receive
 * buffer is full loses the event silently (the kernel counts it in the
 * socket's drops and reports ENOBUFS to it), unless it set the
 * NETLINK_BROADCAST_ERROR socket option: then the event counts in
 * kevent_delivery_failed instead.
 */
static atomic64_t kevent_sent = ATOMIC64_INIT(0);
/* Events nobody was listening to (-ESRCH): normal, not an error. */
static atomic64_t kevent_no_listener = ATOMIC64_INIT(0);
/* Events a NETLINK_BROADCAST_ERROR listener had no room for (-ENOBUFS). */
static atomic64_t kevent_delivery_failed = ATOMIC64_INIT(0);
/* Events that were never sent: no memory for the message, or other errors. */
static atomic64_t kevent_send_failed = ATOMIC64_INIT(0);

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

/*
 * kevent_send - build and multicast one event
 * @name: event name, shorter than KEVENT_NAME_MAX
 * @value: event value
 * @payload: optional text, shorter than KEVENT_PAYLOAD_MAX, or NULL
 * @gfp: allocation flags for the caller's context
 *
 * The sequence number is taken before anything can fail, so an event that
 * could not be sent leaves a gap that listeners can count.
 *
 * Return: 0 when the event was sent or nobody listens, -ENOBUFS when a
 * listener that set NETLINK_BROADCAST_ERROR had no room for it, another
 * negative errno otherwise.
 */
static int kevent_send(const char *name, s64 value, const char *payload,
		       gfp_t gfp)
{
	u64 seq = atomic64_inc_return(&kevent_seq);
	size_t size;
	struct sk_buff *skb;
	struct nlmsghdr *nlh;
	int err;

	size = 4 * nla_total_size_64bit(sizeof(u64)) +
	       nla_total_size(strlen(name) + 1);
	if (payload)
		size += nla_total_size(strlen(payload) + 1);

	skb = nlmsg_new(size, gfp);
	if (!skb) {
		err = -ENOMEM;
		goto err_count;
	}

	nlh = nlmsg_put(skb, 0, 0, KEVENT_MSG_EVENT, 0, 0);
	if (!nlh) {
		err = -EMSGSIZE;
		goto err_free;
	}

	if (nla_put_u64_64bit(skb, KEVENT_A_SEQ, seq, KEVENT_A_PAD) ||
	    nla_put_u64_64bit(skb, KEVENT_A_INSTANCE, kevent_instance,
			      KEVENT_A_PAD) ||
	    nla_put_u64_64bit(skb, KEVENT_A_TIMESTAMP_NS, ktime_get_real_ns(),
			      KEVENT_A_PAD) ||
	    nla_put_string(skb, KEVENT_A_NAME, name) ||
	    nla_put_s64(skb, KEVENT_A_VALUE, value, KEVENT_A_PAD) ||
	    (payload && nla_put_string(skb, KEVENT_A_PAYLOAD, payload))) {
		err = -EMSGSIZE;
		goto err_cancel;
	}
	nlmsg_end(skb, nlh);

	/* nlmsg_multicast() consumes the skb whatever it returns. */
	err = nlmsg_multicast(kevent_sk, skb, 0, group, gfp);
	switch (err) {
	case 0:
		atomic64_inc(&kevent_sent);
		return 0;
	case -ESRCH:
		atomic64_inc(&kevent_no_listener);
		return 0;
	case -ENOBUFS:
		atomic64_inc(&kevent_delivery_failed);
		return err;
	default:
		goto err_count;
	}

err_cancel:
	nlmsg_cancel(skb, nlh);
err_free:
	nlmsg_free(skb);
err_count:
	atomic64_inc(&kevent_send_failed);
	return err;
}

static void kevent_heartbeat_fn(struct work_struct *work)
{
	s64 n = atomic64_inc_return(&kevent_heartbeats);

	/* Workqueue: process context, may sleep. */
	kevent_send("heartbeat", n, NULL, GFP_KERNEL);
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
	err = kevent_send(name, value, payload, GFP_KERNEL);
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
		kevent_send(name, value, NULL, GFP_KERNEL);
		cond_resched();
		if (fatal_signal_pending(current)) {
			err = -EINTR;
			break;
		}
	}
out:
	kfree(line);
	return err ? err : count;
}

static struct kobj_attribute burst_attr = __ATTR_WO(burst);

static ssize_t stats_show(struct kobject *kobj, struct kobj_attribute *attr,
			  char *buf)
{
	return sysfs_emit(buf,
			  "instance %llu\nseq %lld\nsent %lld\nno_listener %lld\ndelivery_failed %lld\nsend_failed %lld\n",
			  kevent_instance,
			  (long long)atomic64_read(&kevent_seq),
			  (long long)atomic64_read(&kevent_sent),
			  (long long)atomic64_read(&kevent_no_listener),
			  (long long)atomic64_read(&kevent_delivery_failed),
			  (long long)atomic64_read(&kevent_send_failed));
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
	kevent_send(name, dev->ifindex, dev->name, GFP_KERNEL);
	return NOTIFY_DONE;
}

static struct notifier_block kevent_netdev_nb = {
	.notifier_call = kevent_netdev_event,
};

static int __init kevent_init(void)
{
	struct netlink_kernel_cfg cfg = {
		.groups = KEVENT_GROUPS,
		.flags = NL_CFG_F_NONROOT_RECV,
	};
	int err;

	if (protocol < KEVENT_PROTOCOL_MIN || protocol > KEVENT_PROTOCOL_MAX) {
		pr_err("protocol=%d is out of range %d..%d\n", protocol,
		       KEVENT_PROTOCOL_MIN, KEVENT_PROTOCOL_MAX);
		return -EINVAL;
	}
	if (group < 1 || group > KEVENT_GROUPS) {
		pr_err("group=%d is out of range 1..%d\n", group,
		       KEVENT_GROUPS);
		return -EINVAL;
	}

	kevent_instance = get_random_u64();

	kevent_sk = netlink_kernel_create(&init_net, protocol, &cfg);
	if (!kevent_sk) {
		pr_err("cannot create netlink protocol %d (in use?)\n",
		       protocol);
		return -EBUSY;
	}

	kevent_kobj = kobject_create_and_add("kevent", kernel_kobj);
	if (!kevent_kobj) {
		err = -ENOMEM;
		goto err_release_sock;
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

	pr_info("protocol %d group %d instance %llu heartbeat_ms %u\n",
		protocol, group, kevent_instance, heartbeat_ms);
	return 0;

err_remove_group:
	sysfs_remove_group(kevent_kobj, &kevent_attr_group);
err_put_kobj:
	kobject_put(kevent_kobj);
err_release_sock:
	netlink_kernel_release(kevent_sk);
	return err;
}

static void __exit kevent_exit(void)
{
	cancel_delayed_work_sync(&kevent_heartbeat_work);
	WRITE_ONCE(kevent_netdev_live, false);
	unregister_netdevice_notifier(&kevent_netdev_nb);
	sysfs_remove_group(kevent_kobj, &kevent_attr_group);
	kobject_put(kevent_kobj);
	netlink_kernel_release(kevent_sk);

	pr_info("unloaded: seq %lld sent %lld no_listener %lld delivery_failed %lld send_failed %lld\n",
		(long long)atomic64_read(&kevent_seq),
		(long long)atomic64_read(&kevent_sent),
		(long long)atomic64_read(&kevent_no_listener),
		(long long)atomic64_read(&kevent_delivery_failed),
		(long long)atomic64_read(&kevent_send_failed));
}

module_init(kevent_init);
module_exit(kevent_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kevent_exporter authors");
MODULE_DESCRIPTION("Multicast kernel events over classic netlink for kevent_exporter");
