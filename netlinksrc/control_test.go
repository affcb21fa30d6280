package netlinksrc

import (
	"strings"
	"sync"
	"testing"

	"github.com/mdlayher/genetlink"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/syncbuf"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc/srcinfo"
)

// fakeControl records the calls of its subscription and fails Start while
// err is set.
type fakeControl struct {
	mu     sync.Mutex
	err    error
	starts []uint16
	stops  int
	active bool
}

func (c *fakeControl) Start(family uint16) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.starts = append(c.starts, family)
	if c.err != nil {
		return c.err
	}
	c.active = true
	return nil
}

func (c *fakeControl) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.active {
		panic("Stop without a successful Start")
	}
	c.active = false
	c.stops++
}

func (c *fakeControl) Stats() srcinfo.ControlStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return srcinfo.ControlStats{Active: c.active, Owned: true, KernelLost: 7}
}

func (c *fakeControl) JoinDenied() string { return "join needs CAP_SYS_ADMIN" }

func (c *fakeControl) calls() (starts []uint16, stops int, active bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]uint16(nil), c.starts...), c.stops, c.active
}

func (c *fakeControl) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
}

// TestControl: a family source's Control starts once its socket is joined,
// with the family's id, and stops when the family goes and when the source
// stops; a Control that cannot start leaves the source down, logged, until
// the family changes.
func TestControl(t *testing.T) {
	notify := realGroup(t, "nlctrl", "notify")
	logs := &syncbuf.Buffer{}
	ctl := &fakeControl{err: &ControlError{Msg: "Not permitted to start the drop monitor (NET_DM_CMD_START): it needs CAP_NET_ADMIN", Err: unix.EPERM}}
	ctrl := newFakeController(&genetlink.Family{Name: "NET_DM", ID: 40, Groups: []genetlink.MulticastGroup{{Name: "events", ID: notify}}})
	t.Cleanup(func() {
		// After startFamily's, which stops the source: cleanups run last
		// registered first.
		if starts, stops, active := ctl.calls(); len(starts) != 3 || stops != 2 || active {
			t.Errorf("after the source stopped: starts %v, stops %d, active %t; want 3 starts, 2 stops", starts, stops, active)
		}
	})
	s := startFamily(t, Config{Name: "drops", Family: "NET_DM", GroupNames: []string{"events"}, Control: ctl}, ctrl, logs)

	const denied = `msg="Not permitted to start the drop monitor (NET_DM_CMD_START): it needs CAP_NET_ADMIN; source down" err="operation not permitted"`
	e2e.Eventually(t, "the failed start is logged", func() bool { return strings.Contains(logs.String(), denied) })
	if st := s.Stats(); st.State != srcinfo.StateDenied || st.Control == nil || st.Control.Active {
		t.Fatalf("state %s with a control not permitted to start (%+v)", st.State, st.Control)
	}

	// The module comes back with new ids, and the control can start.
	ctl.fail(nil)
	ctrl.notify(ctrlMessage(unix.CTRL_CMD_DELFAMILY, "NET_DM", 40, nil))
	ctrl.notify(ctrlMessage(unix.CTRL_CMD_NEWFAMILY, "NET_DM", 41, map[string]uint32{"events": notify}))
	waitUp(t, s)
	if starts, stops, active := ctl.calls(); len(starts) != 2 || starts[0] != 40 || starts[1] != 41 || stops != 0 || !active {
		t.Fatalf("starts %v, stops %d, active %t; want starts [40 41], no stop", starts, stops, active)
	}
	if st := s.Stats(); st.Control == nil || !st.Control.Active || st.Control.KernelLost != 7 {
		t.Fatalf("control stats %+v", st.Control)
	}

	// rmmod: stopped with the socket.
	ctrl.notify(ctrlMessage(unix.CTRL_CMD_DELFAMILY, "NET_DM", 41, nil))
	e2e.Eventually(t, "the control stops with the family", func() bool { _, stops, _ := ctl.calls(); return stops == 1 })
	if s.Stats().Up() {
		t.Fatal("up without the family")
	}
	ctrl.notify(ctrlMessage(unix.CTRL_CMD_NEWFAMILY, "NET_DM", 42, map[string]uint32{"events": notify}))
	waitUp(t, s)
}
