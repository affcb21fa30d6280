package netlinksrc

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
	"github.com/kevent-exporter/kevent_exporter/internal/syncbuf"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc/srcinfo"
)

// fakeController is a generic netlink controller whose family the test
// registers and unregisters by sending notifications, counting lookups.
type fakeController struct {
	mu      sync.Mutex
	lookups int
	family  *genetlink.Family

	notes    chan fakeDatagram
	recvErr  error // if set, what Receive returns
	deadline chan struct{}
	once     sync.Once
}

// fakeDatagram is what Receive returns.
type fakeDatagram struct {
	port uint32
	msgs []genetlink.Message
	err  error
}

func newFakeController(f *genetlink.Family) *fakeController {
	return &fakeController{family: f, notes: make(chan fakeDatagram), deadline: make(chan struct{})}
}

// notify sends the kernel's notifications, in one datagram.
func (c *fakeController) notify(msgs ...genetlink.Message) {
	c.notes <- fakeDatagram{msgs: msgs}
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

func (c *fakeController) Receive(block bool) (uint32, []genetlink.Message, error) {
	if c.recvErr != nil {
		return 0, nil, c.recvErr
	}
	if !block {
		select {
		case d := <-c.notes:
			return d.port, d.msgs, d.err
		default:
			return 0, nil, unix.EAGAIN
		}
	}
	select {
	case d := <-c.notes:
		return d.port, d.msgs, d.err
	case <-c.deadline:
		return 0, nil, os.ErrDeadlineExceeded
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
	e2e.Eventually(t, "the wait is logged", func() bool { return strings.Contains(logs.String(), waiting) })
	if s.Stats().Up() {
		t.Fatal("up with the family absent")
	}

	// The module is loaded: NEWFAMILY, then NEWMCAST_GRP.
	ctrl.notify(ctrlMessage(unix.CTRL_CMD_NEWFAMILY, "kevent", 40, map[string]uint32{"events": notify}))
	waitUp(t, s)
	if st := s.Stats(); st.GroupsJoined != 1 {
		t.Fatalf("groups joined = %d, want 1", st.GroupsJoined)
	}
	// Notifications about other families change nothing.
	ctrl.notify(ctrlMessage(unix.CTRL_CMD_DELFAMILY, "other", 41, nil))
	// Nor do those from a sender that is not the kernel
	// (TestForgedControllerNotes forges them on the host kernel).
	ctrl.notes <- fakeDatagram{port: 4242, msgs: []genetlink.Message{ctrlMessage(unix.CTRL_CMD_DELFAMILY, "kevent", 40, nil)}}
	e2e.Eventually(t, "the forged notification is rejected", func() bool { return s.Stats().Rejected[srcinfo.RejectNotKernel] == 1 })
	if !s.Stats().Up() {
		t.Fatal("down after a forged unregistration")
	}

	// rmmod: DELMCAST_GRP, then DELFAMILY, as the kernel sends them, one
	// datagram each. Down at once.
	ctrl.notify(ctrlMessage(unix.CTRL_CMD_DELMCAST_GRP, "kevent", 40, map[string]uint32{"events": notify}))
	ctrl.notify(ctrlMessage(unix.CTRL_CMD_DELFAMILY, "kevent", 40, nil))
	e2e.Eventually(t, "the source is down", func() bool { return !s.Stats().Up() })
	const gone = `msg="Generic netlink family unregistered (its module was unloaded?); waiting for it to come back"`
	e2e.Eventually(t, "the unregistration is logged", func() bool { return strings.Contains(logs.String(), gone) })

	// insmod again, with new ids.
	ctrl.notify(ctrlMessage(unix.CTRL_CMD_NEWFAMILY, "kevent", 42, map[string]uint32{"events": mgmt}))
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
	e2e.Eventually(t, "the missing group is logged", func() bool { return strings.Contains(logs.String(), want) })

	ctrl2 := newFakeController(&genetlink.Family{Name: "kevent", ID: 40, Groups: []genetlink.MulticastGroup{{Name: "events", ID: notify}}})
	down := startFamily(t, Config{Name: "none", Family: "kevent", GroupNames: []string{"nosuch"}}, ctrl2, logs)
	const none = `source=none family=kevent groups=nosuch msg="Generic netlink family has none of the configured groups; waiting for them" missing=nosuch family_groups=events`
	e2e.Eventually(t, "the missing groups are logged", func() bool { return strings.Contains(logs.String(), none) })
	if down.Stats().Up() {
		t.Fatal("up without any group")
	}
	// The group appears (NEWMCAST_GRP): joined.
	ctrl2.notify(ctrlMessage(unix.CTRL_CMD_NEWMCAST_GRP, "kevent", 40, map[string]uint32{"nosuch": notify}))
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
	e2e.Eventually(t, "the wait is logged", func() bool {
		return strings.Contains(logs.String(), "Generic netlink family not registered")
	})
	if s.Stats().Up() {
		t.Fatal("up on a missing family")
	}
}

// forger multicasts forged controller notifications on nlctrl's notify
// group from userspace, as root may.
type forger struct{ *nlsend.Sender }

// newForger opens a forger, or returns nil if the kernel does not deliver
// a userspace multicast on the notify group: then there is nothing to
// forge with, which the test says.
func newForger(t *testing.T) *forger {
	t.Helper()
	notify := realGroup(t, "nlctrl", "notify")
	snd, err := nlsend.NewSender(unix.NETLINK_GENERIC, notify)
	if err != nil {
		t.Fatalf("notify sender: %v", err)
	}
	t.Cleanup(func() { snd.Close() })
	f := &forger{snd}
	// Probe: does a listener on the group get a forged notification?
	l, err := genetlink.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.JoinGroup(notify); err != nil {
		t.Fatal(err)
	}
	if err := f.send(ctrlMessage(unix.CTRL_CMD_NEWFAMILY, "kevent-probe", 1, nil)); err != nil {
		t.Logf("the kernel refuses a userspace multicast on nlctrl's notify group (%v): nothing to forge", err)
		return nil
	}
	if err := l.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Receive(); err != nil {
		t.Logf("a userspace multicast on nlctrl's notify group is not delivered (%v): nothing to forge", err)
		return nil
	}
	return f
}

func (f *forger) send(m genetlink.Message) error {
	b, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	return f.Send(nlsend.AppendMessage(nil, unix.GENL_ID_CTRL, 0, b))
}

// TestForgedControllerNotes forges the controller's announcements from
// userspace on the host kernel: a family that is absent is "registered"
// with netdev's mgmt group, and ethtool is "unregistered". The sources
// ignore both and count them as rejected.
func TestForgedControllerNotes(t *testing.T) {
	testenv.RequireRoot(t, "generic netlink sockets in a private network namespace")
	mgmt := realGroup(t, "netdev", "mgmt")
	ethtool := realGroup(t, "ethtool", "monitor")
	logs := &syncbuf.Buffer{}
	absent := start(t, Config{Name: "advfake", Family: "advfake", GroupNames: []string{"mgmt"}}, decoder.NewRaw(nil), newSink(), logs)
	present := start(t, Config{Name: "ethtool", Family: "ethtool", GroupNames: []string{"monitor"}}, decoder.NewRaw(nil), newSink(), logs)
	e2e.Eventually(t, "the wait is logged", func() bool {
		return strings.Contains(logs.String(), "source=advfake family=advfake groups=mgmt msg=\"Generic netlink family not registered")
	})
	waitUp(t, present)
	f := newForger(t)
	if f == nil {
		return
	}
	fam := realFamily(t, "ethtool")
	if err := f.send(ctrlMessage(unix.CTRL_CMD_NEWFAMILY, "advfake", 0x7ff0, map[string]uint32{"mgmt": mgmt})); err != nil {
		t.Fatal(err)
	}
	if err := f.send(ctrlMessage(unix.CTRL_CMD_DELMCAST_GRP, "ethtool", fam.ID, map[string]uint32{"monitor": ethtool})); err != nil {
		t.Fatal(err)
	}
	if err := f.send(ctrlMessage(unix.CTRL_CMD_DELFAMILY, "ethtool", fam.ID, nil)); err != nil {
		t.Fatal(err)
	}
	// The forger's probe notification came first: one for the absent
	// family's source, three more for the other.
	e2e.Eventually(t, "the forged notifications are rejected", func() bool {
		return absent.Stats().Rejected[srcinfo.RejectNotKernel] == 4 && present.Stats().Rejected[srcinfo.RejectNotKernel] == 4
	})
	if absent.Stats().Up() {
		t.Error("a forged announcement brought the absent family's source up")
	}
	if st := present.Stats(); !st.Up() || st.GroupsJoined != 1 {
		t.Errorf("a forged unregistration took the source down: %+v", st)
	}
	const rejected = `msg="Rejected a controller notification from a sender that is not the kernel; see kevent_datagrams_rejected_total" reason=not_kernel sender_port_id=`
	if n := strings.Count(logs.String(), rejected); n != 2 {
		t.Errorf("rejections logged %d times, want once per source (rate-limited); log:\n%s", n, logs)
	}
}

// realFamily looks a family of this kernel up.
func realFamily(t *testing.T, name string) genetlink.Family {
	t.Helper()
	c, err := genetlink.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, err := c.GetFamily(name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// heldController is the kernel's controller, with its reader held still
// until hold is closed, counting lookups.
type heldController struct {
	controller
	hold, quit chan struct{}
	once       sync.Once
	lookups    *atomic.Int32
}

func (h *heldController) GetFamily(name string) (genetlink.Family, error) {
	h.lookups.Add(1)
	return h.controller.GetFamily(name)
}

func (h *heldController) Receive(block bool) (uint32, []genetlink.Message, error) {
	select {
	case <-h.hold:
	case <-h.quit:
	}
	return h.controller.Receive(block)
}

func (h *heldController) SetReadDeadline(t time.Time) error {
	h.once.Do(func() { close(h.quit) })
	return h.controller.SetReadDeadline(t)
}

// TestControllerOverrun overflows the controller's socket with 20 000
// forged notifications while its reader is held still: the source looks
// the family up again, stays up on the same socket and counts every event
// sent before, during and after the overrun.
func TestControllerOverrun(t *testing.T) {
	testenv.RequireRoot(t, "generic netlink sockets in a private network namespace")
	mgmt := realGroup(t, "netdev", "mgmt")
	logs := &syncbuf.Buffer{}
	hold := make(chan struct{})
	var dials, lookups atomic.Int32
	sk := newSink()
	// Events are forged too, on netdev's mgmt group: senders any.
	s := New(Config{Name: "netdev", Family: "netdev", GroupNames: []string{"mgmt"}, Senders: srcinfo.SendersAny}, decoder.NewRaw(nil), log.NewLogfmtLogger(logs))
	s.dialController = func() (controller, error) {
		dials.Add(1)
		c, err := dialController()
		if err != nil {
			return nil, err
		}
		return &heldController{controller: c, hold: hold, quit: make(chan struct{}), lookups: &lookups}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, sk)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	waitUp(t, s)
	f := newForger(t)
	if f == nil {
		return
	}
	data, err := nlsend.NewSender(unix.NETLINK_GENERIC, mgmt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { data.Close() })
	sent := 0
	send := func(n int) {
		t.Helper()
		for range n {
			// No NLM_F_REQUEST: the kernel's own socket ignores it.
			if err := data.Send(nlsend.AppendMessage(nil, 0x20, uint32(sent), []byte("x"))); err != nil {
				t.Fatal(err)
			}
			sent++
		}
	}

	send(100)
	const forged = 20000
	for i := range forged {
		if err := f.send(ctrlMessage(unix.CTRL_CMD_NEWFAMILY, "advfake", uint16(i), nil)); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 0 {
			send(10)
		}
	}
	close(hold)
	const lost = `msg="Generic netlink controller notifications lost; looking the family up again" err="generic netlink controller notifications lost: no buffer space available"`
	e2e.Eventually(t, "the overrun is logged", func() bool { return strings.Contains(logs.String(), lost) })
	// The lookup ends the resync, which reads what is queued first: the
	// rejected count is final once it began.
	e2e.Eventually(t, "the family is looked up again", func() bool { return lookups.Load() >= 2 })
	rejected := s.Stats().Rejected[srcinfo.RejectNotKernel]
	send(100)

	e2e.Eventually(t, "every event sent is received or lost", func() bool {
		e, _ := sk.counts()
		return uint64(e)+s.Stats().Lost >= uint64(sent)
	})
	e, _ := sk.counts()
	st := s.Stats()
	got := fmt.Sprintf("events=%d lost=%d up=%v", e, st.Lost, st.Up())
	t.Logf("forged=%d rejected=%d (the rest dropped at the controller's socket), sent=%d %s", forged, rejected, sent, got)
	if want := fmt.Sprintf("events=%d lost=0 up=true", sent); got != want {
		t.Errorf("%s, want %s; log:\n%s", got, want, logs)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("controller dialled %d times, want 1", n)
	}
	if n := lookups.Load(); n != 2 {
		t.Errorf("family looked up %d times, want 2: once at the start, once after the overrun", n)
	}
	if strings.Contains(logs.String(), "starting over") || strings.Contains(logs.String(), "joining them again") {
		t.Errorf("the source left its groups; log:\n%s", logs)
	}
}

// TestResyncDiscardsStale: after an overrun, what is still queued predates
// the lost notifications and is discarded (a forged one still counted),
// however often the queue overflows meanwhile; then one lookup.
func TestResyncDiscardsStale(t *testing.T) {
	ctrl := newFakeController(&genetlink.Family{Name: "kevent", ID: 40, Groups: []genetlink.MulticastGroup{{Name: "events", ID: 5}}})
	ctrl.notes = make(chan fakeDatagram, 4)
	ctrl.notes <- fakeDatagram{err: fmt.Errorf("%w: %w", errNotesLost, unix.ENOBUFS)}
	ctrl.notes <- fakeDatagram{msgs: []genetlink.Message{ctrlMessage(unix.CTRL_CMD_DELFAMILY, "kevent", 40, nil)}}
	ctrl.notes <- fakeDatagram{port: 4242}
	ctrl.notes <- fakeDatagram{err: errNotesLost}
	s := New(Config{Name: "fam", Family: "kevent", GroupNames: []string{"events"}}, decoder.NewRaw(nil), log.NewNopLogger())

	n, err := s.nextNote(ctrl, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (note{resolved: true, fam: family{present: true, id: 40, groups: map[string]uint32{"events": 5}}}); fmt.Sprint(n) != fmt.Sprint(want) {
		t.Errorf("note = %+v, want %+v", n, want)
	}
	if l := len(ctrl.notes); l != 0 {
		t.Errorf("%d datagrams left queued", l)
	}
	if n := ctrl.lookupCount(); n != 1 {
		t.Errorf("%d lookups, want 1", n)
	}
	if n := s.Stats().Rejected[srcinfo.RejectNotKernel]; n != 1 {
		t.Errorf("rejected = %d, want 1", n)
	}
}

// TestFamilyRetryBackoff: the wait before starting over doubles while the
// controller cannot be used, and is back to a second once it could.
func TestFamilyRetryBackoff(t *testing.T) {
	fam := &genetlink.Family{Name: "kevent", ID: 40}
	s := New(Config{Name: "fam", Family: "kevent", GroupNames: []string{"events"}}, decoder.NewRaw(nil), log.NewNopLogger())
	dials := 0
	s.dialController = func() (controller, error) {
		dials++
		if dials >= 4 && dials <= 6 {
			return nil, unix.EMFILE
		}
		// Looked up, then the notify socket fails.
		c := newFakeController(fam)
		c.recvErr = unix.EIO
		return c, nil
	}
	var waits []time.Duration
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer func(f func(time.Duration) <-chan time.Time) { retryAfter = f }(retryAfter)
	retryAfter = func(d time.Duration) <-chan time.Time {
		waits = append(waits, d)
		if len(waits) == 7 {
			cancel()
		}
		c := make(chan time.Time, 1)
		c <- time.Time{}
		return c
	}
	s.Run(ctx, newSink())
	want := []time.Duration{time.Second, time.Second, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, time.Second}
	if fmt.Sprint(waits) != fmt.Sprint(want) {
		t.Fatalf("waits = %v, want %v", waits, want)
	}
}

// TestSettleBounded: notifications that keep coming after the family's
// groups changed do not keep the source detached. They come faster than
// the settle wait here, however slow the machine: it is made an hour.
func TestSettleBounded(t *testing.T) {
	notify := realGroup(t, "nlctrl", "notify")
	mgmt := realGroup(t, "netdev", "mgmt")
	defer func(d time.Duration) { coalesceNotes = d }(coalesceNotes)
	coalesceNotes = time.Hour
	logs := &syncbuf.Buffer{}
	ctrl := newFakeController(&genetlink.Family{Name: "kevent", ID: 40, Groups: []genetlink.MulticastGroup{{Name: "events", ID: notify}}})
	s := startFamily(t, Config{Name: "fam", Family: "kevent", GroupNames: []string{"events"}}, ctrl, logs)
	waitUp(t, s)

	// The group gets a new id, then notifications about another family
	// follow one another.
	ctrl.notify(ctrlMessage(unix.CTRL_CMD_NEWMCAST_GRP, "kevent", 40, map[string]uint32{"events": mgmt}))
	stop := make(chan struct{})
	streamed := make(chan int)
	go func() {
		n := 0
		defer func() { streamed <- n }()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		other := fakeDatagram{msgs: []genetlink.Message{ctrlMessage(unix.CTRL_CMD_NEWFAMILY, "other", 41, nil)}}
		for {
			select {
			case ctrl.notes <- other:
				n++
			case <-stop:
				return
			}
			select {
			case <-tick.C:
			case <-stop:
				return
			}
		}
	}()
	const rejoined = `msg="Generic netlink family's groups changed; joining them again" family_id=40`
	e2e.Eventually(t, "the source joins the new group", func() bool { return strings.Contains(logs.String(), rejoined) && s.Stats().Up() })
	close(stop)
	t.Logf("%d notifications streamed", <-streamed)
}

// TestParseNotes reads the controller's messages of a datagram, skipping
// others, and refuses one that is cut short.
func TestParseNotes(t *testing.T) {
	var d []byte
	for _, m := range []genetlink.Message{
		ctrlMessage(unix.CTRL_CMD_NEWFAMILY, "kevent", 40, map[string]uint32{"events": 5}),
		ctrlMessage(unix.CTRL_CMD_DELFAMILY, "other", 41, nil),
	} {
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		d = nlsend.AppendMessage(d, unix.GENL_ID_CTRL, 0, b)
		d = nlsend.AppendMessage(d, unix.NLMSG_DONE, 0, []byte("x"))
	}
	msgs, err := parseNotes(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2", len(msgs))
	}
	if f := (family{}).apply("kevent", msgs); !f.present || f.id != 40 || f.groups["events"] != 5 {
		t.Errorf("family = %+v", f)
	}
	for _, l := range []int{len(d) - 4, 20, 3} {
		if _, err := parseNotes(d[:l]); err == nil {
			t.Errorf("%d of %d bytes parsed without error", l, len(d))
		}
	}
}
