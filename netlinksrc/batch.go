package netlinksrc

import (
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
)

// batch is a set of receive buffers filled by one recvmmsg call. Its
// memory is reused for every call, so receiving allocates nothing.
type batch struct {
	slotSize int
	buf      []byte
	iovs     []unix.Iovec
	msgs     []unix.Mmsghdr
}

func newBatch(slotSize int) *batch {
	slots := max(1, min(batchSlots, maxBatchBytes/slotSize))
	b := &batch{
		slotSize: slotSize,
		buf:      make([]byte, slots*slotSize),
		iovs:     make([]unix.Iovec, slots),
		msgs:     make([]unix.Mmsghdr, slots),
	}
	for i := range b.msgs {
		b.iovs[i].Base = &b.buf[i*slotSize]
		b.iovs[i].SetLen(slotSize)
		b.msgs[i].Hdr.Iov = &b.iovs[i]
		b.msgs[i].Hdr.SetIovlen(1)
	}
	return b
}

// recv receives up to len(b.msgs) datagrams without blocking. MSG_TRUNC
// makes a datagram too big for its slot report its real length.
func (b *batch) recv(fd int) (int, unix.Errno) {
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
