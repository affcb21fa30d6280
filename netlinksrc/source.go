// Package netlinksrc subscribes to netlink multicast groups and feeds the
// datagrams it receives, decoded, to a sink.
package netlinksrc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/decoder"
)

const (
	// protocolRetryInterval is how often a source whose protocol is not
	// registered looks for it in /proc/net/netlink, so that it attaches
	// well within a second of a module creating its socket.
	protocolRetryInterval = 100 * time.Millisecond
	// unlistedRetryInterval is how often a source whose protocol is not
	// registered tries again when /proc/net/netlink cannot tell it when the
	// protocol appears.
	unlistedRetryInterval = 5 * time.Second
	// maxRetryInterval caps the backoff after other errors.
	maxRetryInterval = 30 * time.Second
	// logInterval rate-limits the log lines of a repeating error.
	logInterval = 10 * time.Second

	// maxSlotSize is the largest datagram the source makes room for.
	maxSlotSize = 4 << 20
)

// Config says what a Source subscribes to.
type Config struct {
	// Name names the source in logs.
	Name string
	// Protocol is the classic netlink protocol, 0-31.
	Protocol int
	// Groups are multicast group numbers, 1-based as the kernel numbers them.
	Groups []uint32
	// ReceiveBufferBytes asks for this socket receive buffer; 0 keeps the
	// kernel's default.
	ReceiveBufferBytes int
}

// A Sink takes the events decoded from each datagram.
type Sink interface {
	// Record is called with the events of one or more datagrams, n bytes
	// in all, in which decodeErrors messages were malformed. events is
	// reused after Record returns.
	Record(events []decoder.Event, n, decodeErrors int)
}

// Source is one netlink socket subscribed to multicast groups. It keeps
// the socket open while it runs, reopening it after errors, and reads,
// decodes and hands over every datagram.
type Source struct {
	cfg    Config
	dec    decoder.Decoder
	sink   Sink
	logger log.Logger

	// mu guards conn and the drop accounting against scrapes. conn is set
	// while the source is up.
	mu   sync.Mutex
	conn *netlink.Conn
	// drops counts the kernel's drops over all sockets; lastDrops is the
	// current socket's 32-bit counter when it was last read.
	drops     uint64
	lastDrops uint32

	rcvbuf   atomic.Int64
	overruns atomic.Uint64

	readErrors *rateLimitedLogger
	openErrors *rateLimitedLogger

	// Receive state, owned by the Run goroutine.
	batch   *batch
	events  []decoder.Event
	n       int
	errno   unix.Errno
	readOne func(fd uintptr) bool
}

// New returns a Source that decodes what it receives with dec and hands
// the events to sink. It opens nothing until Run.
func New(cfg Config, dec decoder.Decoder, sink Sink, logger log.Logger) *Source {
	logger = log.With(logger, "source", cfg.Name, "protocol", cfg.Protocol, "groups", fmt.Sprint(cfg.Groups))
	s := &Source{
		cfg:        cfg,
		dec:        dec,
		sink:       sink,
		logger:     logger,
		readErrors: &rateLimitedLogger{logger: level.Warn(logger), interval: logInterval},
		openErrors: &rateLimitedLogger{logger: level.Error(logger), interval: logInterval},
		batch:      newBatch(initialSlotSize),
	}
	// Made once: a closure built per read would be allocated per read.
	s.readOne = func(fd uintptr) bool {
		s.n, s.errno = s.batch.recv(int(fd))
		return s.errno != unix.EAGAIN && s.errno != unix.EWOULDBLOCK
	}
	return s
}

// Stats reports the source's socket.
func (s *Source) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.readDropsLocked()
	}
	return Stats{
		Up:                 s.conn != nil,
		ReceiveBufferBytes: int(s.rcvbuf.Load()),
		Overruns:           s.overruns.Load(),
		Drops:              s.drops,
	}
}

// Run opens the socket and receives until ctx is done. It retries a
// protocol that is not registered yet as soon as it appears (see
// worthRetrying) and other errors with backoff, so a source attaches when
// its kernel module appears.
func (s *Source) Run(ctx context.Context) {
	backoff := time.Second
	waiting := false
	var lastTry time.Time
	for ctx.Err() == nil {
		if waiting && !s.worthRetrying(lastTry) {
			select {
			case <-ctx.Done():
			case <-time.After(protocolRetryInterval):
			}
			continue
		}
		lastTry = time.Now()
		c, err := s.open()
		if err != nil {
			wait := s.openFailed(err, &waiting, &backoff)
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			continue
		}
		if waiting {
			level.Info(s.logger).Log("msg", "Netlink protocol registered, source attached")
		}
		waiting, backoff = false, time.Second
		s.mu.Lock()
		s.conn, s.lastDrops = c, 0
		s.mu.Unlock()

		stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Now()) })
		err = s.receive(c)
		stop()
		s.mu.Lock()
		s.readDropsLocked()
		s.conn = nil
		s.mu.Unlock()
		_ = c.Close()
		if ctx.Err() == nil {
			// A socket that fails at once again must not spin.
			s.openErrors.Log("msg", "Netlink socket failed, reopening in a second", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// worthRetrying says whether a source waiting for its protocol should try
// to open its socket again. Each socket() on an unregistered protocol makes
// the kernel run modprobe, so the source waits until a kernel socket of the
// protocol shows in /proc/net/netlink (in the exporter's network namespace,
// the only one whose multicasts it could receive), or, where that file
// cannot be read, tries every 5 s.
func (s *Source) worthRetrying(lastTry time.Time) bool {
	listed, err := protocolListed(procNetNetlink, s.cfg.Protocol)
	if err != nil {
		return time.Since(lastTry) >= unlistedRetryInterval
	}
	return listed
}

// procNetNetlink lists the netlink sockets of the reader's network namespace.
const procNetNetlink = "/proc/net/netlink"

// protocolListed reports whether the netlink socket table at path, in the
// format of /proc/net/netlink, has a socket of protocol (the Eth column).
func protocolListed(path string, protocol int) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	want := strconv.Itoa(protocol)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 1 && fields[1] == want {
			return true, nil
		}
	}
	return false, sc.Err()
}

// openFailed logs why the socket could not be opened and says how long
// to wait before the next try.
func (s *Source) openFailed(err error, waiting *bool, backoff *time.Duration) time.Duration {
	switch {
	case errors.Is(err, unix.EPROTONOSUPPORT):
		if !*waiting {
			level.Warn(s.logger).Log("msg", "Netlink protocol not registered: the kernel module that provides it is not loaded; waiting for it", "err", err)
			*waiting = true
		}
		return protocolRetryInterval
	case errors.Is(err, unix.EPERM):
		s.openErrors.Log("msg", "Not permitted to subscribe to the multicast groups: run with CAP_NET_ADMIN, or have the kernel socket created with NL_CFG_F_NONROOT_RECV", "err", err)
	default:
		s.openErrors.Log("msg", "Cannot open netlink socket", "err", err)
	}
	wait := *backoff
	*backoff = min(2**backoff, maxRetryInterval)
	return wait
}

// open makes the source's socket, subscribed and with its receive buffer.
func (s *Source) open() (*netlink.Conn, error) {
	var mask uint32
	var joins []uint32
	for _, g := range s.cfg.Groups {
		if g <= 32 {
			mask |= 1 << (g - 1)
		} else {
			joins = append(joins, g)
		}
	}
	// Port ID 0: the kernel assigns a unique one.
	c, err := netlink.Dial(s.cfg.Protocol, &netlink.Config{Groups: mask})
	if err != nil {
		return nil, err
	}
	for _, g := range joins {
		if err := c.JoinGroup(g); err != nil {
			c.Close()
			return nil, fmt.Errorf("joining group %d: %w", g, err)
		}
	}
	if s.cfg.ReceiveBufferBytes > 0 {
		// SO_RCVBUFFORCE where permitted, else SO_RCVBUF capped by
		// net.core.rmem_max.
		if err := c.SetReadBuffer(s.cfg.ReceiveBufferBytes); err != nil {
			level.Warn(s.logger).Log("msg", "Cannot set receive buffer size", "bytes", s.cfg.ReceiveBufferBytes, "err", err)
		}
	}
	if n, err := c.ReadBuffer(); err == nil {
		s.rcvbuf.Store(int64(n))
		// The kernel doubles what it grants, for its bookkeeping, and
		// caps the doubled value at INT_MAX.
		if n/2 < min(s.cfg.ReceiveBufferBytes, math.MaxInt32/2) {
			level.Warn(s.logger).Log("msg", "Kernel granted a smaller receive buffer than configured; raise net.core.rmem_max or grant CAP_NET_ADMIN",
				"configured", s.cfg.ReceiveBufferBytes, "usable", n/2, "granted_with_kernel_overhead", n)
		}
	}
	return c, nil
}

// receive reads datagrams until the socket fails or its deadline passes.
// Errors of single reads, ENOBUFS among them, are counted or logged and
// reading goes on.
func (s *Source) receive(c *netlink.Conn) error {
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
			// message, and reads the rest of the queue.
			s.overruns.Add(1)
			s.readErrors.Log("msg", "Receive queue overflowed, messages lost; see kevent_messages_lost_total", "err", s.errno)
			continue
		case unix.EINTR:
			continue
		case unix.EBADF, unix.ENOTSOCK:
			return s.errno
		default:
			s.readErrors.Log("msg", "Receive failed", "err", s.errno)
			continue
		}
		s.handle(s.n)
	}
}

// handle decodes the n datagrams of the last batch and hands all their
// events to the sink at once.
func (s *Source) handle(n int) {
	var bytes, bad, grow int
	s.events = s.events[:0]
	for i := 0; i < n; i++ {
		d, l, truncated := s.batch.datagram(i)
		bytes += l
		if truncated {
			// Too big for its slot: count it as undecodable and make
			// room for the next one.
			bad++
			grow = max(grow, l)
			s.readErrors.Log("msg", "Datagram larger than the receive buffer, dropped and counted as a decode error", "bytes", l, "buffer", s.batch.slotSize)
			continue
		}
		var b int
		s.events, b = s.dec.Decode(s.events, d)
		bad += b
	}
	s.sink.Record(s.events, bytes, bad)
	if grow > 0 && s.batch.slotSize < maxSlotSize {
		s.batch = newBatch(min(maxSlotSize, 1<<bits.Len(uint(grow))))
	}
}

// readDropsLocked adds what the kernel dropped at the current socket since
// the last read. sk_drops is 32 bits wide; differences stay exact across
// its wraparound.
func (s *Source) readDropsLocked() {
	rc, err := s.conn.SyscallConn()
	if err != nil {
		return
	}
	var mem [unix.SK_MEMINFO_VARS]uint32
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		l := uint32(unsafe.Sizeof(mem))
		_, _, errno = unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&mem[0])), uintptr(unsafe.Pointer(&l)), 0)
	}); err != nil || errno != 0 {
		return
	}
	cur := mem[unix.SK_MEMINFO_DROPS]
	s.drops += uint64(cur - s.lastDrops)
	s.lastDrops = cur
}
