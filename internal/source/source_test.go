package source

import (
	"context"
	"testing"

	"github.com/go-kit/log"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/collector"
	"github.com/kevent-exporter/kevent_exporter/config"
	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc/srcinfo"
)

// The tests multicast on NETLINK_USERSOCK in a network namespace of this
// package's own.
func TestMain(m *testing.M) { testenv.Main(m) }

// TestSubscriptionSendersFailClosed: a senders value the configuration
// refuses, given anyway, trusts only the kernel, not the usersock
// protocol's usual senders (root's).
func TestSubscriptionSendersFailClosed(t *testing.T) {
	testenv.RequireRoot(t, "multicast on NETLINK_USERSOCK")
	const group = 1
	sc := config.DefaultSource
	sc.Name, sc.Protocol, sc.Groups, sc.Decoder, sc.Senders = "u", unix.NETLINK_USERSOCK, []uint32{group}, "raw", "everyone"
	d, err := NewDecoder(sc)
	if err != nil {
		t.Fatal(err)
	}
	sub := NewSubscription(sc, d, log.NewNopLogger())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan srcinfo.Stats, 1)
	go func() { done <- sub.Run(ctx, collector.NewSourceMetrics(sc.Name, collector.SourceOptions{})) }()
	defer func() { cancel(); <-done }()
	e2e.Eventually(t, "the subscription is up", func() bool { return sub.Stats().Up() })

	snd, err := nlsend.NewSender(unix.NETLINK_USERSOCK, group)
	if err != nil {
		t.Fatal(err)
	}
	defer snd.Close()
	if err := snd.Send(nlsend.AppendMessage(nil, 0x20, 1, []byte("root"))); err != nil {
		t.Fatal(err)
	}
	e2e.Eventually(t, "the datagram is read", func() bool { return sub.Stats().Datagrams == 1 })
	if got := sub.Stats().Rejected; got != [srcinfo.NumRejectReasons]uint64{srcinfo.RejectNotKernel: 1} {
		t.Errorf("rejected %v, want root's datagram rejected as not the kernel's", got)
	}
}
