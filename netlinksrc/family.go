package netlinksrc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-kit/log/level"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/internal/ratelimit"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc/srcinfo"
)

// coalesceNotes is how long a subscription whose family changed waits for
// the controller's next notifications before acting on the change;
// maxCoalesce bounds that wait however many notifications keep coming: a
// module's unload sends a few within microseconds, a steady stream must
// not keep the source detached. Variables for tests.
var coalesceNotes, maxCoalesce = 50 * time.Millisecond, 250 * time.Millisecond

// retryAfter is time.After; tests record the waits of a family
// subscription that starts over.
var retryAfter = time.After

// A note is what the controller tells a family subscription: a datagram of
// the kernel's notifications, or, after notifications were lost, the
// family as looked up again.
type note struct {
	msgs     []genetlink.Message
	resolved bool
	fam      family
}

// update returns f as n leaves it.
func (n note) update(f family, name string) family {
	if n.resolved {
		return n.fam
	}
	return f.apply(name, n.msgs)
}

// family is what a subscription knows of its family: absent, or present
// with an id and its multicast groups by name.
type family struct {
	present bool
	id      uint16
	groups  map[string]uint32
}

func familyFrom(f genetlink.Family) family {
	fam := family{present: true, id: f.ID, groups: make(map[string]uint32, len(f.Groups))}
	for _, g := range f.Groups {
		fam.groups[g.Name] = g.ID
	}
	return fam
}

// wanted returns the ids of the configured groups the family has, sorted,
// with their names, and the names it lacks.
func (f family) wanted(names []string) (ids []uint32, byID map[uint32]string, missing []string) {
	byID = make(map[uint32]string)
	for _, n := range names {
		if id, ok := f.groups[n]; ok {
			ids = append(ids, id)
			byID[id] = n
		} else {
			missing = append(missing, n)
		}
	}
	slices.Sort(ids)
	return ids, byID, missing
}

// sameGroups reports whether f and g give the configured groups the same
// ids: if so, a socket joined for f serves g.
func (f family) sameGroups(g family, names []string) bool {
	if f.present != g.present || f.id != g.id {
		return false
	}
	a, _, _ := f.wanted(names)
	b, _, _ := g.wanted(names)
	return slices.Equal(a, b)
}

// groupNames lists the family's groups for log lines.
func (f family) groupNames() string {
	names := make([]string, 0, len(f.groups))
	for n := range f.groups {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// apply updates f from the controller's notifications about the family
// called name; notifications about other families are ignored.
func (f family) apply(name string, msgs []genetlink.Message) family {
	for _, m := range msgs {
		n, id, groups, err := parseCtrl(m.Data)
		if err != nil || n != name {
			continue
		}
		switch m.Header.Command {
		case unix.CTRL_CMD_NEWFAMILY:
			f = family{present: true, id: id, groups: groups}
		case unix.CTRL_CMD_DELFAMILY:
			f = family{}
		case unix.CTRL_CMD_NEWMCAST_GRP:
			if f.present && f.id == id {
				f.groups = cloneGroups(f.groups)
				for g, gid := range groups {
					f.groups[g] = gid
				}
			}
		case unix.CTRL_CMD_DELMCAST_GRP:
			if f.present && f.id == id {
				f.groups = cloneGroups(f.groups)
				for g := range groups {
					delete(f.groups, g)
				}
			}
		}
	}
	return f
}

func cloneGroups(m map[string]uint32) map[string]uint32 {
	c := make(map[string]uint32, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// parseCtrl reads the family name, id and multicast groups of a
// controller message (CTRL_ATTR_FAMILY_NAME, _FAMILY_ID, _MCAST_GROUPS).
func parseCtrl(b []byte) (name string, id uint16, groups map[string]uint32, err error) {
	groups = make(map[string]uint32)
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return "", 0, nil, err
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.CTRL_ATTR_FAMILY_NAME:
			name = ad.String()
		case unix.CTRL_ATTR_FAMILY_ID:
			id = ad.Uint16()
		case unix.CTRL_ATTR_MCAST_GROUPS:
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					nad.Nested(func(gad *netlink.AttributeDecoder) error {
						var gname string
						var gid uint32
						for gad.Next() {
							switch gad.Type() {
							case unix.CTRL_ATTR_MCAST_GRP_NAME:
								gname = gad.String()
							case unix.CTRL_ATTR_MCAST_GRP_ID:
								gid = gad.Uint32()
							}
						}
						if gname != "" {
							groups[gname] = gid
						}
						return nil
					})
				}
				return nil
			})
		}
	}
	return name, id, groups, ad.Err()
}

// runFamily is Run for a generic netlink family: it follows the family
// through the controller, and receives on its groups while it is there.
func (s *Subscription) runFamily(ctx context.Context) {
	backoff := time.Second
	for ctx.Err() == nil {
		ctrl, err := s.dialController()
		if err == nil {
			var resolved bool
			resolved, err = s.followFamily(ctx, ctrl)
			ctrl.Close()
			if resolved {
				// The controller worked: this is a new failure.
				backoff = time.Second
			}
		}
		if ctx.Err() != nil {
			return
		}
		if denied(err) {
			s.setState(srcinfo.StateDenied)
		} else {
			s.setState(srcinfo.StateFailed)
		}
		if q, ok := s.openErrors.Allow(); ok {
			level.Error(s.logger).Log(ratelimit.Quieted(q, "msg", "Generic netlink controller failed; starting over", "err", err, "retry_in", backoff)...)
		}
		select {
		case <-ctx.Done():
		case <-retryAfter(backoff):
		}
		backoff = min(2*backoff, maxRetryInterval)
	}
}

// lookUp looks the family up; absent is not an error.
func lookUp(ctrl controller, name string) (family, error) {
	f, err := ctrl.GetFamily(name)
	switch {
	case err == nil:
		return familyFrom(f), nil
	case errors.Is(err, unix.ENOENT):
		return family{}, nil
	}
	return family{}, fmt.Errorf("looking up generic netlink family %q: %w", name, err)
}

// nextNote reads the controller until it has something to tell: the
// kernel's next notifications or, after notifications were lost, the
// family looked up again. Notifications from other senders are counted as
// rejected and dropped: root can multicast on the notify group, and a
// forged announcement must not make the source join or leave groups.
func (s *Subscription) nextNote(ctrl controller, quit <-chan struct{}) (note, error) {
	for {
		port, msgs, err := ctrl.Receive(true)
		switch {
		case errors.Is(err, errNotesLost):
			return s.resync(ctrl, quit, err)
		case err != nil:
			return note{}, err
		case port != 0:
			s.rejectNote(port)
		default:
			return note{msgs: msgs}, nil
		}
	}
}

// resync, after notifications were lost, discards what is queued and looks
// the family up once again. The kernel reports the loss before the queue
// it overflowed: notifications still queued predate the lost ones, and
// would undo what the lookup finds. Those that arrive after the queue is
// empty only repeat or follow the lookup's state.
func (s *Subscription) resync(ctrl controller, quit <-chan struct{}, cause error) (note, error) {
	if q, ok := s.readErrors.Allow(); ok {
		level.Warn(s.logger).Log(ratelimit.Quieted(q, "msg", "Generic netlink controller notifications lost; looking the family up again", "err", cause)...)
	}
	for {
		select {
		case <-quit:
			return note{}, cause
		default:
		}
		port, _, err := ctrl.Receive(false)
		switch {
		case errors.Is(err, unix.EAGAIN):
			fam, err := lookUp(ctrl, s.cfg.Family)
			return note{resolved: true, fam: fam}, err
		case errors.Is(err, errNotesLost):
		case err != nil:
			return note{}, err
		case port != 0:
			s.rejectNote(port)
		}
	}
}

// rejectNote counts and logs a controller notification from a sender that
// is not the kernel, as handle does a datagram.
func (s *Subscription) rejectNote(port uint32) {
	s.rejected[srcinfo.RejectNotKernel].Add(1)
	if q, ok := s.rejectLogger.Allow(); ok {
		level.Warn(s.logger).Log(ratelimit.Quieted(q, "msg", "Rejected a controller notification from a sender that is not the kernel; see kevent_datagrams_rejected_total", "reason", srcinfo.RejectNotKernel, "sender_port_id", port)...)
	}
}

// followFamily looks the family up once, then follows the controller's
// notifications: it looks the family up again only when notifications
// were lost, since each lookup of a missing family makes the kernel try
// to load a module for it. resolved says whether the first lookup
// succeeded.
func (s *Subscription) followFamily(ctx context.Context, ctrl controller) (resolved bool, err error) {
	notes := make(chan note)
	readErr := make(chan error, 1)
	quit := make(chan struct{})
	go func() {
		for {
			n, err := s.nextNote(ctrl, quit)
			if err != nil {
				readErr <- err
				return
			}
			select {
			case notes <- n:
			case <-quit:
				return
			}
		}
	}()
	defer func() {
		close(quit)
		_ = ctrl.SetReadDeadline(time.Now())
	}()

	name := s.cfg.Family
	fam, err := lookUp(ctrl, name)
	if err != nil {
		return false, err
	}
	announced := false // the family's absence or missing groups were logged
	for ctx.Err() == nil {
		ids, byID, missing := fam.wanted(s.cfg.GroupNames)
		if !fam.present || len(ids) == 0 {
			if !fam.present {
				s.setState(srcinfo.StateWaiting)
			} else {
				s.setState(srcinfo.StateFailed)
			}
			if !announced {
				announced = true
				if !fam.present {
					level.Warn(s.logger).Log("msg", "Generic netlink family not registered: the kernel module that provides it is not loaded; waiting for it")
				} else {
					level.Error(s.logger).Log("msg", "Generic netlink family has none of the configured groups; waiting for them", "missing", strings.Join(missing, ", "), "family_groups", fam.groupNames())
				}
			}
			select {
			case <-ctx.Done():
				return true, nil
			case err := <-readErr:
				return true, err
			case n := <-notes:
				was := fam.present
				fam = n.update(fam, name)
				if was && !fam.present {
					level.Warn(s.logger).Log("msg", "Generic netlink family unregistered (its module was unloaded?); waiting for it to come back")
				}
			}
			continue
		}
		if len(missing) > 0 {
			level.Error(s.logger).Log("msg", "Generic netlink family lacks some configured groups; receiving the others", "missing", strings.Join(missing, ", "), "family_groups", fam.groupNames())
		}
		c, joined, err := s.open(unix.NETLINK_GENERIC, ids, byID)
		if err != nil {
			if denied(err) {
				s.setState(srcinfo.StateDenied)
				if q, ok := s.openErrors.Allow(); ok {
					level.Error(s.logger).Log(ratelimit.Quieted(q, "msg", s.joinDenied(err), "err", err)...)
				}
			} else {
				s.setState(srcinfo.StateFailed)
				if q, ok := s.openErrors.Allow(); ok {
					level.Error(s.logger).Log(ratelimit.Quieted(q, "msg", "Cannot join the family's multicast groups", "err", err)...)
				}
			}
			// Joining will not succeed before the family changes.
			select {
			case <-ctx.Done():
				return true, nil
			case err := <-readErr:
				return true, err
			case n := <-notes:
				fam = n.update(fam, name)
			}
			continue
		}
		if retry, err := s.startControl(fam.id); err != nil {
			c.Close()
			select {
			case <-ctx.Done():
				return true, nil
			case err := <-readErr:
				return true, err
			case n := <-notes:
				fam = n.update(fam, name)
			case <-retry:
			}
			continue
		}
		if announced {
			level.Info(s.logger).Log("msg", "Generic netlink family registered, source attached", "family_id", fam.id)
		}
		announced = false
		var ctrlErr error
		next := fam
		err = s.session(ctx, c, joined, func(stop func()) {
			for {
				select {
				case <-ctx.Done():
					return
				case ctrlErr = <-readErr:
					stop()
					return
				case n := <-notes:
					next = n.update(next, name)
					if !next.sameGroups(fam, s.cfg.GroupNames) {
						stop()
						ctrlErr = settle(ctx, notes, readErr, func(n note) { next = n.update(next, name) })
						return
					}
				}
			}
		})
		if s.cfg.Control != nil {
			s.cfg.Control.Stop()
		}
		switch {
		case ctx.Err() != nil:
			return true, nil
		case ctrlErr != nil:
			return true, ctrlErr
		case !next.present:
			s.setState(srcinfo.StateWaiting)
			level.Warn(s.logger).Log("msg", "Generic netlink family unregistered (its module was unloaded?); waiting for it to come back")
			announced = true
		case err != nil:
			s.setState(srcinfo.StateFailed)
			if q, ok := s.openErrors.Allow(); ok {
				level.Error(s.logger).Log(ratelimit.Quieted(q, "msg", "Netlink socket failed, reopening", "err", err)...)
			}
		default:
			level.Info(s.logger).Log("msg", "Generic netlink family's groups changed; joining them again", "family_id", next.id)
		}
		fam = next
	}
	return true, nil
}

// settle hands the notifications that follow a change of the family to
// update until none comes for coalesceNotes, or for at most maxCoalesce:
// the controller announces an unload group by group, then the family, and
// what follows at once is taken together.
func settle(ctx context.Context, notes <-chan note, readErr <-chan error, update func(note)) error {
	quiet := time.NewTimer(coalesceNotes)
	defer quiet.Stop()
	limit := time.NewTimer(maxCoalesce)
	defer limit.Stop()
	for {
		select {
		case n := <-notes:
			update(n)
			quiet.Reset(coalesceNotes)
			continue
		case err := <-readErr:
			return err
		case <-ctx.Done():
		case <-quiet.C:
		case <-limit.C:
		}
		return nil
	}
}
