package decoder

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestUAPIConstants checks the kernel's constants the package defines for
// itself, so that it builds on any GOOS, against golang.org/x/sys/unix's.
func TestUAPIConstants(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"NETLINK_ROUTE", netlinkRoute, unix.NETLINK_ROUTE},
		{"NETLINK_XFRM", netlinkXfrm, unix.NETLINK_XFRM},
		{"NETLINK_AUDIT", netlinkAudit, unix.NETLINK_AUDIT},
		{"NETLINK_CONNECTOR", netlinkConnector, unix.NETLINK_CONNECTOR},

		{"NLMSG_HDRLEN", nlmsgHeaderLen, unix.NLMSG_HDRLEN},
		{"NLMSG_ALIGNTO", nlmsgAlignTo, unix.NLMSG_ALIGNTO},
		{"NLMSG_NOOP", nlmsgNoop, unix.NLMSG_NOOP},
		{"NLMSG_ERROR", nlmsgError, unix.NLMSG_ERROR},
		{"NLMSG_DONE", nlmsgDone, unix.NLMSG_DONE},
		{"NLMSG_OVERRUN", nlmsgOverrun, unix.NLMSG_OVERRUN},
		{"NLM_F_REQUEST", nlmFRequest, unix.NLM_F_REQUEST},
		{"NLM_F_MULTI", nlmFMulti, unix.NLM_F_MULTI},
		{"NLM_F_DUMP", nlmFDump, unix.NLM_F_DUMP},
		{"NLA_HDRLEN", nlaHeaderLen, unix.NLA_HDRLEN},
		{"NLA_F_NESTED", nlaFNested, unix.NLA_F_NESTED},
		{"NLA_TYPE_MASK", nlaTypeMask, ^(unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER) & 0xffff},
		{"GENL_HDRLEN", genlHeaderLen, unix.GENL_HDRLEN},

		{"RTNLGRP_LINK", rtnlgrpLink, unix.RTNLGRP_LINK},
		{"RTNLGRP_NEIGH", rtnlgrpNeigh, unix.RTNLGRP_NEIGH},
		{"RTNLGRP_IPV4_IFADDR", rtnlgrpIPv4Ifaddr, unix.RTNLGRP_IPV4_IFADDR},
		{"RTNLGRP_IPV6_IFADDR", rtnlgrpIPv6Ifaddr, unix.RTNLGRP_IPV6_IFADDR},
		{"RTM_NEWLINK", rtmNewlink, unix.RTM_NEWLINK},
		{"RTM_DELLINK", rtmDellink, unix.RTM_DELLINK},
		{"RTM_GETLINK", rtmGetlink, unix.RTM_GETLINK},
		{"RTM_NEWADDR", rtmNewaddr, unix.RTM_NEWADDR},
		{"RTM_DELADDR", rtmDeladdr, unix.RTM_DELADDR},
		{"RTM_NEWNEIGH", rtmNewneigh, unix.RTM_NEWNEIGH},
		{"sizeof(struct ifinfomsg)", sizeofIfInfomsg, unix.SizeofIfInfomsg},
		{"sizeof(struct ifaddrmsg)", sizeofIfAddrmsg, unix.SizeofIfAddrmsg},
		{"sizeof(struct ifa_cacheinfo)", sizeofIfaCacheinfo, unix.SizeofIfaCacheinfo},
		{"sizeof(struct ndmsg)", sizeofNdMsg, unix.SizeofNdMsg},
		{"IFLA_IFNAME", iflaIfname, unix.IFLA_IFNAME},
		{"IFLA_OPERSTATE", iflaOperstate, unix.IFLA_OPERSTATE},
		{"IFLA_CARRIER_CHANGES", iflaCarrierChanges, unix.IFLA_CARRIER_CHANGES},
		{"IFA_ADDRESS", ifaAddress, unix.IFA_ADDRESS},
		{"IFA_LOCAL", ifaLocal, unix.IFA_LOCAL},
		{"IFA_LABEL", ifaLabel, unix.IFA_LABEL},
		{"IFA_CACHEINFO", ifaCacheinfo, unix.IFA_CACHEINFO},
		{"NDA_DST", ndaDst, unix.NDA_DST},
		{"NUD_FAILED", nudFailed, unix.NUD_FAILED},
		{"AF_UNSPEC", afUnspec, unix.AF_UNSPEC},
		{"AF_INET", afInet, unix.AF_INET},
		{"AF_INET6", afInet6, unix.AF_INET6},
	} {
		if c.got != c.want {
			t.Errorf("%s: the decoder says %d, golang.org/x/sys/unix %d", c.name, c.got, c.want)
		}
	}
}
