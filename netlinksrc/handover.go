package netlinksrc

import (
	"bytes"
	"context"
	"slices"
	"time"

	"github.com/go-kit/log/level"
	"github.com/mdlayher/netlink"
)

// handover passes a socket, still joined and with its queue unread, from a
// stopping subscription to the one that replaces it, so that the kernel
// delivers every datagram to one of them: none is missed between the two,
// and none is counted by both.
type handover struct {
	// ready is closed when the stopping subscription's Run has returned.
	ready chan struct{}
	// conn is nil if the subscription had no socket when it stopped.
	conn   *netlink.Conn
	joined []uint32
	// drops is the socket's drop counter as the stopping subscription
	// last read it: the drops after it are the successor's.
	drops uint32
}

// HandOver makes s, when its context ends, pass its socket on to next
// instead of leaving its groups and reading its queue: next, when it runs,
// goes on reading the same socket, joins the groups it has that s did not
// and leaves the others. It applies to a subscription of the same protocol
// (not a family) that sends the same requests, and returns false, changing
// nothing, for any other, or when s already stopped. s must be running;
// next must not have been started, and should be started when s is
// stopping: it waits for s's Run to return.
func (s *Subscription) HandOver(next *Subscription) bool {
	a, b := s.cfg, next.cfg
	if a.Family != "" || b.Family != "" || a.Protocol != b.Protocol ||
		!slices.EqualFunc(a.Requests, b.Requests, bytes.Equal) ||
		// Nothing restores the kernel's default buffer size.
		b.ReceiveBufferBytes == 0 && a.ReceiveBufferBytes != 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.handover != nil || next.adopt != nil {
		return false
	}
	h := &handover{ready: make(chan struct{})}
	s.handover, next.adopt = h, h
	return true
}

// handOffLocked passes c, joined to joined, to the successor if s stops
// for one, and reports whether it did. The caller holds s.mu.
func (s *Subscription) handOffLocked(ctx context.Context, c *netlink.Conn, joined []uint32) bool {
	h := s.handover
	if h == nil || ctx.Err() == nil {
		return false
	}
	s.readDropsLocked()
	h.conn, h.joined, h.drops = c, joined, s.lastDrops
	s.conn = nil
	return true
}

// endHandover marks s as stopped for good, letting its successor run.
func (s *Subscription) endHandover() {
	s.mu.Lock()
	s.ended = true
	h := s.handover
	s.mu.Unlock()
	if h != nil {
		close(h.ready)
	}
}

// takeOver returns the socket s's predecessor handed over, if any, once the
// predecessor stopped.
func (s *Subscription) takeOver() *handover {
	h := s.adopt
	if h == nil {
		return nil
	}
	s.adopt = nil
	<-h.ready
	if h.conn == nil {
		return nil
	}
	return h
}

// adoptSocket makes the socket h hands over s's: it clears the deadline
// that stopped the predecessor's reads, sets s's options, joins s's groups
// before it leaves the predecessor's others, so that the groups both have
// miss nothing, and sends s's requests, whose answers s's decoder needs as
// much as a new socket's. If none of s's groups can be joined, or the
// requests cannot be sent, the socket is stopped as a stopping
// subscription's is, its queue counted by s, and the error returned.
func (s *Subscription) adoptSocket(h *handover) (*netlink.Conn, []uint32, error) {
	c := h.conn
	s.adoptedDrops = h.drops
	err := c.SetReadDeadline(time.Time{})
	if err == nil {
		err = s.configure(c, false)
	}
	var joined, added []uint32
	if err == nil {
		var failed []string
		added, failed, err = s.join(c, slices.DeleteFunc(slices.Clone(s.cfg.Groups), func(g uint32) bool { return slices.Contains(h.joined, g) }), nil)
		joined = slices.DeleteFunc(slices.Clone(h.joined), func(g uint32) bool { return !slices.Contains(s.cfg.Groups, g) })
		joined = append(joined, added...)
		slices.Sort(joined)
		if len(joined) > 0 {
			s.joinFailed(joined, failed)
			err = s.sendRequests(c)
		}
	}
	if err != nil {
		stopped, stop := context.WithCancel(context.Background())
		stop()
		_ = s.session(stopped, c, append(slices.Clone(h.joined), added...), nil)
		return nil, nil, err
	}
	for _, g := range h.joined {
		if slices.Contains(s.cfg.Groups, g) {
			continue
		}
		if err := c.LeaveGroup(g); err != nil {
			level.Warn(s.logger).Log("msg", "Cannot leave a multicast group the source no longer has; its datagrams are counted too", "group", g, "err", err)
		}
	}
	level.Info(s.logger).Log("msg", "Took over the socket of the source's previous configuration, with its queue", "groups_joined", len(joined))
	return c, joined, nil
}
