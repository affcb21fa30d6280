package netlinksrc

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/syncbuf"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc/srcinfo"
)

// waitState waits until s reports state st.
func waitState(t *testing.T, s *Subscription, st srcinfo.State) srcinfo.Stats {
	t.Helper()
	var got srcinfo.Stats
	e2e.Eventually(t, "the state is "+st.String(), func() bool { got = s.Stats(); return got.State == st })
	return got
}

// TestStateWaitingProtocol: a protocol no module registered is waiting,
// not failed, and has never attached.
func TestStateWaitingProtocol(t *testing.T) {
	const proto = 29
	s := start(t, Config{Name: "seed", Protocol: proto, Groups: []uint32{2}}, decoder.NewRaw(nil), newSink(), nil)
	if fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW, proto); err == nil {
		unix.Close(fd)
		t.Fatalf("netlink protocol %d is registered on this host; this test needs it unregistered", proto)
	}
	first := protocols.lookCount()
	e2e.Eventually(t, "the socket table has been read twice more", func() bool { return protocols.lookCount() >= first+2 })
	if st := waitState(t, s, srcinfo.StateWaiting); st.Attachments != 0 {
		t.Fatalf("attachments = %d, want 0", st.Attachments)
	}
}

// TestStateFailed: groups the kernel refuses (usersock has 32) leave the
// source failed; with one group it may join, it is up, attached once.
func TestStateFailed(t *testing.T) {
	down := start(t, Config{Name: "big", Protocol: unix.NETLINK_USERSOCK, Groups: []uint32{40}}, decoder.NewRaw(nil), newSink(), nil)
	if st := waitState(t, down, srcinfo.StateFailed); st.Attachments != 0 {
		t.Fatalf("attachments = %d, want 0", st.Attachments)
	}
	up := start(t, Config{Name: "some", Protocol: unix.NETLINK_USERSOCK, Groups: []uint32{testenv.IdleUsersockGroup, 40}}, decoder.NewRaw(nil), newSink(), nil)
	if st := waitState(t, up, srcinfo.StateUp); st.Attachments != 1 {
		t.Fatalf("attachments = %d, want 1", st.Attachments)
	}
}

// TestStateDenied runs a subscription on an OS thread without
// CAP_NET_ADMIN (capabilities are per thread; the subscription opens and
// joins on the goroutine that runs it): joining a usersock group, which
// needs it, is denied, not failed.
func TestStateDenied(t *testing.T) {
	testenv.RequireRoot(t, "dropping CAP_NET_ADMIN from one thread")
	logs := &syncbuf.Buffer{}
	s := New(Config{Name: "denied", Protocol: unix.NETLINK_USERSOCK, Groups: []uint32{testenv.IdleUsersockGroup}}, decoder.NewRaw(nil), log.NewLogfmtLogger(logs))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with the goroutine, and its
		// lowered capabilities with it.
		runtime.LockOSThread()
		if err := dropCapability(unix.CAP_NET_ADMIN); err != nil {
			done <- err
			return
		}
		s.Run(ctx, newSink())
		done <- nil
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(5 * time.Second):
			t.Error("source did not stop within 5s of its context ending")
		}
	})
	waitState(t, s, srcinfo.StateDenied)
	if want := `msg="Not permitted to subscribe to the multicast groups`; !strings.Contains(logs.String(), want) {
		t.Fatalf("log lacks %s:\n%s", want, logs)
	}
}

// dropCapability removes capability c from the calling thread's effective
// set.
func dropCapability(c int) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	data[c/32].Effective &^= 1 << (c % 32)
	return unix.Capset(&hdr, &data[0])
}

// TestStateFamily follows a family through the controller: absent, it is
// waiting; registered, up; unregistered after being up, waiting again with
// one attachment on record; registered without the configured group,
// failed.
func TestStateFamily(t *testing.T) {
	notify := realGroup(t, "nlctrl", "notify")
	ctrl := newFakeController(nil)
	s := startFamily(t, Config{Name: "fam", Family: "kevent", GroupNames: []string{"events"}}, ctrl, &syncbuf.Buffer{})
	e2e.Eventually(t, "the family is looked up", func() bool { return ctrl.lookupCount() == 1 })
	if st := waitState(t, s, srcinfo.StateWaiting); st.Attachments != 0 {
		t.Fatalf("attachments = %d, want 0", st.Attachments)
	}
	ctrl.notify(ctrlMessage(unix.CTRL_CMD_NEWFAMILY, "kevent", 40, map[string]uint32{"events": notify}))
	waitState(t, s, srcinfo.StateUp)
	ctrl.notify(ctrlMessage(unix.CTRL_CMD_DELFAMILY, "kevent", 40, nil))
	if st := waitState(t, s, srcinfo.StateWaiting); st.Attachments != 1 {
		t.Fatalf("attachments = %d, want 1", st.Attachments)
	}
	// Back, but its group is gone: a person must look.
	ctrl.notify(ctrlMessage(unix.CTRL_CMD_NEWFAMILY, "kevent", 41, map[string]uint32{"other": notify}))
	waitState(t, s, srcinfo.StateFailed)
}

// TestStateControllerDenied: a controller that cannot be opened for want
// of a privilege leaves the family's source denied, any other error
// failed.
func TestStateControllerDenied(t *testing.T) {
	for _, c := range []struct {
		err  error
		want srcinfo.State
	}{
		{unix.EPERM, srcinfo.StateDenied},
		{unix.EACCES, srcinfo.StateDenied},
		{errors.New("nlctrl has no \"notify\" group"), srcinfo.StateFailed},
	} {
		s := New(Config{Name: "fam", Family: "kevent", GroupNames: []string{"events"}}, decoder.NewRaw(nil), log.NewNopLogger())
		s.dialController = func() (controller, error) { return nil, c.err }
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.Run(ctx, newSink())
		}()
		waitState(t, s, c.want)
		cancel()
		<-done
	}
}
