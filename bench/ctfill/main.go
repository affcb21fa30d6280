// Command ctfill fills the connection tracking table of its network
// namespace with UDP entries: one datagram from one socket to each of n
// loopback addresses (127.1.0.0 and on, port 9, where nothing listens),
// so that each is a connection of its own that never sees a reply. It is
// bench/conntrack.sh's load: flushing the table then makes a burst of n
// DESTROY events.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
)

func main() {
	n := flag.Int("n", 200000, "entries to make (at most 2^23)")
	flag.Parse()
	if *n < 0 || *n > 1<<23 {
		log.Fatalf("-n %d out of range 0-%d", *n, 1<<23)
	}
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	msg := []byte("anyone?")
	for i := range *n {
		// 127.1.0.0 + i: 127.0.0.0/8 is all loopback.
		dst := netip.AddrFrom4([4]byte{127, byte(1 + i>>16), byte(i >> 8), byte(i)})
		if _, err := c.WriteToUDPAddrPort(msg, netip.AddrPortFrom(dst, 9)); err != nil {
			log.Fatalf("datagram %d to %v: %v", i, dst, err)
		}
	}
	fmt.Printf("sent=%d\n", *n)
}
