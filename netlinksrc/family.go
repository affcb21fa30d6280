package netlinksrc

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"context"

	"github.com/go-kit/log/level"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// coalesceNotes is how long a subscription whose family changed waits for
// the controller's next notifications before acting on the change.
const coalesceNotes = 50 * time.Millisecond

// A controller is the generic netlink controller (nlctrl) as a family
// subscription uses it: one lookup when it starts, then the notifications
// of the controller's "notify" group, which announce families and their
// multicast groups as they come and go.
type controller interface {
	// GetFamily looks a family up; an absent family's error wraps ENOENT.
	GetFamily(name string) (genetlink.Family, error)
	// Receive returns the next notifications.
	Receive() ([]genetlink.Message, []netlink.Message, error)
	// SetReadDeadline makes a blocked Receive return.
	SetReadDeadline(t time.Time) error
	Close() error
}

// genlController is the kernel's controller, over two sockets: one joined
// to the notify group, which must not see the lookup's reply, and one for
// the lookup.
type genlController struct {
	notify, query *genetlink.Conn
}

// dialController joins the controller's notify group before anything is
// looked up, so that a family registered between the lookup and the join
// cannot go unnoticed.
func dialController() (controller, error) {
	notify, err := genetlink.Dial(nil)
	if err != nil {
		return nil, err
	}
	query, err := genetlink.Dial(nil)
	if err != nil {
		notify.Close()
		return nil, err
	}
	ctrl, err := query.GetFamily("nlctrl")
	if err == nil {
		err = errors.New(`nlctrl has no "notify" group`)
		for _, g := range ctrl.Groups {
			if g.Name == "notify" {
				err = notify.JoinGroup(g.ID)
				break
			}
		}
	}
	if err != nil {
		notify.Close()
		query.Close()
		return nil, fmt.Errorf("joining the generic netlink controller's notify group: %w", err)
	}
	return &genlController{notify: notify, query: query}, nil
}

func (c *genlController) GetFamily(name string) (genetlink.Family, error) {
	return c.query.GetFamily(name)
}

func (c *genlController) Receive() ([]genetlink.Message, []netlink.Message, error) {
	return c.notify.Receive()
}

func (c *genlController) SetReadDeadline(t time.Time) error { return c.notify.SetReadDeadline(t) }

func (c *genlController) Close() error {
	c.query.Close()
	return c.notify.Close()
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
			err = s.followFamily(ctx, ctrl)
			ctrl.Close()
		}
		if ctx.Err() != nil {
			return
		}
		if denied(err) {
			s.setState(StateDenied)
		} else {
			s.setState(StateFailed)
		}
		if q, ok := s.openErrors.allow(); ok {
			level.Error(s.logger).Log(quieted(q, "msg", "Generic netlink controller failed; starting over", "err", err, "retry_in", backoff)...)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxRetryInterval)
	}
}

// followFamily looks the family up once, then follows the controller's
// notifications: it never repeats the lookup, since each lookup of a
// missing family makes the kernel try to load a module for it.
func (s *Subscription) followFamily(ctx context.Context, ctrl controller) error {
	notes := make(chan []genetlink.Message)
	readErr := make(chan error, 1)
	quit := make(chan struct{})
	go func() {
		for {
			msgs, _, err := ctrl.Receive()
			if err != nil {
				readErr <- err
				return
			}
			select {
			case notes <- msgs:
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
	var fam family
	f, err := ctrl.GetFamily(name)
	switch {
	case err == nil:
		fam = familyFrom(f)
	case errors.Is(err, unix.ENOENT):
	default:
		return fmt.Errorf("looking up generic netlink family %q: %w", name, err)
	}
	announced := false // the family's absence or missing groups were logged
	for ctx.Err() == nil {
		ids, byID, missing := fam.wanted(s.cfg.GroupNames)
		if !fam.present || len(ids) == 0 {
			if !fam.present {
				s.setState(StateWaiting)
			} else {
				s.setState(StateFailed)
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
				return nil
			case err := <-readErr:
				return err
			case msgs := <-notes:
				was := fam.present
				fam = fam.apply(name, msgs)
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
				s.setState(StateDenied)
				if q, ok := s.openErrors.allow(); ok {
					level.Error(s.logger).Log(quieted(q, "msg", "Not permitted to join the family's multicast groups: they are flagged for CAP_NET_ADMIN (GENL_UNS_ADMIN_PERM) or CAP_SYS_ADMIN (GENL_ADMIN_PERM)", "err", err)...)
				}
			} else {
				s.setState(StateFailed)
				if q, ok := s.openErrors.allow(); ok {
					level.Error(s.logger).Log(quieted(q, "msg", "Cannot join the family's multicast groups", "err", err)...)
				}
			}
			// Joining will not succeed before the family changes.
			select {
			case <-ctx.Done():
				return nil
			case err := <-readErr:
				return err
			case msgs := <-notes:
				fam = fam.apply(name, msgs)
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
				case msgs := <-notes:
					next = next.apply(name, msgs)
					if !next.sameGroups(fam, s.cfg.GroupNames) {
						stop()
						// The controller announces an unload group by
						// group, then the family: take what follows at
						// once together.
						for {
							select {
							case msgs := <-notes:
								next = next.apply(name, msgs)
								continue
							case <-time.After(coalesceNotes):
							}
							return
						}
					}
				}
			}
		})
		switch {
		case ctx.Err() != nil:
			return nil
		case ctrlErr != nil:
			return ctrlErr
		case !next.present:
			s.setState(StateWaiting)
			level.Warn(s.logger).Log("msg", "Generic netlink family unregistered (its module was unloaded?); waiting for it to come back")
			announced = true
		case err != nil:
			s.setState(StateFailed)
			if q, ok := s.openErrors.allow(); ok {
				level.Error(s.logger).Log(quieted(q, "msg", "Netlink socket failed, reopening", "err", err)...)
			}
		default:
			level.Info(s.logger).Log("msg", "Generic netlink family's groups changed; joining them again")
		}
		fam = next
	}
	return nil
}
