package decoder

// The classic netlink protocols the decoders of one protocol read
// (NETLINK_* of linux/netlink.h), defined here rather than taken from
// golang.org/x/sys/unix so that the package builds on any GOOS. The linux
// test checks them against unix's.
const (
	netlinkRoute     = 0
	netlinkConnector = 11
)
