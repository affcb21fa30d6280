package netlinksrc

import (
	"math/bits"
	"syscall"
	"time"
	"unsafe"

	"github.com/go-kit/log/level"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/internal/ratelimit"
)

// receive reads datagrams until the socket fails or its deadline passes.
// Errors of single reads, ENOBUFS among them, are counted or logged and
// reading goes on.
func (s *Subscription) receive(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	for {
		if err := rc.Read(s.readOne); err != nil {
			return err
		}
		switch s.errno {
		case 0:
		case unix.ENOBUFS:
			// The queue overflowed; the kernel counted each dropped
			// datagram, and reads the rest of the queue.
			s.overruns.Add(1)
			if q, ok := s.readErrors.Allow(); ok {
				level.Warn(s.logger).Log(ratelimit.Quieted(q, "msg", "Receive queue overflowed, datagrams lost; see kevent_datagrams_lost_total", "err", s.errno)...)
			}
			continue
		case unix.EINTR:
			continue
		case unix.EBADF, unix.ENOTSOCK:
			return s.errno
		default:
			if q, ok := s.readErrors.Allow(); ok {
				level.Warn(s.logger).Log(ratelimit.Quieted(q, "msg", "Receive failed", "err", s.errno)...)
			}
			continue
		}
		s.handle(s.n)
	}
}

// drain accounts for what is queued on a stopping subscription's socket.
// It first leaves the groups, so that nothing more arrives and the kernel's
// drop count is final, then decodes the queue for up to stopDecodeTimeout
// and counts what it could not decode in time as lost.
func (s *Subscription) drain(c *netlink.Conn, joined []uint32) {
	// Every group, also when its family is gone: a family that changed may
	// keep some of them, and leaving a group the kernel dropped is a no-op.
	for _, g := range joined {
		if err := c.LeaveGroup(g); err != nil {
			level.Warn(s.logger).Log("msg", "Cannot leave multicast group at stop; datagrams that arrive while the queue is read are counted too", "group", g, "err", err)
		}
	}
	start := time.Now()
	var decoded, discarded uint64
	var errno unix.Errno
	err := s.control(c, func(fd int) error {
		for {
			var n int
			n, errno = s.takeBatch().recv(fd)
			switch errno {
			case 0:
			case unix.ENOBUFS:
				s.overruns.Add(1)
				continue
			case unix.EINTR:
				continue
			default:
				return nil
			}
			if n == 0 {
				return nil
			}
			if time.Since(start) < s.stopDecodeTimeout {
				s.handle(n)
				decoded += uint64(n)
				continue
			}
			if time.Since(start) > s.stopDecodeTimeout+stopDiscardTimeout {
				// Read, so counted; what is still queued is not.
				discarded += uint64(n)
				errno = unix.ETIMEDOUT
				return nil
			}
			// Out of time: count as lost without decoding.
			discarded += uint64(n)
		}
	})
	s.mu.Lock()
	s.lost += discarded
	s.mu.Unlock()
	kv := []any{"msg", "Read the receive queue at stop", "decoded_datagrams", decoded, "counted_lost_unread", discarded, "duration", time.Since(start)}
	switch {
	case err != nil:
		level.Warn(s.logger).Log(append(kv, "err", err)...)
	case errno != unix.EAGAIN && errno != unix.EWOULDBLOCK:
		level.Warn(s.logger).Log(append(kv, "err", errno)...)
	default:
		level.Debug(s.logger).Log(kv...)
	}
}

// handle checks and decodes the n datagrams of the last batch and hands
// all their events to the sink at once.
func (s *Subscription) handle(n int) {
	var bytes, bad, grow int
	s.events = s.events[:0]
	s.datagrams.Add(uint64(n))
	for i := 0; i < n; i++ {
		d, l, truncated := s.batch.datagram(i)
		bytes += l
		if reason, ok := s.check(s.batch, i); !ok {
			s.rejected[reason].Add(1)
			if q, ok := s.rejectLogger.Allow(); ok {
				port, groups := s.batch.sender(i)
				kv := []any{"msg", "Rejected a datagram from a sender the source does not trust; see kevent_datagrams_rejected_total", "reason", reason, "sender_port_id", port, "group_mask", groups}
				if uid, ok := s.batch.uid(i); ok {
					kv = append(kv, "sender_uid", uid)
				}
				level.Warn(s.logger).Log(ratelimit.Quieted(q, kv...)...)
			}
			continue
		}
		if truncated {
			// Too big for its slot: count it as undecodable and make
			// room for the next one.
			bad++
			grow = max(grow, l)
			if q, ok := s.readErrors.Allow(); ok {
				level.Warn(s.logger).Log(ratelimit.Quieted(q, "msg", "Datagram larger than the receive buffer, dropped and counted as a decode error", "bytes", l, "buffer", s.batch.slotSize)...)
			}
			if s.malformed != nil {
				s.malformed.Malformed(nil, l, 1)
			}
			continue
		}
		var b int
		s.events, b = s.dec.Decode(s.events, d)
		bad += b
		if b > 0 && s.malformed != nil {
			s.malformed.Malformed(d, l, b)
		}
	}
	s.sink.Record(s.events, bytes, bad)
	s.eventsUsed = max(s.eventsUsed, len(s.events))
	if grow > 0 && s.slotSize < maxSlotSize {
		// The next read borrows a batch with room for it.
		s.slotSize = min(maxSlotSize, 1<<bits.Len(uint(grow)))
		s.releaseBatch()
	}
}

// getMeminfo reads the socket's SO_MEMINFO; a variable so that tests can
// make it fail.
var getMeminfo = func(fd uintptr, mem *[unix.SK_MEMINFO_VARS]uint32) syscall.Errno {
	l := uint32(unsafe.Sizeof(*mem))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&mem[0])), uintptr(unsafe.Pointer(&l)), 0)
	return errno
}

// readDropsLocked adds what the kernel dropped at the current socket since
// the last read. sk_drops is 32 bits wide; differences stay exact across
// its wraparound. A failed read is counted and logged: the loss count is
// stale until a read succeeds.
func (s *Subscription) readDropsLocked() {
	rc, err := s.conn.SyscallConn()
	if err != nil {
		s.dropReadFailed(err)
		return
	}
	var mem [unix.SK_MEMINFO_VARS]uint32
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) { errno = getMeminfo(fd, &mem) }); err != nil {
		s.dropReadFailed(err)
		return
	}
	if errno != 0 {
		s.dropReadFailed(errno)
		return
	}
	cur := mem[unix.SK_MEMINFO_DROPS]
	s.lost += uint64(cur - s.lastDrops)
	s.lastDrops = cur
}

func (s *Subscription) dropReadFailed(err error) {
	s.dropReadErrors.Add(1)
	if q, ok := s.dropsLogger.Allow(); ok {
		level.Error(s.logger).Log(ratelimit.Quieted(q, "msg", "Cannot read the kernel's drop count (SO_MEMINFO); kevent_datagrams_lost_total is stale until it can", "err", err)...)
	}
}
