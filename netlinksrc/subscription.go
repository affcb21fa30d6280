// Package netlinksrc subscribes to netlink multicast groups and feeds the
// datagrams it receives, decoded, to a sink.
package netlinksrc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/ratelimit"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc/srcinfo"
)

const (
	// protocolRetryInterval is how often the protocol watcher looks for
	// the sockets of protocols that subscriptions wait for, so that they
	// attach well within a second of a module creating its socket.
	protocolRetryInterval = 100 * time.Millisecond
	// unlistedRetryInterval is how often a subscription whose protocol is
	// not registered tries again when the protocol watcher cannot tell it
	// when the protocol appears.
	unlistedRetryInterval = 5 * time.Second
	// maxRetryInterval caps the backoff after other errors.
	maxRetryInterval = 30 * time.Second

	// maxSlotSize is the largest datagram the subscription makes room for.
	maxSlotSize = 4 << 20
)

const (
	// stopDecodeTimeout bounds how long a stopping subscription goes on
	// decoding what is queued on its socket; what is left after it is
	// read and counted as lost without decoding.
	stopDecodeTimeout = 2 * time.Second
	// stopDiscardTimeout bounds that counting. Nothing new arrives once
	// the groups are left, so the queue only shrinks: reading without
	// decoding empties the largest receive buffer well within it.
	stopDiscardTimeout = 10 * time.Second
)

// Config says what a Subscription subscribes to.
type Config struct {
	// Name names the subscription in logs.
	Name string
	// Protocol is the classic netlink protocol, 0-31; NETLINK_GENERIC for
	// a family.
	Protocol int
	// Groups are multicast group numbers, 1-based as the kernel numbers them.
	Groups []uint32
	// Family names a generic netlink family to follow instead of Protocol
	// and Groups, and GroupNames its multicast groups.
	Family     string
	GroupNames []string
	// ReceiveBufferBytes asks for this socket receive buffer; 0 keeps the
	// kernel's default.
	ReceiveBufferBytes int
	// Senders says whose datagrams are decoded; the others are counted as
	// rejected.
	Senders srcinfo.Senders
	// Requests are netlink messages sent to the kernel (port ID 0) each
	// time the socket is opened and joined, or taken over (HandOver), for
	// protocols that deliver their events only to sockets that ask (the
	// proc connector's PROC_CN_MCAST_LISTEN) and decoders that start from
	// the kernel's answer (rtnetlink's link dump).
	Requests [][]byte
	// Control, for a family, drives the kernel side of the source (the
	// drop monitor's START and STOP).
	Control Control
}

// A Sink takes the events decoded from each datagram.
type Sink interface {
	// Record is called with the events of one or more datagrams, n bytes
	// in all, in which decodeErrors messages were malformed. events is
	// reused after Record returns.
	Record(events []decoder.Event, n, decodeErrors int)
}

// A MalformedSink is a Sink that also wants to see each datagram in which
// messages were malformed, for diagnostics (kevent_exporter monitor). It is
// called before Record with the events of the datagram's batch, off the
// hot path: only for datagrams with errors.
type MalformedSink interface {
	Sink
	// Malformed is called with a datagram in which bad messages could not
	// be decoded; datagram is nil when it did not fit its receive slot
	// (n is then its real length). datagram is reused after it returns.
	Malformed(datagram []byte, n, bad int)
}

// Subscription is one netlink socket subscribed to multicast groups. It
// keeps the socket open while it runs, reopening it after errors, and
// reads, checks, decodes and hands over every datagram.
type Subscription struct {
	cfg    Config
	dec    decoder.Decoder
	logger log.Logger

	// mu guards conn and the loss accounting against scrapes. conn is set
	// while the subscription is up.
	mu   sync.Mutex
	conn *netlink.Conn
	// lost counts the datagrams the kernel dropped over all sockets, and
	// those left unread at stop; lastDrops is the current socket's 32-bit
	// drop counter when it was last read.
	lost      uint64
	lastDrops uint32
	// handover, set by HandOver, receives the socket when s stops; ended
	// is set when Run has returned.
	handover *handover
	ended    bool

	rcvbuf         atomic.Int64
	datagrams      atomic.Uint64
	overruns       atomic.Uint64
	rejected       [srcinfo.NumRejectReasons]atomic.Uint64
	dropReadErrors atomic.Uint64
	groupsJoined   atomic.Int64
	// state is the srcinfo.State while not up; Stats reports StateUp while
	// conn is set. attachments counts sessions.
	state       atomic.Int32
	attachments atomic.Uint64

	// Repeating conditions are logged at most once per
	// ratelimit.Interval each.
	readErrors, openErrors, rejectLogger, dropsLogger ratelimit.Limiter

	// stopDecodeTimeout is the package's, or shorter in tests; stopping,
	// if set (by tests), is called once a stopping subscription's receive
	// loop has been told to end, before it reads the queue.
	stopDecodeTimeout time.Duration
	stopping          func()
	// dialController opens the generic netlink controller (a fake in
	// tests).
	dialController func() (controller, error)

	// adopt is the handover of the predecessor whose socket s takes over,
	// and adoptedDrops that socket's drop counter as the predecessor last
	// read it; both are owned by the Run goroutine.
	adopt        *handover
	adoptedDrops uint32

	// Receive state, owned by the Run goroutine. batch is borrowed from
	// batches while the socket has something to read, nil otherwise;
	// slotSize is the slot size it asks for. eventsUsed is how many of
	// events may point into the batch.
	sink       Sink
	malformed  MalformedSink
	batch      *batch
	slotSize   int
	events     []decoder.Event
	eventsUsed int
	n          int
	errno      unix.Errno
	readOne    func(fd uintptr) bool
}

// New returns a Subscription that decodes what it receives with dec. It
// opens nothing until Run.
func New(cfg Config, dec decoder.Decoder, logger log.Logger) *Subscription {
	if cfg.Family != "" {
		cfg.Protocol = unix.NETLINK_GENERIC
		logger = log.With(logger, "source", cfg.Name, "family", cfg.Family, "groups", strings.Join(cfg.GroupNames, ","))
	} else {
		logger = log.With(logger, "source", cfg.Name, "protocol", cfg.Protocol, "groups", fmt.Sprint(cfg.Groups))
	}
	s := &Subscription{
		cfg:      cfg,
		dec:      dec,
		logger:   logger,
		slotSize: initialSlotSize,

		stopDecodeTimeout: stopDecodeTimeout,
		dialController:    dialController,
	}
	// Made once: a closure built per read would be allocated per read.
	s.readOne = func(fd uintptr) bool {
		s.n, s.errno = s.takeBatch().recv(int(fd))
		if s.errno == unix.EAGAIN || s.errno == unix.EWOULDBLOCK {
			// Nothing more to read: wait without a batch.
			s.releaseBatch()
			return false
		}
		return true
	}
	return s
}

// takeBatch returns the batch to receive into, borrowing one if the
// subscription has none.
func (s *Subscription) takeBatch() *batch {
	if s.batch == nil {
		s.batch = batches.get(s.slotSize)
	}
	return s.batch
}

// releaseBatch gives the batch back, and drops the events that point into
// it so that they do not keep it alive.
func (s *Subscription) releaseBatch() {
	if s.batch == nil {
		return
	}
	clear(s.events[:s.eventsUsed])
	s.eventsUsed = 0
	batches.put(s.batch)
	s.batch = nil
}

// Stats reports the subscription's socket. Reading it reads the kernel's
// drop counter.
func (s *Subscription) Stats() srcinfo.Stats {
	s.mu.Lock()
	up := s.conn != nil
	if up {
		s.readDropsLocked()
	}
	lost := s.lost
	s.mu.Unlock()
	st := srcinfo.Stats{
		State:              srcinfo.State(s.state.Load()),
		Attachments:        s.attachments.Load(),
		ReceiveBufferBytes: int(s.rcvbuf.Load()),
		Datagrams:          s.datagrams.Load(),
		Overruns:           s.overruns.Load(),
		Lost:               lost,
		DropReadErrors:     s.dropReadErrors.Load(),
	}
	if up {
		st.State = srcinfo.StateUp
		st.GroupsJoined = int(s.groupsJoined.Load())
	}
	for i := range s.rejected {
		st.Rejected[i] = s.rejected[i].Load()
	}
	if s.cfg.Control != nil {
		cs := s.cfg.Control.Stats()
		st.Control = &cs
	}
	return st
}

// Run opens the socket and receives into sink until ctx is done, then
// leaves its groups, accounts for what is still queued and returns the
// final stats; or, after HandOver, passes the socket on. It waits for a
// protocol that is not registered yet until it appears (see
// protocolWatcher) and retries other errors with backoff, so a
// subscription attaches when its kernel module appears.
func (s *Subscription) Run(ctx context.Context, sink Sink) srcinfo.Stats {
	defer s.endHandover()
	s.sink = sink
	s.malformed, _ = sink.(MalformedSink)
	if s.cfg.Family != "" {
		s.runFamily(ctx)
		return s.Stats()
	}
	backoff := time.Second
	waiting := false
	// A socket taken over is received on, or handed on, even if ctx ended.
	adopted := s.takeOver()
	for ctx.Err() == nil || adopted != nil {
		if waiting {
			if err := protocols.wait(ctx, s.cfg.Protocol); err != nil {
				if ctx.Err() != nil {
					break
				}
				// The table cannot be read: try now and then.
				if q, ok := s.openErrors.Allow(); ok {
					level.Error(s.logger).Log(ratelimit.Quieted(q, "msg", "Cannot read the netlink socket table to wait for the protocol; retrying now and then", "err", err)...)
				}
				select {
				case <-ctx.Done():
				case <-time.After(unlistedRetryInterval):
				}
			}
			if ctx.Err() != nil {
				break
			}
		}
		var c *netlink.Conn
		var joined []uint32
		var err error
		if adopted != nil {
			c, joined, err = s.adoptSocket(adopted)
			adopted = nil
		} else {
			c, joined, err = s.open(s.cfg.Protocol, s.cfg.Groups, nil)
		}
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
		err = s.session(ctx, c, joined, nil)
		if ctx.Err() == nil {
			s.setState(srcinfo.StateFailed)
			// A socket that fails at once again must not spin.
			if q, ok := s.openErrors.Allow(); ok {
				level.Error(s.logger).Log(ratelimit.Quieted(q, "msg", "Netlink socket failed, reopening in a second", "err", err)...)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return s.Stats()
}

// session receives on c, joined to the groups joined, until ctx ends, the
// socket fails, or interrupt (if not nil) calls its argument. It then
// leaves the groups, accounts for the queue and closes c; or, if ctx ended
// and s has a successor (HandOver), passes c on as it is.
func (s *Subscription) session(ctx context.Context, c *netlink.Conn, joined []uint32, interrupt func(stop func())) error {
	s.groupsJoined.Store(int64(len(joined)))
	s.mu.Lock()
	s.conn, s.lastDrops, s.adoptedDrops = c, s.adoptedDrops, 0
	s.mu.Unlock()
	s.attachments.Add(1)

	var interrupted atomic.Bool
	stopRead := func() { _ = c.SetReadDeadline(time.Now()) }
	stopped := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(stopped)
		stopRead()
		if s.stopping != nil {
			s.stopping()
		}
	})
	done := make(chan struct{})
	if interrupt != nil {
		go func() {
			defer close(done)
			interrupt(func() {
				interrupted.Store(true)
				stopRead()
			})
		}()
	} else {
		close(done)
	}
	err := s.receive(c)
	if !stop() {
		// Its deadline must not land on a successor's reads.
		<-stopped
	}
	s.mu.Lock()
	handedOff := s.handOffLocked(ctx, c, joined)
	s.mu.Unlock()
	if handedOff {
		<-done
		level.Debug(s.logger).Log("msg", "Handed the socket over, joined and with its queue, to the source's new configuration")
		return nil
	}
	if ctx.Err() != nil || interrupted.Load() {
		s.drain(c, joined)
	}
	s.releaseBatch()
	s.mu.Lock()
	s.readDropsLocked()
	s.conn = nil
	s.mu.Unlock()
	_ = c.Close()
	<-done
	if interrupted.Load() {
		return nil
	}
	return err
}

// openFailed logs why the socket could not be opened, sets the state it
// leaves the subscription in, and says how long to wait before the next
// try.
func (s *Subscription) openFailed(err error, waiting *bool, backoff *time.Duration) time.Duration {
	switch {
	case errors.Is(err, unix.EPROTONOSUPPORT):
		s.setState(srcinfo.StateWaiting)
		if !*waiting {
			level.Warn(s.logger).Log("msg", "Netlink protocol not registered: the kernel module that provides it is not loaded; waiting for it", "err", err)
			*waiting = true
		}
		return 0
	case denied(err):
		s.setState(srcinfo.StateDenied)
		if q, ok := s.openErrors.Allow(); ok {
			kv := []any{"msg", "Not permitted to subscribe to the multicast groups: run with CAP_NET_ADMIN, or have the kernel socket created with NL_CFG_F_NONROOT_RECV", "err", err}
			if s.cfg.Protocol == unix.NETLINK_AUDIT {
				// Audit's kernel socket asks for a capability of its own.
				kv = append(kv, "need", "CAP_AUDIT_READ, in the initial network namespace")
			}
			level.Error(s.logger).Log(ratelimit.Quieted(q, kv...)...)
		}
	default:
		s.setState(srcinfo.StateFailed)
		if q, ok := s.openErrors.Allow(); ok {
			level.Error(s.logger).Log(ratelimit.Quieted(q, "msg", "Cannot open netlink socket", "err", err)...)
		}
	}
	wait := *backoff
	*backoff = min(2**backoff, maxRetryInterval)
	return wait
}

// setState records why the subscription is not up.
func (s *Subscription) setState(st srcinfo.State) { s.state.Store(int32(st)) }

// denied reports whether err says a privilege is missing.
func denied(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)
}

// open makes a socket of protocol, joined to as many of groups as the
// kernel lets it and with the subscription's receive buffer. Groups that
// cannot be joined are logged (by their names, when names has them); only
// when none can is it an error.
func (s *Subscription) open(protocol int, groups []uint32, names map[uint32]string) (*netlink.Conn, []uint32, error) {
	// Port ID 0: the kernel assigns a unique one.
	c, err := netlink.Dial(protocol, nil)
	if err != nil {
		return nil, nil, err
	}
	joined, failed, err := s.join(c, groups, names)
	if len(joined) == 0 {
		c.Close()
		return nil, nil, err
	}
	s.joinFailed(joined, failed)
	if err := s.sendRequests(c); err != nil {
		c.Close()
		return nil, nil, err
	}
	if err := s.configure(c, true); err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, joined, nil
}

// sendRequests sends the subscription's requests to the kernel on c.
func (s *Subscription) sendRequests(c *netlink.Conn) error {
	for _, req := range s.cfg.Requests {
		// To the kernel: port ID 0, no group.
		if err := s.control(c, func(fd int) error {
			return unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		}); err != nil {
			return fmt.Errorf("sending the subscription request to the kernel: %w", err)
		}
	}
	return nil
}

// join joins c to groups and returns those it joined, and the others with
// their errors, and the first error.
func (s *Subscription) join(c *netlink.Conn, groups []uint32, names map[uint32]string) (joined []uint32, failed []string, firstErr error) {
	joined = make([]uint32, 0, len(groups))
	for _, g := range groups {
		if err := c.JoinGroup(g); err != nil {
			// The errno alone: the library's wrapping says nothing more.
			var errno unix.Errno
			if errors.As(err, &errno) {
				err = errno
			}
			name := fmt.Sprint(g)
			if n, ok := names[g]; ok {
				name = fmt.Sprintf("%s (%d)", n, g)
			}
			failed = append(failed, fmt.Sprintf("%s: %v", name, err))
			if firstErr == nil {
				firstErr = fmt.Errorf("joining group %s: %w", name, err)
			}
			continue
		}
		joined = append(joined, g)
	}
	return joined, failed, firstErr
}

// joinFailed logs the groups that could not be joined beside those that
// were.
func (s *Subscription) joinFailed(joined []uint32, failed []string) {
	if len(failed) == 0 {
		return
	}
	if q, ok := s.openErrors.Allow(); ok {
		level.Error(s.logger).Log(ratelimit.Quieted(q, "msg", "Cannot join some multicast groups; receiving the others", "joined", fmt.Sprint(joined), "failed", strings.Join(failed, ", "))...)
	}
}

// configure asks for senders' credentials where the subscription checks
// them, and for its receive buffer. A fresh socket has neither; one taken
// over from another subscription may have credentials to turn off.
func (s *Subscription) configure(c *netlink.Conn, fresh bool) error {
	if creds := s.needsCredentials(); creds || !fresh {
		v := 0
		if creds {
			v = 1
		}
		if err := s.control(c, func(fd int) error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, v) }); err != nil {
			return fmt.Errorf("setting whether to receive senders' credentials (SO_PASSCRED): %w", err)
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
	return nil
}

// control runs f on the socket's file descriptor.
func (s *Subscription) control(c *netlink.Conn, f func(fd int) error) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
