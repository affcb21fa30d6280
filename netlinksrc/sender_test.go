package netlinksrc

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
	"github.com/kevent-exporter/kevent_exporter/internal/syncbuf"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc/srcinfo"
)

// rejected returns the subscription's rejected counts by reason name.
func rejected(s *Subscription) map[string]uint64 {
	m := make(map[string]uint64)
	for i, n := range s.Stats().Rejected {
		if n > 0 {
			m[srcinfo.RejectReason(i).String()] = n
		}
	}
	return m
}

func kernelUevent(action string) []byte {
	return []byte(fmt.Sprintf("%s@/devices/fake\x00ACTION=%s\x00DEVPATH=/devices/fake\x00SUBSYSTEM=spoofed\x00SEQNUM=1\x00", action, action))
}

// libudevUevent builds a udev re-broadcast: "libudev\0", the magic, and
// the header's offsets (struct udev_monitor_netlink_header).
func libudevUevent(subsystem, action string) []byte {
	props := []byte(fmt.Sprintf("ACTION=%s\x00DEVPATH=/devices/x\x00SUBSYSTEM=%s\x00SEQNUM=9\x00", action, subsystem))
	h := make([]byte, 40)
	copy(h, "libudev\x00")
	binary.BigEndian.PutUint32(h[8:12], 0xfeedcafe)
	binary.NativeEndian.PutUint32(h[12:16], 40)                 // header size
	binary.NativeEndian.PutUint32(h[16:20], 40)                 // properties offset
	binary.NativeEndian.PutUint32(h[20:24], uint32(len(props))) // properties length
	return append(h, props...)
}

// TestForgedUevents sends, as root from userspace, a uevent in the
// kernel's format on the kernel's group and udev re-broadcasts on udev's
// group, then makes the kernel send a real one: only the kernel's and
// root's re-broadcast are events.
func TestForgedUevents(t *testing.T) {
	sk := newSink()
	s := start(t, Config{Name: "uevent", Protocol: unix.NETLINK_KOBJECT_UEVENT, Groups: []uint32{1, 2}}, decoder.NewUevent(), sk, nil)
	waitUp(t, s)
	kernelGroup, err := nlsend.NewSender(unix.NETLINK_KOBJECT_UEVENT, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer kernelGroup.Close()
	udevGroup, err := nlsend.NewSender(unix.NETLINK_KOBJECT_UEVENT, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer udevGroup.Close()

	if err := kernelGroup.Send(kernelUevent("add")); err != nil {
		t.Fatal(err)
	}
	if err := udevGroup.Send(libudevUevent("block", "add")); err != nil {
		t.Fatal(err)
	}
	if err := udevGroup.SendAs(libudevUevent("tty", "add"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := testenv.WriteUevent("lo", "change"); err != nil {
		t.Fatal(err)
	}
	e2e.Eventually(t, "the real uevent is counted", func() bool { return sk.count("net/change") == 1 })
	e2e.Eventually(t, "two datagrams are rejected", func() bool { return len(rejected(s)) == 2 })
	sk.mu.Lock()
	names := fmt.Sprint(sk.names)
	sk.mu.Unlock()
	if want := "map[block/add:1 net/change:1]"; names != want {
		t.Errorf("events = %s, want %s", names, want)
	}
	if got, want := fmt.Sprint(rejected(s)), "map[not_kernel:1 not_root:1]"; got != want {
		t.Errorf("rejected = %s, want %s", got, want)
	}
	if got := s.Stats().Datagrams; got != 4 {
		t.Errorf("datagrams received = %d, want 4 (rejected ones included)", got)
	}
}

// TestForgedRoute sends a message on rtnetlink's link group from userspace
// as root: a route source takes only the kernel's, such as the one an MTU
// change makes it send.
func TestForgedRoute(t *testing.T) {
	sk := newSink()
	s := start(t, Config{Name: "route", Protocol: unix.NETLINK_ROUTE, Groups: []uint32{unix.RTNLGRP_LINK}}, decoder.NewRaw(nil), sk, nil)
	waitUp(t, s)
	snd, err := nlsend.NewSender(unix.NETLINK_ROUTE, unix.RTNLGRP_LINK)
	if err != nil {
		t.Fatal(err)
	}
	defer snd.Close()
	if err := snd.Send(nlsend.AppendMessage(nil, unix.RTM_NEWLINK, 1, make([]byte, 16))); err != nil {
		t.Fatal(err)
	}
	e2e.Eventually(t, "the forged message is rejected", func() bool { return rejected(s)["not_kernel"] == 1 })
	setMTU(t, "lo", 60000)
	setMTU(t, "lo", 65536)
	e2e.Eventually(t, "the kernel's RTM_NEWLINK messages are counted", func() bool { return sk.count("16") >= 2 })
	if got := fmt.Sprint(rejected(s)); got != "map[not_kernel:1]" {
		t.Errorf("rejected = %s, want map[not_kernel:1]", got)
	}
}

func setMTU(t *testing.T, name string, mtu uint32) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		t.Fatal(err)
	}
	ifr.SetUint32(mtu)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFMTU, ifr); err != nil {
		t.Fatalf("setting %s's MTU to %d: %v", name, mtu, err)
	}
}

// TestUsersockSenders checks the senders setting on usersock, where
// userspace senders are the norm: by default root's, with "any" everyone's,
// with "kernel" nobody's, with a value srcinfo does not define nobody's
// either (it fails closed).
func TestUsersockSenders(t *testing.T) {
	for _, c := range []struct {
		senders  srcinfo.Senders
		group    uint32
		events   int
		rejected string
	}{
		{srcinfo.SendersDefault, 26, 1, "map[not_root:1]"},
		{srcinfo.SendersRoot, 27, 1, "map[not_root:1]"},
		{srcinfo.SendersAny, 28, 2, "map[]"},
		{srcinfo.SendersKernel, 29, 0, "map[not_kernel:2]"},
		{srcinfo.Senders(99), 30, 0, "map[not_kernel:2]"},
	} {
		t.Run(c.senders.String(), func(t *testing.T) {
			sk := newSink()
			s := start(t, Config{Name: "u", Protocol: unix.NETLINK_USERSOCK, Groups: []uint32{c.group}, Senders: c.senders}, decoder.NewRaw(nil), sk, nil)
			waitUp(t, s)
			snd := newSender(t, c.group)
			if err := snd.Send(nlsend.AppendMessage(nil, 0x20, 1, []byte("root"))); err != nil {
				t.Fatal(err)
			}
			if err := snd.SendAs(nlsend.AppendMessage(nil, 0x20, 2, []byte("nobody")), 65534, 65534); err != nil {
				t.Fatal(err)
			}
			e2e.Eventually(t, "both datagrams are read", func() bool { return s.Stats().Datagrams == 2 })
			if e, _ := sk.counts(); e != c.events {
				t.Errorf("events = %d, want %d", e, c.events)
			}
			if got := fmt.Sprint(rejected(s)); got != c.rejected {
				t.Errorf("rejected = %s, want %s", got, c.rejected)
			}
		})
	}
}

// TestStopAccountsForQueue stops a subscription whose reader is held while
// a flood fills its socket: what is queued is decoded (or, past the decode
// time bound, counted as lost), so events + lost == sent.
func TestStopAccountsForQueue(t *testing.T) {
	testenv.RequireRoot(t, "multicast on NETLINK_USERSOCK")
	for _, c := range []struct {
		name          string
		decodeTimeout time.Duration
	}{{"decoded", 2 * time.Second}, {"counted unread", 0}} {
		t.Run(c.name, func(t *testing.T) {
			told := make(chan struct{})
			const sent = 50000
			group := testenv.UsersockGroup(t)
			sk := newSink()
			sk.hold, sk.held = make(chan struct{}), make(chan struct{})
			s := New(Config{Name: "stop", Protocol: unix.NETLINK_USERSOCK, Groups: []uint32{group}, ReceiveBufferBytes: 1 << 20}, decoder.NewRaw(nil), log.NewNopLogger())
			s.stopDecodeTimeout = c.decodeTimeout
			s.stopping = func() { close(told) }
			ctx, cancel := context.WithCancel(context.Background())
			final := make(chan srcinfo.Stats, 1)
			go func() { final <- s.Run(ctx, sk) }()
			waitUp(t, s)
			snd := newSender(t, group)
			for i := 0; i < sent; i++ {
				if err := snd.Send(nlsend.AppendMessage(nil, 0x20, uint32(i), []byte("x"))); err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					<-sk.held // the reader is stuck in Record with the rest queued
				}
			}
			cancel()
			<-told // the receive loop ends at its next read: the rest is read at stop
			close(sk.hold)
			var st srcinfo.Stats
			select {
			case st = <-final:
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return within 30s of its context ending")
			}
			events, _ := sk.counts()
			t.Logf("events=%d lost=%d datagrams=%d", events, st.Lost, st.Datagrams)
			if uint64(events)+st.Lost != sent {
				t.Fatalf("events + lost = %d + %d, want %d", events, st.Lost, sent)
			}
			if st.Datagrams != uint64(events) {
				t.Fatalf("datagrams received = %d, want one per event (%d)", st.Datagrams, events)
			}
			if c.decodeTimeout == 0 && events != 1 {
				t.Fatalf("events = %d with no time to decode at stop, want only the held one", events)
			}
			if c.decodeTimeout > 0 && events < 2 {
				t.Fatalf("events = %d: the queue was not decoded at stop", events)
			}
		})
	}
}

// TestDropCountReadError makes SO_MEMINFO fail: the failure is counted and
// logged instead of freezing the loss count without a word.
func TestDropCountReadError(t *testing.T) {
	defer func(f func(uintptr, *[unix.SK_MEMINFO_VARS]uint32) unix.Errno) { getMeminfo = f }(getMeminfo)
	getMeminfo = func(uintptr, *[unix.SK_MEMINFO_VARS]uint32) unix.Errno { return unix.ENOPROTOOPT }
	logs := &syncbuf.Buffer{}
	s := start(t, Config{Name: "meminfo", Protocol: unix.NETLINK_USERSOCK, Groups: []uint32{testenv.IdleUsersockGroup}}, decoder.NewRaw(nil), newSink(), logs)
	waitUp(t, s)
	if st := s.Stats(); st.DropReadErrors == 0 {
		t.Fatal("failed SO_MEMINFO read not counted")
	}
	const want = `msg="Cannot read the kernel's drop count (SO_MEMINFO); kevent_datagrams_lost_total is stale until it can" err="protocol not available"`
	e2e.Eventually(t, "the failure is logged", func() bool { return strings.Contains(logs.String(), want) })
}
