// SPDX-License-Identifier: GPL-2.0
/*
 * seed: the netlink multicast example from the blog post the project started
 * from, kept as close to it as a test allows.
 *
 * It registers classic netlink protocol 29 with 2 multicast groups and no
 * NL_CFG_F_NONROOT_RECV (so only a privileged listener can bind the group),
 * and 10 seconds after creating its socket multicasts one message to group 2:
 * type NLMSG_DONE, sequence 1, payload "Hello from kernel" without a NUL.
 *
 * The blog sleeps with msleep(10000) inside its init function, which blocks
 * insmod for 10 seconds. Here a delayed work sends the message instead, so
 * that insmod returns at once; the message and its timing are unchanged.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/netlink.h>
#include <linux/string.h>
#include <linux/workqueue.h>
#include <net/net_namespace.h>
#include <net/netlink.h>
#include <net/sock.h>

#define SEED_GROUP	2
#define SEED_DELAY_MS	10000

static int protocol = 29;
module_param(protocol, int, 0444);
MODULE_PARM_DESC(protocol, "classic netlink protocol number (default 29)");

static struct sock *seed_sk;

static void seed_send(struct work_struct *work)
{
	static const char msg[] = "Hello from kernel";
	const int msg_size = sizeof(msg) - 1;	/* no NUL, as in the blog */
	struct sk_buff *skb;
	struct nlmsghdr *nlh;
	int res;

	skb = nlmsg_new(msg_size, GFP_KERNEL);
	if (!skb) {
		pr_err("failed to allocate new skb\n");
		return;
	}
	nlh = nlmsg_put(skb, 0, 1, NLMSG_DONE, msg_size, 0);
	if (!nlh) {
		nlmsg_free(skb);
		return;
	}
	memcpy(nlmsg_data(nlh), msg, msg_size);

	res = nlmsg_multicast(seed_sk, skb, 0, SEED_GROUP, GFP_KERNEL);
	if (res < 0)
		pr_info("error while sending to user: %d\n", res);
	else
		pr_info("sent \"%s\"\n", msg);
}

static DECLARE_DELAYED_WORK(seed_work, seed_send);

static int __init seed_init(void)
{
	struct netlink_kernel_cfg cfg = {
		.groups = SEED_GROUP,
	};

	seed_sk = netlink_kernel_create(&init_net, protocol, &cfg);
	if (!seed_sk) {
		pr_err("error creating socket\n");
		return -EBUSY;
	}

	/* Instead of the blog's msleep(10000) + send: insmod returns now. */
	schedule_delayed_work(&seed_work, msecs_to_jiffies(SEED_DELAY_MS));
	return 0;
}

static void __exit seed_exit(void)
{
	cancel_delayed_work_sync(&seed_work);
	netlink_kernel_release(seed_sk);
}

module_init(seed_init);
module_exit(seed_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Netlink multicast blog example: \"Hello from kernel\" on protocol 29, group 2");
