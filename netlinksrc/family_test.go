package netlinksrc

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/syncbuf"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

// fakeController is a generic netlink controller whose family the test
// registers and unregisters by sending notifications, counting lookups.
type fakeController struct {
	mu      sync.Mutex
	lookups int
	family  *genetlink.Family

	notes    chan []genetlink.Message
	deadline chan struct{}
	once     sync.Once
}

func newFakeController(f *genetlink.Family) *fakeController {
	return &fakeController{family: f, notes: make(chan []genetlink.Message), deadline: make(chan struct{})}
}

func (c *fakeController) GetFamily(name string) (genetlink.Family, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lookups++
	if c.family == nil || c.family.Name != name {
		return genetlink.Family{}, &netlink.OpError{Op: "receive", Err: unix.ENOENT}
	}
	return *c.family, nil
}

func (c *fakeController) Receive() ([]genetlink.Message, []netlink.Message, error) {
	select {
	case m := <-c.notes:
		return m, nil, nil
	case <-c.deadline:
		return nil, nil, os.ErrDeadlineExceeded
	}
}

func (c *fakeController) SetReadDeadline(time.Time) error {
	c.once.Do(func() { close(c.deadline) })
	return nil
}

func (c *fakeController) Close() error { return nil }

func (c *fakeController) lookupCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lookups
}

// ctrlMessage builds a controller notification about family name.
func ctrlMessage(cmd uint8, name string, id uint16, groups map[string]uint32) genetlink.Message {
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.CTRL_ATTR_FAMILY_NAME, name)
	ae.Uint16(unix.CTRL_ATTR_FAMILY_ID, id)
	if len(groups) > 0 {
		ae.Nested(unix.CTRL_ATTR_MCAST_GROUPS, func(nae *netlink.AttributeEncoder) error {
			i := uint16(1)
			for g, gid := range groups {
				nae.Nested(i, func(gae *netlink.AttributeEncoder) error {
					gae.String(unix.CTRL_ATTR_MCAST_GRP_NAME, g)
					gae.Uint32(unix.CTRL_ATTR_MCAST_GRP_ID, gid)
					return nil
				})
				i++
			}
			return nil
		})
	}
	b, err := ae.Encode()
	if err != nil {
		panic(err)
	}
	return genetlink.Message{Header: genetlink.Header{Command: cmd, Version: 2}, Data: b}
}

// realGroup returns the id of a multicast group this kernel has in every
// network namespace, so that the subscription's real socket can join it.
func realGroup(t *testing.T, family, group string) uint32 {
	t.Helper()
	c, err := genetlink.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, err := c.GetFamily(family)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range f.Groups {
		if g.Name == group {
			return g.ID
		}
	}
	t.Fatalf("family %s has no group %s", family, group)
	return 0
}

// startFamily runs a family subscription over ctrl until the test ends.
func startFamily(t *testing.T, cfg Config, ctrl *fakeController, logs *syncbuf.Buffer) *Subscription {
	t.Helper()
	testenv.RequireRoot(t, "generic netlink sockets in a private network namespace")
	s := New(cfg, decoder.NewRaw(nil), log.NewLogfmtLogger(logs))
	s.dialController = func() (controller, error) { return ctrl, nil }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, newSink())
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("family subscription did not stop within 10s")
		}
	})
	return s
}

// TestFamilyFollowed registers, unregisters and registers again (with new
// ids) a family through controller notifications: the subscription joins,
// goes down at once, joins again, and looks the family up only once.
func TestFamilyFollowed(t *testing.T) {
	notify := realGroup(t, "nlctrl", "notify")
	mgmt := realGroup(t, "netdev", "mgmt")
	logs := &syncbuf.Buffer{}
	ctrl := newFakeController(nil)
	s := startFamily(t, Config{Name: "fam", Family: "kevent", GroupNames: []string{"events"}}, ctrl, logs)

	const waiting = `source=fam family=kevent groups=events msg="Generic netlink family not registered: the kernel module that provides it is not loaded; waiting for it"`
	waitUntil(t, "the wait is logged", func() bool { return strings.Contains(logs.String(), waiting) })
	if s.Stats().Up {
		t.Fatal("up with the family absent")
	}

	// The module is loaded: NEWFAMILY, then NEWMCAST_GRP.
	ctrl.notes <- []genetlink.Message{ctrlMessage(unix.CTRL_CMD_NEWFAMILY, "kevent", 40, map[string]uint32{"events": notify})}
	waitUp(t, s)
	if st := s.Stats(); st.GroupsJoined != 1 {
		t.Fatalf("groups joined = %d, want 1", st.GroupsJoined)
	}
	// Notifications about other families change nothing.
	ctrl.notes <- []genetlink.Message{ctrlMessage(unix.CTRL_CMD_DELFAMILY, "other", 41, nil)}

	// rmmod: DELMCAST_GRP, then DELFAMILY, as the kernel sends them, one
	// datagram each. Down at once.
	ctrl.notes <- []genetlink.Message{ctrlMessage(unix.CTRL_CMD_DELMCAST_GRP, "kevent", 40, map[string]uint32{"events": notify})}
	ctrl.notes <- []genetlink.Message{ctrlMessage(unix.CTRL_CMD_DELFAMILY, "kevent", 40, nil)}
	waitUntil(t, "the source is down", func() bool { return !s.Stats().Up })
	const gone = `msg="Generic netlink family unregistered (its module was unloaded?); waiting for it to come back"`
	waitUntil(t, "the unregistration is logged", func() bool { return strings.Contains(logs.String(), gone) })

	// insmod again, with new ids.
	ctrl.notes <- []genetlink.Message{ctrlMessage(unix.CTRL_CMD_NEWFAMILY, "kevent", 42, map[string]uint32{"events": mgmt})}
	waitUp(t, s)
	if n := ctrl.lookupCount(); n != 1 {
		t.Fatalf("%d lookups, want 1: a missing family must not be looked up again", n)
	}
	if n := strings.Count(logs.String(), "Generic netlink family registered, source attached"); n != 2 {
		t.Fatalf("attached %d times, want 2; log:\n%s", n, logs)
	}
}

// TestFamilyMissingGroup: the family is there but lacks a configured group
// (or has none of them): the source receives on the others, or is down,
// and says which are missing.
func TestFamilyMissingGroup(t *testing.T) {
	notify := realGroup(t, "nlctrl", "notify")
	logs := &syncbuf.Buffer{}
	ctrl := newFakeController(&genetlink.Family{Name: "kevent", ID: 40, Groups: []genetlink.MulticastGroup{{Name: "events", ID: notify}}})
	s := startFamily(t, Config{Name: "fam", Family: "kevent", GroupNames: []string{"events", "nosuch"}}, ctrl, logs)
	waitUp(t, s)
	const want = `msg="Generic netlink family lacks some configured groups; receiving the others" missing=nosuch family_groups=events`
	waitUntil(t, "the missing group is logged", func() bool { return strings.Contains(logs.String(), want) })

	ctrl2 := newFakeController(&genetlink.Family{Name: "kevent", ID: 40, Groups: []genetlink.MulticastGroup{{Name: "events", ID: notify}}})
	down := startFamily(t, Config{Name: "none", Family: "kevent", GroupNames: []string{"nosuch"}}, ctrl2, logs)
	const none = `source=none family=kevent groups=nosuch msg="Generic netlink family has none of the configured groups; waiting for them" missing=nosuch family_groups=events`
	waitUntil(t, "the missing groups are logged", func() bool { return strings.Contains(logs.String(), none) })
	if down.Stats().Up {
		t.Fatal("up without any group")
	}
	// The group appears (NEWMCAST_GRP): joined.
	ctrl2.notes <- []genetlink.Message{ctrlMessage(unix.CTRL_CMD_NEWMCAST_GRP, "kevent", 40, map[string]uint32{"nosuch": notify})}
	waitUp(t, down)
}

// TestRealFamilies subscribes to families of the running kernel through
// its controller.
func TestRealFamilies(t *testing.T) {
	testenv.RequireRoot(t, "generic netlink sockets in a private network namespace")
	for _, c := range []struct{ family, group string }{{"nlctrl", "notify"}, {"netdev", "mgmt"}} {
		s := start(t, Config{Name: c.family, Family: c.family, GroupNames: []string{c.group}}, decoder.NewRaw(nil), newSink(), nil)
		waitUp(t, s)
	}
	logs := &syncbuf.Buffer{}
	s := start(t, Config{Name: "missing", Family: "nosuchfamily", GroupNames: []string{"x"}}, decoder.NewRaw(nil), newSink(), logs)
	waitUntil(t, "the wait is logged", func() bool {
		return strings.Contains(logs.String(), "Generic netlink family not registered")
	})
	if s.Stats().Up {
		t.Fatal("up on a missing family")
	}
}
