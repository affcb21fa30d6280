package netlinksrc

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// HandleForBenchmark puts datagram in s's first receive slot, as sent by
// the kernel (port ID 0) or, with fromRoot, by a userspace process of root
// (port ID 4242 with uid 0 in SCM_CREDENTIALS), and handles it as the
// receive loop does after a read.
func HandleForBenchmark(s *Subscription, sink Sink, datagram []byte, fromRoot bool) {
	s.sink = sink
	b := s.takeBatch()
	b.msgs[0].Len = uint32(copy(b.buf, datagram))
	h := &b.msgs[0].Hdr
	h.Flags = 0
	h.Namelen = unix.SizeofSockaddrNetlink
	b.names[0] = unix.RawSockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}
	h.SetControllen(0)
	if fromRoot {
		b.names[0].Pid = 4242
		cm := (*unix.Cmsghdr)(unsafe.Pointer(&b.control[0]))
		cm.Level, cm.Type = unix.SOL_SOCKET, unix.SCM_CREDENTIALS
		cm.SetLen(unix.CmsgLen(unix.SizeofUcred))
		*(*unix.Ucred)(unsafe.Pointer(&b.control[unix.CmsgLen(0)])) = unix.Ucred{Pid: 1, Uid: 0, Gid: 0}
		h.SetControllen(unix.CmsgSpace(unix.SizeofUcred))
	}
	s.handle(1)
}

// spareBatchBytes is the most the batch pool keeps between uses.
func spareBatchBytes() int { return maxSpareBytes }
