package decoder

// MaxProtocols is the number of classic netlink protocols, numbered 0 to
// MaxProtocols-1 (MAX_LINKS of linux/netlink.h).
const MaxProtocols = 32

// The classic netlink protocols the decoders of one protocol read
// (NETLINK_* of linux/netlink.h), defined here rather than taken from
// golang.org/x/sys/unix so that the package builds on any GOOS. The linux
// test checks them against unix's.
const (
	netlinkRoute     = 0
	netlinkXfrm      = 6
	netlinkAudit     = 9
	netlinkConnector = 11
)

// Route netlink's groups, message types, headers and attributes
// (linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h, linux/neighbour.h)
// and the address families (linux/socket.h) the rtnetlink decoder reads.
const (
	rtnlgrpLink       = 1
	rtnlgrpNeigh      = 3
	rtnlgrpIPv4Ifaddr = 5
	rtnlgrpIPv6Ifaddr = 9

	rtmNewlink  = 16
	rtmDellink  = 17
	rtmGetlink  = 18
	rtmNewaddr  = 20
	rtmDeladdr  = 21
	rtmNewneigh = 28

	// The sizes of struct ifinfomsg, ifaddrmsg, ifa_cacheinfo and ndmsg.
	sizeofIfInfomsg    = 16
	sizeofIfAddrmsg    = 8
	sizeofIfaCacheinfo = 16
	sizeofNdMsg        = 12

	iflaIfname         = 3
	iflaOperstate      = 16
	iflaCarrierChanges = 35

	ifaAddress   = 1
	ifaLocal     = 2
	ifaLabel     = 3
	ifaCacheinfo = 6

	ndaDst    = 1
	nudFailed = 0x20

	afUnspec = 0
	afInet   = 2
	afInet6  = 10
)
