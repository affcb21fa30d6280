package netlinksrc

import (
	"slices"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// batchSlots is how many datagrams one recvmmsg call can take: under a
	// flood, one system call per batch instead of per message.
	batchSlots = 32
	// initialSlotSize holds any datagram a kernel module multicasts in
	// practice (they are at most a page or two).
	initialSlotSize = 64 << 10
	// maxBatchBytes caps the memory of a batch when slots grow.
	maxBatchBytes = 4 << 20
	// controlSize holds the SCM_CREDENTIALS message of SO_PASSCRED
	// (CMSG_SPACE(sizeof(struct ucred)) is 32) with room to spare.
	controlSize = 64
	// maxSpareBytes caps the memory of the batches kept for reuse while
	// no source reads with them: four batches of the initial size.
	maxSpareBytes = 4 * batchSlots * initialSlotSize
)

// batch is a set of receive buffers filled by one recvmmsg call, with each
// datagram's sender address and credentials. Its memory is reused for
// every call, so receiving allocates nothing.
type batch struct {
	slotSize int
	buf      []byte
	iovs     []unix.Iovec
	msgs     []unix.Mmsghdr
	names    []unix.RawSockaddrNetlink
	control  []byte
}

// A batchPool lends batches to the sources that have something to read.
// A source takes one when its socket is readable and gives it back when
// the socket has nothing more, so that idle sources, most of a config's,
// hold none (a batch of the initial size is 2 MiB). Reuse keeps receiving
// free of allocations; what the pool keeps between uses is capped at
// maxSpareBytes, the batches given back least recently going first.
type batchPool struct {
	mu    sync.Mutex
	spare []*batch // oldest first
	bytes int
}

// batches is the pool every subscription of the process shares.
var batches = &batchPool{spare: make([]*batch, 0, maxSpareBytes/(batchSlots*initialSlotSize))}

// get returns a batch of slotSize-byte slots.
func (p *batchPool) get(slotSize int) *batch {
	p.mu.Lock()
	for i := len(p.spare) - 1; i >= 0; i-- {
		if b := p.spare[i]; b.slotSize == slotSize {
			p.spare = slices.Delete(p.spare, i, i+1)
			p.bytes -= len(b.buf)
			p.mu.Unlock()
			return b
		}
	}
	p.mu.Unlock()
	return newBatch(slotSize)
}

// put gives b back for reuse.
func (p *batchPool) put(b *batch) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.spare) > 0 && (p.bytes+len(b.buf) > maxSpareBytes || len(p.spare) == cap(p.spare)) {
		p.bytes -= len(p.spare[0].buf)
		p.spare = slices.Delete(p.spare, 0, 1)
	}
	if len(b.buf) <= maxSpareBytes {
		p.spare = append(p.spare, b)
		p.bytes += len(b.buf)
	}
}

func newBatch(slotSize int) *batch {
	slots := max(1, min(batchSlots, maxBatchBytes/slotSize))
	b := &batch{
		slotSize: slotSize,
		buf:      make([]byte, slots*slotSize),
		iovs:     make([]unix.Iovec, slots),
		msgs:     make([]unix.Mmsghdr, slots),
		names:    make([]unix.RawSockaddrNetlink, slots),
		control:  make([]byte, slots*controlSize),
	}
	for i := range b.msgs {
		b.iovs[i].Base = &b.buf[i*slotSize]
		b.iovs[i].SetLen(slotSize)
		h := &b.msgs[i].Hdr
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Control = &b.control[i*controlSize]
	}
	return b
}

// recv receives up to len(b.msgs) datagrams without blocking. MSG_TRUNC
// makes a datagram too big for its slot report its real length.
func (b *batch) recv(fd int) (int, unix.Errno) {
	// The kernel writes back the lengths it used: give each slot its
	// full address and control space again.
	for i := range b.msgs {
		h := &b.msgs[i].Hdr
		h.Namelen = unix.SizeofSockaddrNetlink
		h.SetControllen(controlSize)
		h.Flags = 0
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.msgs[0])), uintptr(len(b.msgs)),
		unix.MSG_DONTWAIT|unix.MSG_TRUNC, 0, 0)
	return int(n), errno
}

// datagram returns the i'th datagram of the last recv, its real length,
// and whether it was cut to fit its slot.
func (b *batch) datagram(i int) (d []byte, n int, truncated bool) {
	n = int(b.msgs[i].Len)
	if b.msgs[i].Hdr.Flags&unix.MSG_TRUNC != 0 || n > b.slotSize {
		return nil, n, true
	}
	off := i * b.slotSize
	return b.buf[off : off+n], n, false
}

// sender returns the i'th datagram's sender port ID (0 is the kernel) and
// the multicast group mask it was sent to (0 for a unicast).
func (b *batch) sender(i int) (portID, groups uint32) {
	if b.msgs[i].Hdr.Namelen < unix.SizeofSockaddrNetlink {
		// No address: nothing says it came from the kernel.
		return ^uint32(0), 0
	}
	return b.names[i].Pid, b.names[i].Groups
}

// uid returns the user ID in the i'th datagram's SCM_CREDENTIALS, which the
// kernel adds while SO_PASSCRED is set, and whether there was one. It
// parses the control messages in place: unix.ParseSocketControlMessage
// would allocate for every datagram.
func (b *batch) uid(i int) (uint32, bool) {
	h := &b.msgs[i].Hdr
	if h.Flags&unix.MSG_CTRUNC != 0 {
		return 0, false
	}
	c := b.control[i*controlSize : i*controlSize+int(min(h.Controllen, controlSize))]
	for len(c) >= unix.SizeofCmsghdr {
		cm := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
		l := int(cm.Len)
		if l < unix.SizeofCmsghdr || l > len(c) {
			return 0, false
		}
		if cm.Level == unix.SOL_SOCKET && cm.Type == unix.SCM_CREDENTIALS && l >= unix.CmsgLen(unix.SizeofUcred) {
			cred := (*unix.Ucred)(unsafe.Pointer(&c[unix.CmsgLen(0)]))
			return cred.Uid, true
		}
		next := unix.CmsgSpace(l - unix.CmsgLen(0))
		if next >= len(c) {
			break
		}
		c = c[next:]
	}
	return 0, false
}
